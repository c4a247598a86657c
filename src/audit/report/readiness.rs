//! Readiness per policy: of the workloads a policy selects, how many it would deny were it
//! `enforce` today. Counted from the engine's decisions: the violations of the policies that
//! run, and those of the policies that are `off`, which the audit's engine measures without
//! letting them decide ([`crate::engine::OffPolicies::Measure`]). The JSON and HTML reports
//! show the same counts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::{Judged, Outcome, Verdict};
use crate::engine::{Effect, Finding, FindingKind};

/// Where one workload stands with one policy that selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No violation of the policy.
    Ready,
    /// A violation of the policy that no exception covers: enforced, it would deny.
    WouldDeny,
    /// Violations of the policy, every one excepted.
    Excepted,
}

/// The standing of a judged workload with each policy that selects it (whether it runs or is
/// `off`), in the decision's order; nothing for any other outcome.
pub fn standings(outcome: &Outcome) -> Vec<(String, Standing)> {
    match outcome {
        Outcome::Judged(j)
            if matches!(j.verdict, Verdict::Deny | Verdict::Warn | Verdict::Pass) =>
        {
            standings_of(j)
        }
        _ => Vec::new(),
    }
}

fn standings_of(j: &Judged) -> Vec<(String, Standing)> {
    let d = &j.decision;
    let violations = || {
        d.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation)
            .chain(d.off_violations.iter())
    };
    d.policies
        .iter()
        .chain(d.off_policies.iter())
        .map(|p| {
            let mine = || violations().filter(|f: &&Finding| f.policy == *p);
            let standing = if mine().any(|f| f.effect != Effect::Excepted) {
                Standing::WouldDeny
            } else if mine().next().is_some() {
                Standing::Excepted
            } else {
                Standing::Ready
            };
            (p.clone(), standing)
        })
        .collect()
}

/// One policy's readiness, as the JSON report writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReadiness {
    /// Workloads judged that the policy selects (whatever its mode).
    pub selected: usize,
    /// Of those, how many it would deny were it `enforce` today: a violation of it that no
    /// exception covers.
    pub would_deny: usize,
    /// Of those, how many have violations of it that are all excepted.
    pub excepted: usize,
}

/// Readiness per policy over an audit, by policy name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness(pub BTreeMap<String, PolicyReadiness>);

impl Readiness {
    /// Counts one workload's standings.
    pub fn add(&mut self, standings: Vec<(String, Standing)>) {
        for (policy, standing) in standings {
            let r = self.0.entry(policy).or_default();
            r.selected += 1;
            match standing {
                Standing::Ready => {}
                Standing::WouldDeny => r.would_deny += 1,
                Standing::Excepted => r.excepted += 1,
            }
        }
    }

    /// The readiness of `policy` (zeros when it selected nothing).
    pub fn of(&self, policy: &str) -> PolicyReadiness {
        self.0.get(policy).copied().unwrap_or_default()
    }

    /// Over `outcomes`.
    pub fn of_outcomes(outcomes: &[Outcome]) -> Readiness {
        let mut r = Readiness::default();
        for o in outcomes {
            r.add(standings(o));
        }
        r
    }

    /// The JSON report's `readiness`: one entry per policy that selected a workload, by name.
    pub fn json(&self) -> Vec<JsonReadiness> {
        self.0
            .iter()
            .map(|(policy, r)| JsonReadiness {
                policy: policy.clone(),
                counts: *r,
            })
            .collect()
    }
}

/// One entry of the JSON report's `readiness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonReadiness {
    /// The policy's name.
    pub policy: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: PolicyReadiness,
}
