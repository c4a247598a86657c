//! Hostile request bodies over real TLS (HTTP/1.1 and HTTP/2): each gets its documented answer
//! (SECURITY.md, "Hostile input"), and after each the server still answers normal reviews.

mod server_support;

use std::time::Duration;

use portcullis::server::MAX_BODY_BYTES;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use server_support::{Http, Options, TestServer, fixture, post, start, tls_connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn good_review() -> Value {
    serde_json::from_slice(&fixture("validate-create-pod-bare.json")).expect("fixture")
}

fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review = good_review();
    edit(&mut review);
    serde_json::to_vec(&review).expect("json")
}

/// Posts `body` to both endpoints over both HTTP versions; asserts the status and that the
/// message (400s: `response.status.message`) contains `expected`.
async fn expect_answer(t: &TestServer, what: &str, body: &[u8], status: u16, expected: &str) {
    for http in [Http::One, Http::Two] {
        let client = t.client(http);
        for endpoint in ["/validate", "/mutate"] {
            let (got, answer) = post(&client, &t.url(endpoint), body.to_vec()).await;
            assert_eq!(got, status, "{what} at {endpoint} over {http:?}: {answer}");
            let message = answer["response"]["status"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| answer.to_string());
            assert!(
                message.contains(expected),
                "{what} at {endpoint} over {http:?}: {message:?} lacks {expected:?}"
            );
            if status == 400 {
                assert_eq!(answer["response"]["allowed"], false, "{what}");
                assert_eq!(
                    answer["response"]["uid"], "",
                    "{what}: no uid for unreadable bodies"
                );
            }
        }
    }
    t.assert_still_serving(what).await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let t = start(Options::default()).await;
    let good = fixture("validate-create-pod-bare.json");
    // Truncated at many points, including inside strings, numbers and escapes.
    for cut in [
        1,
        2,
        17,
        good.len() / 7,
        good.len() / 3,
        good.len() / 2,
        good.len() - 2,
    ] {
        expect_answer(
            &t,
            &format!("truncated at {cut}"),
            &good[..cut],
            400,
            "not a valid admission.k8s.io/v1 AdmissionReview",
        )
        .await;
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"{}");
    for (what, body) in [
        ("trailing data", trailing),
        ("lone brace", b"{".to_vec()),
        ("null", b"null".to_vec()),
        ("number", b"42".to_vec()),
        ("string", b"\"AdmissionReview\"".to_vec()),
        ("NUL bytes", vec![0; 64]),
        (
            "bad escape",
            br#"{"apiVersion":"admission.k8s.io/v1\x"}"#.to_vec(),
        ),
    ] {
        expect_answer(&t, what, &body, 400, "not a valid").await;
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn wrong_envelope_is_400() {
    let t = start(Options::default()).await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "v1beta1",
            review_with(|r| r["apiVersion"] = json!("admission.k8s.io/v1beta1")),
            "only admission.k8s.io/v1 is served",
        ),
        (
            "no apiVersion",
            review_with(|r| {
                r.as_object_mut().expect("object").remove("apiVersion");
            }),
            "not a valid",
        ),
        (
            "wrong kind",
            review_with(|r| r["kind"] = json!("ConversionReview")),
            "unsupported kind \"ConversionReview\"",
        ),
        (
            "no request",
            review_with(|r| {
                r.as_object_mut().expect("object").remove("request");
            }),
            "has no request",
        ),
        (
            "a response instead of a request",
            review_with(|r| {
                let uid = r["request"]["uid"].clone();
                r.as_object_mut().expect("object").remove("request");
                r["response"] = json!({"uid": uid, "allowed": true});
            }),
            "has no request",
        ),
        (
            "request without uid",
            review_with(|r| {
                r["request"].as_object_mut().expect("request").remove("uid");
            }),
            "request.uid: missing",
        ),
        (
            "uid of the wrong type",
            review_with(|r| r["request"]["uid"] = json!(12)),
            "request.uid: expected a string",
        ),
        (
            "request without kind",
            review_with(|r| {
                r["request"]
                    .as_object_mut()
                    .expect("request")
                    .remove("kind");
            }),
            "request.kind: missing",
        ),
        (
            "unknown operation",
            review_with(|r| r["request"]["operation"] = json!("EXPLODE")),
            "request.operation: expected CREATE, UPDATE, DELETE or CONNECT",
        ),
        (
            "duplicate uid",
            String::from_utf8(fixture("validate-create-pod-bare.json"))
                .expect("utf8")
                .replacen("\"uid\":", "\"uid\": \"x\", \"uid\":", 1)
                .into_bytes(),
            "duplicate field `uid`",
        ),
    ];
    for (what, body, expected) in &cases {
        expect_answer(&t, what, body, 400, expected).await;
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn an_object_of_another_kind_than_declared_is_400() {
    let t = start(Options::default()).await;
    // A Deployment declared as a Pod: judged as a Pod it would have no containers to judge.
    let body = {
        let mut r: Value =
            serde_json::from_slice(&fixture("validate-create-deployment.json")).expect("json");
        r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
        r["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "pods"});
        serde_json::to_vec(&r).expect("json")
    };
    expect_answer(
        &t,
        "Deployment declared as Pod",
        &body,
        400,
        "request.object is apps/v1 Deployment but request.kind declares v1 Pod",
    )
    .await;
    // The same in oldObject of an UPDATE.
    let body = {
        let mut r: Value =
            serde_json::from_slice(&fixture("validate-update-deployment-resources.json"))
                .expect("json");
        r["request"]["oldObject"]["kind"] = json!("StatefulSet");
        serde_json::to_vec(&r).expect("json")
    };
    expect_answer(
        &t,
        "oldObject of another kind",
        &body,
        400,
        "request.oldObject is apps/v1 StatefulSet but request.kind declares apps/v1 Deployment",
    )
    .await;
    // An object that is not a workload at all, declared as one, is refused too; a review of a
    // kind Portcullis does not judge is allowed untouched.
    let body = review_with(|r| {
        r["request"]["object"] =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    });
    expect_answer(&t, "Secret declared as Pod", &body, 400, "is v1 Secret").await;
    let body = review_with(|r| {
        r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
        r["request"]["object"] =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    });
    let (status, answer) = post(&t.client(Http::Two), &t.url("/validate"), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["allowed"], true);
    t.server.shutdown().await;
}

#[tokio::test]
async fn bodies_beyond_the_limit_are_413_with_or_without_a_declared_length() {
    let t = start(Options::default()).await;
    let client = t.client(Http::Two);
    let (status, _) = post(&client, &t.url("/validate"), vec![b'{'; MAX_BODY_BYTES + 1]).await;
    assert_eq!(status, 413);
    t.assert_still_serving("a declared oversize body").await;

    // HTTP/1.1 chunked, no Content-Length: refused once the limit is crossed, not buffered.
    let tcp = tokio::net::TcpStream::connect(t.server.addr())
        .await
        .expect("connect");
    let mut tls = tls_connector(
        &t.ca.pem().cert_pem,
        &[&rustls::version::TLS13],
        &[b"http/1.1"],
        None,
    )
    .connect(ServerName::try_from("localhost").expect("name"), tcp)
    .await
    .expect("handshake");
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .expect("head");
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    // Keep sending until the server answers or closes; it must do so soon after the limit.
    while sent <= MAX_BODY_BYTES + chunk.len() {
        let head = format!("{:x}\r\n", chunk.len());
        let wrote = async {
            tls.write_all(head.as_bytes()).await?;
            tls.write_all(&chunk).await?;
            tls.write_all(b"\r\n").await
        }
        .await;
        if wrote.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "after {sent} bytes: {response:?}"
    );
    assert!(
        sent <= MAX_BODY_BYTES + 2 * chunk.len(),
        "read {sent} bytes"
    );
    t.assert_still_serving("a chunked oversize body").await;
    t.server.shutdown().await;
}

/// A TLS connection to the test server speaking `alpn`.
async fn raw_tls(
    t: &TestServer,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(t.server.addr())
        .await
        .expect("connect");
    tls_connector(
        &t.ca.pem().cert_pem,
        &[&rustls::version::TLS13],
        &[alpn],
        None,
    )
    .connect(ServerName::try_from("localhost").expect("name"), tcp)
    .await
    .expect("handshake")
}

#[tokio::test]
async fn a_declared_oversize_body_is_413_before_it_is_sent() {
    let t = start(Options::default()).await;
    let declared = 4 * MAX_BODY_BYTES;
    // Guards against a hang only: each answer comes as soon as the headers are read.
    let bounded = Duration::from_secs(10);

    // HTTP/1.1 with `Expect: 100-continue`, the way curl sends large bodies: the answer is
    // 413, not `100 Continue` (after which the client would send 16 MiB to be reset).
    // Without it: the 413 comes although no byte of the body was sent.
    for expect in ["Expect: 100-continue\r\n", ""] {
        let mut tls = raw_tls(&t, b"http/1.1").await;
        tls.write_all(
            format!(
                "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n{expect}\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("head");
        let mut response = Vec::new();
        let _ = tokio::time::timeout(bounded, tls.read_to_end(&mut response)).await;
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 413"),
            "{expect:?}: {response:?}"
        );
        assert!(
            response.contains(&format!(
                "request body of {declared} bytes refused: the limit is {MAX_BODY_BYTES} bytes (4 MiB)"
            )),
            "{response:?}"
        );
    }

    // HTTP/2: one frame of the body sent, the rest never; the 413 comes anyway.
    let tls = raw_tls(&t, b"h2").await;
    let (client, connection) = h2::client::handshake(tls).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = axum::http::Request::post(t.url("/validate"))
        .header("content-type", "application/json")
        .header("content-length", declared.to_string())
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("send");
    body.send_data(vec![b' '; 16 * 1024].into(), false)
        .expect("first frame");
    let response = tokio::time::timeout(bounded, response)
        .await
        .expect("answered before the body is sent")
        .expect("a response, not a reset");
    assert_eq!(response.status(), 413);
    t.assert_still_serving("declared oversize bodies").await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn deep_nesting_is_400_without_a_stack_overflow() {
    let t = start(Options::default()).await;
    // Beyond 128 levels: refused by the byte scan before any parser runs, the stack untouched.
    for depth in [129, 10_000, 1_000_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = String::from_utf8(fixture("validate-create-pod-bare.json")).expect("utf8");
        let body = text.replacen(
            "\"metadata\":",
            &format!("\"deep\": {nested}, \"metadata\":"),
            1,
        );
        assert_ne!(body, text, "the fixture has a metadata key");
        expect_answer(
            &t,
            &format!("nesting depth {depth}"),
            body.as_bytes(),
            400,
            "nested deeper than 128 levels (at line 1, column ",
        )
        .await;
    }
    // Nesting that fits the limit is read and judged like any other object.
    let body = review_with(|r| {
        let mut deep = json!("bottom");
        for _ in 0..100 {
            deep = json!({ "d": deep });
        }
        r["request"]["object"]["metadata"]["annotations"] = json!({"note": "deep below"});
        r["request"]["object"]["spec"]["deep"] = deep;
    });
    let (status, answer) = post(&t.client(Http::Two), &t.url("/validate"), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["response"]["allowed"], false,
        "still judged: {answer}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn non_utf8_is_400() {
    let t = start(Options::default()).await;
    let text = String::from_utf8(fixture("validate-create-pod-bare.json")).expect("utf8");
    // An invalid byte inside a string value.
    let mut invalid = text.clone().into_bytes();
    let at = text.find("\"name\"").expect("a name") + 9;
    invalid.splice(at..at, [0xC3, 0x28]);
    expect_answer(
        &t,
        "invalid UTF-8 in a string",
        &invalid,
        400,
        "invalid unicode",
    )
    .await;
    // The whole body in UTF-16 (with a BOM), as some editors save files.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    expect_answer(&t, "UTF-16 body", &utf16, 400, "not a valid").await;
    // Lone surrogate escapes are not valid Unicode either.
    let body = text.replacen("\"uid\":\"", "\"uid\":\"\\ud800", 1);
    assert_ne!(body, text);
    expect_answer(
        &t,
        "lone surrogate escape",
        body.as_bytes(),
        400,
        "not a valid",
    )
    .await;
    t.server.shutdown().await;
}
