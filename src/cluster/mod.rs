//! The cluster, through the kube client (rustls): connecting ([`connect`]), the namespace-label
//! cache the webhook reads ([`namespaces`]), listing workloads for `portcullis audit --cluster`
//! ([`list`]), and the policy reports written in the background by one replica ([`reports`]).
//! The engine never sees any of this: it gets objects and namespace labels as values.

pub mod connect;
pub mod list;
pub mod namespaces;
pub mod reports;

pub use connect::{Connection, KubeArgs};
pub use namespaces::NamespaceCache;
