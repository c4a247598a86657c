//! `requireProbes`: app containers (and native sidecars where the policy asks) must declare
//! liveness / readiness / startup probes, each with exactly one handler (as the apiserver
//! demands). Workloads that run to completion are exempt unless the policy includes them.

use super::rule::{Context, Found};
use crate::json::Json;
use crate::policy::model::RequireProbes;
use crate::workload::ContainerRole;

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
pub(super) fn check(rule: &RequireProbes, ctx: &Context<'_>, out: &mut Vec<Found>) {
    let w = &ctx.workload;
    if w.runs_to_completion() && !rule.include_run_to_completion {
        return;
    }
    let wanted = [rule.liveness, rule.readiness, rule.startup];
    for c in w.containers() {
        let judged = match c.role {
            ContainerRole::App => true,
            ContainerRole::NativeSidecar => rule.native_sidecars,
            ContainerRole::Init | ContainerRole::Ephemeral => false,
        };
        if !judged {
            continue;
        }
        for ((field, hint), want) in PROBES.iter().zip(wanted) {
            if !want {
                continue;
            }
            let problem = match c.value.get(field) {
                Some(probe) if !probe.is_null() => handler_problem(field, probe),
                _ => Some((["no ", field].concat(), (*hint).to_owned())),
            };
            if let Some((message, hint)) = problem {
                out.push(Found::in_container(w, &c, &[".", field], message, hint));
            }
        }
    }
}

/// The ways a probe can check a container; the apiserver accepts a probe with exactly one.
const HANDLERS: [&str; 4] = ["exec", "grpc", "httpGet", "tcpSocket"];

/// What is wrong with a declared probe, as (message, hint): not a mapping, or not exactly one
/// handler (a handler set to `null` is unset, as the apiserver reads it).
fn handler_problem(field: &str, probe: Json<'_>) -> Option<(String, String)> {
    let Some(probe) = probe.as_object() else {
        return Some((
            [field, " is not an object"].concat(),
            "write the probe as a mapping with exactly one of httpGet, tcpSocket, grpc or exec"
                .to_owned(),
        ));
    };
    let set: Vec<&str> = HANDLERS
        .into_iter()
        .filter(|h| probe.get(h).is_some_and(|v| !v.is_null()))
        .collect();
    match set.len() {
        1 => None,
        0 => Some((
            [field, " has no handler"].concat(),
            "set exactly one of httpGet, tcpSocket, grpc or exec: the apiserver refuses a probe \
             without one"
                .to_owned(),
        )),
        n => Some((
            format!("{field} has {n} handlers ({})", set.join(", ")),
            "keep exactly one of httpGet, tcpSocket, grpc or exec: the apiserver refuses a probe \
             with more than one"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::WorkloadKind;
    use crate::workload::Workload;
    use serde_json::{Value, json};

    fn judge(rule: &RequireProbes, workload: Workload<'_>) -> Vec<Found> {
        let mut out = Vec::new();
        let ctx = Context {
            workload,
            namespace: None,
            cel: &crate::engine::cel_values::Input::default(),
        };
        check(rule, &ctx, &mut out);
        out
    }

    fn run(rule: RequireProbes, kind: WorkloadKind, obj: Value) -> Vec<String> {
        let w = Workload::new(kind, &obj).expect("workload");
        judge(&rule, w)
            .into_iter()
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
                "a probe needs a handler",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [{"name": "a", "livenessProbe": {},
                    "readinessProbe": {"initialDelaySeconds": 5, "httpGet": null}}]})),
                vec![
                    "a:spec.containers[0].livenessProbe",
                    "a:spec.containers[0].readinessProbe",
                ],
            ),
            (
                "a probe has exactly one handler",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [{"name": "a",
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80}, "exec": {"command": ["true"]}},
                    "readinessProbe": "yes"}]})),
                vec![
                    "a:spec.containers[0].livenessProbe",
                    "a:spec.containers[0].readinessProbe",
                ],
            ),
            (
                "every handler counts",
                RequireProbes::default(),
                WorkloadKind::Pod,
                pod(json!({"containers": [
                    {"name": "a", "livenessProbe": {"tcpSocket": {"port": 80}}, "readinessProbe": {"grpc": {"port": 9090}}},
                    {"name": "b", "livenessProbe": {"exec": {"command": ["true"]}}, "readinessProbe": probe}]})),
                vec![],
            ),
            (
                "restartPolicy Never in a Deployment earns no exemption",
                RequireProbes::default(),
                WorkloadKind::Deployment,
                json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a"}]}}}}),
                vec![
                    "a:spec.template.spec.containers[0].livenessProbe",
                    "a:spec.template.spec.containers[0].readinessProbe",
                ],
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

    fn messages(obj: Value) -> Vec<(String, String)> {
        let w = Workload::new(WorkloadKind::Pod, &obj).expect("workload");
        judge(&RequireProbes::default(), w)
            .into_iter()
            .map(|f| (f.message, f.hint))
            .collect()
    }

    #[test]
    fn handler_problems_say_what_the_apiserver_wants() {
        let found = messages(pod(
            json!({"containers": [{"name": "a", "livenessProbe": {},
            "readinessProbe": {"httpGet": {"port": 80}, "tcpSocket": {"port": 80}}}]}),
        ));
        assert_eq!(found[0].0, "livenessProbe has no handler");
        assert!(
            found[0]
                .1
                .contains("exactly one of httpGet, tcpSocket, grpc or exec"),
            "{}",
            found[0].1
        );
        assert_eq!(
            found[1].0,
            "readinessProbe has 2 handlers (httpGet, tcpSocket)"
        );
        assert!(found[1].1.contains("keep exactly one"), "{}", found[1].1);
        let found = messages(pod(
            json!({"containers": [{"name": "a", "livenessProbe": [],
            "readinessProbe": {"exec": {"command": ["true"]}}}]}),
        ));
        assert_eq!(
            found,
            [(
                "livenessProbe is not an object".to_owned(),
                "write the probe as a mapping with exactly one of httpGet, tcpSocket, grpc or exec"
                    .to_owned()
            )]
        );
    }
}
