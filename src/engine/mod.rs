//! The policy decision: `evaluate(&PolicySet, &Request) -> Decision`. Pure and synchronous:
//! no I/O, no clock, no metrics. Callers (webhook, CLI) fetch what they need and pass it in.

mod cel;
#[cfg(test)]
mod cel_conversion_tests;
mod cel_values;
mod decision;
mod evaluate;
mod images;
mod labels;
mod message;
pub mod patch;
mod probes;
mod resources;
mod rule;
mod sidecar;

use crate::json::Json;

use crate::policy::Timestamp;
/// What the caller knows of a namespace's labels (see [`Request::namespace_labels`]).
pub use crate::policy::select::NamespaceLabels;
pub use decision::{Decision, Effect, Finding, FindingKind, Skip};
pub use evaluate::{OffPolicies, evaluate, evaluate_with, evaluate_with_native};
pub use message::{MAX_WARNING_LEN, MAX_WARNINGS_TOTAL};
pub use patch::Patch;

/// The rules the API server enforces itself, by native admission policies confirmed in place
/// (`portcullis serve --native-sync`): the webhook's evaluation leaves them out, so nothing is
/// judged twice. A plain value the caller passes in ([`evaluate_with_native`]); which rules
/// are in it is the caller's business (the engine reads no cluster). Validation rules are left
/// out in every mode (one ValidatingAdmissionPolicy per mode); mutation rules only where the
/// policy enforces (a MutatingAdmissionPolicy applies, it never describes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeRules {
    /// Per policy name, the indexes of its rules (sorted, no duplicates).
    rules: std::collections::BTreeMap<String, Vec<usize>>,
}

impl NativeRules {
    /// No rule: the webhook judges everything.
    pub const NONE: NativeRules = NativeRules {
        rules: std::collections::BTreeMap::new(),
    };

    /// The rules `(policy, rule index)`.
    pub fn new(rules: impl IntoIterator<Item = (String, usize)>) -> NativeRules {
        let mut out = NativeRules::default();
        for (policy, rule) in rules {
            let indexes = out.rules.entry(policy).or_default();
            if let Err(at) = indexes.binary_search(&rule) {
                indexes.insert(at, rule);
            }
        }
        out
    }

    /// Whether no rule is left to the API server.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules are left to the API server.
    pub fn len(&self) -> usize {
        self.rules.values().map(Vec::len).sum()
    }

    /// Whether rule `rule` (its index) of `policy` is left to the API server.
    pub fn contains(&self, policy: &str, rule: usize) -> bool {
        self.rules
            .get(policy)
            .is_some_and(|r| r.binary_search(&rule).is_ok())
    }

    /// Every rule, `(policy, rule index)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.rules
            .iter()
            .flat_map(|(p, r)| r.iter().map(move |i| (p.as_str(), *i)))
    }
}

/// The username of Kubernetes' garbage collector (kube-controller-manager with
/// `--use-service-account-credentials`). Its requests are never judged: see
/// [`Skip::GarbageCollector`].
pub const GARBAGE_COLLECTOR: &str = "system:serviceaccount:kube-system:generic-garbage-collector";

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE (carries `old_object`).
    Update,
    /// DELETE: never judged.
    Delete,
    /// CONNECT: never judged.
    Connect,
}

impl Operation {
    /// `CREATE`, `UPDATE`, ... as the apiserver spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// Everything the engine looks at for one decision. Borrowed: the caller owns the objects.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The operation.
    pub operation: Operation,
    /// API group of the object's kind (`""` for core, `apps`, `batch`).
    pub group: &'a str,
    /// The version of the object's kind (`v1`).
    pub version: &'a str,
    /// The object's kind (`Deployment`).
    pub kind: &'a str,
    /// The resource the request names (`deployments`), as an AdmissionReview carries it;
    /// `None` (files, test cases): the kind's own resource, as kubectl would send it.
    pub resource: Option<&'a str>,
    /// The subresource (`scale`, `status`), if any: such requests are not judged.
    pub sub_resource: Option<&'a str>,
    /// The request's namespace.
    pub namespace: Option<&'a str>,
    /// The request's name (may be empty for `generateName` CREATEs).
    pub name: Option<&'a str>,
    /// The object as it would be stored.
    pub object: Option<Json<'a>>,
    /// The stored object, on UPDATE.
    pub old_object: Option<Json<'a>>,
    /// Whether this is a dry run (`kubectl apply --dry-run=server`). Only CEL rules read it
    /// (`request.dryRun`, as in a ValidatingAdmissionPolicy); the built-in rules never do.
    pub dry_run: bool,
    /// The requesting user (`userInfo.username`), when known.
    pub username: Option<&'a str>,
    /// What is known of the labels of the request's namespace.
    pub namespace_labels: NamespaceLabels<'a>,
    /// When the request is judged: decides which exceptions are in force and which mode a
    /// scheduled policy runs in. Read by the caller (the webhook per request, `audit` once per
    /// run or `--at`, `test` from the case); the engine never reads the clock.
    pub time: Timestamp,
}

impl<'a> Request<'a> {
    /// A CREATE of `object` at `time`, kind and namespace read from the object itself
    /// (offline CLI).
    pub fn create(object: impl Into<Json<'a>>, time: Timestamp) -> Request<'a> {
        let object = object.into();
        let api_version = object
            .get("apiVersion")
            .and_then(Json::as_str)
            .unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let meta = object.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Json::as_str);
        Request {
            operation: Operation::Create,
            group,
            version,
            kind: object.get("kind").and_then(Json::as_str).unwrap_or(""),
            resource: None,
            sub_resource: None,
            namespace: field("namespace"),
            name: field("name"),
            object: Some(object),
            old_object: None,
            dry_run: false,
            username: None,
            namespace_labels: NamespaceLabels::NameOnly,
            time,
        }
    }
}
