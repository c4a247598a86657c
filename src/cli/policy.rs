//! `portcullis policy validate|schema` (in progress).

use std::process::ExitCode;

/// `portcullis policy ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {}

/// Runs `portcullis policy ...`.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
