//! The proof: every case of the shipped policy tests (`policies/tests/`), sent to the real API
//! server with the exported ValidatingAdmissionPolicy and MutatingAdmissionPolicy objects
//! installed and no webhook, gets Portcullis' verdict: the same allowed or denied, the denial
//! naming the same violations in the same words, the same warnings of `warn` policies, and
//! the admitted object the one Portcullis' patch makes.
//!
//! Cases are grouped by their policy set (a test file's mode overrides) and time, then into
//! rounds without conflicts (a namespace's labels, a stored object an UPDATE changes). Per
//! round: namespaces labelled, stored objects created (no admission installed yet), each
//! allowed case's Portcullis-mutated object sent as a dry run for reference, the export
//! installed (markers tell when the API server uses it), the cases sent as dry runs, the
//! export removed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use portcullis::engine::{self, Decision, Effect, FindingKind};
use portcullis::native::{self, MutatingVersion};
use portcullis::policy::model::Mode;
use portcullis::policy::{PolicySet, Timestamp};
use portcullis::policytest::model::TestOperation;
use portcullis::policytest::{self, Case as TestCase};
use serde_json::{Value, json};

use crate::e2e_support::kubectl::Out;
use crate::e2e_support::{Case, Kubectl, ROOT, World, wait_for};

pub fn cases() -> Vec<Case> {
    vec![Case::exclusive(
        "exported_policies_judge_every_shipped_test_case_as_portcullis_does",
        every_shipped_case,
    )]
}

/// One case to send: its namespace, the object as sent, the stored object it changes.
struct Planned<'a> {
    suite: &'a str,
    case: &'a TestCase,
    namespace: String,
    object: Option<Value>,
    stored: Option<Value>,
    decision: Decision,
}

impl Planned<'_> {
    fn title(&self) -> String {
        format!("{} / {}", self.suite, self.case.name)
    }

    fn operation(&self) -> TestOperation {
        self.case.spec.operation
    }

    fn labels(&self) -> &BTreeMap<String, String> {
        &self.case.spec.namespace_labels
    }

    fn stored_key(&self) -> Option<(String, String, String)> {
        self.stored.as_ref().map(|o| {
            (
                self.namespace.clone(),
                o["kind"].as_str().unwrap_or("").to_owned(),
                o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            )
        })
    }

    /// kubectl's impersonation flags for the case's user.
    fn user_args(&self) -> Vec<String> {
        match &self.case.spec.user_info {
            Some(u) => vec![
                "--as".to_owned(),
                u.username.clone(),
                "--as-group".to_owned(),
                "system:masters".to_owned(),
            ],
            None => Vec::new(),
        }
    }
}

/// The object placed in `ns` (a case may name its namespace beside the object).
fn in_namespace(object: &Value, ns: &str) -> Value {
    let mut o = object.clone();
    if o["metadata"].is_object() {
        o["metadata"]["namespace"] = json!(ns);
    }
    o
}

/// What the API server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) allowed: bool,
    object: Option<Value>,
    /// (policy object, message) of a ValidatingAdmissionPolicy denial.
    pub(crate) denial: Option<(String, String)>,
    /// Any other error.
    pub(crate) error: Option<String>,
    /// `Validation failed for ValidatingAdmissionPolicy ...` warnings.
    warnings: Vec<String>,
}

pub(crate) fn answer(out: Out) -> Answer {
    let warnings: Vec<String> = out
        .warnings()
        .into_iter()
        .filter(|w| w.starts_with("Validation failed for ValidatingAdmissionPolicy"))
        .collect();
    if out.success {
        return Answer {
            allowed: true,
            object: serde_json::from_str(&out.stdout).ok(),
            denial: None,
            error: None,
            warnings,
        };
    }
    let stderr = out.stderr.clone();
    let denial = stderr.lines().find_map(|l| {
        let at = l.find("ValidatingAdmissionPolicy '")?;
        let rest = &l[at + "ValidatingAdmissionPolicy '".len()..];
        let (name, rest) = rest.split_once("' with binding '")?;
        let (_, message) = rest.split_once("' denied request: ")?;
        Some((name.to_owned(), message.to_owned()))
    });
    let error = denial.is_none().then(|| stderr.trim().to_owned());
    Answer {
        allowed: false,
        object: None,
        denial,
        error,
        warnings,
    }
}

fn send(k: &Kubectl, p: &Planned<'_>, object: Option<&Value>) -> Answer {
    let user = p.user_args();
    let mut args: Vec<&str> = user.iter().map(String::as_str).collect();
    match p.operation() {
        TestOperation::Delete => {
            let stored = p
                .stored
                .as_ref()
                .expect("a DELETE case has a stored object");
            let kind = stored["kind"].as_str().unwrap_or("");
            let name = stored["metadata"]["name"].as_str().unwrap_or("");
            args.extend(["delete", kind, name, "-n", &p.namespace, "--dry-run=server"]);
            answer(k.run(&args))
        }
        op => {
            let verb = if op == TestOperation::Update {
                "replace"
            } else {
                "create"
            };
            args.extend([verb, "--dry-run=server", "-o", "json"]);
            answer(k.with_object(&args, object.expect("an object to send")))
        }
    }
}

/// Whether a string is a UID (8-4-4-4-12 hex digits).
fn is_uid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Without what differs between two requests for the same object by construction: UIDs (a
/// Job's `controller-uid` labels and selector), the ServiceAccount plugin's token volume and
/// mounts (a random name; it runs before the mutating policies and webhooks, so in the
/// cluster their mounts come after its own, as here for the MutatingAdmissionPolicy).
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) if is_uid(s) => *s = "<uid>".to_owned(),
        Value::Array(items) => {
            items.retain(|i| {
                !i["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-api-access-"))
            });
            items.iter_mut().for_each(scrub);
        }
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

/// Server-set fields that differ between two dry runs of the same object.
fn normalized(mut o: Value) -> Value {
    scrub(&mut o);
    // A name the API server generates differs each time.
    if o["metadata"]["generateName"].is_string()
        && let Some(m) = o["metadata"].as_object_mut()
    {
        m.remove("name");
    }
    if let Some(m) = o["metadata"].as_object_mut() {
        for k in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    o
}

/// The denial a ValidatingAdmissionPolicy of `policy` says for this decision.
pub(crate) fn expected_denial(d: &Decision, policy: &str) -> String {
    let texts: Vec<String> = d
        .findings
        .iter()
        .filter(|f| {
            f.policy == policy && f.kind == FindingKind::Violation && f.effect == Effect::Deny
        })
        .map(|f| f.full_text())
        .collect();
    format!(
        "Portcullis denied {}: {} violation{}: {}",
        d.workload,
        texts.len(),
        if texts.len() == 1 { "" } else { "s" },
        texts.join(" | ")
    )
}

/// The warnings the `warn` policies' objects give for this decision.
fn expected_warnings(d: &Decision, names: &BTreeMap<String, String>) -> Vec<String> {
    let mut by_policy: Vec<(String, Vec<String>)> = Vec::new();
    for f in &d.findings {
        if f.kind == FindingKind::Violation && f.mode == Mode::Warn && f.effect == Effect::Warn {
            match by_policy.iter_mut().find(|(p, _)| *p == f.policy) {
                Some((_, texts)) => texts.push(f.full_text()),
                None => by_policy.push((f.policy.clone(), vec![f.full_text()])),
            }
        }
    }
    let mut out: Vec<String> = by_policy
        .into_iter()
        .map(|(p, texts)| {
            let name = names
                .get(&p)
                .cloned()
                .unwrap_or_else(|| format!("portcullis-{p}"));
            format!(
                "Validation failed for ValidatingAdmissionPolicy '{name}' with binding '{name}': {}: {}",
                d.workload,
                texts.join(" | ")
            )
        })
        .collect();
    out.sort();
    out
}

/// The policies whose validations a ValidatingAdmissionPolicy object holds, in order: its
/// label, or the annotation of an object several policies share.
fn policies_of(object: &Value) -> Vec<String> {
    let meta = &object["metadata"];
    match meta["annotations"][native::POLICIES].as_str() {
        Some(list) => list.split(", ").map(str::to_owned).collect(),
        None => meta["labels"][native::POLICY_LABEL]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    }
}

/// The policy whose denial a ValidatingAdmissionPolicy object gives for this decision: the
/// first of its policies (the API server reports the first failing validation) with a
/// violation that denies.
pub(crate) fn denying_policy(objects: &[Value], name: &str, d: &Decision) -> Option<String> {
    let object = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingAdmissionPolicy" && o["metadata"]["name"] == name)?;
    policies_of(object).into_iter().find(|p| {
        d.findings
            .iter()
            .any(|f| f.policy == *p && f.kind == FindingKind::Violation && f.effect == Effect::Deny)
    })
}

static MARKER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A ValidatingAdmissionPolicy (and binding) denying ConfigMaps labelled with `marker`, and a
/// MutatingAdmissionPolicy (and binding) labelling them: applied after the export, in force
/// only once the API server has every object applied before them (one watch per kind).
fn markers(marker: &str) -> Vec<Value> {
    let rules = json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
        "resources": ["configmaps"]}]);
    let selector = json!({"matchLabels": {"e2e-native-marker": marker}});
    vec![
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "e2e-marker"},
            "spec": {"failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": rules, "objectSelector": selector},
                "validations": [{"expression": "false", "message": format!("marker {marker}")}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "e2e-marker"},
            "spec": {"policyName": "e2e-marker", "validationActions": ["Warn"]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1alpha1", "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": "e2e-marker"},
            "spec": {"failurePolicy": "Fail", "reinvocationPolicy": "Never",
                "matchConstraints": {"resourceRules": rules, "objectSelector": selector},
                "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression":
                    "[JSONPatch{op: 'add', path: '/metadata/labels/e2e-native-mutated', value: 'yes'}]"}}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1alpha1", "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": "e2e-marker"},
            "spec": {"policyName": "e2e-marker"}}),
    ]
}

/// Waits until both markers act (`present`) or neither does.
fn wait_markers(k: &Kubectl, marker: &str, present: bool) {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "e2e-native-marker", "namespace": "default",
            "labels": {"e2e-native-marker": marker}}});
    wait_for(
        "the API server to use the admission policies",
        Duration::from_secs(60),
        || {
            let out = k.with_object(&["create", "--dry-run=server", "-o", "json"], &cm);
            let warned = out
                .warnings()
                .iter()
                .any(|w| w.contains(&format!("marker {marker}")));
            let mutated = serde_json::from_str::<Value>(&out.stdout)
                .ok()
                .is_some_and(|v| v["metadata"]["labels"]["e2e-native-mutated"] == "yes");
            (warned == present && mutated == present).then_some(())
        },
    );
}

fn list(items: &[Value]) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Sets a namespace's labels to exactly `labels` (the name label aside), creating it.
fn namespace_with(w: &World, ns: &str, labels: &BTreeMap<String, String>) {
    let k = w.kubectl();
    if !k.run(&["get", "namespace", ns]).success {
        k.run(&["create", "namespace", ns]).ok();
    }
    w.cluster.namespace_ready(ns);
    let current = k.run(&["get", "namespace", ns, "-o", "json"]).json();
    let mut args: Vec<String> = vec![
        "label".into(),
        "namespace".into(),
        ns.into(),
        "--overwrite".into(),
    ];
    if let Some(map) = current["metadata"]["labels"].as_object() {
        for key in map.keys() {
            if key != "kubernetes.io/metadata.name" && !labels.contains_key(key) {
                args.push(format!("{key}-"));
            }
        }
    }
    args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    if args.len() > 4 {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&refs).ok();
    }
}

fn every_shipped_case(w: &World) {
    let started = Instant::now();
    let k = w.kubectl();
    // The shipped policies and their tests, and the proof's own sets (tests/policy_sets/native:
    // every option of every rule type, schedules, exceptions, selectors; native-cel: `cel`
    // rules with exceptions, the ratchet, a warn policy).
    let sources = [
        ("policies", "policies/tests"),
        ("tests/policy_sets/native", "tests/policy_sets/native/tests"),
        (
            "tests/policy_sets/native-cel",
            "tests/policy_sets/native-cel/tests",
        ),
    ];
    let loaded: Vec<(PolicySet, Vec<policytest::Suite>)> = sources
        .iter()
        .map(|(policies, tests)| {
            let set = portcullis::lint::load_dir(&Path::new(ROOT).join(policies))
                .unwrap_or_else(|e| panic!("{policies}: {e:?}"));
            let (suites, problems) = policytest::load(&[Path::new(ROOT).join(tests)]);
            assert!(problems.is_empty(), "{problems:?}");
            (set, suites)
        })
        .collect();
    let now = Timestamp::now();

    // Groups: (set, time), in test order.
    let mut groups: Vec<(PolicySet, Timestamp, Vec<Planned<'_>>)> = Vec::new();
    let mut total = 0;
    for (set, suites) in &loaded {
        for suite in suites {
            let suite_set = policytest::suite_set(set, suite).expect("suite set");
            for case in &suite.cases {
                total += 1;
                let time = case.spec.time.or(suite.time).unwrap_or(now);
                let c = &case.spec;
                let subject = c.object.as_ref().or(c.old_object.as_ref());
                let namespace = c
                    .namespace
                    .clone()
                    .or_else(|| {
                        subject
                            .and_then(|o| o["metadata"]["namespace"].as_str())
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "default".to_owned());
                let (object, stored) = match c.operation {
                    TestOperation::Create => (c.object.as_ref(), None),
                    TestOperation::Update => (c.object.as_ref(), c.old_object.as_ref()),
                    TestOperation::Delete => (None, c.object.as_ref().or(c.old_object.as_ref())),
                };
                let decision = engine::evaluate(&suite_set, &case.request(time));
                let planned = Planned {
                    suite: &suite.name,
                    case,
                    object: object.map(|o| in_namespace(o, &namespace)),
                    stored: stored.map(|o| in_namespace(o, &namespace)),
                    namespace,
                    decision,
                };
                match groups.iter_mut().find(|(_, t, cases)| {
                    *t == time && cases.first().is_some_and(|p| p.suite == suite.name)
                }) {
                    Some((_, _, cases)) => cases.push(planned),
                    None => groups.push((suite_set.clone(), time, vec![planned])),
                }
            }
        }
    }

    let mut mismatches: Vec<String> = Vec::new();
    let mut api_refused: Vec<String> = Vec::new();
    let mut with_webhook: Vec<String> = Vec::new();
    let (mut compared, mut denied, mut objects_compared, mut warnings_compared) = (0, 0, 0, 0);
    let mut rounds_run = 0;
    for (group_set, time, planned) in &groups {
        let export = native::export(
            group_set,
            &native::Options {
                time: *time,
                mutating: Some(MutatingVersion::V1alpha1),
                excluded_namespaces: native::DEFAULT_EXCLUDED_NAMESPACES
                    .map(str::to_owned)
                    .to_vec(),
            },
        );
        // Validation rules the export leaves with the webhook (a CEL rule it cannot write as
        // a policy object): the exported objects cannot give Portcullis' verdict for these
        // cases, so they are not compared, and each is named below (never counted as
        // agreeing). The shipped set has none: the suite fails then.
        let unexported: Vec<String> = export
            .not_exported
            .iter()
            .filter(|n| n.rule == Some("cel"))
            .map(ToString::to_string)
            .collect();
        if !unexported.is_empty() {
            for p in planned {
                with_webhook.push(format!(
                    "{} / {}: {}",
                    p.suite,
                    p.case.name,
                    unexported.join("; ")
                ));
            }
            continue;
        }
        let names: BTreeMap<String, String> = export
            .objects
            .iter()
            .filter(|o| o["kind"] == "ValidatingAdmissionPolicy")
            .flat_map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap_or("").to_owned();
                policies_of(o).into_iter().map(move |p| (p, name.clone()))
            })
            .collect();
        // Rounds without conflicts.
        let mut rounds: Vec<Vec<&Planned<'_>>> = Vec::new();
        for p in planned {
            let fits = |round: &Vec<&Planned<'_>>| {
                round.iter().all(|q| {
                    (q.namespace != p.namespace || q.labels() == p.labels())
                        && (p.stored_key().is_none() || q.stored_key() != p.stored_key())
                })
            };
            match rounds.iter_mut().find(|r| fits(r)) {
                Some(r) => r.push(p),
                None => rounds.push(vec![p]),
            }
        }
        for round in rounds {
            rounds_run += 1;
            for p in &round {
                namespace_with(w, &p.namespace, p.labels());
            }
            for p in &round {
                if let Some(stored) = &p.stored {
                    let out = k.with_object(&["create", "-o", "json"], stored);
                    assert!(
                        out.success,
                        "{}: the stored object cannot be created: {}",
                        p.title(),
                        out.stderr
                    );
                }
            }
            // What the cluster stores for Portcullis' mutated object, without any policy.
            let mut references: Vec<Option<Value>> = Vec::new();
            for p in &round {
                let reference = match (&p.object, p.decision.allowed) {
                    (Some(o), true) => {
                        let mut mutated = o.clone();
                        p.decision
                            .patch
                            .apply(&mut mutated)
                            .expect("the patch applies");
                        let a = send(k, p, Some(&mutated));
                        a.object.map(normalized)
                    }
                    _ => None,
                };
                references.push(reference);
            }
            let marker = MARKER
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .to_string();
            let mut items = export.objects.clone();
            items.extend(markers(&marker));
            k.with_object(&["apply"], &list(&items)).ok();
            wait_markers(k, &marker, true);

            for (p, reference) in round.iter().zip(references) {
                compared += 1;
                let a = send(k, p, p.object.as_ref());
                let d = &p.decision;
                if let Some(e) = &a.error {
                    // The API server's own validation refused the object before admission.
                    api_refused.push(format!(
                        "{} (Portcullis: {}): {e}",
                        p.title(),
                        if d.allowed { "allowed" } else { "denied" }
                    ));
                    if !d.allowed {
                        denied += 1;
                    }
                    continue;
                }
                if a.allowed != d.allowed {
                    mismatches.push(format!(
                        "{}: the API server {} it, Portcullis {} it: {:?} / {:?}",
                        p.title(),
                        if a.allowed { "allowed" } else { "denied" },
                        if d.allowed { "allowed" } else { "denied" },
                        a.denial,
                        d.denial_message()
                    ));
                    continue;
                }
                if let Some((vap, message)) = &a.denial {
                    denied += 1;
                    match denying_policy(&export.objects, vap, d) {
                        Some(policy) => {
                            let want = expected_denial(d, &policy);
                            if *message != want {
                                mismatches.push(format!(
                                    "{}: {vap} says\n  {message}\nPortcullis says\n  {want}",
                                    p.title()
                                ));
                            }
                        }
                        None => mismatches.push(format!("{}: denied by {vap}", p.title())),
                    }
                }
                let mut got = a.warnings.clone();
                got.sort();
                let want = expected_warnings(d, &names);
                if !want.is_empty() || !got.is_empty() {
                    warnings_compared += 1;
                }
                if got != want {
                    mismatches.push(format!(
                        "{}: warnings differ:\n  API server: {got:?}\n  Portcullis: {want:?}",
                        p.title()
                    ));
                }
                if let (Some(mut reference), Some(object)) = (reference, a.object) {
                    objects_compared += 1;
                    let mut object = normalized(object);
                    // A Job without labels of its own gets its template's at defaulting, which
                    // runs before admission (the MutatingAdmissionPolicy, the webhook) but
                    // after the reference's patch: the reference's copy holds the added
                    // template labels, the admitted object's does not (nor would the
                    // webhook's).
                    let unlabelled_job = p.object.as_ref().is_some_and(|o| {
                        o["kind"] == "Job" && o["metadata"].get("labels").is_none()
                    });
                    if unlabelled_job {
                        for o in [&mut object, &mut reference] {
                            if let Some(m) = o["metadata"].as_object_mut() {
                                m.remove("labels");
                            }
                        }
                    }
                    if object != reference {
                        mismatches.push(format!(
                            "{}: the admitted objects differ:\n  MutatingAdmissionPolicy: {}\n  Portcullis' patch: {}",
                            p.title(),
                            object,
                            reference
                        ));
                    }
                }
            }

            k.with_object(&["delete", "--wait=true"], &list(&items))
                .ok();
            wait_markers(k, &marker, false);
            for p in &round {
                if let Some((ns, kind, name)) = p.stored_key() {
                    k.run(&["delete", &kind, &name, "-n", &ns, "--ignore-not-found"])
                        .ok();
                }
            }
        }
    }
    println!(
        "native proof: {compared} of {total} shipped cases sent ({denied} denied; {objects_compared} admitted objects and {warnings_compared} warning sets compared) in {} groups, {rounds_run} rounds, {:.1} s",
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    for r in &api_refused {
        println!("  refused by the API server's own validation: {r}");
    }
    for r in &with_webhook {
        println!("  not compared, a rule stays with the webhook: {r}");
    }
    assert_eq!(
        compared + with_webhook.len(),
        total,
        "every shipped case is sent, or named as staying with the webhook"
    );
    assert!(
        with_webhook.is_empty(),
        "every shipped case is compared through the exported objects; not compared: {with_webhook:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {compared} cases differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
