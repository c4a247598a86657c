//! `portcullis test`: test files for a policy set. Each case is a request (operation, object,
//! old object, user, namespace labels, dry run, time) and what the set must decide: the
//! findings of the policies under test (a closed world by default), the verdict, the patch or
//! the object as admitted. Every case is also checked for idempotent mutation. The engine that
//! judges is the webhook's and `audit`'s, fed the same [`crate::engine::Request`].

pub mod model;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::audit::read::{Entry, read_str};
use crate::engine::{self, Decision, Finding, FindingKind, NamespaceLabels, Operation, Request};
use crate::policy::compile::FieldPath;
use crate::policy::load::{Diagnostic, field_line, parse_raw, read_typed};
use crate::policy::model::API_VERSION;
use crate::policy::{PolicySet, Timestamp};
use model::{ExpectedFinding, OtherFindings, TestCase, TestDocument, TestOperation, TestSpec};

/// One test document, read and checked, its files resolved.
#[derive(Debug, Clone)]
pub struct Suite {
    /// `metadata.name`.
    pub name: String,
    /// The test file.
    pub file: PathBuf,
    /// Line where the document starts.
    pub line: usize,
    /// The policies under test (empty: all).
    pub policies: Vec<String>,
    /// Mode overrides.
    pub modes: BTreeMap<String, crate::policy::model::Mode>,
    /// Default time of the cases.
    pub time: Option<Timestamp>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case, its objects read.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows.
    pub name: String,
    /// Line of the case in the test file.
    pub line: usize,
    /// The case as written (object files resolved into `object` / `old_object`).
    pub spec: TestCase,
    /// The expected JSON Patch, parsed.
    pub expected_patch: Option<json_patch::Patch>,
    /// The expected admitted object (inline or from its file).
    pub expected_object: Option<Value>,
}

impl Case {
    /// The engine request of this case at `time` (the case's own time wins).
    pub fn request(&self, time: Timestamp) -> Request<'_> {
        let c = &self.spec;
        let (object, old_object) = match c.operation {
            // The apiserver sends a DELETE with the stored object as `oldObject`.
            TestOperation::Delete => (None, c.object.as_ref().or(c.old_object.as_ref())),
            _ => (c.object.as_ref(), c.old_object.as_ref()),
        };
        let subject = object.or(old_object);
        fn str_at<'v>(v: Option<&'v Value>, ptr: &str) -> Option<&'v str> {
            v.and_then(|o| o.pointer(ptr)).and_then(Value::as_str)
        }
        let api_version = str_at(subject, "/apiVersion").unwrap_or("");
        Request {
            operation: match c.operation {
                TestOperation::Create => Operation::Create,
                TestOperation::Update => Operation::Update,
                TestOperation::Delete => Operation::Delete,
            },
            group: api_version.rsplit_once('/').map_or("", |(g, _)| g),
            version: api_version.rsplit_once('/').map_or(api_version, |(_, v)| v),
            kind: str_at(subject, "/kind").unwrap_or(""),
            resource: None,
            sub_resource: None,
            namespace: c
                .namespace
                .as_deref()
                .or_else(|| str_at(subject, "/metadata/namespace")),
            name: str_at(subject, "/metadata/name"),
            object: object.map(Into::into),
            old_object: old_object.map(Into::into),
            dry_run: c.dry_run,
            username: c.user_info.as_ref().map(|u| u.username.as_str()),
            namespace_labels: if c.namespace_labels.is_empty() {
                NamespaceLabels::NameOnly
            } else {
                NamespaceLabels::Known(&c.namespace_labels)
            },
            time: c.time.unwrap_or(time),
        }
    }
}

/// The test files under `paths` (files, or directories walked for `*.yaml` / `*.yml`, names
/// starting with `.` skipped), read and checked: the suites, and every problem found.
pub fn load(paths: &[PathBuf]) -> (Vec<Suite>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        collect_files(path, &mut files, &mut problems);
    }
    if files.is_empty() && problems.is_empty() {
        problems.push(Diagnostic {
            file: paths.first().cloned().unwrap_or_default(),
            line: 0,
            column: 0,
            message: "no test files found (looked for *.yaml and *.yml)".to_owned(),
            hint: "pass test files or directories; by default `portcullis test` reads <policies>/tests/".to_owned(),
        });
    }
    let mut suites = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let (mut s, mut p) = parse_file(&file, &text);
                suites.append(&mut s);
                problems.append(&mut p);
            }
            Err(e) => problems.push(problem(&file, 0, format!("cannot read: {e}"), "")),
        }
    }
    (suites, problems)
}

fn problem(file: &Path, line: usize, message: String, hint: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column: 0,
        message,
        hint: hint.to_owned(),
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Diagnostic>) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => out.push(path.to_path_buf()),
        Ok(m) if m.is_dir() => {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
                Err(e) => {
                    problems.push(problem(path, 0, format!("cannot list: {e}"), ""));
                    return;
                }
            };
            entries.sort();
            for entry in entries {
                let name = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') {
                    continue;
                }
                if entry.is_dir() {
                    collect_files(&entry, out, problems);
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    out.push(entry);
                }
            }
        }
        Ok(_) => {}
        Err(e) => problems.push(problem(
            path,
            0,
            format!("cannot read: {e}"),
            "pass test files or directories that exist",
        )),
    }
}

/// Parses one test file: its suites, and its problems (file and line each).
pub fn parse_file(file: &Path, text: &str) -> (Vec<Suite>, Vec<Diagnostic>) {
    let mut suites = Vec::new();
    let mut problems = Vec::new();
    for chunk in crate::yaml::documents(text) {
        let at = |local: usize| local + chunk.first_line - 1;
        let line_of =
            |path: &FieldPath, fallback: usize| field_line(chunk.text, path).map_or(fallback, at);
        let raw = match parse_raw(file, chunk) {
            Ok(v) => v,
            Err(d) => {
                problems.push(d);
                continue;
            }
        };
        if raw.is_null() {
            continue;
        }
        let start = line_of(&FieldPath::root(), chunk.first_line);
        let kind = raw.get("kind").and_then(|k| k.as_str());
        let version = raw.get("apiVersion").and_then(|k| k.as_str());
        if kind != Some(model::KIND) || version != Some(API_VERSION) {
            problems.push(problem(
                file,
                start,
                format!(
                    "not a test: expected apiVersion {API_VERSION:?} and kind {:?}, found {:?} and {:?}",
                    model::KIND,
                    version.unwrap_or(""),
                    kind.unwrap_or("")
                ),
                "test directories hold only `kind: PolicyTest` documents; policies and exceptions belong in the policy directory",
            ));
            continue;
        }
        let doc: TestDocument = match read_typed(file, chunk, &raw) {
            Ok(d) => d,
            Err(d) => {
                problems.push(d);
                continue;
            }
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        let TestSpec {
            policies,
            modes,
            time,
            cases: specs,
        } = doc.spec;
        if specs.is_empty() {
            problems.push(problem(
                file,
                line_of(&FieldPath::keys(&["spec", "cases"]), start),
                "spec.cases: a test needs at least one case".to_owned(),
                "add cases, each with a name, an object and what to expect",
            ));
        }
        let mut cases = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let path = FieldPath::keys(&["spec", "cases"]).index(i);
            let line = line_of(&path, start);
            let mut report = |field: &str, message: String, hint: &str| {
                let l = line_of(&path.key(field), line);
                problems.push(problem(
                    file,
                    l,
                    format!("{}.{field}: {message}", path),
                    hint,
                ));
            };
            match resolve_case(spec, dir, &mut report) {
                Some(mut case) => {
                    case.line = line;
                    cases.push(case);
                }
                None => continue,
            }
        }
        suites.push(Suite {
            name: doc.metadata.name,
            file: file.to_path_buf(),
            line: start,
            policies,
            modes,
            time,
            cases,
        });
    }
    (suites, problems)
}

/// Reads a case's object files and checks what serde cannot; `None` after reporting problems.
fn resolve_case(
    mut spec: TestCase,
    dir: &Path,
    report: &mut dyn FnMut(&str, String, &str),
) -> Option<Case> {
    let mut ok = true;
    let mut read = |field: &str, inline: Option<Value>, file: Option<&String>, ok: &mut bool| match (
        inline, file,
    ) {
        (Some(_), Some(_)) => {
            report(
                field,
                format!("give either `{field}` or `{field}File`, not both"),
                "keep one of the two",
            );
            *ok = false;
            None
        }
        (Some(v), None) => {
            if !v.is_object() {
                report(
                    field,
                    "must be a Kubernetes object (a mapping)".to_owned(),
                    "write the object as YAML under the key",
                );
                *ok = false;
            }
            Some(v)
        }
        (None, Some(f)) => match read_object(&dir.join(f)) {
            Ok(v) => Some(v),
            Err(e) => {
                report(
                    &format!("{field}File"),
                    e,
                    "the path is relative to the test file; the file holds exactly one object",
                );
                *ok = false;
                None
            }
        },
        (None, None) => None,
    };
    let object = read(
        "object",
        spec.object.take(),
        spec.object_file.as_ref(),
        &mut ok,
    );
    let old_object = read(
        "oldObject",
        spec.old_object.take(),
        spec.old_object_file.as_ref(),
        &mut ok,
    );
    let expected_object = read(
        "expect.object",
        spec.expect.object.take(),
        spec.expect.object_file.as_ref(),
        &mut ok,
    );
    if object.is_none() && ok {
        report(
            "object",
            "a case needs the object of its request".to_owned(),
            "give `object` (inline) or `objectFile`",
        );
        ok = false;
    }
    match (spec.operation, &old_object) {
        (TestOperation::Update, None) => {
            report(
                "oldObject",
                "an UPDATE needs the stored object it changes".to_owned(),
                "give `oldObject` (inline) or `oldObjectFile`",
            );
            ok = false;
        }
        (TestOperation::Create | TestOperation::Delete, Some(_)) => {
            report(
                "oldObject",
                "only an UPDATE has an old object".to_owned(),
                "set `operation: UPDATE`, or delete `oldObject`",
            );
            ok = false;
        }
        _ => {}
    }
    let expected_patch = match spec.expect.patch.take() {
        None => None,
        Some(v) => match serde_json::from_value::<json_patch::Patch>(v) {
            Ok(p) => Some(p),
            Err(e) => {
                report(
                    "expect.patch",
                    format!("not an RFC 6902 JSON Patch: {e}"),
                    "write a list of operations such as `- {op: add, path: /metadata/labels/team, value: a}`",
                );
                ok = false;
                None
            }
        },
    };
    // The apiserver sends objects in the request's namespace: fill it in where the object has
    // none, and refuse a case whose namespace contradicts its object's.
    let mut object = object;
    let mut old_object = old_object;
    if let Some(ns) = spec.namespace.clone() {
        for (field, o) in [("object", &mut object), ("oldObject", &mut old_object)] {
            let Some(meta) = o.as_mut().and_then(|o| o.as_object_mut()).map(|o| {
                o.entry("metadata")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()))
            }) else {
                continue;
            };
            match meta.get("namespace").and_then(Value::as_str) {
                Some(own) if own != ns => {
                    report(
                        "namespace",
                        format!("{ns:?} contradicts the {field}'s metadata.namespace {own:?}"),
                        "the apiserver sends objects in the request's namespace: drop one of the two, or make them equal",
                    );
                    ok = false;
                }
                Some(_) => {}
                None => {
                    if let Some(m) = meta.as_object_mut() {
                        m.insert("namespace".to_owned(), Value::String(ns.clone()));
                    }
                }
            }
        }
    }
    spec.object = object;
    spec.old_object = old_object;
    ok.then(|| Case {
        name: spec.name.clone(),
        line: 0,
        spec,
        expected_patch,
        expected_object,
    })
}

/// Reads a file holding exactly one Kubernetes object.
fn read_object(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut objects = Vec::new();
    for entry in read_str(&path.display().to_string(), &text) {
        match entry {
            Entry::Object(m) => objects.push(m.object),
            Entry::Error(e) => return Err(format!("{}: {}", e.location, e.message)),
        }
    }
    match objects.len() {
        1 => Ok(objects.remove(0)),
        n => Err(format!(
            "{} holds {n} objects, expected exactly one",
            path.display()
        )),
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its line in the test file.
    pub line: usize,
    /// What went wrong (empty: passed).
    pub failures: Vec<String>,
    /// The engine's decision.
    pub decision: Decision,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The outcome of one suite.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// The suite's name.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// The line where it starts.
    pub line: usize,
    /// Its cases, in order.
    pub cases: Vec<CaseResult>,
}

/// The set a suite runs against: `spec.modes` applied. An error names a policy the set lacks.
pub fn suite_set(set: &PolicySet, suite: &Suite) -> Result<PolicySet, Diagnostic> {
    let unknown = suite
        .policies
        .iter()
        .chain(suite.modes.keys())
        .find(|name| set.get(name).is_none());
    if let Some(name) = unknown {
        return Err(problem(
            &suite.file,
            suite.line,
            format!(
                "test {:?} names policy {name:?}, which the set does not have",
                suite.name
            ),
            &format!(
                "name policies of the set under test: {}",
                set.policies
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut set = set.clone();
    for policy in &mut set.policies {
        if let Some(mode) = suite.modes.get(&policy.name) {
            let p = std::sync::Arc::make_mut(policy);
            p.mode = *mode;
            p.schedule.clear();
        }
    }
    Ok(set)
}

/// Runs a suite's cases against `set` (already [`suite_set`]), at `time` unless a case or the
/// suite gives its own.
pub fn run_suite(set: &PolicySet, suite: &Suite, time: Timestamp) -> SuiteResult {
    let time = suite.time.unwrap_or(time);
    let cases = suite
        .cases
        .iter()
        .map(|case| run_case(set, suite, case, time))
        .collect();
    SuiteResult {
        name: suite.name.clone(),
        file: suite.file.clone(),
        line: suite.line,
        cases,
    }
}

fn in_scope(suite: &Suite, f: &Finding) -> bool {
    suite.policies.is_empty() || suite.policies.contains(&f.policy)
}

/// Whether a finding has every property an expectation gives.
pub fn matches(e: &ExpectedFinding, f: &Finding) -> bool {
    e.policy.as_ref().is_none_or(|p| *p == f.policy)
        && e.rule.as_ref().is_none_or(|r| r == f.rule)
        && e.kind.is_none_or(|k| FindingKind::from(k) == f.kind)
        && e.effect.is_none_or(|x| engine::Effect::from(x) == f.effect)
        && e.container
            .as_ref()
            .is_none_or(|c| c.as_str() == f.container.as_deref().unwrap_or(""))
        && e.field.as_ref().is_none_or(|x| *x == f.field)
        && e.message
            .as_ref()
            .is_none_or(|m| f.message.contains(m.as_str()))
        && e.pre_existing.is_none_or(|p| p == f.pre_existing)
        && e.exception
            .as_ref()
            .is_none_or(|x| f.exception.as_ref().is_some_and(|i| i.name == *x))
        && e.enforced_from.is_none_or(|t| f.enforced_from == Some(t))
}

/// A finding in one line, as failures show it.
pub fn describe(f: &Finding) -> String {
    let mut s = format!("{} {} ({})", f.effect.as_str(), f.policy, f.rule);
    if let Some(c) = &f.container {
        s.push_str(&format!(" container {c:?}"));
    }
    s.push_str(&format!(": {}", f.message));
    if !f.field.is_empty() {
        s.push_str(&format!(" [field {}]", f.field));
    }
    if f.pre_existing {
        s.push_str(" [pre-existing]");
    }
    if let Some(e) = &f.exception {
        s.push_str(&format!(" [exception {}]", e.name));
    }
    if let Some(t) = f.enforced_from {
        s.push_str(&format!(" [enforced from {t}]"));
    }
    s
}

fn describe_expectation(e: &ExpectedFinding) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

fn run_case(set: &PolicySet, suite: &Suite, case: &Case, time: Timestamp) -> CaseResult {
    let request = case.request(time);
    let decision = engine::evaluate(set, &request);
    let mut failures = Vec::new();
    let expect = &case.spec.expect;

    match (&expect.skipped, &decision.skipped) {
        (None, Some(why)) => failures.push(format!(
            "the request was not judged ({why}); if that is intended, say `skipped: {:?}`",
            why.to_string()
        )),
        (Some(want), None) => failures.push(format!(
            "expected the request not to be judged ({want:?}), but it was judged"
        )),
        (Some(want), Some(why)) if !why.to_string().contains(want.as_str()) => {
            failures.push(format!(
                "expected it not to be judged for {want:?}, but the reason is {:?}",
                why.to_string()
            ))
        }
        _ => {}
    }
    if let Some(allowed) = expect.allowed
        && allowed != decision.allowed
    {
        let denying: Vec<String> = decision
            .findings
            .iter()
            .filter(|f| f.effect == engine::Effect::Deny)
            .map(describe)
            .collect();
        failures.push(if allowed {
            format!(
                "expected the request to be allowed, but it is denied by: {}",
                denying.join("; ")
            )
        } else {
            "expected the request to be denied, but it is allowed".to_owned()
        });
    }

    // Findings: every expectation matches; every finding under test is expected.
    let mut expected_any = vec![false; decision.findings.len()];
    for e in &expect.findings {
        let hits: Vec<usize> = decision
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| matches(e, f))
            .map(|(i, _)| i)
            .collect();
        for &i in &hits {
            expected_any[i] = true;
        }
        match e.count {
            Some(n) if n != hits.len() => failures.push(format!(
                "expected {n} finding{} matching {}, found {}",
                if n == 1 { "" } else { "s" },
                describe_expectation(e),
                hits.len()
            )),
            None if hits.is_empty() => failures.push(format!(
                "expected finding matched nothing: {}",
                describe_expectation(e)
            )),
            _ => {}
        }
    }
    if expect.other_findings == OtherFindings::Fail {
        for (f, _) in decision
            .findings
            .iter()
            .zip(&expected_any)
            .filter(|(f, hit)| !**hit && in_scope(suite, f))
        {
            failures.push(format!("unexpected finding: {}", describe(f)));
        }
    }

    // Mutations: the patch, the object as admitted, and idempotence.
    if let Some(want) = &case.expected_patch
        && *want != decision.patch
    {
        failures.push(format!(
            "the patch differs from the expected one (- expected, + actual):\n{}",
            json_diff(
                &serde_json::to_value(want).unwrap_or(Value::Null),
                &serde_json::to_value(&decision.patch).unwrap_or(Value::Null)
            )
        ));
    }
    if let Some(object) = request.object {
        let mut admitted = object.to_value();
        match decision.patch.apply(&mut admitted) {
            Err(e) => failures.push(format!("the patch does not apply to the object: {e}")),
            Ok(()) => {
                if let Some(want) = &case.expected_object
                    && *want != admitted
                {
                    failures.push(format!(
                        "the admitted object differs from the expected one (- expected, + actual):\n{}",
                        yaml_diff(want, &admitted)
                    ));
                }
                if decision.is_patched() {
                    let again = engine::evaluate(
                        set,
                        &Request {
                            object: Some((&admitted).into()),
                            ..request
                        },
                    );
                    if again.is_patched() {
                        failures.push(format!(
                            "mutation is not idempotent: mutating the admitted object yields another patch: {}",
                            serde_json::to_string(&again.patch).unwrap_or_default()
                        ));
                    }
                }
            }
        }
    } else if case.expected_object.is_some() {
        failures.push("expected an admitted object, but the request has none".to_owned());
    }
    CaseResult {
        name: case.name.clone(),
        line: case.line,
        failures,
        decision,
    }
}

/// A value with every object's keys sorted, so that diffs show content, not key order.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// A unified diff of two values as YAML (keys sorted).
pub fn yaml_diff(expected: &Value, actual: &Value) -> String {
    let render = |v: &Value| serde_yaml_ng::to_string(&sorted(v)).unwrap_or_default();
    unified(&render(expected), &render(actual))
}

fn json_diff(expected: &Value, actual: &Value) -> String {
    let render = |v: &Value| {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
        s.push('\n');
        s
    };
    unified(&render(expected), &render(actual))
}

/// Whether each rule of the set (each validation of a `cel` rule) fires in some case and
/// passes in another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCoverage {
    /// The policy.
    pub policy: String,
    /// The rule type.
    pub rule: &'static str,
    /// For a `cel` rule: which validation (its index); `None` for the other rule types.
    pub validation: Option<usize>,
    /// Some case has a finding of the rule.
    pub fires: bool,
    /// Some judged case selected the policy and the rule found nothing.
    pub passes: bool,
}

impl RuleCoverage {
    /// Both fire and pass.
    pub fn covered(&self) -> bool {
        self.fires && self.passes
    }
}

/// Coverage of every rule of `set` by the cases run: per rule type of each policy, and per
/// validation of each `cel` rule.
pub fn coverage(set: &PolicySet, results: &[SuiteResult]) -> Vec<RuleCoverage> {
    // (policy, rule type, validation): the validation only for `cel` rules.
    type Unit = (String, &'static str, Option<usize>);
    let unit_of = |policy: &str, rule: &'static str, part: usize| -> Unit {
        (policy.to_owned(), rule, (rule == "cel").then_some(part))
    };
    let units = |p: &crate::policy::CompiledPolicy| -> Vec<Unit> {
        let mut out: Vec<Unit> = Vec::new();
        for r in &p.rules {
            let rule = r.type_name();
            let parts: Vec<Option<usize>> = match r {
                crate::policy::CompiledRule::Cel(c) => (0..c.validations.len()).map(Some).collect(),
                _ => vec![None],
            };
            for part in parts {
                let u = (p.name.clone(), rule, part);
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
        out
    };
    let mut fires: BTreeSet<Unit> = BTreeSet::new();
    let mut passes: BTreeSet<Unit> = BTreeSet::new();
    for case in results.iter().flat_map(|s| &s.cases) {
        let d = &case.decision;
        for f in &d.findings {
            fires.insert(unit_of(&f.policy, f.rule, f.part));
        }
        if d.skipped.is_some() {
            continue;
        }
        for name in &d.policies {
            let Some(p) = set.get(name) else { continue };
            for u in units(p) {
                if !d
                    .findings
                    .iter()
                    .any(|f| unit_of(&f.policy, f.rule, f.part) == u)
                {
                    passes.insert(u);
                }
            }
        }
    }
    let mut out = Vec::new();
    for p in &set.policies {
        for u in units(p) {
            out.push(RuleCoverage {
                policy: u.0.clone(),
                rule: u.1,
                validation: u.2,
                fires: fires.contains(&u),
                passes: passes.contains(&u),
            });
        }
    }
    out
}
