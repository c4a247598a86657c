//! `portcullis policy validate|schema|export`: check policy files, print their JSON Schema,
//! export them as native admission policies ([`export`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

pub mod export;

use crate::lint::{load_dir, load_str};
use crate::policy::model::{ExceptionDocument, PolicyDocument};
use crate::policy::{LoadError, PolicySet, Timestamp, exceptions, selected_kinds, step_scope};

/// `portcullis policy ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files strictly; print each policy, or every problem with file and line
    /// (exit 1).
    Validate(ValidateArgs),
    /// Print the JSON Schema of the policy file format (for editors and CI).
    Schema,
    /// Print the policies as native admission policies (ValidatingAdmissionPolicy,
    /// MutatingAdmissionPolicy) the API server enforces without the webhook.
    Export(export::ExportArgs),
}

/// `portcullis policy validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// A policy directory (every *.yaml / *.yml in it, dot-files skipped) or a single file.
    #[arg(default_value = "policies")]
    pub path: PathBuf,
    /// Review schedules and exceptions as at this time instead of now: a date (`2027-01-15`,
    /// meaning 00:00 UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = |s: &str| s.parse::<Timestamp>())]
    pub at: Option<Timestamp>,
}

/// Runs `portcullis policy ...`.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Validate(args) => {
            let (out, code) = validate_at(&args.path, args.at.unwrap_or_else(Timestamp::now));
            write_stdout(&out)?;
            Ok(code)
        }
        PolicyCommand::Schema => {
            let mut schema = schema_json().context("rendering the JSON Schema")?;
            schema.push('\n');
            write_stdout(&schema)?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Export(args) => export::run(args),
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// Any document of a policy set, or of its tests: the JSON Schema's root (`kind` tells them
/// apart).
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schemars(title = "Portcullis document")]
enum AnyDocument {
    Policy(PolicyDocument),
    PolicyException(ExceptionDocument),
    PolicyTest(crate::policytest::model::TestDocument),
}

/// The JSON Schema of the documents of a policy set (`Policy`, `PolicyException`) and of its
/// tests (`PolicyTest`), generated from the types the loaders use.
pub fn schema_json() -> serde_json::Result<String> {
    serde_json::to_string_pretty(&schemars::schema_for!(AnyDocument))
}

pub(super) fn load(path: &Path) -> Result<PolicySet, LoadError> {
    if path.is_file() {
        match std::fs::read_to_string(path) {
            Ok(text) => load_str(path, &text),
            Err(e) => Err(LoadError {
                diagnostics: vec![crate::policy::load::Diagnostic {
                    file: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                    hint: String::new(),
                }],
            }),
        }
    } else {
        load_dir(path)
    }
}

/// Validates a policy directory or file now: the report to print and the exit code.
pub fn validate(path: &Path) -> (String, ExitCode) {
    validate_at(path, Timestamp::now())
}

/// Lays out rows as columns two spaces apart (the last column unpadded).
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_owned);
    let mut widths = [0usize; N];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
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
    out
}

/// Each scheduled policy's schedule, and what is in force at `now`.
fn schedules(set: &PolicySet, now: Timestamp) -> String {
    let mut out = String::new();
    for p in set.policies.iter().filter(|p| !p.schedule.is_empty()) {
        let _ = writeln!(
            out,
            "\nschedule of {} ({}): {} where no step applies",
            p.name,
            p.source,
            p.mode.as_str()
        );
        for step in &p.schedule {
            let scope = step_scope(step);
            let scope = if scope == "*" {
                "every namespace".to_owned()
            } else {
                format!("namespaces {scope}")
            };
            let state = if step.from <= now {
                "started"
            } else {
                "pending"
            };
            let _ = writeln!(
                out,
                "  from {:<20} {:<8} in {scope} ({state})",
                step.from.to_string(),
                step.mode.as_str()
            );
        }
        let now_modes: Vec<String> = p
            .modes_at(now)
            .into_iter()
            .map(|(scope, mode)| {
                let scope = if scope == "*" {
                    "elsewhere".to_owned()
                } else {
                    format!("in {scope}")
                };
                format!("{} {scope}", mode.as_str())
            })
            .collect();
        let _ = write!(out, "  at {now}: {}", now_modes.join(", "));
        match p.next_change(now) {
            Some(next) => {
                let _ = writeln!(out, "; next change at {next}");
            }
            None => {
                let _ = writeln!(out);
            }
        }
    }
    out
}

/// The exceptions of the set, one row each.
fn exception_rows(set: &PolicySet) -> Vec<[String; 5]> {
    set.exceptions
        .iter()
        .map(|e| {
            let policies = e
                .policies
                .iter()
                .map(|p| {
                    if p.rules.is_empty() {
                        p.name.clone()
                    } else {
                        format!("{}({})", p.name, p.rules.join(","))
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            [
                e.info.name.clone(),
                policies,
                e.info.owner.clone(),
                e.info.expires.to_string(),
                e.source.to_string(),
            ]
        })
        .collect()
}

/// Validates a policy directory or file, reviewing schedules and exceptions as at `now`: the
/// report to print and the exit code.
pub fn validate_at(path: &Path, now: Timestamp) -> (String, ExitCode) {
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
                    let mode = if p.schedule.is_empty() {
                        p.mode.as_str().to_owned()
                    } else {
                        format!("{} (scheduled)", p.mode.as_str())
                    };
                    [p.name.clone(), mode, kinds, rules, p.source.to_string()]
                })
                .collect();
            out.push_str(&table(["NAME", "MODE", "KINDS", "RULES", "SOURCE"], &rows));
            out.push_str(&schedules(&set, now));
            let exception_rows = exception_rows(&set);
            if !exception_rows.is_empty() {
                out.push('\n');
                out.push_str(&table(
                    ["EXCEPTION", "POLICIES", "OWNER", "EXPIRES", "SOURCE"],
                    &exception_rows,
                ));
            }
            let mut warnings: Vec<String> = set.warnings.iter().map(ToString::to_string).collect();
            warnings.extend(
                exceptions::review(&set, now)
                    .iter()
                    .map(ToString::to_string),
            );
            for w in &warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            let _ = write!(
                out,
                "{} {}",
                rows.len(),
                if rows.len() == 1 {
                    "policy"
                } else {
                    "policies"
                }
            );
            let _ = match exception_rows.len() {
                0 => write!(out, ""),
                1 => write!(out, " and 1 exception"),
                n => write!(out, " and {n} exceptions"),
            };
            let _ = write!(
                out,
                " {} valid",
                if rows.len() + exception_rows.len() == 1 {
                    "is"
                } else {
                    "are"
                }
            );
            let _ = match warnings.len() {
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
