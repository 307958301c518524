//! The download: S3 GetObject streamed into a file (a sealed memfd or a temp file), sha256
//! computed on the way, retried with backoff and resumed from the last good byte.
//!
//! Invariants: memory stays bounded (chunks go straight to the file at their offset); the
//! object cannot change underneath a resumed or parallel download (every ranged GET carries
//! `If-Match` with the first response's ETag, and the version id when there is one); the
//! result is only reported as complete when every byte of the announced length arrived.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use sha2::{Digest, Sha256};

use crate::config::{Config, S3Object};
use crate::{log, Exit, Fatal};

/// Objects at least this large are fetched with parallel ranged GETs.
const PARALLEL_MIN: u64 = 16 << 20;
/// The smallest range worth its own request.
const MIN_PART: u64 = 4 << 20;
/// A body that sends nothing for this long is treated as a cut connection.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished download knows.
#[derive(Debug)]
pub struct Fetched {
    /// Bytes written (the object's length).
    pub len: u64,
    /// sha256 of those bytes.
    pub sha256: [u8; 32],
    /// The full-object `x-amz-checksum-sha256`, when S3 returned one (decoded).
    pub s3_sha256: Option<[u8; 32]>,
    /// Ranged requests used (1: a single stream).
    pub parts: usize,
    /// Retries needed.
    pub retries: u32,
    /// Wall time of the download.
    pub elapsed: Duration,
}

/// An S3 client configured from the standard AWS chain, with rustls on ring.
pub struct S3 {
    sdk: aws_config::SdkConfig,
    client: Client,
    region: Option<Region>,
    path_style: bool,
}

impl S3 {
    /// Loads the AWS configuration (credentials chain, region, endpoint URLs) and checks that
    /// credentials can be had, so that their absence is reported as such.
    pub async fn connect(cfg: &Config) -> Result<Self, Fatal> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            )
            .load()
            .await;
        let provider = sdk.credentials_provider().ok_or_else(no_credentials)?;
        use aws_sdk_s3::config::ProvideCredentials;
        if let Err(e) = provider.provide_credentials().await {
            return Err(Fatal::new(
                Exit::NoCredentials,
                format!(
                    "no AWS credentials: {}. Give the ECS task a task role (or set \
                     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE, a \
                     profile, or run where the instance metadata service answers)",
                    error_chain(&e)
                ),
            ));
        }
        let region = sdk.region().cloned();
        let mut s3 = Self {
            client: Client::new(&sdk),
            sdk,
            region,
            path_style: cfg.path_style,
        };
        s3.client = s3.build_client();
        Ok(s3)
    }

    fn build_client(&self) -> Client {
        let region = self
            .region
            .clone()
            .unwrap_or_else(|| Region::from_static("us-east-1"));
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(region)
            .force_path_style(self.path_style)
            .retry_config(RetryConfig::disabled())
            .build();
        Client::from_conf(conf)
    }

    /// Who we are, for an access-denied message (STS GetCallerIdentity); None when unknown.
    async fn principal(&self) -> Option<String> {
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let call = sts.get_caller_identity().send();
        let out = tokio::time::timeout(Duration::from_secs(3), call)
            .await
            .ok()?
            .ok()?;
        out.arn().map(str::to_string)
    }
}

fn no_credentials() -> Fatal {
    Fatal::new(
        Exit::NoCredentials,
        "no AWS credentials provider is configured: give the ECS task a task role",
    )
}

/// The source of each error in `err`'s chain, joined with ": ", on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What went wrong with one request: final, or worth another attempt.
enum Failure {
    Fatal(Fatal),
    Retry(String),
    /// The bucket lives in another region; retry there.
    Region(String),
}

/// Classifies an SDK error of GetObject for `obj`.
async fn classify<E>(
    s3: &S3,
    obj: &S3Object,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let raw = se.raw();
            let status = raw.status().as_u16();
            let code = se.err().code().unwrap_or("");
            let msg = se.err().message().unwrap_or("").to_string();
            if let Some(r) = raw.headers().get("x-amz-bucket-region") {
                let here = s3
                    .region
                    .as_ref()
                    .map(|r| r.as_ref())
                    .unwrap_or("us-east-1");
                if matches!(status, 301 | 307 | 400) && r != here {
                    return Failure::Region(r.to_string());
                }
            }
            let detail = if msg.is_empty() {
                format!("HTTP {status} {code}")
            } else {
                format!("HTTP {status} {code}: {msg}")
            };
            match (status, code) {
                (_, "NoSuchKey") => Failure::Fatal(Fatal::new(
                    Exit::NotFound,
                    format!(
                        "no such key: {obj} does not exist ({detail}); upload it with \
                         `imgbuild upload FILE s3://{}/{}`",
                        obj.bucket, obj.key
                    ),
                )),
                (_, "NoSuchBucket") => Failure::Fatal(Fatal::new(
                    Exit::NotFound,
                    format!("no such bucket: {} does not exist ({detail})", obj.bucket),
                )),
                (_, "NoSuchVersion") | (400, "InvalidArgument") if obj.version_id.is_some() => {
                    Failure::Fatal(Fatal::new(
                        Exit::NotFound,
                        format!("no such version: {obj} ({detail})"),
                    ))
                }
                (404, _) => Failure::Fatal(Fatal::new(
                    Exit::NotFound,
                    format!("not found: {obj} ({detail})"),
                )),
                (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken") => {
                    Failure::Fatal(Fatal::new(
                        Exit::NoCredentials,
                        format!(
                            "S3 rejected the credentials for {obj} ({detail}): check the \
                             task role or the AWS_* credentials given to the container"
                        ),
                    ))
                }
                (403, _) => {
                    let who = match s3.principal().await {
                        Some(arn) => arn,
                        None => "this task's principal".to_string(),
                    };
                    Failure::Fatal(Fatal::new(
                        Exit::AccessDenied,
                        format!(
                            "access denied: {who} may not read {obj} in bucket {} ({detail}). \
                             Allow s3:GetObject on arn:aws:s3:::{}/{} for it in the bucket \
                             policy and the role's policy; key any Deny on aws:PrincipalArn \
                             (aws:username does not exist for roles). S3 also answers 403 for \
                             a missing key when s3:ListBucket is not allowed",
                            obj.bucket, obj.bucket, obj.key
                        ),
                    ))
                }
                (412, _) => Failure::Fatal(Fatal::new(
                    Exit::Download,
                    format!("{obj} changed during the download ({detail}); restart to fetch the new one"),
                )),
                (s, _) if s >= 500 || s == 429 || code == "SlowDown" => Failure::Retry(detail),
                _ => Failure::Fatal(Fatal::new(
                    Exit::Download,
                    format!("cannot fetch {obj}: {detail}"),
                )),
            }
        }
        SdkError::ConstructionFailure(_) => {
            let m = error_chain(&err);
            let exit = if m.contains("credential") {
                Exit::NoCredentials
            } else {
                Exit::Download
            };
            Failure::Fatal(Fatal::new(exit, format!("cannot request {obj}: {m}")))
        }
        _ => Failure::Retry(error_chain(&err)),
    }
}

/// The identity of the object being fetched, from the first response.
#[derive(Clone)]
struct Target {
    obj: S3Object,
    etag: Option<String>,
    version_id: Option<String>,
}

async fn backoff(attempt: u32) {
    let base = 100u64 << attempt.min(6);
    // Jitter from the clock: enough to spread parallel parts, no RNG dependency.
    let jitter = u64::from(Instant::now().elapsed().subsec_nanos() % 100);
    tokio::time::sleep(Duration::from_millis(base.min(5000) + jitter)).await;
}

/// Streams `obj` into `file` (which must be empty and writable), verifying the length.
pub async fn fetch(s3: &mut S3, cfg: &Config, file: &File) -> Result<Fetched, Fatal> {
    let start = Instant::now();
    let obj = &cfg.object;
    let mut attempt = 0u32;
    let mut redirected = false;
    // The first request: the whole object, with its checksum.
    let first = loop {
        let mut req = s3
            .client
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .checksum_mode(ChecksumMode::Enabled);
        if let Some(v) = &obj.version_id {
            req = req.version_id(v);
        }
        match req.send().await {
            Ok(out) => break out,
            Err(e) => match classify(s3, obj, e).await {
                Failure::Fatal(f) => return Err(f),
                Failure::Region(r) if !redirected => {
                    log(&format!("bucket {} is in {r}; asking there", obj.bucket));
                    redirected = true;
                    s3.region = Some(Region::new(r));
                    s3.client = s3.build_client();
                }
                Failure::Region(r) => {
                    return Err(Fatal::new(
                        Exit::Download,
                        format!("S3 keeps redirecting {obj} (to {r}); set AWS_REGION"),
                    ))
                }
                Failure::Retry(why) => {
                    if attempt >= cfg.retries {
                        return Err(gave_up(obj, attempt, &why));
                    }
                    attempt += 1;
                    log(&format!("{why}; retrying ({attempt}/{})", cfg.retries));
                    backoff(attempt).await;
                }
            },
        }
    };
    let len = u64::try_from(first.content_length().unwrap_or(-1)).map_err(|_| {
        Fatal::new(
            Exit::Download,
            format!("S3 sent {obj} without a Content-Length; cannot verify its length"),
        )
    })?;
    let s3_sha256 = match (first.checksum_sha256(), first.checksum_type()) {
        (Some(b64), t) if !b64.contains('-') && t != Some(&ChecksumType::Composite) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
        }
        _ => None,
    };
    let target = Target {
        obj: obj.clone(),
        etag: first.e_tag().map(str::to_string),
        version_id: first
            .version_id()
            .map(str::to_string)
            .or(obj.version_id.clone()),
    };
    let parts = if len >= PARALLEL_MIN && cfg.parallel > 1 {
        (len / MIN_PART).clamp(1, u64::from(cfg.parallel))
    } else {
        1
    };
    file.set_len(len).map_err(|e| write_error(&e))?;
    let file = Arc::new(file.try_clone().map_err(|e| write_error(&e))?);
    let s3c = Arc::new(s3.client.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let part_len = len.div_ceil(parts);
    let mut body0 = Some(first.body);
    for i in 0..parts {
        let (from, to) = (i * part_len, ((i + 1) * part_len).min(len));
        let hash = parts == 1;
        let ctx = (s3c.clone(), target.clone(), file.clone(), cfg.retries);
        let body = body0.take();
        tasks.spawn(async move { fetch_range(ctx, body, from, to, hash).await });
    }
    let mut hasher = None;
    let mut retries = attempt;
    while let Some(done) = tasks.join_next().await {
        let (h, r) =
            done.map_err(|e| Fatal::new(Exit::Download, format!("download task failed: {e}")))??;
        retries += r;
        if h.is_some() {
            hasher = h;
        }
    }
    let sha256 = match hasher {
        Some(h) => h.finalize().into(),
        None => hash_file(&file, len)?,
    };
    Ok(Fetched {
        len,
        sha256,
        s3_sha256,
        parts: parts as usize,
        retries,
        elapsed: start.elapsed(),
    })
}

fn gave_up(obj: &S3Object, attempts: u32, why: &str) -> Fatal {
    Fatal::new(
        Exit::Download,
        format!(
            "cannot fetch {obj}: gave up after {} attempts, last: {why}",
            attempts + 1
        ),
    )
}

fn write_error(e: &std::io::Error) -> Fatal {
    Fatal::new(
        Exit::Io,
        format!("cannot write the download: {e} (is there room in IMGBUILD_FETCH_TO's filesystem, or memory for it?)"),
    )
}

/// Hashes the first `len` bytes of `file`.
pub fn hash_file(file: &File, len: u64) -> Result<[u8; 32], Fatal> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        let n = file
            .read_at(&mut buf, pos)
            .map_err(|e| Fatal::new(Exit::Io, format!("cannot read back the download: {e}")))?;
        if n == 0 {
            return Err(Fatal::new(
                Exit::Io,
                "the download shrank while being hashed",
            ));
        }
        let n = n.min((len - pos) as usize);
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(h.finalize().into())
}

type RangeCtx = (Arc<Client>, Target, Arc<File>, u32);

/// Fetches bytes `from..to` into the file, resuming from the last good byte on errors.
/// Returns the hasher (when `hash`) and the retries used.
async fn fetch_range(
    (client, target, file, max_retries): RangeCtx,
    mut body: Option<ByteStream>,
    from: u64,
    to: u64,
    hash: bool,
) -> Result<(Option<Sha256>, u32), Fatal> {
    let mut hasher = hash.then(Sha256::new);
    let mut pos = from;
    let mut retries = 0u32;
    let obj = &target.obj;
    while pos < to {
        let why = match body.take() {
            Some(b) => read_body(b, &file, &mut pos, to, hasher.as_mut()).await?,
            None => {
                let mut req = client
                    .get_object()
                    .bucket(&obj.bucket)
                    .key(&obj.key)
                    .range(format!("bytes={pos}-{}", to - 1));
                if let Some(e) = &target.etag {
                    req = req.if_match(e);
                }
                if let Some(v) = &target.version_id {
                    req = req.version_id(v);
                }
                match req.send().await {
                    Ok(out) => {
                        let want = format!("bytes {pos}-{}/", to - 1);
                        match out.content_range() {
                            Some(cr) if cr.starts_with(&want) => {
                                read_body(out.body, &file, &mut pos, to, hasher.as_mut()).await?
                            }
                            other => Some(format!(
                                "S3 answered the range request for bytes {pos}-{} with {other:?}",
                                to - 1
                            )),
                        }
                    }
                    Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 412 => {
                        return Err(Fatal::new(
                            Exit::Download,
                            format!("{obj} changed during the download (its ETag no longer matches); restart to fetch the new one"),
                        ))
                    }
                    Err(SdkError::ServiceError(se))
                        if se.raw().status().as_u16() < 500 && se.raw().status().as_u16() != 429 =>
                    {
                        return Err(Fatal::new(
                            Exit::Download,
                            format!(
                                "cannot fetch {obj} from byte {pos}: HTTP {} {}",
                                se.raw().status().as_u16(),
                                se.err().code().unwrap_or("")
                            ),
                        ))
                    }
                    Err(e) => Some(error_chain(&e)),
                }
            }
        };
        if let Some(why) = why {
            if retries >= max_retries {
                return Err(gave_up(obj, retries, &why));
            }
            retries += 1;
            log(&format!(
                "{why} at byte {pos} of {obj}; resuming ({retries}/{max_retries})"
            ));
            backoff(retries).await;
        }
    }
    Ok((hasher, retries))
}

/// Copies a response body to the file from `*pos` up to `to`. Returns why it stopped early
/// (a retryable condition), or None when the range is complete.
async fn read_body(
    mut body: ByteStream,
    file: &File,
    pos: &mut u64,
    to: u64,
    mut hasher: Option<&mut Sha256>,
) -> Result<Option<String>, Fatal> {
    while *pos < to {
        let chunk = match tokio::time::timeout(READ_TIMEOUT, body.next()).await {
            Err(_) => return Ok(Some(format!("no data for {} s", READ_TIMEOUT.as_secs()))),
            Ok(None) => return Ok(Some("the body ended early".into())),
            Ok(Some(Err(e))) => return Ok(Some(format!("connection error: {}", error_chain(&e)))),
            Ok(Some(Ok(c))) => c,
        };
        let n = chunk.len().min((to - *pos) as usize);
        file.write_all_at(&chunk[..n], *pos)
            .map_err(|e| write_error(&e))?;
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk[..n]);
        }
        *pos += n as u64;
    }
    Ok(None)
}
