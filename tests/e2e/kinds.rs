//! Every kind Portcullis judges, the namespaces it never sees, and label keys with `/`.

use serde_json::{Value, json};

use crate::e2e_support::objects::{self, bare_container, container, pod};
use crate::e2e_support::{Case, World, http};

pub fn cases() -> Vec<Case> {
    vec![
        Case::shared(
            "every_kind_is_judged_and_mutated",
            every_kind_is_judged_and_mutated,
        ),
        Case::exclusive(
            "exempt_namespaces_never_reach_the_webhook",
            exempt_namespaces_never_reach_the_webhook,
        ),
        Case::shared(
            "label_keys_with_slashes_are_patched_and_kept",
            label_keys_with_slashes_are_patched_and_kept,
        ),
    ]
}

/// A workload of `kind` around one container.
fn workload(kind: &str, name: &str, c: Value) -> Value {
    let labels = json!({"app": name});
    let template = json!({"metadata": {"labels": labels}, "spec": {"containers": [c]}});
    let run_once = |mut t: Value| {
        t["spec"]["restartPolicy"] = json!("Never");
        t
    };
    let (api_version, spec) = match kind {
        "Pod" => return pod(name, c),
        "Deployment" | "DaemonSet" | "ReplicaSet" => (
            "apps/v1",
            json!({"selector": {"matchLabels": labels}, "template": template}),
        ),
        "StatefulSet" => (
            "apps/v1",
            json!({"serviceName": name, "selector": {"matchLabels": labels}, "template": template}),
        ),
        "ReplicationController" => ("v1", json!({"selector": labels, "template": template})),
        "Job" => ("batch/v1", json!({"template": run_once(template)})),
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": run_once(template)}}}),
        ),
        other => panic!("{other}"),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
}

const KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// Each kind, through its own API group: a container without probes or resources is denied
/// (Jobs and CronJobs run to completion: resources only), a compliant one is admitted with
/// the log shipper and the default labels on the object and its pod template.
fn every_kind_is_judged_and_mutated(w: &World) {
    let ns = w.namespace("kinds");
    let k = w.kubectl();
    for kind in KINDS {
        let name = kind.to_lowercase();
        let err = k
            .with_object(
                &["create", "-n", &ns, "--dry-run=server"],
                &workload(kind, &name, bare_container("app")),
            )
            .err();
        assert!(
            err.contains(&format!("Portcullis denied {kind} {ns}/{name}")),
            "{kind}: {err}"
        );
        let probes = err.contains("[require-probes]");
        assert_eq!(probes, !matches!(kind, "Job" | "CronJob"), "{kind}: {err}");
        assert!(err.contains("[require-resources]"), "{kind}: {err}");

        let admitted = k
            .with_object(
                &["create", "-n", &ns, "--dry-run=server", "-o", "json"],
                &workload(kind, &name, container("app")),
            )
            .json();
        assert!(
            objects::has_container(&admitted, "log-shipper"),
            "{kind}: {admitted}"
        );
        assert_eq!(
            admitted["metadata"]["labels"]["app.kubernetes.io/name"],
            json!(name),
            "{kind}"
        );
        let template_labels = match kind {
            "Pod" => admitted["metadata"]["labels"].clone(),
            "CronJob" => {
                admitted["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"].clone()
            }
            _ => admitted["spec"]["template"]["metadata"]["labels"].clone(),
        };
        assert_eq!(
            template_labels["portcullis.dev/policy-managed"], "true",
            "{kind}"
        );
    }
}

/// Kubernetes' own namespaces and Portcullis' own are never sent to the webhook: a Pod there
/// without probes or resources is admitted untouched, and neither Portcullis nor the
/// apiserver counts a call.
fn exempt_namespaces_never_reach_the_webhook(w: &World) {
    let k = w.kubectl();
    if k.get("", "namespace", "portcullis-system").is_none() {
        k.run(&["create", "namespace", "portcullis-system"]).ok();
    }
    let calls = |w: &World| {
        let p = w.portcullis();
        let apiserver = w.cluster.apiserver_metrics();
        (
            p.metric("portcullis_admission_requests_total", &[]),
            http::metric(&apiserver, "apiserver_admission_webhook_request_total", &[]),
        )
    };
    let before = calls(w);
    for ns in ["kube-system", "kube-public", "portcullis-system"] {
        w.cluster.namespace_ready(ns);
        let created = k
            .with_object(
                &["create", "-n", ns, "-o", "json"],
                &pod("exempt-bare", bare_container("app")),
            )
            .json();
        assert!(!objects::has_container(&created, "log-shipper"), "{ns}");
        assert!(created["metadata"]["labels"].is_null(), "{ns}");
        k.run(&["delete", "pod", "exempt-bare", "-n", ns, "--wait=false"])
            .ok();
    }
    assert_eq!(calls(w), before, "no call reached the webhook");
}

/// Label keys with `/` (escaped as `~1` in the JSON Patch) go through the real apiserver: the
/// defaults are added, the user's own keys and values are kept.
fn label_keys_with_slashes_are_patched_and_kept(w: &World) {
    let ns = w.namespace("slashes");
    let mut d = workload("Deployment", "shop-web", container("app"));
    d["metadata"]["labels"] =
        json!({"app": "shop-web", "app.kubernetes.io/part-of": "shop", "example.com/team": "a"});
    d["spec"]["template"]["metadata"]["labels"] =
        json!({"app": "shop-web", "app.kubernetes.io/name": "mine"});
    let stored = w
        .kubectl()
        .with_object(&["create", "-n", &ns, "-o", "json"], &d)
        .json();
    assert_eq!(
        stored["metadata"]["labels"],
        json!({"app": "shop-web", "app.kubernetes.io/part-of": "shop", "example.com/team": "a",
               "app.kubernetes.io/name": "shop-web", "portcullis.dev/policy-managed": "true"})
    );
    assert_eq!(
        stored["spec"]["template"]["metadata"]["labels"],
        json!({"app": "shop-web", "app.kubernetes.io/name": "mine", "portcullis.dev/policy-managed": "true"}),
        "a value the user set is never overwritten"
    );
}
