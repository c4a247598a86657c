//! Shared helpers for the webhook server tests: a real server on 127.0.0.1:0 with TLS
//! certificates generated at test time, and reqwest clients trusting the test CA.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portcullis::certs::{CertificateAuthority, CertifiedPem};
use portcullis::server::{self, PolicySource, RunningServer, ServerConfig};
use serde_json::Value;

/// The test policy directory (copied per test so reload tests can edit their copy).
pub const POLICY_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policies");
/// The captured AdmissionReviews.
pub const ADMISSION_FIXTURES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");

/// A running test server and everything needed to talk to it.
pub struct TestServer {
    /// The server.
    pub server: RunningServer,
    /// The CA that signed the serving certificate.
    pub ca: CertificateAuthority,
    /// Temporary files (policies, certificates); removed on drop.
    pub dir: tempfile::TempDir,
    /// The policy directory in use.
    pub policy_dir: PathBuf,
    /// The serving certificate file.
    pub cert_path: PathBuf,
    /// The serving key file.
    pub key_path: PathBuf,
}

/// Options for [`start`].
#[derive(Default)]
pub struct Options {
    /// Require client certificates signed by this CA (PEM).
    pub client_ca_pem: Option<String>,
    /// Use this directory as the policy directory instead of a copy of the fixtures.
    pub policy_dir: Option<PathBuf>,
    /// Request timeout (default 4 s).
    pub request_timeout: Option<Duration>,
    /// `--max-connections` (default: the server's).
    pub max_connections: Option<usize>,
    /// Poll period for reloads (default: none, tests call `check_now`).
    pub reload_interval: Option<Duration>,
    /// The strictest mode any policy runs in (`--max-mode`).
    pub max_mode: Option<portcullis::policy::model::Mode>,
}

/// Copies every file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A serving certificate for localhost / 127.0.0.1 signed by `ca`.
pub fn serving_cert(ca: &CertificateAuthority) -> CertifiedPem {
    ca.issue_serving_cert(
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        Duration::from_secs(3600),
    )
    .expect("serving cert")
}

/// Starts a server with the test policies and a fresh CA.
pub async fn start(options: Options) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy_dir = match options.policy_dir {
        Some(d) => d,
        None => {
            let d = dir.path().join("policies");
            copy_dir(Path::new(POLICY_FIXTURES), &d);
            d
        }
    };
    let ca = CertificateAuthority::generate("test CA", Duration::from_secs(3600)).expect("CA");
    let leaf = serving_cert(&ca);
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, &leaf.cert_pem).expect("write cert");
    std::fs::write(&key_path, &leaf.key_pem).expect("write key");
    let client_ca = options.client_ca_pem.map(|pem| {
        let p = dir.path().join("client-ca.crt");
        std::fs::write(&p, pem).expect("write client CA");
        p
    });
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        policies: PolicySource {
            dir: policy_dir.clone(),
            trusted_controllers: None,
            max_mode: options.max_mode,
        },
        tls_cert: cert_path.clone(),
        tls_key: key_path.clone(),
        client_ca,
        reload_interval: options.reload_interval,
        request_timeout: options.request_timeout.unwrap_or(Duration::from_secs(4)),
        shutdown_grace: Duration::from_secs(10),
        max_connections: options
            .max_connections
            .unwrap_or(portcullis::server::DEFAULT_MAX_CONNECTIONS),
        cluster: None,
    };
    let server = server::start(config).await.expect("server starts");
    TestServer {
        server,
        ca,
        dir,
        policy_dir,
        cert_path,
        key_path,
    }
}

/// Which HTTP version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// HTTP/1.1 only.
    One,
    /// HTTP/2 only (ALPN h2).
    Two,
}

/// A client trusting `ca_pem` only, resolving `localhost` to `addr`.
pub fn client_for(
    ca_pem: &str,
    addr: SocketAddr,
    http: Http,
    identity: Option<&CertifiedPem>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA pem"))
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10));
    builder = match http {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    };
    if let Some(id) = identity {
        let pem = format!("{}{}", id.key_pem, id.cert_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

impl TestServer {
    /// A client for this server.
    pub fn client(&self, http: Http) -> reqwest::Client {
        client_for(&self.ca.pem().cert_pem, self.server.addr(), http, None)
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.server.addr().port(), path)
    }

    /// `http://127.0.0.1:ADMIN{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.admin_addr(), path)
    }

    /// GETs an admin path: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::Client::new()
            .get(self.admin_url(path))
            .send()
            .await
            .expect("admin request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("admin body"))
    }

    /// The metrics text.
    pub async fn metrics(&self) -> String {
        let (status, text) = self.admin_get("/metrics").await;
        assert_eq!(status, 200);
        text
    }
}

/// POSTs a body; returns status and the JSON answer.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json)
}

/// A captured AdmissionReview fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(ADMISSION_FIXTURES).join(name)).expect("fixture")
}

/// The patch an answer carries: a base64 string, as the apiserver reads a `[]byte` field.
pub fn patch_of(answer: &Value) -> Option<json_patch::Patch> {
    let patch = answer["response"].get("patch")?;
    let b64 = patch.as_str().expect("response.patch is a base64 string");
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    Some(serde_json::from_slice(&bytes).expect("patch is JSON Patch"))
}

/// Polls `check` until it holds or `deadline` passes (no fixed sleeps: a bounded wait).
pub async fn eventually<F: FnMut() -> bool>(deadline: Duration, mut check: F) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if check() {
            return true;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check()
}

/// The warnings of an answer.
pub fn warnings(answer: &Value) -> Vec<String> {
    answer["response"]["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The reviews the still-serving check sends, with the verdict each must get under the test
/// policies: (fixture, endpoint, allowed, patched).
pub const KNOWN_VERDICTS: [(&str, &str, bool, bool); 4] = [
    ("validate-create-pod-bare.json", "/validate", false, false),
    (
        "validate-create-pod-owned-by-replicaset.json",
        "/validate",
        true,
        false,
    ),
    ("mutate-create-deployment.json", "/mutate", true, true),
    ("validate-create-deployment.json", "/validate", false, false),
];

/// The `request.uid` of a review body.
pub fn uid_of(body: &[u8]) -> String {
    let review: Value = serde_json::from_slice(body).expect("review JSON");
    review["request"]["uid"].as_str().expect("uid").to_owned()
}

/// Asserts that an answer is the known verdict for `fixture`: 200, the same uid, allowed and
/// patched as expected. Returns a description of what is wrong instead of panicking, so load
/// tests can count failures.
pub fn check_verdict(
    status: u16,
    answer: &Value,
    uid: &str,
    allowed: bool,
    patched: bool,
) -> Result<(), String> {
    if status != 200 {
        return Err(format!("status {status}: {answer}"));
    }
    let response = &answer["response"];
    if response["uid"] != uid {
        return Err(format!("uid {} instead of {uid}", response["uid"]));
    }
    if response["allowed"] != allowed {
        return Err(format!(
            "allowed {} instead of {allowed}",
            response["allowed"]
        ));
    }
    if response.get("patch").is_some() != patched {
        return Err(format!("patched {} instead of {patched}", !patched));
    }
    Ok(())
}

impl TestServer {
    /// Asserts that the server still answers normal reviews correctly, over fresh HTTP/1.1 and
    /// HTTP/2 connections (new TLS handshakes).
    pub async fn assert_still_serving(&self, after: &str) {
        for http in [Http::One, Http::Two] {
            let client = self.client(http);
            for (name, endpoint, allowed, patched) in KNOWN_VERDICTS {
                let body = fixture(name);
                let uid = uid_of(&body);
                let (status, answer) = post(&client, &self.url(endpoint), body).await;
                if let Err(e) = check_verdict(status, &answer, &uid, allowed, patched) {
                    panic!("after {after}: {name} over {http:?}: {e}");
                }
            }
        }
    }
}

/// A raw TLS client trusting `ca_pem`: `versions` limits the protocol versions it offers,
/// `alpn` the protocols it asks for, `identity` its client certificate.
pub fn tls_connector(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    identity: Option<&CertifiedPem>,
) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca cert")).expect("add root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert"),
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("client key"),
            )
            .expect("client auth"),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}
