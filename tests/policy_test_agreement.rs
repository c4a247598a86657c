//! One behaviour everywhere: for every case of the shipped tests (and of the scheduled test
//! set), the test runner, the webhook (an AdmissionReview built from the case, through
//! `admission::handle`) and `portcullis audit` (for CREATEs, through `audit::judge`) give the
//! same verdict, findings, patch and warnings; and they keep agreeing when the time, the dry-run
//! flag and the namespace vary (proptest).

use std::path::{Path, PathBuf};

use portcullis::admission;
use portcullis::audit::read::read_str;
use portcullis::audit::{self, JudgeOptions, Outcome};
use portcullis::engine::{Decision, NamespaceLabels, Request, evaluate};
use portcullis::lint::load_dir;
use portcullis::policy::{PolicySet, Timestamp};
use portcullis::policytest::{self, Case, Suite};
use portcullis::telemetry::Endpoint;
use proptest::prelude::*;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Every suite of the shipped tests and of the scheduled set, with the set each runs against.
fn suites() -> Vec<(PolicySet, Suite)> {
    let mut out = Vec::new();
    for (policies, tests) in [
        (root().join("policies"), root().join("policies/tests")),
        (
            root().join("tests/policy_sets/scheduled"),
            root().join("tests/policy_sets/scheduled/tests"),
        ),
    ] {
        let set = load_dir(&policies).expect("policies load");
        let (suites, problems) = policytest::load(&[tests]);
        assert!(problems.is_empty(), "{problems:?}");
        for suite in suites {
            let suite_set = policytest::suite_set(&set, &suite).expect("suite set");
            out.push((suite_set, suite));
        }
    }
    assert!(out.len() >= 8, "only {} suites", out.len());
    out
}

const RUN_TIME: &str = "2026-06-01";

/// The AdmissionReview the apiserver would send for the request.
fn review_of(r: &Request<'_>) -> Vec<u8> {
    let version = r
        .object
        .or(r.old_object)
        .and_then(|o| o.get("apiVersion"))
        .and_then(portcullis::json::Json::as_str)
        .unwrap_or("v1");
    let version = version.rsplit('/').next().unwrap_or("v1");
    let resource = format!("{}s", r.kind.to_ascii_lowercase());
    let mut request = json!({
        "uid": "agreement",
        "kind": {"group": r.group, "version": version, "kind": r.kind},
        "resource": {"group": r.group, "version": version, "resource": resource},
        "operation": r.operation.as_str(),
        "userInfo": {"username": r.username.unwrap_or("")},
        "dryRun": r.dry_run,
    });
    if let Some(ns) = r.namespace {
        request["namespace"] = json!(ns);
    }
    if let Some(name) = r.name {
        request["name"] = json!(name);
    }
    if let Some(o) = r.object {
        request["object"] = o.to_value();
    }
    if let Some(o) = r.old_object {
        request["oldObject"] = o.to_value();
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
        .expect("review JSON")
}

fn same(what: &str, a: &Decision, b: &Decision) {
    assert_eq!(a.allowed, b.allowed, "{what}: allowed");
    assert_eq!(a.findings, b.findings, "{what}: findings");
    assert_eq!(a.patch, b.patch, "{what}: patch");
    assert_eq!(a.skipped, b.skipped, "{what}: skipped");
    assert_eq!(a.warnings(), b.warnings(), "{what}: warnings");
    assert_eq!(a.denial_message(), b.denial_message(), "{what}: denial");
}

/// Checks that the runner's decision for `request` is the webhook's and audit's.
fn agree(set: &PolicySet, case: &Case, request: &Request<'_>) {
    let what = format!("case {:?} at {}", case.name, request.time);
    let runner = evaluate(set, request);
    // The webhook gets namespace labels from its namespace cache, passed in beside the review.
    {
        let body = review_of(request);
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let review = admission::parse_review(&body).expect("a readable review");
            let handled = admission::answer(
                endpoint,
                set,
                review,
                request.time,
                request.namespace_labels,
                &portcullis::engine::NativeRules::NONE,
            )
            .expect("the webhook answers");
            same(&format!("{what}, webhook"), &runner, &handled.decision);
            let answer: Value = serde_json::from_slice(&handled.body).expect("answer JSON");
            let expected =
                admission::respond(endpoint, &handled.review.request, &runner).expect("respond");
            let expected: Value = serde_json::to_value(&expected.review).expect("json");
            assert_eq!(answer, expected, "{what}: {endpoint:?} answer");
        }
    }
    // Audit judges CREATEs of objects as written; it presents objects with a controller
    // owner as created by the controller manager, so cases naming a user are the webhook's.
    // Namespace labels reach audit as a cluster's (`audit --cluster`) or from Namespace objects.
    let create_as_audit = request.operation.as_str() == "CREATE" && case.spec.user_info.is_none();
    if let (true, Some(object)) = (create_as_audit, request.object) {
        let text = serde_json::to_string(&object.to_value()).expect("json");
        let entries = read_str("case.json", &text);
        let mut options = JudgeOptions {
            default_namespace: request.namespace.map(str::to_owned),
            ..JudgeOptions::at(request.time)
        };
        if let (NamespaceLabels::Known(labels), Some(ns)) =
            (request.namespace_labels, request.namespace)
        {
            options
                .namespace_labels
                .insert(ns.to_owned(), labels.clone());
        }
        let outcomes = audit::judge(set, entries, &options);
        let [Outcome::Judged(judged)] = outcomes.as_slice() else {
            panic!("{what}: audit read one object");
        };
        same(&format!("{what}, audit"), &runner, &judged.decision);
    }
}

#[test]
fn runner_webhook_and_audit_agree_on_every_shipped_case() {
    let time: Timestamp = RUN_TIME.parse().expect("time");
    let mut checked = 0;
    for (set, suite) in suites() {
        let result = policytest::run_suite(&set, &suite, time);
        for (case, outcome) in suite.cases.iter().zip(&result.cases) {
            assert!(outcome.passed(), "{}: {:?}", case.name, outcome.failures);
            let request = case.request(suite.time.unwrap_or(time));
            // The runner's decision is the engine's for the case's request.
            same(&case.name, &evaluate(&set, &request), &outcome.decision);
            agree(&set, case, &request);
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} cases");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// At any time (around the schedule's and the exceptions' dates), dry run or not, in the
    /// case's namespace or another, the three agree.
    #[test]
    fn they_agree_at_any_time_dry_run_and_namespace(
        pick in any::<prop::sample::Index>(),
        days in -400i64..400,
        seconds in -86_400i64..86_400,
        dry_run in any::<bool>(),
        namespace in prop::option::of(prop::sample::select(vec!["team-a", "team-legacy", "shop", "payments", "edge", "kube-system"])),
    ) {
        let all: Vec<(PolicySet, Suite, Case)> = suites()
            .into_iter()
            .flat_map(|(set, suite)| {
                suite.cases.clone().into_iter().map(move |c| (set.clone(), suite.clone(), c))
            })
            .collect();
        let (set, _suite, mut case) = all[pick.index(all.len())].clone();
        let base: Timestamp = "2027-01-15".parse().expect("time");
        case.spec.time = Some(Timestamp::from_unix(base.plus_days(days).unix() + seconds));
        case.spec.dry_run = dry_run;
        if let Some(ns) = namespace {
            case.spec.namespace = Some(ns.to_owned());
        }
        // The request's namespace must be the object's (the apiserver sets one from the other).
        let mut object = case.spec.object.clone();
        if let (Some(ns), Some(meta)) = (namespace, object.as_mut().and_then(|o| o.get_mut("metadata"))) {
            meta["namespace"] = json!(ns);
        }
        let mut old = case.spec.old_object.clone();
        if let (Some(ns), Some(meta)) = (namespace, old.as_mut().and_then(|o| o.get_mut("metadata"))) {
            meta["namespace"] = json!(ns);
        }
        case.spec.object = object;
        case.spec.old_object = old;
        let request = case.request(base);
        agree(&set, &case, &request);
        // Dry run never changes the decision.
        let wet = Request { dry_run: !request.dry_run, ..request };
        let (a, b) = (evaluate(&set, &request), evaluate(&set, &wet));
        prop_assert_eq!(a.findings, b.findings);
        prop_assert_eq!(a.patch, b.patch);
    }
}
