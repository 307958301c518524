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
pub use ldso::{bundle_closure, bundle_closure_at, BundledFile, HostRoot, ImageRoot, RootFs};

/// Files larger than this are refused by [`analyze_file`] (4 GiB).
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Errors of the analysis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read. The cause is the error's `source()`, not repeated in its
    /// message (print the chain, e.g. anyhow's `{:#}`).
    #[error("cannot read {path}")]
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
    // Look before opening: opening a FIFO would block until a writer appears.
    let meta = std::fs::metadata(path).map_err(io)?;
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
    let mut file = File::open(path).map_err(io)?;
    // Scripts and non-executables are told from the first KiB; only ELF files are read whole.
    let mut data = Vec::new();
    (&mut file).take(1024).read_to_end(&mut data).map_err(io)?;
    if !data.starts_with(b"\x7fELF") {
        return analyze(&data);
    }
    let len = usize::try_from(meta.len()).map_err(|_| too_big())?;
    data.reserve(len.saturating_sub(data.len()));
    file.take(MAX_FILE_SIZE + 1 - data.len() as u64)
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
        return elf(data, false);
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

/// Analyses a shared library for the loader's closure: like [`analyze`] for ELF files, but a
/// library without entry point or interpreter is fine.
pub(crate) fn analyze_library(data: &[u8]) -> Result<Analysis, Error> {
    if !data.starts_with(b"\x7fELF") {
        return Err(not_executable(describe(data)));
    }
    elf(data, true)
}

fn elf(data: &[u8], library: bool) -> Result<Analysis, Error> {
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
    } else if library {
        Linkage::Dynamic
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
    // Tell-tale symbol names, in one pass over the symbol string table.
    let strtab = f.section(".strtab")?;
    for sym in strtab.split(|&b| b == 0) {
        match sym {
            b"__init_libc" | b"libc_start_main_stage2" => return Some(Libc::Musl),
            b"__libc_start_call_main" | b"_dl_relocate_static_pie" => return Some(Libc::Glibc),
            _ => {}
        }
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

/// A builder of small, valid ELF files for unit tests: one RW PT_LOAD covering the file,
/// optional PT_INTERP and PT_DYNAMIC, and a data blob at a fixed virtual address.
#[cfg(test)]
pub(crate) mod testelf {
    /// Where the single PT_LOAD is mapped.
    pub const BASE: u64 = 0x40_0000;
    /// File offset of the data blob.
    pub const BLOB_OFFSET: usize = 0x1000;
    /// Virtual address of the data blob.
    pub const BLOB_VADDR: u64 = BASE + BLOB_OFFSET as u64;

    /// What to put in the file.
    #[derive(Default)]
    pub struct Spec {
        pub is32: bool,
        pub big_endian: bool,
        pub machine: u16,
        pub e_type: u16,
        pub entry: u64,
        pub interp: Option<String>,
        pub needed: Vec<String>,
        pub rpath: Option<String>,
        pub runpath: Option<String>,
        pub soname: Option<String>,
        pub flags_1: u64,
        pub blob: Vec<u8>,
    }

    impl Spec {
        /// An x86-64 position-independent executable with an entry point.
        pub fn amd64() -> Self {
            Spec {
                machine: 62,
                e_type: 3,
                entry: BASE + 0x100,
                ..Spec::default()
            }
        }
    }

    struct W {
        out: Vec<u8>,
        le: bool,
        is32: bool,
    }

    impl W {
        fn put(&mut self, at: usize, bytes: &[u8]) {
            if self.out.len() < at + bytes.len() {
                self.out.resize(at + bytes.len(), 0);
            }
            self.out[at..at + bytes.len()].copy_from_slice(bytes);
        }
        fn u16(&mut self, at: usize, v: u16) {
            let b = if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            self.put(at, &b);
        }
        fn u32(&mut self, at: usize, v: u32) {
            let b = if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            self.put(at, &b);
        }
        fn u64(&mut self, at: usize, v: u64) {
            let b = if self.le {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            self.put(at, &b);
        }
        /// A word of the file's class.
        fn word(&mut self, at: usize, v: u64) {
            if self.is32 {
                self.u32(at, v as u32);
            } else {
                self.u64(at, v);
            }
        }
    }

    /// Builds the file.
    pub fn build(spec: &Spec) -> Vec<u8> {
        let mut w = W {
            out: Vec::new(),
            le: !spec.big_endian,
            is32: spec.is32,
        };
        let (ehsize, phentsize, wsz) = if spec.is32 { (52, 32, 4) } else { (64, 56, 8) };
        // Strings at 0x400, dynamic table at 0x800, blob at 0x1000.
        let mut strtab = vec![0u8];
        let mut add_str = |s: &str| {
            let off = strtab.len() as u64;
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
            off
        };
        let interp_off = spec
            .interp
            .as_ref()
            .map(|i| (add_str(i), i.len() as u64 + 1));
        let mut dyns: Vec<(u64, u64)> = Vec::new();
        for n in &spec.needed {
            dyns.push((1, add_str(n)));
        }
        if let Some(r) = &spec.rpath {
            dyns.push((15, add_str(r)));
        }
        if let Some(r) = &spec.runpath {
            dyns.push((29, add_str(r)));
        }
        if let Some(s) = &spec.soname {
            dyns.push((14, add_str(s)));
        }
        if spec.flags_1 != 0 {
            dyns.push((0x6fff_fffb, spec.flags_1));
        }
        let has_dynamic = !dyns.is_empty();
        dyns.push((5, BASE + 0x400));
        dyns.push((10, strtab.len() as u64));
        dyns.push((0, 0));
        w.put(0x400, &strtab);
        for (i, (tag, val)) in dyns.iter().enumerate() {
            w.word(0x800 + i * 2 * wsz, *tag);
            w.word(0x800 + i * 2 * wsz + wsz, *val);
        }
        w.put(BLOB_OFFSET, &spec.blob);
        w.put(BLOB_OFFSET + spec.blob.len(), &[0; 16]);
        let file_len = w.out.len() as u64;

        let mut phdrs: Vec<[u64; 7]> = Vec::new();
        // type, flags, offset, vaddr, filesz, memsz, align
        if let Some((off, len)) = interp_off {
            phdrs.push([3, 4, 0x400 + off, BASE + 0x400 + off, len, len, 1]);
        }
        phdrs.push([1, 6, 0, BASE, file_len, file_len, 0x1000]);
        if has_dynamic {
            let size = (dyns.len() * 2 * wsz) as u64;
            phdrs.push([2, 6, 0x800, BASE + 0x800, size, size, 8]);
        }
        w.put(0, b"\x7fELF");
        w.put(
            4,
            &[
                if spec.is32 { 1 } else { 2 },
                if spec.big_endian { 2 } else { 1 },
                1,
            ],
        );
        w.u16(16, spec.e_type);
        w.u16(18, spec.machine);
        w.u32(20, 1);
        w.word(24, spec.entry);
        let phoff = ehsize as u64;
        w.word(24 + wsz, phoff);
        w.word(24 + 2 * wsz, 0);
        let rest = 24 + 3 * wsz + 4;
        w.u16(rest, ehsize as u16);
        w.u16(rest + 2, phentsize as u16);
        w.u16(rest + 4, phdrs.len() as u16);
        w.u16(rest + 6, if spec.is32 { 40 } else { 64 });
        for (i, p) in phdrs.iter().enumerate() {
            let at = ehsize + i * phentsize;
            w.u32(at, p[0] as u32);
            if spec.is32 {
                w.u32(at + 4, p[2] as u32);
                w.u32(at + 8, p[3] as u32);
                w.u32(at + 12, p[3] as u32);
                w.u32(at + 16, p[4] as u32);
                w.u32(at + 20, p[5] as u32);
                w.u32(at + 24, p[1] as u32);
                w.u32(at + 28, p[6] as u32);
            } else {
                w.u32(at + 4, p[1] as u32);
                for (j, v) in p[2..].iter().enumerate() {
                    w.u64(at + 8 + j * 8, *v);
                }
            }
        }
        w.out
    }
}

#[cfg(test)]
mod tests {
    use super::testelf::{build, Spec, BLOB_VADDR};
    use super::*;

    const MODINFO: &str = "path\texample.com/cmd/app\nmod\texample.com\tv1.2.3\th1:x=\n\
                           build\tCGO_ENABLED=0\nbuild\t-ldflags=\"-s -w\"\n";

    fn wrapped() -> Vec<u8> {
        let mut m = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        m.extend_from_slice(MODINFO.as_bytes());
        m.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        m
    }

    fn assert_go(a: &Analysis, version: &str) {
        let go = a.go.as_ref().expect("go build info");
        assert_eq!(go.version, version);
        assert_eq!(go.path.as_deref(), Some("example.com/cmd/app"));
        let main = go.main.as_ref().unwrap();
        assert_eq!(
            (main.path.as_str(), main.version.as_str()),
            ("example.com", "v1.2.3")
        );
        assert_eq!(go.settings["-ldflags"], "-s -w");
        assert_eq!(go.settings["CGO_ENABLED"], "0");
    }

    /// The inline form (Go >= 1.18), found by the segment scan (no section headers).
    #[test]
    fn go_buildinfo_inline_form() {
        let mut blob = b"\xff Go buildinf:\x08\x02".to_vec();
        blob.resize(32, 0);
        for s in [&b"go1.21.0"[..], &wrapped()] {
            let mut n = s.len();
            while n >= 0x80 {
                blob.push(n as u8 | 0x80);
                n >>= 7;
            }
            blob.push(n as u8);
            blob.extend_from_slice(s);
        }
        let a = analyze(&build(&Spec {
            blob,
            ..Spec::amd64()
        }))
        .unwrap();
        assert_go(&a, "go1.21.0");
        assert_eq!(a.linkage, Some(Linkage::StaticPie));
    }

    /// Lays out the pointer form (Go 1.13 to 1.17): header, two string headers, the strings.
    fn pointer_blob(ptr: usize, big_endian: bool) -> Vec<u8> {
        let word = |v: u64| -> Vec<u8> {
            match (ptr, big_endian) {
                (4, false) => (v as u32).to_le_bytes().to_vec(),
                (4, true) => (v as u32).to_be_bytes().to_vec(),
                (_, false) => v.to_le_bytes().to_vec(),
                (_, true) => v.to_be_bytes().to_vec(),
            }
        };
        let version = b"go1.16.15".to_vec();
        let modinfo = wrapped();
        // Header (32), then string headers at 32 and 32 + 2*ptr, strings at 64 and 128.
        let hdr1 = BLOB_VADDR + 32;
        let hdr2 = hdr1 + 2 * ptr as u64;
        let (s1, s2) = (BLOB_VADDR + 64, BLOB_VADDR + 128);
        let mut blob = b"\xff Go buildinf:".to_vec();
        blob.push(ptr as u8);
        blob.push(u8::from(big_endian));
        blob.extend(word(hdr1));
        blob.extend(word(hdr2));
        blob.resize(32, 0);
        blob.extend(word(s1));
        blob.extend(word(version.len() as u64));
        blob.extend(word(s2));
        blob.extend(word(modinfo.len() as u64));
        blob.resize(64, 0);
        blob.extend(&version);
        blob.resize(128, 0);
        blob.extend(&modinfo);
        blob
    }

    #[test]
    fn go_buildinfo_pointer_form_64_little() {
        let a = analyze(&build(&Spec {
            blob: pointer_blob(8, false),
            ..Spec::amd64()
        }))
        .unwrap();
        assert_go(&a, "go1.16.15");
    }

    #[test]
    fn go_buildinfo_pointer_form_32_big_endian() {
        let a = analyze(&build(&Spec {
            is32: true,
            big_endian: true,
            machine: goblin::elf::header::EM_MIPS,
            e_type: ET_EXEC,
            entry: testelf::BASE,
            blob: pointer_blob(4, true),
            ..Spec::default()
        }))
        .unwrap();
        assert_go(&a, "go1.16.15");
        assert_eq!(a.platform.unwrap().to_string(), "linux/mips");
        assert_eq!((a.bits, a.endian), (Some(32), Some("big")));
        assert_eq!(a.linkage, Some(Linkage::Static));
    }

    /// Pointers into nowhere and lengths past the end yield no build info, not a crash.
    #[test]
    fn go_buildinfo_lying_pointers() {
        let mut blob = pointer_blob(8, false);
        blob[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let a = analyze(&build(&Spec {
            blob,
            ..Spec::amd64()
        }))
        .unwrap();
        assert!(a.go.is_none());
        let mut blob = pointer_blob(8, false);
        blob[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let a = analyze(&build(&Spec {
            blob,
            ..Spec::amd64()
        }))
        .unwrap();
        assert!(a.go.is_none());
    }

    #[test]
    fn dynamic_fields_and_linkage() {
        let a = analyze(&build(&Spec {
            interp: Some("/lib/ld-musl-aarch64.so.1".into()),
            needed: vec!["libz.so.1".into(), "libc.musl-aarch64.so.1".into()],
            runpath: Some("$ORIGIN/../lib:/opt/lib".into()),
            flags_1: reader::DF_1_PIE,
            machine: goblin::elf::header::EM_AARCH64,
            ..Spec::amd64()
        }))
        .unwrap();
        assert_eq!(a.linkage, Some(Linkage::Dynamic));
        assert_eq!(a.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(a.needed, ["libz.so.1", "libc.musl-aarch64.so.1"]);
        assert_eq!(a.runpath, ["$ORIGIN/../lib", "/opt/lib"]);
        assert_eq!(a.libc, Some(Libc::Musl));
    }

    #[test]
    fn shared_library_and_objects_are_not_executables() {
        let lib = Spec {
            needed: vec!["libc.so.6".into()],
            soname: Some("libfoo.so.1".into()),
            entry: 0,
            ..Spec::amd64()
        };
        assert!(matches!(
            analyze(&build(&lib)),
            Err(Error::NotExecutable { .. })
        ));
        let obj = Spec {
            e_type: ET_REL,
            ..Spec::amd64()
        };
        let e = analyze(&build(&obj)).unwrap_err().to_string();
        assert!(e.contains("relocatable object"), "{e}");
    }

    #[test]
    fn unknown_machine_has_no_platform_and_a_problem() {
        let a = analyze(&build(&Spec {
            machine: 0x9026, // not a Linux machine imgbuild knows
            ..Spec::amd64()
        }))
        .unwrap();
        assert_eq!(a.platform, None);
        let p = check("x", &a, &ImageRoot::default(), None);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, "unknown-machine");
    }

    #[test]
    fn scripts() {
        let a = analyze(b"#! /usr/bin/env  python3 -u \nprint(1)\n").unwrap();
        assert_eq!(a.format, Format::Script);
        assert_eq!(a.interpreter.as_deref(), Some("/usr/bin/env"));
        assert_eq!(a.interpreter_arg.as_deref(), Some("python3 -u"));
        let a = analyze(b"#!/bin/sh").unwrap();
        assert_eq!(
            (a.interpreter.as_deref(), a.interpreter_arg),
            (Some("/bin/sh"), None)
        );
        // The kernel reads only the first 256 bytes, `#!` included.
        let long = format!("#!/{}\n", "x".repeat(1000));
        assert_eq!(
            analyze(long.as_bytes()).unwrap().interpreter.unwrap().len(),
            254
        );
        assert!(matches!(
            analyze(b"#!  \n"),
            Err(Error::NotExecutable { .. })
        ));
    }

    #[test]
    fn describes_non_executables() {
        let reason = |d: &[u8]| match analyze(d) {
            Err(Error::NotExecutable { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(b""), "empty file");
        assert!(reason(b"MZ\x90\0").starts_with("PE executable"));
        assert!(reason(b"\x1f\x8b\x08\0").starts_with("gzip"));
        assert!(reason("héllo wörld\n".as_bytes()).starts_with("text file"));
        assert!(reason(&[0u8, 1, 2, 3, 200, 201]).starts_with("data of unknown format"));
        assert!(matches!(analyze(b"\x7fEL"), Err(Error::Malformed { .. })));
        assert!(matches!(
            analyze(b"\x7fELF\x03\x01"),
            Err(Error::Malformed { .. })
        ));
    }

    /// Property: byte flips and truncations of small files of every class and byte order
    /// (pointer-form and inline build info, dynamic tables) never panic `analyze` or `check`.
    /// Deterministic: a fixed-seed xorshift; bounded by the case count.
    #[test]
    fn mutated_hand_made_files_never_panic() {
        let mut inline = b"\xff Go buildinf:\x08\x02".to_vec();
        inline.resize(32, 0);
        inline.extend([
            8, b'g', b'o', b'1', b'.', b'2', b'2', b'.', b'0', 4, b'p', b'a', b't', b'h',
        ]);
        let files = [
            build(&Spec {
                blob: pointer_blob(8, false),
                interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
                needed: vec!["libc.so.6".into()],
                runpath: Some("$ORIGIN:/x".into()),
                ..Spec::amd64()
            }),
            build(&Spec {
                is32: true,
                big_endian: true,
                machine: goblin::elf::header::EM_MIPS,
                e_type: ET_EXEC,
                entry: testelf::BASE,
                needed: vec!["libm.so.6".into()],
                soname: Some("x".into()),
                blob: pointer_blob(4, true),
                ..Spec::default()
            }),
            build(&Spec {
                is32: true,
                machine: goblin::elf::header::EM_ARM,
                blob: inline,
                flags_1: reader::DF_1_PIE,
                ..Spec::amd64()
            }),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut ok = 0;
        for original in &files {
            for case in 0..1500 {
                let mut data = original.clone();
                for _ in 0..1 + rand(8) {
                    let at = rand(data.len());
                    data[at] = match rand(3) {
                        0 => 0xff,
                        1 => 0,
                        _ => rand(256) as u8,
                    };
                }
                let end = if case % 5 == 0 {
                    rand(data.len())
                } else {
                    data.len()
                };
                if let Ok(a) = analyze(&data[..end]) {
                    ok += 1;
                    let _ = check("x", &a, &ImageRoot::default(), a.platform.as_ref());
                }
            }
        }
        assert!(ok > 1000, "mutations mostly still parse: {ok}");
    }

    #[test]
    fn arm_attributes_give_the_variant() {
        // "A", one "aeabi" subsection, file scope: Tag_CPU_name "6", Tag_CPU_arch = 6 (v6).
        let mut file_attrs = vec![5u8, b'6', 0, 6, 6];
        let size = 5 + file_attrs.len() as u32;
        let mut sub = b"aeabi\0".to_vec();
        sub.push(1);
        sub.extend(size.to_le_bytes());
        sub.append(&mut file_attrs);
        let mut sec = b"A".to_vec();
        sec.extend((4 + sub.len() as u32).to_le_bytes());
        sec.extend(sub);
        assert_eq!(arm_cpu_arch(&sec), Some(6));
        assert_eq!(arm_cpu_arch(b"A\xff\xff\xff\xff"), None);
        assert_eq!(arm_cpu_arch(b""), None);
    }
}
