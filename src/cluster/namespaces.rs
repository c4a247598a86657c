//! The namespace-label cache the webhook reads: a kube-runtime reflector over the cluster's
//! Namespaces (metadata only, trimmed to name and labels), so a review's namespace labels are a
//! lookup in memory, never an API call. It is ready once the first list is in; when the API
//! server cannot be reached it keeps serving what it has and says how stale that is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;

use crate::engine::NamespaceLabels;
use crate::telemetry::NamespaceCacheMetrics;

type NamespaceMeta = PartialObjectMeta<Namespace>;

/// How long a review waits for a namespace that is not in the cache yet (it was created a
/// moment ago, and its watch event is on the way) before the policies that select namespaces by
/// label run as `warn` ([`NamespaceLabels::Pending`]).
pub const PENDING_WAIT: Duration = Duration::from_secs(1);

/// How often, while the watch fails, the API server is asked whether it answers again (and the
/// staleness metric is updated).
const STALE_CHECK: Duration = Duration::from_secs(2);

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// The cache. Cheap to clone; every clone reads the same store.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<NamespaceMeta>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NamespaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceCache")
            .field("synced", &self.is_synced())
            .field("namespaces", &self.store.len())
            .finish()
    }
}

struct Shared {
    synced: AtomicBool,
    /// Bumped after every change of the store, so waiters can look again.
    changes: watch::Sender<u64>,
    /// Since when the watch fails (`None`: it follows the API server).
    failing_since: Mutex<Option<Instant>>,
    metrics: NamespaceCacheMetrics,
}

/// The labels of one namespace, as looked up: hold it while the engine evaluates.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// In the cache.
    Found(Arc<NamespaceMeta>),
    /// Not in the cache (yet).
    Missing,
}

impl Lookup {
    /// The engine's view of it.
    pub fn labels(&self) -> NamespaceLabels<'_> {
        match self {
            Lookup::Found(ns) => {
                NamespaceLabels::Known(ns.metadata.labels.as_ref().unwrap_or(&NO_LABELS))
            }
            Lookup::Missing => NamespaceLabels::Pending,
        }
    }
}

impl NamespaceCache {
    /// Starts watching the cluster's namespaces on the current tokio runtime. The cache is
    /// empty, and not [synced](NamespaceCache::is_synced), until the first list is in.
    pub fn start(client: kube::Client, metrics: NamespaceCacheMetrics) -> NamespaceCache {
        let (store, writer) = reflector::store();
        let shared = Arc::new(Shared {
            synced: AtomicBool::new(false),
            changes: watch::channel(0).0,
            failing_since: Mutex::new(None),
            metrics,
        });
        let cache = NamespaceCache { store, shared };
        // `PartialObjectMeta`: metadata-only lists and watches, so the API server never sends
        // the rest of the object.
        let api: Api<NamespaceMeta> = Api::all(client.clone());
        let stream = watcher(api, watcher::Config::default())
            // Keep only what lookups need: the name (the store's key) and the labels.
            .modify(|ns: &mut NamespaceMeta| {
                ns.types = None;
                let labels = ns.metadata.labels.take();
                let name = ns.metadata.name.take();
                ns.metadata = kube::core::ObjectMeta {
                    name,
                    labels,
                    ..kube::core::ObjectMeta::default()
                };
            })
            .default_backoff();
        let stream = reflector::reflector(writer, stream);
        tokio::spawn(cache.clone().follow(stream, client));
        cache
    }

    async fn follow(
        self,
        stream: impl futures::Stream<Item = watcher::Result<watcher::Event<NamespaceMeta>>>,
        client: kube::Client,
    ) {
        let mut stream = std::pin::pin!(stream);
        let mut ticker = tokio::time::interval(STALE_CHECK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok(event)) => self.applied(&event),
                    Some(Err(e)) => self.failed(&e),
                    None => break,
                },
                _ = ticker.tick() => self.check_stale(&client).await,
            }
        }
    }

    fn applied(&self, event: &watcher::Event<NamespaceMeta>) {
        let m = &self.shared.metrics;
        if matches!(event, watcher::Event::InitDone)
            && !self.shared.synced.swap(true, Ordering::SeqCst)
        {
            m.synced.set(1);
            tracing::info!(
                namespaces = self.store.len(),
                "namespace cache synced: policies see namespace labels"
            );
        }
        m.namespaces
            .set(i64::try_from(self.store.len()).unwrap_or(i64::MAX));
        self.recovered("the namespace watch delivered an event");
        self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn failed(&self, error: &watcher::Error) {
        self.shared.metrics.watch_errors.inc();
        let mut since = lock(&self.shared.failing_since);
        match *since {
            None if !self.is_synced() => {
                *since = Some(Instant::now());
                tracing::warn!(error = %error,
                    "namespace watch failed: the first list of namespaces failed: not ready until it succeeds");
            }
            None => {
                *since = Some(Instant::now());
                tracing::warn!(error = %error, namespaces = self.store.len(),
                    "namespace watch failed: serving namespace labels from the cache until it recovers");
            }
            Some(start) => tracing::debug!(error = %error,
                stale_seconds = start.elapsed().as_secs(), "namespace watch still failing"),
        }
    }

    fn recovered(&self, how: &str) {
        let mut since = lock(&self.shared.failing_since);
        if let Some(start) = since.take() {
            self.shared.metrics.stale_seconds.set(0.0);
            tracing::info!(
                stale_seconds = start.elapsed().as_secs_f64(),
                how,
                "namespace watch recovered"
            );
        }
    }

    /// While the watch fails: updates the staleness, logs it every minute, and asks the API
    /// server whether it answers again (the watch itself resumes silently when nothing changed).
    async fn check_stale(&self, client: &kube::Client) {
        let Some(start) = *lock(&self.shared.failing_since) else {
            return;
        };
        let stale = start.elapsed();
        self.shared.metrics.stale_seconds.set(stale.as_secs_f64());
        let second = stale.as_secs();
        if second >= 60 && second % 60 < STALE_CHECK.as_secs() {
            tracing::warn!(
                stale_seconds = second,
                namespaces = self.store.len(),
                "namespace watch still failing: namespace labels are served from a stale cache"
            );
        }
        if client.apiserver_version().await.is_ok() {
            self.recovered("the API server answers again");
        }
    }

    /// Whether the first list of namespaces is in (the webhook is ready only then).
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::SeqCst)
    }

    /// The labels of `namespace`, from memory.
    pub fn lookup(&self, namespace: &str) -> Lookup {
        match self.store.get(&ObjectRef::new(namespace)) {
            Some(ns) => Lookup::Found(ns),
            None => Lookup::Missing,
        }
    }

    /// Like [`NamespaceCache::lookup`], but a namespace that is not in the cache gets up to
    /// `wait` for its watch event to arrive (a namespace created a moment ago). Still missing
    /// after that, it is counted as a miss.
    pub async fn lookup_or_wait(&self, namespace: &str, wait: Duration) -> Lookup {
        let mut changes = self.shared.changes.subscribe();
        let found = tokio::time::timeout(wait, async {
            loop {
                if let Lookup::Found(ns) = self.lookup(namespace) {
                    return Some(ns);
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(ns)) => Lookup::Found(ns),
            _ => {
                self.shared.metrics.misses.inc();
                tracing::info!(
                    namespace,
                    waited_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "namespace not in the namespace cache: policies depending on namespace labels only warn"
                );
                Lookup::Missing
            }
        }
    }

    /// A receiver that changes whenever the cache does (namespaces added, relabelled,
    /// deleted, relisted).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Seconds since the cache was last known to be current, when its watch fails.
    pub fn stale_for(&self) -> Option<Duration> {
        lock(&self.shared.failing_since).map(|s| s.elapsed())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
