//! Audit reports, one module per format: the human-readable text report ([`text`]), the stable
//! JSON report (`schemaVersion: 1`, [`json`]), the HTML report a platform team opens
//! ([`html`]), SARIF for code scanning ([`sarif`]) and JUnit XML for CI systems ([`junit`]).
//! Every report is rendered from the engine's decisions as outcomes stream in
//! ([`ReportWriter`]): text and JSON from each outcome's own [`Piece`], the others from its
//! [`row::Row`].

pub mod baseline;
pub mod html;
pub mod json;
pub mod junit;
pub mod position;
pub mod readiness;
pub mod row;
pub mod sarif;
pub mod text;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::{Judged, LabelsByNamespace, Outcome, Verdict};
use crate::policy::load::Diagnostic;
use crate::policy::{CompiledException, PolicySet, Timestamp, exceptions};
pub use json::{
    JsonError, JsonException, JsonFinding, JsonObject, JsonReport, JsonUnusedException,
    SCHEMA_VERSION, json_finding, json_report,
};
use json::{json_error, json_object, json_unused_exception};
pub use text::Style;
use text::{write_error, write_judged};

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
    /// The HTML report.
    Html,
    /// SARIF 2.1.0.
    Sarif,
    /// JUnit XML.
    Junit,
}

/// What a report knows of the run besides its outcomes: the HTML and SARIF reports show the
/// policy set (rules, schedules, exceptions) and the audit's time.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The policy set that judged.
    pub policies: PolicySet,
    /// The time the objects were judged at (`--at`, or the start of the run).
    pub time: Timestamp,
    /// The namespace assumed for objects that set none (`-n`).
    pub default_namespace: Option<String>,
    /// The namespace label the HTML report groups namespaces by (`--group-by`).
    pub group_by: Option<String>,
    /// An earlier JSON report to compare with (`--baseline`).
    pub baseline: Option<baseline::Baseline>,
    /// What was audited, in words (the HTML report's heading).
    pub scope: String,
    /// Where the policies came from (a directory).
    pub policy_source: String,
    /// Labels of namespaces known besides the input (a cluster's).
    pub namespace_labels: LabelsByNamespace,
}

impl RunContext {
    /// The context of a run of `policies` at `time`, with nothing else known.
    pub fn new(policies: PolicySet, time: Timestamp) -> RunContext {
        RunContext {
            policies,
            time,
            default_namespace: None,
            group_by: None,
            baseline: None,
            scope: "manifests".to_owned(),
            policy_source: String::new(),
            namespace_labels: LabelsByNamespace::new(),
        }
    }
}

/// One outcome made ready for a report: what the summary counts, and the report's text for
/// it (or the [`row::Row`] the HTML, SARIF and JUnit reports are rendered from). Built where
/// the outcome is judged (a worker thread), so the writer only copies text.
#[derive(Debug)]
pub struct Piece {
    verdict: Verdict,
    mutated: bool,
    /// The exceptions that excepted a finding of the outcome.
    exceptions: Vec<String>,
    /// JSON, HTML: where the workload stands with each policy that selects it.
    standings: Vec<(String, readiness::Standing)>,
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
    /// HTML, SARIF, JUnit: what they keep of the outcome.
    Row(Box<row::Row>),
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
        Format::Html | Format::Sarif | Format::Junit => {
            PieceBody::Row(Box::new(row::Row::of(outcome)))
        }
    };
    let standings = match format {
        Format::Json | Format::Html => readiness::standings(outcome),
        Format::Text(_) | Format::Sarif | Format::Junit => Vec::new(),
    };
    Piece {
        verdict,
        mutated,
        exceptions,
        standings,
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

/// How many non-workload objects the text report names before just counting.
const OTHER_LISTED: usize = 10;

/// The writers of the reports rendered from rows.
#[derive(Debug)]
enum RowWriter {
    Html(Box<html::Collector>),
    Sarif(Box<sarif::SarifWriter>),
    Junit(junit::JunitWriter),
}

/// Writes a report as outcomes come, in input order ([`piece`]s): the text report's blocks,
/// the JSON report's objects, the SARIF results and the JUnit suites go out at once, so memory
/// holds the counts, the first few non-workload names (text), the unreadable inputs (JSON)
/// and one file's test cases (JUnit), never the outcomes; the HTML report keeps what its page
/// shows of each outcome ([`html`]) and is written at the end. The text and JSON output is
/// byte for byte [`text_report`] and the JSON of [`json_report`].
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
    /// JSON, HTML: readiness per policy so far.
    readiness: readiness::Readiness,
    /// HTML, SARIF, JUnit: the run, the writer, and where findings' fields are in files.
    context: Box<RunContext>,
    rows: Option<RowWriter>,
    positions: Option<position::FileFieldPositions>,
}

impl<W: std::io::Write> ReportWriter<W> {
    /// A writer of a report in `format` to `out`, with nothing known of the run but its
    /// outcomes (the HTML and SARIF reports then show no policy set).
    pub fn new(format: Format, out: W) -> std::io::Result<ReportWriter<W>> {
        ReportWriter::for_run(
            format,
            out,
            RunContext::new(PolicySet::default(), Timestamp::from_unix(0)),
        )
    }

    /// A writer of a report in `format` to `out` for a run described by `context`.
    pub fn for_run(
        format: Format,
        mut out: W,
        context: RunContext,
    ) -> std::io::Result<ReportWriter<W>> {
        let rows = match format {
            Format::Json => {
                write!(
                    out,
                    "{{\n  \"schemaVersion\": {SCHEMA_VERSION},\n  \"objects\": "
                )?;
                None
            }
            Format::Text(_) => None,
            Format::Html => Some(RowWriter::Html(Box::default())),
            Format::Sarif => Some(RowWriter::Sarif(Box::new(sarif::SarifWriter::new(
                &context.policies,
                &mut out,
            )?))),
            Format::Junit => Some(RowWriter::Junit(junit::JunitWriter::new(&mut out)?)),
        };
        let positions = rows.is_some().then(position::FileFieldPositions::new);
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
            readiness: readiness::Readiness::default(),
            context: Box::new(context),
            rows,
            positions,
        })
    }

    /// Adds to what is known of namespaces' labels (a cluster's, once listed).
    pub fn add_namespace_labels(&mut self, labels: &LabelsByNamespace) {
        self.context
            .namespace_labels
            .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Sets what was audited, in words (the HTML report's heading).
    pub fn set_scope(&mut self, scope: String) {
        self.context.scope = scope;
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
        if !piece.standings.is_empty() {
            self.readiness.add(piece.standings);
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
            PieceBody::Row(row) => {
                let positions = self
                    .positions
                    .get_or_insert_with(position::FileFieldPositions::new);
                match &mut self.rows {
                    Some(RowWriter::Html(c)) => c.push(*row, positions),
                    Some(RowWriter::Sarif(w)) => w.push(&row, positions, &mut self.out)?,
                    Some(RowWriter::Junit(w)) => w.push(&row, &mut self.out)?,
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Writes the end of the report (summary, result; the JSON's summary and errors; the
    /// whole HTML page) and returns the counts and the output.
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
                    ",\n  \"summary\": {},\n  \"errors\": {},\n  \"unusedExceptions\": {},\n  \"readiness\": {}\n}}\n",
                    indented(&pretty(&summary), "  ", false),
                    indented(&pretty(&self.errors), "  ", false),
                    indented(&pretty(&unused), "  ", false),
                    indented(&pretty(&self.readiness.json()), "  ", false)
                )?;
            }
            Format::Html | Format::Sarif | Format::Junit => match &mut self.rows {
                Some(RowWriter::Html(c)) => {
                    let page = c.render(&self.context, &summary, &unused, &self.readiness);
                    self.out.write_all(page.as_bytes())?;
                }
                Some(RowWriter::Sarif(w)) => w.finish(&unused, &mut self.out)?,
                Some(RowWriter::Junit(w)) => w.finish(&mut self.out)?,
                None => {}
            },
        }
        self.out.flush()?;
        Ok((summary, self.out))
    }
}

/// Pretty JSON of plain data (serializing it cannot fail).
fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Why the object was not judged (verdicts `skipped` and `not-a-workload`).
pub(crate) fn skip_reason(j: &Judged) -> Option<String> {
    match (j.verdict, &j.decision.skipped) {
        (_, Some(skip)) => Some(skip.to_string()),
        (Verdict::NotAWorkload, None) => Some("not a workload".to_owned()),
        _ => None,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::read::{Location, ReadError};
    use crate::engine::{Decision, Effect, Finding, FindingKind};
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
            part: 0,
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
            part: 0,
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
