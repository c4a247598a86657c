//! The engine's output: a [`Decision`] with findings, a verdict and one JSON Patch.

use std::sync::Arc;

use crate::policy::model::Mode;
use crate::policy::{ExceptionInfo, Timestamp};

/// Why a request was allowed without being judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// DELETE and CONNECT are never judged.
    Operation(super::Operation),
    /// Subresources (`/scale`, `/status`) are never judged.
    Subresource(String),
    /// Not a Pod or pod controller.
    NotAWorkload,
    /// Created by a trusted controller with a controller `ownerReference`: judged at its owner.
    ControllerOwned {
        /// Owner kind and name, `ReplicaSet web-7d9`.
        owner: String,
    },
    /// No object in the request.
    NoObject,
    /// An UPDATE of an object that is being deleted (`deletionTimestamp` set): typically its
    /// owner removing a finalizer. Judging it could only hold up the deletion.
    BeingDeleted,
    /// A request of Kubernetes' garbage collector, which only removes `ownerReferences` and
    /// finalizers: judging it could only hold up deletion and garbage collection.
    GarbageCollector,
    /// The object has no usable pod spec; the apiserver's own validation rejects it.
    Malformed(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Operation(op) => write!(f, "{} is not judged", op.as_str()),
            Skip::Subresource(s) => write!(f, "subresource {s} is not judged"),
            Skip::NotAWorkload => f.write_str("not a workload"),
            Skip::ControllerOwned { owner } => {
                write!(f, "controller-owned: judged at its owner {owner}")
            }
            Skip::NoObject => f.write_str("no object in the request"),
            Skip::BeingDeleted => {
                f.write_str("being deleted: updates of an object being deleted are not judged")
            }
            Skip::GarbageCollector => f.write_str(
                "garbage collector: it only removes ownerReferences and finalizers, never judged",
            ),
            Skip::Malformed(why) => write!(f, "not judged: {why}"),
        }
    }
}

/// What a finding does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// Denies the request (violation of an `enforce` policy).
    Deny,
    /// Applied to the object (mutation of an `enforce` policy).
    Apply,
    /// Returned as a warning.
    Warn,
    /// Only recorded (logs, metrics, reports).
    Audit,
    /// Excepted by a `PolicyException` in force: neither denies nor applies; reported with the
    /// exception (and as a warning when the policy would deny, apply or warn).
    Excepted,
}

impl Effect {
    /// `deny`, `apply`, `warn`, `audit`, `excepted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Deny => "deny",
            Effect::Apply => "apply",
            Effect::Warn => "warn",
            Effect::Audit => "audit",
            Effect::Excepted => "excepted",
        }
    }

    /// Every effect, in a stable order.
    pub const ALL: [Effect; 5] = [
        Effect::Deny,
        Effect::Apply,
        Effect::Warn,
        Effect::Audit,
        Effect::Excepted,
    ];
}

impl std::str::FromStr for Effect {
    type Err = String;

    fn from_str(s: &str) -> Result<Effect, String> {
        Effect::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                format!("unknown effect {s:?}: expected deny, apply, warn, audit or excepted")
            })
    }
}

/// Whether a finding is a violation, a mutation, or a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// Something missing or wrong.
    Violation,
    /// A change: applied (enforce) or only described (warn, audit).
    Mutation,
    /// A change a mutation rule did not make, and why (a sidecar that would open a host port
    /// in a host-network Pod). Never denies: effect `warn` (returned as a warning by
    /// `/mutate`), or `audit` in an `audit`-mode policy.
    Notice,
}

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The policy's name.
    pub policy: String,
    /// The rule type (`requireProbes`).
    pub rule: &'static str,
    /// Which check of its rule found it: a `cel` rule's validation (from 0; its match
    /// conditions after them); 0 for the other rule types.
    pub part: usize,
    /// Violation or mutation.
    pub kind: FindingKind,
    /// The policy's mode.
    pub mode: Mode,
    /// What the finding does (an `enforce` violation that already existed before an UPDATE
    /// only warns).
    pub effect: Effect,
    /// The container concerned, if any.
    pub container: Option<String>,
    /// Dotted path of the missing or changed field (`spec.template.spec.containers[0].livenessProbe`).
    pub field: String,
    /// What is wrong, or what changes.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// On UPDATE: the violation was already present in the stored object.
    pub pre_existing: bool,
    /// The exception that excepts the finding (effect [`Effect::Excepted`]).
    pub exception: Option<Arc<ExceptionInfo>>,
    /// When a schedule makes the policy `enforce` for this workload's namespace, if it is not
    /// enforced yet at the request's time.
    pub enforced_from: Option<Timestamp>,
}

impl Finding {
    /// Whether the API client is told about the finding as a warning: warn-mode findings
    /// (pre-existing violations of `enforce` policies included), and excepted findings of
    /// policies that would deny, apply or warn.
    pub fn is_warning(&self) -> bool {
        match self.effect {
            Effect::Warn => true,
            Effect::Excepted => matches!(self.mode, Mode::Enforce | Mode::Warn),
            Effect::Deny | Effect::Apply | Effect::Audit => false,
        }
    }
}

/// The engine's answer for one request.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// How messages name the workload: `Deployment demo/web`.
    pub workload: String,
    /// Set when the request was not judged, with why.
    pub skipped: Option<Skip>,
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Everything found: mutations and notices first (they run before validation), then
    /// violations; each group in policy order.
    pub findings: Vec<Finding>,
    /// The JSON Patch to apply (empty: no change). Only `enforce` mutations contribute.
    pub patch: super::patch::Patch,
    /// Names of the policies that selected the workload.
    pub policies: Vec<String>,
    /// Policies that ran at most in `warn` mode because whether they select the workload
    /// depends on labels of its namespace that were not known yet
    /// ([`super::NamespaceLabels::Pending`]); then those whose violations only warned because
    /// a mutation of such a policy might have fixed them.
    pub labels_pending: Vec<String>,
    /// With [`super::OffPolicies::Measure`]: the policies that select the workload but are
    /// `off` at the request's time in its namespace.
    pub off_policies: Vec<String>,
    /// With [`super::OffPolicies::Measure`]: what the rules of [`Decision::off_policies`] find,
    /// judged as if the policies ran (mode `off`, effect `audit`, or `excepted` when an
    /// exception in force covers it). They decide nothing: readiness figures only.
    pub off_violations: Vec<Finding>,
    /// The rules of the selected policies left to the API server's native admission policies
    /// (policy, rule type): not judged here ([`super::NativeRules`]).
    pub native: Vec<(String, &'static str)>,
}

impl Decision {
    /// A decision that allows without judging.
    pub fn skip(workload: String, why: Skip) -> Decision {
        Decision {
            workload,
            skipped: Some(why),
            allowed: true,
            ..Decision::default()
        }
    }

    /// The violations.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation)
    }

    /// The mutations (applied and described).
    pub fn mutations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Mutation)
    }

    /// The notices: changes not made, and why.
    pub fn notices(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Notice)
    }

    /// Whether the decision carries a patch.
    pub fn is_patched(&self) -> bool {
        !self.patch.is_empty()
    }
}
