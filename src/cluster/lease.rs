//! The `coordination.k8s.io` Lease that elects the one replica that writes to the cluster (the
//! policy reports, the native admission policies): joining the election (kube-lease-manager),
//! publishing whether this replica leads ([`Leadership`]), and the fence a writer checks
//! before each batch of writes ([`still_leading`]). One Lease for every writer: with reports
//! and the native sync both on, the one holder does both.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::connect::CALL_TIMEOUT;

/// The Lease the replicas elect the writer with, in Portcullis' namespace (its name predates
/// the native sync, which shares it).
pub const LEASE_NAME: &str = "portcullis-reports";

/// Who takes part in the election, and how long a Lease lasts.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's name in the Lease (the Pod's name).
    pub identity: String,
    /// How long a Lease is valid without renewal: a stopped leader's successor takes over
    /// within it.
    pub duration: Duration,
}

impl LeaseConfig {
    /// Renewal happens this long before the Lease expires: a third of its duration (at least
    /// one second).
    pub fn grace(&self) -> u64 {
        (self.duration.as_secs() / 3).max(1)
    }
}

/// Joins the election on [`LEASE_NAME`] (created if missing) as `config.identity`.
async fn join(
    client: &kube::Client,
    config: &LeaseConfig,
) -> kube_lease_manager::Result<LeaseManager> {
    LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration.as_secs())
        .with_grace(config.grace())
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
}

/// Whether this replica still holds the Lease, as the API server says (not as remembered): a
/// writer's fence before each batch of writes. kube-lease-manager renews in the background and
/// reports only changes; a renewal that hangs or fails silently would leave a stale leader
/// writing beside the new one. Holding means: named in `holderIdentity`, and `renewTime` plus
/// the duration is more than the renewal margin away.
pub async fn still_leading(client: &kube::Client, config: &LeaseConfig) -> bool {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
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
    let margin = Duration::from_secs(config.grace());
    let valid = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    renewed
        .checked_add(valid)
        .and_then(|expiry| expiry.checked_sub(margin))
        .is_some_and(|deadline| std::time::SystemTime::now() < deadline)
}

/// This replica's part in the election: whether it leads, as a [`watch`] every writer
/// subscribes to. Stop it with [`Leadership::stop`] (after the writers: it gives up the Lease).
#[derive(Debug)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Joins the election (a task on the current runtime: renewing the Lease is light and must
    /// not wait behind any writer's work). `client` should time its calls out
    /// ([`CALL_TIMEOUT`]): a renewal that does not answer then fails, and this replica stops
    /// leading, rather than believing it leads.
    pub fn start(client: kube::Client, config: LeaseConfig) -> Leadership {
        let (tx, leading) = watch::channel(false);
        let stop = CancellationToken::new();
        let task = tokio::spawn(elect(client, config, tx, stop.clone()));
        Leadership {
            leading,
            stop,
            task,
        }
    }

    /// Whether this replica leads, now and as it changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Leaves the election, giving up the Lease (a successor takes over at once).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Joins the election and publishes whether this replica leads. A replica that loses the Lease
/// (or cannot renew it) says so at once and tries to lead again. Ends, giving up the Lease,
/// when `stop` is cancelled.
async fn elect(
    client: kube::Client,
    config: LeaseConfig,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let manager = tokio::select! {
            m = join(&client, &config) => m,
            () = stop.cancelled() => return,
        };
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, namespace = %config.namespace,
                    "cannot join the leader election; retrying");
                if wait(&stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        loop {
            tokio::select! {
                changed = manager.changed() => match changed {
                    Ok(lead) => {
                        tracing::info!(identity = %config.identity, lease = LEASE_NAME, leading = lead,
                            "leader election");
                        leading.send_replace(lead);
                    }
                    Err(e) => {
                        leading.send_replace(false);
                        tracing::warn!(error = %e, identity = %config.identity,
                            "the Lease cannot be renewed: not leading until it can");
                        break;
                    }
                },
                () = stop.cancelled() => {
                    leading.send_replace(false);
                    match tokio::time::timeout(CALL_TIMEOUT, manager.release()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e,
                            "cannot release the Lease: a successor waits for it to expire"),
                        Err(_) => tracing::warn!(
                            "releasing the Lease timed out: a successor waits for it to expire"),
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

/// Sleeps `d`; true when asked to stop meanwhile.
pub(crate) async fn wait(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = stop.cancelled() => true,
    }
}
