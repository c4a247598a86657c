//! Mutation rules see what earlier rules planned, and validation judges the object as mutated,
//! without the engine copying the object: each case checks the decision and that the patch
//! applies and yields the expected object.

use std::path::Path;

use portcullis::engine::{Effect, FindingKind, Request, evaluate};
use portcullis::policy::PolicySet;
use serde_json::{Value, json};

fn policies(text: &str) -> PolicySet {
    portcullis::lint::load_str(Path::new("interactions.yaml"), text).expect("policies load")
}

fn policy(name: &str, rule: &str) -> String {
    policy_in_mode(name, "enforce", rule)
}

fn policy_in_mode(name: &str, mode: &str, rule: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  mode: {mode}\n  rules:\n    - {rule}\n"
    )
}

fn patched(set: &PolicySet, object: &Value) -> (Value, portcullis::engine::Decision) {
    let decision = evaluate(
        set,
        &Request::create(
            object,
            portcullis::policy::Timestamp::from_unix(1_767_225_600),
        ),
    );
    let mut doc = object.clone();
    json_patch::patch(&mut doc, &decision.patch.to_json_patch()).expect("the patch applies");
    let again = evaluate(
        set,
        &Request::create(
            &doc,
            portcullis::policy::Timestamp::from_unix(1_767_225_600),
        ),
    );
    assert!(again.patch.0.is_empty(), "idempotent: {:?}", again.patch);
    (doc, decision)
}

fn deployment(template_metadata: Option<Value>) -> Value {
    let mut template = json!({"spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    if let Some(m) = template_metadata {
        template["metadata"] = m;
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}})
}

#[test]
fn a_second_label_rule_adds_to_metadata_the_first_created() {
    let set = policies(
        &(policy(
            "labels",
            "defaultLabels: {labels: {team: shop}, target: [podTemplate]}",
        ) + &policy(
            "annotations",
            "defaultLabels: {annotations: {owner: shop}, target: [podTemplate]}",
        )),
    );
    let (doc, _) = patched(&set, &deployment(None));
    assert_eq!(
        doc["spec"]["template"]["metadata"],
        json!({"labels": {"team": "shop"}, "annotations": {"owner": "shop"}})
    );
}

#[test]
fn a_label_an_earlier_rule_added_is_not_added_twice() {
    let set = policies(
        &(policy("first", "defaultLabels: {labels: {team: shop, tier: web}}")
            + &policy("second", "defaultLabels: {labels: {tier: web, env: prod}}")),
    );
    let (doc, decision) = patched(&set, &deployment(Some(json!({"labels": {"app": "web"}}))));
    assert_eq!(
        doc["metadata"]["labels"],
        json!({"team": "shop", "tier": "web", "env": "prod"})
    );
    let tier_ops = decision
        .patch
        .0
        .iter()
        .filter(|op| serde_json::to_string(op).is_ok_and(|t| t.contains("tier")))
        .count();
    // Once per metadata location (the object's, the template's), by the first rule only.
    assert_eq!(tier_ops, 2, "{:?}", decision.patch);
}

#[test]
fn default_labels_satisfy_required_labels() {
    let set = policies(
        &(policy(
            "defaults",
            "defaultLabels: {labels: {team: \"{{namespace}}\"}}",
        ) + &policy("required", "requireLabels: {labels: [team]}")),
    );
    let (doc, decision) = patched(&set, &deployment(None));
    assert_eq!(doc["metadata"]["labels"]["team"], "shop");
    assert!(decision.allowed, "{:?}", decision.findings);
    // Without the default, the same object is denied.
    let only_required = policies(&policy("required", "requireLabels: {labels: [team]}"));
    assert!(
        !evaluate(
            &only_required,
            &Request::create(
                &deployment(None),
                portcullis::policy::Timestamp::from_unix(1_767_225_600)
            )
        )
        .allowed
    );
}

const SIDECAR_A: &str = "injectSidecar: {container: {name: log-shipper, image: 'fluent/fluent-bit:3.2.4'}, volumes: [{name: shared, emptyDir: {}}], volumeMounts: [{name: shared, mountPath: /var/shared}]}";
const SIDECAR_B: &str = "injectSidecar: {container: {name: metrics, image: 'prom/statsd-exporter:v0.28.0'}, volumes: [{name: shared, emptyDir: {}}], volumeMounts: [{name: shared, mountPath: /var/shared}]}";

#[test]
fn two_sidecars_share_a_volume_and_mount_once() {
    let set = policies(&(policy("a", SIDECAR_A) + &policy("b", SIDECAR_B)));
    let (doc, _) = patched(&set, &deployment(None));
    let spec = &doc["spec"]["template"]["spec"];
    // The empty volume both mount at the API token path (no token for sidecars) is added
    // once too.
    assert_eq!(
        spec["volumes"],
        json!([{"name": "shared", "emptyDir": {}}, {"name": "portcullis-no-api-token", "emptyDir": {}}])
    );
    let names: Vec<&str> = spec["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["app", "log-shipper", "metrics"]);
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": "shared", "mountPath": "/var/shared"}])
    );
    // The regular sidecar the first rule injected is an app container by then: the second
    // rule mounts the shared volume into it too, beside its own empty API token mount.
    assert_eq!(
        spec["containers"][1]["volumeMounts"],
        json!([
            {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "portcullis-no-api-token", "readOnly": true},
            {"name": "shared", "mountPath": "/var/shared"}
        ])
    );
}

#[test]
fn an_injected_sidecar_is_judged_where_it_will_sit() {
    // In enforce mode the loader refuses a sidecar that violates a validating policy; in warn
    // mode it loads, and the sidecar is judged like any container.
    let set = policies(
        &(policy("a", SIDECAR_A) + &policy_in_mode("probes", "warn", "requireProbes: {}")),
    );
    let decision = evaluate(
        &set,
        &Request::create(
            &deployment(None),
            portcullis::policy::Timestamp::from_unix(1_767_225_600),
        ),
    );
    let sidecar: Vec<_> = decision
        .findings
        .iter()
        .filter(|f| {
            f.kind == FindingKind::Violation && f.container.as_deref() == Some("log-shipper")
        })
        .collect();
    assert_eq!(sidecar.len(), 2, "{:?}", decision.findings);
    assert!(sidecar.iter().all(|f| f.effect == Effect::Warn));
    assert_eq!(
        sidecar[0].field,
        "spec.template.spec.containers[1].livenessProbe"
    );
}

/// A sidecar gets no API token unless its policy asks: an empty read-only volume at the token
/// path keeps the ServiceAccount admission plugin from mounting one (and from changing the Pod
/// after the injection). With `serviceAccountToken: true`, or a template that mounts something
/// there itself, nothing is added.
#[test]
fn a_sidecar_gets_an_api_token_only_when_its_policy_asks() {
    let token_mounts = |rule: &str| {
        let set = policies(&policy("inject", rule));
        let (doc, _) = patched(&set, &deployment(None));
        let spec = &doc["spec"]["template"]["spec"];
        let sidecar = spec["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == "shipper")
            .cloned()
            .expect("injected");
        let mounts: Vec<Value> = sidecar["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
            .collect();
        let volumes: Vec<Value> = spec["volumes"].as_array().cloned().unwrap_or_default();
        (
            mounts,
            volumes,
            doc["spec"]["template"]["spec"]["containers"][0].clone(),
        )
    };
    let (mounts, volumes, app) =
        token_mounts("injectSidecar: {container: {name: shipper, image: 'a:1'}}");
    assert_eq!(
        mounts,
        [
            json!({"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "portcullis-no-api-token", "readOnly": true})
        ]
    );
    assert_eq!(
        volumes,
        [json!({"emptyDir": {}, "name": "portcullis-no-api-token"})]
    );
    assert!(
        app.get("volumeMounts").is_none(),
        "the app keeps its own token: {app}"
    );

    let (mounts, volumes, _) = token_mounts(
        "injectSidecar: {serviceAccountToken: true, container: {name: shipper, image: 'a:1'}}",
    );
    assert!(
        mounts.is_empty() && volumes.is_empty(),
        "{mounts:?} {volumes:?}"
    );

    let (mounts, volumes, _) = token_mounts(
        "injectSidecar: {container: {name: shipper, image: 'a:1', volumeMounts: [{name: own, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]}, volumes: [{name: own, emptyDir: {}}]}",
    );
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0]["name"], "own");
    assert_eq!(volumes, [json!({"emptyDir": {}, "name": "own"})]);
}

fn host_network_daemonset() -> Value {
    let probe = json!({"httpGet": {"path": "/", "port": 9100}});
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {"selector": {"matchLabels": {"app": "node-exporter"}}, "template": {
            "metadata": {"labels": {"app": "node-exporter"}},
            "spec": {"hostNetwork": true, "containers": [{"name": "node-exporter",
                "image": "prom/node-exporter:v1.8.2",
                "ports": [{"containerPort": 9100, "hostPort": 9100}],
                "livenessProbe": probe, "readinessProbe": probe,
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                    "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}})
}

#[test]
fn a_sidecar_with_ports_is_not_injected_into_a_host_network_pod_and_says_so() {
    let set = portcullis::lint::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .expect("default policies");
    let object = host_network_daemonset();
    let (doc, decision) = patched(&set, &object);
    let spec = &doc["spec"]["template"]["spec"];
    // The apiserver would default the shipper's containerPort into a hostPort: nothing injected.
    assert!(spec.get("initContainers").is_none(), "{spec}");
    assert!(spec.get("volumes").is_none(), "{spec}");
    assert_eq!(spec["containers"].as_array().map(Vec::len), Some(1));
    assert!(decision.allowed);
    let notices: Vec<_> = decision
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Notice)
        .collect();
    assert_eq!(notices.len(), 1, "{:#?}", decision.findings);
    let n = notices[0];
    assert_eq!(n.policy, "inject-logging-sidecar");
    assert_eq!(n.container.as_deref(), Some("log-shipper"));
    assert_eq!(n.field, "spec.template.spec.hostNetwork");
    assert_eq!(n.effect, Effect::Warn);
    assert!(
        n.message
            .starts_with("not injected: the Pod uses the host network")
            && n.message.contains("containerPort 2020"),
        "{}",
        n.message
    );
    // Labels are still defaulted.
    assert_eq!(
        doc["metadata"]["labels"]["app.kubernetes.io/name"],
        "node-exporter"
    );
    // The webhook's /mutate answer says what happened, as a warning kubectl prints.
    let warnings = decision.warnings();
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "DaemonSet monitoring/node-exporter: [inject-logging-sidecar] container \"log-shipper\": not injected"
        )),
        "{warnings:?}"
    );

    // Without hostNetwork the same DaemonSet gets the sidecar.
    let mut pod_network = object.clone();
    pod_network["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
    let (doc, decision) = patched(&set, &pod_network);
    assert_eq!(
        doc["spec"]["template"]["spec"]["initContainers"][0]["name"],
        "log-shipper"
    );
    assert!(
        !decision
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Notice)
    );
}

#[test]
fn a_sidecar_without_ports_is_injected_into_a_host_network_pod() {
    let set = policies(&policy(
        "ship",
        "injectSidecar: {container: {name: shipper, image: 'fluent/fluent-bit:3.2.4'}}",
    ));
    let (doc, decision) = patched(&set, &host_network_daemonset());
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][1]["name"],
        "shipper"
    );
    assert!(
        !decision
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Notice)
    );
}
