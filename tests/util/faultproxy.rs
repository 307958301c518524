//! A fault-injecting HTTP/1.1 proxy for tests: sits between a client under test and a real
//! server on 127.0.0.1 (registry, moto S3) and, by rules, answers with an error status, cuts a
//! response body short, or resets a connection in the middle of an upload.
//!
//! Every request is forwarded on a fresh upstream connection and the client connection is closed
//! after each response (`Connection: close`), so the proxy needs no keep-alive bookkeeping. The
//! `Host` header is passed unchanged, so the upstream's `Location` URLs point back at the proxy.
//! Every request is logged with the status the client saw.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What to do to a request that a [`Rule`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an empty body without forwarding (the request body is read
    /// and dropped first).
    Status(u16),
    /// Forward, then close the connection after this many bytes of the response body, though the
    /// response headers promised more (a connection cut mid-body / a truncated body).
    CutResponseAfter(usize),
    /// Read this many bytes of the request body, then drop the connection without forwarding
    /// (a reset in the middle of an upload).
    ResetRequestAfter(usize),
}

/// A fault for the requests that match `method` (when set) and whose path contains
/// `path_contains`, applied to the next `times` such requests.
#[derive(Debug, Clone)]
pub struct Rule {
    /// HTTP method to match, e.g. `PUT`; None matches any.
    pub method: Option<&'static str>,
    /// Substring of the request target to match ("" matches any).
    pub path_contains: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it.
    pub times: usize,
}

impl Rule {
    /// A rule for the next `times` requests with `method` whose path contains `path`.
    pub fn new(method: Option<&'static str>, path: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path_contains: path.to_string(),
            fault,
            times,
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Method.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Status the client got; 0 when the connection was dropped instead.
    pub status: u16,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

struct Shared {
    upstream: SocketAddr,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
}

/// A running proxy, stopped on drop.
pub struct FaultProxy {
    shared: Arc<Shared>,
    /// The proxy's own port on 127.0.0.1.
    pub port: u16,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free 127.0.0.1 port.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            upstream,
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&accept_shared);
                thread::spawn(move || {
                    let _ = handle(&shared, conn);
                });
            }
        });
        FaultProxy { shared, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a rule; rules are tried in the order added.
    pub fn add(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// Drops every rule not yet used up.
    pub fn clear_rules(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// How many logged requests have `method` and a path containing `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A parsed request or response head.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The head as sent on the wire, with connection-management headers replaced by
    /// `Connection: close` and the headers named in `drop` left out.
    fn encode(&self, drop: &[&str]) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            let skip = ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .chain(drop)
                .any(|d| k.eq_ignore_ascii_case(d));
            if !skip {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Reads a head; None at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some(Head {
        start: start.trim_end().to_string(),
        headers,
    }))
}

/// Reads a request body (Content-Length or chunked) into memory; test bodies are small enough.
fn read_body(r: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let len: usize = head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        r.read_line(&mut size_line)?;
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let at = body.len();
        body.resize(at + size, 0);
        r.read_exact(&mut body[at..])?;
        let mut crlf = [0; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules.iter_mut().find(|r| {
        r.times > 0 && r.method.is_none_or(|m| m == method) && path.contains(&r.path_contains)
    })?;
    rule.times -= 1;
    Some(rule.fault)
}

fn handle(shared: &Shared, client: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut parts = head.start.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let fault = take_fault(shared, &method, &path);
    let log = |status: u16| {
        shared.log.lock().unwrap().push(Logged {
            method: method.clone(),
            path: path.clone(),
            status,
            fault,
        })
    };
    let expects_continue = head
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }

    if let Some(Fault::ResetRequestAfter(n)) = fault {
        let mut buf = vec![0; n];
        let _ = reader.read_exact(&mut buf);
        log(0);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let body = read_body(&mut reader, &head)?;
    if let Some(Fault::Status(code)) = fault {
        log(code);
        let resp = format!(
            "HTTP/1.1 {code} Injected Fault\r\nContent-Length: 0\r\nRetry-After: 0\r\nConnection: close\r\n\r\n"
        );
        client.write_all(resp.as_bytes())?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }

    let mut upstream = TcpStream::connect(shared.upstream)?;
    let mut request = head.encode(&["expect", "transfer-encoding", "content-length"]);
    // Re-frame the body with an exact length (it was de-chunked above).
    let head_end = request.len() - 2;
    let framing = if body.is_empty() && head.header("content-length").is_none() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    request.splice(head_end..head_end, framing.into_bytes());
    upstream.write_all(&request)?;
    upstream.write_all(&body)?;

    let mut up_reader = BufReader::new(upstream);
    let Some(resp_head) = read_head(&mut up_reader)? else {
        log(0);
        return Ok(());
    };
    let status: u16 = resp_head
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    log(status);
    client.write_all(&resp_head.encode(&[]))?;
    let limit = match fault {
        Some(Fault::CutResponseAfter(n)) => n,
        _ => usize::MAX,
    };
    let mut sent = 0usize;
    let mut buf = [0u8; 64 * 1024];
    while sent < limit {
        let n = up_reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let n = n.min(limit - sent);
        client.write_all(&buf[..n])?;
        sent += n;
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
