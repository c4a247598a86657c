//! Policy reports in the cluster (`portcullis serve --reports`): the live workloads judged in
//! the background, at start, on policy change, on workload and namespace change (watches) and
//! periodically, written as OpenReports `Report`s (one per namespace, `openreports.io/v1alpha1`)
//! by one replica, the holder of a `coordination.k8s.io` Lease.
//!
//! What a report says is decided without I/O, in [`content`] (one report) and [`index`] (every
//! namespace's, within the budget); [`writer`] watches the cluster and writes what differs, on a
//! thread and runtime of its own (admission never waits for it); [`lease`] is the Lease that
//! elects the replica that writes. This module runs the writer while this replica leads. What
//! the reports read (the policies in force, the namespace cache, their metrics) is handed to
//! them as [`Inputs`]; they stop on a [`CancellationToken`] of their own.

pub mod content;
pub mod index;
pub mod lease;
pub mod writer;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Connection, NamespaceCache};
use crate::policy::SharedPolicies;
use crate::telemetry::ReportsMetrics;
pub use content::{Limits, Status};
pub use lease::LEASE_NAME;

/// How the reports are written.
#[derive(Debug, Clone)]
pub struct ReportsConfig {
    /// Per report: `maxResults` and the statuses listed.
    pub limits: Limits,
    /// At most this many reports in the cluster (namespaces with failures first).
    pub budget: usize,
    /// Every workload is judged again this often (exceptions and schedules change verdicts
    /// with time), besides on every change.
    pub interval: Duration,
    /// The Lease's namespace.
    pub lease_namespace: String,
    /// This replica's name in the Lease (the Pod's name).
    pub identity: String,
    /// How long a Lease is valid without renewal: a stopped leader's successor takes over
    /// within it.
    pub lease_duration: Duration,
}

impl ReportsConfig {
    /// Renewal happens this long before the Lease expires: a third of its duration (at least
    /// one second).
    pub fn lease_grace(&self) -> u64 {
        (self.lease_duration.as_secs() / 3).max(1)
    }
}

/// What the reports read, each shared with the webhook (cheap to clone).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The policies in force: a reload judges every workload again.
    pub policies: SharedPolicies,
    /// The namespaces' labels (the webhook's cache): a label change judges the namespace's
    /// workloads again.
    pub namespaces: NamespaceCache,
    /// The reports' metrics.
    pub metrics: ReportsMetrics,
}

/// The running reports: stop them with [`Reports::stop`].
#[derive(Debug)]
pub struct Reports {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Reports {
    /// Joins the leader election (a task on the current runtime: renewing the Lease is light
    /// and must not wait behind the reports' work); while this replica leads, the writer runs
    /// on a thread of its own, at the lowest CPU priority, with its own runtime and client
    /// ([`writer::Running`]), so its work never delays admission.
    pub fn start(connection: &Connection, inputs: Inputs, config: ReportsConfig) -> Reports {
        let stop = CancellationToken::new();
        // Its own client, whose calls cannot hang: a renewal that does not answer fails, and the
        // writer stops, rather than leaving a replica that believes it leads.
        let client = calls_client(&connection.config).unwrap_or_else(|| connection.client.clone());
        let task = tokio::spawn(elect_and_write(
            client,
            connection.config.clone(),
            inputs,
            config,
            stop.clone(),
        ));
        Reports { stop, task }
    }

    /// Stops writing and gives up the Lease (a successor takes over at once).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// How long one API call of the election or of a report write may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for single calls (no watches) that time out after [`CALL_TIMEOUT`]; `None`
/// (logged) if it cannot be made. Needs a tokio runtime.
pub fn calls_client(config: &kube::Config) -> Option<kube::Client> {
    let mut config = config.clone();
    config.read_timeout = Some(CALL_TIMEOUT);
    match kube::Client::try_from(config) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "reports: cannot make a client with timeouts");
            None
        }
    }
}

/// Joins the election and, while this replica leads, runs the writer. A replica that loses
/// the Lease (or cannot renew it) stops writing at once and waits, idle, to lead again. Ends,
/// giving up the Lease, when `stop` is cancelled.
async fn elect_and_write(
    client: kube::Client,
    kube_config: kube::Config,
    inputs: Inputs,
    config: ReportsConfig,
    stop: CancellationToken,
) {
    let metrics = inputs.metrics.clone();
    writer::check_crds(&client, &metrics, true).await;
    let mut backoff = Duration::from_secs(1);
    loop {
        let manager = tokio::select! {
            m = lease::join(&client, &config) => m,
            () = stop.cancelled() => return,
        };
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, namespace = %config.lease_namespace,
                    "cannot join the reports leader election; retrying");
                if wait(&stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        let mut running: Option<writer::Running> = None;
        loop {
            tokio::select! {
                changed = manager.changed() => match changed {
                    Ok(true) => {
                        metrics.leader.set(1);
                        tracing::info!(identity = %config.identity, lease = LEASE_NAME,
                            "leading: writing policy reports");
                        running = writer::Running::start(
                            kube_config.clone(), inputs.clone(), config.clone(), &stop);
                    }
                    Ok(false) => {
                        stop_writer(&mut running).await;
                        metrics.leader.set(0);
                        tracing::info!(identity = %config.identity, "another replica leads: reports idle here");
                    }
                    Err(e) => {
                        stop_writer(&mut running).await;
                        metrics.leader.set(0);
                        tracing::warn!(error = %e, identity = %config.identity,
                            "reports Lease cannot be renewed: stopped writing, idle until it can");
                        break;
                    }
                },
                () = stop.cancelled() => {
                    stop_writer(&mut running).await;
                    metrics.leader.set(0);
                    match tokio::time::timeout(CALL_TIMEOUT, manager.release()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e,
                            "cannot release the reports Lease: a successor waits for it to expire"),
                        Err(_) => tracing::warn!(
                            "releasing the reports Lease timed out: a successor waits for it to expire"),
                    }
                    return;
                }
            }
        }
        if wait(&stop, backoff).await {
            return;
        }
    }
}

async fn stop_writer(running: &mut Option<writer::Running>) {
    if let Some(r) = running.take() {
        r.stop().await;
    }
}

/// Sleeps `d`; true when asked to stop meanwhile.
async fn wait(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = stop.cancelled() => true,
    }
}
