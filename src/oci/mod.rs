//! OCI images: layers, config, manifest, and the writers for OCI layouts and docker archives,
//! plus reading them back for `push --from`.
pub mod read;
