//! Offline auditing: read manifests ([`read`]), judge each object with the engine exactly as
//! the webhook would on CREATE ([`judge`]), and report the results as text or JSON ([`report`]).

pub mod read;
pub mod report;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::engine::{self, Decision, Effect, FindingKind, Request, Skip};
use crate::policy::PolicySet;
use crate::policy::model::WorkloadKind;
use read::{Entry, Location, Manifest, ReadError};

/// The username offline audits give objects that carry a controller `ownerReference` (Pods
/// from `kubectl get pods -o yaml`, ReplicaSets, Jobs of a CronJob): such objects were
/// created by Kubernetes' controllers and are judged at their owner, as in the cluster.
/// Objects without a controller `ownerReference` are judged with no username at all.
pub const OFFLINE_CONTROLLER_USERNAME: &str = "system:kube-controller-manager";

/// The outcome for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// An `enforce` policy is violated: the apiserver would reject the object.
    Deny,
    /// Admitted with warnings (a `warn` policy found something).
    Warn,
    /// Admitted (possibly mutated; `audit`-mode findings are only recorded).
    Pass,
    /// A workload the engine did not judge (controller-owned, malformed, ...).
    Skipped,
    /// Not a Pod or pod controller: admitted untouched.
    NotAWorkload,
    /// The document could not be read as a Kubernetes object.
    Error,
}

impl Verdict {
    /// `deny`, `warn`, `pass`, `skipped`, `not-a-workload`, `error` (the JSON spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Deny => "deny",
            Verdict::Warn => "warn",
            Verdict::Pass => "pass",
            Verdict::Skipped => "skipped",
            Verdict::NotAWorkload => "not-a-workload",
            Verdict::Error => "error",
        }
    }

    /// Whether the verdict fails a CI run (exit code 1).
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Deny | Verdict::Error)
    }
}

/// One object and the engine's decision about it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Where it was read.
    pub location: Location,
    /// The object as read.
    pub object: Value,
    /// The engine's decision.
    pub decision: Decision,
    /// The verdict derived from the decision.
    pub verdict: Verdict,
}

impl Judged {
    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `kind` of the object.
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        metadata_str(&self.object, "namespace")
    }

    /// `metadata.name` (or `generateName` followed by `*`), if set.
    pub fn name(&self) -> Option<String> {
        metadata_str(&self.object, "name")
            .map(str::to_owned)
            .or_else(|| metadata_str(&self.object, "generateName").map(|g| format!("{g}*")))
    }

    /// How reports name the object: `Deployment demo/web`, `ClusterRole admin`.
    pub fn title(&self) -> String {
        let name = self.name().unwrap_or_else(|| "(unnamed)".to_owned());
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{name}", self.kind()),
            None => format!("{} {name}", self.kind()),
        }
    }

    /// The object with the decision's patch applied.
    pub fn admitted(&self) -> Result<Value, json_patch::PatchError> {
        let mut object = self.object.clone();
        json_patch::patch(&mut object, &self.decision.patch)?;
        Ok(object)
    }
}

/// One entry of an audit, in input order.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A judged object.
    Judged(Box<Judged>),
    /// An unreadable input.
    Error(ReadError),
}

/// Options for judging manifests.
#[derive(Debug, Clone, Default)]
pub struct JudgeOptions {
    /// The namespace assumed for objects that name none (like `kubectl apply -n`).
    pub default_namespace: Option<String>,
}

/// Judges every object read, as a CREATE. Namespace labels come from `Namespace` objects in
/// the same input; objects with a controller `ownerReference` are presented as created by
/// [`OFFLINE_CONTROLLER_USERNAME`].
pub fn judge(policies: &PolicySet, entries: Vec<Entry>, options: &JudgeOptions) -> Vec<Outcome> {
    let namespace_labels = namespace_labels(&entries);
    entries
        .into_iter()
        .map(|entry| match entry {
            Entry::Error(e) => Outcome::Error(e),
            Entry::Object(m) => {
                Outcome::Judged(Box::new(judge_one(policies, m, &namespace_labels, options)))
            }
        })
        .collect()
}

fn judge_one(
    policies: &PolicySet,
    manifest: Manifest,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    options: &JudgeOptions,
) -> Judged {
    let Manifest { location, object } = manifest;
    let decision = {
        let mut request = Request::create(&object);
        if request.namespace.is_none() {
            request.namespace = options.default_namespace.as_deref();
        }
        request.namespace_labels = request.namespace.and_then(|ns| namespace_labels.get(ns));
        if has_controller_owner(&object) {
            request.username = Some(OFFLINE_CONTROLLER_USERNAME);
        }
        engine::evaluate(policies, &request)
    };
    let verdict = verdict_of(&object, &decision);
    Judged {
        location,
        object,
        decision,
        verdict,
    }
}

/// The verdict a decision amounts to.
fn verdict_of(object: &Value, decision: &Decision) -> Verdict {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    match &decision.skipped {
        Some(Skip::NotAWorkload) => return Verdict::NotAWorkload,
        Some(_) => return Verdict::Skipped,
        None => {}
    }
    if WorkloadKind::from_group_kind(group, kind).is_none() {
        return Verdict::NotAWorkload;
    }
    let denies = decision
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny);
    if !decision.allowed || denies {
        Verdict::Deny
    } else if decision.findings.iter().any(|f| f.effect == Effect::Warn) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

fn metadata_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// Whether the object has an `ownerReference` with `controller: true`.
fn has_controller_owner(object: &Value) -> bool {
    object
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Labels of the `v1 Namespace` objects in the input, by name.
fn namespace_labels(entries: &[Entry]) -> HashMap<String, BTreeMap<String, String>> {
    let mut out = HashMap::new();
    for entry in entries {
        let Entry::Object(m) = entry else { continue };
        let o = &m.object;
        if o.get("apiVersion").and_then(Value::as_str) != Some("v1")
            || o.get("kind").and_then(Value::as_str) != Some("Namespace")
        {
            continue;
        }
        let Some(name) = metadata_str(o, "name") else {
            continue;
        };
        let labels: BTreeMap<String, String> = o
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        // Kubernetes sets this label on every namespace.
        let mut labels = labels;
        labels
            .entry("kubernetes.io/metadata.name".to_owned())
            .or_insert_with(|| name.to_owned());
        out.insert(name.to_owned(), labels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use read::read_str;

    #[test]
    fn namespace_labels_come_from_namespace_objects() {
        let entries = read_str(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels: {tier: gold}\n",
        );
        let labels = namespace_labels(&entries);
        assert_eq!(labels["prod"]["tier"], "gold");
        assert_eq!(labels["prod"]["kubernetes.io/metadata.name"], "prod");
    }

    #[test]
    fn controller_owner_detection() {
        let owned: Value = serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "name": "x", "controller": true}]}});
        let not_controller: Value = serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "name": "x"}]}});
        assert!(has_controller_owner(&owned));
        assert!(!has_controller_owner(&not_controller));
        assert!(!has_controller_owner(&serde_json::json!({})));
    }

    #[test]
    fn legacy_api_groups_are_judged_like_apps() {
        let policies = crate::lint::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        )
        .expect("policies");
        let spec =
            "spec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: app:1}\n";
        for api_version in [
            "apps/v1",
            "apps/v1beta2",
            "apps/v1beta1",
            "extensions/v1beta1",
        ] {
            for kind in ["Deployment", "DaemonSet", "ReplicaSet"] {
                let text = format!(
                    "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: web, namespace: demo}}\n{spec}"
                );
                let outcomes = judge(
                    &policies,
                    read_str("legacy.yaml", &text),
                    &JudgeOptions::default(),
                );
                let [Outcome::Judged(j)] = outcomes.as_slice() else {
                    panic!("one object: {outcomes:?}");
                };
                assert_eq!(j.verdict, Verdict::Deny, "{api_version} {kind}");
                assert!(
                    j.decision
                        .violations()
                        .any(|f| f.message == "no livenessProbe"),
                    "{api_version} {kind}: {:?}",
                    j.decision.findings
                );
            }
        }
        // Other kinds of the legacy group are not workloads.
        let ingress = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\n";
        let outcomes = judge(
            &policies,
            read_str("i.yaml", ingress),
            &JudgeOptions::default(),
        );
        let [Outcome::Judged(j)] = outcomes.as_slice() else {
            panic!("one object");
        };
        assert_eq!(j.verdict, Verdict::NotAWorkload);
    }

    #[test]
    fn non_workloads_are_not_workloads_whatever_the_engine_says() {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "Service"});
        let decision = Decision {
            allowed: true,
            ..Decision::default()
        };
        assert_eq!(verdict_of(&object, &decision), Verdict::NotAWorkload);
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(verdict_of(&deployment, &decision), Verdict::Pass);
        let denied = Decision {
            allowed: false,
            ..Decision::default()
        };
        assert_eq!(verdict_of(&deployment, &denied), Verdict::Deny);
    }
}
