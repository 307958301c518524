//! S3 upload for fetch mode (`imgbuild upload`): a startable binary, sent with its SHA-256.
//!
//! The sha256 is computed locally first and sent as `x-amz-checksum-sha256`, so S3 rejects the
//! upload (BadDigest) unless it received exactly those bytes, and stores the checksum with the
//! object; the entrypoint asks for it (ChecksumMode) and verifies it again after download.
//! Objects are sent with one PUT (S3's limit: 5 GiB), so the stored checksum is a full-object
//! one, not a composite of parts.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::Client;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The largest object one PUT can create.
pub const MAX_SIZE: u64 = 5 << 30;

/// Errors of the upload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The destination is not `s3://bucket/key`.
    #[error("{url:?} is not an S3 object URL: {reason} (e.g. s3://my-bucket/server)")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than one PUT allows.
    #[error("{path} is {size} bytes; one upload takes at most 5 GiB")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// No credentials, or S3 rejected them.
    #[error("no usable AWS credentials: {detail}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role")]
    Credentials {
        /// The SDK's explanation.
        detail: String,
    },
    /// S3 denied the PUT.
    #[error("access denied writing s3://{bucket}/{key}: {detail}; allow s3:PutObject on arn:aws:s3:::{bucket}/{key} for this principal in the bucket policy (key Deny statements on aws:PrincipalArn)")]
    AccessDenied {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// S3's message.
        detail: String,
    },
    /// The bucket does not exist.
    #[error("no such bucket: {bucket}; create it first (aws s3 mb s3://{bucket})")]
    NoSuchBucket {
        /// Bucket.
        bucket: String,
    },
    /// Any other failure of the PUT.
    #[error("uploading to s3://{bucket}/{key} failed: {detail}")]
    Upload {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What happened.
        detail: String,
    },
}

/// An S3 object location, `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl S3Url {
    /// Parses `s3://bucket/key`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadUrl {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or(bad("it must start with s3://"))?;
        let (bucket, key) = rest.split_once('/').ok_or(bad("it has no key"))?;
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad("the bucket name is invalid"));
        }
        if key.is_empty() || key.ends_with('/') || key.contains('?') {
            return Err(bad("the key does not name an object"));
        }
        Ok(Self {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// Where.
    pub url: S3Url,
    /// sha256 of the content, lowercase hex: the pin for `IMGBUILD_SHA256`.
    pub sha256: String,
    /// Bytes sent.
    pub size: u64,
    /// The new version, in a versioned bucket.
    pub version_id: Option<String>,
    /// Wall time of hashing and the PUT.
    pub elapsed: Duration,
}

/// An S3 client from the standard AWS configuration (profile, env, SSO, role, IMDS; region;
/// `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`), with path-style addressing when an endpoint URL
/// is set (S3-compatible servers) or `IMGBUILD_S3_PATH_STYLE=1`.
pub async fn client_from_env() -> Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    let path_style = match std::env::var("IMGBUILD_S3_PATH_STYLE").as_deref() {
        Ok("1" | "true") => true,
        Ok("0" | "false") => false,
        _ => endpoint_set,
    };
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style);
    if sdk.region().is_none() {
        conf = conf.region(aws_sdk_s3::config::Region::from_static("us-east-1"));
    }
    Client::from_conf(conf.build())
}

/// sha256 and size of the file at `path`, streamed.
pub fn sha256_file(path: &Path) -> Result<([u8; 32], u64), Error> {
    use std::io::Read;
    let read = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((h.finalize().into(), size))
}

/// Uploads the file at `path` to `dest` with its SHA-256 checksum (S3 verifies it).
pub async fn upload(client: &Client, path: &Path, dest: &S3Url) -> Result<Uploaded, Error> {
    let start = Instant::now();
    let (sha, size) = sha256_file(path)?;
    if size > MAX_SIZE {
        return Err(Error::TooLarge {
            path: path.display().to_string(),
            size,
        });
    }
    let body = ByteStream::from_path(path).await.map_err(|e| Error::Read {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    let out = client
        .put_object()
        .bucket(&dest.bucket)
        .key(&dest.key)
        .content_length(size as i64)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha))
        .content_type("application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| classify(e, dest))?;
    Ok(Uploaded {
        url: dest.clone(),
        sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        size,
        version_id: out.version_id().map(str::to_string),
        elapsed: start.elapsed(),
    })
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s = format!("{s}: {m}");
        }
        cur = e.source();
    }
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

fn classify<E, R>(err: SdkError<E, R>, dest: &S3Url) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (bucket, key) = (dest.bucket.clone(), dest.key.clone());
    if let SdkError::ServiceError(se) = &err {
        let code = se.err().code().unwrap_or("");
        let detail = format!("{code}: {}", se.err().message().unwrap_or(""));
        return match code {
            "NoSuchBucket" => Error::NoSuchBucket { bucket },
            "AccessDenied" | "AllAccessDisabled" => Error::AccessDenied {
                bucket,
                key,
                detail,
            },
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
                Error::Credentials { detail }
            }
            _ => Error::Upload {
                bucket,
                key,
                detail,
            },
        };
    }
    let detail = chain(&err);
    if detail.contains("credential") {
        Error::Credentials { detail }
    } else {
        Error::Upload {
            bucket,
            key,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let u = S3Url::parse("s3://my-bucket/dir/server").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("my-bucket", "dir/server")
        );
        assert_eq!(u.to_string(), "s3://my-bucket/dir/server");
        for bad in [
            "my-bucket/server",
            "s3://my-bucket",
            "s3://my-bucket/",
            "s3://b/k",
            "s3://bucket/k?x=1",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }
}
