//! `portcullis test`: run the test files of a policy set. Exit codes: 0 every case passed,
//! 1 a case failed, 2 tests or policies could not be read (or a usage error), 3 every case
//! passed but `--require-coverage` found a rule without a case where it fires and one where it
//! passes.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::audit::{ColorChoice, write_stdout};
use crate::audit::report::Style;
use crate::policy::Timestamp;
use crate::policytest::{self, report};

/// `--output` of `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestOutput {
    /// Readable, coloured on a terminal.
    Text,
    /// JSON (schemaVersion 1).
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// Arguments of `portcullis test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Directory of policy files under test.
    #[arg(long, env = "PORTCULLIS_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
    /// Test files or directories (walked for *.yaml, *.yml). Default: <policies>/tests.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Fail (exit 3) when a rule of the set lacks a case where it fires or one where it passes.
    #[arg(long)]
    pub require_coverage: bool,
    /// Judge cases without a time of their own at this time instead of now: a date
    /// (00:00 UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = |s: &str| s.parse::<Timestamp>())]
    pub at: Option<Timestamp>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = TestOutput::Text)]
    pub output: TestOutput,
    /// Colour: `auto` (on a terminal unless NO_COLOR is set), `always` or `never`.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Runs the tests; see the module documentation for the exit codes.
pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let time = args.at.unwrap_or_else(Timestamp::now);
    let run = execute(&args, time);
    let text = match args.output {
        TestOutput::Text => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && std::io::stdout().is_terminal()
                }
            };
            report::text(&run, Style { color })
        }
        TestOutput::Json => {
            let mut s = serde_json::to_string_pretty(&report::json(&run))
                .context("serializing the JSON report")?;
            s.push('\n');
            s
        }
        TestOutput::Junit => report::junit(&run),
    };
    write_stdout(&text)?;
    Ok(ExitCode::from(run.exit_code()))
}

/// Loads the policies and the tests, and runs every suite at `time`.
pub fn execute(args: &TestArgs, time: Timestamp) -> report::Run {
    let mut errors = Vec::new();
    let set = match crate::lint::load_dir(&args.policies) {
        Ok(set) => Some(set),
        Err(e) => {
            errors.extend(e.diagnostics);
            None
        }
    };
    let paths = if args.paths.is_empty() {
        vec![args.policies.join("tests")]
    } else {
        args.paths.clone()
    };
    let (suites, mut problems) = policytest::load(&paths);
    errors.append(&mut problems);
    let mut results = Vec::new();
    let mut coverage = Vec::new();
    if let Some(set) = &set {
        for suite in &suites {
            match policytest::suite_set(set, suite) {
                Ok(suite_set) => results.push(policytest::run_suite(&suite_set, suite, time)),
                Err(e) => errors.push(e),
            }
        }
        coverage = policytest::coverage(set, &results);
    }
    report::Run {
        suites: results,
        errors,
        coverage,
        require_coverage: args.require_coverage,
    }
}
