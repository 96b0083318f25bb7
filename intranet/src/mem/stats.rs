//! The numeric building blocks of MEM, each as R computes it: `qnorm`
//! (Wichura's AS241, the algorithm of R's `qnorm`), `qt` and `pt`, `pbinom`
//! and `qbinom`, correctly rounded sums (R adds in long double), `mean`,
//! `sd` (n − 1), type-7 quantiles and `round` with halves to even.
//!
//! ```text
//!  fsum ─▶ mean ─▶ sd            quantile7 ─▶ median
//!  qnorm (AS241)   pt ─(Newton + bisection)─▶ qt     pbinom ─▶ qbinom
//! ```

/// R's `round(x)`: halves to even (2.5 → 2, 3.5 → 4).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// The correctly rounded sum of `xs` (Shewchuk's exact partials, as
/// Python's `math.fsum`). R adds in long double, which for the short series
/// of MEM is the exact sum rounded once; ties between window sums therefore
/// compare as R compares them.
pub fn fsum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in xs {
        let mut kept = 0;
        for j in 0..partials.len() {
            let Some(&p) = partials.get(j) else { break };
            let (mut hi, mut lo) = (x, p);
            if hi.abs() < lo.abs() {
                std::mem::swap(&mut hi, &mut lo);
            }
            let s = hi + lo;
            let err = lo - (s - hi);
            if err != 0.0 {
                if let Some(slot) = partials.get_mut(kept) {
                    *slot = err;
                }
                kept += 1;
            }
            x = s;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    // Sum the partials from the top, with the half-way correction of fsum.
    let mut n = partials.len();
    let mut hi = 0.0;
    if n > 0 {
        n -= 1;
        hi = partials.get(n).copied().unwrap_or(0.0);
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = partials.get(n).copied().unwrap_or(0.0);
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 {
            let below = partials.get(n - 1).copied().unwrap_or(0.0);
            if (lo < 0.0 && below < 0.0) || (lo > 0.0 && below > 0.0) {
                let y = lo * 2.0;
                let x = hi + y;
                let yr = x - hi;
                if y == yr {
                    hi = x;
                }
            }
        }
    }
    hi
}

/// Arithmetic mean as R's `mean` (long-double sum, then a correction pass).
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let m = fsum(xs.iter().copied()) / n;
    let t = fsum(xs.iter().map(|x| x - m));
    Some(m + t / n)
}

/// Sample standard deviation (divisor n − 1), as R's `sd`; `None` below 2 values.
pub fn sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss = fsum(xs.iter().map(|x| (x - m) * (x - m)));
    Some((ss / (xs.len() as f64 - 1.0)).sqrt())
}

/// R's `quantile(x, p, type = 7)`.
pub fn quantile7(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() as f64 - 1.0) * p;
    let lo = h.floor();
    let i = lo as usize;
    let a = *v.get(i)?;
    let b = v.get(i + 1).copied().unwrap_or(a);
    // R: x[lo] + (h - lo) * (x[hi] - x[lo]), with a fuzz of 4 eps on h - lo.
    let frac = h - lo;
    if frac.abs() < 4.0 * f64::EPSILON { Some(a) } else { Some(a + frac * (b - a)) }
}

/// The median (type 7).
pub fn median(xs: &[f64]) -> Option<f64> {
    quantile7(xs, 0.5)
}

/// Coefficients of AS241 (lowest order first), exactly as in R's `qnorm.c`.
#[allow(clippy::excessive_precision)]
mod as241 {
    pub const A: [f64; 8] = [
        3.387132872796366608,
        133.14166789178437745,
        1971.5909503065514427,
        13731.693765509461125,
        45921.953931549871457,
        67265.770927008700853,
        33430.575583588128105,
        2509.0809287301226727,
    ];
    pub const B: [f64; 8] = [
        1.0,
        42.313330701600911252,
        687.1870074920579083,
        5394.1960214247511077,
        21213.794301586595867,
        39307.89580009271061,
        28729.085735721942674,
        5226.495278852545925,
    ];
    pub const C: [f64; 8] = [
        1.42343711074968357734,
        4.6303378461565452959,
        5.7694972214606914055,
        3.64784832476320460504,
        1.27045825245236838258,
        0.24178072517745061177,
        0.0227238449892691845833,
        7.7454501427834140764e-4,
    ];
    pub const D: [f64; 8] = [
        1.0,
        2.05319162663775882187,
        1.6763848301838038494,
        0.68976733498510000455,
        0.14810397642748007459,
        0.0151986665636164571966,
        5.475938084995344946e-4,
        1.05075007164441684324e-9,
    ];
    pub const E: [f64; 8] = [
        6.6579046435011037772,
        5.4637849111641143699,
        1.7848265399172913358,
        0.29656057182850489123,
        0.026532189526576123093,
        0.0012426609473880784386,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ];
    pub const F: [f64; 8] = [
        1.0,
        0.59983220655588793769,
        0.13692988092273580531,
        0.0148753612908506148525,
        7.868691311456132591e-4,
        1.8463183175100546818e-5,
        1.4215117583164458887e-7,
        2.04426310338993978564e-15,
    ];
}

/// Horner evaluation, highest coefficient first, as R writes it.
fn horner(c: &[f64; 8], r: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * r + k)
}

/// The standard normal quantile, Wichura (1988) AS241 `PPND16`, the
/// algorithm of R's `qnorm`; `None` outside (0, 1).
pub fn qnorm(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return Some(q * horner(&as241::A, r) / horner(&as241::B, r));
    }
    let r0 = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r0.ln()).sqrt();
    let val = if r <= 5.0 {
        let r = r - 1.6;
        horner(&as241::C, r) / horner(&as241::D, r)
    } else {
        let r = r - 5.0;
        horner(&as241::E, r) / horner(&as241::F, r)
    };
    Some(if q < 0.0 { -val } else { val })
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta I_x(a, b) (continued fraction, Lentz).
fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let mut f = 1.0;
    let mut c = 1.0;
    let mut d = 0.0;
    for i in 0..=400 {
        let m = f64::from(i / 2);
        let num = if i == 0 {
            1.0
        } else if i % 2 == 0 {
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        } else {
            -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        };
        d = 1.0 + num * d;
        if d.abs() < tiny {
            d = tiny;
        }
        d = 1.0 / d;
        c = 1.0 + num / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let cd = c * d;
        f *= cd;
        if (1.0 - cd).abs() < 1e-16 {
            break;
        }
    }
    front * (f - 1.0) / a
}

/// Student's t distribution function P(T ≤ t) with `df` degrees of freedom.
pub fn pt(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(x, df / 2.0, 0.5);
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// Student's t quantile (solves `pt` by bisection then Newton-free refinement
/// to full precision); `None` outside (0, 1) or for df ≤ 0.
pub fn qt(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) || df <= 0.0 {
        return None;
    }
    let (mut lo, mut hi) = (-1.0, 1.0);
    while pt(lo, df) > p {
        lo *= 2.0;
        if lo < -1e12 {
            return None;
        }
    }
    while pt(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return None;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if pt(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Binomial distribution function P(X ≤ k), X ~ Bin(n, p). Exact for p = ½
/// and n ≤ 50 (every term is an integer times 2⁻ⁿ).
pub fn pbinom(k: i64, n: i64, p: f64) -> f64 {
    if k < 0 {
        return 0.0;
    }
    if k >= n {
        return 1.0;
    }
    let q = 1.0 - p;
    let mut pmf = q.powi(n as i32);
    let mut acc = 0.0;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        terms.push(pmf);
        pmf = pmf * (n - i) as f64 / (i + 1) as f64 * p / q;
    }
    for t in terms {
        acc += t;
    }
    acc.min(1.0)
}

/// Binomial quantile as R's `qbinom`: the smallest k with P(X ≤ k) ≥ q
/// (with R's fuzz of 64 ε).
pub fn qbinom(q: f64, n: i64, p: f64) -> i64 {
    let target = q * (1.0 - 64.0 * f64::EPSILON);
    (0..=n).find(|&k| pbinom(k, n, p) >= target).unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qnorm_matches_r() {
        assert_eq!(qnorm(0.95), Some(1.6448536269514715));
        assert_eq!(qnorm(0.975), Some(1.9599639845400536));
        assert!((qnorm(0.4).unwrap() + 0.2533471031357997).abs() < 1e-16);
        assert!((qnorm(0.9).unwrap() - 1.2815515655446004).abs() < 1e-15);
        assert!((qnorm(1e-10).unwrap() + 6.361340902404056).abs() < 1e-13);
        assert!((qnorm(1e-300).unwrap() + 37.0471).abs() < 1e-3);
        assert_eq!(qnorm(0.5), Some(0.0));
        assert_eq!(qnorm(0.0), None);
        assert_eq!(qnorm(1.0), None);
    }

    #[test]
    fn round_is_half_even() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(10.5), 10.0);
        assert_eq!(round_half_even(30.0 / 12.0), 2.0);
        assert_eq!(round_half_even(7.5), 8.0);
        assert_eq!(round_half_even(-0.5), -0.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn fsum_is_correctly_rounded() {
        assert_eq!(fsum([0.1, 0.2, 0.3]), 0.6);
        assert_eq!(fsum([1e100, 1.0, -1e100, 1.0]), 2.0);
        assert_eq!(fsum([]), 0.0);
        assert_eq!(fsum([0.1; 10]), 1.0);
        // As R's long-double sum: the exact sum, rounded once.
        assert_eq!(fsum([0.1, 0.2]), 0.30000000000000004);
        assert_eq!(fsum([1e16, 1.0, 1.0]), 1e16 + 2.0);
        assert_eq!(fsum([1.0, 1e16, -1e16]), 1.0);
    }

    #[test]
    fn mean_sd_quantile() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), Some(5.0));
        assert!((sd(&x).unwrap() - 2.138089935299395).abs() < 1e-15);
        assert_eq!(sd(&[1.0]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(quantile7(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.9), Some(4.6));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn t_distribution() {
        // R: qt(0.975, 4) = 2.776445105197793, qt(0.975, 9) = 2.262157162798205
        assert!((qt(0.975, 4.0).unwrap() - 2.776445105197793).abs() < 1e-12);
        assert!((qt(0.975, 9.0).unwrap() - 2.262157162798205).abs() < 1e-12);
        assert!((qt(0.025, 1.0).unwrap() + 12.706204736174698).abs() < 1e-9);
        assert!((pt(0.0, 5.0) - 0.5).abs() < 1e-15);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn binomial() {
        assert_eq!(pbinom(0, 5, 0.5), 1.0 / 32.0);
        assert_eq!(pbinom(4, 5, 0.5), 31.0 / 32.0);
        assert_eq!(pbinom(5, 5, 0.5), 1.0);
        assert_eq!(pbinom(-1, 5, 0.5), 0.0);
        assert_eq!(pbinom(2, 4, 0.5), 11.0 / 16.0);
        // R: qbinom(0.025, 10, 0.5) = 2, qbinom(0.975, 10, 0.5) = 8
        assert_eq!(qbinom(0.025, 10, 0.5), 2);
        assert_eq!(qbinom(0.975, 10, 0.5), 8);
        assert_eq!(qbinom(0.5, 10, 0.5), 5);
    }
}
