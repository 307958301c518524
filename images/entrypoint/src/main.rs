//! imgbuild-entrypoint: the ENTRYPOINT of a fetch-mode image. Fetches the server binary from
//! S3, verifies it, and runs it.
//!
//! 1. Reads `IMGBUILD_FETCH=s3://bucket/key[?versionId=...]`, the optional pin
//!    `IMGBUILD_SHA256` and `IMGBUILD_FETCH_TO` (see [`config`]).
//! 2. Downloads the object through the standard AWS credential chain, streamed with sha256 on
//!    the way, retried and resumed with Range requests (see [`fetch`]), into a sealed memfd or
//!    a temp file renamed into place only once verified.
//! 3. Verifies the length, the pin and S3's full-object SHA-256 checksum, then runs the same
//!    startability analysis as `imgbuild inspect` (`imgbuild::elf`) against this container.
//! 4. Execs the program, or as PID 1 supervises it like tini (see [`run`]).
//!
//! It never runs a partial, unverified or mismatching file, and every failure is one line on
//! stderr with its own exit code:
//!
//! | exit | meaning |
//! |---|---|
//! | 100 | `IMGBUILD_FETCH` is not set |
//! | 101 | malformed configuration: the S3 URL, `IMGBUILD_SHA256` or another `IMGBUILD_*` value |
//! | 102 | no AWS credentials, or S3 rejected them |
//! | 103 | access denied (names the principal and the bucket) |
//! | 104 | no such bucket, key or version |
//! | 105 | the download failed after retries (network, 5xx), or the object changed meanwhile |
//! | 106 | checksum mismatch: the pin or S3's checksum does not match what arrived |
//! | 107 | not executable: the object is not an ELF executable or `#!` script |
//! | 108 | cannot start: wrong architecture, missing interpreter or libraries, exec failed |
//! | 109 | cannot write the download (`IMGBUILD_FETCH_TO`'s directory, memory) |
//!
//! Otherwise the exit status is the program's own (128+N when it died of signal N).

mod config;
mod fetch;
mod run;

use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use config::{Config, RunMode};
use imgbuild::elf;
use run::{Mapped, Program};

/// The entrypoint's own exit codes (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// `IMGBUILD_FETCH` is not set.
    NoFetch = 100,
    /// A malformed `IMGBUILD_*` value.
    BadConfig = 101,
    /// No credentials, or rejected ones.
    NoCredentials = 102,
    /// S3 denied access.
    AccessDenied = 103,
    /// No such bucket, key or version.
    NotFound = 104,
    /// The download failed after retries.
    Download = 105,
    /// The content does not match the pin or S3's checksum.
    Mismatch = 106,
    /// Not an executable.
    NotExecutable = 107,
    /// The executable cannot start here.
    CannotStart = 108,
    /// Local I/O failed.
    Io = 109,
}

/// A failure that ends the entrypoint: one line on stderr, one exit code.
#[derive(Debug)]
pub struct Fatal {
    /// The exit code.
    pub exit: Exit,
    /// The cause and the fix.
    pub message: String,
}

impl Fatal {
    /// A failure with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

/// Writes one log line to stderr.
pub fn log(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "imgbuild-entrypoint: {msg}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// This process's peak resident memory so far (VmHWM), for the log.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(mb(kb * 1024))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The platform this entrypoint was built for, which is the one it runs on.
fn host_platform() -> elf::Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    elf::Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: None,
    }
}

fn main() {
    let started = Instant::now();
    let code = match prepare(started) {
        Ok((program, mode)) => start(&program, mode, started),
        Err(f) => {
            log(&f.message);
            f.exit as u8
        }
    };
    std::process::exit(i32::from(code));
}

/// Everything up to a verified, checked program.
fn prepare(started: Instant) -> Result<(Program, RunMode), Fatal> {
    let cfg = Config::from_env()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal::new(Exit::Io, format!("cannot start the async runtime: {e}")))?;
    let (file, len, arg0) = rt.block_on(obtain(&cfg))?;
    drop(rt);
    let name = cfg.object.name();
    let map = Mapped::new(&file, len as usize)
        .map_err(|e| Fatal::new(Exit::Io, format!("cannot map the download: {e}")))?;
    let analysis = elf::analyze(map.bytes()).map_err(|e| {
        Fatal::new(
            Exit::NotExecutable,
            format!(
                "{} ({}) is not executable: {e}; upload the server binary itself",
                cfg.object,
                mb(len)
            ),
        )
    })?;
    drop(map);
    let problems = elf::check(
        name,
        &analysis,
        &elf::HostRoot("/".into()),
        Some(&host_platform()),
    );
    if !problems.is_empty() {
        let why: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        return Err(Fatal::new(
            Exit::CannotStart,
            format!("{name} cannot start in this container: {}", why.join("; ")),
        ));
    }
    let is_script = analysis.format == elf::Format::Script;
    let mut program = Program::new(
        file,
        &arg0,
        std::env::args_os().skip(1),
        config::child_env(),
    );
    if is_script {
        match &cfg.fetch_to {
            Some(p) => {
                program.script_path =
                    Some(std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default())
            }
            None => program.keep_fd = true,
        }
    }
    let how = match cfg.run_mode {
        RunMode::Exec => "exec",
        RunMode::Supervise => "supervising",
    };
    let kind = match (analysis.linkage, &analysis.platform) {
        (Some(l), Some(p)) => format!("{l:?} {p}").to_lowercase(),
        _ => format!("{:?}", analysis.format).to_lowercase(),
    };
    log(&format!(
        "starting {name} ({kind}, {how}) {} ms after start, peak memory {}",
        started.elapsed().as_millis(),
        peak_memory()
    ));
    Ok((program, cfg.run_mode))
}

/// Runs the program; returns the exit code when it does not replace us.
fn start(program: &Program, mode: RunMode, _started: Instant) -> u8 {
    match mode {
        RunMode::Exec => {
            let e = program.exec();
            log(&format!("cannot start the program: {e}"));
            Exit::CannotStart as u8
        }
        RunMode::Supervise => match program.supervise() {
            Ok(code) => code,
            Err(e) => {
                log(&format!("cannot start the program: {e}"));
                Exit::CannotStart as u8
            }
        },
    }
}

/// Fetches and verifies; returns the file to run (read-only, content fixed), its length and
/// argv[0].
async fn obtain(cfg: &Config) -> Result<(File, u64, Vec<u8>), Fatal> {
    match &cfg.fetch_to {
        None => {
            let file = run::memfd(cfg.object.name())
                .map_err(|e| Fatal::new(Exit::Io, format!("memfd_create failed: {e}")))?;
            let len = download(cfg, &file).await?;
            run::seal(&file)
                .map_err(|e| Fatal::new(Exit::Io, format!("cannot seal the memfd: {e}")))?;
            Ok((file, len, cfg.object.name().as_bytes().to_vec()))
        }
        Some(dest) => {
            let arg0 = dest.as_os_str().as_bytes().to_vec();
            if let Some(pin) = &cfg.sha256 {
                if let Some((file, len)) = cached(dest, pin)? {
                    return Ok((file, len, arg0));
                }
            }
            let (tmp, file) = temp_file(dest)?;
            let guard = RemoveOnDrop(Some(tmp.clone()));
            let len = download(cfg, &file).await?;
            file.sync_all().map_err(|e| io_error(&tmp, &e))?;
            drop(file);
            std::fs::rename(&tmp, dest).map_err(|e| io_error(dest, &e))?;
            std::mem::forget(guard);
            if let Some(dir) = dest.parent().and_then(|d| File::open(d).ok()) {
                let _ = dir.sync_all();
            }
            let file = File::open(dest).map_err(|e| io_error(dest, &e))?;
            Ok((file, len, arg0))
        }
    }
}

/// Removes a temp file unless disarmed (by `mem::forget`).
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Fatal {
    Fatal::new(
        Exit::Io,
        format!(
            "cannot write {}: {e}; IMGBUILD_FETCH_TO must be in a writable directory",
            path.display()
        ),
    )
}

/// A new executable temp file next to `dest`.
fn temp_file(dest: &Path) -> Result<(PathBuf, File), Fatal> {
    let dir = dest.parent().unwrap_or(Path::new("/"));
    let base = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{base}.{}.imgbuild-tmp", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, &e))?;
    Ok((tmp, file))
}

/// An existing `dest` with the pinned hash, opened read-only; None when absent or different.
fn cached(dest: &Path, pin: &[u8; 32]) -> Result<Option<(File, u64)>, Fatal> {
    let Ok(file) = File::open(dest) else {
        return Ok(None);
    };
    let t = Instant::now();
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let sha = fetch::hash_file(&file, len)?;
    if sha != *pin {
        log(&format!(
            "{} is there but its sha256 is {}, not the pinned one; fetching",
            dest.display(),
            hex(&sha)
        ));
        return Ok(None);
    }
    log(&format!(
        "{} already holds the pinned binary ({}, hashed in {} ms); not fetching",
        dest.display(),
        mb(len),
        t.elapsed().as_millis()
    ));
    Ok(Some((file, len)))
}

/// Downloads into `file` and verifies the result; returns the length.
async fn download(cfg: &Config, file: &File) -> Result<u64, Fatal> {
    let mut s3 = fetch::S3::connect(cfg).await?;
    let got = fetch::fetch(&mut s3, cfg, file).await?;
    let mut checks = Vec::new();
    if let Some(s3sum) = got.s3_sha256 {
        if s3sum != got.sha256 {
            return Err(Fatal::new(
                Exit::Mismatch,
                format!(
                    "checksum mismatch: {} arrived with sha256 {} but S3 stored {}; not running it",
                    cfg.object,
                    hex(&got.sha256),
                    hex(&s3sum)
                ),
            ));
        }
        checks.push("S3 checksum");
    }
    if let Some(pin) = &cfg.sha256 {
        if *pin != got.sha256 {
            return Err(Fatal::new(
                Exit::Mismatch,
                format!(
                    "checksum mismatch: {} has sha256 {}, but IMGBUILD_SHA256 pins {}; not \
                     running it (upload the pinned build, or update the pin)",
                    cfg.object,
                    hex(&got.sha256),
                    hex(pin)
                ),
            ));
        }
        checks.push("pin");
    }
    let ms = got.elapsed.as_millis();
    let rate = got.len as f64 / 1e6 / got.elapsed.as_secs_f64().max(1e-6);
    let parts = if got.parts > 1 {
        format!(", {} parallel ranges", got.parts)
    } else {
        String::new()
    };
    let retries = if got.retries > 0 {
        format!(", {} retries", got.retries)
    } else {
        String::new()
    };
    let verdict = if checks.is_empty() {
        format!(
            "sha256 {} (unverified: set IMGBUILD_SHA256 to pin it)",
            hex(&got.sha256)
        )
    } else {
        format!("sha256 ok ({})", checks.join(" and "))
    };
    log(&format!(
        "fetched {} in {ms} ms ({rate:.0} MB/s{parts}{retries}), {verdict}",
        mb(got.len)
    ));
    Ok(got.len)
}
