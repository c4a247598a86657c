//! The engine against AdmissionReviews captured from a real kube-apiserver.

mod common;

use common::{request_of, review, test_policies};
use portcullis::engine::{
    Decision, Effect, FindingKind, MAX_WARNING_LEN, MAX_WARNINGS_TOTAL, Skip, evaluate,
};
use serde_json::Value;

fn decide(name: &str) -> Decision {
    let set = test_policies();
    let r = review(name);
    evaluate(&set, &request_of(&r))
}

fn denied_fields(d: &Decision) -> Vec<String> {
    d.violations()
        .filter(|f| f.effect == Effect::Deny)
        .map(|f| format!("{}/{}", f.container.as_deref().unwrap_or(""), f.field))
        .collect()
}

fn apply(review: &Value, d: &Decision) -> Value {
    let mut obj = review["request"]["object"].clone();
    json_patch::patch(&mut obj, &d.patch.to_json_patch())
        .expect("patch applies to the captured object");
    obj
}

const NO_PROBES_NO_RESOURCES: [&str; 6] = [
    "livenessProbe",
    "readinessProbe",
    "resources.requests.cpu",
    "resources.requests.memory",
    "resources.limits.cpu",
    "resources.limits.memory",
];

#[test]
fn bare_workloads_are_denied_with_every_violation() {
    let cases = [
        ("validate-create-pod-bare.json", "app", "spec.containers[0]"),
        (
            "validate-create-pod-dryrun.json",
            "app",
            "spec.containers[0]",
        ),
        (
            "validate-create-deployment.json",
            "nginx",
            "spec.template.spec.containers[0]",
        ),
        (
            "validate-create-deployment-dryrun.json",
            "nginx",
            "spec.template.spec.containers[0]",
        ),
        (
            "validate-create-replicaset.json",
            "app",
            "spec.template.spec.containers[0]",
        ),
    ];
    for (fixture, container, path) in cases {
        let d = decide(fixture);
        assert!(!d.allowed, "{fixture}");
        let want: Vec<String> = NO_PROBES_NO_RESOURCES
            .iter()
            .map(|f| format!("{container}/{path}.{f}"))
            .collect();
        assert_eq!(denied_fields(&d), want, "{fixture}");
        let msg = d.denial_message().expect("denied has a message");
        assert!(msg.starts_with("Portcullis denied "), "{msg}");
        assert!(msg.contains("6 violations"), "{msg}");
        assert!(
            msg.contains(&format!(
                "[require-probes] container \"{container}\": no livenessProbe"
            )),
            "{msg}"
        );
        assert!(msg.contains("fix: set resources.limits.memory"), "{msg}");
    }
}

#[test]
fn run_to_completion_workloads_skip_probes_but_need_resources() {
    for fixture in ["validate-create-job.json", "validate-create-cronjob.json"] {
        let d = decide(fixture);
        let rules: Vec<&str> = d.violations().map(|f| f.rule).collect();
        assert!(!rules.contains(&"requireProbes"), "{fixture}: {rules:?}");
        let r = review(fixture);
        let spec = if fixture.contains("cronjob") {
            &r["request"]["object"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &r["request"]["object"]["spec"]["template"]["spec"]
        };
        let has_resources = spec["containers"][0]["resources"]["limits"].is_object();
        assert_eq!(
            d.allowed,
            has_resources,
            "{fixture}: {:?}",
            d.denial_message()
        );
    }
}

#[test]
fn compliant_pod_with_native_sidecar_is_allowed_untouched() {
    for fixture in [
        "validate-create-pod-compliant-native-sidecar.json",
        "mutate-create-pod-compliant-native-sidecar.json",
    ] {
        let d = decide(fixture);
        assert!(d.allowed, "{fixture}: {:?}", d.denial_message());
        assert_eq!(d.violations().count(), 0, "{fixture}");
        // The log shipper is already there; only absent default labels are added.
        assert!(
            d.mutations().all(|m| m.rule == "defaultLabels"),
            "{fixture}"
        );
        let r = review(fixture);
        let out = apply(&r, &d);
        assert_eq!(
            out["metadata"]["labels"]["app.kubernetes.io/name"], "good",
            "never overwrite"
        );
        assert_eq!(
            out["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "portcullis"
        );
        assert_eq!(
            out["metadata"]["annotations"]["example.com/owner"],
            "team~payments/x"
        );
    }
}

#[test]
fn controller_owned_objects_from_controllers_are_not_judged() {
    for fixture in [
        "validate-create-pod-owned-by-replicaset.json",
        "validate-create-pod-owned-by-statefulset.json",
        "validate-create-pod-owned-by-job.json",
        "validate-create-replicaset-owned-by-deployment.json",
        "mutate-create-pod-owned-by-replicaset.json",
    ] {
        let d = decide(fixture);
        assert!(d.allowed, "{fixture}");
        assert!(
            matches!(d.skipped, Some(Skip::ControllerOwned { .. })),
            "{fixture}: {:?}",
            d.skipped
        );
        assert!(
            d.patch.0.is_empty(),
            "{fixture}: template mutations landed at the owner"
        );
    }
}

#[test]
fn forged_owner_reference_is_judged_like_a_bare_pod() {
    let set = test_policies();
    let mut r = review("validate-create-pod-owned-by-replicaset.json");
    r["request"]["userInfo"]["username"] = "alice".into();
    let d = evaluate(&set, &request_of(&r));
    assert_eq!(d.skipped, None);
    assert!(!d.allowed);
}

#[test]
fn subresources_are_not_judged() {
    for fixture in [
        "validate-update-deployment-scale-subresource.json",
        "mutate-update-deployment-scale-subresource.json",
    ] {
        let d = decide(fixture);
        assert!(d.allowed);
        assert_eq!(
            d.skipped,
            Some(Skip::Subresource("scale".into())),
            "{fixture}"
        );
    }
}

#[test]
fn updates_ratchet_pre_existing_violations_into_warnings() {
    for fixture in [
        "validate-update-deployment-replicas.json",
        "validate-update-deployment-dryrun.json",
        "validate-update-pod-label.json",
        "validate-update-deployment-resources.json",
    ] {
        let d = decide(fixture);
        let new: Vec<_> = d
            .violations()
            .filter(|f| !f.pre_existing)
            .map(|f| f.field.clone())
            .collect();
        assert!(
            d.violations()
                .filter(|f| f.pre_existing)
                .all(|f| f.effect == Effect::Warn)
        );
        assert_eq!(
            d.allowed,
            new.is_empty(),
            "{fixture}: new violations {new:?}"
        );
        assert!(
            d.warnings()
                .iter()
                .any(|w| w.starts_with("pre-existing, not blocking: ")),
            "{fixture}"
        );
    }
    // Scaling a non-compliant Deployment is allowed.
    assert!(decide("validate-update-deployment-replicas.json").allowed);
}

#[test]
fn update_introducing_a_violation_is_denied() {
    let set = test_policies();
    let mut r = review("validate-update-deployment-replicas.json");
    // The stored object was compliant; the update drops its probes.
    let compliant_container = serde_json::json!({
        "name": "nginx", "image": "nginx:1.27",
        "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}}
    });
    r["request"]["oldObject"]["spec"]["template"]["spec"]["containers"][0] =
        compliant_container.clone();
    let mut new_container = compliant_container;
    new_container
        .as_object_mut()
        .expect("object")
        .remove("livenessProbe");
    r["request"]["object"]["spec"]["template"]["spec"]["containers"][0] = new_container;
    let d = evaluate(&set, &request_of(&r));
    assert!(!d.allowed);
    assert_eq!(
        denied_fields(&d),
        ["nginx/spec.template.spec.containers[0].livenessProbe"]
    );
}

#[test]
fn mutations_apply_and_are_idempotent_for_every_fixture() {
    let set = test_policies();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");
    let mut patched = 0;
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if !name.ends_with(".json") {
            continue;
        }
        let r = review(&name);
        let d = evaluate(&set, &request_of(&r));
        if d.patch.0.is_empty() {
            continue;
        }
        patched += 1;
        let mut again = r.clone();
        again["request"]["object"] = apply(&r, &d);
        let d2 = evaluate(&set, &request_of(&again));
        assert!(
            d2.patch.0.is_empty(),
            "{name}: second pass patched {:?}",
            d2.patch
        );
        assert_eq!(d2.mutations().count(), 0, "{name}");
        // The injected sidecar passes the validating policies itself.
        assert!(
            d2.violations()
                .all(|f| f.container.as_deref() != Some("log-shipper")),
            "{name}"
        );
    }
    assert!(patched >= 10, "only {patched} fixtures were patched");
}

#[test]
fn patches_are_minimal_and_escaped() {
    let d = decide("mutate-create-pod-bare.json");
    let ops = serde_json::to_value(&d.patch).expect("serialize");
    let paths: Vec<&str> = ops
        .as_array()
        .expect("array")
        .iter()
        .map(|o| o["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/containers/0/volumeMounts/-",
            "/spec/initContainers",
            "/metadata/labels",
            "/metadata/annotations/portcullis.dev~1owner",
        ],
        "{ops:#}"
    );
    let d = decide("mutate-create-pod-compliant-native-sidecar.json");
    let ops = serde_json::to_value(&d.patch).expect("serialize");
    assert_eq!(
        ops[0]["path"],
        "/metadata/labels/app.kubernetes.io~1managed-by"
    );
}

#[test]
fn warnings_stay_within_apiserver_limits() {
    for fixture in [
        "validate-update-deployment-dryrun.json",
        "validate-update-pod-label.json",
    ] {
        let d = decide(fixture);
        let w = d.warnings();
        assert!(!w.is_empty());
        assert!(w.iter().all(|w| w.len() <= MAX_WARNING_LEN), "{w:#?}");
        assert!(w.iter().map(String::len).sum::<usize>() <= MAX_WARNINGS_TOTAL);
    }
}

#[test]
fn mutation_findings_say_what_changes() {
    let d = decide("mutate-create-cronjob.json");
    let texts: Vec<String> = d.mutations().map(|m| m.summary()).collect();
    assert!(
        d.mutations()
            .all(|m| m.kind == FindingKind::Mutation && m.effect == Effect::Apply)
    );
    assert!(
        texts.iter().any(|t| t.contains("inject native sidecar container log-shipper (spec.jobTemplate.spec.template.spec.initContainers[0])")),
        "{texts:#?}"
    );
}

#[test]
fn updates_never_patch_immutable_pod_specs() {
    // `kubectl label pod` on a Pod created before Portcullis: Pod specs are immutable, so a
    // sidecar added on UPDATE would make the apiserver reject the relabelling.
    let r = review("mutate-update-pod-label.json");
    let d = decide("mutate-update-pod-label.json");
    assert!(d.allowed);
    let ops = serde_json::to_value(&d.patch).expect("serialize");
    for op in ops.as_array().expect("array") {
        let path = op["path"].as_str().unwrap_or("");
        assert!(
            path.starts_with("/metadata/"),
            "UPDATE of a Pod patched {path}"
        );
    }
    assert!(d.mutations().all(|m| m.rule == "defaultLabels"));
    let out = apply(&r, &d);
    assert_eq!(out["spec"], r["request"]["object"]["spec"]);

    // A Job's pod template is immutable too: only its own metadata may change on UPDATE.
    let set = test_policies();
    let mut job = review("mutate-create-job.json");
    job["request"]["operation"] = "UPDATE".into();
    job["request"]["oldObject"] = job["request"]["object"].clone();
    let d = evaluate(&set, &request_of(&job));
    let ops = serde_json::to_value(&d.patch).expect("serialize");
    for op in ops.as_array().expect("array") {
        let path = op["path"].as_str().unwrap_or("");
        assert!(
            path.starts_with("/metadata/"),
            "UPDATE of a Job patched {path}"
        );
    }
    // A Deployment's template is mutable: UPDATE may inject (rolling the Pods).
    let d = decide("mutate-update-deployment-replicas.json");
    assert!(d.mutations().any(|m| m.rule == "injectSidecar"));
}

/// The patch the webhook sends (`Patch::to_json`, written by the engine without json-patch's
/// types) is RFC 6902 as json-patch reads it: the same bytes serde_json writes for json-patch's
/// operations, parsed back to the same operations, and applied to the same object as the
/// engine's own application of it. Over every captured review, with the test policies (label
/// keys and values that need escaping) and the default policies (the sidecar).
#[test]
fn the_patch_is_what_json_patch_reads_and_applies_alike() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    let defaults = portcullis::lint::load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
    )
    .expect("default policies load");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut patched = 0;
    for set in [test_policies(), defaults] {
        for name in &names {
            let r = review(name);
            let d = evaluate(&set, &request_of(&r));
            let ours = d.patch.to_json().expect("the patch serializes");
            let theirs = d.patch.to_json_patch();
            assert_eq!(
                String::from_utf8(ours.clone()).expect("utf-8"),
                serde_json::to_string(&theirs).expect("json-patch's serializes"),
                "{name}"
            );
            let read: json_patch::Patch =
                serde_json::from_slice(&ours).expect("json-patch reads the patch");
            assert_eq!(read, theirs, "{name}");
            if d.patch.is_empty() {
                continue;
            }
            patched += 1;
            let mut by_json_patch = r["request"]["object"].clone();
            json_patch::patch(&mut by_json_patch, &read).expect("the patch applies");
            let mut by_engine = r["request"]["object"].clone();
            d.patch.apply(&mut by_engine).expect("the patch applies");
            assert_eq!(by_json_patch, by_engine, "{name}");
            assert_ne!(
                by_engine, r["request"]["object"],
                "{name}: the patch changes nothing"
            );
        }
    }
    assert!(patched >= 10, "only {patched} patched objects");
}
