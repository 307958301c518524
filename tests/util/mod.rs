//! Shared test harness: the `imgbuild` binary under test, and fixtures built from source by the
//! tests (Go servers, C programs). Nothing here is committed as a binary.
//!
//! Fixtures are built once per checkout into `target/tmp/fixtures` and reused; concurrent test
//! processes each build into a temp file and rename, so a reader never sees a partial binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command running the `imgbuild` binary under test.
pub fn imgbuild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgbuild"))
}

/// Runs `cmd`, returning its output; panics with the command line when it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` and asserts it succeeded, returning stdout as a string.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// The directory holding built fixtures.
pub fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&dir).expect("create fixtures dir");
    dir
}

/// Builds `name` in the fixtures dir with `build(tmp_path)` unless it is already there.
///
/// Builds are serialised within a test process (tests run on threads) and go to a temp name
/// that is unique per process, so concurrent test processes never see a partial file.
pub fn cached(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dest = fixtures_dir().join(name);
    if dest.exists() {
        return dest;
    }
    let tmp = fixtures_dir().join(format!(".{name}.{}.tmp", std::process::id()));
    build(&tmp);
    assert!(tmp.exists(), "building fixture {name} produced no file");
    std::fs::rename(&tmp, &dest).expect("rename fixture into place");
    dest
}

/// Variants of the sample Go server (`images/sample-server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoBuild {
    /// cgo on (Go's default with gcc present): dynamically linked against glibc.
    Cgo,
    /// `CGO_ENABLED=0`: static.
    Static,
    /// `CGO_ENABLED=0 GOARCH=arm64`: static, for linux/arm64.
    Arm64,
    /// `CGO_ENABLED=0`, `-trimpath -ldflags=-s -w -tags netgo`: stripped, with settings to read.
    StaticStripped,
}

/// The sample Go server built as `variant`.
pub fn go_server(variant: GoBuild) -> PathBuf {
    let name = format!("go-server-{variant:?}").to_lowercase();
    cached(&name, |out| {
        let mut cmd = Command::new("go");
        cmd.current_dir(root().join("images/sample-server"))
            .env("GOCACHE", fixtures_dir().join("gocache"))
            .env("GOFLAGS", "-buildvcs=false")
            .env("GOOS", "linux")
            .arg("build")
            .arg("-o")
            .arg(out);
        match variant {
            GoBuild::Cgo => cmd.env("CGO_ENABLED", "1").env("GOARCH", "amd64"),
            GoBuild::Static => cmd.env("CGO_ENABLED", "0").env("GOARCH", "amd64"),
            GoBuild::Arm64 => cmd.env("CGO_ENABLED", "0").env("GOARCH", "arm64"),
            GoBuild::StaticStripped => cmd.env("CGO_ENABLED", "0").env("GOARCH", "amd64").args([
                "-trimpath",
                "-tags",
                "netgo,osusergo",
                "-ldflags",
                "-s -w",
            ]),
        };
        run_ok(cmd.arg("."));
    })
}

/// Ways to build the C fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CBuild {
    /// gcc, dynamically linked against glibc.
    GccDynamic,
    /// gcc `-static`.
    GccStatic,
    /// gcc `-static-pie`.
    GccStaticPie,
    /// musl-gcc `-static`.
    MuslStatic,
    /// musl-gcc, dynamically linked against musl.
    MuslDynamic,
}

/// A small C program printing a line, built as `variant`.
pub fn c_program(variant: CBuild) -> PathBuf {
    let src = fixtures_dir().join("hello.c");
    if !src.exists() {
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n",
        )
        .expect("write hello.c");
    }
    let name = format!("c-{variant:?}").to_lowercase();
    cached(&name, |out| {
        let (cc, flags): (&str, &[&str]) = match variant {
            CBuild::GccDynamic => ("gcc", &[]),
            CBuild::GccStatic => ("gcc", &["-static"]),
            CBuild::GccStaticPie => ("gcc", &["-static-pie", "-fPIE"]),
            CBuild::MuslStatic => ("musl-gcc", &["-static"]),
            CBuild::MuslDynamic => ("musl-gcc", &[]),
        };
        run_ok(
            Command::new(cc)
                .args(flags)
                .arg("-O2")
                .arg("-o")
                .arg(out)
                .arg(&src),
        );
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    format!("{:x}", Sha256::digest(&data))
}

pub mod docker;
pub mod faultproxy;
pub mod moto;
pub mod registry;
