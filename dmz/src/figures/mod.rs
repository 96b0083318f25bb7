//! 本院监测: each hospital's own figures, kept as counters updated as its
//! records are accepted (issue 9). No identifier and no raw data is kept:
//! per natural key only a keyed hash and the dates and codes the figures
//! need; per unit (a JZLSH's case, a drug's stock, a visits row) only its
//! current contribution, so an update or delete subtracts exactly what the
//! earlier version added.
//!
//! ```text
//!  pipeline: each step's accepted records ─▶ on_accepted ─▶ apply (store.rs); receipt ─▶ on_receipt
//!     per record: latest GXSJ wins ─▶ fig_rec[org|type|H(JLID)] = Facts (tombstone on delete)
//!                                   ─▶ fig_unit[org|unit|type|H(JLID)] membership
//!  scans endpoint: accepted death scan ─▶ on_scan ─▶ fig_rec[org|scan|H(JZLSH)] in the case's unit
//!     per touched unit: live facts ─▶ contribution (contrib.rs) ─▶ diff with fig_contrib ─▶ fig_cnt
//!  pages / exports ─▶ counters(org) ─▶ tables (view.rs)
//!  tests ─▶ recompute (replay.rs): the same uploads replayed from scratch, compared
//! ```

pub mod contrib;
pub mod facts;
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
    pub const REC: &str = "fig_rec";
    pub const UNIT: &str = "fig_unit";
    pub const CONTRIB: &str = "fig_contrib";
    pub const CNT: &str = "fig_cnt";
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
