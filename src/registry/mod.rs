//! The OCI distribution protocol client: blob and manifest upload, and registry auth.
//!
//! A push follows the distribution spec in an order that keeps the registry consistent at
//! every step, so an interrupted push can simply be run again:
//! 1. every blob (configs and layers, in parallel up to `jobs`): `HEAD` and skip what exists;
//!    else a cross-repository mount when a source repository is known (falling back to an
//!    upload when the registry answers 202); else an upload — monolithic by default (`POST`,
//!    then one `PUT` streaming the file with its `Content-Length`), `PATCH` chunks only when
//!    asked for (ECR's chunked uploads are known to break);
//! 2. manifests, children before the index that lists them (children by digest, skipped when a
//!    `HEAD` finds them);
//! 3. the root manifest under each tag — tags name content that is already there.
//!
//! Transient failures (connection errors, 408, 429 with `Retry-After`, 5xx) are retried with
//! jittered exponential backoff, a bounded number of times; a blob is retried from its `HEAD`,
//! so a broken upload session is never resumed blindly. 401 and 403 fail at once with the
//! registry's own message (a Bearer token is refreshed once first). Blob bodies are streamed
//! from disk in fixed-size chunks: memory does not grow with the image.

pub mod auth;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::oci::read::{BlobSource, ManifestBlob, PushableImage};
pub use auth::{Challenge, Credentials};

/// The environment variable that sends a registry's traffic to another address:
/// `IMGBUILD_REGISTRY_MIRROR=<registry-host>=<host:port>[,...]`. Credentials are still those of
/// the named registry (for ECR: `GetAuthorizationToken`); loopback targets are spoken to in
/// plain HTTP. Meant for tests and LocalStack-style setups.
pub const MIRROR_ENV: &str = "IMGBUILD_REGISTRY_MIRROR";

/// The body chunk read from disk and sent at once.
const READ_CHUNK: usize = 256 * 1024;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed (after retries, if the failure was transient).
    #[error("{what}: {url}")]
    Request {
        /// What we were doing.
        what: String,
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status.
    #[error("{what}: {registry} answered {status}{}{}", fmt_codes(code, message), status_hint(*status))]
    Status {
        /// What we were doing.
        what: String,
        /// The registry host.
        registry: String,
        /// The HTTP status.
        status: u16,
        /// The distribution error code (`NAME_UNKNOWN`, `DENIED`, ...), if the body had one.
        code: Option<String>,
        /// The registry's message, or the raw body.
        message: String,
        /// How long the registry asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The registry wants credentials and none were found.
    #[error(
        "{registry} requires authentication and no credentials were found: run `docker login \
         {registry}` (imgbuild reads docker's config.json, its credsStore and credHelpers), or \
         set DOCKER_CONFIG to a directory holding a config.json with an `auths` entry"
    )]
    LoginRequired {
        /// The registry host.
        registry: String,
    },
    /// The token server refused or answered nonsense.
    #[error("getting a token from {realm}: {detail}")]
    Token {
        /// The token server.
        realm: String,
        /// What went wrong.
        detail: String,
    },
    /// The registry stored a manifest under another digest than ours.
    #[error("{registry} stored the manifest as {found}, expected {expected}: the registry rewrote it; refusing to report a digest that does not name what we pushed")]
    DigestMismatch {
        /// The registry host.
        registry: String,
        /// Our digest.
        expected: String,
        /// The registry's.
        found: String,
    },
    /// A local file could not be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Docker's config.json is malformed.
    #[error("{path}: {detail}")]
    DockerConfig {
        /// The config file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A docker credential helper failed.
    #[error("credential helper {helper}: {detail}")]
    CredentialHelper {
        /// The helper program.
        helper: String,
        /// What went wrong.
        detail: String,
    },
    /// The registry endpoint or mirror setting is malformed.
    #[error("{0}")]
    Config(String),
    /// A transient failure persisted through every retry.
    #[error("gave up after {attempts} attempts")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<Error>,
    },
}

fn fmt_codes(code: &Option<String>, message: &str) -> String {
    match (code, message.is_empty()) {
        (Some(c), false) => format!(": {c}: {message}"),
        (Some(c), true) => format!(": {c}"),
        (None, false) => format!(": {message}"),
        (None, true) => String::new(),
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 => " (the credentials were rejected: check the user and password, or log in again)",
        403 => " (access denied: these credentials may not push to this repository)",
        _ => "",
    }
}

impl Error {
    /// Whether retrying might help.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Request { source, .. } => !source.is_builder() && !source.is_redirect(),
            Error::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            _ => false,
        }
    }

    /// The HTTP status, if the registry answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::GaveUp { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The distribution error code and message, if the registry sent them.
    pub fn registry_error(&self) -> Option<(Option<&str>, &str)> {
        match self {
            Error::Status { code, message, .. } => Some((code.as_deref(), message)),
            Error::GaveUp { source, .. } => source.registry_error(),
            _ => None,
        }
    }
}

/// How a push reports progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing.
    Quiet,
    /// One plain line per blob and manifest.
    Lines,
    /// A progress bar (for terminals).
    Bar,
}

/// Push settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Upload in `PATCH` chunks of this many bytes instead of one `PUT`.
    pub chunk_size: Option<u64>,
    /// Registries (`host[:port]`) spoken to in plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Attempts per request or blob before giving up on transient failures.
    pub max_attempts: u32,
    /// The first backoff delay (doubled each retry, with jitter, up to `max_backoff`).
    pub base_backoff: Duration,
    /// The longest backoff delay and the longest `Retry-After` honoured.
    pub max_backoff: Duration,
    /// A repository in the same registry that may hold the blobs (cross-repository mount).
    pub mount_from: Option<String>,
    /// Progress reporting.
    pub progress: ProgressMode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 4,
            chunk_size: None,
            insecure_registries: Vec::new(),
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            mount_from: None,
            progress: ProgressMode::Lines,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// The root manifest's digest.
    pub digest: String,
    /// Tags written.
    pub tags: Vec<String>,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs already in the repository.
    pub blobs_existing: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Bytes of blob data sent (retries included).
    pub bytes_uploaded: u64,
    /// Manifests written (tags count once each).
    pub manifests_written: usize,
    /// HTTP requests made.
    pub requests: u64,
    /// Retries after transient failures.
    pub retries: u64,
}

/// Where to send a registry's requests.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The registry as named in the reference (what credentials belong to).
    pub registry: String,
    /// `scheme://host[:port]` to send requests to.
    pub base: Url,
}

impl Endpoint {
    /// The endpoint for `registry`: HTTPS, except plain HTTP for loopback registries and those
    /// in `insecure`; `IMGBUILD_REGISTRY_MIRROR` may send the traffic elsewhere.
    pub fn resolve(registry: &str, insecure: &[String]) -> Result<Self, Error> {
        let target = mirror_for(registry, std::env::var(MIRROR_ENV).ok().as_deref())?
            .unwrap_or_else(|| registry.to_string());
        let plain = crate::reference::is_loopback(&target)
            || insecure
                .iter()
                .any(|h| h == &target || h == registry || h == crate::reference::host_of(&target));
        let scheme = if plain { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{target}/"))
            .map_err(|e| Error::Config(format!("registry address {target:?}: {e}")))?;
        Ok(Endpoint {
            registry: registry.to_string(),
            base,
        })
    }
}

/// Looks `registry` up in a mirror setting (`host=target[,host=target...]`).
fn mirror_for(registry: &str, setting: Option<&str>) -> Result<Option<String>, Error> {
    let Some(setting) = setting.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    for pair in setting.split(',') {
        let (from, to) = pair.trim().split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "{MIRROR_ENV}: {pair:?} is not REGISTRY=HOST:PORT (e.g. \
                 123456789012.dkr.ecr.us-east-1.amazonaws.com=127.0.0.1:5000)"
            ))
        })?;
        if from.trim() == registry {
            return Ok(Some(to.trim().to_string()));
        }
    }
    Ok(None)
}

/// How requests are authorised, once learnt from the registry's `/v2/` challenge.
#[derive(Debug, Clone)]
enum AuthState {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<(String, Instant)>,
    },
}

/// Makes a request body and its length, afresh for each attempt.
type MakeBody<'a> = dyn Fn() -> Result<(reqwest::Body, u64), Error> + Sync + 'a;

/// An upload's outcome.
enum BlobOutcome {
    Existing,
    Mounted,
    Uploaded(u64),
}

/// A client for one repository of one registry.
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    repository: String,
    credentials: Option<Credentials>,
    options: Options,
    auth: Mutex<AuthState>,
    requests: AtomicU64,
    retries: AtomicU64,
    bytes: Arc<AtomicU64>,
    progress: Progress,
}

impl Client {
    /// A client pushing to `repository` at `endpoint` with `credentials` (if any).
    pub fn new(
        endpoint: Endpoint,
        repository: &str,
        credentials: Option<Credentials>,
        options: Options,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("imgbuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(options.jobs.max(1) * 2)
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let progress = Progress::new(options.progress);
        Ok(Client {
            http,
            endpoint,
            repository: repository.to_string(),
            credentials,
            options,
            auth: Mutex::new(AuthState::Anonymous),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            bytes: Arc::new(AtomicU64::new(0)),
            progress,
        })
    }

    fn url(&self, path: &str) -> Url {
        self.endpoint
            .base
            .join(path)
            .expect("registry paths are valid URL paths")
    }

    fn status_error(
        &self,
        what: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        let (code, message) = parse_error_body(body);
        Error::Status {
            what: what.to_string(),
            registry: self.endpoint.registry.clone(),
            status: status.as_u16(),
            code,
            message,
            retry_after: retry_after(headers),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of attempts.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut n = 0u32;
        loop {
            n += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && n < self.options.max_attempts => {
                    let backoff = self.backoff(n, &e);
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    self.progress.line(&format!(
                        "retrying in {:.1}s: {}",
                        backoff.as_secs_f64(),
                        with_causes(&e)
                    ));
                    tokio::time::sleep(backoff).await;
                }
                Err(e) if e.is_transient() => {
                    return Err(Error::GaveUp {
                        attempts: n,
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The delay before retry `n` (1-based): `Retry-After` if the registry sent one, else
    /// exponential with "equal jitter" (half fixed, half random).
    fn backoff(&self, n: u32, err: &Error) -> Duration {
        if let Error::Status {
            retry_after: Some(d),
            ..
        } = err
        {
            return (*d).min(self.options.max_backoff.max(Duration::from_secs(60)));
        }
        let exp = self
            .options
            .base_backoff
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(self.options.max_backoff);
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// The `Authorization` header value to send now, fetching a Bearer token when needed.
    async fn authorization(&self) -> Result<Option<String>, Error> {
        let state = self.auth.lock().expect("auth lock").clone();
        match state {
            AuthState::Anonymous => Ok(None),
            AuthState::Basic => Ok(self.credentials.as_ref().map(|c| {
                use base64::Engine;
                let raw = format!("{}:{}", c.username, c.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            })),
            AuthState::Bearer {
                token: Some((t, expires)),
                ..
            } if Instant::now() + Duration::from_secs(10) < expires => {
                Ok(Some(format!("Bearer {t}")))
            }
            AuthState::Bearer { realm, service, .. } => {
                let (token, expires) = self.fetch_token(&realm, service.as_deref()).await?;
                *self.auth.lock().expect("auth lock") = AuthState::Bearer {
                    realm,
                    service,
                    token: Some((token.clone(), expires)),
                };
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Forgets the Bearer token so the next request fetches a new one. Returns whether there
    /// was one to forget.
    fn drop_token(&self) -> bool {
        let mut state = self.auth.lock().expect("auth lock");
        if let AuthState::Bearer { token, .. } = &mut *state {
            return token.take().is_some();
        }
        false
    }

    /// The Bearer token flow: `GET realm?service=..&scope=..` with Basic credentials if we have
    /// them (or a refresh-token `POST` for an identity token).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<(String, Instant), Error> {
        let mut scopes = vec![format!("repository:{}:pull,push", self.repository)];
        if let Some(from) = &self.options.mount_from {
            scopes.push(format!("repository:{from}:pull"));
        }
        let token_err = |detail: String| Error::Token {
            realm: realm.to_string(),
            detail,
        };
        let mut url = Url::parse(realm).map_err(|e| token_err(format!("bad realm URL: {e}")))?;
        let identity = self
            .credentials
            .as_ref()
            .and_then(|c| c.identity_token.clone());
        let response = self
            .with_retries(|| {
                let mut req = if let Some(refresh) = &identity {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("refresh_token", refresh.clone()),
                        ("client_id", "imgbuild".to_string()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_string()));
                    }
                    self.http.post(url.clone()).form(&form)
                } else {
                    {
                        let mut q = url.query_pairs_mut();
                        q.clear();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in &scopes {
                            q.append_pair("scope", s);
                        }
                    }
                    let mut r = self.http.get(url.clone());
                    if let Some(c) = &self.credentials {
                        r = r.basic_auth(&c.username, Some(&c.password));
                    }
                    r
                };
                req = req.header("Accept", "application/json");
                async move {
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    let resp = req.send().await.map_err(|e| Error::Request {
                        what: "getting a registry token".into(),
                        url: realm.to_string(),
                        source: e.without_url(),
                    })?;
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        Ok(body)
                    } else {
                        Err(self.status_error("getting a registry token", status, &headers, &body))
                    }
                }
            })
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&response)
            .map_err(|e| token_err(format!("the answer is not the expected JSON: {e}")))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                token_err("the answer holds neither `token` nor `access_token`".into())
            })?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(10));
        Ok((token, Instant::now() + lifetime))
    }

    /// Learns how the registry authenticates (`GET /v2/`) and checks the credentials once, so
    /// a wrong password fails here, before any upload.
    pub async fn login(&self) -> Result<(), Error> {
        let url = self.url("/v2/");
        let (status, headers, body) = self
            .with_retries(|| async {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let resp = self
                    .http
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(|e| Error::Request {
                        what: "contacting the registry".into(),
                        url: url.to_string(),
                        source: e.without_url(),
                    })?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.bytes().await.unwrap_or_default();
                if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                    return Err(self.status_error(
                        "contacting the registry",
                        status,
                        &headers,
                        &body,
                    ));
                }
                Ok((status, headers, body))
            })
            .await?;
        if status.is_success() {
            *self.auth.lock().expect("auth lock") = AuthState::Anonymous;
            return Ok(());
        }
        if status != StatusCode::UNAUTHORIZED {
            return Err(self.status_error(
                "contacting the registry (GET /v2/)",
                status,
                &headers,
                &body,
            ));
        }
        let challenge = headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::parse_challenge)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} answered 401 without a Basic or Bearer challenge",
                    self.endpoint.registry
                ))
            })?;
        match challenge {
            Challenge::Basic => {
                if self.credentials.is_none() {
                    return Err(Error::LoginRequired {
                        registry: self.endpoint.registry.clone(),
                    });
                }
                *self.auth.lock().expect("auth lock") = AuthState::Basic;
                // Check the password now: a wrong one fails in one request, not per blob.
                let resp = self
                    .request(Method::GET, "/v2/", "checking the credentials")
                    .await;
                match resp {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Challenge::Bearer { realm, service } => {
                *self.auth.lock().expect("auth lock") = AuthState::Bearer {
                    realm,
                    service,
                    token: None,
                };
                match self.authorization().await {
                    Ok(_) => Ok(()),
                    Err(Error::Status { status: 401, .. }) if self.credentials.is_none() => {
                        Err(Error::LoginRequired {
                            registry: self.endpoint.registry.clone(),
                        })
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// One request without a body, retried; returns the response on 2xx, and `Ok(None)` on 404
    /// when `allow_404`.
    async fn request_opt(
        &self,
        method: Method,
        url: Url,
        what: &str,
        headers: &[(&str, &str)],
        allow_404: bool,
    ) -> Result<Option<reqwest::Response>, Error> {
        self.with_retries(|| {
            self.send_once(method.clone(), url.clone(), what, headers, None, allow_404)
        })
        .await
    }

    /// One request without a body on a registry path, retried, 2xx expected.
    async fn request(
        &self,
        method: Method,
        path: &str,
        what: &str,
    ) -> Result<reqwest::Response, Error> {
        let url = self.url(path);
        Ok(self
            .request_opt(method, url, what, &[], false)
            .await?
            .expect("404 is an error here"))
    }

    /// Sends one request (with a body made by `body`, if any); refreshes a Bearer token once
    /// on 401. Non-2xx answers become errors, except 404 when `allow_404`.
    async fn send_once(
        &self,
        method: Method,
        url: Url,
        what: &str,
        headers: &[(&str, &str)],
        body: Option<&MakeBody<'_>>,
        allow_404: bool,
    ) -> Result<Option<reqwest::Response>, Error> {
        let mut refreshed = false;
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = self.authorization().await? {
                req = req.header(AUTHORIZATION, a);
            }
            match body {
                Some(make) => {
                    let (b, len) = make()?;
                    req = req.header(CONTENT_LENGTH, len).body(b);
                }
                None if method == Method::PUT
                    || method == Method::POST
                    || method == Method::PATCH =>
                {
                    req = req.header(CONTENT_LENGTH, 0);
                }
                None => {}
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = req.send().await.map_err(|e| Error::Request {
                what: what.to_string(),
                url: redact(&url),
                source: e.without_url(),
            })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(Some(resp));
            }
            if status == StatusCode::NOT_FOUND && allow_404 {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed && self.drop_token() {
                refreshed = true;
                continue;
            }
            let headers = resp.headers().clone();
            let body = if method == Method::HEAD {
                Bytes::new()
            } else {
                resp.bytes().await.unwrap_or_default()
            };
            return Err(self.status_error(what, status, &headers, &body));
        }
    }

    /// Pushes `image` and tags its root with `tags` (by digest alone when `tags` is empty).
    pub async fn push(&self, image: &PushableImage, tags: &[String]) -> Result<PushReport, Error> {
        self.login().await?;
        let total: u64 = image.blobs.iter().map(|b| b.size).sum();
        self.progress.start(total);
        let jobs = self.options.jobs.max(1);
        let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(image.blobs.iter())
            .map(|b| self.push_blob(b))
            .buffer_unordered(jobs)
            .try_collect()
            .await?;
        self.progress.finish();
        let mut report = PushReport {
            digest: image.root().digest.clone(),
            ..PushReport::default()
        };
        for o in outcomes {
            match o {
                BlobOutcome::Existing => report.blobs_existing += 1,
                BlobOutcome::Mounted => report.blobs_mounted += 1,
                BlobOutcome::Uploaded(_) => report.blobs_uploaded += 1,
            }
        }
        let (children, root) = image.manifests.split_at(image.manifests.len() - 1);
        for m in children {
            if self.manifest_exists(&m.digest).await? {
                continue;
            }
            self.put_manifest(m, &m.digest).await?;
            report.manifests_written += 1;
        }
        let root = &root[0];
        if tags.is_empty() {
            self.put_manifest(root, &root.digest).await?;
            report.manifests_written += 1;
        }
        for tag in tags {
            self.put_manifest(root, tag).await?;
            report.manifests_written += 1;
            report.tags.push(tag.clone());
        }
        report.bytes_uploaded = self.bytes.load(Ordering::Relaxed);
        report.requests = self.requests.load(Ordering::Relaxed);
        report.retries = self.retries.load(Ordering::Relaxed);
        Ok(report)
    }

    async fn manifest_exists(&self, digest: &str) -> Result<bool, Error> {
        let url = self.url(&format!("/v2/{}/manifests/{digest}", self.repository));
        let accept = [
            crate::oci::read::OCI_MANIFEST,
            crate::oci::read::OCI_INDEX,
            crate::oci::read::DOCKER_MANIFEST,
            crate::oci::read::DOCKER_MANIFEST_LIST,
        ]
        .join(", ");
        Ok(self
            .request_opt(
                Method::HEAD,
                url,
                "checking for a manifest",
                &[("Accept", &accept)],
                true,
            )
            .await?
            .is_some())
    }

    async fn put_manifest(&self, m: &ManifestBlob, reference: &str) -> Result<(), Error> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.repository));
        let what = format!("writing manifest {} as {reference}", m.digest);
        let bytes = Bytes::from(m.bytes.clone());
        let make = || Ok((reqwest::Body::from(bytes.clone()), bytes.len() as u64));
        let content_type = [("Content-Type", m.media_type.as_str())];
        let resp = self
            .with_retries(|| {
                self.send_once(
                    Method::PUT,
                    url.clone(),
                    &what,
                    &content_type,
                    Some(&make),
                    false,
                )
            })
            .await?
            .expect("404 is an error here");
        if let Some(found) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            if found != m.digest {
                return Err(Error::DigestMismatch {
                    registry: self.endpoint.registry.clone(),
                    expected: m.digest.clone(),
                    found: found.to_string(),
                });
            }
        }
        self.progress
            .line(&format!("manifest {} → {reference}", short(&m.digest)));
        Ok(())
    }

    /// One blob, retried as a whole from its `HEAD` on transient failures.
    async fn push_blob(&self, blob: &BlobSource) -> Result<BlobOutcome, Error> {
        let sent = Arc::new(AtomicU64::new(0));
        let outcome = self
            .with_retries(|| {
                let already = sent.swap(0, Ordering::Relaxed);
                self.progress.unsend(already);
                self.push_blob_once(blob, sent.clone())
            })
            .await?;
        match &outcome {
            BlobOutcome::Existing => {
                self.progress.add(blob.size);
                self.progress
                    .line(&format!("blob {} exists", short(&blob.digest)));
            }
            BlobOutcome::Mounted => {
                self.progress.add(blob.size);
                self.progress
                    .line(&format!("blob {} mounted", short(&blob.digest)));
            }
            BlobOutcome::Uploaded(n) => self.progress.line(&format!(
                "blob {} uploaded ({})",
                short(&blob.digest),
                human_bytes(*n)
            )),
        }
        Ok(outcome)
    }

    async fn push_blob_once(
        &self,
        blob: &BlobSource,
        sent: Arc<AtomicU64>,
    ) -> Result<BlobOutcome, Error> {
        let repo = &self.repository;
        let head = self.url(&format!("/v2/{repo}/blobs/{}", blob.digest));
        if self
            .send_once(Method::HEAD, head, "checking for a blob", &[], None, true)
            .await?
            .is_some()
        {
            return Ok(BlobOutcome::Existing);
        }
        let mut start = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        if let Some(from) = &self.options.mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", &blob.digest)
                .append_pair("from", from);
        }
        let resp = self
            .send_once(
                Method::POST,
                start,
                "starting a blob upload",
                &[],
                None,
                false,
            )
            .await?
            .expect("404 is an error here");
        if resp.status() == StatusCode::CREATED && self.options.mount_from.is_some() {
            return Ok(BlobOutcome::Mounted);
        }
        let mut location = self.location(&resp)?;
        let what = format!("uploading blob {}", blob.digest);
        let size = blob.size;
        let mut put_body: Option<Box<MakeBody<'_>>> = None;
        if let Some(chunk) = self.options.chunk_size.filter(|c| *c > 0) {
            let mut offset = 0u64;
            while offset < size {
                let len = chunk.min(size - offset);
                let range = format!("{}-{}", offset, offset + len - 1);
                let make = || self.file_body(blob, offset, len, sent.clone());
                let resp = self
                    .send_once(
                        Method::PATCH,
                        location.clone(),
                        &what,
                        &[
                            ("Content-Type", "application/octet-stream"),
                            ("Content-Range", &range),
                        ],
                        Some(&make),
                        false,
                    )
                    .await?
                    .expect("404 is an error here");
                location = self.location(&resp)?;
                offset += len;
            }
        } else {
            let sent = sent.clone();
            put_body = Some(Box::new(move || {
                self.file_body(blob, 0, size, sent.clone())
            }));
        }
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest);
        self.send_once(
            Method::PUT,
            location,
            &what,
            &[("Content-Type", "application/octet-stream")],
            put_body.as_deref(),
            false,
        )
        .await?;
        Ok(BlobOutcome::Uploaded(size))
    }

    /// The upload session URL from a response's `Location` (relative ones resolved).
    fn location(&self, resp: &reqwest::Response) -> Result<Url, Error> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} started an upload without a Location header",
                    self.endpoint.registry
                ))
            })?;
        self.endpoint
            .base
            .join(loc)
            .map_err(|e| Error::Config(format!("upload location {loc:?}: {e}")))
    }

    /// A request body streaming `len` bytes of `blob` from `offset`, counted into `sent` and
    /// the progress bar.
    fn file_body(
        &self,
        blob: &BlobSource,
        offset: u64,
        len: u64,
        sent: Arc<AtomicU64>,
    ) -> Result<(reqwest::Body, u64), Error> {
        use std::io::{Seek, SeekFrom};
        let io = |source| Error::Io {
            path: blob.path.clone(),
            source,
        };
        let mut f = std::fs::File::open(&blob.path).map_err(io)?;
        f.seek(SeekFrom::Start(blob.offset + offset)).map_err(io)?;
        let reader = tokio::fs::File::from_std(f).take(len);
        let progress = self.progress.bar.clone();
        let stream = futures_util::stream::try_unfold(
            (reader, sent, progress, self.bytes.clone()),
            |(mut reader, sent, progress, total)| async move {
                let mut buf = vec![0u8; READ_CHUNK];
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(None);
                }
                buf.truncate(n);
                sent.fetch_add(n as u64, Ordering::Relaxed);
                total.fetch_add(n as u64, Ordering::Relaxed);
                if let Some(p) = &progress {
                    p.inc(n as u64);
                }
                Ok(Some((Bytes::from(buf), (reader, sent, progress, total))))
            },
        );
        Ok((reqwest::Body::wrap_stream(stream), len))
    }
}

/// Progress output on stderr.
struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(mode: ProgressMode) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} pushing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress { mode, bar }
    }

    fn start(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn unsend(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(b.position().saturating_sub(n));
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn line(&self, msg: &str) {
        match (&self.mode, &self.bar) {
            (ProgressMode::Quiet, _) => {}
            (_, Some(b)) => b.println(msg),
            _ => eprintln!("{msg}"),
        }
    }
}

/// An error and its causes on one line (`a: b: c`).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The first 12 hex digits of a digest, for messages.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// A URL for messages: upload session URLs carry opaque state, not credentials, but their
/// query can be long; keep scheme, host and path.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    u.to_string()
}

/// `Retry-After` in seconds (an HTTP date is treated as no hint).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A distribution error body's first `code` and `message`, else the body itself (trimmed).
fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(b) = serde_json::from_slice::<Body>(body) {
        if let Some(first) = b.errors.into_iter().next() {
            return (first.code, first.message.unwrap_or_default());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut = text.char_indices().nth(500).map_or(text.len(), |(i, _)| i);
    (None, text[..cut].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_setting() {
        let s = Some("a.example=127.0.0.1:1, b.example=127.0.0.1:2");
        assert_eq!(
            mirror_for("b.example", s).unwrap().as_deref(),
            Some("127.0.0.1:2")
        );
        assert_eq!(mirror_for("c.example", s).unwrap(), None);
        assert!(mirror_for("x", Some("nonsense")).is_err());
        assert_eq!(mirror_for("x", None).unwrap(), None);
    }

    #[test]
    fn endpoints_are_https_except_loopback_and_insecure() {
        let e = Endpoint::resolve("reg.example:5000", &[]).unwrap();
        assert_eq!(e.base.as_str(), "https://reg.example:5000/");
        let e = Endpoint::resolve("127.0.0.1:5000", &[]).unwrap();
        assert_eq!(e.base.scheme(), "http");
        let e = Endpoint::resolve("localhost", &[]).unwrap();
        assert_eq!(e.base.scheme(), "http");
        let e = Endpoint::resolve("reg.example:5000", &["reg.example:5000".into()]).unwrap();
        assert_eq!(e.base.scheme(), "http");
    }

    #[test]
    fn error_bodies() {
        let (code, msg) = parse_error_body(
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("NAME_UNKNOWN"));
        assert_eq!(msg, "repository name not known to registry");
        let (code, msg) = parse_error_body(b"  plain failure \n");
        assert_eq!((code, msg.as_str()), (None, "plain failure"));
    }

    #[test]
    fn transient_errors() {
        let status = |s| Error::Status {
            what: String::new(),
            registry: String::new(),
            status: s,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404] {
            assert!(!status(s).is_transient(), "{s}");
        }
        assert!(status(401)
            .to_string()
            .contains("credentials were rejected"));
    }
}
