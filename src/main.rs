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
    let _ = (args, quiet);
    bail!("build: not implemented yet")
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
    let image = match &args.from {
        Some(source) => oci::read::open(source).with_context(|| format!("reading {source}"))?,
        None => bail!(
            "push: building in the same command is not available yet: build with `imgbuild build \
             -o oci:DIR`, then `imgbuild push --from oci:DIR {}`",
            args.reference
        ),
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
    let report = runtime.block_on(async {
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
    let _ = (args, quiet);
    bail!("upload: not implemented yet")
}
