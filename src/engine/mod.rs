//! The policy decision: `evaluate(&PolicySet, &Request) -> Decision`. Pure and synchronous:
//! no I/O, no clock, no metrics. Callers (webhook, CLI) fetch what they need and pass it in.

mod cel;
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
pub use evaluate::evaluate;
pub use message::{MAX_WARNING_LEN, MAX_WARNINGS_TOTAL};
pub use patch::Patch;

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
    /// The object's kind (`Deployment`).
    pub kind: &'a str,
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
    /// Whether this is a dry run (`kubectl apply --dry-run=server`): the verdict is the same.
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
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let meta = object.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Json::as_str);
        Request {
            operation: Operation::Create,
            group,
            kind: object.get("kind").and_then(Json::as_str).unwrap_or(""),
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
