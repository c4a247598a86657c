//! Criterion benchmarks of the engine and of the webhook's whole work on one request:
//! `evaluate` alone, and AdmissionReview bytes → response bytes through
//! `admission::handle` (what the `/validate` and `/mutate` handlers run), for a realistic Pod,
//! a 3-container Deployment and a 50-container Deployment with 200 env vars each, with the
//! default policies and with 50 policies. Run with `cargo bench --bench engine`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::admission;
use portcullis::engine::{Request, evaluate};
use portcullis::policy::PolicySet;
use portcullis::telemetry::Endpoint;
use serde_json::{Value, json};

fn default_policies() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    portcullis::lint::load_dir(&dir).expect("default policies load")
}

fn many_policies(n: usize) -> PolicySet {
    let mut text = String::new();
    for i in 0..n {
        let rule = match i % 5 {
            0 => "requireProbes: {}",
            1 => "requireResources: {}",
            2 => "requireImageTag: {}",
            3 => "requireLabels: {labels: [team]}",
            _ => "defaultLabels: {labels: {portcullis.dev/checked: \"true\"}}",
        };
        text.push_str(&format!(
            "---\napiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p{i}}}\nspec:\n  mode: {}\n  match: {{namespaces: {{exclude: [ns-{i}]}}}}\n  rules:\n    - {rule}\n",
            if i % 2 == 0 { "enforce" } else { "warn" }
        ));
    }
    portcullis::lint::load_str(Path::new("bench.yaml"), &text).expect("bench policies load")
}

fn container(i: usize, envs: usize) -> Value {
    let env: Vec<Value> = (0..envs)
        .map(|e| json!({"name": format!("VAR_{e}"), "value": format!("value-{e}")}))
        .collect();
    json!({
        "name": format!("app-{i}"), "image": "registry.example.com/team/app:1.4.2",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": env,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
    })
}

fn deployment(containers: usize, envs: usize) -> Value {
    let cs: Vec<Value> = (0..containers).map(|i| container(i, envs)).collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "team": "payments"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": cs}}}
    })
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/admission")
            .join(name),
    )
    .expect("fixture");
    serde_json::from_str(&text).expect("json")
}

/// The captured review of a bare Pod, as the apiserver sent it.
fn pod_review() -> Value {
    fixture("mutate-create-pod-bare.json")
}

/// A captured Deployment CREATE review with its object replaced by `object`.
fn review_of(object: &Value) -> Value {
    let mut review = fixture("mutate-create-deployment.json");
    let request = &mut review["request"];
    request["namespace"] = object["metadata"]["namespace"].clone();
    request["name"] = object["metadata"]["name"].clone();
    request["object"] = object.clone();
    review
}

fn bench(c: &mut Criterion) {
    let defaults = default_policies();
    let fifty = many_policies(50);
    let policy_sets = [("default-policies", &defaults), ("50-policies", &fifty)];
    let reviews = [
        ("pod", pod_review()),
        ("deployment-3-containers", review_of(&deployment(3, 5))),
        (
            "large-50-containers-200-env",
            review_of(&deployment(50, 200)),
        ),
    ];

    let mut group = c.benchmark_group("evaluate");
    for (name, review) in &reviews {
        let object = &review["request"]["object"];
        for (policies_name, policies) in policy_sets {
            group.bench_function(format!("{name}/{policies_name}"), |b| {
                b.iter(|| {
                    evaluate(
                        black_box(policies),
                        black_box(&Request::create(
                            object,
                            portcullis::policy::Timestamp::from_unix(1_767_225_600),
                        )),
                    )
                })
            });
        }
    }
    group.finish();

    // Bytes in, bytes out: parse the AdmissionReview, evaluate, build the JSON Patch and the
    // answer, encode it. `/mutate` builds and encodes the patch; `/validate` the denial.
    let mut group = c.benchmark_group("review");
    for (name, review) in &reviews {
        let body = serde_json::to_vec(review).expect("serialize");
        for (policies_name, policies) in policy_sets {
            for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
                group.bench_function(
                    format!("{name}/{policies_name}/{}", endpoint.as_str()),
                    |b| {
                        b.iter(|| {
                            admission::handle(
                                endpoint,
                                black_box(policies),
                                black_box(&body),
                                portcullis::policy::Timestamp::from_unix(1_767_225_600),
                            )
                            .expect("handled")
                            .body
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
