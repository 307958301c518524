//! Image references in docker's grammar: `host[:port]/repo[:tag][@digest]`, docker.io defaults.
