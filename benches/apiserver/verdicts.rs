//! `VERIFY=1`: before measuring, proves that the hand-written policy (`vap`,
//! benches/apiserver-vap.yaml) gives the export's verdicts (`native`), so that comparing their
//! costs is honest. Every object of the shipped policy tests (`policies/tests/`,
//! `tests/policy_sets/native/tests/`: CREATE and UPDATE cases, as the case's user) and a
//! corpus of every workload kind with each check passing and failing is sent as a server dry
//! run with each mode installed; the answers must agree: both allowed, both denied by their
//! policy, or the same other error.

use std::path::Path;

use portcullis::policytest::{self, model::TestOperation};
use serde_json::{Value, json};

use crate::e2e_support::{self, ControlPlane, Kubectl, Portcullis};

/// One request to judge: its namespace, user, the object, the stored object it replaces.
struct Probe {
    title: String,
    namespace: String,
    user: Option<String>,
    object: Value,
    stored: Option<Value>,
}

/// What the API server answered, without the words.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
    Error(String),
}

fn in_namespace(object: &Value, ns: &str) -> Value {
    let mut o = object.clone();
    o["metadata"]["namespace"] = json!(ns);
    o
}

/// The objects of every CREATE and UPDATE case of the shipped tests.
fn shipped() -> Vec<Probe> {
    let mut out = Vec::new();
    for dir in ["policies/tests", "tests/policy_sets/native/tests"] {
        let (suites, problems) = policytest::load(&[Path::new(e2e_support::ROOT).join(dir)]);
        assert!(problems.is_empty(), "{dir}: {problems:?}");
        for suite in &suites {
            for case in &suite.cases {
                let c = &case.spec;
                let (Some(object), stored) = (c.object.as_ref(), c.old_object.as_ref()) else {
                    continue;
                };
                if c.operation == TestOperation::Delete
                    || (c.operation == TestOperation::Update && stored.is_none())
                {
                    continue;
                }
                let namespace = c
                    .namespace
                    .clone()
                    .or_else(|| object["metadata"]["namespace"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "default".to_owned());
                out.push(Probe {
                    title: format!("{} / {}", suite.name, case.name),
                    user: c.user_info.as_ref().map(|u| u.username.clone()),
                    object: in_namespace(object, &namespace),
                    stored: (c.operation == TestOperation::Update)
                        .then(|| stored.map(|s| in_namespace(s, &namespace)))
                        .flatten(),
                    namespace,
                });
            }
        }
    }
    out
}

/// A pod spec's container with what `patch` sets (`null` removes a field).
fn container(name: &str, patch: &Value) -> Value {
    let mut c = e2e_support::objects::container(name);
    if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

/// `spec` as the pod spec of a `kind`.
fn workload(kind: &str, name: &str, spec: Value) -> Value {
    let labels = json!({"app": name});
    let template = json!({"metadata": {"labels": labels}, "spec": spec});
    let (api_version, body) = match kind {
        "Pod" => ("v1", spec),
        "ReplicationController" => ("v1", json!({"selector": labels, "template": template})),
        "Job" => ("batch/v1", json!({"template": template})),
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}),
        ),
        _ => (
            "apps/v1",
            json!({"selector": {"matchLabels": labels}, "template": template}),
        ),
    };
    let mut body = body;
    if kind == "StatefulSet" {
        body["serviceName"] = json!(name);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": body})
}

/// Every workload kind with each check passing and failing: probes missing, with two
/// handlers, on init containers and native sidecars; resources missing, limits only, requests
/// only, on init containers; run-to-completion Pods; and an UPDATE that keeps a violation.
fn corpus() -> Vec<Probe> {
    let probe2 = json!({"httpGet": {"path": "/", "port": 80}, "tcpSocket": {"port": 80}});
    let limits_only = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    let requests_only = json!({"requests": {"cpu": "1", "memory": "1Gi"}});
    let mut sidecar_bare = container(
        "sidecar",
        &json!({"livenessProbe": null, "readinessProbe": null}),
    );
    sidecar_bare["restartPolicy"] = json!("Always");
    let mut sidecar_no_limits = container("sidecar", &json!({"resources": requests_only}));
    sidecar_no_limits["restartPolicy"] = json!("Always");
    let ok = container("app", &json!({}));
    let variants: Vec<(&str, Value)> = vec![
        ("compliant", json!({"containers": [ok]})),
        (
            "no-liveness",
            json!({"containers": [container("app", &json!({"livenessProbe": null}))]}),
        ),
        (
            "no-readiness",
            json!({"containers": [container("app", &json!({"readinessProbe": null}))]}),
        ),
        (
            "two-handlers",
            json!({"containers": [container("app", &json!({"livenessProbe": probe2}))]}),
        ),
        (
            "second-app-bare",
            json!({"containers": [ok, container("b", &json!({"livenessProbe": null, "resources": null}))]}),
        ),
        (
            "limits-only",
            json!({"containers": [container("app", &json!({"resources": limits_only}))]}),
        ),
        (
            "requests-only",
            json!({"containers": [container("app", &json!({"resources": requests_only}))]}),
        ),
        (
            "no-memory-limit",
            json!({"containers": [container("app", &json!({"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1", "memory": "1Gi"}}}))]}),
        ),
        (
            "init-no-probes",
            json!({"containers": [ok], "initContainers": [container("init", &json!({"livenessProbe": null, "readinessProbe": null}))]}),
        ),
        (
            "init-no-resources",
            json!({"containers": [ok], "initContainers": [container("init", &json!({"resources": null}))]}),
        ),
        (
            "sidecar-no-probes",
            json!({"containers": [ok], "initContainers": [sidecar_bare]}),
        ),
        (
            "sidecar-no-limits",
            json!({"containers": [ok], "initContainers": [sidecar_no_limits]}),
        ),
        (
            "bare",
            json!({"containers": [e2e_support::objects::bare_container("app")]}),
        ),
    ];
    let kinds = [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    ];
    let mut out = Vec::new();
    for kind in kinds {
        for (variant, spec) in &variants {
            let mut spec = spec.clone();
            if matches!(kind, "Job" | "CronJob") {
                spec["restartPolicy"] = json!("Never");
            }
            let name = format!("{}-{variant}", kind.to_lowercase());
            out.push(Probe {
                title: format!("corpus {kind} {variant}"),
                namespace: "verify".to_owned(),
                user: None,
                object: in_namespace(&workload(kind, &name, spec), "verify"),
                stored: None,
            });
        }
    }
    for policy in ["Never", "OnFailure", "Always"] {
        let spec = json!({"restartPolicy": policy, "containers": [container("app", &json!({"livenessProbe": null}))]});
        out.push(Probe {
            title: format!("corpus run-once Pod, restartPolicy {policy}, no livenessProbe"),
            namespace: "verify".to_owned(),
            user: None,
            object: in_namespace(
                &workload("Pod", &format!("once-{}", policy.to_lowercase()), spec),
                "verify",
            ),
            stored: None,
        });
    }
    // UPDATEs of a Deployment: a violation kept, one introduced, one moved to another index
    // (a new key for Portcullis), one fixed; of a probe, of a resource.
    let broken: [(&str, Value); 2] = [
        ("probe", json!({"livenessProbe": null})),
        (
            "resource",
            json!({"resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}}}),
        ),
    ];
    for (what, patch) in broken {
        let bad = |n: &str| container(n, &patch);
        let name = format!("upd-{what}");
        let stored = workload(
            "Deployment",
            &name,
            json!({"containers": [bad("a"), ok.clone()]}),
        );
        let updates = [
            (
                "kept",
                json!({"containers": [bad("a"), ok.clone()], "serviceAccountName": "default"}),
            ),
            ("introduced", json!({"containers": [bad("a"), bad("app")]})),
            ("moved", json!({"containers": [ok.clone(), bad("a")]})),
            (
                "fixed",
                json!({"containers": [ok.clone(), container("a", &json!({}))]}),
            ),
        ];
        for (variant, spec) in updates {
            out.push(Probe {
                title: format!("corpus UPDATE of a Deployment, {what} violation {variant}"),
                namespace: "verify".to_owned(),
                user: None,
                object: in_namespace(&workload("Deployment", &name, spec), "verify"),
                stored: Some(in_namespace(&stored, "verify")),
            });
        }
    }
    out
}

/// An error without the pointers Go prints (`0xc0022643a1`), which differ between requests.
fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let hex = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_hexdigit())
                .len();
        out.push_str(if hex > 0 { "0x.." } else { "0x" });
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

/// Judges `probe` in the mode installed; `denied_by` is what a denial of that mode's policies says.
fn judge(k: &Kubectl, probe: &Probe, denied_by: &str) -> Verdict {
    let mut args: Vec<&str> = Vec::new();
    if let Some(u) = &probe.user {
        args.extend(["--as", u, "--as-group", "system:masters"]);
    }
    if let Some(stored) = &probe.stored {
        // The stored object, written by a user both policies never judge (a node).
        let kind = stored["kind"].as_str().unwrap_or("");
        let name = stored["metadata"]["name"].as_str().unwrap_or("");
        k.run(&[
            "delete",
            "--ignore-not-found",
            "-n",
            &probe.namespace,
            kind,
            name,
        ])
        .ok();
        let out = k.with_object(
            &[
                "--as",
                "system:node:verify",
                "--as-group",
                "system:masters",
                "create",
            ],
            stored,
        );
        assert!(
            out.success,
            "{}: stored object: {}",
            probe.title, out.stderr
        );
        args.extend(["replace", "--dry-run=server", "-o", "json"]);
    } else {
        args.extend(["create", "--dry-run=server", "-o", "json"]);
    }
    let out = k.with_object(&args, &probe.object);
    if out.success {
        Verdict::Allowed
    } else if out.stderr.contains(denied_by) {
        Verdict::Denied
    } else {
        Verdict::Error(without_addresses(out.stderr.trim()))
    }
}

/// Sends every probe with `vap`, then with `native`, and panics on any disagreement.
pub fn verify(cluster: &ControlPlane, portcullis: &Portcullis) {
    let k = &cluster.kubectl;
    let mut probes = shipped();
    let shipped_count = probes.len();
    probes.extend(corpus());
    for ns in probes
        .iter()
        .map(|p| p.namespace.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if !k.run(&["get", "namespace", &ns]).success {
            k.run(&["create", "namespace", &ns]).ok();
        }
        cluster.namespace_ready(&ns);
    }
    let mut verdicts: Vec<Vec<Verdict>> = Vec::new();
    for (mode, denied_by) in [
        ("vap", "ValidatingAdmissionPolicy 'portcullis-equivalent'"),
        // The export's objects: `portcullis-POLICY`, or `portcullis.MODE` when shared.
        ("native", "ValidatingAdmissionPolicy 'portcullis"),
    ] {
        crate::set_mode(cluster, portcullis, mode);
        verdicts.push(probes.iter().map(|p| judge(k, p, denied_by)).collect());
    }
    let mut disagree = Vec::new();
    let (mut allowed, mut denied, mut errors) = (0, 0, 0);
    for (i, p) in probes.iter().enumerate() {
        let (v, n) = (&verdicts[0][i], &verdicts[1][i]);
        match (v, n) {
            (Verdict::Allowed, Verdict::Allowed) => allowed += 1,
            (Verdict::Denied, Verdict::Denied) => denied += 1,
            (Verdict::Error(a), Verdict::Error(b)) if a == b => errors += 1,
            _ => disagree.push(format!("{}: vap {v:?}, native {n:?}", p.title)),
        }
    }
    println!(
        "verdicts: {} requests ({shipped_count} from the shipped tests, {} from the corpus): vap and native agree on {} ({allowed} allowed, {denied} denied, {errors} the same other error), disagree on {}",
        probes.len(),
        probes.len() - shipped_count,
        allowed + denied + errors,
        disagree.len()
    );
    assert!(
        disagree.is_empty(),
        "vap and native disagree:\n{}",
        disagree.join("\n")
    );
}
