//! What the HTML, SARIF and JUnit reports keep of one outcome: a [`Row`], taken from the judged
//! outcome on the worker thread that judged it (the object itself is dropped there), so the
//! writer needs nothing else. One computation, the engine's decision; several renderings.

use std::collections::BTreeMap;

use crate::audit::read::Location;
use crate::audit::{Judged, Outcome, Verdict};
use crate::engine::{Finding, FindingKind};

/// One outcome, as the HTML, SARIF and JUnit reports see it.
#[derive(Debug, Clone)]
pub struct Row {
    /// Where it was read (`<cluster>` for objects listed from a cluster).
    pub location: Location,
    /// `kind`; empty for unreadable documents.
    pub kind: String,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
    /// `metadata.name` (`generateName*` when only that is set), if any.
    pub name: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the object was not judged, or what is wrong with an unreadable document.
    pub reason: Option<String>,
    /// The policies that selected the object.
    pub policies: Vec<String>,
    /// Its violations and notices, in the decision's order (mutations are counted only).
    pub findings: Vec<Finding>,
    /// The policies with a mutation for it (applied, or only described), each once.
    pub mutated_by: Vec<String>,
    /// How many mutation findings it has.
    pub mutations: usize,
    /// The violations of the policies that select it but are `off` (measured, deciding
    /// nothing: see [`crate::engine::Decision::off_violations`]).
    pub off_violations: Vec<Finding>,
    /// The labels of a `v1 Namespace` (with `kubernetes.io/metadata.name`), so reports can
    /// group namespaces by label; `None` for any other object.
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

impl Row {
    /// The row of one outcome.
    pub fn of(outcome: &Outcome) -> Row {
        match outcome {
            Outcome::Error(e) => Row {
                location: e.location.clone(),
                kind: String::new(),
                namespace: None,
                name: None,
                verdict: Verdict::Error,
                reason: Some(e.message.clone()),
                policies: Vec::new(),
                findings: Vec::new(),
                mutated_by: Vec::new(),
                mutations: 0,
                off_violations: Vec::new(),
                namespace_labels: None,
            },
            Outcome::Judged(j) => Row::of_judged(j),
        }
    }

    fn of_judged(j: &Judged) -> Row {
        let mut mutated_by: Vec<String> = Vec::new();
        let mut mutations = 0;
        let mut findings = Vec::new();
        for f in &j.decision.findings {
            if f.kind == FindingKind::Mutation {
                mutations += 1;
                if !mutated_by.contains(&f.policy) {
                    mutated_by.push(f.policy.clone());
                }
            } else {
                findings.push(f.clone());
            }
        }
        Row {
            location: j.location.clone(),
            kind: j.kind().to_owned(),
            namespace: j.namespace().map(str::to_owned),
            name: j.name(),
            verdict: j.verdict,
            reason: super::skip_reason(j),
            policies: j.decision.policies.clone(),
            findings,
            mutated_by,
            mutations,
            off_violations: j.decision.off_violations.clone(),
            namespace_labels: crate::audit::namespace_labels_of(&j.object).map(|(_, l)| l),
        }
    }

    /// How reports name the object: `Deployment demo/web`, `ClusterRole admin`; `unreadable
    /// document` for one that could not be read.
    pub fn title(&self) -> String {
        if self.verdict == Verdict::Error {
            return "unreadable document".to_owned();
        }
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }

    /// Whether the row is a workload the engine judged (verdict deny, warn or pass).
    pub fn is_judged_workload(&self) -> bool {
        matches!(self.verdict, Verdict::Deny | Verdict::Warn | Verdict::Pass)
    }

    /// The violations.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation)
    }

    /// Whether an exception excepted one of its findings.
    pub fn excepted(&self) -> bool {
        self.findings.iter().any(|f| f.exception.is_some())
    }
}

/// What identifies a finding across runs, whatever its file, line or wording: the policy, the
/// rule type, the workload (kind, namespace, name), the container and the field. SARIF
/// fingerprints and the HTML report's comparison with a baseline both use it.
pub fn finding_key(
    kind: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    policy: &str,
    rule: &str,
    container: Option<&str>,
    field: &str,
) -> String {
    [
        policy,
        rule,
        kind,
        namespace.unwrap_or(""),
        name.unwrap_or(""),
        container.unwrap_or(""),
        field,
    ]
    .join("\u{1f}")
}
