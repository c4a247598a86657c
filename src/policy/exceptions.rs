//! Reviewing exceptions against a time: the ones that have expired (they have no effect), the
//! ones that expire within [`EXPIRY_WARNING_DAYS`], and the ones that can no longer apply to
//! anything (the policies they name are off, or do not select the workloads they name).
//! `policy validate`, `audit` and `serve` print or log these as warnings; none of them makes a
//! set invalid, since a set must never become invalid by time passing.
//!
//! Whether an exception still matches anything can only be told from what it was used on:
//! `audit` and the reports count the exceptions the engine's decisions name (an excepted
//! finding carries its exception) and ask [`unused`] which of those in force excepted nothing.

use std::sync::Arc;

use super::load::Diagnostic;
use super::model::Mode;
use super::select::{Subject, pattern_matches};
use super::{CompiledException, CompiledPolicy, PolicySet, Timestamp};

/// Exceptions expiring within this many days are reported.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

fn warning(e: &CompiledException, message: String, hint: &str) -> Diagnostic {
    Diagnostic {
        file: e.source.file.clone(),
        line: e.source.line,
        column: 0,
        message,
        hint: hint.to_owned(),
    }
}

/// Every exception of the set worth a warning at `now`, in load order.
pub fn review(set: &PolicySet, now: Timestamp) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for e in &set.exceptions {
        out.extend(expiry_warning(e, now));
        if !e.in_force(now) {
            continue;
        }
        for target in &e.policies {
            let Some(policy) = set.get(&target.name) else {
                continue;
            };
            if let Some(why) = cannot_apply(e, policy) {
                out.push(warning(
                    e,
                    format!(
                        "exception {:?} can never apply to policy {:?}: {why}",
                        e.info.name, policy.name
                    ),
                    "delete the exception (or that entry of spec.policies), or fix its match",
                ));
            }
        }
    }
    out
}

/// The warnings of [`review`] that fell due after `since`, up to `now`: exceptions that
/// entered their last [`EXPIRY_WARNING_DAYS`] or expired in between. A server that runs for
/// weeks logs these as time passes (a load logs the whole review).
pub fn due_between(set: &PolicySet, since: Timestamp, now: Timestamp) -> Vec<Diagnostic> {
    let between = |t: Timestamp| since < t && t <= now;
    set.exceptions
        .iter()
        .filter(|e| {
            between(e.info.expires) || between(e.info.expires.plus_days(-EXPIRY_WARNING_DAYS))
        })
        .filter_map(|e| expiry_warning(e, now))
        .collect()
}

/// The warning about an exception that has expired at `now`, or expires within
/// [`EXPIRY_WARNING_DAYS`].
fn expiry_warning(e: &CompiledException, now: Timestamp) -> Option<Diagnostic> {
    let info = &e.info;
    if !e.in_force(now) {
        return Some(warning(
            e,
            format!(
                "exception {:?} (owner {}) expired at {}: it has no effect",
                info.name, info.owner, info.expires
            ),
            "delete it, or agree a new `expires` with its owner; the findings it excepted deny or warn again",
        ));
    }
    if info.expires > now.plus_days(EXPIRY_WARNING_DAYS) {
        return None;
    }
    let hours = (info.expires.unix() - now.unix()) / 3600;
    let left = if hours >= 48 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} hours")
    };
    Some(warning(
        e,
        format!(
            "exception {:?} (owner {}) expires at {}, in {left}",
            info.name, info.owner, info.expires
        ),
        "from then on the findings it excepts deny or warn again: fix the workloads, or agree a new `expires` with the owner",
    ))
}

/// The exceptions in force at `now` that excepted no finding of what was judged, in load
/// order: `used` tells whether the exception of that name excepted one.
pub fn unused(
    set: &PolicySet,
    now: Timestamp,
    used: impl Fn(&str) -> bool,
) -> Vec<Arc<CompiledException>> {
    set.exceptions
        .iter()
        .filter(|e| e.in_force(now) && !used(&e.info.name))
        .cloned()
        .collect()
}

/// The warning about an exception in force that excepted no finding of the `count` objects
/// judged (`what`: `objects audited`, `live workloads`). The same words in `audit` and the
/// reports.
pub fn unused_warning(e: &CompiledException, count: usize, what: &str) -> Diagnostic {
    warning(
        e,
        format!(
            "exception {:?} (owner {}, expires {}) matched nothing among the {count} {what}: it excepted no finding",
            e.info.name, e.info.owner, e.info.expires
        ),
        "if the workloads it was made for are fixed or gone, delete it; a run over only part of what it covers cannot tell",
    )
}

/// Why the exception can except no finding of `policy`, when that is certain without seeing a
/// workload: the policy is off at every step of its schedule, or it selects none of the
/// exception's kinds, or none of the namespaces the exception names (literal names only).
fn cannot_apply(e: &CompiledException, policy: &CompiledPolicy) -> Option<String> {
    if policy.strictest_mode() == Mode::Off {
        return Some("the policy is off".to_owned());
    }
    let m = &e.match_;
    let kinds = super::selected_kinds(&policy.match_);
    if !m.kinds.is_empty() && !m.kinds.iter().any(|k| kinds.contains(k)) {
        return Some(format!(
            "the policy selects none of its kinds ({})",
            m.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let literal =
        |patterns: &[String]| !patterns.is_empty() && patterns.iter().all(|p| !p.contains('*'));
    if literal(&m.namespaces) {
        let selected = |ns: &str| {
            let kind = m.kinds.first().copied().unwrap_or(kinds[0]);
            // Only the policy's namespace filters decide here: a subject without labels would
            // make its selectors look stricter than they are.
            let subject = Subject {
                kind,
                namespace: Some(ns),
                name: "",
                labels: None,
                namespace_labels: super::select::NamespaceLabels::NameOnly,
            };
            policy.match_.namespaces.as_ref().is_none_or(|f| {
                (f.include.is_empty() || f.include.iter().any(|p| pattern_matches(p, ns)))
                    && !f.exclude.iter().any(|p| pattern_matches(p, ns))
            }) && !policy.exclude.as_ref().is_some_and(|x| {
                x.names.is_empty()
                    && x.namespace_selector.is_none()
                    && x.object_selector.is_none()
                    && (x.kinds.is_empty() || x.kinds.contains(&subject.kind))
                    && x.namespaces.iter().any(|p| pattern_matches(p, ns))
            })
        };
        if !m.namespaces.iter().any(|ns| selected(ns)) {
            return Some(format!(
                "the policy selects none of its namespaces ({})",
                m.namespaces.join(", ")
            ));
        }
    }
    None
}
