//! Shared test helpers: captured AdmissionReviews turned into engine requests, and a policy
//! set like the defaults that does not change when `policies/` is edited.
#![allow(dead_code)]

use std::path::Path;

use portcullis::engine::{NamespaceLabels, Operation, Request};
use portcullis::policy::PolicySet;
use serde_json::Value;

/// A policy set shaped like the shipped defaults (probes, resources, native logging sidecar,
/// default labels) plus a warn-mode image tag policy.
pub const TEST_POLICIES: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: require-probes}
spec:
  mode: enforce
  rules:
    - requireProbes: {}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: require-resources}
spec:
  mode: enforce
  rules:
    - requireResources: {}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: inject-logging-sidecar}
spec:
  mode: enforce
  rules:
    - injectSidecar:
        nativeSidecar: true
        container:
          name: log-shipper
          image: fluent/fluent-bit:3.2.4
          ports: [{name: http, containerPort: 2020}]
          livenessProbe: {httpGet: {path: /, port: http}}
          readinessProbe: {httpGet: {path: /api/v1/health, port: http}}
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {cpu: 100m, memory: 64Mi}
          volumeMounts: [{name: app-logs, mountPath: /var/log/app, readOnly: true}]
        volumes: [{name: app-logs, emptyDir: {}}]
        volumeMounts: [{name: app-logs, mountPath: /var/log/app}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: default-labels}
spec:
  mode: enforce
  rules:
    - defaultLabels:
        labels:
          app.kubernetes.io/managed-by: portcullis
          app.kubernetes.io/name: "{{name}}"
        annotations:
          portcullis.dev/owner: "{{namespace}}/{{kind}}~x"
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: pinned-images}
spec:
  mode: warn
  rules:
    - requireImageTag: {}
"#;

/// The test policy set.
pub fn test_policies() -> PolicySet {
    portcullis::lint::load_str(Path::new("test-policies.yaml"), TEST_POLICIES)
        .expect("test policies load")
}

/// Reads a captured AdmissionReview from tests/fixtures/admission/.
pub fn review(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/admission")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn non_null(v: &Value) -> Option<&Value> {
    (!v.is_null()).then_some(v)
}

/// The engine request for an AdmissionReview (as the webhook builds it).
pub fn request_of(review: &Value) -> Request<'_> {
    let r = &review["request"];
    Request {
        operation: match s(&r["operation"]) {
            Some("UPDATE") => Operation::Update,
            Some("DELETE") => Operation::Delete,
            Some("CONNECT") => Operation::Connect,
            _ => Operation::Create,
        },
        group: s(&r["kind"]["group"]).unwrap_or(""),
        version: s(&r["kind"]["version"]).unwrap_or(""),
        kind: s(&r["kind"]["kind"]).unwrap_or(""),
        resource: s(&r["resource"]["resource"]),
        sub_resource: s(&r["subResource"]),
        namespace: s(&r["namespace"]),
        name: s(&r["name"]),
        object: non_null(&r["object"]).map(Into::into),
        old_object: non_null(&r["oldObject"]).map(Into::into),
        dry_run: r["dryRun"].as_bool().unwrap_or(false),
        username: s(&r["userInfo"]["username"]),
        namespace_labels: NamespaceLabels::NameOnly,
        time: TEST_TIME,
    }
}

/// The time tests judge at (2026-01-01): the sets they use have no exceptions or schedules, so
/// any fixed time gives the same decisions.
pub const TEST_TIME: portcullis::policy::Timestamp =
    portcullis::policy::Timestamp::from_unix(1_767_225_600);
