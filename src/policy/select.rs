//! Selection: whether a policy's `match` and `exclude` blocks select a workload.

use std::collections::BTreeMap;

use super::model::{
    ExceptionMatch, Exclude, LabelSelector, Match, ScheduleStep, SelectorOperator, WorkloadKind,
};

/// The facts about a workload that selection looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The workload kind.
    pub kind: WorkloadKind,
    /// Namespace (`None` for cluster-scoped requests and manifests without one).
    pub namespace: Option<&'a str>,
    /// The object's name, or its `generateName` prefix when no name is set yet.
    pub name: &'a str,
    /// The object's own labels.
    pub labels: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The namespace's labels, when known. `kubernetes.io/metadata.name` is always implied.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
}

/// A name pattern where `*` matches any run of characters.
pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let (last, middle) = rest.split_last().expect("a pattern with '*' has two parts");
    if !value.starts_with(first) {
        return false;
    }
    let mut remaining = &value[first.len()..];
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

fn any_pattern(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| pattern_matches(p, value))
}

/// Looks a label up in a set of labels.
pub trait Labels {
    /// The value of `key`, if present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for serde_json::Map<String, serde_json::Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Namespace labels with the apiserver's implied `kubernetes.io/metadata.name`.
struct NamespaceLabels<'a> {
    name: Option<&'a str>,
    labels: Option<&'a BTreeMap<String, String>>,
}

impl Labels for NamespaceLabels<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        if key == "kubernetes.io/metadata.name" {
            return self.name;
        }
        self.labels.and_then(|l| l.label(key))
    }
}

struct NoLabels;

impl Labels for NoLabels {
    fn label(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// Whether `labels` satisfy a Kubernetes label selector.
pub fn selector_matches(selector: &LabelSelector, labels: &dyn Labels) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.label(k) == Some(v.as_str()))
        && selector.match_expressions.iter().all(|req| {
            let value = labels.label(&req.key);
            match req.operator {
                SelectorOperator::In => value.is_some_and(|v| req.values.iter().any(|x| x == v)),
                SelectorOperator::NotIn => value.is_none_or(|v| !req.values.iter().any(|x| x == v)),
                SelectorOperator::Exists => value.is_some(),
                SelectorOperator::DoesNotExist => value.is_none(),
            }
        })
}

fn object_labels<'a>(subject: &Subject<'a>) -> &'a dyn Labels {
    match subject.labels {
        Some(l) => l,
        None => &NoLabels,
    }
}

fn namespace_labels<'a>(subject: &Subject<'a>) -> NamespaceLabels<'a> {
    NamespaceLabels {
        name: subject.namespace,
        labels: subject.namespace_labels,
    }
}

/// Whether a `match` block selects the subject.
pub fn match_selects(m: &Match, subject: &Subject<'_>) -> bool {
    if !m.kinds.is_empty() && !m.kinds.contains(&subject.kind) {
        return false;
    }
    if let Some(ns) = &m.namespaces {
        let name = subject.namespace.unwrap_or("");
        if !ns.include.is_empty() && !any_pattern(&ns.include, name) {
            return false;
        }
        if any_pattern(&ns.exclude, name) {
            return false;
        }
    }
    if let Some(sel) = &m.namespace_selector
        && !selector_matches(sel, &namespace_labels(subject))
    {
        return false;
    }
    if let Some(sel) = &m.object_selector
        && !selector_matches(sel, object_labels(subject))
    {
        return false;
    }
    true
}

/// Whether an `exclude` block takes the subject out (every field that is set must match).
pub fn exclude_selects(e: &Exclude, subject: &Subject<'_>) -> bool {
    (e.kinds.is_empty() || e.kinds.contains(&subject.kind))
        && (e.namespaces.is_empty() || any_pattern(&e.namespaces, subject.namespace.unwrap_or("")))
        && (e.names.is_empty() || any_pattern(&e.names, subject.name))
        && e.namespace_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, &namespace_labels(subject)))
        && e.object_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, object_labels(subject)))
}

/// Whether a schedule step selects a namespace (a step without `namespaces` and
/// `namespaceSelector` selects every namespace).
pub fn step_selects(
    step: &ScheduleStep,
    namespace: Option<&str>,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let name = namespace.unwrap_or("");
    step.namespaces.as_ref().is_none_or(|ns| {
        (ns.include.is_empty() || any_pattern(&ns.include, name)) && !any_pattern(&ns.exclude, name)
    }) && step.namespace_selector.as_ref().is_none_or(|sel| {
        selector_matches(
            sel,
            &NamespaceLabels {
                name: namespace,
                labels: namespace_labels,
            },
        )
    })
}

/// Whether an exception's `match` takes in the subject (its `containers` aside: they narrow
/// findings, not workloads).
pub fn exception_selects(m: &ExceptionMatch, subject: &Subject<'_>) -> bool {
    (m.kinds.is_empty() || m.kinds.contains(&subject.kind))
        && (m.namespaces.is_empty() || any_pattern(&m.namespaces, subject.namespace.unwrap_or("")))
        && (m.names.is_empty() || any_pattern(&m.names, subject.name))
        && m.namespace_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, &namespace_labels(subject)))
        && m.object_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, object_labels(subject)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("default", "default", true),
            ("default", "defaults", false),
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "tea", false),
            ("*-prod", "shop-prod", true),
            ("*-prod", "shop-dev", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("*", "", true),
        ];
        for (p, v, want) in cases {
            assert_eq!(pattern_matches(p, v), want, "{p} vs {v}");
        }
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> =
            [("team".to_owned(), "a".to_owned())].into_iter().collect();
        let yaml = |s: &str| -> LabelSelector { serde_yaml_ng::from_str(s).expect("selector") };
        assert!(selector_matches(&yaml("matchLabels: {team: a}"), &labels));
        assert!(!selector_matches(&yaml("matchLabels: {team: b}"), &labels));
        assert!(selector_matches(
            &yaml("matchExpressions: [{key: team, operator: In, values: [a, b]}]"),
            &labels
        ));
        assert!(selector_matches(
            &yaml("matchExpressions: [{key: tier, operator: NotIn, values: [x]}]"),
            &labels
        ));
        assert!(!selector_matches(
            &yaml("matchExpressions: [{key: team, operator: DoesNotExist}]"),
            &labels
        ));
        assert!(selector_matches(&yaml("{}"), &labels));
    }

    #[test]
    fn namespace_name_label_is_implied() {
        let subject = Subject {
            kind: WorkloadKind::Pod,
            namespace: Some("shop"),
            name: "p",
            labels: None,
            namespace_labels: None,
        };
        let m: Match = serde_yaml_ng::from_str(
            "namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}",
        )
        .expect("match");
        assert!(match_selects(&m, &subject));
    }
}
