//! The field table `policy validate` checks CEL field names against
//! (src/policy/compile/k8s_fields.json) is the real kube-apiserver's schema: made here from
//! its `/openapi/v3` (the core, apps and batch groups), starting at the workload kinds and
//! following every field to the types it holds. The case fails when the checked-in table
//! differs; with `PORTCULLIS_WRITE_FIELDS=1` it writes the table instead (how it is made).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde_json::{Map, Value};

use crate::e2e_support::{Case, ROOT, World};

/// The table, relative to the repository root.
const TABLE: &str = "src/policy/compile/k8s_fields.json";
/// Set to rewrite the table from the API server rather than compare.
const WRITE_ENV: &str = "PORTCULLIS_WRITE_FIELDS";
/// The OpenAPI v3 documents of the workload kinds' groups.
const DOCUMENTS: [&str; 3] = [
    "/openapi/v3/api/v1",
    "/openapi/v3/apis/apps/v1",
    "/openapi/v3/apis/batch/v1",
];
/// Where the table starts (src/policy/compile/fields.rs `KIND_TYPES`).
const KINDS: [&str; 8] = [
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.core.v1.ReplicationController",
];

pub fn cases() -> Vec<Case> {
    vec![Case::shared(
        "cel_field_table_is_the_api_servers_schema",
        field_table,
    )]
}

/// The schema type a property refers to (`$ref`, or `allOf: [{$ref}]` as v3 writes it).
fn reference(p: &Value) -> Option<&str> {
    let r = p
        .get("$ref")
        .or_else(|| p.get("allOf")?.as_array()?.first()?.get("$ref"))?;
    r.as_str()?.strip_prefix("#/components/schemas/")
}

/// A property's type in the table's words: a type with fields by name, `[]T`, `{}T`, or ``
/// (a scalar, or a type without fields: Quantity, Time, IntOrString, RawExtension, ...).
fn field_type(p: &Value, schemas: &Map<String, Value>, queue: &mut VecDeque<String>) -> String {
    if let Some(r) = reference(p) {
        let has_fields = schemas
            .get(r)
            .and_then(|s| s.get("properties"))
            .is_some_and(|f| f.as_object().is_some_and(|f| !f.is_empty()));
        if has_fields {
            queue.push_back(r.to_owned());
            return r.to_owned();
        }
        return String::new();
    }
    match p.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "[]{}",
            p.get("items")
                .map(|i| field_type(i, schemas, queue))
                .unwrap_or_default()
        ),
        Some("object") => match p.get("additionalProperties") {
            Some(v) if v.is_object() => format!("{{}}{}", field_type(v, schemas, queue)),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// The table from the merged `components.schemas` of the documents.
pub fn table(schemas: &Map<String, Value>) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut queue: VecDeque<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
    while let Some(name) = queue.pop_front() {
        if out.contains_key(&name) {
            continue;
        }
        let properties = schemas
            .get(&name)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("the API server's schema has no fields for {name}"));
        let fields: BTreeMap<String, String> = properties
            .iter()
            .map(|(f, p)| (f.clone(), field_type(p, schemas, &mut queue)))
            .collect();
        out.insert(name, fields);
    }
    out
}

fn field_table(w: &World) {
    let mut schemas = Map::new();
    for doc in DOCUMENTS {
        let v: Value = w.kubectl().raw(doc).json();
        let found = v
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{doc} has no components.schemas"));
        schemas.extend(found.clone());
    }
    let made = table(&schemas);
    assert!(
        made.get("io.k8s.api.core.v1.PodSpec")
            .is_some_and(|t| t.get("containers").map(String::as_str)
                == Some("[]io.k8s.api.core.v1.Container")),
        "the table made from the API server has PodSpec.containers"
    );
    let path = Path::new(ROOT).join(TABLE);
    let text = serde_json::to_string_pretty(&made).expect("the table serializes") + "\n";
    if std::env::var_os(WRITE_ENV).is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {TABLE}: {e}"));
        return;
    }
    let stored: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {TABLE}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{TABLE} is not a field table: {e}"));
    let mut differences = Vec::new();
    for (name, fields) in &made {
        match stored.get(name) {
            None => differences.push(format!("{name}: missing from {TABLE}")),
            Some(s) if s != fields => {
                for (f, t) in fields {
                    if s.get(f) != Some(t) {
                        differences.push(format!(
                            "{name}.{f}: the API server says {t:?}, {TABLE} {:?}",
                            s.get(f)
                        ));
                    }
                }
                for f in s.keys().filter(|f| !fields.contains_key(*f)) {
                    differences.push(format!(
                        "{name}.{f}: in {TABLE}, not in the API server's schema"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for name in stored.keys().filter(|n| !made.contains_key(*n)) {
        differences.push(format!(
            "{name}: in {TABLE}, not reachable in the API server's schema"
        ));
    }
    assert!(
        differences.is_empty(),
        "{TABLE} differs from the real kube-apiserver's /openapi/v3 (rewrite it with {WRITE_ENV}=1):\n{}",
        differences.join("\n")
    );
}
