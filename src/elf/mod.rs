//! Binary inspection: what an executable needs in order to start.
//!
//! [`analyze`] reads an ELF file or a `#!` script and reports its platform, linkage, program
//! interpreter, needed libraries and Go build info. [`check`] then decides whether it can start
//! inside a given root filesystem (an empty image, the image being built, or the running
//! container) and says exactly what is missing and how to fix it.
//!
//! Invariants: the input is untrusted. Nothing here panics on malformed data, every read is
//! bounded by the input's length, and no allocation is sized by a header field without first
//! checking it against the input.

mod check;
mod gobuildinfo;
mod ldso;
mod reader;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use goblin::elf::header::{ET_CORE, ET_DYN, ET_EXEC, ET_REL};
use goblin::elf::program_header::PT_LOAD;
use serde::Serialize;

use reader::ElfFile;

pub use check::{check, runs_in_empty_image};
pub use ldso::{bundle_closure, BundledFile, HostRoot, ImageRoot, RootFs};

/// Files larger than this are refused by [`analyze_file`] (4 GiB).
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Errors of the analysis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is neither an ELF executable nor a `#!` script.
    #[error("not an executable: {reason}")]
    NotExecutable {
        /// What was found instead.
        reason: String,
    },
    /// The file starts like an ELF file but is malformed or truncated.
    #[error("malformed ELF file: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A library needed for `--bundle-libs` could not be found on the build host.
    #[error("cannot bundle {library}: not found on this host (searched {searched})")]
    LibraryNotFound {
        /// The DT_NEEDED name.
        library: String,
        /// The directories searched, comma-separated.
        searched: String,
    },
}

/// What kind of file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An ELF executable or shared object.
    Elf,
    /// A script starting with `#!`.
    Script,
}

/// An OCI platform (`os`, `architecture`, `variant`), as in an image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI/Go architecture name: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// `v7` for 32-bit ARM, else none.
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// How an ELF executable is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// No interpreter, no needed libraries, fixed address.
    Static,
    /// No interpreter, self-relocating position-independent executable.
    StaticPie,
    /// Needs a program interpreter (the dynamic loader) and usually shared libraries.
    Dynamic,
}

/// Which C library a binary was built against, where that can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// GNU libc.
    Glibc,
    /// musl libc.
    Musl,
}

/// A Go module line of the build info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoModule {
    /// Module path.
    pub path: String,
    /// Module version (`(devel)` for the main module built from a checkout).
    pub version: String,
    /// go.sum hash, when recorded.
    pub sum: Option<String>,
    /// The module replacing this one (an `=>` line), when replaced.
    pub replace: Option<Box<GoModule>>,
}

/// Go build information embedded by Go >= 1.18 (`.go.buildinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoBuildInfo {
    /// Toolchain version, e.g. `go1.19.8`.
    pub version: String,
    /// Main package path.
    pub path: Option<String>,
    /// Main module.
    pub main: Option<GoModule>,
    /// Dependency modules.
    pub deps: Vec<GoModule>,
    /// Build settings (`CGO_ENABLED`, `GOOS`, `GOARCH`, `GOAMD64`, `-tags`, `-ldflags`,
    /// `vcs.revision`, ...).
    pub settings: BTreeMap<String, String>,
}

/// The analysis of one executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// ELF or script.
    pub format: Format,
    /// For ELF: the platform it runs on (None for an unknown machine).
    pub platform: Option<Platform>,
    /// For ELF: 32 or 64.
    pub bits: Option<u8>,
    /// For ELF: `little` or `big`.
    pub endian: Option<&'static str>,
    /// For ELF: how it is linked.
    pub linkage: Option<Linkage>,
    /// PT_INTERP for ELF; the `#!` interpreter for scripts.
    pub interpreter: Option<String>,
    /// The `#!` line's optional argument.
    pub interpreter_arg: Option<String>,
    /// DT_NEEDED entries in order.
    pub needed: Vec<String>,
    /// DT_RPATH entries (colon lists split).
    pub rpath: Vec<String>,
    /// DT_RUNPATH entries (colon lists split).
    pub runpath: Vec<String>,
    /// The C library, where it can be told.
    pub libc: Option<Libc>,
    /// Go build info, when present.
    pub go: Option<GoBuildInfo>,
}

/// One reason a binary cannot start in a root filesystem, with its fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable machine-readable kind: `missing-interpreter`, `missing-library`,
    /// `wrong-platform`, `missing-script-interpreter`, `unknown-machine`.
    pub kind: &'static str,
    /// The cause and the fix, in one sentence a user can act on.
    pub message: String,
}

impl Analysis {
    /// A one-line summary such as `ELF 64-bit little-endian, linux/amd64, dynamic`.
    pub fn summary(&self) -> String {
        match self.format {
            Format::Script => format!(
                "script for {}",
                self.interpreter.as_deref().unwrap_or("(none)")
            ),
            Format::Elf => {
                let mut s = format!(
                    "ELF {}-bit {}-endian, {}",
                    self.bits.unwrap_or(0),
                    self.endian.unwrap_or("?"),
                    self.platform
                        .as_ref()
                        .map_or_else(|| "unknown machine".to_string(), Platform::to_string)
                );
                if let Some(l) = self.linkage {
                    s.push_str(", ");
                    s.push_str(l.as_str());
                }
                s
            }
        }
    }
}

impl Linkage {
    /// `static`, `static-pie` or `dynamic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::StaticPie => "static-pie",
            Linkage::Dynamic => "dynamic",
        }
    }
}

impl Libc {
    /// `glibc` or `musl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

/// Reads and analyses the file at `path` (at most [`MAX_FILE_SIZE`] bytes).
pub fn analyze_file(path: &Path) -> Result<Analysis, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(not_executable("a directory"));
    }
    if !meta.is_file() {
        return Err(not_executable("not a regular file"));
    }
    let too_big = || not_executable(format!("larger than the {} GiB limit", MAX_FILE_SIZE >> 30));
    if meta.len() > MAX_FILE_SIZE {
        return Err(too_big());
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).map_err(|_| too_big())?);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() as u64 > MAX_FILE_SIZE {
        return Err(too_big());
    }
    analyze(&data)
}

/// Analyses an executable held in memory.
pub fn analyze(data: &[u8]) -> Result<Analysis, Error> {
    if data.starts_with(b"#!") {
        return script(data);
    }
    if data.starts_with(b"\x7fELF") {
        return elf(data);
    }
    if !data.is_empty() && b"\x7fELF".starts_with(data) {
        return Err(malformed(format!(
            "truncated: {} bytes, shorter than the ELF identification",
            data.len()
        )));
    }
    Err(not_executable(describe(data)))
}

fn not_executable(reason: impl Into<String>) -> Error {
    Error::NotExecutable {
        reason: reason.into(),
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::Malformed {
        reason: reason.into(),
    }
}

/// Linux reads at most this much of a `#!` line (BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

fn script(data: &[u8]) -> Result<Analysis, Error> {
    let head = &data[2..data.len().min(SHEBANG_MAX)];
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let line = String::from_utf8_lossy(line);
    // Like the kernel: skip leading blanks, cut trailing ones; a '\r' is kept (and reported).
    let line = line.trim_matches([' ', '\t']);
    let (interp, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_matches([' ', '\t'])),
        None => (line, ""),
    };
    if interp.is_empty() {
        return Err(not_executable("script with an empty #! line"));
    }
    Ok(Analysis {
        format: Format::Script,
        platform: None,
        bits: None,
        endian: None,
        linkage: None,
        interpreter: Some(interp.to_string()),
        interpreter_arg: (!arg.is_empty()).then(|| arg.to_string()),
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        libc: None,
        go: None,
    })
}

fn elf(data: &[u8]) -> Result<Analysis, Error> {
    let f = ElfFile::parse(data).map_err(malformed)?;
    match f.header.e_type {
        ET_EXEC | ET_DYN => {}
        ET_REL => {
            return Err(not_executable(
                "ELF relocatable object (.o), not a linked executable",
            ))
        }
        ET_CORE => return Err(not_executable("ELF core dump")),
        t => return Err(not_executable(format!("ELF file of unknown type {t}"))),
    }
    if !f.phdrs.iter().any(|ph| ph.p_type == PT_LOAD) {
        return Err(malformed("no loadable segment (PT_LOAD)"));
    }
    let interpreter = match f.interpreter() {
        None => None,
        Some(Some(i)) if !i.is_empty() => Some(i),
        Some(_) => {
            return Err(malformed(
                "the program interpreter (PT_INTERP) lies outside the file or is not a string",
            ))
        }
    };
    let dynamic = f.dynamic();
    let linkage = if interpreter.is_some() {
        Linkage::Dynamic
    } else if f.header.e_type == ET_EXEC {
        Linkage::Static
    } else if dynamic.flags_1 & reader::DF_1_PIE != 0 {
        Linkage::StaticPie
    } else if f.header.e_entry == 0 {
        return Err(not_executable("ELF shared library (no entry point)"));
    } else if !dynamic.needed.is_empty() {
        return Err(not_executable(format!(
            "ELF shared library (needs {} but has no program interpreter)",
            dynamic.needed.join(", ")
        )));
    } else {
        // Self-relocating without DF_1_PIE: older linkers' static PIEs, or a loader itself.
        Linkage::StaticPie
    };
    let go = gobuildinfo::parse(&f);
    let platform = platform(&f, go.as_ref());
    let libc = detect_libc(&f, interpreter.as_deref(), &dynamic.needed);
    Ok(Analysis {
        format: Format::Elf,
        platform,
        bits: Some(if f.is64 { 64 } else { 32 }),
        endian: Some(if f.le { "little" } else { "big" }),
        linkage: Some(linkage),
        interpreter,
        interpreter_arg: None,
        needed: dynamic.needed,
        rpath: dynamic.rpath,
        runpath: dynamic.runpath,
        libc,
        go,
    })
}

/// The OCI platform of an ELF file, from its machine, class, byte order and OS ABI.
fn platform(f: &ElfFile<'_>, go: Option<&GoBuildInfo>) -> Option<Platform> {
    use goblin::elf::header::*;
    let (arch, variant) = match (f.header.e_machine, f.is64, f.le) {
        (EM_X86_64, true, true) => ("amd64", None),
        (EM_AARCH64, true, true) => ("arm64", None),
        (EM_ARM, false, true) => ("arm", Some(arm_variant(f, go))),
        (EM_386, false, true) => ("386", None),
        (EM_PPC64, true, true) => ("ppc64le", None),
        (EM_PPC64, true, false) => ("ppc64", None),
        (EM_S390, true, false) => ("s390x", None),
        (EM_RISCV, true, true) => ("riscv64", None),
        (EM_MIPS, false, false) => ("mips", None),
        (EM_MIPS, false, true) => ("mipsle", None),
        (EM_MIPS, true, false) => ("mips64", None),
        (EM_MIPS, true, true) => ("mips64le", None),
        (EM_LOONGARCH, true, true) => ("loong64", None),
        _ => return None,
    };
    let os = match f.header.e_ident[EI_OSABI] {
        ELFOSABI_FREEBSD => "freebsd",
        ELFOSABI_NETBSD => "netbsd",
        ELFOSABI_OPENBSD => "openbsd",
        ELFOSABI_SOLARIS => "solaris",
        _ => "linux",
    };
    Some(Platform {
        os: os.to_string(),
        architecture: arch.to_string(),
        variant: variant.map(str::to_string),
    })
}

/// The OCI variant of a 32-bit ARM binary: from Go's GOARM, else the ARM build attributes'
/// `Tag_CPU_arch`, else `v7` (what a hard-float Linux toolchain targets by default).
fn arm_variant(f: &ElfFile<'_>, go: Option<&GoBuildInfo>) -> &'static str {
    if let Some(goarm) = go.and_then(|g| g.settings.get("GOARM")) {
        match goarm.split(',').next().unwrap_or_default() {
            "5" => return "v5",
            "6" => return "v6",
            "7" => return "v7",
            _ => {}
        }
    }
    match f.section(".ARM.attributes").and_then(arm_cpu_arch) {
        Some(0..=5) => "v5",
        Some(6..=9) | Some(11) | Some(12) => "v6",
        Some(10) | Some(13) => "v7",
        Some(14..) => "v8",
        None => "v7",
    }
}

/// `Tag_CPU_arch` from an `.ARM.attributes` section (the "aeabi" vendor's file scope).
fn arm_cpu_arch(sec: &[u8]) -> Option<u64> {
    fn uleb(b: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*pos)?;
            *pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let rest = sec.strip_prefix(b"A")?;
    let mut off = 0usize;
    while off + 4 <= rest.len() {
        let len = usize::try_from(reader::read_u32(rest, off, true)?).ok()?;
        let sub = rest.get(off..off.checked_add(len)?)?;
        off += len.max(4);
        let body = sub.get(4..)?;
        let Some(body) = body.strip_prefix(b"aeabi\0") else {
            continue;
        };
        // File-scope attributes: tag 1, u32 size, then tag/value pairs.
        if body.first() != Some(&1) {
            continue;
        }
        let size = usize::try_from(reader::read_u32(body, 1, true)?).ok()?;
        let attrs = body.get(5..size.min(body.len()))?;
        let mut pos = 0;
        while pos < attrs.len() {
            let tag = uleb(attrs, &mut pos)?;
            match tag {
                6 => return uleb(attrs, &mut pos),
                // NUL-terminated string values.
                4 | 5 | 67 => pos += attrs.get(pos..)?.iter().position(|&c| c == 0)? + 1,
                32 => {
                    uleb(attrs, &mut pos)?;
                    pos += attrs.get(pos..)?.iter().position(|&c| c == 0)? + 1;
                }
                t if t > 32 && t % 2 == 1 => {
                    pos += attrs.get(pos..)?.iter().position(|&c| c == 0)? + 1
                }
                _ => {
                    uleb(attrs, &mut pos)?;
                }
            }
        }
    }
    None
}

/// The C library, from the interpreter or needed names, else (static binaries) from glibc's
/// ABI note or tell-tale symbol names.
fn detect_libc(f: &ElfFile<'_>, interp: Option<&str>, needed: &[String]) -> Option<Libc> {
    if let Some(i) = interp {
        let base = i.rsplit('/').next().unwrap_or(i);
        if base.starts_with("ld-musl-") {
            return Some(Libc::Musl);
        }
        if base.starts_with("ld-linux") || base.starts_with("ld64.so") || base == "ld.so.1" {
            return Some(Libc::Glibc);
        }
    }
    for n in needed {
        if n == "libc.so" || n.starts_with("libc.musl-") {
            return Some(Libc::Musl);
        }
        if n.starts_with("libc.so.6") {
            return Some(Libc::Glibc);
        }
    }
    if interp.is_some() {
        return None;
    }
    // NT_GNU_ABI_TAG ("GNU", type 1) comes from glibc's crt1.o.
    if f.any_note(|name, ty, _| name == b"GNU" && ty == 1) {
        return Some(Libc::Glibc);
    }
    let strtab = f.section(".strtab")?;
    let has = |sym: &[u8]| strtab.windows(sym.len()).any(|w| w == sym);
    if has(b"\0__init_libc\0") || has(b"\0libc_start_main_stage2\0") {
        return Some(Libc::Musl);
    }
    if has(b"\0__libc_start_call_main\0") || has(b"\0_dl_relocate_static_pie\0") {
        return Some(Libc::Glibc);
    }
    None
}

/// Names what a non-executable file is, for [`Error::NotExecutable`].
fn describe(data: &[u8]) -> String {
    let starts = |m: &[u8]| data.starts_with(m);
    if data.is_empty() {
        "empty file".into()
    } else if starts(b"\xcf\xfa\xed\xfe")
        || starts(b"\xce\xfa\xed\xfe")
        || starts(b"\xfe\xed\xfa\xce")
        || starts(b"\xfe\xed\xfa\xcf")
    {
        "Mach-O executable (macOS); build it for Linux (e.g. GOOS=linux)".into()
    } else if starts(b"\xca\xfe\xba\xbe") {
        "Mach-O universal binary (macOS) or Java class file; build it for Linux".into()
    } else if starts(b"MZ") {
        "PE executable (Windows); build it for Linux (e.g. GOOS=linux)".into()
    } else if starts(b"\x1f\x8b") {
        "gzip-compressed data; decompress it first".into()
    } else if starts(b"\x28\xb5\x2f\xfd") {
        "zstd-compressed data; decompress it first".into()
    } else if starts(b"\xfd7zXZ\0") {
        "xz-compressed data; decompress it first".into()
    } else if starts(b"BZh") {
        "bzip2-compressed data; decompress it first".into()
    } else if starts(b"PK\x03\x04") {
        "zip archive; extract the executable first".into()
    } else if data.get(257..262) == Some(b"ustar") {
        "tar archive; extract the executable first".into()
    } else if starts(b"\0asm") {
        "WebAssembly module".into()
    } else if is_text(data) {
        "text file without a #! line (add one, e.g. #!/bin/sh, to run it as a script)".into()
    } else {
        "data of unknown format (neither ELF nor a #! script)".into()
    }
}

/// Whether the first KiB looks like text: UTF-8 (a character cut at the end allowed), no NUL,
/// few control characters.
fn is_text(data: &[u8]) -> bool {
    let head = &data[..data.len().min(1024)];
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() == 1024,
    };
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .count();
    valid && !head.contains(&0) && controls * 20 <= head.len()
}
