//! `imgbuild build` against tools no one here wrote: skopeo and umoci read and verify our OCI
//! layouts, the Docker engine loads our archives and runs the images, and the sample Go server
//! answers HTTP from inside them.

mod util;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use util::docker::{self, unique, Cleanup};
use util::{c_program, free_port, go_server, imgbuild, run, run_ok, sha256_file, CBuild, GoBuild};

/// Runs `imgbuild build ARGS` and returns the digest it printed.
fn build(args: &[&str]) -> String {
    let out = run_ok(
        imgbuild()
            .arg("build")
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    let digest = out.trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "stdout is not just a digest: {out:?}"
    );
    digest
}

fn json(cmd: &mut Command) -> Value {
    serde_json::from_str(&run_ok(cmd)).expect("JSON output")
}

fn skopeo(args: &[&str]) -> Value {
    json(Command::new("skopeo").args(args))
}

/// Every file under `dir` with its content hash, for "untouched" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), sha256_file(&p)));
            }
        }
    }
    out.sort();
    out
}

/// Builds `binary` with `extra` flags into the engine, runs it and checks it answers HTTP.
fn assert_serves_http(binary: &Path, extra: &[&str]) {
    let mut cleanup = Cleanup::default();
    let tag = format!("{}:t", unique("run"));
    cleanup.images.push(tag.clone());
    let mut args = vec![
        "--binary",
        binary.to_str().unwrap(),
        "--tag",
        &tag,
        "--port",
        "8080",
        "-o",
        "docker",
    ];
    args.extend_from_slice(extra);
    build(&args);
    let port = free_port();
    let name = docker::run_detached(&mut cleanup, &tag, &[("PORT", port.to_string())], &[]);
    let answer = docker::wait_for_http(port, "/healthz", &name, 10);
    assert!(
        answer.contains("200 OK") && answer.ends_with("ok\n"),
        "unexpected answer {answer:?}; {}",
        docker::logs(&name)
    );
}

#[test]
fn oci_layout_is_read_by_skopeo_and_unpacked_by_umoci() {
    let server = go_server(GoBuild::Static);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    let digest = build(&[
        "--binary",
        server.to_str().unwrap(),
        "--name",
        "server",
        "--tag",
        "sample:1.0",
        "--port",
        "8080",
        "--label",
        "team=web",
        "--annotation",
        "org.opencontainers.image.source=https://example.com/sample",
        "--env",
        "GREETING=hi",
        "--arg",
        "--verbose",
        "-o",
        &dest,
    ]);

    let inspect = skopeo(&["inspect", &format!("{dest}:1.0")]);
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Labels"]["team"], "web");

    let raw = skopeo(&["inspect", "--raw", &dest]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.source"],
        "https://example.com/sample"
    );
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    let layers = raw["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "base and app layers: {raw}");
    assert!(layers
        .iter()
        .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"));

    let config = skopeo(&["inspect", "--config", &dest]);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/server"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--verbose"]));
    assert_eq!(c["WorkingDir"], "/app");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert!(env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
    assert!(env.contains(&"GREETING=hi"));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");

    // umoci verifies every digest while unpacking.
    let bundle = tmp.path().join("bundle");
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:1.0", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    let app = rootfs.join("app/server");
    assert_eq!(sha256_file(&app), sha256_file(&server));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&app), 0o755);
    assert_eq!(mode(&rootfs.join("tmp")), 0o1777);
    assert_eq!(
        sha256_file(&rootfs.join("etc/ssl/certs/ca-certificates.crt")),
        sha256_file(Path::new("/etc/ssl/certs/ca-certificates.crt"))
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("nonroot:x:65532:"), "{group}");
}

#[test]
fn docker_archives_from_us_and_from_skopeo_both_load() {
    let server = go_server(GoBuild::Static);
    let tmp = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let ours = format!("{}:ours", unique("archive"));
    let theirs = format!("{}:skopeo", unique("archive"));
    cleanup.images.extend([ours.clone(), theirs.clone()]);

    let archive = tmp.path().join("ours.tar");
    build(&[
        "--binary",
        server.to_str().unwrap(),
        "--tag",
        &ours,
        "-o",
        &format!("docker-archive:{}", archive.display()),
    ]);
    let loaded = run_ok(Command::new("docker").args(["load", "-i", archive.to_str().unwrap()]));
    assert!(loaded.contains(&ours), "{loaded}");

    let layout = tmp.path().join("layout");
    build(&[
        "--binary",
        server.to_str().unwrap(),
        "-o",
        &format!("oci:{}", layout.display()),
    ]);
    let copied = tmp.path().join("skopeo.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}", layout.display()),
        &format!("docker-archive:{}:{theirs}", copied.display()),
    ]));
    let loaded = run_ok(Command::new("docker").args(["load", "-i", copied.to_str().unwrap()]));
    assert!(loaded.contains(&theirs), "{loaded}");

    // Both are the same image to Docker: the config digest is the image ID.
    let id = |r: &str| {
        run_ok(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", r]))
            .trim()
            .to_string()
    };
    assert_eq!(id(&ours), id(&theirs));
}

#[test]
fn static_go_server_runs_from_docker_output() {
    assert_serves_http(&go_server(GoBuild::Static), &[]);
}

#[test]
fn cgo_server_runs_with_bundle_libs() {
    assert_serves_http(&go_server(GoBuild::Cgo), &["--bundle-libs"]);
}

#[test]
fn cgo_server_without_bundle_libs_is_refused_and_nothing_is_written() {
    let server = go_server(GoBuild::Cgo);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let out = run(imgbuild().args([
        "build",
        "--binary",
        server.to_str().unwrap(),
        "-o",
        &format!("oci:{}", layout.display()),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a dynamic binary was accepted");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(stderr.contains("refusing to build"), "{stderr}");
    assert!(stderr.contains("--bundle-libs"), "{stderr}");
    assert!(
        stderr.contains("ld-linux"),
        "the diagnosis names the interpreter: {stderr}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn dynamic_c_program_with_bundle_libs_unpacks_with_its_libraries() {
    let prog = c_program(CBuild::GccDynamic);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    build(&[
        "--binary",
        prog.to_str().unwrap(),
        "--name",
        "hello",
        "--bundle-libs",
        "-o",
        &format!("oci:{}", layout.display()),
    ]);
    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}", layout.display())]);
    assert_eq!(
        raw["layers"].as_array().unwrap().len(),
        3,
        "base, libs, app: {raw}"
    );
    let bundle = tmp.path().join("bundle");
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:latest", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("lib64/ld-linux-x86-64.so.2").exists());
    let out = run_ok(
        Command::new(rootfs.join("lib64/ld-linux-x86-64.so.2"))
            .arg("--library-path")
            .arg(rootfs.join("lib/x86_64-linux-gnu"))
            .arg(rootfs.join("app/hello")),
    );
    assert_eq!(out, "hello from C\n");
}

#[test]
fn several_binaries_make_a_multi_platform_index() {
    let amd64 = go_server(GoBuild::Static);
    let arm64 = go_server(GoBuild::Arm64);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    let digest = build(&[
        "--binary",
        amd64.to_str().unwrap(),
        "--binary",
        arm64.to_str().unwrap(),
        "--name",
        "server",
        "-o",
        &dest,
    ]);
    let raw = skopeo(&["inspect", "--raw", &dest]);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let mut platforms: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // The digest printed is the index's.
    let index_blob = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    assert_eq!(format!("sha256:{}", sha256_file(&index_blob)), digest);
    // Each platform's image resolves, with its own architecture.
    for arch in ["amd64", "arm64"] {
        let inspect = skopeo(&["--override-arch", arch, "inspect", &dest]);
        assert_eq!(inspect["Architecture"], arch);
    }
}

#[test]
fn a_binary_for_another_platform_is_refused() {
    let arm64 = go_server(GoBuild::Arm64);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let out = run(imgbuild().args([
        "build",
        "--binary",
        arm64.to_str().unwrap(),
        "--platform",
        "linux/amd64",
        "-o",
        &format!("oci:{}", layout.display()),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("linux/arm64") && stderr.contains("linux/amd64"),
        "{stderr}"
    );
    assert!(!layout.exists());
}

#[test]
fn same_inputs_give_the_same_digest_from_any_directory() {
    let server = go_server(GoBuild::Static);
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b/c"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(&server, a.join("server")).unwrap();
    std::fs::copy(&server, b.join("server")).unwrap();
    let in_dir = |dir: &Path, epoch: Option<&str>| {
        let mut cmd = imgbuild();
        cmd.current_dir(dir)
            .args(["build", "--binary", "server", "-o", "oci:out"])
            .env_remove("SOURCE_DATE_EPOCH");
        if let Some(e) = epoch {
            cmd.env("SOURCE_DATE_EPOCH", e);
        }
        run_ok(&mut cmd).trim().to_string()
    };
    let first = in_dir(&a, None);
    assert_eq!(first, in_dir(&b, None));
    assert_eq!(
        snapshot(&a.join("out")).len(),
        snapshot(&b.join("out")).len()
    );
    std::fs::remove_dir_all(b.join("out")).unwrap();
    let dated = in_dir(&b, Some("1700000000"));
    assert_ne!(first, dated, "SOURCE_DATE_EPOCH must change the image");
    let config = skopeo(&[
        "inspect",
        "--config",
        &format!("oci:{}", b.join("out").display()),
    ]);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn a_failed_build_leaves_an_existing_destination_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    build(&[
        "--binary",
        go_server(GoBuild::Static).to_str().unwrap(),
        "--tag",
        "app:1",
        "-o",
        &dest,
    ]);
    let before = snapshot(&layout);
    let out = run(imgbuild().args([
        "build",
        "--binary",
        go_server(GoBuild::Cgo).to_str().unwrap(),
        "--tag",
        "app:1",
        "-o",
        &dest,
    ]));
    assert!(!out.status.success());
    assert_eq!(snapshot(&layout), before);
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["layout"], "temp files left behind");

    // A destination that is not an OCI layout is refused, not overwritten.
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let out = run(imgbuild().args([
        "build",
        "--binary",
        go_server(GoBuild::Static).to_str().unwrap(),
        "-o",
        &format!("oci:{}", file.display()),
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an OCI image layout"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn an_existing_layout_gets_the_image_added_and_its_tag_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    let server = go_server(GoBuild::Static);
    let one = build(&[
        "--binary",
        server.to_str().unwrap(),
        "--tag",
        "app:1",
        "-o",
        &dest,
    ]);
    let two = build(&[
        "--binary",
        server.to_str().unwrap(),
        "--tag",
        "app:2",
        "--port",
        "9000",
        "-o",
        &dest,
    ]);
    assert_ne!(one, two);
    let tag_digest = |tag: &str| {
        skopeo(&["inspect", &format!("{dest}:{tag}")])["Digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(tag_digest("1"), one);
    assert_eq!(tag_digest("2"), two);
    let three = build(&[
        "--binary",
        server.to_str().unwrap(),
        "--tag",
        "app:1",
        "--port",
        "9001",
        "-o",
        &dest,
    ]);
    assert_eq!(tag_digest("1"), three);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
}

#[test]
fn zstd_layers_use_the_oci_zstd_media_type_and_match_their_diff_ids() {
    let server = go_server(GoBuild::Static);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let dest = format!("oci:{}", layout.display());
    build(&[
        "--binary",
        server.to_str().unwrap(),
        "--compression",
        "zstd",
        "-o",
        &dest,
    ]);
    let raw = skopeo(&["inspect", "--raw", &dest]);
    let config = skopeo(&["inspect", "--config", &dest]);
    let layers = raw["layers"].as_array().unwrap();
    for (layer, diff_id) in layers
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let hex = &layer["digest"].as_str().unwrap()["sha256:".len()..];
        let out = run_ok(
            Command::new("sh")
                .arg("-c")
                .arg("zstd -dc \"$1\" | sha256sum | cut -c1-64")
                .arg("sh")
                .arg(layout.join("blobs/sha256").join(hex)),
        );
        assert_eq!(format!("sha256:{}", out.trim()), diff_id.as_str().unwrap());
    }
    // skopeo re-reads and re-verifies every blob when copying.
    run_ok(Command::new("skopeo").args([
        "copy",
        &dest,
        &format!("oci:{}", tmp.path().join("copy").display()),
    ]));
}

#[test]
fn fetch_mode_image_runs_the_entrypoint_with_the_object_to_fetch() {
    let entrypoint = c_program(CBuild::MuslStatic);
    let tmp = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}", tmp.path().join("layout").display());
    let sum = "ab".repeat(32);
    build(&[
        "--fetch",
        "s3://artifacts/server",
        "--sha256",
        &sum,
        "--entrypoint-binary",
        entrypoint.to_str().unwrap(),
        "-o",
        &dest,
    ]);
    let config = skopeo(&["inspect", "--config", &dest]);
    let c = &config["config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/app/imgbuild-entrypoint"])
    );
    let env = c["Env"].as_array().unwrap();
    assert!(env.contains(&Value::from("IMGBUILD_FETCH=s3://artifacts/server")));
    assert!(env.contains(&Value::from(format!("IMGBUILD_SHA256={sum}"))));
    assert!(env.contains(&Value::from(
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    )));

    let out = run(imgbuild().args([
        "build",
        "--fetch",
        "s3://artifacts/server",
        "--entrypoint-binary",
        "/nonexistent/imgbuild-entrypoint",
        "-o",
        &dest,
    ]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scripts/build-entrypoint.sh"));
}

#[test]
fn a_spec_file_builds_like_flags_and_flags_override_it() {
    let server = go_server(GoBuild::Static);
    let tmp = tempfile::tempdir().unwrap();
    let specs = tmp.path().join("images");
    std::fs::create_dir_all(specs.join("static")).unwrap();
    std::fs::write(specs.join("static/index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::copy(&server, tmp.path().join("server")).unwrap();
    std::fs::write(
        specs.join("web.toml"),
        "name = \"web\"\ntag = \"web:1\"\noutput = \"oci:../out\"\nbinary = [\"../server\"]\n\
         ports = [\"8080\"]\nfiles = [\"static:static\"]\nlabels = { team = \"web\" }\n",
    )
    .unwrap();
    let spec = specs.join("web.toml");
    // From another directory: paths in the spec are relative to the spec file.
    let from_spec = run_ok(
        imgbuild()
            .current_dir("/")
            .args(["build", spec.to_str().unwrap()])
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    let dest = format!("oci:{}", tmp.path().join("out").display());
    let config = skopeo(&["inspect", "--config", &format!("{dest}:1")]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app/web"])
    );
    assert_eq!(config["config"]["Labels"]["team"], "web");
    let bundle = tmp.path().join("bundle");
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:1", tmp.path().join("out").display()),
        bundle.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/app/static/index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
    // A flag overrides the spec's tag.
    let overridden = build(&[spec.to_str().unwrap(), "--tag", "web:2"]);
    assert_eq!(
        skopeo(&["inspect", &format!("{dest}:2")])["Digest"],
        overridden
    );
    assert_eq!(
        from_spec.trim(),
        overridden,
        "only the tag differs: same manifest"
    );
}

/// Regression: an interrupt surfaced as `ErrorKind::Interrupted`, which `write_all` retries
/// forever, so an interrupted build spun instead of cleaning up and exiting.
#[test]
fn an_interrupted_build_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Enough incompressible data that the build is still writing when the signal comes.
    let big = tmp.path().join("big.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..(96 << 20) / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f.write_all(&x.to_le_bytes()).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let layout = work.join("layout");
    let child = imgbuild()
        .args([
            "build",
            "--binary",
            go_server(GoBuild::Static).to_str().unwrap(),
            "--add",
            &format!("{}:/data/big.bin", big.display()),
            "-o",
            &format!("oci:{}", layout.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is staging blobs, then interrupt it as Ctrl-C would.
    let staging_seen = (0..600).any(|_| {
        let seen = std::fs::read_dir(&work).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".imgbuild-stage-")
        });
        if !seen {
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    });
    assert!(staging_seen, "the build never started staging");
    run_ok(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the build finished before the signal: {stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "leftovers in {}",
        work.display()
    );
}
