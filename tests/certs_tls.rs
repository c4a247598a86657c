//! `portcullis certs` end to end: the binary writes the certificates, `kubectl kustomize
//! deploy/` puts them into the Secret and the webhook configurations, the real server serves
//! the Secret's certificate and key with the ConfigMap's policies, and a client connects the
//! way the kube-apiserver does: HTTP/2 to the Service's DNS name, trusting only the rendered
//! caBundle.

mod deploy_support;
mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use deploy_support::{Checkout, DEFAULT, PORTCULLIS, decode, write_config_map};
use portcullis::server::{self, PolicySource, ServerConfig};
use serde_json::Value;
use server_support::{fixture, post};

const SERVICE_HOST: &str = "portcullis.portcullis-system.svc";

/// A client like the apiserver's: only the caBundle is trusted, the Service name is resolved
/// to the server, HTTP/2.
fn apiserver_client(ca_bundle_pem: &str, host: &str, addr: SocketAddr) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .http2_prior_knowledge()
        .resolve(host, addr)
        .timeout(Duration::from_secs(10));
    for cert in reqwest::Certificate::from_pem_bundle(ca_bundle_pem.as_bytes()).expect("bundle") {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn the_apiserver_verifies_the_served_certificate_against_the_rendered_ca_bundle() {
    let checkout = Checkout::with_certs();
    let rendered = checkout.render(DEFAULT);

    // What the cluster would hold: the Secret's files and the ConfigMap's policies.
    let secret = rendered.one("Secret");
    let files = checkout.path().join("mounted");
    std::fs::create_dir_all(&files).expect("dir");
    let (cert, key) = (files.join("tls.crt"), files.join("tls.key"));
    std::fs::write(&cert, decode(&secret["data"]["tls.crt"])).expect("cert");
    std::fs::write(&key, decode(&secret["data"]["tls.key"])).expect("key");
    let policies = files.join("policies");
    write_config_map(rendered.one("ConfigMap"), &policies);

    let validating = rendered.webhook("ValidatingWebhookConfiguration");
    let ca_bundle = decode(&validating["clientConfig"]["caBundle"]);
    let path = validating["clientConfig"]["service"]["path"]
        .as_str()
        .expect("path")
        .to_owned();

    let server = server::start(ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        policies: PolicySource {
            dir: policies,
            trusted_controllers: None,
            max_mode: None,
        },
        tls_cert: cert,
        tls_key: key,
        client_ca: None,
        reload_interval: None,
        request_timeout: Duration::from_secs(4),
        shutdown_grace: Duration::from_secs(5),
        max_connections: portcullis::server::DEFAULT_MAX_CONNECTIONS,
        cluster: None,
    })
    .await
    .expect("server starts with the generated certificate");

    let client = apiserver_client(&ca_bundle, SERVICE_HOST, server.addr());
    let url = format!("https://{SERVICE_HOST}:{}{path}", server.addr().port());
    let (status, answer) = post(&client, &url, fixture("validate-create-pod-bare.json")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["allowed"], false,
        "default policies deny: {answer}"
    );

    // In-cluster clients may use the other names of the Service.
    for host in [
        "portcullis.portcullis-system.svc.cluster.local",
        "portcullis.portcullis-system",
        "portcullis",
    ] {
        let client = apiserver_client(&ca_bundle, host, server.addr());
        let url = format!("https://{host}:{}{path}", server.addr().port());
        let (status, _) = post(&client, &url, fixture("validate-create-pod-bare.json")).await;
        assert_eq!(status, 200, "{host}");
    }

    // Verification is real: the same certificate is refused for a name it was not issued for,
    // and by a client that does not trust this CA.
    let other = "portcullis.elsewhere.svc";
    let client = apiserver_client(&ca_bundle, other, server.addr());
    let url = format!("https://{other}:{}{path}", server.addr().port());
    let err = client
        .post(&url)
        .body("{}")
        .send()
        .await
        .expect_err("wrong host name");
    assert!(err.is_connect(), "{err:?}");
    let stranger =
        portcullis::certs::CertificateAuthority::generate("another CA", Duration::from_secs(3600))
            .expect("CA");
    let client = apiserver_client(&stranger.pem().cert_pem, SERVICE_HOST, server.addr());
    let url = format!("https://{SERVICE_HOST}:{}{path}", server.addr().port());
    let err = client
        .post(&url)
        .body("{}")
        .send()
        .await
        .expect_err("untrusted CA");
    assert!(err.is_connect(), "{err:?}");

    // Renewal: `portcullis certs` again, the Secret's new files swapped in; the caBundle the
    // apiserver holds is unchanged and verifies the new certificate.
    let out = std::process::Command::new(PORTCULLIS)
        .arg("certs")
        .current_dir(checkout.path())
        .output()
        .expect("run portcullis certs");
    assert!(out.status.success());
    let renewed = checkout.render(DEFAULT);
    assert_eq!(
        renewed.webhook("ValidatingWebhookConfiguration")["clientConfig"]["caBundle"],
        validating["clientConfig"]["caBundle"],
        "renewal keeps the caBundle"
    );
    let new_secret = renewed.one("Secret");
    assert_ne!(new_secret["data"]["tls.crt"], secret["data"]["tls.crt"]);
    std::fs::write(
        files.join("tls.key"),
        decode(&new_secret["data"]["tls.key"]),
    )
    .expect("key");
    std::fs::write(
        files.join("tls.crt"),
        decode(&new_secret["data"]["tls.crt"]),
    )
    .expect("cert");
    let report = server.reloader().check_now();
    assert!(
        matches!(report.tls, server::ReloadOutcome::Reloaded { .. }),
        "{report:?}"
    );
    let client = apiserver_client(&ca_bundle, SERVICE_HOST, server.addr());
    let (status, answer): (u16, Value) =
        post(&client, &url, fixture("validate-create-pod-bare.json")).await;
    assert_eq!(status, 200, "{answer}");
    server.shutdown().await;
}
