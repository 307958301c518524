//! OCI images: layers, config, manifest, and the writers for OCI layouts and docker archives,
//! plus reading them back for `push --from`.
//!
//! [`build::build_image`] turns a [`build::Plan`] into an image: it first checks that every
//! entrypoint can start in the image it is about to write (the `elf` analysis), then writes
//! reproducible layers ([`layer`]), the config, manifests and an index ([`image`]), and hands
//! them to an output ([`output`]): an OCI layout, a docker archive or the Docker engine.
//!
//! Invariants: the same plan gives byte-identical blobs (sorted tar entries, fixed mtimes,
//! numeric owners, gzip without timestamps, JSON with sorted keys); outputs appear whole or not
//! at all (everything is staged in a temp dir beside the destination and renamed into place);
//! an interrupt (see [`request_interrupt`]) stops the build and removes what it staged.

pub mod blob;
pub mod build;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod output;
pub mod read;

use std::sync::atomic::{AtomicBool, Ordering};

pub use build::{build_image, BuiltImage, Plan};
pub use output::Output;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks a running build to stop at the next block it writes (async-signal-safe: call it from a
/// SIGINT handler). The build then fails with [`Error::Interrupted`] and removes its staging.
pub fn request_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`request_interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Errors of building and writing images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A binary could not be analysed.
    #[error("cannot analyse {path}: {source}")]
    Analysis {
        /// The binary.
        path: String,
        /// The cause.
        source: crate::elf::Error,
    },
    /// An entrypoint could not start in the planned image; nothing was written.
    #[error("refusing to build: {}", problems.join("; "))]
    NotStartable {
        /// One message per problem, each naming the cause and the fix.
        problems: Vec<String>,
    },
    /// The plan is inconsistent (e.g. two binaries for one platform).
    #[error("{0}")]
    Plan(String),
    /// A path in the plan is unusable.
    #[error("bad image path {path}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The host CA bundle is missing.
    #[error("CA certificates not found at {path}: install the ca-certificates package, or pass --no-ca-certs for an image that makes no TLS connections")]
    MissingCaCerts {
        /// The path looked at.
        path: String,
    },
    /// The destination exists and cannot be used.
    #[error("{path} exists and {reason}")]
    Destination {
        /// The destination.
        path: String,
        /// Why it cannot be used, and what to do.
        reason: String,
    },
    /// The output specification is not understood.
    #[error("unknown output {0:?}: use oci:DIR, docker-archive:FILE or docker")]
    BadOutput(String),
    /// JSON (de)serialisation failed.
    #[error("{context}: {source}")]
    Json {
        /// What was being done.
        context: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// Loading into the Docker engine failed.
    #[error(transparent)]
    Docker(#[from] crate::docker::Error),
    /// The build was interrupted; nothing was left behind.
    #[error("interrupted; nothing was written")]
    Interrupted,
}

impl Error {
    /// An I/O error with what was being done; an interrupted write becomes [`Error::Interrupted`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        if interrupted() {
            return Error::Interrupted;
        }
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Serialises `value` as compact JSON with object keys sorted at every level, so that maps
/// held in hash maps (labels, annotations, exposed ports) serialise identically every time.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let ctx = |source| Error::Json {
        context: "serialising image JSON".into(),
        source,
    };
    let v = serde_json::to_value(value).map_err(ctx)?;
    serde_json::to_vec(&sort_keys(v)).map_err(ctx)
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}
