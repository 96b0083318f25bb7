//! Deterministic random streams: every part of the synthetic world draws from
//! its own ChaCha8 stream keyed by `(seed, tag, keys…)`, so that a hospital's
//! day, an encounter or a file's planted errors come out the same whatever
//! else is generated (a `--hospitals 3` world is a prefix of `--hospitals 5`,
//! day D's upload does not depend on which other days are generated).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator's random stream.
pub type R = ChaCha8Rng;

/// Stream tags (the first key), one per kind of thing drawn.
pub mod tag {
    pub const HOSPITAL: u64 = 1;
    pub const DAY: u64 = 2;
    pub const ENCOUNTER: u64 = 3;
    pub const PLANT: u64 = 4;
    pub const STOCK: u64 = 5;
    pub const VISITS: u64 = 6;
    pub const LAYOUT: u64 = 7;
    pub const JLID: u64 = 8;
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit hash of `(seed, keys…)` (SplitMix64 chained).
pub fn hash(seed: u64, keys: &[u64]) -> u64 {
    let mut st = seed;
    let mut h = splitmix(&mut st);
    for k in keys {
        st ^= k.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ h;
        h = splitmix(&mut st);
    }
    h
}

/// The stream of `(seed, keys…)`.
pub fn stream(seed: u64, keys: &[u64]) -> R {
    let mut st = hash(seed, keys);
    let mut s = [0u8; 32];
    for chunk in s.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix(&mut st).to_le_bytes());
    }
    R::from_seed(s)
}

/// A key for a date (days since 1970-01-01).
pub fn day_key(d: chrono::NaiveDate) -> u64 {
    u64::try_from((d - chrono::NaiveDate::default()).num_days()).unwrap_or(0)
}

/// One element of `items`, uniformly (the default for an empty slice).
pub fn pick<T: Copy + Default>(r: &mut R, items: &[T]) -> T {
    if items.is_empty() {
        return T::default();
    }
    items.get(r.random_range(0..items.len())).copied().unwrap_or_default()
}

/// A reference to one element of `items`, uniformly (`None` for an empty slice).
pub fn pick_ref<'a, T>(r: &mut R, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get(r.random_range(0..items.len()))
}

/// One element of `items` by weight (the default for an empty slice).
pub fn weighted<T: Copy + Default>(r: &mut R, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w.max(0.0)).sum();
    if total <= 0.0 {
        return items.first().map(|(t, _)| *t).unwrap_or_default();
    }
    let mut x = r.random::<f64>() * total;
    for (t, w) in items {
        x -= w.max(0.0);
        if x < 0.0 {
            return *t;
        }
    }
    items.last().map(|(t, _)| *t).unwrap_or_default()
}

/// A standard normal draw (Box–Muller).
pub fn normal(r: &mut R) -> f64 {
    let u1: f64 = r.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = r.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw with mean `lambda` (Knuth below 30, normal approximation above).
pub fn poisson(r: &mut R, lambda: f64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda < 30.0 {
        let l = (-lambda).exp();
        let mut k = 0u64;
        let mut p = 1.0;
        loop {
            p *= r.random::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    let x = (lambda + lambda.sqrt() * normal(r)).round();
    if x <= 0.0 {
        0
    } else {
        // Bounded by the caller's lambda; far below u64::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = x as u64;
        n
    }
}

/// A uniform integer in `lo..=hi` (lo when hi < lo).
pub fn between(r: &mut R, lo: i64, hi: i64) -> i64 {
    if hi <= lo { lo } else { r.random_range(lo..=hi) }
}

/// `true` with probability `p` (clamped to 0…1).
pub fn chance(r: &mut R, p: f64) -> bool {
    r.random::<f64>() < p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: u64 = stream(42, &[1, 2]).random();
        let b: u64 = stream(42, &[1, 2]).random();
        let c: u64 = stream(42, &[2, 1]).random();
        let d: u64 = stream(43, &[1, 2]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn poisson_mean() {
        let mut r = stream(1, &[]);
        for lambda in [0.5, 7.0, 120.0] {
            let n = 4000;
            let sum: u64 = (0..n).map(|_| poisson(&mut r, lambda)).sum();
            let mean = sum as f64 / f64::from(n);
            assert!((mean - lambda).abs() < lambda.sqrt() * 0.2 + 0.1, "{lambda}: {mean}");
        }
    }

    #[test]
    fn weighted_respects_weights() {
        let mut r = stream(2, &[]);
        let items = [("a", 1.0), ("b", 0.0), ("c", 3.0)];
        let mut counts = [0; 3];
        for _ in 0..4000 {
            match weighted(&mut r, &items) {
                "a" => counts[0] += 1,
                "b" => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0] * 2);
    }
}
