//! `requireResources`: containers must declare the selected requests and limits. Applies to
//! app containers and, unless the policy says otherwise, to init containers and native sidecars.
//!
//! Judged on what Kubernetes stores: the apiserver gives every Pod container without a request
//! the request of its limit (Pod defaulting), so a limit alone satisfies the request. A
//! controller's pod template is not defaulted, but every Pod made from it is: the template is
//! judged as its Pods will be, and a bare Pod manifest offline as the apiserver will store it.

use super::rule::{Context, Found};
use crate::json::Json;
use crate::policy::model::{RequireResources, ResourceName};
use crate::workload::ContainerRole;

fn example(r: ResourceName) -> &'static str {
    match r {
        ResourceName::Cpu => "100m",
        ResourceName::Memory => "128Mi",
        ResourceName::EphemeralStorage => "1Gi",
    }
}

fn is_set(section: Option<Json<'_>>, name: &str) -> bool {
    is_quantity(section.and_then(|s| s.get(name)))
}

fn is_quantity(value: Option<Json<'_>>) -> bool {
    value.is_some_and(|q| match q.as_str() {
        Some(s) => !s.trim().is_empty(),
        None => q.is_number(),
    })
}

/// Checks every judged container for the requests and limits the rule requires.
pub(super) fn check(rule: &RequireResources, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let w = &ctx.workload;
    for c in w.containers() {
        if c.role != ContainerRole::App && !rule.init_containers {
            continue;
        }
        let resources = c.value.get("resources");
        let limits = resources.and_then(|r| r.get("limits"));
        for (section, names, why) in [
            (
                "requests",
                &rule.requests,
                "so the scheduler can place the Pod",
            ),
            ("limits", &rule.limits, "to cap what the container may use"),
        ] {
            // One lookup of the section per container, then one per resource name.
            let values = resources.and_then(|r| r.get(section));
            for name in names {
                let n = name.as_str();
                // An absent request defaults to the limit of the same resource.
                let value = values.and_then(|v| v.get(n));
                let set = is_quantity(value)
                    || (section == "requests"
                        && value.is_none_or(Json::is_null)
                        && is_set(limits, n));
                if !set {
                    let singular = &section[..section.len() - 1];
                    out.push(Found::in_container(
                        w,
                        &c,
                        &[".resources.", section, ".", n],
                        ["no ", n, " ", singular].concat(),
                        format!(
                            "set resources.{section}.{n} (e.g. {}) {why}",
                            example(*name)
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::WorkloadKind;
    use crate::workload::Workload;
    use serde_json::{Value, json};

    fn judge(rule: &RequireResources, workload: Workload<'_>) -> Vec<Found> {
        let mut out = Vec::new();
        let ctx = Context {
            workload,
            namespace: None,
            cel: &crate::engine::cel_values::Input::default(),
        };
        check(rule, &ctx, &mut out);
        out
    }

    fn run(rule: &RequireResources, spec: Value) -> Vec<String> {
        let obj = json!({"spec": spec});
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("pod");
        judge(rule, w).into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn table() {
        let full = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "64Mi"}});
        let all = RequireResources::default();
        let cases: Vec<(&str, &RequireResources, Value, Vec<&str>)> = vec![
            (
                "compliant",
                &all,
                json!({"containers": [{"name": "a", "resources": full}]}),
                vec![],
            ),
            (
                "empty resources",
                &all,
                json!({"containers": [{"name": "a", "resources": {}}]}),
                vec![
                    "spec.containers[0].resources.requests.cpu",
                    "spec.containers[0].resources.requests.memory",
                    "spec.containers[0].resources.limits.cpu",
                    "spec.containers[0].resources.limits.memory",
                ],
            ),
            (
                "empty string is not a quantity",
                &all,
                json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}}}]}),
                vec!["spec.containers[0].resources.requests.cpu"],
            ),
            (
                "limits only: the requests default to them",
                &all,
                json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
                       "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
                vec![],
            ),
            (
                "a limit of one resource is no request of another; requests are no limits",
                &all,
                json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}}]}),
                vec!["spec.containers[0].resources.limits.cpu"],
            ),
            (
                "an empty limit is no limit",
                &all,
                json!({"containers": [{"name": "a", "resources": {"limits": {"cpu": "", "memory": "1Gi"}}}]}),
                vec![
                    "spec.containers[0].resources.requests.cpu",
                    "spec.containers[0].resources.limits.cpu",
                ],
            ),
            (
                "init containers and native sidecars are judged",
                &all,
                json!({"containers": [{"name": "a", "resources": full}],
                       "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"memory": "1Mi"}}}]}),
                vec!["spec.initContainers[0].resources.limits.cpu"],
            ),
        ];
        for (name, rule, spec, want) in cases {
            assert_eq!(run(rule, spec), want, "{name}");
        }
        let app_only = RequireResources {
            init_containers: false,
            requests: vec![ResourceName::Memory],
            limits: vec![],
        };
        assert_eq!(
            run(
                &app_only,
                json!({"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]})
            ),
            ["spec.containers[0].resources.requests.memory"]
        );
    }

    #[test]
    fn message_and_hint() {
        let obj = json!({"spec": {"containers": [{"name": "web"}]}});
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("pod");
        let out = judge(&RequireResources::default(), w);
        assert_eq!(out[0].message, "no cpu request");
        assert_eq!(out[3].message, "no memory limit");
        assert!(
            out[3].hint.contains("resources.limits.memory (e.g. 128Mi)"),
            "{}",
            out[3].hint
        );
    }
}
