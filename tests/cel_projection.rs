//! A review converts only what its CEL rules can observe (`policy::cel_reads`): proven
//! invisible. Every case of the differential corpus (tests/cel_corpus/corpus.yaml) and every
//! shipped CEL policy is judged on every corpus object twice, once cut down to what the rules
//! read and once with every value whole, and the decisions must be the same, word for word.

#[path = "cel_corpus/both_ways.rs"]
mod both_ways;
#[path = "cel_corpus/rules.rs"]
mod rules;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use both_ways::{
    corpus, judged, on_a_large_stack, policy_text, shipped_cel_policies, shipped_mutations,
};
use portcullis::policy::cel_reads::{CelReads, Need};
use portcullis::policy::{CompiledRule, PolicySet};
use serde_json::{Value, json};

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

fn judge_all(sets: &[(String, PolicySet)], objects: &BTreeMap<String, Value>) -> usize {
    let mut pairs = 0;
    for (name, set) in sets {
        let whole = unprojected(set);
        for (key, object) in objects {
            assert_eq!(
                judged(set, object),
                judged(&whole, object),
                "{name} on {key}: cut down and whole differ"
            );
            pairs += 1;
        }
    }
    pairs
}

#[test]
fn judging_what_the_rules_read_is_judging_the_whole_review() {
    let (corpus, objects) = corpus();
    // The shipped mutations (a sidecar with its volume and mounts, default labels): CEL rules
    // judge the object with their planned additions, cut down as the rest.
    let mutations = shipped_mutations();
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
    for (path, text) in shipped_cel_policies() {
        let set = portcullis::lint::load_str(&path, &text).expect("a shipped policy loads");
        sets.push((path.display().to_string(), set));
    }
    assert!(sets.len() > 500, "the corpus' rules load: {}", sets.len());
    let pairs = on_a_large_stack(move || judge_all(&sets, &objects));
    assert!(pairs > 1000, "{pairs} pairs");
}
