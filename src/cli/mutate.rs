//! `portcullis mutate` (in progress).

use std::process::ExitCode;

/// Arguments of `portcullis mutate`.
#[derive(Debug, clap::Args)]
pub struct MutateArgs {}

/// Runs `portcullis mutate`.
pub fn run(_args: MutateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
