//! `requireProbes`: app containers (and native sidecars where the policy asks) must declare
//! liveness / readiness / startup probes. Workloads that run to completion are exempt unless
//! the policy includes them.

use super::evaluate::Found;
use crate::policy::model::RequireProbes;
use crate::workload::{ContainerRole, Workload};

const PROBES: [(&str, &str); 3] = [
    (
        "livenessProbe",
        "add a livenessProbe (httpGet, tcpSocket, grpc or exec) so the kubelet restarts the container when it hangs",
    ),
    (
        "readinessProbe",
        "add a readinessProbe (httpGet, tcpSocket, grpc or exec) so traffic only reaches the container once it is ready",
    ),
    (
        "startupProbe",
        "add a startupProbe so slow starts are not mistaken for hangs",
    ),
];

/// Checks every judged container for the probes the rule requires.
pub(super) fn check(rule: &RequireProbes, w: &Workload<'_>, out: &mut Vec<Found>) {
    if w.runs_to_completion() && !rule.include_run_to_completion {
        return;
    }
    let wanted = [rule.liveness, rule.readiness, rule.startup];
    for c in w.containers() {
        let judged = match c.role {
            ContainerRole::App => true,
            ContainerRole::NativeSidecar => rule.native_sidecars,
            ContainerRole::Init => false,
        };
        if !judged {
            continue;
        }
        for ((field, hint), want) in PROBES.iter().zip(wanted) {
            if want && c.value.get(*field).is_none_or(|v| v.is_null()) {
                out.push(Found {
                    rule: "requireProbes",
                    container: Some(c.name.to_owned()),
                    field: [&w.container_path(&c), ".", field].concat(),
                    message: ["no ", field].concat(),
                    hint: (*hint).to_owned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::WorkloadKind;
    use serde_json::{Value, json};

    fn run(rule: RequireProbes, kind: WorkloadKind, obj: Value) -> Vec<String> {
        let w = Workload::new(kind, &obj).expect("workload");
        let mut out = Vec::new();
        check(&rule, &w, &mut out);
        out.into_iter()
            .map(|f| format!("{}:{}", f.container.unwrap_or_default(), f.field))
            .collect()
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn table() {
        let probe = json!({"httpGet": {"path": "/", "port": 80}});
        let both = json!({"name": "ok", "livenessProbe": probe, "readinessProbe": probe});
        let cases: Vec<(&str, RequireProbes, WorkloadKind, Value, Vec<&str>)> = vec![
            (
                "missing both",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [{"name": "a"}]})),
                vec![
                    "a:spec.containers[0].livenessProbe",
                    "a:spec.containers[0].readinessProbe",
                ],
            ),
            (
                "compliant",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [both]})),
                vec![],
            ),
            (
                "null probe counts as missing",
                RequireProbes {
                    readiness: false,
                    ..RequireProbes::default()
                },
                WorkloadKind::Pod,
                pod(json!({"containers": [{"name": "a", "livenessProbe": null}]})),
                vec!["a:spec.containers[0].livenessProbe"],
            ),
            (
                "init containers are not judged",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [both], "initContainers": [{"name": "init"}]})),
                vec![],
            ),
            (
                "native sidecars only when asked",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(
                    json!({"containers": [both], "initContainers": [{"name": "s", "restartPolicy": "Always"}]}),
                ),
                vec![],
            ),
            (
                "native sidecars when asked",
                RequireProbes {
                    native_sidecars: true,
                    readiness: false,
                    ..RequireProbes::default()
                },
                WorkloadKind::Pod,
                pod(
                    json!({"containers": [both], "initContainers": [{"name": "i"}, {"name": "s", "restartPolicy": "Always"}]}),
                ),
                vec!["s:spec.initContainers[1].livenessProbe"],
            ),
            (
                "startup when asked",
                RequireProbes {
                    startup: true,
                    ..RequireProbes::default()
                },
                WorkloadKind::Pod,
                pod(json!({"containers": [both]})),
                vec!["ok:spec.containers[0].startupProbe"],
            ),
            (
                "jobs are exempt",
                RequireProbes::default(),
                WorkloadKind::Job,
                json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}),
                vec![],
            ),
            (
                "restartPolicy Never pods are exempt",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"restartPolicy": "Never", "containers": [{"name": "a"}]})),
                vec![],
            ),
            (
                "cronjobs included when asked",
                RequireProbes {
                    include_run_to_completion: true,
                    readiness: false,
                    ..RequireProbes::default()
                },
                WorkloadKind::CronJob,
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}}}),
                vec!["a:spec.jobTemplate.spec.template.spec.containers[0].livenessProbe"],
            ),
            (
                "every container of a deployment",
                RequireProbes {
                    readiness: false,
                    ..RequireProbes::default()
                },
                WorkloadKind::Deployment,
                json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, both, {"name": "c"}]}}}}),
                vec![
                    "a:spec.template.spec.containers[0].livenessProbe",
                    "c:spec.template.spec.containers[2].livenessProbe",
                ],
            ),
        ];
        for (name, rule, kind, obj, want) in cases {
            assert_eq!(run(rule, kind, obj), want, "{name}");
        }
    }
}
