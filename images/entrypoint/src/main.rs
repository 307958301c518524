//! imgbuild-entrypoint: the ENTRYPOINT of a fetch-mode image. Fetches the server binary from
//! S3, verifies it, and runs it.

fn main() {
    eprintln!("imgbuild-entrypoint: not implemented yet");
    std::process::exit(1);
}
