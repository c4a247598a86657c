//! CEL source text: literals, name patterns, label selectors and the workload selection of
//! policies, exceptions and schedule steps, written as expressions the API server evaluates.
//!
//! Everything here only uses what a v1.32 API server offers in admission policies: the
//! standard macros, the `strings` extension (`join`, `lastIndexOf`, `substring`, `trim`,
//! `lowerAscii`), and Kubernetes' list (`indexOf`, `sum`) and regex (`find`) libraries. The
//! `lists` extension (`flatten`, `range`) and two-variable comprehensions arrived later.

use serde_json::Value;

use crate::policy::model::{
    ExceptionMatch, Exclude, LabelSelector, Match, ScheduleStep, SelectorOperator, WorkloadKind,
};

/// A CEL string literal (single-quoted, escaped).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A CEL list literal of strings.
pub fn string_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

/// A JSON value as a CEL literal. Maps and lists hold `dyn(...)` values, so literals mixing
/// strings, numbers and objects pass the API server's homogeneous-literal check.
pub fn json(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| format!("dyn({})", json(i))).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: dyn({})", string(k), json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Whether a name pattern uses the `*` wildcard.
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.contains('*')
}

/// An RE2 regular expression matching exactly what [`crate::policy::select::pattern_matches`]
/// matches: `*` is any run of characters, everything else literal.
pub fn pattern_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    for (i, part) in pattern.split('*').enumerate() {
        if i > 0 {
            out.push_str(".*");
        }
        for c in part.chars() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/' || c == ':' {
                out.push(c);
            } else {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out.push('$');
    out
}

/// `value` (a CEL string expression) matches one of the name patterns.
pub fn any_pattern(value: &str, patterns: &[String]) -> String {
    let exact: Vec<&String> = patterns.iter().filter(|p| !is_wildcard(p)).collect();
    let mut terms = Vec::new();
    if !exact.is_empty() {
        terms.push(format!("{value} in {}", string_list(&exact)));
    }
    terms.extend(
        patterns
            .iter()
            .filter(|p| is_wildcard(p))
            .map(|p| format!("{value}.matches({})", string(&pattern_regex(p)))),
    );
    or(&terms)
}

/// `a || b || ...`; `false` for none.
pub fn or(terms: &[String]) -> String {
    match terms {
        [] => "false".to_owned(),
        [one] => one.clone(),
        many => many
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" || "),
    }
}

/// `a && b && ...`; `true` for none.
pub fn and(terms: &[String]) -> String {
    match terms {
        [] => "true".to_owned(),
        [one] => one.clone(),
        many => many
            .iter()
            .map(|t| format!("({t})"))
            .collect::<Vec<_>>()
            .join(" && "),
    }
}

/// The object's labels (a map, empty when absent).
pub const OBJECT_LABELS: &str = "(has(object.metadata.labels) ? object.metadata.labels : {})";
/// The labels of the request's namespace, as the API server keeps them
/// (`kubernetes.io/metadata.name` always among them).
pub const NAMESPACE_LABELS: &str = "(namespaceObject != null && has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {})";
/// The request's namespace.
pub const NAMESPACE: &str = "request.namespace";
/// The kind of the request's object (`Deployment`).
pub const KIND: &str = "request.kind.kind";
/// The workload's name as Portcullis selects by it: `metadata.name`, or its `generateName`
/// when it has none yet.
pub const NAME: &str = "(has(object.metadata.name) && object.metadata.name != '' ? object.metadata.name : has(object.metadata.generateName) ? object.metadata.generateName : '')";

/// Whether the labels (a CEL map expression) satisfy a label selector, exactly as
/// [`crate::policy::select::selector_matches`] decides.
pub fn selector(labels: &str, sel: &LabelSelector) -> String {
    let mut terms: Vec<String> = sel
        .match_labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} in {labels} && {labels}[{k}] == {v}",
                k = string(k),
                v = string(v)
            )
        })
        .collect();
    terms.extend(sel.match_expressions.iter().map(|r| {
        let k = string(&r.key);
        let values = string_list(&r.values);
        match r.operator {
            SelectorOperator::In => format!("{k} in {labels} && {labels}[{k}] in {values}"),
            SelectorOperator::NotIn => {
                format!("!({k} in {labels}) || !({labels}[{k}] in {values})")
            }
            SelectorOperator::Exists => format!("{k} in {labels}"),
            SelectorOperator::DoesNotExist => format!("!({k} in {labels})"),
        }
    }));
    and(&terms)
}

/// The request's kind is one of `kinds`.
pub fn kind_in(kinds: &[WorkloadKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    format!("{KIND} in {}", string_list(&names))
}

/// The parts of a policy's `match` that the API server's `matchConstraints` cannot say
/// exactly: namespace name patterns with `*`, and the object selector (which the API server
/// would also match against the old object of an UPDATE; Portcullis looks at the new one).
/// Kinds, exact namespace names and the namespace selector become `matchConstraints`.
pub fn match_condition(m: &Match) -> Option<String> {
    let mut terms = Vec::new();
    if let Some(ns) = &m.namespaces {
        if ns.include.iter().any(|p| is_wildcard(p)) {
            terms.push(any_pattern(NAMESPACE, &ns.include));
        }
        let wild: Vec<String> = ns
            .exclude
            .iter()
            .filter(|p| is_wildcard(p))
            .cloned()
            .collect();
        if !wild.is_empty() {
            terms.push(format!("!({})", any_pattern(NAMESPACE, &wild)));
        }
    }
    if let Some(sel) = &m.object_selector {
        terms.push(selector(OBJECT_LABELS, sel));
    }
    (!terms.is_empty()).then(|| and(&terms))
}

/// Whether an `exclude` block takes the workload out (every field that is set must match).
pub fn exclude_selects(e: &Exclude) -> String {
    let mut terms = Vec::new();
    if !e.kinds.is_empty() {
        terms.push(kind_in(&e.kinds));
    }
    if !e.namespaces.is_empty() {
        terms.push(any_pattern(NAMESPACE, &e.namespaces));
    }
    if !e.names.is_empty() {
        terms.push(any_pattern(NAME, &e.names));
    }
    if let Some(sel) = &e.object_selector {
        terms.push(selector(OBJECT_LABELS, sel));
    }
    if let Some(sel) = &e.namespace_selector {
        terms.push(selector(NAMESPACE_LABELS, sel));
    }
    and(&terms)
}

/// Whether an exception's workload selection takes in the workload.
pub fn exception_selects(m: &ExceptionMatch) -> String {
    let mut terms = Vec::new();
    if !m.kinds.is_empty() {
        terms.push(kind_in(&m.kinds));
    }
    if !m.namespaces.is_empty() {
        terms.push(any_pattern(NAMESPACE, &m.namespaces));
    }
    if !m.names.is_empty() {
        terms.push(any_pattern(NAME, &m.names));
    }
    if let Some(sel) = &m.namespace_selector {
        terms.push(selector(NAMESPACE_LABELS, sel));
    }
    if let Some(sel) = &m.object_selector {
        terms.push(selector(OBJECT_LABELS, sel));
    }
    and(&terms)
}

/// Whether a schedule step selects the request's namespace (as
/// [`crate::policy::select::step_selects`] decides), `None` when it selects every namespace.
pub fn step_selects(step: &ScheduleStep) -> Option<String> {
    let mut terms = Vec::new();
    if let Some(ns) = &step.namespaces {
        if !ns.include.is_empty() && !ns.include.iter().all(|p| p == "*") {
            terms.push(any_pattern(NAMESPACE, &ns.include));
        }
        if !ns.exclude.is_empty() {
            terms.push(format!("!({})", any_pattern(NAMESPACE, &ns.exclude)));
        }
    }
    if let Some(sel) = &step.namespace_selector {
        terms.push(selector(NAMESPACE_LABELS, sel));
    }
    (!terms.is_empty()).then(|| and(&terms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(string("it's"), r"'it\'s'");
        assert_eq!(string(r"a\b"), r"'a\\b'");
        assert_eq!(string("a\nb"), r"'a\nb'");
        assert_eq!(string("\"x\""), "'\"x\"'");
    }

    /// Evaluates a boolean CEL expression with the `cel` crate (the same language the API
    /// server speaks for these standard functions).
    fn eval(expression: &str, vars: &[(&str, serde_json::Value)]) -> bool {
        let mut context = ::cel::Context::default();
        for (name, value) in vars {
            context.add_variable_from_value(*name, ::cel::to_value(value).expect("CEL value"));
        }
        let program = ::cel::Program::compile(expression)
            .unwrap_or_else(|e| panic!("{expression} does not compile: {e:?}"));
        match program.execute(&context) {
            Ok(::cel::Value::Bool(b)) => b,
            other => panic!("{expression}: {other:?}"),
        }
    }

    #[test]
    fn patterns_match_what_the_engine_matches() {
        use crate::policy::select::pattern_matches;
        let patterns = [
            "team-*", "*-prod", "a*b*c", "exact", "*", "x.y*", "we(ird)*",
        ];
        let values = [
            "team-a",
            "team-",
            "team",
            "shop-prod",
            "prod",
            "abc",
            "aXbYc",
            "acb",
            "exact",
            "exactly",
            "",
            "x.yz",
            "xayz",
            "we(ird)s",
            "weird",
        ];
        for p in patterns {
            for v in values {
                let want = pattern_matches(p, v);
                let got = eval(
                    &any_pattern("value", &[p.to_owned()]),
                    &[("value", serde_json::json!(v))],
                );
                assert_eq!(got, want, "pattern {p:?} on {v:?}");
            }
        }
    }

    #[test]
    fn selectors_match_what_the_engine_matches() {
        use crate::policy::model::LabelSelectorRequirement;
        use crate::policy::select::selector_matches;
        use std::collections::BTreeMap;
        let req = |key: &str, operator, values: &[&str]| LabelSelectorRequirement {
            key: key.to_owned(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        };
        let selectors = [
            LabelSelector {
                match_labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
                match_expressions: vec![],
            },
            LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![
                    req("tier", SelectorOperator::NotIn, &["batch", "jobs"]),
                    req("team", SelectorOperator::Exists, &[]),
                ],
            },
            LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![
                    req("env", SelectorOperator::In, &["prod", "staging"]),
                    req("legacy", SelectorOperator::DoesNotExist, &[]),
                ],
            },
            LabelSelector::default(),
        ];
        let label_sets: Vec<BTreeMap<String, String>> = [
            vec![],
            vec![("env", "prod")],
            vec![("env", "dev"), ("team", "a")],
            vec![("tier", "batch"), ("team", "a")],
            vec![("tier", "web"), ("team", "a"), ("env", "staging")],
            vec![("env", "prod"), ("legacy", "")],
        ]
        .into_iter()
        .map(|l| {
            l.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
        for sel in &selectors {
            for labels in &label_sets {
                let want = selector_matches(sel, labels);
                let got = eval(
                    &selector("labels", sel),
                    &[("labels", serde_json::json!(labels))],
                );
                assert_eq!(got, want, "{sel:?} on {labels:?}");
            }
        }
    }

    #[test]
    fn patterns_become_anchored_regexes() {
        assert_eq!(pattern_regex("team-*"), "^team-.*$");
        assert_eq!(pattern_regex("a.b*c"), "^a\\.b.*c$");
        assert_eq!(pattern_regex("*"), "^.*$");
    }
}
