//! The HTTP surface: bad bodies, methods, paths, the body limit, protocol negotiation,
//! readiness and metrics.

mod server_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portcullis::server::{AppState, MAX_BODY_BYTES, build_admin_router, build_router};
use server_support::{Http, Options, fixture, post, start};
use tower::ServiceExt;

#[tokio::test]
async fn unreadable_bodies_get_400_with_a_clear_message() {
    let t = start(Options::default()).await;
    let client = t.client(Http::One);
    let good = String::from_utf8(fixture("validate-create-pod-bare.json")).expect("utf8");
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "empty body"),
        (
            "truncated",
            good[..good.len() / 2].to_owned(),
            "not a valid admission.k8s.io/v1 AdmissionReview",
        ),
        ("not json", "hello".to_owned(), "not a valid"),
        (
            "wrong apiVersion",
            good.replacen("admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1),
            "only admission.k8s.io/v1 is served",
        ),
        (
            "no request",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_owned(),
            "has no request",
        ),
        ("json array", "[]".to_owned(), "not a valid"),
    ];
    for endpoint in ["/validate", "/mutate"] {
        for (what, body, expected) in &cases {
            let (status, answer) = post(&client, &t.url(endpoint), body.clone()).await;
            assert_eq!(status, 400, "{endpoint} {what}: {answer}");
            let msg = answer["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(msg.contains(expected), "{endpoint} {what}: {msg:?}");
            assert_eq!(answer["response"]["allowed"], false);
            assert_eq!(
                answer["response"]["uid"], "",
                "no uid for unreadable bodies"
            );
        }
    }
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"portcullis_admission_requests_total{endpoint="validate",decision="invalid",kind=""} 6"#),
        "{metrics}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn other_methods_405_unknown_paths_404_large_bodies_413() {
    let t = start(Options::default()).await;
    let client = t.client(Http::Two);
    let resp = client.get(t.url("/validate")).send().await.expect("GET");
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.headers().get("allow").map(|v| v.to_str().ok()),
        Some(Some("POST"))
    );
    let resp = client
        .put(t.url("/mutate"))
        .body("{}")
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 405);
    let resp = client
        .post(t.url("/nope"))
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 404);

    // Just over the limit: refused before the handler sees it.
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, _) = post(&client, &t.url("/validate"), big).await;
    assert_eq!(status, 413);
    // A body at the limit is read (and here rejected as empty: it is all spaces).
    let (status, _) = post(&client, &t.url("/validate"), vec![b' '; MAX_BODY_BYTES]).await;
    assert_eq!(status, 400);
    t.server.shutdown().await;
}

#[tokio::test]
async fn alpn_negotiates_http2_and_http1() {
    let t = start(Options::default()).await;
    for (http, version) in [
        (Http::One, reqwest::Version::HTTP_11),
        (Http::Two, reqwest::Version::HTTP_2),
    ] {
        let resp = t
            .client(http)
            .post(t.url("/validate"))
            .body(fixture("validate-create-pod-owned-by-replicaset.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), 200);
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn readyz_only_once_tls_is_bound_and_not_while_draining() {
    let set = portcullis::lint::load_dir(std::path::Path::new(server_support::POLICY_FIXTURES))
        .expect("policies");
    let state = AppState::new(set);
    let readyz = |state: AppState| async move {
        build_admin_router(state)
            .oneshot(
                Request::get("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response")
            .status()
    };
    assert_eq!(readyz(state.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
    state.set_tls_bound();
    assert_eq!(readyz(state.clone()).await, StatusCode::OK);
    state.set_draining();
    assert_eq!(readyz(state.clone()).await, StatusCode::SERVICE_UNAVAILABLE);

    // And on a real server: ready after start, livez up, unknown admin paths 404.
    let t = start(Options::default()).await;
    assert_eq!(t.admin_get("/readyz").await.0, 200);
    assert_eq!(t.admin_get("/livez").await.0, 200);
    assert_eq!(t.admin_get("/nope").await.0, 404);
    t.server.shutdown().await;
}

#[tokio::test]
async fn router_answers_without_tls_too() {
    // build_router is the whole webhook; TLS is only the transport.
    let set = portcullis::lint::load_dir(std::path::Path::new(server_support::POLICY_FIXTURES))
        .expect("policies");
    let router = build_router(AppState::new(set));
    let resp = router
        .oneshot(
            Request::post("/validate?timeout=10s")
                .body(Body::from(fixture("validate-create-deployment.json")))
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(answer["response"]["allowed"], false);
}

#[tokio::test]
async fn metrics_count_requests_violations_latency_and_certificate_expiry() {
    let t = start(Options::default()).await;
    let client = t.client(Http::Two);
    post(
        &client,
        &t.url("/validate"),
        fixture("validate-create-pod-bare.json"),
    )
    .await;
    post(
        &client,
        &t.url("/validate"),
        fixture("validate-create-pod-owned-by-replicaset.json"),
    )
    .await;
    post(
        &client,
        &t.url("/mutate"),
        fixture("mutate-create-pod-bare.json"),
    )
    .await;
    let m = t.metrics().await;
    for expected in [
        r#"portcullis_admission_requests_total{endpoint="validate",decision="denied",kind="Pod"} 1"#,
        r#"portcullis_admission_requests_total{endpoint="validate",decision="allowed",kind="Pod"} 1"#,
        r#"portcullis_admission_requests_total{endpoint="mutate",decision="patched",kind="Pod"} 1"#,
        r#"portcullis_policy_violations_total{policy="require-probes",effect="deny"} 2"#,
        r#"portcullis_policy_violations_total{policy="require-resources",effect="deny"} 4"#,
        r#"portcullis_policy_mutations_total{policy="inject-logging-sidecar",effect="apply"}"#,
        r#"portcullis_policy_mutations_total{policy="cost-center",effect="warn"} 1"#,
        r#"portcullis_admission_duration_seconds_count{endpoint="validate"} 2"#,
        r#"portcullis_admission_duration_seconds_bucket{le="0.0005",endpoint="validate"}"#,
        "portcullis_policy_generation 1",
        "portcullis_policies_loaded 6",
        "portcullis_admission_in_flight 0",
        r#"portcullis_policy_reloads_total{result="failure"} 0"#,
        r#"portcullis_tls_reloads_total{result="success"} 0"#,
        "# TYPE portcullis_tls_certificate_expiry_timestamp_seconds gauge",
    ] {
        assert!(m.contains(expected), "missing {expected:?} in\n{m}");
    }
    let expiry: i64 = m
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_tls_certificate_expiry_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("expiry value");
    let cert = std::fs::read_to_string(&t.cert_path).expect("cert");
    assert_eq!(
        expiry,
        portcullis::certs::expiry_unix_seconds(&cert).expect("expiry")
    );
    t.server.shutdown().await;
}
