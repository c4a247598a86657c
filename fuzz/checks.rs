// The checks each fuzz target runs on one input, shared (by `include!`) between the fuzz
// targets (fuzz/fuzz_targets/) and the regression tests that replay stored inputs
// (tests/fuzz_regressions.rs). A check panics when an invariant breaks; any other outcome,
// including a clean error for bad input, is a pass.

/// The policy sets reviews are judged against: the shipped defaults and the test fixtures.
fn fuzz_policy_sets() -> &'static [portcullis::policy::PolicySet] {
    static SETS: std::sync::OnceLock<Vec<portcullis::policy::PolicySet>> =
        std::sync::OnceLock::new();
    SETS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        // The fuzz crate lives in fuzz/, the tests in the repository root.
        let root = if root.join("policies").is_dir() { root.to_path_buf() } else { root.join("..") };
        ["policies", "tests/fixtures/policies"]
            .iter()
            .map(|d| portcullis::lint::load_dir(&root.join(d)).expect("the shipped policies load"))
            .collect()
    })
}

/// AdmissionReview body → the server's parsing → engine → the answer for both endpoints; a
/// patch applies to the object it was computed for, and re-evaluating the patched object
/// yields no further patch (the apiserver may reinvoke the webhook).
pub fn check_admission_review(data: &[u8]) {
    use portcullis::telemetry::Endpoint;
    let Ok(review) = portcullis::admission::parse_review(data) else {
        return;
    };
    for set in fuzz_policy_sets() {
        let decision = review.evaluate(set, portcullis::policy::Timestamp::from_unix(1_767_225_600));
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let answer = portcullis::admission::respond(endpoint, &review.request, &decision)
                .expect("an answer can always be built");
            serde_json::to_vec(&answer.review).expect("the answer serializes");
        }
        if let (Some(object), false) = (review.object(), decision.patch.0.is_empty()) {
            let mut patched = object.to_value();
            json_patch::patch(&mut patched, &decision.patch).expect("the patch applies");
            let mut again =
                review.engine_request(portcullis::policy::Timestamp::from_unix(1_767_225_600));
            again.object = Some((&patched).into());
            let second = portcullis::engine::evaluate(set, &again);
            assert!(
                second.patch.0.is_empty(),
                "not idempotent: {:?} after {:?}",
                second.patch,
                decision.patch
            );
        }
    }
}

/// Policy file bytes → the strict loader (and its lint); every error names its file.
pub fn check_policy_yaml(data: &[u8]) {
    // The loader reads files as UTF-8 text (`read_to_string`); other bytes never reach it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match portcullis::lint::load_str(std::path::Path::new("fuzz.yaml"), text) {
        Ok(set) => {
            for w in &set.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
            let _ = e.to_string();
        }
    }
}

/// Manifest bytes → the audit reader → the engine with the default policies.
pub fn check_manifests(data: &[u8]) {
    use portcullis::audit::read::{Entry, read_bytes};
    let defaults = &fuzz_policy_sets()[0];
    for entry in read_bytes("fuzz.yaml", data) {
        match entry {
            Entry::Object(m) => {
                let _ = m.location.to_string();
                let decision = portcullis::engine::evaluate(
                    defaults,
                    &portcullis::engine::Request::create(&m.object, portcullis::policy::Timestamp::from_unix(1_767_225_600)),
                );
                let _ = decision.denial_message();
            }
            Entry::Error(e) => {
                assert!(!e.message.is_empty(), "an error without a message");
                let _ = e.location.to_string();
            }
        }
    }
}
