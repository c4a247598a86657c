//! Cluster-scale figures against a real control plane (the end-to-end harness's: etcd,
//! kube-apiserver v1.32 on 127.0.0.1), all in one run, with the release build:
//!
//! 1. the namespace cache's memory: `portcullis serve` without cluster access, with it on a
//!    near-empty cluster, and with 5,000 labelled namespaces (RSS once ready);
//! 2. `portcullis audit --cluster` of 10,000 Deployments created through the apiserver: wall
//!    time and peak RSS (GNU time), text and JSON reports;
//! 3. the report writer (`serve --reports`) on the same cluster: time to the first complete
//!    set of reports, peak and steady RSS;
//! 4. admission latency (oha at a fixed rate against `/validate`) while the report writer
//!    lists and judges the whole cluster, and when it is idle;
//! 5. the HTML report of that cluster (`audit --cluster -o html --group-by team`): its size,
//!    the audit's wall time and peak RSS, and the time from navigation start until the page is
//!    usable in headless Chromium (its script has run: the `portcullis-usable` mark).
//!
//! ```sh
//! PORTCULLIS_E2E_ASSETS=$PWD/target/e2e-assets cargo bench --bench cluster
//! ```
//! Knobs (environment): NAMESPACES=5000, DEPLOYMENTS=10000, RUNS=3, RATE=200 (requests/s),
//! LOAD_SECONDS=3 (each latency window: the writer's first scan of 10,000 Deployments takes
//! about 2 s of it), LATENCY_RUNS=5, PHASES=cache,audit,writer,latency,html (which to run; the
//! Deployments are created whenever audit, writer, latency or html runs). Needs GNU time (`/usr/bin/time`) and oha on PATH. Method and figures:
//! BENCHMARKS.md, "Cluster scale".

#[path = "../tests/e2e_support/mod.rs"]
#[allow(unused_imports)]
mod e2e_support;

#[path = "../tests/browser_support/mod.rs"]
mod browser_support;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use e2e_support::portcullis::{BINARY, install_report_crds};
use e2e_support::{Assets, ControlPlane, Portcullis, PortcullisOptions, ROOT, wait_for};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` (peak) of a process, MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn serve(cluster: &ControlPlane, args: &[&str], env: &[(&str, &str)]) -> (Portcullis, Duration) {
    let started = Instant::now();
    let p = Portcullis::start(
        cluster,
        PortcullisOptions {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PortcullisOptions::default()
        },
    )
    .expect("portcullis starts");
    (p, started.elapsed())
}

async fn create_all(
    client: &kube::Client,
    resource: &ApiResource,
    objects: Vec<Value>,
) -> Duration {
    let started = Instant::now();
    let total = objects.len();
    let mut done = 0usize;
    let mut creates = futures::stream::iter(objects.into_iter().map(|o| {
        let client = client.clone();
        let resource = resource.clone();
        async move {
            let object: DynamicObject = serde_json::from_value(o).expect("object");
            let api: Api<DynamicObject> = match object.metadata.namespace.as_deref() {
                Some(ns) => Api::namespaced_with(client, ns, &resource),
                None => Api::all_with(client, &resource),
            };
            for attempt in 0..5 {
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => return,
                    Err(kube::Error::Api(s)) if s.code == 409 => return,
                    Err(e) if attempt == 4 => panic!("create: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }))
    .buffer_unordered(16);
    while creates.next().await.is_some() {
        done += 1;
        if done.is_multiple_of(1000) {
            eprintln!("  created {done}/{total}");
        }
    }
    started.elapsed()
}

/// How many objects of `resource` the cluster holds.
async fn count(client: &kube::Client, resource: &ApiResource) -> usize {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let mut params = ListParams::default().limit(500);
    let mut n = 0;
    loop {
        let list = api.list_metadata(&params).await.expect("list");
        n += list.items.len();
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return n,
        }
    }
}

/// A Deployment with resources but without probes: the default policies deny it (two
/// findings per container) and would mutate it (sidecar, labels).
fn deployment(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "team": "bench"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "app", "image": "registry.example/app:1.4.2",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "production"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}}]}}}})
}

/// Runs `portcullis ARGS` under GNU time: (wall seconds, peak RSS MiB, stderr).
fn timed(args: &[&str]) -> (f64, f64, String) {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(BINARY)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "audit failed ({code:?}): {err}"
    );
    let rss = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    let wall = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Elapsed (wall clock) time (h:mm:ss or m:ss): ")
        })
        .map_or(0.0, |t| {
            t.split(':').fold(0.0, |acc, part| {
                acc * 60.0 + part.parse::<f64>().unwrap_or(0.0)
            })
        });
    (wall, rss, err)
}

/// oha at `rate` requests/s for `seconds` against `/validate`: (p50, p99, p99.9) in ms.
fn load(p: &Portcullis, rate: usize, seconds: usize) -> (f64, f64, f64) {
    let body = Path::new(ROOT).join("tests/fixtures/admission/validate-create-deployment.json");
    let out = Command::new("oha")
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--insecure",
            "-m",
            "POST",
        ])
        .args(["-H", "Content-Type: application/json"])
        .arg("-D")
        .arg(&body)
        .args([
            "-q",
            &rate.to_string(),
            "-c",
            "4",
            "-z",
            &format!("{seconds}s"),
        ])
        .arg(p.url("/validate"))
        .output()
        .expect("run oha");
    let v: Value = serde_json::from_slice(&out.stdout).expect("oha JSON");
    let pct = |k: &str| v["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    (pct("p50"), pct("p99"), pct("p99.9"))
}

/// Phase 5: `audit --cluster -o html` of the cluster: size, wall time, peak RSS, and the time
/// until the page is usable in headless Chromium, `runs` times.
fn html_report(kubeconfig: &str, policies: &str, runs: usize) {
    println!("\n## the HTML report of the cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("report.html");
    let (mut walls, mut rsss, mut usable) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let out = std::fs::File::create(&page).expect("page file");
        let status = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(BINARY)
            .args([
                "audit",
                "--cluster",
                "--kubeconfig",
                kubeconfig,
                "--policies",
                policies,
            ])
            .args(["-o", "html", "--group-by", "team"])
            .current_dir(ROOT)
            .stdout(out)
            .stderr(Stdio::piped())
            .output()
            .expect("run /usr/bin/time");
        let err = String::from_utf8_lossy(&status.stderr).into_owned();
        let field = |name: &str| {
            err.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(str::to_owned))
                .unwrap_or_default()
        };
        let rss = field("Maximum resident set size (kbytes): ")
            .parse::<f64>()
            .unwrap_or(0.0)
            / 1024.0;
        let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss): ")
            .split(':')
            .fold(0.0, |acc, part| {
                acc * 60.0 + part.parse::<f64>().unwrap_or(0.0)
            });
        let size = std::fs::metadata(&page).map(|m| m.len()).unwrap_or(0);
        let mut b = browser_support::Browser::start().expect("chromium starts");
        let p = b.page(true).expect("a page");
        let opened = Instant::now();
        b.open(&p, &page).expect("the page opens");
        let loaded = opened.elapsed().as_secs_f64() * 1000.0;
        let mark = b
            .eval(
                &p,
                "performance.getEntriesByName('portcullis-usable')[0].startTime",
            )
            .expect("the mark")
            .as_f64()
            .unwrap_or(f64::NAN);
        let shown = b
            .eval(
                &p,
                "document.querySelector('[data-count=judged]').textContent",
            )
            .expect("the summary");
        let cut = b
            .eval(&p, "document.getElementById('cut') !== null")
            .expect("cut");
        let requests = b.requests().len();
        println!(
            "  {size} bytes ({:.2} MB), audit {wall:.2} s, peak RSS {rss:.1} MiB; usable {mark:.0} ms after navigation start (load event seen after {loaded:.0} ms); judged shown {shown}, cut {cut}, {requests} request(s)",
            size as f64 / 1e6
        );
        walls.push(wall);
        rsss.push(rss);
        usable.push(mark);
    }
    println!(
        "HTML report: median audit {:.2} s, peak RSS {:.1} MiB, usable after {:.0} ms (targets: under 5 MB, usable within 2 s)",
        median(walls),
        median(rsss),
        median(usable)
    );
}

fn main() -> ExitCode {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    let assets = match Assets::from_env() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("cannot run: {why}; set {}", e2e_support::HOW_TO_RUN);
            return ExitCode::from(2);
        }
    };
    let namespaces = knob("NAMESPACES", 5000);
    let deployments = knob("DEPLOYMENTS", 10_000);
    let runs = knob("RUNS", 3);
    let rate = knob("RATE", 200);
    let load_seconds = knob("LOAD_SECONDS", 3);
    let latency_runs = knob("LATENCY_RUNS", 5);
    let phases =
        std::env::var("PHASES").unwrap_or_else(|_| "cache,audit,writer,latency,html".to_owned());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cluster benchmarks: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_avg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let cluster = ControlPlane::start(&assets).expect("control plane starts");
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = runtime.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    });
    let ns_resource = ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&());
    let deploy_resource = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let with_cluster = ["--kubeconfig", kubeconfig.as_str()];

    // 1. The namespace cache.
    println!("\n## namespace cache ({namespaces} namespaces)");
    let (mut base_rss, mut few, mut small_rss) = (0.0, 0.0, 0.0);
    if phase("cache") {
        let (p, _) = serve(&cluster, &[], &[]);
        base_rss = memory(p.pid().expect("pid")).0;
        p.stop();
        let (p, _) = serve(&cluster, &with_cluster, &[]);
        few = p.metric("portcullis_namespace_cache_namespaces", &[]);
        small_rss = memory(p.pid().expect("pid")).0;
        p.stop();
    }
    // Dropped controllers from here on: the controller manager would also create a
    // ServiceAccount and a ConfigMap per namespace, and ReplicaSets and Pods per Deployment
    // (at its default 20 requests/s, for many minutes).
    cluster.stop_process("kube-controller-manager");
    let objects: Vec<Value> = (0..namespaces)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": format!("bench-ns-{i:05}"),
                "labels": {"team": format!("team-{}", i % 50), "env": if i % 3 == 0 { "prod" } else { "dev" },
                           "cost-center": format!("cc-{}", i % 200)}}})
        })
        .collect();
    let took = runtime.block_on(create_all(&client, &ns_resource, objects));
    println!(
        "created {namespaces} namespaces in {:.1} s",
        took.as_secs_f64()
    );
    if phase("cache") {
        let (p, ready) = serve(&cluster, &with_cluster, &[]);
        let many = p.metric("portcullis_namespace_cache_namespaces", &[]);
        let (many_rss, many_hwm) = memory(p.pid().expect("pid"));
        p.stop();
        println!("| serve | namespaces in the cache | RSS when ready (MiB) |");
        println!("|---|---:|---:|");
        println!("| without cluster access | - | {base_rss:.1} |");
        println!("| with cluster access | {few} | {small_rss:.1} |");
        println!(
            "| with cluster access | {many} | {many_rss:.1} (peak {many_hwm:.1}; ready in {:.2} s) |",
            ready.as_secs_f64()
        );
        println!(
            "namespace cache: {:.1} MiB for {} more namespaces ({:.0} bytes each)",
            many_rss - small_rss,
            many - few,
            (many_rss - small_rss) * 1024.0 * 1024.0 / (many - few).max(1.0)
        );
    }

    // 2. audit --cluster of the Deployments.
    println!("\n## audit --cluster of {deployments} Deployments");
    let per_namespace = 100;
    let objects: Vec<Value> = (0..deployments)
        .map(|i| {
            deployment(
                &format!("bench-ns-{:05}", i / per_namespace),
                &format!("app-{i:05}"),
            )
        })
        .collect();
    let took = runtime.block_on(create_all(&client, &deploy_resource, objects));
    let stored = runtime.block_on(count(&client, &deploy_resource));
    println!(
        "created {deployments} Deployments through the apiserver in {:.1} s ({:.0}/s); the cluster holds {stored}",
        took.as_secs_f64(),
        deployments as f64 / took.as_secs_f64()
    );
    let policies = Path::new(ROOT).join("policies").display().to_string();
    let outputs: &[&str] = if phase("audit") {
        &["text", "json"]
    } else {
        &[]
    };
    for &output in outputs {
        let (mut walls, mut rsss) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (wall, rss, err) = timed(&[
                "audit",
                "--cluster",
                "--kubeconfig",
                &kubeconfig,
                "--policies",
                &policies,
                "-o",
                output,
                "--stats",
            ]);
            let stats = err
                .lines()
                .find(|l| l.starts_with("stats:"))
                .unwrap_or("")
                .to_owned();
            println!("  -o {output}: {wall:.2} s, peak RSS {rss:.1} MiB; {stats}");
            walls.push(wall);
            rsss.push(rss);
        }
        println!(
            "audit --cluster -o {output}: median {:.2} s wall, peak RSS {:.1} MiB (targets: 15 s, 200 MiB)",
            median(walls),
            median(rsss)
        );
    }

    // 5. The HTML report of the cluster, in a browser.
    if phase("html") {
        html_report(&kubeconfig, &policies, runs);
    }

    // 3. The report writer on the same cluster.
    if !phase("writer") && !phase("latency") {
        cluster.stop(false);
        return ExitCode::SUCCESS;
    }
    println!("\n## report writer (serve --reports) on the same cluster");
    install_report_crds(&cluster);
    let writer_args = [
        "--kubeconfig",
        kubeconfig.as_str(),
        "--reports",
        "--reports-lease-duration",
        "5",
    ];
    let writer_env = [("POD_NAMESPACE", "default")];
    let expected_reports = deployments.div_ceil(per_namespace) as f64;
    let mut scans = Vec::new();
    for run in 0..runs {
        let env = [
            writer_env[0],
            ("POD_NAME", if run % 2 == 0 { "bench-a" } else { "bench-b" }),
        ];
        let (p, _) = serve(&cluster, &writer_args, &env);
        let started = Instant::now();
        wait_for("the first full scan", Duration::from_secs(300), || {
            (p.metric("portcullis_reports_scans_total", &[("trigger", "start")]) >= 1.0)
                .then_some(())
        });
        let scanned = started.elapsed();
        wait_for("every report", Duration::from_secs(300), || {
            (p.metric("portcullis_reports", &[]) >= expected_reports).then_some(())
        });
        let written = started.elapsed();
        let pid = p.pid().expect("pid");
        let (rss, hwm) = memory(pid);
        let workloads = p.metric("portcullis_reports_workloads", &[]);
        let writes = p.metric("portcullis_reports_writes_total", &[]);
        println!(
            "  run {}: {workloads} workloads listed and judged {:.2} s after ready, {expected_reports} reports in the cluster after {:.2} s ({writes} writes); RSS {rss:.1} MiB, peak {hwm:.1} MiB",
            run + 1,
            scanned.as_secs_f64(),
            written.as_secs_f64()
        );
        scans.push((scanned.as_secs_f64(), rss, hwm));

        // 4. Admission latency while the next writer scans (it starts listing as soon as it
        // is ready), then while this one is idle.
        if run + 1 == runs {
            let (idle50, idle99, idle999) = load(&p, rate, load_seconds);
            println!(
                "  admission at {rate}/s while the writer is idle: p50 {idle50:.2} ms, p99 {idle99:.2} ms, p99.9 {idle999:.2} ms"
            );
        }
        p.stop();
    }
    println!(
        "report writer: median {:.2} s to list and judge everything; RSS {:.1} MiB, peak {:.1} MiB (target: 150 MiB)",
        median(scans.iter().map(|s| s.0).collect()),
        median(scans.iter().map(|s| s.1).collect()),
        median(scans.iter().map(|s| s.2).collect())
    );
    println!(
        "\n## admission latency during a full scan ({rate} requests/s, {load_seconds} s, 4 connections)"
    );
    println!("| run | writer | p50 (ms) | p99 (ms) | p99.9 (ms) | scan (s) |");
    println!("|---|---|---:|---:|---:|---:|");
    let (mut scanning, mut idle) = (Vec::new(), Vec::new());
    for run in 0..latency_runs {
        let env = [writer_env[0], ("POD_NAME", "bench-load")];
        let (p, _) = serve(&cluster, &writer_args, &env);
        let (b50, b99, b999) = load(&p, rate, load_seconds);
        let scan = p.metric("portcullis_reports_scan_duration_seconds", &[]);
        let done = p.metric("portcullis_reports_scans_total", &[("trigger", "start")]) >= 1.0;
        println!(
            "| {} | scanning (first {:.1} s of the run{}) | {b50:.2} | {b99:.2} | {b999:.2} | {scan:.1} |",
            run + 1,
            scan,
            if done {
                ""
            } else {
                ", still scanning at the end"
            }
        );
        let (i50, i99, i999) = load(&p, rate, load_seconds);
        println!(
            "| {} | idle | {i50:.2} | {i99:.2} | {i999:.2} | - |",
            run + 1
        );
        scanning.push((b50, b99));
        idle.push((i50, i99));
        p.stop();
    }
    println!(
        "admission during a full scan: median p50 {:.2} ms, p99 {:.2} ms; idle: p50 {:.2} ms, p99 {:.2} ms",
        median(scanning.iter().map(|x| x.0).collect()),
        median(scanning.iter().map(|x| x.1).collect()),
        median(idle.iter().map(|x| x.0).collect()),
        median(idle.iter().map(|x| x.1).collect()),
    );
    cluster.stop(false);
    ExitCode::SUCCESS
}
