//! `imgbuild upload` against moto's S3 on 127.0.0.1: the object and its stored SHA-256
//! checksum as boto3 (an independent client) sees them, refusals before any upload, retries
//! through the fault proxy, and the round trip into the entrypoint with the printed pin.

mod util;

use std::path::PathBuf;
use std::process::{Command, Output};

use util::faultproxy::{Fault, FaultProxy, Rule};
use util::moto::Moto;
use util::{go_server, imgbuild, root, run, run_ok, sha256_file, GoBuild};

const BUCKET: &str = "artifacts";

fn upload(moto_endpoint: &str, moto: &Moto, file: &std::path::Path, dest: &str) -> Output {
    let mut cmd = imgbuild();
    moto.configure(&mut cmd)
        .env("AWS_ENDPOINT_URL", moto_endpoint)
        .args(["upload"])
        .arg(file)
        .arg(dest);
    run(&mut cmd)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn object_keys(moto: &Moto) -> String {
    moto.boto3(
        "s3",
        &format!("sys.stdout.write(','.join(o['Key'] for o in c.list_objects_v2(Bucket='{BUCKET}').get('Contents', [])))"),
    )
}

#[test]
fn uploads_with_sha256_checksum_and_prints_the_pin() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let server = go_server(GoBuild::Static);
    let out = upload(
        &moto.endpoint(),
        &moto,
        &server,
        &format!("s3://{BUCKET}/app/server"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pin = sha256_file(&server);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{pin}\n"));
    assert!(
        stderr(&out).contains(&format!("pin it with IMGBUILD_SHA256={pin}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        moto.get_object(BUCKET, "app/server"),
        std::fs::read(&server).unwrap()
    );
    let stored = moto.boto3(
        "s3",
        &format!("import base64\nsys.stdout.write(base64.b64decode(c.head_object(Bucket='{BUCKET}', Key='app/server', ChecksumMode='ENABLED')['ChecksumSHA256']).hex())"),
    );
    assert_eq!(stored, pin, "S3 stored the full-object SHA-256");

    // --json for scripts: one object with the same pin, and nothing else on stdout.
    let mut cmd = imgbuild();
    moto.configure(&mut cmd)
        .args(["upload", "--json", "--quiet"])
        .arg(&server)
        .arg(format!("s3://{BUCKET}/app/server-json"));
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["sha256"], pin.as_str());
    assert_eq!(v["url"], format!("s3://{BUCKET}/app/server-json").as_str());
    assert_eq!(v["size"], std::fs::metadata(&server).unwrap().len());
    assert!(stderr(&out).is_empty(), "--quiet: {}", stderr(&out));
}

#[test]
fn refuses_what_the_entrypoint_could_not_start_and_bad_destinations() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let out = upload(
        &moto.endpoint(),
        &moto,
        &go_server(GoBuild::Cgo),
        &format!("s3://{BUCKET}/server"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("imgbuild: not uploading")
            && err.contains("the entrypoint would refuse it"),
        "{err}"
    );
    assert!(
        err.contains("CGO_ENABLED=0") || err.contains("dynamically linked"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(object_keys(&moto), "", "nothing uploaded");

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes");
    std::fs::write(&text, "not a program\n").unwrap();
    let out = upload(
        &moto.endpoint(),
        &moto,
        &text,
        &format!("s3://{BUCKET}/notes"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let server = go_server(GoBuild::Static);
    let out = upload(
        &moto.endpoint(),
        &moto,
        &server,
        "s3://no-such-bucket/server",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such bucket: no-such-bucket"),
        "{}",
        stderr(&out)
    );
    let out = upload(
        &moto.endpoint(),
        &moto,
        &server,
        "https://example.com/server",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an S3 object URL"),
        "{}",
        stderr(&out)
    );
    assert_eq!(object_keys(&moto), "");
}

#[test]
fn retries_through_server_errors_and_a_reset_upload() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let proxy = FaultProxy::start(([127, 0, 0, 1], moto.port).into());
    proxy.add(Rule::new(Some("PUT"), "/server", Fault::Status(503), 1));
    proxy.add(Rule::new(
        Some("PUT"),
        "/server",
        Fault::ResetRequestAfter(64 << 10),
        1,
    ));
    let server = go_server(GoBuild::Static);
    let out = upload(
        &format!("http://{}", proxy.addr()),
        &moto,
        &server,
        &format!("s3://{BUCKET}/server"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.count("PUT", "/server"), 3, "{:?}", proxy.requests());
    assert_eq!(
        moto.get_object(BUCKET, "server"),
        std::fs::read(&server).unwrap()
    );
}

fn entrypoint_bin() -> PathBuf {
    let bin = root().join("target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/build-entrypoint.sh first",
        bin.display()
    );
    bin
}

#[test]
fn the_printed_pin_is_what_the_entrypoint_verifies() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let server = go_server(GoBuild::Static);
    let out = upload(
        &moto.endpoint(),
        &moto,
        &server,
        &format!("s3://{BUCKET}/server"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut cmd = Command::new(entrypoint_bin());
    moto.configure(&mut cmd)
        .env("IMGBUILD_FETCH", format!("s3://{BUCKET}/server"))
        .env("IMGBUILD_SHA256", &pin)
        .env("IMGBUILD_EXEC", "1")
        .arg("--version");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sha256 ok (S3 checksum and pin)"),
        "{}",
        stderr(&out)
    );
    assert!(run_ok(&mut cmd).starts_with("sample-server go"));
}
