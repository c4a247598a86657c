//! `portcullis mutate`: print manifests as they would be admitted (the engine's JSON Patch
//! applied), as YAML, JSON, or a unified diff per changed object.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::audit::{ManifestArgs, write_stdout};
use crate::audit::report::Style;
use crate::audit::{Outcome, Verdict};
use crate::engine::Effect;

/// `--output` of `mutate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MutateOutput {
    /// Multi-document YAML.
    Yaml,
    /// JSON: the object itself when there is one, else a `v1 List` of them.
    Json,
}

/// Arguments of `portcullis mutate`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("input").required(true).multiple(true).args(["paths", "filename"])
))]
pub struct MutateArgs {
    /// Manifests and policies.
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = MutateOutput::Yaml)]
    pub output: MutateOutput,
    /// Print only what changes: a unified diff (of the YAML) per changed object.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,
}

/// Runs `portcullis mutate`: exit 0 normally; 1 when an object would be denied (it is still
/// printed, mutated) or a document is unreadable (reported on stderr, the rest printed); 2 on
/// usage errors or unloadable policies.
pub fn run(args: MutateArgs) -> anyhow::Result<ExitCode> {
    let Some(policies) = args.manifests.load_policies() else {
        return Ok(ExitCode::from(2));
    };
    let outcomes = args.manifests.judge(&policies);
    let mut failed = false;
    let mut admitted: Vec<(String, Value, Value)> = Vec::new(); // (header, before, after)
    for outcome in &outcomes {
        match outcome {
            Outcome::Error(e) => {
                failed = true;
                eprintln!("error: unreadable document {e}");
            }
            Outcome::Judged(j) => {
                let header = format!("{} ({})", j.title(), j.location);
                if j.verdict == Verdict::Deny {
                    failed = true;
                    let n = j
                        .decision
                        .violations()
                        .filter(|f| f.effect == Effect::Deny)
                        .count();
                    eprintln!(
                        "error: {header} would be denied: {n} violation{} (`portcullis audit` lists them)",
                        if n == 1 { "" } else { "s" }
                    );
                }
                match j.admitted() {
                    Ok(after) => admitted.push((header, j.object.clone(), after)),
                    Err(e) => {
                        failed = true;
                        eprintln!("error: {header}: the patch does not apply: {e}");
                    }
                }
            }
        }
    }
    let text = if args.diff {
        diff_text(&admitted, args.manifests.style())?
    } else {
        match args.output {
            MutateOutput::Yaml => yaml_text(&admitted)?,
            MutateOutput::Json => json_text(admitted.into_iter().map(|(_, _, a)| a).collect())?,
        }
    };
    write_stdout(&text)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn to_yaml(v: &Value) -> anyhow::Result<String> {
    serde_yaml_ng::to_string(v).context("serializing YAML")
}

fn yaml_text(objects: &[(String, Value, Value)]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, (_, _, after)) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(after)?);
    }
    Ok(out)
}

fn json_text(mut objects: Vec<Value>) -> anyhow::Result<String> {
    let value = if objects.len() == 1 {
        objects.remove(0)
    } else {
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects})
    };
    let mut s = serde_json::to_string_pretty(&value).context("serializing JSON")?;
    s.push('\n');
    Ok(s)
}

/// One unified diff per changed object; nothing for unchanged ones (a count goes to stderr).
fn diff_text(objects: &[(String, Value, Value)], style: Style) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut changed = 0;
    for (header, before, after) in objects {
        if before == after {
            continue;
        }
        changed += 1;
        let (old, new) = (to_yaml(before)?, to_yaml(after)?);
        let diff = similar::TextDiff::from_lines(&old, &new);
        let unified = diff
            .unified_diff()
            .context_radius(3)
            .header(header, &format!("{header} as admitted"))
            .to_string();
        for line in unified.lines() {
            let painted = if line.starts_with("+++") || line.starts_with("---") {
                style.bold(line)
            } else if line.starts_with('+') {
                style.green(line)
            } else if line.starts_with('-') {
                style.red(line)
            } else if line.starts_with("@@") {
                style.cyan(line)
            } else {
                line.to_owned()
            };
            let _ = writeln!(out, "{painted}");
        }
    }
    eprintln!(
        "{changed} of {} object{} would change",
        objects.len(),
        if objects.len() == 1 { "" } else { "s" }
    );
    Ok(out)
}
