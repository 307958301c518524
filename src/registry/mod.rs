//! The OCI distribution protocol client: blob and manifest upload, and registry auth.
