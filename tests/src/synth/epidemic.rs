//! The epidemic: a seasonal curve (cases per hospital per day peaking around
//! ISO week `peak_week`, default 3), a weekday pattern, the expected number of
//! influenza encounters of a hospital-day, the positivity of tests and the
//! virus mix (A(H3N2)/A(H1N1)pdm09 early, B/Victoria rising after the peak).

use chrono::{Datelike, NaiveDate, Weekday};

use super::hospitals::Hospital;
use super::rng::{self, R, tag, weighted};

/// Influenza encounters a day at the peak for a hospital of size 1.0, scale 1.
pub const PEAK_BASE: f64 = 150.0;

/// The epidemic's shape.
#[derive(Clone, Copy, Debug)]
pub struct Season {
    /// ISO week of the peak (1–52).
    pub peak_week: u32,
    /// Multiplier of every hospital's cases (`--scale`).
    pub scale: f64,
    /// The world's seed (decides which A subtype dominates a season).
    pub seed: u64,
}

/// What a positive test found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Virus {
    #[default]
    H1N1,
    H3N2,
    AUnsubtyped,
    H5,
    H7,
    H9,
    BVictoria,
    BYamagata,
    BUndetermined,
    AAndB,
    Untyped,
}

impl Virus {
    /// (BDLX, YX) as a subtyping test reports it.
    pub fn codes(self) -> (u8, Option<u8>) {
        match self {
            Virus::H1N1 => (1, Some(11)),
            Virus::H3N2 => (1, Some(12)),
            Virus::H5 => (1, Some(13)),
            Virus::H7 => (1, Some(14)),
            Virus::H9 => (1, Some(15)),
            Virus::AUnsubtyped => (1, Some(19)),
            Virus::BVictoria => (2, Some(21)),
            Virus::BYamagata => (2, Some(22)),
            Virus::BUndetermined => (2, Some(29)),
            Virus::AAndB => (3, None),
            Virus::Untyped => (9, None),
        }
    }

    /// Influenza A (any subtype), for the names of diagnoses.
    pub fn is_a(self) -> bool {
        matches!(self.codes().0, 1)
    }

    /// Influenza B.
    pub fn is_b(self) -> bool {
        matches!(self.codes().0, 2)
    }

    /// Avian / novel subtypes (ICD J09).
    pub fn is_novel(self) -> bool {
        matches!(self, Virus::H5 | Virus::H7 | Virus::H9)
    }

    /// How the result is written in free text: 甲型H3N2, 乙型Victoria系, …
    pub fn zh(self) -> &'static str {
        match self {
            Virus::H1N1 => "甲型H1N1",
            Virus::H3N2 => "甲型H3N2",
            Virus::AUnsubtyped => "甲型",
            Virus::H5 => "甲型H5",
            Virus::H7 => "甲型H7N9",
            Virus::H9 => "甲型H9N2",
            Virus::BVictoria => "乙型Victoria系",
            Virus::BYamagata => "乙型Yamagata系",
            Virus::BUndetermined => "乙型",
            Virus::AAndB => "甲型、乙型混合",
            Virus::Untyped => "",
        }
    }
}

impl Season {
    /// The peak nearest to `d`.
    fn nearest_peak(&self, d: NaiveDate) -> NaiveDate {
        let week = self.peak_week.clamp(1, 52);
        [d.year() - 1, d.year(), d.year() + 1]
            .into_iter()
            .filter_map(|y| NaiveDate::from_isoywd_opt(y, week, Weekday::Wed))
            .min_by_key(|p| (*p - d).num_days().abs())
            .unwrap_or(d)
    }

    /// Weeks from the nearest peak (negative before it).
    pub fn weeks_from_peak(&self, d: NaiveDate) -> f64 {
        (d - self.nearest_peak(d)).num_days() as f64 / 7.0
    }

    /// The epidemic intensity of `d`, 0.04 (off season) … 1.0 (peak).
    pub fn intensity(&self, d: NaiveDate) -> f64 {
        let t = self.weeks_from_peak(d);
        let sigma = if t < 0.0 { 3.5 } else { 4.5 };
        0.04 + 0.96 * (-(t * t) / (2.0 * sigma * sigma)).exp()
    }

    /// The weekday pattern of outpatient attendance.
    pub fn weekday_factor(d: NaiveDate) -> f64 {
        match d.weekday() {
            Weekday::Mon => 1.2,
            Weekday::Tue => 1.1,
            Weekday::Wed | Weekday::Thu => 1.0,
            Weekday::Fri => 0.95,
            Weekday::Sat => 0.85,
            Weekday::Sun => 0.8,
        }
    }

    /// Expected influenza encounters of `h` on `d`.
    pub fn expected(&self, h: &Hospital, d: NaiveDate) -> f64 {
        h.size * PEAK_BASE * self.intensity(d) * Self::weekday_factor(d) * self.scale
    }

    /// The number of encounters of `h` on `d` (deterministic per (seed, hospital, day)).
    pub fn encounters(&self, h: &Hospital, d: NaiveDate) -> u64 {
        let mut r = rng::stream(self.seed, &[tag::DAY, h.index as u64, rng::day_key(d)]);
        rng::poisson(&mut r, self.expected(h, d))
    }

    /// Share of tests that are positive on `d` (about 0.2 off-peak to 0.4 at the peak).
    pub fn positivity(&self, d: NaiveDate) -> f64 {
        0.18 + 0.22 * self.intensity(d)
    }

    /// The virus of a positive result on `d`.
    pub fn virus(&self, r: &mut R, d: NaiveDate) -> Virus {
        let t = self.weeks_from_peak(d);
        let b = 0.08 + 0.5 / (1.0 + (-(t - 2.0) / 2.0).exp());
        let season_key = rng::day_key(self.nearest_peak(d));
        let h3_share = if rng::hash(self.seed, &[tag::DAY, season_key]).is_multiple_of(2) { 0.7 } else { 0.35 };
        let a = 1.0 - b;
        weighted(
            r,
            &[
                (Virus::H3N2, a * h3_share * 0.9),
                (Virus::H1N1, a * (1.0 - h3_share) * 0.9),
                (Virus::AUnsubtyped, a * 0.09),
                (Virus::H7, a * 0.0005),
                (Virus::H9, a * 0.0005),
                (Virus::H5, a * 0.0002),
                (Virus::BVictoria, b * 0.85),
                (Virus::BYamagata, b * 0.005),
                (Virus::BUndetermined, b * 0.145),
                (Virus::AAndB, 0.006),
                (Virus::Untyped, 0.006),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn peaks_in_january() {
        let s = Season { peak_week: 3, scale: 1.0, seed: 1 };
        let peak = s.intensity(d(2027, 1, 20));
        assert!(peak > 0.95, "{peak}");
        assert!(s.intensity(d(2026, 11, 20)) < 0.3);
        assert!(s.intensity(d(2026, 7, 1)) < 0.06);
        assert!(s.intensity(d(2027, 2, 10)) > s.intensity(d(2026, 12, 1)));
        let (lo, hi) = (s.positivity(d(2026, 7, 1)), s.positivity(d(2027, 1, 20)));
        assert!((0.18..0.25).contains(&lo) && (0.35..0.41).contains(&hi), "{lo} {hi}");
    }

    #[test]
    fn subtype_codes_are_consistent() {
        let s = Season { peak_week: 3, scale: 1.0, seed: 1 };
        let mut r = rng::stream(3, &[]);
        for _ in 0..2000 {
            let v = s.virus(&mut r, d(2027, 2, 1));
            let (bdlx, yx) = v.codes();
            if let Some(y) = yx {
                assert!(matches!((y / 10, bdlx), (1, 1 | 3) | (2, 2 | 3)));
            }
        }
    }
}
