//! Bytes → the nesting pre-scans (`src/nesting.rs`) beside serde_json and serde_yaml_ng: the
//! JSON depth is exact and the YAML bound never over-counts, so neither refuses what the
//! parsers would accept.
#![no_main]
#![allow(dead_code)] // each target uses one of the shared checks

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_nesting(data));
