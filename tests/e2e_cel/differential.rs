//! The differential suite: the corpus and the shipped CEL validations, judged by Portcullis and
//! by the API server's ValidatingAdmissionPolicy admission (see tests/e2e_cel.rs).
//!
//! One round for everything: each pair's object is first sent as a dry run with no policy
//! installed, and what the API server answers (the object defaulted and mutated as admission
//! sees it) is what Portcullis judges, as the webhook would; then one ValidatingAdmissionPolicy
//! and binding per case is created (refused ones recorded), each matching only its own objects
//! by name (`resourceNames`), a marker policy created last tells when the API server uses them
//! all, and every object is sent again as a dry run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use portcullis::engine::{self, FindingKind, NamespaceLabels, Request};
use portcullis::policy::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::e2e_support::api::{self, Api};
use crate::e2e_support::{Case, ROOT, World, wait_for};

/// The corpus, relative to the repository root.
pub const CORPUS: &str = "tests/cel_corpus/corpus.yaml";
/// The page whose "Known divergences" section lists the cases that differ.
pub const DIVERGENCES: &str = "docs/cel-divergences.md";
/// The heading of that section.
const DIVERGENCES_HEADING: &str = "## Known divergences";
/// The label on every object this suite creates in the cluster.
const LABEL: &str = "e2e-celdiff";
/// Requests in flight at once.
const IN_FLIGHT: usize = 16;

pub fn cases() -> Vec<Case> {
    vec![Case::exclusive(
        "cel_rules_judge_the_corpus_as_the_api_server_does",
        differential,
    )]
}

/// What one side says of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Admitted.
    Allow,
    /// Denied by a validation that evaluated to false.
    Deny,
    /// Denied because an expression failed at run time (`failurePolicy: Fail`).
    Error,
    /// The policy itself is refused (the API server at creation, Portcullis at load).
    Refused,
    /// Portcullis panicked (never the same as anything the API server says).
    Panicked,
}

impl Verdict {
    /// Whether two verdicts are the same decision: a run-time error denies, as a false
    /// validation does (Portcullis fails closed); they differ only in their words.
    fn same_decision(self, other: Verdict) -> bool {
        let d = |v: Verdict| {
            if v == Verdict::Error {
                Verdict::Deny
            } else {
                v
            }
        };
        d(self) == d(other)
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expect {
    All(Verdict),
    Each(BTreeMap<String, Verdict>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Corpus {
    /// The labels of the namespace the objects are sent to (`namespaceObject`).
    namespace_labels: BTreeMap<String, String>,
    /// The objects, by key; the cases name them.
    objects: BTreeMap<String, Value>,
    cases: Vec<CorpusCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CorpusCase {
    /// Unique; with the object key it names the objects sent (lowercase, digits, `-`).
    id: String,
    /// One validation's expression (with `message`, `messageExpression`, `reason`); or
    /// `validations`, or both (this one first).
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_expression: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    validations: Vec<Value>,
    #[serde(default)]
    variables: Vec<Value>,
    #[serde(default)]
    match_conditions: Vec<Value>,
    /// The objects it is judged against (default: `pod`).
    #[serde(default)]
    objects: Vec<String>,
    /// What the API server says (checked: a corpus entry the API server does not answer as
    /// written is a failure, so the harness cannot agree with itself by judging nothing).
    expect: Expect,
    /// Why the case is there.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// One case as both sides get it: a CEL rule body and the objects it judges.
struct Planned {
    id: String,
    /// The `cel` rule's body as Portcullis gets it.
    rule: Value,
    /// The same rule for the ValidatingAdmissionPolicy: `validations`, `variables`,
    /// `matchConditions` (a shipped rule's Portcullis-only variables rewritten).
    vap_rule: Value,
    /// Whether the denials' words are compared (not for a per-container rule, whose
    /// findings name each container while the policy says one message).
    compare_words: bool,
    /// (object key, expected API verdict if pinned).
    objects: Vec<(String, Option<Verdict>)>,
}

fn load_corpus() -> (Corpus, Vec<Planned>) {
    let path = Path::new(ROOT).join(CORPUS);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{CORPUS}: {e}"));
    let corpus: Corpus = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{CORPUS}: {e}"));
    let mut seen = BTreeSet::new();
    let mut planned = Vec::new();
    for c in &corpus.cases {
        assert!(seen.insert(c.id.clone()), "{CORPUS}: case {} twice", c.id);
        assert!(
            !c.id.is_empty()
                && c.id.len() <= 40
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "{CORPUS}: case id {:?}: at most 40 of a-z, 0-9, -",
            c.id
        );
        let mut validations = Vec::new();
        if let Some(e) = &c.expression {
            let mut v = json!({"expression": e});
            for (k, f) in [
                ("message", &c.message),
                ("messageExpression", &c.message_expression),
                ("reason", &c.reason),
            ] {
                if let Some(f) = f {
                    v[k] = json!(f);
                }
            }
            validations.push(v);
        } else {
            assert!(
                c.message.is_none() && c.message_expression.is_none() && c.reason.is_none(),
                "{CORPUS}: case {}: message fields without an expression",
                c.id
            );
        }
        validations.extend(c.validations.iter().cloned());
        assert!(
            !validations.is_empty(),
            "{CORPUS}: case {}: no validation",
            c.id
        );
        let mut rule = json!({"validations": validations});
        if !c.variables.is_empty() {
            rule["variables"] = json!(c.variables);
        }
        if !c.match_conditions.is_empty() {
            rule["matchConditions"] = json!(c.match_conditions);
        }
        let keys = if c.objects.is_empty() {
            vec!["pod".to_owned()]
        } else {
            c.objects.clone()
        };
        let objects = keys
            .into_iter()
            .map(|k| {
                assert!(
                    corpus.objects.contains_key(&k),
                    "{CORPUS}: case {}: no object {k}",
                    c.id
                );
                let expect = match &c.expect {
                    Expect::All(v) => *v,
                    Expect::Each(m) => *m.get(&k).unwrap_or_else(|| {
                        panic!("{CORPUS}: case {}: no expectation for {k}", c.id)
                    }),
                };
                (k, Some(expect))
            })
            .collect();
        planned.push(Planned {
            id: c.id.clone(),
            vap_rule: rule.clone(),
            rule,
            objects,
            compare_words: true,
        });
    }
    (corpus, planned)
}

/// Every `cel` rule of the shipped policies (`policies/*.yaml`), judged against every corpus
/// object. The API server has no `podSpec`, `podMetadata` or `container`: its policy gets
/// them as variables (`variables.podSpec`: the Pod spec wherever the kind keeps it), and a
/// per-container rule's validations become `....containers.all(container, EXPRESSION)`.
fn shipped(corpus: &Corpus) -> Vec<Planned> {
    assert_eq!(
        rename_identifier(
            "podSpec.x + 'podSpec' + a.podSpec + r'\\'+ podSpec_2 + podSpec",
            "podSpec",
            "variables.podSpec"
        ),
        "variables.podSpec.x + 'podSpec' + a.podSpec + r'\\'+ podSpec_2 + variables.podSpec",
        "the rewriting of Portcullis-only variables"
    );
    let dir = Path::new(ROOT).join("policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("policies/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a policy file");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let Ok(doc) = Value::deserialize(doc) else {
                continue;
            };
            if doc["kind"] != "Policy" {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let rules = doc["spec"]["rules"].as_array().cloned().unwrap_or_default();
            for (i, rule) in rules.iter().enumerate() {
                let Some(cel) = rule.get("cel") else { continue };
                let per_container = cel["forEachContainer"] == json!(true);
                out.push(Planned {
                    id: format!("s-{name}-{i}"),
                    rule: cel.clone(),
                    vap_rule: as_vap_rule(cel, per_container),
                    objects: corpus.objects.keys().map(|k| (k.clone(), None)).collect(),
                    compare_words: !per_container,
                });
            }
        }
    }
    out
}

/// The Pod spec and metadata wherever the workload kinds keep them, as VAP variables.
const POD_SPEC: &str = "object.kind == 'Pod' ? object.spec : object.kind == 'CronJob' ? \
     object.spec.jobTemplate.spec.template.spec : object.spec.template.spec";
const POD_METADATA: &str = "object.kind == 'Pod' ? object.metadata : object.kind == 'CronJob' ? \
     object.spec.jobTemplate.spec.template.metadata : object.spec.template.metadata";

/// A shipped `cel` rule as a ValidatingAdmissionPolicy's fields.
fn as_vap_rule(cel: &Value, per_container: bool) -> Value {
    let names = ["podSpec", "podMetadata"];
    let rename = |e: &str| {
        names.iter().fold(e.to_owned(), |e, n| {
            rename_identifier(&e, n, &format!("variables.{n}"))
        })
    };
    let mut variables = vec![
        json!({"name": "podSpec", "expression": POD_SPEC}),
        json!({"name": "podMetadata", "expression": POD_METADATA}),
    ];
    for v in cel["variables"].as_array().into_iter().flatten() {
        let mut v = v.clone();
        if let Some(e) = v["expression"].as_str() {
            v["expression"] = json!(rename(e));
        }
        variables.push(v);
    }
    let validations: Vec<Value> = cel["validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut v = v.clone();
            if let Some(e) = v["expression"].as_str() {
                let e = rename(e);
                v["expression"] = json!(if per_container {
                    format!("variables.podSpec.containers.all(container, {e})")
                } else {
                    e
                });
            }
            if let Some(m) = v.get("messageExpression").and_then(Value::as_str) {
                let m = rename(m);
                if per_container {
                    // `container` is bound only inside the validation.
                    v.as_object_mut().map(|o| o.remove("messageExpression"));
                } else {
                    v["messageExpression"] = json!(m);
                }
            }
            v
        })
        .collect();
    let mut rule = json!({"validations": validations, "variables": variables});
    if let Some(m) = cel.get("matchConditions").and_then(Value::as_array) {
        let m: Vec<Value> = m
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(e) = c["expression"].as_str() {
                    c["expression"] = json!(rename(e));
                }
                c
            })
            .collect();
        rule["matchConditions"] = json!(m);
    }
    rule
}

/// `expression` with every use of the identifier `from` (not a field selected with `.`, not
/// inside a string literal) replaced by `to`.
fn rename_identifier(expression: &str, from: &str, to: &str) -> String {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = String::with_capacity(expression.len());
    let mut i = 0;
    let mut last_significant: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if portcullis::policy::cel_text::is_quote(c) {
            // A string literal: copied as is, to its closing quote.
            let end = portcullis::policy::cel_text::literal_end(&chars, i).unwrap_or(chars.len());
            out.extend(&chars[i..end]);
            i = end;
            last_significant = Some(c);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word == from && last_significant != Some('.') {
                out.push_str(to);
            } else {
                out.push_str(&word);
            }
            last_significant = word.chars().last();
            continue;
        }
        out.push(c);
        if !c.is_whitespace() {
            last_significant = Some(c);
        }
        i += 1;
    }
    out
}

/// The name of the object sent for a pair.
fn object_name(id: &str, key: &str) -> String {
    format!("{id}-{key}")
}

/// The collection path of a workload kind in namespace `ns`.
fn collection(kind: &str, ns: &str) -> String {
    let (prefix, plural) = match kind {
        "Pod" => ("/api/v1", "pods"),
        "Deployment" => ("/apis/apps/v1", "deployments"),
        "StatefulSet" => ("/apis/apps/v1", "statefulsets"),
        "DaemonSet" => ("/apis/apps/v1", "daemonsets"),
        "ReplicaSet" => ("/apis/apps/v1", "replicasets"),
        "Job" => ("/apis/batch/v1", "jobs"),
        "CronJob" => ("/apis/batch/v1", "cronjobs"),
        other => panic!("{CORPUS}: kind {other} is not a workload kind this suite sends"),
    };
    format!("{prefix}/namespaces/{ns}/{plural}")
}

const RESOURCES: [&str; 7] = [
    "pods",
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicasets",
    "jobs",
    "cronjobs",
];

fn vap_name(id: &str) -> String {
    format!("celdiff-{id}")
}

/// The ValidatingAdmissionPolicy and binding of a case: the CEL rule's fields pasted in
/// unchanged, matching only the case's own objects.
fn vap(p: &Planned) -> (Value, Value) {
    let name = vap_name(&p.id);
    let names: Vec<String> = p
        .objects
        .iter()
        .map(|(k, _)| object_name(&p.id, k))
        .collect();
    let mut spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": ["", "apps", "batch"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": RESOURCES, "resourceNames": names}]},
        "validations": p.vap_rule["validations"],
    });
    for k in ["variables", "matchConditions"] {
        if let Some(v) = p.vap_rule.get(k) {
            spec[k] = v.clone();
        }
    }
    let labels = json!({LABEL: "yes"});
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": labels}, "spec": spec}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": labels},
            "spec": {"policyName": name, "validationActions": ["Deny"]}}),
    )
}

/// The Portcullis policy of a case: one `cel` rule, in enforce mode.
fn policy_text(p: &Planned) -> String {
    let policy = json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": vap_name(&p.id)},
        "spec": {"mode": "enforce", "rules": [{"cel": p.rule}]},
    });
    serde_yaml_ng::to_string(&policy).expect("YAML")
}

/// One side's answer for a pair: the verdict and the words (a denial's message, or why the
/// policy was refused).
#[derive(Debug, Clone)]
struct Said {
    verdict: Verdict,
    words: String,
}

/// One pair for Portcullis: the policy file and the object as admission sees it.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    file: String,
    policy: String,
    object: Value,
    labels: BTreeMap<String, String>,
    user: String,
}

/// Portcullis' answer for a pair: the loader (with its lint), then the engine on the object the
/// API server's admission sees.
fn portcullis_says(job: &Job) -> Said {
    let set = match portcullis::lint::load_str(Path::new(&job.file), &job.policy) {
        Ok(set) => set,
        Err(e) => {
            return Said {
                verdict: Verdict::Refused,
                words: e.to_string(),
            };
        }
    };
    let mut request = Request::create(&job.object, Timestamp::now());
    request.namespace_labels = NamespaceLabels::Known(&job.labels);
    request.username = Some(&job.user);
    request.dry_run = true;
    let d = engine::evaluate(&set, &request);
    let violations: Vec<&engine::Finding> = d
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Violation)
        .collect();
    match (d.allowed, violations.first()) {
        (true, _) => Said {
            verdict: Verdict::Allow,
            words: String::new(),
        },
        (false, Some(f)) => Said {
            verdict: Verdict::Deny,
            words: f.message.clone(),
        },
        (false, None) => Said {
            verdict: Verdict::Deny,
            words: d.denial_message().unwrap_or_default(),
        },
    }
}

/// The environment variable that makes this test binary a judge: it reads the jobs (a JSON
/// array) from the file it names, from index `$PORTCULLIS_CELDIFF_FROM` on, and prints one
/// JSON line per job. Portcullis judges in such a child process so that a crash (a stack
/// overflow aborts the process) is recorded as the pair's verdict, not the end of the suite.
pub const JUDGE_ENV: &str = "PORTCULLIS_CELDIFF_JUDGE";
const FROM_ENV: &str = "PORTCULLIS_CELDIFF_FROM";
/// The judge's stack: tokio's worker threads' (the webhook evaluates on them).
const JUDGE_STACK: usize = 2 * 1024 * 1024;

/// The judge's `main`.
pub fn judge_main() -> std::process::ExitCode {
    let path = std::env::var(JUDGE_ENV).unwrap_or_default();
    let from: usize = std::env::var(FROM_ENV)
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let jobs: Vec<Job> = serde_json::from_str(&text).expect("the jobs");
    // A panic is the pair's verdict, without a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let worker = std::thread::Builder::new()
        .stack_size(JUDGE_STACK)
        .spawn(move || {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for (index, job) in jobs.iter().enumerate().skip(from) {
                let said =
                    std::panic::catch_unwind(|| portcullis_says(job)).unwrap_or_else(|panic| {
                        Said {
                            verdict: Verdict::Panicked,
                            words: format!(
                                "panicked: {}",
                                panic
                                    .downcast_ref::<&str>()
                                    .map(|s| (*s).to_owned())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_default()
                            ),
                        }
                    });
                let line = json!({"index": index, "verdict": said.verdict, "words": said.words});
                writeln!(out, "{line}").expect("stdout");
                out.flush().expect("stdout");
            }
        })
        .expect("a judge thread");
    match worker.join() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

/// Portcullis' answers for every job, from judge processes: when one dies (an abort), the job
/// it was judging gets [`Verdict::Panicked`] with how it died, and a new judge goes on after it.
fn judge_all(jobs: &[Job]) -> Vec<Said> {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), serde_json::to_string(jobs).expect("JSON")).expect("the jobs");
    let exe = std::env::current_exe().expect("this test binary");
    let mut said: Vec<Said> = Vec::with_capacity(jobs.len());
    while said.len() < jobs.len() {
        let out = std::process::Command::new(&exe)
            .env(JUDGE_ENV, file.path())
            .env(FROM_ENV, said.len().to_string())
            .output()
            .expect("a judge process");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line).expect("a judge's line");
            assert_eq!(v["index"], json!(said.len()), "the judge's order");
            said.push(Said {
                verdict: serde_json::from_value(v["verdict"].clone()).expect("a verdict"),
                words: v["words"].as_str().unwrap_or("").to_owned(),
            });
        }
        if said.len() < jobs.len() && !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            said.push(Said {
                verdict: Verdict::Panicked,
                words: format!(
                    "the process died ({}): {}",
                    out.status,
                    stderr.lines().last().unwrap_or("")
                ),
            });
        }
    }
    said
}

/// The API server's answer to a dry run, for the case whose policy is `vap`.
fn api_says(answer: &api::Answer, vap: &str) -> Result<Said, String> {
    if answer.status == 201 {
        return Ok(Said {
            verdict: Verdict::Allow,
            words: String::new(),
        });
    }
    let message = answer.body["message"].as_str().unwrap_or("");
    let prefix = format!("ValidatingAdmissionPolicy '{vap}' with binding '{vap}' denied request: ");
    match message.find(&prefix) {
        Some(at) => {
            let words = message[at + prefix.len()..].to_owned();
            let error = words.starts_with("expression '") && words.contains("' resulted in error")
                || words.contains("running out of cost budget")
                || words.starts_with("failed to evaluate");
            Ok(Said {
                verdict: if error { Verdict::Error } else { Verdict::Deny },
                words,
            })
        }
        None => Err(format!(
            "HTTP {} without a denial of {vap}: {}",
            answer.status, answer.body
        )),
    }
}

/// At most a few lines of `s`, for messages.
fn short(s: &str) -> String {
    const MAX: usize = 240;
    let s = s.trim().replace('\n', " ");
    let s = s.as_str();
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

/// The case ids listed under "Known divergences" (the first cell of each table row).
fn listed_divergences() -> BTreeMap<String, String> {
    let path = Path::new(ROOT).join(DIVERGENCES);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DIVERGENCES}: {e}"));
    let section = text
        .split_once(DIVERGENCES_HEADING)
        .unwrap_or_else(|| panic!("{DIVERGENCES}: no {DIVERGENCES_HEADING:?} section"))
        .1;
    let section = section.split("\n## ").next().unwrap_or("");
    section
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("| `")?;
            let (id, rest) = rest.split_once('`')?;
            Some((id.to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

/// A marker policy denying ConfigMaps labelled with it, created after every case's policy: the
/// API server uses every earlier policy and binding once it uses this one (one watch per kind).
fn marker() -> (Value, Value) {
    let name = "celdiff-marker";
    let labels = json!({LABEL: "yes"});
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": labels},
            "spec": {"failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE"], "resources": ["configmaps"]}],
                    "objectSelector": {"matchLabels": {LABEL: "marker"}}},
                "validations": [{"expression": "false", "message": "celdiff marker"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": labels},
            "spec": {"policyName": name, "validationActions": ["Deny"]}}),
    )
}

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

fn differential(w: &World) {
    let started = Instant::now();
    let (corpus, mut planned) = load_corpus();
    let corpus_pairs: usize = planned.iter().map(|p| p.objects.len()).sum();
    planned.extend(shipped(&corpus));
    let ns = w.namespace("celdiff");
    let k = w.kubectl();
    let mut label_args = vec![
        "label".to_owned(),
        "namespace".to_owned(),
        ns.clone(),
        "--overwrite".to_owned(),
    ];
    label_args.extend(
        corpus
            .namespace_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    let refs: Vec<&str> = label_args.iter().map(String::as_str).collect();
    k.run(&refs).ok();
    let namespace = k.run(&["get", "namespace", &ns, "-o", "json"]).json();
    let labels: BTreeMap<String, String> =
        serde_json::from_value(namespace["metadata"]["labels"].clone()).expect("labels");
    let user = k.run(&["auth", "whoami", "-o", "json"]).json()["status"]["userInfo"]["username"]
        .as_str()
        .expect("a username")
        .to_owned();

    // Each pair's object as sent.
    let pairs: Vec<(usize, String, Value)> = planned
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let corpus = &corpus;
            let ns = &ns;
            p.objects.iter().map(move |(key, _)| {
                let mut o = corpus.objects[key].clone();
                o["metadata"]["name"] = json!(object_name(&p.id, key));
                o["metadata"]["namespace"] = json!(ns);
                (i, key.clone(), o)
            })
        })
        .collect();

    let rt = api::runtime();
    let api = Api::new(&w.cluster);
    let dry_run = |o: &Value| {
        let kind = o["kind"].as_str().unwrap_or("");
        let path = format!("{}?dryRun=All", collection(kind, &ns));
        let api = api.clone();
        let o = o.clone();
        async move { api.post(&path, &o).await }
    };
    let send_all = |objects: Vec<&Value>, in_flight: usize| -> Vec<api::Answer> {
        rt.block_on(
            futures::stream::iter(objects.into_iter().map(dry_run))
                .buffered(in_flight)
                .collect(),
        )
    };

    // What admission sees: each object as the API server defaults and mutates it.
    let references = send_all(pairs.iter().map(|(_, _, o)| o).collect(), IN_FLIGHT);
    let mut problems: Vec<String> = Vec::new();
    for ((i, key, _), a) in pairs.iter().zip(&references) {
        if a.status != 201 {
            problems.push(format!(
                "{} / {key}: the API server refuses the object itself (HTTP {}): {}",
                planned[*i].id, a.status, a.body
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The policies (the API server refuses some), then their bindings, the marker last.
    let refused: BTreeMap<usize, String> = rt.block_on(async {
        let created: Vec<(usize, api::Answer)> =
            futures::stream::iter(planned.iter().enumerate().map(|(i, p)| {
                let api = api.clone();
                async move { (i, api.post(POLICIES, &vap(p).0).await) }
            }))
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let mut refused = BTreeMap::new();
        for (i, a) in &created {
            if a.status != 201 {
                assert!(
                    a.status == 422,
                    "{}: creating its policy: HTTP {}: {}",
                    planned[*i].id,
                    a.status,
                    a.body
                );
                let message = a.body["message"].as_str().unwrap_or("").to_owned();
                refused.insert(*i, message);
            }
        }
        let bound: Vec<(usize, api::Answer)> = futures::stream::iter(
            planned
                .iter()
                .enumerate()
                .filter(|(i, _)| !refused.contains_key(i))
                .map(|(i, p)| {
                    let api = api.clone();
                    async move { (i, api.post(BINDINGS, &vap(p).1).await) }
                }),
        )
        .buffered(IN_FLIGHT)
        .collect()
        .await;
        for (i, a) in &bound {
            assert_eq!(a.status, 201, "{}: its binding: {}", planned[*i].id, a.body);
        }
        let (policy, binding) = marker();
        assert_eq!(api.post(POLICIES, &policy).await.status, 201, "the marker");
        assert_eq!(
            api.post(BINDINGS, &binding).await.status,
            201,
            "its binding"
        );
        refused
    });
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "celdiff-marker", "namespace": ns, "labels": {LABEL: "marker"}}});
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps?dryRun=All");
    wait_for(
        "the API server to use the policies",
        Duration::from_secs(60),
        || {
            let a = rt.block_on(api.post(&cm_path, &cm));
            let message = a.body["message"].as_str().unwrap_or("");
            message.contains("celdiff marker").then_some(())
        },
    );
    let installed = started.elapsed();

    api::wait_policies_settled(&rt, &api, LABEL, &|| {
        let a = rt.block_on(api.post(&cm_path, &cm));
        a.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("celdiff marker")
    });
    // One at a time while the policies are in force: kube-apiserver v1.32 can crash when
    // requests evaluate freshly compiled policies concurrently ("concurrent map read and map
    // write" in DeclTypeProvider.FindStructFieldType, kubernetes/kubernetes#135757, open).
    let answers = send_all(pairs.iter().map(|(_, _, o)| o).collect(), 1);
    let answered = started.elapsed();

    // Portcullis' side.
    let jobs: Vec<Job> = pairs
        .iter()
        .zip(&references)
        .map(|((i, _, _), reference)| Job {
            file: format!("celdiff/{}.yaml", planned[*i].id),
            policy: policy_text(&planned[*i]),
            object: reference.body.clone(),
            labels: labels.clone(),
            user: user.clone(),
        })
        .collect();
    let ours = judge_all(&jobs);

    // Both sides, pair by pair.
    let listed = listed_divergences();
    let mut differing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut expectation_wrong: Vec<String> = Vec::new();
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (n, ((i, key, _), answer)) in pairs.iter().zip(&answers).enumerate() {
        let p = &planned[*i];
        let title = format!("{} / {key}", p.id);
        let api = match refused.get(i) {
            Some(m) => Said {
                verdict: Verdict::Refused,
                words: m.clone(),
            },
            None => match api_says(answer, &vap_name(&p.id)) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{title}: {e}"));
                    continue;
                }
            },
        };
        *tally
            .entry(match api.verdict {
                Verdict::Allow => "allowed",
                Verdict::Deny => "denied",
                Verdict::Error => "errors",
                Verdict::Refused => "refused",
                Verdict::Panicked => "panicked",
            })
            .or_default() += 1;
        let expected = p
            .objects
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, e)| *e);
        if let Some(e) = expected
            && e != api.verdict
        {
            expectation_wrong.push(format!(
                "{title}: the corpus expects {e:?}, the API server says {:?}: {}",
                api.verdict,
                short(&api.words)
            ));
        }
        let ours = &ours[n];
        let differs = if !api.verdict.same_decision(ours.verdict) {
            Some(format!(
                "the API server: {:?} ({}); Portcullis: {:?} ({})",
                api.verdict,
                short(&api.words),
                ours.verdict,
                short(&ours.words)
            ))
        } else if p.compare_words && api.verdict == Verdict::Deny && api.words != ours.words {
            Some(format!(
                "both deny; the API server says {:?}, Portcullis {:?}",
                api.words, ours.words
            ))
        } else {
            None
        };
        if let Some(d) = differs {
            differing
                .entry(p.id.clone())
                .or_default()
                .push(format!("{key}: {d}"));
        }
    }

    let judged = started.elapsed();
    // Leave the cluster as found.
    rt.block_on(async {
        for collection in [BINDINGS, POLICIES] {
            let a = api
                .delete(&format!("{collection}?labelSelector={LABEL}%3Dyes"))
                .await;
            assert_eq!(a.status, 200, "deleting {collection}: {}", a.body);
        }
    });

    let total = pairs.len();
    println!(
        "cel differential: {total} pairs ({corpus_pairs} from the corpus) of {} cases: {tally:?}; \
         {} cases differ, {} listed; policies in force after {:.1} s, answered after {:.1} s, \
         judged by Portcullis after {:.1} s, {:.1} s in all",
        planned.len(),
        differing.len(),
        listed.len(),
        installed.as_secs_f64(),
        answered.as_secs_f64(),
        judged.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for (id, lines) in &differing {
        let listed = if listed.contains_key(id) {
            "listed"
        } else {
            "NOT LISTED"
        };
        println!("  differs ({listed}): {id}: {}", lines.join("; "));
    }
    let unlisted: Vec<String> = differing
        .iter()
        .filter(|(id, _)| !listed.contains_key(*id))
        .map(|(id, lines)| format!("{id}: {}", lines.join("; ")))
        .collect();
    let vanished: Vec<&String> = listed
        .keys()
        .filter(|id| !differing.contains_key(*id))
        .collect();
    let mut failures = Vec::new();
    if !problems.is_empty() {
        failures.push(format!("the harness:\n{}", problems.join("\n")));
    }
    if !expectation_wrong.is_empty() {
        failures.push(format!(
            "{} pairs are not answered as {CORPUS} expects:\n{}",
            expectation_wrong.len(),
            expectation_wrong.join("\n")
        ));
    }
    if !unlisted.is_empty() {
        failures.push(format!(
            "{} cases differ and are not listed under {DIVERGENCES_HEADING:?} in {DIVERGENCES}:\n{}",
            unlisted.len(),
            unlisted.join("\n")
        ));
    }
    if !vanished.is_empty() {
        failures.push(format!(
            "listed in {DIVERGENCES} but no longer differ (remove them from the list): {vanished:?}"
        ));
    }
    assert!(total >= 150, "only {total} expression × object pairs");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
