//! End to end: the CodeBuild-to-ECS pipeline reproduced on this machine with the real services.
//!
//! - baked mode: sample Go server → `imgbuild push` to an ECR-named reference (auth through
//!   moto's GetAuthorizationToken, traffic sent to a local distribution registry with exactly
//!   that htpasswd user) → `docker pull` → `docker run` → HTTP 200;
//! - fetch mode: `imgbuild upload` to moto S3 → the fetch-mode image with the pin, in Docker →
//!   HTTP 200; the object replaced by another binary → the pinned container refuses it;
//! - the README's main command (`scripts/demo.sh`) and the local pipeline demo
//!   (`scripts/pipeline-demo.sh`) run as written.

mod util;

use std::process::Command;

use util::docker::{self, Cleanup};
use util::moto::{Moto, ACCOUNT, REGION};
use util::registry::{Auth, Registry};
use util::{free_port, go_server, imgbuild, run, run_ok, sha256_file, GoBuild};

#[test]
fn baked_mode_push_to_ecr_then_docker_pull_and_run() {
    let moto = Moto::start();
    let password = format!("{ACCOUNT}-auth-token");
    let registry = Registry::start(Auth::Htpasswd {
        user: "AWS".into(),
        password: password.clone(),
    });
    let t = tempfile::tempdir().unwrap();
    let server = t.path().join("server");
    std::fs::copy(go_server(GoBuild::Static), &server).unwrap();
    let ecr_host = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let tag = docker::unique("e2e").replace("imgbuild-test-", "");
    let reference = format!("{ecr_host}/e2e/server:{tag}");
    let digest_file = t.path().join("digest.txt");

    // What CodeBuild's post_build runs: no Docker, no `docker login`.
    let mut push = imgbuild();
    moto.configure(&mut push)
        .env("DOCKER_CONFIG", t.path().join("no-docker-config"))
        .env(
            "IMGBUILD_REGISTRY_MIRROR",
            format!("{ecr_host}={}", registry.addr()),
        )
        .args(["push", "--binary"])
        .arg(&server)
        .args(["--port", "8080", "--create-repository", "--digest-file"])
        .arg(&digest_file)
        .arg(&reference);
    let printed = run_ok(&mut push);
    let digest = printed
        .trim()
        .rsplit_once('@')
        .expect("REF@DIGEST")
        .1
        .to_string();
    assert_eq!(printed.trim(), format!("{ecr_host}/e2e/server@{digest}"));
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap().trim(),
        printed.trim()
    );
    let repos = moto.boto3(
        "ecr",
        "print([r['repositoryName'] for r in c.describe_repositories()['repositories']])",
    );
    assert!(
        repos.contains("'e2e/server'"),
        "repository created in ECR: {repos}"
    );

    // What ECS does: pull by digest and run.
    let local = format!("{}/e2e/server@{digest}", registry.addr());
    let docker_config = t.path().join("docker-config");
    let docker = |args: &[&str]| {
        let mut cmd = Command::new("docker");
        cmd.arg("--config").arg(&docker_config).args(args);
        cmd
    };
    let password_file = t.path().join("pw");
    std::fs::write(&password_file, &password).unwrap();
    run_ok(
        docker(&["login", "-u", "AWS", "--password-stdin", &registry.addr()])
            .stdin(std::fs::File::open(&password_file).unwrap()),
    );
    let mut cleanup = Cleanup::default();
    cleanup.images.push(local.clone());
    run_ok(&mut docker(&["pull", "-q", &local]));
    let port = free_port();
    let name = docker::run_detached(&mut cleanup, &local, &[("PORT", port.to_string())], &[]);
    let answer = docker::wait_for_http(port, "/", &name, 30);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(
        answer.contains("hello from imgbuild sample-server"),
        "{answer}"
    );
}

#[test]
fn fetch_mode_upload_then_pinned_image_runs_and_refuses_a_replaced_binary() {
    let moto = Moto::start();
    moto.create_bucket("artifacts");
    let server = go_server(GoBuild::Static);

    // What CodeBuild's post_build runs instead of `aws s3 cp`: prints the pin.
    let mut upload = imgbuild();
    moto.configure(&mut upload)
        .arg("upload")
        .arg(&server)
        .arg("s3://artifacts/server");
    let pin = run_ok(&mut upload).trim().to_string();
    assert_eq!(pin, sha256_file(&server), "upload prints the sha256 to pin");

    // The fetch-mode image: the static entrypoint, configured to fetch that pinned object.
    let mut cleanup = Cleanup::default();
    let image = format!("{}:fetch", docker::unique("e2e"));
    cleanup.images.push(image.clone());
    run_ok(imgbuild().args([
        "build",
        "--fetch",
        "s3://artifacts/server",
        "--sha256",
        &pin,
        "--tag",
        &image,
        "--output",
        "docker",
    ]));
    let mut env = moto.aws_env();
    let port = free_port();
    env.push(("PORT", port.to_string()));
    let name = docker::run_detached(&mut cleanup, &image, &env, &[]);
    let answer = docker::wait_for_http(port, "/", &name, 60);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(
        answer.contains("hello from imgbuild sample-server"),
        "{answer}"
    );
    let logs = docker::logs(&name);
    assert!(logs.contains("sha256 ok"), "{logs}");

    // Someone replaces the object: the pinned image refuses to run it, and runs nothing.
    let other = tampered_copy(&server);
    moto.put_object("artifacts", "server", other.path());
    let port2 = free_port();
    env.pop();
    env.push(("PORT", port2.to_string()));
    let name2 = docker::run_detached(&mut cleanup, &image, &env, &[]);
    let code = docker::wait_exit(&name2);
    let logs = docker::logs(&name2);
    assert_eq!(code, 106, "checksum mismatch exit code; {logs}");
    assert!(
        logs.contains(&pin),
        "the message names the pinned sha256; {logs}"
    );
    assert!(
        !logs.contains("listening on"),
        "the replaced binary never ran; {logs}"
    );
    assert!(docker::http_get_once(port2, "/").is_none());
}

/// A copy of `binary` with bytes appended (still a valid, runnable ELF, another sha256).
fn tampered_copy(binary: &std::path::Path) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&std::fs::read(binary).unwrap()).unwrap();
    f.write_all(b"tampered").unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn readme_demo_script_builds_and_runs_the_sample() {
    let out = run(Command::new("bash")
        .arg(util::root().join("scripts/demo.sh"))
        .env("IMGBUILD", env!("CARGO_BIN_EXE_imgbuild")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("hello from imgbuild sample-server"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("the container answered HTTP"), "{stderr}");
}

#[test]
fn pipeline_demo_script_runs_both_modes() {
    let out = run(Command::new("bash")
        .arg(util::root().join("scripts/pipeline-demo.sh"))
        .env("IMGBUILD", env!("CARGO_BIN_EXE_imgbuild")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pipeline demo failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.matches("hello from imgbuild sample-server").count(),
        2,
        "both modes answered: {stdout}"
    );
    assert!(stderr.contains("sha256 ok"), "{stderr}");
}
