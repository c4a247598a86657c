//! Load-time lint: pitfalls that only show when policies are looked at together, or that no
//! single field check can see. It judges a policy set by evaluating it, so it sits above both
//! [`crate::policy`] and [`crate::engine`] (neither imports it). [`load_dir`] and [`load_str`]
//! (compile, then lint) are how every entry point loads policies, so `policy validate`, `serve`
//! (start-up and reload), `audit` and `mutate` all report them.
//!
//! What is decided statically, and how:
//!
//! - **A policy that denies every workload** (error in `enforce`, warning in `warn`): the
//!   policy selects every workload kind in every namespace — no `match.kinds` narrower than
//!   all kinds, no `match.namespaces.include` other than `*`, no namespace or object selector,
//!   and an `exclude` that names only namespaces — and one of its rules fails whatever the
//!   workload: a `disallowNamespaces` pattern made only of `*`. Every other rule can be
//!   satisfied by some workload, so this is the exact static case. A sidecar that violates an
//!   `enforce` policy (below) is the other way to deny every workload it is injected into.
//! - **Conflicting mutations** (warning): two `defaultLabels` rules (of any policies, or the
//!   same one) that may select the same workload kinds and give the same label or annotation
//!   key, on the same target, different values — only the first to apply sets it, the other
//!   is silently never applied; two `injectSidecar` rules injecting containers of the same
//!   name with different container specs (images named when they differ) — only the first is
//!   injected; two sidecars declaring the same volume name with different contents.
//! - **A sidecar template that violates the validating policies** (error when both are
//!   `enforce`: every workload receiving the sidecar would be denied, and its owner cannot fix
//!   it; warning otherwise): the engine judges a synthetic workload whose pod spec holds just
//!   the sidecar (as a native sidecar when so injected), once per workload kind both policies
//!   may select, with each validating policy's rules (its `match`/`exclude` aside); findings
//!   about the sidecar container are reported.

use std::path::Path;

use serde_json::{Value, json};

use crate::engine::{self, FindingKind, Request};
use crate::policy::load::{Diagnostic, LoadError, compile_dir, compile_str};
use crate::policy::model::{InjectionTarget, Match, Mode, WorkloadKind};
use crate::policy::{
    CompiledPolicy, CompiledRule, CompiledSidecar, PolicySet, Template, Timestamp, selected_kinds,
};

/// Loads every `*.yaml` / `*.yml` file of a directory (not recursive, sorted by name) as one
/// policy set (see [`compile_dir`]), then lints it: a lint error refuses the set, warnings
/// travel with it in [`PolicySet::warnings`].
pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadError> {
    compile_dir(dir).and_then(checked)
}

/// Loads policies from one YAML string (multi-document allowed), named `file` in messages,
/// then lints them as [`load_dir`] does.
pub fn load_str(file: &Path, text: &str) -> Result<PolicySet, LoadError> {
    compile_str(file, text).and_then(checked)
}

/// Lints a compiled set: errors refuse it, warnings are kept in [`PolicySet::warnings`].
pub fn checked(mut set: PolicySet) -> Result<PolicySet, LoadError> {
    let mut diagnostics = Vec::new();
    for found in lint(&set) {
        match found.severity {
            Severity::Error => diagnostics.push(found.diagnostic),
            Severity::Warning => set.warnings.push(found.diagnostic),
        }
    }
    if diagnostics.is_empty() {
        Ok(set)
    } else {
        Err(LoadError { diagnostics })
    }
}

/// How serious a lint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The set is refused (start-up fails; a reload keeps the previous set).
    Error,
    /// Reported (printed, logged), the set is used.
    Warning,
}

/// One pitfall found, located at the policy it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// Error or warning.
    pub severity: Severity,
    /// Where and what.
    pub diagnostic: Diagnostic,
}

fn lint_at(policy: &CompiledPolicy, severity: Severity, message: String, hint: &str) -> Lint {
    Lint {
        severity,
        diagnostic: Diagnostic {
            file: policy.source.file.clone(),
            line: policy.source.line,
            column: 0,
            message,
            hint: hint.to_owned(),
        },
    }
}

/// Every pitfall of the set, in policy order. Policies in `off` mode (at every step of their
/// schedule) are ignored; scheduled ones are judged by the strictest mode they will run in.
pub fn lint(set: &PolicySet) -> Vec<Lint> {
    let active: Vec<&CompiledPolicy> = set
        .policies
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| p.strictest_mode() != Mode::Off)
        .collect();
    let mut out = Vec::new();
    for p in &active {
        deny_all(p, &mut out);
    }
    conflicting_mutations(&active, &mut out);
    sidecars_violating(&active, set, &mut out);
    out
}

/// Whether the policy selects every kind in every namespace (bar explicitly excluded ones).
fn selects_everything(p: &CompiledPolicy) -> bool {
    let Match {
        kinds,
        namespaces,
        namespace_selector,
        object_selector,
    } = &p.match_;
    let all_kinds = WorkloadKind::ALL
        .iter()
        .all(|k| kinds.is_empty() || kinds.contains(k));
    let all_namespaces = namespaces
        .as_ref()
        .is_none_or(|n| n.include.is_empty() || n.include.iter().any(|i| only_stars(i)));
    let exclude_namespaces_only = p.exclude.as_ref().is_none_or(|e| {
        e.kinds.is_empty()
            && e.names.is_empty()
            && e.namespace_selector.is_none()
            && e.object_selector.is_none()
    });
    all_kinds
        && all_namespaces
        && namespace_selector.is_none()
        && object_selector.is_none()
        && exclude_namespaces_only
}

fn only_stars(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.chars().all(|c| c == '*')
}

fn deny_all(p: &CompiledPolicy, out: &mut Vec<Lint>) {
    let severity = match p.strictest_mode() {
        Mode::Enforce => Severity::Error,
        Mode::Warn => Severity::Warning,
        Mode::Audit | Mode::Off => return,
    };
    if !selects_everything(p) {
        return;
    }
    for (i, rule) in p.rules.iter().enumerate() {
        if let CompiledRule::DisallowNamespaces(r) = rule
            && let Some(pattern) = r.namespaces.iter().find(|n| only_stars(n))
        {
            let effect = if severity == Severity::Error {
                "denies"
            } else {
                "warns about"
            };
            out.push(lint_at(
                p,
                severity,
                format!(
                    "policy {:?} {effect} every workload: spec.rules[{i}].disallowNamespaces \
                     forbids every namespace ({pattern:?}) and the policy selects every kind \
                     in every namespace",
                    p.name
                ),
                "list the namespaces to forbid (e.g. [default]), or narrow spec.match; try \
                 changes with `mode: warn` first",
            ));
        }
    }
}

/// Whether two policies may select a workload of the same kind.
fn kinds_overlap(a: &CompiledPolicy, b: &CompiledPolicy) -> Vec<WorkloadKind> {
    let bk = selected_kinds(&b.match_);
    selected_kinds(&a.match_)
        .into_iter()
        .filter(|k| bk.contains(k))
        .collect()
}

fn template_text(t: &Template) -> String {
    use crate::policy::TemplateSegment as S;
    t.0.iter()
        .map(|s| match s {
            S::Literal(text) => text.clone(),
            S::Name => "{{name}}".to_owned(),
            S::Namespace => "{{namespace}}".to_owned(),
            S::Kind => "{{kind}}".to_owned(),
        })
        .collect()
}

fn conflicting_mutations(active: &[&CompiledPolicy], out: &mut Vec<Lint>) {
    // Every mutation rule, in the order the engine applies them.
    let rules: Vec<(&CompiledPolicy, usize, &CompiledRule)> = active
        .iter()
        .flat_map(|p| p.rules.iter().enumerate().map(move |(i, r)| (*p, i, r)))
        .filter(|(_, _, r)| r.is_mutation())
        .collect();
    let rule_name = |p: &CompiledPolicy, i: usize| format!("{:?} (spec.rules[{i}])", p.name);
    for (n, (pa, ia, ra)) in rules.iter().enumerate() {
        for (pb, ib, rb) in &rules[n + 1..] {
            if kinds_overlap(pa, pb).is_empty() {
                continue;
            }
            let where_b = format!("{} at {}", rule_name(pb, *ib), pb.source);
            match (ra, rb) {
                (CompiledRule::DefaultLabels(a), CompiledRule::DefaultLabels(b)) => {
                    let same_target = (a.object && b.object) || (a.pod_template && b.pod_template);
                    if !same_target {
                        continue;
                    }
                    for (what, xs, ys) in [
                        ("label", &a.labels, &b.labels),
                        ("annotation", &a.annotations, &b.annotations),
                    ] {
                        for (key, va) in xs {
                            let Some((_, vb)) = ys.iter().find(|(k, _)| k == key) else {
                                continue;
                            };
                            if va == vb {
                                continue;
                            }
                            out.push(lint_at(
                                pa,
                                Severity::Warning,
                                format!(
                                    "conflicting mutations: {} and {where_b} both default the \
                                     {what} {key:?}, to {:?} and {:?}",
                                    rule_name(pa, *ia),
                                    template_text(va),
                                    template_text(vb)
                                ),
                                "defaults never overwrite, so only the first enforce rule in \
                                 load order (file name, then position) sets it and the other is \
                                 silently never applied: keep the key in one policy, or give \
                                 both the same value",
                            ));
                        }
                    }
                }
                (CompiledRule::InjectSidecar(a), CompiledRule::InjectSidecar(b)) => {
                    sidecar_conflict(pa, &rule_name(pa, *ia), a, &where_b, b, out);
                }
                _ => {}
            }
        }
    }
}

fn sidecar_conflict(
    pa: &CompiledPolicy,
    name_a: &str,
    a: &CompiledSidecar,
    where_b: &str,
    b: &CompiledSidecar,
    out: &mut Vec<Lint>,
) {
    let hint = "a sidecar is not injected when a container of its name is there, so only the \
                first enforce rule in load order (file name, then position) injects its \
                container: rename one, or keep one rule";
    if a.name == b.name && a.container != b.container {
        let image = |s: &CompiledSidecar| s.container.get("image").cloned().unwrap_or(Value::Null);
        let (ia, ib) = (image(a), image(b));
        let difference = if ia == ib {
            "different container specs".to_owned()
        } else {
            format!("different images ({ia} and {ib})")
        };
        out.push(lint_at(
            pa,
            Severity::Warning,
            format!(
                "conflicting mutations: {name_a} and {where_b} both inject a container named \
                 {:?}, with {difference}",
                a.name
            ),
            hint,
        ));
    }
    for (volume, va) in &a.volumes {
        if let Some((_, vb)) = b.volumes.iter().find(|(n, _)| n == volume)
            && va != vb
        {
            out.push(lint_at(
                pa,
                Severity::Warning,
                format!(
                    "conflicting mutations: {name_a} and {where_b} both add a volume named \
                     {volume:?}, with different contents"
                ),
                "a volume is not added when one of its name is there, so the second sidecar \
                 would get the first one's volume: use distinct volume names, or the same \
                 definition",
            ));
        }
    }
}

/// A minimal object of `kind` whose pod spec is `spec`.
fn synthetic_workload(kind: WorkloadKind, spec: Value) -> Value {
    let api_version = match kind.group() {
        "" => "v1".to_owned(),
        group => format!("{group}/v1"),
    };
    let metadata = json!({"name": "portcullis-lint", "namespace": "portcullis-lint"});
    let template = json!({"metadata": {}, "spec": spec});
    let body = match kind {
        WorkloadKind::Pod => {
            return json!({"apiVersion": api_version, "kind": kind.as_str(), "metadata": metadata, "spec": template["spec"]});
        }
        WorkloadKind::CronJob => {
            json!({"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}})
        }
        _ => json!({"template": template}),
    };
    json!({"apiVersion": api_version, "kind": kind.as_str(), "metadata": metadata, "spec": body})
}

fn sidecars_violating(active: &[&CompiledPolicy], set: &PolicySet, out: &mut Vec<Lint>) {
    for sp in active {
        for rule in &sp.rules {
            let CompiledRule::InjectSidecar(sidecar) = rule else {
                continue;
            };
            for vp in active {
                let validating: Vec<CompiledRule> = vp
                    .rules
                    .iter()
                    .filter(|r| {
                        !r.is_mutation() && !matches!(r, CompiledRule::DisallowNamespaces(_))
                    })
                    .cloned()
                    .collect();
                if validating.is_empty() {
                    continue;
                }
                // The validating policy's rules alone, selecting everything, so the synthetic
                // workload is judged whatever the policy's match says.
                let judge = PolicySet::new(vec![CompiledPolicy {
                    mode: Mode::Enforce,
                    schedule: Vec::new(),
                    match_: Match::default(),
                    exclude: None,
                    rules: validating,
                    ..(*vp).clone()
                }])
                .with_trusted_controllers(set.trusted_controllers.clone());
                if let Some((kind, messages)) = judge_sidecar(sidecar, sp, vp, &judge) {
                    // A schedule that enforces both later counts: the set would start denying then.
                    let both_enforce = sp.ever_enforced() && vp.ever_enforced();
                    let (severity, hint) = if both_enforce {
                        (
                            Severity::Error,
                            "every workload the sidecar is injected into would be denied, and \
                             its owner cannot fix that: fix the sidecar's container template \
                             in the injecting policy",
                        )
                    } else {
                        (
                            Severity::Warning,
                            "workloads receiving the sidecar get these findings (denied once \
                             both policies enforce): fix the sidecar's container template in \
                             the injecting policy",
                        )
                    };
                    out.push(lint_at(
                        sp,
                        severity,
                        format!(
                            "policy {:?} injects the sidecar {:?}, which violates policy {:?} \
                             (judged in a {kind}): {}",
                            sp.name,
                            sidecar.name,
                            vp.name,
                            messages.join("; ")
                        ),
                        hint,
                    ));
                }
            }
        }
    }
}

/// The first kind (both policies may select, the sidecar would be injected into) for which
/// `judge` finds violations in the sidecar container, with their messages.
fn judge_sidecar(
    sidecar: &CompiledSidecar,
    sp: &CompiledPolicy,
    vp: &CompiledPolicy,
    judge: &PolicySet,
) -> Option<(WorkloadKind, Vec<String>)> {
    for kind in kinds_overlap(sp, vp) {
        let injected = match sidecar.target {
            InjectionTarget::Template => true,
            InjectionTarget::Pod => kind == WorkloadKind::Pod,
        };
        // A regular sidecar is not injected into workloads that run to completion.
        if !injected || (!sidecar.native_sidecar && kind.runs_to_completion()) {
            continue;
        }
        let mut spec = serde_json::Map::new();
        let list = if sidecar.native_sidecar {
            "initContainers"
        } else {
            "containers"
        };
        spec.insert(list.to_owned(), json!([sidecar.container]));
        if kind.runs_to_completion() {
            spec.insert("restartPolicy".to_owned(), json!("Never"));
        }
        let object = synthetic_workload(kind, Value::Object(spec));
        let decision = engine::evaluate(judge, &Request::create(&object, Timestamp::from_unix(0)));
        let messages: Vec<String> = decision
            .findings
            .iter()
            .filter(|f| {
                f.kind == FindingKind::Violation && f.container.as_deref() == Some(&sidecar.name)
            })
            .map(|f| f.message.clone())
            .collect();
        if !messages.is_empty() {
            return Some((kind, messages));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDECAR: &str = "apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: NAME}
spec:
  mode: MODE
  rules:
    - injectSidecar:
        nativeSidecar: NATIVE
        container:
          name: CONTAINER
          image: IMAGE
          livenessProbe: {httpGet: {path: /, port: 2020}}
          readinessProbe: {httpGet: {path: /, port: 2020}}
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {cpu: 100m, memory: 64Mi}
        volumes: [{name: VOLUME, emptyDir: {}}]
";

    fn sidecar(name: &str, mode: &str, container: &str, image: &str) -> String {
        SIDECAR
            .replace("NAME", name)
            .replace("MODE", mode)
            .replace("NATIVE", "true")
            .replace("CONTAINER", container)
            .replace("IMAGE", image)
            .replace("VOLUME", "logs")
    }

    fn policy(name: &str, mode: &str, rest: &str) -> String {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec:\n  mode: {mode}\n{rest}"
        )
    }

    fn lints(docs: &[String]) -> Vec<Lint> {
        let text = docs.join("---\n");
        // Errors come back as the load error, warnings with the set.
        match load_str(Path::new("p.yaml"), &text) {
            Ok(set) => set
                .warnings
                .into_iter()
                .map(|diagnostic| Lint {
                    severity: Severity::Warning,
                    diagnostic,
                })
                .collect(),
            Err(e) => e
                .diagnostics
                .into_iter()
                .map(|diagnostic| Lint {
                    severity: Severity::Error,
                    diagnostic,
                })
                .collect(),
        }
    }

    fn one(docs: &[String]) -> Lint {
        let mut found = lints(docs);
        assert_eq!(found.len(), 1, "{found:#?}");
        found.remove(0)
    }

    #[test]
    fn a_policy_denying_every_workload_is_an_error_in_enforce_and_a_warning_in_warn() {
        let deny_all = "  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n";
        let l = one(&[policy("freeze", "enforce", deny_all)]);
        assert_eq!(l.severity, Severity::Error);
        assert!(
            l.diagnostic.message.contains(
                "policy \"freeze\" denies every workload: spec.rules[0].disallowNamespaces forbids every namespace (\"*\")"
            ),
            "{}",
            l.diagnostic
        );
        assert_eq!(l.diagnostic.line, 1);
        let l = one(&[policy("freeze", "warn", deny_all)]);
        assert_eq!(l.severity, Severity::Warning);
        assert!(l.diagnostic.message.contains("warns about every workload"));
        assert!(lints(&[policy("freeze", "audit", deny_all)]).is_empty());
        // Excluding a few namespaces still denies every workload elsewhere.
        let with_exclusions = format!(
            "  match: {{namespaces: {{exclude: [kube-system]}}}}\n  exclude: {{namespaces: [ops]}}\n{deny_all}"
        );
        assert_eq!(
            one(&[policy("freeze", "enforce", &with_exclusions)]).severity,
            Severity::Error
        );
    }

    #[test]
    fn narrowed_or_satisfiable_policies_are_not_deny_all() {
        for rest in [
            // Forbidding bare Pods everywhere is a legitimate policy.
            "  match: {kinds: [Pod]}\n  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n",
            "  match: {namespaces: {include: [sandbox]}}\n  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n",
            "  match: {objectSelector: {matchLabels: {frozen: 'true'}}}\n  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n",
            "  exclude: {names: [keep-*]}\n  rules:\n    - disallowNamespaces: {namespaces: ['*']}\n",
            "  rules:\n    - disallowNamespaces: {namespaces: [default, 'team-*']}\n",
            "  rules:\n    - requireLabels: {labels: [team]}\n",
        ] {
            assert!(
                lints(&[policy("p", "enforce", rest)]).is_empty(),
                "{rest}: {:#?}",
                lints(&[policy("p", "enforce", rest)])
            );
        }
    }

    #[test]
    fn conflicting_default_labels_are_a_warning() {
        let a = policy(
            "team-a",
            "enforce",
            "  rules:\n    - defaultLabels: {labels: {team: a, tier: web}, annotations: {owner: '{{namespace}}'}}\n",
        );
        let b = policy(
            "team-b",
            "warn",
            "  rules:\n    - defaultLabels: {labels: {team: b, tier: web}, annotations: {owner: ops}}\n",
        );
        let found = lints(&[a.clone(), b]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|l| l.severity == Severity::Warning));
        let text: Vec<String> = found.iter().map(|l| l.diagnostic.message.clone()).collect();
        assert!(
            text[0]
                .contains("\"team-a\" (spec.rules[0]) and \"team-b\" (spec.rules[0]) at p.yaml:")
                && text[0].contains("both default the label \"team\", to \"a\" and \"b\""),
            "{text:?}"
        );
        assert!(
            text[1].contains("annotation \"owner\", to \"{{namespace}}\" and \"ops\""),
            "{text:?}"
        );
        // Same values, disjoint kinds, or disjoint targets: no conflict.
        let same = policy(
            "same",
            "enforce",
            "  rules:\n    - defaultLabels: {labels: {team: a}}\n",
        );
        assert!(lints(&[a.clone(), same]).is_empty());
        let other_kinds = policy(
            "jobs",
            "enforce",
            "  match: {kinds: [Job]}\n  rules:\n    - defaultLabels: {labels: {team: jobs}}\n",
        );
        let pods = policy(
            "pods",
            "enforce",
            "  match: {kinds: [Pod]}\n  rules:\n    - defaultLabels: {labels: {team: pods}}\n",
        );
        assert!(lints(&[other_kinds, pods]).is_empty());
        let object = policy(
            "object",
            "enforce",
            "  rules:\n    - defaultLabels: {target: [object], labels: {team: x}}\n",
        );
        let template = policy(
            "template",
            "enforce",
            "  rules:\n    - defaultLabels: {target: [podTemplate], labels: {team: y}}\n",
        );
        assert!(lints(&[object, template]).is_empty());
        // Off policies are ignored.
        let off = policy(
            "off",
            "off",
            "  rules:\n    - defaultLabels: {labels: {team: z}}\n",
        );
        assert!(lints(&[a, off]).is_empty());
    }

    #[test]
    fn two_sidecars_with_one_container_name_are_a_warning() {
        let found = lints(&[
            sidecar(
                "ship-a",
                "enforce",
                "log-shipper",
                "fluent/fluent-bit:3.2.4",
            ),
            sidecar("ship-b", "enforce", "log-shipper", "grafana/alloy:1.5.0"),
        ]);
        assert_eq!(found.len(), 1, "{found:#?}");
        let l = &found[0];
        assert_eq!(l.severity, Severity::Warning);
        assert!(
            l.diagnostic.message.contains(
                "both inject a container named \"log-shipper\", with different images (\"fluent/fluent-bit:3.2.4\" and \"grafana/alloy:1.5.0\")"
            ),
            "{}",
            l.diagnostic
        );
        // Same image, other differences.
        let other = sidecar(
            "ship-c",
            "enforce",
            "log-shipper",
            "fluent/fluent-bit:3.2.4",
        )
        .replace(
            "port: 2020}}\n          readiness",
            "port: 2021}}\n          readiness",
        );
        let l = one(&[
            sidecar(
                "ship-a",
                "enforce",
                "log-shipper",
                "fluent/fluent-bit:3.2.4",
            ),
            other,
        ]);
        assert!(
            l.diagnostic
                .message
                .contains("with different container specs")
        );
        // Identical sidecars are redundant, not conflicting; distinct names are fine.
        assert!(
            lints(&[
                sidecar(
                    "ship-a",
                    "enforce",
                    "log-shipper",
                    "fluent/fluent-bit:3.2.4"
                ),
                sidecar(
                    "ship-b",
                    "enforce",
                    "log-shipper",
                    "fluent/fluent-bit:3.2.4"
                ),
            ])
            .is_empty()
        );
        // Distinct containers sharing a volume name with other contents.
        let proxy = sidecar("proxy", "enforce", "proxy", "envoyproxy/envoy:v1.32.0")
            .replace("emptyDir: {}", "emptyDir: {medium: Memory}");
        let l = one(&[
            sidecar(
                "ship-a",
                "enforce",
                "log-shipper",
                "fluent/fluent-bit:3.2.4",
            ),
            proxy,
        ]);
        assert!(
            l.diagnostic
                .message
                .contains("both add a volume named \"logs\", with different contents"),
            "{}",
            l.diagnostic
        );
    }

    #[test]
    fn a_sidecar_violating_an_enforce_policy_is_an_error() {
        let probes = policy(
            "require-probes",
            "enforce",
            "  rules:\n    - requireProbes: {nativeSidecars: true}\n",
        );
        let pinned = policy(
            "pinned",
            "enforce",
            "  rules:\n    - requireImageTag: {forbiddenTags: [latest]}\n",
        );
        let unprobed = sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:3.2.4")
            .replace(
                "          livenessProbe: {httpGet: {path: /, port: 2020}}\n",
                "",
            );
        let l = one(&[unprobed, probes.clone()]);
        assert_eq!(l.severity, Severity::Error);
        assert!(
            l.diagnostic.message.contains(
                "policy \"ship\" injects the sidecar \"log-shipper\", which violates policy \"require-probes\" (judged in a Pod): no livenessProbe"
            ),
            "{}",
            l.diagnostic
        );
        let latest = sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:latest");
        let l = one(&[latest.clone(), pinned.clone()]);
        assert_eq!(l.severity, Severity::Error);
        assert!(
            l.diagnostic.message.contains("forbidden tag :latest"),
            "{}",
            l.diagnostic
        );
        // A warn-mode side makes it a warning.
        let l = one(&[
            latest.replace("mode: enforce", "mode: warn"),
            pinned.clone(),
        ]);
        assert_eq!(l.severity, Severity::Warning);
        // A compliant sidecar passes; a regular (non-native) one is judged as an app container.
        assert!(
            lints(&[
                sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:3.2.4"),
                probes.clone(),
                pinned
            ])
            .is_empty()
        );
        let regular_unprobed = sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:3.2.4")
            .replace("nativeSidecar: true", "nativeSidecar: false")
            .replace(
                "          readinessProbe: {httpGet: {path: /, port: 2020}}\n",
                "",
            );
        let default_probes = policy("probes", "enforce", "  rules:\n    - requireProbes: {}\n");
        let l = one(&[regular_unprobed, default_probes.clone()]);
        assert!(
            l.diagnostic.message.contains("no readinessProbe"),
            "{}",
            l.diagnostic
        );
        // Native sidecars are exempt from probe rules unless the rule asks for them.
        let native_unprobed = sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:3.2.4")
            .replace(
                "          readinessProbe: {httpGet: {path: /, port: 2020}}\n",
                "",
            );
        assert!(lints(&[native_unprobed, default_probes]).is_empty());
        // Policies that never meet (disjoint kinds) are not compared.
        let jobs_only = policy(
            "job-probes",
            "enforce",
            "  match: {kinds: [Job]}\n  rules:\n    - requireProbes: {nativeSidecars: true}\n",
        );
        let pods_sidecar = sidecar("ship", "enforce", "log-shipper", "fluent/fluent-bit:3.2.4")
            .replace("  rules:", "  match: {kinds: [Pod]}\n  rules:")
            .replace(
                "          livenessProbe: {httpGet: {path: /, port: 2020}}\n",
                "",
            );
        assert!(lints(&[pods_sidecar, jobs_only]).is_empty());
    }

    #[test]
    fn the_shipped_policies_are_clean() {
        for dir in ["policies", "tests/fixtures/policies", "tests/policies"] {
            let set = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).expect("loads");
            assert!(set.warnings.is_empty(), "{dir}: {:#?}", set.warnings);
        }
    }
}
