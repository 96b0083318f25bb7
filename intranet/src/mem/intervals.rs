//! The interval types MEM uses (`R/iconfianza*.R` of the R package `mem`):
//! type 5 (arithmetic mean ± z·SD, the epidemic thresholds), type 6 (the
//! same on the log scale, the intensity thresholds) and type 2 (geometric
//! mean ± z·SD/√k, the typical curve). Each returns (lower, centre, upper).
//!
//! ```text
//!  z = qnorm(1 − (1 − level) / tails)
//!  type 5:  mean(x) ± z·sd(x)
//!  type 6:  exp(mean(L) ± z·sd(L)),     L = log x   (log(x+1) and −1 after, when any x = 0)
//!  type 2:  exp(mean(L) ± z·sd(L)/√k),  same zero rule
//! ```

use super::stats::{mean, qnorm, sd};

/// (lower, centre, upper); a side is `None` where R gives NA (fewer than 2 values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lower: Option<f64>,
    pub centre: Option<f64>,
    pub upper: Option<f64>,
}

impl Interval {
    const NA: Interval = Interval { lower: None, centre: None, upper: None };

    fn map(self, f: impl Fn(f64) -> f64) -> Interval {
        Interval { lower: self.lower.map(&f), centre: self.centre.map(&f), upper: self.upper.map(&f) }
    }
}

/// The z of `level` and `tails`, computed as R does: `qnorm(1 - (1 - level) / tails)`.
pub fn z_of(level: f64, tails: f64) -> Option<f64> {
    qnorm(1.0 - (1.0 - level) / tails)
}

fn finite(xs: &[f64]) -> Vec<f64> {
    xs.iter().copied().filter(|x| x.is_finite()).collect()
}

/// Mean ± z·scale, where scale is the SD (`per_mean` false) or the SE.
fn arithmetic(xs: &[f64], level: f64, tails: f64, per_mean: bool) -> Interval {
    let x = finite(xs);
    let Some(m) = mean(&x) else { return Interval::NA };
    let (Some(z), Some(s)) = (z_of(level, tails), sd(&x)) else {
        return Interval { lower: None, centre: Some(m), upper: None };
    };
    let scale = if per_mean { (s * s / x.len() as f64).sqrt() } else { s };
    Interval { lower: Some(m - z * scale), centre: Some(m), upper: Some(m + z * scale) }
}

/// Type 5, `iconfianza.x`: mean ± z·SD.
pub fn point_x(xs: &[f64], level: f64, tails: f64) -> Interval {
    arithmetic(xs, level, tails, false)
}

/// The log-scale transform with the zero rule: `(logs, shift)` where shift
/// is 1 when any value is 0.
fn logs(xs: &[f64]) -> (Vec<f64>, f64) {
    let shift = if xs.contains(&0.0) { 1.0 } else { 0.0 };
    (xs.iter().map(|x| (x + shift).ln()).collect(), shift)
}

/// Type 6, `iconfianza.logx`: exp(mean(L) ± z·SD(L)).
pub fn point_logx(xs: &[f64], level: f64, tails: f64) -> Interval {
    if xs.is_empty() {
        return Interval::NA;
    }
    let (l, shift) = logs(xs);
    point_x(&l, level, tails).map(|v| v.exp() - shift)
}

/// Type 2, `iconfianza.geometrica`: exp(mean(L) ± z·SD(L)/√k).
pub fn geometric(xs: &[f64], level: f64, tails: f64) -> Interval {
    if xs.is_empty() {
        return Interval::NA;
    }
    let (l, shift) = logs(xs);
    arithmetic(&l, level, tails, true).map(|v| v.exp() - shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type5_is_mean_plus_z_sd() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let i = point_x(&x, 0.95, 1.0);
        let s = (5.0f64 / 3.0).sqrt();
        assert_eq!(i.centre, Some(2.5));
        assert!((i.upper.unwrap() - (2.5 + 1.6448536269514715 * s)).abs() < 1e-14);
        assert!((i.lower.unwrap() - (2.5 - 1.6448536269514715 * s)).abs() < 1e-14);
        assert_eq!(point_x(&[], 0.95, 1.0), Interval::NA);
        assert_eq!(point_x(&[3.0], 0.95, 1.0).upper, None);
    }

    #[test]
    fn type6_on_the_log_scale_with_the_zero_rule() {
        let x = [10.0, 100.0, 1000.0];
        let i = point_logx(&x, 0.40, 1.0);
        let l = [10f64.ln(), 100f64.ln(), 1000f64.ln()];
        let (m, s) = (mean(&l).unwrap(), sd(&l).unwrap());
        assert!((i.centre.unwrap() - 100.0).abs() < 1e-12);
        let z = qnorm(0.4).unwrap();
        assert!(z < 0.0);
        assert!((i.upper.unwrap() - (m + z * s).exp()).abs() < 1e-12);
        assert!(i.upper.unwrap() < 100.0, "the 40% level is below the geometric mean");
        // A zero: log(x + 1), then − 1.
        let y = [0.0, 9.0, 99.0];
        let j = point_logx(&y, 0.9, 1.0);
        let l = [1f64.ln(), 10f64.ln(), 100f64.ln()];
        let (m, s) = (mean(&l).unwrap(), sd(&l).unwrap());
        assert!((j.upper.unwrap() - ((m + 1.2815515655446004 * s).exp() - 1.0)).abs() < 1e-10);
    }

    #[test]
    fn type2_uses_the_standard_error() {
        let x = [2.0, 8.0];
        let g = geometric(&x, 0.95, 2.0);
        assert!((g.centre.unwrap() - 4.0).abs() < 1e-14);
        let l = [2f64.ln(), 8f64.ln()];
        let se = sd(&l).unwrap() / 2f64.sqrt();
        assert!((g.upper.unwrap() - (4f64.ln() + 1.959963984540054 * se).exp()).abs() < 1e-12);
        // Zero rule: lower bound may go below 0 after subtracting 1.
        let z = geometric(&[0.0, 0.0, 3.0], 0.95, 2.0);
        assert!(z.lower.unwrap() < 0.0);
        // One value: centre only.
        let one = geometric(&[5.0], 0.95, 2.0);
        assert_eq!((one.lower, one.upper), (None, None));
        assert!((one.centre.unwrap() - 5.0).abs() < 1e-14);
    }
}
