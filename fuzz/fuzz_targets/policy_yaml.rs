//! Policy file bytes → the strict loader and its lint, as `policy validate` and `serve` read
//! them.
#![no_main]
#![allow(dead_code)] // each target uses one of the shared checks

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_policy_yaml(data));
