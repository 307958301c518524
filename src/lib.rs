//! imgbuild: builds minimal, reproducible OCI images that always start, without a daemon.
//!
//! The library is one module per concern; `src/main.rs` is thin glue over it. Without the
//! default `cli` feature only [`elf`] is built: the binary analysis that the entrypoint
//! (`images/entrypoint`) links, so that one implementation serves `inspect`, `build` and the
//! entrypoint's check before exec.

pub mod elf;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod docker;
#[cfg(feature = "cli")]
pub mod ecr;
#[cfg(feature = "cli")]
pub mod oci;
#[cfg(feature = "cli")]
pub mod reference;
#[cfg(feature = "cli")]
pub mod registry;
#[cfg(feature = "cli")]
pub mod s3;
#[cfg(feature = "cli")]
pub mod spec;
