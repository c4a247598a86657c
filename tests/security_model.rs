//! The threat model's claims about what someone with namespace-level rights can and cannot do
//! (SECURITY.md), checked against the shipped default policies through the same parsing the
//! webhook uses: annotations and labels they write, forged owner references, a namespace in
//! the object that differs from the request's, dry runs.

use std::path::Path;

use portcullis::admission::{self, Review};
use portcullis::engine::NamespaceLabels;
use portcullis::lint;
use portcullis::policy::PolicySet;
use portcullis::telemetry::Endpoint;
use serde_json::{Value, json};

fn defaults() -> PolicySet {
    lint::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .expect("default policies")
}

fn review(fixture: &str, edit: impl FnOnce(&mut Value)) -> Review {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/admission")
        .join(fixture);
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    // A namespace admin, not a cluster admin.
    v["request"]["userInfo"] =
        json!({"username": "alice", "groups": ["team-a", "system:authenticated"]});
    edit(&mut v);
    admission::parse_review(&serde_json::to_vec(&v).expect("json")).expect("readable review")
}

fn injects_sidecar(decision: &portcullis::engine::Decision) -> bool {
    decision.patch.0.iter().any(|op| {
        serde_json::to_string(op)
            .expect("op")
            .contains("log-shipper")
    })
}

/// Annotations anyone may write on their own objects, including ones that look like switches.
const EXEMPTION_ATTEMPTS: [(&str, &str); 6] = [
    ("portcullis.dev/exempt", "true"),
    ("portcullis.dev/skip", "true"),
    ("portcullis.dev/inject-log-shipper", "false"),
    ("portcullis.dev/policy", "off"),
    ("admission.portcullis.dev/mode", "audit"),
    ("sidecar.istio.io/inject", "false"),
];

#[test]
fn annotations_do_not_exempt_a_workload_unless_a_policy_allows_it() {
    let set = defaults();
    for (fixture, pod_template) in [
        ("validate-create-pod-bare.json", false),
        ("validate-create-deployment.json", true),
    ] {
        let plain = review(fixture, |_| {});
        let annotated = review(fixture, |v| {
            let annotations: serde_json::Map<String, Value> = EXEMPTION_ATTEMPTS
                .iter()
                .map(|(k, val)| ((*k).to_owned(), json!(val)))
                .collect();
            v["request"]["object"]["metadata"]["annotations"] = Value::Object(annotations.clone());
            if pod_template {
                v["request"]["object"]["spec"]["template"]["metadata"]["annotations"] =
                    Value::Object(annotations);
            }
        });
        let before = plain.evaluate(
            &set,
            portcullis::policy::Timestamp::from_unix(1_767_225_600),
        );
        let after = annotated.evaluate(
            &set,
            portcullis::policy::Timestamp::from_unix(1_767_225_600),
        );
        assert!(!before.allowed && !after.allowed, "{fixture}: still denied");
        assert_eq!(
            before.violations().count(),
            after.violations().count(),
            "{fixture}: the same violations"
        );
        assert!(
            injects_sidecar(&after),
            "{fixture}: the sidecar is still injected"
        );
    }

    // A policy that names an opt-out annotation lets workloads skip that injection, and only
    // that: validation is unaffected.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/inject-logging-sidecar.yaml"),
    )
    .expect("policy")
    .replace(
        "# optOutAnnotation: portcullis.dev/inject-log-shipper",
        "optOutAnnotation: portcullis.dev/inject-log-shipper",
    );
    let mut sources = vec![text];
    for file in ["require-probes.yaml", "require-resources.yaml"] {
        sources.push(
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("policies")
                    .join(file),
            )
            .expect("policy"),
        );
    }
    let with_opt_out =
        lint::load_str(Path::new("opt-out.yaml"), &sources.join("\n---\n")).expect("policies");
    let opted_out = review("validate-create-pod-bare.json", |v| {
        v["request"]["object"]["metadata"]["annotations"] =
            json!({"portcullis.dev/inject-log-shipper": "false"});
    });
    let decision = opted_out.evaluate(
        &with_opt_out,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    );
    assert!(!injects_sidecar(&decision), "the allowed opt-out works");
    assert!(
        !decision.allowed,
        "an opt-out annotation does not touch validation"
    );
}

#[test]
fn a_forged_owner_reference_is_judged_like_a_bare_pod() {
    let set = defaults();
    let owned = |username: &str| {
        let username = username.to_owned();
        review("validate-create-pod-owned-by-replicaset.json", move |v| {
            v["request"]["userInfo"]["username"] = json!(username);
            // Make the Pod itself non-compliant: it must be judged unless a controller sent it.
            v["request"]["object"]["spec"]["containers"][0]
                .as_object_mut()
                .expect("container")
                .retain(|k, _| k == "name" || k == "image");
        })
    };
    let forged = owned("alice").evaluate(
        &set,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    );
    assert!(forged.skipped.is_none(), "{:?}", forged.skipped);
    assert!(
        !forged.allowed,
        "a user's Pod with a forged ownerReference is judged"
    );
    let real = owned("system:serviceaccount:kube-system:replicaset-controller").evaluate(
        &set,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    );
    assert!(
        real.allowed && real.skipped.is_some(),
        "the controller's Pod is not judged twice"
    );
}

#[test]
fn the_request_namespace_wins_over_the_object_namespace() {
    // The default sidecar policy excludes kube-system; writing that namespace into the object of
    // a request for another namespace changes nothing (the apiserver rejects the mismatch
    // anyway, after the webhooks).
    let set = defaults();
    let decision = review("mutate-create-pod-bare.json", |v| {
        v["request"]["object"]["metadata"]["namespace"] = json!("kube-system");
    })
    .evaluate(
        &set,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    );
    assert!(injects_sidecar(&decision));
    assert!(!decision.allowed);
}

#[test]
fn labels_exempt_nothing_the_policies_do_not_select_by() {
    // The default policies select no labels: a workload's own labels change no verdict.
    let set = defaults();
    let labelled = review("validate-create-pod-bare.json", |v| {
        v["request"]["object"]["metadata"]["labels"] =
            json!({"portcullis.dev/exempt": "true", "app.kubernetes.io/managed-by": "portcullis"});
    })
    .evaluate(
        &set,
        portcullis::policy::Timestamp::from_unix(1_767_225_600),
    );
    assert!(!labelled.allowed);
    for p in &set.policies {
        assert!(
            p.match_.object_selector.is_none()
                && p.exclude
                    .as_ref()
                    .is_none_or(|e| e.object_selector.is_none()),
            "{} selects by the workload's labels: SECURITY.md must say so",
            p.name
        );
    }
}

/// The engine never sees `dryRun` (the webhook only logs it): a dry run gets the same answer,
/// byte for byte, through the webhook's whole path.
#[test]
fn a_dry_run_gets_the_same_answer() {
    let set = defaults();
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let [real, dry] = [false, true].map(|dry_run| {
            let review = review("validate-create-pod-bare.json", |v| {
                v["request"]["dryRun"] = json!(dry_run)
            });
            let time = portcullis::policy::Timestamp::from_unix(1_767_225_600);
            admission::answer(
                endpoint,
                &set,
                review,
                time,
                NamespaceLabels::NameOnly,
                &portcullis::engine::NativeRules::NONE,
            )
            .expect("answer")
            .body
        });
        assert_eq!(real, dry, "{endpoint:?}");
    }
}
