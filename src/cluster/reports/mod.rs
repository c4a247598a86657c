//! Policy reports in the cluster (`portcullis serve --reports`): the live workloads judged in
//! the background, at start, on policy change, on workload and namespace change (watches) and
//! periodically, written as OpenReports `Report`s (one per namespace, `openreports.io/v1alpha1`)
//! by one replica, the holder of a `coordination.k8s.io` Lease.
//!
//! All of it runs on its own thread and runtime: admission never waits for it. The content of a
//! report is decided in [`content`] (pure), the watching and writing in [`writer`].

pub mod content;
pub mod writer;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

use super::Connection;
use crate::server::AppState;
pub use content::{Limits, Status};

/// The Lease the replicas elect the report writer with, in Portcullis' namespace.
pub const LEASE_NAME: &str = "portcullis-reports";

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

/// The running reports: stop them with [`Reports::stop`].
#[derive(Debug)]
pub struct Reports {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Reports {
    /// Joins the leader election (a task on the current runtime: renewing the Lease is light
    /// and must not wait behind the reports' work); while this replica leads, the writer runs
    /// on a thread of its own, at the lowest CPU priority, with its own runtime and client
    /// ([`writer::Running`]), so its work never delays admission.
    pub fn start(connection: &Connection, state: AppState, config: ReportsConfig) -> Reports {
        let (stop, stopped) = watch::channel(false);
        // Its own client, whose calls cannot hang: a renewal that does not answer fails, and the
        // writer stops, rather than leaving a replica that believes it leads.
        let client = calls_client(&connection.config).unwrap_or_else(|| connection.client.clone());
        let task = tokio::spawn(elect_and_write(
            client,
            connection.config.clone(),
            state,
            config,
            stopped,
        ));
        Reports { stop, task }
    }

    /// Stops writing and gives up the Lease (a successor takes over at once).
    pub async fn stop(self) {
        self.stop.send_replace(true);
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
/// the Lease (or cannot renew it) stops writing at once and waits, idle, to lead again.
async fn elect_and_write(
    client: kube::Client,
    kube_config: kube::Config,
    state: AppState,
    config: ReportsConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let metrics = state.metrics().reports.clone();
    writer::check_crds(&client, &metrics, true).await;
    let mut backoff = Duration::from_secs(1);
    loop {
        let manager = tokio::select! {
            m = lease_manager(&client, &config) => m,
            () = crate::server::stop_requested(&mut stopped) => return,
        };
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, namespace = %config.lease_namespace,
                    "cannot join the reports leader election; retrying");
                if wait(&mut stopped, backoff).await {
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
                        running = writer::Running::start(kube_config.clone(), state.clone(), config.clone());
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
                () = crate::server::stop_requested(&mut stopped) => {
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
        if wait(&mut stopped, backoff).await {
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
async fn wait(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = crate::server::stop_requested(stopped) => true,
    }
}

async fn lease_manager(
    client: &kube::Client,
    config: &ReportsConfig,
) -> kube_lease_manager::Result<LeaseManager> {
    LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(config.lease_duration.as_secs())
        .with_grace(config.lease_grace())
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
}

/// Whether this replica still holds the Lease, as the API server says (not as remembered): the
/// writer's fence before each batch of writes. kube-lease-manager renews in the background and
/// reports only changes; a renewal that hangs or fails silently would leave a stale leader
/// writing beside the new one. Holding means: named in `holderIdentity`, and `renewTime` plus
/// the duration is more than the renewal margin away.
pub async fn still_leading(client: &kube::Client, config: &ReportsConfig) -> bool {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.lease_namespace);
    let Ok(lease) = api.get(LEASE_NAME).await else {
        return false;
    };
    let Some(spec) = lease.spec else { return false };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return false;
    }
    let (Some(renewed), Some(seconds)) = (spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    let renewed: std::time::SystemTime = renewed.0.into();
    let margin = Duration::from_secs(config.lease_grace());
    let valid = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    renewed
        .checked_add(valid)
        .and_then(|expiry| expiry.checked_sub(margin))
        .is_some_and(|deadline| std::time::SystemTime::now() < deadline)
}
