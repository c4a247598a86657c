//! Compilation: turns a parsed [`PolicyDocument`] into a [`CompiledPolicy`], checking what
//! serde cannot (names, label syntax, selectors, container templates) and pre-rendering
//! sidecars and label templates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use serde_json::Value;

use crate::json::SharedValue;

use std::sync::Arc;

use super::model::{
    API_TOKEN_PATH, API_VERSION, DefaultLabels, EXCEPTION_KIND, ExceptionDocument, Exclude,
    InjectSidecar, KIND, LabelSelector, Match, MetadataTarget, NO_API_TOKEN_VOLUME, PolicyDocument,
    Rule, ScheduleStep, SelectorOperator, WorkloadKind,
};
use super::{
    CompiledDefaultLabels, CompiledException, CompiledPolicy, CompiledRule, CompiledSidecar,
    ExceptionInfo, Source,
};

/// One piece of a label or annotation value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Text copied as is.
    Literal(String),
    /// `{{name}}`: the object's name.
    Name,
    /// `{{namespace}}`: the object's namespace.
    Namespace,
    /// `{{kind}}`: the object's kind (`Deployment`).
    Kind,
}

/// A parsed value template such as `"{{namespace}}-{{name}}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<TemplateSegment>);

impl Template {
    /// Parses `{{name}}`, `{{namespace}}` and `{{kind}}` references (spaces inside the braces
    /// allowed). Any other `{{...}}` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(TemplateSegment::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed '{{{{' in {text:?}"))?;
            segments.push(match after[..end].trim() {
                "name" => TemplateSegment::Name,
                "namespace" => TemplateSegment::Namespace,
                "kind" => TemplateSegment::Kind,
                other => {
                    return Err(format!(
                        "unknown reference '{{{{{other}}}}}' in {text:?}: use {{{{name}}}}, {{{{namespace}}}} or {{{{kind}}}}"
                    ));
                }
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(TemplateSegment::Literal(rest.to_owned()));
        }
        Ok(Template(segments))
    }

    /// Whether the template has no references (its value is fixed).
    pub fn is_literal(&self) -> bool {
        self.0
            .iter()
            .all(|s| matches!(s, TemplateSegment::Literal(_)))
    }

    /// Renders the template; `None` when a referenced value is unknown (e.g. no namespace).
    pub fn render(&self, name: &str, namespace: Option<&str>, kind: &str) -> Option<String> {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                TemplateSegment::Literal(t) => out.push_str(t),
                TemplateSegment::Name if !name.is_empty() => out.push_str(name),
                TemplateSegment::Namespace => out.push_str(namespace?),
                TemplateSegment::Kind => out.push_str(kind),
                TemplateSegment::Name => return None,
            }
        }
        Some(out)
    }
}

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
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes name syntax.

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Checks a DNS-1123 label (`require-probes`): at most 63 lowercase alphanumerics or `-`,
/// starting and ending with an alphanumeric.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long, at most 63 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only lowercase letters, digits and '-'".to_owned());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (`example.com`): at most 253 characters, dot-separated
/// lowercase alphanumerics and `-`, starting and ending with an alphanumeric.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 253 {
        return Err(format!(
            "is {} characters long, at most 253 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err("may contain only lowercase letters, digits, '-' and '.'".to_owned());
    }
    if !s.starts_with(is_alnum) || !s.ends_with(is_alnum) {
        return Err("must start and end with a letter or digit".to_owned());
    }
    if s.split('.')
        .any(|part| part.is_empty() || part.starts_with('-') || part.ends_with('-'))
    {
        return Err("each dot-separated part must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

fn check_name_part(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.len() > 63 {
        return Err(format!(
            "{what} is {} characters long, at most 63 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| is_alnum(c) || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "{what} may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    if !s.starts_with(is_alnum) || !s.ends_with(is_alnum) {
        return Err(format!("{what} must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks a qualified name, the syntax of label and annotation keys: `name` or
/// `prefix/name`, where the prefix is a DNS-1123 subdomain and the name at most 63 letters,
/// digits, `-`, `_` or `.`, starting and ending with a letter or digit.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        None => check_name_part(s, "the name"),
        Some((prefix, name)) => {
            check_dns1123_subdomain(prefix).map_err(|e| format!("the prefix {prefix:?} {e}"))?;
            check_name_part(name, "the name after '/'")
        }
    }
}

/// Checks a label value: empty, or at most 63 letters, digits, `-`, `_` or `.`, starting and
/// ending with a letter or digit.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check_name_part(s, "a label value")
}

/// Checks a namespace or workload name pattern (`team-*`): a name where `*` matches any run
/// of characters. `subdomain` allows dots (workload names), otherwise a DNS-1123 label.
fn check_name_pattern(s: &str, subdomain: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("an empty pattern matches nothing".to_owned());
    }
    let max = if subdomain { 253 } else { 63 };
    if s.len() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if let Some(c) = s.chars().find(|&c| {
        !(c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || c == '*'
            || (subdomain && c == '.'))
    }) {
        return Err(format!(
            "contains {c:?}: names are lowercase letters, digits, '-'{} and the wildcard '*'",
            if subdomain { ", '.'" } else { "" }
        ));
    }
    Ok(())
}

/// Checks an image tag (`1.27.3`): at most 128 letters, digits, `_`, `.` or `-`, not starting
/// with `.` or `-`.
fn check_image_tag(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 128 {
        return Err("is longer than 128 characters".to_owned());
    }
    if !s
        .chars()
        .all(|c| is_alnum(c) || c == '_' || c == '.' || c == '-')
    {
        return Err("may contain only letters, digits, '_', '.' and '-' (write the tag without the image name and ':')".to_owned());
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err("must not start with '.' or '-'".to_owned());
    }
    Ok(())
}

const LABEL_KEY_HINT: &str = "label keys are `name` or `prefix/name`: the prefix a DNS subdomain (example.com), the name at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
const LABEL_VALUE_HINT: &str = "label values are empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
const NAMESPACE_PATTERN_HINT: &str =
    "write namespace names such as `team-a`, or patterns such as `team-*`";

// ---------------------------------------------------------------------------------------------
// Document checks.

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

/// Compiles one `PolicyException` document, checking what serde cannot (names, patterns,
/// selectors, required texts). Whether the policies and rules it names exist is checked by the
/// loader, which sees the whole set.
pub fn compile_exception(
    doc: ExceptionDocument,
    source: Source,
) -> Result<CompiledException, Vec<CompileError>> {
    let mut c = Checker::default();
    if doc.api_version != API_VERSION {
        c.error(
            FieldPath::keys(&["apiVersion"]),
            format!(
                "apiVersion is {:?}, expected {API_VERSION:?}",
                doc.api_version
            ),
            format!("write `apiVersion: {API_VERSION}`"),
        );
    }
    if doc.kind != EXCEPTION_KIND {
        c.error(
            FieldPath::keys(&["kind"]),
            format!("kind is {:?}, expected {EXCEPTION_KIND:?}", doc.kind),
            format!("write `kind: {EXCEPTION_KIND}`"),
        );
    }
    if let Err(e) = check_dns1123_label(&doc.metadata.name) {
        c.error(
            FieldPath::keys(&["metadata", "name"]),
            format!("exception name {:?} {e}", doc.metadata.name),
            "exception names are DNS-1123 labels such as `legacy-batch-probes`: lowercase letters, digits and '-', at most 63 characters",
        );
    }
    let spec = &doc.spec;
    for (field, value, hint) in [
        (
            "owner",
            &spec.owner,
            "name who answers for the exception: a team, a person or an address",
        ),
        (
            "reason",
            &spec.reason,
            "say why the exception is needed, for whoever reviews it",
        ),
    ] {
        if value.trim().is_empty() {
            c.error(
                FieldPath::keys(&["spec", field]),
                format!("{field} is empty"),
                hint,
            );
        }
    }
    if spec.ticket.as_deref().is_some_and(|t| t.trim().is_empty()) {
        c.error(
            FieldPath::keys(&["spec", "ticket"]),
            "ticket is empty",
            "name the ticket tracking the fix, or leave `ticket` out",
        );
    }
    let ppath = FieldPath::keys(&["spec", "policies"]);
    if spec.policies.is_empty() {
        c.error(
            ppath.clone(),
            "the exception names no policy",
            "list the policies it excepts, e.g. `policies: [{name: require-probes}]`",
        );
    }
    for (i, p) in spec.policies.iter().enumerate() {
        if spec.policies[..i].iter().any(|q| q.name == p.name) {
            c.error(
                ppath.index(i).key("name"),
                format!("policy {:?} is listed twice", p.name),
                "list each policy once, with all its excepted rules",
            );
        }
        for (j, r) in p.rules.iter().enumerate() {
            if !Rule::TYPE_NAMES.contains(&r.as_str()) {
                c.error(
                    ppath.index(i).key("rules").index(j),
                    format!("unknown rule type {r:?}"),
                    format!("rule types: {}", Rule::TYPE_NAMES.join(", ")),
                );
            }
        }
    }
    let mpath = FieldPath::keys(&["spec", "match"]);
    let m = &spec.match_;
    check_namespace_patterns(&mut c, &mpath.key("namespaces"), &m.namespaces);
    for (field, patterns) in [("names", &m.names), ("containers", &m.containers)] {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(err) = check_name_pattern(p, field == "names") {
                c.error(
                    mpath.key(field).index(i),
                    format!("name pattern {p:?} {err}"),
                    "write names such as `web`, or patterns such as `web-*`",
                );
            }
        }
    }
    if let Some(sel) = &m.namespace_selector {
        check_selector(&mut c, &mpath.key("namespaceSelector"), sel);
    }
    if let Some(sel) = &m.object_selector {
        check_selector(&mut c, &mpath.key("objectSelector"), sel);
    }
    let narrows = |s: &Option<LabelSelector>| {
        s.as_ref()
            .is_some_and(|s| !s.match_labels.is_empty() || !s.match_expressions.is_empty())
    };
    let names_workloads = m.namespaces.iter().any(|p| !matches_everything(p))
        || m.names.iter().any(|p| !matches_everything(p))
        || narrows(&m.namespace_selector)
        || narrows(&m.object_selector);
    if !names_workloads {
        c.error(
            mpath,
            "the exception does not say which workloads it covers: it would except every workload",
            "set `namespaces`, `names`, `namespaceSelector` or `objectSelector` (not just `*`); to relax a policy everywhere, change its mode instead",
        );
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(CompiledException {
        info: Arc::new(ExceptionInfo {
            name: doc.metadata.name,
            owner: spec.owner.trim().to_owned(),
            reason: spec.reason.trim().to_owned(),
            expires: spec.expires,
            ticket: spec.ticket.as_deref().map(|t| t.trim().to_owned()),
        }),
        policies: doc.spec.policies,
        match_: doc.spec.match_,
        source,
    })
}

fn check_namespace_patterns(c: &mut Checker, path: &FieldPath, patterns: &[String]) {
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
fn matches_everything(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.chars().all(|c| c == '*')
}

/// Whether every name `inner` matches is also matched by one of `outer`.
fn covered_by(inner: &str, outer: &[String]) -> bool {
    // An outer pattern matching the inner pattern read literally (its '*' as characters) matches
    // every expansion of it: the inner '*'s can only be absorbed by outer '*'s.
    outer
        .iter()
        .any(|o| super::select::pattern_matches(o, inner))
}

fn check_match(c: &mut Checker, m: &Match) {
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

fn check_exclude(c: &mut Checker, e: &Exclude, selected: &[WorkloadKind], m: &Match) {
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

fn check_label_key(c: &mut Checker, path: FieldPath, key: &str) {
    if let Err(e) = check_qualified_name(key) {
        c.error(
            path,
            format!("invalid label key {key:?}: {e}"),
            LABEL_KEY_HINT,
        );
    }
}

fn check_selector(c: &mut Checker, path: &FieldPath, sel: &LabelSelector) {
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

// ---------------------------------------------------------------------------------------------
// Rules.

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
        Rule::InjectSidecar(s) => compile_sidecar(c, &s, path, raw),
        Rule::DefaultLabels(d) => compile_default_labels(c, &d, path),
    };
    (c.errors.len() == before).then_some(compiled)
}

/// Fields of `original` (the file's YAML as JSON) that `typed` (the same value after a trip
/// through the Kubernetes types) lost: unknown or misspelled fields Kubernetes types ignore.
fn dropped_fields(original: &Value, typed: &Value, path: &FieldPath, out: &mut Vec<FieldPath>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                match t.get(k) {
                    None => out.push(path.key(k)),
                    Some(tv) => dropped_fields(v, tv, &path.key(k), out),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                dropped_fields(ov, tv, &path.index(i), out);
            }
        }
        _ => {}
    }
}

/// Every string inside `value` that contains a `{{` template reference, with its path.
fn template_strings(value: &Value, path: &FieldPath, out: &mut Vec<FieldPath>) {
    match value {
        Value::String(s) if s.contains("{{") => out.push(path.clone()),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| template_strings(v, &path.key(k), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| template_strings(v, &path.index(i), out)),
        _ => {}
    }
}

fn check_unknown_fields(
    c: &mut Checker,
    raw: Option<&Value>,
    typed: &Value,
    path: &FieldPath,
    schema_for: fn() -> schemars::Schema,
) {
    let Some(raw) = raw else { return };
    let mut dropped = Vec::new();
    dropped_fields(raw, typed, path, &mut dropped);
    if dropped.is_empty() {
        return;
    }
    let schema = schema_for();
    for field in dropped {
        let (parent, name) = match field.0.split_last() {
            Some((PathSegment::Key(k), parent)) => (parent, k.as_str()),
            _ => continue,
        };
        let relative = &parent[path.0.len()..];
        let suggestion = known_properties(schema.as_value(), relative)
            .and_then(|known| closest(name, &known))
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default();
        c.error(
            field.clone(),
            format!("unknown field `{name}`: Kubernetes would ignore it silently"),
            format!("{suggestion}check the spelling against `kubectl explain pod.spec.containers` (field names are camelCase)"),
        );
    }
}

/// The property names the JSON Schema allows at `path` (relative to the schema's root).
fn known_properties(root: &Value, path: &[PathSegment]) -> Option<Vec<String>> {
    fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                    Some(n) => node = n,
                    None => break,
                },
                None => break,
            }
        }
        node
    }
    let mut node = resolve(root, root);
    for seg in path {
        node = match seg {
            PathSegment::Key(k) => node.get("properties")?.get(k)?,
            PathSegment::Index(_) => node.get("items")?,
        };
        node = resolve(root, node);
    }
    let props = node.get("properties")?.as_object()?;
    Some(props.keys().cloned().collect())
}

/// The known name closest to a misspelled one (case-insensitive equal, or edit distance <= 2).
fn closest(name: &str, known: &[String]) -> Option<String> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| {
            let d = if k.eq_ignore_ascii_case(name) {
                0
            } else {
                distance(&name.to_ascii_lowercase(), &k.to_ascii_lowercase())
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn compile_sidecar(
    c: &mut Checker,
    s: &InjectSidecar,
    path: &FieldPath,
    raw: Option<&Value>,
) -> CompiledRule {
    let cpath = path.key("container");
    let typed_container = to_json(&s.container);
    check_unknown_fields(
        c,
        raw.and_then(|r| r.get("container")),
        &typed_container,
        &cpath,
        || schemars::schema_for!(Container),
    );
    for (i, v) in s.volumes.iter().enumerate() {
        check_unknown_fields(
            c,
            raw.and_then(|r| r.pointer(&format!("/volumes/{i}"))),
            &to_json(v),
            &path.key("volumes").index(i),
            || schemars::schema_for!(Volume),
        );
    }
    for (i, m) in s.volume_mounts.iter().enumerate() {
        check_unknown_fields(
            c,
            raw.and_then(|r| r.pointer(&format!("/volumeMounts/{i}"))),
            &to_json(m),
            &path.key("volumeMounts").index(i),
            || schemars::schema_for!(VolumeMount),
        );
    }

    let container = &s.container;
    if let Err(e) = check_dns1123_label(&container.name) {
        c.error(
            cpath.key("name"),
            format!("container name {:?} {e}", container.name),
            "container names are DNS-1123 labels such as `log-shipper`",
        );
    }
    if container
        .image
        .as_deref()
        .is_none_or(|i| i.trim().is_empty())
    {
        c.error(
            cpath.key("image"),
            "the sidecar container has no image",
            "set `image:` to a pinned image such as `fluent/fluent-bit:3.2.4`",
        );
    }
    match (s.native_sidecar, container.restart_policy.as_deref()) {
        (_, None) | (true, Some("Always")) => {}
        (true, Some(other)) => c.error(
            cpath.key("restartPolicy"),
            format!("restartPolicy {other:?} on a native sidecar: only \"Always\" is valid"),
            "delete restartPolicy: nativeSidecar: true sets `restartPolicy: Always` itself",
        ),
        (false, Some(other)) => c.error(
            cpath.key("restartPolicy"),
            format!("restartPolicy {other:?} is only valid on init containers: the apiserver would reject every injected Pod"),
            "delete restartPolicy and set `nativeSidecar: true` to inject a native sidecar",
        ),
    }

    let mut templated = Vec::new();
    template_strings(&typed_container, &cpath, &mut templated);
    for (i, v) in s.volumes.iter().enumerate() {
        template_strings(&to_json(v), &path.key("volumes").index(i), &mut templated);
    }
    for (i, m) in s.volume_mounts.iter().enumerate() {
        template_strings(
            &to_json(m),
            &path.key("volumeMounts").index(i),
            &mut templated,
        );
    }
    for p in templated {
        c.error(
            p,
            "`{{...}}` references are not expanded in sidecar templates",
            "template references ({{name}}, {{namespace}}, {{kind}}) work only in defaultLabels values; use the downward API (`valueFrom.fieldRef`) for per-Pod values",
        );
    }

    let vpath = path.key("volumes");
    let mut volume_names: Vec<&str> = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        if let Err(e) = check_dns1123_label(&v.name) {
            c.error(
                vpath.index(i).key("name"),
                format!("volume name {:?} {e}", v.name),
                "volume names are DNS-1123 labels such as `app-logs`",
            );
        }
        if volume_names.contains(&v.name.as_str()) {
            c.error(
                vpath.index(i).key("name"),
                format!("duplicate volume name {:?}", v.name),
                "give each volume a distinct name",
            );
        }
        volume_names.push(&v.name);
    }
    let check_mounts = |c: &mut Checker, mounts: &[VolumeMount], mpath: &FieldPath, whose: &str| {
        let mut paths: Vec<&str> = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            let p = mpath.index(i);
            if !volume_names.contains(&m.name.as_str()) {
                c.error(
                    p.key("name"),
                    format!(
                        "{whose} mounts volume {:?}, which the rule's `volumes` do not define: the apiserver would reject every injected Pod",
                        m.name
                    ),
                    format!(
                        "add a volume named {:?} to the rule's `volumes`, or mount one of: {}",
                        m.name,
                        if volume_names.is_empty() { "(none defined)".to_owned() } else { volume_names.join(", ") }
                    ),
                );
            }
            if m.mount_path.is_empty() {
                c.error(
                    p.key("mountPath"),
                    "mountPath is empty",
                    "set an absolute path such as /var/log/app",
                );
            } else if m.mount_path.split('/').any(|part| part == "..") {
                c.error(
                    p.key("mountPath"),
                    format!("mountPath {:?} contains '..'", m.mount_path),
                    "use an absolute path without '..'",
                );
            }
            if paths.contains(&m.mount_path.as_str()) {
                c.error(
                    p.key("mountPath"),
                    format!("mountPath {:?} is mounted twice", m.mount_path),
                    "give each mount its own path",
                );
            }
            paths.push(&m.mount_path);
        }
    };
    check_mounts(
        c,
        &s.volume_mounts,
        &path.key("volumeMounts"),
        "an app container",
    );
    check_mounts(
        c,
        container.volume_mounts.as_deref().unwrap_or_default(),
        &cpath.key("volumeMounts"),
        "the sidecar",
    );
    if let Some(key) = &s.opt_out_annotation
        && let Err(e) = check_qualified_name(key)
    {
        c.error(
            path.key("optOutAnnotation"),
            format!("invalid annotation key {key:?}: {e}"),
            "annotation keys have label key syntax, e.g. `portcullis.dev/inject-log-shipper`",
        );
    }

    let mut rendered = container.clone();
    if s.native_sidecar {
        rendered.restart_policy = Some("Always".to_owned());
    }
    let mut volumes: Vec<(String, Value)> = s
        .volumes
        .iter()
        .map(|v| (v.name.clone(), to_json(v)))
        .collect();
    // No API token unless the policy asks for one (or the template mounts something there).
    let mounts_token_path = rendered
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path.trim_end_matches('/') == API_TOKEN_PATH);
    if !s.service_account_token && !mounts_token_path {
        rendered.volume_mounts.get_or_insert_with(Vec::new).push(
            k8s_openapi::api::core::v1::VolumeMount {
                name: NO_API_TOKEN_VOLUME.to_owned(),
                mount_path: API_TOKEN_PATH.to_owned(),
                read_only: Some(true),
                ..Default::default()
            },
        );
        if !volumes.iter().any(|(name, _)| name == NO_API_TOKEN_VOLUME) {
            volumes.push((
                NO_API_TOKEN_VOLUME.to_owned(),
                serde_json::json!({"emptyDir": {}, "name": NO_API_TOKEN_VOLUME}),
            ));
        }
    }
    CompiledRule::InjectSidecar(Box::new(CompiledSidecar {
        name: container.name.clone(),
        // A Container serializes to a JSON object.
        container: SharedValue::new(to_json(&rendered)),
        volumes: volumes
            .into_iter()
            .map(|(name, v)| (name, SharedValue::new(v)))
            .collect(),
        volume_mounts: s
            .volume_mounts
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.mount_path.clone(),
                    SharedValue::new(to_json(m)),
                )
            })
            .collect(),
        native_sidecar: s.native_sidecar,
        target: s.target,
        opt_out_annotation: s.opt_out_annotation.clone(),
    }))
}

/// Checks a label value template: literal values must be valid label values; templated ones
/// must be able to render to one.
fn check_label_template(template: &Template, value: &str) -> Result<(), String> {
    if template.is_literal() {
        return check_label_value(value);
    }
    let literal_len: usize = template
        .0
        .iter()
        .map(|s| match s {
            TemplateSegment::Literal(t) => t.len(),
            _ => 1,
        })
        .sum();
    if literal_len > 63 {
        return Err("is longer than 63 characters even with one-character references".to_owned());
    }
    for s in &template.0 {
        if let TemplateSegment::Literal(t) = s
            && let Some(ch) = t
                .chars()
                .find(|&ch| !(is_alnum(ch) || ch == '-' || ch == '_' || ch == '.'))
        {
            return Err(format!("contains {ch:?}, which label values cannot hold"));
        }
    }
    if let Some(TemplateSegment::Literal(t)) = template.0.first()
        && !t.starts_with(is_alnum)
    {
        return Err("starts with a character other than a letter or digit".to_owned());
    }
    if let Some(TemplateSegment::Literal(t)) = template.0.last()
        && !t.ends_with(is_alnum)
    {
        return Err("ends with a character other than a letter or digit".to_owned());
    }
    Ok(())
}

fn compile_default_labels(c: &mut Checker, d: &DefaultLabels, path: &FieldPath) -> CompiledRule {
    if d.labels.is_empty() && d.annotations.is_empty() {
        c.error(
            path.clone(),
            "the rule adds nothing: labels and annotations are both empty",
            "add `labels:` or `annotations:` entries, or delete the rule",
        );
    }
    if d.target.is_empty() {
        c.error(
            path.key("target"),
            "target is empty: the labels would be added nowhere",
            "use `target: [object, podTemplate]` (the default), `[object]` or `[podTemplate]`",
        );
    }
    const TEMPLATE_HINT: &str = "values may reference {{name}}, {{namespace}} and {{kind}}";
    let parse = |c: &mut Checker, field: &str, map: &BTreeMap<String, String>, labels: bool| {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let p = path.key(field).key(k);
            if let Err(e) = check_qualified_name(k) {
                c.error(
                    p.clone(),
                    format!(
                        "invalid {} key {k:?}: {e}",
                        if labels { "label" } else { "annotation" }
                    ),
                    if k.contains("{{") {
                        "keys cannot use {{...}} references; only values can".to_owned()
                    } else {
                        LABEL_KEY_HINT.to_owned()
                    },
                );
            }
            match Template::parse(v) {
                Ok(t) => {
                    if labels && let Err(e) = check_label_template(&t, v) {
                        c.error(
                            p,
                            format!("label value {v:?} {e}"),
                            format!("{LABEL_VALUE_HINT}; {TEMPLATE_HINT}"),
                        );
                    } else {
                        out.push((k.clone(), t));
                    }
                }
                Err(message) => c.error(p, message, TEMPLATE_HINT),
            }
        }
        out
    };
    let labels = parse(c, "labels", &d.labels, true);
    let annotations = parse(c, "annotations", &d.annotations, false);
    CompiledRule::DefaultLabels(CompiledDefaultLabels {
        labels,
        annotations,
        object: d.target.contains(&MetadataTarget::Object),
        pod_template: d.target.contains(&MetadataTarget::PodTemplate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("{{ namespace }}-{{name}}").expect("parse");
        assert_eq!(
            t.render("web", Some("shop"), "Deployment").as_deref(),
            Some("shop-web")
        );
        assert_eq!(t.render("web", None, "Deployment"), None);
        assert!(Template::parse("plain").expect("parse").is_literal());
        assert!(Template::parse("{{nam}}").is_err());
        assert!(Template::parse("{{name").is_err());
    }
}
