//! The HTTPS accept loop shared by both listeners: TLS 1.3 via tokio-rustls,
//! HTTP/1.1 and HTTP/2 via hyper-util's auto builder, the peer's address and
//! client-certificate fingerprint attached to every request, timeouts, and
//! graceful shutdown.
//!
//! ```text
//!  TcpListener ─accept─▶ TLS handshake (≤ header timeout) ─▶ Peer { addr, cert_fp }
//!      ─▶ hyper auto (h1: header read timeout; h2) ─▶ request + Extension(Peer) ─▶ axum Router
//!  shutdown ─▶ stop accepting ─▶ GracefulShutdown: finish in-flight requests (≤ 30 s)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Who is on the other end of a connection; an Extension of every request.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Hex SM3 of the client certificate's DER, when one was presented (and verified against the DMZ CA).
    pub cert_fp: Option<String>,
}

/// Timeouts of a listener.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TLS handshake and request header.
    pub header: Duration,
    /// Idle keep-alive (HTTP/2 pings).
    pub idle: Duration,
}

/// Serves `app` on `listener` with TLS until `shutdown` turns true.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr().ok();
    tracing::info!(listener = name, addr = ?local, "listening (TLS 1.3)");
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(timeouts.header, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(listener = name, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(listener = name, "TLS handshake timed out");
                    return;
                }
            };
            let cert_fp =
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| crate::tls::fingerprint(c));
            let peer = Peer { addr, cert_fp };
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header).keep_alive(true);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(timeouts.idle))
                .keep_alive_timeout(timeouts.header)
                .max_concurrent_streams(64);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).into_owned();
            let conn = watcher.watch(conn);
            if let Err(e) = conn.await {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(listener = name, "shutting down: finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!(listener = name, "requests still in flight after 30 s; closing");
        }
    }
}
