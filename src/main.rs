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
            let libc = match (a.libc, &a.go, a.linkage) {
                (Some(l), _, _) => l.as_str(),
                (None, Some(_), Some(imgbuild::elf::Linkage::Static)) => "none (Go runtime)",
                (None, _, _) => "unknown",
            };
            line("libc", libc);
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
    let spec = spec.overlay(imgbuild::spec::Spec {
        tag: args.tag,
        output: args.output,
        ..image_flags(args.image)
    });
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

/// The image flags (shared by `build` and `push`) as a spec, to overlay on a spec file.
fn image_flags(args: cli::ImageArgs) -> imgbuild::spec::Spec {
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
        ..Spec::default()
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
    use imgbuild::{ecr, oci, reference::Reference, registry};
    use std::io::IsTerminal;

    let reference = Reference::parse(&args.reference)?;
    let mut tags: Vec<String> = reference.tag.iter().cloned().collect();
    for t in &args.tags {
        reference.with_tag(t)?;
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let registry_host = reference.registry().to_string();
    let ecr_registry = ecr::parse_host(&registry_host);
    if args.create_repository && ecr_registry.is_none() {
        bail!(
            "--create-repository applies to ECR registries only; {registry_host} is not one \
             (other registries create a repository on its first push)"
        );
    }
    // The image to push: an existing one, or one built now into a temp layout (kept until the
    // push is over, since blobs stream from it).
    let build_dir = tempfile::tempdir().context("creating a temp dir for the build")?;
    let image = match &args.from {
        Some(source) => oci::read::open(source).with_context(|| format!("reading {source}"))?,
        None => {
            let layout = build_dir.path().join("layout");
            build_for_push(&args, &layout, quiet)?;
            oci::read::read_layout(&layout, None).context("reading the image just built")?
        }
    };
    let root = image.root().digest.clone();
    if let Some(d) = reference.digest.as_ref().filter(|d| **d != root) {
        bail!(
            "{} names digest {d}, but the image's digest is {root}",
            args.reference
        );
    }
    let options = registry::Options {
        jobs: args.jobs.into(),
        chunk_size: args.chunked.then_some(args.chunk_size << 20),
        insecure_registries: args.insecure_registry.clone(),
        max_attempts: args.retries.saturating_add(1),
        mount_from: args.mount_from.clone(),
        progress: if quiet || args.json && !std::io::stderr().is_terminal() {
            registry::ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            registry::ProgressMode::Bar
        } else {
            registry::ProgressMode::Lines
        },
        ..registry::Options::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let work = async {
        let credentials = match &ecr_registry {
            Some(reg) => {
                if args.create_repository {
                    let settings = ecr::RepositorySettings {
                        scan_on_push: args.scan_on_push,
                        immutable_tags: args
                            .image_tag_mutability
                            .map(|m| m == cli::TagMutability::Immutable),
                    };
                    if ecr::create_repository(reg, &reference.repository, &settings).await?
                        && !quiet
                    {
                        eprintln!("created ECR repository {}", reference.repository);
                    }
                }
                Some(ecr::credentials(reg).await?)
            }
            None => registry::auth::from_docker_config(&registry_host)?,
        };
        let endpoint = registry::Endpoint::resolve(&registry_host, &args.insecure_registry)?;
        let client = registry::Client::new(endpoint, &reference.repository, credentials, options)?;
        client.push(&image, &tags).await.map_err(|err| {
            let hint = ecr_registry
                .as_ref()
                .and_then(|reg| ecr::explain(&err, reg, &reference.repository));
            let err = anyhow::Error::new(err);
            match hint {
                Some(h) => err.context(h),
                None => err,
            }
        })
    };
    // Ctrl-C or SIGTERM: stop, clean up the temp build, and say that a re-run resumes.
    let report = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("watching for SIGTERM")?;
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(INTERRUPTED_PUSH)),
            _ = term.recv() => Err(anyhow::anyhow!(INTERRUPTED_PUSH)),
        }
    });
    let report = report.with_context(|| format!("pushing to {}", args.reference))?;
    let pinned = format!("{}@{}", reference.name(), report.digest);
    if let Some(path) = &args.digest_file {
        write_atomically(path, format!("{pinned}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["reference"] = pinned.clone().into();
        println!("{value}");
    } else {
        println!("{pinned}");
    }
    Ok(())
}

/// What an interrupted push says.
const INTERRUPTED_PUSH: &str = "interrupted; the registry keeps the blobs already uploaded, and \
     running the same command again finishes the push without sending them twice";

/// Builds the image `imgbuild push` was given build options for into the OCI layout `layout`.
fn build_for_push(b: &cli::PushArgs, layout: &std::path::Path, quiet: bool) -> Result<()> {
    use imgbuild::spec::Spec;
    if b.spec.is_none() && b.image.binary.is_empty() && b.image.fetch.is_none() {
        bail!(
            "nothing to push: pass --binary FILE, --fetch s3://BUCKET/KEY or --spec FILE to \
             build, or --from SOURCE"
        );
    }
    let spec = match &b.spec {
        Some(path) => Spec::from_file(path)?,
        None => Spec::default(),
    };
    let flags = Spec {
        output: Some(format!("oci:{}", layout.display())),
        ..image_flags(b.image.clone())
    };
    let spec = spec.overlay(flags);
    let output = spec.output()?.context("no build output")?;
    let plan = spec.into_plan().context("planning the image")?;
    on_interrupt_stop_build();
    let built = imgbuild::oci::build_image(&plan, &output)
        .with_context(|| format!("building {}", plan.reference().0));
    // The push that follows writes nothing locally: Ctrl-C may end it at once again.
    // SAFETY: restoring the default disposition of a signal is always sound.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    let built = built?;
    if !quiet {
        eprintln!("imgbuild: built {} ({})", built.reference, built.digest);
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename, so the
/// file appears whole or not at all.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}

fn upload(args: cli::UploadArgs, quiet: bool) -> Result<()> {
    use imgbuild::{elf, s3};
    let dest = s3::S3Url::parse(&args.destination)?;
    let analysis = elf::analyze_file(&args.file)
        .with_context(|| format!("checking {} before uploading it", args.file.display()))?;
    let name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // The fetch-mode image holds nothing but the entrypoint: the server must start in an empty one.
    let problems = elf::check(&name, &analysis, &elf::ImageRoot::default(), None);
    if !problems.is_empty() {
        let why: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        bail!(
            "not uploading {}: the entrypoint would refuse it: {}",
            args.file.display(),
            why.join("; ")
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let up = rt.block_on(async {
        let client = s3::client_from_env().await;
        s3::upload(&client, &args.file, &dest).await
    })?;
    if args.json {
        let v = serde_json::json!({
            "url": up.url.to_string(),
            "sha256": up.sha256,
            "size": up.size,
            "version_id": up.version_id,
            "elapsed_ms": up.elapsed.as_millis() as u64,
        });
        println!("{v}");
    } else {
        println!("{}", up.sha256);
    }
    if !quiet {
        let version = up
            .version_id
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        eprintln!(
            "imgbuild: uploaded {} ({:.1} MB) to {}{version} in {} ms, S3 verified its sha256; \
             pin it with IMGBUILD_SHA256={}",
            args.file.display(),
            up.size as f64 / 1e6,
            up.url,
            up.elapsed.as_millis(),
            up.sha256
        );
    }
    Ok(())
}
