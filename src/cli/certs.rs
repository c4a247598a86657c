//! `portcullis certs` (in progress).

use std::process::ExitCode;

/// Arguments of `portcullis certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {}

/// Runs `portcullis certs`.
pub fn run(_args: CertsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
