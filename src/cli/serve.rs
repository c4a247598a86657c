//! `portcullis serve` (in progress).

use std::process::ExitCode;

/// Arguments of `portcullis serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `portcullis serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
