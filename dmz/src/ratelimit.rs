//! Rate limits (LEVEL3 入侵防范): simple token buckets per client address
//! and per API token or web account; an empty bucket answers 429 with
//! `Retry-After`.
//!
//! ```text
//!  request ─▶ per address bucket (public listener middleware) ─▶ per token/account bucket
//!             (API auth, web login) ─▶ handler            empty ─▶ 429 + Retry-After
//! ```
//! Buckets live in memory (a restart refills them); idle full buckets are
//! dropped so the maps stay small.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::LimitsConfig;
use crate::error::{Error, Result};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A family of token buckets with one rate and burst.
pub struct Buckets {
    per_sec: f64,
    burst: f64,
    map: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// `per_minute` tokens a minute, at most `burst` at once.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Buckets {
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is there.
    pub fn take(&self, key: &str) -> Result<()> {
        let now = Instant::now();
        let mut m = self.map.lock().map_err(|_| Error::Internal("rate limit lock poisoned".into()))?;
        if m.len() > 50_000 {
            let (per_sec, burst) = (self.per_sec, self.burst);
            m.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec < burst);
        }
        let b = m.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, last: now });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * self.per_sec).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait = ((1.0 - b.tokens) / self.per_sec).ceil().max(1.0) as u64;
            Err(Error::RateLimited { retry_after: wait })
        }
    }
}

/// The DMZ's limits.
pub struct RateLimits {
    /// Per API token (its hash) or web account.
    pub per_token: Buckets,
    /// Per client address.
    pub per_addr: Buckets,
}

impl RateLimits {
    /// From the configuration.
    pub fn new(c: &LimitsConfig) -> Self {
        RateLimits {
            per_token: Buckets::new(c.per_token_per_minute, c.per_token_burst),
            per_addr: Buckets::new(c.per_addr_per_minute, c.per_addr_burst),
        }
    }

    /// One request from `addr`.
    pub fn addr(&self, addr: IpAddr) -> Result<()> {
        self.per_addr.take(&addr.to_string())
    }

    /// One request with token or account `key` (pass a hash or account id, never a secret).
    pub fn token(&self, key: &str) -> Result<()> {
        self.per_token.take(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bucket_empties_and_says_when() {
        let b = Buckets::new(60, 2);
        b.take("a").unwrap();
        b.take("a").unwrap();
        match b.take("a") {
            Err(Error::RateLimited { retry_after }) => assert!((1..=2).contains(&retry_after)),
            other => panic!("{other:?}"),
        }
        b.take("b").unwrap();
    }
}
