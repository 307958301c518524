//! Checks of the test harness itself: moto serves S3, and the fault proxy injects what it is
//! told to and logs what the client saw. Uses curl as the independent client.

mod util;

use std::net::SocketAddr;
use std::process::Command;

use util::faultproxy::{Fault, FaultProxy, Rule};
use util::moto::Moto;

fn curl(url: &str, out: &std::path::Path) -> (String, Option<i32>) {
    let o = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(out)
        .args(["-w", "%{http_code}", url])
        .output()
        .expect("run curl");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        o.status.code(),
    )
}

#[test]
fn fault_proxy_injects_status_cut_and_reset_against_moto() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let object = dir.path().join("object");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&object, &data).unwrap();
    moto.create_bucket("harness");
    moto.put_object("harness", "obj", &object);
    assert_eq!(moto.get_object("harness", "obj"), data);
    // curl sends no signature: let anonymous clients read the object.
    moto.boto3(
        "s3",
        "c.put_object_acl(Bucket='harness', Key='obj', ACL='public-read')",
    );

    let upstream: SocketAddr = format!("127.0.0.1:{}", moto.port).parse().unwrap();
    let proxy = FaultProxy::start(upstream);
    let url = format!("http://{}/harness/obj", proxy.addr());
    let got = dir.path().join("got");

    proxy.add(Rule::new(
        Some("GET"),
        "/harness/obj",
        Fault::Status(503),
        1,
    ));
    assert_eq!(curl(&url, &got).0, "503");

    let (code, exit) = curl(&url, &got);
    assert_eq!((code.as_str(), exit), ("200", Some(0)));
    assert_eq!(
        std::fs::read(&got).unwrap(),
        data,
        "a clean pass relays the whole body"
    );

    proxy.add(Rule::new(None, "obj", Fault::CutResponseAfter(1000), 1));
    let (code, exit) = curl(&url, &got);
    assert_eq!(code, "200");
    assert_eq!(exit, Some(18), "curl reports a partial transfer (exit 18)");
    assert_eq!(std::fs::metadata(&got).unwrap().len(), 1000);

    proxy.add(Rule::new(Some("PUT"), "", Fault::ResetRequestAfter(10), 1));
    let put = Command::new("curl")
        .args(["-sS", "-X", "PUT", "--data-binary"])
        .arg(format!("@{}", object.display()))
        .arg(format!("http://{}/harness/put", proxy.addr()))
        .output()
        .unwrap();
    assert!(
        !put.status.success(),
        "the reset upload fails at the client"
    );

    let log = proxy.requests();
    let seen: Vec<(&str, u16, Option<Fault>)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.status, r.fault))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GET", 503, Some(Fault::Status(503))),
            ("GET", 200, None),
            ("GET", 200, Some(Fault::CutResponseAfter(1000))),
            ("PUT", 0, Some(Fault::ResetRequestAfter(10))),
        ]
    );
    assert_eq!(proxy.count("GET", "/harness/obj"), 3);
}
