//! Faults while a concurrent load runs (loopback only, bounded to seconds): certificate
//! rotation (including a half-written pair), policy reloads (valid and invalid), and SIGTERM
//! of the real binary with requests in flight. Every request has a unique uid and a known
//! verdict; the tests count requests and assert zero failed or wrong verdicts and zero dropped
//! in-flight requests.

mod server_support;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use portcullis::server::ReloadOutcome;
use rustls_pki_types::ServerName;
use serde_json::Value;
use server_support::{
    Http, KNOWN_VERDICTS, Options, check_verdict, client_for, eventually, fixture, serving_cert,
    start, tls_connector,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a load task connects.
#[derive(Debug, Clone, Copy)]
enum Conn {
    /// One client (connection pool) for the whole run.
    Keep(Http),
    /// A new client, hence a new TLS handshake, for every request.
    Fresh(Http),
}

const TASKS: [Conn; 6] = [
    Conn::Keep(Http::Two),
    Conn::Keep(Http::Two),
    Conn::Keep(Http::One),
    Conn::Fresh(Http::One),
    Conn::Fresh(Http::Two),
    Conn::Fresh(Http::One),
];

/// The review bodies of [`KNOWN_VERDICTS`], parsed once.
fn templates() -> Vec<(Value, &'static str, bool, bool)> {
    KNOWN_VERDICTS
        .iter()
        .map(|(name, endpoint, allowed, patched)| {
            let v: Value = serde_json::from_slice(&fixture(name)).expect("fixture");
            (v, *endpoint, *allowed, *patched)
        })
        .collect()
}

/// What one request of the load came to.
#[derive(Debug)]
enum Sent {
    /// Answered with the expected verdict.
    Ok,
    /// Answered wrongly (status, uid, verdict or patch).
    Wrong(String),
    /// No answer (transport error); whether the server had been told to stop by then.
    NoAnswer(String, bool),
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sent::Ok => f.write_str("ok"),
            Sent::Wrong(why) => write!(f, "wrong answer: {why}"),
            Sent::NoAnswer(why, after) => {
                let when = if *after { "after" } else { "before" };
                write!(f, "no answer ({when} the stop): {why}")
            }
        }
    }
}

/// `uid: what happened` lines, for assertion messages.
fn list(results: &[&(String, Sent)]) -> String {
    results
        .iter()
        .map(|(uid, sent)| format!("{uid}: {sent}"))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Load {
    stop: Arc<AtomicBool>,
    /// Set just before the server is told to stop (SIGTERM).
    stopping: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(String, Sent)>>>,
}

/// Starts the load against `addr` (TLS, trusting `ca_pem`). Each task stops when `stop` is set,
/// or, with `stop_on_error`, after its first request without an answer.
fn start_load(ca_pem: &str, addr: std::net::SocketAddr, stop_on_error: bool) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let templates = Arc::new(templates());
    let tasks = TASKS
        .iter()
        .enumerate()
        .map(|(task, conn)| {
            let (stop, answered, templates) = (stop.clone(), answered.clone(), templates.clone());
            let stopping = stopping.clone();
            let (ca, conn) = (ca_pem.to_owned(), *conn);
            tokio::spawn(async move {
                let mut kept = None;
                let mut results = Vec::new();
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let (template, endpoint, allowed, patched) =
                        &templates[(task + n) % templates.len()];
                    let uid = format!("load-{task}-{n}");
                    n += 1;
                    let mut review = template.clone();
                    review["request"]["uid"] = Value::String(uid.clone());
                    let client = match conn {
                        Conn::Keep(http) => kept
                            .get_or_insert_with(|| client_for(&ca, addr, http, None))
                            .clone(),
                        Conn::Fresh(http) => client_for(&ca, addr, http, None),
                    };
                    let url = format!("https://localhost:{}{endpoint}", addr.port());
                    let sent = match client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(serde_json::to_vec(&review).expect("json"))
                        .send()
                        .await
                    {
                        Err(e) => Sent::NoAnswer(format!("{e:?}"), stopping.load(Ordering::SeqCst)),
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            match resp.bytes().await {
                                Err(e) => Sent::NoAnswer(
                                    format!("body: {e:?}"),
                                    stopping.load(Ordering::SeqCst),
                                ),
                                Ok(bytes) => {
                                    let answer: Value = serde_json::from_slice(&bytes)
                                        .unwrap_or_else(|_| {
                                            Value::String(String::from_utf8_lossy(&bytes).into())
                                        });
                                    match check_verdict(status, &answer, &uid, *allowed, *patched) {
                                        Ok(()) => Sent::Ok,
                                        Err(e) => Sent::Wrong(e),
                                    }
                                }
                            }
                        }
                    };
                    let failed = matches!(sent, Sent::NoAnswer(..));
                    if !failed {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    results.push((uid, sent));
                    if failed && stop_on_error {
                        break;
                    }
                }
                results
            })
        })
        .collect();
    Load {
        stop,
        stopping,
        answered,
        tasks,
    }
}

impl Load {
    /// Waits until `more` further requests have been answered (bounded).
    async fn progress(&self, more: u64) {
        let target = self.answered.load(Ordering::SeqCst) + more;
        let answered = self.answered.clone();
        assert!(
            eventually(Duration::from_secs(20), || answered.load(Ordering::SeqCst)
                >= target)
            .await,
            "the load stalled"
        );
    }

    async fn finish(self) -> Vec<(String, Sent)> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("load task"));
        }
        all
    }
}

/// A valid policy that changes nothing the load's verdicts depend on (CronJobs only).
const EXTRA_POLICY: &str = "apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: cronjob-team-GEN}
spec:
  mode: warn
  match: {kinds: [CronJob]}
  rules:
    - requireLabels: {labels: [team]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificate_rotation_and_policy_reloads_under_load_fail_nothing() {
    let t = start(Options::default()).await;
    let reloader = t.server.reloader();
    let load = start_load(&t.ca.pem().cert_pem, t.server.addr(), false);
    load.progress(20).await;

    let rounds = 5;
    let mut faults: HashMap<&str, u32> = HashMap::new();
    for round in 0..rounds {
        // Certificate rotation, first half-written (new certificate, old key): rejected, the
        // old pair stays in force; then complete: new handshakes get the new certificate.
        let leaf = serving_cert(&t.ca);
        std::fs::write(&t.cert_path, &leaf.cert_pem).expect("cert");
        assert!(matches!(
            reloader.check_now().tls,
            ReloadOutcome::Rejected { .. }
        ));
        *faults
            .entry("half-written certificate/key pair")
            .or_default() += 1;
        load.progress(10).await;
        std::fs::write(&t.key_path, &leaf.key_pem).expect("key");
        assert_eq!(
            reloader.check_now().tls,
            ReloadOutcome::Reloaded { generation: 0 }
        );
        *faults.entry("certificate rotation").or_default() += 1;
        load.progress(10).await;

        // A valid policy change: a new generation.
        let extra = t.policy_dir.join(format!("zz-extra-{round}.yaml"));
        std::fs::write(&extra, EXTRA_POLICY.replace("GEN", &round.to_string())).expect("write");
        assert!(matches!(
            reloader.check_now().policies,
            ReloadOutcome::Reloaded { .. }
        ));
        *faults.entry("valid policy reload").or_default() += 1;
        load.progress(10).await;

        // An invalid policy file: rejected, the last good set stays in force.
        let broken = t.policy_dir.join("zz-broken.yaml");
        std::fs::write(&broken, "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: broken}\nspec: {mode: sometimes, rules: []}\n").expect("write");
        assert!(matches!(
            reloader.check_now().policies,
            ReloadOutcome::Rejected { .. }
        ));
        *faults.entry("invalid policy reload").or_default() += 1;
        load.progress(10).await;
        // A policy that would deny every workload: refused by the lint, likewise.
        std::fs::write(&broken, "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: deny-all}\nspec:\n  mode: enforce\n  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n").expect("write");
        let report = reloader.check_now();
        let ReloadOutcome::Rejected { error } = report.policies else {
            panic!("{report:?}")
        };
        assert!(error.contains("denies every workload"), "{error}");
        *faults.entry("deny-everything policy reload").or_default() += 1;
        load.progress(10).await;
        std::fs::remove_file(&broken).expect("remove");
        assert!(matches!(
            reloader.check_now().policies,
            ReloadOutcome::Reloaded { .. }
        ));
        std::fs::remove_file(&extra).expect("remove");
        assert!(matches!(
            reloader.check_now().policies,
            ReloadOutcome::Reloaded { .. }
        ));
        load.progress(10).await;
    }
    let results = load.finish().await;
    let total = results.len();
    let wrong: Vec<_> = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::Wrong(_)))
        .collect();
    let lost: Vec<_> = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::NoAnswer(..)))
        .collect();
    let injected: u32 = faults.values().sum();
    eprintln!(
        "faults under load: {total} requests, {injected} faults injected {faults:?}, {} wrong, {} without answer",
        wrong.len(),
        lost.len()
    );
    assert!(wrong.is_empty(), "wrong verdicts: {}", list(&wrong));
    assert!(
        lost.is_empty(),
        "requests without an answer: {}",
        list(&lost)
    );
    assert!(total >= 300, "only {total} requests");
    // The policy generation moved with every valid reload (3 per round), the certificate with
    // every rotation.
    assert_eq!(t.server.state().policies().generation, 1 + 3 * rounds);
    let m = t.metrics().await;
    assert!(
        m.contains(&format!(
            "portcullis_tls_reloads_total{{result=\"success\"}} {rounds}"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "portcullis_tls_reloads_total{{result=\"failure\"}} {rounds}"
        )),
        "{m}"
    );
    t.server.shutdown().await;
}

/// The running binary: its child process and what its log says.
struct Binary {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    /// Every uid the server logged as reviewed.
    reviewed: Arc<std::sync::Mutex<HashSet<String>>>,
    log_done: std::thread::JoinHandle<()>,
}

fn spawn_binary(dir: &std::path::Path, policies: &std::path::Path) -> Binary {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .arg("--policies")
        .arg(policies)
        .args(["--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .args([
            "--reload-interval",
            "0",
            "--shutdown-grace",
            "10",
            // The drain test holds half-sent requests open across SIGTERM: longer than the
            // default request timeout.
            "--request-timeout",
            "8",
            "--log-format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn portcullis serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reviewed = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let seen = reviewed.clone();
    let log_done = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match event["message"].as_str() {
                Some("portcullis webhook serving") => {
                    let _ = tx.send((event["addr"].clone(), event["admin_addr"].clone()));
                }
                Some("reviewed") => {
                    if let Some(uid) = event["span"]["uid"].as_str() {
                        seen.lock().expect("lock").insert(uid.to_owned());
                    }
                }
                _ => {}
            }
        }
    });
    let (addr, admin) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server logs its addresses");
    let parse = |v: Value| {
        v.as_str()
            .expect("address")
            .parse()
            .expect("socket address")
    };
    Binary {
        child,
        addr: parse(addr),
        admin: parse(admin),
        reviewed,
        log_done,
    }
}

async fn in_flight(admin: std::net::SocketAddr) -> Option<i64> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_admission_in_flight "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_drains_every_in_flight_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    server_support::copy_dir(
        std::path::Path::new(server_support::POLICY_FIXTURES),
        &policies,
    );
    let ca =
        portcullis::certs::CertificateAuthority::generate("test CA", Duration::from_secs(3600))
            .expect("CA");
    let leaf = serving_cert(&ca);
    std::fs::write(dir.path().join("tls.crt"), &leaf.cert_pem).expect("cert");
    std::fs::write(dir.path().join("tls.key"), &leaf.key_pem).expect("key");
    let ca_pem = ca.pem().cert_pem.clone();
    let mut bin = spawn_binary(dir.path(), &policies);

    // Requests held in flight: headers and half the body sent.
    let held_count = 6;
    let mut held = Vec::new();
    let templates = templates();
    for i in 0..held_count {
        let (template, endpoint, allowed, patched) = &templates[i % templates.len()];
        let uid = format!("held-{i}");
        let mut review = template.clone();
        review["request"]["uid"] = Value::String(uid.clone());
        let body = serde_json::to_vec(&review).expect("json");
        let tcp = tokio::net::TcpStream::connect(bin.addr)
            .await
            .expect("connect");
        let mut tls = tls_connector(&ca_pem, &[&rustls::version::TLS13], &[b"http/1.1"], None)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        let head = format!(
            "POST {endpoint} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.expect("head");
        tls.write_all(&body[..body.len() / 2]).await.expect("half");
        tls.flush().await.expect("flush");
        held.push((tls, body, uid, *allowed, *patched));
    }
    let mut started = false;
    for _ in 0..400 {
        if in_flight(bin.admin).await == Some(i64::try_from(held_count).expect("count")) {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(started, "the held requests never reached the server");

    // The load runs; SIGTERM arrives in the middle of it.
    let load = start_load(&ca_pem, bin.addr, true);
    load.progress(100).await;
    load.stopping.store(true, Ordering::SeqCst);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &bin.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Draining: readiness fails while the held requests are still open.
    let mut draining = false;
    for _ in 0..400 {
        if let Ok(resp) = reqwest::get(format!("http://{}/readyz", bin.admin)).await
            && resp.status() == 503
        {
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(draining, "readyz never turned 503 after SIGTERM");

    // Every held request completes with its verdict.
    let mut held_ok = 0;
    for (mut tls, body, uid, allowed, patched) in held {
        tls.write_all(&body[body.len() / 2..])
            .await
            .expect("second half");
        tls.flush().await.expect("flush");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response))
            .await
            .expect("answered in time")
            .expect("read");
        let text = String::from_utf8_lossy(&response);
        let (head, json) = text.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{uid}: {head}");
        let answer: Value = serde_json::from_str(json).expect("JSON answer");
        check_verdict(200, &answer, &uid, allowed, patched)
            .unwrap_or_else(|e| panic!("{uid}: {e}"));
        held_ok += 1;
    }

    // The load ends by itself: each task stops at its first request the server refused.
    let mut results = Vec::new();
    for task in load.tasks {
        results.extend(
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("load tasks end once the server is gone")
                .expect("load task"),
        );
    }
    let exit = tokio::task::spawn_blocking(move || {
        let status = bin.child.wait().expect("wait");
        let _ = bin.log_done.join();
        status
    })
    .await
    .expect("join");
    assert!(exit.success(), "exit status {exit:?}");

    let reviewed = bin.reviewed.lock().expect("lock").clone();
    let total = results.len();
    let ok = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::Ok))
        .count();
    let wrong: Vec<_> = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::Wrong(_)))
        .collect();
    // A request without an answer is fine only if the server never reviewed it (refused: the
    // listener was closed, or the connection was closed before the request was read); a
    // reviewed request whose answer never arrived would be a dropped in-flight request.
    let unanswered: Vec<_> = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::NoAnswer(..)))
        .collect();
    let before: Vec<_> = results
        .iter()
        .filter(|(_, s)| matches!(s, Sent::NoAnswer(_, false)))
        .collect();
    assert!(
        before.is_empty(),
        "requests without an answer before SIGTERM: {}",
        list(&before)
    );
    let dropped: Vec<_> = unanswered
        .iter()
        .copied()
        .filter(|(uid, _)| reviewed.contains(uid))
        .collect();
    eprintln!(
        "SIGTERM under load: {total} load requests ({ok} answered correctly, {} refused after SIGTERM, {} wrong, {} dropped); {held_ok}/{held_count} held in-flight requests completed; {} reviews logged",
        unanswered.len() - dropped.len(),
        wrong.len(),
        dropped.len(),
        reviewed.len()
    );
    assert!(wrong.is_empty(), "wrong verdicts: {}", list(&wrong));
    assert!(
        dropped.is_empty(),
        "dropped in-flight requests: {}",
        list(&dropped)
    );
    assert_eq!(held_ok, held_count);
    // Every answered request was reviewed by the server, and each load task saw the end.
    for (uid, s) in &results {
        if matches!(s, Sent::Ok) {
            assert!(reviewed.contains(uid), "{uid} answered but never logged");
        }
    }
    assert!(ok >= 100, "only {ok} requests answered before SIGTERM");
}
