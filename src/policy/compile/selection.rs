//! Checks of which workloads a policy or exception selects: namespace and name patterns,
//! `match`, `exclude`, and label selectors (including ones that can never match).

use super::{Checker, FieldPath};
use crate::policy::model::{Exclude, LabelSelector, Match, SelectorOperator, WorkloadKind};
use crate::policy::names::{
    LABEL_KEY_HINT, LABEL_VALUE_HINT, NAMESPACE_PATTERN_HINT, check_label_value,
    check_name_pattern, check_qualified_name,
};

pub(super) fn check_namespace_patterns(c: &mut Checker, path: &FieldPath, patterns: &[String]) {
    for (i, p) in patterns.iter().enumerate() {
        if let Err(e) = check_name_pattern(p, false) {
            c.error(
                path.index(i),
                format!("namespace pattern {p:?} {e}"),
                NAMESPACE_PATTERN_HINT,
            );
        }
    }
}

/// Whether a pattern that is all `*` (matches every name).
pub(super) fn matches_everything(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.chars().all(|c| c == '*')
}

/// Whether every name `inner` matches is also matched by one of `outer`.
pub(super) fn covered_by(inner: &str, outer: &[String]) -> bool {
    // An outer pattern matching the inner pattern read literally (its '*' as characters) matches
    // every expansion of it: the inner '*'s can only be absorbed by outer '*'s.
    outer
        .iter()
        .any(|o| crate::policy::select::pattern_matches(o, inner))
}

pub(super) fn check_match(c: &mut Checker, m: &Match) {
    let path = FieldPath::keys(&["spec", "match"]);
    if let Some(ns) = &m.namespaces {
        let ns_path = path.key("namespaces");
        check_namespace_patterns(c, &ns_path.key("include"), &ns.include);
        check_namespace_patterns(c, &ns_path.key("exclude"), &ns.exclude);
        let all_excluded = if ns.include.is_empty() {
            ns.exclude.iter().any(|p| matches_everything(p))
        } else {
            ns.include.iter().all(|i| covered_by(i, &ns.exclude))
        };
        if all_excluded {
            c.error(
                ns_path,
                "every included namespace is also excluded: the policy can never apply",
                "remove the exclude patterns that cover the include list, or set `mode: off` to disable the policy",
            );
        }
    }
    if let Some(sel) = &m.namespace_selector {
        check_selector(c, &path.key("namespaceSelector"), sel);
    }
    if let Some(sel) = &m.object_selector {
        check_selector(c, &path.key("objectSelector"), sel);
    }
}

pub(super) fn check_exclude(c: &mut Checker, e: &Exclude, selected: &[WorkloadKind], m: &Match) {
    let path = FieldPath::keys(&["spec", "exclude"]);
    if *e == Exclude::default() {
        c.error(
            path,
            "an exclude block with no field set would exclude every workload",
            "set kinds, namespaces, names, namespaceSelector or objectSelector (all set fields must match), or delete the exclude block",
        );
        return;
    }
    check_namespace_patterns(c, &path.key("namespaces"), &e.namespaces);
    for (i, p) in e.names.iter().enumerate() {
        if let Err(err) = check_name_pattern(p, true) {
            c.error(
                path.key("names").index(i),
                format!("name pattern {p:?} {err}"),
                "write workload names such as `web`, or patterns such as `web-*`",
            );
        }
    }
    if let Some(sel) = &e.namespace_selector {
        check_selector(c, &path.key("namespaceSelector"), sel);
    }
    if let Some(sel) = &e.object_selector {
        check_selector(c, &path.key("objectSelector"), sel);
    }
    let unrestricted = |s: &Option<LabelSelector>| {
        s.as_ref()
            .is_none_or(|s| s.match_labels.is_empty() && s.match_expressions.is_empty())
    };
    let kinds_total = e.kinds.is_empty() || selected.iter().all(|k| e.kinds.contains(k));
    let namespaces_total = e.namespaces.is_empty()
        || e.namespaces.iter().any(|p| matches_everything(p))
        || m.namespaces.as_ref().is_some_and(|ns| {
            !ns.include.is_empty() && ns.include.iter().all(|i| covered_by(i, &e.namespaces))
        });
    let names_total = e.names.is_empty() || e.names.iter().any(|p| matches_everything(p));
    if kinds_total
        && namespaces_total
        && names_total
        && unrestricted(&e.namespace_selector)
        && unrestricted(&e.object_selector)
    {
        c.error(
            path,
            "the exclude block takes out every workload the policy matches: the policy can never apply",
            "narrow the exclude block, or set `mode: off` to disable the policy",
        );
    }
}

pub(super) fn check_label_key(c: &mut Checker, path: FieldPath, key: &str) {
    if let Err(e) = check_qualified_name(key) {
        c.error(
            path,
            format!("invalid label key {key:?}: {e}"),
            LABEL_KEY_HINT,
        );
    }
}

pub(super) fn check_selector(c: &mut Checker, path: &FieldPath, sel: &LabelSelector) {
    use std::collections::{BTreeMap, BTreeSet};

    for (k, v) in &sel.match_labels {
        let p = path.key("matchLabels").key(k);
        check_label_key(c, p.clone(), k);
        if let Err(e) = check_label_value(v) {
            c.error(
                p,
                format!("invalid label value {v:?}: {e}"),
                LABEL_VALUE_HINT,
            );
        }
    }
    /// What the selector demands of one key.
    #[derive(Default)]
    struct KeyConstraint {
        /// Values allowed by matchLabels and `In` (intersection); `None`: unconstrained.
        allowed: Option<BTreeSet<String>>,
        not_in: BTreeSet<String>,
        exists: bool,
        does_not_exist: bool,
    }
    let mut keys: BTreeMap<&str, KeyConstraint> = BTreeMap::new();
    for (k, v) in &sel.match_labels {
        let kc = keys.entry(k).or_default();
        kc.allowed = Some(BTreeSet::from([v.clone()]));
        kc.exists = true;
    }
    for (i, req) in sel.match_expressions.iter().enumerate() {
        let p = path.key("matchExpressions").index(i);
        check_label_key(c, p.key("key"), &req.key);
        match req.operator {
            SelectorOperator::In | SelectorOperator::NotIn => {
                if req.values.is_empty() {
                    c.error(
                        p.key("values"),
                        format!("operator {:?} needs at least one value", req.operator),
                        "list the label values, or use Exists / DoesNotExist to test only for the key",
                    );
                }
                for (j, v) in req.values.iter().enumerate() {
                    if let Err(e) = check_label_value(v) {
                        c.error(
                            p.key("values").index(j),
                            format!("invalid label value {v:?}: {e}"),
                            LABEL_VALUE_HINT,
                        );
                    }
                }
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist => {
                if !req.values.is_empty() {
                    c.error(
                        p.key("values"),
                        format!("operator {:?} takes no values", req.operator),
                        "delete `values`, or use In / NotIn to compare values",
                    );
                }
            }
        }
        let kc = keys.entry(&req.key).or_default();
        match req.operator {
            SelectorOperator::In => {
                let set: BTreeSet<String> = req.values.iter().cloned().collect();
                kc.allowed = Some(match kc.allowed.take() {
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                    None => set,
                });
                kc.exists = true;
            }
            SelectorOperator::NotIn => kc.not_in.extend(req.values.iter().cloned()),
            SelectorOperator::Exists => kc.exists = true,
            SelectorOperator::DoesNotExist => kc.does_not_exist = true,
        }
    }
    for (key, kc) in keys {
        let reason = if kc.does_not_exist && kc.exists {
            Some(format!(
                "label {key:?} is required to be absent and present (or to have a value) at once"
            ))
        } else if let Some(allowed) = &kc.allowed {
            let remaining: Vec<&String> = allowed.difference(&kc.not_in).collect();
            if allowed.is_empty() {
                Some(format!(
                    "no value of label {key:?} satisfies both matchLabels and every In list"
                ))
            } else if remaining.is_empty() {
                Some(format!(
                    "every value matchLabels / In allow for label {key:?} is excluded by NotIn"
                ))
            } else {
                None
            }
        } else {
            None
        };
        if let Some(reason) = reason {
            c.error(
                path.clone(),
                format!("the selector can never match: {reason}"),
                "remove one of the contradicting requirements",
            );
        }
    }
}
