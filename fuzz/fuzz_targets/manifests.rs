//! Manifest bytes → the audit reader (`portcullis audit` files and stdin) → the engine with
//! the default policies.
#![no_main]
#![allow(dead_code)] // each target uses one of the shared checks

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_manifests(data));
