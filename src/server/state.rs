//! The state handlers share: the policy set in force (swapped whole on reload), metrics and
//! readiness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::cluster::namespaces::{self, Lookup, NamespaceCache};
use crate::cluster::native_sync::{Confirmed, NativeState};
use crate::policy::{LoadedPolicies, PolicySet, SharedPolicies};
use crate::telemetry::Metrics;

/// Shared server state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    policies: SharedPolicies,
    metrics: Metrics,
    tls_bound: AtomicBool,
    draining: AtomicBool,
    namespaces: OnceLock<NamespaceCache>,
    native: NativeState,
}

impl AppState {
    /// State serving `policies` as generation 1. Not ready until [`AppState::set_tls_bound`].
    pub fn new(policies: PolicySet) -> AppState {
        let metrics = Metrics::new();
        metrics.policy_generation.set(1);
        metrics
            .policies_loaded
            .set(i64::try_from(policies.policies.len()).unwrap_or(i64::MAX));
        AppState {
            inner: Arc::new(Shared {
                policies: SharedPolicies::new(policies),
                metrics,
                tls_bound: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                namespaces: OnceLock::new(),
                native: NativeState::default(),
            }),
        }
    }

    /// The policy set in force. A request keeps the `Arc` it got for its whole evaluation, so a
    /// reload never changes the rules under an in-flight request.
    pub fn policies(&self) -> Arc<LoadedPolicies> {
        self.inner.policies.load()
    }

    /// The policy set in force, as a handle that sees every reload (what the report writer
    /// judges with).
    pub fn shared_policies(&self) -> SharedPolicies {
        self.inner.policies.clone()
    }

    /// Replaces the policy set in one step; returns the new generation.
    pub fn replace_policies(&self, set: PolicySet) -> u64 {
        let count = i64::try_from(set.policies.len()).unwrap_or(i64::MAX);
        let generation = self.inner.policies.replace(set);
        let metrics = &self.inner.metrics;
        metrics
            .policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        metrics.policies_loaded.set(count);
        generation
    }

    /// The rules the cluster's native admission policies were last confirmed to enforce
    /// (nothing without `--native-sync`).
    pub fn native(&self) -> Arc<Confirmed> {
        self.inner.native.load()
    }

    /// Where the native sync publishes what it confirms.
    pub fn native_state(&self) -> NativeState {
        self.inner.native.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Marks the HTTPS listener as bound (ready to serve).
    pub fn set_tls_bound(&self) {
        self.inner.tls_bound.store(true, Ordering::SeqCst);
    }

    /// Marks the server as shutting down: `/readyz` fails so load balancers stop sending.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Ready: policies loaded (always, once the state exists), TLS bound, the namespace cache
    /// synced when there is one, not draining.
    pub fn is_ready(&self) -> bool {
        self.inner.tls_bound.load(Ordering::SeqCst)
            && !self.inner.draining.load(Ordering::SeqCst)
            && self
                .inner
                .namespaces
                .get()
                .is_none_or(NamespaceCache::is_synced)
    }

    /// Gives the handlers a namespace cache (serving with cluster access). Once only.
    pub fn set_namespace_cache(&self, cache: NamespaceCache) {
        if self.inner.namespaces.set(cache).is_err() {
            tracing::error!("a namespace cache was already set; keeping the first");
        }
    }

    /// The namespace cache, when serving with cluster access.
    pub fn namespace_cache(&self) -> Option<&NamespaceCache> {
        self.inner.namespaces.get()
    }

    /// The labels of a review's namespace, from the namespace cache: `None` without cluster
    /// access (policies see the name only). A namespace missing from the cache gets up to
    /// [`namespaces::PENDING_WAIT`] for its watch event when some policy selects namespaces by
    /// label; otherwise its labels do not matter and nobody waits.
    pub async fn namespace_labels(
        &self,
        namespace: Option<&str>,
        policies: &PolicySet,
    ) -> Option<Lookup> {
        let (cache, namespace) = (self.namespace_cache()?, namespace?);
        match cache.lookup(namespace) {
            Lookup::Missing if policies.selects_namespaces_by_label() => Some(
                cache
                    .lookup_or_wait(namespace, namespaces::PENDING_WAIT)
                    .await,
            ),
            lookup => Some(lookup),
        }
    }
}
