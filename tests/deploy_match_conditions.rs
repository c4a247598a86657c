//! The webhook configurations' matchConditions, evaluated as the apiserver evaluates them (CEL,
//! with `request`, `object` and `oldObject`) on every captured AdmissionReview and on forged
//! ones. They must never fail to evaluate (an error under `failurePolicy: Fail` rejects the
//! request), and they may only keep from the webhook what Portcullis would not judge anyway:
//! the server's own decision on the same request is the reference.

mod deploy_support;

use std::path::Path;

use deploy_support::{BASE, Checkout};
use portcullis::admission;
use portcullis::engine::Skip;
use portcullis::lint;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");

/// (name, expression) of a webhook's matchConditions.
fn conditions(webhook: &Value) -> Vec<(String, String)> {
    webhook["matchConditions"]
        .as_array()
        .expect("matchConditions")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["expression"].as_str().expect("expression").to_owned(),
            )
        })
        .collect()
}

/// Whether the apiserver would call the webhook: every condition true. An evaluation error or
/// a non-boolean result fails the test.
fn calls_webhook(conditions: &[(String, String)], review: &Value) -> bool {
    let request = &review["request"];
    let mut context = cel::Context::default();
    for (name, value) in [
        ("request", request),
        ("object", &request["object"]),
        ("oldObject", &request["oldObject"]),
    ] {
        context.add_variable_from_value(name, cel::to_value(value).expect("CEL value"));
    }
    conditions.iter().all(|(name, expression)| {
        let program = cel::Program::compile(expression)
            .unwrap_or_else(|e| panic!("{name} does not compile: {e:?}"));
        match program.execute(&context) {
            Ok(cel::Value::Bool(b)) => b,
            other => panic!("{name} on {}: {other:?}", request["uid"]),
        }
    })
}

fn fixtures() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = std::fs::read_dir(FIXTURES)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("json"))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// What Portcullis itself decides on a request.
fn decide(review: &Value) -> portcullis::engine::Decision {
    let set = lint::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .expect("default policies");
    let bytes = serde_json::to_vec(review).expect("bytes");
    let parsed = admission::parse_review(&bytes).expect("review parses");
    parsed.evaluate(
        &set,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    )
}

/// `true` when Portcullis would skip the request for a reason the match conditions mirror:
/// controller-owned, from the garbage collector, or an update of an object being deleted.
fn server_skips_as_controller_owned(review: &Value) -> bool {
    matches!(
        decide(review).skipped,
        Some(Skip::ControllerOwned { .. } | Skip::GarbageCollector | Skip::BeingDeleted)
    )
}

/// A review of `object` sent by `username`.
fn forged(base: &Value, username: &str, object: Value) -> Value {
    let mut review = base.clone();
    review["request"]["userInfo"]["username"] = json!(username);
    review["request"]["object"] = object;
    review
}

#[test]
fn match_conditions_only_cut_what_portcullis_would_skip() {
    let checkout = Checkout::fresh();
    let rendered = checkout.render(BASE);
    let mutating = conditions(rendered.webhook("MutatingWebhookConfiguration"));
    let validating = conditions(rendered.webhook("ValidatingWebhookConfiguration"));

    let mut cut = 0;
    let all = fixtures();
    assert!(all.len() >= 30, "captured reviews: {}", all.len());
    let mut mutating_cut = 0;
    for (name, review) in &all {
        // Both webhooks skip what the server skips, Pods included (Pod-level injection needs
        // controllers' Pods: deploy/components/pod-injection, below).
        let skipped = server_skips_as_controller_owned(review);
        assert_eq!(
            calls_webhook(&mutating, review),
            !skipped,
            "{name}: mutating"
        );
        if skipped {
            assert!(
                decide(review).patch.0.is_empty(),
                "{name}: would be patched"
            );
            mutating_cut += 1;
        }
        let called = calls_webhook(&validating, review);
        assert_eq!(
            called,
            !skipped,
            "{name}: the validating webhook is {} but the server {} it",
            if called { "called" } else { "not called" },
            if skipped { "skips" } else { "judges" }
        );
        cut += usize::from(!called);
    }
    assert!(cut >= 3, "controller-created objects are cut: {cut}");
    assert!(
        mutating_cut >= 1,
        "controller-owned ReplicaSets are cut: {mutating_cut}"
    );

    // Forged and edge cases, on a Pod review.
    let (_, pod) = all
        .iter()
        .find(|(n, _)| n == "validate-create-pod-bare.json")
        .expect("bare pod fixture");
    let owned = |controller: Value| {
        let mut object = pod["request"]["object"].clone();
        let mut owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                               "uid": "9d4c3e4a-0000-4000-8000-000000000001"});
        if !controller.is_null() {
            owner["controller"] = controller;
        }
        object["metadata"]["ownerReferences"] = json!([owner]);
        object
    };
    let replicaset_controller = "system:serviceaccount:kube-system:replicaset-controller";
    let cases = [
        // A user who writes a controller ownerReference is judged (the server too).
        (forged(pod, "alice", owned(json!(true))), true),
        // A trusted controller's object without a controller reference is judged.
        (
            forged(pod, replicaset_controller, owned(json!(false))),
            true,
        ),
        (forged(pod, replicaset_controller, owned(Value::Null)), true),
        (
            forged(pod, replicaset_controller, pod["request"]["object"].clone()),
            true,
        ),
        // The real thing is not.
        (
            forged(pod, replicaset_controller, owned(json!(true))),
            false,
        ),
    ];
    for (review, expect_called) in &cases {
        let user = &review["request"]["userInfo"]["username"];
        assert_eq!(
            calls_webhook(&validating, review),
            *expect_called,
            "{user}: {}",
            review["request"]["object"]["metadata"]
        );
        assert_eq!(
            server_skips_as_controller_owned(review),
            !*expect_called,
            "server: {user}"
        );
    }

    // A controller-owned ReplicaSet from the deployment controller skips the mutating webhook;
    // the same ReplicaSet from a user does not.
    let (_, replicaset) = all
        .iter()
        .find(|(n, _)| n == "mutate-create-replicaset-owned-by-deployment.json")
        .expect("owned ReplicaSet fixture");
    let object = replicaset["request"]["object"].clone();
    let from_controller = forged(
        replicaset,
        "system:serviceaccount:kube-system:deployment-controller",
        object.clone(),
    );
    assert!(!calls_webhook(&mutating, &from_controller));
    assert!(calls_webhook(
        &mutating,
        &forged(replicaset, "alice", object)
    ));
    // Controller-created Pods do not reach it: a hung webhook costs them nothing.
    let pod_from_controller = forged(pod, replicaset_controller, owned(json!(true)));
    assert!(!calls_webhook(&mutating, &pod_from_controller));
    assert!(decide(&pod_from_controller).patch.0.is_empty());

    // Deletion and garbage collection: the garbage collector's updates (orphaning removes
    // the ownerReferences, so nothing else would skip them) and updates of objects being
    // deleted reach neither webhook, and the server skips them too.
    let (_, update) = all
        .iter()
        .find(|(n, _)| n == "validate-update-deployment-replicas.json")
        .expect("UPDATE fixture");
    let collector = forged(
        update,
        "system:serviceaccount:kube-system:generic-garbage-collector",
        update["request"]["object"].clone(),
    );
    let mut deleting = update.clone();
    deleting["request"]["object"]["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    deleting["request"]["object"]["metadata"]["finalizers"] = json!([]);
    for (what, review, skip) in [
        ("garbage collector", &collector, Skip::GarbageCollector),
        ("being deleted", &deleting, Skip::BeingDeleted),
    ] {
        assert!(!calls_webhook(&mutating, review), "{what}: mutating");
        assert!(!calls_webhook(&validating, review), "{what}: validating");
        assert_eq!(decide(review).skipped, Some(skip), "{what}: server");
    }
    // A CREATE with a deletionTimestamp (the apiserver clears it) is judged as usual.
    let mut create = pod.clone();
    create["request"]["object"]["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    assert!(calls_webhook(&validating, &create));
    assert!(decide(&create).skipped.is_none());

    // Kubelets (mirror Pods) reach neither webhook.
    let kubelet = forged(pod, "system:node:worker-1", owned(Value::Null));
    assert!(!calls_webhook(&mutating, &kubelet));
    assert!(!calls_webhook(&validating, &kubelet));
}

/// deploy/components/pod-injection lets controllers' Pods through to the mutating webhook
/// (for `target: pod` policies) and changes nothing else.
#[test]
fn pod_injection_component_sends_controller_pods_to_mutate() {
    let checkout = Checkout::fresh();
    let overlay = checkout.path().join("pod-injection");
    std::fs::create_dir_all(&overlay).expect("mkdir");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../deploy/base]\ncomponents: [../deploy/components/pod-injection]\n",
    )
    .expect("write kustomization");
    let rendered = checkout.render("pod-injection");
    let base = checkout.render(BASE);
    let mutating = conditions(rendered.webhook("MutatingWebhookConfiguration"));
    let names: Vec<&str> = mutating.iter().map(|(n, _)| n.as_str()).collect();
    let base_mutating = conditions(base.webhook("MutatingWebhookConfiguration"));
    let base_names: Vec<&str> = base_mutating.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, base_names);
    assert_eq!(
        rendered.webhook("ValidatingWebhookConfiguration"),
        base.webhook("ValidatingWebhookConfiguration")
    );
    let all = fixtures();
    let (_, pod) = all
        .iter()
        .find(|(n, _)| n == "mutate-create-pod-owned-by-replicaset.json")
        .expect("controller Pod fixture");
    assert!(server_skips_as_controller_owned(pod));
    assert!(
        calls_webhook(&mutating, pod),
        "controllers' Pods reach /mutate"
    );
    assert!(!calls_webhook(&base_mutating, pod));
    let (_, replicaset) = all
        .iter()
        .find(|(n, _)| n == "mutate-create-replicaset-owned-by-deployment.json")
        .expect("owned ReplicaSet fixture");
    if server_skips_as_controller_owned(replicaset) {
        assert!(
            !calls_webhook(&mutating, replicaset),
            "owned ReplicaSets still skip it"
        );
    }
}
