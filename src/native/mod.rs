//! Export to native admission policies: a policy set, at a time, as ValidatingAdmissionPolicy
//! and MutatingAdmissionPolicy objects (with their bindings) the API server evaluates itself,
//! with no network hop to the webhook; and the list of what stays with the webhook, and why.
//!
//! [`export`] is pure (the caller reads the clock and chooses the API version), so the same
//! set, time and options always give the same objects: `portcullis policy export` prints
//! them, and an in-cluster sync can apply them.

mod cel;
mod cel_rules;
mod mutating;
mod scope;
mod validating;

use serde_json::{Value, json};

use crate::policy::model::{Mode, WorkloadKind};
use crate::policy::{
    CompiledException, CompiledPolicy, CompiledRule, PolicySet, Timestamp, selected_kinds,
};

/// The API group of admission policies.
pub const GROUP: &str = "admissionregistration.k8s.io";
/// The label every exported object carries (`portcullis`), so a sync finds what it owns.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The label naming the Portcullis policy an object comes from.
pub const POLICY_LABEL: &str = "portcullis.dev/policy";
/// The annotation of an object several policies share, naming them (`a, b`), in the order of
/// its validations; its [`POLICY_LABEL`] is then the object's name.
pub const POLICIES: &str = "portcullis.dev/policies";
/// The annotation naming when the object stops being right by itself (a schedule step or an
/// exception's expiry): export again then.
pub const VALID_UNTIL: &str = "portcullis.dev/valid-until";
/// The namespaces deploy/'s webhook configurations never send, left out of every binding too.
pub const DEFAULT_EXCLUDED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "portcullis-system",
];

/// The API version of MutatingAdmissionPolicy to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutatingVersion {
    /// `v1alpha1`: Kubernetes 1.32 and 1.33, behind the `MutatingAdmissionPolicy` feature gate.
    V1alpha1,
    /// `v1beta1`: Kubernetes 1.34 and 1.35.
    V1beta1,
    /// `v1`: Kubernetes 1.36 on.
    V1,
}

impl MutatingVersion {
    /// Every version, newest first (the order a cluster's served versions are tried in).
    pub const ALL: [MutatingVersion; 3] = [
        MutatingVersion::V1,
        MutatingVersion::V1beta1,
        MutatingVersion::V1alpha1,
    ];

    /// `v1alpha1`, `v1beta1`, `v1`.
    pub fn as_str(self) -> &'static str {
        match self {
            MutatingVersion::V1alpha1 => "v1alpha1",
            MutatingVersion::V1beta1 => "v1beta1",
            MutatingVersion::V1 => "v1",
        }
    }
}

impl std::str::FromStr for MutatingVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        MutatingVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown version {s:?}: expected v1alpha1, v1beta1 or v1"))
    }
}

/// How to export.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time the export is right at: exceptions in force, schedule steps started.
    pub time: Timestamp,
    /// The MutatingAdmissionPolicy version, `None` for no mutating objects (the mutation
    /// rules stay with the webhook).
    pub mutating: Option<MutatingVersion>,
    /// Namespaces no binding applies to.
    pub excluded_namespaces: Vec<String>,
}

/// A rule (or policy) that is not exported, and why: it stays with the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotExported {
    /// The policy.
    pub policy: String,
    /// The rule type (`injectSidecar`), `None` for the whole policy.
    pub rule: Option<&'static str>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for NotExported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            Some(r) => write!(f, "{} {r}: {}", self.policy, self.reason),
            None => write!(f, "{}: {}", self.policy, self.reason),
        }
    }
}

/// A rule the API server enforces once the objects are applied: what the webhook may leave
/// to it (the in-cluster sync's concern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The policy.
    pub policy: String,
    /// The rule's index in the policy.
    pub rule: usize,
    /// The rule type.
    pub rule_type: &'static str,
    /// The names of the objects that enforce it (each the name of a policy object and of
    /// its binding).
    pub objects: Vec<String>,
    /// The kinds of those objects: the policy's and the binding's
    /// (`ValidatingAdmissionPolicy`, `ValidatingAdmissionPolicyBinding`, or the mutating pair).
    pub kinds: [&'static str; 2],
}

/// The kinds of the validating objects: policy, binding.
pub const VALIDATING_KINDS: [&str; 2] = [
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];
/// The kinds of the mutating objects: policy, binding.
pub const MUTATING_KINDS: [&str; 2] = ["MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"];

/// What an export gives.
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// The objects, in a stable order: the validating policies and their bindings (in the set
    /// order of their first policy; policies of one mode applying to the same requests share
    /// one), then per policy (set order) the mutating policy and its binding.
    pub objects: Vec<Value>,
    /// The rules exported.
    pub exported: Vec<Exported>,
    /// What is not exported, per policy and rule, with the reason.
    pub not_exported: Vec<NotExported>,
    /// The first time after [`Options::time`] at which the export changes (a schedule step,
    /// an exception's expiry).
    pub next_change: Option<Timestamp>,
}

/// The name of a policy's objects: `portcullis-NAME`, with the mode when the policy is in
/// force in several modes (a schedule's steps in some namespaces).
fn object_name(policy: &str, mode: Mode, several: bool) -> String {
    if several {
        format!("portcullis-{policy}-{}", mode.as_str())
    } else {
        format!("portcullis-{policy}")
    }
}

fn metadata(name: &str, policy: &CompiledPolicy, valid_until: Option<Timestamp>) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "portcullis.dev/source".into(),
        json!(policy.source.to_string()),
    );
    if let Some(t) = valid_until {
        annotations.insert(VALID_UNTIL.into(), json!(t.to_string()));
    }
    json!({
        "name": name,
        "labels": {MANAGED_BY: "portcullis", POLICY_LABEL: policy.name},
        "annotations": annotations,
    })
}

fn validation_actions(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "Deny",
        Mode::Warn => "Warn",
        Mode::Audit | Mode::Off => "Audit",
    }
}

/// Exports a policy set at `options.time`. Pure.
pub fn export(set: &PolicySet, options: &Options) -> Export {
    let mut out = Export::default();
    let mut parts = Vec::new();
    for policy in set.policies.iter().map(AsRef::as_ref) {
        export_policy(set, policy, options, &mut out, &mut parts);
    }
    let binding_resources = scope::binding_match_resources(&options.excluded_namespaces);
    let mut validating = Vec::new();
    for group in shared(parts) {
        let name = validating_object(&group, binding_resources.as_ref(), &mut validating);
        for part in &group {
            for e in out.exported.iter_mut().filter(|e| {
                e.kinds == VALIDATING_KINDS
                    && e.policy == part.policy.name
                    && !e.objects.contains(&name)
            }) {
                e.objects.push(name.clone());
            }
        }
    }
    validating.append(&mut out.objects);
    out.objects = validating;
    out
}

/// One policy's validation rules in one mode, before they become objects.
struct Part<'a> {
    policy: &'a CompiledPolicy,
    mode: Mode,
    exceptions: Vec<&'a CompiledException>,
    /// The name of its object when it has one alone.
    name: String,
    constraints: Value,
    conditions: Vec<Value>,
    valid_until: Option<Timestamp>,
}

/// The parts, grouped (in the order of their first part) so that parts of the same mode
/// applying to the same requests (`matchConstraints`, `matchConditions`) share one object:
/// the API server's fixed cost per policy object (its match conditions, and the object
/// converted for each of its evaluations) is paid once for them.
fn shared(parts: Vec<Part<'_>>) -> Vec<Vec<Part<'_>>> {
    let mut groups: Vec<Vec<Part<'_>>> = Vec::new();
    for part in parts {
        match groups.iter_mut().find(|g| {
            g[0].mode == part.mode
                && g[0].constraints == part.constraints
                && g[0].conditions == part.conditions
        }) {
            Some(g) => g.push(part),
            None => groups.push(vec![part]),
        }
    }
    groups
}

/// The name of an object several policies share: `portcullis.MODE`, then `portcullis.MODE.2`,
/// ... for further groups of the same mode (a dot, which no policy name has, so it never
/// meets the name of a policy's own object).
fn shared_name(mode: Mode, taken: &[Value]) -> String {
    let base = format!("portcullis.{}", mode.as_str());
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                format!("{base}.{n}")
            }
        })
        .find(|name| !taken.iter().any(|o| o["metadata"]["name"] == name.as_str()))
        .unwrap_or(base)
}

/// The ValidatingAdmissionPolicy and binding of a group of parts, appended to `out`: one
/// validation per policy, in set order, each with its own variables (named with the policy's
/// index in the group appended when there are several) and the shared ones once. Returns the
/// objects' name.
fn validating_object(
    group: &[Part<'_>],
    binding_resources: Option<&Value>,
    out: &mut Vec<Value>,
) -> String {
    let first = &group[0];
    let alone = group.len() == 1;
    let mut variables: Vec<Value> = Vec::new();
    let mut validations: Vec<Value> = Vec::new();
    for (i, part) in group.iter().enumerate() {
        let tag = if alone {
            String::new()
        } else {
            format!("_{i}")
        };
        let Some((vars, vals)) =
            validating::validations(part.policy, part.mode, &part.exceptions, &tag)
        else {
            continue;
        };
        for v in vars {
            if !variables.contains(&v) {
                variables.push(v);
            }
        }
        validations.extend(vals);
    }
    let valid_until = group.iter().filter_map(|p| p.valid_until).min();
    let (name, metadata) = if alone {
        (
            first.name.clone(),
            metadata(&first.name, first.policy, valid_until),
        )
    } else {
        let name = shared_name(first.mode, out);
        let names: Vec<&str> = group.iter().map(|p| p.policy.name.as_str()).collect();
        let sources: Vec<String> = group.iter().map(|p| p.policy.source.to_string()).collect();
        let mut annotations = serde_json::Map::new();
        annotations.insert(POLICIES.into(), json!(names.join(", ")));
        annotations.insert("portcullis.dev/source".into(), json!(sources.join(", ")));
        if let Some(t) = valid_until {
            annotations.insert(VALID_UNTIL.into(), json!(t.to_string()));
        }
        let metadata = json!({
            "name": name,
            "labels": {MANAGED_BY: "portcullis", POLICY_LABEL: name},
            "annotations": annotations,
        });
        (name, metadata)
    };
    out.push(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata,
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": first.constraints,
            "matchConditions": first.conditions,
            "variables": variables,
            "validations": validations,
        },
    }));
    let mut spec = json!({
        "policyName": name,
        "validationActions": [validation_actions(first.mode)],
    });
    if let Some(m) = binding_resources {
        spec["matchResources"] = m.clone();
    }
    out.push(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata,
        "spec": spec,
    }));
    name
}

fn export_policy<'a>(
    set: &'a PolicySet,
    policy: &'a CompiledPolicy,
    options: &Options,
    out: &mut Export,
    parts: &mut Vec<Part<'a>>,
) {
    let time = options.time;
    let regions = scope::mode_regions(policy, time);
    if regions.is_empty() {
        return; // `off` (now): nothing to enforce.
    }
    let valid_until = scope::next_change(set, policy, time);
    if let Some(t) = valid_until {
        out.next_change = Some(out.next_change.map_or(t, |n| n.min(t)));
    }
    let exceptions = scope::exceptions_in_force(set, &policy.name, time);
    let kinds: Vec<WorkloadKind> = selected_kinds(&policy.match_);
    let several = regions.len() > 1;
    let binding_resources = scope::binding_match_resources(&options.excluded_namespaces);
    let selection = scope::selection_conditions(policy);

    let validation_rules: Vec<(usize, &CompiledRule)> = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_mutation() && cel_rules::unsupported(r).is_none())
        .collect();
    for rule in &policy.rules {
        if let Some(reason) = cel_rules::unsupported(rule) {
            out.not_exported.push(NotExported {
                policy: policy.name.clone(),
                rule: Some(rule.type_name()),
                reason: format!("{reason}; the webhook evaluates the rule"),
            });
        }
    }
    if !validation_rules.is_empty() {
        for (mode, region) in &regions {
            let mut conditions = vec![scope::never_judged(set, true)];
            conditions.extend(selection.iter().cloned());
            if let Some(r) = region {
                conditions.push(scope::condition("policy-mode-in-force", r.clone()));
            }
            parts.push(Part {
                policy,
                mode: *mode,
                exceptions: exceptions.clone(),
                name: object_name(&policy.name, *mode, several),
                constraints: scope::match_constraints(policy, &kinds),
                conditions,
                valid_until,
            });
        }
    }
    // The objects' names are known once the parts are grouped ([`export`]).
    for (index, rule) in &validation_rules {
        out.exported.push(Exported {
            policy: policy.name.clone(),
            rule: *index,
            rule_type: rule.type_name(),
            objects: Vec::new(),
            kinds: VALIDATING_KINDS,
        });
    }

    let mutation_rules: Vec<(usize, &CompiledRule)> = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_mutation())
        .collect();
    if mutation_rules.is_empty() {
        return;
    }
    let lenient: Vec<&str> = regions
        .iter()
        .filter(|(m, _)| *m != Mode::Enforce)
        .map(|(m, _)| m.as_str())
        .collect();
    for (_, rule) in &mutation_rules {
        if !lenient.is_empty() {
            out.not_exported.push(NotExported {
                policy: policy.name.clone(),
                rule: Some(rule.type_name()),
                reason: format!(
                    "in {} mode the mutation is only described (warnings, reports), which an admission policy cannot do; the webhook does it",
                    lenient.join(" and ")
                ),
            });
        }
    }
    let Some(enforce_region) = regions
        .iter()
        .find(|(m, _)| *m == Mode::Enforce)
        .map(|(_, r)| r)
    else {
        return;
    };
    let Some(version) = options.mutating else {
        for (_, rule) in &mutation_rules {
            out.not_exported.push(NotExported {
                policy: policy.name.clone(),
                rule: Some(rule.type_name()),
                reason: "no MutatingAdmissionPolicy API version was chosen (--mutating-api-version, or --cluster to use the one the cluster serves); the webhook mutates".to_owned(),
            });
        }
        return;
    };
    let rules: Vec<&CompiledRule> = mutation_rules.iter().map(|(_, r)| *r).collect();
    let Some((variables, mutations)) = mutating::mutations(&policy.name, &rules, &exceptions, set)
    else {
        return;
    };
    let name = object_name(&policy.name, Mode::Enforce, false);
    // Controller-owned objects are skipped per rule (a `target: pod` sidecar wants them).
    let mut conditions = vec![scope::never_judged(set, false)];
    conditions.extend(selection);
    if let Some(r) = enforce_region {
        conditions.push(scope::condition("policy-mode-in-force", r.clone()));
    }
    let api_version = format!("{GROUP}/{}", version.as_str());
    out.objects.push(json!({
        "apiVersion": api_version,
        "kind": "MutatingAdmissionPolicy",
        "metadata": metadata(&name, policy, valid_until),
        "spec": {
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": scope::match_constraints(policy, &kinds),
            "matchConditions": conditions,
            "variables": variables,
            "mutations": mutations,
        },
    }));
    let mut spec = json!({"policyName": name});
    if let Some(m) = &binding_resources {
        spec["matchResources"] = m.clone();
    }
    out.objects.push(json!({
        "apiVersion": api_version,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": metadata(&name, policy, valid_until),
        "spec": spec,
    }));
    for (index, rule) in &mutation_rules {
        out.exported.push(Exported {
            policy: policy.name.clone(),
            rule: *index,
            rule_type: rule.type_name(),
            objects: vec![name.clone()],
            kinds: MUTATING_KINDS,
        });
    }
}

/// The objects as a YAML stream (`---` between documents): the one place export output is
/// serialized, so it follows the project's YAML writer.
pub fn to_yaml(objects: &[Value]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(o)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: probes}
spec:
  mode: warn
  schedule:
    - {from: 2026-03-01, mode: enforce, namespaces: {include: [team-a]}}
    - {from: 2026-09-01, mode: enforce}
  rules: [{requireProbes: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: quiet}
spec:
  mode: "off"
  rules: [{requireResources: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: labels}
spec:
  mode: enforce
  rules: [{defaultLabels: {labels: {team: platform}}}]
"#;

    fn set() -> PolicySet {
        crate::policy::load::compile_str(std::path::Path::new("set.yaml"), SET).expect("set")
    }

    fn at(date: &str) -> Options {
        Options {
            time: date.parse().expect("date"),
            mutating: Some(MutatingVersion::V1beta1),
            excluded_namespaces: vec!["kube-system".to_owned()],
        }
    }

    fn names(e: &Export) -> Vec<(String, String)> {
        e.objects
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or("").to_owned(),
                    o["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_schedule_exports_its_current_step() {
        let set = set();
        let before = export(&set, &at("2026-01-01"));
        assert_eq!(
            names(&before)[..2],
            [
                (
                    "ValidatingAdmissionPolicy".to_owned(),
                    "portcullis-probes".to_owned()
                ),
                (
                    "ValidatingAdmissionPolicyBinding".to_owned(),
                    "portcullis-probes".to_owned()
                ),
            ]
        );
        assert_eq!(before.objects[1]["spec"]["validationActions"][0], "Warn");
        assert_eq!(
            before.next_change,
            Some("2026-03-01".parse().expect("date"))
        );
        let during = export(&set, &at("2026-06-01"));
        let vaps: Vec<String> = names(&during)
            .into_iter()
            .filter(|(k, _)| k == "ValidatingAdmissionPolicy")
            .map(|(_, n)| n)
            .collect();
        assert_eq!(
            vaps,
            ["portcullis-probes-enforce", "portcullis-probes-warn"]
        );
        let enforce = &during.objects[0]["spec"]["matchConditions"];
        let last = &enforce[enforce.as_array().expect("conditions").len() - 1];
        assert_eq!(last["name"], "policy-mode-in-force");
        assert_eq!(last["expression"], "request.namespace in ['team-a']");
        let after = export(&set, &at("2026-10-01"));
        assert_eq!(after.objects[1]["spec"]["validationActions"][0], "Deny");
        assert_eq!(after.next_change, None);
    }

    #[test]
    fn off_policies_export_nothing_and_the_rest_is_accounted_for() {
        let e = export(&set(), &at("2026-10-01"));
        assert!(!names(&e).iter().any(|(_, n)| n.contains("quiet")));
        let exported: Vec<(&str, &str)> = e
            .exported
            .iter()
            .map(|x| (x.policy.as_str(), x.rule_type))
            .collect();
        assert_eq!(
            exported,
            [("probes", "requireProbes"), ("labels", "defaultLabels")]
        );
        assert!(e.not_exported.is_empty(), "{:?}", e.not_exported);
        let mutating = &e.objects[2];
        assert_eq!(mutating["kind"], "MutatingAdmissionPolicy");
        assert_eq!(
            mutating["apiVersion"],
            "admissionregistration.k8s.io/v1beta1"
        );
        // Deterministic.
        assert_eq!(
            to_yaml(&e.objects).expect("yaml"),
            to_yaml(&export(&set(), &at("2026-10-01")).objects).expect("yaml")
        );
    }

    #[test]
    fn policies_of_one_mode_and_selection_share_an_object() {
        let text = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: probes}
spec:
  mode: enforce
  rules: [{requireProbes: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: tags}
spec:
  mode: warn
  rules: [{requireImageTag: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: resources}
spec:
  mode: enforce
  rules: [{requireResources: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: team-only}
spec:
  mode: enforce
  match: {namespaces: {include: [team-a]}}
  rules: [{requireLabels: {labels: [team]}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: PolicyException
metadata: {name: legacy}
spec:
  owner: platform
  reason: migrating
  expires: 2027-01-01
  policies: [{name: resources}]
  match: {namespaces: [legacy]}
"#;
        let set =
            crate::policy::load::compile_str(std::path::Path::new("set.yaml"), text).expect("set");
        let e = export(&set, &at("2026-10-01"));
        let vaps: Vec<String> = names(&e)
            .into_iter()
            .filter(|(k, _)| k == "ValidatingAdmissionPolicy")
            .map(|(_, n)| n)
            .collect();
        // probes and resources share one; tags (warn) and team-only (other namespaces) not.
        assert_eq!(
            vaps,
            [
                "portcullis.enforce",
                "portcullis-tags",
                "portcullis-team-only"
            ]
        );
        let shared = &e.objects[0];
        assert_eq!(
            shared["metadata"]["annotations"][POLICIES],
            "probes, resources"
        );
        assert_eq!(
            shared["metadata"]["labels"][POLICY_LABEL],
            "portcullis.enforce"
        );
        assert_eq!(e.objects[1]["spec"]["policyName"], "portcullis.enforce");
        assert_eq!(e.objects[1]["spec"]["validationActions"][0], "Deny");
        // One validation per policy, each reading its own variables; the shared ones once.
        let validations = shared["spec"]["validations"]
            .as_array()
            .expect("validations");
        assert_eq!(validations.len(), 2);
        assert!(
            validations[0]["expression"]
                .as_str()
                .is_some_and(|x| x.ends_with("size(variables.found_0) == 0"))
        );
        assert!(
            validations[1]["expression"]
                .as_str()
                .is_some_and(|x| x.ends_with("size(variables.found_1) == 0"))
        );
        let variables: Vec<&str> = shared["spec"]["variables"]
            .as_array()
            .expect("variables")
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(
            variables,
            [
                "spec",
                "specPath",
                "workload",
                "oldSpec",
                "old_0",
                "found_0",
                "exception0_1",
                "old_1",
                "found_1"
            ]
        );
        // Each rule names the object that enforces it.
        for x in &e.exported {
            let want = match x.policy.as_str() {
                "probes" | "resources" => "portcullis.enforce".to_owned(),
                p => format!("portcullis-{p}"),
            };
            assert_eq!(x.objects, [want], "{x:?}");
        }
    }

    #[test]
    fn cel_rules_of_policies_sharing_an_object_keep_their_own_variables() {
        let policy = |name: &str, registry: &str| {
            format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  mode: enforce\n  rules:\n    - cel:\n        forEachContainer: true\n        variables: [{{name: registry, expression: \"'{registry}/'\"}}]\n        validations: [{{expression: 'container.image.startsWith(variables.registry)'}}]\n"
            )
        };
        let text = format!(
            "{}---\n{}",
            policy("a", "one.example"),
            policy("b", "two.example")
        );
        let set =
            crate::policy::load::compile_str(std::path::Path::new("set.yaml"), &text).expect("set");
        let e = export(&set, &at("2026-10-01"));
        let shared = &e.objects[0];
        assert_eq!(shared["metadata"]["name"], "portcullis.enforce");
        let variables = shared["spec"]["variables"].as_array().expect("variables");
        let mut names: Vec<&str> = variables
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "one name per variable: {variables:#?}");
        // Each policy's validation reads its own registry.
        let registry = |n: &str| {
            variables
                .iter()
                .find(|v| v["name"] == n)
                .and_then(|v| v["expression"].as_str())
                .map(str::to_owned)
        };
        assert_eq!(
            registry("cel0_0_registry").as_deref(),
            Some("'one.example/'")
        );
        assert_eq!(
            registry("cel0_1_registry").as_deref(),
            Some("'two.example/'")
        );
        // Every variable an expression reads is declared (the API server refuses the object
        // otherwise): the ratchet's `old`, the findings' `found`, each with its policy's tag.
        let mut texts: Vec<&str> = variables
            .iter()
            .filter_map(|v| v["expression"].as_str())
            .collect();
        for v in shared["spec"]["validations"]
            .as_array()
            .expect("validations")
        {
            texts.extend(v["expression"].as_str());
            texts.extend(v["messageExpression"].as_str());
        }
        for text in texts {
            // Outside string literals (a message may quote the rule's own expression).
            let chars: Vec<char> = text.chars().collect();
            let mut code = String::new();
            let mut i = 0;
            while let Some(&c) = chars.get(i) {
                if crate::policy::cel_text::is_quote(c) {
                    i = crate::policy::cel_text::literal_end(&chars, i).unwrap_or(chars.len());
                } else {
                    code.push(c);
                    i += 1;
                }
            }
            let text = code.as_str();
            for (at, _) in text.match_indices("variables.") {
                let name: String = text[at + "variables.".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    names.contains(&name.as_str()),
                    "`variables.{name}` is not declared"
                );
            }
        }
    }

    #[test]
    fn mutations_without_a_version_are_listed_not_dropped() {
        let mut options = at("2026-10-01");
        options.mutating = None;
        let e = export(&set(), &options);
        assert_eq!(e.not_exported.len(), 1);
        assert_eq!(e.not_exported[0].policy, "labels");
        assert_eq!(e.not_exported[0].rule, Some("defaultLabels"));
        assert!(!names(&e).iter().any(|(k, _)| k.starts_with("Mutating")));
    }
}
