//! UPDATE ratcheting: a violation is pre-existing (it warns instead of denying) when the stored
//! object, as it would have been mutated at creation, had a violation of the same policy's same
//! rule about the same container (by name) and the same field of it. Not the same text: a rule
//! whose message quotes a value (the image) ratchets like one whose message does not.

mod common;

use std::path::Path;

use common::{request_of, review};
use portcullis::engine::{Decision, Effect, evaluate};
use portcullis::policy::PolicySet;
use serde_json::{Value, json};

/// The test set (probes, resources, a native logging sidecar, default labels) with the image
/// tag policy enforced, and a policy with two rules of the same type.
fn policies() -> PolicySet {
    let text = common::TEST_POLICIES.replace(
        "metadata: {name: pinned-images}\nspec:\n  mode: warn",
        "metadata: {name: pinned-images}\nspec:\n  mode: enforce",
    );
    assert_ne!(text, common::TEST_POLICIES, "the image policy is enforced");
    portcullis::lint::load_str(Path::new("ratchet.yaml"), &text).expect("policies load")
}

/// A container that passes every policy.
fn compliant(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image,
        "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "1", "memory": "64Mi"}}
    })
}

/// A container with only a name and an image, as `kubectl create deployment` writes it.
fn bare(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "resources": {}})
}

fn without(mut container: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    container
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("the parent is an object")
        .remove(key)
        .expect("the field was there");
    container
}

fn with(mut container: Value, key: &str, value: Value) -> Value {
    container[key] = value;
    container
}

/// An UPDATE of the captured Deployment (the `kubectl scale` review) whose stored and new pod
/// templates hold these containers.
fn update(set: &PolicySet, old: Value, new: Value) -> Decision {
    let mut r = review("validate-update-deployment-replicas.json");
    r["request"]["oldObject"]["spec"]["template"]["spec"]["containers"] = old;
    r["request"]["object"]["spec"]["template"]["spec"]["containers"] = new;
    evaluate(set, &request_of(&r))
}

/// `container/field` of the violations with this effect (and pre-existing or not).
fn violations(d: &Decision, effect: Effect, pre_existing: bool) -> Vec<String> {
    d.violations()
        .filter(|f| f.effect == effect && f.pre_existing == pre_existing)
        .map(|f| {
            let field = f
                .field
                .strip_prefix("spec.template.spec.")
                .unwrap_or(&f.field);
            format!("{}/{field}", f.container.as_deref().unwrap_or(""))
        })
        .collect()
}

struct Case {
    name: &'static str,
    old: Value,
    new: Value,
    /// Violations that deny (new ones).
    denied: &'static [&'static str],
    /// Violations that only warn because the stored object had them.
    pre_existing: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a violating image changed to another violating image (the message quotes it)",
            old: json!([compliant("web", "nginx:latest")]),
            new: json!([compliant("web", "nginx")]),
            denied: &[],
            pre_existing: &["web/containers[0].image"],
        },
        Case {
            name: "an unchanged violating image",
            old: json!([compliant("web", "nginx:latest")]),
            new: json!([compliant("web", "nginx:latest")]),
            denied: &[],
            pre_existing: &["web/containers[0].image"],
        },
        Case {
            name: "a violating image pinned (1.0-latest is a tag like any other)",
            old: json!([compliant("web", "nginx:latest")]),
            new: json!([compliant("web", "nginx:1.0-latest")]),
            denied: &[],
            pre_existing: &[],
        },
        Case {
            name: "a pinned image changed to a violating one",
            old: json!([compliant("web", "nginx:1.27")]),
            new: json!([compliant("web", "nginx:latest")]),
            denied: &["web/containers[0].image"],
            pre_existing: &[],
        },
        Case {
            name: "resources: limits missing before and after, a request newly missing",
            old: json!([without(compliant("web", "nginx:1.27"), "/resources/limits")]),
            new: json!([without(
                without(compliant("web", "nginx:1.27"), "/resources/limits"),
                "/resources/requests/cpu"
            )]),
            denied: &["web/containers[0].resources.requests.cpu"],
            pre_existing: &[
                "web/containers[0].resources.limits.cpu",
                "web/containers[0].resources.limits.memory",
            ],
        },
        Case {
            name: "a missing probe replaced by a probe without a handler: the same field",
            old: json!([without(compliant("web", "nginx:1.27"), "/livenessProbe")]),
            new: json!([with(
                compliant("web", "nginx:1.27"),
                "livenessProbe",
                json!({})
            )]),
            denied: &[],
            pre_existing: &["web/containers[0].livenessProbe"],
        },
        Case {
            // Kubernetes knows containers by name (kubectl apply and strategic merge patches
            // merge them by name; a renamed container is a new one in every new Pod), and so do
            // exceptions and messages.
            name: "a container renamed is a new container",
            old: json!([bare("web", "nginx:1.27")]),
            new: json!([bare("api", "nginx:1.27")]),
            denied: &[
                "api/containers[0].livenessProbe",
                "api/containers[0].readinessProbe",
                "api/containers[0].resources.requests.cpu",
                "api/containers[0].resources.requests.memory",
                "api/containers[0].resources.limits.cpu",
                "api/containers[0].resources.limits.memory",
            ],
            pre_existing: &[],
        },
        Case {
            // Inserting a container in front shifts the others' indexes, not their identity:
            // their old violations still warn (at their new index), the new container's deny.
            name: "a container added at index 0",
            old: json!([bare("web", "nginx:latest")]),
            new: json!([
                without(compliant("proxy", "envoy:1.32"), "/readinessProbe"),
                bare("web", "nginx:latest")
            ]),
            denied: &["proxy/containers[0].readinessProbe"],
            pre_existing: &[
                "web/containers[1].livenessProbe",
                "web/containers[1].readinessProbe",
                "web/containers[1].resources.requests.cpu",
                "web/containers[1].resources.requests.memory",
                "web/containers[1].resources.limits.cpu",
                "web/containers[1].resources.limits.memory",
                "web/containers[1].image",
            ],
        },
        Case {
            name: "a container removed from in front",
            old: json!([bare("proxy", "envoy:1.32"), bare("web", "nginx:1.27")]),
            new: json!([without(bare("web", "nginx:1.27"), "/resources")]),
            denied: &[],
            pre_existing: &[
                "web/containers[0].livenessProbe",
                "web/containers[0].readinessProbe",
                "web/containers[0].resources.requests.cpu",
                "web/containers[0].resources.requests.memory",
                "web/containers[0].resources.limits.cpu",
                "web/containers[0].resources.limits.memory",
            ],
        },
    ]
}

#[test]
fn updates_ratchet_by_policy_rule_container_and_field() {
    let set = policies();
    for case in cases() {
        let d = update(&set, case.old, case.new);
        assert_eq!(
            violations(&d, Effect::Deny, false),
            case.denied,
            "{}: denied",
            case.name
        );
        assert_eq!(
            violations(&d, Effect::Warn, true),
            case.pre_existing,
            "{}: pre-existing",
            case.name
        );
        assert_eq!(d.allowed, case.denied.is_empty(), "{}", case.name);
        // Nothing else: every violation is one of the two.
        assert_eq!(
            d.violations().count(),
            case.denied.len() + case.pre_existing.len(),
            "{}: {:?}",
            case.name,
            d.violations().map(|f| f.summary()).collect::<Vec<_>>()
        );
    }
}

/// Two rules of the same type in one policy are two rules: a violation of one is not made
/// pre-existing by the other's violation of the same field.
#[test]
fn two_rules_of_one_type_ratchet_apart() {
    let set = portcullis::lint::load_str(
        Path::new("images.yaml"),
        r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: images}
spec:
  mode: enforce
  rules:
    - requireImageTag: {forbiddenTags: [latest]}
    - requireImageTag: {forbiddenTags: [], requireDigest: true}
"#,
    )
    .expect("policies load");
    // Before: only the digest rule objects (a pinned tag). After: the tag rule objects too.
    let d = update(
        &set,
        json!([compliant("web", "nginx:1.27")]),
        json!([compliant("web", "nginx:latest")]),
    );
    assert_eq!(
        violations(&d, Effect::Deny, false),
        ["web/containers[0].image"]
    );
    assert_eq!(
        violations(&d, Effect::Warn, true),
        ["web/containers[0].image"]
    );
    let denied: Vec<_> = d
        .violations()
        .filter(|f| f.effect == Effect::Deny)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        denied,
        ["image \"nginx:latest\" uses the forbidden tag :latest"]
    );
}
