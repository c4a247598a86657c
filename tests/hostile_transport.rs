//! Hostile clients at the transport level: slow clients (slowloris), many idle connections,
//! TLS 1.0/1.1 and plaintext HTTP on the TLS port, and clients without a certificate when
//! mutual TLS is on. Each gets its documented answer (SECURITY.md, "Hostile input"), and the
//! server keeps answering other clients. The server runs with a 1 s request timeout, so every
//! wait here is bounded by a few seconds.

mod server_support;

use std::time::{Duration, Instant};

use portcullis::certs::CertificateAuthority;
use rustls_pki_types::ServerName;
use server_support::{Http, Options, TestServer, client_for, fixture, post, start, tls_connector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(1);
/// How long a test waits for the server to close a connection it must close after TIMEOUT.
const CLOSE_WITHIN: Duration = Duration::from_secs(8);

async fn start_fast() -> TestServer {
    start(Options {
        request_timeout: Some(TIMEOUT),
        ..Options::default()
    })
    .await
}

async fn tls_handshake(
    t: &TestServer,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
    tls_connector(&t.ca.pem().cert_pem, &[&rustls::version::TLS13], alpn, None)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake")
}

/// Reads until the peer closes (EOF or error); returns what was read, or `None` if the
/// connection was still open after `within`.
async fn read_until_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slowloris_headers_and_bodies_are_cut_off_by_the_timeouts() {
    let t = start_fast().await;

    // Headers trickling in, one byte at a time: the connection is closed.
    let mut tls = tls_handshake(&t, &[b"http/1.1"]).await;
    let trickle = async {
        for b in b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let started = Instant::now();
    tokio::time::timeout(CLOSE_WITHIN, trickle).await.ok();
    let rest = read_until_closed(&mut tls, CLOSE_WITHIN).await;
    assert!(
        rest.is_some(),
        "slow headers: connection still open after {:?}",
        started.elapsed()
    );
    t.assert_still_serving("slow headers").await;

    // Complete headers, then a body trickling in: 503 once the request timeout is over.
    let body = fixture("validate-create-pod-bare.json");
    let mut tls = tls_handshake(&t, &[b"http/1.1"]).await;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&body[..10]).await.expect("some body");
    tls.flush().await.expect("flush");
    let response = read_until_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the server answers and closes a slow body");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    t.assert_still_serving("slow body").await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_do_not_block_others() {
    let t = start_fast().await;
    // Connections that never start TLS, and TLS connections that never send a request.
    let mut raw = Vec::new();
    for _ in 0..200 {
        raw.push(TcpStream::connect(t.server.addr()).await.expect("connect"));
    }
    let mut tls = Vec::new();
    for i in 0..40 {
        let alpn: &[&[u8]] = if i % 2 == 0 { &[b"http/1.1"] } else { &[b"h2"] };
        tls.push(tls_handshake(&t, alpn).await);
    }
    // A keep-alive connection idle after its first request.
    let mut kept = tls_handshake(&t, &[b"http/1.1"]).await;
    kept.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 404");
    // While they hang around, other clients are served.
    t.assert_still_serving("241 idle connections").await;
    // Every idle connection is closed within the timeouts.
    for (i, mut conn) in raw.into_iter().enumerate() {
        assert!(
            read_until_closed(&mut conn, CLOSE_WITHIN).await.is_some(),
            "raw connection {i} still open"
        );
    }
    for (i, mut conn) in tls.into_iter().enumerate() {
        assert!(
            read_until_closed(&mut conn, CLOSE_WITHIN).await.is_some(),
            "idle TLS connection {i} still open"
        );
    }
    assert!(
        read_until_closed(&mut kept, CLOSE_WITHIN).await.is_some(),
        "idle keep-alive connection still open"
    );
    t.assert_still_serving("idle connections closed").await;
    t.server.shutdown().await;
}

/// A TLS ClientHello record offering only `version` (legacy field, no supported_versions
/// extension): what a TLS 1.0 or 1.1 client sends.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // session id
    // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, _256_CBC_SHA, TLS_RSA_WITH_AES_128_CBC_SHA, _256_.
    let suites: [u16; 4] = [0xc013, 0xc014, 0x002f, 0x0035];
    body.extend_from_slice(&u16::try_from(suites.len() * 2).expect("len").to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // server_name: localhost
    let name = b"localhost";
    let mut sni = Vec::new();
    sni.extend_from_slice(&u16::try_from(name.len() + 3).expect("len").to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&u16::try_from(name.len()).expect("len").to_be_bytes());
    sni.extend_from_slice(name);
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&u16::try_from(sni.len()).expect("len").to_be_bytes());
    ext.extend_from_slice(&sni);
    body.extend_from_slice(&u16::try_from(ext.len()).expect("len").to_be_bytes());
    body.extend_from_slice(&ext);

    let mut handshake = vec![1]; // ClientHello
    let len = u32::try_from(body.len()).expect("len").to_be_bytes();
    handshake.extend_from_slice(&len[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("len").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_with_a_fatal_alert() {
    let t = start_fast().await;
    for (name, version) in [
        ("TLS 1.0", [3, 1]),
        ("TLS 1.1", [3, 2]),
        ("SSL 3.0", [3, 0]),
    ] {
        let mut tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
        tcp.write_all(&legacy_client_hello(version))
            .await
            .expect("hello");
        let answer = read_until_closed(&mut tcp, CLOSE_WITHIN)
            .await
            .unwrap_or_else(|| panic!("{name}: connection left open"));
        // One fatal (2) alert record: handshake_failure (40), as rustls implements neither
        // these versions nor their cipher suites (or protocol_version, 70).
        assert!(
            answer.len() >= 7
                && answer[0] == 0x15
                && answer[5] == 2
                && [40, 70].contains(&answer[6]),
            "{name}: {answer:02x?}"
        );
        t.assert_still_serving(name).await;
    }
    // What is offered: TLS 1.2 and TLS 1.3, each on its own.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
        let tls = tls_connector(&t.ca.pem().cert_pem, &[version], &[b"h2"], None)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn plaintext_http_on_the_tls_port_gets_no_http_answer() {
    let t = start_fast().await;
    let body = fixture("validate-create-pod-bare.json");
    for http in [
        format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
        "GET / HTTP/1.0\r\n\r\n".to_owned(),
    ] {
        let mut tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
        tcp.write_all(http.as_bytes()).await.expect("write");
        let _ = tcp.write_all(&body).await;
        let answer = read_until_closed(&mut tcp, CLOSE_WITHIN)
            .await
            .expect("the connection is closed");
        // At most a TLS alert record; never an HTTP answer, never the review.
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{http:?}: {:?}",
            String::from_utf8_lossy(&answer)
        );
        t.assert_still_serving("plaintext HTTP").await;
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn without_a_client_certificate_nothing_is_answered_when_mtls_is_on() {
    let clients =
        CertificateAuthority::generate("apiserver clients", Duration::from_secs(3600)).expect("CA");
    let t = start(Options {
        client_ca_pem: Some(clients.pem().cert_pem.clone()),
        request_timeout: Some(TIMEOUT),
        ..Options::default()
    })
    .await;
    let ca = t.ca.pem().cert_pem.clone();
    let apiserver = clients
        .issue_client_cert("kube-apiserver", Duration::from_secs(3600))
        .expect("client cert");
    let body = fixture("validate-create-pod-bare.json");
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        // TLS 1.2 fails in the handshake; with TLS 1.3 the client finishes first and the
        // server's certificate_required alert arrives with the first read.
        let tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
        let connected = tls_connector(&ca, &[version], &[b"http/1.1"], None)
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await;
        if let Ok(mut tls) = connected {
            let head = format!(
                "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(&body).await;
            let _ = tls.flush().await;
            let answer = read_until_closed(&mut tls, CLOSE_WITHIN)
                .await
                .expect("the connection is closed");
            assert!(answer.is_empty(), "{version:?}: answered {answer:?}");
        }
        // The client with a certificate is still served.
        let client = client_for(&ca, t.server.addr(), Http::Two, Some(&apiserver));
        let (status, answer) = post(&client, &t.url("/validate"), body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false);
    }
    t.server.shutdown().await;
}

/// Waits (bounded) until the metrics text contains `line`.
async fn metric_reaches(t: &TestServer, line: &str) -> bool {
    let deadline = Instant::now() + CLOSE_WITHIN;
    while Instant::now() < deadline {
        if t.metrics().await.lines().any(|l| l == line) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_counted() {
    let t = start(Options {
        // Idle connections stay open for the whole test.
        request_timeout: Some(Duration::from_secs(60)),
        max_connections: Some(3),
        ..Options::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tls_handshake(&t, &[b"h2"]).await);
    }
    assert!(metric_reaches(&t, "portcullis_connections_open 3").await);
    assert!(metric_reaches(&t, "portcullis_connections_max 3").await);
    // The fourth is accepted by the kernel and closed at once: no handshake.
    let tcp = TcpStream::connect(t.server.addr()).await.expect("connect");
    let refused = tokio::time::timeout(
        CLOSE_WITHIN,
        tls_connector(
            &t.ca.pem().cert_pem,
            &[&rustls::version::TLS13],
            &[b"h2"],
            None,
        )
        .connect(ServerName::try_from("localhost").expect("name"), tcp),
    )
    .await
    .expect("closed, not left waiting");
    assert!(refused.is_err(), "the fourth connection got a TLS session");
    assert!(metric_reaches(&t, "portcullis_connections_refused_total 1").await);
    // Once they close, there is room again.
    drop(open);
    assert!(metric_reaches(&t, "portcullis_connections_open 0").await);
    t.assert_still_serving("a full connection table").await;
    t.server.shutdown().await;
}
