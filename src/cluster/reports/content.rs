//! What goes into a policy report, decided without any I/O: the engine's decision on a
//! workload as OpenReports results, and the `Report` of a namespace built from them, bounded and
//! in a stable order, so that the same cluster always gives byte-for-byte the same report and
//! an unchanged report is never written again.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::engine::{Decision, Effect, Finding, FindingKind, Skip};

/// `apiVersion` of OpenReports' `Report`.
pub const API_VERSION: &str = "openreports.io/v1alpha1";
/// The name of the report Portcullis writes in each namespace.
pub const REPORT_NAME: &str = "portcullis";
/// `source` of every report.
pub const SOURCE: &str = "portcullis";
/// The label every report Portcullis writes carries (and the selector it finds them by).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "portcullis");

/// A result's status, in report order (most important first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// A violation that an `enforce` policy denies: the workload would be refused if created
    /// now.
    Fail,
    /// A violation of a `warn` or `audit` policy, or a change an enforce policy would still
    /// make (the workload predates it): admitted, but not as the policy wants.
    Warn,
    /// A finding an exception excuses.
    Skip,
    /// The workload could not be judged (it has no usable pod spec).
    Error,
    /// A policy selected the workload and found nothing.
    Pass,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 5] = [
        Status::Fail,
        Status::Warn,
        Status::Skip,
        Status::Error,
        Status::Pass,
    ];

    /// `fail`, `warn`, `skip`, `error`, `pass`, as OpenReports spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Error => "error",
            Status::Pass => "pass",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown result {s:?}: expected fail, warn, skip, error or pass")
            })
    }
}

/// The property of a result that names the exception that excepts it (status `skip`).
pub const EXCEPTION_PROPERTY: &str = "exception";

/// One result about one workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportResult {
    /// Its status.
    pub status: Status,
    /// The policy.
    pub policy: String,
    /// The rule type (`requireProbes`); empty for a pass or an error.
    pub rule: String,
    /// The same words the webhook and `portcullis audit` use.
    pub message: String,
    /// Container, field path, the policy's mode, the finding's effect.
    pub properties: BTreeMap<String, String>,
}

/// The workload a result is about (its namespace is the report's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
}

/// The results about one workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadResults {
    /// The workload.
    pub workload: WorkloadRef,
    /// Its results, passes included.
    pub results: Vec<ReportResult>,
}

/// The results of a decision: one per finding (violations, and mutations still to be made),
/// one pass per selecting policy that found nothing. `None` when the workload is not reported
/// at all: it is not judged here (controller-owned objects are judged at their owner).
pub fn results_of(decision: &Decision) -> Option<Vec<ReportResult>> {
    match &decision.skipped {
        None => {}
        Some(Skip::Malformed(why)) => {
            return Some(vec![ReportResult {
                status: Status::Error,
                policy: String::new(),
                rule: String::new(),
                message: format!("not judged: {why}"),
                properties: BTreeMap::new(),
            }]);
        }
        Some(_) => return None,
    }
    let mut out: Vec<ReportResult> = decision.findings.iter().map(finding_result).collect();
    for policy in &decision.policies {
        if !decision.findings.iter().any(|f| &f.policy == policy) {
            out.push(ReportResult {
                status: Status::Pass,
                policy: policy.clone(),
                rule: String::new(),
                message: String::new(),
                properties: BTreeMap::new(),
            });
        }
    }
    Some(out)
}

fn finding_result(f: &Finding) -> ReportResult {
    let status = match (f.kind, f.effect) {
        (FindingKind::Violation, Effect::Deny) => Status::Fail,
        (_, Effect::Excepted) => Status::Skip,
        _ => Status::Warn,
    };
    // The words of the webhook's warnings (and of `portcullis audit`), without the workload,
    // which `resources` names.
    let message = format!("{}{}", f.warning_prefix(), f.full_text());
    let mut properties = BTreeMap::new();
    if let Some(c) = &f.container {
        properties.insert("container".to_owned(), c.clone());
    }
    if !f.field.is_empty() {
        properties.insert("field".to_owned(), f.field.clone());
    }
    properties.insert("mode".to_owned(), f.mode.as_str().to_owned());
    properties.insert("effect".to_owned(), f.effect.as_str().to_owned());
    if f.kind == FindingKind::Notice {
        properties.insert("kind".to_owned(), "notice".to_owned());
    }
    if let Some(t) = f.enforced_from {
        properties.insert("enforcedFrom".to_owned(), t.to_string());
    }
    if let Some(e) = &f.exception {
        properties.insert(EXCEPTION_PROPERTY.to_owned(), e.name.clone());
        properties.insert("exceptionOwner".to_owned(), e.owner.clone());
        properties.insert("exceptionExpires".to_owned(), e.expires.to_string());
        properties.insert("exceptionReason".to_owned(), e.reason.clone());
        if let Some(t) = &e.ticket {
            properties.insert("exceptionTicket".to_owned(), t.clone());
        }
    }
    ReportResult {
        status,
        policy: f.policy.clone(),
        rule: f.rule.to_owned(),
        message,
        properties,
    }
}

/// How reports are bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// At most this many results per report (`configuration.limits.maxResults`), the most
    /// important first.
    pub max_results: usize,
    /// Only results of these statuses are listed (`configuration.limits.statusFilter`); the
    /// summary counts every result.
    pub statuses: Vec<Status>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_results: 50,
            statuses: vec![Status::Fail, Status::Warn],
        }
    }
}

/// Counts of results by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// `pass`.
    pub pass: u32,
    /// `fail`.
    pub fail: u32,
    /// `warn`.
    pub warn: u32,
    /// `error`.
    pub error: u32,
    /// `skip`.
    pub skip: u32,
}

impl Summary {
    /// Adds another summary's counts.
    pub fn merge(&mut self, other: Summary) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.warn += other.warn;
        self.error += other.error;
        self.skip += other.skip;
    }

    /// Every result counted.
    pub fn total(&self) -> u32 {
        self.pass + self.fail + self.warn + self.error + self.skip
    }

    /// Counts `results`.
    pub fn add(&mut self, results: &[ReportResult]) {
        for r in results {
            match r.status {
                Status::Pass => self.pass += 1,
                Status::Fail => self.fail += 1,
                Status::Warn => self.warn += 1,
                Status::Error => self.error += 1,
                Status::Skip => self.skip += 1,
            }
        }
    }

    fn to_json(self) -> Value {
        json!({"pass": self.pass, "fail": self.fail, "warn": self.warn, "error": self.error,
               "skip": self.skip})
    }
}

/// The report of one namespace: every listed result, at most [`Limits::max_results`], most
/// important first (fail, warn, skip, error, pass; then by workload, policy, rule, message).
/// Also returns how many results the limits left out.
pub fn build_report<'a>(
    namespace: &str,
    workloads: impl IntoIterator<Item = &'a WorkloadResults>,
    limits: &Limits,
) -> (Value, usize) {
    let mut summary = Summary::default();
    let mut listed: Vec<(&ReportResult, &WorkloadRef)> = Vec::new();
    let mut left_out = 0;
    for w in workloads {
        summary.add(&w.results);
        for r in &w.results {
            if limits.statuses.contains(&r.status) {
                listed.push((r, &w.workload));
            }
        }
    }
    listed.sort_by(|(a, wa), (b, wb)| {
        (
            a.status,
            &wa.kind,
            &wa.name,
            &a.policy,
            &a.rule,
            &a.message,
            &a.properties,
        )
            .cmp(&(
                b.status,
                &wb.kind,
                &wb.name,
                &b.policy,
                &b.rule,
                &b.message,
                &b.properties,
            ))
    });
    if listed.len() > limits.max_results {
        left_out = listed.len() - limits.max_results;
        listed.truncate(limits.max_results);
    }
    let results: Vec<Value> = listed
        .into_iter()
        .map(|(r, w)| result_json(namespace, r, w))
        .collect();
    let statuses: Vec<&str> = limits.statuses.iter().map(|s| s.as_str()).collect();
    let report = json!({
        "apiVersion": API_VERSION,
        "kind": "Report",
        "metadata": {
            "name": REPORT_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY.0: MANAGED_BY.1},
        },
        "source": SOURCE,
        "configuration": {"limits": {"maxResults": limits.max_results, "statusFilter": statuses}},
        "summary": summary.to_json(),
        "results": results,
    });
    (report, left_out)
}

fn result_json(namespace: &str, r: &ReportResult, w: &WorkloadRef) -> Value {
    let mut out = Map::new();
    out.insert("policy".to_owned(), Value::String(r.policy.clone()));
    if !r.rule.is_empty() {
        out.insert("rule".to_owned(), Value::String(r.rule.clone()));
    }
    out.insert(
        "result".to_owned(),
        Value::String(r.status.as_str().to_owned()),
    );
    if !r.message.is_empty() {
        out.insert("message".to_owned(), Value::String(r.message.clone()));
    }
    out.insert(
        "resources".to_owned(),
        json!([{"apiVersion": w.api_version, "kind": w.kind, "namespace": namespace,
                "name": w.name, "uid": w.uid}]),
    );
    if !r.properties.is_empty() {
        let props: Map<String, Value> = r
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        out.insert("properties".to_owned(), Value::Object(props));
    }
    Value::Object(out)
}

/// A hash of what Portcullis writes in a report (`source`, `configuration`, `summary`,
/// `results`, and its label), independent of key order: equal for the report built and for
/// the same report read back from the API server, so an unchanged report is never written.
pub fn content_hash(report: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for key in ["source", "configuration", "summary", "results"] {
        key.hash(&mut h);
        hash_canonical(report.get(key).unwrap_or(&Value::Null), &mut h);
    }
    let label = report
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY.0))
        .and_then(Value::as_str);
    label.hash(&mut h);
    h.finish()
}

fn hash_canonical(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n.to_string()).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            for i in items {
                hash_canonical(i, h);
            }
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(h);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                k.hash(h);
                hash_canonical(&map[k], h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::Mode;

    fn finding(policy: &str, effect: Effect, kind: FindingKind, message: &str) -> Finding {
        Finding {
            policy: policy.into(),
            rule: "requireProbes",
            part: 0,
            kind,
            mode: if effect == Effect::Deny || effect == Effect::Apply {
                Mode::Enforce
            } else {
                Mode::Warn
            },
            effect,
            container: Some("app".into()),
            field: "spec.template.spec.containers[0].livenessProbe".into(),
            message: message.into(),
            hint: "add one".into(),
            pre_existing: false,
            exception: None,
            enforced_from: None,
        }
    }

    fn workload(name: &str, results: Vec<ReportResult>) -> WorkloadResults {
        WorkloadResults {
            workload: WorkloadRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
            },
            results,
        }
    }

    #[test]
    fn findings_map_to_statuses_and_passes_to_silent_policies() {
        let decision = Decision {
            workload: "Deployment shop/web".into(),
            allowed: false,
            findings: vec![
                finding(
                    "add-labels",
                    Effect::Apply,
                    FindingKind::Mutation,
                    "add label a=b",
                ),
                finding(
                    "probes",
                    Effect::Deny,
                    FindingKind::Violation,
                    "no livenessProbe",
                ),
                finding(
                    "images",
                    Effect::Warn,
                    FindingKind::Violation,
                    "uses :latest",
                ),
            ],
            policies: vec![
                "add-labels".into(),
                "probes".into(),
                "images".into(),
                "resources".into(),
            ],
            ..Decision::default()
        };
        let results = results_of(&decision).expect("judged");
        let statuses: Vec<(&str, Status)> = results
            .iter()
            .map(|r| (r.policy.as_str(), r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("add-labels", Status::Warn),
                ("probes", Status::Fail),
                ("images", Status::Warn),
                ("resources", Status::Pass),
            ]
        );
        assert_eq!(
            results[1].message,
            "[probes] container \"app\": no livenessProbe (spec.template.spec.containers[0].livenessProbe); fix: add one"
        );
        assert!(results[0].message.starts_with("would apply: [add-labels]"));
        assert_eq!(results[1].properties["effect"], "deny");
        assert_eq!(results[1].properties["container"], "app");
        let owned = Decision::skip(
            "Pod shop/web-1".into(),
            Skip::ControllerOwned {
                owner: "ReplicaSet web".into(),
            },
        );
        assert_eq!(results_of(&owned), None);
    }

    #[test]
    fn reports_are_bounded_ordered_and_count_everything() {
        let fail = |m: &str| ReportResult {
            status: Status::Fail,
            policy: "p".into(),
            rule: "requireProbes".into(),
            message: m.into(),
            properties: BTreeMap::new(),
        };
        let pass = ReportResult {
            status: Status::Pass,
            policy: "q".into(),
            rule: String::new(),
            message: String::new(),
            properties: BTreeMap::new(),
        };
        let mut warn = fail("w");
        warn.status = Status::Warn;
        let workloads = vec![
            workload("b", vec![warn.clone(), fail("b1"), pass.clone()]),
            workload("a", vec![fail("a1"), fail("a2")]),
        ];
        let limits = Limits {
            max_results: 3,
            statuses: vec![Status::Fail, Status::Warn],
        };
        let (report, left_out) = build_report("shop", &workloads, &limits);
        assert_eq!(left_out, 1);
        assert_eq!(
            report["summary"],
            json!({"pass": 1, "fail": 3, "warn": 1, "error": 0, "skip": 0})
        );
        let listed: Vec<(&str, &str)> = report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                (
                    r["resources"][0]["name"].as_str().unwrap_or(""),
                    r["message"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(listed, [("a", "a1"), ("a", "a2"), ("b", "b1")]);
        assert_eq!(report["configuration"]["limits"]["maxResults"], 3);
        assert_eq!(
            report["configuration"]["limits"]["statusFilter"],
            json!(["fail", "warn"])
        );
        assert_eq!(report["metadata"]["name"], REPORT_NAME);
        assert_eq!(report["source"], SOURCE);
        // The same workloads in another order give the same report.
        let reversed: Vec<WorkloadResults> = workloads.into_iter().rev().collect();
        let (again, _) = build_report("shop", &reversed, &limits);
        assert_eq!(content_hash(&again), content_hash(&report));
    }

    #[test]
    fn the_hash_ignores_key_order_and_server_fields_but_not_content() {
        let (report, _) = build_report("shop", &[workload("a", vec![])], &Limits::default());
        let mut from_server: Value =
            serde_json::from_str(&serde_json::to_string(&report).expect("serialize"))
                .expect("parse");
        from_server["metadata"]["resourceVersion"] = json!("42");
        from_server["metadata"]["managedFields"] = json!([{"manager": "portcullis"}]);
        // Keys in another order, as another serializer might send them.
        let summary = from_server["summary"].as_object().expect("summary").clone();
        let reordered: Map<String, Value> = summary.into_iter().rev().collect();
        from_server["summary"] = Value::Object(reordered);
        assert_eq!(content_hash(&from_server), content_hash(&report));
        from_server["summary"]["fail"] = json!(1);
        assert_ne!(content_hash(&from_server), content_hash(&report));
    }
}
