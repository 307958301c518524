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
    ///
    /// Builds the image from `--binary`/`--spec` (as `imgbuild build` does), or takes an existing
    /// one with `--from oci:DIR[:TAG]` or `--from docker-archive:FILE`, then pushes it to REF
    /// (`host[:port]/repo[:tag]`; no host means Docker Hub). On success prints
    /// `NAME@sha256:<manifest digest>` on stdout (and writes it to `--digest-file`), ready to pin
    /// in an ECS task definition.
    ///
    /// Blobs that the registry already has are skipped (a `HEAD` each), so a re-run after an
    /// interrupted push finishes the job without uploading anything twice. Uploads are monolithic
    /// (one `PUT` per blob) unless `--chunked`. Transient failures (connection errors, 408, 429,
    /// 5xx) are retried with backoff; rejected credentials (401/403) fail at once.
    ///
    /// Credentials: ECR hosts (`<account>.dkr.ecr.<region>.amazonaws.com` and the FIPS, China and
    /// dual-stack variants) use GetAuthorizationToken with the normal AWS credential chain
    /// (environment, AWS_PROFILE, CodeBuild/ECS roles; `AWS_ENDPOINT_URL_ECR` or `AWS_ENDPOINT_URL`
    /// override the API endpoint). Other registries use docker's config.json (`DOCKER_CONFIG` or
    /// ~/.docker): `auths`, `credsStore`, `credHelpers`. TLS is always verified; loopback
    /// registries (localhost, 127.0.0.0/8, ::1) and those named with `--insecure-registry` are
    /// spoken to in plain HTTP.
    ///
    /// Testing: `IMGBUILD_REGISTRY_MIRROR=<registry-host>=<host:port>[,...]` sends one registry's
    /// traffic to another address while keeping its credentials, e.g. an ECR-named reference to a
    /// local registry: `IMGBUILD_REGISTRY_MIRROR=123456789012.dkr.ecr.us-east-1.amazonaws.com=127.0.0.1:5000`.
    Push(PushArgs),
    /// Upload a binary to S3 for the fetch-mode entrypoint, with its SHA-256.
    Upload(UploadArgs),
}

/// `imgbuild inspect`.
#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  imgbuild inspect ./server\n  imgbuild inspect --json ./server | jq .problems"
)]
pub struct InspectArgs {
    /// The file to inspect.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
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
#[command(after_long_help = "Examples:
  imgbuild push --binary ./server 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.4
  imgbuild push --from oci:out/app:latest --tag latest --digest-file digest.txt 127.0.0.1:5000/app:1.4
  imgbuild push --from docker-archive:app.tar --create-repository --scan-on-push \\
      --image-tag-mutability immutable 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:$CODEBUILD_RESOLVED_SOURCE_VERSION
  imgbuild push --json --from oci:out/app 127.0.0.1:5000/app:1 | jq -r .digest")]
pub struct PushArgs {
    /// Where to push: `host[:port]/repo[:tag]`.
    pub reference: String,
    /// Push an existing image: `oci:DIR[:TAG]` or `docker-archive:FILE`.
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["binary", "spec"])]
    pub from: Option<String>,
    /// Build from this binary (repeat for several platforms), as `imgbuild build --binary`.
    #[arg(long, value_name = "FILE")]
    pub binary: Vec<PathBuf>,
    /// Build from this spec file (`images/NAME.toml`), as `imgbuild build SPEC`.
    #[arg(long, value_name = "FILE", conflicts_with = "binary")]
    pub spec: Option<PathBuf>,
    /// Also tag the image TAG (repeat for several), besides the tag in REF.
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Write `NAME@sha256:<digest>` to this file too.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// ECR: create the repository if it does not exist.
    #[arg(long)]
    pub create_repository: bool,
    /// ECR, with --create-repository: scan images on push.
    #[arg(long, requires = "create_repository")]
    pub scan_on_push: bool,
    /// ECR, with --create-repository: whether tags can be overwritten.
    #[arg(
        long,
        value_enum,
        value_name = "MUTABILITY",
        requires = "create_repository"
    )]
    pub image_tag_mutability: Option<TagMutability>,
    /// Speak plain HTTP to this registry (`host[:port]`); repeatable. Loopback registries
    /// always are.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Blobs uploaded at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Upload blobs in PATCH chunks instead of one PUT each (some registries need it; ECR's
    /// chunked uploads are known to break, so the default is monolithic).
    #[arg(long)]
    pub chunked: bool,
    /// Chunk size in MiB for --chunked.
    #[arg(long, value_name = "MIB", default_value_t = 16, requires = "chunked", value_parser = clap::value_parser!(u64).range(1..=5120))]
    pub chunk_size: u64,
    /// A repository on the same registry that may already hold the blobs: mount them from it
    /// instead of uploading.
    #[arg(long, value_name = "REPO")]
    pub mount_from: Option<String>,
    /// Retries per request after transient failures (connection errors, 408, 429, 5xx).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Print one JSON object (reference, digest, tags, counts) instead of the reference.
    #[arg(long)]
    pub json: bool,
}

/// ECR tag mutability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TagMutability {
    /// Tags can be moved to another image.
    Mutable,
    /// A tag, once pushed, always names the same image.
    Immutable,
}

/// `imgbuild upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The binary to upload.
    pub file: PathBuf,
    /// Destination, `s3://bucket/key`.
    pub destination: String,
}
