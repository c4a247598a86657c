//! The lowering of CEL rules (`policy/compile/cel_lower.rs`: variables by name, fields of
//! maps read by index, `orValue` of a constant without the optional, shared variables once,
//! identical containers judged once) changes no verdict and no word. Every case of the
//! differential corpus (tests/cel_corpus/corpus.yaml), in object form and in per-container
//! form, the per-container rules below and every shipped CEL policy are judged on every corpus
//! object and on objects made to tempt the container reuse, once lowered and once as checked
//! (`policy::compile::unlowered`), and the decisions must be the same, word for word.

#[path = "cel_corpus/both_ways.rs"]
mod both_ways;
#[path = "cel_corpus/rules.rs"]
mod rules;

use std::collections::BTreeMap;
use std::path::Path;

use both_ways::{
    corpus, judged, on_a_large_stack, policy_text, shipped_cel_policies, shipped_mutations,
};
use portcullis::policy::{CelExpression, CompiledRule, PolicySet};
use serde_json::{Value, json};

/// Per-container rules (`forEachContainer: true`): containers read through every form the
/// lowering rewrites, variables shared and not, errors, messages.
fn container_rules() -> Vec<Value> {
    let v = |e: &str| json!({"expression": e});
    vec![
        json!({"validations": [v("container.image.startsWith('registry.corp/')")]}),
        json!({"validations": [v("!container.?securityContext.?privileged.orValue(false)"),
            v("container.?securityContext.?allowPrivilegeEscalation.orValue(true) == false")]}),
        json!({"variables": [{"name": "podNonRoot", "expression": "podSpec.?securityContext.?runAsNonRoot.orValue(false)"}],
            "validations": [v("container.?securityContext.?runAsNonRoot.orValue(variables.podNonRoot) == true")]}),
        json!({"validations": [{"expression": "container.ports.all(p, p.containerPort + 1 > 0)",
            "messageExpression": "'port ' + string(container.ports[0].containerPort)"}]}),
        json!({"validations": [{"expression": "container.?ports.orValue([]).all(p, p.containerPort < 9000)",
            "messageExpression": "'ports of ' + container.name + ': ' + string(container.ports[0].containerPort)"}]}),
        json!({"validations": [v("has(container.resources.limits) && container.resources.limits.all(k, k in ['cpu', 'memory'])")]}),
        json!({"validations": [v("container.?resources.?limits.?cpu.orValue('0') != '2'"),
            v("container.?env.orValue([]).all(e, e.?value.orValue('') != 'prod')")]}),
        json!({"variables": [{"name": "regs", "expression": "['registry.corp/', 'docker.io/library/']"},
                {"name": "img", "expression": "container.image"}],
            "validations": [{"expression": "variables.regs.exists(r, variables.img.startsWith(r))",
                "messageExpression": "variables.img + ' is not from ' + variables.regs.join(', ')"}]}),
        // `has(variables.NAME)` keeps the variables in their map.
        json!({"variables": [{"name": "regs", "expression": "['registry.corp/']"}],
            "validations": [v("has(variables.regs) && variables.regs.exists(r, container.image.startsWith(r))")]}),
        // Variables that fail: one per container, one shared.
        json!({"variables": [{"name": "bad", "expression": "container.ports[1].containerPort"},
                {"name": "sharedBad", "expression": "podSpec.containers[20].name"}],
            "validations": [v("variables.bad == 1"), v("variables.sharedBad == 1"),
                v("size(variables.sharedBad) > 0 || container.name != ''")]}),
        // A shared variable only a message reads, and one that reads another.
        json!({"variables": [{"name": "n", "expression": "object.metadata.name"},
                {"name": "greeting", "expression": "'hello ' + variables.n"}],
            "validations": [{"expression": "container.name.size() < 4",
                "messageExpression": "variables.greeting + ': ' + container.name"}]}),
        // Shadowing: a comprehension's own `container`, `object` and `variables`.
        json!({"validations": [v("[{'name': 'x', 'image': 'y'}].all(container, container.name != container.image)")]}),
        json!({"validations": [v("[{'name': 'x'}].all(object, has(object.name)) && object.metadata.name != ''")]}),
        json!({"validations": [v("[{'x': 1}].all(variables, variables.x == 1) && container.name != ''")]}),
        json!({"matchConditions": [{"name": "not-the-sidecar", "expression": "container.name != 'sidecar'"}],
            "validations": [v("request.operation == 'CREATE' && object.metadata.name + container.name != ''"),
                v("container.?securityContext.orValue({}).size() == 0")]}),
        // `orValue` evaluates its argument even when the value is there: an error in it counts.
        json!({"validations": [v("container.?name.orValue(string(container.ports[9].containerPort)) != ''"),
            v("container.?securityContext.?privileged.orValue(podSpec.containers[30].name == '')")]}),
        json!({"validations": [v("string(container.?ports.orValue([]).map(p, p.containerPort)) != ''"),
            v("container.?ports[?0].?containerPort.orValue(0) >= 0")]}),
    ]
}

/// Objects whose containers are identical, identical but for what no rule reads, or equal in
/// CEL's eyes but not the same (an int and a double): the container reuse must tell them
/// apart exactly.
fn tempting_objects() -> BTreeMap<String, Value> {
    let c = |name: &str, port: Value| {
        json!({"name": name, "image": "registry.corp/team/app:1",
            "ports": [{"containerPort": port}],
            "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "debug"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": {"runAsNonRoot": true, "privileged": false, "allowPrivilegeEscalation": false}})
    };
    let deployment = |containers: Vec<Value>, init: Vec<Value>| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": containers, "initContainers": init}}}})
    };
    let mut objects = BTreeMap::new();
    objects.insert(
        "identical".to_owned(),
        deployment(
            (0..12).map(|i| c(&format!("c{i}"), json!(8080))).collect(),
            vec![c("init", json!(8080))],
        ),
    );
    objects.insert(
        "int-and-double".to_owned(),
        deployment(
            vec![
                c("a", json!(8080)),
                c("b", json!(8080.0)),
                c("c", json!(8080)),
                c("d", json!(8080.0)),
            ],
            vec![],
        ),
    );
    let mut mixed: Vec<Value> = Vec::new();
    for i in 0..14 {
        let mut one = c(&format!("m{i}"), json!(9000 + (i % 5)));
        if i % 3 == 0 {
            one["image"] = json!("docker.io/library/busybox:latest");
            one["securityContext"] = json!({"privileged": true});
        }
        if i % 4 == 0 {
            one.as_object_mut().expect("map").remove("ports");
        }
        mixed.push(one);
    }
    objects.insert("mixed".to_owned(), deployment(mixed, vec![]));

    objects
}

/// Every expression of the set's CEL rules.
fn expressions(set: &PolicySet) -> Vec<&CelExpression> {
    set.policies
        .iter()
        .flat_map(|p| &p.rules)
        .filter_map(|r| match r {
            CompiledRule::Cel(c) => Some(c),
            _ => None,
        })
        .flat_map(|c| c.expressions())
        .collect()
}

/// `(name, lowered, as checked)` for each rule body that loads.
type Sets = Vec<(String, PolicySet, PolicySet)>;

fn load_both(sets: &mut Sets, name: &str, text: &str) {
    let lowered = portcullis::lint::load_str(Path::new("c.yaml"), text);
    let plain = portcullis::policy::compile::unlowered(|| {
        portcullis::lint::load_str(Path::new("c.yaml"), text)
    });
    match (lowered, plain) {
        (Ok(l), Ok(p)) => sets.push((name.to_owned(), l, p)),
        (Err(l), Err(p)) => assert_eq!(l.to_string(), p.to_string(), "{name}: refused alike"),
        (l, p) => panic!(
            "{name}: loads {} lowered, {} as checked",
            l.is_ok(),
            p.is_ok()
        ),
    }
}

fn judge_all(sets: &Sets, objects: &BTreeMap<String, Value>) -> usize {
    let mut pairs = 0;
    for (name, lowered, plain) in sets {
        for (key, object) in objects {
            assert_eq!(
                judged(lowered, object),
                judged(plain, object),
                "{name} on {key}: lowered and as checked differ"
            );
            pairs += 1;
        }
    }
    pairs
}

#[test]
fn lowered_rules_judge_as_the_rules_as_checked() {
    let (corpus, mut objects) = corpus();
    objects.extend(tempting_objects());
    let mutations = shipped_mutations();
    let mut sets: Sets = Vec::new();
    for case in corpus["cases"].as_array().expect("cases") {
        let id = case["id"].as_str().expect("id");
        let rule = rules::rule_of(case);
        load_both(&mut sets, id, &policy_text(id, &rule));
        let mut per_container = rule;
        per_container["forEachContainer"] = json!(true);
        load_both(
            &mut sets,
            &format!("{id} (per container)"),
            &policy_text(id, &per_container),
        );
    }
    for (i, mut rule) in container_rules().into_iter().enumerate() {
        rule["forEachContainer"] = json!(true);
        let text = policy_text(&format!("container-{i}"), &rule);
        let name = format!("container rule {i}");
        if let Err(e) = portcullis::lint::load_str(Path::new("c.yaml"), &text) {
            panic!("{name} loads: {e}");
        }
        load_both(&mut sets, &name, &text);
        load_both(
            &mut sets,
            &format!("{name} (with the mutations)"),
            &format!("{mutations}---\n{text}\n"),
        );
    }
    for (path, text) in shipped_cel_policies() {
        let name = path.display().to_string();
        let before = sets.len();
        load_both(&mut sets, &name, &text);
        assert_eq!(sets.len(), before + 1, "{name} loads");
    }
    // Not vacuous: many sets were rewritten (the corpus has many expressions over literals
    // alone, which nothing rewrites).
    let rewritten = sets
        .iter()
        .filter(|(_, l, p)| {
            expressions(l)
                .iter()
                .zip(expressions(p))
                .any(|(a, b)| a.ast != b.ast)
        })
        .count();
    assert!(sets.len() > 500, "the corpus' rules load: {}", sets.len());
    assert!(
        rewritten * 3 > sets.len(),
        "{rewritten} of {} sets lowered",
        sets.len()
    );
    let pairs = on_a_large_stack(move || judge_all(&sets, &objects));
    assert!(pairs > 4000, "{pairs} pairs");
}
