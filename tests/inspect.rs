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
