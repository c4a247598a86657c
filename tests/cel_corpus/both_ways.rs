//! Judging CEL rules two ways, for the suites that prove a rewrite invisible
//! (tests/cel_projection.rs: values cut down or whole; tests/cel_lowering.rs: rules lowered or
//! as checked): the corpus and its objects, a rule body as a policy, the shipped mutations and
//! CEL policies, and a decision in words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis::engine::{NamespaceLabels, Request, evaluate};
use portcullis::policy::{PolicySet, Timestamp};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The corpus (tests/cel_corpus/corpus.yaml) as JSON, and its objects by name.
pub fn corpus() -> (Value, BTreeMap<String, Value>) {
    let text = std::fs::read_to_string(Path::new(ROOT).join("tests/cel_corpus/corpus.yaml"))
        .expect("the corpus");
    let corpus = portcullis::yaml::parse(&text).expect("the corpus parses");
    let objects = serde_json::from_value(corpus["objects"].clone()).expect("objects");
    (corpus, objects)
}

/// A policy `name` in enforce mode with the one `cel` rule `rule`, as policy file text.
pub fn policy_text(name: &str, rule: &Value) -> String {
    let policy = json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": name},
        "spec": {"mode": "enforce", "rules": [{"cel": rule}]},
    });
    // JSON is YAML.
    serde_json::to_string(&policy).expect("JSON")
}

/// The shipped mutations (a sidecar with its volume and mounts, default labels), as documents
/// to put before a policy: CEL rules judge the object with their planned additions.
pub fn shipped_mutations() -> String {
    ["default-labels.yaml", "inject-logging-sidecar.yaml"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(Path::new(ROOT).join("policies").join(f))
                .expect("a shipped policy");
            format!("---\n{text}\n")
        })
        .collect()
}

/// Each shipped CEL policy file (`policies/cel-*.yaml`), switched from `off` to `enforce`,
/// after the shipped mutations.
pub fn shipped_cel_policies() -> Vec<(PathBuf, String)> {
    let mutations = shipped_mutations();
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(Path::new(ROOT).join("policies"))
        .expect("policies/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("cel-"))
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .expect("policy")
                .replace("mode: \"off\"", "mode: enforce");
            let with = format!("{mutations}---\n{text}");
            (path, with)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "policies/cel-*.yaml");
    files
}

/// The decision of `set` on `object` (CREATE, in a namespace labelled env=prod and
/// team=payments) in words: allowed or not, and every finding whole (message, field, hint...).
pub fn judged(set: &PolicySet, object: &Value) -> String {
    let labels: BTreeMap<String, String> = [("env", "prod"), ("team", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut request = Request::create(object, Timestamp::from_unix(1_767_225_600));
    request.namespace_labels = NamespaceLabels::Known(&labels);
    let d = evaluate(set, &request);
    format!("allowed={} {:#?}", d.allowed, d.findings)
}

/// Runs `f` on a thread with a large stack: deep expressions recurse, and the webhook's
/// worker threads have 2 MiB, these judges more.
pub fn on_a_large_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("every pair judged")
}
