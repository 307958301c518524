//! The fetch-mode entrypoint (`images/entrypoint`) against moto's S3 on 127.0.0.1: fetching,
//! verifying and running real programs (the static Go sample server, static musl C probes
//! built here), every documented failure with its exit code, retries and resumption through
//! the fault-injecting proxy, supervision (exit codes, death by signal, forwarded signals,
//! reaping) in the manner of tini's tests, and the `Dockerfile` image in the Docker engine.
//!
//! The entrypoint binary is the static build of `scripts/build-entrypoint.sh` (which
//! `scripts/test.sh` runs first).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::faultproxy::{Fault, FaultProxy, Rule};
use util::moto::Moto;
use util::{free_port, go_server, root, run, run_ok, sha256_file, GoBuild};

const BUCKET: &str = "artifacts";

/// The static entrypoint built by `scripts/build-entrypoint.sh`.
fn entrypoint_bin() -> PathBuf {
    let bin = root().join("target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/build-entrypoint.sh first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A C program that shows what the entrypoint hands it and how it behaves as a child:
/// `args` prints argv and the environment; `exit N`; `kill N` (dies of signal N); `signals`
/// reports each forwarded signal and exits 0 on SIGTERM; `zombie` leaves an orphaned
/// grandchild to be reaped by whoever is its subreaper, prints its pid, and waits for SIGTERM.
const PROBE_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
extern char **environ;
static void say(const char *s) { write(1, s, strlen(s)); }
static void on_signal(int s) {
    char buf[32]; int n = snprintf(buf, sizeof buf, "got %d\n", s); write(1, buf, n);
    if (s == SIGTERM) _exit(0);
}
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "args")) {
        for (int i = 0; i < argc; i++) printf("arg=%s\n", argv[i]);
        for (char **e = environ; *e; e++) printf("env=%s\n", *e);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
    if (argc > 2 && !strcmp(argv[1], "kill")) {
        int s = atoi(argv[2]); signal(s, SIG_DFL); raise(s); pause(); return 99;
    }
    if (argc > 1 && !strcmp(argv[1], "signals")) {
        int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (int i = 0; i < 6; i++) signal(sigs[i], on_signal);
        say("ready\n");
        for (;;) pause();
    }
    if (argc > 1 && !strcmp(argv[1], "zombie")) {
        int p[2]; pipe(p);
        pid_t mid = fork();
        if (mid == 0) {
            pid_t g = fork();
            if (g == 0) { pid_t me = getpid(); write(p[1], &me, sizeof me); usleep(200000); _exit(0); }
            _exit(0);
        }
        waitpid(mid, 0, 0);
        pid_t g; read(p[0], &g, sizeof g);
        printf("grandchild %d\n", (int)g); fflush(stdout);
        signal(SIGTERM, on_signal);
        for (;;) pause();
    }
    say("probe ran\n");
    return 0;
}
"#;

/// The probe, built static with musl-gcc (cached in the fixtures dir).
fn probe() -> PathBuf {
    util::cached("entrypoint-probe", |out| {
        let src = out.with_extension("c");
        std::fs::write(&src, PROBE_C).expect("write probe source");
        run_ok(
            Command::new("musl-gcc")
                .args(["-static", "-O2", "-o"])
                .arg(out)
                .arg(&src),
        );
        let _ = std::fs::remove_file(src);
    })
}

/// moto with bucket [`BUCKET`].
fn moto() -> Moto {
    let m = Moto::start();
    m.create_bucket(BUCKET);
    m
}

/// The entrypoint with a clean environment talking to `endpoint` (moto or a proxy to it).
fn entrypoint(endpoint: &str, fetch: &str) -> Command {
    let mut cmd = Command::new(entrypoint_bin());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", util::moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("IMGBUILD_FETCH", fetch)
        .env("IMGBUILD_EXEC", "1")
        .env("IMGBUILD_RETRIES", "3");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the run failed with `code`, ran nothing, and said `needle` on stderr.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr:\n{err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing may run, but stdout has {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("imgbuild-entrypoint: "), "{err}");
}

/// GET `path` from 127.0.0.1:`port` until it answers (or the deadline), returning the body.
fn http_get(port: u16, path: &str, mut child: Option<&mut Child>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(Ok(Some(st))) = child.as_mut().map(|c| c.try_wait()) {
            panic!("the server exited with {st} before answering");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut resp = String::new();
            if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut resp).is_ok() {
                if let Some((_, body)) = resp.split_once("\r\n\r\n") {
                    return body.to_string();
                }
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn fetches_verifies_and_runs_the_static_go_server() {
    let moto = moto();
    let server = go_server(GoBuild::Static);
    moto.put_object(BUCKET, "app/server", &server);
    let port = free_port();
    let mut child = entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/app/server"))
        .env("IMGBUILD_SHA256", sha256_file(&server))
        .env("PORT", port.to_string())
        .args(["--flag", "two words"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the entrypoint");
    let body = http_get(port, "/", Some(&mut child));
    assert!(body.contains("hello from imgbuild sample-server"), "{body}");
    assert!(
        body.contains(r#"["--flag" "two words"]"#),
        "CMD args unchanged: {body}"
    );
    kill(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("fetched ") && err.contains("sha256 ok (pin)"),
        "{err}"
    );
    assert!(
        err.contains("starting server (static linux/amd64, exec)"),
        "{err}"
    );
}

#[test]
fn passes_args_and_environment_minus_imgbuild_variables() {
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env("KEEP_ME", "yes")
            .env("IMGBUILD_SHA256", sha256_file(&probe()))
            .args(["args", "", "--x=1 2", "ü"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    let args: Vec<_> = text
        .lines()
        .filter_map(|l| l.strip_prefix("arg="))
        .collect();
    assert_eq!(args, ["probe", "args", "", "--x=1 2", "ü"]);
    let env: Vec<_> = text
        .lines()
        .filter_map(|l| l.strip_prefix("env="))
        .collect();
    assert!(env.contains(&"KEEP_ME=yes"), "{env:?}");
    assert!(env.contains(&"AWS_REGION=us-east-1"), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("IMGBUILD_")), "{env:?}");
}

#[test]
fn configuration_errors_have_their_exit_codes() {
    let out = run(Command::new(entrypoint_bin()).env_clear());
    assert_fails(&out, 100, "IMGBUILD_FETCH is not set");
    for (url, why) in [
        ("https://bucket/key", "must start with s3://"),
        ("s3://bucket", "no key"),
        ("s3://bucket/dir/", "does not name an object"),
        ("s3://bucket/k?version=3", "only ?versionId="),
    ] {
        let out = run(&mut entrypoint("http://127.0.0.1:9", url));
        assert_fails(&out, 101, why);
    }
    let out =
        run(entrypoint("http://127.0.0.1:9", "s3://bucket/key").env("IMGBUILD_SHA256", "abc"));
    assert_fails(&out, 101, "IMGBUILD_SHA256=\"abc\" is not a sha256");
    let out =
        run(entrypoint("http://127.0.0.1:9", "s3://bucket/key")
            .env("IMGBUILD_FETCH_TO", "rel/path"));
    assert_fails(&out, 101, "must be an absolute file path");
}

#[test]
fn missing_credentials_bucket_key_and_version_fail_clearly() {
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY"),
    );
    assert_fails(&out, 102, "no AWS credentials");
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/nope"),
    ));
    assert_fails(
        &out,
        104,
        &format!("no such key: s3://{BUCKET}/nope does not exist"),
    );
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        "s3://no-such-bucket/probe",
    ));
    assert_fails(&out, 104, "no such bucket: no-such-bucket");
    moto.boto3(
        "s3",
        &format!("c.put_bucket_versioning(Bucket='{BUCKET}', VersioningConfiguration={{'Status': 'Enabled'}})"),
    );
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/probe?versionId=doesnotexist"),
    ));
    assert_eq!(out.status.code(), Some(104), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_pinned_version_is_fetched_not_the_latest() {
    let moto = moto();
    moto.boto3(
        "s3",
        &format!("c.put_bucket_versioning(Bucket='{BUCKET}', VersioningConfiguration={{'Status': 'Enabled'}})"),
    );
    moto.put_object(BUCKET, "prog", &probe());
    let v1 = moto.boto3(
        "s3",
        &format!("sys.stdout.write(c.head_object(Bucket='{BUCKET}', Key='prog')['VersionId'])"),
    );
    let text = std::env::temp_dir().join(format!("not-a-program-{}", std::process::id()));
    std::fs::write(&text, "just text\n").unwrap();
    moto.put_object(BUCKET, "prog", &text);
    let _ = std::fs::remove_file(&text);
    let out = run(entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/prog?versionId={v1}"),
    )
    .arg("exit"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "probe ran\n");
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/prog"),
    ));
    assert_fails(&out, 107, "is not executable");
}

#[test]
fn a_wrong_pin_runs_nothing() {
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    let pin = "0".repeat(64);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("probe");
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env("IMGBUILD_SHA256", &pin)
            .env("IMGBUILD_FETCH_TO", &dest),
    );
    assert_fails(&out, 106, &format!("but IMGBUILD_SHA256 pins {pin}"));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no file left behind"
    );
}

#[test]
fn an_s3_sha256_checksum_is_verified() {
    let moto = moto();
    let probe = probe();
    moto.boto3(
        "s3",
        &format!(
            "c.put_object(Bucket='{BUCKET}', Key='probe', Body=open({:?}, 'rb').read(), ChecksumAlgorithm='SHA256')",
            probe.to_str().unwrap()
        ),
    );
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/probe"),
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sha256 ok (S3 checksum)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fetch_to_writes_atomically_and_reuses_a_pinned_file() {
    let moto = moto();
    let probe = probe();
    moto.put_object(BUCKET, "probe", &probe);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("server");
    let pin = sha256_file(&probe);
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env("IMGBUILD_SHA256", &pin)
            .env("IMGBUILD_FETCH_TO", &dest)
            .arg("args"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256_file(&dest), pin);
    let arg0 = format!("arg={}\n", dest.display());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&arg0));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["server"], "no temp file left");
    // With the object gone, the pinned file already there is run without a download.
    moto.boto3(
        "s3",
        &format!("c.delete_object(Bucket='{BUCKET}', Key='probe')"),
    );
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env("IMGBUILD_SHA256", &pin)
            .env("IMGBUILD_FETCH_TO", &dest)
            .arg("exit"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already holds the pinned binary"),
        "{}",
        stderr(&out)
    );
    // A different file there is replaced only by a verified download (here: none exists).
    std::fs::write(&dest, b"stale").unwrap();
    let out = run(
        entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"))
            .env("IMGBUILD_SHA256", &pin)
            .env("IMGBUILD_FETCH_TO", &dest),
    );
    assert_fails(&out, 104, "no such key");
    assert_eq!(std::fs::read(&dest).unwrap(), b"stale");
}

#[test]
fn text_and_foreign_binaries_are_refused() {
    let moto = moto();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    moto.put_object(BUCKET, "notes", &text);
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/notes"),
    ));
    assert_fails(&out, 107, "is not executable");
    moto.put_object(BUCKET, "arm", &go_server(GoBuild::Arm64));
    let out = run(&mut entrypoint(
        &moto.endpoint(),
        &format!("s3://{BUCKET}/arm"),
    ));
    assert_fails(&out, 108, "arm cannot start in this container");
}

/// moto behind the fault proxy.
fn proxied() -> (Moto, FaultProxy) {
    let moto = moto();
    let proxy = FaultProxy::start(([127, 0, 0, 1], moto.port).into());
    (moto, proxy)
}

#[test]
fn retries_5xx_and_resumes_a_cut_body_with_range() {
    let (moto, proxy) = proxied();
    let server = go_server(GoBuild::Static);
    moto.put_object(BUCKET, "server", &server);
    proxy.add(Rule::new(Some("GET"), "/server", Fault::Status(503), 2));
    proxy.add(Rule::new(
        Some("GET"),
        "/server",
        Fault::CutResponseAfter(1 << 20),
        1,
    ));
    proxy.add(Rule::new(
        Some("GET"),
        "/server",
        Fault::CutResponseAfter(100),
        1,
    ));
    let out = run(entrypoint(
        &format!("http://{}", proxy.addr()),
        &format!("s3://{BUCKET}/server"),
    )
    .env("IMGBUILD_SHA256", sha256_file(&server))
    .env("IMGBUILD_PARALLEL", "1")
    .arg("--version"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sample-server go"));
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(
        err.contains("at byte 1048576 of"),
        "resumed at the cut: {err}"
    );
    assert!(err.contains("sha256 ok (pin)"), "{err}");
    assert_eq!(proxy.count("GET", "/server"), 5, "{:?}", proxy.requests());
}

#[test]
fn persistent_faults_run_nothing_and_leave_no_file() {
    let (moto, proxy) = proxied();
    moto.put_object(BUCKET, "probe", &probe());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("probe");
    for fault in [Fault::Status(503), Fault::CutResponseAfter(1000)] {
        proxy.clear_rules();
        proxy.add(Rule::new(Some("GET"), "/probe", fault, 1000));
        let out = run(entrypoint(
            &format!("http://{}", proxy.addr()),
            &format!("s3://{BUCKET}/probe"),
        )
        .env("IMGBUILD_FETCH_TO", &dest)
        .env("IMGBUILD_RETRIES", "2"));
        assert_fails(&out, 105, "gave up after 3 attempts");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{fault:?} left a file"
        );
    }
}

/// The probe padded to 24 MB (an ELF runs with trailing bytes), big enough for ranged GETs.
fn big_probe(dir: &Path) -> PathBuf {
    let p = dir.join("big-probe");
    let mut data = std::fs::read(probe()).unwrap();
    data.extend((0..24u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn large_objects_come_in_parallel_ranges_that_survive_faults() {
    let (moto, proxy) = proxied();
    let dir = tempfile::tempdir().unwrap();
    let big = big_probe(dir.path());
    moto.put_object(BUCKET, "big", &big);
    proxy.add(Rule::new(Some("GET"), "/big", Fault::Status(500), 1));
    let out = run(entrypoint(
        &format!("http://{}", proxy.addr()),
        &format!("s3://{BUCKET}/big"),
    )
    .env("IMGBUILD_SHA256", sha256_file(&big))
    .env("IMGBUILD_PARALLEL", "4")
    .env("IMGBUILD_FETCH_TO", dir.path().join("out"))
    .arg("exit"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("4 parallel ranges"), "{err}");
    assert_eq!(sha256_file(&dir.path().join("out")), sha256_file(&big));
    // One full GET (cut after its first range) plus three ranged GETs, after the 500.
    assert_eq!(proxy.count("GET", "/big"), 5, "{:?}", proxy.requests());
}

/// Runs the probe under supervision (not PID 1: IMGBUILD_EXEC=0 makes it supervise anyway).
fn supervised(moto: &Moto, args: &[&str]) -> Command {
    let mut cmd = entrypoint(&moto.endpoint(), &format!("s3://{BUCKET}/probe"));
    cmd.env("IMGBUILD_EXEC", "0").args(args);
    cmd
}

#[test]
fn supervision_passes_exit_codes_and_deaths_by_signal() {
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    for code in [0, 1, 2, 42, 99, 127, 128, 129, 200, 254, 255] {
        let out = run(&mut supervised(&moto, &["exit", &code.to_string()]));
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    }
    for sig in [
        libc_sig::SIGHUP,
        libc_sig::SIGINT,
        libc_sig::SIGKILL,
        libc_sig::SIGTERM,
        libc_sig::SIGSEGV,
    ] {
        let out = run(&mut supervised(&moto, &["kill", &sig.to_string()]));
        assert_eq!(
            out.status.code(),
            Some(128 + sig),
            "signal {sig}: {}",
            stderr(&out)
        );
    }
}

/// Signal numbers on Linux.
mod libc_sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGSEGV: i32 = 11;
    pub const SIGUSR2: i32 = 12;
    pub const SIGTERM: i32 = 15;
}

fn send(pid: u32, sig: i32) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

#[test]
fn supervision_forwards_signals() {
    use libc_sig::*;
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    let mut child = supervised(&moto, &["signals"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    for sig in [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM] {
        send(child.id(), sig);
        assert_eq!(lines.next().unwrap().unwrap(), format!("got {sig}"));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Whether `pid` is a zombie (or still alive) with parent `parent`.
fn child_of(pid: i32, parent: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let mut f = after.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid: u32 = f.next()?.parse().ok()?;
    (ppid == parent).then_some(state)
}

#[test]
fn supervision_reaps_orphaned_zombies() {
    let moto = moto();
    moto.put_object(BUCKET, "probe", &probe());
    let mut child = supervised(&moto, &["zombie"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let gpid: i32 = line.strip_prefix("grandchild ").unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The orphan is reparented to the entrypoint (its subreaper), exits, and must be reaped.
    while child_of(gpid, child.id()).is_some() {
        assert!(
            Instant::now() < deadline,
            "grandchild {gpid} was not reaped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    send(child.id(), libc_sig::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

// ---- Docker: the image of the top-level Dockerfile, the entrypoint as PID 1 ----

/// Builds the `Dockerfile` image (FROM scratch: nothing to pull) under a unique tag; removed on
/// drop.
struct Image(String);

impl Image {
    fn build() -> Image {
        entrypoint_bin();
        let certs = root().join("target/ca-certificates.crt");
        if !certs.exists() {
            std::fs::copy("/etc/ssl/certs/ca-certificates.crt", &certs)
                .expect("copy CA certificates");
        }
        let tag = format!("imgbuild-entrypoint-test:{}", std::process::id());
        run_ok(
            Command::new("docker")
                .args(["build", "-q", "-t", &tag, "."])
                .current_dir(root()),
        );
        Image(tag)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// A container, removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn docker_run(image: &Image, moto: &Moto, env: &[(&str, String)], args: &[&str]) -> Container {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "-d", "--network", "host"]);
    for (k, v) in moto
        .aws_env()
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .chain(env.iter().cloned())
    {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(&image.0).args(args);
    Container(run_ok(&mut cmd).trim().to_string())
}

fn docker(args: &[&str]) -> String {
    run_ok(Command::new("docker").args(args))
}

/// Waits for the container to exit; returns its exit code and logs.
fn wait_exit(c: &Container) -> (i32, String) {
    let code = docker(&["wait", &c.0]).trim().parse().unwrap();
    let logs = run(Command::new("docker").args(["logs", &c.0]));
    (
        code,
        format!("{}{}", stderr(&logs), String::from_utf8_lossy(&logs.stdout)),
    )
}

#[test]
fn docker_image_serves_stops_on_sigterm_and_refuses_what_cannot_run() {
    let image = Image::build();
    let moto = moto();
    let server = go_server(GoBuild::Static);
    moto.put_object(BUCKET, "server", &server);
    moto.put_object(BUCKET, "cgo-server", &go_server(GoBuild::Cgo));
    moto.put_object(BUCKET, "probe", &probe());

    let port = free_port();
    let c = docker_run(
        &image,
        &moto,
        &[
            ("IMGBUILD_FETCH", format!("s3://{BUCKET}/server")),
            ("IMGBUILD_SHA256", sha256_file(&server)),
            ("PORT", port.to_string()),
        ],
        &["from-docker"],
    );
    let body = http_get(port, "/", None);
    assert!(body.contains(r#"(args ["from-docker"])"#), "{body}");
    let t = Instant::now();
    docker(&["stop", "-t", "30", &c.0]);
    let (code, logs) = wait_exit(&c);
    assert_eq!(
        code, 143,
        "SIGTERM forwarded, not killed after the timeout:\n{logs}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "docker stop waited for the timeout"
    );
    assert!(logs.contains("supervising"), "{logs}");

    let cases: [(&str, Option<String>, i32, &str); 3] = [
        (
            "cgo-server",
            None,
            108,
            "cgo-server cannot start in this container",
        ),
        ("server", Some("1".repeat(64)), 106, "checksum mismatch"),
        ("missing", None, 104, "no such key"),
    ];
    for (key, pin, want, needle) in cases {
        let mut env = vec![("IMGBUILD_FETCH", format!("s3://{BUCKET}/{key}"))];
        if let Some(p) = pin {
            env.push(("IMGBUILD_SHA256", p));
        }
        let c = docker_run(&image, &moto, &env, &[]);
        let (code, logs) = wait_exit(&c);
        assert_eq!(code, want, "{key}: {logs}");
        assert!(
            logs.contains(needle),
            "{key}: expected {needle:?} in {logs}"
        );
    }

    // As PID 1 it reaps the orphan the probe leaves behind.
    let c = docker_run(
        &image,
        &moto,
        &[("IMGBUILD_FETCH", format!("s3://{BUCKET}/probe"))],
        &["zombie"],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let top = loop {
        let logs = run(Command::new("docker").args(["logs", &c.0]));
        if String::from_utf8_lossy(&logs.stdout).contains("grandchild") {
            std::thread::sleep(Duration::from_millis(600));
            break docker(&["top", &c.0, "-o", "pid,stat,args"]);
        }
        assert!(
            Instant::now() < deadline,
            "probe did not start: {}",
            stderr(&logs)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!top.contains(" Z"), "a zombie is left:\n{top}");
    docker(&["stop", &c.0]);
    let (code, _) = wait_exit(&c);
    assert_eq!(code, 0);
}

#[test]
fn access_denied_names_the_principal_and_the_bucket_policy() {
    let moto = Moto::start_enforcing_auth(4);
    let endpoint = moto.endpoint();
    // Four unauthenticated setup actions: bucket, object, an IAM user without policies, its key.
    let key = run_ok(Command::new("python3").arg("-c").arg(format!(
        "import boto3\n\
         kw = dict(endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         s3 = boto3.client('s3', **kw); iam = boto3.client('iam', **kw)\n\
         s3.create_bucket(Bucket='locked-bucket')\n\
         s3.put_object(Bucket='locked-bucket', Key='server', Body=b'x')\n\
         iam.create_user(UserName='task-role-stand-in')\n\
         k = iam.create_access_key(UserName='task-role-stand-in')['AccessKey']\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])"
    )));
    let (id, secret) = key.trim().split_once(' ').expect("access key");
    let out = run(entrypoint(&endpoint, "s3://locked-bucket/server")
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret));
    assert_fails(&out, 103, "access denied: arn:aws:iam::");
    let err = stderr(&out);
    assert!(
        err.contains("user/task-role-stand-in may not read s3://locked-bucket/server"),
        "{err}"
    );
    assert!(
        err.contains("bucket policy") && err.contains("aws:PrincipalArn"),
        "{err}"
    );
}
