//! S3 upload for fetch mode (`imgbuild upload`): a startable binary, sent with its SHA-256.
