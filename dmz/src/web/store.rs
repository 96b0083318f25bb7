//! The web side's sled trees and the small helpers to read and change JSON
//! values in them atomically.
//!
//! ```text
//!  web_users         username ─▶ User (accounts.rs)
//!  web_failures      username ─▶ Failures (lockout counter, accounts.rs)
//!  web_sessions      SM3(session id) ─▶ SessionRec (session.rs)
//!  web_activation    SM3(token) ─▶ Activation (activation.rs)
//!  web_applications  application no. ─▶ Application (applications.rs)
//!  web_scans         no. ␟ slot ─▶ reviewer copy, SM4-GCM under the review key (scans.rs)
//! ```
//! `update` is a compare-and-swap loop: the closure sees the current value and
//! decides the new one, so two requests that race (parallel logins, a TOTP
//! code used twice) cannot both win.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, codec};
use crate::state::AppState;

pub const USERS: &str = "web_users";
pub const FAILURES: &str = "web_failures";
pub const SESSIONS: &str = "web_sessions";
pub const ACTIVATION: &str = "web_activation";
pub const APPLICATIONS: &str = "web_applications";
pub const SCANS: &str = "web_scans";

/// A web tree.
pub fn tree(state: &AppState, name: &str) -> Result<sled::Tree> {
    state.store.tree(name)
}

/// Reads a JSON value.
pub fn get<T: DeserializeOwned>(t: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    match t.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(codec)?)),
        None => Ok(None),
    }
}

/// Writes a JSON value.
pub fn put<T: Serialize>(t: &sled::Tree, key: &[u8], value: &T) -> Result<()> {
    t.insert(key, serde_json::to_vec(value).map_err(codec)?)?;
    Ok(())
}

/// Atomically replaces the value at `key` with what `f` makes of the current one
/// (`None`: absent / delete). `f` may run more than once; its last answer is returned.
pub fn update<T, R>(t: &sled::Tree, key: &[u8], mut f: impl FnMut(Option<T>) -> Result<(Option<T>, R)>) -> Result<R>
where
    T: Serialize + DeserializeOwned,
{
    loop {
        let old = t.get(key)?;
        let cur: Option<T> = match &old {
            Some(v) => Some(serde_json::from_slice(v).map_err(codec)?),
            None => None,
        };
        let (new, r) = f(cur)?;
        let new_bytes = match &new {
            Some(v) => Some(serde_json::to_vec(v).map_err(codec)?),
            None => None,
        };
        if t.compare_and_swap(key, old, new_bytes)?.is_ok() {
            return Ok(r);
        }
    }
}

/// Unix time, seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
