//! The admission webhook server: the axum router for `/validate` and `/mutate` served over
//! rustls, a plain-HTTP admin port (`/livez`, `/readyz`, `/metrics`), hot reload of policies
//! and certificate, and graceful shutdown.

pub mod handlers;
pub mod listener;
pub mod reload;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::timeout::TimeoutLayer;

pub use reload::{PolicySource, ReloadOutcome, ReloadReport, Reloader, TlsSource};
pub use state::AppState;
pub use tls::{CertStore, TlsError};

/// The largest request body accepted (HTTP 413 beyond). etcd stores objects of at most 1.5 MiB
/// by default and the apiserver refuses bodies over 3 MiB, so even an UPDATE review (object and
/// old object) fits in 4 MiB; anything larger is refused before it is buffered.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default HTTPS address.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8443";
/// Default admin address.
pub const DEFAULT_ADMIN_ADDR: &str = "0.0.0.0:8080";
/// Default request timeout: below the webhooks' `timeoutSeconds` (2 and 3 in deploy/), so the
/// apiserver gets our answer (503) rather than its own timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);
/// Default grace period for draining connections on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Default cap on open connections to the webhook port. The apiservers keep a few connections
/// each (HTTP/2 carries many requests on one); an idle TLS connection costs about 40 KiB here
/// (BENCHMARKS.md), so the cap bounds a flood's cost to tens of MiB, well inside the
/// Deployment's 256 MiB limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The webhook router: `POST /validate`, `POST /mutate` (any query, e.g. the apiserver's
/// `?timeout=10s`, is ignored), 405 for other methods, 404 for other paths, bodies capped at
/// [`MAX_BODY_BYTES`], in-flight requests counted.
pub fn build_router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(handlers::validate))
        .route("/mutate", post(handlers::mutate))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_in_flight,
        ))
        .with_state(state)
}

/// The admin router: `GET /livez`, `/readyz`, `/metrics`.
pub fn build_admin_router(state: AppState) -> Router {
    Router::new()
        .route("/livez", get(handlers::livez))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Answers 413 to a request whose declared length (`Content-Length`, on HTTP/1.1 and HTTP/2
/// alike) is over [`MAX_BODY_BYTES`], before anything reads its body: an HTTP/1.1 client
/// waiting for `100 Continue` gets the 413 instead and sends nothing, an HTTP/2 client gets it
/// at once (the rest of the stream is reset). Bodies without a declared length are cut off at
/// the limit as they are read ([`DefaultBodyLimit`]).
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {length} bytes refused: the limit is {MAX_BODY_BYTES} bytes (4 MiB)\n"
            ),
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found: the webhook serves POST /validate and POST /mutate\n",
    )
}

struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn track_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let gauge = state.metrics().in_flight.clone();
    gauge.inc();
    let _guard = InFlight(gauge);
    next.run(request).await
}

/// Logs the load-time lint warnings of a policy set, and its exceptions that expire within 14
/// days, have expired or cannot apply (one line each, with file and line).
pub(crate) fn log_policy_warnings(set: &crate::policy::PolicySet) {
    for w in &set.warnings {
        tracing::warn!(file = %w.file.display(), line = w.line, warning = %w.message,
            hint = %w.hint, "policy lint warning");
    }
    let now = crate::policy::Timestamp::now();
    for w in crate::policy::exceptions::review(set, now) {
        tracing::warn!(file = %w.file.display(), line = w.line, warning = %w.message,
            hint = %w.hint, "policy exception warning");
    }
}

/// How often a running server looks for exceptions that entered their last 14 days or expired.
const EXCEPTION_EXPIRY_CHECK: Duration = Duration::from_secs(600);

/// Exceptions expire while the server runs: every [`EXCEPTION_EXPIRY_CHECK`], logs those that
/// entered their last 14 days or expired since the last check, as a load does for all of them
/// ([`log_policy_warnings`]; a reload in between has logged them already).
async fn log_exception_expiry(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(EXCEPTION_EXPIRY_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // Immediate: the set was just loaded, and its warnings logged.
    let mut generation = state.policies().generation;
    let mut since = crate::policy::Timestamp::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop_requested(&mut shutdown) => return,
        }
        let now = crate::policy::Timestamp::now();
        let policies = state.policies();
        if policies.generation == generation {
            for w in crate::policy::exceptions::due_between(&policies.set, since, now) {
                tracing::warn!(file = %w.file.display(), line = w.line, warning = %w.message,
                    hint = %w.hint, "policy exception warning");
            }
        }
        generation = policies.generation;
        since = now;
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, so callers' futures stay `Send`.
    let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
}

/// The async runtime `portcullis serve` runs on (the no-op benchmark webhook uses the same).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Everything `start` needs. The CLI builds it from flags and environment.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS address (`0.0.0.0:8443`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// Admin address (`0.0.0.0:8080`).
    pub admin_addr: SocketAddr,
    /// Where policies come from.
    pub policies: PolicySource,
    /// PEM certificate chain, leaf first.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// When set, clients must present a certificate signed by this CA bundle (PEM).
    pub client_ca: Option<PathBuf>,
    /// Poll period for reloads; `None` disables polling (tests call `check_now`).
    pub reload_interval: Option<Duration>,
    /// Whole-request timeout (body read included); also bounds the TLS handshake and, for
    /// HTTP/1.1, the arrival of the request headers.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Connections open at once on the webhook port, at most ([`listener::serve_tls`]).
    pub max_connections: usize,
    /// The cluster, when serving with cluster access: namespace labels come from a cache of its
    /// Namespaces, and the webhook is ready only once that cache has synced. `None`: policies
    /// see a namespace's name only.
    pub cluster: Option<crate::cluster::Connection>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy directory does not load. The message holds every problem; they are not
    /// also a `source`, or `{:#}` (anyhow's chain) would print them twice.
    #[error("cannot load policies from {}:\n{problems}", dir.display())]
    Policies {
        /// The directory.
        dir: PathBuf,
        /// Every problem found.
        problems: crate::policy::LoadError,
    },
    /// The TLS material does not load.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A started server. Dropping it does not stop it: call [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    state: AppState,
    reloader: Reloader,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The bound HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The shared state (policies in force, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The reloader: `check_now()` reloads changed policies and certificates immediately.
    pub fn reloader(&self) -> &Reloader {
        &self.reloader
    }

    /// Starts shutting down: readiness fails, no new connections, in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.state.set_draining();
        self.shutdown.send_replace(true);
    }

    /// Shuts down and waits until connections are drained (or the grace period is over).
    pub async fn shutdown(self) {
        self.begin_shutdown();
        self.stopped().await;
    }

    /// Waits until the server has stopped (after [`RunningServer::begin_shutdown`]).
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
    }
}

/// Loads policies and certificate (failing fast on either), binds both ports and serves.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let set = config
        .policies
        .load()
        .map_err(|problems| StartError::Policies {
            dir: config.policies.dir.clone(),
            problems,
        })?;
    let count = set.policies.len();
    log_policy_warnings(&set);
    let state = AppState::new(set);
    match &config.cluster {
        Some(cluster) => {
            tracing::info!(cluster = %cluster.description,
                "watching the cluster's namespaces: policies see namespace labels; ready once the first list is in");
            state.set_namespace_cache(crate::cluster::NamespaceCache::start(
                cluster.client.clone(),
                state.metrics().namespace_cache.clone(),
            ));
        }
        None => tracing::warn!(
            "no cluster access (no in-cluster service account, no --kubeconfig or KUBECONFIG): \
             namespace selectors see namespace names only (kubernetes.io/metadata.name)"
        ),
    }
    let cert = tls::load_cert_files(&config.tls_cert, &config.tls_key)?;
    state.metrics().certificate_expiry.set(cert.not_after_unix);
    let store = Arc::new(CertStore::new(cert.key));
    let tls_config = tls::server_config(store.clone(), config.client_ca.as_deref())?;
    let reloader = Reloader::new(
        state.clone(),
        config.policies.clone(),
        TlsSource {
            cert: config.tls_cert.clone(),
            key: config.tls_key.clone(),
            store,
        },
    );

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let admin_listener = bind(config.admin_addr).await?;
    let listener = bind(config.addr).await?;
    let local = |l: &TcpListener, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { addr, source })
    };
    let admin_addr = local(&admin_listener, config.admin_addr)?;
    let addr = local(&listener, config.addr)?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let router = build_router(state.clone()).layer(TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        config.request_timeout,
    ));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
    if let Some(period) = config.reload_interval {
        tokio::spawn(reloader.clone().poll(period, shutdown_rx.clone()));
    }
    tokio::spawn(log_exception_expiry(state.clone(), shutdown_rx.clone()));
    let (admin_stop, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin = axum::serve(admin_listener, build_admin_router(state.clone()))
        .with_graceful_shutdown(async {
            let _ = admin_stop_rx.await;
        });
    let admin = tokio::spawn(async move {
        if let Err(e) = admin.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    let grace = config.shutdown_grace;
    let timeout = config.request_timeout;
    let metrics = state.metrics();
    metrics
        .connections_max
        .set(i64::try_from(config.max_connections).unwrap_or(i64::MAX));
    let limit = listener::ConnectionLimit {
        max: config.max_connections,
        open: metrics.connections_open.clone(),
        refused: metrics.connections_refused.clone(),
    };
    let task = tokio::spawn(async move {
        listener::serve_tls(
            listener,
            acceptor,
            router,
            shutdown_rx,
            timeout,
            grace,
            limit,
        )
        .await;
        // The admin port stays up while draining, so probes see "not ready" rather than
        // "connection refused".
        let _ = admin_stop.send(());
        let _ = admin.await;
    });
    state.set_tls_bound();
    tracing::info!(%addr, %admin_addr, policies = count, dir = %config.policies.dir.display(),
        not_after_unix = cert.not_after_unix,
        max_mode = config.policies.max_mode.map(|m| m.as_str()), "portcullis webhook serving");
    Ok(RunningServer {
        addr,
        admin_addr,
        state,
        reloader,
        shutdown,
        task,
    })
}
