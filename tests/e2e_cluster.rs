//! Cluster-aware Portcullis end to end: the webhook reading namespace labels from its watch,
//! `portcullis audit --cluster`, and policy reports, against a real kube-apiserver, etcd and
//! kube-controller-manager (v1.32). Portcullis runs as deploy/'s ServiceAccount with deploy/'s
//! RBAC, reaching the API server through a proxy the cases can cut. Needs
//! `PORTCULLIS_E2E_ASSETS` (see tests/e2e_support/); without it the cases are listed as
//! ignored, and `CI=true` makes that a failure.

mod browser_support;
mod e2e_support;

#[path = "e2e_cluster/audit.rs"]
mod audit;
#[path = "e2e_cluster/namespaces.rs"]
mod namespaces;
#[path = "e2e_cluster/reports.rs"]
mod reports;

use std::any::Any;
use std::path::PathBuf;

use e2e_support::portcullis::{install_rbac, install_report_crds};
use e2e_support::proxy::TcpProxy;
use e2e_support::{Case, ControlPlane, PortcullisOptions, SuiteOptions, run_suite};

/// A policy that selects namespaces by label: production namespaces (`env: prod`) require an
/// `owner` label on every workload.
pub const PROD_OWNER_POLICY: &str = "\
apiVersion: portcullis.dev/v1alpha1
kind: Policy
metadata:
  name: prod-owner-label
spec:
  description: Workloads in production namespaces name their owner.
  mode: enforce
  match:
    namespaceSelector:
      matchLabels: {env: prod}
  rules:
    - requireLabels:
        labels: [owner]
";

/// What the suite's setup made.
pub struct Suite {
    /// The proxy between the shared Portcullis and the apiserver.
    pub proxy: TcpProxy,
    /// A kubeconfig for deploy/'s ServiceAccount `portcullis-system/portcullis`, straight to
    /// the apiserver (for the report writers).
    pub portcullis_kubeconfig: PathBuf,
}

fn setup(cluster: &ControlPlane, options: &mut PortcullisOptions) -> Box<dyn Any + Send + Sync> {
    install_rbac(cluster);
    install_report_crds(cluster);
    let target = format!("127.0.0.1:{}", cluster.apiserver_port())
        .parse()
        .expect("apiserver address");
    let proxy = TcpProxy::start(target);
    let through_proxy = cluster.service_account_kubeconfig(
        "portcullis-proxied",
        "portcullis-system",
        "portcullis",
        &proxy.url(),
    );
    let direct = cluster.service_account_kubeconfig(
        "portcullis",
        "portcullis-system",
        "portcullis",
        &cluster.server,
    );
    options.args.extend([
        "--kubeconfig".to_owned(),
        through_proxy.display().to_string(),
    ]);
    options.policies.push((
        "prod-owner-label.yaml".to_owned(),
        PROD_OWNER_POLICY.to_owned(),
    ));
    Box::new(Suite {
        proxy,
        portcullis_kubeconfig: direct,
    })
}

fn main() -> std::process::ExitCode {
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(namespaces::cases());
    cases.extend(audit::cases());
    cases.extend(reports::cases());
    run_suite(
        cases,
        SuiteOptions {
            setup: Some(setup),
            ..SuiteOptions::default()
        },
    )
}
