//! Rate limits (LEVEL3 resource control): login attempts and API requests,
//! each per account and per client address, in fixed one-minute windows
//! kept in memory. Over the limit: 429 with a Chinese message.
//!
//! ```text
//!  POST /auth/login ─▶ hit("login:acct:NAME", login_per_account) ∧ hit("login:addr:IP", login_per_address)
//!  authenticated API request ─▶ hit("api:acct:NAME", api_per_account) ∧ hit("api:addr:IP", api_per_address)
//!  window = now ÷ 60 s; count > limit ─▶ Error::TooMany (429)
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use axum::http::Extensions;

use crate::{Error, Result};

/// The refusal.
pub const TOO_MANY: &str = "请求过于频繁，请稍后再试 (too many requests, try again in a minute)";

/// Requests allowed per minute.
#[derive(Debug)]
pub struct RateLimits {
    pub login_per_account: u32,
    pub login_per_address: u32,
    pub api_per_account: u32,
    pub api_per_address: u32,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(10, 30, 600, 1200)
    }
}

impl RateLimits {
    pub fn new(login_per_account: u32, login_per_address: u32, api_per_account: u32, api_per_address: u32) -> Self {
        RateLimits { login_per_account, login_per_address, api_per_account, api_per_address, windows: Mutex::default() }
    }

    /// Counts one request under `key`; false when the minute's `limit` is exceeded.
    pub fn hit(&self, key: &str, limit: u32, now: i64) -> Result<bool> {
        let window = now.div_euclid(60);
        let mut w = self.windows.lock().map_err(|_| Error::Internal("rate limit lock poisoned".into()))?;
        if w.len() > 100_000 {
            w.retain(|_, (win, _)| *win == window);
        }
        let e = w.entry(key.to_string()).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 = e.1.saturating_add(1);
        Ok(e.1 <= limit)
    }

    /// Both keys of a request (account and address); 429 when either is over.
    pub fn check(
        &self,
        kind: &str,
        account: &str,
        addr: &str,
        per_account: u32,
        per_address: u32,
        now: i64,
    ) -> Result<()> {
        let a = self.hit(&format!("{kind}:acct:{account}"), per_account, now)?;
        let b = self.hit(&format!("{kind}:addr:{addr}"), per_address, now)?;
        if a && b { Ok(()) } else { Err(Error::TooMany(TOO_MANY)) }
    }
}

/// The client address the server put on the request (`-` when none, as in tests without a socket).
pub fn client_addr(ext: &Extensions) -> String {
    ext.get::<ConnectInfo<SocketAddr>>().map_or_else(|| "-".to_string(), |c| c.0.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_each_minute() {
        let l = RateLimits::new(2, 3, 0, 0);
        assert!(l.hit("k", 2, 120).unwrap());
        assert!(l.hit("k", 2, 179).unwrap());
        assert!(!l.hit("k", 2, 179).unwrap());
        assert!(l.hit("k", 2, 180).unwrap());
        // Per address: a second account from the same address still counts there.
        assert!(l.check("login", "a", "10.0.0.1", 2, 3, 0).is_ok());
        assert!(l.check("login", "b", "10.0.0.1", 2, 3, 0).is_ok());
        assert!(l.check("login", "c", "10.0.0.1", 2, 3, 0).is_ok());
        assert!(matches!(l.check("login", "d", "10.0.0.1", 2, 3, 0), Err(Error::TooMany(_))));
    }
}
