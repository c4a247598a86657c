//! What Portcullis costs a Pod create through a real kube-apiserver, next to no admission
//! webhook at all and to an equivalent in-tree ValidatingAdmissionPolicy (CEL), all in one
//! run on one control plane (the end-to-end harness, tests/e2e_support/). Run it with
//! `bash benches/apiserver.sh`; method and figures in BENCHMARKS.md.
//!
//! Modes: `none` (no webhook, no policy), `validate+mutate` (deploy/'s two webhook
//! configurations), `validate` (the validating one only), `vap` (a ValidatingAdmissionPolicy
//! written by hand with the checks and verdicts of the exported require-probes and
//! require-resources: benches/apiserver-vap.yaml), `native`
//! (what `portcullis policy export policies` writes: the same two policies, exported as one
//! shared ValidatingAdmissionPolicy), `native+mutate` (the export with its
//! MutatingAdmissionPolicy objects, v1alpha1: the control plane runs with that feature gate).
//! For each mode, in rounds
//! that interleave the modes: compliant Pods created one after the other, then by 8 concurrent
//! clients (HTTP/2, the admin client certificate); p50, p99 and Pods/s. Portcullis' own time
//! per review and the apiserver's time per webhook call come from both metrics endpoints.
//!
//! Knobs (environment): `SEQUENTIAL` Pods per round created one by one (200), `CONCURRENT`
//! Pods per round created by 8 clients (400), `ROUNDS` (3), `WARMUP` Pods per mode and round
//! before measuring (20), `BASELINE` another `portcullis` binary (an older build), run beside
//! this one as the extra mode `validate+mutate (baseline)`, `NATIVE_FILES` files of native
//! policy objects as `LABEL=PATH,...` (an older `portcullis policy export policies`, a variant),
//! each applied as the extra mode `native (LABEL)`, `MODES` the modes to run, comma-separated
//! (every mode; `none` always), `VERIFY=1` first prove that `vap` and `native` give the same
//! verdicts (benches/apiserver/verdicts.rs).

#[path = "../tests/e2e_support/mod.rs"]
#[allow(unused_imports)]
mod e2e_support;
#[path = "apiserver/verdicts.rs"]
mod verdicts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_support::api::Api;
use e2e_support::objects::{bare_container, container, pod};
use e2e_support::portcullis::{apply_webhooks, wait_until_enforced};
use e2e_support::{Assets, ControlPlane, Portcullis, PortcullisOptions, http, wait_for};
use serde_json::{Value, json};

const MODES: [&str; 6] = [
    "none",
    "validate+mutate",
    "validate",
    "vap",
    "native",
    "native+mutate",
];
const BASELINE_MODE: &str = "validate+mutate (baseline)";
/// The prefix of the modes of `NATIVE_FILES` (an older export, a variant): beside `native`,
/// what the export's changes gained.
const NATIVE_FILE_MODE: &str = "native (";
/// Portcullis validate + mutate on Pods that already carry what it would add: the webhooks are
/// called, no patch comes back. Its difference to `validate+mutate` is what applying a patch
/// costs the apiserver.
const NO_PATCH_MODE: &str = "validate+mutate, no patch";
const CONCURRENCY: usize = 8;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The hand-written ValidatingAdmissionPolicy and binding (benches/apiserver-vap.yaml): the
/// checks of the exported default policies, with their verdicts (`VERIFY=1` proves it).
fn admission_policy() -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(include_str!("apiserver-vap.yaml"))
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML object"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// What `portcullis policy export policies` writes (with MutatingAdmissionPolicy v1alpha1
/// when `mutate`).
fn exported(mutate: bool) -> Vec<Value> {
    let set = portcullis::lint::load_dir(&std::path::Path::new(e2e_support::ROOT).join("policies"))
        .expect("policies");
    let options = portcullis::native::Options {
        time: portcullis::policy::Timestamp::now(),
        mutating: mutate.then_some(portcullis::native::MutatingVersion::V1alpha1),
        excluded_namespaces: portcullis::native::DEFAULT_EXCLUDED_NAMESPACES
            .map(str::to_owned)
            .to_vec(),
    };
    portcullis::native::export(&set, &options).objects
}

/// The `NATIVE_FILES` entries: (mode, path).
fn native_files() -> Vec<(&'static str, String)> {
    std::env::var("NATIVE_FILES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(label, path)| {
            let mode: &'static str =
                Box::leak(format!("{NATIVE_FILE_MODE}{label})").into_boxed_str());
            (mode, path.to_owned())
        })
        .collect()
}

/// The objects of the `NATIVE_FILES` entry of `mode` (a YAML stream, as the export prints it).
fn native_file(mode: &str) -> Vec<Value> {
    let (_, path) = native_files()
        .into_iter()
        .find(|(m, _)| *m == mode)
        .expect("NATIVE_FILES entry");
    let text = std::fs::read_to_string(&path).expect("NATIVE_FILES file");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML object"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Puts the cluster in `mode` and waits until it is in force.
fn set_mode(cluster: &ControlPlane, portcullis: &Portcullis, mode: &str) {
    let k = &cluster.kubectl;
    k.run(&[
        "delete",
        "--ignore-not-found",
        "-l",
        "app.kubernetes.io/managed-by=portcullis",
        "validatingadmissionpolicybinding,validatingadmissionpolicy,mutatingadmissionpolicybinding,mutatingadmissionpolicy",
    ])
    .ok();
    k.run(&[
        "delete",
        "--ignore-not-found",
        "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "portcullis",
    ])
    .ok();
    k.run(&[
        "delete",
        "--ignore-not-found",
        "validatingadmissionpolicybinding,validatingadmissionpolicy",
        "portcullis-equivalent",
    ])
    .ok();
    let configs = portcullis.webhook_configurations();
    match mode {
        "none" => apply_webhooks(cluster, &[]),
        "validate+mutate" | BASELINE_MODE | NO_PATCH_MODE => {
            apply_webhooks(cluster, &configs);
            wait_until_enforced(cluster);
        }
        "validate" => {
            let only: Vec<Value> = configs
                .into_iter()
                .filter(|c| c["kind"] == "ValidatingWebhookConfiguration")
                .collect();
            apply_webhooks(cluster, &only);
        }
        "vap" => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": admission_policy()});
            k.with_object(&["apply"], &list).ok();
        }
        m if m.starts_with("native") => {
            let items = if mode.starts_with(NATIVE_FILE_MODE) {
                native_file(mode)
            } else {
                exported(mode == "native+mutate")
            };
            let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
            k.with_object(&["apply"], &list).ok();
        }
        other => panic!("unknown mode {other}"),
    }
    // In force: a Pod without probes is denied exactly when the mode judges.
    let bare = pod("probe-bare", bare_container("app"));
    wait_for(&format!("mode {mode}"), Duration::from_secs(60), || {
        let out = k.with_object(&["create", "-n", "default", "--dry-run=server"], &bare);
        let denied_by = if out.success {
            "none"
        } else if out.stderr.contains("validate.portcullis.dev") {
            "webhook"
        } else if out.stderr.contains("portcullis-equivalent") {
            "vap"
        } else if out.stderr.contains("ValidatingAdmissionPolicy 'portcullis") {
            "native"
        } else {
            "other"
        };
        let want = match mode {
            "none" => "none",
            "vap" => "vap",
            m if m.starts_with("native") => "native",
            _ => "webhook",
        };
        if denied_by != want {
            return None;
        }
        // Measured in steady state: the API server's status controller has type-checked every
        // policy (against the schema of each kind it matches, on the same cores).
        if mode == "vap" || mode.starts_with("native") {
            let policies = k
                .run(&["get", "validatingadmissionpolicies", "-o", "json"])
                .json();
            let checked = policies["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|p| p["status"]["observedGeneration"] == p["metadata"]["generation"])
            });
            if !checked {
                return None;
            }
        }
        // The mutating policies too: a compliant Pod gets the log shipper.
        if mode == "native+mutate" {
            let ok = pod("probe-ok", container("app"));
            let out = k.with_object(
                &["create", "-n", "default", "--dry-run=server", "-o", "json"],
                &ok,
            );
            let v: Value = serde_json::from_str(&out.stdout).ok()?;
            return e2e_support::objects::has_container(&v, "log-shipper").then_some(());
        }
        Some(())
    });
}

#[derive(Default)]
struct Sample {
    sequential: Vec<Duration>,
    concurrent: Vec<Duration>,
    concurrent_wall: Duration,
    failures: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The Pod every mode creates: compliant; for [`NO_PATCH_MODE`] with the log shipper and the
/// default labels already in it.
fn bench_pod(mode: &str, name: &str) -> Value {
    let mut p = pod(name, container("app"));
    if mode == NO_PATCH_MODE {
        let mut shipper = container("log-shipper");
        shipper["restartPolicy"] = json!("Always");
        p["spec"]["initContainers"] = json!([shipper]);
        p["metadata"]["labels"] =
            json!({"app.kubernetes.io/name": name, "portcullis.dev/policy-managed": "true"});
    }
    p
}

/// Creates `count` Pods one after the other (`record`: their latencies count).
fn create_sequentially(
    rt: &tokio::runtime::Runtime,
    (api, mode, ns): (&Api, &str, &str),
    (prefix, count, record): (&str, usize, bool),
    out: &mut Sample,
) {
    rt.block_on(async {
        for i in 0..count {
            let a = api
                .create_pod(ns, &bench_pod(mode, &format!("{prefix}-{i}")), false)
                .await;
            out.failures += usize::from(a.status != 201);
            if record {
                out.sequential.push(a.took);
            }
        }
    });
}

/// Creates `count` Pods from 8 concurrent clients.
fn create_concurrently(
    rt: &tokio::runtime::Runtime,
    (api, mode, ns): (&Api, &'static str, &str),
    count: usize,
    out: &mut Sample,
) {
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..CONCURRENCY {
            let (api, ns) = (api.clone(), ns.to_owned());
            tasks.push(tokio::spawn(async move {
                let (mut took, mut failed) = (Vec::new(), 0);
                let mut i = worker;
                while i < count {
                    let body = bench_pod(mode, &format!("par-{i}"));
                    let a = api.create_pod(&ns, &body, false).await;
                    failed += usize::from(a.status != 201);
                    took.push(a.took);
                    i += CONCURRENCY;
                }
                (took, failed)
            }));
        }
        for t in tasks {
            let (took, failed) = t.await.expect("worker");
            out.concurrent.extend(took);
            out.failures += failed;
        }
        out.concurrent_wall = start.elapsed();
    });
}

/// Sum and count of a Prometheus histogram's series with these labels.
fn histogram(text: &str, name: &str, labels: &[(&str, &str)]) -> (f64, f64) {
    (
        http::metric(text, &format!("{name}_sum"), labels),
        http::metric(text, &format!("{name}_count"), labels),
    )
}

/// Where a sequential phase spent its time: (place, metric, labels, from Portcullis' metrics).
const PLACES: [(&str, &str, (&str, &str), bool); 6] = [
    (
        "Portcullis' handler, /validate",
        "portcullis_admission_duration_seconds",
        ("endpoint", "validate"),
        true,
    ),
    (
        "Portcullis' handler, /mutate",
        "portcullis_admission_duration_seconds",
        ("endpoint", "mutate"),
        true,
    ),
    (
        "apiserver's call to validate.portcullis.dev",
        "apiserver_admission_webhook_admission_duration_seconds",
        ("name", "validate.portcullis.dev"),
        false,
    ),
    (
        "apiserver's call to mutate.portcullis.dev",
        "apiserver_admission_webhook_admission_duration_seconds",
        ("name", "mutate.portcullis.dev"),
        false,
    ),
    (
        "apiserver's mutating admission (all plugins)",
        "apiserver_admission_step_admission_duration_seconds",
        ("type", "admit"),
        false,
    ),
    (
        "apiserver's validating admission (all plugins)",
        "apiserver_admission_step_admission_duration_seconds",
        ("type", "validate"),
        false,
    ),
];

type Stats = (Duration, Duration, f64, Duration, Duration, f64, usize);

fn stats(all: &[Sample]) -> Stats {
    let mut seq: Vec<Duration> = all.iter().flat_map(|s| s.sequential.clone()).collect();
    let mut par: Vec<Duration> = all.iter().flat_map(|s| s.concurrent.clone()).collect();
    seq.sort();
    par.sort();
    let seq_total: f64 = seq.iter().map(Duration::as_secs_f64).sum();
    let par_wall: f64 = all.iter().map(|s| s.concurrent_wall.as_secs_f64()).sum();
    (
        percentile(&seq, 50.0),
        percentile(&seq, 99.0),
        seq.len() as f64 / seq_total,
        percentile(&par, 50.0),
        percentile(&par, 99.0),
        par.len() as f64 / par_wall,
        all.iter().map(|s| s.failures).sum(),
    )
}

fn main() {
    let assets = match Assets::from_env() {
        Ok(a) => a,
        Err(why) => {
            println!("SKIPPED apiserver benchmark ({why}); run `bash benches/apiserver.sh`");
            return;
        }
    };
    let (sequential, concurrent, rounds, warmup) = (
        knob("SEQUENTIAL", 200),
        knob("CONCURRENT", 400),
        knob("ROUNDS", 3),
        knob("WARMUP", 20),
    );
    let cluster = ControlPlane::start_with(
        &assets,
        &[
            "--feature-gates=MutatingAdmissionPolicy=true".to_owned(),
            "--runtime-config=admissionregistration.k8s.io/v1alpha1=true".to_owned(),
        ],
    )
    .expect("control plane");
    let portcullis = Portcullis::start(&cluster, PortcullisOptions::default()).expect("portcullis");
    let baseline = std::env::var_os("BASELINE").map(|bin| {
        // The default policies, less settings an older binary does not know (their defaults
        // were its behaviour).
        let policies = cluster.dir().join("baseline-policies");
        std::fs::create_dir_all(&policies).expect("baseline policies");
        for entry in std::fs::read_dir(std::path::Path::new(e2e_support::ROOT).join("policies"))
            .expect("policies")
        {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("policy");
            let kept: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("serviceAccountToken:"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(policies.join(path.file_name().expect("name")), kept).expect("write");
        }
        let options = PortcullisOptions {
            binary: Some(bin.into()),
            policy_source: Some(policies),
            ..PortcullisOptions::default()
        };
        Portcullis::start(&cluster, options).expect("baseline portcullis")
    });
    let mut modes: Vec<&'static str> = MODES.to_vec();
    modes.insert(2, NO_PATCH_MODE);
    if baseline.is_some() {
        modes.insert(2, BASELINE_MODE);
    }
    let at = modes
        .iter()
        .position(|m| *m == "native")
        .unwrap_or(modes.len());
    for (mode, _) in native_files().into_iter().rev() {
        modes.insert(at, mode);
    }
    if let Ok(only) = std::env::var("MODES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        modes.retain(|m| *m == "none" || m.starts_with(NATIVE_FILE_MODE) || only.contains(m));
    }
    if std::env::var("VERIFY").is_ok_and(|v| v == "1") {
        verdicts::verify(&cluster, &portcullis);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let api = Api::new(&cluster);
    println!(
        "apiserver benchmark: {rounds} rounds x {} modes, each {warmup} warm-up + {sequential} sequential + {concurrent} concurrent ({CONCURRENCY} clients) Pod creates",
        modes.len()
    );
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    // Per round: each mode's sequential p50 (the spread between rounds).
    let mut round_p50: Vec<BTreeMap<&str, f64>> = Vec::new();
    let mut costs: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
    for round in 0..rounds {
        round_p50.push(BTreeMap::new());
        for &mode in &modes {
            let instance = match (mode, &baseline) {
                (BASELINE_MODE, Some(b)) => b,
                _ => &portcullis,
            };
            set_mode(&cluster, instance, mode);
            let slug: String = mode
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let ns = cluster.namespace(&format!("bench-{}-{round}", slug.trim_end_matches('-')));
            let mut sample = Sample::default();
            create_sequentially(&rt, (&api, mode, &ns), ("warm", warmup, false), &mut sample);
            let before = (instance.metrics(), cluster.apiserver_metrics());
            create_sequentially(
                &rt,
                (&api, mode, &ns),
                ("seq", sequential, true),
                &mut sample,
            );
            let after = (instance.metrics(), cluster.apiserver_metrics());
            create_concurrently(&rt, (&api, mode, &ns), concurrent, &mut sample);
            for (place, metric, label, ours) in PLACES {
                let (b, a) = if ours {
                    (&before.0, &after.0)
                } else {
                    (&before.1, &after.1)
                };
                let (s0, c0) = histogram(b, metric, &[label]);
                let (s1, c1) = histogram(a, metric, &[label]);
                let e = costs.entry((mode, place)).or_default();
                e.0 += s1 - s0;
                e.1 += c1 - c0;
            }
            let mut seq = sample.sequential.clone();
            seq.sort();
            println!(
                "round {round} {mode:>26}: sequential p50 {:.2} ms, {} failures",
                ms(percentile(&seq, 50.0)),
                sample.failures
            );
            round_p50[round].insert(mode, ms(percentile(&seq, 50.0)));
            samples.entry(mode).or_default().push(sample);
        }
    }

    println!();
    println!(
        "| mode | sequential p50 | sequential p99 | sequential Pods/s | 8 concurrent p50 | 8 concurrent p99 | 8 concurrent Pods/s | p50 overhead (sequential) | failures |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let base = stats(&samples["none"]).0;
    let mut overheads = BTreeMap::new();
    for &mode in &modes {
        let (p50, p99, rate, cp50, cp99, crate_, failures) = stats(&samples[mode]);
        let overhead = ms(p50) - ms(base);
        overheads.insert(mode, overhead);
        println!(
            "| {mode} | {:.2} ms | {:.2} ms | {rate:.0} | {:.2} ms | {:.2} ms | {crate_:.0} | {} | {failures} |",
            ms(p50),
            ms(p99),
            ms(cp50),
            ms(cp99),
            if mode == "none" {
                "—".to_owned()
            } else {
                format!("{overhead:+.2} ms")
            }
        );
    }
    println!();
    println!("Where the sequential creates spent their time (means from both metrics endpoints):");
    println!();
    println!("| mode | where | mean per call | calls |");
    println!("|---|---|---|---|");
    for &mode in &modes {
        for (place, ..) in PLACES {
            let (sum, count) = costs.get(&(mode, place)).copied().unwrap_or_default();
            if count > 0.0 && sum > 0.0 {
                println!(
                    "| {mode} | {place} | {:.3} ms | {count:.0} |",
                    sum / count * 1000.0
                );
            }
        }
    }
    println!();
    println!("The p50 overhead over `none` per round (sequential), its median and spread:");
    println!();
    println!("| mode | per round | median | min | max |");
    println!("|---|---|---|---|---|");
    let mut medians = BTreeMap::new();
    for &mode in modes.iter().filter(|m| **m != "none") {
        let mut per: Vec<f64> = round_p50.iter().map(|r| r[mode] - r["none"]).collect();
        let text: Vec<String> = per.iter().map(|o| format!("{o:+.2}")).collect();
        per.sort_by(f64::total_cmp);
        let median = per[per.len() / 2];
        medians.insert(mode, median);
        println!(
            "| {mode} | {} | {median:+.2} ms | {:+.2} ms | {:+.2} ms |",
            text.join(", "),
            per[0],
            per[per.len() - 1]
        );
    }
    if modes.contains(&"native") && modes.contains(&"vap") {
        let ratios: Vec<String> = round_p50
            .iter()
            .map(|r| format!("{:.2}", (r["native"] - r["none"]) / (r["vap"] - r["none"])))
            .collect();
        println!();
        println!(
            "the exported policies add {:+.2} ms at p50 (median of rounds), the hand-written ValidatingAdmissionPolicy {:+.2} ms: ratio {:.2} (target <= 1.10); per round: {}",
            medians["native"],
            medians["vap"],
            medians["native"] / medians["vap"],
            ratios.join(", ")
        );
        // The API server's own validating step, over what it costs with no policy at all.
        let step = |mode: &str| {
            let (sum, count) = costs
                .get(&(mode, "apiserver's validating admission (all plugins)"))
                .copied()
                .unwrap_or_default();
            sum / count.max(1.0) * 1000.0
        };
        let none = step("none");
        println!(
            "validating admission step, mean over none: native {:+.3} ms, vap {:+.3} ms: ratio {:.2}",
            step("native") - none,
            step("vap") - none,
            (step("native") - none) / (step("vap") - none)
        );
    }
    if modes.contains(&"validate+mutate") && modes.contains(&"vap") {
        let (vm, vap) = (overheads["validate+mutate"], overheads["vap"]);
        println!();
        println!(
            "validate+mutate adds {vm:+.2} ms at p50, the ValidatingAdmissionPolicy {vap:+.2} ms: ratio {:.2} (target <= 1.5)",
            vm / vap
        );
    }
    if let Some(b) = baseline {
        b.stop();
    }
    portcullis.stop();
    cluster.stop(false);
}
