//! The `coordination.k8s.io` Lease that elects the replica writing the reports: joining the
//! election (kube-lease-manager), and the fence the writer checks before each batch of writes.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder};

use super::ReportsConfig;

/// The Lease the replicas elect the report writer with, in Portcullis' namespace.
pub const LEASE_NAME: &str = "portcullis-reports";

/// Joins the election on [`LEASE_NAME`] (created if missing) as `config.identity`.
pub(super) async fn join(
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
