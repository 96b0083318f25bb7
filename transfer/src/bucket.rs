//! Token bucket: bounds the send rate so the diode and the receiver's
//! buffer are never overrun (TRANSFER.md: 17 % of an unpaced burst is lost).
//!
//! ```text
//!  tokens += rate · elapsed (≤ burst) ─▶ take(n): enough? go : sleep (deficit / rate, ≥ 200 µs)
//! ```

use std::time::{Duration, Instant};

/// A token bucket in bytes.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// `rate` bytes a second (0: unlimited), at most `burst` bytes at once.
    pub fn new(rate: u64, burst: u64) -> Self {
        Bucket { rate: rate as f64, burst: burst as f64, tokens: burst as f64, last: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Waits until `n` bytes may go, then takes them.
    pub fn take(&mut self, n: usize) {
        if self.rate <= 0.0 {
            return;
        }
        let n = n as f64;
        loop {
            self.refill();
            if self.tokens >= n {
                self.tokens -= n;
                return;
            }
            let wait = ((n - self.tokens) / self.rate).max(200e-6);
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_honoured() {
        let mut b = Bucket::new(10_000_000, 100_000);
        let t = Instant::now();
        for _ in 0..400 {
            b.take(1500);
        }
        // 600 kB at 10 MB/s after a 100 kB burst: at least 50 ms
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(45), "{e:?}");
        assert!(e < Duration::from_secs(2), "{e:?}");
        let mut free = Bucket::new(0, 0);
        free.take(1 << 30);
    }
}
