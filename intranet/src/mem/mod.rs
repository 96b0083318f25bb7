//! The Moving Epidemic Method exactly as the R package `mem` 2.19
//! (`memmodel` with its defaults) computes it; shared/spec/MEM.md gives
//! every step, and each step is a function tested on its own.
//!
//! ```text
//!  MemData (weeks × seasons) ─▶ fill_interior (linear) ─▶ drop seasons with sum ≤ 0 ─▶ last 10
//!   ─▶ n.max = max(1, round(30 / seasons))             (round: halves to even)
//!   ─▶ timing per season (MAP, smoothing, δ = 2.8)      timing.rs
//!   ─▶ pooled top-n pre / post ─▶ mean + z·SD           intervals.rs (type 5) ─▶ epidemic / post thresholds
//!   ─▶ pooled top-n epi ─▶ exp(mean L + z·SD L)         intervals.rs (type 6) ─▶ medium / high / very high
//!   ─▶ durations, starts, % ─▶ median + CI              eqnpar.rs (type 3)
//!   ─▶ centring (mean length) ─▶ moving epidemics ─▶ typical curve (type 2)
//! ```

pub mod eqnpar;
pub mod input;
pub mod intervals;
pub mod stats;
pub mod timing;

use serde::Serialize;

pub use input::{Interpolated, MemData, SeasonSeries, fill_interior, read_csv};

use intervals::{geometric, point_logx, point_x};
use stats::{fsum, median, round_half_even};

/// The parameters of `memmodel` (its defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct MemOptions {
    /// Keep only the last this many seasons (i.seasons).
    pub max_seasons: usize,
    /// The slope criterion δ (i.param).
    pub delta: f64,
    /// Epidemic threshold level and tails.
    pub level_threshold: f64,
    pub tails_threshold: f64,
    /// Intensity levels and tails.
    pub levels_intensity: [f64; 3],
    pub tails_intensity: f64,
    /// Typical-curve level (two-sided).
    pub level_curve: f64,
    /// Level of the median CIs (length, start, percentage).
    pub level_other: f64,
}

impl Default for MemOptions {
    fn default() -> Self {
        MemOptions {
            max_seasons: 10,
            delta: 2.8,
            level_threshold: 0.95,
            tails_threshold: 1.0,
            levels_intensity: [0.40, 0.90, 0.975],
            tails_intensity: 1.0,
            level_curve: 0.95,
            level_other: 0.95,
        }
    }
}

/// The intensity thresholds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intensity {
    pub medium: f64,
    pub high: f64,
    pub very_high: f64,
}

/// One season's epidemic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeasonTiming {
    pub season: String,
    pub start_week: String,
    pub end_week: String,
    /// 1-based row indices of the start and end.
    pub start_index: usize,
    pub end_index: usize,
    pub duration_weeks: usize,
    pub percentage: f64,
    /// The epidemic's sum and the season's total.
    pub epidemic_sum: f64,
    pub season_total: f64,
}

/// One week of the typical curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub week: String,
    pub lower: Option<f64>,
    pub mean: Option<f64>,
    pub upper: Option<f64>,
}

/// A median with its 95 % confidence interval (EnvStats eqnpar).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MedianCi {
    pub lower: f64,
    pub median: f64,
    pub upper: f64,
}

/// What `memmodel` yields, as flumon shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemResult {
    pub n_seasons: usize,
    pub n_max: usize,
    pub epidemic_threshold: Option<f64>,
    pub post_epidemic_threshold: Option<f64>,
    pub intensity: Option<Intensity>,
    pub seasons: Vec<SeasonTiming>,
    pub typical_curve: Vec<CurvePoint>,
    /// round(median(durations)).
    pub mean_length: Option<usize>,
    pub length_ci: Option<MedianCi>,
    /// round(median(start indices)) and its week label.
    pub mean_start_index: Option<usize>,
    pub mean_start_week: Option<String>,
    pub start_ci: Option<MedianCi>,
    pub percentage_ci: Option<MedianCi>,
    /// round(median(starts of the best mean-length windows)).
    pub centered_start_index: Option<usize>,
    /// Weeks that were missing inside a season and were interpolated.
    pub interpolated: Vec<Interpolated>,
    /// Why there are no thresholds, when there are none (中文 (English)).
    pub reason: Option<String>,
}

/// The epidemic level of a week's value (at or above a threshold is that level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Baseline,
    Low,
    Medium,
    High,
    VeryHigh,
}

impl Level {
    /// Chinese name.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Baseline => "基线水平",
            Level::Low => "低流行水平",
            Level::Medium => "中流行水平",
            Level::High => "高流行水平",
            Level::VeryHigh => "极高流行水平",
        }
    }
}

impl MemResult {
    /// The level of `value`; `None` without thresholds.
    pub fn level_of(&self, value: f64) -> Option<Level> {
        let et = self.epidemic_threshold?;
        let i = self.intensity.as_ref()?;
        Some(if value >= i.very_high {
            Level::VeryHigh
        } else if value >= i.high {
            Level::High
        } else if value >= i.medium {
            Level::Medium
        } else if value >= et {
            Level::Low
        } else {
            Level::Baseline
        })
    }
}

fn ci(values: &[f64], level: f64) -> Option<MedianCi> {
    eqnpar::median_ci(values, level).map(|(lower, median, upper)| MedianCi { lower, median, upper })
}

/// `max(1, round(30 / seasons))` with R's rounding.
pub fn n_max_for(seasons: usize) -> usize {
    if seasons == 0 {
        return 1;
    }
    (round_half_even(30.0 / seasons as f64) as usize).max(1)
}

/// `moving.epidemics`: moving[i][j] = x_j[i + s_j − c] (1-based), `None` outside the season.
pub fn moving_epidemics(seasons: &[&[Option<f64>]], starts: &[usize], centre: usize) -> Vec<Vec<Option<f64>>> {
    let n = seasons.first().map_or(0, |s| s.len());
    (1..=n)
        .map(|i| {
            seasons
                .iter()
                .zip(starts)
                .map(|(x, &s)| {
                    let idx = (i + s).checked_sub(centre)?;
                    if idx == 0 { None } else { x.get(idx - 1).copied().flatten() }
                })
                .collect()
        })
        .collect()
}

/// `memmodel(data)` with `opts`. Interior missing weeks are interpolated first.
pub fn memmodel(data: &MemData, opts: &MemOptions) -> MemResult {
    let mut data = data.clone();
    let interpolated = fill_interior(&mut data);
    let mut seasons: Vec<&SeasonSeries> =
        data.seasons.iter().filter(|s| fsum(s.values.iter().flatten().copied()) > 0.0).collect();
    if seasons.len() > opts.max_seasons {
        seasons.drain(..seasons.len() - opts.max_seasons);
    }
    let n = seasons.len();
    let n_max = n_max_for(n);
    let mut out = MemResult {
        n_seasons: n,
        n_max,
        epidemic_threshold: None,
        post_epidemic_threshold: None,
        intensity: None,
        seasons: Vec::new(),
        typical_curve: Vec::new(),
        mean_length: None,
        length_ci: None,
        mean_start_index: None,
        mean_start_week: None,
        start_ci: None,
        percentage_ci: None,
        centered_start_index: None,
        interpolated,
        reason: None,
    };
    if n < 2 {
        out.reason = Some(format!(
            "既往完整流行季少于2个（现有{n}个），无法计算阈值 (fewer than 2 complete past seasons: no thresholds)"
        ));
        return out;
    }
    let label = |i: usize| data.weeks.get(i.wrapping_sub(1)).cloned().unwrap_or_else(|| i.to_string());
    let timings: Vec<timing::Timing> = seasons.iter().map(|s| timing::timing(&s.values, n_max, opts.delta)).collect();
    for (s, t) in seasons.iter().zip(&timings) {
        out.seasons.push(SeasonTiming {
            season: s.name.clone(),
            start_week: label(t.start),
            end_week: label(t.end),
            start_index: t.start,
            end_index: t.end,
            duration_weeks: t.duration(),
            percentage: t.pct,
            epidemic_sum: t.sum,
            season_total: fsum(s.values.iter().flatten().copied()),
        });
    }
    // Thresholds from the pooled top-n values.
    let pool = |f: fn(&timing::Timing) -> &Vec<f64>| timings.iter().flat_map(|t| f(t).iter().copied()).collect();
    let pre: Vec<f64> = pool(|t| &t.pre);
    let post: Vec<f64> = pool(|t| &t.post);
    let epi: Vec<f64> = pool(|t| &t.epi);
    out.epidemic_threshold = point_x(&pre, opts.level_threshold, opts.tails_threshold).upper;
    out.post_epidemic_threshold = point_x(&post, opts.level_threshold, opts.tails_threshold).upper;
    let [l1, l2, l3] = opts.levels_intensity;
    let lvl = |l| point_logx(&epi, l, opts.tails_intensity).upper;
    if let (Some(medium), Some(high), Some(very_high)) = (lvl(l1), lvl(l2), lvl(l3)) {
        out.intensity = Some(Intensity { medium, high, very_high });
    }
    if out.epidemic_threshold.is_none() || out.intensity.is_none() {
        out.reason = Some("流行前或流行期数据不足，无法计算阈值 (too few pre-epidemic or epidemic values)".into());
    }
    // Length, start and percentage.
    let durations: Vec<f64> = timings.iter().map(|t| t.duration() as f64).collect();
    let starts: Vec<f64> = timings.iter().map(|t| t.start as f64).collect();
    let pcts: Vec<f64> = timings.iter().map(|t| t.pct).collect();
    out.length_ci = ci(&durations, opts.level_other);
    out.start_ci = ci(&starts, opts.level_other);
    out.percentage_ci = ci(&pcts, opts.level_other);
    let mean_length = median(&durations).map(|m| round_half_even(m) as usize);
    out.mean_length = mean_length;
    out.mean_start_index = median(&starts).map(|m| round_half_even(m) as usize);
    out.mean_start_week = out.mean_start_index.map(label);
    // Centring and the typical curve.
    if let Some(len) = mean_length.filter(|&l| l >= 1) {
        let s_j: Vec<usize> = timings.iter().map(|t| t.map.get(len).map_or(1, |r| r.start)).collect();
        let s_f: Vec<f64> = s_j.iter().map(|&s| s as f64).collect();
        if let Some(c) = median(&s_f).map(|m| round_half_even(m) as usize) {
            out.centered_start_index = Some(c);
            let cols: Vec<&[Option<f64>]> = seasons.iter().map(|s| s.values.as_slice()).collect();
            let moving = moving_epidemics(&cols, &s_j, c);
            out.typical_curve = moving
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let vals: Vec<f64> = row.iter().flatten().copied().collect();
                    let g = geometric(&vals, opts.level_curve, 2.0);
                    CurvePoint { week: label(i + 1), lower: g.lower, mean: g.centre, upper: g.upper }
                })
                .collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_max_rounds_half_to_even() {
        assert_eq!(n_max_for(8), 4);
        assert_eq!(n_max_for(5), 6);
        assert_eq!(n_max_for(12), 2, "30/12 = 2.5 → 2");
        assert_eq!(n_max_for(4), 8, "30/4 = 7.5 → 8");
        assert_eq!(n_max_for(100), 1);
        assert_eq!(n_max_for(60), 1, "0.5 → 0 → max 1");
    }

    #[test]
    fn moving_epidemics_shift_each_season_to_the_centre() {
        let a = [Some(1.0), Some(2.0), Some(3.0), Some(4.0)];
        let b = [Some(10.0), Some(20.0), Some(30.0), Some(40.0)];
        // Season a starts at 2, b at 3, centre 2: b moves one week earlier.
        let m = moving_epidemics(&[&a, &b], &[2, 3], 2);
        assert_eq!(m[0], vec![Some(1.0), Some(20.0)]);
        assert_eq!(m[3], vec![Some(4.0), None]);
        // A season starting before the centre moves later: its first rows are empty.
        let m = moving_epidemics(&[&a], &[1], 3);
        assert_eq!(m[0], vec![None]);
        assert_eq!(m[1], vec![None]);
        assert_eq!(m[2], vec![Some(1.0)]);
    }

    fn table(cols: &[(&str, &[f64])]) -> MemData {
        let n = cols[0].1.len();
        MemData {
            weeks: (1..=n).map(|i| i.to_string()).collect(),
            seasons: cols
                .iter()
                .map(|(name, v)| SeasonSeries { name: name.to_string(), values: v.iter().copied().map(Some).collect() })
                .collect(),
        }
    }

    #[test]
    fn fewer_than_two_seasons_give_a_reason() {
        let d = table(&[("a", &[1.0, 5.0, 1.0]), ("b", &[0.0, 0.0, 0.0])]);
        let r = memmodel(&d, &MemOptions::default());
        assert_eq!(r.n_seasons, 1, "a season summing to 0 is dropped");
        assert!(r.epidemic_threshold.is_none() && r.intensity.is_none());
        assert!(r.reason.as_deref().unwrap().contains("少于2个"));
        assert_eq!(r.level_of(100.0), None);
    }

    #[test]
    fn keeps_only_the_last_seasons() {
        let v = [1.0, 2.0, 8.0, 9.0, 3.0, 1.0];
        let cols: Vec<(String, &[f64])> = (0..12).map(|i| (format!("s{i}"), &v[..])).collect();
        let refs: Vec<(&str, &[f64])> = cols.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let r = memmodel(&table(&refs), &MemOptions::default());
        assert_eq!(r.n_seasons, 10);
        assert_eq!(r.seasons[0].season, "s2");
        assert_eq!(r.n_max, 3);
    }

    #[test]
    fn levels_at_or_above_thresholds() {
        let mut r = memmodel(&table(&[("a", &[1.0]), ("b", &[1.0])]), &MemOptions::default());
        r.epidemic_threshold = Some(10.0);
        r.intensity = Some(Intensity { medium: 20.0, high: 30.0, very_high: 40.0 });
        assert_eq!(r.level_of(9.99), Some(Level::Baseline));
        assert_eq!(r.level_of(10.0), Some(Level::Low));
        assert_eq!(r.level_of(20.0), Some(Level::Medium));
        assert_eq!(r.level_of(35.0), Some(Level::High));
        assert_eq!(r.level_of(40.0), Some(Level::VeryHigh));
        assert_eq!(Level::VeryHigh.zh(), "极高流行水平");
    }
}
