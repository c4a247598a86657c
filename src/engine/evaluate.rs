//! The evaluation pipeline: decide whether to judge, select policies, apply `enforce`
//! mutations to a working copy (mutating webhooks run before validating ones), judge the
//! result, ratchet UPDATEs against the stored object, and assemble the [`Decision`].

use json_patch::PatchOperation;
use serde_json::Value;

use super::decision::{Decision, Effect, Finding, FindingKind, Skip};
use super::{Operation, Request, images, labels, probes, resources, sidecar};
use crate::policy::model::{InjectionTarget, Mode, WorkloadKind};
use crate::policy::select::Subject;
use crate::policy::{CompiledPolicy, CompiledRule, PolicySet};
use crate::workload::Workload;

/// Something a rule found, before the policy's mode turns it into a [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub rule: &'static str,
    pub container: Option<String>,
    pub field: String,
    pub message: String,
    pub hint: String,
}

/// The planned changes of one mutation rule: patch operations and their descriptions.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub ops: Vec<PatchOperation>,
    pub changes: Vec<Found>,
}

fn finding(policy: &CompiledPolicy, kind: FindingKind, f: Found) -> Finding {
    let effect = match (policy.mode, kind) {
        (Mode::Enforce, FindingKind::Violation) => Effect::Deny,
        (Mode::Enforce, FindingKind::Mutation) => Effect::Apply,
        (Mode::Warn, _) => Effect::Warn,
        (Mode::Audit | Mode::Off, _) => Effect::Audit,
    };
    Finding {
        policy: policy.name.clone(),
        rule: f.rule,
        kind,
        mode: policy.mode,
        effect,
        container: f.container,
        field: f.field,
        message: f.message,
        hint: f.hint,
        pre_existing: false,
    }
}

/// Evaluates a request against a policy set. Pure: same inputs, same decision.
pub fn evaluate(set: &PolicySet, req: &Request<'_>) -> Decision {
    let fallback_name = || {
        let name = req.name.filter(|n| !n.is_empty()).unwrap_or("<unnamed>");
        match req.namespace.filter(|n| !n.is_empty()) {
            Some(ns) => format!("{} {ns}/{name}", req.kind),
            None => format!("{} {name}", req.kind),
        }
    };
    if matches!(req.operation, Operation::Delete | Operation::Connect) {
        return Decision::skip(fallback_name(), Skip::Operation(req.operation));
    }
    if let Some(sub) = req.sub_resource.filter(|s| !s.is_empty()) {
        return Decision::skip(fallback_name(), Skip::Subresource(sub.to_owned()));
    }
    let Some(kind) = WorkloadKind::from_group_kind(req.group, req.kind) else {
        return Decision::skip(fallback_name(), Skip::NotAWorkload);
    };
    let Some(object) = req.object else {
        return Decision::skip(fallback_name(), Skip::NoObject);
    };
    let workload = match Workload::new(kind, object) {
        Ok(w) => w,
        Err(e) => return Decision::skip(fallback_name(), Skip::Malformed(e.to_string())),
    };
    let namespace = req
        .namespace
        .filter(|n| !n.is_empty())
        .or(workload.namespace());
    let subject = Subject {
        kind,
        namespace,
        name: workload.name(),
        labels: workload.labels(),
        namespace_labels: req.namespace_labels,
    };
    let selected: Vec<&CompiledPolicy> = set
        .policies
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| p.mode != Mode::Off && p.selects(&subject))
        .collect();
    // Trust a controller ownerReference only when a controller identity sent the request.
    let owner = workload
        .controller_owner()
        .filter(|_| req.username.is_some_and(|u| set.is_trusted_controller(u)));

    let mut decision = Decision {
        workload: workload.display_name(namespace),
        allowed: true,
        policies: selected.iter().map(|p| p.name.clone()).collect(),
        ..Decision::default()
    };
    let (mutated, ops) = mutate(
        &selected,
        &Target {
            kind,
            namespace,
            controller_owned: owner.is_some(),
            operation: req.operation,
        },
        object,
        Some(&mut decision.findings),
    );
    decision.patch = json_patch::Patch(ops);
    if let Some((owner_kind, owner_name)) = owner {
        decision.skipped = Some(Skip::ControllerOwned {
            owner: format!("{owner_kind} {owner_name}"),
        });
        return decision;
    }

    let judged = mutated.as_ref().unwrap_or(object);
    let Ok(judged_view) = Workload::new(kind, judged) else {
        return decision; // Mutations only add; the view cannot disappear.
    };
    let violations = validate(&selected, &judged_view, namespace);

    // UPDATE ratchet: only violations the update introduces deny; the others warn.
    let before = match (req.operation, req.old_object) {
        (Operation::Update, Some(old)) => {
            let as_created = Target {
                kind,
                namespace,
                controller_owned: false,
                operation: Operation::Create,
            };
            let (old_mutated, _) = mutate(&selected, &as_created, old, None);
            Workload::new(kind, old_mutated.as_ref().unwrap_or(old))
                .map(|old_view| validate(&selected, &old_view, namespace))
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    for (policy, found) in violations {
        let pre_existing = before.iter().any(|(p, b)| {
            p.name == policy.name
                && b.rule == found.rule
                && b.container == found.container
                && b.message == found.message
        });
        let mut f = finding(policy, FindingKind::Violation, found);
        if pre_existing {
            f.pre_existing = true;
            if f.effect == Effect::Deny {
                f.effect = Effect::Warn;
            }
        }
        decision.findings.push(f);
    }
    decision.allowed = !decision
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny);
    decision
}

/// What the mutation rules need to know about the request.
struct Target<'a> {
    kind: WorkloadKind,
    namespace: Option<&'a str>,
    controller_owned: bool,
    operation: Operation,
}

impl Target<'_> {
    /// Pod specs, and a Job's pod template, are immutable: on UPDATE the apiserver rejects any
    /// change to them, so only metadata may be mutated.
    fn pod_spec_immutable(&self) -> bool {
        self.operation == Operation::Update
            && matches!(self.kind, WorkloadKind::Pod | WorkloadKind::Job)
    }
}

/// Runs the mutation rules in policy order. `enforce` plans are applied to a working copy
/// (cloned lazily) so later rules see earlier changes; `warn` and `audit` plans are only
/// described. Returns the working copy (if anything changed) and the patch operations.
fn mutate(
    selected: &[&CompiledPolicy],
    target: &Target<'_>,
    object: &Value,
    mut findings: Option<&mut Vec<Finding>>,
) -> (Option<Value>, Vec<PatchOperation>) {
    let Target {
        kind,
        namespace,
        controller_owned,
        ..
    } = *target;
    let immutable = target.pod_spec_immutable();
    let mut doc: Option<Value> = None;
    let mut ops = Vec::new();
    for policy in selected {
        for rule in &policy.rules {
            let applies = match rule {
                CompiledRule::InjectSidecar(s) => {
                    !immutable
                        && match s.target {
                            InjectionTarget::Template => !controller_owned,
                            InjectionTarget::Pod => kind == WorkloadKind::Pod,
                        }
                }
                CompiledRule::DefaultLabels(_) => !controller_owned,
                _ => false,
            };
            if !applies {
                continue;
            }
            let current = doc.as_ref().unwrap_or(object);
            let Ok(view) = Workload::new(kind, current) else {
                continue;
            };
            let plan = match rule {
                CompiledRule::InjectSidecar(s) => sidecar::plan(s, &view).ok(),
                CompiledRule::DefaultLabels(d) => {
                    // A Job's template metadata is immutable after creation; a Pod's is not.
                    let template_ok = !(immutable && kind == WorkloadKind::Job);
                    Some(labels::plan_defaults(d, &view, namespace, template_ok))
                }
                _ => None,
            };
            let Some(plan) = plan.filter(|p| !p.ops.is_empty()) else {
                continue;
            };
            if policy.mode == Mode::Enforce {
                let working = doc.get_or_insert_with(|| object.clone());
                // Plans are built against the working copy, so they apply; if one ever did
                // not, json_patch leaves the document untouched and the plan is dropped.
                if json_patch::patch(working, &plan.ops).is_err() {
                    continue;
                }
                ops.extend(plan.ops);
            }
            if let Some(out) = findings.as_deref_mut() {
                out.extend(
                    plan.changes
                        .into_iter()
                        .map(|c| finding(policy, FindingKind::Mutation, c)),
                );
            }
        }
    }
    (doc, ops)
}

/// Runs the validation rules of the selected policies against a workload.
fn validate<'p>(
    selected: &[&'p CompiledPolicy],
    w: &Workload<'_>,
    namespace: Option<&str>,
) -> Vec<(&'p CompiledPolicy, Found)> {
    let mut out = Vec::new();
    let mut found = Vec::new();
    for policy in selected {
        for rule in &policy.rules {
            match rule {
                CompiledRule::RequireProbes(r) => probes::check(r, w, &mut found),
                CompiledRule::RequireResources(r) => resources::check(r, w, &mut found),
                CompiledRule::RequireImageTag(r) => images::check(r, w, &mut found),
                CompiledRule::RequireLabels(r) => labels::check_required(r, w, &mut found),
                CompiledRule::DisallowNamespaces(r) => {
                    labels::check_namespace(r, namespace, &mut found)
                }
                CompiledRule::InjectSidecar(_) | CompiledRule::DefaultLabels(_) => {}
            }
        }
        out.extend(found.drain(..).map(|f| (*policy, f)));
    }
    out
}
