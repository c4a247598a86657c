//! What the engine does with what is known of a namespace's labels: its name only (no
//! cluster access), its labels (a namespace cache, or Namespace objects beside the manifests),
//! or nothing yet (a namespace created a moment ago, not in the cache). Unknown labels never
//! deny, nor mutate, what the real labels might not select; policies that do not depend on
//! labels are unaffected.

use std::collections::BTreeMap;
use std::path::Path;

use portcullis::engine::{Decision, Effect, FindingKind, NamespaceLabels, Request, evaluate};
use portcullis::policy::{PolicySet, Timestamp};
use serde_json::{Value, json};

const POLICIES: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: prod-owner}
spec:
  mode: enforce
  match:
    namespaceSelector: {matchLabels: {env: prod}}
  rules:
    - requireLabels: {labels: [owner]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: prod-sidecar}
spec:
  mode: enforce
  match:
    namespaceSelector:
      matchExpressions: [{key: env, operator: In, values: [prod]}]
  rules:
    - injectSidecar:
        container:
          name: proxy
          image: proxy:1
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 10m, memory: 16Mi}}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: everywhere-team}
spec:
  mode: enforce
  exclude:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
  rules:
    - requireLabels: {labels: [team]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: not-in-sandboxes}
spec:
  mode: enforce
  exclude:
    namespaceSelector: {matchLabels: {tier: sandbox}}
  rules:
    - requireLabels: {labels: [cost-center]}
"#;

fn policies() -> PolicySet {
    portcullis::lint::load_str(Path::new("ns.yaml"), POLICIES).expect("policies load")
}

fn deployment(namespace: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})
}

/// 2026-01-01: after the schedule below switched to enforce, before the exception expires.
const TIME: Timestamp = Timestamp::from_unix(1_767_225_600);

fn decide(object: &Value, labels: NamespaceLabels<'_>) -> Decision {
    decide_with(&policies(), object, labels)
}

fn decide_with(set: &PolicySet, object: &Value, labels: NamespaceLabels<'_>) -> Decision {
    let mut request = Request::create(object, TIME);
    request.namespace_labels = labels;
    evaluate(set, &request)
}

/// (policy, effect) of every violation.
fn violations(d: &Decision) -> Vec<(&str, Effect)> {
    d.violations()
        .map(|f| (f.policy.as_str(), f.effect))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn known_labels_select_and_deny() {
    let prod = labels(&[("env", "prod")]);
    let d = decide(&deployment("shop"), NamespaceLabels::Known(&prod));
    assert_eq!(
        violations(&d),
        [
            ("prod-owner", Effect::Deny),
            ("everywhere-team", Effect::Deny),
            ("not-in-sandboxes", Effect::Deny),
        ]
    );
    assert!(
        d.mutations()
            .any(|f| f.policy == "prod-sidecar" && f.effect == Effect::Apply)
    );
    assert!(d.is_patched());
    assert!(d.labels_pending.is_empty());
    let sandbox = labels(&[("tier", "sandbox")]);
    let d = decide(&deployment("shop"), NamespaceLabels::Known(&sandbox));
    assert_eq!(violations(&d), [("everywhere-team", Effect::Deny)]);
    assert!(!d.is_patched());
}

#[test]
fn name_only_sees_no_other_label() {
    let d = decide(&deployment("shop"), NamespaceLabels::NameOnly);
    assert_eq!(
        violations(&d),
        [
            ("everywhere-team", Effect::Deny),
            ("not-in-sandboxes", Effect::Deny),
        ]
    );
    assert!(d.labels_pending.is_empty());
}

/// A namespace whose labels are not known yet: policies whose selection depends on them run
/// as warn (a `match` on labels, an `exclude` on labels alike), so nothing is denied that the
/// real labels might admit, and nothing is mutated that they might not select; a selector on
/// the name alone is still decided; the decision names the policies concerned.
#[test]
fn pending_labels_never_deny_nor_mutate_what_they_might_not_select() {
    let d = decide(&deployment("shop"), NamespaceLabels::Pending);
    assert_eq!(
        violations(&d),
        [
            ("prod-owner", Effect::Warn),
            ("everywhere-team", Effect::Deny),
            ("not-in-sandboxes", Effect::Warn),
        ]
    );
    assert!(!d.allowed, "everywhere-team does not depend on labels");
    assert!(!d.is_patched(), "{:?}", d.patch);
    assert!(d.findings.iter().any(|f| f.policy == "prod-sidecar"
        && f.kind == FindingKind::Mutation
        && f.effect == Effect::Warn));
    assert_eq!(
        d.labels_pending,
        ["prod-owner", "prod-sidecar", "not-in-sandboxes"]
    );
    let warnings = d.warnings();
    assert!(
        warnings[0].starts_with(
            "Deployment shop/web: the labels of its namespace are not known to Portcullis yet"
        ) && warnings[0].ends_with("prod-owner, prod-sidecar, not-in-sandboxes"),
        "{warnings:?}"
    );
    // Excluded by name even so: kube-system is decided without labels.
    let d = decide(&deployment("kube-system"), NamespaceLabels::Pending);
    assert!(!violations(&d).contains(&("everywhere-team", Effect::Deny)));
}

/// Whether namespace labels can change any decision of a set (the webhook waits for a
/// namespace missing from its cache only then).
#[test]
fn a_set_selects_by_label_unless_only_names_are_used() {
    assert!(policies().selects_namespaces_by_label());
    let by_name = portcullis::lint::load_str(
        Path::new("n.yaml"),
        "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: n}\nspec:\n  mode: enforce\n  match:\n    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}\n  rules:\n    - requireLabels: {labels: [team]}\n",
    )
    .expect("loads");
    assert!(!by_name.selects_namespaces_by_label());
}

/// A schedule that enforces in namespaces selected by label, and an exception that selects
/// namespaces by label: with the labels known they decide; with labels not known yet the
/// policies concerned only warn (the real labels might keep the policy in warn, or except the
/// finding).
#[test]
fn pending_labels_cap_schedules_and_exceptions_by_label() {
    let set = portcullis::lint::load_str(
        Path::new("sched.yaml"),
        r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: team-label}
spec:
  mode: warn
  schedule:
    - from: 2025-06-01
      mode: enforce
      namespaceSelector: {matchLabels: {tier: gold}}
  rules:
    - requireLabels: {labels: [team]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: cost-center}
spec:
  mode: enforce
  rules:
    - requireLabels: {labels: [cost-center]}
---
apiVersion: portcullis.dev/v1alpha1
kind: PolicyException
metadata: {name: sandboxes}
spec:
  owner: platform
  reason: sandboxes are free
  expires: 2030-01-01
  policies: [{name: cost-center}]
  match:
    namespaceSelector: {matchLabels: {tier: sandbox}}
"#,
    )
    .expect("loads");
    let gold = labels(&[("tier", "gold")]);
    let d = decide_with(&set, &deployment("shop"), NamespaceLabels::Known(&gold));
    assert_eq!(
        violations(&d),
        [("team-label", Effect::Deny), ("cost-center", Effect::Deny)]
    );
    let sandbox = labels(&[("tier", "sandbox")]);
    let d = decide_with(&set, &deployment("shop"), NamespaceLabels::Known(&sandbox));
    assert_eq!(
        violations(&d),
        [
            ("team-label", Effect::Warn),
            ("cost-center", Effect::Excepted)
        ]
    );
    let d = decide_with(&set, &deployment("shop"), NamespaceLabels::Pending);
    assert_eq!(
        violations(&d),
        [("team-label", Effect::Warn), ("cost-center", Effect::Warn)]
    );
    assert!(d.allowed);
    assert_eq!(d.labels_pending, ["team-label", "cost-center"]);
    assert!(set.selects_namespaces_by_label());
}

/// A mutation of a policy selected by label can decide another policy's verdict: here the
/// production namespaces get a default `team` label that a policy everywhere requires. With the
/// labels known, the workload in production is admitted (the label is added, then found);
/// with them not known yet the default is not added, and the requirement must not deny what
/// the real labels would admit: it only warns, and says why.
#[test]
fn pending_labels_never_deny_what_a_mutation_by_label_would_admit() {
    let set = portcullis::lint::load_str(
        Path::new("chain.yaml"),
        r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: prod-team-default}
spec:
  mode: enforce
  match:
    namespaceSelector: {matchLabels: {env: prod}}
  rules:
    - defaultLabels: {labels: {team: platform}}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: team-everywhere}
spec:
  mode: enforce
  rules:
    - requireLabels: {labels: [team]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: probes-everywhere}
spec:
  mode: warn
  rules:
    - requireProbes: {}
"#,
    )
    .expect("loads");
    let prod = labels(&[("env", "prod")]);
    let known = decide_with(&set, &deployment("shop"), NamespaceLabels::Known(&prod));
    assert!(known.allowed, "{:?}", violations(&known));
    let dev = labels(&[("env", "dev")]);
    let known = decide_with(&set, &deployment("shop"), NamespaceLabels::Known(&dev));
    assert_eq!(violations(&known)[0], ("team-everywhere", Effect::Deny));

    let pending = decide_with(&set, &deployment("shop"), NamespaceLabels::Pending);
    assert!(pending.allowed, "{:?}", violations(&pending));
    assert!(pending.patch.0.is_empty(), "nothing mutated by label");
    assert_eq!(violations(&pending)[0], ("team-everywhere", Effect::Warn));
    assert_eq!(
        pending.labels_pending,
        ["prod-team-default", "team-everywhere"]
    );
}

/// What a patch changes, as (path, value) of the leaves it adds or changes. List items that
/// have a name are known by it (`containers[log-shipper]`), as Kubernetes merges them: a
/// sidecar appended after another policy's lands at another index, and is the same change.
fn changes(object: &Value, patch: &portcullis::engine::Patch) -> BTreeMap<String, Value> {
    fn leaves(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(o) if !o.is_empty() => o
                .iter()
                .for_each(|(k, v)| leaves(v, format!("{path}.{k}"), out)),
            Value::Array(a) if !a.is_empty() => {
                for (i, item) in a.iter().enumerate() {
                    let id = match (item["name"].as_str(), item["mountPath"].as_str()) {
                        (Some(name), Some(at)) => format!("{name}@{at}"),
                        (Some(name), None) => name.to_owned(),
                        _ => i.to_string(),
                    };
                    leaves(item, format!("{path}[{id}]"), out);
                }
            }
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch.to_json_patch()).expect("the patch applies");
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    leaves(object, String::new(), &mut before);
    leaves(&patched, String::new(), &mut after);
    after.retain(|path, value| before.get(path) != Some(value));
    after
}

/// The rule for labels not known yet, over every label assignment a namespace could have:
/// whatever a correct cache would admit, the pending decision admits too; and it never
/// patches what a correct cache would not patch alike: every change its patch makes (a label,
/// a sidecar, a volume, a mount), the patch for any labels makes too, with the same value.
/// (Of a set without conflicting mutations: where a policy selected by label and another both
/// default a label, with different values, the first one to apply wins, so the labels decide
/// the value; the lint warns about such sets.)
#[test]
fn pending_labels_admit_whatever_some_labels_would_admit() {
    let mut all = String::from(POLICIES);
    all.push_str(
        r#"
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: prod-team-default}
spec:
  mode: enforce
  match:
    namespaceSelector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}
  rules:
    - defaultLabels: {labels: {team: platform, cost-center: shared}}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: no-sandbox-resources}
spec:
  mode: enforce
  match:
    namespaceSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [sandbox]}]}
  rules:
    - requireResources: {requests: [cpu, memory], limits: [cpu, memory]}
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: everywhere-defaults}
spec:
  mode: enforce
  rules:
    - defaultLabels: {labels: {app.kubernetes.io/managed-by: portcullis}}
    - injectSidecar:
        container:
          name: log-shipper
          image: fluent-bit:3
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 10m, memory: 16Mi}}
        volumes: [{name: app-logs, emptyDir: {}}]
        volumeMounts: [{name: app-logs, mountPath: /var/log/app}]
"#,
    );
    let set = portcullis::lint::load_str(Path::new("all.yaml"), &all).expect("loads");
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    let mut object = deployment("shop");
    let mut with_owner = object.clone();
    with_owner["metadata"]["labels"] = json!({"owner": "a"});
    let mut sized = with_owner.clone();
    sized["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}});
    object["metadata"]["labels"] = json!({});
    for object in [object, with_owner, sized] {
        let pending = decide_with(&set, &object, NamespaceLabels::Pending);
        let pending_changes = changes(&object, &pending.patch);
        // What does not depend on labels is patched even so.
        assert!(
            pending_changes.contains_key(".metadata.labels.app.kubernetes.io/managed-by")
                && pending_changes.keys().any(|k| k.contains("[log-shipper]")),
            "{pending_changes:?}"
        );
        for env in [None, Some("prod"), Some("dev")] {
            for tier in [None, Some("sandbox"), Some("gold")] {
                let mut l = BTreeMap::new();
                if let Some(e) = env {
                    l.insert("env".to_owned(), e.to_owned());
                }
                if let Some(t) = tier {
                    l.insert("tier".to_owned(), t.to_owned());
                }
                let known = decide_with(&set, &object, NamespaceLabels::Known(&l));
                if known.allowed {
                    assert!(
                        pending.allowed,
                        "labels {l:?} admit {object}, pending denies: {:?}",
                        violations(&pending)
                    );
                }
                let known_changes = changes(&object, &known.patch);
                let not_alike: Vec<_> = pending_changes
                    .iter()
                    .filter(|(path, value)| known_changes.get(*path) != Some(*value))
                    .collect();
                assert!(
                    not_alike.is_empty(),
                    "labels {l:?}: pending patches {not_alike:?}, which they do not"
                );
            }
        }
    }
}
