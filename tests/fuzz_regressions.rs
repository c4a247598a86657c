//! Inputs the fuzzers (fuzz/, see docs/development.md, "Fuzzing") found crashes with, replayed
//! through the same checks as the fuzz targets (fuzz/checks.rs). Each input lives in
//! tests/fuzz_regressions/<target>/ (`seed-*` files are fixtures that keep the harness itself
//! exercised); a catch-all test replays every stored input so none is forgotten.

include!("../fuzz/checks.rs");

use std::path::Path;

fn check(target: &str) -> fn(&[u8]) {
    match target {
        "admission_review" => check_admission_review,
        "policy_yaml" => check_policy_yaml,
        "manifests" => check_manifests,
        "nesting" => check_nesting,
        other => panic!("unknown fuzz target directory {other}"),
    }
}

#[test]
fn every_stored_input_passes_its_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for target in ["admission_review", "policy_yaml", "manifests", "nesting"] {
        // Every target keeps its directory: a missing one fails, never skips.
        let dir = root.join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let before = replayed;
        for entry in entries {
            let path = entry.expect("entry").path();
            check(target)(&std::fs::read(&path).expect("read"));
            replayed += 1;
        }
        assert!(replayed > before, "{} holds no input", dir.display());
    }
    // The seeds below are always there: the harness itself is exercised.
    assert!(replayed >= 3, "replayed {replayed}");
}

#[test]
fn deep_inputs_pass_every_check() {
    // The seeds fuzz/seed.sh writes for deep nesting, through every target's check: each is
    // refused, JSON by the scan before a parser sees it, YAML by the parser's depth budget
    // (libyaml took over a minute on some of them).
    for (name, bytes) in deep_inputs() {
        for target in ["admission_review", "policy_yaml", "manifests", "nesting"] {
            check(target)(&bytes);
        }
        if name != "review-at-the-limit" {
            assert!(
                portcullis::nesting::check_json(&bytes).is_err()
                    || portcullis::yaml::parse(&String::from_utf8_lossy(&bytes))
                        .is_err_and(|e| e.too_deep),
                "{name} is not refused"
            );
        }
    }
    let (_, review) = deep_inputs().pop().expect("the review at the limit");
    assert!(portcullis::admission::parse_review(&review).is_ok());
}
