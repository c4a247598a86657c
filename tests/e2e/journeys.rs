//! What a platform engineer does first: apply workloads and read what kubectl says.

use serde_json::{Value, json};

use crate::e2e_support::objects::{self, bare_container, container, deployment, pod};
use crate::e2e_support::{Case, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::shared("denial_lists_every_violation", denial_lists_every_violation),
        Case::shared(
            "dry_run_matches_the_real_apply",
            dry_run_matches_the_real_apply,
        ),
        Case::shared(
            "controller_pods_carry_the_sidecar_once",
            controller_pods_carry_the_sidecar_once,
        ),
    ]
}

/// The example of docs/deploying.md ("Dry-run audits"): a Deployment without probes or
/// resources is refused with every violation and its fix, exactly as documented.
fn denial_lists_every_violation(w: &World) {
    let ns = w.namespace("denial");
    let mut app = deployment("web", 1, json!({"name": "nginx", "image": "nginx:1.27"}));
    app["metadata"]["namespace"] = json!(ns);
    let err = w.kubectl().with_object(&["apply"], &app).err();
    let expected = format!(
        "admission webhook \"validate.portcullis.dev\" denied the request: Portcullis denied Deployment {ns}/web: 6 violations\n\
         1. [require-probes] container \"nginx\": no livenessProbe (spec.template.spec.containers[0].livenessProbe); fix: add a livenessProbe (httpGet, tcpSocket, grpc or exec) so the kubelet restarts the container when it hangs\n\
         2. [require-probes] container \"nginx\": no readinessProbe (spec.template.spec.containers[0].readinessProbe); fix: add a readinessProbe (httpGet, tcpSocket, grpc or exec) so traffic only reaches the container once it is ready\n\
         3. [require-resources] container \"nginx\": no cpu request (spec.template.spec.containers[0].resources.requests.cpu); fix: set resources.requests.cpu (e.g. 100m) so the scheduler can place the Pod\n\
         4. [require-resources] container \"nginx\": no memory request (spec.template.spec.containers[0].resources.requests.memory); fix: set resources.requests.memory (e.g. 128Mi) so the scheduler can place the Pod\n\
         5. [require-resources] container \"nginx\": no cpu limit (spec.template.spec.containers[0].resources.limits.cpu); fix: set resources.limits.cpu (e.g. 100m) to cap what the container may use\n\
         6. [require-resources] container \"nginx\": no memory limit (spec.template.spec.containers[0].resources.limits.memory); fix: set resources.limits.memory (e.g. 128Mi) to cap what the container may use"
    );
    assert!(err.starts_with("Error from server (Forbidden)"), "{err}");
    assert!(err.contains(&expected), "{err}");
    assert!(
        w.kubectl().get(&ns, "deployment", "web").is_none(),
        "nothing stored"
    );
}

/// Fields the apiserver sets on a real create and not on a dry run (or differently).
fn without_server_fields(mut v: Value) -> Value {
    let meta = v["metadata"].as_object_mut().expect("metadata");
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
    ] {
        meta.remove(k);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    // The ServiceAccount plugin names the token volume with a random suffix.
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("kube-api-access-") {
        let end = i + "kube-api-access-".len();
        out.push_str(&rest[..end]);
        out.push_str("xxxxx");
        rest = &rest[(end + 5).min(rest.len())..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).expect("JSON")
}

/// `--dry-run=server` gets exactly the verdict and the object a real create gets, for an
/// admitted workload (mutated) and a denied one (same message).
fn dry_run_matches_the_real_apply(w: &World) {
    let ns = w.namespace("dry-run");
    let k = w.kubectl();
    for object in [
        deployment("web", 2, container("app")),
        pod("single", container("app")),
    ] {
        let dry = k
            .with_object(
                &["create", "-n", &ns, "--dry-run=server", "-o", "json"],
                &object,
            )
            .json();
        let kind = object["kind"].as_str().expect("kind").to_lowercase();
        let name = object["metadata"]["name"].as_str().expect("name");
        assert!(
            k.get(&ns, &kind, name).is_none(),
            "a dry run stores nothing"
        );
        let real = k
            .with_object(&["create", "-n", &ns, "-o", "json"], &object)
            .json();
        assert_eq!(
            without_server_fields(dry.clone()),
            without_server_fields(real),
            "{kind}"
        );
        assert!(
            objects::has_container(&dry, "log-shipper"),
            "mutated: {dry}"
        );
        assert_eq!(
            dry["metadata"]["labels"]["app.kubernetes.io/name"],
            json!(name)
        );
    }
    let denied = deployment("bad", 1, bare_container("app"));
    let dry = k
        .with_object(&["create", "-n", &ns, "--dry-run=server"], &denied)
        .err();
    let real = k.with_object(&["create", "-n", &ns], &denied).err();
    assert_eq!(dry, real);
    assert!(dry.contains("Portcullis denied Deployment"), "{dry}");
}

/// A Deployment's Pods, created by the ReplicaSet controller, carry the log shipper exactly
/// once (it was injected into the template), and the default labels.
fn controller_pods_carry_the_sidecar_once(w: &World) {
    let ns = w.namespace("controller-pods");
    let k = w.kubectl();
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 3, container("app")),
    )
    .ok();
    let pods = wait_for("3 Pods of web", std::time::Duration::from_secs(60), || {
        let pods = k.list(&ns, "pods", Some("app=web"));
        (pods.len() == 3).then_some(pods)
    });
    for p in &pods {
        let names = objects::container_names(p);
        assert_eq!(
            names.iter().filter(|n| *n == "log-shipper").count(),
            1,
            "{names:?}"
        );
        assert_eq!(p["metadata"]["labels"]["app.kubernetes.io/name"], "web");
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
    }
}
