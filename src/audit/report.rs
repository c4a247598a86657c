//! Audit reports: the stable JSON schema (`schemaVersion: 1`) and the human-readable text
//! report, grouped by object, coloured on a terminal.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::{Judged, Outcome, Verdict};
use crate::engine::{Effect, Finding, FindingKind};
use crate::policy::load::Diagnostic;
use crate::policy::{CompiledException, exceptions};

/// The version of the JSON report schema. Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON report of `portcullis audit --output json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonReport {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// One entry per object or unreadable document, in input order.
    pub objects: Vec<JsonObject>,
    /// Counts.
    pub summary: Summary,
    /// Every unreadable input (also listed in `objects` with verdict `error`).
    pub errors: Vec<JsonError>,
    /// Every exception in force that excepted no finding of the objects audited (empty when no
    /// object was read).
    pub unused_exceptions: Vec<JsonUnusedException>,
}

/// One object (or unreadable document) of the JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonObject {
    /// The file (`<stdin>` for standard input).
    pub file: String,
    /// 1-based document index in the file (documents with content only); null when the
    /// whole file was unreadable.
    pub document_index: Option<usize>,
    /// 0-based index in a `List`'s `items`; null when not from a List.
    pub item_index: Option<usize>,
    /// 1-based line where the document starts (or the error is), when known.
    pub line: Option<usize>,
    /// `apiVersion`; null for unreadable documents.
    pub api_version: Option<String>,
    /// `kind`; null for unreadable documents.
    pub kind: Option<String>,
    /// `metadata.namespace`, if set (the `--namespace` default is not written back).
    pub namespace: Option<String>,
    /// `metadata.name` (`generateName*` when only that is set), if any.
    pub name: Option<String>,
    /// `deny`, `warn`, `pass`, `skipped`, `not-a-workload` or `error`.
    pub verdict: &'static str,
    /// Why the object was not judged (verdicts `skipped` and `not-a-workload`).
    pub skip_reason: Option<String>,
    /// What is wrong with an unreadable document (verdict `error`).
    pub error: Option<String>,
    /// Names of the policies that selected the object.
    pub policies: Vec<String>,
    /// Every finding, violations and mutations, in policy order.
    pub findings: Vec<JsonFinding>,
    /// The RFC 6902 JSON Patch the webhook would return (empty: no change).
    pub patch: Value,
}

/// One finding of the JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonFinding {
    /// The policy's name.
    pub policy: String,
    /// The rule type (`requireProbes`).
    pub rule: &'static str,
    /// `violation`, `mutation` or `notice` (a change not made, and why).
    pub kind: &'static str,
    /// The policy's mode: `enforce`, `warn`, `audit`.
    pub mode: &'static str,
    /// `deny` (a violation that rejects), `apply` (a mutation in the patch), `warn` or `audit`.
    pub effect: &'static str,
    /// The container concerned, if any.
    pub container: Option<String>,
    /// Dotted path of the field concerned.
    pub field: String,
    /// What is wrong or what changes.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// On UPDATE: the violation was already there before (it warns instead of denying).
    pub pre_existing: bool,
    /// The exception that excepts the finding (effect `excepted`), or null.
    pub exception: Option<JsonException>,
    /// When the policy's schedule starts enforcing it in this namespace (a date, or an RFC 3339
    /// time), or null.
    pub enforced_from: Option<String>,
}

/// The exception of an excepted finding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonException {
    /// The exception's name.
    pub name: String,
    /// Who owns it.
    pub owner: String,
    /// Why it exists.
    pub reason: String,
    /// When it ends (a date means 00:00 UTC of that day).
    pub expires: String,
    /// Its ticket, or null.
    pub ticket: Option<String>,
}

/// An exception in force that excepted no finding of the objects audited.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonUnusedException {
    /// The exception's name.
    pub name: String,
    /// Who owns it.
    pub owner: String,
    /// Why it exists.
    pub reason: String,
    /// When it ends (a date means 00:00 UTC of that day).
    pub expires: String,
    /// Its ticket, or null.
    pub ticket: Option<String>,
    /// The policy file it is in.
    pub file: String,
    /// 1-based line where its document starts.
    pub line: usize,
    /// The warning, as the text report prints it (without the hint).
    pub message: String,
}

/// One unreadable input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonError {
    /// The file.
    pub file: String,
    /// 1-based document index, null for a whole file.
    pub document_index: Option<usize>,
    /// 0-based List item index, if any.
    pub item_index: Option<usize>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Counts over an audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects read (everything but unreadable documents).
    pub objects: usize,
    /// Workloads judged (`denied + warned + passed`).
    pub judged: usize,
    /// Verdict `deny`.
    pub denied: usize,
    /// Verdict `warn`.
    pub warned: usize,
    /// Verdict `pass`.
    pub passed: usize,
    /// Verdict `skipped`.
    pub skipped: usize,
    /// Verdict `not-a-workload`.
    pub other: usize,
    /// Unreadable documents and files (verdict `error`).
    pub errors: usize,
    /// Objects whose patch is not empty.
    pub mutated: usize,
}

impl Summary {
    /// Counts the outcomes.
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut s = Summary::default();
        for o in outcomes {
            match o {
                Outcome::Error(_) => s.count(Verdict::Error, false),
                Outcome::Judged(j) => s.count(j.verdict, j.decision.is_patched()),
            }
        }
        s.finished()
    }

    /// Counts one outcome (an unreadable input has the verdict `Error`).
    fn count(&mut self, verdict: Verdict, mutated: bool) {
        if verdict != Verdict::Error {
            self.objects += 1;
        }
        if mutated {
            self.mutated += 1;
        }
        match verdict {
            Verdict::Deny => self.denied += 1,
            Verdict::Warn => self.warned += 1,
            Verdict::Pass => self.passed += 1,
            Verdict::Skipped => self.skipped += 1,
            Verdict::NotAWorkload => self.other += 1,
            Verdict::Error => self.errors += 1,
        }
    }

    /// The counts with `judged` filled in.
    fn finished(mut self) -> Summary {
        self.judged = self.denied + self.warned + self.passed;
        self
    }

    /// Whether the run fails (exit code 1): an `enforce` violation or an unreadable input.
    pub fn fails(&self) -> bool {
        self.denied > 0 || self.errors > 0
    }

    /// `12 objects: 5 workloads judged (2 denied, 1 warned, 2 passed), 1 skipped, 6 other, 1 unreadable document`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} object{}: {} workload{} judged ({} denied, {} warned, {} passed), {} skipped, {} other",
            self.objects,
            plural(self.objects),
            self.judged,
            plural(self.judged),
            self.denied,
            self.warned,
            self.passed,
            self.skipped,
            self.other,
        );
        if self.errors > 0 {
            let _ = write!(
                s,
                ", {} unreadable document{}",
                self.errors,
                plural(self.errors)
            );
        }
        s
    }

    /// `result: FAIL (2 denied, 1 unreadable document)` or `result: PASS`.
    pub fn result_line(&self) -> String {
        if !self.fails() {
            return "result: PASS".to_owned();
        }
        let mut why = Vec::new();
        if self.denied > 0 {
            why.push(format!("{} denied", self.denied));
        }
        if self.errors > 0 {
            why.push(format!(
                "{} unreadable document{}",
                self.errors,
                plural(self.errors)
            ));
        }
        format!("result: FAIL ({})", why.join(", "))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The report formats of `portcullis audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The text report, styled.
    Text(Style),
    /// The JSON report.
    Json,
}

/// One outcome made ready for a report: what the summary counts, and the report's text for
/// it. Built where the outcome is judged (a worker thread), so the writer only copies text.
#[derive(Debug)]
pub struct Piece {
    verdict: Verdict,
    mutated: bool,
    /// The exceptions that excepted a finding of the outcome.
    exceptions: Vec<String>,
    body: PieceBody,
}

#[derive(Debug)]
enum PieceBody {
    /// Text: a block, written where the outcome occurs.
    Block(String),
    /// Text: a non-workload, named in the closing line.
    Other(String),
    /// JSON: the object, pretty-printed at its depth in the report, and its error entry.
    Json(String, Option<JsonError>),
}

/// Renders one outcome for a report in `format`.
pub fn piece(format: Format, outcome: &Outcome) -> Piece {
    let (verdict, mutated) = match outcome {
        Outcome::Error(_) => (Verdict::Error, false),
        Outcome::Judged(j) => (j.verdict, j.decision.is_patched()),
    };
    let mut exceptions: Vec<String> = Vec::new();
    if let Outcome::Judged(j) = outcome {
        for e in j
            .decision
            .findings
            .iter()
            .filter_map(|f| f.exception.as_ref())
        {
            if !exceptions.contains(&e.name) {
                exceptions.push(e.name.clone());
            }
        }
    }
    let body = match format {
        Format::Text(style) => match outcome {
            Outcome::Error(e) => {
                let mut out = String::new();
                write_error(&mut out, e, style);
                PieceBody::Block(out)
            }
            Outcome::Judged(j) if j.verdict == Verdict::NotAWorkload => PieceBody::Other(j.title()),
            Outcome::Judged(j) => {
                let mut out = String::new();
                write_judged(&mut out, j, style);
                PieceBody::Block(out)
            }
        },
        Format::Json => {
            let (object, error) = match outcome {
                Outcome::Judged(j) => (json_object(j), None),
                Outcome::Error(e) => json_error(e),
            };
            PieceBody::Json(indented(&pretty(&object), "    ", true), error)
        }
    };
    Piece {
        verdict,
        mutated,
        exceptions,
        body,
    }
}

/// `text` with `prefix` before each line (the first one too when `first`).
fn indented(text: &str, prefix: &str, first: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i > 0 || first {
            out.push_str(prefix);
        }
        out.push_str(line);
    }
    out
}

/// Writes a report as outcomes come, in input order ([`piece`]s): the text report's blocks
/// and the JSON report's objects go out at once, so memory holds the counts, the first few
/// non-workload names (text) and the unreadable inputs (JSON), never the outcomes. The
/// output is byte for byte [`text_report`] and the JSON of [`json_report`].
#[derive(Debug)]
pub struct ReportWriter<W: std::io::Write> {
    format: Format,
    out: W,
    summary: Summary,
    /// Text: the first [`OTHER_LISTED`] non-workload titles, and how many there were.
    others: Vec<String>,
    others_count: usize,
    /// JSON: the unreadable inputs, and how many objects were written.
    errors: Vec<JsonError>,
    written: usize,
    /// The exceptions checked for use ([`ReportWriter::check_exceptions`]), and the names of
    /// those that excepted a finding so far.
    checked: Vec<Arc<CompiledException>>,
    used: HashSet<String>,
}

impl<W: std::io::Write> ReportWriter<W> {
    /// A writer of a report in `format` to `out`.
    pub fn new(format: Format, mut out: W) -> std::io::Result<ReportWriter<W>> {
        if format == Format::Json {
            write!(
                out,
                "{{\n  \"schemaVersion\": {SCHEMA_VERSION},\n  \"objects\": "
            )?;
        }
        Ok(ReportWriter {
            format,
            out,
            summary: Summary::default(),
            others: Vec::new(),
            others_count: 0,
            errors: Vec::new(),
            written: 0,
            checked: Vec::new(),
            used: HashSet::new(),
        })
    }

    /// Reports, at the end, each of `exceptions` (those in force: see
    /// [`exceptions::unused`]) that excepted no finding of the objects pushed.
    pub fn check_exceptions(&mut self, exceptions: Vec<Arc<CompiledException>>) {
        self.checked = exceptions;
    }

    /// The exceptions checked that excepted no finding of the objects pushed so far, as
    /// warnings (none when no object was read: nothing was audited).
    pub fn unused_exceptions(&self) -> Vec<(Arc<CompiledException>, Diagnostic)> {
        if self.summary.objects == 0 {
            return Vec::new();
        }
        let what = if self.summary.objects == 1 {
            "object audited"
        } else {
            "objects audited"
        };
        self.checked
            .iter()
            .filter(|e| !self.used.contains(&e.info.name))
            .map(|e| {
                let warning = exceptions::unused_warning(e, self.summary.objects, what);
                (Arc::clone(e), warning)
            })
            .collect()
    }

    /// Counts the next outcome and writes its part of the report.
    pub fn push(&mut self, piece: Piece) -> std::io::Result<()> {
        self.summary.count(piece.verdict, piece.mutated);
        if !self.checked.is_empty() {
            self.used.extend(piece.exceptions);
        }
        match piece.body {
            PieceBody::Block(text) => self.out.write_all(text.as_bytes())?,
            PieceBody::Other(title) => {
                if self.others.len() < OTHER_LISTED {
                    self.others.push(title);
                }
                self.others_count += 1;
            }
            PieceBody::Json(text, error) => {
                self.out
                    .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
                self.out.write_all(text.as_bytes())?;
                self.written += 1;
                self.errors.extend(error);
            }
        }
        Ok(())
    }

    /// Writes the end of the report (summary, result; the JSON's summary and errors) and
    /// returns the counts and the output.
    pub fn finish(mut self) -> std::io::Result<(Summary, W)> {
        let summary = self.summary.finished();
        let unused = self.unused_exceptions();
        match self.format {
            Format::Text(style) => {
                for (_, warning) in &unused {
                    writeln!(self.out, "{} {warning}\n", style.yellow("warning:"))?;
                }
                if self.others_count > 0 {
                    let mut listed = self.others.join(", ");
                    if self.others_count > OTHER_LISTED {
                        let _ = write!(listed, " and {} more", self.others_count - OTHER_LISTED);
                    }
                    writeln!(
                        self.out,
                        "{} {}\n",
                        style.dim(&format!(
                            "not workloads, not judged ({}):",
                            self.others_count
                        )),
                        style.dim(&listed)
                    )?;
                }
                writeln!(self.out, "{}", summary.line())?;
                let result = summary.result_line();
                let result = if summary.fails() {
                    style.red(&result)
                } else {
                    style.green(&result)
                };
                writeln!(self.out, "{result}")?;
            }
            Format::Json => {
                let objects_end: &[u8] = if self.written == 0 { b"[]" } else { b"\n  ]" };
                self.out.write_all(objects_end)?;
                let unused: Vec<JsonUnusedException> = unused
                    .iter()
                    .map(|(e, warning)| json_unused_exception(e, warning))
                    .collect();
                write!(
                    self.out,
                    ",\n  \"summary\": {},\n  \"errors\": {},\n  \"unusedExceptions\": {}\n}}\n",
                    indented(&pretty(&summary), "  ", false),
                    indented(&pretty(&self.errors), "  ", false),
                    indented(&pretty(&unused), "  ", false)
                )?;
            }
        }
        self.out.flush()?;
        Ok((summary, self.out))
    }
}

/// Pretty JSON of plain data (serializing it cannot fail).
fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Builds the JSON report.
pub fn json_report(outcomes: &[Outcome]) -> JsonReport {
    let mut objects = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Judged(j) => objects.push(json_object(j)),
            Outcome::Error(e) => {
                let (object, error) = json_error(e);
                objects.push(object);
                errors.extend(error);
            }
        }
    }
    JsonReport {
        schema_version: SCHEMA_VERSION,
        objects,
        summary: Summary::of(outcomes),
        errors,
        unused_exceptions: Vec::new(),
    }
}

fn json_unused_exception(e: &CompiledException, warning: &Diagnostic) -> JsonUnusedException {
    JsonUnusedException {
        name: e.info.name.clone(),
        owner: e.info.owner.clone(),
        reason: e.info.reason.clone(),
        expires: e.info.expires.to_string(),
        ticket: e.info.ticket.clone(),
        file: e.source.file.display().to_string(),
        line: e.source.line,
        message: warning.message.clone(),
    }
}

/// An unreadable input: its entry in `objects` and in `errors`.
fn json_error(e: &super::read::ReadError) -> (JsonObject, Option<JsonError>) {
    let l = &e.location;
    let error = JsonError {
        file: l.file.clone(),
        document_index: l.document_index,
        item_index: l.item_index,
        line: l.line,
        message: e.message.clone(),
    };
    let object = JsonObject {
        file: l.file.clone(),
        document_index: l.document_index,
        item_index: l.item_index,
        line: l.line,
        api_version: None,
        kind: None,
        namespace: None,
        name: None,
        verdict: Verdict::Error.as_str(),
        skip_reason: None,
        error: Some(e.message.clone()),
        policies: Vec::new(),
        findings: Vec::new(),
        patch: Value::Array(Vec::new()),
    };
    (object, Some(error))
}

fn json_object(j: &Judged) -> JsonObject {
    let l = &j.location;
    JsonObject {
        file: l.file.clone(),
        document_index: l.document_index,
        item_index: l.item_index,
        line: l.line,
        api_version: Some(j.api_version().to_owned()),
        kind: Some(j.kind().to_owned()),
        namespace: j.namespace().map(str::to_owned),
        name: j.name(),
        verdict: j.verdict.as_str(),
        skip_reason: skip_reason(j),
        error: None,
        policies: j.decision.policies.clone(),
        findings: j.decision.findings.iter().map(json_finding).collect(),
        patch: serde_json::to_value(&j.decision.patch).unwrap_or(Value::Null),
    }
}

fn skip_reason(j: &Judged) -> Option<String> {
    match (j.verdict, &j.decision.skipped) {
        (_, Some(skip)) => Some(skip.to_string()),
        (Verdict::NotAWorkload, None) => Some("not a workload".to_owned()),
        _ => None,
    }
}

/// A finding as the JSON report writes it (also used by `portcullis test -o json`).
pub fn json_finding(f: &Finding) -> JsonFinding {
    JsonFinding {
        policy: f.policy.clone(),
        rule: f.rule,
        kind: finding_kind(f),
        mode: f.mode.as_str(),
        effect: f.effect.as_str(),
        container: f.container.clone(),
        field: f.field.clone(),
        message: f.message.clone(),
        hint: f.hint.clone(),
        pre_existing: f.pre_existing,
        exception: f.exception.as_deref().map(|e| JsonException {
            name: e.name.clone(),
            owner: e.owner.clone(),
            reason: e.reason.clone(),
            expires: e.expires.to_string(),
            ticket: e.ticket.clone(),
        }),
        enforced_from: f.enforced_from.map(|t| t.to_string()),
    }
}

fn finding_kind(f: &Finding) -> &'static str {
    match f.kind {
        FindingKind::Violation => "violation",
        FindingKind::Mutation => "mutation",
        FindingKind::Notice => "notice",
    }
}

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

/// How many non-workload objects the text report names before just counting.
const OTHER_LISTED: usize = 10;

/// The text report: one block per workload, unreadable documents where they occur, the
/// non-workload objects briefly, then the summary and result lines.
pub fn text_report(outcomes: &[Outcome], style: Style) -> String {
    render(Format::Text(style), outcomes)
}

/// The JSON report as `portcullis audit --output json` prints it (pretty, with a final newline).
pub fn json_report_text(outcomes: &[Outcome]) -> String {
    render(Format::Json, outcomes)
}

fn render(format: Format, outcomes: &[Outcome]) -> String {
    let write = || -> std::io::Result<Vec<u8>> {
        let mut writer = ReportWriter::new(format, Vec::new())?;
        for o in outcomes {
            writer.push(piece(format, o))?;
        }
        Ok(writer.finish()?.1)
    };
    // Writing to memory cannot fail; the pieces are UTF-8.
    String::from_utf8(write().unwrap_or_default()).unwrap_or_default()
}

fn write_error(out: &mut String, e: &super::read::ReadError, style: Style) {
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

fn write_judged(out: &mut String, j: &Judged, style: Style) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::read::{Location, ReadError};
    use crate::engine::Decision;
    use crate::policy::model::Mode;

    fn judged(kind: &str, verdict: Verdict, findings: Vec<Finding>) -> Outcome {
        Outcome::Judged(Box::new(Judged {
            location: Location {
                file: "a.yaml".into(),
                document_index: Some(1),
                item_index: None,
                line: Some(1),
            },
            object: serde_json::json!({"apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": "web", "namespace": "demo"}}),
            decision: Decision {
                allowed: verdict != Verdict::Deny,
                findings,
                ..Decision::default()
            },
            verdict,
        }))
    }

    fn finding(effect: Effect) -> Finding {
        Finding {
            policy: "require-probes".into(),
            rule: "requireProbes",
            kind: FindingKind::Violation,
            mode: Mode::Enforce,
            effect,
            container: Some("web".into()),
            field: "spec.template.spec.containers[0].livenessProbe".into(),
            message: "no livenessProbe".into(),
            hint: "add a livenessProbe".into(),
            pre_existing: false,
            exception: None,
            enforced_from: None,
        }
    }

    fn outcomes() -> Vec<Outcome> {
        vec![
            judged("Deployment", Verdict::Deny, vec![finding(Effect::Deny)]),
            judged("Deployment", Verdict::Warn, vec![finding(Effect::Warn)]),
            judged("Deployment", Verdict::Pass, vec![]),
            judged("Service", Verdict::NotAWorkload, vec![]),
            Outcome::Error(ReadError {
                location: Location {
                    file: "b.yaml".into(),
                    document_index: Some(3),
                    item_index: None,
                    line: Some(7),
                },
                message: "invalid YAML".into(),
            }),
        ]
    }

    #[test]
    fn summary_counts_and_lines() {
        let s = Summary::of(&outcomes());
        assert_eq!(
            (s.objects, s.judged, s.denied, s.warned, s.passed),
            (4, 3, 1, 1, 1)
        );
        assert_eq!((s.other, s.errors, s.skipped), (1, 1, 0));
        assert_eq!(
            s.line(),
            "4 objects: 3 workloads judged (1 denied, 1 warned, 1 passed), 0 skipped, 1 other, 1 unreadable document"
        );
        assert_eq!(
            s.result_line(),
            "result: FAIL (1 denied, 1 unreadable document)"
        );
        assert_eq!(Summary::default().result_line(), "result: PASS");
    }

    #[test]
    fn text_report_without_colour_is_plain() {
        let text = text_report(&outcomes(), Style { color: false });
        assert!(!text.contains('\x1b'));
        assert!(
            text.contains("DENY Deployment demo/web (a.yaml#1)"),
            "{text}"
        );
        assert!(
            text.contains(
                "  deny  require-probes (requireProbes) container \"web\": no livenessProbe"
            ),
            "{text}"
        );
        assert!(text.contains("fix:   add a livenessProbe"), "{text}");
        assert!(
            text.contains("ERROR unreadable document (b.yaml#3, line 7)"),
            "{text}"
        );
        assert!(
            text.contains("not workloads, not judged (1): Service demo/web"),
            "{text}"
        );
        let coloured = text_report(&outcomes(), Style { color: true });
        assert!(coloured.contains("\x1b[1;31mDENY\x1b[0m"));
    }

    #[test]
    fn notices_are_reported_as_notes() {
        let notice = Finding {
            policy: "inject-logging-sidecar".into(),
            rule: "injectSidecar",
            kind: FindingKind::Notice,
            effect: Effect::Warn,
            container: Some("log-shipper".into()),
            field: "spec.template.spec.hostNetwork".into(),
            message: "not injected: the Pod uses the host network".into(),
            hint: String::new(),
            ..finding(Effect::Warn)
        };
        let outcomes = vec![judged("DaemonSet", Verdict::Warn, vec![notice])];
        let text = text_report(&outcomes, Style { color: false });
        assert!(
            text.contains(
                "  note  inject-logging-sidecar (injectSidecar) container \"log-shipper\": not injected: the Pod uses the host network\n        field: spec.template.spec.hostNetwork\n"
            ),
            "{text}"
        );
        let r = serde_json::to_value(json_report(&outcomes)).expect("json");
        assert_eq!(r["objects"][0]["findings"][0]["kind"], "notice");
        assert_eq!(r["objects"][0]["findings"][0]["effect"], "warn");
    }

    #[test]
    fn the_streamed_json_is_the_json_report_byte_for_byte() {
        let mut all = outcomes();
        all.extend(outcomes());
        for set in [Vec::new(), all.split_off(3), all] {
            let mut expected =
                serde_json::to_string_pretty(&json_report(&set)).expect("serializes");
            expected.push('\n');
            assert_eq!(json_report_text(&set), expected);
        }
    }

    #[test]
    fn json_report_fields() {
        let r = serde_json::to_value(json_report(&outcomes())).expect("test setup");
        assert_eq!(r["schemaVersion"], 1);
        let o = &r["objects"][0];
        assert_eq!(o["verdict"], "deny");
        assert_eq!(o["documentIndex"], 1);
        assert_eq!(o["findings"][0]["effect"], "deny");
        assert_eq!(o["findings"][0]["kind"], "violation");
        assert_eq!(o["findings"][0]["mode"], "enforce");
        assert_eq!(o["patch"], serde_json::json!([]));
        assert_eq!(r["objects"][3]["verdict"], "not-a-workload");
        assert_eq!(r["objects"][3]["skipReason"], "not a workload");
        assert_eq!(r["objects"][4]["verdict"], "error");
        assert_eq!(r["errors"][0]["line"], 7);
        assert_eq!(r["summary"]["denied"], 1);
    }
}
