//! deploy/overlays/native with the webhook killed: the API server keeps denying what the
//! policies deny (ValidatingAdmissionPolicy, failurePolicy: Fail) and keeps admitting the rest
//! (both webhooks fail open).

use std::time::Duration;

use serde_json::{Value, json};

use crate::deploy_support::Checkout;
use crate::e2e_support::objects::{bare_container, container, deployment, has_container, pod};
use crate::e2e_support::portcullis::apply_webhooks;
use crate::e2e_support::{Case, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![Case::exclusive(
        "native_overlay_enforces_with_the_webhook_killed",
        native_overlay_enforces_with_the_webhook_killed,
    )]
}

fn native_overlay_enforces_with_the_webhook_killed(w: &World) {
    let ns = w.namespace("native-overlay");
    let k = w.kubectl();
    let rendered = Checkout::with_certs().render("deploy/overlays/native");
    let (webhooks, natives): (Vec<Value>, Vec<Value>) = {
        let p = w.portcullis();
        let ca = p.ca_bundle();
        let mut hooks = Vec::new();
        let mut natives = Vec::new();
        for o in &rendered.objects {
            let kind = o["kind"].as_str().unwrap_or("");
            if kind.ends_with("WebhookConfiguration") {
                let mut o = o.clone();
                for hook in o["webhooks"].as_array_mut().expect("webhooks") {
                    assert_eq!(hook["failurePolicy"], "Ignore", "the overlay fails open");
                    let path = hook["clientConfig"]["service"]["path"]
                        .as_str()
                        .expect("service path")
                        .to_owned();
                    hook["clientConfig"] = json!({"url": p.url(&path), "caBundle": ca});
                }
                hooks.push(o);
            } else if kind.starts_with("ValidatingAdmissionPolicy") {
                natives.push(o.clone());
            }
        }
        (hooks, natives)
    };
    assert_eq!(webhooks.len(), 2);
    // One ValidatingAdmissionPolicy (require-probes and require-resources share it) and its
    // binding.
    assert!(natives.len() >= 2, "{natives:?}");
    apply_webhooks(&w.cluster, &webhooks);
    k.with_object(
        &["apply"],
        &json!({"apiVersion": "v1", "kind": "List", "items": natives}),
    )
    .ok();
    // The API server's ValidatingAdmissionPolicy plugin runs before the webhooks: once the
    // policies are in force, their denial is the one kubectl shows.
    wait_for(
        "the native policies to be in force",
        Duration::from_secs(60),
        || {
            let out = k.with_object(
                &["create", "-n", &ns, "--dry-run=server"],
                &pod("probe", bare_container("app")),
            );
            out.stderr
                .contains("ValidatingAdmissionPolicy 'portcullis.enforce'")
                .then_some(())
        },
    );

    w.portcullis().kill(&w.cluster);

    // Violations are still denied, in Portcullis' words.
    let err = k
        .with_object(
            &["create", "-n", &ns],
            &deployment("no-probes", 1, bare_container("app")),
        )
        .err();
    assert!(
        err.contains(&format!(
            "ValidatingAdmissionPolicy 'portcullis.enforce' with binding 'portcullis.enforce' denied request: Portcullis denied Deployment {ns}/no-probes: 2 violations: [require-probes] container \"app\": no livenessProbe (spec.template.spec.containers[0].livenessProbe); fix: add a livenessProbe"
        )),
        "{err}"
    );
    let mut no_limits = container("app");
    no_limits["resources"] = json!({"requests": {"cpu": "50m", "memory": "64Mi"}});
    let err = k
        .with_object(&["create", "-n", &ns], &pod("no-limits", no_limits))
        .err();
    assert!(
        err.contains("ValidatingAdmissionPolicy 'portcullis.enforce'")
            && err.contains("[require-resources] container \"app\": no cpu limit (spec.containers[0].resources.limits.cpu)"),
        "{err}"
    );

    // Compliant workloads are created: the mutating webhook fails open (no sidecar), the
    // validating webhook too, and the policies find nothing.
    k.with_object(
        &["create", "-n", &ns],
        &deployment("web", 1, container("app")),
    )
    .ok();
    let d = k.get(&ns, "deployment", "web").expect("created");
    assert!(
        !has_container(&d, "log-shipper"),
        "the mutating webhook is down"
    );
    k.with_object(&["create", "-n", &ns], &pod("ok", container("app")))
        .ok();

    k.with_object(
        &["delete"],
        &json!({"apiVersion": "v1", "kind": "List", "items": natives}),
    )
    .ok();
    k.run(&[
        "delete",
        "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "portcullis",
    ])
    .ok();
}
