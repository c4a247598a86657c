//! Server lifecycle and transport security: graceful shutdown drains in-flight requests, and
//! optional client-certificate authentication.

mod server_support;

use std::sync::Arc;
use std::time::Duration;

use portcullis::certs::CertificateAuthority;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use server_support::{Http, Options, client_for, eventually, fixture, post, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca cert")).expect("add root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn shutdown_drains_an_in_flight_request_and_refuses_new_connections() {
    let t = start(Options::default()).await;
    let addr = t.server.addr();
    let body = fixture("validate-create-pod-bare.json");
    let uid = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["request"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();

    // Start a request and send only half of its body: it is in flight.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let server_name = ServerName::try_from("localhost").expect("name");
    let mut tls = tls_connector(&t.ca.pem().cert_pem)
        .connect(server_name, tcp)
        .await
        .expect("handshake");
    let head = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    let half = body.len() / 2;
    tls.write_all(&body[..half]).await.expect("first half");
    tls.flush().await.expect("flush");
    let state = t.server.state().clone();
    assert!(
        eventually(Duration::from_secs(10), || state.metrics().in_flight.get()
            == 1)
        .await,
        "the request never started"
    );

    t.server.begin_shutdown();
    // While draining: the admin port answers "not ready", new connections are refused.
    assert_eq!(t.admin_get("/readyz").await.0, 503);
    let refused = eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(refused, "the listener still accepts after shutdown began");

    // The in-flight request completes normally.
    tls.write_all(&body[half..]).await.expect("second half");
    tls.flush().await.expect("flush");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.expect("response");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&uid), "{response}");
    assert!(response.contains("\"allowed\":false"), "{response}");
    tokio::time::timeout(Duration::from_secs(10), t.server.stopped())
        .await
        .expect("the server stops once drained");
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_configured() {
    let clients =
        CertificateAuthority::generate("apiserver clients", Duration::from_secs(3600)).expect("CA");
    let t = start(Options {
        client_ca_pem: Some(clients.pem().cert_pem.clone()),
        ..Options::default()
    })
    .await;
    let addr = t.server.addr();
    let ca = t.ca.pem().cert_pem.clone();

    let apiserver = clients
        .issue_client_cert("kube-apiserver", Duration::from_secs(3600))
        .expect("client cert");
    for http in [Http::One, Http::Two] {
        let client = client_for(&ca, addr, http, Some(&apiserver));
        let (status, answer) = post(
            &client,
            &t.url("/validate"),
            fixture("validate-create-pod-bare.json"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false);
    }

    let anonymous = client_for(&ca, addr, Http::One, None);
    assert!(
        anonymous
            .post(t.url("/validate"))
            .body(fixture("validate-create-pod-bare.json"))
            .send()
            .await
            .is_err(),
        "a client without a certificate is rejected"
    );
    let strangers =
        CertificateAuthority::generate("someone else", Duration::from_secs(3600)).expect("CA");
    let stranger = strangers
        .issue_client_cert("mallory", Duration::from_secs(3600))
        .expect("cert");
    let client = client_for(&ca, addr, Http::Two, Some(&stranger));
    assert!(
        client
            .post(t.url("/validate"))
            .body(fixture("validate-create-pod-bare.json"))
            .send()
            .await
            .is_err(),
        "a certificate from another CA is rejected"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn start_up_fails_fast_on_bad_policies_or_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.yaml"), "kind: Nope\n").expect("write");
    let ca = CertificateAuthority::generate("ca", Duration::from_secs(60)).expect("CA");
    let leaf = server_support::serving_cert(&ca);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &leaf.cert_pem).expect("cert");
    std::fs::write(&key, "not a key").expect("key");
    let config = |policies: &std::path::Path| portcullis::server::ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        policies: portcullis::server::PolicySource {
            dir: policies.to_path_buf(),
            trusted_controllers: None,
            max_mode: None,
        },
        tls_cert: cert.clone(),
        tls_key: key.clone(),
        client_ca: None,
        reload_interval: None,
        request_timeout: Duration::from_secs(4),
        shutdown_grace: Duration::from_secs(1),
        max_connections: portcullis::server::DEFAULT_MAX_CONNECTIONS,
        cluster: None,
    };
    let err = portcullis::server::start(config(dir.path()))
        .await
        .expect_err("bad policies");
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    let err = portcullis::server::start(config(std::path::Path::new(
        server_support::POLICY_FIXTURES,
    )))
    .await
    .expect_err("bad key");
    assert!(err.to_string().contains("tls.key"), "{err}");
}
