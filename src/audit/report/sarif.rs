//! The SARIF 2.1.0 report (`portcullis audit -o sarif`), for code scanning (GitHub, GitLab):
//! one rule per rule of a policy, one result per violation or notice, located at the line and
//! column of the offending field where the input is a file, with a fingerprint that stays the
//! same across runs and edits elsewhere, so that a fixed finding closes. Results are written
//! as outcomes come (the rules, which carry the fixes seen, at the end).

use std::collections::HashMap;
use std::io::Write;

use serde_json::{Value, json};

use super::position::{FieldPositions, Position};
use super::row::{Row, finding_key};
use crate::audit::Verdict;
use crate::audit::read::Location;
use crate::engine::{Effect, Finding, FindingKind};
use crate::policy::model::Mode;
use crate::policy::{CompiledException, PolicySet, load::Diagnostic};

/// The `$schema` the report names.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The name of the fingerprint in `partialFingerprints`.
pub const FINGERPRINT: &str = "portcullisFinding/v1";

/// How many distinct fix texts a rule's help lists.
const FIXES_LISTED: usize = 10;

/// One rule of a policy, as a SARIF rule.
#[derive(Debug)]
struct RuleInfo {
    policy: String,
    rule: String,
    description: Option<String>,
    mode: Mode,
    /// Distinct fix texts of its results, the first [`FIXES_LISTED`], and how many in all.
    fixes: Vec<String>,
    fixes_seen: usize,
}

/// Writes the SARIF report as rows come.
#[derive(Debug)]
pub(super) struct SarifWriter {
    rules: Vec<RuleInfo>,
    index: HashMap<(String, String), usize>,
    written: usize,
    notifications: Vec<Value>,
}

impl SarifWriter {
    /// A writer for the rules of `policies`; writes the report's start to `out`.
    pub(super) fn new(policies: &PolicySet, out: &mut dyn Write) -> std::io::Result<SarifWriter> {
        let mut w = SarifWriter {
            rules: Vec::new(),
            index: HashMap::new(),
            written: 0,
            notifications: Vec::new(),
        };
        for p in &policies.policies {
            for r in &p.rules {
                w.rule_index(
                    &p.name,
                    r.type_name(),
                    p.description.clone(),
                    p.strictest_mode(),
                );
            }
        }
        write!(
            out,
            "{{\n  \"$schema\": \"{SARIF_SCHEMA}\",\n  \"version\": \"2.1.0\",\n  \"runs\": [\n    {{\n      \"results\": ["
        )?;
        Ok(w)
    }

    fn rule_index(
        &mut self,
        policy: &str,
        rule: &str,
        description: Option<String>,
        mode: Mode,
    ) -> usize {
        let key = (policy.to_owned(), rule.to_owned());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.rules.push(RuleInfo {
            policy: policy.to_owned(),
            rule: rule.to_owned(),
            description,
            mode,
            fixes: Vec::new(),
            fixes_seen: 0,
        });
        self.index.insert(key, self.rules.len() - 1);
        self.rules.len() - 1
    }

    /// Writes the results of one row, each located at its field through `positions`.
    pub(super) fn push(
        &mut self,
        row: &Row,
        positions: &mut dyn FieldPositions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        if row.verdict == Verdict::Error {
            let mut n = json!({
                "level": "error",
                "message": {"text": format!("unreadable document ({}): {}", row.location, row.reason.as_deref().unwrap_or(""))},
                "descriptor": {"id": "unreadable-document"},
            });
            if let Some(physical) = physical_location(&row.location, None) {
                n["locations"] = json!([{ "physicalLocation": physical }]);
            }
            self.notifications.push(n);
            return Ok(());
        }
        let title = row.title();
        for f in &row.findings {
            let i = self.rule_index(&f.policy, f.rule, None, f.mode);
            let rule = &mut self.rules[i];
            if !f.hint.is_empty() && !rule.fixes.contains(&f.hint) {
                rule.fixes_seen += 1;
                if rule.fixes.len() < FIXES_LISTED {
                    rule.fixes.push(f.hint.clone());
                }
            }
            let position = positions.field_position(&row.location, &f.field);
            let result = result(row, &title, f, i, position);
            out.write_all(if self.written == 0 { b"\n" } else { b",\n" })?;
            out.write_all(b"        ")?;
            serde_json::to_writer(&mut *out, &result)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Writes the end of the report: the tool and its rules, the invocation with its
    /// notifications (unreadable documents, exceptions that matched nothing).
    pub(super) fn finish(
        &self,
        unused: &[(std::sync::Arc<CompiledException>, Diagnostic)],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let rules: Vec<Value> = self.rules.iter().map(rule_descriptor).collect();
        let configuration: Vec<Value> = unused
            .iter()
            .map(|(e, warning)| {
                json!({
                    "level": "warning",
                    "message": {"text": warning.message},
                    "descriptor": {"id": "unused-exception"},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": file_uri(&e.source.file.display().to_string())},
                        "region": {"startLine": e.source.line},
                    }}],
                })
            })
            .collect();
        let tool = json!({
            "driver": {
                "name": "Portcullis",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }
        });
        let invocations = json!([{
            "executionSuccessful": true,
            "toolExecutionNotifications": self.notifications,
            "toolConfigurationNotifications": configuration,
        }]);
        let end: &[u8] = if self.written == 0 {
            b"]"
        } else {
            b"\n      ]"
        };
        out.write_all(end)?;
        write!(
            out,
            ",\n      \"tool\": {},\n      \"invocations\": {},\n      \"columnKind\": \"unicodeCodePoints\"\n    }}\n  ]\n}}\n",
            indent(&tool),
            indent(&invocations)
        )
    }
}

/// Pretty JSON, indented to sit in a run.
fn indent(v: &Value) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .replace('\n', "\n      ")
}

/// The SARIF level of a finding: deny (and what an exception keeps from denying) is an
/// error, warn a warning, audit and notices a note.
fn level(f: &Finding) -> &'static str {
    match (f.kind, f.effect, f.mode) {
        (FindingKind::Violation, Effect::Deny, _) => "error",
        (FindingKind::Violation, Effect::Excepted, Mode::Enforce) => "error",
        (_, Effect::Warn, _) | (FindingKind::Violation, Effect::Excepted, Mode::Warn) => "warning",
        _ => "note",
    }
}

fn mode_level(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "error",
        Mode::Warn => "warning",
        Mode::Audit => "note",
        Mode::Off => "none",
    }
}

/// The stable fingerprint of a finding: SHA-256 of [`finding_key`], in hex.
pub fn fingerprint(row: &Row, f: &Finding) -> String {
    let key = finding_key(
        &row.kind,
        row.namespace.as_deref(),
        row.name.as_deref(),
        &f.policy,
        f.rule,
        f.container.as_deref(),
        &f.field,
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn result(row: &Row, title: &str, f: &Finding, rule: usize, at: Option<Position>) -> Value {
    let mut text = format!("{title}: {}", f.full_text());
    if let Some(from) = f.enforced_from
        && f.effect != Effect::Excepted
    {
        text.push_str(&format!(" (the policy's schedule enforces it from {from})"));
    }
    let mut location = json!({
        "logicalLocations": [{
            "name": row.name.as_deref().unwrap_or("(unnamed)"),
            "fullyQualifiedName": title,
            "kind": "resource",
        }],
    });
    if let Some(physical) = physical_location(&row.location, at) {
        location["physicalLocation"] = physical;
    }
    let mut r = json!({
        "ruleId": format!("{}/{}", f.policy, f.rule),
        "ruleIndex": rule,
        "level": level(f),
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT: fingerprint(row, f)},
        "properties": {
            "policy": f.policy,
            "rule": f.rule,
            "mode": f.mode.as_str(),
            "effect": f.effect.as_str(),
            "container": f.container,
            "field": f.field,
            "workload": title,
        },
    });
    if let Some(e) = &f.exception {
        let ticket = e
            .ticket
            .as_deref()
            .map(|t| format!(", ticket {t}"))
            .unwrap_or_default();
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": format!("exception {} (owner {}, expires {}{ticket}): {}", e.name, e.owner, e.expires, e.reason),
        }]);
    }
    r
}

/// Where in a file: the field's position, else the document's line. `None` for standard
/// input and the cluster.
fn physical_location(location: &Location, at: Option<Position>) -> Option<Value> {
    if location.file.starts_with('<') {
        return None;
    }
    let region = match (at, location.line) {
        (Some(p), _) => json!({"startLine": p.line, "startColumn": p.column}),
        (None, Some(line)) => json!({"startLine": line}),
        (None, None) => Value::Null,
    };
    let mut physical = json!({"artifactLocation": {"uri": file_uri(&location.file)}});
    if !region.is_null() {
        physical["region"] = region;
    }
    Some(physical)
}

/// A path as a URI reference: relative paths stay relative (code scanning resolves them from
/// the repository's root), absolute ones become `file://` URIs; bytes outside the unreserved
/// set and `/` are percent-encoded.
pub fn file_uri(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule_descriptor(r: &RuleInfo) -> Value {
    let about = rule_type_description(&r.rule);
    let mut help = String::new();
    if let Some(d) = &r.description {
        help.push_str(d);
        help.push_str("\n\n");
    }
    help.push_str(&about);
    if !r.fixes.is_empty() {
        help.push_str("\n\nFixes:");
        for fix in &r.fixes {
            help.push_str("\n- ");
            help.push_str(fix);
        }
        if r.fixes_seen > r.fixes.len() {
            help.push_str(&format!(
                "\n- and {} more (each result names its own)",
                r.fixes_seen - r.fixes.len()
            ));
        }
    }
    json!({
        "id": format!("{}/{}", r.policy, r.rule),
        "name": format!("{}/{}", r.policy, r.rule),
        "shortDescription": {"text": format!("{}: {}", r.policy, r.rule)},
        "fullDescription": {"text": r.description.clone().unwrap_or_else(|| about.clone())},
        "help": {"text": help},
        "defaultConfiguration": {"level": mode_level(r.mode), "enabled": r.mode != Mode::Off},
        "properties": {"policy": r.policy, "ruleType": r.rule, "mode": r.mode.as_str(), "tags": ["kubernetes", "portcullis"]},
    })
}

/// What a rule type checks, from the policy format's own documentation (its JSON Schema).
pub(super) fn rule_type_description(rule: &str) -> String {
    use crate::policy::model::{
        DefaultLabels, DisallowNamespaces, InjectSidecar, RequireImageTag, RequireLabels,
        RequireProbes, RequireResources,
    };
    let schema = match rule {
        "requireProbes" => schemars::schema_for!(RequireProbes),
        "requireResources" => schemars::schema_for!(RequireResources),
        "injectSidecar" => schemars::schema_for!(InjectSidecar),
        "defaultLabels" => schemars::schema_for!(DefaultLabels),
        "requireImageTag" => schemars::schema_for!(RequireImageTag),
        "disallowNamespaces" => schemars::schema_for!(DisallowNamespaces),
        "requireLabels" => schemars::schema_for!(RequireLabels),
        other => return format!("`{other}` rule."),
    };
    schema
        .get("description")
        .and_then(Value::as_str)
        .map_or_else(|| format!("`{rule}` rule."), str::to_owned)
}
