//! `portcullis audit` (in progress).

use std::process::ExitCode;

/// Arguments of `portcullis audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {}

/// Runs `portcullis audit`.
pub fn run(_args: AuditArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
