//! Policies: the file model, loading and validation, and the compiled [`PolicySet`] the engine
//! evaluates. The lint, which judges a set by evaluating it, sits above both in [`crate::lint`].

pub mod cel_cost;
pub mod cel_reads;
pub mod cel_text;
pub mod compile;
pub mod exceptions;
pub mod load;
pub mod model;
pub mod names;
pub mod select;
pub mod shared;
pub mod template;
pub mod timestamp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::json::SharedValue;

pub use load::LoadError;
use model::{
    DisallowNamespaces, ExceptedPolicy, ExceptionMatch, Exclude, InjectionTarget, Match, Mode,
    RequireImageTag, RequireLabels, RequireProbes, RequireResources, ScheduleStep, WorkloadKind,
};
pub use shared::{LoadedPolicies, SharedPolicies};
pub use template::{Template, TemplateSegment};
pub use timestamp::Timestamp;

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
    /// Usernames whose controller-owned objects are not judged again (`serve --trusted-controllers`,
    /// docs/webhook.md).
    pub trusted_controllers: Vec<String>,
    /// Pitfalls found at load that do not stop the set from being used ([`crate::lint`]
    /// warnings).
    pub warnings: Vec<load::Diagnostic>,
    /// `PolicyException` documents, in load order (expired ones included: they have no effect).
    pub exceptions: Vec<Arc<CompiledException>>,
    /// What all the `cel` rules read of a review together ([`cel_reads`]): a review makes
    /// each value once, for all of them.
    pub cel_reads: cel_reads::CelReads,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::new(Vec::new())
    }
}

impl PolicySet {
    /// A set of the given policies, trusting Kubernetes' own controllers.
    pub fn new(policies: Vec<CompiledPolicy>) -> PolicySet {
        let cel_reads = cel_reads::union(policies.iter().flat_map(|p| {
            p.rules.iter().filter_map(|r| match r {
                CompiledRule::Cel(c) => Some(&**c),
                _ => None,
            })
        }));
        PolicySet {
            cel_reads,
            policies: policies.into_iter().map(Arc::new).collect(),
            trusted_controllers: DEFAULT_TRUSTED_CONTROLLERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            warnings: Vec::new(),
            exceptions: Vec::new(),
        }
    }

    /// Replaces the trusted controller usernames.
    pub fn with_trusted_controllers(mut self, users: Vec<String>) -> PolicySet {
        self.trusted_controllers = users;
        self
    }

    /// Makes every policy no stricter than `max` (see [`Mode::at_most`]): `Warn` turns
    /// `enforce` policies into `warn` ones for an audit-first rollout, where nothing is denied
    /// and nothing is mutated; `Enforce` changes nothing. Schedule steps are capped too, so no
    /// date makes a policy stricter than `max`.
    pub fn with_max_mode(mut self, max: Mode) -> PolicySet {
        for policy in &mut self.policies {
            let capped = policy.mode.at_most(max);
            let steps_capped = policy
                .schedule
                .iter()
                .any(|s| s.mode.at_most(max) != s.mode);
            if capped != policy.mode || steps_capped {
                let p = Arc::make_mut(policy);
                p.mode = capped;
                for step in &mut p.schedule {
                    step.mode = step.mode.at_most(max);
                }
            }
        }
        self
    }

    /// The exception of that name.
    pub fn exception(&self, name: &str) -> Option<&CompiledException> {
        self.exceptions
            .iter()
            .map(Arc::as_ref)
            .find(|e| e.info.name == name)
    }

    /// The policy of that name.
    pub fn get(&self, name: &str) -> Option<&CompiledPolicy> {
        self.policies
            .iter()
            .map(Arc::as_ref)
            .find(|p| p.name == name)
    }

    /// Whether namespace labels other than the name (which every namespace carries) can
    /// change a decision: a `match`, `exclude` or schedule step of an active policy, or an
    /// exception, selects namespaces by such a label. Only then does the webhook wait for a
    /// namespace missing from its cache, and the offline audit read its input twice to find
    /// the `Namespace` objects in it. A new reader of namespace labels must be counted here.
    pub fn selects_namespaces_by_label(&self) -> bool {
        self.policies.iter().any(|p| {
            p.mode != Mode::Off
                && (p
                    .match_
                    .namespace_selector
                    .as_ref()
                    .is_some_and(select::selects_by_label)
                    || p.exclude
                        .as_ref()
                        .and_then(|e| e.namespace_selector.as_ref())
                        .is_some_and(select::selects_by_label)
                    || p.schedule_selects_by_label())
        }) || self.exceptions.iter().any(|e| e.selects_by_label())
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
    /// `spec.mode`: the mode where no schedule step applies.
    pub mode: Mode,
    /// `spec.schedule`, in chronological order (validated).
    pub schedule: Vec<ScheduleStep>,
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
    /// The mode in force at `time` in a namespace: the last schedule step that has started and
    /// selects the namespace, or `spec.mode` where none does.
    pub fn mode_at(
        &self,
        time: Timestamp,
        namespace: Option<&str>,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Mode {
        if self.schedule.is_empty() {
            return self.mode;
        }
        self.schedule
            .iter()
            .rev()
            .find(|s| s.from <= time && select::step_selects(s, namespace, namespace_labels))
            .map_or(self.mode, |s| s.mode)
    }

    /// When the schedule makes the policy `enforce` in this namespace, if it is not enforced at
    /// `time` and a later step does: the first such step's start.
    pub fn enforced_from(
        &self,
        time: Timestamp,
        namespace: Option<&str>,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Option<Timestamp> {
        if self.schedule.is_empty()
            || self.mode_at(time, namespace, namespace_labels) == Mode::Enforce
        {
            return None;
        }
        self.schedule
            .iter()
            .filter(|s| s.from > time && s.mode == Mode::Enforce)
            .map(|s| s.from)
            .find(|&from| self.mode_at(from, namespace, namespace_labels) == Mode::Enforce)
    }

    /// The modes in force at `time`, by namespace scope, most specific first: one entry per
    /// started schedule step that selects namespaces (later steps shadow earlier ones), then
    /// `"*"` for every other namespace. Without a schedule: `[("*", mode)]`.
    pub fn modes_at(&self, time: Timestamp) -> Vec<(String, Mode)> {
        let mut out: Vec<(String, Mode)> = Vec::new();
        for step in self.schedule.iter().rev().filter(|s| s.from <= time) {
            let scope = step_scope(step);
            if scope == "*" {
                out.push((scope, step.mode));
                return out;
            }
            if !out.iter().any(|(s, _)| *s == scope) {
                out.push((scope, step.mode));
            }
        }
        out.push(("*".to_owned(), self.mode));
        out
    }

    /// The start of the first schedule step after `time`, if any.
    pub fn next_change(&self, time: Timestamp) -> Option<Timestamp> {
        self.schedule.iter().map(|s| s.from).find(|&f| f > time)
    }

    /// Whether some schedule step (or `spec.mode`) makes the policy `enforce`.
    pub fn ever_enforced(&self) -> bool {
        self.mode == Mode::Enforce || self.schedule.iter().any(|s| s.mode == Mode::Enforce)
    }

    /// The strictest mode the policy runs in at any time, anywhere.
    pub fn strictest_mode(&self) -> Mode {
        self.schedule
            .iter()
            .map(|s| s.mode)
            .fold(self.mode, std::cmp::Ord::min)
    }

    /// Whether a schedule step selects namespaces by a label other than the name.
    pub fn schedule_selects_by_label(&self) -> bool {
        self.schedule.iter().any(|s| {
            s.namespace_selector
                .as_ref()
                .is_some_and(select::selects_by_label)
        })
    }

    /// Whether the policy selects the subject (match, and not exclude): `Maybe` only when
    /// that depends on namespace labels not known yet.
    pub fn selection(&self, subject: &select::Subject<'_>) -> select::Selection {
        let excluded = self.exclude.as_ref().map_or(select::Selection::No, |e| {
            select::exclude_selects(e, subject)
        });
        select::match_selects(&self.match_, subject).and(!excluded)
    }

    /// Whether the policy certainly selects the subject.
    pub fn selects(&self, subject: &select::Subject<'_>) -> bool {
        self.selection(subject) == select::Selection::Yes
    }
}

/// How a schedule step's namespace selection reads in messages and metrics: `*` (every
/// namespace), `team-*`, `team-*,!team-legacy`, `team-*,{env=prod}`.
pub fn step_scope(step: &ScheduleStep) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(ns) = &step.namespaces {
        parts.extend(ns.include.iter().cloned());
        parts.extend(ns.exclude.iter().map(|e| format!("!{e}")));
    }
    if let Some(sel) = &step.namespace_selector {
        let mut terms: Vec<String> = sel
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        terms.extend(sel.match_expressions.iter().map(|r| {
            format!("{} {:?} ({})", r.key, r.operator, r.values.join(",")).replace(" ()", "")
        }));
        parts.push(format!("{{{}}}", terms.join(",")));
    }
    if parts.is_empty() || (parts.len() == 1 && parts[0] == "*") {
        "*".to_owned()
    } else {
        parts.join(",")
    }
}

/// What an excepted finding says about its exception: self-describing, so reports need nothing
/// else to show who excepted what until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// `metadata.name` of the exception.
    pub name: String,
    /// `spec.owner`.
    pub owner: String,
    /// `spec.reason`.
    pub reason: String,
    /// `spec.expires`: the exception has no effect from this instant on.
    pub expires: Timestamp,
    /// `spec.ticket`.
    pub ticket: Option<String>,
}

/// One `PolicyException`, validated: the policies and rules it names exist.
#[derive(Debug, Clone)]
pub struct CompiledException {
    /// Name, owner, reason, expiry, ticket (shared with every finding it excepts).
    pub info: Arc<ExceptionInfo>,
    /// The policies (and rule types) excepted.
    pub policies: Vec<ExceptedPolicy>,
    /// The workloads (and containers) excepted.
    pub match_: ExceptionMatch,
    /// Where it was read from.
    pub source: Source,
}

impl CompiledException {
    /// Whether the exception is in force at `time` (it has not expired).
    pub fn in_force(&self, time: Timestamp) -> bool {
        time < self.info.expires
    }

    /// Whether the exception's workload selection (kinds, namespaces, names, selectors) takes
    /// in the subject: `Maybe` only when that depends on namespace labels not known yet.
    pub fn selection(&self, subject: &select::Subject<'_>) -> select::Selection {
        select::exception_selects(&self.match_, subject)
    }

    /// Whether the exception certainly takes in the subject.
    pub fn selects(&self, subject: &select::Subject<'_>) -> bool {
        self.selection(subject) == select::Selection::Yes
    }

    /// Whether it selects namespaces by a label other than the name.
    pub fn selects_by_label(&self) -> bool {
        self.match_
            .namespace_selector
            .as_ref()
            .is_some_and(select::selects_by_label)
    }

    /// Whether the exception names this policy (any of its rules).
    pub fn names_policy(&self, policy: &str) -> bool {
        self.policies.iter().any(|p| p.name == policy)
    }

    /// Whether the exception covers a finding of `policy`'s `rule` about `container` (`None`:
    /// a finding about the workload as a whole, such as a mutation).
    pub fn covers(&self, policy: &str, rule: &str, container: Option<&str>) -> bool {
        let names_rule = self
            .policies
            .iter()
            .any(|p| p.name == policy && (p.rules.is_empty() || p.rules.iter().any(|r| r == rule)));
        names_rule
            && (self.match_.containers.is_empty()
                || container.is_some_and(|c| {
                    self.match_
                        .containers
                        .iter()
                        .any(|p| select::pattern_matches(p, c))
                }))
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
    /// See [`model::CelRule`].
    Cel(Box<CompiledCel>),
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
            CompiledRule::Cel(_) => "cel",
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

/// A `cel` rule ready to evaluate: every expression parsed and checked, its cost bounded
/// ([`cel_cost`]).
#[derive(Debug, Clone)]
pub struct CompiledCel {
    /// Judge each container with `container` bound.
    pub for_each_container: bool,
    /// All must be true for the rule to apply.
    pub match_conditions: Vec<CelExpression>,
    /// `variables.NAME`, in declaration order.
    pub variables: Vec<CelExpression>,
    /// The checks, in order.
    pub validations: Vec<CelValidation>,
    /// What the rule can cost, as a function of the review's size.
    pub cost: cel_cost::Cost,
    /// What its expressions can observe of the review ([`cel_reads`]): a review makes only
    /// that.
    pub reads: cel_reads::CelReads,
    /// How the engine binds the variables: each to its own identifier
    /// ([`variable_ident`]), or (`false`) all in the map `variables`. Set by the lowering
    /// (`compile/cel_lower.rs`), which rewrote the expressions to match.
    pub variables_by_name: bool,
    /// In a `forEachContainer` rule, the variables that read no `container` (directly or
    /// through other variables) and that a match condition or a validation needs: the engine
    /// evaluates them once for all the containers (`compile/cel_lower.rs`). Ascending.
    pub shared_variables: Vec<usize>,
    /// In a `forEachContainer` rule, a container whose value (what the rule reads of it) is
    /// identical to that of a container judged before gets the same outcome without being
    /// judged again (`engine/cel.rs`): the same expressions on the same values. Set by the
    /// lowering.
    pub identical_containers_once: bool,
}

impl CompiledCel {
    /// Every expression of the rule: variables, match conditions, validations and their
    /// message expressions.
    pub fn expressions(&self) -> impl Iterator<Item = &CelExpression> {
        self.variables.iter().chain(&self.match_conditions).chain(
            self.validations
                .iter()
                .flat_map(|v| std::iter::once(&v.check).chain(&v.message_expression)),
        )
    }

    /// [`CompiledCel::expressions`], to change them (the lowering).
    pub(crate) fn expressions_mut(&mut self) -> impl Iterator<Item = &mut CelExpression> {
        self.variables
            .iter_mut()
            .chain(&mut self.match_conditions)
            .chain(
                self.validations.iter_mut().flat_map(|v| {
                    std::iter::once(&mut v.check).chain(v.message_expression.as_mut())
                }),
            )
    }
}

/// The identifier variable `name` is bound to in a rule whose variables are bound by name
/// ([`CompiledCel::variables_by_name`]): `variables.NAME` as one identifier, which no
/// expression can spell (a dot is not part of a CEL identifier).
pub fn variable_ident(name: &str) -> String {
    format!("variables.{name}")
}

/// The values a CEL expression may name, besides `variables` and `container`.
pub const CEL_ROOTS: [&str; 6] = [
    "object",
    "oldObject",
    "request",
    "namespaceObject",
    "podSpec",
    "podMetadata",
];

/// One parsed CEL expression.
#[derive(Debug, Clone)]
pub struct CelExpression {
    /// Its name (a variable's or a match condition's; empty for a validation).
    pub name: String,
    /// As written.
    pub text: String,
    /// The syntax tree.
    pub ast: kube_core::cel::cel::IdedExpr,
    /// The variables it reads, directly or through other variables (indexes, ascending).
    pub needs: Vec<usize>,
}

/// One CEL validation, compiled.
#[derive(Debug, Clone)]
pub struct CelValidation {
    /// The expression that must be true.
    pub check: CelExpression,
    /// The message when it is false.
    pub message: Option<String>,
    /// The expression giving the message.
    pub message_expression: Option<CelExpression>,
    /// The VAP reason, kept for the export.
    pub reason: Option<String>,
}

/// A sidecar ready to inject: JSON values rendered once at load time.
#[derive(Debug, Clone)]
pub struct CompiledSidecar {
    /// The container's name.
    pub name: String,
    /// The container as a JSON object (with `restartPolicy: Always` when native).
    pub container: SharedValue,
    /// Volumes to add, by name.
    pub volumes: Vec<(String, SharedValue)>,
    /// Mounts to add to each app container: (volume name, mount path, mount JSON).
    pub volume_mounts: Vec<(String, String, SharedValue)>,
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
