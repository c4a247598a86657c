//! Policies: the file model, loading and validation, and the compiled [`PolicySet`] the engine
//! evaluates. The lint, which judges a set by evaluating it, sits above both in [`crate::lint`].

pub mod compile;
pub mod load;
pub mod model;
pub mod select;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

pub use compile::{Template, TemplateSegment};
pub use load::LoadError;
use model::{
    DisallowNamespaces, Exclude, InjectionTarget, Match, Mode, RequireImageTag, RequireLabels,
    RequireProbes, RequireResources, WorkloadKind,
};

/// Where a policy came from: file and the line its document starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file (or `<inline>` for policies built from strings).
    pub file: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The usernames of Kubernetes' own controllers, trusted when they create objects with a
/// controller `ownerReference` (such objects were judged at their owner).
pub const DEFAULT_TRUSTED_CONTROLLERS: &[&str] = &[
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:kube-controller-manager",
];

/// A loaded, validated set of policies, ready for [`crate::engine::evaluate`]. Immutable:
/// reloading builds a new set and swaps it in whole.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// Policies in a stable order (file name, then position in the file).
    pub policies: Vec<Arc<CompiledPolicy>>,
    /// Usernames whose controller-owned objects are not judged again (see DESIGN.md).
    pub trusted_controllers: Vec<String>,
    /// Pitfalls found at load that do not stop the set from being used ([`crate::lint`]
    /// warnings).
    pub warnings: Vec<load::Diagnostic>,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::new(Vec::new())
    }
}

impl PolicySet {
    /// A set of the given policies, trusting Kubernetes' own controllers.
    pub fn new(policies: Vec<CompiledPolicy>) -> PolicySet {
        PolicySet {
            policies: policies.into_iter().map(Arc::new).collect(),
            trusted_controllers: DEFAULT_TRUSTED_CONTROLLERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            warnings: Vec::new(),
        }
    }

    /// Replaces the trusted controller usernames.
    pub fn with_trusted_controllers(mut self, users: Vec<String>) -> PolicySet {
        self.trusted_controllers = users;
        self
    }

    /// Makes every policy no stricter than `max` (see [`Mode::at_most`]): `Warn` turns
    /// `enforce` policies into `warn` ones for an audit-first rollout, where nothing is denied
    /// and nothing is mutated; `Enforce` changes nothing.
    pub fn with_max_mode(mut self, max: Mode) -> PolicySet {
        for policy in &mut self.policies {
            let capped = policy.mode.at_most(max);
            if capped != policy.mode {
                Arc::make_mut(policy).mode = capped;
            }
        }
        self
    }

    /// The policy of that name.
    pub fn get(&self, name: &str) -> Option<&CompiledPolicy> {
        self.policies
            .iter()
            .map(Arc::as_ref)
            .find(|p| p.name == name)
    }

    /// Whether an active policy selects by namespace labels (a `namespaceSelector` in `match`
    /// or `exclude`): the only use the engine has for [`crate::engine::Request`]'s
    /// `namespace_labels`, so callers that must work to find them (the offline audit reads its
    /// input twice) can skip it. A new reader of namespace labels must be counted here.
    pub fn uses_namespace_labels(&self) -> bool {
        self.policies.iter().any(|p| {
            p.mode != Mode::Off
                && (p.match_.namespace_selector.is_some()
                    || p.exclude
                        .as_ref()
                        .is_some_and(|e| e.namespace_selector.is_some()))
        })
    }

    /// Whether `username` is a trusted controller identity.
    pub fn is_trusted_controller(&self, username: &str) -> bool {
        self.trusted_controllers.iter().any(|u| u == username)
    }
}

/// One policy, compiled: validated, with templates parsed and sidecars pre-rendered as JSON.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// `metadata.name`.
    pub name: String,
    /// `spec.description`.
    pub description: Option<String>,
    /// `spec.mode`.
    pub mode: Mode,
    /// `spec.match`.
    pub match_: Match,
    /// `spec.exclude`.
    pub exclude: Option<Exclude>,
    /// `spec.rules`, compiled.
    pub rules: Vec<CompiledRule>,
    /// Where the policy was read from.
    pub source: Source,
}

impl CompiledPolicy {
    /// Whether the policy selects the subject (match, and not exclude).
    pub fn selects(&self, subject: &select::Subject<'_>) -> bool {
        select::match_selects(&self.match_, subject)
            && !self
                .exclude
                .as_ref()
                .is_some_and(|e| select::exclude_selects(e, subject))
    }
}

/// A compiled rule. Validation rules keep their file form; mutation rules are pre-rendered.
#[derive(Debug, Clone)]
pub enum CompiledRule {
    /// See [`model::RequireProbes`].
    RequireProbes(RequireProbes),
    /// See [`model::RequireResources`].
    RequireResources(RequireResources),
    /// See [`model::InjectSidecar`].
    InjectSidecar(Box<CompiledSidecar>),
    /// See [`model::DefaultLabels`].
    DefaultLabels(CompiledDefaultLabels),
    /// See [`model::RequireImageTag`].
    RequireImageTag(RequireImageTag),
    /// See [`model::DisallowNamespaces`].
    DisallowNamespaces(DisallowNamespaces),
    /// See [`model::RequireLabels`].
    RequireLabels(RequireLabels),
}

impl CompiledRule {
    /// The rule type's name as written in policy files.
    pub fn type_name(&self) -> &'static str {
        match self {
            CompiledRule::RequireProbes(_) => "requireProbes",
            CompiledRule::RequireResources(_) => "requireResources",
            CompiledRule::InjectSidecar(_) => "injectSidecar",
            CompiledRule::DefaultLabels(_) => "defaultLabels",
            CompiledRule::RequireImageTag(_) => "requireImageTag",
            CompiledRule::DisallowNamespaces(_) => "disallowNamespaces",
            CompiledRule::RequireLabels(_) => "requireLabels",
        }
    }

    /// Whether the rule mutates objects.
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            CompiledRule::InjectSidecar(_) | CompiledRule::DefaultLabels(_)
        )
    }
}

/// A sidecar ready to inject: JSON values rendered once at load time.
#[derive(Debug, Clone)]
pub struct CompiledSidecar {
    /// The container's name.
    pub name: String,
    /// The container as JSON (with `restartPolicy: Always` when native).
    pub container: serde_json::Map<String, Value>,
    /// Volumes to add, by name.
    pub volumes: Vec<(String, Value)>,
    /// Mounts to add to each app container: (volume name, mount path, mount JSON).
    pub volume_mounts: Vec<(String, String, Value)>,
    /// Inject into `initContainers` as a native sidecar.
    pub native_sidecar: bool,
    /// Where the injection lands.
    pub target: InjectionTarget,
    /// Annotation that lets a workload opt out, if the policy allows one.
    pub opt_out_annotation: Option<String>,
}

/// Default labels and annotations with their value templates parsed.
#[derive(Debug, Clone)]
pub struct CompiledDefaultLabels {
    /// (key, value template) pairs, sorted by key.
    pub labels: Vec<(String, Template)>,
    /// (key, value template) pairs, sorted by key.
    pub annotations: Vec<(String, Template)>,
    /// Add to the object's own metadata.
    pub object: bool,
    /// Add to the pod template's metadata.
    pub pod_template: bool,
}

/// The kinds a policy can apply to, after `match.kinds`.
pub fn selected_kinds(m: &Match) -> Vec<WorkloadKind> {
    if m.kinds.is_empty() {
        WorkloadKind::ALL.to_vec()
    } else {
        m.kinds.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::model::Mode;

    const POLICIES: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: strict}
spec:
  mode: enforce
  rules: [{requireProbes: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: gentle}
spec:
  mode: warn
  rules: [{requireResources: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: quiet}
spec:
  mode: audit
  rules: [{requireProbes: {}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata: {name: disabled}
spec:
  mode: "off"
  rules: [{requireProbes: {}}]
"#;

    fn modes(set: &super::PolicySet) -> Vec<(&str, Mode)> {
        set.policies
            .iter()
            .map(|p| (p.name.as_str(), p.mode))
            .collect()
    }

    #[test]
    fn max_mode_only_ever_relaxes() {
        let set = super::load::compile_str(std::path::Path::new("inline.yaml"), POLICIES)
            .expect("policies load");
        let table = [
            (
                Mode::Enforce,
                [Mode::Enforce, Mode::Warn, Mode::Audit, Mode::Off],
            ),
            (Mode::Warn, [Mode::Warn, Mode::Warn, Mode::Audit, Mode::Off]),
            (
                Mode::Audit,
                [Mode::Audit, Mode::Audit, Mode::Audit, Mode::Off],
            ),
            (Mode::Off, [Mode::Off, Mode::Off, Mode::Off, Mode::Off]),
        ];
        for (max, expected) in table {
            let capped = set.clone().with_max_mode(max);
            let names = ["strict", "gentle", "quiet", "disabled"];
            let want: Vec<(&str, Mode)> = names.into_iter().zip(expected).collect();
            assert_eq!(modes(&capped), want, "max mode {max:?}");
        }
        // The original set is untouched (policies are shared, not edited in place).
        assert_eq!(set.get("strict").map(|p| p.mode), Some(Mode::Enforce));
    }

    #[test]
    fn modes_parse_as_written_in_policy_files() {
        for mode in [Mode::Enforce, Mode::Warn, Mode::Audit, Mode::Off] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        let err = "Enforce".parse::<Mode>().expect_err("case matters");
        assert!(
            err.contains("expected enforce, warn, audit or off"),
            "{err}"
        );
    }
}
