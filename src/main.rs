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
    use imgbuild::elf;
    let analysis = match elf::analyze_file(&args.file) {
        Ok(a) => a,
        // The I/O error already names the file.
        Err(e @ elf::Error::Io { .. }) => return Err(e.into()),
        Err(e) => return Err(anyhow::Error::new(e).context(args.file.display().to_string())),
    };
    let name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let problems = elf::check(&name, &analysis, &elf::ImageRoot::default(), None);
    if args.json {
        println!("{}", inspect_json(&analysis, &problems));
    } else {
        print!("{}", inspect_text(&args.file, &analysis, &problems));
    }
    Ok(())
}

/// `inspect --json`: one object.
fn inspect_json(a: &imgbuild::elf::Analysis, problems: &[imgbuild::elf::Problem]) -> String {
    use serde_json::json;
    let module = |m: &imgbuild::elf::GoModule| {
        json!({
            "path": m.path,
            "version": m.version,
            "sum": m.sum,
            "replace": m.replace.as_ref().map(|r| json!({"path": r.path, "version": r.version, "sum": r.sum})),
        })
    };
    let go = a.go.as_ref().map(|g| {
        json!({
            "version": g.version,
            "path": g.path,
            "main": g.main.as_ref().map(module),
            "deps": g.deps.iter().map(module).collect::<Vec<_>>(),
            "settings": g.settings,
        })
    });
    let format = match a.format {
        imgbuild::elf::Format::Elf => "elf",
        imgbuild::elf::Format::Script => "script",
    };
    json!({
        "format": format,
        "os": a.platform.as_ref().map(|p| &p.os),
        "arch": a.platform.as_ref().map(|p| &p.architecture),
        "variant": a.platform.as_ref().and_then(|p| p.variant.as_ref()),
        "platform": a.platform.as_ref().map(ToString::to_string),
        "bits": a.bits,
        "endian": a.endian,
        "linkage": a.linkage.map(|l| l.as_str()),
        "interpreter": a.interpreter,
        "interpreter_arg": a.interpreter_arg,
        "needed": a.needed,
        "rpath": a.rpath,
        "runpath": a.runpath,
        "libc": a.libc.map(|l| l.as_str()),
        "go": go,
        "runs_in_empty_image": problems.is_empty(),
        "problems": problems.iter().map(|p| &p.message).collect::<Vec<_>>(),
        "problem_kinds": problems.iter().map(|p| p.kind).collect::<Vec<_>>(),
    })
    .to_string()
}

/// `inspect` for people: one `key: value` line per fact, then the verdict.
fn inspect_text(
    file: &std::path::Path,
    a: &imgbuild::elf::Analysis,
    problems: &[imgbuild::elf::Problem],
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}:")
        };
        let _ = writeln!(out, "{key:<13}{value}");
    };
    line("file", &file.display().to_string());
    match a.format {
        imgbuild::elf::Format::Script => {
            line("format", "script (#!)");
            let interp = a.interpreter.as_deref().unwrap_or_default();
            match &a.interpreter_arg {
                Some(arg) => line("interpreter", &format!("{interp} (argument: {arg})")),
                None => line("interpreter", interp),
            }
        }
        imgbuild::elf::Format::Elf => {
            line(
                "format",
                &format!(
                    "ELF {}-bit {}-endian",
                    a.bits.unwrap_or(0),
                    a.endian.unwrap_or("?")
                ),
            );
            line(
                "platform",
                &a.platform
                    .as_ref()
                    .map_or_else(|| "unknown machine".into(), ToString::to_string),
            );
            line("linkage", a.linkage.map_or("?", |l| l.as_str()));
            if let Some(i) = &a.interpreter {
                line("interpreter", i);
            }
            if !a.needed.is_empty() {
                line("needed", &a.needed.join(", "));
            }
            if !a.rpath.is_empty() {
                line("rpath", &a.rpath.join(":"));
            }
            if !a.runpath.is_empty() {
                line("runpath", &a.runpath.join(":"));
            }
            line("libc", a.libc.map_or("unknown or none", |l| l.as_str()));
        }
    }
    if let Some(go) = &a.go {
        line("go", &go.version);
        if let Some(p) = &go.path {
            line("go path", p);
        }
        if let Some(m) = &go.main {
            line("go module", &format!("{} {}", m.path, m.version));
        }
        if !go.deps.is_empty() {
            line("go deps", &go.deps.len().to_string());
        }
        for (i, (k, v)) in go.settings.iter().enumerate() {
            line(if i == 0 { "go settings" } else { "" }, &format!("{k}={v}"));
        }
    }
    if problems.is_empty() {
        line("verdict", "can start in an empty (scratch) image");
    } else {
        line("verdict", "cannot start in an empty (scratch) image");
        for p in problems {
            let _ = writeln!(out, "  - {}", p.message);
        }
    }
    out
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
