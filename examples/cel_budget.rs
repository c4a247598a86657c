//! Measures what CEL rules cost on the largest object the webhook accepts (a Deployment just
//! under 4 MiB), for the cost budget (src/policy/cel_cost.rs) and BENCHMARKS.md "CEL rules":
//! for each rule, its estimated cost on that object, what the engine answered, and the time.
//!
//! ```text
//! cargo run --release --example cel_budget
//! ```

use std::path::Path;
use std::time::Instant;

use portcullis::engine::{Request, evaluate};
use portcullis::policy::{CompiledRule, Timestamp};
use serde_json::{Value, json};

/// A Deployment of `n` containers with `per` env vars each and `n` volumes.
fn deployment(n: usize, per: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": "registry.corp/x:1",
                "env": (0..per).map(|j| json!({"name": format!("E{j}"), "value": "v"})).collect::<Vec<_>>()})
        })
        .collect();
    let volumes: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"replicas": 1, "template": {"metadata": {}, "spec": {
            "containers": containers, "volumes": volumes}}}
    })
}

/// The size the cost estimate is evaluated at: one unit per value, one per 16 bytes of
/// strings and keys (as src/engine/cel.rs counts).
fn size(v: &Value) -> f64 {
    1.0 + match v {
        Value::String(s) => s.len() as f64 / 16.0,
        Value::Array(a) => a.iter().map(size).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() as f64 / 16.0 + size(v)).sum(),
        _ => 0.0,
    }
}

const RULES: &[(&str, &str)] = &[
    (
        "one validation, no comprehension",
        "object.spec.replicas >= 1",
    ),
    (
        "every container's image",
        "podSpec.containers.all(c, c.image.startsWith('registry.corp/'))",
    ),
    (
        "every env var of every container, a regex each",
        "podSpec.containers.all(c, c.?env.orValue([]).all(e, e.name.matches('^[A-Z_][A-Z0-9_]*$')))",
    ),
    (
        "names of all containers (map: quadratic in the interpreter)",
        "podSpec.containers.map(c, c.name).size() > 0",
    ),
    (
        "every container against every volume",
        "podSpec.containers.all(c, podSpec.volumes.exists(v, v.name != c.name))",
    ),
];

fn main() {
    let time = Timestamp::from_unix(1_767_225_600);
    for (n, per) in [(3, 5), (50, 200), (2000, 40)] {
        let object = deployment(n, per);
        let bytes = serde_json::to_vec(&object).map(|b| b.len()).unwrap_or(0);
        let s = size(&object);
        println!("Deployment: {n} containers × {per} env vars, {bytes} bytes, S = {s:.0}");
        for (what, expression) in RULES {
            let text = format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: p}}\nspec:\n  mode: enforce\n  rules:\n  - cel:\n      validations:\n      - expression: {expression:?}\n"
            );
            let set = match portcullis::lint::load_str(Path::new("budget.yaml"), &text) {
                Ok(set) => set,
                Err(e) => {
                    println!("  {what}: refused at load: {e}");
                    continue;
                }
            };
            let poly = match &set.policies[0].rules[0] {
                CompiledRule::Cel(c) => c.cost.steps,
                _ => continue,
            };
            let started = Instant::now();
            let d = evaluate(&set, &Request::create(&object, time));
            let took = started.elapsed();
            let answer = d
                .violations()
                .next()
                .map_or("allowed".to_owned(), |f| f.message.clone());
            println!(
                "  {what}: estimated {:.0} (budget {:.0}); {took:?}; {}",
                poly.at(s),
                portcullis::policy::cel_cost::BUDGET,
                answer.chars().take(140).collect::<String>()
            );
        }
    }
}
