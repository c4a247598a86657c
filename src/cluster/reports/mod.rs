//! Policy reports in the cluster (`portcullis serve --reports`): the live workloads judged in
//! the background, at start, on policy change, on workload and namespace change (watches) and
//! periodically, written as OpenReports `Report`s (one per namespace, `openreports.io/v1alpha1`)
//! by one replica, the holder of the `coordination.k8s.io` Lease ([`super::lease`]).
//!
//! What a report says is decided without I/O, in [`content`] (one report) and [`index`] (every
//! namespace's, within the budget); [`writer`] watches the cluster and writes what differs, on a
//! thread and runtime of its own (admission never waits for it). This module runs the writer
//! while this replica leads. What the reports read (the policies in force, the namespace
//! cache, their metrics) is handed to them as [`Inputs`]; they stop on a [`CancellationToken`]
//! of their own.

pub mod content;
pub mod index;
pub mod writer;

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use super::connect::{CALL_TIMEOUT, calls_client};
pub use super::lease::LEASE_NAME;
use super::lease::LeaseConfig;
use super::{Connection, NamespaceCache};
use crate::policy::SharedPolicies;
use crate::telemetry::ReportsMetrics;
pub use content::{Limits, Status};

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
    /// The Lease that elects the writer (its fence before each batch of writes).
    pub lease: LeaseConfig,
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
    /// Follows the leader election (`leading`, from [`super::lease::Leadership`]); while this
    /// replica leads, the writer runs on a thread of its own, at the lowest CPU priority, with
    /// its own runtime and client ([`writer::Running`]), so its work never delays admission.
    pub fn start(
        connection: &Connection,
        inputs: Inputs,
        config: ReportsConfig,
        leading: watch::Receiver<bool>,
    ) -> Reports {
        let stop = CancellationToken::new();
        let client = calls_client(&connection.config).unwrap_or_else(|| connection.client.clone());
        let task = tokio::spawn(follow_and_write(
            client,
            connection.config.clone(),
            inputs,
            config,
            leading,
            stop.clone(),
        ));
        Reports { stop, task }
    }

    /// Stops writing.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// While this replica leads, runs the writer; a replica that stops leading stops writing at
/// once and waits, idle, to lead again. Ends when `stop` is cancelled.
async fn follow_and_write(
    client: kube::Client,
    kube_config: kube::Config,
    inputs: Inputs,
    config: ReportsConfig,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let metrics = inputs.metrics.clone();
    writer::check_crds(&client, &metrics, true).await;
    let mut running: Option<writer::Running> = None;
    loop {
        let lead = *leading.borrow_and_update();
        match (lead, running.is_some()) {
            (true, false) => {
                metrics.leader.set(1);
                tracing::info!(identity = %config.lease.identity, lease = LEASE_NAME,
                    "leading: writing policy reports");
                running = writer::Running::start(
                    kube_config.clone(),
                    inputs.clone(),
                    config.clone(),
                    &stop,
                );
            }
            (false, true) => {
                stop_writer(&mut running).await;
                metrics.leader.set(0);
                tracing::info!(identity = %config.lease.identity, "not leading: reports idle here");
            }
            _ => {}
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() {
                break; // The election ended.
            },
            () = stop.cancelled() => break,
        }
    }
    stop_writer(&mut running).await;
    metrics.leader.set(0);
}

async fn stop_writer(running: &mut Option<writer::Running>) {
    if let Some(r) = running.take() {
        r.stop().await;
    }
}
