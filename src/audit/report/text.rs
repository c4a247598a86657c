//! The text report: a block per object, coloured on a terminal.

use std::fmt::Write as _;

use super::{plural, skip_reason};
use crate::audit::read::ReadError;
use crate::audit::{Judged, Verdict};
use crate::engine::{Effect, Finding, FindingKind};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Whether to emit ANSI colour codes.
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    /// Red bold.
    pub fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    /// Yellow bold.
    pub fn yellow(self, t: &str) -> String {
        self.paint("1;33", t)
    }
    /// Green bold.
    pub fn green(self, t: &str) -> String {
        self.paint("1;32", t)
    }
    /// Cyan.
    pub fn cyan(self, t: &str) -> String {
        self.paint("36", t)
    }
    /// Dim.
    pub fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    /// Bold.
    pub fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
}

pub(super) fn write_error(out: &mut String, e: &ReadError, style: Style) {
    let mut loc = e.location.to_string();
    if let Some(line) = e.location.line {
        let _ = write!(loc, ", line {line}");
    }
    let _ = writeln!(
        out,
        "{} {} ({loc})\n  {}\n",
        style.red("ERROR"),
        style.bold("unreadable document"),
        e.message
    );
}

pub(super) fn write_judged(out: &mut String, j: &Judged, style: Style) {
    let badge = match j.verdict {
        Verdict::Deny => style.red("DENY"),
        Verdict::Warn => style.yellow("WARN"),
        Verdict::Pass => style.green("PASS"),
        Verdict::Skipped => style.cyan("SKIPPED"),
        Verdict::NotAWorkload => style.dim("OTHER"),
        Verdict::Error => style.red("ERROR"),
    };
    let _ = writeln!(
        out,
        "{badge} {} {}",
        style.bold(&j.title()),
        style.dim(&format!("({})", j.location))
    );
    if let Some(reason) = skip_reason(j) {
        let _ = writeln!(out, "  {}", style.dim(&reason));
    }
    let violations: Vec<&Finding> = j.decision.violations().collect();
    let mutations: Vec<&Finding> = j.decision.mutations().collect();
    for f in &violations {
        let label = match f.effect {
            Effect::Deny | Effect::Apply => style.red("deny "),
            Effect::Warn => style.yellow("warn "),
            Effect::Audit => style.dim("audit"),
            Effect::Excepted => style.cyan("excepted"),
        };
        write_finding(out, &label, f, style);
    }
    for f in &mutations {
        let label = match f.effect {
            Effect::Apply | Effect::Deny => style.cyan("apply"),
            Effect::Warn => style.yellow("warn "),
            Effect::Audit => style.dim("audit"),
            Effect::Excepted => style.cyan("excepted"),
        };
        let mut line = format!("  {label} {}", style.bold(&f.policy));
        if let Some(c) = &f.container {
            let _ = write!(line, " container \"{c}\"");
        }
        let _ = writeln!(
            out,
            "{line}: {} {}",
            f.message,
            style.dim(&format!("({})", f.field))
        );
        write_finding_notes(out, f, style);
    }
    for f in j.decision.notices() {
        let label = match f.effect {
            Effect::Audit => style.dim("note "),
            _ => style.yellow("note "),
        };
        write_finding(out, &label, f, style);
    }
    let ops = j.decision.patch.0.len();
    if ops > 0 {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "patch: {ops} JSON Patch operation{} (`portcullis mutate --diff` shows them)",
                plural(ops)
            ))
        );
    }
    out.push('\n');
}

fn write_finding(out: &mut String, label: &str, f: &Finding, style: Style) {
    let mut head = format!("  {label} {}", style.bold(&f.policy));
    let _ = write!(head, " {}", style.dim(&format!("({})", f.rule)));
    if let Some(c) = &f.container {
        let _ = write!(head, " container \"{c}\"");
    }
    let _ = writeln!(out, "{head}: {}", f.message);
    if !f.field.is_empty() {
        let _ = writeln!(out, "        {} {}", style.dim("field:"), f.field);
    }
    if !f.hint.is_empty() {
        let _ = writeln!(out, "        {} {}", style.dim("fix:  "), f.hint);
    }
    write_finding_notes(out, f, style);
}

/// The exception that excepts a finding, and when a schedule starts enforcing it.
fn write_finding_notes(out: &mut String, f: &Finding, style: Style) {
    if let Some(e) = &f.exception {
        let ticket = e
            .ticket
            .as_deref()
            .map(|t| format!(", ticket {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "        {} {} (owner {}, expires {}{ticket}): {}",
            style.dim("exception:"),
            e.name,
            e.owner,
            e.expires,
            e.reason
        );
    }
    if let Some(from) = f.enforced_from
        && f.effect != Effect::Excepted
    {
        let what = match f.kind {
            FindingKind::Violation => "denied",
            FindingKind::Mutation | FindingKind::Notice => "applied",
        };
        let _ = writeln!(
            out,
            "        {} {what} from {from} (the policy's schedule enforces it then)",
            style.dim("note: ")
        );
    }
}
