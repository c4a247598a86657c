//! The policy file format: the YAML documents a platform team writes in `policies/`.
//!
//! Every type here is strict (`deny_unknown_fields`) and derives a JSON Schema, which
//! `portcullis policy schema` prints for editors. Semantic checks that serde cannot express
//! (label syntax, selectors that can never match, container template sanity) live in
//! [`super::compile`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::timestamp::Timestamp;

/// The `apiVersion` every policy document carries.
pub const API_VERSION: &str = "portcullis.dev/v1alpha1";
/// The `kind` every policy document carries.
pub const KIND: &str = "Policy";
/// The `kind` of an exception document.
pub const EXCEPTION_KIND: &str = "PolicyException";

/// One policy document (`kind: Policy`). A directory of these is one policy set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyDocument {
    /// Always `portcullis.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Policy`.
    pub kind: String,
    /// The policy's name (unique in the set) and free-form annotations.
    pub metadata: PolicyMetadata,
    /// What the policy selects, how it is enforced, and its rules.
    pub spec: PolicySpec,
}

/// `metadata` of a policy document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyMetadata {
    /// Unique name of the policy: a DNS-1123 label such as `require-probes`. It appears in every
    /// message, report and metric.
    pub name: String,
    /// Free-form annotations (owner, ticket, docs link); not interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Free-form labels; not interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `spec` of a policy document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// One sentence for humans; shown in `portcullis policy validate` and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What happens when a rule finds something: `enforce` denies (or applies the mutation),
    /// `warn` allows with a warning kubectl prints, `audit` allows and only records, `off`
    /// disables the policy.
    pub mode: Mode,
    /// How the mode changes over time, per namespace selection: each step gives the mode from
    /// its `from` time on, in the namespaces it selects. The last step (in list order, which
    /// must be chronological) that has started and selects the request's namespace decides;
    /// where none does, `mode` applies. Empty: `mode` always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ScheduleStep>,
    /// Which workloads the policy applies to. Absent: every workload kind in every namespace.
    #[serde(default, rename = "match")]
    pub match_: Match,
    /// Workloads taken out of the policy even though `match` selects them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Exclude>,
    /// The rules, each a single-key map naming its type (`- requireProbes: {...}`).
    pub rules: Vec<Rule>,
}

/// One step of a policy's schedule: from `from` on, the policy runs in `mode` in the namespaces
/// the step selects (every namespace when it sets neither `namespaces` nor
/// `namespaceSelector`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleStep {
    /// When the step starts: a date (00:00:00 UTC of that day) or an RFC 3339 time.
    pub from: Timestamp,
    /// The mode from then on: `enforce`, `warn`, `audit` or `off` (demotion is allowed).
    pub mode: Mode,
    /// Only in these namespaces (name patterns, `*` wildcard; `exclude` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceFilter>,
    /// Only in namespaces carrying these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// How a policy acts on what its rules find.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny violating requests; apply mutations.
    Enforce,
    /// Allow, and return a warning (kubectl prints `Warning: ...`); mutations are only described.
    Warn,
    /// Allow silently; findings are recorded in logs, metrics and reports.
    Audit,
    /// The policy is loaded and validated but does nothing.
    Off,
}

impl Mode {
    /// The lowercase name used in policy files, messages and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }

    /// This mode, made no stricter than `max`: with `max = Warn`, `Enforce` becomes `Warn`
    /// while `Warn`, `Audit` and `Off` stay. (The declaration order runs from strictest to
    /// most lenient, so the result is the more lenient of the two.)
    pub fn at_most(self, max: Mode) -> Mode {
        self.max(max)
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            "audit" => Ok(Mode::Audit),
            "off" => Ok(Mode::Off),
            other => Err(format!(
                "unknown mode {other:?}: expected enforce, warn, audit or off"
            )),
        }
    }
}

/// The workload kinds Portcullis understands: Pods and every pod controller.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
pub enum WorkloadKind {
    /// `v1 Pod`.
    Pod,
    /// `apps/v1 Deployment`.
    Deployment,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
    /// `apps/v1 ReplicaSet`.
    ReplicaSet,
    /// `batch/v1 Job`.
    Job,
    /// `batch/v1 CronJob` (pod template at `spec.jobTemplate.spec.template`).
    CronJob,
    /// `v1 ReplicationController`.
    ReplicationController,
}

impl WorkloadKind {
    /// Every workload kind, in a stable order.
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
        WorkloadKind::ReplicationController,
    ];

    /// The Kubernetes kind name (`Deployment`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::ReplicationController => "ReplicationController",
        }
    }

    /// The kind's resource (plural), as the API server names it (`deployments`).
    pub fn resource(self) -> &'static str {
        match self {
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

    /// The API group the kind lives in (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            WorkloadKind::Pod | WorkloadKind::ReplicationController => "",
            WorkloadKind::Deployment
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet
            | WorkloadKind::ReplicaSet => "apps",
            WorkloadKind::Job | WorkloadKind::CronJob => "batch",
        }
    }

    /// The kind for a group and kind name, if it is a workload kind. The legacy group
    /// `extensions` (Deployments, DaemonSets and ReplicaSets until Kubernetes 1.16) counts as
    /// `apps`, so old manifests are judged like `apps/v1beta1` ones rather than passed as
    /// "not a workload".
    pub fn from_group_kind(group: &str, kind: &str) -> Option<WorkloadKind> {
        let found = WorkloadKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
        let legacy = group == "extensions"
            && matches!(
                found,
                WorkloadKind::Deployment | WorkloadKind::DaemonSet | WorkloadKind::ReplicaSet
            );
        (found.group() == group || legacy).then_some(found)
    }

    /// Jobs and CronJobs run to completion; probe rules normally exempt them.
    pub fn runs_to_completion(self) -> bool {
        matches!(self, WorkloadKind::Job | WorkloadKind::CronJob)
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which workloads a policy selects. Every field that is set must match (AND); an empty list
/// or absent selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    /// Workload kinds (`Pod`, `Deployment`, ...). Empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<WorkloadKind>,
    /// Namespace names to include and exclude; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceFilter>,
    /// Labels the workload's namespace must carry (Kubernetes label selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Labels the workload itself must carry (Kubernetes label selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// Namespace names a policy includes and excludes. Patterns may use `*` as a wildcard.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceFilter {
    /// Only these namespaces. Empty: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Never these namespaces (wins over `include`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// Workloads taken out of a policy. Every field that is set must match (AND) for a workload to
/// be excluded; at least one field must be set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exclude {
    /// Workload kinds to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<WorkloadKind>,
    /// Namespace name patterns to exclude (`*` wildcard).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Workload name patterns to exclude (`*` wildcard).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Exclude workloads whose namespace carries these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Exclude workloads carrying these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Exact key/value pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: SelectorOperator,
    /// Values for `In` and `NotIn` (required, non-empty); must be empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Operator of a label selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One rule. Written as a single-key map: `- requireProbes: { liveness: true }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "RuleMap", into = "RuleMap")]
pub enum Rule {
    /// App containers must declare probes.
    RequireProbes(RequireProbes),
    /// Containers must declare resource requests and limits.
    RequireResources(RequireResources),
    /// Inject a sidecar container (log shipper, proxy, ...) with its volumes and mounts.
    InjectSidecar(Box<InjectSidecar>),
    /// Add labels and annotations that are absent; never overwrite a value the user set.
    DefaultLabels(DefaultLabels),
    /// Images must be pinned: no forbidden tag (`latest`), no missing tag, optionally a digest.
    RequireImageTag(RequireImageTag),
    /// Workloads must not be created in these namespaces.
    DisallowNamespaces(DisallowNamespaces),
    /// Workloads must carry these label keys.
    RequireLabels(RequireLabels),
    /// A platform team's own validations, in CEL, as in a ValidatingAdmissionPolicy.
    Cel(Box<CelRule>),
}

impl Rule {
    /// Every rule type's name, as written in policy files.
    pub const TYPE_NAMES: [&'static str; 8] = [
        "requireProbes",
        "requireResources",
        "injectSidecar",
        "defaultLabels",
        "requireImageTag",
        "disallowNamespaces",
        "requireLabels",
        "cel",
    ];

    /// The rule type's name as written in policy files (`requireProbes`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Rule::RequireProbes(_) => "requireProbes",
            Rule::RequireResources(_) => "requireResources",
            Rule::InjectSidecar(_) => "injectSidecar",
            Rule::DefaultLabels(_) => "defaultLabels",
            Rule::RequireImageTag(_) => "requireImageTag",
            Rule::DisallowNamespaces(_) => "disallowNamespaces",
            Rule::RequireLabels(_) => "requireLabels",
            Rule::Cel(_) => "cel",
        }
    }

    /// Whether the rule changes objects (as opposed to judging them).
    pub fn is_mutation(&self) -> bool {
        matches!(self, Rule::InjectSidecar(_) | Rule::DefaultLabels(_))
    }
}

/// A rule: a map with exactly one key, naming the rule type (`- requireProbes: {}`). The
/// file form of [`Rule`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Rule", extend("minProperties" = 1, "maxProperties" = 1))]
pub struct RuleMap {
    /// App containers must declare probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_probes: Option<RequireProbes>,
    /// Containers must declare resource requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_resources: Option<RequireResources>,
    /// Inject a sidecar container (log shipper, proxy, ...) with its volumes and mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_sidecar: Option<Box<InjectSidecar>>,
    /// Add labels and annotations that are absent; never overwrite a value the user set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_labels: Option<DefaultLabels>,
    /// Images must be pinned: no forbidden tag (`latest`), no missing tag, optionally a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_image_tag: Option<RequireImageTag>,
    /// Workloads must not be created in these namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallow_namespaces: Option<DisallowNamespaces>,
    /// Workloads must carry these label keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_labels: Option<RequireLabels>,
    /// A platform team's own validations, in CEL, as in a ValidatingAdmissionPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cel: Option<Box<CelRule>>,
}

impl TryFrom<RuleMap> for Rule {
    type Error = String;

    fn try_from(m: RuleMap) -> Result<Rule, String> {
        let mut rules: Vec<Rule> = Vec::with_capacity(1);
        rules.extend(m.require_probes.map(Rule::RequireProbes));
        rules.extend(m.require_resources.map(Rule::RequireResources));
        rules.extend(m.inject_sidecar.map(Rule::InjectSidecar));
        rules.extend(m.default_labels.map(Rule::DefaultLabels));
        rules.extend(m.require_image_tag.map(Rule::RequireImageTag));
        rules.extend(m.disallow_namespaces.map(Rule::DisallowNamespaces));
        rules.extend(m.require_labels.map(Rule::RequireLabels));
        rules.extend(m.cel.map(Rule::Cel));
        match rules.len() {
            1 => Ok(rules.remove(0)),
            0 => Err(format!(
                "a rule needs exactly one rule type, one of: {}",
                Rule::TYPE_NAMES.join(", ")
            )),
            _ => Err(format!(
                "a rule has exactly one rule type, found {}: write each as its own list item",
                rules
                    .iter()
                    .map(Rule::type_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl From<Rule> for RuleMap {
    fn from(r: Rule) -> RuleMap {
        let mut m = RuleMap::default();
        match r {
            Rule::RequireProbes(x) => m.require_probes = Some(x),
            Rule::RequireResources(x) => m.require_resources = Some(x),
            Rule::InjectSidecar(x) => m.inject_sidecar = Some(x),
            Rule::DefaultLabels(x) => m.default_labels = Some(x),
            Rule::RequireImageTag(x) => m.require_image_tag = Some(x),
            Rule::DisallowNamespaces(x) => m.disallow_namespaces = Some(x),
            Rule::RequireLabels(x) => m.require_labels = Some(x),
            Rule::Cel(x) => m.cel = Some(x),
        }
        m
    }
}

impl JsonSchema for Rule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        RuleMap::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RuleMap::json_schema(generator)
    }
}

fn yes() -> bool {
    true
}

/// `requireProbes`: which probes every app container must declare.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequireProbes {
    /// Require a `livenessProbe`. Default true.
    #[serde(default = "yes")]
    pub liveness: bool,
    /// Require a `readinessProbe`. Default true.
    #[serde(default = "yes")]
    pub readiness: bool,
    /// Require a `startupProbe`. Default false.
    #[serde(default)]
    pub startup: bool,
    /// Also judge native sidecars (init containers with `restartPolicy: Always`). Default false.
    #[serde(default)]
    pub native_sidecars: bool,
    /// Also judge workloads that run to completion (Jobs, CronJobs, Pods whose `restartPolicy`
    /// is `Never` or `OnFailure`). Default false: they terminate, probes rarely make sense.
    #[serde(default)]
    pub include_run_to_completion: bool,
}

impl Default for RequireProbes {
    fn default() -> Self {
        RequireProbes {
            liveness: true,
            readiness: true,
            startup: false,
            native_sidecars: false,
            include_run_to_completion: false,
        }
    }
}

/// A compute resource a `requireResources` rule can demand.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceName {
    /// `cpu`.
    Cpu,
    /// `memory`.
    Memory,
    /// `ephemeral-storage`.
    EphemeralStorage,
}

impl ResourceName {
    /// The Kubernetes resource name (`cpu`, `memory`, `ephemeral-storage`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceName::Cpu => "cpu",
            ResourceName::Memory => "memory",
            ResourceName::EphemeralStorage => "ephemeral-storage",
        }
    }
}

fn cpu_and_memory() -> Vec<ResourceName> {
    vec![ResourceName::Cpu, ResourceName::Memory]
}

/// `requireResources`: which requests and limits every container must declare.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequireResources {
    /// Resources that need `resources.requests`. Default `[cpu, memory]`.
    #[serde(default = "cpu_and_memory")]
    pub requests: Vec<ResourceName>,
    /// Resources that need `resources.limits`. Default `[cpu, memory]`.
    #[serde(default = "cpu_and_memory")]
    pub limits: Vec<ResourceName>,
    /// Also judge init containers (native sidecars included). Default true.
    #[serde(default = "yes")]
    pub init_containers: bool,
}

impl Default for RequireResources {
    fn default() -> Self {
        RequireResources {
            requests: cpu_and_memory(),
            limits: cpu_and_memory(),
            init_containers: true,
        }
    }
}

/// Where a mutation lands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InjectionTarget {
    /// Where validation judges: the pod template of controllers, and bare Pods. Default.
    #[default]
    Template,
    /// Pods only, controller-created Pods included; controllers are left untouched (no drift
    /// for GitOps tools watching Deployments).
    Pod,
}

/// `injectSidecar`: a container added to every selected workload.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InjectSidecar {
    /// The container to add, as in a Pod spec. Skipped when the workload already has a
    /// container (or init container) of this name.
    pub container: Container,
    /// Volumes added to the pod (skipped when one of that name exists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Mounts added to every app container (skipped per container when it already mounts that
    /// volume name or path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Inject as a native sidecar: an init container with `restartPolicy: Always`
    /// (Kubernetes >= 1.29). It starts before the app and does not keep Jobs from completing.
    /// When false, workloads that run to completion are skipped, since a regular sidecar would
    /// keep their Pods running forever.
    #[serde(default)]
    pub native_sidecar: bool,
    /// `template` (default) or `pod`: see docs/policies.md, `injectSidecar`'s `target`.
    #[serde(default)]
    pub target: InjectionTarget,
    /// An annotation with which a workload may opt out (`"false"` or `"disabled"` skips
    /// injection). Absent: no opt-out; exceptions belong to the platform team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out_annotation: Option<String>,
    /// Give the sidecar the Pod's Kubernetes API token. Default false: an empty read-only
    /// volume is mounted at the token path, so the apiserver's ServiceAccount plugin mounts no
    /// token into it (a log shipper needs no API credentials), and finds nothing to change
    /// after the injection (no second call to the mutating webhook).
    #[serde(default)]
    pub service_account_token: bool,
}

/// Where the ServiceAccount admission plugin mounts the API token into every container that
/// mounts nothing there.
pub const API_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The empty volume a sidecar without `serviceAccountToken` mounts at [`API_TOKEN_PATH`].
pub const NO_API_TOKEN_VOLUME: &str = "portcullis-no-api-token";

/// Where `defaultLabels` and `requireLabels` look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MetadataTarget {
    /// The object's own `metadata` (for a Pod, the Pod itself).
    Object,
    /// The pod template's `metadata` (for a Pod, the Pod itself).
    PodTemplate,
}

fn object_and_template() -> Vec<MetadataTarget> {
    vec![MetadataTarget::Object, MetadataTarget::PodTemplate]
}

fn object_only() -> Vec<MetadataTarget> {
    vec![MetadataTarget::Object]
}

/// `defaultLabels`: labels and annotations added when absent. Values may use `{{name}}`,
/// `{{namespace}}` and `{{kind}}`, taken from the object.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DefaultLabels {
    /// Labels to add when the key is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add when the key is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Where to add them. Default `[object, podTemplate]`.
    #[serde(default = "object_and_template")]
    pub target: Vec<MetadataTarget>,
}

fn latest() -> Vec<String> {
    vec!["latest".to_owned()]
}

/// `requireImageTag`: images must name an explicit, pinned version.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequireImageTag {
    /// Tags that do not count as pinned. Default `[latest]`. A missing tag always violates.
    #[serde(default = "latest")]
    pub forbidden_tags: Vec<String>,
    /// Require an `@sha256:` digest. Default false.
    #[serde(default)]
    pub require_digest: bool,
}

/// `disallowNamespaces`: namespaces workloads must not be created in.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisallowNamespaces {
    /// Namespace name patterns (`*` wildcard), e.g. `[default]`.
    pub namespaces: Vec<String>,
}

/// `requireLabels`: label keys workloads must carry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequireLabels {
    /// Label keys that must be present with a non-empty value.
    pub labels: Vec<String>,
    /// Where to look. Default `[object]`.
    #[serde(default = "object_only")]
    pub target: Vec<MetadataTarget>,
}

/// `cel`: validations written in CEL, with the fields of a ValidatingAdmissionPolicy's
/// `validations`, `variables` and `matchConditions`, so that a VAP's paste in unchanged. See
/// docs/cel.md for the variables (`object`, `oldObject`, `request`, `namespaceObject`,
/// `podSpec`, `podMetadata`, `container`) and the library.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CelRule {
    /// Judge every container (`initContainers`, `containers`, `ephemeralContainers`) with
    /// `container` bound to it; findings name the container. Default false: judge the object
    /// once.
    #[serde(default)]
    pub for_each_container: bool,
    /// Conditions that must all be true for the rule to apply (as in a VAP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_conditions: Vec<CelNamedExpression>,
    /// Named expressions the others read as `variables.NAME` (as in a VAP): each evaluated at
    /// most once per object (per container in the `forEachContainer` form), and only if read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<CelNamedExpression>,
    /// The checks, in order: each false one is a violation (as in a VAP).
    pub validations: Vec<CelValidation>,
}

/// A named CEL expression: a match condition or a variable.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CelNamedExpression {
    /// The name (`variables.NAME` for a variable).
    pub name: String,
    /// The CEL expression.
    pub expression: String,
}

/// One CEL validation (as in a VAP).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CelValidation {
    /// A CEL expression that must evaluate to true.
    pub expression: String,
    /// The violation's message when it is false. Default: `failed expression: EXPRESSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A CEL expression giving the message (a string); if it fails or gives an empty string,
    /// `message` (or the default) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
    /// The reason (`Forbidden`, `Invalid`, `RequestEntityTooLarge`, `Unauthorized`), as in a
    /// VAP; accepted and kept for the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One exception document (`kind: PolicyException`): findings of some policies' rules about some
/// workloads are excepted until a date. An excepted finding is never dropped: it is reported
/// with the effect `excepted`, naming the exception, its owner and its expiry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionDocument {
    /// Always `portcullis.dev/v1alpha1`.
    pub api_version: String,
    /// Always `PolicyException`.
    pub kind: String,
    /// The exception's name (unique among exceptions) and free-form annotations.
    pub metadata: PolicyMetadata,
    /// Who owns it, why, until when, and what it excepts.
    pub spec: ExceptionSpec,
}

/// `spec` of an exception document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionSpec {
    /// Who answers for the exception (a team, a person, an address). Shown with every excepted
    /// finding.
    pub owner: String,
    /// Why the exception exists.
    pub reason: String,
    /// When it ends: a date (the exception ends at 00:00:00 UTC of that day, so it is no longer
    /// in force on that day) or an RFC 3339 time. An expired exception has no effect.
    pub expires: Timestamp,
    /// A ticket or issue tracking the fix (`PAY-1234`, a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The policies (and optionally only some of their rules) whose findings are excepted.
    pub policies: Vec<ExceptedPolicy>,
    /// The workloads (and optionally containers) excepted. Every field that is set must match;
    /// at least one of `namespaces`, `names`, `namespaceSelector` or `objectSelector` must be set.
    #[serde(rename = "match")]
    pub match_: ExceptionMatch,
}

/// A policy named by an exception.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptedPolicy {
    /// The policy's name.
    pub name: String,
    /// Only these rule types of the policy (`requireProbes`). Empty: all its rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

/// Which workloads and containers an exception covers. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionMatch {
    /// Workload kinds. Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<WorkloadKind>,
    /// Namespace name patterns (`*` wildcard). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Workload name patterns (`*` wildcard). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Labels the workload's namespace must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Labels the workload must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
    /// Container name patterns: only findings about these containers are excepted (violations
    /// only; mutation rules are excepted per workload). Empty: every finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
}
