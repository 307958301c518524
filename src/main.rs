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
    let _ = (args, quiet);
    bail!("push: not implemented yet")
}

fn upload(args: cli::UploadArgs, quiet: bool) -> Result<()> {
    let _ = (args, quiet);
    bail!("upload: not implemented yet")
}
