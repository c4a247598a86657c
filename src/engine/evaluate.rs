//! The evaluation pipeline: decide whether to judge, select policies, apply `enforce`
//! mutations to a working copy (mutating webhooks run before validating ones), judge the
//! result, ratchet UPDATEs against the stored object, and assemble the [`Decision`].

use crate::json::Json;

use super::cel_values::{Facts, Input};
use super::decision::{Decision, Effect, Finding, FindingKind, Skip};
use super::patch::{Patch, PatchOp};
use super::rule::{Context, Found};
use super::{NativeRules, Operation, Request, cel, images, labels, probes, resources, sidecar};
use crate::policy::model::{InjectionTarget, Mode, WorkloadKind};
use crate::policy::select::{NamespaceLabels, Selection, Subject};
use crate::policy::{CompiledException, CompiledPolicy, CompiledRule, PolicySet, Timestamp};
use crate::workload::{Additions, Workload};

/// A policy that selected the request, with the mode it runs in at the request's time and in
/// its namespace (its schedule applied).
#[derive(Debug, Clone, Copy)]
struct Active<'p> {
    policy: &'p CompiledPolicy,
    mode: Mode,
    /// When a later schedule step makes the policy `enforce` here.
    enforced_from: Option<Timestamp>,
}

/// A violation of a rule of a selected policy, before it becomes a [`Finding`].
#[derive(Debug)]
struct Violation<'p> {
    active: Active<'p>,
    /// The rule's position among the policy's rules (two rules of one type are two rules).
    rule: usize,
    /// The rule's type name.
    rule_type: &'static str,
    found: Found,
}

/// What makes two violations the same one, in the stored object and in the new one (UPDATE
/// ratchet), or with and without additions that depend on namespace labels: the same policy's
/// same rule, about the same container (by name: Kubernetes merges containers by name, and an
/// inserted container shifts the others' indexes, not their identity) and the same field of it.
/// Not the message: its text may quote a value (an image) that the update changed.
#[derive(Debug, PartialEq, Eq)]
struct Key<'a> {
    policy: &'a str,
    rule: usize,
    container: Option<&'a str>,
    field: &'a str,
    part: usize,
}

impl Violation<'_> {
    fn key(&self) -> Key<'_> {
        Key {
            policy: &self.active.policy.name,
            rule: self.rule,
            container: self.found.container.as_deref(),
            field: self.found.field_in_container(),
            part: self.found.part,
        }
    }
}

/// What a rule of `active` found, as a finding of kind `kind` with the effect of the policy's
/// mode.
fn finding(active: &Active<'_>, rule: &'static str, kind: FindingKind, f: Found) -> Finding {
    let effect = match (active.mode, kind) {
        (Mode::Enforce, FindingKind::Violation) => Effect::Deny,
        (Mode::Enforce, FindingKind::Mutation) => Effect::Apply,
        (Mode::Enforce, FindingKind::Notice) | (Mode::Warn, _) => Effect::Warn,
        (Mode::Audit | Mode::Off, _) => Effect::Audit,
    };
    Finding {
        policy: active.policy.name.clone(),
        rule,
        part: f.part,
        kind,
        mode: active.mode,
        effect,
        container: f.container,
        field: f.field,
        message: f.message,
        hint: f.hint,
        pre_existing: false,
        exception: None,
        enforced_from: active.enforced_from,
    }
}

/// The exception among `exceptions` (those in force that select the workload) covering a
/// finding of `policy`'s `rule` about `container`.
fn excepting<'e>(
    exceptions: &[&'e CompiledException],
    policy: &str,
    rule: &str,
    container: Option<&str>,
) -> Option<&'e CompiledException> {
    exceptions
        .iter()
        .copied()
        .find(|e| e.covers(policy, rule, container))
}

/// Marks a finding as excepted by `exception`.
fn except(f: &mut Finding, exception: &CompiledException) {
    f.effect = Effect::Excepted;
    f.exception = Some(exception.info.clone());
}

/// What the engine does with the policies that select a request but are `off` at its time (in
/// its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffPolicies {
    /// Leave them out, as the webhook does: they run nothing.
    #[default]
    Skip,
    /// Judge their validation rules as the other policies' rules are judged (the object as the
    /// `enforce` policies mutate it, exceptions applied) into [`Decision::off_violations`], so
    /// that a report can say what each would deny were it enforced. They decide nothing: not
    /// the verdict, the patch, the findings or the warnings.
    Measure,
}

/// Evaluates a request against a policy set. Pure: same inputs, same decision.
pub fn evaluate(set: &PolicySet, req: &Request<'_>) -> Decision {
    evaluate_with_native(set, req, &NativeRules::NONE)
}

/// [`evaluate`], leaving out the rules the API server enforces itself (`native`): they neither
/// find, deny, warn nor mutate here, and are listed in [`Decision::native`]. Pure.
pub fn evaluate_with_native(set: &PolicySet, req: &Request<'_>, native: &NativeRules) -> Decision {
    judge(set, req, native, OffPolicies::Skip)
}

/// [`evaluate`], with the policies that are `off` left out or measured (`off`). Whatever
/// `off` says, the decision's verdict, findings and patch are [`evaluate`]'s.
pub fn evaluate_with(set: &PolicySet, req: &Request<'_>, off: OffPolicies) -> Decision {
    judge(set, req, &NativeRules::NONE, off)
}

/// The evaluation: [`evaluate_with_native`] and [`evaluate_with`].
fn judge(set: &PolicySet, req: &Request<'_>, native: &NativeRules, off: OffPolicies) -> Decision {
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
    // Deletion never waits for a judgement (the webhook configurations skip these too).
    if req.username == Some(super::GARBAGE_COLLECTOR) {
        return Decision::skip(fallback_name(), Skip::GarbageCollector);
    }
    if req.operation == Operation::Update
        && object
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
    {
        return Decision::skip(fallback_name(), Skip::BeingDeleted);
    }
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
    let time = req.time;
    let known = match req.namespace_labels {
        NamespaceLabels::Known(labels) => Some(labels),
        NamespaceLabels::NameOnly | NamespaceLabels::Pending => None,
    };
    // Labels not known yet (a namespace not yet in the caller's cache): a policy whose
    // selection, schedule or exceptions depend on them runs at most in `warn` mode, so it
    // neither denies nor mutates what the real labels might not call for.
    let pending = req.namespace_labels == NamespaceLabels::Pending;
    let maybe_excepting: Vec<&CompiledException> = if pending {
        set.exceptions
            .iter()
            .map(AsRef::as_ref)
            .filter(|e| e.in_force(time) && e.selection(&subject) == Selection::Maybe)
            .collect()
    } else {
        Vec::new()
    };
    let mut labels_pending = Vec::new();
    // Selected, but `off` at this time here (measured only).
    let mut off_now: Vec<Active<'_>> = Vec::new();
    let selected: Vec<Active<'_>> = set
        .policies
        .iter()
        .map(AsRef::as_ref)
        .filter_map(|policy| {
            let selection = policy.selection(&subject);
            if selection == Selection::No {
                return None;
            }
            let mut mode = policy.mode_at(time, namespace, known);
            let uncertain = selection == Selection::Maybe
                || (pending
                    && (policy.schedule_selects_by_label()
                        || maybe_excepting.iter().any(|e| e.names_policy(&policy.name))));
            if uncertain {
                mode = mode.at_most(Mode::Warn);
            }
            if mode == Mode::Off {
                if off == OffPolicies::Measure {
                    off_now.push(Active {
                        policy,
                        mode,
                        enforced_from: policy.enforced_from(time, namespace, known),
                    });
                }
                return None;
            }
            if uncertain {
                labels_pending.push(policy.name.clone());
            }
            Some(Active {
                policy,
                mode,
                enforced_from: policy.enforced_from(time, namespace, known),
            })
        })
        .collect();
    // Exceptions in force that take in this workload (none in most sets: no cost then).
    let exceptions: Vec<&CompiledException> = if set.exceptions.is_empty() {
        Vec::new()
    } else {
        set.exceptions
            .iter()
            .map(AsRef::as_ref)
            .filter(|e| e.in_force(time) && e.selects(&subject))
            .collect()
    };
    // Trust a controller ownerReference only when a controller identity sent the request.
    let owner = workload
        .controller_owner()
        .filter(|_| req.username.is_some_and(|u| set.is_trusted_controller(u)));

    let mut decision = Decision {
        workload: workload.display_name(namespace),
        allowed: true,
        policies: selected.iter().map(|a| a.policy.name.clone()).collect(),
        labels_pending,
        native: if native.is_empty() {
            Vec::new()
        } else {
            selected
                .iter()
                .flat_map(|a| {
                    a.policy
                        .rules
                        .iter()
                        .enumerate()
                        .filter(move |(i, r)| is_native(native, a, *i, r))
                        .map(move |(_, r)| (a.policy.name.clone(), r.type_name()))
                })
                .collect()
        },
        ..Decision::default()
    };
    let (added, ops) = mutate(
        &selected,
        &Target {
            kind,
            namespace,
            controller_owned: owner.is_some(),
            operation: req.operation,
        },
        object,
        &exceptions,
        native,
        Some(&mut decision.findings),
    );
    // Policies whose selection waits on the labels would, were they selected, mutate the
    // object every policy judges (add a default label another policy requires, say): what
    // they would add, to judge the object with it too (below).
    let what_if_added = if decision.labels_pending.is_empty() {
        None
    } else {
        let what_if: Vec<Active<'_>> = selected
            .iter()
            .map(|a| Active {
                mode: if decision.labels_pending.contains(&a.policy.name) {
                    Mode::Enforce
                } else {
                    a.mode
                },
                ..*a
            })
            .collect();
        let target = Target {
            kind,
            namespace,
            controller_owned: owner.is_some(),
            operation: req.operation,
        };
        let (what_if_added, what_if_ops) =
            mutate(&what_if, &target, object, &exceptions, native, None);
        (what_if_ops != ops).then_some(what_if_added)
    };
    decision.patch = Patch(ops);
    if let Some((owner_kind, owner_name)) = owner {
        decision.skipped = Some(Skip::ControllerOwned {
            owner: format!("{owner_kind} {owner_name}"),
        });
        return decision;
    }

    // What CEL rules see besides the workload; their values are made when first needed.
    let facts = Facts {
        operation: req.operation,
        group: req.group,
        version: req.version,
        kind: req.kind,
        resource: req.resource.unwrap_or(kind.resource()),
        name: req.name,
        namespace,
        username: req.username,
        dry_run: req.dry_run,
        namespace_labels: known,
        old_object: req
            .old_object
            .filter(|_| req.operation == Operation::Update),
    };
    // Judge the object as mutated: the view shows the planned additions.
    let cel_input = Input::new(facts, &set.cel_reads);
    let violations = validate(
        &selected,
        &Context {
            workload: workload.with_additions(&added),
            namespace,
            cel: &cel_input,
        },
        native,
    );
    // A violation denies only if it holds with the label-dependent additions too: the real
    // labels might otherwise have added what it misses.
    let what_if_input = Input::new(facts, &set.cel_reads);
    let what_if = what_if_added.as_ref().map(|a| {
        validate(
            &selected,
            &Context {
                workload: workload.with_additions(a),
                namespace,
                cel: &what_if_input,
            },
            native,
        )
    });

    // UPDATE ratchet: only violations the update introduces deny; those the stored object had
    // (as it would have been mutated at its creation) warn. The same violation: see [`Key`].
    let before = match (req.operation, req.old_object) {
        (Operation::Update, Some(old)) => {
            let as_created = Target {
                kind,
                namespace,
                controller_owned: false,
                operation: Operation::Create,
            };
            let (old_added, _) = mutate(&selected, &as_created, old, &exceptions, native, None);
            // The stored object as it was created: a CREATE, without an old object.
            let old_input = Input::new(
                Facts {
                    operation: Operation::Create,
                    old_object: None,
                    ..facts
                },
                &set.cel_reads,
            );
            Workload::new(kind, old)
                .map(|old_view| {
                    validate(
                        &selected,
                        &Context {
                            workload: old_view.with_additions(&old_added),
                            namespace,
                            cel: &old_input,
                        },
                        native,
                    )
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    for violation in violations {
        let key = violation.key();
        let pre_existing = before.iter().any(|b| b.key() == key);
        let labels_might_fix = what_if
            .as_ref()
            .is_some_and(|w| !w.iter().any(|b| b.key() == key));
        let Violation {
            active,
            rule_type,
            found,
            ..
        } = violation;
        let exception = if exceptions.is_empty() {
            None
        } else {
            excepting(
                &exceptions,
                &active.policy.name,
                rule_type,
                found.container.as_deref(),
            )
        };
        let mut f = finding(&active, rule_type, FindingKind::Violation, found);
        if labels_might_fix && f.effect == Effect::Deny {
            f.effect = Effect::Warn;
            if !decision.labels_pending.contains(&f.policy) {
                decision.labels_pending.push(f.policy.clone());
            }
        }
        if pre_existing {
            f.pre_existing = true;
            if f.effect == Effect::Deny {
                f.effect = Effect::Warn;
            }
        }
        if let Some(e) = exception {
            except(&mut f, e);
        }
        decision.findings.push(f);
    }
    decision.allowed = !decision
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny);
    if !off_now.is_empty() {
        // The same rules on the same object the others judged: what these policies would deny.
        let judged = validate(
            &off_now,
            &Context {
                workload: workload.with_additions(&added),
                namespace,
                cel: &cel_input,
            },
            native,
        );
        decision.off_policies = off_now.iter().map(|a| a.policy.name.clone()).collect();
        decision.off_violations = judged
            .into_iter()
            .map(|v| {
                let exception = excepting(
                    &exceptions,
                    &v.active.policy.name,
                    v.rule_type,
                    v.found.container.as_deref(),
                );
                let mut f = finding(&v.active, v.rule_type, FindingKind::Violation, v.found);
                if let Some(e) = exception {
                    except(&mut f, e);
                }
                f
            })
            .collect();
    }
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

/// Runs the mutation rules in policy order. `enforce` plans are recorded as additions that
/// later rules see (and as patch operations); `warn` and `audit` plans are only described, and
/// so are plans an exception covers (effect `excepted`). Returns the additions and the patch
/// operations.
fn mutate<'p>(
    selected: &[Active<'p>],
    target: &Target<'_>,
    object: Json<'_>,
    exceptions: &[&CompiledException],
    native: &NativeRules,
    mut findings: Option<&mut Vec<Finding>>,
) -> (Additions<'p>, Vec<PatchOp>) {
    let immutable = target.pod_spec_immutable();
    let mut added = Additions::default();
    let mut ops = Vec::new();
    let Ok(base) = Workload::new(target.kind, object) else {
        return (added, ops);
    };
    for active in selected {
        let policy = active.policy;
        for (i, rule) in policy.rules.iter().enumerate() {
            if !native.is_empty() && is_native(native, active, i, rule) {
                continue; // A MutatingAdmissionPolicy applies it.
            }
            let view = base.with_additions(&added);
            // The mutation rules' dispatch (validation rules plan nothing): where a rule may
            // not mutate, it plans nothing either: a sidecar into a pod spec the apiserver keeps
            // immutable, or where the policy's injection target is not; labels into a
            // controller's Pod (mutated at its owner).
            let plan = match rule {
                CompiledRule::InjectSidecar(s)
                    if !immutable
                        && match s.target {
                            InjectionTarget::Template => !target.controller_owned,
                            InjectionTarget::Pod => target.kind == WorkloadKind::Pod,
                        } =>
                {
                    match sidecar::plan(s, &view) {
                        Ok(plan) => Some(plan),
                        Err(why) => {
                            if let (Some(out), Some(notice)) =
                                (findings.as_deref_mut(), why.notice(s, &view))
                            {
                                out.push(finding(
                                    active,
                                    rule.type_name(),
                                    FindingKind::Notice,
                                    notice,
                                ));
                            }
                            None
                        }
                    }
                }
                CompiledRule::DefaultLabels(d) if !target.controller_owned => {
                    // A Job's template metadata is immutable after creation; a Pod's is not.
                    let template_ok = !(immutable && target.kind == WorkloadKind::Job);
                    Some(labels::plan_defaults(
                        d,
                        &view,
                        target.namespace,
                        template_ok,
                    ))
                }
                _ => None,
            };
            let Some(mut plan) = plan else {
                continue;
            };
            let rule_type = rule.type_name();
            let notices = std::mem::take(&mut plan.notices);
            if !plan.ops.is_empty() {
                let exception = if exceptions.is_empty() {
                    None
                } else {
                    excepting(exceptions, &policy.name, rule_type, None)
                };
                if active.mode == Mode::Enforce && exception.is_none() {
                    added.extend(plan.added);
                    ops.extend(plan.ops);
                }
                if let Some(out) = findings.as_deref_mut() {
                    out.extend(plan.changes.into_iter().map(|c| {
                        let mut f = finding(active, rule_type, FindingKind::Mutation, c);
                        if let Some(e) = exception {
                            except(&mut f, e);
                        }
                        f
                    }));
                }
            }
            if let Some(out) = findings.as_deref_mut() {
                out.extend(
                    notices
                        .into_iter()
                        .map(|n| finding(active, rule_type, FindingKind::Notice, n)),
                );
            }
        }
    }
    (added, ops)
}

/// Whether rule `i` (`rule`) of `active` is left to the API server: validation rules when
/// listed, mutation rules when listed and the policy enforces here (a MutatingAdmissionPolicy
/// is exported for the `enforce` mode only; in `warn` and `audit` the webhook describes).
fn is_native(native: &NativeRules, active: &Active<'_>, i: usize, rule: &CompiledRule) -> bool {
    native.contains(&active.policy.name, i) && (!rule.is_mutation() || active.mode == Mode::Enforce)
}

/// Runs the validation rules of the selected policies against a workload, but those left to
/// the API server.
fn validate<'p>(
    selected: &[Active<'p>],
    ctx: &Context<'_>,
    native: &NativeRules,
) -> Vec<Violation<'p>> {
    let mut out = Vec::new();
    let mut found = Vec::new();
    for active in selected {
        for (i, rule) in active.policy.rules.iter().enumerate() {
            if !native.is_empty() && is_native(native, active, i, rule) {
                continue; // A ValidatingAdmissionPolicy judges it.
            }
            check(rule, ctx, &mut found);
            if found.is_empty() {
                continue; // Most rules find nothing: no draining then.
            }
            out.extend(found.drain(..).map(|found| Violation {
                active: *active,
                rule: i,
                rule_type: rule.type_name(),
                found,
            }));
        }
    }
    out
}

/// The validation rules' dispatch: what a validation rule finds wrong with the workload
/// (mutation rules are dispatched in [`mutate`]). The one place a validation rule type is wired
/// to the module that implements it.
fn check(rule: &CompiledRule, ctx: &Context<'_>, out: &mut Vec<Found>) {
    match rule {
        CompiledRule::RequireProbes(r) => probes::check(r, ctx, out),
        CompiledRule::RequireResources(r) => resources::check(r, ctx, out),
        CompiledRule::RequireImageTag(r) => images::check(r, ctx, out),
        CompiledRule::RequireLabels(r) => labels::check_required(r, ctx, out),
        CompiledRule::DisallowNamespaces(r) => labels::check_namespace(r, ctx, out),
        CompiledRule::Cel(r) => cel::check(r, ctx, out),
        CompiledRule::InjectSidecar(_) | CompiledRule::DefaultLabels(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::compile_str;

    const SET: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: strict}
spec:
  mode: enforce
  rules: [{requireProbes: {}}, {defaultLabels: {labels: {team: platform}}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: lenient}
spec:
  mode: warn
  rules: [{defaultLabels: {labels: {tier: web}}}, {requireResources: {}}]
"#;

    fn kinds(d: &Decision) -> Vec<(&str, &str, Effect)> {
        d.findings
            .iter()
            .map(|f| (f.policy.as_str(), f.rule, f.effect))
            .collect()
    }

    #[test]
    fn native_rules_are_left_out_validation_in_every_mode_mutation_only_where_enforced() {
        let set = compile_str(std::path::Path::new("set.yaml"), SET).expect("set");
        let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}});
        let request = Request::create(&object, Timestamp::from_unix(0));
        let all = evaluate(&set, &request);
        assert!(!all.allowed);
        assert!(all.is_patched());
        assert!(all.native.is_empty());
        let every_rule = NativeRules::new([
            ("strict".to_owned(), 0),
            ("strict".to_owned(), 1),
            ("lenient".to_owned(), 0),
            ("lenient".to_owned(), 1),
        ]);
        let native = evaluate_with_native(&set, &request, &every_rule);
        assert!(
            native.allowed,
            "the API server denies: {:?}",
            kinds(&native)
        );
        assert!(!native.is_patched(), "the API server labels");
        // What only the webhook can do stays: the warn policy's mutation (object and
        // template labels), described.
        let mut left = kinds(&native);
        left.dedup();
        assert_eq!(left, [("lenient", "defaultLabels", Effect::Warn)]);
        assert_eq!(
            native.native,
            [
                ("strict".to_owned(), "requireProbes"),
                ("strict".to_owned(), "defaultLabels"),
                ("lenient".to_owned(), "requireResources"),
            ]
        );
        // Only the listed rules: the rest is judged as without.
        let one = NativeRules::new([("strict".to_owned(), 0)]);
        let partial = evaluate_with_native(&set, &request, &one);
        assert!(partial.allowed);
        assert!(partial.is_patched(), "strict's labels are not native here");
        assert!(
            kinds(&partial).contains(&("lenient", "requireResources", Effect::Warn)),
            "{:?}",
            kinds(&partial)
        );
        assert!(
            !kinds(&partial)
                .iter()
                .any(|(_, r, _)| *r == "requireProbes")
        );
    }
}
