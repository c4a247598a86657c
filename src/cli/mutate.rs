//! `portcullis mutate`: print manifests as they would be admitted (the engine's JSON Patch
//! applied), as YAML, JSON, or a unified diff per changed object.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use std::io::Write as _;

use super::audit::{ManifestArgs, Stdout};
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
/// usage errors or unloadable policies. Objects are printed as they are read and judged.
pub fn run(args: MutateArgs) -> anyhow::Result<ExitCode> {
    let Some(policies) = args.manifests.load_policies() else {
        return Ok(ExitCode::from(2));
    };
    let style = args.manifests.style();
    let output = if args.diff {
        Output::Diff(style)
    } else {
        match args.output {
            MutateOutput::Yaml => Output::Yaml,
            MutateOutput::Json => Output::Json,
        }
    };
    let mut out = Stdout::new();
    let mut printer = Printer::default();
    let mut failed = None;
    let judged = args.manifests.judge_streaming(
        &policies,
        &|outcome| render(output, &outcome),
        &mut |piece| {
            if failed.is_none()
                && let Err(e) = printer.print(output, piece, &mut out)
            {
                failed = Some(e);
            }
        },
    );
    if let Err(e) = judged {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    printer.finish(output, &mut out)?;
    Ok(if printer.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `mutate` prints.
#[derive(Debug, Clone, Copy)]
enum Output {
    Yaml,
    Json,
    Diff(Style),
}

/// One outcome, rendered on a worker thread: what goes to stderr, and the object's text.
#[derive(Debug, Default)]
struct Piece {
    /// Problems to report (stderr), each making the run fail.
    errors: Vec<String>,
    /// YAML: the admitted object; JSON: it, pretty; diff: the diff, if anything changes.
    text: Option<String>,
    /// Whether there is an object (admitted, its patch applied).
    object: bool,
}

fn render(output: Output, outcome: &Outcome) -> Piece {
    let mut piece = Piece::default();
    let j = match outcome {
        Outcome::Error(e) => {
            piece.errors.push(format!("unreadable document {e}"));
            return piece;
        }
        Outcome::Judged(j) => j,
    };
    let header = format!("{} ({})", j.title(), j.location);
    if j.verdict == Verdict::Deny {
        let n = j
            .decision
            .violations()
            .filter(|f| f.effect == Effect::Deny)
            .count();
        piece.errors.push(format!(
            "{header} would be denied: {n} violation{} (`portcullis audit` lists them)",
            if n == 1 { "" } else { "s" }
        ));
    }
    let after = match j.admitted() {
        Ok(after) => after,
        Err(e) => {
            piece
                .errors
                .push(format!("{header}: the patch does not apply: {e}"));
            return piece;
        }
    };
    piece.object = true;
    let text = match output {
        Output::Yaml => to_yaml(&after),
        Output::Json => serde_json::to_string_pretty(&after).context("serializing JSON"),
        Output::Diff(style) => diff_text(&header, &j.object, &after, style),
    };
    match text {
        Ok(t) if t.is_empty() && matches!(output, Output::Diff(_)) => {}
        Ok(t) => piece.text = Some(t),
        Err(e) => piece.errors.push(format!("{header}: {e:#}")),
    }
    piece
}

/// Prints pieces in input order; keeps what the end of the output needs.
#[derive(Debug, Default)]
struct Printer {
    failed: bool,
    /// Objects printed (or, for JSON, held or printed).
    objects: usize,
    /// Objects that change (diff).
    changed: usize,
    /// JSON: the first object, held until a second one makes the output a `List`.
    first_json: Option<String>,
}

impl Printer {
    fn print(&mut self, output: Output, piece: Piece, out: &mut Stdout) -> anyhow::Result<()> {
        for e in &piece.errors {
            eprintln!("error: {e}");
        }
        self.failed |= !piece.errors.is_empty();
        if !piece.object {
            return Ok(());
        }
        self.objects += 1;
        let Some(text) = piece.text else {
            return Ok(());
        };
        let write = |out: &mut Stdout, s: &str| {
            out.write_all(s.as_bytes())
                .context("writing to standard output")
        };
        match output {
            Output::Yaml => {
                if self.objects > 1 {
                    write(out, "---\n")?;
                }
                write(out, &text)?;
            }
            Output::Json => match self.objects {
                1 => self.first_json = Some(text),
                n => {
                    if n == 2 {
                        let first = self.first_json.take().unwrap_or_default();
                        write(out, LIST_HEAD)?;
                        write(out, &indented(&first))?;
                    }
                    write(out, ",\n")?;
                    write(out, &indented(&text))?;
                }
            },
            Output::Diff(_) => {
                self.changed += 1;
                write(out, &text)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, output: Output, out: &mut Stdout) -> anyhow::Result<()> {
        let tail = match output {
            Output::Json => match (self.objects, self.first_json.take()) {
                (1, Some(only)) => format!("{only}\n"),
                (0, _) => {
                    "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": []\n}\n"
                        .to_owned()
                }
                _ => "\n  ]\n}\n".to_owned(),
            },
            Output::Diff(_) => {
                // The diffs first, then the count: stdout is buffered, stderr is not.
                out.flush().context("writing to standard output")?;
                eprintln!(
                    "{} of {} object{} would change",
                    self.changed,
                    self.objects,
                    if self.objects == 1 { "" } else { "s" }
                );
                String::new()
            }
            Output::Yaml => String::new(),
        };
        out.write_all(tail.as_bytes())
            .and_then(|()| out.flush())
            .context("writing to standard output")
    }
}

/// The start of a `v1 List` as `serde_json::to_string_pretty` writes it, to its first item.
const LIST_HEAD: &str = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n";

/// A pretty JSON object indented as an item of [`LIST_HEAD`]'s `items`.
fn indented(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn to_yaml(v: &Value) -> anyhow::Result<String> {
    serde_yaml_ng::to_string(v).context("serializing YAML")
}

/// The unified diff of an object's YAML before and after admission; empty when it does not
/// change.
fn diff_text(header: &str, before: &Value, after: &Value, style: Style) -> anyhow::Result<String> {
    let mut out = String::new();
    if before == after {
        return Ok(out);
    }
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
    Ok(out)
}
