//! Gap detection (PROTOCOL.md §7 "Gaps"): what the sender announced
//! (heartbeat sent-through, manifest entries), minus what arrived, once the
//! announcement is older than the grace period; reported as ranges, and
//! journaled when they open and close.
//!
//! ```text
//!  heartbeat sent-through ─▶ steps (through, when) ─(older than grace)─▶ old_through
//!  manifest seq ─▶ listed (seq, when)
//!  gaps = [floor, old_through] ∖ received  ∪  {listed, old, not received}
//!  diff with the open set ─▶ gap.opened / gap.closed
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Sorted, disjoint, inclusive ranges.
pub type Ranges = Vec<(u64, u64)>;

/// `a ∖ b` for sorted disjoint inclusive ranges.
pub fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> Ranges {
    let mut out = Vec::new();
    let mut j = 0;
    for &(first, hi) in a {
        let mut lo = first;
        let mut gone = false;
        while let Some(&(blo, bhi)) = b.get(j) {
            if bhi < lo {
                j += 1;
                continue;
            }
            if blo > hi {
                break;
            }
            if blo > lo {
                out.push((lo, blo - 1));
            }
            if bhi >= hi {
                gone = true;
                break;
            }
            lo = bhi + 1;
            j += 1;
        }
        if !gone {
            out.push((lo, hi));
        }
    }
    out
}

/// Adds `s` to sorted ranges (merging neighbours).
fn push(r: &mut Ranges, s: u64) {
    match r.last_mut() {
        Some((_, hi)) if hi.checked_add(1) == Some(s) => *hi = s,
        Some((_, hi)) if *hi >= s => {}
        _ => r.push((s, s)),
    }
}

/// Number of sequence numbers in ranges.
pub fn count(r: &[(u64, u64)]) -> u64 {
    r.iter().map(|(l, h)| h - l + 1).sum()
}

/// The gap tracker.
#[derive(Debug)]
pub struct Gaps {
    floor: u64,
    grace: Duration,
    steps: VecDeque<(u64, Instant)>,
    old_through: u64,
    listed: BTreeMap<u64, Instant>,
    /// Everything below this (from the floor) was received.
    contiguous: u64,
    /// Gaps currently open.
    pub open: Ranges,
}

impl Gaps {
    pub fn new(floor: u64, grace: Duration) -> Self {
        Gaps {
            floor,
            grace,
            steps: VecDeque::new(),
            old_through: 0,
            listed: BTreeMap::new(),
            contiguous: floor,
            open: Vec::new(),
        }
    }

    /// A heartbeat announced everything up to `through`.
    pub fn through(&mut self, through: u64, now: Instant) {
        let top = self.steps.back().map_or(self.old_through, |s| s.0);
        if through > top {
            self.steps.push_back((through, now));
        }
    }

    /// A manifest listed `seq`.
    pub fn listed(&mut self, seq: u64, now: Instant) {
        if seq >= self.floor {
            self.listed.entry(seq).or_insert(now);
        }
    }

    /// Recomputes the gaps; returns (opened, closed) since the last call.
    pub fn update<V>(&mut self, received: &BTreeMap<u64, V>, now: Instant) -> (Ranges, Ranges) {
        while let Some(&(t, at)) = self.steps.front() {
            if now.duration_since(at) < self.grace {
                break;
            }
            self.old_through = self.old_through.max(t);
            self.steps.pop_front();
        }
        while received.contains_key(&self.contiguous) {
            self.contiguous += 1;
        }
        let mut gaps: Ranges = Vec::new();
        let mut listed_old: Vec<u64> = self
            .listed
            .iter()
            .filter(|(s, at)| now.duration_since(**at) >= self.grace && !received.contains_key(s))
            .map(|(s, _)| *s)
            .collect();
        self.listed.retain(|s, _| !received.contains_key(s));
        if self.old_through >= self.contiguous {
            let mut next = self.contiguous;
            for (&s, _) in received.range(self.contiguous..=self.old_through) {
                if s > next {
                    gaps.push((next, s - 1));
                }
                next = s + 1;
            }
            if next <= self.old_through {
                gaps.push((next, self.old_through));
            }
        }
        listed_old.retain(|s| *s > self.old_through);
        let mut extra = Vec::new();
        for s in listed_old {
            push(&mut extra, s);
        }
        gaps.extend(extra);
        let opened = subtract(&gaps, &self.open);
        let closed = subtract(&self.open, &gaps);
        self.open = gaps;
        (opened, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_subtraction() {
        assert_eq!(subtract(&[(1, 10)], &[(3, 4), (8, 20)]), vec![(1, 2), (5, 7)]);
        assert_eq!(subtract(&[(1, 10)], &[]), vec![(1, 10)]);
        assert_eq!(subtract(&[(1, 3), (5, 6)], &[(1, 6)]), vec![]);
        assert_eq!(subtract(&[(5, 6)], &[(1, 2), (9, 9)]), vec![(5, 6)]);
        assert_eq!(count(&[(1, 3), (7, 7)]), 4);
    }

    #[test]
    fn gaps_open_after_grace_and_close_on_arrival() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let mut g = Gaps::new(1, grace);
        let mut rec: BTreeMap<u64, ()> = BTreeMap::new();
        rec.insert(1, ());
        rec.insert(3, ());
        g.through(5, t0);
        assert_eq!(g.update(&rec, t0 + Duration::from_secs(1)), (vec![], vec![]));
        let (opened, closed) = g.update(&rec, t0 + grace);
        assert_eq!(opened, vec![(2, 2), (4, 5)]);
        assert!(closed.is_empty());
        rec.insert(4, ());
        g.listed(9, t0 + grace);
        let (opened, closed) = g.update(&rec, t0 + grace * 2);
        assert_eq!(opened, vec![(9, 9)]);
        assert_eq!(closed, vec![(4, 4)]);
        assert_eq!(g.open, vec![(2, 2), (5, 5), (9, 9)]);
    }
}
