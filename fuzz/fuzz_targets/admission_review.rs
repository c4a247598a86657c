//! AdmissionReview body → the server's parsing → engine → the answer for both endpoints, as
//! `src/server/handlers.rs` does it (minus HTTP); patches apply and are idempotent.
#![no_main]
#![allow(dead_code)] // each target uses one of the shared checks

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_admission_review(data));
