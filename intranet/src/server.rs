//! `serve`: HTTPS (TLS 1.3 only, rustls with ring) in front of the API and
//! the pages, and the spool watcher that runs ingest.
//!
//! ```text
//!  run(config, listener, shutdown)
//!    ├─ Db::open (migrations) · Audit::open · IngestKeys (link key, DMZ public key)
//!    ├─ spool watcher: every poll_seconds ─▶ ingest::ingest_spool ─▶ until shutdown
//!    │    (a failed pass: again after 0.25 s, 0.5 s, 1 s, … up to poll_seconds)
//!    └─ accept ─▶ TLS 1.3 handshake (≤ 10 s) ─▶ hyper auto (h1/h2) ─▶ api::app ─▶ graceful shutdown (≤ 30 s)
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{AppState, app};
use crate::audit::Audit;
use crate::auth::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::ingest::{IngestKeys, ingest_spool};
use crate::{Error, Result};

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// The rustls server configuration: TLS 1.3 only, ring, no client certificates.
pub fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::Tls(format!("{}: {e}", cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The ingest keys named by the configuration.
pub fn ingest_keys(config: &Config) -> Result<IngestKeys> {
    Ok(IngestKeys {
        link_key: flumon_shared::crypto::SymKey::load(&config.paths.link_key)?,
        dmz_pubkey: flumon_shared::crypto::Sm2PublicKey::load(&config.paths.dmz_pubkey)?,
        limits: flumon_shared::batch::BatchLimits::default(),
    })
}

/// The application state of a configuration (database, journal, clock).
pub async fn state(config: &Config) -> Result<AppState> {
    let db = Db::open(&config.database_url).await?;
    let key = flumon_shared::crypto::Sm2PublicKey::load(&config.paths.journal_pub)?;
    let audit = Audit::open(&config.paths.journal, &key)?;
    Ok(AppState {
        db,
        audit,
        clock: Clock::default(),
        journals: Arc::new(config.journals.clone()),
        limits: Arc::default(),
    })
}

/// The first wait after a failed ingest pass; it doubles with every further failure, up to the poll interval.
const RETRY_FIRST: Duration = Duration::from_millis(250);

/// The wait before the next pass: the poll interval after a pass that went through, a short
/// back-off after a failed one (doubling per consecutive failure, capped at the poll interval),
/// so the files behind a transient failure (a busy database) need not wait a whole interval.
fn next_wait(every: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return every;
    }
    RETRY_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(every)
}

async fn watch_spool(
    db: Db,
    keys: IngestKeys,
    spool: std::path::PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        match ingest_spool(&db, &keys, &spool).await {
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, failures, "入库失败，稍后重试 (ingest pass failed, retrying)");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(next_wait(every, failures)) => {}
            _ = stop.changed() => break,
        }
    }
}

/// Serves until `shutdown` turns true.
pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<()> {
    let tls = tls_config(&config.paths.tls_cert, &config.paths.tls_key)?;
    let keys = ingest_keys(&config)?;
    let st = state(&config).await?;
    std::fs::create_dir_all(&config.paths.spool)?;
    let watcher = tokio::spawn(watch_spool(
        st.db.clone(),
        keys,
        config.paths.spool.clone(),
        Duration::from_secs(config.ingest.poll_seconds),
        shutdown.clone(),
    ));
    let journal_key = Arc::new(flumon_shared::crypto::Sm2PrivateKey::load(&config.paths.journal_key)?);
    let checkpoints = tokio::spawn(crate::audit::checkpoint_task(
        st.audit.clone(),
        journal_key,
        Duration::from_secs(3600),
        shutdown.clone(),
    ));
    serve(listener, tls, app(st), shutdown).await;
    let _ = watcher.await;
    let _ = checkpoints.await;
    Ok(())
}

/// The accept loop.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tracing::info!(addr = ?listener.local_addr().ok(), "内网服务已启动 (listening, TLS 1.3)");
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
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
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
                app.clone().oneshot(req)
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            builder.http2().timer(TokioTimer::new()).max_concurrent_streams(64);
            let conn = watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).into_owned());
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_retry_soon_then_back_off_to_the_poll_interval() {
        let every = Duration::from_secs(5);
        assert_eq!(next_wait(every, 0), every);
        assert_eq!(next_wait(every, 1), Duration::from_millis(250));
        assert_eq!(next_wait(every, 2), Duration::from_millis(500));
        assert_eq!(next_wait(every, 5), Duration::from_secs(4));
        assert_eq!(next_wait(every, 6), every);
        assert_eq!(next_wait(every, u32::MAX), every);
        assert_eq!(next_wait(Duration::from_millis(100), 1), Duration::from_millis(100));
    }
}
