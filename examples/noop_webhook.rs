//! A no-op admission webhook on Portcullis' own serving stack, for load tests: the same
//! runtime, rustls configuration, accept loop (HTTP/1.1 and HTTP/2 by ALPN), body limit and
//! request timeout as `portcullis serve`, but every review is answered with a constant
//! "allowed" AdmissionReview that only echoes the request's uid. No policy, no parsing, no
//! logs, no metrics: what it serves is the limit of the machine for this stack, and
//! `benches/load.sh` reports the webhook's figures as a ratio to it.
//!
//! ```text
//! cargo run --release --example noop_webhook -- --tls-cert tls.crt --tls-key tls.key
//! ```
//!
//! Ready (`GET /readyz` on the admin port answers 200) once the TLS port is bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Parser;
use portcullis::server::{self, listener, tls};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

/// A no-op TLS admission webhook (constant answer) for load tests.
#[derive(Debug, Parser)]
struct Args {
    /// HTTPS address.
    #[arg(long, default_value = "127.0.0.1:9443")]
    addr: SocketAddr,
    /// Plain-HTTP admin address (`/readyz`).
    #[arg(long, default_value = "127.0.0.1:9080")]
    admin_addr: SocketAddr,
    /// Serving certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// Serving key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
}

/// The request's uid: the first `"uid":"..."` of the body, which is `request.uid` in what the
/// apiserver sends (the object's own `metadata.uid` comes later). A byte search, not a parse.
fn request_uid(body: &[u8]) -> &str {
    const KEY: &[u8] = br#""uid":""#;
    let Some(start) = body.windows(KEY.len()).position(|w| w == KEY) else {
        return "";
    };
    let rest = &body[start + KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

async fn allow(body: Bytes) -> impl IntoResponse {
    let answer = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{}","allowed":true,"status":{{}}}}}}"#,
        request_uid(&body)
    );
    ([(header::CONTENT_TYPE, "application/json")], answer)
}

fn main() -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    let args = Args::parse();
    let cert = tls::load_cert_files(&args.tls_cert, &args.tls_key)?;
    let store = Arc::new(tls::CertStore::new(cert.key));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(store, None)?));
    let router = Router::new()
        .route("/validate", post(allow))
        .route("/mutate", post(allow))
        .layer(DefaultBodyLimit::max(server::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            server::DEFAULT_REQUEST_TIMEOUT,
        ));
    let runtime = server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let admin = TcpListener::bind(args.admin_addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.admin_addr))?;
        let admin_router = Router::new().route("/readyz", get(|| async { "ok\n" }));
        tokio::spawn(async move { axum::serve(admin, admin_router).await });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(listener::serve_tls(
            listener,
            acceptor,
            router,
            stop_rx,
            server::DEFAULT_REQUEST_TIMEOUT,
            Duration::from_secs(1),
            listener::ConnectionLimit::unmetered(server::DEFAULT_MAX_CONNECTIONS),
        ));
        eprintln!("no-op webhook serving on https://{}", args.addr);
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        stop.send_replace(true);
        server.await.context("server task")?;
        Ok(())
    })
}
