//! `imgbuild inspect` and the `elf` analysis on real binaries built from source: Go servers
//! (cgo, static, arm64, stripped), C programs (gcc dynamic/static/static-pie, musl static and
//! dynamic), scripts, and files that are not executables at all.

mod util;

use std::path::{Path, PathBuf};

use imgbuild::elf::{self, HostRoot, ImageRoot, Libc, Linkage, Platform};
use serde_json::Value;
use util::{c_program, go_server, imgbuild, run, run_ok, CBuild, GoBuild};

/// `inspect --json FILE`, parsed.
fn inspect_json(file: &Path) -> Value {
    let out = run_ok(imgbuild().args(["inspect", "--json"]).arg(file));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect --json output {out:?}: {e}"))
}

/// `inspect FILE` text.
fn inspect_text(file: &Path) -> String {
    run_ok(imgbuild().arg("inspect").arg(file))
}

/// Runs `inspect FILE`, asserts exit code 1 and a single `imgbuild: ...` line; returns it.
fn inspect_fails(file: &Path) -> String {
    let out = run(imgbuild().arg("inspect").arg(file));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("imgbuild: "), "{stderr:?}");
    stderr
}

fn temp_file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, content).expect("write temp file");
    p
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn cgo_go_server_is_dynamic_and_cannot_start_in_empty_image() {
    let bin = go_server(GoBuild::Cgo);
    let j = inspect_json(&bin);
    assert_eq!(j["format"], "elf");
    assert_eq!(
        (j["os"].as_str(), j["arch"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    assert_eq!(j["variant"], Value::Null);
    assert_eq!(j["linkage"], "dynamic");
    assert_eq!(j["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert!(
        strings(&j["needed"]).contains(&"libc.so.6".to_string()),
        "{j}"
    );
    assert_eq!(j["libc"], "glibc");
    assert!(
        j["go"]["version"].as_str().unwrap().starts_with("go1."),
        "{j}"
    );
    assert_eq!(j["go"]["settings"]["CGO_ENABLED"], "1");
    assert_eq!(j["go"]["settings"]["GOARCH"], "amd64");
    assert_eq!(j["go"]["path"], "example.com/sample-server");
    assert_eq!(j["runs_in_empty_image"], false);
    let problems = strings(&j["problems"]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    for needle in [
        "dynamically linked",
        "/lib64/ld-linux-x86-64.so.2",
        "libc.so.6",
        "CGO_ENABLED=0",
        "--bundle-libs",
    ] {
        assert!(p.contains(needle), "{needle:?} in {p:?}");
    }

    let text = inspect_text(&bin);
    for needle in [
        "linux/amd64",
        "linkage:     dynamic",
        "interpreter: /lib64/ld-linux-x86-64.so.2",
        "libc.so.6",
        "CGO_ENABLED=1",
        "cannot start in an empty (scratch) image",
        "rebuild with CGO_ENABLED=0",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
}

#[test]
fn static_go_server_is_static_and_runnable() {
    let bin = go_server(GoBuild::Static);
    let j = inspect_json(&bin);
    assert_eq!(j["linkage"], "static");
    assert_eq!(j["interpreter"], Value::Null);
    assert_eq!(j["needed"], serde_json::json!([]));
    assert_eq!(j["go"]["settings"]["CGO_ENABLED"], "0");
    assert_eq!(j["runs_in_empty_image"], true);
    assert_eq!(j["problems"], serde_json::json!([]));
    let text = inspect_text(&bin);
    assert!(text.contains("linkage:     static"), "{text}");
    assert!(
        text.contains("can start in an empty (scratch) image"),
        "{text}"
    );
}

#[test]
fn arm64_go_server_reports_linux_arm64() {
    let j = inspect_json(&go_server(GoBuild::Arm64));
    assert_eq!(j["os"], "linux");
    assert_eq!(j["arch"], "arm64");
    assert_eq!(j["variant"], Value::Null);
    assert_eq!(j["linkage"], "static");
    assert_eq!(j["go"]["settings"]["GOARCH"], "arm64");
    assert_eq!(j["runs_in_empty_image"], true);
}

#[test]
fn stripped_go_server_reports_tags_and_trimpath() {
    let j = inspect_json(&go_server(GoBuild::StaticStripped));
    let s = &j["go"]["settings"];
    assert_eq!(s["-tags"], "netgo,osusergo", "{j}");
    assert_eq!(s["-trimpath"], "true");
    assert_eq!(s["CGO_ENABLED"], "0");
    assert_eq!(j["linkage"], "static");
}

/// Go quotes build settings holding blanks or quotes (`-ldflags="-s -w -X ..."`); Go leaves
/// -ldflags out under -trimpath, so this builds without it.
#[test]
fn go_ldflags_setting_is_unquoted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("server");
    run_ok(
        std::process::Command::new("go")
            .current_dir(util::root().join("images/sample-server"))
            .env("GOCACHE", util::fixtures_dir().join("gocache"))
            .env("GOFLAGS", "-buildvcs=false")
            .env("CGO_ENABLED", "0")
            .args(["build", "-ldflags", "-s -w -X 'main.note=a \"b\"'", "-o"])
            .arg(&out)
            .arg("."),
    );
    let j = inspect_json(&out);
    assert_eq!(
        j["go"]["settings"]["-ldflags"], "-s -w -X 'main.note=a \"b\"'",
        "{j}"
    );
}

/// Section headers gone (as after `sstrip`): the build info is found by scanning the writable
/// segments for the magic.
#[test]
fn go_build_info_found_without_section_headers() {
    let mut data = std::fs::read(go_server(GoBuild::Cgo)).unwrap();
    // e_shoff (offset 0x28), e_shnum (0x3c), e_shstrndx (0x3e) of an ELF64 header.
    data[0x28..0x30].fill(0);
    data[0x3c..0x40].fill(0);
    let a = elf::analyze(&data).expect("analysable");
    let go = a.go.expect("go build info through the segment scan");
    assert_eq!(go.settings["CGO_ENABLED"], "1");
    assert_eq!(go.path.as_deref(), Some("example.com/sample-server"));
    assert_eq!(a.linkage, Some(Linkage::Dynamic));
    assert_eq!(a.needed, ["libc.so.6"]);
}

#[test]
fn gcc_dynamic_names_glibc_and_static_fix() {
    let j = inspect_json(&c_program(CBuild::GccDynamic));
    assert_eq!(j["linkage"], "dynamic");
    assert_eq!(j["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(j["libc"], "glibc");
    assert_eq!(j["go"], Value::Null);
    assert_eq!(j["runs_in_empty_image"], false);
    let p = strings(&j["problems"]).join("\n");
    assert!(p.contains("-static"), "{p}");
    assert!(!p.contains("CGO_ENABLED"), "no Go advice for C: {p}");
}

#[test]
fn gcc_static_and_static_pie() {
    let j = inspect_json(&c_program(CBuild::GccStatic));
    assert_eq!(j["linkage"], "static");
    assert_eq!(j["libc"], "glibc");
    assert_eq!(j["runs_in_empty_image"], true);

    let j = inspect_json(&c_program(CBuild::GccStaticPie));
    assert_eq!(j["linkage"], "static-pie");
    assert_eq!(j["interpreter"], Value::Null);
    assert_eq!(j["libc"], "glibc");
    assert_eq!(j["runs_in_empty_image"], true);
}

#[test]
fn musl_static_and_dynamic() {
    let j = inspect_json(&c_program(CBuild::MuslStatic));
    assert_eq!(j["linkage"], "static");
    assert_eq!(j["libc"], "musl");
    assert_eq!(j["runs_in_empty_image"], true);

    let j = inspect_json(&c_program(CBuild::MuslDynamic));
    assert_eq!(j["linkage"], "dynamic");
    assert_eq!(j["libc"], "musl");
    assert!(
        j["interpreter"]
            .as_str()
            .unwrap()
            .contains("ld-musl-x86_64"),
        "{j}"
    );
    assert_eq!(j["runs_in_empty_image"], false);
    let p = strings(&j["problems"]).join("\n");
    assert!(p.contains("musl-gcc -static"), "{p}");
}

#[test]
fn script_reports_its_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let script = temp_file(&dir, "start.sh", b"#!/bin/sh -e\necho hi\n");
    let j = inspect_json(&script);
    assert_eq!(j["format"], "script");
    assert_eq!(j["interpreter"], "/bin/sh");
    assert_eq!(j["interpreter_arg"], "-e");
    assert_eq!(j["linkage"], Value::Null);
    assert_eq!(j["os"], Value::Null);
    assert_eq!(j["runs_in_empty_image"], false);
    let p = strings(&j["problems"]).join("\n");
    assert!(
        p.contains("/bin/sh") && p.contains("does not contain"),
        "{p}"
    );
    let text = inspect_text(&script);
    assert!(
        text.contains("interpreter: /bin/sh (argument: -e)"),
        "{text}"
    );
}

/// A `#!` line ending in `\r` fails with "not found" at run time; say so.
#[test]
fn script_with_crlf_line_endings_is_diagnosed() {
    let a = elf::analyze(b"#!/bin/sh\r\necho hi\r\n").unwrap();
    let problems = elf::check("run.sh", &a, &HostRoot("/".into()), None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("Windows line endings"),
        "{problems:?}"
    );
}

#[test]
fn non_executables_fail_with_one_line_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "notes.txt",
            b"just some text\n".to_vec(),
            "not an executable: text file",
        ),
        ("empty", Vec::new(), "not an executable: empty file"),
        (
            "macho",
            b"\xcf\xfa\xed\xfe\x07\0\0\x01rest".to_vec(),
            "Mach-O",
        ),
        (
            "random",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "unknown format",
        ),
        ("shebang-only", b"#!\n".to_vec(), "empty #! line"),
    ];
    for (name, content, want) in cases {
        let line = inspect_fails(&temp_file(&dir, name, &content));
        assert!(line.contains(want), "{name}: {want:?} in {line:?}");
        assert!(line.contains(name), "{name}: names the file: {line:?}");
    }
}

#[test]
fn truncated_elf_fails_as_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(c_program(CBuild::GccDynamic)).unwrap();
    for len in [3, 20, 63, 100] {
        let line = inspect_fails(&temp_file(&dir, "truncated", &data[..len]));
        assert!(line.contains("malformed ELF file"), "{len}: {line:?}");
    }
}

#[test]
fn missing_file_and_directory_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let line = inspect_fails(&dir.path().join("no-such-server"));
    assert!(
        line.contains("cannot read") && line.contains("no-such-server"),
        "{line}"
    );
    assert!(line.contains("No such file or directory"), "{line}");
    let line = inspect_fails(dir.path());
    assert!(line.contains("a directory"), "{line}");
    // A FIFO is refused without opening it (opening would block until a writer appears).
    let fifo = dir.path().join("fifo");
    run_ok(std::process::Command::new("mkfifo").arg(&fifo));
    let line = inspect_fails(&fifo);
    assert!(line.contains("not a regular file"), "{line}");
}

#[test]
fn cgo_server_starts_on_this_host() {
    let a = elf::analyze_file(&go_server(GoBuild::Cgo)).unwrap();
    let problems = elf::check("server", &a, &HostRoot("/".into()), None);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn wrong_platform_is_reported() {
    let a = elf::analyze_file(&go_server(GoBuild::Arm64)).unwrap();
    let amd64 = Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    let problems = elf::check("server", &a, &ImageRoot::default(), Some(&amd64));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, "wrong-platform");
    let m = &problems[0].message;
    assert!(
        m.contains("exec format error") && m.contains("GOARCH=amd64"),
        "{m}"
    );
    let arm64 = a.platform.clone().unwrap();
    assert!(elf::check("server", &a, &ImageRoot::default(), Some(&arm64)).is_empty());
}

/// An image holding the loader but not libc: the missing library is named.
#[test]
fn image_with_interpreter_but_without_libc() {
    let a = elf::analyze_file(&c_program(CBuild::GccDynamic)).unwrap();
    let mut root = ImageRoot::default();
    root.files.insert(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into(),
        std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap(),
    );
    root.symlinks
        .insert("/lib64".into(), "lib/x86_64-linux-gnu".into());
    let problems = elf::check("hello", &a, &root, None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, "missing-library");
    assert!(problems[0].message.contains("libc.so.6"), "{problems:?}");
}

/// `--bundle-libs`' closure: every file exists on the host, the loader and libc are in it, and
/// an image made of exactly those files plus the binary passes `check`.
#[test]
fn bundle_closure_of_cgo_server() {
    let bin = go_server(GoBuild::Cgo);
    let a = elf::analyze_file(&bin).unwrap();
    let files = elf::bundle_closure(&a, &HostRoot("/".into())).expect("closure");
    for f in &files {
        assert!(f.host_path.is_file(), "{f:?}");
        assert!(f.image_path.starts_with('/'), "{f:?}");
        assert!(
            !std::fs::symlink_metadata(&f.host_path)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{f:?}"
        );
    }
    let images: Vec<&str> = files.iter().map(|f| f.image_path.as_str()).collect();
    assert_eq!(images[0], "/lib64/ld-linux-x86-64.so.2", "{files:?}");
    assert!(
        images.iter().any(|p| p.ends_with("/libc.so.6")),
        "{files:?}"
    );
    let mut root = ImageRoot::default();
    root.files.insert("/server".into(), bin.clone());
    for f in &files {
        root.files.insert(f.image_path.clone(), f.host_path.clone());
    }
    let problems = elf::check("/server", &a, &root, a.platform.as_ref());
    assert!(problems.is_empty(), "{problems:?}");

    // Static binaries need nothing.
    let s = elf::analyze_file(&go_server(GoBuild::Static)).unwrap();
    assert!(elf::bundle_closure(&s, &HostRoot("/".into()))
        .unwrap()
        .is_empty());
}

#[test]
fn bundle_closure_of_musl_dynamic() {
    let a = elf::analyze_file(&c_program(CBuild::MuslDynamic)).unwrap();
    assert_eq!(a.libc, Some(Libc::Musl));
    let files = elf::bundle_closure(&a, &HostRoot("/".into())).expect("closure");
    // musl's loader is its libc: nothing else is needed.
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(Some(files[0].image_path.as_str()), a.interpreter.as_deref());
    assert!(files[0].host_path.is_file());
}

/// SplitMix64: a tiny deterministic PRNG, so every run mutates the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Offsets worth corrupting in an ELF64 little-endian file: header fields, program header
/// fields, dynamic entries and the Go build info header.
fn interesting_offsets(data: &[u8]) -> Vec<(usize, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
    // e_entry, e_phoff, e_shoff, e_flags, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
    let mut v = vec![
        (0x18, 8),
        (0x20, 8),
        (0x28, 8),
        (0x30, 4),
        (0x36, 2),
        (0x38, 2),
        (0x3a, 2),
        (0x3c, 2),
        (0x3e, 2),
        (0x10, 2),
        (0x12, 2),
    ];
    let (phoff, phnum) = (u64_at(0x20), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * 56;
        // p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align.
        v.extend([
            (ph, 4),
            (ph + 4, 4),
            (ph + 8, 8),
            (ph + 16, 8),
            (ph + 32, 8),
            (ph + 40, 8),
            (ph + 48, 8),
        ]);
        if u32::from_le_bytes(data[ph..ph + 4].try_into().unwrap()) == 2 {
            // PT_DYNAMIC: the first entries' tags and values.
            let off = u64_at(ph + 8);
            for e in 0..16 {
                if off + e * 16 + 16 <= data.len() {
                    v.extend([(off + e * 16, 8), (off + e * 16 + 8, 8)]);
                }
            }
        }
    }
    if let Some(pos) = data.windows(14).position(|w| w == b"\xff Go buildinf:") {
        v.extend((14..48).map(|i| (pos + i, 1)));
        v.extend([(pos + 16, 8), (pos + 24, 8), (pos + 32, 4)]);
    }
    v
}

/// Property: mutated real binaries (truncations, byte flips, header fields overwritten with
/// huge or off-by-one values) never make `analyze` or `check` panic, and both return (the
/// parsers are linear, so the case count bounds the time; no clock is involved).
#[test]
fn analyze_never_panics_on_mutated_binaries() {
    let fixtures: [(PathBuf, usize); 6] = [
        (c_program(CBuild::GccDynamic), 2000),
        (c_program(CBuild::GccStaticPie), 1000),
        (c_program(CBuild::MuslDynamic), 1000),
        (c_program(CBuild::MuslStatic), 1000),
        (go_server(GoBuild::Cgo), 500),
        (go_server(GoBuild::StaticStripped), 300),
    ];
    let mut rng = Rng(0x1f2e_3d4c_5b6a_7988);
    let huge = [
        u64::MAX,
        u64::MAX / 2,
        u32::MAX as u64,
        0x7fff_ffff,
        0xffff,
        0x8000_0000_0000_0000,
    ];
    let mut outcomes = [0usize; 2];
    for (path, cases) in fixtures {
        let mut data = std::fs::read(&path).unwrap();
        let fields = interesting_offsets(&data);
        let len = data.len();
        for case in 0..cases {
            let mut saved: Vec<(usize, Vec<u8>)> = Vec::new();
            let mut end = len;
            match case % 4 {
                0 => {
                    end = if rng.below(2) == 0 {
                        rng.below(4096.min(len))
                    } else {
                        rng.below(len)
                    }
                }
                1 => {
                    for _ in 0..1 + rng.below(16) {
                        let at = if rng.below(2) == 0 {
                            rng.below(4096.min(len))
                        } else {
                            rng.below(len)
                        };
                        saved.push((at, vec![data[at]]));
                        data[at] ^= 1 << rng.below(8);
                    }
                }
                _ => {
                    for _ in 0..1 + rng.below(3) {
                        let (at, width) = fields[rng.below(fields.len())];
                        if at + width > len {
                            continue;
                        }
                        let value = match rng.below(4) {
                            0 => huge[rng.below(huge.len())],
                            1 => len as u64 + rng.below(64) as u64 - 32,
                            2 => rng.next(),
                            _ => u64::from_le_bytes(
                                data[at..at + width]
                                    .iter()
                                    .chain([0; 8].iter())
                                    .take(8)
                                    .copied()
                                    .collect::<Vec<_>>()
                                    .try_into()
                                    .unwrap(),
                            )
                            .wrapping_add(rng.below(3) as u64)
                            .wrapping_sub(1),
                        };
                        saved.push((at, data[at..at + width].to_vec()));
                        data[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                    }
                }
            }
            let input = &data[..end];
            match elf::analyze(input) {
                Ok(a) => {
                    outcomes[0] += 1;
                    let _ = elf::check("x", &a, &ImageRoot::default(), None);
                    let _ = elf::runs_in_empty_image(&a);
                }
                Err(e) => {
                    outcomes[1] += 1;
                    assert_eq!(e.to_string().lines().count(), 1, "one-line error: {e}");
                }
            }
            for (at, bytes) in saved.into_iter().rev() {
                data[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
    }
    // Both outcomes occur: the mutations reach past the first checks.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}

/// Removes a Docker image when dropped.
struct DockerImage(String);

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

/// Imports the directory `root` as a single-layer image named `tag` (`tar` + `docker import`).
fn docker_import(root: &Path, tag: &str) -> DockerImage {
    let archive = root.with_extension("tar");
    run_ok(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(root)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    );
    run_ok(
        std::process::Command::new("docker")
            .arg("import")
            .arg(&archive)
            .arg(tag),
    );
    DockerImage(tag.to_string())
}

/// Runs `bin` (with `args`) in two images built by `docker import`: the binary alone, and the
/// binary plus the files of `bundle_closure`. Returns (bare stderr, bundled stdout), asserting
/// the first fails and the second succeeds.
fn run_bare_and_bundled(bin: &Path, args: &[&str]) -> (String, String) {
    let a = elf::analyze_file(bin).unwrap();
    assert!(!elf::runs_in_empty_image(&a));
    let files = elf::bundle_closure(&a, &HostRoot("/".into())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let place = |root: &Path, image_path: &str, host: &Path| {
        let dest = root.join(image_path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(host, dest).unwrap();
    };
    let bare = dir.path().join("bare");
    place(&bare, "/app", bin);
    let bundled = dir.path().join("bundled");
    place(&bundled, "/app", bin);
    for f in &files {
        place(&bundled, &f.image_path, &f.host_path);
    }
    let tag = format!(
        "{}-{}",
        std::process::id(),
        bin.file_name().unwrap().to_string_lossy()
    );
    let bare_img = docker_import(&bare, &format!("imgbuild-test-elf-bare:{tag}"));
    let bundled_img = docker_import(&bundled, &format!("imgbuild-test-elf-bundled:{tag}"));
    let docker_run = |image: &str| {
        run(std::process::Command::new("docker")
            .args(["run", "--rm", "--network", "none", image, "/app"])
            .args(args))
    };
    let out = docker_run(&bare_img.0);
    assert!(!out.status.success(), "bare image must not start");
    let bare_err = String::from_utf8_lossy(&out.stderr).into_owned();
    let out = docker_run(&bundled_img.0);
    assert!(
        out.status.success(),
        "bundled image starts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (bare_err, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The diagnosis matches the real engine: in an image holding only the cgo server, Docker fails
/// with exactly the "no such file or directory" that `check` predicts; with the files of
/// `bundle_closure` added, the server starts.
#[test]
fn docker_confirms_diagnosis_and_bundle() {
    let (bare, bundled) = run_bare_and_bundled(&go_server(GoBuild::Cgo), &["--version"]);
    assert!(bare.contains("no such file or directory"), "{bare}");
    assert!(bundled.starts_with("sample-server go1."), "{bundled}");
}

/// Same with C programs against glibc and against musl (whose loader is its libc).
#[test]
fn docker_runs_bundled_c_programs() {
    for variant in [CBuild::GccDynamic, CBuild::MuslDynamic] {
        let (bare, bundled) = run_bare_and_bundled(&c_program(variant), &[]);
        assert!(
            bare.contains("no such file or directory"),
            "{variant:?}: {bare}"
        );
        assert_eq!(bundled, "hello from C\n", "{variant:?}");
    }
}

/// No false alarms: ELF executables installed on this (working) host all pass `check` against
/// the host's own root, through ld.so.conf, multiarch directories, symlinked executables and
/// `$ORIGIN` (the JDK's launchers, when installed, need it).
#[test]
fn host_executables_pass_check_on_the_host() {
    let root = HostRoot("/".into());
    let mut entries: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    entries.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in entries {
        let Ok(a) = elf::analyze_file(&path) else {
            continue;
        };
        if a.format != elf::Format::Elf || a.linkage != Some(Linkage::Dynamic) {
            continue;
        }
        checked += 1;
        let problems = elf::check(&path.to_string_lossy(), &a, &root, a.platform.as_ref());
        if !problems.is_empty() {
            failures.push(format!("{}: {problems:?}", path.display()));
        }
        if checked == 300 {
            break;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} dynamic executables in /usr/bin"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every architecture of the OCI platform table, from real Go cross-builds of a tiny program
/// (the class, byte order and machine of each, e.g. big-endian 64-bit s390x).
#[test]
fn go_cross_builds_map_to_oci_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let src = temp_file(
        &dir,
        "main.go",
        b"package main\n\nfunc main() { println(\"hi\") }\n",
    );
    let cases = [
        ("amd64", "", "linux/amd64", 64, "little"),
        ("arm64", "", "linux/arm64", 64, "little"),
        ("arm", "7", "linux/arm/v7", 32, "little"),
        ("arm", "6", "linux/arm/v6", 32, "little"),
        ("386", "", "linux/386", 32, "little"),
        ("ppc64le", "", "linux/ppc64le", 64, "little"),
        ("s390x", "", "linux/s390x", 64, "big"),
        ("riscv64", "", "linux/riscv64", 64, "little"),
    ];
    for (goarch, goarm, platform, bits, endian) in cases {
        let out = dir.path().join(format!("hi-{goarch}{goarm}"));
        let mut cmd = std::process::Command::new("go");
        cmd.current_dir(dir.path())
            .env("GOCACHE", util::fixtures_dir().join("gocache"))
            .env("GO111MODULE", "off")
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", goarch)
            .args(["build", "-o"])
            .arg(&out)
            .arg(&src);
        if !goarm.is_empty() {
            cmd.env("GOARM", goarm);
        }
        run_ok(&mut cmd);
        let j = inspect_json(&out);
        assert_eq!(j["platform"], platform, "{goarch}: {j}");
        assert_eq!(
            (j["bits"].as_u64(), j["endian"].as_str()),
            (Some(bits), Some(endian))
        );
        assert_eq!(j["linkage"], "static", "{goarch}");
        assert_eq!(j["go"]["settings"]["GOARCH"], goarch, "{goarch}");
        assert_eq!(j["runs_in_empty_image"], true, "{goarch}");
    }
}
