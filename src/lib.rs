//! Portcullis: a Kubernetes admission webhook policy enforcer.
//!
//! Every verdict comes from one pure function, [`engine::evaluate`]; the webhook, `audit`,
//! `mutate`, `portcullis test` and the reports only read input for it and say what it decided.
//! docs/architecture.md has the data flows, the layers and what each module may use;
//! docs/policies.md the semantics.

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod json;
pub mod junit;
pub mod lint;
pub mod native;
pub mod nesting;
pub mod policy;
pub mod policytest;
pub mod server;
pub mod telemetry;
pub mod workload;

/// The allocator of every binary built from this crate (the server, the CLI, benchmarks), so
/// what is benchmarked is what runs.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
