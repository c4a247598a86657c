//! What the native sync does, decided without I/O: given what an export wants and the
//! admission policy objects Portcullis owns in the cluster, which objects to apply (missing, or
//! different from the export), which to delete (owned, but no longer exported), and which
//! exported rules the cluster's objects enforce exactly as exported, the only rules the webhook
//! may leave to the API server ([`confirmed`]), once the API server has had time to put them
//! in force ([`Settling`]).
//!
//! "The same" is what server-side apply can make true: every field the export sets has the
//! exported value in the cluster (labels, annotations, `spec`); fields the export does not set
//! (the API server's defaults, such as `matchPolicy`, or `status`) are not compared. An empty
//! list or map in the export matches a field the API server leaves out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::NativeRules;
use crate::native::{Export, MANAGED_BY, POLICY_LABEL};

/// An admission policy object in the cluster: its kind and name (all four kinds are
/// cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// `ValidatingAdmissionPolicy`, ...
    pub kind: String,
    /// `portcullis-require-probes`.
    pub name: String,
}

impl Key {
    /// The key of an object (`None` without kind or name).
    pub fn of(object: &Value) -> Option<Key> {
        Some(Key {
            kind: object.get("kind")?.as_str()?.to_owned(),
            name: object.pointer("/metadata/name")?.as_str()?.to_owned(),
        })
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// Whether Portcullis owns an object in the cluster: labelled
/// `app.kubernetes.io/managed-by: portcullis` and with a `portcullis.dev/policy` label. Only
/// such objects are ever deleted.
pub fn owned(object: &Value) -> bool {
    let labels = object.pointer("/metadata/labels");
    labels
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some("portcullis")
        && labels
            .and_then(|l| l.get(POLICY_LABEL))
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty())
}

/// What to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Objects to apply (server-side apply), in the export's order.
    pub applies: Vec<Value>,
    /// Owned objects to delete, in key order.
    pub deletes: Vec<Key>,
}

impl Plan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.applies.is_empty() && self.deletes.is_empty()
    }
}

/// What to write so that the cluster (`existing`: the owned objects there, by key) holds
/// exactly `desired` (an export's objects): the desired objects missing or not
/// [`in_place`], and the owned objects not desired. Nothing when the two agree.
pub fn plan(desired: &[Value], existing: &BTreeMap<Key, Value>) -> Plan {
    let mut wanted = std::collections::BTreeSet::new();
    let mut applies = Vec::new();
    for object in desired {
        let Some(key) = Key::of(object) else { continue };
        if !existing.get(&key).is_some_and(|e| in_place(object, e)) {
            applies.push(object.clone());
        }
        wanted.insert(key);
    }
    let deletes = existing
        .iter()
        .filter(|(k, v)| !wanted.contains(*k) && owned(v))
        .map(|(k, _)| k.clone())
        .collect();
    Plan { applies, deletes }
}

/// Whether `actual` (from the cluster) has what `desired` sets: its `apiVersion`, labels,
/// annotations and `spec`.
pub fn in_place(desired: &Value, actual: &Value) -> bool {
    desired.get("apiVersion") == actual.get("apiVersion")
        && ["labels", "annotations"].iter().all(|m| {
            contains(
                desired.pointer(&format!("/metadata/{m}")),
                actual.pointer(&format!("/metadata/{m}")),
            )
        })
        && contains(desired.get("spec"), actual.get("spec"))
}

/// Whether `actual` has every field `desired` sets, with the same value; lists must have the
/// same length, element by element. An empty (or null) value matches an absent one.
fn contains(desired: Option<&Value>, actual: Option<&Value>) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    match (desired, actual) {
        (None, _) => true,
        (Some(d), None) => empty(d),
        (Some(Value::Object(d)), Some(Value::Object(a))) => {
            d.iter().all(|(k, v)| contains(Some(v), a.get(k)))
        }
        (Some(Value::Array(d)), Some(Value::Array(a))) => {
            d.len() == a.len() && d.iter().zip(a).all(|(d, a)| contains(Some(d), Some(a)))
        }
        (Some(Value::Number(d)), Some(Value::Number(a))) => d.as_f64() == a.as_f64(),
        (Some(d), Some(a)) => d == a || (empty(d) && a.is_null()),
    }
}

/// Whether the API server has checked a ValidatingAdmissionPolicy as it is now: its status
/// is of its current generation and names no type-checking warning. Other kinds have no such
/// status: in place is all that can be known.
pub fn type_checked(actual: &Value) -> bool {
    if actual.get("kind").and_then(Value::as_str) != Some("ValidatingAdmissionPolicy") {
        return true;
    }
    let generation = actual
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = actual
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let warnings = actual
        .pointer("/status/typeChecking/expressionWarnings")
        .and_then(Value::as_array)
        .is_some_and(|w| !w.is_empty());
    generation.is_some() && observed >= generation && !warnings
}

/// The exported rules the cluster enforces as exported: every object that enforces them (the
/// policy object and its binding, per name) is in the cluster, [`in_place`] and
/// [`type_checked`]; per rule, those objects' `resourceVersion`s (what [`Settling`] times).
/// What the webhook may leave to the API server once settled; anything else (an object
/// missing, stale, of another content, not yet checked) it judges itself.
pub fn confirmed(
    export: &Export,
    existing: &BTreeMap<Key, Value>,
) -> BTreeMap<(String, usize), Vec<String>> {
    let desired: BTreeMap<Key, &Value> = export
        .objects
        .iter()
        .filter_map(|o| Some((Key::of(o)?, o)))
        .collect();
    // The object's version when it enforces as exported; `None` otherwise.
    let enforcing = |kind: &str, name: &str| {
        let key = Key {
            kind: kind.to_owned(),
            name: name.to_owned(),
        };
        match (desired.get(&key), existing.get(&key)) {
            (Some(d), Some(a)) if in_place(d, a) && type_checked(a) => Some(
                a.pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        }
    };
    export
        .exported
        .iter()
        .filter(|e| !e.objects.is_empty())
        .filter_map(|e| {
            let versions = e
                .objects
                .iter()
                .flat_map(|name| e.kinds.iter().map(move |kind| enforcing(kind, name)))
                .collect::<Option<Vec<String>>>()?;
            Some(((e.policy.clone(), e.rule), versions))
        })
        .collect()
}

/// How long the objects enforcing a rule must have been confirmed, unchanged, before the
/// webhook leaves the rule to the API server. Stored and type-checked is not yet in force: the
/// API server's admission plugin rebuilds its policies from its informers at most once a
/// second (`policyRefreshInterval` in k8s.io/apiserver's generic policy source) and compiles
/// them then. Until it has, a request is judged by the objects it had before (seen in CI: a
/// Pod admitted with the warning of a deleted `Warn` object a moment after its rule moved to a
/// `Deny` one). Three seconds cover the refresh with room for a loaded API server.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Since when each confirmed rule has been confirmed with the same objects (the same
/// `resourceVersion`s: the API server recompiles an object whenever its version changes,
/// status updates included). Pure: the clock is the caller's.
#[derive(Debug, Default)]
pub struct Settling {
    since: BTreeMap<(String, usize), (Vec<String>, Instant)>,
}

impl Settling {
    /// Takes the rules confirmed at `now` ([`confirmed`]); returns those confirmed
    /// with the same objects for [`SETTLE`] at least, and when the next of the others settles.
    /// A rule that is not confirmed, or whose objects changed, starts again.
    pub fn settled(
        &mut self,
        confirmed: BTreeMap<(String, usize), Vec<String>>,
        now: Instant,
    ) -> (NativeRules, Option<Instant>) {
        let mut since = BTreeMap::new();
        for (rule, versions) in confirmed {
            let from = match self.since.remove(&rule) {
                Some((seen, from)) if seen == versions => from,
                _ => now,
            };
            since.insert(rule, (versions, from));
        }
        self.since = since;
        let settled = self
            .since
            .iter()
            .filter(|(_, (_, from))| now.duration_since(*from) >= SETTLE)
            .map(|(rule, _)| rule.clone());
        let next = self
            .since
            .values()
            .map(|(_, from)| *from + SETTLE)
            .filter(|at| *at > now)
            .min();
        (NativeRules::new(settled), next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{MutatingVersion, Options};
    use serde_json::json;

    /// The rules [`confirmed`] gives, without their versions.
    fn confirmed_rules(export: &Export, existing: &BTreeMap<Key, Value>) -> NativeRules {
        NativeRules::new(confirmed(export, existing).into_keys())
    }

    const SET: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: probes}
spec:
  mode: enforce
  rules: [{requireProbes: {}}, {requireResources: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: labels}
spec:
  mode: enforce
  rules: [{defaultLabels: {labels: {team: platform}}}]
"#;

    fn export() -> Export {
        let set =
            crate::policy::load::compile_str(std::path::Path::new("set.yaml"), SET).expect("set");
        crate::native::export(
            &set,
            &Options {
                time: "2026-10-01".parse().expect("date"),
                mutating: Some(MutatingVersion::V1alpha1),
                excluded_namespaces: vec!["kube-system".to_owned()],
            },
        )
    }

    /// The objects as the API server stores them: defaults added, a generation, the status
    /// the type checker writes.
    fn stored(objects: &[Value]) -> BTreeMap<Key, Value> {
        objects
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o["metadata"]["generation"] = json!(1);
                o["metadata"]["resourceVersion"] = json!("42");
                if let Some(spec) = o["spec"].as_object_mut() {
                    spec.entry("matchPolicy").or_insert(json!("Equivalent"));
                }
                if o["kind"] == "ValidatingAdmissionPolicy" {
                    o["status"] = json!({"observedGeneration": 1, "typeChecking": {}});
                }
                (Key::of(&o).expect("key"), o)
            })
            .collect()
    }

    fn key(kind: &str, name: &str) -> Key {
        Key {
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn an_empty_cluster_gets_everything_and_nothing_is_confirmed() {
        let e = export();
        let p = plan(&e.objects, &BTreeMap::new());
        assert_eq!(p.applies, e.objects);
        assert!(p.deletes.is_empty());
        assert!(confirmed_rules(&e, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_cluster_that_agrees_gets_no_write_and_every_rule_is_confirmed() {
        let e = export();
        let cluster = stored(&e.objects);
        assert!(plan(&e.objects, &cluster).is_empty());
        let rules = confirmed_rules(&e, &cluster);
        assert_eq!(
            rules.iter().collect::<Vec<_>>(),
            [("labels", 0), ("probes", 0), ("probes", 1)]
        );
    }

    #[test]
    fn drift_is_applied_again_and_unconfirmed_until_repaired() {
        let e = export();
        let mut cluster = stored(&e.objects);
        let vap = key("ValidatingAdmissionPolicy", "portcullis-probes");
        cluster.get_mut(&vap).expect("vap")["spec"]["validations"][0]["expression"] = json!("true");
        let p = plan(&e.objects, &cluster);
        assert_eq!(p.applies.len(), 1);
        assert_eq!(Key::of(&p.applies[0]), Some(vap.clone()));
        let rules = confirmed_rules(&e, &cluster);
        assert!(!rules.contains("probes", 0) && !rules.contains("probes", 1));
        assert!(rules.contains("labels", 0), "the other policy is untouched");
        // An extra validation someone added: a list of another length is drift too.
        let mut cluster = stored(&e.objects);
        let validations = cluster.get_mut(&vap).expect("vap")["spec"]["validations"]
            .as_array_mut()
            .expect("validations");
        validations.push(json!({"expression": "false"}));
        assert_eq!(plan(&e.objects, &cluster).applies.len(), 1);
        // A binding missing: its rules are not enforced.
        let mut cluster = stored(&e.objects);
        cluster.remove(&key(
            "ValidatingAdmissionPolicyBinding",
            "portcullis-probes",
        ));
        assert!(!confirmed_rules(&e, &cluster).contains("probes", 0));
        assert_eq!(plan(&e.objects, &cluster).applies.len(), 1);
    }

    #[test]
    fn objects_of_policies_no_longer_exported_are_deleted_only_when_owned() {
        let e = export();
        let mut cluster = stored(&e.objects);
        let gone = json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "portcullis-old", "labels": {MANAGED_BY: "portcullis", POLICY_LABEL: "old"}},
            "spec": {}});
        let foreign = json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "someone-elses", "labels": {MANAGED_BY: "helm"}},
            "spec": {}});
        cluster.insert(Key::of(&gone).expect("key"), gone);
        cluster.insert(Key::of(&foreign).expect("key"), foreign);
        let p = plan(&e.objects, &cluster);
        assert!(p.applies.is_empty());
        assert_eq!(
            p.deletes,
            [key("ValidatingAdmissionPolicy", "portcullis-old")]
        );
    }

    #[test]
    fn a_policy_not_yet_type_checked_is_in_place_but_not_confirmed() {
        let e = export();
        let mut cluster = stored(&e.objects);
        let vap = key("ValidatingAdmissionPolicy", "portcullis-probes");
        let object = cluster.get_mut(&vap).expect("vap");
        object["metadata"]["generation"] = json!(2);
        assert!(plan(&e.objects, &cluster).is_empty(), "nothing to write");
        assert!(!confirmed_rules(&e, &cluster).contains("probes", 0));
        let object = cluster.get_mut(&vap).expect("vap");
        object["status"] = json!({"observedGeneration": 2,
            "typeChecking": {"expressionWarnings": [{"fieldRef": "spec.validations[0].expression", "warning": "no such key"}]}});
        assert!(
            !confirmed_rules(&e, &cluster).contains("probes", 0),
            "warnings"
        );
        cluster.get_mut(&vap).expect("vap")["status"] = json!({"observedGeneration": 2});
        assert!(confirmed_rules(&e, &cluster).contains("probes", 0));
    }

    #[test]
    fn a_rule_is_left_to_the_api_server_only_once_its_objects_have_settled() {
        let e = export();
        let mut cluster = stored(&e.objects);
        let mut settling = Settling::default();
        let t0 = Instant::now();
        let (rules, next) = settling.settled(confirmed(&e, &cluster), t0);
        assert!(rules.is_empty(), "just confirmed: not yet in force");
        assert_eq!(next, Some(t0 + SETTLE));
        let almost = t0 + SETTLE - Duration::from_millis(1);
        assert!(
            settling
                .settled(confirmed(&e, &cluster), almost)
                .0
                .is_empty()
        );
        let (rules, next) = settling.settled(confirmed(&e, &cluster), t0 + SETTLE);
        assert_eq!(rules, confirmed_rules(&e, &cluster));
        assert_eq!(next, None);
        // A new version of one object (a status update, a repair): its rules start again,
        // the others stay.
        let t1 = t0 + SETTLE * 2;
        let vap = key("ValidatingAdmissionPolicy", "portcullis-probes");
        cluster.get_mut(&vap).expect("vap")["metadata"]["resourceVersion"] = json!("43");
        let (rules, next) = settling.settled(confirmed(&e, &cluster), t1);
        assert_eq!(rules.iter().collect::<Vec<_>>(), [("labels", 0)]);
        assert_eq!(next, Some(t1 + SETTLE));
        // Unconfirmed for a moment (a binding gone), then back as it was: it starts again.
        let binding = key("MutatingAdmissionPolicyBinding", "portcullis-labels");
        let removed = cluster.remove(&binding).expect("binding");
        let t2 = t1 + SETTLE;
        let (rules, _) = settling.settled(confirmed(&e, &cluster), t2);
        assert_eq!(
            rules.iter().collect::<Vec<_>>(),
            [("probes", 0), ("probes", 1)]
        );
        cluster.insert(binding, removed);
        let (rules, _) = settling.settled(confirmed(&e, &cluster), t2);
        assert!(!rules.contains("labels", 0));
        let (rules, _) = settling.settled(confirmed(&e, &cluster), t2 + SETTLE);
        assert_eq!(rules, confirmed_rules(&e, &cluster));
    }

    #[test]
    fn containment_ignores_defaults_but_not_values() {
        let d = json!({"a": {"b": [1, {"c": "x"}]}, "e": []});
        let a = json!({"a": {"b": [1.0, {"c": "x", "scope": "*"}], "extra": true}});
        assert!(contains(Some(&d), Some(&a)));
        let changed = json!({"a": {"b": [1, {"c": "y"}]}});
        assert!(!contains(Some(&d), Some(&changed)));
        let shorter = json!({"a": {"b": [1]}});
        assert!(!contains(Some(&d), Some(&shorter)));
    }
}
