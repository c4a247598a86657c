//! Namespace labels in the webhook: a policy selecting namespaces by label decides by the
//! labels the namespace has now (from Portcullis' watch, never an API call per review), new
//! namespaces included, and the webhook keeps deciding from its cache when it loses the API
//! server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Suite;
use crate::e2e_support::objects::{container, deployment};
use crate::e2e_support::proxy::TcpProxy;
use crate::e2e_support::{Case, Portcullis, PortcullisOptions, World, http, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::shared(
            "namespace_selector_denies_in_one_namespace_and_admits_in_another",
            namespace_selector_denies_in_one_namespace_and_admits_in_another,
        ),
        Case::shared(
            "a_namespace_created_a_moment_ago_is_judged_by_its_labels",
            a_namespace_created_a_moment_ago_is_judged_by_its_labels,
        ),
        Case::shared(
            "ready_only_once_the_first_list_of_namespaces_is_in",
            ready_only_once_the_first_list_of_namespaces_is_in,
        ),
        Case::exclusive(
            "cut_off_the_api_server_the_cache_serves_and_new_namespaces_only_warn",
            cut_off_the_api_server_the_cache_serves_and_new_namespaces_only_warn,
        ),
    ]
}

const DENIED_FOR_OWNER: &str =
    "[prod-owner-label] missing label owner (metadata.labels[\"owner\"])";

/// A Deployment that passes the default policies, without an `owner` label.
fn app(name: &str, namespace: &str) -> Value {
    let mut d = deployment(name, 1, container("app"));
    d["metadata"]["namespace"] = json!(namespace);
    d
}

/// Whether creating `object` (dry run) is denied for the missing owner label.
fn denied_for_owner(w: &World, object: &Value) -> bool {
    let out = w
        .kubectl()
        .with_object(&["create", "--dry-run=server"], object);
    !out.success && out.stderr.contains(DENIED_FOR_OWNER)
}

/// Waits until Portcullis' namespace cache has caught up with a label change: the dry run's
/// verdict becomes `denied`.
fn wait_verdict(w: &World, object: &Value, denied: bool) {
    wait_for(
        &format!(
            "the webhook to {} {}",
            if denied { "deny" } else { "admit" },
            object["metadata"]
        ),
        Duration::from_secs(30),
        || (denied_for_owner(w, object) == denied).then_some(()),
    );
}

/// The "done when": one policy, selecting namespaces by label, denies in a labelled
/// namespace and admits in another; relabelling moves the verdict with the label.
fn namespace_selector_denies_in_one_namespace_and_admits_in_another(w: &World) {
    let k = w.kubectl();
    let prod = w.namespace("labels-prod");
    let dev = w.namespace("labels-dev");
    k.run(&["label", "namespace", &prod, "env=prod"]).ok();
    let in_prod = app("web", &prod);
    wait_verdict(w, &in_prod, true);
    let err = k.with_object(&["create"], &in_prod).err();
    assert!(
        err.contains(&format!(
            "Portcullis denied Deployment {prod}/web: 1 violation\n1. {DENIED_FOR_OWNER}; fix: add the label owner to metadata.labels"
        )),
        "{err}"
    );
    k.with_object(&["create"], &app("web", &dev)).ok();
    let mut owned = app("owned", &prod);
    owned["metadata"]["labels"]["owner"] = json!("team-a");
    k.with_object(&["create"], &owned).ok();

    // The label moves, the verdict follows.
    k.run(&["label", "namespace", &dev, "env=prod"]).ok();
    k.run(&["label", "namespace", &prod, "env-"]).ok();
    wait_verdict(w, &app("api", &dev), true);
    wait_verdict(w, &app("api", &prod), false);
    k.with_object(&["create"], &app("api", &prod)).ok();
    assert!(
        w.portcullis()
            .metric("portcullis_namespace_cache_namespaces", &[])
            >= 2.0
    );
}

/// `kubectl apply` of a new labelled namespace and a workload in it, in one go: the workload's
/// review arrives a moment after the namespace was created, and is judged by its labels (the
/// webhook waits the moment it takes the watch to deliver the namespace).
fn a_namespace_created_a_moment_ago_is_judged_by_its_labels(w: &World) {
    for i in 0..3 {
        let ns = format!("e2e-fresh-{i}");
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": ns, "labels": {"env": "prod"}}},
            app("web", &ns),
        ]});
        let out = w.kubectl().with_object(&["apply"], &list);
        assert!(!out.success, "{}", out.stdout);
        assert!(out.stderr.contains(DENIED_FOR_OWNER), "{}", out.stderr);
        assert!(
            !out.stderr.contains("not known to Portcullis"),
            "{}",
            out.stderr
        );
    }
}

/// The webhook loses the API server (its connection is cut; the apiserver itself works and
/// keeps calling it): it keeps deciding from its cache, the metric and the log say how stale
/// the cache is, and a namespace created meanwhile (unknown to it) gets warnings, never a
/// denial its labels might not call for. Reconnected, it catches up.
fn cut_off_the_api_server_the_cache_serves_and_new_namespaces_only_warn(w: &World) {
    let k = w.kubectl();
    let suite: &Suite = w.extra();
    let prod = w.namespace("stale-prod");
    k.run(&["label", "namespace", &prod, "env=prod"]).ok();
    wait_verdict(w, &app("web", &prod), true);

    suite.proxy.cut();
    let stale = || {
        w.portcullis()
            .metric("portcullis_namespace_cache_stale_seconds", &[])
    };
    wait_for(
        "the cache to report itself stale",
        Duration::from_secs(30),
        || (stale() > 0.0).then_some(()),
    );
    assert!(
        w.portcullis().log().contains("namespace watch failed"),
        "{}",
        w.portcullis().log_tail(20)
    );
    // What the cache knows still decides.
    assert!(denied_for_owner(w, &app("web", &prod)));

    // A namespace Portcullis has never seen: the policy that selects by label only warns.
    let fresh = "e2e-stale-fresh";
    k.with_object(
        &["create"],
        &json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": fresh, "labels": {"env": "prod"}}}),
    )
    .ok();
    let out = k.with_object(&["create"], &app("web", fresh));
    assert!(out.success, "{}", out.stderr);
    let warnings = out.warnings();
    assert!(
        warnings.iter().any(|w| w.contains(&format!(
            "Deployment {fresh}/web: the labels of its namespace are not known to Portcullis yet"
        )) && w.contains("prod-owner-label")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("[prod-owner-label] missing label owner")),
        "{warnings:?}"
    );
    assert!(
        w.portcullis()
            .metric("portcullis_namespace_cache_misses_total", &[])
            >= 1.0
    );
    let log = w.portcullis().log();
    assert!(
        log.contains("namespace not in the namespace cache"),
        "{log}"
    );

    suite.proxy.restore();
    wait_for(
        "the namespace watch to recover",
        Duration::from_secs(60),
        || (stale() == 0.0).then_some(()),
    );
    // The log says how long the cache was stale.
    let log = w.portcullis().log();
    assert!(
        log.lines()
            .any(|l| l.contains("namespace watch recovered") && l.contains("\"stale_seconds\":")),
        "{}",
        w.portcullis().log_tail(20)
    );
    wait_verdict(w, &app("api", fresh), true);
}

/// Ready only after the first sync: a Portcullis started while it cannot reach the API server
/// is alive but not ready (it would judge without namespace labels, so no review should reach
/// it), says why in its log and metrics, and turns ready once the first list is in.
fn ready_only_once_the_first_list_of_namespaces_is_in(w: &World) {
    let target = format!("127.0.0.1:{}", w.cluster.apiserver_port())
        .parse()
        .expect("apiserver address");
    let proxy = TcpProxy::start(target);
    proxy.cut();
    let kubeconfig = w.cluster.service_account_kubeconfig(
        "portcullis-unsynced",
        "portcullis-system",
        "portcullis",
        &proxy.url(),
    );
    let p = Portcullis::start(
        &w.cluster,
        PortcullisOptions {
            args: vec!["--kubeconfig".to_owned(), kubeconfig.display().to_string()],
            unready: true,
            ..PortcullisOptions::default()
        },
    )
    .expect("portcullis starts");
    wait_for(
        "the first list of namespaces to fail",
        Duration::from_secs(30),
        || (p.metric("portcullis_namespace_cache_watch_errors_total", &[]) >= 1.0).then_some(()),
    );
    let readyz = || http::get(p.admin, "/readyz").expect("GET /readyz").0;
    assert_eq!(readyz(), 503, "{}", p.log_tail(20));
    assert_eq!(p.metric("portcullis_namespace_cache_synced", &[]), 0.0);
    assert!(
        p.log()
            .contains("the first list of namespaces failed: not ready until it succeeds"),
        "{}",
        p.log_tail(20)
    );

    proxy.restore();
    wait_for("portcullis to turn ready", Duration::from_secs(60), || {
        p.ready().then_some(())
    });
    assert_eq!(p.metric("portcullis_namespace_cache_synced", &[]), 1.0);
    assert!(p.metric("portcullis_namespace_cache_namespaces", &[]) >= 4.0);
    assert!(
        p.log().contains("namespace cache synced"),
        "{}",
        p.log_tail(20)
    );
    p.stop();
}
