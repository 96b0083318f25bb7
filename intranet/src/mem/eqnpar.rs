//! Type 3 of MEM, `iconfianza.percentil.eqnpar`: the median with a
//! two-sided confidence interval as `EnvStats::eqnpar(ci.method =
//! "interpolate")` computes it (Hettmansperger–Sheather interpolation with
//! Nyblom's λ), falling back to `ci.method = "normal.approx"`.
//!
//! ```text
//!  x (NAs dropped) ─ 0 distinct ─▶ NA      1 distinct ─▶ (v, v, v)
//!   └─ sort ─▶ exact ranks (qbinom ± 2, coverage ≥ level, closest)
//!        ─▶ shrink to the "under" ranks while coverage stays ≥ level
//!        ─▶ interpolate between over/under order statistics with nyblom λ
//!   (error: max coverage < level, or ranks 1 apart) ─▶ normal.approx ranks
//! ```

use super::stats::{pbinom, qbinom, qt, quantile7};

/// (lower, median, upper).
pub type MedianCi = (f64, f64, f64);

/// Nyblom (1992) λ for rank `r` of `n` at quantile `p` and level `beta`.
pub fn nyblom_lambda(beta: f64, p: f64, r: i64, n: i64) -> f64 {
    let pi_r = pbinom(r - 1, n, p);
    let pi_r1 = pbinom(r, n, p);
    1.0 / (1.0 + (r as f64 * (1.0 - p) * (pi_r1 - beta)) / ((n - r) as f64 * p * (beta - pi_r)))
}

fn coverage(l: i64, u: i64, n: i64, p: f64) -> f64 {
    pbinom(u - 1, n, p) - pbinom(l - 1, n, p)
}

/// `ci.qnpar.exact(two-sided, min.coverage = TRUE)`: the limit ranks.
pub fn exact_ranks(n: i64, p: f64, level: f64) -> Option<(i64, i64)> {
    if coverage(1, n, n, p) < level {
        return None;
    }
    let ao2 = (1.0 - level) / 2.0;
    let l0 = qbinom(ao2, n, p) + 1;
    let u0 = qbinom(1.0 - ao2, n, p);
    let mut lv: Vec<i64> = Vec::new();
    for l in (l0 - 2..=l0 + 2).filter(|&l| l >= 1 && l < n) {
        if !lv.contains(&l) {
            lv.push(l);
        }
    }
    let mut uv: Vec<i64> = Vec::new();
    for u in (u0 - 2..=u0 + 2).filter(|&u| u > 1 && u <= n) {
        if !uv.contains(&u) {
            uv.push(u);
        }
    }
    // expand.grid order: the lower rank varies fastest.
    let mut best: Option<((i64, i64), f64)> = None;
    for &u in &uv {
        for &l in &lv {
            if l >= u {
                continue;
            }
            let c = coverage(l, u, n, p);
            if c < level {
                continue;
            }
            let d = (c - level).abs();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some(((l, u), d));
            }
        }
    }
    best.map(|(r, _)| r)
}

/// `ci.qnpar.interpolate(two-sided)` on sorted `x`; `None` where EnvStats stops with an error.
pub fn interpolate(x: &[f64], p: f64, level: f64) -> Option<(f64, f64)> {
    let n = x.len() as i64;
    let (mut over_l, mut over_u) = exact_ranks(n, p, level)?;
    if over_u - over_l == 1 {
        return None;
    }
    let (mut under_l, mut under_u) = (over_l + 1, over_u - 1);
    while coverage(under_l, under_u, n, p) >= level {
        (over_l, over_u) = (under_l, under_u);
        (under_l, under_u) = (over_l + 1, over_u - 1);
        if under_u - under_l < 1 {
            return None;
        }
    }
    let ao2 = (1.0 - level) / 2.0;
    let ll = nyblom_lambda(ao2, p, over_l, n);
    let lu = nyblom_lambda(1.0 - ao2, p, under_u, n);
    let at = |r: i64| usize::try_from(r - 1).ok().and_then(|i| x.get(i).copied());
    let lcl = (1.0 - ll) * at(over_l)? + ll * at(under_l)?;
    let ucl = (1.0 - lu) * at(under_u)? + lu * at(over_u)?;
    Some((lcl, ucl))
}

/// `ci.qnpar.normal.approx(two-sided)` on sorted `x` (t with n − 1 df, as EnvStats' default).
pub fn normal_approx(x: &[f64], p: f64, level: f64) -> Option<(f64, f64)> {
    let n = x.len() as i64;
    let nf = n as f64;
    let alpha = 1.0 - level;
    let theta = nf * p;
    let sdv = (nf * p * (1.0 - p)).sqrt();
    let hw = qt(1.0 - alpha / 2.0, nf - 1.0)? * sdv;
    let (v1, v2) = ((theta - hw).floor() as i64, (theta + hw).ceil() as i64);
    let mut l = v1.max(1);
    let mut u = v2.min(n);
    if u < n && (pbinom(u, n, p) - pbinom(l - 1, n, p)) <= level {
        u += 1;
    }
    if l > 1 && (pbinom(u - 1, n, p) - pbinom(l - 2, n, p)) <= level {
        l -= 1;
    }
    let at = |r: i64| usize::try_from(r - 1).ok().and_then(|i| x.get(i).copied());
    Some((at(l)?, at(u)?))
}

/// `iconfianza.percentil.eqnpar(x, 0.5, level, colas = 2)`: (lower, median, upper).
pub fn median_ci(values: &[f64], level: f64) -> Option<MedianCi> {
    let mut x: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    x.sort_by(f64::total_cmp);
    let first = *x.first()?;
    let mut distinct = x.clone();
    distinct.dedup();
    if distinct.len() == 1 {
        return Some((first, first, first));
    }
    let med = quantile7(&x, 0.5)?;
    let (lo, hi) = interpolate(&x, 0.5, level).or_else(|| normal_approx(&x, 0.5, level))?;
    Some((lo, med, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ranks_for_ten() {
        // EnvStats' example: n = 10 gives ranks 2 and 9 (coverage 97.85 %).
        assert_eq!(exact_ranks(10, 0.5, 0.95), Some((2, 9)));
        assert_eq!(exact_ranks(5, 0.5, 0.95), None, "max coverage 0.9375 < 0.95");
        assert_eq!(exact_ranks(6, 0.5, 0.95), Some((1, 6)));
    }

    #[test]
    fn interpolation_between_order_statistics() {
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let (lo, hi) = interpolate(&x, 0.5, 0.95).unwrap();
        // Over ranks (2, 9), under ranks (3, 8), as EnvStats' example prints.
        let ll = nyblom_lambda(0.025, 0.5, 2, 10);
        let lu = nyblom_lambda(0.975, 0.5, 8, 10);
        assert!((lo - ((1.0 - ll) * 2.0 + ll * 3.0)).abs() < 1e-14);
        assert!((hi - ((1.0 - lu) * 8.0 + lu * 9.0)).abs() < 1e-14);
        assert!(lo > 2.0 && lo < 3.0 && hi > 8.0 && hi < 9.0);
        // By symmetry of p = ½ the interval is symmetric around 5.5.
        assert!((lo + hi - 11.0).abs() < 1e-12);
        // n = 6: ranks (1, 6) and under (2, 5) has coverage 0.78 < 0.95.
        assert!(interpolate(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.5, 0.95).is_some());
    }

    #[test]
    fn nyblom_lambda_by_hand() {
        // r = 2, n = 10: π_r = 11/1024, π_{r+1} = 56/1024.
        let (a, b) = (11.0 / 1024.0, 56.0 / 1024.0);
        let want = 1.0 / (1.0 + (2.0 * 0.5 * (b - 0.025)) / (8.0 * 0.5 * (0.025 - a)));
        assert!((nyblom_lambda(0.025, 0.5, 2, 10) - want).abs() < 1e-15);
    }

    #[test]
    fn five_seasons_fall_back_to_normal_approx() {
        let x = [9.0, 11.0, 10.0, 13.0, 8.0];
        assert_eq!(interpolate(&[8.0, 9.0, 10.0, 11.0, 13.0], 0.5, 0.95), None);
        // theta 2.5, hw = qt(.975, 4)·√1.25 = 3.104: ranks floor(−0.6) → 1, ceil(5.6) → 5.
        assert_eq!(median_ci(&x, 0.95), Some((8.0, 10.0, 13.0)));
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(median_ci(&[], 0.95), None);
        assert_eq!(median_ci(&[4.0, 4.0, 4.0], 0.95), Some((4.0, 4.0, 4.0)));
        assert_eq!(median_ci(&[f64::NAN, 7.0], 0.95), Some((7.0, 7.0, 7.0)));
        // Two distinct values: interpolation is impossible, normal.approx takes ranks (1, 2).
        assert_eq!(median_ci(&[2.0, 1.0], 0.95), Some((1.0, 1.5, 2.0)));
    }

    #[test]
    fn eight_values() {
        // n = 8: ranks (1, 7) and (2, 8) both cover 246/256; expand.grid order picks (1, 7).
        // Under (2, 6) covers 210/256 < 0.95: interpolate between them.
        assert_eq!(exact_ranks(8, 0.5, 0.95), Some((1, 7)));
        let x: Vec<f64> = [10.0, 13.0, 11.0, 9.0, 11.0, 9.0, 11.0, 11.0].to_vec();
        let (lo, med, hi) = median_ci(&x, 0.95).unwrap();
        assert_eq!(med, 11.0);
        // Sorted 9 9 10 11 11 11 11 13: x1 = x2 = 9 and x6 = x7 = 11.
        assert!((lo - 9.0).abs() < 1e-12, "{lo}");
        assert!((hi - 11.0).abs() < 1e-12, "{hi}");
        let y: Vec<f64> = (1..=8).map(f64::from).collect();
        let (lo, _, hi) = median_ci(&y, 0.95).unwrap();
        // As EnvStats: λ for the upper limit exceeds 1 with these asymmetric ranks.
        let lu = nyblom_lambda(0.975, 0.5, 6, 8);
        assert!(lu > 1.0);
        assert!((hi - ((1.0 - lu) * 6.0 + lu * 7.0)).abs() < 1e-12, "{hi}");
        let ll = nyblom_lambda(0.025, 0.5, 1, 8);
        assert!((lo - ((1.0 - ll) * 1.0 + ll * 2.0)).abs() < 1e-12, "{lo}");
    }
}
