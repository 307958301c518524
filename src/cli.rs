//! Command-line types (clap derive). Only types live here; `src/main.rs` dispatches them to
//! the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build minimal, reproducible OCI images that always start, without a Docker daemon.
#[derive(Debug, Parser)]
#[command(name = "imgbuild", version, about, propagate_version = true)]
pub struct Cli {
    /// Print nothing but results and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect a binary: platform, linkage, Go build info, and whether it can start in an empty image.
    Inspect(InspectArgs),
    /// Build an image from binaries or a spec file.
    Build(BuildArgs),
    /// Build (or take) an image and push it to a registry, ECR first-class.
    Push(PushArgs),
    /// Upload a binary to S3 for the fetch-mode entrypoint, with its SHA-256.
    Upload(UploadArgs),
}

/// `imgbuild inspect`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Reports the format (ELF or #! script), OCI platform, linkage (static, static-pie, dynamic), the
program interpreter, needed libraries, RPATH/RUNPATH, the C library (glibc or musl, where it can
be told), Go build info (version, module, build settings such as CGO_ENABLED), and the verdict:
whether the file can start in an empty (scratch) image, and if not, what is missing and how to
fix it.

Exit status: 0 when the file was analysed, whatever the verdict; 1 when it cannot be read or is
not an executable at all (the reason is printed on one line).

Examples:
  imgbuild inspect ./server
  imgbuild inspect --json ./server | jq .problems
  imgbuild inspect --json ./server | jq -e .runs_in_empty_image")]
pub struct InspectArgs {
    /// The file to inspect (an ELF executable or a #! script).
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    ///
    /// Keys: format, os, arch, variant, platform, bits, endian, linkage, interpreter,
    /// interpreter_arg, needed, rpath, runpath, libc, go (null or {version, path, main, deps,
    /// settings}), runs_in_empty_image, problems (messages), problem_kinds.
    #[arg(long)]
    pub json: bool,
}

/// `imgbuild build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A spec file (`images/NAME.toml`) instead of flags.
    pub spec: Option<PathBuf>,
    /// The binary to put in the image (repeat for several platforms).
    #[arg(long)]
    pub binary: Vec<PathBuf>,
    /// Image name and tag, e.g. `server:1.2`.
    #[arg(long)]
    pub tag: Option<String>,
    /// Where to write: `oci:DIR`, `docker-archive:FILE` or `docker`.
    #[arg(long, short)]
    pub output: Option<String>,
}

/// `imgbuild push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The build options, as for `build`.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Push an existing image: `oci:DIR` or `docker-archive:FILE`.
    #[arg(long)]
    pub from: Option<String>,
    /// Where to push: `host[:port]/repo[:tag]`.
    pub reference: String,
}

/// `imgbuild upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The binary to upload.
    pub file: PathBuf,
    /// Destination, `s3://bucket/key`.
    pub destination: String,
}
