//! A review's CEL values are made at most once, whatever the number of CEL rules: counted by
//! `cel_values::MAPS_CONVERTED` (a test build's counter). A module of its own, used by none,
//! so that reading the engine and the policy loader from here makes no cycle.

use std::path::Path;

use serde_json::{Value as JsonValue, json};

use super::cel_values::MAPS_CONVERTED;
use crate::engine::{Request, evaluate};
use crate::policy::Timestamp;

/// A policy document holding `rules` (YAML list items, indented for `rules:`).
fn policy(name: &str, rules: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  mode: enforce\n  rules:\n{rules}"
    )
}

const OBJECT_RULE: &str =
    "    - cel:\n        validations:\n          - expression: \"object.spec.replicas >= 1\"\n";
const POD_RULES: &str = "    - cel:\n        variables:\n          - name: labels\n            expression: \"podMetadata.?labels.orValue({})\"\n        validations:\n          - expression: \"'app' in variables.labels\"\n          - expression: \"podSpec.containers.size() > 0\"\n";
const EACH_CONTAINER: &str = "    - cel:\n        forEachContainer: true\n        validations:\n          - expression: \"container.image != ''\"\n";
const SIDECAR: &str = "    - injectSidecar:\n        container: {name: log-shipper, image: fluent/fluent-bit:3.2.4}\n        volumes: [{name: app-logs, emptyDir: {}}]\n        volumeMounts: [{name: app-logs, mountPath: /var/log/app}]\n";

fn deployment() -> JsonValue {
    let containers: Vec<JsonValue> = (0..3)
        .map(|i| {
            json!({"name": format!("app-{i}"), "image": "registry.example.com/app:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "resources": {"requests": {"cpu": "100m"}}})
        })
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}}}})
}

fn maps(v: &JsonValue) -> usize {
    match v {
        JsonValue::Object(o) => 1 + o.values().map(maps).sum::<usize>(),
        JsonValue::Array(a) => a.iter().map(maps).sum(),
        _ => 0,
    }
}

/// The maps converted to CEL values while one review of `object` is evaluated.
fn converted(policies: &[String], object: &JsonValue) -> usize {
    let set = crate::policy::load::compile_str(Path::new("t.yaml"), &policies.concat())
        .expect("policies load");
    let before = MAPS_CONVERTED.with(std::cell::Cell::get);
    evaluate(
        &set,
        &Request::create(object, Timestamp::from_unix(1_767_225_600)),
    );
    MAPS_CONVERTED.with(std::cell::Cell::get) - before
}

#[test]
fn a_set_without_cel_rules_makes_no_cel_values() {
    let set = [policy(
        "p",
        "    - requireProbes: {}\n    - requireResources: {}\n",
    )];
    assert_eq!(converted(&set, &deployment()), 0);
}

#[test]
fn only_what_the_rules_read_is_converted() {
    let object = deployment();
    // `object.spec.replicas`: the object's map and its spec's, nothing else.
    assert_eq!(converted(&[policy("a", OBJECT_RULE)], &object), 2);
    // The whole object when a rule compares it whole.
    let whole = "    - cel:\n        validations:\n          - expression: \"object != null\"\n";
    assert_eq!(converted(&[policy("w", whole)], &object), maps(&object));
    // `container.image`: each container's map.
    assert_eq!(converted(&[policy("c", EACH_CONTAINER)], &object), 3);
}

#[test]
fn each_value_is_converted_once_however_many_cel_rules_read_it() {
    let object = deployment();
    let rules = [OBJECT_RULE, POD_RULES, EACH_CONTAINER];
    let once: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| policy(&format!("p{i}"), r))
        .collect();
    let one = converted(&once, &object);
    let mut twice = once.clone();
    twice.extend(
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| policy(&format!("q{i}"), r)),
    );
    assert_eq!(converted(&twice, &object), one);
    // The union of what they read, however they are ordered.
    let mut reversed = once.clone();
    reversed.reverse();
    assert_eq!(converted(&reversed, &object), one);
}

#[test]
fn a_container_with_planned_mounts_is_converted_once_however_many_rules_read_it() {
    let object = deployment();
    let one = converted(
        &[policy("s", SIDECAR), policy("c", EACH_CONTAINER)],
        &object,
    );
    let three = converted(
        &[
            policy("s", SIDECAR),
            policy("c", EACH_CONTAINER),
            policy("d", EACH_CONTAINER),
            policy("e", EACH_CONTAINER),
        ],
        &object,
    );
    // The three containers and the sidecar.
    assert_eq!(one, 4);
    assert_eq!(three, one);
}
