//! Bytes → the JSON nesting scan (`src/nesting.rs`) beside serde_json, and the YAML parser's
//! depth budget (`src/yaml.rs`) beside serde_yaml_ng: the JSON depth is exact, and neither
//! refuses as too deep what is not.
#![no_main]
#![allow(dead_code)] // each target uses one of the shared checks

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_nesting(data));
