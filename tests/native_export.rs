//! `portcullis policy export` offline: deterministic output, what a schedule, an exception and
//! `off` produce, the list of what is not exported, the MutatingAdmissionPolicy versions, and
//! deploy/'s native overlay (its policies are the export of policies/, its webhooks fail open).
//! tests/e2e_native.rs proves the objects against a real API server.

mod deploy_support;

use std::path::Path;
use std::process::{Command, Output};

use deploy_support::Checkout;
use serde::Deserialize as _;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PORTCULLIS: &str = env!("CARGO_BIN_EXE_portcullis");

fn export(args: &[&str]) -> Output {
    Command::new(PORTCULLIS)
        .args(["policy", "export"])
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run portcullis")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = export(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "export {args:?} failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn names(docs: &[Value], kind: &str) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn the_native_overlay_holds_the_export_of_the_default_policies() {
    let (out, _) = ok(&["policies"]);
    let shipped = std::fs::read_to_string(
        Path::new(ROOT).join("deploy/components/native/native-policies.yaml"),
    )
    .expect("deploy/components/native/native-policies.yaml");
    assert_eq!(
        out, shipped,
        "deploy/components/native/native-policies.yaml is stale: run \
         `portcullis policy export policies > deploy/components/native/native-policies.yaml`"
    );
    // Deterministic: the same input gives the same bytes.
    assert_eq!(ok(&["policies"]).0, out);
}

#[test]
fn the_native_overlay_fails_open_at_the_webhook_and_closed_at_the_api_server() {
    let rendered = Checkout::with_certs().render("deploy/overlays/native");
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        for hook in rendered.one(kind)["webhooks"].as_array().expect("webhooks") {
            assert_eq!(hook["failurePolicy"], "Ignore", "{kind}");
        }
    }
    let policies = rendered.all("ValidatingAdmissionPolicy");
    let bindings = rendered.all("ValidatingAdmissionPolicyBinding");
    assert_eq!(
        policies.len(),
        1,
        "require-probes and require-resources, sharing one object"
    );
    for p in &policies {
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert!(
            p["metadata"].get("namespace").is_none(),
            "cluster-scoped: {p}"
        );
        let name = &p["metadata"]["name"];
        let binding = bindings
            .iter()
            .find(|b| b["spec"]["policyName"] == *name)
            .unwrap_or_else(|| panic!("a binding of {name}"));
        assert_eq!(binding["spec"]["validationActions"][0], "Deny");
        assert_eq!(
            binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"],
            serde_json::json!([
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "portcullis-system"
            ])
        );
    }
    // The overlay's own Deployment passes its policies (the webhook's Pods are not excluded by
    // namespace from a policy's match, only from the bindings).
    assert_eq!(rendered.all("Deployment").len(), 1);
}

#[test]
fn what_is_not_exported_is_said_per_policy_and_rule() {
    let (out, stderr) = ok(&["policies"]);
    for rule in [
        "default-labels defaultLabels",
        "inject-logging-sidecar injectSidecar",
    ] {
        let line = format!("not exported: {rule}: no MutatingAdmissionPolicy API version");
        assert!(stderr.contains(&line), "{stderr}");
        assert!(
            out.contains(&format!("# - {rule}: no MutatingAdmissionPolicy")),
            "{out}"
        );
    }
    // `off` policies produce nothing, and are no loss; the two enforced policies, which apply
    // to the same requests, share one object, one validation each.
    let docs = documents(&out);
    assert_eq!(
        names(&docs, "ValidatingAdmissionPolicy"),
        ["portcullis.enforce"]
    );
    let vap = &docs[0];
    assert_eq!(
        vap["metadata"]["annotations"]["portcullis.dev/policies"],
        "require-probes, require-resources"
    );
    assert_eq!(vap["spec"]["validations"].as_array().map(Vec::len), Some(2));
    assert!(!stderr.contains("require-image-tag"), "{stderr}");
    assert!(names(&docs, "MutatingAdmissionPolicy").is_empty());
}

#[test]
fn the_mutating_api_version_is_chosen_by_flag() {
    for version in ["v1alpha1", "v1beta1", "v1"] {
        let (out, stderr) = ok(&["policies", "--mutating-api-version", version]);
        assert!(stderr.is_empty(), "{stderr}");
        let docs = documents(&out);
        let mutating: Vec<&Value> = docs
            .iter()
            .filter(|d| {
                d["kind"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("MutatingAdmissionPolicy"))
            })
            .collect();
        assert_eq!(mutating.len(), 4, "two policies, two bindings");
        for d in mutating {
            assert_eq!(
                d["apiVersion"],
                format!("admissionregistration.k8s.io/{version}")
            );
        }
    }
    let out = export(&["policies", "--mutating-api-version", "v2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected v1alpha1, v1beta1 or v1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_schedule_gives_the_bindings_of_its_current_step_and_exceptions_their_time() {
    let set = "tests/policy_sets/native";
    // Before September: enforce in team-a, warn elsewhere; exceptions in force until 2027.
    let (out, _) = ok(&[set, "--at", "2026-06-01"]);
    let docs = documents(&out);
    let vaps = names(&docs, "ValidatingAdmissionPolicy");
    assert!(
        vaps.contains(&"portcullis-scheduled-probes-enforce".to_owned())
            && vaps.contains(&"portcullis-scheduled-probes-warn".to_owned()),
        "{vaps:?}"
    );
    let binding = |name: &str| {
        docs.iter()
            .find(|d| {
                d["kind"] == "ValidatingAdmissionPolicyBinding" && d["metadata"]["name"] == name
            })
            .unwrap_or_else(|| panic!("binding {name}"))
            .clone()
    };
    assert_eq!(
        binding("portcullis-scheduled-probes-enforce")["spec"]["validationActions"][0],
        "Deny"
    );
    assert_eq!(
        binding("portcullis-scheduled-probes-warn")["spec"]["validationActions"][0],
        "Warn"
    );
    assert!(out.contains("# Right until 2026-09-01"), "{out}");
    assert!(out.contains("web-legacy"), "the exception in force");
    let exception_variables = |docs: &[Value], vap: &str| -> usize {
        docs.iter()
            .find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == vap)
            .unwrap_or_else(|| panic!("{vap}"))["spec"]["variables"]
            .as_array()
            .expect("variables")
            .iter()
            .filter(|v| {
                v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("exception"))
            })
            .count()
    };
    assert_eq!(exception_variables(&docs, "portcullis-resources-eph"), 1);
    // The expired exception of probes-sidecars produces nothing.
    assert_eq!(exception_variables(&docs, "portcullis-probes-sidecars"), 0);
    // From September on: enforce everywhere, one object.
    let (out, _) = ok(&[set, "--at", "2026-10-01"]);
    let vaps = names(&documents(&out), "ValidatingAdmissionPolicy");
    assert!(
        vaps.contains(&"portcullis-scheduled-probes".to_owned()),
        "{vaps:?}"
    );
    assert!(!vaps.iter().any(|v| v.ends_with("-warn")), "{vaps:?}");
    // After the exceptions expire: nothing of them is left.
    let (out, _) = ok(&[set, "--at", "2027-02-01"]);
    assert!(
        !out.contains("web-legacy") && !out.contains("tools"),
        "{out}"
    );
    assert_eq!(
        exception_variables(&documents(&out), "portcullis-resources-eph"),
        0
    );
    assert!(!out.contains("# Right until"), "{out}");
}

#[test]
fn warn_mode_mutations_stay_with_the_webhook() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("labels.yaml"),
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: soft-labels}\n\
         spec:\n  mode: warn\n  rules:\n    - defaultLabels: {labels: {team: platform}}\n",
    )
    .expect("write");
    let path = dir.path().display().to_string();
    let (out, stderr) = ok(&[&path, "--mutating-api-version", "v1beta1"]);
    assert!(
        stderr.contains(
            "not exported: soft-labels defaultLabels: in warn mode the mutation is only described"
        ),
        "{stderr}"
    );
    assert!(documents(&out).is_empty(), "{out}");
}

#[test]
fn a_set_that_does_not_load_exports_nothing() {
    let out = export(&["tests/policy_sets/typos"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readinesProbe"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_sync_role_grants_only_the_admission_policy_objects() {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/rbac/native-sync/clusterrole.yaml"))
            .expect("deploy/rbac/native-sync/clusterrole.yaml");
    let role = &documents(&text)[0];
    assert_eq!(role["kind"], "ClusterRole");
    let rules = role["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0]["apiGroups"],
        serde_json::json!(["admissionregistration.k8s.io"])
    );
    assert_eq!(
        rules[0]["resources"],
        serde_json::json!([
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings"
        ])
    );
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch", "create", "patch", "delete"])
    );
}

#[test]
fn cel_rules_are_exported_as_written() {
    let (out, stderr) = ok(&["tests/policy_sets/native-cel", "--at", "2026-06-01"]);
    assert!(!stderr.contains("not exported"), "{stderr}");
    let docs = documents(&out);
    assert_eq!(
        names(&docs, "ValidatingAdmissionPolicy"),
        ["portcullis-cel-containers", "portcullis-cel-workload"]
    );
    let vap = |name: &str| {
        docs.iter()
            .find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    let containers = vap("portcullis-cel-containers");
    let variables: Vec<&str> = containers["spec"]["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    // A variable that does not read `container` is the policy object's; one that does is
    // written out per container. The expired exception gives nothing.
    assert!(variables.contains(&"cel0_registry"), "{variables:?}");
    assert!(
        !variables.iter().any(|v| v.contains("image")),
        "{variables:?}"
    );
    assert_eq!(
        variables
            .iter()
            .filter(|v| v.starts_with("exception"))
            .count(),
        1,
        "{variables:?}"
    );
    let found = containers["spec"]["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .find(|v| v["name"] == "found")
        .expect("found")["expression"]
        .as_str()
        .expect("an expression")
        .to_owned();
    // As written, `container` bound to each container, `variables.image` written out.
    assert!(
        found.contains("(container.image).startsWith(variables.cel0_registry)"),
        "{found}"
    );
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        assert!(found.contains(&format!("variables.spec.{list}")), "{found}");
    }
    // The rule's matchCondition guards its findings, `podMetadata` a variable of its own.
    assert!(
        found.contains("variables.celPodMetadata.?labels[?'skip-cel']"),
        "{found}"
    );
    // Deterministic.
    assert_eq!(
        out,
        ok(&["tests/policy_sets/native-cel", "--at", "2026-06-01"]).0
    );
}
