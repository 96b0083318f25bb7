//! `flumon-dmz`: the internet-facing DMZ service. It receives, checks,
//! encrypts and queues; it never holds readable raw data at rest and never
//! holds the vault's private key.
//!
//! ```text
//!  agents / browsers ─HTTPS (TLS 1.3)─▶ public listener ─▶ web pages · /api/v1 (api/)
//!        upload ─▶ pipeline: parse ─▶ validate + scope (store/scope.rs) ─▶ receipt
//!                   ├─ raw original ─▶ archive (SM4-GCM, key wrapped to the vault's SM2 key)
//!                   └─ accepted ─▶ desensitise ─▶ outbound queue ─▶ batcher ─▶ outbox/*.fbatch
//!        every receipt waits for store.durable() (group commit: flush + fdatasync)
//!  operators / reviewers ─HTTPS─▶ admin listener ─▶ web admin · /metrics · /operator/* (admin.rs)
//!  audit.rs: SM3 hash-chained journal of everything security-relevant, signed hourly
//!  store keeps failing (store/health.rs) ─▶ run() stops like a shutdown, answers 503 + Retry-After
//!     meanwhile, returns Error::StoreFailed ─▶ `serve` exits 75 (EX_TEMPFAIL) ─▶ systemd restarts
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod admin;
pub mod api;
pub mod archive;
pub mod audit;
pub mod batcher;
pub mod client;
pub mod config;
pub mod error;
pub mod export;
pub mod figures;
pub mod hospitals;
pub mod init;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod pipeline;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use state::AppState;

/// Opens everything the DMZ needs besides its listeners: keys, store,
/// journal; removes raw items a crash left incomplete. Blocking.
pub fn open_state(config: Config) -> Result<AppState> {
    std::fs::create_dir_all(&config.paths.data_dir)?;
    std::fs::create_dir_all(&config.paths.outbox)?;
    let keys = keys::Keys::load(&config)?;
    let metrics = metrics::Metrics::default();
    // the store's group commit reports its latency to the metrics of the state built below
    let slot: Arc<std::sync::OnceLock<AppStateWeak>> = Arc::new(std::sync::OnceLock::new());
    let slot2 = Arc::clone(&slot);
    let store = store::Store::open(
        &config.paths.data_dir,
        Box::new(move |d| {
            if let Some(s) = slot2.get().and_then(|w| w.0.upgrade()) {
                s.metrics.observe_commit(d);
            }
        }),
    )?;
    // after the store: its lock tells whether a server is running
    let audit = audit::Audit::open(&config.paths.data_dir.join("audit.jsonl"), keys.sign.public_key())?;
    let converted = figures::legacy::migrate(&store)?;
    if converted > 0 {
        tracing::info!(
            entries = converted,
            "hospital figures converted to the one-tree layout (本院监测数据格式已升级)"
        );
    }
    let moved = outbound::migrate_dedupe(&store)?;
    if moved > 0 {
        tracing::info!(digests = moved, "resend digests moved into the outbound tree (去重摘要已迁移)");
    }
    let removed = archive::remove_incomplete(&store)?;
    if removed > 0 {
        tracing::warn!(items = removed, "removed raw items left incomplete by a crash (never acknowledged)");
    }
    let state = AppState::new(config, store, keys, audit, metrics);
    let _ = slot.set(AppStateWeak(Arc::downgrade(&state.0)));
    let (n, bytes) = outbound::measure(&state)?;
    state.metrics.queue_depth.store(n, Ordering::Relaxed);
    state.metrics.queue_bytes.store(bytes, Ordering::Relaxed);
    Ok(state)
}

struct AppStateWeak(std::sync::Weak<state::Inner>);

/// The public listener's application: web pages and the agents' API.
pub fn public_app(state: &AppState) -> Router {
    let body_timeout = Duration::from_secs(state.config.limits.body_timeout_secs);
    web::public_router()
        .merge(api::router(state))
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::per_address))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), store_guard))
        .with_state(state.clone())
}

/// The admin listener's application: web admin pages, metrics, operator endpoints.
pub fn admin_app(state: &AppState) -> Router {
    let body_timeout = Duration::from_secs(state.config.limits.body_timeout_secs);
    web::admin_router()
        .merge(admin::router())
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), store_guard))
        .with_state(state.clone())
}

/// Outermost layer of both listeners: once the store is given up every
/// request answers 503 with `Retry-After` (nothing is accepted while the
/// process exits); a response that came from a sled error makes the store's
/// watchdog check the store at once.
async fn store_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(e) = state.store.health().refusal() {
        return e.into_response();
    }
    let resp = next.run(req).await;
    if resp.extensions().get::<error::StoreFault>().is_some() {
        state.store.health().poke();
    }
    resp
}

/// Runs the DMZ on the two listeners until `shutdown` completes, then stops
/// accepting, finishes requests in flight, drains the queue into batches
/// and syncs the store. When the store keeps failing (store/health.rs) it
/// stops the same way without draining and returns [`Error::StoreFailed`]
/// (`serve` exits 75 so the supervisor restarts it).
pub async fn run(
    config: Config,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let paths = config.paths.clone();
    let tls = tls::server_config(&paths.tls_cert, &paths.tls_key, &paths.ca_cert)?;
    let state = tokio::task::spawn_blocking(move || open_state(config))
        .await
        .map_err(|e| Error::Internal(format!("open: {e}")))??;
    state.store.start_key_filter(state.config.store.key_filter_mib)?;
    state.audit("dmz.started", serde_json::json!({"node": state.config.node_id})).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = &state.config.limits;
    let timeouts = server::Timeouts {
        header: Duration::from_secs(limits.header_timeout_secs),
        idle: Duration::from_secs(limits.idle_timeout_secs),
    };
    let public_srv =
        tokio::spawn(server::serve("public", public, Arc::clone(&tls), public_app(&state), timeouts, stop_rx.clone()));
    let admin_srv = tokio::spawn(server::serve("admin", admin, tls, admin_app(&state), timeouts, stop_rx.clone()));
    let batcher = tokio::spawn(batcher::run(state.clone(), stop_rx.clone()));
    let checkpoints = tokio::spawn(audit::checkpoint_task(state.clone(), stop_rx.clone()));
    let folds = tokio::spawn(figures::fold_task(state.clone(), stop_rx.clone()));
    let watchdog = tokio::spawn(state.store.watchdog(stop_rx.clone()));
    let failed = tokio::select! {
        () = shutdown => None,
        reason = state.store.health().failed() => Some(reason),
    };
    if failed.is_none() {
        tracing::info!("shutdown requested");
    }
    let _ = stop_tx.send(true);
    let _ = public_srv.await;
    let _ = admin_srv.await;
    state.batcher_wake.notify_one();
    let _ = batcher.await;
    let _ = checkpoints.await;
    let _ = folds.await;
    let _ = watchdog.await;
    if let Some(reason) = failed {
        // the journal is a file of its own, but may sit on the same full disk: best effort
        let detail = serde_json::json!({"node": state.config.node_id, "exit_status": store::health::EXIT_STORE_FAILED});
        if let Err(e) = state.audit("dmz.store_failed", detail).await {
            tracing::warn!(error = %e, "could not journal the store failure");
        }
        return Err(Error::StoreFailed(reason));
    }
    state.audit("dmz.stopped", serde_json::json!({"node": state.config.node_id})).await?;
    state.store.durable().await?;
    Ok(())
}
