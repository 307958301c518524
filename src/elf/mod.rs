//! Binary inspection: what an executable needs in order to start.
//!
//! [`analyze`] reads an ELF file or a `#!` script and reports its platform, linkage, program
//! interpreter, needed libraries and Go build info. [`check`] then decides whether it can start
//! inside a given root filesystem (an empty image, the image being built, or the running
//! container) and says exactly what is missing and how to fix it.
//!
//! Invariants: the input is untrusted. Nothing here panics on malformed data, every read is
//! bounded by the input's length, and no allocation is sized by a header field without first
//! checking it against the input.

mod gobuildinfo;
mod ldso;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

pub use ldso::{bundle_closure, BundledFile, HostRoot, ImageRoot, RootFs};

/// Files larger than this are refused by [`analyze_file`] (4 GiB).
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Errors of the analysis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is neither an ELF executable nor a `#!` script.
    #[error("not an executable: {reason}")]
    NotExecutable {
        /// What was found instead.
        reason: String,
    },
    /// The file starts like an ELF file but is malformed or truncated.
    #[error("malformed ELF file: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A library needed for `--bundle-libs` could not be found on the build host.
    #[error("cannot bundle {library}: not found on this host (searched {searched})")]
    LibraryNotFound {
        /// The DT_NEEDED name.
        library: String,
        /// The directories searched, comma-separated.
        searched: String,
    },
}

/// What kind of file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An ELF executable or shared object.
    Elf,
    /// A script starting with `#!`.
    Script,
}

/// An OCI platform (`os`, `architecture`, `variant`), as in an image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI/Go architecture name: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// `v7` for 32-bit ARM, else none.
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// How an ELF executable is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// No interpreter, no needed libraries, fixed address.
    Static,
    /// No interpreter, self-relocating position-independent executable.
    StaticPie,
    /// Needs a program interpreter (the dynamic loader) and usually shared libraries.
    Dynamic,
}

/// Which C library a binary was built against, where that can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// GNU libc.
    Glibc,
    /// musl libc.
    Musl,
}

/// A Go module line of the build info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoModule {
    /// Module path.
    pub path: String,
    /// Module version (`(devel)` for the main module built from a checkout).
    pub version: String,
    /// go.sum hash, when recorded.
    pub sum: Option<String>,
}

/// Go build information embedded by Go >= 1.18 (`.go.buildinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoBuildInfo {
    /// Toolchain version, e.g. `go1.19.8`.
    pub version: String,
    /// Main package path.
    pub path: Option<String>,
    /// Main module.
    pub main: Option<GoModule>,
    /// Dependency modules.
    pub deps: Vec<GoModule>,
    /// Build settings (`CGO_ENABLED`, `GOOS`, `GOARCH`, `GOAMD64`, `-tags`, `-ldflags`,
    /// `vcs.revision`, ...).
    pub settings: BTreeMap<String, String>,
}

/// The analysis of one executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// ELF or script.
    pub format: Format,
    /// For ELF: the platform it runs on (None for an unknown machine).
    pub platform: Option<Platform>,
    /// For ELF: 32 or 64.
    pub bits: Option<u8>,
    /// For ELF: `little` or `big`.
    pub endian: Option<&'static str>,
    /// For ELF: how it is linked.
    pub linkage: Option<Linkage>,
    /// PT_INTERP for ELF; the `#!` interpreter for scripts.
    pub interpreter: Option<String>,
    /// The `#!` line's optional argument.
    pub interpreter_arg: Option<String>,
    /// DT_NEEDED entries in order.
    pub needed: Vec<String>,
    /// DT_RPATH entries (colon lists split).
    pub rpath: Vec<String>,
    /// DT_RUNPATH entries (colon lists split).
    pub runpath: Vec<String>,
    /// The C library, where it can be told.
    pub libc: Option<Libc>,
    /// Go build info, when present.
    pub go: Option<GoBuildInfo>,
}

/// One reason a binary cannot start in a root filesystem, with its fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable machine-readable kind: `missing-interpreter`, `missing-library`,
    /// `wrong-platform`, `missing-script-interpreter`, `unknown-machine`.
    pub kind: &'static str,
    /// The cause and the fix, in one sentence a user can act on.
    pub message: String,
}

/// Reads and analyses the file at `path`.
pub fn analyze_file(path: &Path) -> Result<Analysis, Error> {
    let _ = path;
    Err(Error::NotExecutable {
        reason: "analysis not implemented yet".into(),
    })
}

/// Analyses an executable held in memory.
pub fn analyze(data: &[u8]) -> Result<Analysis, Error> {
    let _ = (data, gobuildinfo::parse as fn(&[u8]) -> Option<GoBuildInfo>);
    Err(Error::NotExecutable {
        reason: "analysis not implemented yet".into(),
    })
}

/// Decides whether `analysis` can start as the entrypoint inside `root`, on `platform` when
/// given. Returns every problem found; an empty list means it can start.
///
/// `name` is how the binary is called in messages (e.g. `server`).
pub fn check(
    name: &str,
    analysis: &Analysis,
    root: &dyn RootFs,
    platform: Option<&Platform>,
) -> Vec<Problem> {
    let _ = (name, analysis, root, platform);
    Vec::new()
}
