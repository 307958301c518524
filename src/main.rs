//! The `imgbuild` binary: parses the command line and calls the library. Each subcommand is a
//! screenful of glue; the work lives in the library modules.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use imgbuild::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect(args),
        Command::Build(args) => build(args, cli.quiet),
        Command::Push(args) => push(args, cli.quiet),
        Command::Upload(args) => upload(args, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imgbuild: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(args: cli::InspectArgs) -> Result<()> {
    let analysis = imgbuild::elf::analyze_file(&args.file)
        .with_context(|| format!("inspecting {}", args.file.display()))?;
    let _ = (analysis, args.json);
    bail!("inspect: not implemented yet")
}

fn build(args: cli::BuildArgs, quiet: bool) -> Result<()> {
    use imgbuild::spec::Spec;
    let spec = match &args.spec {
        Some(path) => Spec::from_file(path)?,
        None => Spec::default(),
    };
    let json = args.json;
    let spec = spec.overlay(build_flags(args));
    let output = spec
        .output()?
        .context("no output: pass --output oci:DIR, docker-archive:FILE or docker")?;
    let plan = spec.into_plan().context("planning the image")?;
    on_interrupt_stop_build();
    let built = imgbuild::oci::build_image(&plan, &output)
        .with_context(|| format!("building {} into {output}", plan.reference().0))?;
    if !quiet {
        for (platform, digest) in &built.manifests {
            eprintln!("imgbuild: {platform}: manifest {digest}");
        }
        for line in &built.docker {
            eprintln!("imgbuild: docker: {line}");
        }
        eprintln!("imgbuild: wrote {} to {output}", built.reference);
    }
    if json {
        let manifests: Vec<_> = built
            .manifests
            .iter()
            .map(|(p, d)| serde_json::json!({"platform": p, "digest": d}))
            .collect();
        let v = serde_json::json!({
            "digest": built.digest,
            "mediaType": built.media_type,
            "reference": built.reference,
            "output": output.to_string(),
            "manifests": manifests,
        });
        println!("{v}");
    } else {
        println!("{}", built.digest);
    }
    Ok(())
}

/// The build flags as a spec, to overlay on a spec file.
fn build_flags(args: cli::BuildArgs) -> imgbuild::spec::Spec {
    use imgbuild::spec::{CompressionKind, Fetch, Spec};
    let wants_fetch =
        args.fetch.is_some() || args.sha256.is_some() || args.entrypoint_binary.is_some();
    let fetch = wants_fetch.then_some(Fetch {
        url: args.fetch,
        sha256: args.sha256,
        entrypoint_binary: args.entrypoint_binary,
    });
    Spec {
        name: args.name,
        tag: args.tag,
        output: args.output,
        binary: args.binary,
        platform: args.platform,
        args: args.args,
        env: args.env.into_iter().collect(),
        workdir: args.workdir,
        user: args.user,
        ports: args.port,
        labels: args.label.into_iter().collect(),
        annotations: args.annotation.into_iter().collect(),
        files: args.add,
        ca_certs: args.no_ca_certs.then_some(false),
        tzdata: args.tzdata.then_some(true),
        bundle_libs: args.bundle_libs.then_some(true),
        compression: args.compression.map(|c| match c {
            cli::CompressionArg::Gzip => CompressionKind::Gzip,
            cli::CompressionArg::Zstd => CompressionKind::Zstd,
        }),
        compression_level: args.compression_level,
        fetch,
        base_dir: None,
    }
}

/// Ctrl-C and SIGTERM make a running build stop and remove what it staged.
fn on_interrupt_stop_build() {
    extern "C" fn handler(_: libc::c_int) {
        imgbuild::oci::request_interrupt();
    }
    let handler: extern "C" fn(libc::c_int) = handler;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

fn push(args: cli::PushArgs, quiet: bool) -> Result<()> {
    let _ = (args, quiet);
    bail!("push: not implemented yet")
}

fn upload(args: cli::UploadArgs, quiet: bool) -> Result<()> {
    let _ = (args, quiet);
    bail!("upload: not implemented yet")
}
