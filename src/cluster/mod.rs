//! The cluster, through the kube client (rustls): connecting ([`connect`]), the namespace-label
//! cache the webhook reads ([`namespaces`]), listing workloads for `portcullis audit --cluster`
//! ([`list`]), and what one replica, elected by a Lease ([`lease`]), writes in the background:
//! the policy reports ([`reports`]) and the native admission policies ([`native_sync`]).
//! The engine never sees any of this: it gets objects and namespace labels as values.

pub mod connect;
pub mod lease;
pub mod list;
pub mod namespaces;
pub mod native_sync;
pub mod reports;

pub use connect::{Connection, KubeArgs};
pub use namespaces::NamespaceCache;
