//! Metadata rules: `defaultLabels` (add absent labels and annotations, never overwrite),
//! `requireLabels` (label keys must be present) and `disallowNamespaces`.

use serde_json::Value;

use super::patch::{self, PatchValue, Pointer};
use super::rule::{Context, Found, Plan};
use crate::policy::CompiledDefaultLabels;
use crate::policy::model::{DisallowNamespaces, MetadataTarget, RequireLabels, WorkloadKind};
use crate::policy::names::is_label_value;
use crate::policy::select::pattern_matches;
use crate::policy::{Template, TemplateSegment};
use crate::workload::{MetaAddition, MetaLocation, Workload};

/// A metadata location of a workload: JSON Pointer tokens and dotted path to its `metadata`.
struct MetaTarget {
    location: MetaLocation,
    tokens: &'static [&'static str],
    path: &'static str,
}

fn meta_targets(w: &Workload<'_>, object: bool, pod_template: bool) -> Vec<MetaTarget> {
    let mut out = Vec::with_capacity(2);
    let is_pod = w.template_tokens().is_empty();
    if object || (pod_template && is_pod) {
        out.push(MetaTarget {
            location: MetaLocation::Object,
            tokens: &["metadata"],
            path: "metadata",
        });
    }
    if pod_template && !is_pod {
        let (tokens, path): (&'static [&'static str], _) = if w.kind == WorkloadKind::CronJob {
            (
                &["spec", "jobTemplate", "spec", "template", "metadata"],
                "spec.jobTemplate.spec.template.metadata",
            )
        } else {
            (&["spec", "template", "metadata"], "spec.template.metadata")
        };
        out.push(MetaTarget {
            location: MetaLocation::Template,
            tokens,
            path,
        });
    }
    out
}

/// What `{{name}}` renders to: `metadata.name`; for an object created with only
/// `generateName` (the apiserver picks the name after the mutating webhooks ran), the stem
/// without its trailing separators (`web-` gives `web`), which is what a user expects as the
/// workload's name.
fn template_name<'a>(w: &Workload<'a>) -> &'a str {
    match w.metadata_name() {
        "" => w
            .generate_name()
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric()),
        name => name,
    }
}

/// Why a label value template could not give a value, for the notice.
fn why_not_rendered(template: &Template, name: &str, namespace: Option<&str>) -> String {
    let uses = |seg: fn(&TemplateSegment) -> bool| template.0.iter().any(seg);
    if name.is_empty() && uses(|s| matches!(s, TemplateSegment::Name)) {
        "{{name}} has no value: the object has neither a name nor a generateName".to_owned()
    } else if namespace.is_none() && uses(|s| matches!(s, TemplateSegment::Namespace)) {
        "{{namespace}} has no value: the object names no namespace (portcullis audit: pass -n)"
            .to_owned()
    } else {
        "a reference has no value".to_owned()
    }
}

/// Plans the additions of a `defaultLabels` rule.
pub(super) fn plan_defaults<'p>(
    rule: &'p CompiledDefaultLabels,
    w: &Workload<'_>,
    namespace: Option<&str>,
    template_mutable: bool,
) -> Plan<'p> {
    let mut plan = Plan::default();
    for target in meta_targets(w, rule.object, rule.pod_template && template_mutable) {
        let pointer = Pointer::of(target.tokens);
        let meta_exists = w.has_metadata_at(target.location);
        let mut absent_parent = serde_json::Map::new();
        for (key, templates, label) in [
            ("labels", &rule.labels, true),
            ("annotations", &rule.annotations, false),
        ] {
            let mut entries = Vec::new();
            for (k, t) in templates {
                if w.has_meta_key(target.location, label, k) {
                    continue; // Never overwrite what the user (or an earlier rule) set.
                }
                let singular = &key[..key.len() - 1];
                let field = || [target.path, ".", key, "[\"", k, "\"]"].concat();
                let name = template_name(w);
                let Some(v) = t.render(name, namespace, w.kind.as_str()) else {
                    plan.notices.push(Found::in_object(
                        field(),
                        format!(
                            "{singular} {k} not added: {}",
                            why_not_rendered(t, name, namespace)
                        ),
                        format!("set the {singular} {k} yourself"),
                    ));
                    continue;
                };
                // A rendered value the apiserver would reject is never added, but said.
                if label && !is_label_value(&v) {
                    plan.notices.push(Found::in_object(
                        field(),
                        format!(
                            "label {k} not added: {v:?} is not a valid label value (at most 63 \
                             letters, digits, '-', '_' or '.', starting and ending with a \
                             letter or digit)"
                        ),
                        format!("set the label {k} yourself, to a shorter value"),
                    ));
                    continue;
                }
                plan.changes.push(Found::in_object(
                    field(),
                    ["add ", singular, " ", k, "=", &v].concat(),
                    String::new(),
                ));
                plan.added.metadata.push(MetaAddition {
                    location: target.location,
                    label,
                    key: k,
                    value: v.clone(),
                });
                entries.push((k.clone(), Value::String(v)));
            }
            if entries.is_empty() {
                continue;
            }
            if meta_exists {
                let exists = w.has_meta_map(target.location, label);
                patch::insert_all(&mut plan.ops, exists, &pointer, key, entries);
            } else {
                absent_parent.insert(key.to_owned(), Value::Object(entries.into_iter().collect()));
            }
        }
        // `metadata` itself is absent (possible in a pod template): create it in one step.
        if !absent_parent.is_empty() {
            plan.ops.push(patch::add(
                pointer,
                PatchValue::Owned(Value::Object(absent_parent)),
            ));
        }
    }
    plan
}

/// Checks a `requireLabels` rule.
pub(super) fn check_required(rule: &RequireLabels, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let w = &ctx.workload;
    let object = rule.target.contains(&MetadataTarget::Object);
    let template = rule.target.contains(&MetadataTarget::PodTemplate);
    for target in meta_targets(w, object, template) {
        for key in &rule.labels {
            let present = w
                .meta_value(target.location, true, key)
                .is_some_and(|v| !v.is_empty());
            if !present {
                out.push(Found::in_object(
                    format!("{}.labels[\"{key}\"]", target.path),
                    format!("missing label {key}"),
                    format!("add the label {key} to {}.labels", target.path),
                ));
            }
        }
    }
}

/// Checks a `disallowNamespaces` rule. An unknown namespace (a manifest without one) is not
/// judged: the namespace is decided when it is applied.
pub(super) fn check_namespace(rule: &DisallowNamespaces, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let Some(ns) = ctx.namespace else { return };
    if rule.namespaces.iter().any(|p| pattern_matches(p, ns)) {
        out.push(Found::in_object(
            "metadata.namespace".to_owned(),
            format!("workloads may not run in namespace \"{ns}\""),
            "deploy into your team's namespace (kubectl -n <namespace>)".to_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Template;
    use serde_json::json;

    fn defaults(
        labels: &[(&str, &str)],
        object: bool,
        pod_template: bool,
    ) -> CompiledDefaultLabels {
        CompiledDefaultLabels {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Template::parse(v).expect("template")))
                .collect(),
            annotations: vec![(
                "portcullis.dev/note".into(),
                Template::parse("a/b~c").expect("t"),
            )],
            object,
            pod_template,
        }
    }

    fn apply(plan: &Plan, obj: &Value) -> Value {
        let mut doc = obj.clone();
        super::patch::Patch(plan.ops.clone())
            .apply(&mut doc)
            .expect("patch applies");
        doc
    }

    #[test]
    fn deployment_object_and_template_without_overwriting() {
        let obj = json!({"metadata": {"name": "web", "labels": {"team": "a"}},
            "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "mine"}}, "spec": {"containers": []}}}});
        let w = Workload::new(WorkloadKind::Deployment, &obj).expect("w");
        let rule = defaults(
            &[("app.kubernetes.io/name", "{{name}}"), ("team", "x")],
            true,
            true,
        );
        let plan = plan_defaults(&rule, &w, Some("shop"), true);
        let out = apply(&plan, &obj);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"team": "a", "app.kubernetes.io/name": "web"})
        );
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"portcullis.dev/note": "a/b~c"})
        );
        assert_eq!(
            out["spec"]["template"]["metadata"]["labels"],
            json!({"app.kubernetes.io/name": "mine", "team": "x"})
        );
        // Idempotent: nothing more to do.
        let w2 = Workload::new(WorkloadKind::Deployment, &out).expect("w");
        assert!(plan_defaults(&rule, &w2, Some("shop"), true).ops.is_empty());
    }

    #[test]
    fn absent_template_metadata_is_created() {
        let obj = json!({"metadata": {"name": "j"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let w = Workload::new(WorkloadKind::CronJob, &obj).expect("w");
        let rule = defaults(&[("k", "{{kind}}")], false, true);
        let plan = plan_defaults(&rule, &w, None, true);
        let out = apply(&plan, &obj);
        assert_eq!(
            out["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["k"],
            "CronJob"
        );
    }

    #[test]
    fn pod_is_its_own_template_and_invalid_values_are_skipped() {
        let long = "n".repeat(70);
        let obj = json!({"metadata": {"name": long}, "spec": {"containers": []}});
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("w");
        let rule = defaults(
            &[("name", "{{name}}"), ("ns", "{{namespace}}"), ("k", "v")],
            true,
            true,
        );
        let plan = plan_defaults(&rule, &w, None, true);
        let out = apply(&plan, &obj);
        // Name too long for a label value, namespace unknown: both skipped, and said; one
        // target only.
        assert_eq!(out["metadata"]["labels"], json!({"k": "v"}));
        assert_eq!(plan.ops.len(), 2);
        let notices: Vec<(&str, &str)> = plan
            .notices
            .iter()
            .map(|n| (n.field.as_str(), n.message.as_str()))
            .collect();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert_eq!(notices[0].0, "metadata.labels[\"name\"]");
        assert!(
            notices[0].1.starts_with("label name not added: \"nnnn"),
            "{notices:?}"
        );
        assert!(
            notices[0].1.contains("is not a valid label value"),
            "{notices:?}"
        );
        assert!(
            notices[1].1.contains("{{namespace}} has no value"),
            "{notices:?}"
        );
    }

    #[test]
    fn generate_name_gives_its_stem() {
        let rule = defaults(&[("app.kubernetes.io/name", "{{name}}")], true, true);
        for (generate_name, want) in [("gen-", "gen"), ("web-7d9c-", "web-7d9c"), ("a.b.", "a.b")] {
            let obj =
                json!({"metadata": {"generateName": generate_name}, "spec": {"containers": []}});
            let w = Workload::new(WorkloadKind::Pod, &obj).expect("w");
            let plan = plan_defaults(&rule, &w, Some("shop"), true);
            let out = apply(&plan, &obj);
            assert_eq!(out["metadata"]["labels"]["app.kubernetes.io/name"], want);
            assert!(plan.notices.is_empty());
        }
        // A name wins; nothing to name the object by is said.
        let obj = json!({"metadata": {"name": "web", "generateName": "gen-"}, "spec": {"containers": []}});
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("w");
        let out = apply(&plan_defaults(&rule, &w, None, true), &obj);
        assert_eq!(out["metadata"]["labels"]["app.kubernetes.io/name"], "web");
        let obj = json!({"metadata": {"generateName": "-"}, "spec": {"containers": []}});
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("w");
        let plan = plan_defaults(&rule, &w, None, true);
        assert!(apply(&plan, &obj)["metadata"].get("labels").is_none());
        assert!(
            plan.notices[0]
                .message
                .contains("neither a name nor a generateName")
        );
    }

    #[test]
    fn required_labels_and_namespaces() {
        let obj = json!({"metadata": {"name": "web", "labels": {"team": "a", "empty": ""}},
            "spec": {"template": {"spec": {"containers": []}}}});
        let w = Workload::new(WorkloadKind::Deployment, &obj).expect("w");
        let mut out = Vec::new();
        let rule = RequireLabels {
            labels: vec!["team".into(), "empty".into(), "tier".into()],
            target: vec![MetadataTarget::Object, MetadataTarget::PodTemplate],
        };
        let input = crate::engine::cel_values::Input::default();
        let in_namespace = |namespace| Context {
            workload: w,
            namespace,
            cel: &input,
        };
        check_required(&rule, &in_namespace(None), &mut out);
        let fields: Vec<_> = out.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels[\"empty\"]",
                "metadata.labels[\"tier\"]",
                "spec.template.metadata.labels[\"team\"]",
                "spec.template.metadata.labels[\"empty\"]",
                "spec.template.metadata.labels[\"tier\"]",
            ]
        );
        let mut out = Vec::new();
        let rule = DisallowNamespaces {
            namespaces: vec!["default".into(), "tmp-*".into()],
        };
        check_namespace(&rule, &in_namespace(Some("tmp-1")), &mut out);
        check_namespace(&rule, &in_namespace(Some("shop")), &mut out);
        check_namespace(&rule, &in_namespace(None), &mut out);
        assert_eq!(out.len(), 1);
    }
}
