//! Nowcast and trend (INDICATORS 趋势预测) from the reporting triangle kept
//! in the rollups (metric `delay`: cases by event day × days until first
//! receipt at the DMZ).
//!
//! ```text
//!  triangle N(t, d) ─ known at s: Σ_{d ≤ s−t} ─▶ 8 complete weeks (event days ≤ s − H) ─▶ F(d), d < H = 14
//!   ─▶ nowcast t ∈ (s − H, s]: observed ÷ F(s − t)
//!   ─▶ bootstrap the 8 weekly fractions (B = 1000, fixed seed) ─▶ 80 % / 95 % intervals
//!   ─▶ last 7 days vs previous 7 ─▶ weekly growth, doubling / halving time
//!   ─▶ forecast 1–4 weeks: W·g^h, intervals widened by the SD of past weekly log growth
//!   ─▶ backtest: the nowcast made at s − 7j against the count known now (coverage, MAE vs naive)
//! ```

pub mod model;

use std::collections::BTreeMap;

pub use model::{Backtest, Growth, Interval, Nowcast, Triangle, nowcast};

use crate::Result;
use crate::db::Db;
use crate::indicators::Scoped;
use crate::indicators::fetch;

/// Days of history the nowcast reads before `asof`.
pub const HISTORY_DAYS: i64 = model::HORIZON + 7 * (model::WINDOW_WEEKS as i64 + 1) + 7 * 9;

/// The reporting triangle of a scope over `from..=to`.
pub async fn triangle(db: &Db, s: &Scoped, from: i64, to: i64) -> Result<Triangle> {
    let mut rows: BTreeMap<i64, BTreeMap<i64, i64>> = BTreeMap::new();
    for (day, sums) in fetch::daily(db, s, from, to, &["delay"]).await? {
        for ((_, dim), v) in sums {
            if let Ok(d) = dim.parse::<i64>() {
                *rows.entry(day).or_default().entry(d).or_insert(0) += v;
            }
        }
    }
    Ok(Triangle { rows })
}

/// The nowcast of a scope as of day `asof`, with a backtest over `backtest_weeks` past weeks.
pub async fn for_scope(db: &Db, s: &Scoped, asof: i64, backtest_weeks: usize) -> Result<Nowcast> {
    let from = asof - HISTORY_DAYS - 7 * backtest_weeks as i64;
    let tri = triangle(db, s, from, asof).await?;
    let mut n = nowcast(&tri, asof, backtest_weeks);
    if s.small_cells() {
        n.apply_small_cells();
    }
    Ok(n)
}
