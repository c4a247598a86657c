//! The native admission policies kept in sync by `serve` itself (`portcullis serve
//! --native-sync`): the objects of `portcullis policy export` (ValidatingAdmissionPolicy,
//! MutatingAdmissionPolicy and their bindings), written by the one replica that holds the Lease
//! ([`super::lease`], shared with the reports), exported again and applied on every policy
//! reload, at the export's next change (an exception's expiry, a schedule step) and
//! periodically (to repair drift), with server-side apply under one field manager; objects of
//! policies no longer exported deleted. Nothing is written when the cluster already agrees.
//!
//! Every replica, leader or not, watches the objects and publishes which rules the cluster
//! enforces exactly as its own export says ([`NativeState`]): only those does its webhook
//! leave to the API server. What to write and what is confirmed is decided without I/O in
//! [`plan`]; [`syncer`] talks to the API server.

pub mod plan;
mod syncer;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kube::core::ApiResource;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Connection;
use super::connect::calls_client;
use super::lease::LeaseConfig;
use crate::engine::NativeRules;
use crate::native::{GROUP, MutatingVersion};
use crate::policy::{SharedPolicies, Timestamp};
use crate::telemetry::NativeMetrics;

/// The field manager of every write of the sync.
pub const FIELD_MANAGER: &str = "portcullis";

/// No rule left to the API server (a static: a reference to it outlives any request).
static NO_RULES: NativeRules = NativeRules::NONE;

/// The rules the cluster was seen to enforce as exported, and for what: the webhook leaves
/// them to the API server only while all of it still holds.
#[derive(Debug, Clone, Default)]
pub struct Confirmed {
    /// The generation of the policy set exported (a reload makes it stale).
    pub generation: u64,
    /// When the export changes by itself (schedule step, exception expiry): stale from then.
    pub until: Option<Timestamp>,
    /// The rules.
    pub rules: NativeRules,
    /// Namespaces no binding applies to: there the webhook judges everything.
    pub excluded_namespaces: Vec<String>,
}

impl Confirmed {
    /// The rules a review of policy generation `generation`, at `now`, in `namespace` may
    /// leave to the API server: none if this confirmation is of another generation, past its
    /// time, or the namespace is one the bindings leave out.
    pub fn for_request(
        &self,
        generation: u64,
        now: Timestamp,
        namespace: Option<&str>,
    ) -> &NativeRules {
        let current = self.generation == generation && self.until.is_none_or(|t| now < t);
        let bound = namespace
            .is_some_and(|ns| !ns.is_empty() && !self.excluded_namespaces.iter().any(|e| e == ns));
        if current && bound && !self.rules.is_empty() {
            &self.rules
        } else {
            &NO_RULES
        }
    }
}

/// What the webhook reads: the last [`Confirmed`], replaced whole. Empty (nothing confirmed)
/// until a sync confirms something, and again once it stops.
#[derive(Debug, Clone, Default)]
pub struct NativeState(Arc<ArcSwap<Confirmed>>);

impl NativeState {
    /// The confirmation in force.
    pub fn load(&self) -> Arc<Confirmed> {
        self.0.load_full()
    }

    /// Replaces the confirmation.
    pub fn publish(&self, confirmed: Confirmed) {
        self.0.store(Arc::new(confirmed));
    }
}

/// How the sync runs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The export is compared with the cluster (and drift repaired) at least this often,
    /// besides on every change.
    pub interval: Duration,
    /// Namespaces no binding applies to.
    pub excluded_namespaces: Vec<String>,
    /// The Lease that elects the writer (its fence before each batch of writes).
    pub lease: LeaseConfig,
}

/// What the sync reads and where it says what it found.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The policies in force (shared with the webhook).
    pub policies: SharedPolicies,
    /// Where the confirmed rules go (read by the webhook).
    pub state: NativeState,
    /// The sync's metrics.
    pub metrics: NativeMetrics,
}

/// The running sync: stop it with [`NativeSync::stop`].
#[derive(Debug)]
pub struct NativeSync {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl NativeSync {
    /// Starts watching the objects (every replica) and, while `leading`, writing them. A task
    /// on the current runtime: it exports and compares a few objects, no judging of workloads.
    pub fn start(
        connection: &Connection,
        inputs: Inputs,
        config: SyncConfig,
        leading: watch::Receiver<bool>,
    ) -> NativeSync {
        let stop = CancellationToken::new();
        let calls = calls_client(&connection.config).unwrap_or_else(|| connection.client.clone());
        let task = tokio::spawn(syncer::run(
            connection.client.clone(),
            calls,
            inputs,
            config,
            leading,
            stop.clone(),
        ));
        NativeSync { stop, task }
    }

    /// Stops: nothing is confirmed any more (the webhook judges everything), and nothing is
    /// written. The objects stay in the cluster: the API server keeps enforcing them.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The API resource of one of the four kinds, at `version`.
pub fn resource(kind: &str, version: &str) -> ApiResource {
    let plural = match kind.strip_suffix("Policy") {
        Some(stem) => format!("{stem}Policies"),
        None => format!("{kind}s"),
    }
    .to_lowercase();
    ApiResource {
        group: GROUP.to_owned(),
        version: version.to_owned(),
        api_version: format!("{GROUP}/{version}"),
        kind: kind.to_owned(),
        plural,
    }
}

/// The newest MutatingAdmissionPolicy version the cluster serves (`None`: none, the webhook
/// mutates).
pub async fn served_mutating_version(
    client: &kube::Client,
) -> Result<Option<MutatingVersion>, kube::Error> {
    for version in MutatingVersion::ALL {
        let group_version = format!("{GROUP}/{}", version.as_str());
        match client.list_api_group_resources(&group_version).await {
            Ok(list) => {
                if list
                    .resources
                    .iter()
                    .any(|r| r.name == "mutatingadmissionpolicies")
                {
                    return Ok(Some(version));
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_the_api_servers() {
        assert_eq!(
            resource("ValidatingAdmissionPolicy", "v1").plural,
            "validatingadmissionpolicies"
        );
        assert_eq!(
            resource("MutatingAdmissionPolicyBinding", "v1alpha1").plural,
            "mutatingadmissionpolicybindings"
        );
    }

    #[test]
    fn a_confirmation_holds_for_its_generation_time_and_bound_namespaces_only() {
        let c = Confirmed {
            generation: 3,
            until: Some(Timestamp::from_unix(100)),
            rules: NativeRules::new([("probes".to_owned(), 0)]),
            excluded_namespaces: vec!["kube-system".to_owned()],
        };
        let at = Timestamp::from_unix;
        assert!(c.for_request(3, at(99), Some("shop")).contains("probes", 0));
        assert!(
            c.for_request(4, at(99), Some("shop")).is_empty(),
            "reloaded"
        );
        assert!(c.for_request(3, at(100), Some("shop")).is_empty(), "stale");
        assert!(c.for_request(3, at(99), Some("kube-system")).is_empty());
        assert!(c.for_request(3, at(99), None).is_empty());
    }
}
