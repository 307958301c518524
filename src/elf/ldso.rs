//! Library resolution as the dynamic loader does it (RUNPATH/RPATH with `$ORIGIN`,
//! `/etc/ld.so.conf` and its includes, musl's `/etc/ld-musl-ARCH.path`, the standard and
//! multiarch directories), over any root filesystem: the build host, an image being built, or
//! the running container.
//!
//! Invariants: paths are always resolved inside the root (an absolute symlink in a
//! [`HostRoot`] other than `/` points into that root, never to the real `/`); symlink chains,
//! `include` nesting and the closure's size are capped, so hostile trees cannot loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::{analyze_library, Analysis, Error, Format, Libc, Linkage, MAX_FILE_SIZE};

/// Symlinks followed while resolving one path (the kernel's limit).
const MAX_SYMLINKS: usize = 40;
/// Objects in one closure at most.
const MAX_OBJECTS: usize = 1024;
/// `include` nesting and file count in ld.so.conf.
const MAX_CONF_DEPTH: usize = 8;
const MAX_CONF_FILES: usize = 256;

/// A root filesystem in which a binary is to start.
pub trait RootFs {
    /// Reads the file at the absolute `path` inside this root, following symlinks inside the
    /// root; None when it does not exist.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// Whether the absolute `path` exists inside this root (following symlinks).
    fn exists(&self, path: &str) -> bool {
        self.read(path).is_some()
    }
    /// The absolute path inside this root that `path` resolves to once every symlink is
    /// followed (what the kernel reports as `/proc/self/exe`, the base of an executable's
    /// `$ORIGIN`). The default returns `path` unchanged.
    fn real_path(&self, path: &str) -> Option<String> {
        Some(normalize(path))
    }
    /// The names in the directory at the absolute `path` (following symlinks), sorted; empty
    /// when it does not exist. Used to expand `include` globs of ld.so.conf.
    fn list_dir(&self, path: &str) -> Vec<String> {
        let _ = path;
        Vec::new()
    }
}

/// Resolves `path` component by component; `link(prefix)` returns the target of the symlink at
/// the absolute, already resolved `prefix`, or None when it is not a symlink. Absolute targets
/// restart at the root, `..` stops at the root. Returns the resolved absolute path, or None on
/// a symlink loop.
fn resolve_with(path: &str, mut link: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut todo: VecDeque<String> = split(path).collect();
    let mut done: Vec<String> = Vec::new();
    let mut followed = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => {}
            ".." => {
                done.pop();
            }
            _ => {
                done.push(c);
                let here = join(&done);
                if let Some(target) = link(&here) {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        return None;
                    }
                    done.pop();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    for (i, t) in split(&target).enumerate() {
                        todo.insert(i, t);
                    }
                }
            }
        }
    }
    Some(join(&done))
}

fn split(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

fn join(parts: &[String]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Normalises an absolute path lexically (`.`, `..`, repeated slashes).
fn normalize(path: &str) -> String {
    resolve_with(path, |_| None).unwrap_or_else(|| "/".into())
}

/// A directory of this machine used as root (`/` for the running system).
#[derive(Debug, Clone)]
pub struct HostRoot(pub PathBuf);

impl HostRoot {
    fn is_real_root(&self) -> bool {
        self.0.components().all(|c| c == Component::RootDir)
    }

    /// The host path of the absolute `path` inside this root, all symlinks resolved inside
    /// the root. The result may not exist.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        let inner = resolve_with(path, |prefix| {
            let host = self.0.join(prefix.trim_start_matches('/'));
            let meta = std::fs::symlink_metadata(&host).ok()?;
            if !meta.file_type().is_symlink() {
                return None;
            }
            let target: OsString = std::fs::read_link(&host).ok()?.into_os_string();
            // Non-UTF-8 targets cannot be named by ELF strings anyway; keep them lossy.
            Some(target.to_string_lossy().into_owned())
        })?;
        Some(self.0.join(inner.trim_start_matches('/')))
    }

    /// Like [`HostRoot::resolve`], as a path inside the root.
    fn resolve_inner(&self, path: &str) -> Option<String> {
        let host = self.resolve(path)?;
        let inner = host.strip_prefix(&self.0).ok()?;
        Some(format!("/{}", inner.to_string_lossy()))
    }
}

impl RootFs for HostRoot {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let host = self.resolve(path)?;
        let meta = std::fs::metadata(&host).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_SIZE {
            return None;
        }
        std::fs::read(host).ok()
    }
    fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| std::fs::symlink_metadata(p).is_ok())
    }
    fn real_path(&self, path: &str) -> Option<String> {
        self.resolve_inner(path)
    }
    fn list_dir(&self, path: &str) -> Vec<String> {
        let Some(dir) = self.resolve(path) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

/// The files of an image being built: absolute image path to the host file holding its
/// content. An empty map is an empty (`scratch`) image. Directories are implied by the paths.
#[derive(Debug, Clone, Default)]
pub struct ImageRoot {
    /// Image path (absolute) to content on the host.
    pub files: BTreeMap<String, PathBuf>,
    /// Image path (absolute) to symlink target.
    pub symlinks: BTreeMap<String, String>,
}

impl ImageRoot {
    /// The image path `path` resolves to, following symlinks (also in directory components)
    /// inside the image.
    pub fn resolve(&self, path: &str) -> Option<String> {
        resolve_with(path, |prefix| self.symlinks.get(prefix).cloned())
    }

    fn is_dir(&self, path: &str) -> bool {
        if path == "/" {
            return true;
        }
        let prefix = format!("{path}/");
        let under =
            |m: &mut dyn Iterator<Item = &String>| m.next().is_some_and(|k| k.starts_with(&prefix));
        under(&mut self.files.range(prefix.clone()..).map(|(k, _)| k))
            || under(&mut self.symlinks.range(prefix.clone()..).map(|(k, _)| k))
    }
}

impl RootFs for ImageRoot {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let host = self.files.get(&self.resolve(path)?)?;
        let meta = std::fs::metadata(host).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_SIZE {
            return None;
        }
        std::fs::read(host).ok()
    }
    fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| self.files.contains_key(&p) || self.is_dir(&p))
    }
    fn real_path(&self, path: &str) -> Option<String> {
        self.resolve(path)
    }
    fn list_dir(&self, path: &str) -> Vec<String> {
        let Some(dir) = self.resolve(path) else {
            return Vec::new();
        };
        let prefix = if dir == "/" { dir } else { format!("{dir}/") };
        let mut names = BTreeSet::new();
        for key in self.files.keys().chain(self.symlinks.keys()) {
            if let Some(rest) = key.strip_prefix(&prefix) {
                if let Some(first) = rest.split('/').find(|c| !c.is_empty()) {
                    names.insert(first.to_string());
                }
            }
        }
        names.into_iter().collect()
    }
}

/// A file that `--bundle-libs` copies from the host into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledFile {
    /// Absolute path in the image (the path the loader will look up).
    pub image_path: String,
    /// The host file with the content (symlinks resolved).
    pub host_path: PathBuf,
}

/// Which loader's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Glibc,
    Musl,
}

/// How a library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// DT_RPATH / DT_RUNPATH without `$ORIGIN`.
    SearchPath,
    /// DT_RPATH / DT_RUNPATH through `$ORIGIN`.
    Origin,
    /// ld.so.conf (the cache) or musl's path file.
    Config,
    /// The loader's built-in directories.
    Default,
    /// DT_NEEDED held a path.
    Path,
}

/// A library found for a DT_NEEDED name.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The DT_NEEDED name.
    pub name: String,
    /// Its path inside the root, as the loader opens it (not symlink-resolved).
    pub path: String,
    pub via: Via,
}

/// A DT_NEEDED name that cannot be found.
#[derive(Debug, Clone)]
pub(crate) struct Missing {
    pub name: String,
    /// The object needing it (`None`: the executable itself).
    pub needed_by: Option<String>,
}

/// The closure of an executable's needed libraries inside a root.
#[derive(Debug, Default)]
pub(crate) struct Closure {
    pub found: Vec<Found>,
    pub missing: Vec<Missing>,
    /// Every directory searched, in first-searched order, for messages.
    pub searched: Vec<String>,
}

/// An object being loaded: its path in the root (None for an executable whose location is
/// unknown), search paths and needed names.
struct Object {
    path: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

/// The loader's view of a root: the rules and directories it uses for one executable.
struct Loader<'r> {
    root: &'r dyn RootFs,
    flavor: Flavor,
    /// The executable's class and platform; libraries of another one are skipped like ld.so.
    bits: Option<u8>,
    platform: Option<super::Platform>,
    config_dirs: Vec<String>,
    default_dirs: Vec<String>,
    /// Values for `$LIB` and `$PLATFORM`.
    lib: &'static str,
    uname_machine: &'static str,
}

impl<'r> Loader<'r> {
    fn new(root: &'r dyn RootFs, exe: &Analysis) -> Self {
        let interp = exe.interpreter.as_deref().unwrap_or_default();
        let flavor = if interp.contains("ld-musl-") || exe.libc == Some(Libc::Musl) {
            Flavor::Musl
        } else {
            Flavor::Glibc
        };
        let arch = exe
            .platform
            .as_ref()
            .map(|p| p.architecture.as_str())
            .unwrap_or_default();
        let (triplet, uname_machine) = multiarch(arch);
        let is64 = exe.bits == Some(64);
        let (config_dirs, default_dirs) = match flavor {
            Flavor::Glibc => {
                let mut defaults = Vec::new();
                if !triplet.is_empty() {
                    defaults.push(format!("/lib/{triplet}"));
                    defaults.push(format!("/usr/lib/{triplet}"));
                }
                if is64 {
                    defaults.extend(["/lib64".to_string(), "/usr/lib64".to_string()]);
                }
                defaults.extend(["/lib".to_string(), "/usr/lib".to_string()]);
                (ld_so_conf(root), defaults)
            }
            Flavor::Musl => {
                // ld-musl-ARCH.so.1 names its path file /etc/ld-musl-ARCH.path.
                let base = interp.rsplit('/').next().unwrap_or_default();
                let musl_arch = base
                    .strip_prefix("ld-musl-")
                    .and_then(|s| s.split(".so").next())
                    .unwrap_or_default();
                let file = root
                    .read(&format!("/etc/ld-musl-{musl_arch}.path"))
                    .filter(|_| !musl_arch.is_empty());
                match file {
                    Some(text) => (
                        String::from_utf8_lossy(&text)
                            .split([':', '\n'])
                            .map(str::trim)
                            .filter(|s| s.starts_with('/'))
                            .map(normalize)
                            .collect(),
                        Vec::new(),
                    ),
                    None => (
                        Vec::new(),
                        vec!["/lib".into(), "/usr/local/lib".into(), "/usr/lib".into()],
                    ),
                }
            }
        };
        Loader {
            root,
            flavor,
            bits: exe.bits,
            platform: exe.platform.clone(),
            config_dirs,
            default_dirs,
            lib: if is64 && flavor == Flavor::Glibc {
                "lib64"
            } else {
                "lib"
            },
            uname_machine,
        }
    }

    /// Expands `$ORIGIN`, `$LIB`, `$PLATFORM` in a search path entry of `object`; None when
    /// `$ORIGIN` is used but the object's location is unknown.
    fn expand(&self, entry: &str, object: &Object) -> Option<(String, bool)> {
        let mut s = entry.to_string();
        let mut origin_used = false;
        for token in ["$ORIGIN", "${ORIGIN}"] {
            if s.contains(token) {
                let path = object.path.as_deref()?;
                let dir = Path::new(path)
                    .parent()
                    .map_or("/".into(), |d| d.to_string_lossy().into_owned());
                s = s.replace(token, &dir);
                origin_used = true;
            }
        }
        for (token, value) in [
            ("$LIB", self.lib),
            ("${LIB}", self.lib),
            ("$PLATFORM", self.uname_machine),
            ("${PLATFORM}", self.uname_machine),
        ] {
            s = s.replace(token, value);
        }
        if !s.starts_with('/') {
            // Relative entries are relative to the working directory: `/` in a fresh container.
            s.insert(0, '/');
        }
        Some((normalize(&s), origin_used))
    }

    /// The search list for a name needed by `object`, with `exe` the executable (whose
    /// DT_RPATH also applies to its libraries under glibc when no RUNPATH intervenes).
    fn search_list(&self, object: &Object, exe: &Object) -> Vec<(String, Via)> {
        let mut list = Vec::new();
        let add = |entries: &[String], obj: &Object, list: &mut Vec<(String, Via)>| {
            for e in entries {
                if let Some((dir, origin)) = self.expand(e, obj) {
                    list.push((dir, if origin { Via::Origin } else { Via::SearchPath }));
                }
            }
        };
        match self.flavor {
            Flavor::Glibc => {
                if object.runpath.is_empty() {
                    add(&object.rpath, object, &mut list);
                    if !std::ptr::eq(object, exe) && exe.runpath.is_empty() {
                        add(&exe.rpath, exe, &mut list);
                    }
                }
                add(&object.runpath, object, &mut list);
            }
            Flavor::Musl => {
                // musl walks the needing object's search path, then those of its parents; the
                // executable stands for the chain here.
                add(&object.rpath, object, &mut list);
                add(&object.runpath, object, &mut list);
                if !std::ptr::eq(object, exe) {
                    add(&exe.rpath, exe, &mut list);
                    add(&exe.runpath, exe, &mut list);
                }
            }
        }
        list.extend(self.config_dirs.iter().map(|d| (d.clone(), Via::Config)));
        list.extend(self.default_dirs.iter().map(|d| (d.clone(), Via::Default)));
        list
    }

    /// The analysis and DT_SONAME of the library at `path` when it exists and suits the
    /// executable.
    fn load(&self, path: &str) -> Option<(Analysis, Option<String>)> {
        let data = self.root.read(path)?;
        let a = analyze_library(&data).ok()?;
        // Class and machine, like ld.so; not the variant (an armv6 library serves armv7).
        let arch = |p: &Option<super::Platform>| p.as_ref().map(|p| p.architecture.clone());
        let fits = a.format == Format::Elf
            && a.bits == self.bits
            && arch(&a.platform) == arch(&self.platform);
        fits.then(|| (a, soname(&data)))
    }

    /// Whether the loader itself provides `name` (musl's libc and its merged libraries).
    fn builtin(&self, name: &str) -> bool {
        if self.flavor != Flavor::Musl {
            return false;
        }
        let Some(rest) = name.strip_prefix("lib") else {
            return false;
        };
        ["c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."]
            .iter()
            .any(|r| rest.starts_with(r))
            || name.starts_with("libc.musl-")
            || name.starts_with("ld-musl-")
    }
}

/// Multiarch triplet and `uname -m` for an OCI architecture.
fn multiarch(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "amd64" => ("x86_64-linux-gnu", "x86_64"),
        "arm64" => ("aarch64-linux-gnu", "aarch64"),
        "arm" => ("arm-linux-gnueabihf", "armv7l"),
        "386" => ("i386-linux-gnu", "i686"),
        "ppc64le" => ("powerpc64le-linux-gnu", "ppc64le"),
        "s390x" => ("s390x-linux-gnu", "s390x"),
        "riscv64" => ("riscv64-linux-gnu", "riscv64"),
        "mips64le" => ("mips64el-linux-gnuabi64", "mips64"),
        "loong64" => ("loongarch64-linux-gnu", "loongarch64"),
        _ => ("", ""),
    }
}

/// The directories of `/etc/ld.so.conf` in `root`, `include` globs expanded (relative ones
/// against the including file's directory), in order, without duplicates.
pub(crate) fn ld_so_conf(root: &dyn RootFs) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut files = 0;
    conf_file(root, "/etc/ld.so.conf", 0, &mut files, &mut dirs);
    dirs
}

fn conf_file(
    root: &dyn RootFs,
    path: &str,
    depth: usize,
    files: &mut usize,
    dirs: &mut Vec<String>,
) {
    if depth > MAX_CONF_DEPTH || *files >= MAX_CONF_FILES {
        return;
    }
    *files += 1;
    let Some(text) = root.read(path) else {
        return;
    };
    let here = Path::new(path)
        .parent()
        .map_or("/".into(), |p| p.to_string_lossy().into_owned());
    for line in String::from_utf8_lossy(&text).lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(patterns) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pattern in patterns.split_whitespace() {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("{here}/{pattern}")
                };
                for file in glob(root, &pattern) {
                    conf_file(root, &file, depth + 1, files, dirs);
                }
            }
        } else if line.starts_with("hwcap") && line[5..].starts_with([' ', '\t']) {
            continue;
        } else {
            for dir in line
                .split([' ', '\t', ':', ','])
                .filter(|d| d.starts_with('/'))
            {
                // libc5-era `DIR=TYPE` entries.
                let dir = normalize(dir.split('=').next().unwrap_or(dir));
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
    }
}

/// Expands an absolute glob pattern (`*`, `?`, `[...]` in any component) inside `root`,
/// sorted like glob(3).
fn glob(root: &dyn RootFs, pattern: &str) -> Vec<String> {
    let mut paths = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &paths {
            if comp.contains(['*', '?', '[']) {
                let dir = if base.is_empty() { "/" } else { base.as_str() };
                for name in root.list_dir(dir) {
                    if !name.starts_with('.') && glob_match(comp.as_bytes(), name.as_bytes()) {
                        next.push(format!("{base}/{name}"));
                    }
                }
            } else {
                next.push(format!("{base}/{comp}"));
            }
            if next.len() > MAX_CONF_FILES {
                break;
            }
        }
        paths = next;
    }
    paths.retain(|p| !p.is_empty() && root.exists(p));
    paths.sort();
    paths
}

/// Shell-style matching of one path component.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: O(len(pat) * len(name)).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pat, p, name[n]),
            Some(&c) if c == name[n] => Some(p + 1),
            _ => None,
        };
        match (step, star) {
            (Some(np), _) => {
                p = np;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the bracket expression at `pat[start]`; the index after it on a match.
fn class_match(pat: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    (matched != negate).then_some(i + 1)
}

/// Resolves the needed-library closure of `exe` (located at `exe_path` in the root, when
/// known) inside `root`, breadth-first like the loader.
pub(crate) fn closure(root: &dyn RootFs, exe: &Analysis, exe_path: Option<&str>) -> Closure {
    let loader = Loader::new(root, exe);
    let mut out = Closure::default();
    let mut loaded: BTreeSet<String> = BTreeSet::new();
    // The interpreter is loaded first and satisfies its own names.
    if let Some(interp) = &exe.interpreter {
        loaded.insert(interp.clone());
        if let Some(base) = interp.rsplit('/').next() {
            loaded.insert(base.to_string());
        }
        if let Some(soname) = root.read(interp).and_then(|d| soname(&d)) {
            loaded.insert(soname);
        }
    }
    let exe_obj = Object {
        path: exe_path.map(str::to_string),
        needed: exe.needed.clone(),
        rpath: exe.rpath.clone(),
        runpath: exe.runpath.clone(),
    };
    let mut queue: VecDeque<Object> = VecDeque::new();
    let mut objects = 0;
    // Resolves the needed names of `object`, queueing what it finds.
    let mut visit = |object: &Object, queue: &mut VecDeque<Object>, out: &mut Closure| {
        for name in &object.needed {
            if loaded.contains(name) || loader.builtin(name) {
                continue;
            }
            let hit = if name.contains('/') {
                let path = normalize(&if name.starts_with('/') {
                    name.clone()
                } else {
                    format!("/{name}")
                });
                loader.load(&path).map(|a| (path, Via::Path, a))
            } else {
                loader
                    .search_list(object, &exe_obj)
                    .into_iter()
                    .find_map(|(dir, via)| {
                        if !out.searched.contains(&dir) {
                            out.searched.push(dir.clone());
                        }
                        let path = normalize(&format!("{dir}/{name}"));
                        loader.load(&path).map(|a| (path, via, a))
                    })
            };
            loaded.insert(name.clone());
            match hit {
                Some((path, via, (lib, lib_soname))) => {
                    if let Some(s) = lib_soname {
                        loaded.insert(s);
                    }
                    out.found.push(Found {
                        name: name.clone(),
                        path: path.clone(),
                        via,
                    });
                    queue.push_back(Object {
                        path: Some(path),
                        needed: lib.needed,
                        rpath: lib.rpath,
                        runpath: lib.runpath,
                    });
                }
                None => out.missing.push(Missing {
                    name: name.clone(),
                    needed_by: object
                        .path
                        .clone()
                        .filter(|_| !std::ptr::eq(object, &exe_obj)),
                }),
            }
        }
    };
    visit(&exe_obj, &mut queue, &mut out);
    while let Some(obj) = queue.pop_front() {
        objects += 1;
        if objects > MAX_OBJECTS {
            break;
        }
        visit(&obj, &mut queue, &mut out);
    }
    out
}

/// DT_SONAME of an ELF shared object.
fn soname(data: &[u8]) -> Option<String> {
    let f = super::reader::ElfFile::parse(data).ok()?;
    f.dynamic().soname
}

/// The program interpreter and the full DT_NEEDED closure of `analysis`, resolved on `host`
/// the way the dynamic loader would, for copying into an image. Empty for static binaries and
/// scripts.
///
/// Each library's image path is where the loader in the image finds it: the path where the
/// host's loader found it when that is a search-path or built-in directory, else (found through
/// ld.so.conf or `$ORIGIN`, which the image does not reproduce) the directory holding the C
/// library.
pub fn bundle_closure(analysis: &Analysis, host: &HostRoot) -> Result<Vec<BundledFile>, Error> {
    bundle_closure_at(analysis, None, host)
}

/// Like [`bundle_closure`], with the executable's absolute path inside `host` known, so that
/// its `$ORIGIN` search paths resolve.
pub fn bundle_closure_at(
    analysis: &Analysis,
    exe_path: Option<&str>,
    host: &HostRoot,
) -> Result<Vec<BundledFile>, Error> {
    if analysis.format != Format::Elf || analysis.linkage != Some(Linkage::Dynamic) {
        return Ok(Vec::new());
    }
    let real = |image_path: &str| -> Option<PathBuf> {
        let p = host.resolve(image_path)?;
        let p = if host.is_real_root() {
            std::fs::canonicalize(&p).ok()?
        } else {
            p
        };
        std::fs::metadata(&p).ok()?.is_file().then_some(p)
    };
    let mut out = Vec::new();
    if let Some(interp) = &analysis.interpreter {
        let host_path = real(interp).ok_or_else(|| Error::LibraryNotFound {
            library: interp.clone(),
            searched: interp.clone(),
        })?;
        out.push(BundledFile {
            image_path: interp.clone(),
            host_path,
        });
    }
    let exe_path = exe_path.and_then(|p| host.real_path(p));
    let closure = closure(host, analysis, exe_path.as_deref());
    if let Some(m) = closure.missing.first() {
        return Err(Error::LibraryNotFound {
            library: m.name.clone(),
            searched: closure.searched.join(", "),
        });
    }
    // Where relocated libraries go: beside the C library, else the first built-in directory.
    let libc_dir = closure
        .found
        .iter()
        .find(|f| f.name.starts_with("libc.so") && f.via == Via::Default)
        .and_then(|f| Path::new(&f.path).parent())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|| {
            Loader::new(host, analysis)
                .default_dirs
                .first()
                .cloned()
                .unwrap_or_else(|| "/lib".into())
        });
    for f in &closure.found {
        let host_path = real(&f.path).ok_or_else(|| Error::LibraryNotFound {
            library: f.name.clone(),
            searched: f.path.clone(),
        })?;
        let image_path = match f.via {
            Via::Default | Via::SearchPath | Via::Path => f.path.clone(),
            Via::Config | Via::Origin => format!("{libc_dir}/{}", f.name),
        };
        if !out.iter().any(|b: &BundledFile| b.image_path == image_path) {
            out.push(BundledFile {
                image_path,
                host_path,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob_match(b"*.conf", b"libc.conf"));
        assert!(!glob_match(b"*.conf", b"libc.conf.bak"));
        assert!(glob_match(b"x86_64-*.conf", b"x86_64-linux-gnu.conf"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"[a-c]x", b"bx"));
        assert!(!glob_match(b"[!a-c]x", b"bx"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"[abc", b"a"));
        assert!(glob_match(b"*a*b*c", b"xxaxxbxxc"));
    }

    use crate::elf::testelf::{build, Spec};
    use crate::elf::{analyze, check};
    use std::os::unix::fs::symlink;

    fn lib(soname: &str, needed: &[&str], runpath: Option<&str>) -> Vec<u8> {
        build(&Spec {
            soname: Some(soname.into()),
            needed: needed.iter().map(|s| s.to_string()).collect(),
            runpath: runpath.map(str::to_string),
            entry: 0,
            ..Spec::amd64()
        })
    }

    /// A root tree exercising the loader's rules: an absolute /lib64 symlink, ld.so.conf with
    /// an include glob and a relative include, $ORIGIN, a wrong-class library shadowing the
    /// right one, and a transitive dependency.
    fn tree() -> (tempfile::TempDir, HostRoot, Analysis) {
        let dir = tempfile::tempdir().unwrap();
        let put = |path: &str, data: &[u8]| {
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        let gnu = "/lib/x86_64-linux-gnu";
        put(
            &format!("{gnu}/ld-linux-x86-64.so.2"),
            &lib("ld-linux-x86-64.so.2", &[], None),
        );
        put(
            &format!("{gnu}/libc.so.6"),
            &lib("libc.so.6", &["ld-linux-x86-64.so.2"], None),
        );
        symlink(gnu, dir.path().join("lib64")).unwrap();
        put(
            "/etc/ld.so.conf",
            b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n",
        );
        put("/etc/ld.so.conf.d/a.conf", b"/opt/a/lib\n");
        put(
            "/etc/ld.so.conf.d/b.conf",
            b"include ../more.conf # relative\n",
        );
        put("/etc/ld.so.conf.d/ignored.txt", b"/nowhere\n");
        put("/etc/more.conf", b"/opt/b:/opt/c\n");
        put(
            "/opt/a/lib/libx.so.1",
            &lib(
                "libx.so.1",
                &["libz.so.1", "libc.so.6"],
                Some("$ORIGIN/../private"),
            ),
        );
        put("/opt/a/private/libz.so.1", &lib("libz.so.1", &[], None));
        put("/opt/b/liby.so.2", &lib("liby.so.2", &["libc.so.6"], None));
        // A 32-bit libw earlier in the search list than the 64-bit one: skipped, like ld.so.
        put(
            &format!("{gnu}/libw.so.0"),
            &build(&Spec {
                is32: true,
                machine: 3,
                soname: Some("libw.so.0".into()),
                ..Spec::amd64()
            }),
        );
        put("/usr/lib/libw.so.0", &lib("libw.so.0", &[], None));
        let exe = analyze(&build(&Spec {
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: vec![
                "libx.so.1".into(),
                "liby.so.2".into(),
                "libw.so.0".into(),
                "libc.so.6".into(),
            ],
            ..Spec::amd64()
        }))
        .unwrap();
        let root = HostRoot(dir.path().to_path_buf());
        (dir, root, exe)
    }

    #[test]
    fn ld_so_conf_with_includes() {
        let (_dir, root, _) = tree();
        assert_eq!(ld_so_conf(&root), ["/opt/a/lib", "/opt/b", "/opt/c"]);
    }

    #[test]
    fn closure_follows_loader_rules() {
        let (_dir, root, exe) = tree();
        let c = closure(&root, &exe, None);
        assert!(c.missing.is_empty(), "{c:?}");
        let found: Vec<(&str, &str, Via)> = c
            .found
            .iter()
            .map(|f| (f.name.as_str(), f.path.as_str(), f.via))
            .collect();
        assert_eq!(
            found,
            [
                ("libx.so.1", "/opt/a/lib/libx.so.1", Via::Config),
                ("liby.so.2", "/opt/b/liby.so.2", Via::Config),
                ("libw.so.0", "/usr/lib/libw.so.0", Via::Default),
                ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", Via::Default),
                (
                    "libz.so.1",
                    "/opt/a/lib/../private/libz.so.1"
                        .replace("/lib/..", "")
                        .as_str(),
                    Via::Origin
                ),
            ]
        );
        assert!(check("/app", &exe, &root, None).is_empty());
    }

    #[test]
    fn missing_transitive_library_names_its_parent() {
        let (dir, root, exe) = tree();
        std::fs::remove_file(dir.path().join("opt/a/private/libz.so.1")).unwrap();
        let problems = check("app", &exe, &root, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, "missing-library");
        let m = &problems[0].message;
        assert!(
            m.contains("libz.so.1 (needed by /opt/a/lib/libx.so.1)"),
            "{m}"
        );
        assert!(m.contains("/opt/a/private"), "searched dirs listed: {m}");
    }

    /// `$ORIGIN` of an executable called through a symlink is its real directory (like the
    /// JDK's `/usr/bin/java -> /usr/lib/jvm/.../bin/java` with RUNPATH `$ORIGIN/../lib`).
    #[test]
    fn origin_of_a_symlinked_executable() {
        let (dir, root, _) = tree();
        let app = dir.path().join("opt/app");
        std::fs::create_dir_all(app.join("bin")).unwrap();
        std::fs::create_dir_all(app.join("lib")).unwrap();
        std::fs::write(app.join("lib/libapp.so"), lib("libapp.so", &[], None)).unwrap();
        let exe = build(&Spec {
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: vec!["libapp.so".into(), "libc.so.6".into()],
            runpath: Some("$ORIGIN/../lib".into()),
            ..Spec::amd64()
        });
        std::fs::write(app.join("bin/app"), &exe).unwrap();
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        symlink("/opt/app/bin/app", dir.path().join("usr/bin/app")).unwrap();
        let a = analyze(&exe).unwrap();
        assert!(check("/usr/bin/app", &a, &root, None).is_empty());
        let problems = check("app", &a, &root, None);
        assert_eq!(problems.len(), 1, "location unknown: {problems:?}");
        assert!(problems[0].message.contains("libapp.so"));
        let files = bundle_closure_at(&a, Some("/usr/bin/app"), &root).unwrap();
        assert!(
            files
                .iter()
                .any(|f| f.host_path.ends_with("opt/app/lib/libapp.so")),
            "{files:?}"
        );
    }

    #[test]
    fn interpreter_that_is_not_a_loader() {
        let (dir, root, exe) = tree();
        let ld = dir.path().join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        std::fs::write(&ld, "#!/bin/sh\n").unwrap();
        let problems = check("app", &exe, &root, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("not a dynamic loader"),
            "{problems:?}"
        );
    }

    #[test]
    fn host_root_keeps_absolute_symlinks_inside() {
        let (dir, root, _) = tree();
        // /lib64 -> /lib/x86_64-linux-gnu is absolute: it must resolve inside the root.
        assert!(root.exists("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(
            root.resolve("/lib64/libc.so.6").unwrap(),
            dir.path().join("lib/x86_64-linux-gnu/libc.so.6")
        );
        // Links to files that exist on the real host but not in the root find nothing.
        symlink("/etc/hostname", dir.path().join("abs")).unwrap();
        symlink("../../../../../../etc/hostname", dir.path().join("rel")).unwrap();
        symlink("loop", dir.path().join("loop")).unwrap();
        for p in ["/abs", "/rel", "/loop", "/../etc/hostname"] {
            assert!(root.read(p).is_none() && !root.exists(p), "{p}");
        }
        assert_eq!(
            root.list_dir("/lib64"),
            ["ld-linux-x86-64.so.2", "libc.so.6", "libw.so.0"]
        );
    }

    #[test]
    fn image_root_resolves_directory_symlinks() {
        let (dir, _, exe) = tree();
        let mut image = ImageRoot::default();
        let gnu = dir.path().join("lib/x86_64-linux-gnu");
        image.files.insert(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into(),
            gnu.join("ld-linux-x86-64.so.2"),
        );
        image.files.insert(
            "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
            gnu.join("libc.so.6"),
        );
        image.symlinks.insert("/lib".into(), "usr/lib".into());
        image
            .symlinks
            .insert("/lib64".into(), "/lib/x86_64-linux-gnu".into());
        assert!(image.exists("/lib64/ld-linux-x86-64.so.2"));
        assert!(image.exists("/usr/lib"));
        assert_eq!(image.list_dir("/lib"), ["x86_64-linux-gnu"]);
        let problems = check("app", &exe, &image, None);
        let missing: Vec<&str> = problems.iter().map(|p| p.kind).collect();
        assert_eq!(missing, ["missing-library"; 3], "{problems:?}");
    }

    #[test]
    fn bundle_places_libraries_where_the_image_loader_looks() {
        let (dir, root, exe) = tree();
        let files = bundle_closure(&exe, &root).unwrap();
        let got: Vec<(&str, PathBuf)> = files
            .iter()
            .map(|f| {
                (
                    f.image_path.as_str(),
                    f.host_path.strip_prefix(dir.path()).unwrap().to_path_buf(),
                )
            })
            .collect();
        let gnu = "/lib/x86_64-linux-gnu";
        assert_eq!(
            got,
            [
                (
                    "/lib64/ld-linux-x86-64.so.2",
                    PathBuf::from("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
                ),
                (
                    &*format!("{gnu}/libx.so.1"),
                    PathBuf::from("opt/a/lib/libx.so.1")
                ),
                (
                    &*format!("{gnu}/liby.so.2"),
                    PathBuf::from("opt/b/liby.so.2")
                ),
                ("/usr/lib/libw.so.0", PathBuf::from("usr/lib/libw.so.0")),
                (
                    &*format!("{gnu}/libc.so.6"),
                    PathBuf::from("lib/x86_64-linux-gnu/libc.so.6")
                ),
                (
                    &*format!("{gnu}/libz.so.1"),
                    PathBuf::from("opt/a/private/libz.so.1")
                ),
            ]
        );
        // The bundle alone is a root the binary starts in.
        let mut image = ImageRoot::default();
        for f in &files {
            image
                .files
                .insert(f.image_path.clone(), f.host_path.clone());
        }
        assert!(check("app", &exe, &image, None).is_empty());

        std::fs::remove_file(dir.path().join("opt/b/liby.so.2")).unwrap();
        let e = bundle_closure(&exe, &root).unwrap_err().to_string();
        assert!(
            e.contains("cannot bundle liby.so.2") && e.contains("/opt/b"),
            "{e}"
        );
    }

    #[test]
    fn resolves_symlinks_lexically() {
        let links: BTreeMap<&str, &str> = [("/lib", "usr/lib"), ("/usr/lib/loop", "/usr/lib/loop")]
            .into_iter()
            .collect();
        let r = |p: &str| resolve_with(p, |q| links.get(q).map(|s| s.to_string()));
        assert_eq!(
            r("/lib/x/../libc.so.6").as_deref(),
            Some("/usr/lib/libc.so.6")
        );
        assert_eq!(r("/../../lib").as_deref(), Some("/usr/lib"));
        assert_eq!(r("/usr/lib/loop/x"), None);
    }
}
