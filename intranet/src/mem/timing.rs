//! MEM step 2: the timing of one season (`memtiming`, `calcular.map`,
//! `suavizado`, `calcular.optimo.criterio` of the R package `mem`).
//!
//! ```text
//!  x[1..n] ─▶ map_curve: for s = 0..n the best window of s weeks (earliest on ties)
//!          ─▶ smooth(pct, h = 1): local-linear Gaussian fit at 1..n+1, negatives → 0
//!          ─▶ optimum(δ = 2.8): first slope below δ, minus 1 (at least 1; n if none)
//!          ─▶ epidemic = MAP row of that length ─▶ pre / epi / post ─▶ top n.max of each
//! ```

use super::stats::fsum;

/// One row of the MAP curve: the best window of `s` weeks.
#[derive(Clone, Debug, PartialEq)]
pub struct MapRow {
    /// Window length (0 for the leading zero row).
    pub s: usize,
    /// 100 × sum ÷ season total (0 when the total is 0).
    pub pct: f64,
    /// The window's sum (missing values count as nothing).
    pub sum: f64,
    /// First week index of the window, 1-based (0 in the zero row).
    pub start: usize,
    /// Last week index, 1-based (0 in the zero row).
    pub end: usize,
}

/// The timing of one season.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// The MAP curve, n + 1 rows (s = 0..n).
    pub map: Vec<MapRow>,
    /// The smoothed percentage curve, n + 1 values.
    pub smoothed: Vec<f64>,
    /// The epidemic's length in weeks (the optimum).
    pub optimum: usize,
    /// The epidemic's first and last week indices (1-based).
    pub start: usize,
    pub end: usize,
    /// The epidemic's percentage of the season total, and its sum.
    pub pct: f64,
    pub sum: f64,
    /// The n.max largest values before, inside and after the epidemic (NAs dropped, decreasing).
    pub pre: Vec<f64>,
    pub epi: Vec<f64>,
    pub post: Vec<f64>,
}

/// `calcular.map`: the MAP curve of a season. Window sums are correctly
/// rounded (as R's long-double sums), the earliest window wins ties (`==`).
pub fn map_curve(x: &[Option<f64>]) -> Vec<MapRow> {
    let n = x.len();
    let total = fsum(x.iter().flatten().copied());
    let mut rows = Vec::with_capacity(n + 1);
    rows.push(MapRow { s: 0, pct: 0.0, sum: 0.0, start: 0, end: 0 });
    for s in 1..=n {
        let mut best: Option<(f64, usize)> = None;
        for start in 0..=(n - s) {
            let window = x.get(start..start + s).unwrap_or(&[]);
            let sum = fsum(window.iter().flatten().copied());
            if best.is_none_or(|(b, _)| sum > b) {
                best = Some((sum, start));
            }
        }
        let (sum, start) = best.unwrap_or((0.0, 0));
        let pct = if total > 0.0 { 100.0 * sum / total } else { 0.0 };
        rows.push(MapRow { s, pct, sum, start: start + 1, end: start + s });
    }
    rows
}

/// `suavizado(y, 1)` = `sm::sm.regression(1:m, y, h, eval.points = 1:m)`:
/// a local-linear fit with a Gaussian kernel of bandwidth `h`; negative
/// estimates become 0.
pub fn smooth(y: &[f64], h: f64) -> Vec<f64> {
    let m = y.len();
    (1..=m)
        .map(|e| {
            let e = e as f64;
            let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
            let pts: Vec<(f64, f64, f64)> = y
                .iter()
                .enumerate()
                .map(|(i, &yi)| {
                    let d = e - (i + 1) as f64;
                    let k = (-0.5 * (d / h) * (d / h)).exp();
                    (k, d, yi)
                })
                .collect();
            for &(k, d, _) in &pts {
                s0 += k;
                s1 += k * d;
                s2 += k * d * d;
            }
            let den = s2 * s0 - s1 * s1;
            let est: f64 = pts.iter().map(|&(k, d, yi)| k * (s2 - d * s1) / den * yi).sum();
            if est < 0.0 { 0.0 } else { est }
        })
        .collect()
}

/// `calcular.optimo.criterio` (method 2): slopes d.y = diff(y.s) at
/// d.x = 1..n; optimum = first d.x with slope < δ, minus 1, at least 1;
/// n when no slope is below δ.
pub fn optimum(smoothed: &[f64], delta: f64) -> usize {
    let n = smoothed.len().saturating_sub(1);
    let first_below = smoothed.windows(2).position(|w| matches!(w, [a, b] if b - a < delta));
    match first_below {
        Some(i) => i.max(1), // d.x = i + 1, minus 1
        None => n.max(1),
    }
}

/// `max.n.valores`: the `k` largest non-missing values, decreasing.
pub fn top_n(values: &[Option<f64>], k: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v.truncate(k);
    v
}

/// `memtiming`: the epidemic of one season with `n_max` values per part.
pub fn timing(x: &[Option<f64>], n_max: usize, delta: f64) -> Timing {
    let map = map_curve(x);
    let pct: Vec<f64> = map.iter().map(|r| r.pct).collect();
    let smoothed = smooth(&pct, 1.0);
    let optimum = optimum(&smoothed, delta);
    let row = map.get(optimum).cloned().unwrap_or(MapRow { s: 0, pct: 0.0, sum: 0.0, start: 1, end: 0 });
    let (start, end) = (row.start.max(1), row.end.min(x.len()));
    let pre = top_n(x.get(..start - 1).unwrap_or(&[]), n_max);
    let epi = top_n(x.get(start - 1..end).unwrap_or(&[]), n_max);
    let post = top_n(x.get(end..).unwrap_or(&[]), n_max);
    Timing { map, smoothed, optimum, start, end, pct: row.pct, sum: row.sum, pre, epi, post }
}

impl Timing {
    /// The epidemic's length in weeks.
    pub fn duration(&self) -> usize {
        self.optimum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn map_curve_takes_the_earliest_of_equal_windows() {
        // Windows of 1: 5 at index 2 and 4: the earliest (2) wins.
        let x = some(&[1.0, 5.0, 2.0, 5.0, 1.0]);
        let m = map_curve(&x);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0], MapRow { s: 0, pct: 0.0, sum: 0.0, start: 0, end: 0 });
        assert_eq!((m[1].sum, m[1].start, m[1].end), (5.0, 2, 2));
        // Windows of 2: 7 at 2..3 and 3..4: earliest.
        assert_eq!((m[2].sum, m[2].start, m[2].end), (7.0, 2, 3));
        assert_eq!((m[3].sum, m[3].start), (12.0, 2));
        assert_eq!((m[5].sum, m[5].pct), (14.0, 100.0));
        assert!((m[1].pct - 500.0 / 14.0).abs() < 1e-12);
        // Ties that only hold in exact arithmetic are still ties.
        let y = some(&[0.1, 0.2, 0.3, 0.0]);
        let m = map_curve(&y);
        assert_eq!((m[2].start, m[2].end), (2, 3), "0.2+0.3 beats 0.1+0.2");
        let z = some(&[0.3, 0.1, 0.2]);
        assert_eq!(map_curve(&z)[1].start, 1);
        assert_eq!((map_curve(&z)[2].start, map_curve(&z)[2].sum), (1, 0.4));
    }

    #[test]
    fn map_curve_of_a_zero_season_and_missing_weeks() {
        let m = map_curve(&some(&[0.0, 0.0]));
        assert!(m.iter().all(|r| r.pct == 0.0));
        let m = map_curve(&[Some(1.0), None, Some(3.0)]);
        assert_eq!((m[2].sum, m[2].start), (3.0, 2));
        assert_eq!(m[3].pct, 100.0);
    }

    #[test]
    fn smoothing_is_local_linear_and_clips_negatives() {
        // A straight line is reproduced exactly by a local-linear fit.
        let line: Vec<f64> = (0..10).map(|i| 3.0 + 2.0 * f64::from(i)).collect();
        for (a, b) in smooth(&line, 1.0).iter().zip(&line) {
            assert!((a - b).abs() < 1e-12, "{a} {b}");
        }
        // A line going below zero: the negative estimates become 0.
        let down: Vec<f64> = (0..6).map(|i| 2.0 - f64::from(i)).collect();
        let s = smooth(&down, 1.0);
        assert!((s[0] - 2.0).abs() < 1e-12 && (s[2]).abs() < 1e-12);
        assert_eq!(s[4], 0.0);
        assert_eq!(s[5], 0.0);
        // A spike is spread by the Gaussian weights, symmetric around it.
        let mut spike = vec![0.0; 9];
        spike[4] = 10.0;
        let s = smooth(&spike, 1.0);
        assert!((s[3] - s[5]).abs() < 1e-12 && s[4] < 10.0 && s[4] > s[3]);
        // Weights by hand at e = 1 for y = (0, 1, 0): K = (1, e^-½, e^-2).
        let (k1, k2) = ((-0.5f64).exp(), (-2.0f64).exp());
        let (s0, s1, s2) = (1.0 + k1 + k2, -k1 - 2.0 * k2, k1 + 4.0 * k2);
        let w2 = k1 * (s2 + s1) / (s2 * s0 - s1 * s1);
        assert!((smooth(&[0.0, 1.0, 0.0], 1.0)[0] - w2.max(0.0)).abs() < 1e-15);
    }

    #[test]
    fn optimum_uses_delta_and_its_bounds() {
        // Increments 30, 20, 10, 2, 1: first below 2.8 is d.x = 4, optimum 3.
        let y = [0.0, 30.0, 50.0, 60.0, 62.0, 63.0];
        assert_eq!(optimum(&y, 2.8), 3);
        // A first slope already below δ gives max(0, 1) = 1.
        assert_eq!(optimum(&[0.0, 1.0, 2.0], 2.8), 1);
        // No slope below δ: n.
        assert_eq!(optimum(&[0.0, 10.0, 20.0, 30.0], 2.8), 3);
        // Exactly δ is not below it.
        assert_eq!(optimum(&[0.0, 2.8, 5.6, 5.7], 2.8), 2);
    }

    #[test]
    fn top_values_per_part() {
        assert_eq!(top_n(&[Some(30.43), Some(4.23)], 4), vec![30.43, 4.23]);
        assert_eq!(top_n(&[Some(1.0), None, Some(3.0), Some(2.0)], 2), vec![3.0, 2.0]);
        assert!(top_n(&[], 3).is_empty());
    }

    #[test]
    fn timing_splits_pre_epi_post() {
        let x = some(&[1.0, 2.0, 1.0, 20.0, 40.0, 30.0, 10.0, 2.0, 1.0, 1.0]);
        let t = timing(&x, 2, 2.8);
        assert!(t.start >= 3 && t.end <= 8, "{t:?}");
        assert_eq!(t.duration(), t.end - t.start + 1);
        assert_eq!(t.epi.first(), Some(&40.0));
        assert_eq!(t.pre.len().min(2), t.pre.len());
        // Pre values come only from before the start, post from after the end.
        let pre_max = x[..t.start - 1].iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        assert_eq!(t.pre.first().copied().unwrap_or(0.0), pre_max);
    }
}
