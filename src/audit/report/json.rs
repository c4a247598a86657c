//! The JSON report (`portcullis audit -o json`, `schemaVersion: 1`): its types and how an
//! outcome becomes one of its objects.

use serde::Serialize;
use serde_json::Value;

use super::{Summary, skip_reason};
use crate::audit::read::ReadError;
use crate::audit::{Judged, Outcome, Verdict};
use crate::engine::{Finding, FindingKind};
use crate::policy::CompiledException;
use crate::policy::load::Diagnostic;

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
    /// Per policy that selected a workload (by name, whatever its mode, `off` included): how
    /// many workloads it selects, how many it would deny were it `enforce` today, how many
    /// have only excepted violations of it.
    pub readiness: Vec<super::readiness::JsonReadiness>,
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
    /// The violations of the policies that select the object but are `off` at the audit's
    /// time, judged for readiness only (mode `off`, effect `audit` or `excepted`): they decide
    /// nothing. Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub off_violations: Vec<JsonFinding>,
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
        readiness: super::readiness::Readiness::of_outcomes(outcomes).json(),
    }
}

pub(super) fn json_unused_exception(
    e: &CompiledException,
    warning: &Diagnostic,
) -> JsonUnusedException {
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
pub(super) fn json_error(e: &ReadError) -> (JsonObject, Option<JsonError>) {
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
        off_violations: Vec::new(),
    };
    (object, Some(error))
}

pub(super) fn json_object(j: &Judged) -> JsonObject {
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
        off_violations: j.decision.off_violations.iter().map(json_finding).collect(),
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

pub(crate) fn finding_kind(f: &Finding) -> &'static str {
    match f.kind {
        FindingKind::Violation => "violation",
        FindingKind::Mutation => "mutation",
        FindingKind::Notice => "notice",
    }
}
