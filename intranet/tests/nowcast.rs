//! Nowcast on constructed reporting triangles with known answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use flumon_intranet::indicators::Cell;
use flumon_intranet::nowcast::Triangle;
use flumon_intranet::nowcast::model::{HORIZON, backtest_at, nowcast, quantile};

const S: i64 = 20_000; // the last event day

/// Every event day `t` has `n(t)` cases: half on the day, 30 % a day late, 20 % two days late.
fn triangle(n: impl Fn(i64) -> i64, split: impl Fn(i64) -> [i64; 3]) -> Triangle {
    let mut rows = BTreeMap::new();
    for t in (S - 250)..=S {
        let total = n(t);
        let p = split(t);
        let row: BTreeMap<i64, i64> =
            [(0, total * p[0] / 10), (1, total * p[1] / 10), (2, total * p[2] / 10)].into_iter().collect();
        rows.insert(t, row);
    }
    Triangle { rows }
}

#[test]
fn constant_world_is_nowcast_exactly() {
    let tri = triangle(|_| 100, |_| [5, 3, 2]);
    assert_eq!(tri.known(S, S), 50);
    assert_eq!(tri.known(S - 1, S), 80);
    let n = nowcast(&tri, S, 4);
    assert_eq!(n.weeks_used, 8);
    assert_eq!(n.fractions[0], Some(0.5));
    assert_eq!(n.fractions[1], Some(0.8));
    assert!((2..HORIZON as usize).all(|d| n.fractions[d] == Some(1.0)));
    for d in &n.days {
        assert_eq!(d.estimate, Some(100.0), "{}", d.date);
        let i = d.interval.unwrap();
        assert_eq!((i.lo80, i.hi95), (100.0, 100.0), "identical weeks: no spread");
    }
    assert_eq!(n.days.last().unwrap().observed, Cell::Value(50));
    assert_eq!(n.last_week.estimate, Some(700.0));
    assert_eq!(n.last_week.observed, Cell::Value(630));
    let g = n.growth.as_ref().unwrap();
    assert_eq!(g.weekly_rate, 0.0);
    assert_eq!((g.doubling_days, g.halving_days), (None, None));
    assert_eq!(n.growth_sd, 0.0);
    assert_eq!(n.forecast.len(), 4);
    assert!(n.forecast.iter().all(|f| f.estimate == 700.0 && f.interval.lo95 == 700.0 && f.interval.hi95 == 700.0));
    // Backtest: the nowcast is exact; the naive count misses 50 + 20 on 2 of 7 days.
    let b = n.backtest.unwrap();
    assert_eq!(b.days, 28);
    assert_eq!(b.mae_nowcast, 0.0);
    assert!((b.mae_naive - 10.0).abs() < 1e-12);
    assert_eq!(b.relative_mae, Some(0.0));
    assert_eq!((b.coverage80, b.coverage95), (1.0, 1.0));
}

#[test]
fn doubling_every_week() {
    // 10 · 2^(week index) cases a day, weeks ending on S.
    let tri = triangle(|t| 10 * (1i64 << ((t - (S - 251)) / 7).min(40)), |_| [5, 3, 2]);
    let n = nowcast(&tri, S, 0);
    let g = n.growth.unwrap();
    assert!((g.weekly_rate - 1.0).abs() < 1e-12, "{}", g.weekly_rate);
    assert!((g.doubling_days.unwrap() - 7.0).abs() < 1e-9);
    assert_eq!(g.halving_days, None);
    let w1 = n.last_week.estimate.unwrap();
    for f in &n.forecast {
        assert!((f.estimate - w1 * 2f64.powi(f.weeks_ahead as i32)).abs() < 1e-6);
        assert!((f.interval.hi95 - f.estimate).abs() < 1e-6 * f.estimate, "constant growth: no spread");
    }
    assert!(n.backtest.is_none());
}

#[test]
fn halving_and_intervals_from_varying_weeks() {
    // Halving every week; the share reported on the day alternates 50 % / 30 % by week.
    let tri = triangle(
        |t| 10 * (1i64 << (40 - ((t - (S - 251)) / 7)).clamp(0, 40)),
        |t| if ((S - t) / 7) % 2 == 0 { [5, 3, 2] } else { [3, 5, 2] },
    );
    let n = nowcast(&tri, S, 8);
    let g = n.growth.as_ref().unwrap();
    assert!(g.weekly_rate < 0.0);
    assert!(g.halving_days.is_some());
    // Pooled F(0) lies between 0.3 and 0.5, so the day's estimate is bracketed.
    let f0 = n.fractions[0].unwrap();
    assert!(f0 > 0.3 && f0 < 0.5, "{f0}");
    let last = n.days.last().unwrap();
    let obs = tri.known(S, S) as f64;
    assert_eq!(last.estimate, Some(obs / f0));
    let i = last.interval.unwrap();
    assert!(i.lo95 <= i.lo80 && i.lo80 <= i.hi80 && i.hi80 <= i.hi95);
    assert!(i.lo95 >= obs / 0.5 - 1e-9 && i.hi95 <= obs / 0.3 + 1e-9);
    assert!(i.lo95 < i.hi95);
    // The forecast widens with the horizon.
    let w: Vec<f64> = n.forecast.iter().map(|f| f.interval.hi95 / f.interval.lo95).collect();
    assert!(w.windows(2).all(|p| p[1] >= p[0]));
    let b = backtest_at(&tri, S, 8).unwrap();
    assert!(b.coverage95 >= b.coverage80);
    assert!(b.mae_nowcast < b.mae_naive);
}

#[test]
fn quantile_type7() {
    let xs = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(quantile(&xs, 0.0), 1.0);
    assert_eq!(quantile(&xs, 1.0), 4.0);
    assert_eq!(quantile(&xs, 0.5), 2.5);
    assert!((quantile(&xs, 0.1) - 1.3).abs() < 1e-12);
}

#[test]
fn no_history_no_estimate() {
    let tri = Triangle::default();
    let n = nowcast(&tri, S, 2);
    assert_eq!(n.weeks_used, 0);
    assert!(n.growth.is_none());
    assert!(n.forecast.is_empty());
}
