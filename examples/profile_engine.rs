//! Runs the engine in a loop for profilers (callgrind, perf): `cargo run --release --example
//! profile_engine -- [iterations] [document|value] [policies-dir]`. Evaluates a 3-container
//! Deployment with the default policies (or those of `policies-dir`), read as the webhook
//! reads a request body (`document`, the default: a `json::Document`) or as the CLI reads a
//! manifest (`value`: a `serde_json::Value`).

use std::path::Path;

use portcullis::engine::{Request, evaluate};
use portcullis::json::Json;
use serde_json::{Value, json};

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::args().nth(3).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        std::path::PathBuf::from,
    );
    let set = match portcullis::lint::load_dir(&dir) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let containers: Vec<Value> = (0..3)
        .map(|i| {
            json!({
                "name": format!("app-{i}"), "image": "registry.example.com/team/app:1.4.2",
                "env": (0..5).map(|e| json!({"name": format!("VAR_{e}"), "value": "v"})).collect::<Vec<_>>(),
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
            })
        })
        .collect();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}
    });
    let as_value = std::env::args().nth(2).as_deref() == Some("value");
    let text = serde_json::to_vec(&deployment).unwrap_or_default();
    let document = match portcullis::json::Document::parse(&text) {
        Ok(document) => document,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let object = if as_value {
        Json::from(&deployment)
    } else {
        document.root()
    };
    let started = std::time::Instant::now();
    let mut ops = 0;
    for _ in 0..iterations {
        let d = evaluate(
            &set,
            &Request::create(
                std::hint::black_box(object),
                portcullis::policy::Timestamp::from_unix(1_767_225_600),
            ),
        );
        ops += d.patch.0.len();
    }
    let per = started.elapsed() / u32::try_from(iterations).unwrap_or(u32::MAX);
    println!("{iterations} evaluations, {ops} patch ops, {per:?} per evaluation");
}
