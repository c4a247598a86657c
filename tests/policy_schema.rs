//! `portcullis policy schema`: the JSON Schema is generated from the file model and describes
//! the format the loader accepts.

use portcullis::cli::policy::schema_json;
use portcullis::policy::model::Rule;
use serde_json::Value;

fn schema() -> Value {
    serde_json::from_str(&schema_json().expect("schema renders")).expect("schema is JSON")
}

fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
    &schema["$defs"][name]
}

#[test]
fn the_root_covers_policies_exceptions_and_tests() {
    let s = schema();
    assert_eq!(s["title"], "Portcullis document");
    let text = s["anyOf"].to_string();
    for kind in ["PolicyDocument", "ExceptionDocument", "TestDocument"] {
        assert!(text.contains(kind), "{kind}: {text}");
        assert_eq!(def(&s, kind)["additionalProperties"], false, "{kind}");
    }
    for block in [
        "ExceptionSpec",
        "ExceptionMatch",
        "ScheduleStep",
        "TestCase",
        "Expectation",
        "ExpectedFinding",
    ] {
        assert_eq!(def(&s, block)["additionalProperties"], false, "{block}");
    }
    let required = def(&s, "ExceptionSpec")["required"].to_string();
    for field in ["owner", "reason", "expires", "policies", "match"] {
        assert!(required.contains(field), "{field}: {required}");
    }
    assert!(def(&s, "PolicySpec")["properties"]["schedule"].is_object());
    assert_eq!(def(&s, "Timestamp")["type"], "string");
}

#[test]
fn the_document_and_its_blocks_are_strict() {
    let root = schema();
    let s = def(&root, "PolicyDocument");
    assert_eq!(s["additionalProperties"], false);
    let required: Vec<&str> = s["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, vec!["apiVersion", "kind", "metadata", "spec"]);
    for block in [
        "PolicySpec",
        "Match",
        "Exclude",
        "LabelSelector",
        "RequireProbes",
    ] {
        assert_eq!(def(&root, block)["additionalProperties"], false, "{block}");
    }
    assert!(def(&root, "PolicySpec")["properties"]["match"].is_object());
}

#[test]
fn a_rule_is_a_map_with_exactly_one_rule_type() {
    let s = schema();
    let rule = def(&s, "RuleMap");
    assert_eq!(rule["title"], "Rule");
    assert_eq!(rule["minProperties"], 1);
    assert_eq!(rule["maxProperties"], 1);
    let mut props: Vec<&str> = rule["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    props.sort_unstable();
    let mut names = Rule::TYPE_NAMES.to_vec();
    names.sort_unstable();
    assert_eq!(props, names);
}

#[test]
fn modes_and_kinds_are_enumerated() {
    let s = schema();
    let text = def(&s, "Mode").to_string();
    for mode in ["enforce", "warn", "audit", "off"] {
        assert!(text.contains(&format!("\"{mode}\"")), "{mode}: {text}");
    }
    let kinds = def(&s, "WorkloadKind").to_string();
    assert!(kinds.contains("\"CronJob\""), "{kinds}");
}

#[test]
fn the_sidecar_container_is_the_kubernetes_container_schema() {
    let s = schema();
    let container = def(&s, "InjectSidecar")["properties"]["container"].to_string();
    assert!(container.contains("Container"), "{container}");
    let c = def(&s, "io.k8s.api.core.v1.Container");
    let c = if c.is_null() { def(&s, "Container") } else { c };
    assert!(c["properties"]["livenessProbe"].is_object(), "{c}");
}
