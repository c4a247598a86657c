//! The report writer, run by the leader: watches every workload kind and Portcullis' own
//! reports, judges each workload as `portcullis audit --cluster` would (same engine, same
//! namespace labels), keeps the results in memory, and writes a namespace's report only when
//! its content differs from what the API server has (server-side apply, one field manager),
//! deleting the reports it no longer wants.
//!
//! Workloads that are judged (those without a controller owner) are kept as compact JSON, so a
//! policy change, a namespace label change or the periodic pass judges them again without
//! listing the cluster again.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::ReportsConfig;
use super::content::{self, REPORT_NAME, WorkloadRef, WorkloadResults};
use crate::audit;
use crate::cluster::connect::describe_error;
use crate::cluster::list::{api_resource, resource_name};
use crate::cluster::namespaces::Lookup;
use crate::engine::NamespaceLabels;
use crate::policy::model::WorkloadKind;
use crate::policy::{Timestamp, exceptions};
use crate::server::AppState;
use crate::telemetry::{ExceptionOwnerLabels, ReportsMetrics, ScanLabels, WriteLabels};

/// The field manager of every report write.
pub const FIELD_MANAGER: &str = "portcullis";

/// How long changes gather before reports are written (many events, one write per report).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How often, while the OpenReports CRDs are missing, they are looked for again.
const CRD_CHECK: Duration = Duration::from_secs(10);

/// The API resource of OpenReports' namespaced `Report`.
pub fn report_resource() -> ApiResource {
    ApiResource {
        group: "openreports.io".to_owned(),
        version: "v1alpha1".to_owned(),
        api_version: content::API_VERSION.to_owned(),
        kind: "Report".to_owned(),
        plural: "reports".to_owned(),
    }
}

/// Whether the OpenReports CRDs are served; logs clearly when they are not (`loud`: at
/// start-up, once per replica).
pub async fn check_crds(client: &kube::Client, metrics: &ReportsMetrics, loud: bool) -> bool {
    let served = match client.list_api_group_resources(content::API_VERSION).await {
        Ok(list) => list.resources.iter().any(|r| r.name == "reports"),
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(e) => {
            tracing::warn!(error = %describe_error(&e), "cannot tell whether the OpenReports CRDs are installed");
            return false;
        }
    };
    metrics.crds_installed.set(i64::from(served));
    if !served && loud {
        tracing::error!(
            "the OpenReports CRDs are not installed (reports.openreports.io, openreports.io/v1alpha1): \
             no policy reports are written until they are. Install them from the OpenReports project: \
             kubectl apply -f https://github.com/openreports/reports-api/releases/download/v0.1.0/install.yaml"
        );
    } else if served && loud {
        tracing::info!("the OpenReports CRDs are installed: the leader writes policy reports");
    }
    served
}

/// A running writer: a thread of its own at the lowest CPU priority (nice 19), with its own
/// runtime and API client, so that its watches and judgements take CPU only when admission
/// leaves some.
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Starts writing (this replica leads); `None` (logged) if the thread cannot start.
    pub fn start(
        kube_config: kube::Config,
        state: AppState,
        config: ReportsConfig,
    ) -> Option<Running> {
        let (stop, stopped) = watch::channel(false);
        let spawned = std::thread::Builder::new()
            .name("portcullis-reports".to_owned())
            .spawn(move || {
                lowest_priority();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "reports: cannot start a runtime; no reports");
                        return;
                    }
                };
                runtime.block_on(async move {
                    // Watches on one client; single calls (writes, the Lease, discovery) on
                    // another, whose calls time out.
                    let watches = kube::Client::try_from(kube_config.clone());
                    let calls = super::calls_client(&kube_config);
                    match (watches, calls) {
                        (Ok(watches), Some(calls)) => {
                            Writer::new(watches, calls, state, config)
                                .run(stopped)
                                .await;
                        }
                        (Err(e), _) => tracing::error!(error = %e,
                            "reports: cannot make an API client; no reports"),
                        (_, None) => {}
                    }
                });
            });
        match spawned {
            Ok(thread) => Some(Running { stop, thread }),
            Err(e) => {
                tracing::error!(error = %e, "reports: cannot start the writer's thread; no reports");
                None
            }
        }
    }

    /// Stops writing: in-flight writes finish (same content either way, and each call times
    /// out), nothing new starts.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join());
        if tokio::time::timeout(super::CALL_TIMEOUT * 2, joined)
            .await
            .is_err()
        {
            tracing::warn!("reports: the writer did not stop in time; it ends with its last call");
        }
    }
}

/// Gives the calling thread the lowest CPU priority (nice 19; on Linux `setpriority` with a
/// thread id applies to that thread only). Lowering one's own priority needs no privilege;
/// where it fails anyway, the writer runs at normal priority and says so.
fn lowest_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::warn!(error = %e, "reports: cannot lower the writer's CPU priority");
    }
}

/// What the watches send the writer.
enum Update {
    Workload(WorkloadKind, watcher::Event<DynamicObject>),
    Report(watcher::Event<DynamicObject>),
    WatchFailed(String, String),
}

/// A judged workload: what it takes to judge it again, and what its results amount to. The
/// results themselves are not kept (they are several times the object's size): a report is
/// built by judging its namespace's workloads again, which takes microseconds each.
struct Tracked {
    /// The object, compact (see [`compact`]).
    json: Box<[u8]>,
    /// A hash of its results, to tell whether an event changed them.
    digest: u64,
    /// Its results by status.
    summary: content::Summary,
    /// The exceptions that excepted one of its findings.
    exceptions: Box<[String]>,
}

impl Tracked {
    fn new(json: Box<[u8]>, results: &WorkloadResults) -> Tracked {
        let mut h = DefaultHasher::new();
        results.hash(&mut h);
        let mut summary = content::Summary::default();
        summary.add(&results.results);
        let mut exceptions: Vec<String> = Vec::new();
        for name in results
            .results
            .iter()
            .filter_map(|r| r.properties.get(content::EXCEPTION_PROPERTY))
        {
            if !exceptions.contains(name) {
                exceptions.push(name.clone());
            }
        }
        Tracked {
            json,
            digest: h.finish(),
            summary,
            exceptions: exceptions.into_boxed_slice(),
        }
    }
}

#[derive(Default)]
struct NamespaceState {
    /// Hash of the labels the workloads were judged with (`None`: not in the cache).
    labels: Option<u64>,
    /// Judged workloads by kind and name.
    workloads: BTreeMap<(WorkloadKind, String), Tracked>,
}

struct Writer {
    /// For watches.
    client: kube::Client,
    /// For single calls (they time out).
    calls: kube::Client,
    state: AppState,
    config: ReportsConfig,
    metrics: ReportsMetrics,
    namespaces: HashMap<String, NamespaceState>,
    /// Hash of each report in the cluster, by namespace (from the watch of our reports).
    stored: HashMap<String, u64>,
    /// During a relist of the reports: what has been seen so far.
    stored_relist: Option<HashMap<String, u64>>,
    /// Hash of each report as last built, by namespace.
    built: HashMap<String, u64>,
    /// Results each report as last built left out (its limits).
    left_out: HashMap<String, usize>,
    /// Namespaces whose results changed since their report was last built.
    dirty: HashSet<String>,
    /// Per kind: whether its list is in (no relist in progress), and what a relist has seen.
    kinds: HashMap<WorkloadKind, KindSync>,
    reports_synced: bool,
    generation: u64,
    last_full: Instant,
    namespace_changes: Option<watch::Receiver<u64>>,
    crds: bool,
    last_crd_check: Instant,
    first_scan_logged: bool,
    started: Instant,
    /// The exceptions found unused at the last full judgement ([`Writer::review_exceptions`]).
    unused_exceptions: Vec<ExceptionOwnerLabels>,
}

#[derive(Default)]
struct KindSync {
    synced: bool,
    relist: Option<HashSet<(String, String)>>,
}

impl Writer {
    fn new(
        client: kube::Client,
        calls: kube::Client,
        state: AppState,
        config: ReportsConfig,
    ) -> Writer {
        let metrics = state.metrics().reports.clone();
        let generation = state.policies().generation;
        let namespace_changes = state.namespace_cache().map(|c| c.subscribe());
        Writer {
            client,
            calls,
            state,
            config,
            metrics,
            namespaces: HashMap::new(),
            stored: HashMap::new(),
            stored_relist: None,
            built: HashMap::new(),
            left_out: HashMap::new(),
            dirty: HashSet::new(),
            kinds: WorkloadKind::ALL
                .into_iter()
                .map(|k| (k, KindSync::default()))
                .collect(),
            reports_synced: false,
            generation,
            last_full: Instant::now(),
            namespace_changes,
            crds: false,
            last_crd_check: Instant::now(),
            first_scan_logged: false,
            started: Instant::now(),
            unused_exceptions: Vec::new(),
        }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        // Without the CRDs nothing can be written (nor watched): wait for them.
        loop {
            self.crds = check_crds(&self.calls, &self.metrics, false).await;
            if self.crds {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(CRD_CHECK) => {}
                () = crate::server::stop_requested(&mut stopped) => return,
            }
        }
        // Judging needs the namespaces' labels: wait for the webhook's namespace cache.
        while self.state.namespace_cache().is_some_and(|c| !c.is_synced()) {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = crate::server::stop_requested(&mut stopped) => return,
            }
        }
        let (updates, mut incoming) = mpsc::channel::<Update>(64);
        let mut watches = Vec::new();
        for kind in WorkloadKind::ALL {
            watches.push(tokio::spawn(watch_workloads(
                self.client.clone(),
                kind,
                updates.clone(),
            )));
        }
        watches.push(tokio::spawn(watch_reports(self.client.clone(), updates)));
        let mut ticker = tokio::time::interval(FLUSH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                update = incoming.recv() => match update {
                    Some(u) => self.apply(u),
                    None => break,
                },
                _ = ticker.tick() => self.tick().await,
                () = crate::server::stop_requested(&mut stopped) => break,
            }
        }
        for w in watches {
            w.abort();
        }
        self.metrics.workloads.set(0);
        self.metrics.exceptions_unused.clear();
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Workload(kind, event) => self.workload_event(kind, event),
            Update::Report(event) => self.report_event(event),
            Update::WatchFailed(what, error) => {
                tracing::warn!(watch = %what, %error, "reports: watch failed, retrying");
            }
        }
    }

    fn workload_event(&mut self, kind: WorkloadKind, event: watcher::Event<DynamicObject>) {
        match event {
            watcher::Event::Init => {
                let sync = self.kinds.entry(kind).or_default();
                sync.synced = false;
                sync.relist = Some(HashSet::new());
            }
            watcher::Event::InitApply(object) => {
                if let Some(key) = self.upsert(kind, object)
                    && let Some(seen) = self.kinds.get_mut(&kind).and_then(|s| s.relist.as_mut())
                {
                    seen.insert(key);
                }
            }
            watcher::Event::InitDone => {
                let seen = self
                    .kinds
                    .get_mut(&kind)
                    .and_then(|s| s.relist.take())
                    .unwrap_or_default();
                // Whatever the relist did not see is gone.
                let gone: Vec<(String, String)> = self
                    .namespaces
                    .iter()
                    .flat_map(|(ns, state)| {
                        state
                            .workloads
                            .keys()
                            .filter(|(k, _)| *k == kind)
                            .map(move |(_, name)| (ns.clone(), name.clone()))
                    })
                    .filter(|key| !seen.contains(key))
                    .collect();
                for (ns, name) in gone {
                    self.remove(kind, &ns, &name);
                }
                self.kinds.entry(kind).or_default().synced = true;
            }
            watcher::Event::Apply(object) => {
                self.upsert(kind, object);
            }
            watcher::Event::Delete(object) => {
                if let (Some(ns), Some(name)) = (object.metadata.namespace, object.metadata.name) {
                    self.remove(kind, &ns, &name);
                }
            }
        }
    }

    /// Judges one workload and keeps its results; returns its (namespace, name).
    fn upsert(&mut self, kind: WorkloadKind, object: DynamicObject) -> Option<(String, String)> {
        self.metrics.events.inc();
        let namespace = object.metadata.namespace.clone()?;
        let name = object.metadata.name.clone()?;
        let value = compact(object, kind);
        let labels = self.labels_of(&namespace);
        let judged = self.judge(&namespace, &value, labels.as_ref());
        let key = (kind, name.clone());
        match judged {
            None => self.remove(kind, &namespace, &name),
            Some(results) => {
                let json = serde_json::to_vec(&value).unwrap_or_default();
                let tracked = Tracked::new(json.into_boxed_slice(), &results);
                let state = self.namespaces.entry(namespace.clone()).or_default();
                state.labels = labels.as_ref().map(hash_labels);
                let changed = state
                    .workloads
                    .get(&key)
                    .is_none_or(|t| t.digest != tracked.digest);
                state.workloads.insert(key, tracked);
                if changed {
                    self.dirty.insert(namespace.clone());
                }
            }
        }
        Some((namespace, name))
    }

    fn remove(&mut self, kind: WorkloadKind, namespace: &str, name: &str) {
        if let Some(state) = self.namespaces.get_mut(namespace)
            && state.workloads.remove(&(kind, name.to_owned())).is_some()
        {
            self.dirty.insert(namespace.to_owned());
            if state.workloads.is_empty() {
                self.namespaces.remove(namespace);
            }
        }
    }

    fn labels_of(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        match self.state.namespace_cache()?.lookup(namespace) {
            Lookup::Found(ns) => Some(ns.metadata.labels.clone().unwrap_or_default()),
            Lookup::Missing => None,
        }
    }

    /// The results of one workload (`None`: not judged here, e.g. controller-owned). A
    /// namespace not in the cache yet gets no results until it is (judged again then).
    fn judge(
        &self,
        namespace: &str,
        object: &Value,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Option<WorkloadResults> {
        if audit::has_controller_owner(object) {
            return None;
        }
        let policies = self.state.policies();
        let results = match labels {
            Some(labels) => {
                // The time decides which exceptions are in force and what schedules do: read
                // here, as the webhook reads it per request.
                let decision = audit::decide(
                    &policies.set,
                    object,
                    Some(namespace),
                    NamespaceLabels::Known(labels),
                    Timestamp::now(),
                );
                content::results_of(&decision)?
            }
            None => Vec::new(),
        };
        let str_of = |ptr: &str| {
            object
                .pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Some(WorkloadResults {
            workload: WorkloadRef {
                api_version: str_of("/apiVersion"),
                kind: str_of("/kind"),
                name: str_of("/metadata/name"),
                uid: str_of("/metadata/uid"),
            },
            results,
        })
    }

    fn report_event(&mut self, event: watcher::Event<DynamicObject>) {
        let entry = |object: &DynamicObject| -> Option<(String, u64)> {
            let ns = object.metadata.namespace.clone()?;
            let value = serde_json::to_value(object).ok()?;
            Some((ns, content::content_hash(&value)))
        };
        match event {
            watcher::Event::Init => self.stored_relist = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                if let (Some(relist), Some((ns, h))) = (self.stored_relist.as_mut(), entry(&object))
                {
                    relist.insert(ns, h);
                }
            }
            watcher::Event::InitDone => {
                self.stored = self.stored_relist.take().unwrap_or_default();
                self.reports_synced = true;
            }
            watcher::Event::Apply(object) => {
                if let Some((ns, h)) = entry(&object) {
                    self.stored.insert(ns, h);
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(ns) = object.metadata.namespace {
                    self.stored.remove(&ns);
                }
            }
        }
        self.metrics
            .reports
            .set(i64::try_from(self.stored.len()).unwrap_or(i64::MAX));
    }

    fn synced(&self) -> bool {
        self.reports_synced && self.kinds.values().all(|k| k.synced)
    }

    async fn tick(&mut self) {
        if !self.synced() {
            return;
        }
        let first_scan = !self.first_scan_logged;
        if first_scan {
            self.first_scan_logged = true;
            let elapsed = self.started.elapsed();
            self.metrics.scan_seconds.set(elapsed.as_secs_f64());
            self.count_scan("start");
            tracing::info!(
                workloads = self.workload_count(),
                namespaces = self.namespaces.len(),
                seconds = elapsed.as_secs_f64(),
                "reports: every workload listed and judged"
            );
        }
        let generation = self.state.policies().generation;
        if generation != self.generation {
            self.generation = generation;
            self.judge_all("policy").await;
        } else if self.last_full.elapsed() >= self.config.interval {
            self.judge_all("periodic").await;
        } else if first_scan {
            // Only now: judged with the policies in force (a reload since is judged above).
            self.review_exceptions("start");
        }
        if self
            .namespace_changes
            .as_mut()
            .is_some_and(|rx| rx.has_changed().unwrap_or(false))
        {
            if let Some(rx) = self.namespace_changes.as_mut() {
                rx.mark_unchanged();
            }
            self.judge_relabelled().await;
        }
        self.metrics
            .workloads
            .set(i64::try_from(self.workload_count()).unwrap_or(i64::MAX));
        self.flush().await;
    }

    fn workload_count(&self) -> usize {
        self.namespaces.values().map(|n| n.workloads.len()).sum()
    }

    fn count_scan(&self, trigger: &str) {
        self.metrics
            .scans
            .get_or_create(&ScanLabels {
                trigger: trigger.to_owned(),
            })
            .inc();
    }

    /// Judges every kept workload again (policies changed, or time passed).
    async fn judge_all(&mut self, trigger: &str) {
        let started = Instant::now();
        let names: Vec<String> = self.namespaces.keys().cloned().collect();
        for (i, ns) in names.iter().enumerate() {
            self.judge_namespace(ns);
            if i % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
        self.last_full = Instant::now();
        self.metrics
            .scan_seconds
            .set(started.elapsed().as_secs_f64());
        self.count_scan(trigger);
        tracing::info!(
            trigger,
            workloads = self.workload_count(),
            seconds = started.elapsed().as_secs_f64(),
            "reports: every workload judged again"
        );
        self.review_exceptions(trigger);
    }

    /// After a full judgement: the exceptions in force that excepted no finding of any live
    /// workload, as `portcullis_policy_exception_unused`, and logged (as `audit` words it)
    /// when they were not unused at the last judgement, or the policies changed.
    fn review_exceptions(&mut self, trigger: &str) {
        let policies = self.state.policies();
        let used: HashSet<&str> = self
            .namespaces
            .values()
            .flat_map(|n| n.workloads.values())
            .flat_map(|t| t.exceptions.iter().map(String::as_str))
            .collect();
        let unused =
            exceptions::unused(&policies.set, Timestamp::now(), |name| used.contains(name));
        let workloads = self.workload_count();
        let what = if workloads == 1 {
            "live workload"
        } else {
            "live workloads"
        };
        let mut now_unused = Vec::with_capacity(unused.len());
        for e in &unused {
            let labels = ExceptionOwnerLabels {
                exception: e.info.name.clone(),
                owner: e.info.owner.clone(),
            };
            if trigger != "periodic" || !self.unused_exceptions.contains(&labels) {
                let w = exceptions::unused_warning(e, workloads, what);
                tracing::warn!(file = %w.file.display(), line = w.line, warning = %w.message,
                    hint = %w.hint, "policy exception unused");
            }
            self.metrics.exceptions_unused.get_or_create(&labels).set(1);
            now_unused.push(labels);
        }
        for gone in self
            .unused_exceptions
            .iter()
            .filter(|l| !now_unused.contains(l))
        {
            self.metrics.exceptions_unused.remove(gone);
        }
        self.unused_exceptions = now_unused;
    }

    /// Judges again the workloads of namespaces whose labels changed.
    async fn judge_relabelled(&mut self) {
        let changed: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(ns, state)| self.labels_of(ns).as_ref().map(hash_labels) != state.labels)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in changed {
            tracing::debug!(namespace = %ns, "reports: namespace labels changed, judging its workloads again");
            self.judge_namespace(&ns);
            tokio::task::yield_now().await;
        }
    }

    fn judge_namespace(&mut self, namespace: &str) {
        let labels = self.labels_of(namespace);
        let Some(state) = self.namespaces.get(namespace) else {
            return;
        };
        let mut updated = Vec::new();
        for (key, tracked) in &state.workloads {
            let Ok(object) = serde_json::from_slice::<Value>(&tracked.json) else {
                continue;
            };
            let fresh = self
                .judge(namespace, &object, labels.as_ref())
                .map(|r| Tracked::new(tracked.json.clone(), &r));
            if fresh.as_ref().map(|t| t.digest) != Some(tracked.digest) {
                updated.push((key.clone(), fresh));
            }
        }
        let Some(state) = self.namespaces.get_mut(namespace) else {
            return;
        };
        state.labels = labels.as_ref().map(hash_labels);
        if updated.is_empty() {
            return;
        }
        for (key, fresh) in updated {
            match fresh {
                Some(t) => {
                    state.workloads.insert(key, t);
                }
                None => {
                    state.workloads.remove(&key);
                }
            }
        }
        self.dirty.insert(namespace.to_owned());
    }

    /// Namespaces that get a report: those with results, failures first, then warnings, then
    /// by name, up to the budget.
    fn wanted(&self) -> (Vec<String>, usize) {
        let summaries = self.namespaces.iter().map(|(ns, s)| {
            let mut summary = content::Summary::default();
            for t in s.workloads.values() {
                summary.merge(t.summary);
            }
            (ns.as_str(), summary)
        });
        content::within_budget(summaries, self.config.budget)
    }

    /// The report of a namespace, its workloads judged again now.
    fn build(&self, namespace: &str) -> (Value, usize) {
        let labels = self.labels_of(namespace);
        let judged: Vec<WorkloadResults> = self
            .namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|s| s.workloads.values())
            .filter_map(|t| serde_json::from_slice::<Value>(&t.json).ok())
            .filter_map(|object| self.judge(namespace, &object, labels.as_ref()))
            .collect();
        content::build_report(namespace, &judged, &self.config.limits)
    }

    /// Writes what differs from the cluster: reports to apply, reports to delete.
    async fn flush(&mut self) {
        if !self.crds {
            if self.last_crd_check.elapsed() >= CRD_CHECK {
                self.last_crd_check = Instant::now();
                self.crds = check_crds(&self.calls, &self.metrics, false).await;
            }
            if !self.crds {
                return;
            }
        }
        let (wanted, over) = self.wanted();
        self.metrics
            .over_budget
            .set(i64::try_from(over).unwrap_or(i64::MAX));
        let mut applies: Vec<(String, Value)> = Vec::new();
        for ns in &wanted {
            let rebuild = self.dirty.contains(ns) || !self.built.contains_key(ns);
            if !rebuild && self.stored.get(ns) == self.built.get(ns) {
                continue;
            }
            let (report, dropped) = self.build(ns);
            let h = content::content_hash(&report);
            self.built.insert(ns.clone(), h);
            self.left_out.insert(ns.clone(), dropped);
            if self.stored.get(ns) != Some(&h) {
                applies.push((ns.clone(), report));
            }
        }
        self.dirty.clear();
        let wanted: HashSet<&String> = wanted.iter().collect();
        let deletes: Vec<String> = self
            .stored
            .keys()
            .filter(|ns| !wanted.contains(ns))
            .cloned()
            .collect();
        self.built.retain(|ns, _| wanted.contains(ns));
        self.left_out.retain(|ns, _| wanted.contains(ns));
        let left_out: usize = self.left_out.values().sum();
        self.metrics
            .results_left_out
            .set(i64::try_from(left_out).unwrap_or(i64::MAX));
        if applies.is_empty() && deletes.is_empty() {
            return;
        }
        if !super::still_leading(&self.calls, &self.config).await {
            tracing::warn!("reports: the Lease is no longer ours; not writing");
            // Written by the next leader; here, built again if this replica leads again.
            self.built.clear();
            return;
        }
        let ar = report_resource();
        for (ns, report) in applies {
            let api: Api<DynamicObject> = Api::namespaced_with(self.calls.clone(), &ns, &ar);
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match api
                .patch(REPORT_NAME, &params, &Patch::Apply(&report))
                .await
            {
                Ok(written) => {
                    self.count_write("apply");
                    if let Ok(v) = serde_json::to_value(&written) {
                        self.stored.insert(ns.clone(), content::content_hash(&v));
                    }
                    tracing::debug!(namespace = %ns, "reports: report written");
                }
                Err(e) => self.write_failed(&ns, "apply", &e),
            }
        }
        for ns in deletes {
            let api: Api<DynamicObject> = Api::namespaced_with(self.calls.clone(), &ns, &ar);
            match api.delete(REPORT_NAME, &DeleteParams::default()).await {
                Ok(_) => {
                    self.count_write("delete");
                    self.stored.remove(&ns);
                    tracing::debug!(namespace = %ns, "reports: stale report deleted");
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.stored.remove(&ns);
                }
                Err(e) => self.write_failed(&ns, "delete", &e),
            }
        }
        self.metrics
            .reports
            .set(i64::try_from(self.stored.len()).unwrap_or(i64::MAX));
    }

    fn count_write(&self, operation: &str) {
        self.metrics
            .writes
            .get_or_create(&WriteLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    fn write_failed(&mut self, namespace: &str, operation: &str, error: &kube::Error) {
        self.metrics.write_errors.inc();
        // Built again, and tried again, at the next flush.
        self.built.remove(namespace);
        if let kube::Error::Api(s) = error
            && s.code == 404
            && operation == "apply"
        {
            // The CRDs went away: looked for again every CRD_CHECK.
            self.crds = false;
            self.metrics.crds_installed.set(0);
            self.last_crd_check = Instant::now();
        }
        tracing::warn!(namespace, operation, error = %describe_error(error),
            "reports: cannot write a report; trying again later");
    }
}

/// kubectl's copy of the whole applied object, as an annotation: never a policy's concern.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object as JSON with `apiVersion` and `kind`, without what never changes a verdict and
/// would double its size in memory: `status`, `metadata.managedFields`, and kubectl's
/// last-applied-configuration annotation (no policy reads it: it is neither a label nor an
/// opt-out value).
fn compact(mut object: DynamicObject, kind: WorkloadKind) -> Value {
    let resource = api_resource(kind);
    object.metadata.managed_fields = None;
    if let Some(annotations) = object.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            object.metadata.annotations = None;
        }
    }
    let mut out = serde_json::Map::new();
    out.insert(
        "apiVersion".to_owned(),
        Value::String(resource.api_version.clone()),
    );
    out.insert("kind".to_owned(), Value::String(resource.kind.clone()));
    out.insert(
        "metadata".to_owned(),
        serde_json::to_value(&object.metadata).unwrap_or(Value::Null),
    );
    if let Value::Object(data) = object.data {
        for (k, v) in data {
            if !matches!(k.as_str(), "status" | "apiVersion" | "kind" | "metadata") {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

fn hash_labels(labels: &BTreeMap<String, String>) -> u64 {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

/// Watches one workload kind in every namespace and forwards the events.
async fn watch_workloads(client: kube::Client, kind: WorkloadKind, updates: mpsc::Sender<Update>) {
    let resource = api_resource(kind);
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let stream = watcher(api, watcher::Config::default())
        .modify(|o: &mut DynamicObject| {
            o.metadata.managed_fields = None;
        })
        .default_backoff();
    forward(stream, &resource_name(&resource), updates, move |e| {
        Update::Workload(kind, e)
    })
    .await;
}

/// Watches Portcullis' own reports (its label, its name) and forwards the events.
async fn watch_reports(client: kube::Client, updates: mpsc::Sender<Update>) {
    let resource = report_resource();
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let config = watcher::Config::default()
        .labels(&format!(
            "{}={}",
            content::MANAGED_BY.0,
            content::MANAGED_BY.1
        ))
        .fields(&format!("metadata.name={REPORT_NAME}"));
    let stream = watcher(api, config)
        .modify(|o: &mut DynamicObject| {
            o.metadata.managed_fields = None;
        })
        .default_backoff();
    forward(stream, "reports.openreports.io", updates, Update::Report).await;
}

async fn forward(
    stream: impl futures::Stream<Item = watcher::Result<watcher::Event<DynamicObject>>>,
    what: &str,
    updates: mpsc::Sender<Update>,
    wrap: impl Fn(watcher::Event<DynamicObject>) -> Update,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(next) = stream.next().await {
        let update = match next {
            Ok(event) => wrap(event),
            Err(e) => Update::WatchFailed(what.to_owned(), e.to_string()),
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_what_judging_needs() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                         "managedFields": [{"manager": "kubectl"}], "labels": {"app": "web"}},
            "spec": {"template": {"spec": {"containers": []}}},
            "status": {"replicas": 2}
        }))
        .expect("object");
        let v = compact(object, WorkloadKind::Deployment);
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["kind"], "Deployment");
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        assert!(v["metadata"].get("managedFields").is_none());
        assert!(v.get("status").is_none());
        assert!(v["spec"]["template"].is_object());
    }
}
