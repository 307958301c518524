//! Debian's `docker-registry` (the CNCF distribution registry) on a free 127.0.0.1 port, with a
//! generated config: filesystem storage in a temp dir, and no auth, htpasswd Basic auth
//! (bcrypt through `htpasswd -Bbn`), or the `token` auth with a small token issuer written here
//! (JWTs signed RS256 by the openssl CLI with a generated key; the registry trusts its
//! self-signed certificate through `rootcertbundle`, and each token carries it in `x5c`).
//! Everything stops on drop.
//!
//! The registry's access log (one `"METHOD PATH HTTP/1.1" STATUS` line per request) is kept, so
//! tests can count what a client really sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{free_port, run_ok};

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Anyone may push.
    None,
    /// HTTP Basic against an htpasswd file with this one user.
    Htpasswd {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// The Bearer token flow; the issuer wants this user and password (Basic) for a token.
    Token {
        /// User name.
        user: String,
        /// Password.
        password: String,
        /// Whether the issuer answers `access_token` (OAuth2 style) instead of `token`.
        access_token: bool,
    },
}

/// One request in the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status answered.
    pub status: u16,
}

/// A running registry.
pub struct Registry {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
    /// The token issuer, with [`Auth::Token`].
    pub issuer: Option<TokenIssuer>,
}

/// The token service name the registry and issuer agree on.
pub const SERVICE: &str = "imgbuild-test-registry";
const ISSUER: &str = "imgbuild-test-issuer";

impl Registry {
    /// Starts a registry with `auth` and waits until it answers.
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let storage = dir.path().join("storage");
        let mut auth_yaml = String::new();
        let mut issuer = None;
        match &auth {
            Auth::None => {}
            Auth::Htpasswd { user, password } => {
                let line = run_ok(Command::new("htpasswd").args(["-Bbn", user, password]));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, line.trim()).expect("write htpasswd");
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: imgbuild-test\n    path: {}\n",
                    file.display()
                );
            }
            Auth::Token {
                user,
                password,
                access_token,
            } => {
                let t = TokenIssuer::start(dir.path(), user, password, *access_token);
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    t.port,
                    t.cert.display()
                );
                issuer = Some(t);
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: imgbuild-test-secret\n{auth_yaml}",
                storage.display()
            ),
        )
        .expect("write registry config");
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).expect("create registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry; run scripts/setup.sh to install it");
        let registry = Registry {
            child,
            port,
            dir,
            log,
            issuer,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on port {port}; its log:\n{}",
                registry.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the registry served so far (from its access log).
    pub fn requests(&self) -> Vec<Request> {
        self.log_text()
            .lines()
            .filter_map(|line| {
                let start = line.find("] \"")? + 3;
                let rest = &line[start..];
                let (request, after) = rest.split_once("\" ")?;
                let mut parts = request.split_whitespace();
                let method = parts.next()?.to_string();
                let path = parts.next()?.to_string();
                let status = after.split_whitespace().next()?.parse().ok()?;
                Some(Request {
                    method,
                    path,
                    status,
                })
            })
            .collect()
    }

    /// Blob uploads completed so far (a `PUT` on an upload session answered 201).
    pub fn completed_blob_uploads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/") && r.status == 201)
            .count()
    }

    /// The storage directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal token server for the registry's `token` auth.
pub struct TokenIssuer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    cert: PathBuf,
    /// Token requests answered (any status).
    pub requests: Arc<AtomicUsize>,
    /// Tokens issued.
    pub issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TokenIssuer {
    fn start(dir: &Path, user: &str, password: &str, access_token: bool) -> TokenIssuer {
        let key = dir.join("issuer.key");
        let cert = dir.join("issuer.crt");
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=imgbuild-test-issuer",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null()),
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        assert!(der.status.success(), "openssl x509 -outform DER failed");
        let x5c = base64(&der.stdout, false);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token issuer");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let expected_auth = format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes(), false)
        );
        let (req_count, issued_count, stop_flag) = (requests.clone(), issued.clone(), stop.clone());
        let user = user.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                req_count.fetch_add(1, Ordering::SeqCst);
                let ok = serve_token(conn, &key, &x5c, &user, &expected_auth, access_token);
                if ok {
                    issued_count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        TokenIssuer {
            port,
            cert,
            requests,
            issued,
            stop,
        }
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers one token request; returns whether a token was issued.
fn serve_token(
    mut conn: TcpStream,
    key: &Path,
    x5c: &str,
    user: &str,
    expected_auth: &str,
    access_token: bool,
) -> bool {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut start = String::new();
    if reader.read_line(&mut start).is_err() {
        return false;
    }
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let target = start.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let respond = |conn: &mut TcpStream, status: &str, body: &str| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if authorization.as_deref() != Some(expected_auth) {
        respond(
            &mut conn,
            "401 Unauthorized",
            r#"{"details":"incorrect username or password"}"#,
        );
        return false;
    }
    let mut access = Vec::new();
    for pair in query.split('&') {
        let Some(("scope", value)) = pair.split_once('=') else {
            continue;
        };
        let scope = percent_decode(value);
        // repository:NAME:ACTIONS
        let mut parts = scope.splitn(3, ':');
        let (Some(kind), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let actions: Vec<String> = actions.split(',').map(|a| format!("{a:?}")).collect();
        access.push(format!(
            r#"{{"type":{kind:?},"name":{name:?},"actions":[{}]}}"#,
            actions.join(",")
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","x5c":["{x5c}"]}}"#);
    let claims = format!(
        r#"{{"iss":"{ISSUER}","sub":{user:?},"aud":"{SERVICE}","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
        now + 300,
        now - 10,
        std::process::id(),
        access.join(",")
    );
    let signing_input = format!(
        "{}.{}",
        base64(header.as_bytes(), true),
        base64(claims.as_bytes(), true)
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl dgst");
    openssl
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())
        .expect("write to openssl");
    let out = openssl.wait_with_output().expect("openssl dgst");
    assert!(out.status.success(), "openssl dgst -sign failed");
    let jwt = format!("{signing_input}.{}", base64(&out.stdout, true));
    let field = if access_token {
        "access_token"
    } else {
        "token"
    };
    respond(
        &mut conn,
        "200 OK",
        &format!(r#"{{"{field}":"{jwt}","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}}"#),
    );
    true
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 (standard with padding, or URL-safe without).
pub fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(alphabet[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}
