//! Sessions: random 32-byte ids in a cookie, records in sled under the SM3 of
//! the id (a copy of the store holds no usable session), an idle timeout and an
//! absolute lifetime.
//!
//! ```text
//!  cookie  __Host-flumon        (public listener, hospital users)
//!          __Host-flumon-admin  (admin listener, reviewers)
//!          __Host-flumon-pre    (anonymous forms: double-submit CSRF token)
//!          all: Secure; HttpOnly; SameSite=Strict; Path=/ (no Domain: host-only)
//!  lookup: cookie ─▶ SM3 ─▶ web_sessions ─▶ realm matches the listener? idle < 30 min?
//!          age < max? account still active? ─▶ touch last_seen ─▶ Session
//! ```
//! Cookies are not separated by port, so both listeners may see both
//! cookies: every record carries its realm and a listener accepts only its own.

use axum::http::{HeaderMap, HeaderValue, header};
use serde::{Deserialize, Serialize};

use flumon_shared::crypto::sm3;

use super::accounts::{self, Role};
use super::csrf::{b64url, new_token};
use super::layout::Realm;
use super::store::{self, SESSIONS, now};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Cookie of hospital sessions.
pub const COOKIE_PUBLIC: &str = "__Host-flumon";
/// Cookie of reviewer sessions.
pub const COOKIE_ADMIN: &str = "__Host-flumon-admin";
/// Cookie of the anonymous CSRF token.
pub const COOKIE_PRE: &str = "__Host-flumon-pre";

/// A stored session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRec {
    pub username: String,
    /// `hospital` or `admin`.
    pub realm: String,
    /// The hospital of a hospital session (copied from the account at login).
    pub hospital: Option<String>,
    pub display: String,
    pub created: i64,
    pub last_seen: i64,
    /// CSRF token of this session.
    pub csrf: String,
    /// The password expired: only the change-password page is open.
    pub must_change_password: bool,
}

/// A live session of the current request.
#[derive(Clone, Debug)]
pub struct Session {
    /// SM3 of the id (the sled key).
    pub key: [u8; 32],
    pub rec: SessionRec,
}

/// What the cookie of a request led to.
#[derive(Clone, Debug)]
pub enum Lookup {
    None,
    /// There was a session, but it timed out (idle or absolute): the login page says so.
    Expired,
    Live(Session),
}

fn realm_name(realm: Realm) -> &'static str {
    match realm {
        Realm::Admin => "admin",
        _ => "hospital",
    }
}

/// The session cookie name of a listener.
pub fn cookie_name(realm: Realm) -> &'static str {
    match realm {
        Realm::Admin => COOKIE_ADMIN,
        _ => COOKIE_PUBLIC,
    }
}

/// The value of cookie `name` in the request (the first one).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == name
            {
                return Some(val.trim().to_owned());
            }
        }
    }
    None
}

/// A `Set-Cookie` value with the fixed attributes.
pub fn set_cookie(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/"))
        .map_err(|e| Error::Internal(format!("cookie: {e}")))
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"))
        .unwrap_or(HeaderValue::from_static("__Host-flumon=; Secure; Path=/; Max-Age=0"))
}

fn key_of(id: &str) -> [u8; 32] {
    sm3(id.as_bytes())
}

/// Starts a session for `user` on the listener `realm`; returns the cookie value.
pub fn create(state: &AppState, realm: Realm, user: &accounts::User, must_change: bool) -> Result<String> {
    let id_bytes: [u8; 32] = flumon_shared::crypto::random_array()?;
    let id = b64url(&id_bytes);
    let t = now();
    let rec = SessionRec {
        username: user.username.clone(),
        realm: realm_name(realm).to_owned(),
        hospital: user.hospital().map(str::to_owned),
        display: user.display.clone(),
        created: t,
        last_seen: t,
        csrf: new_token().map_err(Error::Internal)?,
        must_change_password: must_change,
    };
    let tree = store::tree(state, SESSIONS)?;
    store::put(&tree, &key_of(&id), &rec)?;
    sweep(&tree, t, state)?;
    Ok(id)
}

/// Deletes expired sessions (run at each login; the tree stays small).
fn sweep(tree: &sled::Tree, t: i64, state: &AppState) -> Result<()> {
    let s = super::settings(state)?;
    for kv in tree.iter() {
        let (k, v) = kv?;
        let dead = match serde_json::from_slice::<SessionRec>(&v) {
            Ok(r) => t - r.last_seen > s.session_idle_secs || t - r.created > s.session_max_secs,
            Err(_) => true,
        };
        if dead {
            tree.remove(k)?;
        }
    }
    Ok(())
}

/// Finds the live session of the request on listener `realm`.
pub fn lookup(state: &AppState, realm: Realm, headers: &HeaderMap) -> Result<Lookup> {
    let Some(id) = cookie(headers, cookie_name(realm)).filter(|v| !v.is_empty() && v.len() <= 64) else {
        return Ok(Lookup::None);
    };
    let key = key_of(&id);
    let tree = store::tree(state, SESSIONS)?;
    let Some(mut rec) = store::get::<SessionRec>(&tree, &key)? else {
        return Ok(Lookup::Expired);
    };
    let s = super::settings(state)?;
    let t = now();
    if rec.realm != realm_name(realm) {
        return Ok(Lookup::None);
    }
    if t - rec.last_seen > s.session_idle_secs || t - rec.created > s.session_max_secs {
        tree.remove(key)?;
        return Ok(Lookup::Expired);
    }
    // The account must still be active and have the same role.
    let role_ok = match accounts::get(state, &rec.username)? {
        Some(u) if u.active => match (&u.role, realm) {
            (Role::Hospital { code }, Realm::Hospital | Realm::Public) => {
                rec.hospital.as_deref() == Some(code.as_str())
                    && crate::hospitals::get(state, code)?.is_some_and(|h| h.active)
            }
            (Role::Reviewer, Realm::Admin) => true,
            _ => false,
        },
        _ => false,
    };
    if !role_ok {
        tree.remove(key)?;
        return Ok(Lookup::None);
    }
    if t - rec.last_seen >= 5 {
        rec.last_seen = t;
        store::put(&tree, &key, &rec)?;
    }
    Ok(Lookup::Live(Session { key, rec }))
}

/// Ends a session.
pub fn destroy(state: &AppState, s: &Session) -> Result<()> {
    store::tree(state, SESSIONS)?.remove(s.key)?;
    Ok(())
}

/// Ends every session of `username` (after a password change, except `keep`).
pub fn destroy_all_of(state: &AppState, username: &str, keep: Option<&[u8; 32]>) -> Result<()> {
    let tree = store::tree(state, SESSIONS)?;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if keep.is_some_and(|kp| k.as_ref() == kp.as_slice()) {
            continue;
        }
        if serde_json::from_slice::<SessionRec>(&v).is_ok_and(|r| r.username == username) {
            tree.remove(k)?;
        }
    }
    Ok(())
}

/// Marks the session's password as changed.
pub fn clear_must_change(state: &AppState, s: &Session) -> Result<()> {
    let tree = store::tree(state, SESSIONS)?;
    store::update(&tree, &s.key, |cur: Option<SessionRec>| {
        Ok((
            cur.map(|mut r| {
                r.must_change_password = false;
                r
            }),
            (),
        ))
    })
}
