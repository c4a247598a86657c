//! Native admission policies end to end: what `portcullis policy export` writes, installed in a
//! real kube-apiserver v1.32 (MutatingAdmissionPolicy v1alpha1 behind its feature gate), judges
//! every shipped `portcullis test` case as Portcullis does, with no webhook; the exported `cel`
//! rules judge every object of the CEL differential corpus as Portcullis does; deploy/'s native
//! overlay keeps enforcing with the webhook killed; and `serve --native-sync` keeps the objects
//! in sync and leaves to the API server only what it enforces as exported. Needs
//! `PORTCULLIS_E2E_ASSETS` (see tests/e2e_support/); without it the cases are listed as
//! ignored, and `CI=true` makes that a failure.

#[path = "deploy_support/mod.rs"]
mod deploy_support;
mod e2e_support;

#[path = "e2e_native/cel.rs"]
mod cel;
#[path = "cel_corpus/rules.rs"]
mod corpus_rules;
#[path = "e2e_native/overlay.rs"]
mod overlay;
#[path = "e2e_native/proof.rs"]
mod proof;
#[path = "e2e_native/sync.rs"]
mod sync;

use e2e_support::{Case, SuiteOptions, run_suite};

fn main() -> std::process::ExitCode {
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(proof::cases());
    cases.extend(cel::cases());
    cases.extend(overlay::cases());
    cases.extend(sync::cases());
    run_suite(
        cases,
        SuiteOptions {
            apiserver_args: vec![
                "--feature-gates=MutatingAdmissionPolicy=true".to_owned(),
                "--runtime-config=admissionregistration.k8s.io/v1alpha1=true".to_owned(),
            ],
            without_webhooks: true,
            ..SuiteOptions::default()
        },
    )
}
