//! Every AdmissionReview captured from a real kube-apiserver, posted to the real server over
//! TLS (HTTP/1.1 and HTTP/2), with the test policies: verdicts, messages, warnings, patches.

mod server_support;

use serde_json::Value;
use server_support::{Http, Options, fixture, patch_of, post, start, warnings};

/// What `/validate` must answer for a fixture.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// Allowed, no warnings.
    Allowed,
    /// Allowed with at least one warning containing each of these texts.
    AllowedWarned(&'static [&'static str]),
    /// Denied (403), the message containing each of these texts.
    Denied(&'static [&'static str]),
}

use Verdict::*;

const PROBES_NGINX: &[&str] = &[
    "[require-probes]",
    "container \"nginx\"",
    "livenessProbe",
    "readinessProbe",
];

const VALIDATE: &[(&str, Verdict)] = &[
    (
        "validate-create-pod-bare.json",
        Denied(&[
            "Pod demo/bare-pod",
            "[require-probes] container \"app\"",
            "livenessProbe",
            "readinessProbe",
            "[require-resources] container \"app\"",
        ]),
    ),
    (
        "validate-create-pod-dryrun.json",
        Denied(&["[require-probes]", "livenessProbe"]),
    ),
    ("validate-create-deployment.json", Denied(PROBES_NGINX)),
    (
        "validate-create-deployment-dryrun.json",
        Denied(PROBES_NGINX),
    ),
    (
        "validate-create-statefulset.json",
        Denied(&["[require-probes]", "StatefulSet demo/db"]),
    ),
    (
        "validate-create-daemonset.json",
        Denied(&["[require-probes]", "DaemonSet demo/node-agent"]),
    ),
    (
        "validate-create-replicaset.json",
        Denied(&["[require-probes]", "ReplicaSet demo/legacy-rs"]),
    ),
    // Jobs run to completion: no probe rule, but resources still apply.
    (
        "validate-create-job.json",
        Denied(&["[require-resources]", "Job demo/once"]),
    ),
    // The CronJob declares its resources: compliant.
    ("validate-create-cronjob.json", Allowed),
    // Created by Kubernetes' own controllers with a controller ownerReference: judged at the owner.
    ("validate-create-pod-owned-by-replicaset.json", Allowed),
    ("validate-create-pod-owned-by-statefulset.json", Allowed),
    ("validate-create-pod-owned-by-job.json", Allowed),
    (
        "validate-create-replicaset-owned-by-deployment.json",
        Allowed,
    ),
    ("validate-create-pod-compliant-native-sidecar.json", Allowed),
    // Subresources are not judged.
    ("validate-update-deployment-scale-subresource.json", Allowed),
    // UPDATEs ratchet: pre-existing violations only warn.
    (
        "validate-update-deployment-replicas.json",
        AllowedWarned(&["pre-existing", "livenessProbe"]),
    ),
    (
        // Limits only: the requests default to them (every Pod gets requests = limits).
        "validate-update-deployment-resources.json",
        AllowedWarned(&["pre-existing", "livenessProbe"]),
    ),
    (
        "validate-update-deployment-dryrun.json",
        AllowedWarned(&["pre-existing"]),
    ),
    (
        "validate-update-pod-label.json",
        AllowedWarned(&["pre-existing"]),
    ),
];

fn assert_verdict(name: &str, status: u16, answer: &Value, uid: &str, expected: Verdict) {
    assert_eq!(status, 200, "{name}: {answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{name}");
    assert_eq!(answer["kind"], "AdmissionReview", "{name}");
    let resp = &answer["response"];
    assert_eq!(resp["uid"], uid, "{name}: the uid is echoed");
    assert!(
        resp.get("patch").is_none(),
        "{name}: /validate never patches"
    );
    let warns = warnings(answer);
    match expected {
        Allowed => {
            assert_eq!(resp["allowed"], true, "{name}: {answer}");
            assert!(warns.is_empty(), "{name}: unexpected warnings {warns:?}");
        }
        AllowedWarned(texts) => {
            assert_eq!(resp["allowed"], true, "{name}: {answer}");
            for t in texts {
                assert!(
                    warns.iter().any(|w| w.contains(t)),
                    "{name}: no warning with {t:?} in {warns:?}"
                );
            }
        }
        Denied(texts) => {
            assert_eq!(resp["allowed"], false, "{name}: {answer}");
            assert_eq!(resp["status"]["code"], 403, "{name}");
            assert_eq!(resp["status"]["reason"], "Forbidden", "{name}");
            let msg = resp["status"]["message"].as_str().unwrap_or_default();
            for t in texts {
                assert!(msg.contains(t), "{name}: message lacks {t:?}:\n{msg}");
            }
        }
    }
}

fn uid_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("fixture json");
    v["request"]["uid"].as_str().expect("uid").to_owned()
}

#[tokio::test]
async fn every_validate_fixture_gets_the_expected_verdict_over_http1_and_http2() {
    let t = start(Options::default()).await;
    let every: Vec<String> = std::fs::read_dir(server_support::ADMISSION_FIXTURES)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("validate-") && n.ends_with(".json"))
        .collect();
    for name in &every {
        assert!(
            VALIDATE.iter().any(|(n, _)| n == name),
            "fixture {name} has no expectation"
        );
    }
    for (i, (name, expected)) in VALIDATE.iter().enumerate() {
        let http = if i % 2 == 0 { Http::One } else { Http::Two };
        let body = fixture(name);
        // The apiserver appends ?timeout=...; it is ignored.
        let (status, answer) = post(
            &t.client(http),
            &t.url("/validate?timeout=10s"),
            body.clone(),
        )
        .await;
        assert_verdict(name, status, &answer, &uid_of(&body), *expected);
    }
    t.server.shutdown().await;
}

/// The server's log lines, captured (JSON, one event a line).
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

/// A dry run gets the same answer, byte for byte, as the real request through the real server
/// (the engine never sees `dryRun`), and the review's log line records which it was. The
/// process-wide subscriber (the other tests' servers log there too: lines are told apart by
/// uid; a subscriber for one thread misses events when other threads register them first).
#[tokio::test]
async fn dry_run_gets_the_same_answer_as_a_real_request_and_is_logged() {
    let log = Log::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(log.clone())
            .finish(),
    )
    .expect("the only test of this binary that logs");
    let t = start(Options::default()).await;
    let client = t.client(Http::Two);
    let mut checked = 0;
    for name in std::fs::read_dir(server_support::ADMISSION_FIXTURES)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
    {
        let endpoint = if name.starts_with("mutate-") {
            "/mutate"
        } else {
            "/validate"
        };
        let mut review: Value = serde_json::from_slice(&fixture(&name)).expect("json");
        let mut answers = Vec::new();
        for dry_run in [true, false] {
            let uid = format!("{name}-{dry_run}");
            review["request"]["uid"] = Value::from(uid.as_str());
            review["request"]["dryRun"] = Value::Bool(dry_run);
            let resp = client
                .post(t.url(endpoint))
                .header("content-type", "application/json")
                .body(review.to_string())
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 200, "{name}");
            let answer = resp.bytes().await.expect("body");
            // The uid is echoed; the rest must not change.
            let answer = String::from_utf8_lossy(&answer).replacen(&uid, "UID", 1);
            answers.push(answer);
            let lines = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
            let logged: Vec<Value> = lines
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| {
                    e["fields"]["message"] == "reviewed" && e["span"]["uid"] == uid.as_str()
                })
                .collect();
            assert_eq!(
                logged.len(),
                1,
                "{name}: one review line for {uid}:\n{lines}"
            );
            assert_eq!(
                logged[0]["span"]["dry_run"], dry_run,
                "{name}: {}",
                logged[0]
            );
        }
        assert_eq!(answers[0], answers[1], "{name}: dry run changes the answer");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} fixtures");
    t.server.shutdown().await;
}

#[tokio::test]
async fn every_mutate_fixture_is_allowed_and_its_patch_applies_idempotently() {
    let t = start(Options::default()).await;
    let client = t.client(Http::One);
    let mut patched = Vec::new();
    for name in std::fs::read_dir(server_support::ADMISSION_FIXTURES)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("mutate-") && n.ends_with(".json"))
    {
        let body = fixture(&name);
        let (status, answer) = post(&client, &t.url("/mutate?timeout=10s"), body.clone()).await;
        assert_eq!(status, 200, "{name}: {answer}");
        let resp = &answer["response"];
        assert_eq!(resp["uid"], uid_of(&body), "{name}");
        assert_eq!(resp["allowed"], true, "{name}: /mutate never denies");
        let Some(patch) = patch_of(&answer) else {
            continue;
        };
        assert_eq!(resp["patchType"], "JSONPatch", "{name}");
        let mut review: Value = serde_json::from_slice(&body).expect("json");
        let mut object = review["request"]["object"].clone();
        json_patch::patch(&mut object, &patch)
            .unwrap_or_else(|e| panic!("{name}: patch does not apply: {e}"));
        // Reinvocation (reinvocationPolicy: IfNeeded) of the mutated object adds nothing.
        review["request"]["object"] = object;
        let (_, again) = post(&client, &t.url("/mutate"), review.to_string()).await;
        assert!(
            patch_of(&again).is_none(),
            "{name}: not idempotent: {again}"
        );
        patched.push(name);
    }
    for expected in [
        "mutate-create-pod-bare.json",
        "mutate-create-deployment.json",
        "mutate-create-cronjob.json",
    ] {
        assert!(
            patched.iter().any(|n| n == expected),
            "{expected} was not patched: {patched:?}"
        );
    }
    for unpatched in [
        "mutate-create-pod-owned-by-replicaset.json",
        "mutate-update-deployment-scale-subresource.json",
    ] {
        assert!(
            !patched.iter().any(|n| n == unpatched),
            "{unpatched} was patched"
        );
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn mutated_bare_pod_gets_sidecar_and_labels_and_then_passes_validate() {
    let t = start(Options::default()).await;
    let client = t.client(Http::Two);
    let mut review: Value =
        serde_json::from_slice(&fixture("mutate-create-pod-bare.json")).expect("json");
    let (_, answer) = post(&client, &t.url("/mutate"), review.to_string()).await;
    let warns = warnings(&answer);
    assert!(
        warns
            .iter()
            .any(|w| w.contains("would apply") && w.contains("cost-center")),
        "warn-mode mutation is described: {warns:?}"
    );
    assert!(
        !warns.iter().any(|w| w.contains("require-probes")),
        "violations are /validate's: {warns:?}"
    );
    let patch = patch_of(&answer).expect("a patch");
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).expect("applies");
    let init = object
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .expect("initContainers");
    assert!(
        init.iter()
            .any(|c| c["name"] == "log-shipper" && c["restartPolicy"] == "Always"),
        "{object}"
    );
    assert_eq!(
        object.pointer("/metadata/labels/app.kubernetes.io~1managed-by"),
        Some(&"portcullis".into())
    );
    assert_eq!(
        object.pointer("/metadata/labels/app.kubernetes.io~1name"),
        Some(&"bare-pod".into())
    );
    assert!(
        object
            .pointer("/metadata/annotations/example.com~1cost-center")
            .is_none(),
        "warn mode only describes"
    );

    // Mutation never invents probes or resources: the mutated bare pod is still denied, for
    // exactly those, and nothing about the sidecar or labels.
    review["request"]["object"] = object.clone();
    let (_, verdict) = post(&client, &t.url("/validate"), review.to_string()).await;
    let msg = verdict["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(verdict["response"]["allowed"], false);
    assert!(
        msg.contains("container \"app\"") && !msg.contains("log-shipper"),
        "{msg}"
    );

    // Give the app what only its owner can (probes, resources): mutate + validate then admits it.
    let mut owned: Value =
        serde_json::from_slice(&fixture("mutate-create-pod-bare.json")).expect("json");
    let app = owned
        .pointer_mut("/request/object/spec/containers/0")
        .expect("app container");
    app["livenessProbe"] = serde_json::json!({"httpGet": {"path": "/", "port": 80}});
    app["readinessProbe"] = serde_json::json!({"httpGet": {"path": "/", "port": 80}});
    app["resources"] = serde_json::json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}});
    let (_, answer) = post(&client, &t.url("/mutate"), owned.to_string()).await;
    let mut object = owned["request"]["object"].clone();
    json_patch::patch(&mut object, &patch_of(&answer).expect("patch")).expect("applies");
    owned["request"]["object"] = object;
    let (status, verdict) = post(&client, &t.url("/validate"), owned.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(verdict["response"]["allowed"], true, "{verdict}");
    t.server.shutdown().await;
}
