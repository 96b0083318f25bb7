//! 本院监测: each hospital's own figures, kept as counters updated as its
//! records are accepted (issue 9). No identifier and no raw data is kept:
//! per natural key only a keyed hash and the dates and codes the figures
//! need; per unit (a JZLSH's case, a drug's stock, a visits row) only its
//! current contribution, so an update or delete subtracts exactly what the
//! earlier version added.
//!
//! ```text
//!  pipeline: each step's accepted records ─▶ on_accepted ─▶ apply (store.rs); receipt ─▶ on_receipt
//!     per record: latest GXSJ wins ─▶ fig[r|org|type|H(JLID)] = Facts (tombstone on delete)
//!                                   ─▶ fig[u|org|unit] members
//!  scans endpoint: accepted death scan ─▶ on_scan ─▶ fig[r|org|scan|H(JZLSH)] in the case's unit
//!     per touched unit: live facts ─▶ contribution (contrib.rs) ─▶ diff with the unit's ─▶ fig[c|org|name]
//!  one sled batch per chunk; older stores' four trees converted once at start (legacy.rs)
//!  pages / exports ─▶ counters(org) ─▶ tables (view.rs)
//!  tests ─▶ recompute (replay.rs): the same uploads replayed from scratch, compared
//! ```

pub mod contrib;
pub mod facts;
pub mod legacy;
pub mod replay;
mod store;
pub mod view;

pub use contrib::Counters;
pub use store::{apply, apply_receipt, apply_scan, counters};

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
