//! Criterion benchmarks of the pure engine: parse + evaluate + patch for realistic objects.
//! Run with `cargo bench --bench engine`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::engine::{Request, evaluate};
use portcullis::policy::PolicySet;
use serde_json::{Value, json};

fn default_policies() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    portcullis::policy::load_dir(&dir).expect("default policies load")
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
    portcullis::policy::load_str(Path::new("bench.yaml"), &text).expect("bench policies load")
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

fn pod() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/admission/validate-create-pod-bare.json"),
    )
    .expect("fixture");
    let review: Value = serde_json::from_str(&text).expect("json");
    review["request"]["object"].clone()
}

fn bench(c: &mut Criterion) {
    let defaults = default_policies();
    let fifty = many_policies(50);
    let cases = [
        ("pod", pod()),
        ("deployment-3-containers", deployment(3, 5)),
        ("large-50-containers-200-env", deployment(50, 200)),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (name, obj) in &cases {
        let bytes = serde_json::to_vec(obj).expect("serialize");
        group.bench_function(format!("{name}/default-policies"), |b| {
            b.iter(|| evaluate(black_box(&defaults), black_box(&Request::create(obj))))
        });
        group.bench_function(format!("{name}/50-policies"), |b| {
            b.iter(|| evaluate(black_box(&fifty), black_box(&Request::create(obj))))
        });
        group.bench_function(format!("{name}/parse+evaluate+patch-json"), |b| {
            b.iter(|| {
                let obj: Value = serde_json::from_slice(black_box(&bytes)).expect("parse");
                let d = evaluate(&defaults, &Request::create(&obj));
                serde_json::to_vec(&d.patch).expect("serialize patch")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
