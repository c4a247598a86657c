//! Criterion benchmarks of the JSON nesting scan (`src/nesting.rs`), which runs before every
//! parse of outside JSON: on the captured 3.1 KB Deployment review (what every webhook request
//! pays) beside the parse of that review, on a 3.9 MiB review (the body limit), and refusing
//! 100,000 levels; beside it, the YAML parse of a manifest and its depth budget refusing
//! 100,000 levels (`src/yaml.rs`). Run with `cargo bench --bench nesting`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis::{admission, nesting, yaml};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect("fixture")
}

fn bench(c: &mut Criterion) {
    let review = fixture("tests/fixtures/admission/validate-create-deployment.json");
    // The same review with its env list grown to just under the 4 MiB body limit.
    let mut large: serde_json::Value = serde_json::from_slice(&review).expect("json");
    let env: Vec<serde_json::Value> = (0..60_000)
        .map(|i| serde_json::json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    large["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["env"] = env.into();
    let large = serde_json::to_vec(&large).expect("json");
    assert!(
        large.len() < portcullis::server::MAX_BODY_BYTES,
        "{}",
        large.len()
    );
    let manifest = fixture("tests/manifests/helm-rendered.yaml");
    let manifest = String::from_utf8(manifest).expect("utf8");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    let mut group = c.benchmark_group("nesting");
    group.throughput(Throughput::Bytes(review.len() as u64));
    group.bench_function("check_json/review-3kb", |b| {
        b.iter(|| nesting::check_json(black_box(&review)))
    });
    group.bench_function("parse_review/review-3kb", |b| {
        b.iter(|| admission::parse_review(black_box(&review)))
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("check_json/review-3.9mib", |b| {
        b.iter(|| nesting::check_json(black_box(&large)))
    });
    group.throughput(Throughput::Bytes(manifest.len() as u64));
    group.bench_function("yaml-parse/helm-manifest", |b| {
        b.iter(|| {
            for doc in yaml::documents(black_box(&manifest)) {
                let _ = yaml::parse(doc.text);
            }
        })
    });
    group.throughput(Throughput::Bytes(deep.len() as u64));
    group.bench_function("refuse/json-100k-deep", |b| {
        b.iter(|| nesting::check_json(black_box(deep.as_bytes())))
    });
    group.bench_function("refuse/yaml-100k-deep", |b| {
        b.iter(|| yaml::parse(black_box(&deep)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
