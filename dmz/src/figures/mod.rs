//! 本院监测: each hospital's own figures, kept as counters updated as its
//! records are accepted (issue 9). No identifier and no raw data is kept:
//! per natural key only a keyed hash and the dates and codes the figures
//! need; per unit (a JZLSH's case, a drug's stock, a visits row) only its
//! current contribution, so an update or delete subtracts exactly what the
//! earlier version added.
//!
//! ```text
//!  pipeline: each step's accepted records ─▶ on_accepted ─▶ apply (store.rs): their facts logged, fig[l|org|id]
//!  scans endpoint: accepted death scan ─▶ on_scan ─▶ apply_scan: logged the same way
//!  receipt ─▶ on_receipt ─▶ counters of the reporting quality, fig[c|org|name]
//!  pages / exports ─▶ counters(org) ─▶ fold(org) ─▶ tables (view.rs);  fold_task: fold_all every 5 min
//!  fold, per record: latest GXSJ wins ─▶ fig[r|org|type|H(JLID)] = Facts (tombstone on delete)
//!                                     ─▶ fig[u|org|unit] members
//!     per touched unit: live facts ─▶ contribution (contrib.rs) ─▶ diff with the unit's ─▶ fig[c|org|name]
//!  one sled batch per fold step; older stores' four trees converted once at start (legacy.rs)
//!  tests ─▶ recompute (replay.rs): the same uploads replayed from scratch, compared
//! ```

pub mod contrib;
pub mod facts;
pub mod legacy;
pub mod replay;
mod store;
pub mod view;

pub use contrib::Counters;
pub use store::{apply, apply_receipt, apply_scan, counters, fold, fold_all};

use chrono::NaiveDateTime;
use flumon_shared::receipt::{Accepted, Receipt};

use crate::error::Result;
use crate::state::AppState;

/// Sled trees of the figures.
pub mod trees {
    /// Everything: records' facts, units, counters (store.rs).
    pub const FIG: &str = "fig";
    /// The layout before 2026-11-27, read once by `legacy::migrate`.
    pub const LEGACY: [&str; 4] = ["fig_rec", "fig_unit", "fig_contrib", "fig_cnt"];
}

/// The server's task: folds the figures' logged facts every
/// `figures.fold_every_secs` (default 5 minutes), so the log stays short
/// and a portal page has little to fold when opened.
pub async fn fold_task(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // `Config::check` keeps it within 1..=86400; `interval` would panic on zero
    let every = std::time::Duration::from_secs(state.config.figures.fold_every_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let st = state.clone();
        let t = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || fold_all(&st.store)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                crate::metrics::Metrics::add(&state.metrics.figures_folded, n);
                tracing::info!(records = n, secs = t.elapsed().as_secs_f64(), "figures folded");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "figures fold failed"),
            Err(e) => tracing::error!(error = %e, "figures fold task failed"),
        }
    }
}

/// The pipeline's hook for each step of an upload: hospital `org`'s
/// `accepted` records (in row order), received at `now` (CST).
pub fn on_accepted(state: &AppState, org: &str, accepted: &[Accepted], now: NaiveDateTime) -> Result<()> {
    let records: Vec<&flumon_shared::model::Record> = accepted.iter().map(|a| &a.record).collect();
    apply(&state.store, &state.keys.desens.pseudonym, org, &records, now)
}

/// The scans endpoint's hook: an accepted death full-record scan of case `jzlsh`.
pub fn on_scan(state: &AppState, org: &str, jzlsh: &str, now: NaiveDateTime) -> Result<()> {
    apply_scan(&state.store, &state.keys.desens.pseudonym, org, jzlsh, now)
}

/// The pipeline's hook when an upload was read (status 200): its receipt
/// feeds the reporting quality (uploads, rows, rejections by rule).
pub fn on_receipt(state: &AppState, org: &str, receipt: &Receipt, now: NaiveDateTime) -> Result<()> {
    apply_receipt(&state.store, org, receipt, now)
}
