//! A review converts only what its CEL rules can observe (`policy::cel_reads`): proven
//! invisible. Every case of the differential corpus (tests/cel_corpus/corpus.yaml) and every
//! shipped CEL policy is judged on every corpus object twice, once cut down to what the rules
//! read and once with every value whole, and the decisions must be the same, word for word.

#[path = "cel_corpus/rules.rs"]
mod rules;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use portcullis::engine::{Decision, NamespaceLabels, Request, evaluate};
use portcullis::policy::cel_reads::{CelReads, Need};
use portcullis::policy::{CompiledRule, PolicySet, Timestamp};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Reads that keep every value whole.
fn whole() -> CelReads {
    CelReads {
        roots: std::array::from_fn(|_| Some(Need::full())),
        container: Some(Need::full()),
    }
}

/// `set` with every CEL rule reading every value whole.
fn unprojected(set: &PolicySet) -> PolicySet {
    let mut all = set.clone();
    all.policies = set
        .policies
        .iter()
        .map(|p| {
            let mut p = (**p).clone();
            for r in &mut p.rules {
                if let CompiledRule::Cel(c) = r {
                    c.reads = whole();
                }
            }
            Arc::new(p)
        })
        .collect();
    all.cel_reads = whole();
    all
}

/// The corpus' cases as `cel` rule bodies, by id.
fn corpus_rules(corpus: &Value) -> Vec<(String, Value)> {
    let cases = corpus["cases"].as_array().expect("cases");
    cases
        .iter()
        .map(|c| (c["id"].as_str().expect("id").to_owned(), rules::rule_of(c)))
        .collect()
}

/// Expressions that read what the mutations add, beside the corpus (whose cases read little
/// of it): the sidecar (a native one: an init container), its volume and mounts, labels.
const READING_ADDITIONS: [&str; 8] = [
    "podSpec.?initContainers.orValue([]).all(c, c.name != 'log-shipper')",
    "has(podSpec.initContainers)",
    "podSpec.?volumes.orValue([]).exists(v, v.name == 'app-logs')",
    "podSpec.containers.all(c, c.?volumeMounts.orValue([]).all(m, m.mountPath != '/var/log/app'))",
    "object.spec.?initContainers.orValue([]).size() == 0",
    "podSpec.?initContainers.orValue([]).all(c, !has(c.restartPolicy))",
    "podMetadata.?labels.orValue({}).all(k, k != 'app.kubernetes.io/managed-by')",
    "object.metadata.?labels.orValue({}).size() == 0",
];

fn policy_text(name: &str, rule: &Value) -> String {
    let policy = json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": name},
        "spec": {"mode": "enforce", "rules": [{"cel": rule}]},
    });
    // JSON is YAML.
    serde_json::to_string(&policy).expect("JSON")
}

/// The decision's words: allowed or not, and every finding whole (message, field, hint...).
fn words(d: &Decision) -> String {
    format!("allowed={} {:#?}", d.allowed, d.findings)
}

fn judge_all(sets: &[(String, PolicySet)], objects: &BTreeMap<String, Value>) -> usize {
    let labels: BTreeMap<String, String> = [("env", "prod"), ("team", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut pairs = 0;
    for (name, set) in sets {
        let whole = unprojected(set);
        for (key, object) in objects {
            let mut request = Request::create(object, Timestamp::from_unix(1_767_225_600));
            request.namespace_labels = NamespaceLabels::Known(&labels);
            let cut = words(&evaluate(set, &request));
            let all = words(&evaluate(&whole, &request));
            assert_eq!(cut, all, "{name} on {key}: cut down and whole differ");
            pairs += 1;
        }
    }
    pairs
}

#[test]
fn judging_what_the_rules_read_is_judging_the_whole_review() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("tests/cel_corpus/corpus.yaml"))
        .expect("the corpus");
    let corpus = portcullis::yaml::parse(&text).expect("the corpus parses");
    let objects: BTreeMap<String, Value> =
        serde_json::from_value(corpus["objects"].clone()).expect("objects");
    // The shipped mutations (a sidecar with its volume and mounts, default labels): CEL rules
    // judge the object with their planned additions, cut down as the rest.
    let mutations: String = ["default-labels.yaml", "inject-logging-sidecar.yaml"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(Path::new(ROOT).join("policies").join(f))
                .expect("a shipped policy");
            format!("---\n{text}\n")
        })
        .collect();
    let mut sets = Vec::new();
    let extra = READING_ADDITIONS.iter().enumerate().map(|(i, e)| {
        (
            format!("additions-{i}"),
            json!({"validations": [{"expression": e}]}),
        )
    });
    for (id, rule) in corpus_rules(&corpus).into_iter().chain(extra) {
        let text = policy_text(&id, &rule);
        // Cases refused at load judge nothing.
        if let Ok(set) = portcullis::lint::load_str(Path::new("c.yaml"), &text) {
            sets.push((id.clone(), set));
            let with = format!("{mutations}---\n{text}\n");
            let set = portcullis::lint::load_str(Path::new("c.yaml"), &with)
                .expect("the case loads beside the mutations");
            sets.push((format!("{id} (with the mutations)"), set));
        }
    }
    for entry in std::fs::read_dir(Path::new(ROOT).join("policies")).expect("policies/") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("cel-"))
        {
            let text = std::fs::read_to_string(&path)
                .expect("policy")
                .replace("mode: \"off\"", "mode: enforce");
            let with = format!("{mutations}---\n{text}");
            let set = portcullis::lint::load_str(&path, &with).expect("a shipped policy loads");
            sets.push((path.display().to_string(), set));
        }
    }
    assert!(sets.len() > 500, "the corpus' rules load: {}", sets.len());
    // Deep expressions recurse: the webhook's worker threads have 2 MiB, this judge more.
    let pairs = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || judge_all(&sets, &objects))
        .expect("thread")
        .join()
        .expect("every pair judged");
    assert!(pairs > 1000, "{pairs} pairs");
}
