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
            let answer = portcullis::admission::respond(endpoint, &review.request.uid, &decision)
                .expect("an answer can always be built");
            serde_json::to_vec(&answer.review).expect("the answer serializes");
        }
        if let (Some(object), false) = (review.object(), decision.patch.0.is_empty()) {
            let mut patched = object.to_value();
            json_patch::patch(&mut patched, &decision.patch.to_json_patch()).expect("the patch applies");
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

/// Bytes → the JSON nesting scan (`src/nesting.rs`) beside serde_json, and the YAML parser's
/// depth budget (`src/yaml.rs`) beside serde_yaml_ng: the JSON scan gives exactly the depth
/// serde_json finds, and refuses only what serde_json refuses; the YAML parse keeps the depth
/// of what it accepts (at most the limit) and refuses as too deep only what is deeper.
pub fn check_nesting(data: &[u8]) {
    fn json_depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(json_depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    fn yaml_depth(v: &serde_yaml_ng::Value) -> usize {
        use serde_yaml_ng::Value as Y;
        match v {
            Y::Sequence(s) => 1 + s.iter().map(yaml_depth).max().unwrap_or(0),
            Y::Mapping(m) => {
                1 + m.iter().map(|(k, v)| yaml_depth(k).max(yaml_depth(v))).max().unwrap_or(0)
            }
            Y::Tagged(t) => yaml_depth(&t.value),
            _ => 0,
        }
    }
    let scanned = portcullis::nesting::json_depth(data);
    assert_eq!(
        portcullis::nesting::check_json(data).is_ok(),
        scanned.is_ok(),
        "the quick check and the scan disagree"
    );
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(scanned, Ok(json_depth(&value)), "JSON depth");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let max = portcullis::yaml::MAX_DEPTH;
    match portcullis::yaml::parse(text) {
        Ok(value) => assert!(json_depth(&value) <= max, "YAML accepted deeper than {max}"),
        // serde_yaml_ng is slow on deep input: only short texts are compared with it.
        Err(e) if e.too_deep && text.len() < 100_000 => {
            if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
                let depth = yaml_depth(&value);
                assert!(depth > max, "YAML refused as too deep at {depth} levels");
            }
        }
        Err(_) => {}
    }
}

/// Deep inputs of every shape the scans look for, for seeds and regression tests: (name,
/// bytes). Each would take the YAML parser seconds to minutes without the scans.
pub fn deep_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let n = 100_000;
    let review = |deep: &str| {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}},"spec":{{"deep":{deep}}}}}}}}}"#
        )
    };
    vec![
        ("json-arrays", format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        ("json-objects", format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        ("yaml-flow-maps", format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)).into_bytes()),
        ("yaml-compact", format!("{}x\n", "- ".repeat(n)).into_bytes()),
        ("yaml-complex-keys", format!("{}x\n", "? ".repeat(n)).into_bytes()),
        (
            "yaml-in-a-manifest",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  k: {}\n",
                "[".repeat(n)
            )
            .into_bytes(),
        ),
        ("review", review(&format!("{}{}", "[".repeat(n), "]".repeat(n))).into_bytes()),
        ("review-at-the-limit", review(&format!("{}{}", "[".repeat(120), "]".repeat(120))).into_bytes()),
    ]
}
