//! Declarative image specs (`images/NAME.toml`): what `imgbuild build SPEC` reads.
//!
//! A spec holds the same settings as `build`'s flags; flags given next to a spec override it.
//! Relative paths in a spec resolve against the spec file's directory, so a spec builds the same
//! image from any working directory. Every key is optional except that something must name a
//! binary (`binary`, or `fetch` for the fetch-mode entrypoint):
//!
//! ```toml
//! name = "server"                      # binary goes to /app/server (default: binary's file name)
//! tag = "server:1.2"                   # image reference (default: NAME:latest)
//! output = "oci:../target/images/server"  # oci:DIR | docker-archive:FILE | docker
//! binary = ["../bin/server-amd64", "../bin/server-arm64"]  # one per platform -> an index
//! platform = ["linux/amd64", "linux/arm64"]  # optional: refuse binaries for anything else
//! args = ["--listen", ":8080"]         # Cmd: arguments after the entrypoint
//! env = { GIN_MODE = "release" }       # added to PATH and SSL_CERT_FILE
//! workdir = "/app"                     # default /app
//! user = "65532:65532"                 # default nonroot; "root" for 0:0
//! ports = ["8080", "9090/udp"]         # ExposedPorts
//! labels = { team = "web" }
//! annotations = { "org.opencontainers.image.source" = "https://example.com/repo" }
//! files = ["static:/app/static", "config.yaml:/etc/server/config.yaml"]  # SRC:DEST, app layer
//! ca_certs = true                      # host /etc/ssl/certs/ca-certificates.crt (default true)
//! tzdata = false                       # host /usr/share/zoneinfo (default false)
//! bundle_libs = false                  # copy interpreter + libraries of a dynamic binary
//! compression = "gzip"                 # or "zstd"
//! compression_level = 6                # gzip 0-9 (default 6), zstd 1-22 (default 3)
//!
//! [fetch]                              # instead of `binary`: the fetch-mode image
//! url = "s3://bucket/server"
//! sha256 = "<64 hex digits>"
//! entrypoint_binary = "../target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::elf::Platform;
use crate::oci::build::{Binary, ExtraFile, Plan, APP_DIR, CA_CERTS};
use crate::oci::image::Settings;
use crate::oci::layer::Compression;
use crate::oci::Output;

/// Where `scripts/build-entrypoint.sh` puts the static entrypoint, relative to the workspace.
pub const ENTRYPOINT_TARGET: &str =
    "target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint";

/// Errors reading a spec or turning it into a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec file could not be read.
    #[error("cannot read spec {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The spec file is not valid TOML for a spec.
    #[error("invalid spec {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: toml::de::Error,
    },
    /// A setting is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The fetch-mode entrypoint binary was not found.
    #[error("the fetch-mode entrypoint binary was not found (looked at {looked}): build it with `bash scripts/build-entrypoint.sh`, or pass --entrypoint-binary FILE or IMGBUILD_ENTRYPOINT=FILE")]
    NoEntrypoint {
        /// The paths tried.
        looked: String,
    },
    /// Analysing a binary failed.
    #[error(transparent)]
    Oci(#[from] crate::oci::Error),
}

/// Layer compression names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionKind {
    /// gzip (default).
    Gzip,
    /// zstd.
    Zstd,
}

/// The fetch-mode settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    /// `s3://bucket/key` of the server binary.
    pub url: Option<String>,
    /// Its expected SHA-256 (hex).
    pub sha256: Option<String>,
    /// The static entrypoint binary to use.
    pub entrypoint_binary: Option<PathBuf>,
}

/// A build spec: from a TOML file, from flags, or both overlaid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The program's name in the image.
    pub name: Option<String>,
    /// Image reference.
    pub tag: Option<String>,
    /// Output destination.
    pub output: Option<String>,
    /// Binaries, one per platform.
    #[serde(default)]
    pub binary: Vec<PathBuf>,
    /// Requested platforms, `os/arch[/variant]`.
    #[serde(default)]
    pub platform: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// Exposed ports.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Config labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Extra files, `SRC:DEST`.
    #[serde(default)]
    pub files: Vec<String>,
    /// Include the host CA bundle.
    pub ca_certs: Option<bool>,
    /// Include the host zoneinfo.
    pub tzdata: Option<bool>,
    /// Bundle the interpreter and libraries.
    pub bundle_libs: Option<bool>,
    /// Compression.
    pub compression: Option<CompressionKind>,
    /// Compression level.
    pub compression_level: Option<i32>,
    /// Fetch mode.
    pub fetch: Option<Fetch>,
    /// The directory relative paths resolve against (the spec file's; not a TOML key).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl Spec {
    /// Reads a spec file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut spec: Spec = toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        spec.base_dir = Some(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
        Ok(spec)
    }

    /// This spec with every setting `flags` has replacing its own (maps are merged, flags win).
    pub fn overlay(mut self, flags: Spec) -> Spec {
        fn pick<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        let base = self.base_dir.clone();
        // Paths from the spec are made absolute now, before flags (relative to cwd) join them.
        self.binary = self
            .binary
            .into_iter()
            .map(|p| resolve_in(&base, p))
            .collect();
        self.files = self
            .files
            .into_iter()
            .map(|f| match f.rsplit_once(':') {
                Some((src, dest)) => {
                    format!("{}:{dest}", resolve_in(&base, PathBuf::from(src)).display())
                }
                None => f,
            })
            .collect();
        if let Some(f) = &mut self.fetch {
            f.entrypoint_binary = f.entrypoint_binary.take().map(|p| resolve_in(&base, p));
        }
        if let Some(out) = self.output.take() {
            self.output = Some(match out.split_once(':') {
                Some((kind, p)) if kind == "oci" || kind == "docker-archive" => {
                    format!("{kind}:{}", resolve_in(&base, PathBuf::from(p)).display())
                }
                _ => out,
            });
        }
        self.base_dir = None;
        pick(&mut self.name, flags.name);
        pick(&mut self.tag, flags.tag);
        pick(&mut self.output, flags.output);
        if !flags.binary.is_empty() {
            self.binary = flags.binary;
        }
        if !flags.platform.is_empty() {
            self.platform = flags.platform;
        }
        if !flags.args.is_empty() {
            self.args = flags.args;
        }
        self.env.extend(flags.env);
        pick(&mut self.workdir, flags.workdir);
        pick(&mut self.user, flags.user);
        self.ports.extend(flags.ports);
        self.labels.extend(flags.labels);
        self.annotations.extend(flags.annotations);
        self.files.extend(flags.files);
        pick(&mut self.ca_certs, flags.ca_certs);
        pick(&mut self.tzdata, flags.tzdata);
        pick(&mut self.bundle_libs, flags.bundle_libs);
        pick(&mut self.compression, flags.compression);
        pick(&mut self.compression_level, flags.compression_level);
        if let Some(ff) = flags.fetch {
            let f = self.fetch.get_or_insert_with(Fetch::default);
            pick(&mut f.url, ff.url);
            pick(&mut f.sha256, ff.sha256);
            pick(&mut f.entrypoint_binary, ff.entrypoint_binary);
        }
        self
    }

    /// The output destination, if one is set.
    pub fn output(&self) -> Result<Option<Output>, Error> {
        self.output
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(Error::from)
    }

    /// Analyses the binaries and makes the build plan.
    pub fn into_plan(self) -> Result<Plan, Error> {
        let fetch = self.fetch.clone().filter(|f| f.url.is_some());
        let mut env: Vec<String> = Vec::new();
        let binaries: Vec<PathBuf> = match &fetch {
            Some(f) => {
                if !self.binary.is_empty() {
                    return Err(Error::Invalid(
                        "--fetch builds an image around the fetch-mode entrypoint: drop --binary (the server binary is fetched from S3 at start)".into(),
                    ));
                }
                if self.ca_certs == Some(false) {
                    return Err(Error::Invalid(
                        "--fetch needs CA certificates to reach S3 over TLS: drop --no-ca-certs"
                            .into(),
                    ));
                }
                let url = f.url.clone().unwrap_or_default();
                if !url.starts_with("s3://")
                    || url[5..]
                        .split_once('/')
                        .is_none_or(|(b, k)| b.is_empty() || k.is_empty())
                {
                    return Err(Error::Invalid(format!(
                        "--fetch {url:?}: expected s3://BUCKET/KEY"
                    )));
                }
                env.push(format!("IMGBUILD_FETCH={url}"));
                if let Some(sum) = &f.sha256 {
                    let sum = sum.trim().to_ascii_lowercase();
                    if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(Error::Invalid(format!(
                            "--sha256 {sum:?}: expected 64 hex digits (as `sha256sum` prints)"
                        )));
                    }
                    env.push(format!("IMGBUILD_SHA256={sum}"));
                }
                vec![find_entrypoint(f.entrypoint_binary.as_deref())?]
            }
            None => {
                if self.fetch.as_ref().is_some_and(|f| f.sha256.is_some()) {
                    return Err(Error::Invalid(
                        "--sha256 goes with --fetch s3://BUCKET/KEY".into(),
                    ));
                }
                self.binary.clone()
            }
        };
        if binaries.is_empty() {
            return Err(Error::Invalid(
                "nothing to build: pass --binary FILE, --fetch s3://BUCKET/KEY, or a spec file"
                    .into(),
            ));
        }
        let name = match &self.name {
            Some(n) => n.clone(),
            None if fetch.is_some() => "imgbuild-entrypoint".to_string(),
            None => binaries[0]
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    Error::Invalid("cannot tell the program's name: pass --name".into())
                })?,
        };
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::Invalid(format!(
                "--name {name:?}: expected a plain file name"
            )));
        }
        let binaries = binaries
            .iter()
            .map(|p| Binary::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut plan = Plan::new(name, binaries);
        plan.platforms = self
            .platform
            .iter()
            .flat_map(|p| p.split(','))
            .map(parse_platform)
            .collect::<Result<_, _>>()?;
        plan.files = self
            .files
            .iter()
            .map(|f| parse_add(f))
            .collect::<Result<_, _>>()?;
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') {
                return Err(Error::Invalid(format!("--env {k:?}: expected KEY=VALUE")));
            }
            env.push(format!("{k}={v}"));
        }
        plan.settings = Settings {
            entrypoint: Vec::new(),
            cmd: self.args.clone(),
            env,
            workdir: Some(self.workdir.clone().unwrap_or_else(|| APP_DIR.to_string())),
            user: match self.user.as_deref() {
                None => None,
                Some("root") => Some("0:0".to_string()),
                Some("nonroot") => Some("65532:65532".to_string()),
                Some(u) => Some(u.to_string()),
            },
            ports: self
                .ports
                .iter()
                .map(|p| parse_port(p))
                .collect::<Result<_, _>>()?,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
        };
        plan.settings.ports.sort();
        plan.settings.ports.dedup();
        plan.ca_certs = self
            .ca_certs
            .unwrap_or(true)
            .then(|| PathBuf::from(CA_CERTS));
        plan.tzdata = self
            .tzdata
            .unwrap_or(false)
            .then(|| PathBuf::from("/usr/share/zoneinfo"));
        plan.bundle_libs = self.bundle_libs.unwrap_or(false);
        plan.compression = match (
            self.compression.unwrap_or(CompressionKind::Gzip),
            self.compression_level,
        ) {
            (CompressionKind::Gzip, None) => Compression::Gzip(6),
            (CompressionKind::Gzip, Some(l)) if (0..=9).contains(&l) => Compression::Gzip(l as u32),
            (CompressionKind::Zstd, None) => Compression::Zstd(3),
            (CompressionKind::Zstd, Some(l)) if (1..=22).contains(&l) => Compression::Zstd(l),
            (kind, Some(l)) => {
                return Err(Error::Invalid(format!(
                    "--compression-level {l} is out of range for {}: gzip takes 0-9, zstd 1-22",
                    format!("{kind:?}").to_lowercase()
                )))
            }
        };
        plan.reference = self.tag.clone();
        plan.source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(s) if !s.trim().is_empty() => Some(s.trim().parse().map_err(|_| {
                Error::Invalid(format!(
                    "SOURCE_DATE_EPOCH={s:?}: expected whole seconds since 1970-01-01 UTC"
                ))
            })?),
            _ => None,
        };
        Ok(plan)
    }
}

fn resolve_in(base: &Option<PathBuf>, p: PathBuf) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

/// `os/arch[/variant]`, e.g. `linux/arm64`, `linux/arm/v7`.
pub fn parse_platform(s: &str) -> Result<Platform, Error> {
    let parts: Vec<&str> = s.trim().split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        }),
        _ => Err(Error::Invalid(format!(
            "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
        ))),
    }
}

/// `8080` or `8080/tcp` (tcp, udp, sctp) to the config's `8080/tcp` form.
pub fn parse_port(s: &str) -> Result<String, Error> {
    let (port, proto) = s.trim().split_once('/').unwrap_or((s.trim(), "tcp"));
    let ok = port.parse::<u16>().is_ok_and(|p| p > 0) && matches!(proto, "tcp" | "udp" | "sctp");
    if !ok {
        return Err(Error::Invalid(format!(
            "--port {s:?}: expected PORT[/tcp|udp|sctp], e.g. 8080"
        )));
    }
    Ok(format!("{port}/{proto}"))
}

/// `SRC:DEST`: a host file or directory and its image path (relative: under `/app`).
pub fn parse_add(s: &str) -> Result<ExtraFile, Error> {
    let (src, dest) = s.rsplit_once(':').ok_or_else(|| {
        Error::Invalid(format!(
            "--add {s:?}: expected SRC:DEST, e.g. static:/app/static"
        ))
    })?;
    if src.is_empty() || dest.is_empty() {
        return Err(Error::Invalid(format!("--add {s:?}: expected SRC:DEST")));
    }
    let host = PathBuf::from(src);
    if !host.exists() {
        return Err(Error::Invalid(format!("--add {s:?}: {src} does not exist")));
    }
    let image_path = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{APP_DIR}/{dest}")
    };
    Ok(ExtraFile { host, image_path })
}

/// Finds the static fetch-mode entrypoint: `explicit`, `IMGBUILD_ENTRYPOINT`, next to the
/// running `imgbuild`, or [`ENTRYPOINT_TARGET`] in the workspace or the current directory.
pub fn find_entrypoint(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::NoEntrypoint {
            looked: p.display().to_string(),
        });
    }
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("IMGBUILD_ENTRYPOINT").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("imgbuild-entrypoint"));
    }
    if let Some(ws) = option_env!("CARGO_MANIFEST_DIR") {
        candidates.push(Path::new(ws).join(ENTRYPOINT_TARGET));
    }
    candidates.push(PathBuf::from(ENTRYPOINT_TARGET));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(Error::NoEntrypoint {
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_in_docs_parses() {
        let doc = include_str!("spec.rs");
        let toml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let spec: Spec = toml::from_str(&toml).unwrap();
        assert_eq!(spec.binary.len(), 2);
        assert_eq!(spec.fetch.unwrap().url.unwrap(), "s3://bucket/server");
    }

    #[test]
    fn flags_override_spec_and_spec_paths_are_relative_to_it() {
        let spec = Spec {
            binary: vec!["bin/server".into()],
            tag: Some("a:1".into()),
            output: Some("oci:out".into()),
            base_dir: Some("/specs".into()),
            ..Spec::default()
        };
        let merged = spec.clone().overlay(Spec {
            tag: Some("b:2".into()),
            ..Spec::default()
        });
        assert_eq!(merged.binary, [PathBuf::from("/specs/bin/server")]);
        assert_eq!(merged.tag.as_deref(), Some("b:2"));
        assert_eq!(merged.output.as_deref(), Some("oci:/specs/out"));
    }

    #[test]
    fn ports_platforms_and_adds_are_validated() {
        assert_eq!(parse_port("8080").unwrap(), "8080/tcp");
        assert_eq!(parse_port("53/udp").unwrap(), "53/udp");
        assert!(parse_port("http").is_err());
        assert!(parse_port("0").is_err());
        let p = parse_platform("linux/arm/v7").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert!(parse_platform("amd64").is_err());
        assert!(parse_add("nope").is_err());
        let a = parse_add("/etc/hostname:conf/hostname");
        if let Ok(a) = a {
            assert_eq!(a.image_path, "/app/conf/hostname");
        }
    }
}
