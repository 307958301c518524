//! Configuration from the environment, as an ECS task definition sets it.
//!
//! Everything is read and validated before any network access, so a typo in a task definition
//! fails in microseconds with the variable's name, not after a download.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::{Exit, Fatal};

/// An S3 object: `s3://bucket/key[?versionId=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// A pinned object version.
    pub version_id: Option<String>,
}

impl std::fmt::Display for S3Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        if let Some(v) = &self.version_id {
            write!(f, "?versionId={v}")?;
        }
        Ok(())
    }
}

impl S3Object {
    /// Parses `s3://bucket/key[?versionId=...]`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or("it must start with s3:// (e.g. s3://my-bucket/server)")?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let (bucket, key) = path
            .split_once('/')
            .ok_or("it has no key after the bucket (e.g. s3://my-bucket/server)")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !bucket_ok {
            return Err(format!(
                "{bucket:?} is not a valid bucket name (3 to 63 letters, digits, '.', '-')"
            ));
        }
        if key.is_empty() || key.ends_with('/') {
            return Err(format!("the key {key:?} does not name an object"));
        }
        let mut version_id = None;
        if let Some(query) = query {
            for pair in query.split('&') {
                match pair.split_once('=') {
                    Some(("versionId", v)) if !v.is_empty() => version_id = Some(v.to_string()),
                    _ => {
                        return Err(format!(
                            "unknown query {pair:?}: only ?versionId=... is understood"
                        ))
                    }
                }
            }
        }
        Ok(Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id,
        })
    }

    /// The last path component of the key: how the program is called in messages and argv[0].
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// How the program is started once verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Replace this process (`execveat`).
    Exec,
    /// Fork, forward signals, reap zombies, exit with the child's status.
    Supervise,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to run (`IMGBUILD_FETCH`).
    pub object: S3Object,
    /// The pinned sha256 (`IMGBUILD_SHA256`).
    pub sha256: Option<[u8; 32]>,
    /// Where to keep the binary (`IMGBUILD_FETCH_TO`); None: in memory.
    pub fetch_to: Option<PathBuf>,
    /// Exec or supervise (`IMGBUILD_EXEC`, else supervise when PID 1).
    pub run_mode: RunMode,
    /// Path-style S3 addressing (`IMGBUILD_S3_PATH_STYLE`, else when an endpoint URL is set).
    pub path_style: bool,
    /// Retries per byte range after the first attempt (`IMGBUILD_RETRIES`, default 5).
    pub retries: u32,
    /// Parallel ranged GETs for large objects (`IMGBUILD_PARALLEL`, default 4; 1 disables).
    pub parallel: u32,
}

/// Reads an environment variable as UTF-8; None when unset or empty.
fn var(name: &str) -> Result<Option<String>, Fatal> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|_| {
            Fatal::new(
                Exit::BadConfig,
                format!("{name} is not valid UTF-8: set it to plain text"),
            )
        }),
    }
}

fn flag(name: &str) -> Result<Option<bool>, Fatal> {
    match var(name)?.as_deref() {
        None => Ok(None),
        Some("1" | "true" | "yes") => Ok(Some(true)),
        Some("0" | "false" | "no") => Ok(Some(false)),
        Some(other) => Err(Fatal::new(
            Exit::BadConfig,
            format!("{name}={other:?} is not a boolean: use 1 or 0"),
        )),
    }
}

fn number(name: &str, default: u32, range: std::ops::RangeInclusive<u32>) -> Result<u32, Fatal> {
    match var(name)? {
        None => Ok(default),
        Some(v) => v.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            Fatal::new(
                Exit::BadConfig,
                format!(
                    "{name}={v:?} is not a number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        }),
    }
}

/// Parses a sha256 in hex (64 digits, either case).
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Config {
    /// Reads and validates the `IMGBUILD_*` variables.
    pub fn from_env() -> Result<Self, Fatal> {
        let url = var("IMGBUILD_FETCH")?.ok_or_else(|| {
            Fatal::new(
                Exit::NoFetch,
                "IMGBUILD_FETCH is not set: set it to the server's S3 URL, e.g. \
                 IMGBUILD_FETCH=s3://my-bucket/server (and IMGBUILD_SHA256 to its sha256)",
            )
        })?;
        let object = S3Object::parse(&url).map_err(|why| {
            Fatal::new(
                Exit::BadConfig,
                format!("IMGBUILD_FETCH={url:?} is not an S3 URL: {why}"),
            )
        })?;
        let sha256 = match var("IMGBUILD_SHA256")? {
            None => None,
            Some(hex) => Some(parse_sha256(&hex).ok_or_else(|| {
                Fatal::new(
                    Exit::BadConfig,
                    format!(
                        "IMGBUILD_SHA256={hex:?} is not a sha256: give the 64 hex digits \
                         `imgbuild upload` printed"
                    ),
                )
            })?),
        };
        let fetch_to = var("IMGBUILD_FETCH_TO")?.map(PathBuf::from);
        if let Some(p) = &fetch_to {
            if !p.is_absolute() || p.file_name().is_none() {
                return Err(Fatal::new(
                    Exit::BadConfig,
                    format!(
                        "IMGBUILD_FETCH_TO={:?} must be an absolute file path, e.g. /tmp/server",
                        p.display()
                    ),
                ));
            }
        }
        let run_mode = match flag("IMGBUILD_EXEC")? {
            Some(true) => RunMode::Exec,
            Some(false) => RunMode::Supervise,
            None if std::process::id() == 1 => RunMode::Supervise,
            None => RunMode::Exec,
        };
        let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        let path_style = flag("IMGBUILD_S3_PATH_STYLE")?.unwrap_or(endpoint_set);
        Ok(Self {
            object,
            sha256,
            fetch_to,
            run_mode,
            path_style,
            retries: number("IMGBUILD_RETRIES", 5, 0..=100)?,
            parallel: number("IMGBUILD_PARALLEL", 4, 1..=64)?,
        })
    }
}

/// The environment handed to the server: ours minus the `IMGBUILD_*` variables.
pub fn child_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| !k.as_encoded_bytes().starts_with(b"IMGBUILD_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let o = S3Object::parse("s3://my-bucket/dir/server?versionId=abc.1").unwrap();
        assert_eq!(o.bucket, "my-bucket");
        assert_eq!(o.key, "dir/server");
        assert_eq!(o.version_id.as_deref(), Some("abc.1"));
        assert_eq!(o.name(), "server");
        assert_eq!(o.to_string(), "s3://my-bucket/dir/server?versionId=abc.1");
        assert_eq!(S3Object::parse("s3://b12/k").unwrap().version_id, None);
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in [
            "https://b/k",
            "s3://bucket",
            "s3://bucket/",
            "s3://bucket/dir/",
            "s3://b/k",
            "s3://has space/k",
            "s3://bucket/k?version=1",
            "s3://bucket/k?versionId=",
        ] {
            assert!(S3Object::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_sha256() {
        let hex = "00ff".repeat(16);
        let b = parse_sha256(&hex).unwrap();
        assert_eq!(b[0], 0);
        assert_eq!(b[1], 255);
        assert!(parse_sha256(&hex.to_uppercase()).is_some());
        assert!(parse_sha256("abc").is_none());
        assert!(parse_sha256(&"zz".repeat(32)).is_none());
    }
}
