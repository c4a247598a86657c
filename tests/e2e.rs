//! Portcullis end to end: the `portcullis` binary in front of a real kube-apiserver, etcd and
//! kube-controller-manager (v1.32), with deploy/'s webhook configurations. Every case asserts on
//! what kubectl or the API returns. Needs `PORTCULLIS_E2E_ASSETS` (see tests/e2e_support/);
//! without it the cases are listed as ignored, and `CI=true` makes that a failure.

mod e2e_support;

#[path = "e2e/journeys.rs"]
mod journeys;
#[path = "e2e/kinds.rs"]
mod kinds;
#[path = "e2e/lifecycle.rs"]
mod lifecycle;
#[path = "e2e/mutation.rs"]
mod mutation;
#[path = "e2e/outage.rs"]
mod outage;
#[path = "e2e/ratchet.rs"]
mod ratchet;
#[path = "e2e/resources.rs"]
mod resources;

use e2e_support::{Case, SuiteOptions, run_suite};

fn main() -> std::process::ExitCode {
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(journeys::cases());
    cases.extend(kinds::cases());
    cases.extend(ratchet::cases());
    cases.extend(lifecycle::cases());
    cases.extend(mutation::cases());
    cases.extend(outage::cases());
    cases.extend(resources::cases());
    run_suite(cases, SuiteOptions::default())
}
