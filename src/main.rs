//! The `portcullis` binary: parse the command line, install the TLS crypto provider, dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One explicitly installed rustls crypto provider for the whole process.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("error: a rustls crypto provider was already installed");
        return ExitCode::from(2);
    }
    let cli = portcullis::cli::Cli::parse();
    match portcullis::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
