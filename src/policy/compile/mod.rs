//! Compilation: turns a parsed policy document into a [`CompiledPolicy`], checking what serde
//! cannot and reporting every problem at its [`FieldPath`]. What a document holds is compiled
//! beside it: workload selection (`selection.rs`), sidecars (`sidecar.rs`), default labels
//! (`default_labels.rs`), and `PolicyException` documents (`exception.rs`).

mod cel;
mod cel_lower;
mod default_labels;
mod exception;
mod fields;
mod selection;
mod sidecar;

use serde_json::Value;

use super::model::{API_VERSION, KIND, PolicyDocument, Rule, ScheduleStep};
use super::names::{check_dns1123_label, check_image_tag};
use super::{CompiledPolicy, CompiledRule, Source};
pub use cel_lower::unlowered;
pub use exception::compile_exception;
use selection::{
    check_exclude, check_label_key, check_match, check_namespace_patterns, check_selector,
    covered_by,
};

/// One step of a [`FieldPath`]: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A list index (0-based).
    Index(usize),
}

/// Where a field sits inside a policy document, e.g. `spec.rules[0].requireProbes`. Used for
/// messages and to find the field's line in the source text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    /// The path of the document root.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// A path from dotted keys, e.g. `FieldPath::keys(&["spec", "rules"])`.
    pub fn keys(keys: &[&str]) -> FieldPath {
        FieldPath(
            keys.iter()
                .map(|k| PathSegment::Key((*k).to_owned()))
                .collect(),
        )
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(PathSegment::Key(key.to_owned()));
        p
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(PathSegment::Index(index));
        p
    }

    /// The segments.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                PathSegment::Key(k)
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSegment::Key(k) => write!(f, "[{k:?}]")?,
                PathSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found while compiling one policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where in the document (`spec.rules[0].injectSidecar.container.name`).
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Where inside the field's value the problem is: 1-based (line, column) within a CEL
    /// expression. `None` for the field as a whole.
    pub at: Option<(usize, usize)>,
}

/// Collects every problem of one document.
#[derive(Default)]
struct Checker {
    errors: Vec<CompileError>,
}

impl Checker {
    fn error(&mut self, path: FieldPath, message: impl Into<String>, hint: impl Into<String>) {
        self.errors.push(CompileError {
            path,
            message: message.into(),
            hint: hint.into(),
            at: None,
        });
    }

    /// An error at a position inside the field's value (a CEL expression's line and column).
    fn error_at(
        &mut self,
        path: FieldPath,
        at: Option<(usize, usize)>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors.push(CompileError {
            path,
            message: message.into(),
            hint: hint.into(),
            at,
        });
    }
}

/// Compiles one document. Returns every problem found, not just the first.
///
/// Without the raw document, fields that the Kubernetes types of a sidecar template ignore
/// silently (misspellings) cannot be detected; [`compile_document_raw`] can.
pub fn compile_document(
    doc: PolicyDocument,
    source: Source,
) -> Result<CompiledPolicy, Vec<CompileError>> {
    compile_document_raw(doc, None, source)
}

/// Compiles one document, given also the document as parsed without a schema (`raw`), which
/// is compared with the typed sidecar templates to find fields they dropped. Returns every
/// problem found, not just the first.
pub fn compile_document_raw(
    doc: PolicyDocument,
    raw: Option<&Value>,
    source: Source,
) -> Result<CompiledPolicy, Vec<CompileError>> {
    let mut c = Checker::default();
    check_header(&mut c, &doc);
    let selected = super::selected_kinds(&doc.spec.match_);
    check_match(&mut c, &doc.spec.match_);
    if let Some(e) = &doc.spec.exclude {
        check_exclude(&mut c, e, &selected, &doc.spec.match_);
    }
    check_schedule(&mut c, &doc.spec.schedule);
    let rules_path = FieldPath::keys(&["spec", "rules"]);
    if doc.spec.rules.is_empty() {
        c.error(
            rules_path.clone(),
            "a policy needs at least one rule",
            format!(
                "add a rule, e.g. `rules: [{{requireProbes: {{}}}}]`; rule types: {}",
                Rule::TYPE_NAMES.join(", ")
            ),
        );
    }
    let mut rules = Vec::with_capacity(doc.spec.rules.len());
    for (i, rule) in doc.spec.rules.into_iter().enumerate() {
        let path = rules_path.index(i).key(rule.type_name());
        let raw_rule =
            raw.and_then(|r| r.pointer(&format!("/spec/rules/{i}/{}", rule.type_name())));
        if let Some(r) = compile_rule(&mut c, rule, &path, raw_rule) {
            rules.push(r);
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(CompiledPolicy {
        name: doc.metadata.name,
        description: doc.spec.description,
        mode: doc.spec.mode,
        schedule: doc.spec.schedule,
        match_: doc.spec.match_,
        exclude: doc.spec.exclude,
        rules,
        source,
    })
}

fn check_header(c: &mut Checker, doc: &PolicyDocument) {
    if doc.api_version != API_VERSION {
        c.error(
            FieldPath::keys(&["apiVersion"]),
            format!(
                "apiVersion is {:?}, expected {API_VERSION:?}",
                doc.api_version
            ),
            format!("write `apiVersion: {API_VERSION}`; a policy directory holds only Portcullis policies"),
        );
    }
    if doc.kind != KIND {
        c.error(
            FieldPath::keys(&["kind"]),
            format!("kind is {:?}, expected {KIND:?}", doc.kind),
            format!("write `kind: {KIND}`; a policy directory holds only Portcullis policies"),
        );
    }
    if let Err(e) = check_dns1123_label(&doc.metadata.name) {
        c.error(
            FieldPath::keys(&["metadata", "name"]),
            format!("policy name {:?} {e}", doc.metadata.name),
            "policy names are DNS-1123 labels such as `require-probes`: lowercase letters, digits and '-', at most 63 characters",
        );
    }
}

fn check_schedule(c: &mut Checker, steps: &[ScheduleStep]) {
    let path = FieldPath::keys(&["spec", "schedule"]);
    for (i, step) in steps.iter().enumerate() {
        let p = path.index(i);
        if let Some(prev) = i.checked_sub(1).map(|j| &steps[j])
            && step.from < prev.from
        {
            c.error(
                p.key("from"),
                format!(
                    "step starts at {} but the step before starts later, at {}: steps must be in chronological order",
                    step.from, prev.from
                ),
                "list the steps from the earliest `from` to the latest; the last step that has started and selects a namespace decides its mode",
            );
        }
        if let Some(ns) = &step.namespaces {
            check_namespace_patterns(c, &p.key("namespaces").key("include"), &ns.include);
            check_namespace_patterns(c, &p.key("namespaces").key("exclude"), &ns.exclude);
            if !ns.include.is_empty() && ns.include.iter().all(|i| covered_by(i, &ns.exclude)) {
                c.error(
                    p.key("namespaces"),
                    "every included namespace is also excluded: the step can never apply",
                    "remove the exclude patterns that cover the include list, or delete the step",
                );
            }
        }
        if let Some(sel) = &step.namespace_selector {
            check_selector(c, &p.key("namespaceSelector"), sel);
        }
    }
}

/// A value of the Kubernetes types as JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("k8s-openapi types always serialize to JSON")
}

fn compile_rule(
    c: &mut Checker,
    rule: Rule,
    path: &FieldPath,
    raw: Option<&Value>,
) -> Option<CompiledRule> {
    let before = c.errors.len();
    let compiled = match rule {
        Rule::RequireProbes(r) => {
            if !r.liveness && !r.readiness && !r.startup {
                c.error(
                    path.clone(),
                    "the rule requires no probe (liveness, readiness and startup are all false)",
                    "set at least one of liveness, readiness, startup to true, or delete the rule",
                );
            }
            CompiledRule::RequireProbes(r)
        }
        Rule::RequireResources(r) => {
            if r.requests.is_empty() && r.limits.is_empty() {
                c.error(
                    path.clone(),
                    "the rule requires nothing: both requests and limits are empty",
                    "list resources, e.g. `requests: [cpu, memory]`, or delete the rule (absent lists default to [cpu, memory])",
                );
            }
            for (field, list) in [("requests", &r.requests), ("limits", &r.limits)] {
                for (i, name) in list.iter().enumerate() {
                    if list[..i].contains(name) {
                        c.error(
                            path.key(field).index(i),
                            format!("{} is listed twice", name.as_str()),
                            "list each resource once",
                        );
                    }
                }
            }
            CompiledRule::RequireResources(r)
        }
        Rule::RequireImageTag(r) => {
            for (i, tag) in r.forbidden_tags.iter().enumerate() {
                if let Err(e) = check_image_tag(tag) {
                    c.error(
                        path.key("forbiddenTags").index(i),
                        format!("forbidden tag {tag:?} {e}"),
                        "list bare tags such as `latest` or `dev`",
                    );
                }
            }
            CompiledRule::RequireImageTag(r)
        }
        Rule::DisallowNamespaces(r) => {
            if r.namespaces.is_empty() {
                c.error(
                    path.key("namespaces"),
                    "the list of disallowed namespaces is empty: the rule does nothing",
                    "list namespaces, e.g. `namespaces: [default]`, or delete the rule",
                );
            }
            check_namespace_patterns(c, &path.key("namespaces"), &r.namespaces);
            CompiledRule::DisallowNamespaces(r)
        }
        Rule::RequireLabels(r) => {
            if r.labels.is_empty() {
                c.error(
                    path.key("labels"),
                    "the list of required labels is empty: the rule does nothing",
                    "list label keys, e.g. `labels: [app.kubernetes.io/name, team]`, or delete the rule",
                );
            }
            for (i, k) in r.labels.iter().enumerate() {
                check_label_key(c, path.key("labels").index(i), k);
                if r.labels[..i].contains(k) {
                    c.error(
                        path.key("labels").index(i),
                        format!("label {k:?} is listed twice"),
                        "list each label key once",
                    );
                }
            }
            if r.target.is_empty() {
                c.error(
                    path.key("target"),
                    "target is empty: the rule looks nowhere",
                    "use `target: [object]`, `[podTemplate]` or both, or leave it out (default [object])",
                );
            }
            CompiledRule::RequireLabels(r)
        }
        Rule::InjectSidecar(s) => sidecar::compile(c, &s, path, raw),
        Rule::DefaultLabels(d) => default_labels::compile(c, &d, path),
        Rule::Cel(r) => cel::compile(c, &r, path),
    };
    (c.errors.len() == before).then_some(compiled)
}
