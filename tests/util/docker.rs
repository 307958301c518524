//! The Docker engine in tests: unique names, containers and images removed on drop, and
//! waiting for a containerised server to answer HTTP on 127.0.0.1 (host networking).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{run, run_ok};

/// A name unique to this test process and call, for image tags and containers.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("imgbuild-test-{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Containers and images to remove when dropped (also when the test panics).
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Container names or ids.
    pub containers: Vec<String>,
    /// Image references.
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

/// One GET of `path` on 127.0.0.1:`port`: the whole response (status line, headers, body), or
/// None when nothing answers.
pub fn http_get_once(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.starts_with("HTTP/1.").then_some(resp)
}

/// Waits up to `secs` for `GET path` on `port` to answer; panics with `container`'s logs when
/// it does not, or as soon as the container has stopped.
pub fn wait_for_http(port: u16, path: &str, container: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for attempt in 0u32.. {
        if let Some(resp) = http_get_once(port, path) {
            return resp;
        }
        if attempt % 10 == 9 && !running(container) {
            panic!("container {container} stopped; {}", logs(container));
        }
        if Instant::now() > deadline {
            panic!(
                "nothing answered on 127.0.0.1:{port} within {secs}s; {}",
                logs(container)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!("the loop returns or panics")
}

/// Whether container `name` is running.
pub fn running(name: &str) -> bool {
    let out = run(Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", name]));
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// A container's logs (stdout and stderr), for failure messages.
pub fn logs(container: &str) -> String {
    let out = run(Command::new("docker").args(["logs", container]));
    format!(
        "logs of {container}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker run -d --network host --name NAME -e K=V… IMAGE ARGS…`, registered for cleanup.
pub fn run_detached(
    cleanup: &mut Cleanup,
    image: &str,
    env: &[(&str, String)],
    args: &[&str],
) -> String {
    let name = unique("ctr");
    let mut cmd = Command::new("docker");
    cmd.args(["run", "-d", "--network", "host", "--name", &name]);
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(image).args(args);
    cleanup.containers.push(name.clone());
    run_ok(&mut cmd);
    name
}

/// Waits for container `name` to exit and returns its exit code.
pub fn wait_exit(name: &str) -> i32 {
    let out = run_ok(Command::new("docker").args(["wait", name]));
    out.trim()
        .parse()
        .expect("docker wait prints the exit code")
}
