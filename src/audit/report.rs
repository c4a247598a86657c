//! Audit reports: the stable JSON schema (`schemaVersion: 1`) and the human-readable text
//! report, grouped by object, coloured on a terminal.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::{Judged, Outcome, Verdict};
use crate::engine::{Effect, Finding, FindingKind};

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
                Outcome::Error(_) => s.errors += 1,
                Outcome::Judged(j) => {
                    s.objects += 1;
                    if j.decision.is_patched() {
                        s.mutated += 1;
                    }
                    match j.verdict {
                        Verdict::Deny => s.denied += 1,
                        Verdict::Warn => s.warned += 1,
                        Verdict::Pass => s.passed += 1,
                        Verdict::Skipped => s.skipped += 1,
                        Verdict::NotAWorkload => s.other += 1,
                        Verdict::Error => s.errors += 1,
                    }
                }
            }
        }
        s.judged = s.denied + s.warned + s.passed;
        s
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

/// Builds the JSON report.
pub fn json_report(outcomes: &[Outcome]) -> JsonReport {
    let mut objects = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Judged(j) => objects.push(json_object(j)),
            Outcome::Error(e) => {
                let l = &e.location;
                errors.push(JsonError {
                    file: l.file.clone(),
                    document_index: l.document_index,
                    item_index: l.item_index,
                    line: l.line,
                    message: e.message.clone(),
                });
                objects.push(JsonObject {
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
                });
            }
        }
    }
    JsonReport {
        schema_version: SCHEMA_VERSION,
        objects,
        summary: Summary::of(outcomes),
        errors,
    }
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

fn json_finding(f: &Finding) -> JsonFinding {
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
    let mut out = String::new();
    let mut others: Vec<String> = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Error(e) => {
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
            Outcome::Judged(j) if j.verdict == Verdict::NotAWorkload => others.push(j.title()),
            Outcome::Judged(j) => write_judged(&mut out, j, style),
        }
    }
    if !others.is_empty() {
        let mut listed = others
            .iter()
            .take(OTHER_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if others.len() > OTHER_LISTED {
            let _ = write!(listed, " and {} more", others.len() - OTHER_LISTED);
        }
        let _ = writeln!(
            out,
            "{} {}\n",
            style.dim(&format!("not workloads, not judged ({}):", others.len())),
            style.dim(&listed)
        );
    }
    let summary = Summary::of(outcomes);
    let _ = writeln!(out, "{}", summary.line());
    let result = summary.result_line();
    let _ = writeln!(
        out,
        "{}",
        if summary.fails() {
            style.red(&result)
        } else {
            style.green(&result)
        }
    );
    out
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
        };
        write_finding(out, &label, f, style);
    }
    for f in &mutations {
        let label = match f.effect {
            Effect::Apply | Effect::Deny => style.cyan("apply"),
            Effect::Warn => style.yellow("warn "),
            Effect::Audit => style.dim("audit"),
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
