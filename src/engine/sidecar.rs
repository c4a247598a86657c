//! `injectSidecar`: add a container (regular or native sidecar), its volumes, and mounts into
//! the app containers. Skipped when a container of that name exists, so it is idempotent, and
//! in host-network Pods when the sidecar declares a port (which would become a host port).

use serde_json::Value;

use super::patch::{self, Pointer, SharedValue};
use super::rule::{Found, Plan};
use crate::policy::CompiledSidecar;
use crate::workload::{ContainerRole, MetaLocation, Workload};

/// Annotation values with which a workload opts out, where the policy allows it.
const OPT_OUT_VALUES: [&str; 2] = ["false", "disabled"];

fn opted_out(rule: &CompiledSidecar, w: &Workload<'_>) -> bool {
    let Some(key) = &rule.opt_out_annotation else {
        return false;
    };
    [MetaLocation::Object, MetaLocation::Template]
        .into_iter()
        .filter_map(|at| w.meta_value(at, false, key))
        .any(|v| OPT_OUT_VALUES.contains(&v.trim().to_ascii_lowercase().as_str()))
}

/// Why an injection did not happen, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NotInjected {
    /// A container of that name is already there (e.g. injected earlier).
    AlreadyPresent,
    /// The workload opted out through the policy's annotation.
    OptedOut,
    /// A regular sidecar would keep a run-to-completion Pod running forever.
    RunsToCompletion,
    /// The Pod uses the host network, where the sidecar's declared port (this one) would
    /// become a port of the node: two such Pods on a node would collide.
    HostNetwork {
        /// The first `containerPort` (or `hostPort`) the sidecar declares.
        port: String,
    },
}

impl NotInjected {
    /// What reports and warnings say about a skipped injection; `None` when there is nothing
    /// to say (the sidecar is there already, the workload opted out, or it runs to completion).
    pub(super) fn notice(&self, rule: &CompiledSidecar, w: &Workload<'_>) -> Option<Found> {
        let NotInjected::HostNetwork { port } = self else {
            return None;
        };
        let found = Found::in_object(
            [w.pod_spec_path(), ".hostNetwork"].concat(),
            format!(
                "not injected: the Pod uses the host network, where the sidecar's containerPort \
                 {port} would become a host port"
            ),
            "nothing to change in the workload; a sidecar that declares no ports is injected \
             into host-network Pods too"
                .to_owned(),
        );
        Some(found.naming(&rule.name))
    }
}

/// The first port the sidecar container declares (`containerPort`, else `hostPort`).
fn declared_port(container: &serde_json::Map<String, Value>) -> Option<String> {
    let ports = container.get("ports")?.as_array()?;
    ports.iter().find_map(|p| {
        ["containerPort", "hostPort"]
            .into_iter()
            .find_map(|k| p.get(k).filter(|v| !v.is_null()))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    })
}

/// Plans the injection into the workload's pod spec.
pub(super) fn plan<'p>(
    rule: &'p CompiledSidecar,
    w: &Workload<'_>,
) -> Result<Plan<'p>, NotInjected> {
    if w.containers().any(|c| c.name == rule.name) {
        return Err(NotInjected::AlreadyPresent);
    }
    if opted_out(rule, w) {
        return Err(NotInjected::OptedOut);
    }
    if !rule.native_sidecar && w.runs_to_completion() {
        return Err(NotInjected::RunsToCompletion);
    }
    // In the host network a containerPort is a port of the node (the apiserver defaults
    // hostPort to it), so two host-network workloads would collide on every node.
    if w.host_network()
        && let Some(port) = rule.container.as_object().and_then(declared_port)
    {
        return Err(NotInjected::HostNetwork { port });
    }
    let spec_pointer = Pointer::of(w.pod_spec_tokens());
    let spec_path = w.pod_spec_path();
    let mut plan = Plan::default();

    // Volumes, unless one of that name exists.
    let volumes: Vec<SharedValue> = rule
        .volumes
        .iter()
        .filter(|(name, _)| !w.volume_names().any(|v| v == name))
        .map(|(name, v)| {
            plan.changes.push(Found::in_object(
                [spec_path, ".volumes"].concat(),
                ["add volume ", name].concat(),
                String::new(),
            ));
            plan.added.volumes.push(name);
            v.clone()
        })
        .collect();
    patch::append_all(
        &mut plan.ops,
        w.has_list("volumes"),
        &spec_pointer,
        "volumes",
        volumes,
    );

    // Mounts into every app container, unless it already mounts that volume or path.
    for c in w.containers().filter(|c| c.role == ContainerRole::App) {
        let new: Vec<SharedValue> = rule
            .volume_mounts
            .iter()
            .filter(|(name, path, _)| {
                !w.mounts(&c)
                    .any(|(n, p)| n == name.as_str() || p == path.as_str())
            })
            .map(|(name, path, m)| {
                plan.changes.push(Found::in_container(
                    w,
                    &c,
                    &[".volumeMounts"],
                    ["mount volume ", name, " at ", path].concat(),
                    String::new(),
                ));
                plan.added.mounts.push((c.index, name, path));
                m.clone()
            })
            .collect();
        let mut base = spec_pointer.with("containers");
        base.push_index(c.index);
        patch::append_all(&mut plan.ops, w.has_mounts(&c), &base, "volumeMounts", new);
    }

    // The container itself.
    let list = if rule.native_sidecar {
        "initContainers"
    } else {
        "containers"
    };
    let index = w.list_len(list);
    let injected = Found::in_object(
        [spec_path, ".", list, "[", &index.to_string(), "]"].concat(),
        [
            "inject ",
            if rule.native_sidecar {
                "native sidecar "
            } else {
                "sidecar "
            },
            "container ",
            &rule.name,
        ]
        .concat(),
        String::new(),
    );
    plan.changes.push(injected.naming(&rule.name));
    patch::append_all(
        &mut plan.ops,
        w.has_list(list),
        &spec_pointer,
        list,
        vec![rule.container.clone()],
    );
    if let Some(container) = rule.container.view().as_object() {
        plan.added.containers.push((rule.native_sidecar, container));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{InjectionTarget, WorkloadKind};
    use serde_json::json;

    fn sidecar(native: bool, opt_out: Option<&str>) -> CompiledSidecar {
        CompiledSidecar {
            name: "log-shipper".into(),
            container: SharedValue::new(
                json!({"name": "log-shipper", "image": "fluent/fluent-bit:3.2.4"}),
            ),
            volumes: vec![(
                "app-logs".into(),
                SharedValue::new(json!({"name": "app-logs", "emptyDir": {}})),
            )],
            volume_mounts: vec![(
                "app-logs".into(),
                "/var/log/app".into(),
                SharedValue::new(json!({"name": "app-logs", "mountPath": "/var/log/app"})),
            )],
            native_sidecar: native,
            target: InjectionTarget::Template,
            opt_out_annotation: opt_out.map(str::to_owned),
        }
    }

    fn run(rule: &CompiledSidecar, kind: WorkloadKind, obj: &Value) -> Result<Value, NotInjected> {
        let w = Workload::new(kind, obj).expect("workload");
        let plan = plan(rule, &w)?;
        let mut doc = obj.clone();
        super::patch::Patch(plan.ops)
            .apply(&mut doc)
            .expect("patch applies");
        // Idempotent: the result needs nothing more.
        let w2 = Workload::new(kind, &doc).expect("workload");
        assert_eq!(
            super::plan(rule, &w2).err(),
            Some(NotInjected::AlreadyPresent)
        );
        Ok(doc)
    }

    #[test]
    fn regular_sidecar_into_deployment_without_volumes() {
        let obj = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "a:1"}, {"name": "b", "image": "b:1", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}}}});
        let out = run(&sidecar(false, None), WorkloadKind::Deployment, &obj).expect("injected");
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(
            spec["volumes"],
            json!([{"name": "app-logs", "emptyDir": {}}])
        );
        assert_eq!(spec["containers"][2]["name"], "log-shipper");
        assert_eq!(
            spec["containers"][0]["volumeMounts"],
            json!([{"name": "app-logs", "mountPath": "/var/log/app"}])
        );
        assert_eq!(spec["containers"][1]["volumeMounts"][1]["name"], "app-logs");
        assert!(spec.get("initContainers").is_none());
    }

    #[test]
    fn native_sidecar_into_job_and_existing_init_containers() {
        let obj = json!({"spec": {"template": {"spec": {"restartPolicy": "Never",
            "volumes": [{"name": "app-logs", "emptyDir": {"medium": "Memory"}}],
            "initContainers": [{"name": "migrate", "image": "m:1"}],
            "containers": [{"name": "app", "image": "a:1", "volumeMounts": [{"name": "other", "mountPath": "/var/log/app"}]}]}}}});
        let out = run(&sidecar(true, None), WorkloadKind::Job, &obj).expect("injected");
        let spec = &out["spec"]["template"]["spec"];
        // The user's volume of the same name is kept; the mount path is taken: no mount.
        assert_eq!(
            spec["volumes"],
            json!([{"name": "app-logs", "emptyDir": {"medium": "Memory"}}])
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(spec["initContainers"][1]["name"], "log-shipper");
    }

    #[test]
    fn skips() {
        let job = json!({"spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}});
        assert_eq!(
            run(&sidecar(false, None), WorkloadKind::Job, &job).err(),
            Some(NotInjected::RunsToCompletion)
        );
        let present = json!({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "log-shipper"}]}});
        let w = Workload::new(WorkloadKind::Pod, &present).expect("w");
        assert_eq!(
            plan(&sidecar(false, None), &w).err(),
            Some(NotInjected::AlreadyPresent)
        );
        let annotated = json!({"metadata": {"annotations": {"logs.example.com/inject": "Disabled"}},
            "spec": {"containers": [{"name": "app"}]}});
        let w = Workload::new(WorkloadKind::Pod, &annotated).expect("w");
        assert_eq!(
            plan(&sidecar(false, Some("logs.example.com/inject")), &w).err(),
            Some(NotInjected::OptedOut)
        );
        // Without an opt-out in the policy, the annotation means nothing.
        assert!(plan(&sidecar(false, None), &w).is_ok());
    }
}
