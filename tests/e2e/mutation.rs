//! What the mutating webhook does to Pods through the real admission chain: how often it is
//! called, what the injected sidecar gets, and names for `generateName` objects.

use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e_support::objects::{self, container, deployment, pod};
use crate::e2e_support::{Case, World, http, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive(
            "one_mutate_call_per_pod_and_no_api_token_for_the_sidecar",
            one_mutate_call_per_pod_and_no_api_token_for_the_sidecar,
        ),
        Case::shared(
            "generate_name_gets_a_name_label_or_a_warning",
            generate_name_gets_a_name_label_or_a_warning,
        ),
    ]
}

const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The volume a container mounts at the API token path, if any.
fn token_volume(pod: &Value, container: &str) -> Option<Value> {
    let c = objects::find_container(pod, container)?;
    let mount = c["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["mountPath"] == TOKEN_PATH)?;
    objects::pod_spec(pod)["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == mount["name"])
        .cloned()
}

fn has_service_account_token(volume: &Value) -> bool {
    volume["projected"]["sources"]
        .as_array()
        .is_some_and(|s| s.iter().any(|src| src.get("serviceAccountToken").is_some()))
}

/// Case 6: with the default policies a Pod reaches `/mutate` once (the apiserver's
/// ServiceAccount plugin re-runs after the injection and must find nothing to change, or
/// `reinvocationPolicy: IfNeeded` calls the webhook again), a controller's Pod not at all, and
/// the log shipper gets no API token while the app keeps its own.
fn one_mutate_call_per_pod_and_no_api_token_for_the_sidecar(w: &World) {
    let ns = w.namespace("one-call");
    let k = w.kubectl();
    let calls = |w: &World| {
        let p = w.portcullis();
        let apiserver = w.cluster.apiserver_metrics();
        (
            p.reviews("mutate", "Pod"),
            p.reviews("validate", "Pod"),
            http::metric(
                &apiserver,
                "apiserver_admission_webhook_request_total",
                &[("name", "mutate.portcullis.dev")],
            ),
        )
    };
    let before = calls(w);
    let created = k
        .with_object(
            &["create", "-n", &ns, "-o", "json"],
            &pod("bare", container("app")),
        )
        .json();
    let after = calls(w);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1.0, 1.0, 1.0),
        "a bare Pod: one /mutate and one /validate call (Portcullis' metrics), one call to the \
         mutating webhook (the apiserver's)"
    );
    let app_token = token_volume(&created, "app").expect("the app mounts its API token");
    assert!(has_service_account_token(&app_token), "{app_token}");
    let shipper = token_volume(&created, "log-shipper");
    assert!(
        shipper
            .as_ref()
            .is_none_or(|v| !has_service_account_token(v)),
        "the log shipper got the API token: {shipper:?}"
    );

    // A Deployment: one /mutate call for it, none for its Pods.
    let before = calls(w);
    let deployment_calls = w.portcullis().reviews("mutate", "Deployment");
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 3, container("app")),
    )
    .ok();
    let pods = wait_for("3 Pods of web", Duration::from_secs(60), || {
        let pods = k.list(&ns, "pods", Some("app=web"));
        (pods.len() == 3).then_some(pods)
    });
    let after = calls(w);
    assert_eq!(
        after.0 - before.0,
        0.0,
        "controller-created Pods do not reach /mutate"
    );
    assert_eq!(
        w.portcullis().reviews("mutate", "Deployment") - deployment_calls,
        1.0
    );
    for p in &pods {
        assert!(token_volume(p, "app").is_some_and(|v| has_service_account_token(&v)));
        assert!(
            token_volume(p, "log-shipper").is_none_or(|v| !has_service_account_token(&v)),
            "{}",
            p["metadata"]["name"]
        );
    }
}

/// Case 2: a Pod created with only `generateName: gen-` gets `app.kubernetes.io/name: gen`
/// (the stem without its trailing `-`); a default label whose value cannot be a label value
/// is left out with a warning kubectl prints, never silently.
fn generate_name_gets_a_name_label_or_a_warning(w: &World) {
    let ns = w.namespace("generate-name");
    let k = w.kubectl();
    let mut generated = pod("", container("app"));
    generated["metadata"] = json!({"generateName": "gen-"});
    let out = k.with_object(&["create", "-n", &ns, "-o", "json"], &generated);
    let stored: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.stderr));
    let name = stored["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() > 4, "{name}");
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/name"], "gen",
        "{}",
        stored["metadata"]
    );

    // 64 characters: a valid Pod name, too long for a label value.
    let long = format!("svc-{}", "x".repeat(60));
    let out = k.with_object(
        &["create", "-n", &ns, "-o", "json"],
        &pod(&long, container("app")),
    );
    let stored: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| panic!("{}", out.stderr));
    assert!(
        stored["metadata"]["labels"]
            .get("app.kubernetes.io/name")
            .is_none()
    );
    assert_eq!(
        stored["metadata"]["labels"]["portcullis.dev/policy-managed"],
        "true"
    );
    let warnings = out.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("[default-labels]")
            && w.contains("app.kubernetes.io/name")
            && w.contains("not added")),
        "kubectl printed no warning about the dropped label: {warnings:?}"
    );
}
