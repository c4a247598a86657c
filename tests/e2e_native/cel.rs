//! The CEL differential corpus through the export: every case of
//! `tests/cel_corpus/corpus.yaml` (and every `cel` rule of the shipped policies) becomes a
//! Portcullis policy in `enforce` with that one rule; what `portcullis policy export` makes of
//! it is installed in the real API server (restricted to the case's own objects by name), and
//! every object of the case is sent as a server-side dry run. The exported
//! ValidatingAdmissionPolicy must give Portcullis' verdict for the object as admission sees
//! it, and a denial Portcullis' words (`expected_denial`: the webhook's denial on one line).
//!
//! Where Portcullis and the API server differ for a case listed in docs/cel-divergences.md,
//! the exported object has the API server's meaning: those pairs are named as known
//! divergences, never counted as agreeing. A run-time error denies on both sides (fail
//! closed), in the API server's words on its side: counted apart. A rule Portcullis refuses at
//! load exports nothing (named); one the export leaves with the webhook is named with why.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use portcullis::engine::{self, NamespaceLabels, Request};
use portcullis::native;
use portcullis::policy::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::e2e_support::api::{self, Api};
use crate::e2e_support::{Case, ROOT, World, wait_for};
use crate::proof::{answer, denying_policy, expected_denial};

const CORPUS: &str = "tests/cel_corpus/corpus.yaml";
const DIVERGENCES: &str = "docs/cel-divergences.md";
const DIVERGENCES_HEADING: &str = "## Known divergences";
/// The label on every object this case creates.
const LABEL: &str = "e2e-celexport";
const IN_FLIGHT: usize = 16;
const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

pub fn cases() -> Vec<Case> {
    vec![
        Case::exclusive(
            "exported_cel_rules_judge_the_cel_corpus_as_portcullis_does",
            corpus,
        ),
        Case::exclusive(
            "exported_cel_rules_stay_within_the_api_servers_cost_budget",
            cost,
        ),
    ]
}

/// One rule and the objects (corpus keys) it judges.
struct Rule {
    id: String,
    /// The `cel` rule's body.
    rule: Value,
    objects: Vec<String>,
}

/// The corpus' rules, as tests/e2e_cel.rs builds them, and the shipped policies' `cel` rules
/// against every object.
fn rules(corpus: &Value) -> Vec<Rule> {
    let all: Vec<String> = corpus["objects"]
        .as_object()
        .expect("objects")
        .keys()
        .cloned()
        .collect();
    let mut out = Vec::new();
    for c in corpus["cases"].as_array().expect("cases") {
        let id = c["id"].as_str().expect("an id").to_owned();
        let rule = crate::corpus_rules::rule_of(c);
        let objects = match c["objects"].as_array() {
            Some(keys) => keys
                .iter()
                .map(|k| k.as_str().expect("an object key").to_owned())
                .collect(),
            None => vec!["pod".to_owned()],
        };
        out.push(Rule { id, rule, objects });
    }
    let dir = Path::new(ROOT).join("policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("policies/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a policy file");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let Ok(doc) = Value::deserialize(doc) else {
                continue;
            };
            let name = doc["metadata"]["name"].as_str().unwrap_or("").to_owned();
            for (i, rule) in doc["spec"]["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(cel) = rule.get("cel") {
                    out.push(Rule {
                        id: format!("s-{name}-{i}"),
                        rule: cel.clone(),
                        objects: all.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The Portcullis policy of a rule: that one rule, in `enforce`.
fn policy_name(id: &str) -> String {
    format!("cx-{id}")
}

fn policy_text(r: &Rule) -> String {
    serde_yaml_ng::to_string(&json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": policy_name(&r.id)},
        "spec": {"mode": "enforce", "rules": [{"cel": r.rule}]},
    }))
    .expect("YAML")
}

fn object_name(id: &str, key: &str) -> String {
    format!("{id}-{key}")
}

fn collection(kind: &str, ns: &str) -> String {
    let (prefix, plural) = match kind {
        "Pod" => ("/api/v1", "pods"),
        "Deployment" => ("/apis/apps/v1", "deployments"),
        "StatefulSet" => ("/apis/apps/v1", "statefulsets"),
        "DaemonSet" => ("/apis/apps/v1", "daemonsets"),
        "ReplicaSet" => ("/apis/apps/v1", "replicasets"),
        "Job" => ("/apis/batch/v1", "jobs"),
        "CronJob" => ("/apis/batch/v1", "cronjobs"),
        other => panic!("{CORPUS}: kind {other} is not a workload kind"),
    };
    format!("{prefix}/namespaces/{ns}/{plural}")
}

/// The case ids listed under "Known divergences".
fn listed_divergences() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(DIVERGENCES)).expect(DIVERGENCES);
    let section = text
        .split_once(DIVERGENCES_HEADING)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{DIVERGENCES}: no {DIVERGENCES_HEADING:?}"));
    let section = section.split("\n## ").next().unwrap_or("");
    section
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("| `")?;
            let (id, rest) = rest.split_once('`')?;
            Some((id.to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

/// What one side says of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Allow,
    /// Denied, in these words.
    Deny(String),
    /// Denied because an expression failed at run time (or was not run: its cost), in these
    /// words.
    Error(String),
}

impl Said {
    fn denies(&self) -> bool {
        !matches!(self, Said::Allow)
    }
}

/// Whether a denial's text comes from an expression that failed (or was not run).
fn is_error(words: &str) -> bool {
    words.contains("' resulted in error")
        || words.contains("running out of cost budget")
        || words.contains("failed to evaluate")
        || words.contains("the CEL rule was not evaluated")
}

/// Portcullis' verdict for the object as admission sees it.
fn portcullis_says(
    set: &portcullis::policy::PolicySet,
    policy: &str,
    object: &Value,
    labels: &BTreeMap<String, String>,
    user: &str,
) -> Said {
    let mut request = Request::create(object, Timestamp::now());
    request.namespace_labels = NamespaceLabels::Known(labels);
    request.username = Some(user);
    request.dry_run = true;
    let d = engine::evaluate(set, &request);
    if d.allowed {
        return Said::Allow;
    }
    let words = expected_denial(&d, policy);
    if is_error(&words) {
        Said::Error(words)
    } else {
        Said::Deny(words)
    }
}

/// The API server's verdict, for the exported object `vap`.
fn api_says(a: &api::Answer, vap: &str) -> Result<Said, String> {
    if a.status == 201 {
        return Ok(Said::Allow);
    }
    let message = a.body["message"].as_str().unwrap_or("");
    let prefix = format!("ValidatingAdmissionPolicy '{vap}' with binding '{vap}' denied request: ");
    match message.find(&prefix) {
        Some(at) => {
            let words = message[at + prefix.len()..].to_owned();
            Ok(if is_error(&words) {
                Said::Error(words)
            } else {
                Said::Deny(words)
            })
        }
        None => Err(format!(
            "HTTP {} without a denial of {vap}: {}",
            a.status, a.body
        )),
    }
}

fn short(s: &str) -> String {
    let s = s.replace('\n', " ");
    match s.char_indices().nth(300) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s,
    }
}

/// A marker policy created last: the API server uses every earlier one once it uses it.
fn marker() -> (Value, Value) {
    let name = "celexport-marker";
    let labels = json!({LABEL: "yes"});
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": labels},
            "spec": {"failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE"], "resources": ["configmaps"]}],
                    "objectSelector": {"matchLabels": {LABEL: "marker"}}},
                "validations": [{"expression": "false", "message": "celexport marker"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": labels},
            "spec": {"policyName": name, "validationActions": ["Deny"]}}),
    )
}

/// One rule as exported: its policy set, its ValidatingAdmissionPolicy (restricted to the
/// rule's objects by name) and binding.
struct Exported {
    set: portcullis::policy::PolicySet,
    name: String,
    objects: [Value; 2],
}

fn corpus(w: &World) {
    let started = Instant::now();
    let text = std::fs::read_to_string(Path::new(ROOT).join(CORPUS)).expect(CORPUS);
    let corpus: Value = serde_yaml_ng::from_str(&text).expect(CORPUS);
    let rules = rules(&corpus);
    let listed = listed_divergences();
    let now = Timestamp::now();

    // Portcullis loads each rule's policy and exports it.
    let mut refused_at_load: Vec<String> = Vec::new();
    let mut with_webhook: Vec<String> = Vec::new();
    let mut exported: BTreeMap<usize, Exported> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        let file = format!("celexport/{}.yaml", r.id);
        let set = match portcullis::lint::load_str(Path::new(&file), &policy_text(r)) {
            Ok(set) => set,
            Err(e) => {
                refused_at_load.push(format!("{}: {}", r.id, short(&e.to_string())));
                continue;
            }
        };
        let export = native::export(
            &set,
            &native::Options {
                time: now,
                mutating: None,
                excluded_namespaces: native::DEFAULT_EXCLUDED_NAMESPACES
                    .map(str::to_owned)
                    .to_vec(),
            },
        );
        if !export.not_exported.is_empty() {
            let why: Vec<String> = export
                .not_exported
                .iter()
                .map(ToString::to_string)
                .collect();
            with_webhook.push(format!("{}: {}", r.id, why.join("; ")));
            continue;
        }
        let [mut vap, mut binding] = <[Value; 2]>::try_from(export.objects)
            .unwrap_or_else(|o| panic!("{}: one policy object and binding, not {o:?}", r.id));
        let names: Vec<String> = r.objects.iter().map(|k| object_name(&r.id, k)).collect();
        for rule in vap["spec"]["matchConstraints"]["resourceRules"]
            .as_array_mut()
            .expect("resourceRules")
        {
            rule["resourceNames"] = json!(names);
        }
        for o in [&mut vap, &mut binding] {
            o["metadata"]["labels"][LABEL] = json!("yes");
        }
        let name = vap["metadata"]["name"].as_str().expect("a name").to_owned();
        exported.insert(
            i,
            Exported {
                set,
                name,
                objects: [vap, binding],
            },
        );
    }

    let ns = w.namespace("celexport");
    let k = w.kubectl();
    let mut label_args = vec!["label", "namespace", &ns, "--overwrite"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>();
    for (key, v) in corpus["namespaceLabels"].as_object().into_iter().flatten() {
        label_args.push(format!("{key}={}", v.as_str().unwrap_or("")));
    }
    let refs: Vec<&str> = label_args.iter().map(String::as_str).collect();
    k.run(&refs).ok();
    let namespace = k.run(&["get", "namespace", &ns, "-o", "json"]).json();
    let labels: BTreeMap<String, String> =
        serde_json::from_value(namespace["metadata"]["labels"].clone()).expect("labels");
    let user = k.run(&["auth", "whoami", "-o", "json"]).json()["status"]["userInfo"]["username"]
        .as_str()
        .expect("a username")
        .to_owned();

    // The pairs of the exported rules: (rule, object key, object as sent).
    let pairs: Vec<(usize, String, Value)> = exported
        .keys()
        .flat_map(|&i| {
            let r = &rules[i];
            let (corpus, ns) = (&corpus, &ns);
            r.objects.iter().map(move |key| {
                let mut o = corpus["objects"][key].clone();
                assert!(o.is_object(), "{CORPUS}: {}: no object {key}", r.id);
                o["metadata"]["name"] = json!(object_name(&r.id, key));
                o["metadata"]["namespace"] = json!(ns);
                (i, key.clone(), o)
            })
        })
        .collect();

    let rt = api::runtime();
    let api = Api::new(&w.cluster);
    let send_all = |objects: Vec<&Value>, in_flight: usize| -> Vec<api::Answer> {
        rt.block_on(
            futures::stream::iter(objects.into_iter().map(|o| {
                let path = format!(
                    "{}?dryRun=All",
                    collection(o["kind"].as_str().unwrap_or(""), &ns)
                );
                let (api, o) = (api.clone(), o.clone());
                async move { api.post(&path, &o).await }
            }))
            .buffered(in_flight)
            .collect(),
        )
    };
    // What admission sees: each object defaulted, no policy installed.
    let references = send_all(pairs.iter().map(|(_, _, o)| o).collect(), IN_FLIGHT);
    for ((i, key, _), a) in pairs.iter().zip(&references) {
        assert_eq!(
            a.status, 201,
            "{} / {key}: the API server refuses the object itself: {}",
            rules[*i].id, a.body
        );
    }

    // The exported objects (the API server may refuse some), the marker last.
    let api_refused: BTreeMap<usize, String> = rt.block_on(async {
        let created: Vec<(usize, api::Answer)> =
            futures::stream::iter(exported.iter().map(|(&i, e)| {
                let api = api.clone();
                async move { (i, api.post(POLICIES, &e.objects[0]).await) }
            }))
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let mut refused = BTreeMap::new();
        for (i, a) in created {
            if a.status != 201 {
                assert_eq!(
                    a.status, 422,
                    "{}: HTTP {}: {}",
                    rules[i].id, a.status, a.body
                );
                refused.insert(i, a.body["message"].as_str().unwrap_or("").to_owned());
            }
        }
        let bound: Vec<(usize, api::Answer)> = futures::stream::iter(
            exported
                .iter()
                .filter(|(i, _)| !refused.contains_key(i))
                .map(|(&i, e)| {
                    let api = api.clone();
                    async move { (i, api.post(BINDINGS, &e.objects[1]).await) }
                }),
        )
        .buffered(IN_FLIGHT)
        .collect()
        .await;
        for (i, a) in bound {
            assert_eq!(a.status, 201, "{}: its binding: {}", rules[i].id, a.body);
        }
        let (policy, binding) = marker();
        assert_eq!(api.post(POLICIES, &policy).await.status, 201, "the marker");
        assert_eq!(
            api.post(BINDINGS, &binding).await.status,
            201,
            "its binding"
        );
        refused
    });
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "celexport-marker", "namespace": ns, "labels": {LABEL: "marker"}}});
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps?dryRun=All");
    wait_for(
        "the API server to use the exported policies",
        Duration::from_secs(60),
        || {
            let a = rt.block_on(api.post(&cm_path, &cm));
            let message = a.body["message"].as_str().unwrap_or("");
            message.contains("celexport marker").then_some(())
        },
    );
    api::wait_policies_settled(&rt, &api, LABEL, &|| {
        let a = rt.block_on(api.post(&cm_path, &cm));
        a.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("celexport marker")
    });
    // One at a time while the policies are in force: kube-apiserver v1.32 can crash when
    // requests evaluate freshly compiled policies concurrently ("concurrent map read and map
    // write" in DeclTypeProvider.FindStructFieldType, kubernetes/kubernetes#135757, open).
    let answers = send_all(pairs.iter().map(|(_, _, o)| o).collect(), 1);

    // Both sides, pair by pair.
    let mut agree = 0;
    let mut agree_error: Vec<String> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut listed_agreeing: Vec<String> = Vec::new();
    let mut mismatches: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for (((i, key, _), reference), answer) in pairs.iter().zip(&references).zip(&answers) {
        let r = &rules[*i];
        let e = &exported[i];
        let title = format!("{} / {key}", r.id);
        let is_listed = listed.contains_key(&r.id);
        let ours = portcullis_says(&e.set, &policy_name(&r.id), &reference.body, &labels, &user);
        let differs = match api_refused.get(i) {
            Some(m) => Some(format!(
                "the API server refuses the exported policy ({}); Portcullis: {ours:?}",
                short(m)
            )),
            None => match api_says(answer, &e.name) {
                Err(p) => {
                    problems.push(format!("{title}: {p}"));
                    continue;
                }
                Ok(theirs) => match (&theirs, &ours) {
                    (a, b) if a == b => None,
                    (Said::Error(_), b) | (b, Said::Error(_)) if b.denies() && !is_listed => {
                        agree_error.push(format!(
                            "{title}: the API server: {}; Portcullis: {}",
                            short(&format!("{theirs:?}")),
                            short(&format!("{ours:?}"))
                        ));
                        continue;
                    }
                    _ => Some(format!(
                        "the exported policy: {}; Portcullis: {}",
                        short(&format!("{theirs:?}")),
                        short(&format!("{ours:?}"))
                    )),
                },
            },
        };
        match (differs, is_listed) {
            (None, false) => agree += 1,
            (None, true) => listed_agreeing.push(title),
            (Some(d), true) => known.push(format!("{title}: {d}")),
            (Some(d), false) => mismatches.push(format!("{title}: {d}")),
        }
    }
    rt.block_on(async {
        for c in [BINDINGS, POLICIES] {
            let a = api
                .delete(&format!("{c}?labelSelector={LABEL}%3Dyes"))
                .await;
            assert_eq!(a.status, 200, "deleting {c}: {}", a.body);
        }
    });

    println!(
        "cel corpus through the export: {} rules ({} refused by Portcullis at load, {} left with the webhook), {} pairs: {agree} agree (verdict and words), {} both deny for a run-time error (words not compared), {} known divergences, {} listed but agreeing, {} differ; {:.1} s",
        rules.len(),
        refused_at_load.len(),
        with_webhook.len(),
        pairs.len(),
        agree_error.len(),
        known.len(),
        listed_agreeing.len(),
        mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    for r in &refused_at_load {
        println!("  refused by Portcullis at load, nothing exported: {r}");
    }
    for r in &with_webhook {
        println!("  not exported, stays with the webhook: {r}");
    }
    for r in &agree_error {
        println!("  both deny, a run-time error: {r}");
    }
    for r in &known {
        println!(
            "  known divergence (docs/cel-divergences.md), the export has the API server's meaning: {r}"
        );
    }
    for r in &listed_agreeing {
        println!("  listed in docs/cel-divergences.md, agrees through the export: {r}");
    }
    assert!(problems.is_empty(), "the harness:\n{}", problems.join("\n"));
    assert!(pairs.len() >= 150, "only {} pairs", pairs.len());
    assert!(
        mismatches.is_empty(),
        "{} pairs differ between the exported policy and Portcullis:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Containers (and as many init containers) in the large Deployments of [`cost`]: more than
/// Portcullis' own cost budget lets every shipped rule run on.
const MANY: usize = 120;
/// As many in the mid-size ones, on which Portcullis runs every rule.
const SOME: usize = 12;

/// A Deployment of [`MANY`] containers (and as many init containers), each with a few env
/// vars: compliant with the shipped `cel` policies, or each container violating them.
fn large(name: &str, ns: &str, compliant: bool, many: usize) -> Value {
    let container = |role: &str, i: usize| {
        let mut c = json!({
            "name": format!("{role}-{i}"),
            "image": if compliant { format!("registry.corp.example/team/{role}:1.{i}") } else { format!("docker.io/library/{role}:1.{i}") },
            "env": (0..8).map(|e| json!({"name": format!("VAR_{e}"), "value": format!("value {e} of {i}")})).collect::<Vec<_>>(),
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}},
        });
        c["securityContext"] = if compliant {
            json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true})
        } else {
            json!({"privileged": true})
        };
        c
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}},
                "spec": {
                    "initContainers": (0..many).map(|i| container("init", i)).collect::<Vec<_>>(),
                    "containers": (0..many).map(|i| container("app", i)).collect::<Vec<_>>(),
                }
            }
        }
    })
}

/// The shipped `cel` policies in `enforce`, exported, judge a Deployment of hundreds of
/// containers within the API server's cost limits: a compliant one is admitted, a violating
/// one denied in Portcullis' words (not for a cost budget spent), UPDATE (the ratchet
/// evaluates every rule on the stored object too) included.
fn cost(w: &World) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a directory");
    for name in ["cel-pod-security.yaml", "cel-workload-rules.yaml"] {
        let text = std::fs::read_to_string(Path::new(ROOT).join("policies").join(name))
            .expect("a shipped policy");
        let enforced = text.replace("mode: \"off\"", "mode: enforce");
        assert_ne!(text, enforced, "{name}: the policies' mode");
        std::fs::write(dir.path().join(name), enforced).expect("a policy file");
    }
    let set = portcullis::lint::load_dir(dir.path()).expect("the shipped cel policies");
    let export = native::export(
        &set,
        &native::Options {
            time: Timestamp::now(),
            mutating: None,
            excluded_namespaces: native::DEFAULT_EXCLUDED_NAMESPACES
                .map(str::to_owned)
                .to_vec(),
        },
    );
    assert!(export.not_exported.is_empty(), "{:?}", export.not_exported);
    let ns = w.namespace("celcost");
    let k = w.kubectl();
    k.run(&[
        "label",
        "namespace",
        &ns,
        "environment=production",
        "--overwrite",
    ])
    .ok();
    let labels: BTreeMap<String, String> = serde_json::from_value(
        k.run(&["get", "namespace", &ns, "-o", "json"]).json()["metadata"]["labels"].clone(),
    )
    .expect("labels");
    let user = k.run(&["auth", "whoami", "-o", "json"]).json()["status"]["userInfo"]["username"]
        .as_str()
        .expect("a username")
        .to_owned();
    let rt = api::runtime();
    let api = Api::new(&w.cluster);
    // The stored objects of the UPDATEs, before any policy.
    let stored_good = large("stored-good", &ns, true, SOME);
    let stored_bad = large("stored-bad", &ns, false, SOME);
    for o in [&stored_good, &stored_bad] {
        let out = k.with_object(&["create", "-o", "json"], o);
        assert!(out.success, "{}", out.stderr);
    }
    let mut items: Vec<Value> = export.objects.clone();
    for o in &mut items {
        o["metadata"]["labels"][LABEL] = json!("yes");
    }
    let (m, mb) = marker();
    items.push(m);
    items.push(mb);
    k.with_object(
        &["apply"],
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    )
    .ok();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "celexport-marker", "namespace": ns, "labels": {LABEL: "marker"}}});
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps?dryRun=All");
    wait_for("the exported policies", Duration::from_secs(60), || {
        let a = rt.block_on(api.post(&cm_path, &cm));
        let message = a.body["message"].as_str().unwrap_or("");
        message.contains("celexport marker").then_some(())
    });

    let mut problems = Vec::new();
    let mut over_budget: Vec<String> = Vec::new();
    let mut sent = 0;
    // (what, the object sent, the stored object of an UPDATE)
    let mut bad_update = stored_bad.clone();
    bad_update["metadata"]["labels"]["rev"] = json!("2");
    let mut worse_update = stored_good.clone();
    worse_update["spec"]["template"]["spec"]["containers"][0]["securityContext"] =
        json!({"privileged": true});
    let sends: Vec<(&str, Value, Option<&Value>)> = vec![
        ("CREATE compliant", large("good", &ns, true, SOME), None),
        ("CREATE violating", large("bad", &ns, false, SOME), None),
        (
            "CREATE compliant, large",
            large("good-large", &ns, true, MANY),
            None,
        ),
        (
            "CREATE violating, large",
            large("bad-large", &ns, false, MANY),
            None,
        ),
        (
            "UPDATE keeping its violations",
            bad_update,
            Some(&stored_bad),
        ),
        ("UPDATE adding one", worse_update, Some(&stored_good)),
    ];
    for (what, object, stored) in &sends {
        sent += 1;
        let verb = if stored.is_some() {
            "replace"
        } else {
            "create"
        };
        let a = answer(k.with_object(&[verb, "--dry-run=server", "-o", "json"], object));
        // Portcullis judges the request as the webhook gets it.
        let mut request = Request::create(object, Timestamp::now());
        if let Some(old) = stored {
            request.operation = engine::Operation::Update;
            request.old_object = Some((*old).into());
        }
        request.namespace_labels = NamespaceLabels::Known(&labels);
        request.username = Some(&user);
        request.dry_run = true;
        let d = engine::evaluate(&set, &request);
        // Portcullis' own budget (docs/cel.md, "Cost") may refuse to run a rule on a large
        // object (fail closed); the API server runs it within its own. Named, never counted
        // as agreeing; what the API server says must still be a verdict, not its budget spent.
        let refused: Vec<&str> = d
            .findings
            .iter()
            .filter(|f| f.message.starts_with("the CEL rule was not evaluated"))
            .map(|f| f.policy.as_str())
            .collect();
        if !refused.is_empty() {
            let spent = a
                .error
                .as_deref()
                .or(a.denial.as_ref().map(|(_, m)| m.as_str()));
            if spent.is_some_and(|m| m.contains("cost budget")) || a.error.is_some() {
                problems.push(format!("{what}: the API server: {spent:?}"));
            }
            over_budget.push(format!(
                "{what}: Portcullis does not run {refused:?} (its cost budget); the API server {}",
                if a.allowed { "allowed it" } else { "denied it" }
            ));
            continue;
        }
        match (&a.denial, a.allowed, d.allowed) {
            (None, true, true) => {}
            (Some((vap, message)), false, false) => {
                let policy = denying_policy(&export.objects, vap, &d).unwrap_or_default();
                let want = expected_denial(&d, &policy);
                // The API server refuses a messageExpression's string over 5 KiB
                // (`MaxEvaluatedMessageExpressionSizeBytes`) and says the validation's
                // `message` instead (docs/native.md, "Semantics that differ").
                let want = if want.len() > 5 * 1024 {
                    format!("Portcullis policy {policy} found violations")
                } else {
                    want
                };
                if *message != want {
                    problems.push(format!(
                        "{what}: the API server says\n  {}\nPortcullis\n  {}",
                        short(message),
                        short(&want)
                    ));
                }
            }
            _ => problems.push(format!(
                "{what}: the API server allowed: {} ({:?} {:?}); Portcullis allowed: {} ({:?})",
                a.allowed,
                a.denial.as_ref().map(|(_, m)| short(m)),
                a.error.as_deref().map(short),
                d.allowed,
                d.denial_message().as_deref().map(short)
            )),
        }
    }
    k.with_object(
        &["delete", "--wait=true"],
        &json!({"apiVersion": "v1", "kind": "List", "items": export.objects.iter().chain([&marker().0, &marker().1]).cloned().collect::<Vec<_>>()}),
    )
    .ok();
    println!(
        "cel cost: {sent} requests of {SOME} + {SOME} and {MANY} + {MANY} containers through the exported shipped cel policies, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for o in &over_budget {
        println!("  over Portcullis' cost budget, not compared: {o}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
