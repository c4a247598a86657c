//! Criterion benchmarks of the engine and of the webhook's whole work on one request:
//! `evaluate` alone, and AdmissionReview bytes → response bytes through
//! `admission::handle` (what the `/validate` and `/mutate` handlers run), for a realistic Pod,
//! a 3-container Deployment and a 50-container Deployment with 200 env vars each, with the
//! default policies and with 50 policies. Run with `cargo bench --bench engine`.
//!
//! The `cel` group (issue 17, BENCHMARKS.md "CEL rules (issue 17): the request path"): the
//! 3-container Deployment with the default policies, and with the default policies plus the
//! shipped CEL policies (`policies/cel-*.yaml`, ten validations) switched from `off` to
//! `warn`, side by side: `cargo bench --bench engine -- cel/`.

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

/// The default policies with the shipped CEL policies (`policies/cel-*.yaml`: ten
/// validations and one match condition) switched from `off` to `warn`, plus `extra` (YAML
/// documents), loaded from a copy of `policies/` as `portcullis serve` would load it.
fn default_policies_with_cel(name: &str, cel_on: bool, extra: &str) -> PolicySet {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("policies/") {
        let path = entry.expect("entry").path();
        if !path.is_file() {
            continue;
        }
        let file = path.file_name().expect("file name");
        let mut text = std::fs::read_to_string(&path).expect("policy file");
        if cel_on && file.to_string_lossy().starts_with("cel-") {
            assert!(
                text.contains("mode: \"off\""),
                "{}: shipped off",
                path.display()
            );
            text = text.replace("mode: \"off\"", "mode: warn");
        }
        std::fs::write(dir.join(file), text).expect("write");
    }
    if !extra.is_empty() {
        std::fs::write(dir.join("bench-extra.yaml"), extra).expect("write");
    }
    let set = portcullis::lint::load_dir(&dir).expect("bench policies load");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    set
}

/// One policy with one CEL validation that reads the object but costs next to nothing: with
/// the default policies, what making the review's CEL values costs (with one trivial
/// evaluation and the rule's scope).
const ONE_TRIVIAL_CEL: &str = "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: bench-cel-trivial}\nspec:\n  mode: enforce\n  rules:\n    - cel:\n        validations:\n          - expression: \"object != null\"\n";

/// `deployment(3, 5)` whose containers differ in everything the shipped per-container CEL
/// policies read (image, securityContext): no container's outcome can be reused for another
/// (`CompiledCel::identical_containers_once`), each is judged on its own.
fn distinct_containers_deployment() -> Value {
    let mut d = deployment(3, 5);
    let contexts = [
        json!(null),
        json!({"runAsNonRoot": false}),
        json!({"privileged": false, "allowPrivilegeEscalation": true}),
    ];
    if let Some(cs) = d["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for (i, (c, context)) in cs.iter_mut().zip(contexts).enumerate() {
            c["image"] = json!(format!("registry.example.com/team-{i}/app:1.4.{i}"));
            if !context.is_null() {
                c["securityContext"] = context;
            }
        }
    }
    d
}

/// `deployment(3, 5)` made to pass the shipped CEL policies: images from an allowed
/// registry, non-root and no privilege escalation, the recommended labels on the object and
/// its Pod template.
fn compliant_deployment() -> Value {
    let mut d = deployment(3, 5);
    let labels = json!({"app": "web", "team": "payments",
        "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-shop"});
    d["metadata"]["labels"] = labels.clone();
    d["spec"]["template"]["metadata"]["labels"] = labels;
    d["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    if let Some(cs) = d["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for c in cs {
            c["image"] = json!("registry.corp.example/team/app:1.4.2");
            c["securityContext"] = json!({"allowPrivilegeEscalation": false});
        }
    }
    d
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

/// The request path with and without CEL rules, side by side (issue 17's speed target: ten
/// validations add at most 30 µs per review).
fn bench_cel(c: &mut Criterion) {
    let defaults = default_policies();
    let with_cel = default_policies_with_cel("cel", true, "");
    let trivial = default_policies_with_cel("trivial", false, ONE_TRIVIAL_CEL);
    let sets = [
        ("default-policies", &defaults),
        ("default+10-cel", &with_cel),
    ];
    let reviews = [
        ("deployment-3-containers", review_of(&deployment(3, 5))),
        (
            "deployment-3-containers-compliant",
            review_of(&compliant_deployment()),
        ),
        (
            "deployment-3-distinct-containers",
            review_of(&distinct_containers_deployment()),
        ),
    ];
    let time = portcullis::policy::Timestamp::from_unix(1_767_225_600);

    let mut group = c.benchmark_group("cel/evaluate");
    for (name, review) in &reviews {
        let object = &review["request"]["object"];
        let mut lines = sets.to_vec();
        if *name == "deployment-3-containers" {
            lines.push(("default+1-trivial-cel", &trivial));
        }
        for (policies_name, policies) in lines {
            group.bench_function(format!("{name}/{policies_name}"), |b| {
                b.iter(|| {
                    evaluate(
                        black_box(policies),
                        black_box(&Request::create(object, time)),
                    )
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("cel/review");
    for (name, review) in &reviews {
        let body = serde_json::to_vec(review).expect("serialize");
        for (policies_name, policies) in sets {
            for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                group.bench_function(
                    format!("{name}/{policies_name}/{}", endpoint.as_str()),
                    |b| {
                        b.iter(|| {
                            admission::handle(endpoint, black_box(policies), black_box(&body), time)
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

criterion_group!(benches, bench, bench_cel);
criterion_main!(benches);
