//! The webhook down (killed) or hung (accepting, never answering): what still works, and what
//! it costs.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::e2e_support::objects::{self, container, deployment, pod};
use crate::e2e_support::{Case, World, http, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive(
            "outage_never_blocks_deletion_or_garbage_collection",
            outage_never_blocks_deletion_or_garbage_collection,
        ),
        Case::exclusive(
            "hung_webhook_costs_a_user_write_at_most_5s",
            hung_webhook_costs_a_user_write_at_most_5s,
        ),
    ]
}

fn pods_of(w: &World, ns: &str, app: &str) -> usize {
    w.kubectl()
        .list(ns, "pods", Some(&format!("app={app}")))
        .len()
}

fn replicasets_of(w: &World, ns: &str, app: &str) -> Vec<serde_json::Value> {
    w.kubectl()
        .list(ns, "replicasets", Some(&format!("app={app}")))
}

/// Case 1: with the webhook down, deleting workloads with every propagation policy, and
/// removing a finalizer from an object being deleted, all complete: the garbage collector's
/// updates (ownerReferences, finalizers) never wait for the webhook.
fn outage_never_blocks_deletion_or_garbage_collection(w: &World) {
    let ns = w.namespace("outage-delete");
    let k = w.kubectl();
    for name in ["fg", "orphan", "bg"] {
        k.with_object(
            &["create", "-n", &ns],
            &deployment(name, 2, container("app")),
        )
        .ok();
    }
    let mut finalized = pod("finalized", container("app"));
    finalized["metadata"]["finalizers"] = json!(["example.com/keep"]);
    k.with_object(&["create", "-n", &ns], &finalized).ok();
    for name in ["fg", "orphan", "bg"] {
        wait_for(
            &format!("2 Pods of {name}"),
            Duration::from_secs(60),
            || (pods_of(w, &ns, name) == 2).then_some(()),
        );
    }

    w.portcullis().kill(&w.cluster);
    // The outage is real: a new workload is refused (validating webhook, failurePolicy Fail).
    let refused = k
        .with_object(&["create", "-n", &ns], &pod("new", container("app")))
        .err();
    assert!(
        refused.contains("failed calling webhook \"validate.portcullis.dev\""),
        "{refused}"
    );

    // Foreground: the garbage collector deletes the ReplicaSet and its Pods, then removes the
    // foregroundDeletion finalizers (UPDATEs) of the ReplicaSet and the Deployment.
    k.run(&[
        "delete",
        "deployment",
        "fg",
        "-n",
        &ns,
        "--cascade=foreground",
        "--timeout=45s",
    ])
    .ok();
    assert!(k.get(&ns, "deployment", "fg").is_none());
    wait_for(
        "fg's ReplicaSet and Pods deleted",
        Duration::from_secs(30),
        || (replicasets_of(w, &ns, "fg").is_empty() && pods_of(w, &ns, "fg") == 0).then_some(()),
    );

    // Orphan: the garbage collector removes the ownerReferences of the ReplicaSet (UPDATE),
    // then the orphan finalizer of the Deployment.
    k.run(&[
        "delete",
        "deployment",
        "orphan",
        "-n",
        &ns,
        "--cascade=orphan",
        "--timeout=45s",
    ])
    .ok();
    assert!(k.get(&ns, "deployment", "orphan").is_none());
    let orphans = replicasets_of(w, &ns, "orphan");
    assert_eq!(orphans.len(), 1, "the ReplicaSet stays");
    assert!(
        orphans[0]["metadata"]["ownerReferences"].is_null(),
        "{}",
        orphans[0]["metadata"]
    );
    assert_eq!(pods_of(w, &ns, "orphan"), 2, "its Pods stay");

    // Background: the Deployment goes at once, its dependents after it.
    k.run(&[
        "delete",
        "deployment",
        "bg",
        "-n",
        &ns,
        "--cascade=background",
        "--timeout=45s",
    ])
    .ok();
    wait_for(
        "bg's ReplicaSet and Pods deleted",
        Duration::from_secs(30),
        || (replicasets_of(w, &ns, "bg").is_empty() && pods_of(w, &ns, "bg") == 0).then_some(()),
    );

    // A finalizer removed by its owner (any user) from an object being deleted.
    k.run(&["delete", "pod", "finalized", "-n", &ns, "--wait=false"])
        .ok();
    let pending = k
        .get(&ns, "pod", "finalized")
        .expect("held by its finalizer");
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    k.run(&[
        "patch",
        "pod",
        "finalized",
        "-n",
        &ns,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .ok();
    wait_for("the finalized Pod deleted", Duration::from_secs(30), || {
        k.get(&ns, "pod", "finalized").is_none().then_some(())
    });

    w.portcullis().restart(&w.cluster);
    k.with_object(&["create", "-n", &ns], &pod("after", container("app")))
        .ok();
}

/// The apiserver's count of calls to one webhook.
fn webhook_calls(w: &World, webhook: &str) -> f64 {
    http::metric(
        &w.cluster.apiserver_metrics(),
        "apiserver_admission_webhook_request_total",
        &[("name", webhook)],
    )
}

/// Case 5: a hung webhook (it accepts connections and never answers) costs a user's write at
/// most 5 s in total (both webhooks' timeouts together), and the Pods controllers create for
/// existing workloads nothing at all: they never reach it.
fn hung_webhook_costs_a_user_write_at_most_5s(w: &World) {
    let ns = w.namespace("hung");
    let k = w.kubectl();
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 1, container("app")),
    )
    .ok();
    wait_for("1 Pod of web", Duration::from_secs(60), || {
        (pods_of(w, &ns, "web") == 1).then_some(())
    });

    w.portcullis().pause();
    let (mutate_before, validate_before) = (
        webhook_calls(w, "mutate.portcullis.dev"),
        webhook_calls(w, "validate.portcullis.dev"),
    );

    // A user's write: the mutating webhook times out (fails open), then the validating one
    // (fails closed). Together at most 5 s.
    let start = Instant::now();
    let err = k
        .with_object(&["create", "-n", &ns], &pod("user", container("app")))
        .err();
    let took = start.elapsed();
    assert!(
        err.contains("failed calling webhook \"validate.portcullis.dev\""),
        "{err}"
    );
    assert!(
        took < Duration::from_millis(7500),
        "a hung webhook cost the write {took:?}; the budget is 5 s (2 s mutate + 3 s validate)"
    );

    // Controllers' Pods: scale up; the ReplicaSet controller creates them without calling the
    // webhook.
    k.run(&["scale", "deployment", "web", "-n", &ns, "--replicas=4"])
        .ok();
    wait_for("4 Pods of web", Duration::from_secs(60), || {
        (pods_of(w, &ns, "web") == 4).then_some(())
    });
    let (mutate_after, validate_after) = (
        webhook_calls(w, "mutate.portcullis.dev"),
        webhook_calls(w, "validate.portcullis.dev"),
    );
    assert_eq!(
        (
            mutate_after - mutate_before,
            validate_after - validate_before
        ),
        (1.0, 1.0),
        "only the user's write reached the webhooks"
    );
    w.portcullis().resume();
    let pods = k.list(&ns, "pods", Some("app=web"));
    assert!(
        pods.iter()
            .all(|p| objects::has_container(p, "log-shipper")),
        "from the template"
    );
}
