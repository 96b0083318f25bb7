//! Per-session replay protection (PROTOCOL.md §2 step 6) and the bounded
//! table of sessions the receiver has heard.
//!
//! ```text
//!  (session, number) ─▶ Sessions (≤ 16, least recently heard evicted)
//!                        └ Window: highest number + 65,536-bit bitmap behind it
//!                          new > highest: slide; within: bit clear? set : replay; older: replay
//! ```

use std::collections::HashMap;
use std::time::Instant;

/// Numbers remembered behind the highest.
pub const WINDOW: u64 = 65_536;
const WORDS: usize = (WINDOW / 64) as usize;
/// Sessions tracked at once.
pub const MAX_SESSIONS: usize = 16;

/// A sliding replay window.
#[derive(Clone, Debug)]
pub struct Window {
    highest: u64,
    bits: Box<[u64; WORDS]>,
}

impl Default for Window {
    fn default() -> Self {
        Window { highest: 0, bits: Box::new([0; WORDS]) }
    }
}

impl Window {
    fn bit(&mut self, n: u64) -> (&mut u64, u64) {
        let i = (n % WINDOW) as usize;
        let word = self.bits.get_mut(i / 64);
        // i / 64 < WORDS always; the fallback keeps this total without a panic
        match word {
            Some(w) => (w, 1u64 << (i % 64)),
            None => (&mut self.highest, 0),
        }
    }

    /// True if `n` is new (and records it); false for a replay or a number
    /// older than the window.
    pub fn accept(&mut self, n: u64) -> bool {
        if n == 0 {
            return false;
        }
        if n > self.highest {
            let shift = n - self.highest;
            if shift >= WINDOW {
                self.bits.fill(0);
            } else {
                for m in self.highest + 1..=n {
                    let (w, b) = self.bit(m);
                    *w &= !b;
                }
            }
            self.highest = n;
            let (w, b) = self.bit(n);
            *w |= b;
            return true;
        }
        if self.highest - n >= WINDOW {
            return false;
        }
        let (w, b) = self.bit(n);
        if *w & b != 0 {
            return false;
        }
        *w |= b;
        true
    }
}

/// What the receiver knows of one sender session.
#[derive(Debug)]
pub struct Session {
    pub window: Window,
    pub last_seen: Instant,
    /// From its heartbeats: `Some(false)` drops its data.
    pub settings_ok: Option<bool>,
}

/// The sessions heard recently.
#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<u64, Session>,
}

impl Sessions {
    /// Checks (session, number) against the replay window, creating the
    /// session if new; `None` for a replay, `Some(new_session)` otherwise.
    pub fn accept(&mut self, session: u64, number: u64, now: Instant) -> Option<bool> {
        let mut created = false;
        if !self.map.contains_key(&session) {
            if self.map.len() >= MAX_SESSIONS
                && let Some(old) = self.map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
            {
                self.map.remove(&old);
            }
            self.map.insert(session, Session { window: Window::default(), last_seen: now, settings_ok: None });
            created = true;
        }
        let s = self.map.get_mut(&session)?;
        if !s.window.accept(number) {
            return None;
        }
        s.last_seen = now;
        Some(created)
    }

    /// The session, if tracked.
    pub fn get_mut(&mut self, session: u64) -> Option<&mut Session> {
        self.map.get_mut(&session)
    }

    /// Whether data of this session is to be dropped for a settings mismatch.
    pub fn mismatched(&self, session: u64) -> bool {
        self.map.get(&session).is_some_and(|s| s.settings_ok == Some(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rejects_replays_and_old_numbers() {
        let mut w = Window::default();
        assert!(!w.accept(0));
        assert!(w.accept(1));
        assert!(!w.accept(1));
        assert!(w.accept(3));
        assert!(w.accept(2), "reordered, within the window");
        assert!(!w.accept(2));
        assert!(w.accept(100_000));
        assert!(!w.accept(3), "behind the window");
        assert!(w.accept(100_000 - 65_535));
        assert!(!w.accept(100_000 - 65_536));
        assert!(w.accept(100_001));
        assert!(!w.accept(100_000));
        // a big jump clears everything
        assert!(w.accept(10_000_000));
        assert!(w.accept(10_000_000 - 5));
    }

    #[test]
    fn sessions_are_bounded() {
        let mut s = Sessions::default();
        let t = Instant::now();
        for i in 0..40u64 {
            assert_eq!(s.accept(i + 1, 1, t + std::time::Duration::from_millis(i)), Some(true));
        }
        assert_eq!(s.map.len(), MAX_SESSIONS);
        assert_eq!(s.accept(40, 1, t), None, "replay in a kept session");
        assert_eq!(s.accept(40, 2, t), Some(false));
    }
}
