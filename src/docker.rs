//! Local Docker engine access through bollard: load an image archive, run a container.
