//! The workload view: where each kind keeps its PodSpec and pod-template metadata, as JSON
//! Pointer tokens (for patches) and as dotted paths (for messages).

use crate::json::{Json, Object};

use crate::policy::model::WorkloadKind;

/// Path tokens from the object root to the pod template (`None` for a Pod: the Pod is its own
/// template).
fn template_tokens(kind: WorkloadKind) -> &'static [&'static str] {
    match kind {
        WorkloadKind::Pod => &[],
        WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
        _ => &["spec", "template"],
    }
}

/// Why an object cannot be viewed as a workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The object is not a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
    /// The pod spec is missing or not an object.
    #[error("{kind} has no pod spec at {path}")]
    NoPodSpec {
        /// The workload kind.
        kind: WorkloadKind,
        /// Dotted path where the spec was expected.
        path: String,
    },
}

/// The role a container plays in its Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerRole {
    /// An entry of `containers`.
    App,
    /// An entry of `initContainers` that runs to completion before the app starts.
    Init,
    /// An entry of `initContainers` with `restartPolicy: Always` (a native sidecar).
    NativeSidecar,
    /// An entry of `ephemeralContainers` (debug containers; only CEL rules judge them:
    /// [`Workload::containers`] leaves them out).
    Ephemeral,
}

/// One container of a workload, with where it sits.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// App, init or native sidecar.
    pub role: ContainerRole,
    /// Index in its list (`containers` or `initContainers`).
    pub index: usize,
    /// The container's `name` (empty when absent).
    pub name: &'a str,
    /// The container object.
    pub value: Object<'a>,
}

impl ContainerRef<'_> {
    /// The list the container lives in: `containers` or `initContainers`.
    pub fn list(&self) -> &'static str {
        match self.role {
            ContainerRole::App => "containers",
            ContainerRole::Init | ContainerRole::NativeSidecar => "initContainers",
            ContainerRole::Ephemeral => "ephemeralContainers",
        }
    }
}

/// Which `metadata` of a workload: the object's own, or its pod template's. A Pod is its own
/// template, so for a Pod both name the same map and [`MetaLocation::Object`] is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaLocation {
    /// The object's `metadata`.
    Object,
    /// The pod template's `metadata`.
    Template,
}

/// A label or annotation a mutation rule adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaAddition<'a> {
    /// Where it is added.
    pub location: MetaLocation,
    /// A label (`true`) or an annotation.
    pub label: bool,
    /// Its key (from the policy).
    pub key: &'a str,
    /// Its value.
    pub value: String,
}

/// What the mutation rules planned so far. A [`Workload`] view shows them as if they were
/// applied, so later rules and validation see the mutated object without copying it: mutations
/// only ever add containers, volumes, mounts, labels and annotations.
#[derive(Debug, Clone, Default)]
pub struct Additions<'a> {
    /// Containers appended: (`true` for `initContainers`, the container).
    pub containers: Vec<(bool, Object<'a>)>,
    /// Names of the volumes appended to the PodSpec.
    pub volumes: Vec<&'a str>,
    /// Mounts appended: (index in `containers`, volume name, mount path).
    pub mounts: Vec<(usize, &'a str, &'a str)>,
    /// Labels and annotations added.
    pub metadata: Vec<MetaAddition<'a>>,
}

impl<'a> Additions<'a> {
    /// Takes in the additions of a later plan.
    pub fn extend(&mut self, other: Additions<'a>) {
        self.containers.extend(other.containers);
        self.volumes.extend(other.volumes);
        self.mounts.extend(other.mounts);
        self.metadata.extend(other.metadata);
    }
}

/// The role of a container in `initContainers` (`in_init`) or `containers`.
fn role_of(in_init: bool, container: Object<'_>) -> ContainerRole {
    if !in_init {
        ContainerRole::App
    } else if container.get("restartPolicy").and_then(Json::as_str) == Some("Always") {
        ContainerRole::NativeSidecar
    } else {
        ContainerRole::Init
    }
}

/// Appends `n` in decimal (without the formatting machinery: paths are built per finding).
pub(crate) fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// A Pod or pod controller seen through its pod template, with the additions planned so far.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// The workload kind.
    pub kind: WorkloadKind,
    /// The whole object.
    pub object: Object<'a>,
    template: Option<Object<'a>>,
    pod_spec: Object<'a>,
    added: Option<&'a Additions<'a>>,
}

impl<'a> Workload<'a> {
    /// Views `object` as a workload of `kind`.
    pub fn new(
        kind: WorkloadKind,
        object: impl Into<Json<'a>>,
    ) -> Result<Workload<'a>, WorkloadError> {
        let object = object
            .into()
            .as_object()
            .ok_or(WorkloadError::NotAnObject)?;
        let mut template = object;
        for token in template_tokens(kind) {
            template = template
                .get(token)
                .and_then(Json::as_object)
                .ok_or_else(|| WorkloadError::NoPodSpec {
                    kind,
                    path: Self::spec_path_of(kind).to_owned(),
                })?;
        }
        let pod_spec = template
            .get("spec")
            .and_then(Json::as_object)
            .ok_or_else(|| WorkloadError::NoPodSpec {
                kind,
                path: Self::spec_path_of(kind).to_owned(),
            })?;
        Ok(Workload {
            kind,
            object,
            template: (kind != WorkloadKind::Pod).then_some(template),
            pod_spec,
            added: None,
        })
    }

    /// The same view, showing `added` as if it were applied.
    pub fn with_additions(self, added: &'a Additions<'a>) -> Workload<'a> {
        Workload {
            added: Some(added),
            ..self
        }
    }

    /// The additions the view shows, if any.
    pub fn additions_planned(&self) -> Option<&'a Additions<'a>> {
        self.added
    }

    /// The entries of `ephemeralContainers` (which [`Workload::containers`] leaves out).
    pub fn ephemeral_containers(&self) -> impl Iterator<Item = ContainerRef<'a>> + 'a {
        self.pod_spec
            .get("ephemeralContainers")
            .and_then(Json::as_array)
            .into_iter()
            .flat_map(|a| a.iter())
            .enumerate()
            .filter_map(|(index, value)| {
                let value = value.as_object()?;
                Some(ContainerRef {
                    role: ContainerRole::Ephemeral,
                    index,
                    name: value.get("name").and_then(Json::as_str).unwrap_or(""),
                    value,
                })
            })
    }

    fn additions(&self) -> &'a [MetaAddition<'a>] {
        self.added.map_or(&[], |a| a.metadata.as_slice())
    }

    /// The `metadata` map at `location` as written in the object (without additions).
    pub fn metadata_at(&self, location: MetaLocation) -> Option<Object<'a>> {
        match location {
            MetaLocation::Object => self.metadata(),
            MetaLocation::Template => self.template_metadata(),
        }
    }

    /// Whether the `metadata` map at `location` exists, counting additions.
    pub fn has_metadata_at(&self, location: MetaLocation) -> bool {
        self.metadata_at(location).is_some()
            || self.additions().iter().any(|a| a.location == location)
    }

    /// Whether the `labels` (or `annotations`) map at `location` exists, counting additions.
    pub fn has_meta_map(&self, location: MetaLocation, label: bool) -> bool {
        let key = if label { "labels" } else { "annotations" };
        self.metadata_at(location)
            .and_then(|m| m.get(key))
            .is_some_and(Json::is_object)
            || self
                .additions()
                .iter()
                .any(|a| a.location == location && a.label == label)
    }

    /// A label (or annotation) value at `location`, counting additions; `None` when absent or
    /// not a string.
    pub fn meta_value(&self, location: MetaLocation, label: bool, key: &str) -> Option<&'a str> {
        let map = if label { "labels" } else { "annotations" };
        match self
            .metadata_at(location)
            .and_then(|m| m.get(map))
            .and_then(|m| m.get(key))
        {
            Some(v) => v.as_str(),
            None => self
                .additions()
                .iter()
                .find(|a| a.location == location && a.label == label && a.key == key)
                .map(|a| a.value.as_str()),
        }
    }

    /// Whether a label (or annotation) key is present at `location`, counting additions.
    pub fn has_meta_key(&self, location: MetaLocation, label: bool, key: &str) -> bool {
        let map = if label { "labels" } else { "annotations" };
        self.metadata_at(location)
            .and_then(|m| m.get(map))
            .and_then(Json::as_object)
            .is_some_and(|m| m.contains_key(key))
            || self
                .additions()
                .iter()
                .any(|a| a.location == location && a.label == label && a.key == key)
    }

    /// Whether the PodSpec has the array `list` (`containers`, `initContainers`, `volumes`),
    /// counting additions.
    pub fn has_list(&self, list: &str) -> bool {
        self.pod_spec.get(list).is_some_and(Json::is_array)
            || self.added.is_some_and(|a| match list {
                "volumes" => !a.volumes.is_empty(),
                "containers" => a.containers.iter().any(|(init, _)| !init),
                "initContainers" => a.containers.iter().any(|(init, _)| *init),
                _ => false,
            })
    }

    /// The length of the PodSpec array `containers` or `initContainers`, counting additions.
    pub fn list_len(&self, list: &str) -> usize {
        let init = list == "initContainers";
        self.pod_spec
            .get(list)
            .and_then(Json::as_array)
            .map_or(0, |a| a.len())
            + self.added.map_or(0, |a| {
                a.containers.iter().filter(|(i, _)| *i == init).count()
            })
    }

    /// Names of the PodSpec's volumes, counting additions.
    pub fn volume_names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let base = self
            .pod_spec
            .get("volumes")
            .and_then(Json::as_array)
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|v| v.get("name").and_then(Json::as_str));
        let added = self.added.map_or(&[][..], |a| a.volumes.as_slice());
        base.chain(added.iter().copied())
    }

    /// Whether an app container has a `volumeMounts` array, counting additions.
    pub fn has_mounts(&self, c: &ContainerRef<'_>) -> bool {
        c.value.get("volumeMounts").is_some_and(Json::is_array)
            || (c.role == ContainerRole::App
                && self
                    .added
                    .is_some_and(|a| a.mounts.iter().any(|(i, _, _)| *i == c.index)))
    }

    /// The (volume name, mount path) pairs of a container, counting additions.
    pub fn mounts(&self, c: &ContainerRef<'a>) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let base = c
            .value
            .get("volumeMounts")
            .and_then(Json::as_array)
            .into_iter()
            .flat_map(|a| a.iter())
            .map(|m| {
                let field = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("");
                (field("name"), field("mountPath"))
            });
        let (role, index) = (c.role, c.index);
        let added = self
            .added
            .map_or(&[][..], |a| a.mounts.as_slice())
            .iter()
            .filter(move |(i, _, _)| role == ContainerRole::App && *i == index)
            .map(|(_, name, path)| (*name, *path));
        base.chain(added)
    }

    fn spec_path_of(kind: WorkloadKind) -> &'static str {
        match kind {
            WorkloadKind::Pod => "spec",
            WorkloadKind::CronJob => "spec.jobTemplate.spec.template.spec",
            _ => "spec.template.spec",
        }
    }

    /// JSON Pointer tokens from the root to the pod template (empty for a Pod).
    pub fn template_tokens(&self) -> &'static [&'static str] {
        template_tokens(self.kind)
    }

    /// JSON Pointer tokens from the root to the PodSpec.
    pub fn pod_spec_tokens(&self) -> &'static [&'static str] {
        match self.kind {
            WorkloadKind::Pod => &["spec"],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }

    /// Dotted path of the PodSpec for messages (`spec.template.spec`).
    pub fn pod_spec_path(&self) -> &'static str {
        Self::spec_path_of(self.kind)
    }

    /// Dotted path of a container for messages (`spec.template.spec.containers[0]`).
    pub fn container_path(&self, c: &ContainerRef<'_>) -> String {
        self.container_field(c, &[])
    }

    /// Dotted path of a field of a container, `suffix` appended to the container's path
    /// (`spec.template.spec.containers[0]` + `.volumeMounts`), written in one allocation.
    pub fn container_field(&self, c: &ContainerRef<'_>, suffix: &[&str]) -> String {
        let (spec, list) = (self.pod_spec_path(), c.list());
        let mut out = String::with_capacity(
            spec.len() + list.len() + 24 + suffix.iter().map(|s| s.len()).sum::<usize>(),
        );
        out.push_str(spec);
        out.push('.');
        out.push_str(list);
        out.push('[');
        push_decimal(&mut out, c.index);
        out.push(']');
        for s in suffix {
            out.push_str(s);
        }
        out
    }

    /// The object's `metadata`.
    pub fn metadata(&self) -> Option<Object<'a>> {
        self.object.get("metadata").and_then(Json::as_object)
    }

    /// The pod template's `metadata` (the Pod's own for a Pod).
    pub fn template_metadata(&self) -> Option<Object<'a>> {
        match self.template {
            Some(t) => t.get("metadata").and_then(Json::as_object),
            None => self.metadata(),
        }
    }

    /// The PodSpec.
    pub fn pod_spec(&self) -> Object<'a> {
        self.pod_spec
    }

    /// A string field of `metadata`.
    fn meta_str(&self, key: &str) -> Option<&'a str> {
        self.metadata()
            .and_then(|m| m.get(key))
            .and_then(Json::as_str)
    }

    /// The object's name; for a Pod created with `generateName`, that prefix.
    pub fn name(&self) -> &'a str {
        self.meta_str("name")
            .filter(|n| !n.is_empty())
            .or_else(|| self.meta_str("generateName"))
            .unwrap_or("")
    }

    /// `metadata.generateName` (empty when absent).
    pub fn generate_name(&self) -> &'a str {
        self.meta_str("generateName").unwrap_or("")
    }

    /// `metadata.name` exactly (empty when the server will generate it).
    pub fn metadata_name(&self) -> &'a str {
        self.meta_str("name").unwrap_or("")
    }

    /// The object's namespace, as written in its metadata.
    pub fn namespace(&self) -> Option<&'a str> {
        self.meta_str("namespace").filter(|n| !n.is_empty())
    }

    /// The object's labels.
    pub fn labels(&self) -> Option<Object<'a>> {
        self.metadata()
            .and_then(|m| m.get("labels"))
            .and_then(Json::as_object)
    }

    /// The object's annotations.
    pub fn annotations(&self) -> Option<Object<'a>> {
        self.metadata()
            .and_then(|m| m.get("annotations"))
            .and_then(Json::as_object)
    }

    /// The controller owner reference (`controller: true`), as (kind, name).
    pub fn controller_owner(&self) -> Option<(&'a str, &'a str)> {
        self.metadata()?
            .get("ownerReferences")?
            .as_array()?
            .iter()
            .filter_map(Json::as_object)
            .find(|r| r.get("controller").and_then(Json::as_bool) == Some(true))
            .map(|r| {
                (
                    r.get("kind").and_then(Json::as_str).unwrap_or(""),
                    r.get("name").and_then(Json::as_str).unwrap_or(""),
                )
            })
    }

    /// Whether the workload's Pods run to completion: Jobs, CronJobs, and bare Pods whose
    /// `restartPolicy` is `Never` or `OnFailure`. The other controllers' templates may only say
    /// `Always` (the apiserver refuses anything else), so their `restartPolicy` exempts nothing.
    pub fn runs_to_completion(&self) -> bool {
        match self.kind {
            WorkloadKind::Job | WorkloadKind::CronJob => true,
            WorkloadKind::Pod => matches!(
                self.pod_spec.get("restartPolicy").and_then(Json::as_str),
                Some("Never" | "OnFailure")
            ),
            _ => false,
        }
    }

    /// Whether the Pods use the node's network namespace (`hostNetwork: true`), where every
    /// `containerPort` is also a port of the node (the apiserver defaults `hostPort` to it).
    pub fn host_network(&self) -> bool {
        self.pod_spec.get("hostNetwork").and_then(Json::as_bool) == Some(true)
    }

    /// Every container: app containers first, then init containers (native sidecars marked).
    pub fn containers(&self) -> impl Iterator<Item = ContainerRef<'a>> + 'a {
        let list = |key: &str| self.pod_spec.get(key).and_then(Json::as_array);
        let (app, init) = (list("containers"), list("initContainers"));
        let added = self.added.map_or(&[][..], |a| a.containers.as_slice());
        // Each list: what the object holds, then what was appended to it.
        let entries = move |held: Option<crate::json::Array<'a>>, in_init: bool| {
            let appended = added
                .iter()
                .filter(move |(i, _)| *i == in_init)
                .map(|(_, c)| *c);
            held.into_iter()
                .flat_map(|a| a.iter())
                .map(Json::as_object)
                .chain(appended.map(Some))
                .enumerate()
                .filter_map(move |(index, value)| {
                    let value = value?;
                    Some(ContainerRef {
                        role: role_of(in_init, value),
                        index,
                        name: value.get("name").and_then(Json::as_str).unwrap_or(""),
                        value,
                    })
                })
        };
        entries(app, false).chain(entries(init, true))
    }

    /// "Deployment demo/web" — how messages name the workload.
    pub fn display_name(&self, namespace: Option<&str>) -> String {
        let name = self.name();
        let name = if name.is_empty() { "<unnamed>" } else { name };
        match namespace.or(self.namespace()) {
            Some(ns) => [self.kind.as_str(), " ", ns, "/", name].concat(),
            None => [self.kind.as_str(), " ", name].concat(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_are_written_as_to_string_writes_them() {
        for n in [0, 7, 9, 10, 99, 100, 123_456, usize::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn pod_spec_location_per_kind() {
        let spec = json!({"containers": [{"name": "a"}]});
        let cases = [
            (WorkloadKind::Pod, json!({"spec": spec}), "spec"),
            (
                WorkloadKind::Deployment,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::StatefulSet,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::DaemonSet,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::ReplicaSet,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::Job,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::ReplicationController,
                json!({"spec": {"template": {"spec": spec}}}),
                "spec.template.spec",
            ),
            (
                WorkloadKind::CronJob,
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
        ];
        for (kind, obj, path) in cases {
            let w = Workload::new(kind, &obj).expect("workload");
            assert_eq!(w.pod_spec_path(), path, "{kind}");
            assert_eq!(w.pod_spec_tokens().join("."), path, "{kind}");
            let names: Vec<_> = w.containers().map(|c| c.name).collect();
            assert_eq!(names, ["a"], "{kind}");
        }
    }

    #[test]
    fn missing_pod_spec_is_an_error() {
        let err = Workload::new(WorkloadKind::CronJob, &json!({"spec": {}})).expect_err("no spec");
        assert_eq!(
            err.to_string(),
            "CronJob has no pod spec at spec.jobTemplate.spec.template.spec"
        );
        assert_eq!(
            Workload::new(WorkloadKind::Pod, &json!([])).expect_err("array"),
            WorkloadError::NotAnObject
        );
    }

    #[test]
    fn native_sidecars_and_roles() {
        let pod = json!({"spec": {
            "containers": [{"name": "app"}],
            "initContainers": [{"name": "migrate"}, {"name": "proxy", "restartPolicy": "Always"}]
        }});
        let w = Workload::new(WorkloadKind::Pod, &pod).expect("pod");
        let roles: Vec<_> = w.containers().map(|c| (c.name, c.role, c.index)).collect();
        assert_eq!(
            roles,
            [
                ("app", ContainerRole::App, 0),
                ("migrate", ContainerRole::Init, 0),
                ("proxy", ContainerRole::NativeSidecar, 1)
            ]
        );
    }

    #[test]
    fn generate_name_and_owner() {
        let pod = json!({"metadata": {"generateName": "web-7d9-", "namespace": "demo",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9", "controller": true}]},
            "spec": {"restartPolicy": "Never"}});
        let w = Workload::new(WorkloadKind::Pod, &pod).expect("pod");
        assert_eq!(w.name(), "web-7d9-");
        assert_eq!(w.controller_owner(), Some(("ReplicaSet", "web-7d9")));
        assert!(w.runs_to_completion());
        assert_eq!(w.display_name(None), "Pod demo/web-7d9-");
    }
}
