//! `imgbuild push` against real services on 127.0.0.1: Debian's distribution registry (no
//! auth, htpasswd Basic, a token server), moto's ECR API, and a fault-injecting proxy. What we
//! push is checked with clients we did not write: skopeo (digest, copy), umoci (unpack) and the
//! Docker engine (`docker pull` from the local registry, then `docker run` answering HTTP).
//!
//! Test images are made with umoci from the static Go sample server built from source, as a
//! two-layer image (a small config file, then the binary), so "only the binary changed" moves
//! exactly one layer.

mod util;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use util::docker;
use util::faultproxy::{Fault, FaultProxy, Rule};
use util::moto::{Moto, ACCOUNT, REGION};
use util::registry::{base64, Auth, Registry};
use util::{free_port, go_server, imgbuild, run, run_ok, sha256_file, GoBuild};

/// An OCI layout at `dir` tagged `tag`: `/etc/sample.conf`, then the static Go server at
/// `/server` (with `extra` appended, to make a different binary that still runs).
fn go_layout(dir: &Path, tag: &str, extra: &[u8]) -> PathBuf {
    let work = dir.join(format!("work-{tag}"));
    std::fs::create_dir_all(&work).unwrap();
    let server = work.join("server");
    std::fs::copy(go_server(GoBuild::Static), &server).unwrap();
    if !extra.is_empty() {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&server)
            .unwrap();
        f.write_all(extra).unwrap();
    }
    // Same bytes and mtime every time, so this layer is identical across images.
    let conf = dir.join("sample.conf");
    std::fs::write(&conf, "greeting = hello\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&conf)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000))
        .unwrap();
    let layout = dir.join("layout");
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        run_ok(
            Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout),
        );
    }
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(
        Command::new("umoci")
            .args(["insert", "--rootless", "--image", &image])
            .arg(&conf)
            .arg("/etc/sample.conf"),
    );
    run_ok(
        Command::new("umoci")
            .args(["insert", "--rootless", "--image", &image])
            .arg(&server)
            .arg("/server"),
    );
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/server",
    ]));
    server
}

/// The hex digest of the largest layer of `layout`'s image tagged `tag` (the binary's).
fn binary_layer(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(manifest)).unwrap())
            .unwrap();
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap();
    assert!(
        layer["size"].as_u64().unwrap() > 1 << 20,
        "the binary layer is over 1 MiB"
    );
    layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

/// `imgbuild push` with an empty docker config (so the host's never leaks in) and `env`.
fn push_cmd(docker_config: &Path, args: &[&str]) -> Command {
    let mut cmd = imgbuild();
    cmd.env("DOCKER_CONFIG", docker_config)
        .env_remove(registry_mirror())
        .arg("push")
        .args(args);
    cmd
}

fn registry_mirror() -> &'static str {
    "IMGBUILD_REGISTRY_MIRROR"
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The digest in `NAME@sha256:...` printed by push.
fn printed_digest(stdout: &str) -> String {
    let line = stdout.trim();
    let (_, digest) = line
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("push printed {line:?}, not NAME@DIGEST"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{line}"
    );
    digest.to_string()
}

/// skopeo's view of the digest of `docker://REF`.
fn skopeo_digest(reference: &str, creds: Option<&str>) -> String {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    let out = run_ok(cmd.arg(format!("docker://{reference}")));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// A docker config dir whose `auths` hold `user:password` for `registry`.
fn docker_config_with(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let auth = base64(format!("{user}:{password}").as_bytes(), false);
    std::fs::write(
        cfg.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    cfg
}

fn empty_docker_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("empty-docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    cfg
}

/// Copies `docker://REF` out with skopeo and unpacks it with umoci (which verifies every
/// digest) under `dir`; returns the rootfs.
fn pull_and_unpack(dir: &Path, reference: &str, creds: Option<&str>) -> PathBuf {
    let back = dir.join("back");
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--src-tls-verify=false"]);
    if let Some(c) = creds {
        copy.args(["--src-creds", c]);
    }
    run_ok(copy.args([
        format!("docker://{reference}"),
        format!("oci:{}:got", back.display()),
    ]));
    let bundle = dir.join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:got", back.display()))
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

/// `docker pull` REF from the local registry, run it with host networking, and check that the
/// server answers HTTP.
fn docker_pull_and_run(reference: &str) {
    let mut cleanup = docker::Cleanup::default();
    cleanup.images.push(reference.to_string());
    run_ok(Command::new("docker").args(["pull", "-q", reference]));
    let port = free_port();
    let name = docker::run_detached(&mut cleanup, reference, &[("PORT", port.to_string())], &[]);
    let answer = docker::wait_for_http(port, "/", &name, 30);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(
        answer.contains("hello from imgbuild sample-server"),
        "{answer}"
    );
}

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn push_without_auth_runs_in_docker_and_repushes_only_what_changed() {
    let reg = Registry::start(Auth::None);
    let t = tempfile::tempdir().unwrap();
    go_layout(t.path(), "v1", b"");
    let layout = t.path().join("layout");
    let cfg = empty_docker_config(t.path());
    let reference = format!("{}/sample/server:1", reg.addr());
    let digest_file = t.path().join("out/digest.txt");
    std::fs::create_dir_all(digest_file.parent().unwrap()).unwrap();

    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--from",
            &format!("oci:{}:v1", layout.display()),
            "--tag",
            "latest",
            "--digest-file",
            digest_file.to_str().unwrap(),
            &reference,
        ],
    ));
    let digest = printed_digest(&out);
    assert_eq!(out.trim(), format!("{}/sample/server@{digest}", reg.addr()));
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        out.trim()
    );
    assert_eq!(skopeo_digest(&reference, None), digest);
    assert_eq!(
        skopeo_digest(&format!("{}/sample/server:latest", reg.addr()), None),
        digest
    );
    // config + 2 layers
    assert_eq!(reg.completed_blob_uploads(), 3);

    docker_pull_and_run(&reference);

    // Warm re-push: only HEADs and the manifest.
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--json",
            "--from",
            &format!("oci:{}:v1", layout.display()),
            &reference,
        ],
    ));
    let r = report(&out);
    assert_eq!(r["blobs_uploaded"], 0, "{r}");
    assert_eq!(r["blobs_existing"], 3, "{r}");
    assert_eq!(r["digest"], digest.as_str());
    assert_eq!(
        reg.completed_blob_uploads(),
        3,
        "a warm re-push uploads no blob"
    );

    // Only the binary changed: its layer and the config move, the other layer does not.
    go_layout(t.path(), "v2", b"\nimgbuild-test-change\n");
    let v2 = format!("{}/sample/server:2", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--json",
            "--from",
            &format!("oci:{}:v2", layout.display()),
            &v2,
        ],
    ));
    let r = report(&out);
    assert_eq!(
        r["blobs_uploaded"], 2,
        "the binary's layer and the config: {r}"
    );
    assert_eq!(r["blobs_existing"], 1, "{r}");
    assert_eq!(reg.completed_blob_uploads(), 5);
    let d2 = r["digest"].as_str().unwrap().to_string();
    assert_ne!(d2, digest);
    assert_eq!(skopeo_digest(&v2, None), d2);
    docker_pull_and_run(&v2);
}

#[test]
fn push_with_htpasswd_basic_auth_and_wrong_password_fails_fast() {
    let reg = Registry::start(Auth::Htpasswd {
        user: "ci".into(),
        password: "right-pass".into(),
    });
    let t = tempfile::tempdir().unwrap();
    let server = go_layout(t.path(), "v1", b"");
    let layout = format!("oci:{}:v1", t.path().join("layout").display());
    let reference = format!("{}/team/app:7", reg.addr());

    let cfg = docker_config_with(t.path(), &reg.addr(), "ci", "right-pass");
    let out = run_ok(&mut push_cmd(&cfg, &["--from", &layout, &reference]));
    let digest = printed_digest(&out);
    assert_eq!(skopeo_digest(&reference, Some("ci:right-pass")), digest);

    // Unpack with umoci what skopeo copies back: the binary is the one we put in.
    let rootfs = pull_and_unpack(t.path(), &reference, Some("ci:right-pass"));
    assert_eq!(sha256_file(&rootfs.join("server")), sha256_file(&server));

    // Wrong password: a clear message, no retry storm, nothing uploaded.
    let before = reg.requests().len();
    let uploads = reg.completed_blob_uploads();
    let bad = docker_config_with(&t.path().join("bad"), &reg.addr(), "ci", "wrong-pass");
    let out = run(&mut push_cmd(
        &bad,
        &["--from", &layout, &format!("{}/team/app:8", reg.addr())],
    ));
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("401") && err.contains("credentials were rejected"),
        "{err}"
    );
    assert!(!err.contains("wrong-pass"), "the password leaked: {err}");
    let made = reg.requests().len() - before;
    assert!(
        made <= 3,
        "{made} requests for a wrong password:\n{:#?}",
        reg.requests()
    );
    assert_eq!(reg.completed_blob_uploads(), uploads);

    // No credentials at all: says how to log in.
    let out = run(&mut push_cmd(
        &empty_docker_config(t.path()),
        &["--from", &layout, &reference],
    ));
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("docker login"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn push_through_token_server() {
    for access_token in [false, true] {
        let reg = Registry::start(Auth::Token {
            user: "robot".into(),
            password: "tok-pass".into(),
            access_token,
        });
        let t = tempfile::tempdir().unwrap();
        go_layout(t.path(), "v1", b"");
        let layout = format!("oci:{}:v1", t.path().join("layout").display());
        let reference = format!("{}/tokens/app:1", reg.addr());
        let cfg = docker_config_with(t.path(), &reg.addr(), "robot", "tok-pass");
        let out = run_ok(&mut push_cmd(&cfg, &["--from", &layout, &reference]));
        let digest = printed_digest(&out);
        let issuer = reg.issuer.as_ref().unwrap();
        assert!(issuer.issued.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        assert_eq!(skopeo_digest(&reference, Some("robot:tok-pass")), digest);
        assert_eq!(reg.completed_blob_uploads(), 3);

        let asked = issuer.requests.load(std::sync::atomic::Ordering::SeqCst);
        let bad = docker_config_with(&t.path().join("bad"), &reg.addr(), "robot", "nope");
        let out = run(&mut push_cmd(&bad, &["--from", &layout, &reference]));
        assert!(!out.status.success());
        let err = stderr_of(&out);
        assert!(err.contains("token") && err.contains("401"), "{err}");
        assert!(!err.contains("nope"), "the password leaked: {err}");
        let asked_now = issuer.requests.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            asked_now - asked,
            1,
            "one token request for a wrong password"
        );
    }
}

#[test]
fn push_ecr_reference_with_moto_credentials_and_create_repository() {
    let moto = Moto::start();
    // moto's GetAuthorizationToken decodes to AWS:<account>-auth-token.
    let reg = Registry::start(Auth::Htpasswd {
        user: "AWS".into(),
        password: format!("{ACCOUNT}-auth-token"),
    });
    let t = tempfile::tempdir().unwrap();
    go_layout(t.path(), "v1", b"");
    let layout = format!("oci:{}:v1", t.path().join("layout").display());
    let ecr_host = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let reference = format!("{ecr_host}/team/server:1");
    let cfg = empty_docker_config(t.path());

    let mut cmd = push_cmd(
        &cfg,
        &[
            "--from",
            &layout,
            "--create-repository",
            "--scan-on-push",
            "--image-tag-mutability",
            "immutable",
            &reference,
        ],
    );
    moto.configure(&mut cmd)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env(registry_mirror(), format!("{ecr_host}={}", reg.addr()));
    let out = run_ok(&mut cmd);
    let digest = printed_digest(&out);
    assert_eq!(out.trim(), format!("{ecr_host}/team/server@{digest}"));
    let creds = format!("AWS:{ACCOUNT}-auth-token");
    assert_eq!(
        skopeo_digest(&format!("{}/team/server:1", reg.addr()), Some(&creds)),
        digest
    );
    let repo = moto.boto3(
        "ecr",
        "import json; r = c.describe_repositories(repositoryNames=['team/server'])['repositories'][0]; print(json.dumps([r['imageTagMutability'], r['imageScanningConfiguration']['scanOnPush']]))",
    );
    assert_eq!(repo.trim(), r#"["IMMUTABLE", true]"#);

    // A second push with --create-repository finds the repository there and goes on.
    let mut cmd = push_cmd(
        &cfg,
        &["--from", &layout, "--create-repository", &reference],
    );
    moto.configure(&mut cmd)
        .env(registry_mirror(), format!("{ecr_host}={}", reg.addr()));
    let out = run_ok(&mut cmd);
    assert_eq!(printed_digest(&out), digest);

    // Without AWS credentials: a message naming the fix.
    let mut cmd = push_cmd(&cfg, &["--from", &layout, &reference]);
    cmd.env(registry_mirror(), format!("{ecr_host}={}", reg.addr()))
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", t.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", t.path().join("none"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE");
    let out = run(&mut cmd);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("AWS credentials"),
        "{}",
        stderr_of(&out)
    );

    // With the opt-in disk cache holding a live token, no AWS call is needed at all.
    let cache = t.path().join("token-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(
        cache.join(format!("{ACCOUNT}.{REGION}.json")),
        format!(
            r#"{{"username":"AWS","password":"{ACCOUNT}-auth-token","expires_unix":{in_an_hour}}}"#
        ),
    )
    .unwrap();
    cmd.env("IMGBUILD_ECR_TOKEN_CACHE", &cache);
    let out = run_ok(&mut cmd);
    assert_eq!(printed_digest(&out), digest);
}

#[test]
fn push_survives_503s_and_a_reset_mid_upload() {
    let reg = Registry::start(Auth::None);
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", reg.port).parse().unwrap());
    let t = tempfile::tempdir().unwrap();
    let server = go_layout(t.path(), "v1", b"");
    let layout = format!("oci:{}:v1", t.path().join("layout").display());
    let cfg = empty_docker_config(t.path());
    proxy.add(Rule::new(Some("GET"), "/v2/", Fault::Status(503), 1));
    proxy.add(Rule::new(Some("HEAD"), "/blobs/", Fault::Status(429), 1));
    proxy.add(Rule::new(
        Some("POST"),
        "/blobs/uploads/",
        Fault::Status(503),
        2,
    ));
    // A reset in the middle of the binary layer's upload (smaller bodies would never reach
    // the cut, and the proxy would wait for bytes that do not come).
    let big = binary_layer(&t.path().join("layout"), "v1");
    proxy.add(Rule::new(
        Some("PUT"),
        &big,
        Fault::ResetRequestAfter(200_000),
        1,
    ));
    proxy.add(Rule::new(
        Some("PUT"),
        "/blobs/uploads/",
        Fault::Status(502),
        1,
    ));
    proxy.add(Rule::new(Some("PUT"), "/manifests/", Fault::Status(503), 1));
    let reference = format!("{}/faulty/app:1", proxy.addr());
    let out = run_ok(&mut push_cmd(&cfg, &["--from", &layout, &reference]));
    let digest = printed_digest(&out);
    let faults = proxy
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(faults, 7, "every fault was hit: {:#?}", proxy.requests());

    // The registry itself (not through the proxy) holds a complete, valid image.
    let direct = format!("{}/faulty/app:1", reg.addr());
    assert_eq!(skopeo_digest(&direct, None), digest);
    let rootfs = pull_and_unpack(t.path(), &direct, None);
    assert_eq!(sha256_file(&rootfs.join("server")), sha256_file(&server));
}

#[test]
fn interrupted_push_resumes_without_uploading_twice() {
    let reg = Registry::start(Auth::None);
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", reg.port).parse().unwrap());
    let t = tempfile::tempdir().unwrap();
    go_layout(t.path(), "v1", b"");
    let layout = format!("oci:{}:v1", t.path().join("layout").display());
    let cfg = empty_docker_config(t.path());
    let reference = format!("{}/resume/app:1", proxy.addr());
    // With no retries, the binary layer's failure ends the first run; the others got through.
    let big = binary_layer(&t.path().join("layout"), "v1");
    proxy.add(Rule::new(
        Some("PUT"),
        &big,
        Fault::ResetRequestAfter(1 << 20),
        1,
    ));
    let out = run(&mut push_cmd(
        &cfg,
        &[
            "--retries",
            "0",
            "--jobs",
            "1",
            "--from",
            &layout,
            &reference,
        ],
    ));
    assert!(!out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&big), "{}", stderr_of(&out));
    let first = reg.completed_blob_uploads();
    assert_eq!(first, 2, "the interrupted run stored the two small blobs");

    let out = run_ok(&mut push_cmd(
        &cfg,
        &["--json", "--from", &layout, &reference],
    ));
    let r = report(&out);
    assert_eq!(r["blobs_existing"], first, "{r}");
    assert_eq!(r["blobs_uploaded"], 3 - first, "{r}");
    assert_eq!(
        reg.completed_blob_uploads(),
        3,
        "no blob was uploaded twice"
    );
    assert_eq!(
        skopeo_digest(&format!("{}/resume/app:1", reg.addr()), None),
        r["digest"].as_str().unwrap()
    );
}

#[test]
fn chunked_upload_mount_and_docker_archive() {
    let reg = Registry::start(Auth::None);
    let t = tempfile::tempdir().unwrap();
    go_layout(t.path(), "v1", b"");
    let layout = format!("oci:{}:v1", t.path().join("layout").display());
    let cfg = empty_docker_config(t.path());

    let a = format!("{}/chunked/app:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &["--chunked", "--chunk-size", "1", "--from", &layout, &a],
    ));
    let digest = printed_digest(&out);
    assert_eq!(skopeo_digest(&a, None), digest);
    let patches = reg
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == 202)
        .count();
    assert!(
        patches >= 4,
        "a multi-MiB layer in 1 MiB chunks took {patches} PATCHes"
    );

    // Cross-repository mount: the registry answers 201, nothing is uploaded.
    let b = format!("{}/mounted/app:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--json",
            "--mount-from",
            "chunked/app",
            "--from",
            &layout,
            &b,
        ],
    ));
    let r = report(&out);
    assert_eq!(r["blobs_mounted"], 3, "{r}");
    assert_eq!(r["blobs_uploaded"], 0, "{r}");
    assert_eq!(skopeo_digest(&b, None), digest);

    // A docker archive (written by skopeo) pushes as an image that runs.
    let archive = t.path().join("app.tar");
    run_ok(Command::new("skopeo").args([
        "copy",
        &layout,
        &format!("docker-archive:{}:sample/app:1", archive.display()),
    ]));
    let c = format!("{}/archive/app:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--from",
            &format!("docker-archive:{}", archive.display()),
            &c,
        ],
    ));
    assert_eq!(skopeo_digest(&c, None), printed_digest(&out));
    docker_pull_and_run(&c);

    // `imgbuild build`'s docker archive also holds an OCI layout: it is pushed as it is, under
    // the digest the build printed.
    let ours = t.path().join("ours.tar");
    let built = run_ok(imgbuild().args([
        "-q",
        "build",
        "--binary",
        go_server(GoBuild::Static).to_str().unwrap(),
        "-o",
        &format!("docker-archive:{}", ours.display()),
    ]));
    let d = format!("{}/archive/ours:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &["--from", &format!("docker-archive:{}", ours.display()), &d],
    ));
    assert_eq!(printed_digest(&out), built.trim());
    assert_eq!(skopeo_digest(&d, None), built.trim());
}

#[test]
fn bad_input_fails_with_nothing_written() {
    let t = tempfile::tempdir().unwrap();
    let cfg = empty_docker_config(t.path());
    let digest_file = t.path().join("digest");
    let out = run(&mut push_cmd(
        &cfg,
        &[
            "--from",
            &format!("oci:{}", t.path().join("missing").display()),
            "--digest-file",
            digest_file.to_str().unwrap(),
            "127.0.0.1:1/app:1",
        ],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("index.json"),
        "{}",
        stderr_of(&out)
    );
    assert!(!digest_file.exists());

    let out = run(&mut push_cmd(&cfg, &["--from", "oci:x", "Bad/Name"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("invalid repository name"),
        "{}",
        stderr_of(&out)
    );

    let out = run(&mut push_cmd(
        &cfg,
        &["--from", "oci:x", "--create-repository", "127.0.0.1:1/app"],
    ));
    assert!(
        stderr_of(&out).contains("ECR registries only"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn build_and_push_in_one_command_runs_and_rebuild_uploads_nothing() {
    let reg = Registry::start(Auth::None);
    let t = tempfile::tempdir().unwrap();
    let cfg = empty_docker_config(t.path());
    let binary = go_server(GoBuild::Static);
    let reference = format!("{}/built/server:1", reg.addr());
    let digest_file = t.path().join("digest");
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--port",
            "8080",
            "--digest-file",
            digest_file.to_str().unwrap(),
            &reference,
        ],
    ));
    let digest = printed_digest(&out);
    assert_eq!(skopeo_digest(&reference, None), digest);
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        out.trim()
    );
    docker_pull_and_run(&reference);

    // The build is reproducible, so building and pushing again moves no blob.
    let uploads = reg.completed_blob_uploads();
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--json",
            "--binary",
            binary.to_str().unwrap(),
            "--port",
            "8080",
            &reference,
        ],
    ));
    let r = report(&out);
    assert_eq!(r["digest"], digest.as_str(), "{r}");
    assert_eq!(r["blobs_uploaded"], 0, "{r}");
    assert_eq!(reg.completed_blob_uploads(), uploads);

    // A binary that cannot start in the image is refused before anything is pushed.
    let out = run(&mut push_cmd(
        &cfg,
        &[
            "--binary",
            go_server(GoBuild::Cgo).to_str().unwrap(),
            &format!("{}/built/cgo:1", reg.addr()),
        ],
    ));
    assert!(!out.status.success());
    assert_eq!(reg.completed_blob_uploads(), uploads, "nothing pushed");
}

#[test]
fn multi_platform_index_is_pushed_after_its_children() {
    let reg = Registry::start(Auth::None);
    let t = tempfile::tempdir().unwrap();
    let cfg = empty_docker_config(t.path());
    let reference = format!("{}/multi/server:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--binary",
            go_server(GoBuild::Static).to_str().unwrap(),
            "--binary",
            go_server(GoBuild::Arm64).to_str().unwrap(),
            "--name",
            "server",
            &reference,
        ],
    ));
    let digest = printed_digest(&out);
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(skopeo_digest(&reference, None), digest);
    for arch in ["amd64", "arm64"] {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            arch,
            &format!("docker://{reference}"),
        ]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], arch);
    }
    // Children went in by digest before the index was tagged.
    let puts: Vec<String> = reg
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(puts.len(), 3, "{puts:?}");
    assert!(puts[0].contains("/manifests/sha256:") && puts[1].contains("/manifests/sha256:"));
    assert!(puts[2].ends_with("/manifests/1"), "{puts:?}");
}

#[test]
fn push_builds_the_fetch_mode_image_too() {
    let reg = Registry::start(Auth::None);
    let t = tempfile::tempdir().unwrap();
    let cfg = empty_docker_config(t.path());
    // Any static binary stands in for the entrypoint here; its image config is what is checked.
    let entrypoint = util::c_program(util::CBuild::MuslStatic);
    let pin = "cd".repeat(32);
    let reference = format!("{}/fetch/server:1", reg.addr());
    let out = run_ok(&mut push_cmd(
        &cfg,
        &[
            "--fetch",
            "s3://artifacts/server",
            "--sha256",
            &pin,
            "--entrypoint-binary",
            entrypoint.to_str().unwrap(),
            &reference,
        ],
    ));
    let digest = printed_digest(&out);
    assert_eq!(skopeo_digest(&reference, None), digest);
    let config = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{reference}"),
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(
        env.contains(&"IMGBUILD_FETCH=s3://artifacts/server".into()),
        "{env:?}"
    );
    assert!(
        env.contains(&format!("IMGBUILD_SHA256={pin}").into()),
        "{env:?}"
    );
}
