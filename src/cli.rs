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
    /// override the API endpoint); `IMGBUILD_ECR_TOKEN_CACHE=DIR` keeps tokens on disk (mode
    /// 0600) between runs. Other registries use docker's config.json (`DOCKER_CONFIG` or
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
///
/// Builds a minimal image holding the binary (at /app/NAME, 0755, root-owned), CA certificates,
/// /etc/passwd and /etc/group (root and nonroot 65532), /tmp, and nothing else; byte-for-byte
/// reproducible. Before writing anything it checks that the binary can start in that image and
/// refuses if not (e.g. a dynamically linked binary without --bundle-libs). Prints the manifest
/// digest (or the index digest, for several platforms) on stdout.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  CGO_ENABLED=0 go build -o server . && imgbuild build --binary server --tag server:1.2 -o oci:out/server
  imgbuild build --binary server --port 8080 -o docker
  imgbuild build --binary server-amd64 --binary server-arm64 -o oci:out/multi
  imgbuild build --binary server-cgo --bundle-libs -o docker-archive:server.tar
  imgbuild build --fetch s3://bucket/server --sha256 $(sha256sum server | cut -c1-64) -o oci:out/fetch
  imgbuild build images/sample-server.toml")]
pub struct BuildArgs {
    /// A spec file (`images/NAME.toml`); flags given too override it.
    pub spec: Option<PathBuf>,
    /// What goes in the image.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Image name and tag, e.g. `server:1.2` [default: NAME:latest].
    #[arg(long)]
    pub tag: Option<String>,
    /// Where to write: `oci:DIR`, `docker-archive:FILE` or `docker`.
    ///
    /// An existing OCI layout DIR gets the image added (an entry with the same tag is
    /// replaced); an existing FILE is replaced. Outputs appear whole or not at all.
    #[arg(long, short, value_name = "DEST")]
    pub output: Option<String>,
    /// Print one JSON object (digest, media type, platforms, reference) instead of the digest.
    #[arg(long)]
    pub json: bool,
}

/// What goes in an image and how it runs: the options `build` and `push` share.
#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// The binary to put in the image (repeat for several platforms: an image index).
    #[arg(long, value_name = "FILE")]
    pub binary: Vec<PathBuf>,
    /// The program's name in the image: the binary goes to /app/NAME [default: the file name].
    #[arg(long)]
    pub name: Option<String>,
    /// Target platform(s), e.g. `linux/amd64`; binaries for other platforms are refused.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Port to expose, e.g. `8080` or `53/udp` (repeatable).
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub port: Vec<String>,
    /// Config label (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub label: Vec<(String, String)>,
    /// Manifest annotation, e.g. `org.opencontainers.image.source=URL` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub annotation: Vec<(String, String)>,
    /// Environment variable (repeatable); PATH and SSL_CERT_FILE are set by default.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// Argument passed to the binary (the image's Cmd; repeatable, in order).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// User to run as [default: 65532:65532 (nonroot)]; `root` for 0:0.
    #[arg(long)]
    pub user: Option<String>,
    /// Working directory [default: /app].
    #[arg(long)]
    pub workdir: Option<String>,
    /// Extra host file or directory for the app layer; relative DEST is under /app (repeatable).
    #[arg(long, value_name = "SRC:DEST")]
    pub add: Vec<String>,
    /// Leave out the CA certificates (for an image that makes no TLS connections).
    #[arg(long)]
    pub no_ca_certs: bool,
    /// Include the host's time zone data (/usr/share/zoneinfo).
    #[arg(long)]
    pub tzdata: bool,
    /// Copy the program interpreter and all needed shared libraries from this host into the
    /// image, so a dynamically linked (e.g. cgo) binary can start.
    #[arg(long)]
    pub bundle_libs: bool,
    /// Layer compression [default: gzip].
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Compression level: gzip 0-9 [default 6], zstd 1-22 [default 3].
    #[arg(long, value_name = "N")]
    pub compression_level: Option<i32>,
    /// Fetch mode: an image of the static entrypoint that downloads this S3 object at start,
    /// verifies it and runs it (instead of --binary).
    #[arg(long, value_name = "s3://BUCKET/KEY")]
    pub fetch: Option<String>,
    /// Expected SHA-256 of the --fetch object (hex, as `sha256sum` prints).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// The static entrypoint binary for --fetch [default: $IMGBUILD_ENTRYPOINT, next to
    /// imgbuild, or target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint].
    #[arg(long, value_name = "FILE")]
    pub entrypoint_binary: Option<PathBuf>,
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    /// gzip (`application/vnd.oci.image.layer.v1.tar+gzip`), readable everywhere.
    Gzip,
    /// zstd (`application/vnd.oci.image.layer.v1.tar+zstd`), smaller and faster to unpack.
    Zstd,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
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
    /// Push an existing image: `oci:DIR[:TAG]` or `docker-archive:FILE` (instead of building).
    #[arg(long, value_name = "SOURCE", conflicts_with_all = ["binary", "spec", "fetch"])]
    pub from: Option<String>,
    /// A spec file (`images/NAME.toml`) to build from; flags given too override it.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Build options (as for `imgbuild build`)"
    )]
    pub spec: Option<PathBuf>,
    /// How to build the image (as for `imgbuild build`).
    #[command(flatten, next_help_heading = "Build options (as for `imgbuild build`)")]
    pub image: ImageArgs,
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

/// `imgbuild upload`: what a CI job runs instead of `aws s3 cp`.
///
/// Refuses a binary that could not start in the fetch-mode image (which holds only the
/// entrypoint), uploads it with its SHA-256 checksum (S3 verifies it and stores it for the
/// entrypoint to check again), and prints the sha256 on stdout to pin in the task definition
/// as `IMGBUILD_SHA256`. Credentials, region and endpoint come from the standard AWS
/// configuration; `AWS_ENDPOINT_URL` selects an S3-compatible server (path-style addressing).
#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  imgbuild upload ./server s3://my-bucket/server\n  \
                       PIN=$(imgbuild upload -q ./server s3://my-bucket/server)"
)]
pub struct UploadArgs {
    /// The binary to upload.
    pub file: PathBuf,
    /// Destination, `s3://bucket/key`.
    pub destination: String,
    /// Print one JSON object (url, sha256, size, version_id, elapsed_ms) instead of the sha256.
    #[arg(long)]
    pub json: bool,
}
