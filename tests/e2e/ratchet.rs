//! UPDATE ratcheting on a workload that existed before Portcullis was installed.

use std::time::Duration;

use serde_json::json;

use crate::e2e_support::objects::{self, bare_container, container, deployment, pod};
use crate::e2e_support::{Case, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive(
            "updates_ratchet_on_a_workload_created_before_the_webhook",
            updates_ratchet_on_a_workload_created_before_the_webhook,
        ),
        Case::exclusive(
            "set_image_ratchets_by_container_and_field_not_by_message",
            set_image_ratchets_by_container_and_field_not_by_message,
        ),
    ]
}

/// A Deployment without probes or resources, created before the webhook configurations were
/// installed: `kubectl scale`, `label` and `set image` go through (the old violations come back
/// as warnings, and the first UPDATE adds the sidecar and default labels to the template); an
/// update that adds a violating container is denied for that container only.
fn updates_ratchet_on_a_workload_created_before_the_webhook(w: &World) {
    let ns = w.namespace("ratchet");
    let k = w.kubectl();
    k.run(&[
        "delete",
        "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "portcullis",
    ])
    .ok();
    wait_for("the webhooks to be gone", Duration::from_secs(30), || {
        k.with_object(
            &["create", "-n", &ns, "--dry-run=server"],
            &pod("probe", bare_container("app")),
        )
        .success
        .then_some(())
    });
    k.with_object(
        &["create", "-n", &ns],
        &deployment("legacy", 1, bare_container("app")),
    )
    .ok();
    w.portcullis().install_webhooks(&w.cluster);

    // Subresource: never judged, never mutated.
    let out = k.run(&["scale", "deployment", "legacy", "-n", &ns, "--replicas=2"]);
    assert!(out.warnings().is_empty(), "{:?}", out.warnings());
    out.ok();
    let d = k.get(&ns, "deployment", "legacy").expect("legacy");
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(
        !objects::has_container(&d, "log-shipper"),
        "scale mutates nothing"
    );

    // Relabelling: allowed, the old violations as warnings; the mutating webhook adds the
    // sidecar and default labels (the pod template changes, so the Pods roll).
    let out = k.run(&["label", "deployment", "legacy", "-n", &ns, "tier=web"]);
    let warnings = out.warnings();
    out.ok();
    assert!(
        warnings.iter().any(|w| w.starts_with(&format!(
            "pre-existing, not blocking: Deployment {ns}/legacy: [require-probes]"
        ))),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("[require-resources]")),
        "{warnings:?}"
    );
    let d = k.get(&ns, "deployment", "legacy").expect("legacy");
    assert!(objects::has_container(&d, "log-shipper"));
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/name"], "legacy");

    let out = k.run(&[
        "set",
        "image",
        "deployment/legacy",
        "-n",
        &ns,
        "app=registry.example/app:2.0",
    ]);
    let warnings = out.warnings();
    out.ok();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("pre-existing, not blocking")),
        "{warnings:?}"
    );

    // A new container without probes or resources is new: denied, and only it is named.
    let extra = json!([{"op": "add", "path": "/spec/template/spec/containers/-",
        "value": {"name": "extra", "image": "registry.example/extra:1.0"}}]);
    let err = k
        .run(&[
            "patch",
            "deployment",
            "legacy",
            "-n",
            &ns,
            "--type=json",
            "-p",
            &extra.to_string(),
        ])
        .err();
    let denial = err.split_once("Error from server").map_or("", |(_, d)| d);
    assert!(denial.contains("container \"extra\""), "{err}");
    assert!(!denial.contains("container \"app\""), "{err}");
    // The old ones are still said, as warnings.
    assert!(
        err.starts_with("Warning: pre-existing, not blocking"),
        "{err}"
    );
}

/// `kubectl set image` on a Deployment whose image broke `require-image-tag` before the policy
/// was enforced: another image that breaks it (the message quotes the image, so its text
/// changes) only warns, as the same container's same field already did; a pinned image
/// passes; from there, an unpinned one is new and denied. Judged on what the apiserver sends:
/// the stored object with its defaults and the sidecar injected when it was created, the new
/// one as kubectl's strategic merge patch left it.
fn set_image_ratchets_by_container_and_field_not_by_message(w: &World) {
    let ns = w.namespace("ratchet-image");
    let k = w.kubectl();
    let mut app = container("app");
    app["image"] = "registry.example/app:latest".into();
    k.with_object(&["create", "-n", &ns], &deployment("tagged", 1, app))
        .ok();

    let file = w.portcullis().policy_dir().join("optional-rules.yaml");
    let shipped = std::fs::read_to_string(&file).expect("optional-rules.yaml");
    let off = "mode: \"off\"";
    assert!(shipped.contains(off), "{shipped}");
    let generation = w.portcullis().generation();
    std::fs::write(&file, shipped.replacen(off, "mode: enforce", 1)).expect("write");
    wait_for(
        "the enforced image policy to be loaded",
        Duration::from_secs(30),
        || (w.portcullis().generation() > generation).then_some(()),
    );

    let set_image = |image: &str| {
        k.run(&[
            "set",
            "image",
            "deployment/tagged",
            "-n",
            &ns,
            &format!("app={image}"),
        ])
    };
    let out = set_image("registry.example/app");
    let warnings = out.warnings();
    out.ok();
    assert!(
        warnings.iter().any(|w| w.starts_with(&format!(
            "pre-existing, not blocking: Deployment {ns}/tagged: [require-image-tag] container \"app\": image \"registry.example/app\" has no tag"
        ))),
        "{warnings:?}"
    );
    let d = k.get(&ns, "deployment", "tagged").expect("tagged");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/app"
    );

    let out = set_image("registry.example/app:2.0");
    let warnings = out.warnings();
    out.ok();
    assert!(
        !warnings.iter().any(|w| w.contains("[require-image-tag]")),
        "{warnings:?}"
    );

    let err = set_image("registry.example/app:latest").err();
    assert!(
        err.contains("[require-image-tag] container \"app\": image \"registry.example/app:latest\" uses the forbidden tag :latest"),
        "{err}"
    );

    let generation = w.portcullis().generation();
    std::fs::write(&file, &shipped).expect("restore");
    wait_for(
        "the shipped optional rules to be loaded again",
        Duration::from_secs(30),
        || (w.portcullis().generation() > generation).then_some(()),
    );
}
