//! Selection: whether a policy's `match` and `exclude` blocks select a workload.

use std::collections::BTreeMap;

use super::model::{
    ExceptionMatch, Exclude, LabelSelector, LabelSelectorRequirement, Match, ScheduleStep,
    SelectorOperator, WorkloadKind,
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
    pub labels: Option<crate::json::Object<'a>>,
    /// What is known of the namespace's labels. `kubernetes.io/metadata.name` is always
    /// implied from [`Subject::namespace`].
    pub namespace_labels: NamespaceLabels<'a>,
}

/// What the caller knows of the labels of a workload's namespace. Selection always knows
/// `kubernetes.io/metadata.name` (the apiserver sets it from the name on every namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NamespaceLabels<'a> {
    /// Only the name: the webhook without cluster access, a manifest without its `Namespace`.
    /// Any other label is absent (`matchLabels`, `In`, `Exists` never match).
    #[default]
    NameOnly,
    /// The namespace's labels.
    Known(&'a BTreeMap<String, String>),
    /// Not known yet: the caller follows the cluster's namespaces, but this one has not reached
    /// it (it was created a moment ago). A selector on labels other than the name can then
    /// neither match nor fail: [`Selection::Maybe`].
    Pending,
}

/// Whether a policy selects a workload. `Maybe` only when the answer depends on namespace
/// labels that are not known yet ([`NamespaceLabels::Pending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Selection {
    /// Not selected.
    No,
    /// Selected or not, depending on labels not known yet.
    Maybe,
    /// Selected.
    Yes,
}

impl Selection {
    fn of(b: bool) -> Selection {
        if b { Selection::Yes } else { Selection::No }
    }

    /// Both hold (three-valued).
    pub fn and(self, other: Selection) -> Selection {
        self.min(other)
    }
}

impl std::ops::Not for Selection {
    type Output = Selection;

    /// The opposite (three-valued: not maybe is maybe).
    fn not(self) -> Selection {
        match self {
            Selection::No => Selection::Yes,
            Selection::Maybe => Selection::Maybe,
            Selection::Yes => Selection::No,
        }
    }
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

impl Labels for crate::json::Object<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(crate::json::Json::as_str)
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// The label the apiserver sets on every namespace, from its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespace labels with the apiserver's implied `kubernetes.io/metadata.name`.
struct KnownNamespaceLabels<'a> {
    name: Option<&'a str>,
    labels: Option<&'a BTreeMap<String, String>>,
}

impl Labels for KnownNamespaceLabels<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        if key == NAMESPACE_NAME_LABEL {
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
        && selector
            .match_expressions
            .iter()
            .all(|req| requirement_holds(req, labels.label(&req.key)))
}

fn requirement_holds(req: &LabelSelectorRequirement, value: Option<&str>) -> bool {
    match req.operator {
        SelectorOperator::In => value.is_some_and(|v| req.values.iter().any(|x| x == v)),
        SelectorOperator::NotIn => value.is_none_or(|v| !req.values.iter().any(|x| x == v)),
        SelectorOperator::Exists => value.is_some(),
        SelectorOperator::DoesNotExist => value.is_none(),
    }
}

/// Whether a namespace selector selects the subject's namespace. With
/// [`NamespaceLabels::Pending`] only requirements on the name label are decided; any other
/// requirement makes the answer `Maybe` (unless a decided one already fails).
fn namespace_selector_selects(selector: &LabelSelector, subject: &Subject<'_>) -> Selection {
    let labels = match subject.namespace_labels {
        NamespaceLabels::NameOnly => None,
        NamespaceLabels::Known(l) => Some(l),
        NamespaceLabels::Pending => {
            let name = subject.namespace;
            let by_name = |key: &str, decide: &dyn Fn(Option<&str>) -> bool| {
                if key == NAMESPACE_NAME_LABEL {
                    Selection::of(decide(name))
                } else {
                    Selection::Maybe
                }
            };
            let labels = selector
                .match_labels
                .iter()
                .map(|(k, v)| by_name(k, &|value: Option<&str>| value == Some(v.as_str())));
            let expressions = selector
                .match_expressions
                .iter()
                .map(|req| by_name(&req.key, &|value| requirement_holds(req, value)));
            return labels
                .chain(expressions)
                .fold(Selection::Yes, Selection::and);
        }
    };
    let known = KnownNamespaceLabels {
        name: subject.namespace,
        labels,
    };
    Selection::of(selector_matches(selector, &known))
}

fn object_labels<'s>(subject: &'s Subject<'_>) -> &'s dyn Labels {
    match &subject.labels {
        Some(l) => l,
        None => &NoLabels,
    }
}

/// Whether a `match` block selects the subject.
pub fn match_selects(m: &Match, subject: &Subject<'_>) -> Selection {
    if !m.kinds.is_empty() && !m.kinds.contains(&subject.kind) {
        return Selection::No;
    }
    if let Some(ns) = &m.namespaces {
        let name = subject.namespace.unwrap_or("");
        if !ns.include.is_empty() && !any_pattern(&ns.include, name) {
            return Selection::No;
        }
        if any_pattern(&ns.exclude, name) {
            return Selection::No;
        }
    }
    if let Some(sel) = &m.object_selector
        && !selector_matches(sel, object_labels(subject))
    {
        return Selection::No;
    }
    match &m.namespace_selector {
        Some(sel) => namespace_selector_selects(sel, subject),
        None => Selection::Yes,
    }
}

/// Whether an `exclude` block takes the subject out (every field that is set must match).
pub fn exclude_selects(e: &Exclude, subject: &Subject<'_>) -> Selection {
    let decided = (e.kinds.is_empty() || e.kinds.contains(&subject.kind))
        && (e.namespaces.is_empty() || any_pattern(&e.namespaces, subject.namespace.unwrap_or("")))
        && (e.names.is_empty() || any_pattern(&e.names, subject.name))
        && e.object_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, object_labels(subject)));
    if !decided {
        return Selection::No;
    }
    match &e.namespace_selector {
        Some(sel) => namespace_selector_selects(sel, subject),
        None => Selection::Yes,
    }
}

/// Whether a schedule step selects a namespace (a step without `namespaces` and
/// `namespaceSelector` selects every namespace). Labels other than the name that are not known
/// are absent here: a caller with [`NamespaceLabels::Pending`] asks
/// [`super::CompiledPolicy::schedule_selects_by_label`] first.
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
            &KnownNamespaceLabels {
                name: namespace,
                labels: namespace_labels,
            },
        )
    })
}

/// Whether an exception's `match` takes in the subject (its `containers` aside: they narrow
/// findings, not workloads): `Maybe` only when that depends on namespace labels not known yet.
pub fn exception_selects(m: &ExceptionMatch, subject: &Subject<'_>) -> Selection {
    let decided = (m.kinds.is_empty() || m.kinds.contains(&subject.kind))
        && (m.namespaces.is_empty() || any_pattern(&m.namespaces, subject.namespace.unwrap_or("")))
        && (m.names.is_empty() || any_pattern(&m.names, subject.name))
        && m.object_selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, object_labels(subject)));
    if !decided {
        return Selection::No;
    }
    match &m.namespace_selector {
        Some(sel) => namespace_selector_selects(sel, subject),
        None => Selection::Yes,
    }
}

/// Whether a namespace selector reads a label other than the name (which every namespace
/// carries, so a cache is not needed for it).
pub fn selects_by_label(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .keys()
        .chain(selector.match_expressions.iter().map(|r| &r.key))
        .any(|k| k != NAMESPACE_NAME_LABEL)
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
        let yaml = |s: &str| -> LabelSelector {
            serde_json::from_value(crate::yaml::parse(s).expect("yaml")).expect("selector")
        };
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
            namespace_labels: NamespaceLabels::NameOnly,
        };
        let m: Match = serde_json::from_value(
            crate::yaml::parse(
                "namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}",
            )
            .expect("yaml"),
        )
        .expect("match");
        assert_eq!(match_selects(&m, &subject), Selection::Yes);
    }
}
