use kube::core::DynamicObject;
use kube::core::admission::{self as kube_admission, AdmissionRequest, AdmissionReview};
use serde_json::{Value, json};

use super::*;
use crate::engine::{Effect, Finding, Operation};
use crate::policy::model::Mode;

const BODY: &str = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u-1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"demo","operation":"UPDATE","userInfo":{"username":"alice"},"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},"spec":{"replicas":2}},"oldObject":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},"spec":{"replicas":1}},"dryRun":true}}"#;

fn body_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(BODY).expect("json");
    edit(&mut v);
    serde_json::to_vec(&v).expect("json")
}

fn finding(kind: FindingKind, effect: Effect) -> Finding {
    Finding {
        policy: "p".into(),
        rule: "requireProbes",
        part: 0,
        kind,
        mode: Mode::Enforce,
        effect,
        container: Some("app".into()),
        field: "spec.containers[0].livenessProbe".into(),
        message: "no livenessProbe".into(),
        hint: "add one".into(),
        pre_existing: false,
        exception: None,
        enforced_from: None,
    }
}

#[test]
fn builds_the_engine_request_from_the_review() {
    let review = parse_review(BODY.as_bytes()).expect("parse");
    assert!(review.request.dry_run);
    let r = review.engine_request(Timestamp::from_unix(0));
    assert_eq!(r.operation, Operation::Update);
    assert_eq!((r.group, r.kind), ("apps", "Deployment"));
    assert_eq!(r.namespace, Some("demo"));
    assert_eq!(r.name, None, "absent request.name is None, not \"\"");
    assert_eq!(r.username, Some("alice"));
    let replicas =
        |o: Option<Json<'_>>| o.and_then(|o| o.get("spec")?.get("replicas")?.as_number());
    assert_eq!(replicas(r.object), Some(2.into()));
    assert_eq!(replicas(r.old_object), Some(1.into()));
}

#[test]
fn unreadable_bodies_are_typed_errors_that_name_the_field() {
    assert!(matches!(parse_review(b""), Err(ReviewError::Empty)));
    assert!(matches!(parse_review(b" \n"), Err(ReviewError::Empty)));
    let truncated = parse_review(&BODY.as_bytes()[..40]).expect_err("truncated");
    assert!(matches!(truncated, ReviewError::Syntax(_)), "{truncated}");
    assert!(
        truncated.to_string().contains("line 1 column 40"),
        "{truncated}"
    );
    let not_an_object = parse_review(b"[1]").expect_err("refused").to_string();
    assert!(
        not_an_object.ends_with("review: expected a JSON object"),
        "{not_an_object}"
    );
    let v1beta1 = BODY.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1");
    assert!(matches!(
        parse_review(v1beta1.as_bytes()),
        Err(ReviewError::WrongVersion(v)) if v == "admission.k8s.io/v1beta1"
    ));
    let wrong_kind = BODY.replacen("\"AdmissionReview\"", "\"Pod\"", 1);
    assert!(matches!(
        parse_review(wrong_kind.as_bytes()),
        Err(ReviewError::WrongKind(_))
    ));
    let error = |edit: fn(&mut Value)| {
        parse_review(&body_with(edit))
            .expect_err("refused")
            .to_string()
    };
    let says = |edit: fn(&mut Value), what: &str| {
        let e = error(edit);
        assert!(e.ends_with(what), "{e}");
    };
    says(
        |v| v["request"]["uid"] = json!(7),
        "request.uid: expected a string",
    );
    says(
        |v| drop(v["request"].as_object_mut().map(|r| r.remove("kind"))),
        "request.kind: missing",
    );
    says(
        |v| v["request"]["kind"]["version"] = Value::Null,
        "request.kind.version: expected a string",
    );
    says(
        |v| v["request"]["operation"] = json!("PATCH"),
        "request.operation: expected CREATE, UPDATE, DELETE or CONNECT",
    );
    says(
        |v| v["request"]["userInfo"]["groups"] = json!(["a", 1]),
        "request.userInfo.groups[1]: expected a string",
    );
    says(
        |v| v["request"]["object"]["metadata"]["labels"] = json!({"app": 5}),
        "request.object.metadata.labels.app: expected a string",
    );
    says(
        |v| v["request"]["oldObject"]["metadata"]["ownerReferences"] = json!([{"uid": 5}]),
        "request.oldObject.metadata.ownerReferences[0].uid: expected a string",
    );
    says(
        |v| v["request"]["object"]["metadata"]["creationTimestamp"] = json!("yesterday"),
        "request.object.metadata.creationTimestamp: expected a time (RFC 3339)",
    );
    says(
        |v| v["request"]["object"] = json!("x"),
        "request.object: expected an object",
    );
}

// ---------------------------------------------------------------------------------------------
// The differential test: what the reader accepts and reads, against kube-core.

/// What kube-core's `AdmissionReview<DynamicObject>` reads of `body`, with Portcullis's
/// documented refusals applied (docs/webhook.md, "How a review is read"): only an
/// `admission.k8s.io/v1` `AdmissionReview` with a request, objects of the declared kind.
/// The request as a [`ReviewRequest`] and the objects; `None` when refused.
type Read = (ReviewRequest, Option<DynamicObject>, Option<DynamicObject>);

fn kube_reads(body: &[u8]) -> Option<Read> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).ok()?;
    if review.types.api_version != API_VERSION || review.types.kind != KIND {
        return None;
    }
    let r: AdmissionRequest<DynamicObject> = review.try_into().ok()?;
    let declared = match r.kind.group.as_str() {
        "" => r.kind.version.clone(),
        group => format!("{group}/{}", r.kind.version),
    };
    let objects = [&r.object, &r.old_object];
    for types in objects
        .into_iter()
        .flatten()
        .filter_map(|o| o.types.as_ref())
    {
        if types.api_version != declared || types.kind != r.kind.kind {
            return None;
        }
    }
    let request = ReviewRequest {
        uid: r.uid,
        group: r.kind.group,
        version: r.kind.version,
        kind: r.kind.kind,
        resource: r.resource.resource,
        sub_resource: r.sub_resource,
        name: r.name,
        namespace: r.namespace,
        operation: match r.operation {
            kube_admission::Operation::Create => Operation::Create,
            kube_admission::Operation::Update => Operation::Update,
            kube_admission::Operation::Delete => Operation::Delete,
            kube_admission::Operation::Connect => Operation::Connect,
        },
        username: r.user_info.username,
        dry_run: r.dry_run,
    };
    Some((request, r.object, r.old_object))
}

/// Asserts that Portcullis reads `body` as kube-core does: both refuse it, or both accept it
/// with the same request, objects that kube-core reads alike, and objects exactly as sent.
/// Whether it was accepted.
fn reads_as_kube_core(body: &[u8]) -> bool {
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(2000)
            .collect::<String>()
    };
    match (parse_review(body), kube_reads(body)) {
        (Ok(review), Some((request, object, old_object))) => {
            assert_eq!(review.request, request, "{}", text());
            let sent: Value = serde_json::from_slice(body).expect("JSON");
            for (key, ours, kube) in [
                ("object", review.object(), object),
                ("oldObject", review.old_object(), old_object),
            ] {
                let ours = ours.map(Json::to_value);
                let as_sent = Some(&sent["request"][key]).filter(|v| !v.is_null());
                assert_eq!(ours.as_ref(), as_sent, "{key} as sent: {}", text());
                let typed =
                    ours.map(|o| serde_json::from_value::<DynamicObject>(o).expect("reads"));
                assert_eq!(typed, kube, "{key}: {}", text());
            }
            true
        }
        (Err(_), None) => false,
        (ours, kube) => panic!(
            "Portcullis {:?} but kube-core {}: {}",
            ours.map(|_| ()),
            if kube.is_some() { "accepts" } else { "refuses" },
            text()
        ),
    }
}

/// Every path to a value in `v`.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (k, child) in children {
        at.push(k);
        paths(child, at, out);
        at.pop();
    }
}

fn value_at<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// Whether kube-core reads what is at `path` (not the objects' contents beyond `metadata`,
/// nor `managedFields[].fieldsV1`, which are any JSON).
fn read_by_kube(path: &[String]) -> bool {
    match path {
        [r, o, rest @ ..] if r == "request" && (o == "object" || o == "oldObject") => match rest {
            [] => true,
            [m, rest @ ..] if m == "metadata" => {
                !(rest.len() > 2 && rest[0] == "managedFields" && rest[2] == "fieldsV1")
            }
            _ => false,
        },
        _ => true,
    }
}

const REPLACEMENTS: [&str; 28] = [
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-1",
    "7",
    "1.5",
    "1.0",
    "1e2",
    "9223372036854775808",
    "\"\"",
    "\"x\"",
    "\"CREATE\"",
    "\"CONNECT\"",
    "\"2026-11-25T05:35:56Z\"",
    "\"2026-02-30T05:35:56Z\"",
    "\"2026-11-25T05:35:56.123+01:00\"",
    "[]",
    "[\"a\"]",
    "[null]",
    "{}",
    "{\"a\":\"b\"}",
    "{\"a\":[\"b\"]}",
    "{\"a\":null}",
    "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\",\"resource\":\"pods\"}",
    "{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\",\"apiVersion\":\"v1\"}",
    "[{\"apiVersion\":\"v1\",\"kind\":\"X\",\"name\":\"n\",\"uid\":\"u\",\"controller\":null}]",
];

/// A captured review's variants: every value kube-core reads replaced by each of
/// [`REPLACEMENTS`] or removed, an unknown field added to each object, and the shapes the
/// apiserver sends (each operation, subresources, old objects, user extras, unicode, huge).
fn variants(review: &Value) -> Vec<Value> {
    let replacements: Vec<Value> = REPLACEMENTS
        .iter()
        .map(|r| serde_json::from_str(r).expect(r))
        .collect();
    let mut all = Vec::new();
    paths(review, &mut Vec::new(), &mut all);
    let mut out = vec![review.clone()];
    let mut with = |edit: &dyn Fn(&mut Value)| {
        let mut v = review.clone();
        edit(&mut v);
        out.push(v);
    };
    for path in all.iter().filter(|p| read_by_kube(p)) {
        for r in &replacements {
            with(&|v| {
                if let Some(slot) = value_at(v, path) {
                    *slot = r.clone();
                }
            });
        }
        with(&|v| {
            if let Some((last, parent)) = path.split_last() {
                match value_at(v, parent) {
                    Some(Value::Object(m)) => drop(m.shift_remove(last)),
                    Some(Value::Array(a)) => drop(a.remove(last.parse::<usize>().expect("index"))),
                    _ => {}
                }
            }
        });
        with(&|v| {
            if let Some(Value::Object(m)) = value_at(v, path) {
                m.insert("zz-unknown".into(), json!({"a": [1, null]}));
            }
        });
    }
    for op in ["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""] {
        with(&|v| v["request"]["operation"] = json!(op));
    }
    for sub in [
        json!("status"),
        json!("scale"),
        json!("ephemeralcontainers"),
        Value::Null,
    ] {
        with(&|v| v["request"]["subResource"] = sub.clone());
        with(&|v| v["request"]["requestSubResource"] = sub.clone());
    }
    with(&|v| v["request"]["oldObject"] = v["request"]["object"].clone());
    with(&|v| v["request"]["object"] = Value::Null);
    for user in [
        json!({"username": "u", "uid": "1", "groups": ["a", "b"], "extra": {"k": ["v"], "k2": []}}),
        json!({"extra": {"k": "v"}}),
        json!({"extra": {"k": [1]}}),
        json!({"extra": null, "groups": null, "username": null}),
        json!({}),
    ] {
        with(&|v| v["request"]["userInfo"] = user.clone());
    }
    with(&|v| {
        v["request"]["name"] = json!("wëb-☃-\u{1F600}");
        v["request"]["object"]["metadata"]["labels"] = json!({"ключ": "値", "e\u{301}": "\u{0}"});
        v["request"]["uid"] = json!("\"quoted\"\\\n");
    });
    with(&|v| {
        let labels: serde_json::Map<String, Value> = (0..5_000)
            .map(|i| (format!("label-{i}"), json!(format!("value-{i}"))))
            .collect();
        v["request"]["object"]["metadata"]["labels"] = Value::Object(labels);
        v["request"]["object"]["metadata"]["annotations"] = json!({"big": "x".repeat(1 << 20)});
    });
    out
}

/// What the reader accepts, kube-core accepts, and reads the same (with the documented
/// refusals applied): the captured reviews (tests/fixtures/admission, the same files as the
/// shared fixtures), thousands of variants of them, and the fuzzers' stored inputs.
#[test]
fn reads_every_review_as_kube_core_does() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    let (mut bodies, mut accepted, mut fixtures) = (0, 0, 0);
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let body = std::fs::read(&path).expect("read");
        assert!(reads_as_kube_core(&body), "{} is refused", path.display());
        fixtures += 1;
        // The variants of a few: each of the operations and shapes the fixtures cover.
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if ![
            "validate-create-deployment.json",
            "mutate-update-deployment-resources.json",
            "mutate-create-pod-owned-by-replicaset.json",
            "validate-update-deployment-scale-subresource.json",
        ]
        .contains(&name)
        {
            continue;
        }
        let review: Value = serde_json::from_slice(&body).expect("json");
        for v in variants(&review) {
            bodies += 1;
            if reads_as_kube_core(&serde_json::to_vec(&v).expect("json")) {
                accepted += 1;
            }
        }
    }
    // The fuzzers' stored inputs, whatever they hold.
    let fuzzed = dir.join("../../fuzz_regressions/admission_review");
    for entry in std::fs::read_dir(&fuzzed).expect("fuzz inputs") {
        reads_as_kube_core(&std::fs::read(entry.expect("entry").path()).expect("read"));
        bodies += 1;
    }
    assert!(fixtures >= 30, "only {fixtures} fixtures");
    assert!(bodies > 7000, "only {bodies} variants");
    // Enough on both sides for the comparison to mean something.
    assert!(
        accepted > bodies / 5 && accepted < bodies * 9 / 10,
        "{accepted} of {bodies}"
    );
}

/// The same with bytes changed: the JSON syntax itself.
#[test]
fn reads_bodies_with_bytes_changed_as_kube_core_does() {
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    let mut accepted = 0;
    for name in [
        "validate-create-deployment.json",
        "mutate-update-deployment-resources.json",
    ] {
        let body = std::fs::read(dir.join(name)).expect("fixture");
        for _ in 0..600 {
            let mut b = body.clone();
            let at = rng.below(b.len());
            let byte = b"{}[]\",:0e-\\u \x01\xff"[rng.below(15)];
            match rng.below(3) {
                0 => drop(b.remove(at)),
                1 => b.insert(at, byte),
                _ => b[at] = byte,
            }
            if reads_as_kube_core(&b) {
                accepted += 1;
            }
        }
    }
    assert!(accepted > 100, "only {accepted} accepted");
}

// One test per deliberate difference from kube-core (docs/webhook.md lists them).

/// kube-core reads any `apiVersion` and `kind`; Portcullis serves admission.k8s.io/v1
/// AdmissionReviews only.
#[test]
fn differs_other_versions_and_kinds_are_refused() {
    for (key, value) in [("apiVersion", "admission.k8s.io/v1beta1"), ("kind", "Pod")] {
        let body = body_with(|v| v[key] = json!(value));
        assert!(serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body).is_ok());
        assert!(matches!(
            parse_review(&body),
            Err(ReviewError::WrongVersion(_) | ReviewError::WrongKind(_))
        ));
    }
}

/// kube-core reads a review without a request (`None`); Portcullis has nothing to judge.
#[test]
fn differs_a_review_without_request_is_refused() {
    for request in [None, Some(Value::Null)] {
        let body = body_with(|v| match &request {
            None => drop(v.as_object_mut().map(|m| m.remove("request"))),
            Some(r) => v["request"] = r.clone(),
        });
        let kube: AdmissionReview<DynamicObject> = serde_json::from_slice(&body).expect("reads");
        assert!(kube.request.is_none());
        assert!(matches!(parse_review(&body), Err(ReviewError::NoRequest)));
    }
}

/// kube-core reads an object of another kind than `request.kind` declares; Portcullis would
/// judge it as the declared kind, so it refuses it.
#[test]
fn differs_an_object_of_another_kind_is_refused() {
    for (key, api_version, kind) in [
        ("object", "v1", "Deployment"),
        ("oldObject", "apps/v1", "Pod"),
    ] {
        let body = body_with(|v| {
            v["request"][key]["apiVersion"] = json!(api_version);
            v["request"][key]["kind"] = json!(kind);
        });
        assert!(serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body).is_ok());
        let e = parse_review(&body).expect_err("refused");
        assert!(matches!(e, ReviewError::KindMismatch { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "request.{key} is {api_version} {kind} but request.kind declares apps/v1 Deployment"
            )
        );
    }
}

/// kube-core keeps the last of two values for a key in the objects (serde_json's `Value`);
/// Portcullis refuses a repeated key anywhere (parsers disagree on which value wins).
#[test]
fn differs_a_repeated_key_is_refused() {
    let body = BODY.replacen(r#""replicas":2"#, r#""replicas":2,"replicas":0"#, 1);
    assert_ne!(body, BODY);
    assert!(serde_json::from_str::<AdmissionReview<DynamicObject>>(&body).is_ok());
    assert!(matches!(
        parse_review(body.as_bytes()),
        Err(ReviewError::Json(crate::json::ParseError::DuplicateKey(k))) if k == "replicas"
    ));
}

/// kube-core reads an integer beyond 64 bits in an object as a float; Portcullis refuses it
/// (no workload field holds one).
#[test]
fn differs_an_integer_beyond_64_bits_is_refused() {
    let body = BODY.replacen(r#""replicas":2"#, r#""replicas":18446744073709551616"#, 1);
    assert!(serde_json::from_str::<AdmissionReview<DynamicObject>>(&body).is_ok());
    assert!(matches!(
        parse_review(body.as_bytes()),
        Err(ReviewError::Json(_))
    ));
}

/// kube-core reads a `response` in the review (and refuses one it cannot read); Portcullis
/// never reads it.
#[test]
fn differs_a_response_is_not_read() {
    for response in [
        json!({"uid": "u", "allowed": true, "status": {}}),
        json!("not a response"),
    ] {
        let body = body_with(|v| v["response"] = response.clone());
        assert!(parse_review(&body).is_ok());
        assert_eq!(
            serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body).is_ok(),
            response.is_object()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The answer.

#[test]
fn validate_denial_carries_403_message_and_warnings() {
    let decision = Decision {
        workload: "Deployment demo/web".into(),
        allowed: false,
        findings: vec![
            finding(FindingKind::Violation, Effect::Deny),
            finding(FindingKind::Violation, Effect::Warn),
            // Described by /mutate, not repeated here.
            finding(FindingKind::Mutation, Effect::Warn),
        ],
        ..Decision::default()
    };
    let answer = respond(Endpoint::Validate, "u-1", &decision).expect("respond");
    assert_eq!(answer.outcome, Outcome::Denied);
    let json: Value =
        serde_json::from_slice(&answer.review.to_bytes().expect("bytes")).expect("json");
    assert_eq!(json["apiVersion"], API_VERSION);
    assert_eq!(json["kind"], KIND);
    let resp = &json["response"];
    assert_eq!(resp["uid"], "u-1");
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    assert_eq!(resp["status"]["reason"], "Forbidden");
    assert_eq!(resp["status"]["status"], "Failure");
    let msg = resp["status"]["message"].as_str().expect("message");
    assert!(
        msg.contains("Deployment demo/web") && msg.contains("container \"app\""),
        "{msg}"
    );
    assert_eq!(resp["warnings"].as_array().map(Vec::len), Some(1));
    assert!(resp.get("patch").is_none() && resp.get("patchType").is_none());
}

#[test]
fn mutate_allows_with_a_base64_patch_and_only_mutation_warnings() {
    let patch = crate::engine::Patch(vec![crate::engine::patch::PatchOp {
        path: "/metadata/labels".into(),
        value: crate::engine::patch::PatchValue::Owned(json!({"a": "b"})),
    }]);
    let decision = Decision {
        workload: "Deployment demo/web".into(),
        allowed: false,
        findings: vec![
            finding(FindingKind::Violation, Effect::Warn),
            finding(FindingKind::Mutation, Effect::Warn),
        ],
        patch: patch.clone(),
        ..Decision::default()
    };
    let answer = respond(Endpoint::Mutate, "u-1", &decision).expect("respond");
    assert_eq!(answer.outcome, Outcome::Patched);
    let json: Value =
        serde_json::from_slice(&answer.review.to_bytes().expect("bytes")).expect("json");
    let resp = &json["response"];
    assert_eq!(resp["allowed"], true, "mutate never denies");
    assert_eq!(resp["status"], json!({}));
    assert_eq!(resp["patchType"], "JSONPatch");
    let warnings = resp["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("would apply"))
    );
    // The patch goes base64-encoded, as the apiserver documents for `[]byte`.
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().expect("patch is a base64 string"))
        .expect("base64");
    let decoded: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch json");
    assert_eq!(decoded, patch.to_json_patch());
}

#[test]
fn invalid_answer_has_no_uid_and_says_why() {
    let json = serde_json::to_value(invalid(&ReviewError::NoRequest)).expect("json");
    assert_eq!(
        json,
        json!({"apiVersion": API_VERSION, "kind": KIND, "response": {"uid": "", "allowed": false,
            "status": {"status": "Failure", "code": 400, "message": "AdmissionReview has no request",
                "reason": "InvalidRequest"}}})
    );
}
