//! Exceptions and scheduled enforcement behave the same in the webhook, `audit`, `test` and
//! `policy validate`: strict loading with file and line, excepted findings that are never
//! dropped, modes that follow the request's time and namespace, and reviews of exceptions
//! that expire or cannot apply.

use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis::admission;
use portcullis::engine::{Effect, Request, evaluate};
use portcullis::lint::{load_dir, load_str};
use portcullis::policy::model::Mode;
use portcullis::policy::{Timestamp, exceptions};
use portcullis::telemetry::{Endpoint, Metrics};
use serde_json::{Value, json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policy_sets/scheduled")
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("time")
}

fn pod(namespace: &str, name: &str, probes: bool, resources: bool) -> Value {
    let mut c = json!({"name": "batch", "image": "registry.example.com/batch:2.0.0"});
    if probes {
        c["livenessProbe"] = json!({"exec": {"command": ["true"]}});
        c["readinessProbe"] = json!({"exec": {"command": ["true"]}});
    }
    if resources {
        c["resources"] = json!({"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
           "spec": {"containers": [c]}})
}

#[test]
fn the_mode_follows_the_schedule_per_namespace_and_demotion_works() {
    let set = load_dir(&dir()).expect("set loads");
    let p = set.get("require-probes").expect("policy");
    let cases = [
        ("2027-01-14T23:59:59Z", "team-a", Mode::Warn),
        ("2027-01-15", "team-a", Mode::Enforce),
        ("2027-01-15", "shop", Mode::Warn),
        ("2027-03-01", "shop", Mode::Enforce),
        ("2027-03-31", "team-legacy", Mode::Enforce),
        ("2027-04-01", "team-legacy", Mode::Warn),
        ("2027-04-01", "team-a", Mode::Enforce),
    ];
    for (time, ns, want) in cases {
        assert_eq!(p.mode_at(at(time), Some(ns), None), want, "{time} {ns}");
    }
    assert_eq!(
        p.enforced_from(at("2026-01-01"), Some("team-a"), None),
        Some(at("2027-01-15"))
    );
    assert_eq!(
        p.enforced_from(at("2026-01-01"), Some("shop"), None),
        Some(at("2027-03-01"))
    );
    assert_eq!(
        p.enforced_from(at("2027-04-01"), Some("team-legacy"), None),
        None
    );
    // --max-mode caps every step: no date makes the policy stricter than the server allows.
    let capped = set.clone().with_max_mode(Mode::Warn);
    let cp = capped.get("require-probes").expect("policy");
    assert_eq!(
        cp.mode_at(at("2028-01-01"), Some("team-a"), None),
        Mode::Warn
    );
    assert_eq!(
        cp.enforced_from(at("2026-01-01"), Some("team-a"), None),
        None
    );
}

#[test]
fn warnings_before_the_switch_say_when_enforcement_starts() {
    let set = load_dir(&dir()).expect("set loads");
    let object = pod("team-a", "api", false, true);
    let d = evaluate(&set, &Request::create(&object, at("2027-01-10")));
    assert!(d.allowed);
    let warnings = d.warnings();
    assert!(
        warnings.iter().any(|w| w.starts_with("denied from 2027-01-15: Pod team-a/api: [require-probes] container \"batch\": no livenessProbe")),
        "{warnings:?}"
    );
    let d = evaluate(&set, &Request::create(&object, at("2027-01-15")));
    assert!(!d.allowed);
    assert!(
        d.denial_message()
            .expect("denied")
            .contains("no livenessProbe")
    );
}

#[test]
fn an_exception_excepts_until_it_expires_and_the_finding_stays_visible() {
    let set = load_dir(&dir()).expect("set loads");
    let object = pod("payments", "legacy-batch", true, false);
    let before = evaluate(&set, &Request::create(&object, at("2027-01-14T23:59:59Z")));
    assert!(before.allowed, "{:?}", before.findings);
    let excepted: Vec<_> = before
        .findings
        .iter()
        .filter(|f| f.effect == Effect::Excepted)
        .collect();
    assert_eq!(excepted.len(), 4);
    let e = excepted[0].exception.as_deref().expect("exception info");
    assert_eq!(
        (
            e.name.as_str(),
            e.owner.as_str(),
            e.expires.to_string().as_str(),
            e.ticket.as_deref()
        ),
        (
            "legacy-batch-resources",
            "team-payments",
            "2027-01-15",
            Some("PAY-1234")
        )
    );
    let warnings = before.warnings();
    assert!(
        warnings.iter().any(|w| w.starts_with("excepted by legacy-batch-resources (owner team-payments, expires 2027-01-15, PAY-1234): Pod payments/legacy-batch: [require-resources]")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.len() <= portcullis::engine::MAX_WARNING_LEN)
    );
    // Expired: no effect anywhere.
    let after = evaluate(&set, &Request::create(&object, at("2027-01-15")));
    assert!(!after.allowed);
    assert!(after.findings.iter().all(|f| f.exception.is_none()));
    // Another container name or workload name is not covered.
    let other = pod("payments", "new-batch", true, false);
    assert!(!evaluate(&set, &Request::create(&other, at("2027-01-01"))).allowed);
}

#[test]
fn the_webhook_warns_about_excepted_findings_and_counts_them() {
    let set = load_dir(&dir()).expect("set loads");
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "payments", "operation": "CREATE", "userInfo": {"username": "alice"},
        "object": pod("payments", "legacy-batch", true, false)}});
    let body = serde_json::to_vec(&review).expect("json");
    let handled =
        admission::handle(Endpoint::Validate, &set, &body, at("2027-01-01")).expect("handled");
    let answer: Value = serde_json::from_slice(&handled.body).expect("answer");
    assert_eq!(answer["response"]["allowed"], true);
    let warnings = answer["response"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("excepted by legacy-batch-resources"))),
        "{warnings:?}"
    );
    let handled =
        admission::handle(Endpoint::Validate, &set, &body, at("2027-01-15")).expect("handled");
    let answer: Value = serde_json::from_slice(&handled.body).expect("answer");
    assert_eq!(answer["response"]["allowed"], false);

    let metrics = Metrics::new();
    metrics.record_policy_state(&set, at("2027-02-01"));
    let text = metrics.encode().expect("encode");
    for line in [
        r#"portcullis_policy_mode{policy="require-probes",namespaces="team-*",mode="enforce"} 1"#,
        r#"portcullis_policy_mode{policy="require-probes",namespaces="*",mode="warn"} 1"#,
        r#"portcullis_policy_mode{policy="require-resources",namespaces="*",mode="enforce"} 1"#,
        r#"portcullis_policy_next_mode_change_timestamp_seconds{policy="require-probes"} 1803859200"#,
        r#"portcullis_policy_exception_expiry_timestamp_seconds{exception="legacy-batch-resources",owner="team-payments"} 1799971200"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[test]
fn reviews_warn_about_expired_expiring_and_inapplicable_exceptions() {
    let set = load_dir(&dir()).expect("set loads");
    let text = |now: &str| {
        exceptions::review(&set, at(now))
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(text("2026-06-01"), "");
    let soon = text("2027-01-05");
    assert!(soon.contains("exception \"legacy-batch-resources\" (owner team-payments) expires at 2027-01-15, in 10 days"), "{soon}");
    let expired = text("2027-02-01");
    assert!(expired.contains("exceptions.yaml:1: exception \"legacy-batch-resources\" (owner team-payments) expired at 2027-01-15: it has no effect"), "{expired}");
    let extra = "---\napiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: only-team}\nspec:\n  mode: enforce\n  match: {namespaces: {include: [team-*]}}\n  rules: [{requireProbes: {}}]\n---\napiVersion: portcullis.dev/v1alpha1\nkind: PolicyException\nmetadata: {name: stale}\nspec:\n  owner: o\n  reason: r\n  expires: 2030-01-01\n  policies: [{name: only-team}]\n  match: {namespaces: [shop]}\n";
    let set = load_str(Path::new("x.yaml"), extra).expect("loads");
    let found = exceptions::review(&set, at("2026-01-01"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("can never apply to policy \"only-team\": the policy selects none of its namespaces (shop)"), "{}", found[0]);
}

#[test]
fn bad_exceptions_and_schedules_are_refused_with_file_and_line() {
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  mode: warn\n  rules: [{requireProbes: {}}, {injectSidecar: {container: {name: s, image: 'i:1'}}}]\n";
    let cases = [
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  owner: o\n  reason: r\n  expires: 2027-01-15\n  policies: [{name: nope}]\n  match: {names: [a]}\n",
            "x.yaml:15: spec.policies[0].name: no policy \"nope\" in the set",
        ),
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  owner: o\n  reason: r\n  expires: 2027-01-15\n  policies: [{name: p, rules: [requireResources]}]\n  match: {names: [a]}\n",
            "spec.policies[0].rules[0]: policy \"p\" has no requireResources rule",
        ),
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  owner: o\n  reason: r\n  expires: 2027-01-15\n  policies: [{name: p}]\n  match: {names: [a], containers: [c]}\n",
            "injectSidecar of policy \"p\" is a mutation rule, which is excepted per workload",
        ),
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  reason: r\n  expires: 2027-01-15\n  policies: [{name: p}]\n  match: {names: [a]}\n",
            "missing field `owner`",
        ),
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  owner: o\n  reason: r\n  expires: 15.01.2027\n  policies: [{name: p}]\n  match: {names: [a]}\n",
            "x.yaml:12: spec: invalid time \"15.01.2027\"",
        ),
        (
            "kind: PolicyException\nmetadata: {name: e}\nspec:\n  owner: o\n  reason: r\n  expires: 2027-01-15\n  policies: [{name: p}]\n  match: {kinds: [Pod]}\n",
            "x.yaml:16: spec.match: the exception does not say which workloads it covers",
        ),
        (
            "kind: PolicyTest\nmetadata: {name: t}\nspec: {cases: []}\n",
            "x.yaml:9: kind: PolicyTest documents are tests, not policies",
        ),
    ];
    for (doc, want) in cases {
        let text = format!("{policy}---\napiVersion: portcullis.dev/v1alpha1\n{doc}");
        let err = load_str(Path::new("x.yaml"), &text)
            .expect_err(want)
            .to_string();
        assert!(err.contains(want), "want {want:?} in\n{err}");
    }
    let unordered = "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec:\n  mode: warn\n  schedule:\n    - {from: 2027-03-01, mode: enforce}\n    - {from: 2027-01-15, mode: enforce, namespaces: {include: [team-*]}}\n  rules: [{requireProbes: {}}]\n";
    let err = load_str(Path::new("s.yaml"), unordered)
        .expect_err("unordered")
        .to_string();
    assert!(err.contains("s.yaml:8: spec.schedule[1].from: step starts at 2027-01-15 but the step before starts later, at 2027-03-01"), "{err}");
}

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PORTCULLIS_POLICIES")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_at_previews_a_date_and_validate_prints_schedules_and_exceptions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        serde_yaml_ng::to_string(&pod("team-a", "api", false, true)).expect("yaml"),
    )
    .expect("write");
    let policies = dir().display().to_string();
    let m = manifest.display().to_string();
    let (code, out, _) = bin(&["audit", "--policies", &policies, "--at", "2027-01-14", &m]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note:  denied from 2027-01-15 (the policy's schedule enforces it then)"),
        "{out}"
    );
    let (code, out, _) = bin(&["audit", "--policies", &policies, "--at", "2027-01-15", &m]);
    assert_eq!(code, 1, "{out}");
    let (_, json, _) = bin(&[
        "audit",
        "--policies",
        &policies,
        "--at",
        "2027-01-14",
        "-o",
        "json",
        &m,
    ]);
    let report: Value = serde_json::from_str(&json).expect("json");
    let finding = &report["objects"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["policy"] == "require-probes")
        .expect("probe finding")
        .clone();
    assert_eq!(finding["enforcedFrom"], "2027-01-15");
    assert_eq!(finding["exception"], Value::Null);
    let (_, _, stderr) = bin(&["audit", "--policies", &policies, "--at", "2027-01-10", &m]);
    assert!(
        stderr.contains("warning:") && stderr.contains("expires at 2027-01-15, in 5 days"),
        "{stderr}"
    );

    let (code, out, _) = bin(&["policy", "validate", "--at", "2027-02-01", &policies]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "require-probes          warn (scheduled)",
        "schedule of require-probes (",
        "  from 2027-01-15           enforce  in namespaces team-* (started)",
        "  from 2027-03-01           enforce  in every namespace (pending)",
        "  at 2027-02-01: enforce in team-*, warn elsewhere; next change at 2027-03-01",
        "legacy-batch-resources  require-resources(requireResources)  team-payments  2027-01-15",
        "expired at 2027-01-15: it has no effect",
        "3 policies and 2 exceptions are valid, with 1 warning",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
}

#[test]
fn audit_reports_exceptions_in_force_that_matched_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let batch = tmp.path().join("batch.yaml");
    std::fs::write(
        &batch,
        serde_yaml_ng::to_string(&pod("payments", "legacy-batch", true, false)).expect("yaml"),
    )
    .expect("write");
    let gateway = tmp.path().join("gateway.yaml");
    std::fs::write(
        &gateway,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: gateway, namespace: edge}\nspec:\n  template:\n    spec:\n      containers:\n        - name: gw\n          image: 'gw:1.0'\n          resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n",
    )
    .expect("write");
    let policies = dir().display().to_string();
    let (b, g) = (batch.display().to_string(), gateway.display().to_string());
    let unused_gateway = "exceptions.yaml:17: exception \"no-sidecar-for-gateway\" (owner team-edge, expires 2027-06-01) matched nothing among the 1 object audited: it excepted no finding";

    // Only the batch Pod: the gateway's exception excepted nothing.
    let (code, out, err) = bin(&["audit", "--policies", &policies, "--at", "2027-01-10", &b]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("exception: legacy-batch-resources"), "{out}");
    assert!(
        out.contains(&format!("warning: {policies}/{unused_gateway}")),
        "{out}"
    );
    assert!(out.contains(unused_gateway), "{out}");
    assert!(
        out.contains("hint: if the workloads it was made for are fixed or gone, delete it"),
        "{out}"
    );
    assert!(!out.contains("\"legacy-batch-resources\" (owner"), "{out}");
    // The warning comes after the objects, before the summary.
    let warned = out.find(unused_gateway).expect("warning");
    assert!(
        out.find("WARN Pod payments/legacy-batch").expect("pod") < warned,
        "{out}"
    );
    assert!(warned < out.find("1 object: ").expect("summary"), "{out}");

    let (_, json, err) = bin(&[
        "audit",
        "--policies",
        &policies,
        "--at",
        "2027-01-10",
        "-o",
        "json",
        &b,
    ]);
    let report: Value = serde_json::from_str(&json).expect("json");
    let unused = report["unusedExceptions"]
        .as_array()
        .expect("unusedExceptions");
    assert_eq!(unused.len(), 1, "{json}");
    assert_eq!(unused[0]["name"], "no-sidecar-for-gateway");
    assert_eq!(unused[0]["owner"], "team-edge");
    assert_eq!(unused[0]["expires"], "2027-06-01");
    assert_eq!(unused[0]["line"], 17);
    assert!(
        unused[0]["file"]
            .as_str()
            .expect("file")
            .ends_with("exceptions.yaml")
    );
    assert!(
        unused[0]["message"]
            .as_str()
            .expect("message")
            .contains("matched nothing among the 1 object audited")
    );
    assert!(err.contains(unused_gateway), "{err}");

    // Both objects: both exceptions excepted something, nothing to say.
    let (code, out, _) = bin(&[
        "audit",
        "--policies",
        &policies,
        "--at",
        "2027-01-10",
        &b,
        &g,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("exception: no-sidecar-for-gateway"), "{out}");
    assert!(!out.contains("matched nothing"), "{out}");
    let (_, json, err) = bin(&[
        "audit",
        "--policies",
        &policies,
        "--at",
        "2027-01-10",
        "-o",
        "json",
        &b,
        &g,
    ]);
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["unusedExceptions"], json!([]), "{json}");
    assert!(!err.contains("matched nothing"), "{err}");

    // An expired exception has no effect: it is reported as expired, not as unused.
    let (_, out, err) = bin(&["audit", "--policies", &policies, "--at", "2027-02-01", &g]);
    assert!(
        err.contains("\"legacy-batch-resources\" (owner team-payments) expired at 2027-01-15"),
        "{err}"
    );
    assert!(
        !out.contains("legacy-batch-resources\" (owner team-payments, expires"),
        "{out}"
    );
    assert!(!out.contains("matched nothing"), "{out}");
}

#[test]
fn a_running_server_learns_of_exceptions_entering_their_last_days_or_expiring() {
    // legacy-batch-resources expires 2027-01-15 (its last 14 days start 2027-01-01),
    // no-sidecar-for-gateway 2027-06-01 (2027-05-18).
    let set = load_dir(&dir()).expect("set loads");
    let due = |since: &str, now: &str| -> Vec<String> {
        exceptions::due_between(&set, at(since), at(now))
            .into_iter()
            .map(|d| d.message)
            .collect()
    };
    assert_eq!(
        due("2026-12-31T23:50:00Z", "2026-12-31T23:59:59Z"),
        Vec::<String>::new()
    );
    assert_eq!(
        due("2026-12-31T23:50:00Z", "2027-01-01T00:00:00Z"),
        [
            "exception \"legacy-batch-resources\" (owner team-payments) expires at 2027-01-15, in 14 days"
        ]
    );
    // Already due at the last check: not again.
    assert_eq!(
        due("2027-01-01T00:00:00Z", "2027-01-01T00:10:00Z"),
        Vec::<String>::new()
    );
    assert_eq!(
        due("2027-01-14T23:55:00Z", "2027-01-15T00:05:00Z"),
        [
            "exception \"legacy-batch-resources\" (owner team-payments) expired at 2027-01-15: it has no effect"
        ]
    );
    assert_eq!(
        due("2027-05-17T23:55:00Z", "2027-05-18T00:05:00Z"),
        [
            "exception \"no-sidecar-for-gateway\" (owner team-edge) expires at 2027-06-01, in 13 days"
        ]
    );
    // The review at a load says the same as the checks that follow it.
    let review: Vec<String> = exceptions::review(&set, at("2027-01-15T00:05:00Z"))
        .into_iter()
        .map(|d| d.message)
        .collect();
    assert!(
        review.contains(&due("2027-01-14T23:55:00Z", "2027-01-15T00:05:00Z")[0]),
        "{review:?}"
    );
}

/// A policy `off` at the request's time is judged for readiness only
/// (`OffPolicies::Measure`): its violations are found by the same rules, on the object as the
/// `enforce` policies mutate it, exceptions applied, and the decision is otherwise exactly the
/// one without measuring: verdict, findings, patch, policies.
#[test]
fn off_policies_are_measured_and_decide_nothing() {
    use portcullis::engine::{OffPolicies, evaluate_with};
    let set = load_str(
        Path::new("off.yaml"),
        r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: require-resources}
spec:
  mode: enforce
  rules: [{requireResources: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: require-probes}
spec:
  mode: "off"
  schedule:
    - {from: 2027-02-01, mode: enforce, namespaces: {include: [team-*]}}
  rules: [{requireProbes: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  mode: "off"
  rules: [{requireLabels: {labels: [team]}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: add-team}
spec:
  mode: enforce
  match: {namespaces: {include: [team-a]}}
  rules: [{defaultLabels: {labels: {team: a}}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: PolicyException
metadata: {name: batch-probes}
spec:
  owner: team-a
  reason: the batch job has no port to probe
  expires: 2027-06-01
  policies: [{name: require-probes}]
  match: {names: [batch-*]}
"#,
    )
    .expect("set loads");
    let time = at("2026-12-01");
    let cases = [
        pod("team-a", "web", false, true),
        pod("team-a", "batch-1", false, false),
        pod("team-a", "ready", true, true),
        pod("shop", "web", false, true),
    ];
    for object in &cases {
        let req = Request::create(object, time);
        let plain = evaluate(&set, &req);
        let measured = evaluate_with(&set, &req, OffPolicies::Measure);
        let name = &plain.workload;
        // Measuring changes nothing of the decision.
        assert_eq!(plain.allowed, measured.allowed, "{name}");
        assert_eq!(plain.findings, measured.findings, "{name}");
        assert_eq!(plain.policies, measured.policies, "{name}");
        assert_eq!(
            serde_json::to_value(&plain.patch).expect("patch"),
            serde_json::to_value(&measured.patch).expect("patch"),
            "{name}"
        );
        assert!(plain.off_policies.is_empty() && plain.off_violations.is_empty());
        assert!(
            !plain
                .findings
                .iter()
                .any(|f| f.policy == "require-probes" || f.policy == "team-label"),
            "{name}: off policies run nothing"
        );
        assert_eq!(
            measured.off_policies,
            ["require-probes", "team-label"],
            "{name}"
        );
        for f in &measured.off_violations {
            assert_eq!(f.mode, Mode::Off, "{name}: {f:?}");
        }
    }
    let measure = |i: usize| {
        let req = Request::create(&cases[i], time);
        let d = evaluate_with(&set, &req, OffPolicies::Measure);
        d.off_violations
            .iter()
            .map(|f| (f.policy.clone(), f.effect, f.enforced_from))
            .collect::<Vec<_>>()
    };
    let feb = Some(at("2027-02-01"));
    // team-a/web: both probes missing (enforced from the step); the team label is added by the
    // enforce mutation first, so team-label finds nothing.
    assert_eq!(
        measure(0),
        [
            ("require-probes".to_owned(), Effect::Audit, feb),
            ("require-probes".to_owned(), Effect::Audit, feb)
        ]
    );
    // batch-1: the exception covers its missing probes.
    assert_eq!(
        measure(1),
        [
            ("require-probes".to_owned(), Effect::Excepted, feb),
            ("require-probes".to_owned(), Effect::Excepted, feb)
        ]
    );
    assert_eq!(measure(2), []);
    // shop/web: no label added there, and the step does not reach shop.
    assert_eq!(
        measure(3),
        [
            ("require-probes".to_owned(), Effect::Audit, None),
            ("require-probes".to_owned(), Effect::Audit, None),
            ("team-label".to_owned(), Effect::Audit, None)
        ]
    );
}
