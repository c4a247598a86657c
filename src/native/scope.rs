//! What a native policy object applies to: the resources and namespaces of a policy's `match`
//! (`matchConstraints`), the requests Portcullis never judges, `match`/`exclude` parts the
//! constraints cannot say, the namespaces where each mode of a schedule is in force, and the
//! exceptions in force — all as the API server's `matchConditions` and CEL.

use serde_json::{Value, json};

use super::cel;
use crate::engine::GARBAGE_COLLECTOR;
use crate::policy::model::{Mode, WorkloadKind};
use crate::policy::select::NAMESPACE_NAME_LABEL;
use crate::policy::{CompiledException, CompiledPolicy, PolicySet, Timestamp};

/// The resource (plural) of a workload kind.
fn resource(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Pod => "pods",
        WorkloadKind::Deployment => "deployments",
        WorkloadKind::StatefulSet => "statefulsets",
        WorkloadKind::DaemonSet => "daemonsets",
        WorkloadKind::ReplicaSet => "replicasets",
        WorkloadKind::Job => "jobs",
        WorkloadKind::CronJob => "cronjobs",
        WorkloadKind::ReplicationController => "replicationcontrollers",
    }
}

/// `resourceRules` for CREATE and UPDATE of `kinds` (every API version, converted to v1 by
/// `matchPolicy: Equivalent`; subresources are not listed, so never matched).
pub fn resource_rules(kinds: &[WorkloadKind]) -> Value {
    let mut rules = Vec::new();
    for group in ["", "apps", "batch"] {
        let resources: Vec<&str> = WorkloadKind::ALL
            .into_iter()
            .filter(|k| k.group() == group && kinds.contains(k))
            .map(resource)
            .collect();
        if !resources.is_empty() {
            rules.push(json!({
                "apiGroups": [group],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": resources,
                "scope": "Namespaced",
            }));
        }
    }
    Value::Array(rules)
}

/// `matchConstraints` of a policy: its kinds, and the namespaces its `match` selects by name
/// (without wildcards) and by label.
pub fn match_constraints(policy: &CompiledPolicy, kinds: &[WorkloadKind]) -> Value {
    let mut constraints = serde_json::Map::new();
    constraints.insert("matchPolicy".into(), json!("Equivalent"));
    let mut labels = serde_json::Map::new();
    let mut expressions: Vec<Value> = Vec::new();
    if let Some(sel) = &policy.match_.namespace_selector {
        for (k, v) in &sel.match_labels {
            labels.insert(k.clone(), json!(v));
        }
        for r in &sel.match_expressions {
            let mut e = json!({"key": r.key, "operator": format!("{:?}", r.operator)});
            if !r.values.is_empty() {
                e["values"] = json!(r.values);
            }
            expressions.push(e);
        }
    }
    if let Some(ns) = &policy.match_.namespaces {
        if !ns.include.is_empty() && !ns.include.iter().any(|p| cel::is_wildcard(p)) {
            expressions.push(json!({
                "key": NAMESPACE_NAME_LABEL, "operator": "In", "values": ns.include,
            }));
        }
        let exact: Vec<&String> = ns.exclude.iter().filter(|p| !cel::is_wildcard(p)).collect();
        if !exact.is_empty() {
            expressions.push(json!({
                "key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": exact,
            }));
        }
    }
    let mut selector = serde_json::Map::new();
    if !labels.is_empty() {
        selector.insert("matchLabels".into(), Value::Object(labels));
    }
    if !expressions.is_empty() {
        selector.insert("matchExpressions".into(), Value::Array(expressions));
    }
    if !selector.is_empty() {
        constraints.insert("namespaceSelector".into(), Value::Object(selector));
    }
    constraints.insert("resourceRules".into(), resource_rules(kinds));
    Value::Object(constraints)
}

/// A `matchConditions` entry.
pub fn condition(name: &str, expression: String) -> Value {
    json!({"name": name, "expression": expression})
}

/// The requests Portcullis (and deploy/'s webhook configurations) never judge nor mutate:
/// mirror Pods from kubelets, deletion (the garbage collector's updates, updates of an object
/// already being deleted), and, unless `owned` is false, objects a trusted controller writes
/// under a controller `ownerReference` (judged, and mutated, at their owner). One condition:
/// the API server runs each condition as its own program.
pub fn never_judged(set: &PolicySet, owned: bool) -> Value {
    let mut skips = vec![
        "request.userInfo.username.startsWith('system:node:')".to_owned(),
        format!(
            "request.userInfo.username == {}",
            cel::string(GARBAGE_COLLECTOR)
        ),
        "request.operation == 'UPDATE' && has(object.metadata.deletionTimestamp)".to_owned(),
    ];
    if owned {
        skips.push(controller_owned(set));
    }
    condition("portcullis-judges", format!("!({})", cel::or(&skips)))
}

/// Objects a trusted controller writes under a controller `ownerReference`: judged (and
/// mutated) at their owner already.
pub fn controller_owned(set: &PolicySet) -> String {
    format!(
        "request.userInfo.username in {} && has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller == true)",
        cel::string_list(&set.trusted_controllers)
    )
}

/// The `matchConditions` of a policy's selection: the parts of `match` the constraints
/// cannot say, and `exclude`.
pub fn selection_conditions(policy: &CompiledPolicy) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(c) = cel::match_condition(&policy.match_) {
        out.push(condition("policy-match", c));
    }
    if let Some(e) = &policy.exclude {
        out.push(condition(
            "policy-exclude",
            format!("!({})", cel::exclude_selects(e)),
        ));
    }
    out
}

/// Where each mode of a policy is in force at `time`: one entry per mode (never `off`), with
/// the CEL condition on the request's namespace (`None`: every namespace). The last schedule
/// step that has started and selects a namespace decides; `spec.mode` where none does.
pub fn mode_regions(policy: &CompiledPolicy, time: Timestamp) -> Vec<(Mode, Option<String>)> {
    let mut regions: Vec<(Mode, Vec<String>)> = Vec::new();
    let mut not_earlier: Vec<String> = Vec::new();
    let mut everywhere = false;
    for step in policy.schedule.iter().rev().filter(|s| s.from <= time) {
        match cel::step_selects(step) {
            None => {
                regions.push((step.mode, not_earlier.clone()));
                everywhere = true;
                break;
            }
            Some(sel) => {
                let mut terms = not_earlier.clone();
                terms.push(sel.clone());
                regions.push((step.mode, terms));
                not_earlier.push(format!("!({sel})"));
            }
        }
    }
    if !everywhere {
        regions.push((policy.mode, not_earlier));
    }
    let mut by_mode: Vec<(Mode, Option<Vec<String>>)> = Vec::new();
    for (mode, terms) in regions {
        if mode == Mode::Off {
            continue;
        }
        let condition = cel::and(&terms);
        match by_mode.iter_mut().find(|(m, _)| *m == mode) {
            Some((_, Some(conds))) if !terms.is_empty() => conds.push(condition),
            Some((_, any)) => *any = None,
            None => by_mode.push((mode, (!terms.is_empty()).then(|| vec![condition]))),
        }
    }
    by_mode.sort_by_key(|(m, _)| *m);
    by_mode
        .into_iter()
        .map(|(m, conds)| (m, conds.map(|c| cel::or(&c))))
        .collect()
}

/// The exceptions in force at `time` that name `policy`.
pub fn exceptions_in_force<'s>(
    set: &'s PolicySet,
    policy: &str,
    time: Timestamp,
) -> Vec<&'s CompiledException> {
    set.exceptions
        .iter()
        .map(AsRef::as_ref)
        .filter(|e| e.in_force(time) && e.names_policy(policy))
        .collect()
}

/// Whether exception `e` covers findings of `policy`'s `rule` (any container).
pub fn names_rule(e: &CompiledException, policy: &str, rule: &str) -> bool {
    e.policies
        .iter()
        .any(|p| p.name == policy && (p.rules.is_empty() || p.rules.iter().any(|r| r == rule)))
}

/// When the export of `policy` stops being right on its own: the next schedule step, or the
/// expiry of an exception in force that names it.
pub fn next_change(set: &PolicySet, policy: &CompiledPolicy, time: Timestamp) -> Option<Timestamp> {
    let expiries = exceptions_in_force(set, &policy.name, time)
        .into_iter()
        .map(|e| e.info.expires);
    policy.next_change(time).into_iter().chain(expiries).min()
}

/// The binding's `matchResources`: never the namespaces the webhook never sees either.
pub fn binding_match_resources(excluded_namespaces: &[String]) -> Option<Value> {
    (!excluded_namespaces.is_empty()).then(|| {
        json!({"namespaceSelector": {"matchExpressions": [{
            "key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": excluded_namespaces,
        }]}})
    })
}
