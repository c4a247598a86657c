//! The report writer, run by the leader: the part of the reports that talks to the API
//! server. It watches every workload kind and Portcullis' own reports, feeds the workloads to
//! the [`Index`] (which judges them as `portcullis audit --cluster` would), and writes what the
//! index's [`Plan`] says differs from what the API server has: server-side apply with one field
//! manager, deletes of the reports no longer wanted, after checking the Lease is still ours.
//! It keeps the API objects compact (no status, no managed fields) and counts what it does in
//! the reports' metrics.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::content::{self, REPORT_NAME};
use super::index::{Index, Judge, Labels, Plan};
use super::{Inputs, ReportsConfig};
use crate::cluster::connect::describe_error;
use crate::cluster::list::{api_resource, resource_name};
use crate::cluster::namespaces::Lookup;
use crate::policy::model::WorkloadKind;
use crate::policy::{Timestamp, exceptions};
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
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    /// Starts writing (this replica leads); `None` (logged) if the thread cannot start. It
    /// stops with [`Running::stop`], or when `parent` is cancelled.
    pub fn start(
        kube_config: kube::Config,
        inputs: Inputs,
        config: ReportsConfig,
        parent: &CancellationToken,
    ) -> Option<Running> {
        let stop = parent.child_token();
        let stopped = stop.clone();
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
                            Writer::new(watches, calls, inputs, config)
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
        self.stop.cancel();
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

struct Writer {
    /// For watches.
    client: kube::Client,
    /// For single calls (they time out).
    calls: kube::Client,
    inputs: Inputs,
    config: ReportsConfig,
    /// What the reports must say.
    index: Index,
    /// Hash of each report in the cluster, by namespace (from the watch of our reports).
    stored: HashMap<String, u64>,
    /// During a relist of the reports: what has been seen so far.
    stored_relist: Option<HashMap<String, u64>>,
    /// Per kind: whether its list is in (no relist in progress), and what a relist has seen.
    kinds: HashMap<WorkloadKind, KindSync>,
    reports_synced: bool,
    generation: u64,
    last_full: Instant,
    namespace_changes: watch::Receiver<u64>,
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

/// A namespace's labels from the namespace cache; `None` while it is not there.
fn labels_in(cache: &crate::cluster::NamespaceCache, namespace: &str) -> Option<Labels> {
    match cache.lookup(namespace) {
        Lookup::Found(ns) => Some(ns.metadata.labels.clone().unwrap_or_default()),
        Lookup::Missing => None,
    }
}

/// Runs `f` with a [`Judge`] of the policies in force, the namespace cache's labels and the
/// time now.
fn judging<T>(inputs: &Inputs, f: impl FnOnce(&Judge) -> T) -> T {
    let policies = inputs.policies.load();
    let cache = &inputs.namespaces;
    let labels = |ns: &str| labels_in(cache, ns);
    f(&Judge {
        policies: &policies.set,
        labels: &labels,
        now: Timestamp::now(),
    })
}

impl Writer {
    fn new(
        client: kube::Client,
        calls: kube::Client,
        inputs: Inputs,
        config: ReportsConfig,
    ) -> Writer {
        let generation = inputs.policies.load().generation;
        let namespace_changes = inputs.namespaces.subscribe();
        Writer {
            client,
            calls,
            index: Index::new(config.limits.clone(), config.budget),
            inputs,
            config,
            stored: HashMap::new(),
            stored_relist: None,
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

    fn metrics(&self) -> &ReportsMetrics {
        &self.inputs.metrics
    }

    async fn run(mut self, stop: CancellationToken) {
        // Without the CRDs nothing can be written (nor watched): wait for them.
        loop {
            self.crds = check_crds(&self.calls, self.metrics(), false).await;
            if self.crds {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(CRD_CHECK) => {}
                () = stop.cancelled() => return,
            }
        }
        // Judging needs the namespaces' labels: wait for the webhook's namespace cache.
        while !self.inputs.namespaces.is_synced() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = stop.cancelled() => return,
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
                () = stop.cancelled() => break,
            }
        }
        for w in watches {
            w.abort();
        }
        self.metrics().workloads.set(0);
        self.metrics().exceptions_unused.clear();
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
                self.index.keep_only(kind, &seen);
                self.kinds.entry(kind).or_default().synced = true;
            }
            watcher::Event::Apply(object) => {
                self.upsert(kind, object);
            }
            watcher::Event::Delete(object) => {
                if let (Some(ns), Some(name)) = (object.metadata.namespace, object.metadata.name) {
                    self.index.remove(kind, &ns, &name);
                }
            }
        }
    }

    /// Judges one workload and keeps its results; returns its (namespace, name).
    fn upsert(&mut self, kind: WorkloadKind, object: DynamicObject) -> Option<(String, String)> {
        self.metrics().events.inc();
        let namespace = object.metadata.namespace.clone()?;
        let name = object.metadata.name.clone()?;
        let value = compact(object, kind);
        let index = &mut self.index;
        judging(&self.inputs, |judge| {
            index.upsert(judge, kind, &namespace, &name, &value);
        });
        Some((namespace, name))
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
        self.metrics()
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
            self.metrics().scan_seconds.set(elapsed.as_secs_f64());
            self.count_scan("start");
            tracing::info!(
                workloads = self.index.workload_count(),
                namespaces = self.index.namespaces().len(),
                seconds = elapsed.as_secs_f64(),
                "reports: every workload listed and judged"
            );
        }
        let generation = self.inputs.policies.load().generation;
        if generation != self.generation {
            self.generation = generation;
            self.judge_all("policy").await;
        } else if self.last_full.elapsed() >= self.config.interval {
            self.judge_all("periodic").await;
        } else if first_scan {
            // Only now: judged with the policies in force (a reload since is judged above).
            self.review_exceptions("start");
        }
        if self.namespace_changes.has_changed().unwrap_or(false) {
            self.namespace_changes.mark_unchanged();
            self.judge_relabelled().await;
        }
        self.metrics()
            .workloads
            .set(i64::try_from(self.index.workload_count()).unwrap_or(i64::MAX));
        self.flush().await;
    }

    fn count_scan(&self, trigger: &str) {
        self.metrics()
            .scans
            .get_or_create(&ScanLabels {
                trigger: trigger.to_owned(),
            })
            .inc();
    }

    /// Judges every kept workload again (policies changed, or time passed).
    async fn judge_all(&mut self, trigger: &str) {
        let started = Instant::now();
        for (i, ns) in self.index.namespaces().iter().enumerate() {
            let index = &mut self.index;
            judging(&self.inputs, |judge| index.judge_namespace(judge, ns));
            if i % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
        self.last_full = Instant::now();
        self.metrics()
            .scan_seconds
            .set(started.elapsed().as_secs_f64());
        self.count_scan(trigger);
        tracing::info!(
            trigger,
            workloads = self.index.workload_count(),
            seconds = started.elapsed().as_secs_f64(),
            "reports: every workload judged again"
        );
        self.review_exceptions(trigger);
    }

    /// After a full judgement: the exceptions in force that excepted no finding of any live
    /// workload, as `portcullis_policy_exception_unused`, and logged (as `audit` words it)
    /// when they were not unused at the last judgement, or the policies changed.
    fn review_exceptions(&mut self, trigger: &str) {
        let policies = self.inputs.policies.load();
        let used = self.index.exceptions_in_use();
        let unused =
            exceptions::unused(&policies.set, Timestamp::now(), |name| used.contains(name));
        let workloads = self.index.workload_count();
        let what = if workloads == 1 {
            "live workload"
        } else {
            "live workloads"
        };
        let metrics = &self.inputs.metrics;
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
            metrics.exceptions_unused.get_or_create(&labels).set(1);
            now_unused.push(labels);
        }
        for gone in self
            .unused_exceptions
            .iter()
            .filter(|l| !now_unused.contains(l))
        {
            metrics.exceptions_unused.remove(gone);
        }
        self.unused_exceptions = now_unused;
    }

    /// Judges again the workloads of namespaces whose labels changed.
    async fn judge_relabelled(&mut self) {
        let changed = judging(&self.inputs, |judge| self.index.relabelled(judge));
        for ns in changed {
            tracing::debug!(namespace = %ns, "reports: namespace labels changed, judging its workloads again");
            let index = &mut self.index;
            judging(&self.inputs, |judge| index.judge_namespace(judge, &ns));
            tokio::task::yield_now().await;
        }
    }

    /// Writes what differs from the cluster: reports to apply, reports to delete.
    async fn flush(&mut self) {
        if !self.crds {
            if self.last_crd_check.elapsed() >= CRD_CHECK {
                self.last_crd_check = Instant::now();
                self.crds = check_crds(&self.calls, self.metrics(), false).await;
            }
            if !self.crds {
                return;
            }
        }
        let index = &mut self.index;
        let stored = &self.stored;
        let Plan {
            applies,
            deletes,
            over_budget,
            left_out,
        } = judging(&self.inputs, |judge| index.plan(judge, stored));
        let metrics = &self.inputs.metrics;
        metrics
            .over_budget
            .set(i64::try_from(over_budget).unwrap_or(i64::MAX));
        metrics
            .results_left_out
            .set(i64::try_from(left_out).unwrap_or(i64::MAX));
        if applies.is_empty() && deletes.is_empty() {
            return;
        }
        if !crate::cluster::lease::still_leading(&self.calls, &self.config.lease).await {
            tracing::warn!("reports: the Lease is no longer ours; not writing");
            // Written by the next leader; here, built again if this replica leads again.
            self.index.none_written();
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
        self.metrics()
            .reports
            .set(i64::try_from(self.stored.len()).unwrap_or(i64::MAX));
    }

    fn count_write(&self, operation: &str) {
        self.metrics()
            .writes
            .get_or_create(&WriteLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    fn write_failed(&mut self, namespace: &str, operation: &str, error: &kube::Error) {
        self.metrics().write_errors.inc();
        // Built again, and tried again, at the next flush.
        self.index.not_written(namespace);
        if let kube::Error::Api(s) = error
            && s.code == 404
            && operation == "apply"
        {
            // The CRDs went away: looked for again every CRD_CHECK.
            self.crds = false;
            self.metrics().crds_installed.set(0);
            self.last_crd_check = Instant::now();
        }
        tracing::warn!(namespace, operation, error = %describe_error(error),
            "reports: cannot write a report; trying again later");
    }
}

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
