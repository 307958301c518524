//! moto's server (PyPI `moto[server]`) on 127.0.0.1: real S3 and ECR APIs for the tests.
//!
//! Objects and buckets are set up with boto3 (installed with moto), an independent client.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, run_ok};

/// The account moto reports (its default).
pub const ACCOUNT: &str = "123456789012";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// A running moto server, stopped on drop.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// Starts moto that enforces IAM authentication after its first `free_actions` requests
    /// (`INITIAL_NO_AUTH_ACTION_COUNT`): set-up runs as the admin, then only real IAM users
    /// with policies get through.
    pub fn start_enforcing_auth(free_actions: u32) -> Moto {
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string())])
    }

    fn start_with_env(env: &[(&str, String)]) -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (python3 -m moto.server); run scripts/setup.sh to install it");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an AWS SDK client needs to talk to this server with dummy credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Applies [`Moto::aws_env`] to `cmd`, clearing other AWS settings of the test environment.
    pub fn configure<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.aws_env())
    }

    /// Runs a boto3 snippet against this server; `c` is the client for `service`.
    pub fn boto3(&self, service: &str, code: &str) -> String {
        let script = format!(
            "import boto3, sys\nc = boto3.client('{service}', endpoint_url='{}', region_name='{REGION}', aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}\n",
            self.endpoint()
        );
        run_ok(Command::new("python3").arg("-c").arg(script))
    }

    /// Creates an S3 bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3("s3", &format!("c.create_bucket(Bucket='{bucket}')"));
    }

    /// Puts the file at `path` as `s3://bucket/key`.
    pub fn put_object(&self, bucket: &str, key: &str, path: &Path) {
        self.boto3(
            "s3",
            &format!(
                "c.upload_file({:?}, '{bucket}', '{key}')",
                path.to_str().expect("UTF-8 path")
            ),
        );
    }

    /// Reads `s3://bucket/key` into memory.
    pub fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self.boto3(
            "s3",
            &format!("sys.stdout.write(c.get_object(Bucket='{bucket}', Key='{key}')['Body'].read().hex())"),
        );
        (0..out.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&out[i..i + 2], 16).expect("hex"))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
