//! Local Docker engine access through bollard: load an image archive, run a container.
//!
//! The engine is found like the docker CLI finds it: `DOCKER_HOST` (unix:// or tcp://), else
//! the default unix socket. Calls are blocking wrappers over bollard's async API, each on a
//! small current-thread runtime, so callers need no async context.

use std::path::Path;

use bollard::query_parameters::ImportImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

/// Errors talking to the Docker engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine could not be reached.
    #[error("cannot connect to the Docker engine ({host}): {source}; is it running, and is DOCKER_HOST right?")]
    Connect {
        /// DOCKER_HOST or the default socket.
        host: String,
        /// The cause.
        source: bollard::errors::Error,
    },
    /// The engine refused or failed the request.
    #[error("Docker engine: {context}: {message}")]
    Engine {
        /// What was being done.
        context: String,
        /// The engine's message.
        message: String,
    },
    /// A local file or runtime operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting an async runtime".into(),
            source,
        })?;
    Ok(rt.block_on(f))
}

/// Connects and agrees on an API version the engine speaks (older engines reject newer ones).
async fn connect() -> Result<Docker, Error> {
    let err = |source| Error::Connect {
        host: host(),
        source,
    };
    Docker::connect_with_defaults()
        .map_err(err)?
        .negotiate_version()
        .await
        .map_err(err)
}

/// Loads the `docker load` archive at `path` into the engine (streaming it from disk) and
/// returns the engine's messages, e.g. `Loaded image: server:1.2`.
pub fn load_archive(path: &Path) -> Result<Vec<String>, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        context: format!("opening {}", path.display()),
        source,
    })?;
    block_on(async move {
        let docker = connect().await?;
        let chunks = futures_util::stream::unfold(file, |mut file| async move {
            use std::io::Read;
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf) {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((bytes::Bytes::from(buf), file))
                }
            }
        });
        let opts = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut progress = docker.import_image_stream(opts, chunks, None);
        let mut messages = Vec::new();
        while let Some(item) = progress.next().await {
            let info = item.map_err(|e| Error::Engine {
                context: format!("loading {}", path.display()),
                message: e.to_string(),
            })?;
            if let Some(message) = info.error_detail.and_then(|d| d.message).or(info.error) {
                return Err(Error::Engine {
                    context: format!("loading {}", path.display()),
                    message,
                });
            }
            if let Some(s) = info.stream {
                let s = s.trim();
                if !s.is_empty() {
                    messages.push(s.to_string());
                }
            }
        }
        Ok(messages)
    })?
}
