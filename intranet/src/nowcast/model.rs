//! The nowcast arithmetic on a reporting triangle: pure functions, tested
//! on constructed triangles with known answers.
//!
//! ```text
//!  Triangle.rows[t][d] ─▶ known(t, s) ─▶ weekly cumulative fractions ─▶ pooled F(d)
//!     ─▶ estimate(t) = known(t, s) / F(s − t) ─▶ bootstrap draws ─▶ quantiles (type 7)
//! ```

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::indicators::Cell;
use crate::timeconv::date_of;

/// Delays 0 … H−1 are estimated; event days older than H are taken as complete.
pub const HORIZON: i64 = 14;
/// Weeks of complete history the fractions come from.
pub const WINDOW_WEEKS: usize = 8;
/// Days shown.
pub const NOWCAST_DAYS: i64 = 7;
/// Bootstrap resamples.
pub const DRAWS: usize = 1000;
const SEED: u64 = 0x666c_756d_6f6e;
const Z80: f64 = 1.281_551_565_544_600_4;
const Z95: f64 = 1.959_963_984_540_054;

/// Cases by event day and delay (days until first receipt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Triangle {
    pub rows: BTreeMap<i64, BTreeMap<i64, i64>>,
}

impl Triangle {
    /// Cases of event day `t` known at the end of day `s`.
    pub fn known(&self, t: i64, s: i64) -> i64 {
        self.rows.get(&t).map_or(0, |r| r.range(..=(s - t)).map(|(_, v)| *v).sum())
    }

    /// Cases of day `t` with delay at most `d`, as known at `s`.
    fn by_delay(&self, t: i64, d: i64, s: i64) -> i64 {
        self.known(t, s.min(t + d))
    }
}

/// 80 % and 95 % intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Interval {
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
}

/// One nowcast day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    pub date: String,
    pub delay: i64,
    pub observed: Cell,
    pub estimate: Option<f64>,
    pub interval: Option<Interval>,
}

/// A 7-day total.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Week {
    pub from: String,
    pub to: String,
    pub observed: Cell,
    pub estimate: Option<f64>,
    pub interval: Option<Interval>,
}

/// Weekly growth of the last 7 days over the 7 before.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// W1 / W0 − 1.
    pub weekly_rate: f64,
    pub interval: Interval,
    pub doubling_days: Option<f64>,
    pub halving_days: Option<f64>,
}

/// A forecast of the 7-day total `weeks_ahead` weeks after the last.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    pub weeks_ahead: u32,
    pub estimate: f64,
    pub interval: Interval,
}

/// The backtest over past weeks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Backtest {
    pub weeks: usize,
    pub days: usize,
    pub coverage80: f64,
    pub coverage95: f64,
    pub mae_nowcast: f64,
    pub mae_naive: f64,
    /// mae_nowcast ÷ mae_naive (null when the naive count was exact).
    pub relative_mae: Option<f64>,
}

/// Everything the nowcast view shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Nowcast {
    pub asof: String,
    /// F(d), d = 0 … H−1 (null without history).
    pub fractions: Vec<Option<f64>>,
    pub weeks_used: usize,
    pub days: Vec<Day>,
    pub last_week: Week,
    pub previous_week: Week,
    pub growth: Option<Growth>,
    pub forecast: Vec<Forecast>,
    /// SD of the weekly log growth of the complete weeks.
    pub growth_sd: f64,
    pub backtest: Option<Backtest>,
}

/// Quantile type 7 of sorted values.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let a = sorted.get(lo).copied().unwrap_or(f64::NAN);
    let b = sorted.get(lo + 1).copied().unwrap_or(a);
    a + (h - lo as f64) * (b - a)
}

fn interval(mut xs: Vec<f64>) -> Option<Interval> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    Some(Interval {
        lo80: quantile(&xs, 0.10),
        hi80: quantile(&xs, 0.90),
        lo95: quantile(&xs, 0.025),
        hi95: quantile(&xs, 0.975),
    })
}

/// One complete week's cumulative counts by delay and its total, as known at `s`.
#[derive(Clone, Debug, PartialEq)]
struct WeekFrac {
    cum: Vec<i64>,
    total: i64,
}

fn weeks(tri: &Triangle, s: i64) -> Vec<WeekFrac> {
    (0..WINDOW_WEEKS as i64)
        .map(|k| {
            let end = s - HORIZON - 7 * k;
            let days = (end - 6)..=end;
            let cum = (0..HORIZON).map(|d| days.clone().map(|t| tri.by_delay(t, d, s)).sum()).collect();
            WeekFrac { cum, total: days.map(|t| tri.known(t, s)).sum() }
        })
        .filter(|w| w.total > 0)
        .collect()
}

fn pooled(ws: &[&WeekFrac]) -> Vec<Option<f64>> {
    let total: i64 = ws.iter().map(|w| w.total).sum();
    (0..HORIZON as usize)
        .map(|d| {
            let c: i64 = ws.iter().map(|w| w.cum.get(d).copied().unwrap_or(0)).sum();
            (total > 0 && c > 0).then(|| c as f64 / total as f64)
        })
        .collect()
}

/// Estimates of the last H days (index = delay) under fractions `f`.
fn estimates(tri: &Triangle, s: i64, f: &[Option<f64>]) -> Vec<Option<f64>> {
    (0..HORIZON)
        .map(|d| {
            let obs = tri.known(s - d, s) as f64;
            if obs == 0.0 {
                return Some(0.0);
            }
            f.get(d as usize).copied().flatten().map(|fd| obs / fd)
        })
        .collect()
}

fn sum_range(e: &[Option<f64>], r: std::ops::Range<usize>) -> Option<f64> {
    r.map(|i| e.get(i).copied().flatten()).sum()
}

fn log_growth_sd(tri: &Triangle, s: i64) -> f64 {
    let totals: Vec<f64> = (0..=WINDOW_WEEKS as i64)
        .map(|k| {
            let end = s - HORIZON - 7 * k;
            ((end - 6)..=end).map(|t| tri.known(t, s) as f64).sum()
        })
        .collect();
    let g: Vec<f64> = totals
        .windows(2)
        .filter_map(|w| match w {
            [a, b] if *a > 0.0 && *b > 0.0 => Some((a / b).ln()),
            _ => None,
        })
        .collect();
    if g.len() < 2 {
        return 0.0;
    }
    let m = g.iter().sum::<f64>() / g.len() as f64;
    (g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (g.len() - 1) as f64).sqrt()
}

/// The core estimate at `s`: fractions, per-delay estimates and their bootstrap draws.
struct Core {
    fractions: Vec<Option<f64>>,
    weeks_used: usize,
    point: Vec<Option<f64>>,
    draws: Vec<Vec<Option<f64>>>,
}

fn core(tri: &Triangle, s: i64) -> Core {
    let ws = weeks(tri, s);
    let all: Vec<&WeekFrac> = ws.iter().collect();
    let fractions = pooled(&all);
    let point = estimates(tri, s, &fractions);
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let draws = if ws.is_empty() {
        Vec::new()
    } else {
        (0..DRAWS)
            .map(|_| {
                let pick: Vec<&WeekFrac> =
                    (0..ws.len()).filter_map(|_| ws.get(rng.random_range(0..ws.len()))).collect();
                estimates(tri, s, &pooled(&pick))
            })
            .collect()
    };
    Core { fractions, weeks_used: ws.len(), point, draws }
}

fn week(tri: &Triangle, s: i64, c: &Core, r: std::ops::Range<usize>) -> Week {
    let observed: i64 = r.clone().map(|d| tri.known(s - d as i64, s)).sum();
    Week {
        from: date_of(s - r.end as i64 + 1).to_string(),
        to: date_of(s - r.start as i64).to_string(),
        observed: Cell::Value(observed),
        estimate: sum_range(&c.point, r.clone()),
        interval: interval(c.draws.iter().filter_map(|e| sum_range(e, r.clone())).collect()),
    }
}

fn widen(i: Interval, factor80: f64, factor95: f64) -> Interval {
    Interval { lo80: i.lo80 / factor80, hi80: i.hi80 * factor80, lo95: i.lo95 / factor95, hi95: i.hi95 * factor95 }
}

/// The nowcast as of day `s` (the last event day), with a backtest over `backtest_weeks` past weeks.
pub fn nowcast(tri: &Triangle, s: i64, backtest_weeks: usize) -> Nowcast {
    let c = core(tri, s);
    let days = (0..NOWCAST_DAYS)
        .rev()
        .map(|d| {
            let i = d as usize;
            Day {
                date: date_of(s - d).to_string(),
                delay: d,
                observed: Cell::Value(tri.known(s - d, s)),
                estimate: c.point.get(i).copied().flatten(),
                interval: interval(c.draws.iter().filter_map(|e| e.get(i).copied().flatten()).collect()),
            }
        })
        .collect();
    let last_week = week(tri, s, &c, 0..7);
    let previous_week = week(tri, s, &c, 7..14);
    let growth_of = |e: &[Option<f64>]| match (sum_range(e, 0..7), sum_range(e, 7..14)) {
        (Some(w1), Some(w0)) if w0 > 0.0 && w1 > 0.0 => Some((w1, w1 / w0)),
        _ => None,
    };
    let growth_sd = log_growth_sd(tri, s);
    let (mut growth, mut forecast) = (None, Vec::new());
    if let Some((w1, g)) = growth_of(&c.point) {
        let draws: Vec<(f64, f64)> = c.draws.iter().filter_map(|e| growth_of(e)).collect();
        let r = g.ln() / 7.0;
        growth = Some(Growth {
            weekly_rate: g - 1.0,
            interval: interval(draws.iter().map(|(_, g)| g - 1.0).collect()).unwrap_or_default(),
            doubling_days: (r > 0.0).then(|| std::f64::consts::LN_2 / r),
            halving_days: (r < 0.0).then(|| std::f64::consts::LN_2 / -r),
        });
        for h in 1..=4u32 {
            let hf = f64::from(h);
            let base = interval(draws.iter().map(|(w, g)| w * g.powf(hf)).collect()).unwrap_or_default();
            let sd = growth_sd * hf.sqrt();
            forecast.push(Forecast {
                weeks_ahead: h,
                estimate: w1 * g.powf(hf),
                interval: widen(base, (Z80 * sd).exp(), (Z95 * sd).exp()),
            });
        }
    }
    let backtest = (backtest_weeks > 0).then(|| backtest_at(tri, s, backtest_weeks)).flatten();
    Nowcast {
        asof: date_of(s).to_string(),
        fractions: c.fractions,
        weeks_used: c.weeks_used,
        days,
        last_week,
        previous_week,
        growth,
        forecast,
        growth_sd,
        backtest,
    }
}

/// On each of the `n` past weeks, the nowcast of its last 7 days then against the count known at `now`.
pub fn backtest_at(tri: &Triangle, now: i64, n: usize) -> Option<Backtest> {
    let (mut days, mut in80, mut in95, mut err_nc, mut err_naive) = (0usize, 0usize, 0usize, 0.0, 0.0);
    for j in 1..=n as i64 {
        let s = now - 7 * j;
        let c = core(tri, s);
        for d in 0..NOWCAST_DAYS {
            let i = d as usize;
            let Some(est) = c.point.get(i).copied().flatten() else { continue };
            let truth = tri.known(s - d, now) as f64;
            let naive = tri.known(s - d, s) as f64;
            days += 1;
            err_nc += (est - truth).abs();
            err_naive += (naive - truth).abs();
            let iv = interval(c.draws.iter().filter_map(|e| e.get(i).copied().flatten()).collect());
            if let Some(iv) = iv {
                in80 += usize::from(iv.lo80 - 1e-9 <= truth && truth <= iv.hi80 + 1e-9);
                in95 += usize::from(iv.lo95 - 1e-9 <= truth && truth <= iv.hi95 + 1e-9);
            }
        }
    }
    if days == 0 {
        return None;
    }
    let k = days as f64;
    let (mae_nowcast, mae_naive) = (err_nc / k, err_naive / k);
    Some(Backtest {
        weeks: n,
        days,
        coverage80: in80 as f64 / k,
        coverage95: in95 as f64 / k,
        mae_nowcast,
        mae_naive,
        relative_mae: (mae_naive > 0.0).then(|| mae_nowcast / mae_naive),
    })
}

impl Nowcast {
    /// Below national scope: observed counts of 1–4 become `<5` and their estimates are hidden.
    pub fn apply_small_cells(&mut self) {
        for d in &mut self.days {
            if let Cell::Value(v) = d.observed
                && (1..5).contains(&v)
            {
                d.observed = Cell::Small;
                d.estimate = None;
                d.interval = None;
            }
        }
        for w in [&mut self.last_week, &mut self.previous_week] {
            if let Cell::Value(v) = w.observed
                && (1..5).contains(&v)
            {
                w.observed = Cell::Small;
                w.estimate = None;
                w.interval = None;
            }
        }
    }
}
