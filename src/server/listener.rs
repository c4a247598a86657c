//! The HTTPS accept loop: TLS handshakes with tokio-rustls, HTTP/1.1 and HTTP/2 (by ALPN)
//! with hyper-util's auto builder, every connection tracked so shutdown can drain them, and
//! at most [`ConnectionLimit::max`] of them open at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// HTTP/2 keep-alive pings: an unresponsive peer is dropped after interval + timeout.
pub const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);

fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEP_ALIVE)
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(256);
    builder
}

/// The cap on open connections, and where it is counted.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    /// Connections open at once, at most (TLS handshakes included). A connection accepted
    /// beyond it is closed at once, before its handshake.
    pub max: usize,
    /// Connections open now.
    pub open: Gauge,
    /// Connections closed at once because `max` were open.
    pub refused: Counter,
}

impl ConnectionLimit {
    /// A cap of `max` counted in metrics nobody reads (the no-op benchmark server).
    pub fn unmetered(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            max,
            open: Gauge::default(),
            refused: Counter::default(),
        }
    }
}

/// Holds a connection's place under the cap until the connection ends.
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` turns true, then stops accepting and
/// waits up to `grace` for open connections to finish their in-flight requests.
///
/// At most `limit.max` connections are open at once: one accepted beyond that is closed at
/// once (before its TLS handshake) and counted in `limit.refused`, so a flood of connections
/// costs a file descriptor for an instant each, not memory. Refusing fast beats queueing: a
/// client (the apiserver) sees a failed connection at once and applies its `failurePolicy`,
/// rather than waiting out its timeout, and the connections already open keep being served.
///
/// Slow or idle clients are bounded by `timeout` (the request timeout): the TLS handshake must
/// complete within it, then the first request bytes must arrive within it, and (HTTP/1.1) the
/// request line and headers of every request, the first and each keep-alive one; the request
/// itself, body included, is bounded by the router's own timeout layer. An HTTP/2 connection,
/// once started, is kept while the peer answers keep-alive pings.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    timeout: Duration,
    grace: Duration,
    limit: ConnectionLimit,
) {
    let builder = connection_builder(timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limit.max));
    // Whether the last connection was refused: the limit is logged when reached, not per
    // connection.
    let mut saturated = false;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Per-connection errors (ECONNABORTED, EMFILE): log, back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::stop_requested(&mut shutdown) => break,
        };
        // Answers go out at once: with Nagle's algorithm a response written in more than one
        // piece waits for the client's delayed ACK (up to 40 ms on Linux) before its last part.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            limit.refused.inc();
            if !saturated {
                saturated = true;
                tracing::warn!(max_connections = limit.max, %peer,
                    "connection limit reached: refusing new connections until some close");
            }
            drop(tcp);
            continue;
        };
        if saturated {
            saturated = false;
            tracing::info!(
                refused_total = limit.refused.get(),
                "accepting connections again"
            );
        }
        limit.open.inc();
        let slot = Slot {
            _permit: permit,
            open: limit.open.clone(),
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // The first request bytes must arrive within the timeout too: hyper's HTTP/1.1
            // header timeout only starts once the protocol is known, and HTTP/2 has none, so
            // a client that completes the handshake and then stays silent would hold the
            // connection forever. The buffer keeps what was read for hyper.
            let mut tls = BufReader::new(tls);
            match tokio::time::timeout(timeout, tls.fill_buf()).await {
                Ok(Ok(bytes)) if !bytes.is_empty() => {}
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "connection failed before a request");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "no request within the timeout");
                    return;
                }
            }
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        grace_seconds = grace.as_secs_f64(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: closing the remaining connections");
    }
}
