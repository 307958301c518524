//! Declarative image specs (`images/NAME.toml`): what `imgbuild build SPEC` reads.
