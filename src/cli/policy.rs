//! `portcullis policy validate|schema`: check policy files, print their JSON Schema.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::lint::{load_dir, load_str};
use crate::policy::model::PolicyDocument;
use crate::policy::{LoadError, PolicySet, selected_kinds};

/// `portcullis policy ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files strictly; print each policy, or every problem with file and line
    /// (exit 1).
    Validate(ValidateArgs),
    /// Print the JSON Schema of the policy file format (for editors and CI).
    Schema,
}

/// `portcullis policy validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// A policy directory (every *.yaml / *.yml in it, dot-files skipped) or a single file.
    #[arg(default_value = "policies")]
    pub path: PathBuf,
}

/// Runs `portcullis policy ...`.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Validate(args) => {
            let (out, code) = validate(&args.path);
            write_stdout(&out)?;
            Ok(code)
        }
        PolicyCommand::Schema => {
            let mut schema = schema_json().context("rendering the JSON Schema")?;
            schema.push('\n');
            write_stdout(&schema)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// The JSON Schema of a policy document, generated from the file model's types.
pub fn schema_json() -> serde_json::Result<String> {
    serde_json::to_string_pretty(&schemars::schema_for!(PolicyDocument))
}

fn load(path: &Path) -> Result<PolicySet, LoadError> {
    if path.is_file() {
        match std::fs::read_to_string(path) {
            Ok(text) => load_str(path, &text),
            Err(e) => Err(LoadError {
                diagnostics: vec![crate::policy::load::Diagnostic {
                    file: path.to_path_buf(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                    hint: String::new(),
                }],
            }),
        }
    } else {
        load_dir(path)
    }
}

/// Validates a policy directory or file: the report to print and the exit code.
pub fn validate(path: &Path) -> (String, ExitCode) {
    let mut out = String::new();
    match load(path) {
        Ok(set) => {
            let rows: Vec<[String; 5]> = set
                .policies
                .iter()
                .map(|p| {
                    let kinds = if p.match_.kinds.is_empty() {
                        "all".to_owned()
                    } else {
                        selected_kinds(&p.match_)
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let rules = p
                        .rules
                        .iter()
                        .map(|r| r.type_name())
                        .collect::<Vec<_>>()
                        .join(",");
                    [
                        p.name.clone(),
                        p.mode.as_str().to_owned(),
                        kinds,
                        rules,
                        p.source.to_string(),
                    ]
                })
                .collect();
            let header = ["NAME", "MODE", "KINDS", "RULES", "SOURCE"].map(str::to_owned);
            let mut widths = [0usize; 5];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let mut line = String::new();
                for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(cell);
                    } else {
                        let _ = write!(line, "{cell:<w$}  ");
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
            for w in &set.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            let _ = write!(
                out,
                "{} {} valid",
                rows.len(),
                if rows.len() == 1 {
                    "policy is"
                } else {
                    "policies are"
                }
            );
            let _ = match set.warnings.len() {
                0 => writeln!(out),
                1 => writeln!(out, ", with 1 warning"),
                n => writeln!(out, ", with {n} warnings"),
            };
            (out, ExitCode::SUCCESS)
        }
        Err(e) => {
            for d in &e.diagnostics {
                let _ = writeln!(out, "{d}");
            }
            let _ = writeln!(
                out,
                "{} {} found",
                e.diagnostics.len(),
                if e.diagnostics.len() == 1 {
                    "problem"
                } else {
                    "problems"
                }
            );
            (out, ExitCode::FAILURE)
        }
    }
}
