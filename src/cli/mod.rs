//! The command line: one clap-derive definition, one module per subcommand.

pub mod audit;
pub mod certs;
pub mod mutate;
pub mod policy;
pub mod serve;
pub mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Portcullis: Kubernetes admission policy enforcer (webhook and offline CLI).
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook (HTTPS) and its admin port.
    Serve(Box<serve::ServeArgs>),
    /// Judge manifests offline against the policies; exits 1 on an enforce-mode violation.
    Audit(audit::AuditArgs),
    /// Print manifests as they would be admitted (mutations applied).
    Mutate(mutate::MutateArgs),
    /// Generate a CA and a serving certificate for the webhook.
    Certs(certs::CertsArgs),
    /// Run the test files of a policy set (exit 1: a case failed; 2: unreadable tests or
    /// policies; 3: --require-coverage found an uncovered rule).
    Test(test::TestArgs),
    /// Validate policy files, print their JSON Schema, or export them as native admission
    /// policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Audit(args) => audit::run(args),
        Command::Mutate(args) => mutate::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Test(args) => test::run(args),
        Command::Policy(cmd) => policy::run(cmd),
    }
}
