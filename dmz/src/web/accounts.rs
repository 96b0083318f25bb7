//! Web accounts (hospital uploaders and registration reviewers) and the login
//! check of LEVEL3 身份鉴别: password (argon2id) + TOTP, lockout, expiry.
//!
//! ```text
//!  login(user, pw, code):
//!    reserve()  ── atomic in sled (web_failures): locked? ─▶ Locked
//!                  count ≥ 5 (parallel attempts) ─▶ lock now ─▶ Locked;  else count += 1
//!    verify password (spawn_blocking, argon2id; unknown user: dummy hash, same time)
//!    verify TOTP (step window ±1, step > last used, CAS on the user record)
//!    ok  ─▶ failures reset ─▶ Ok(user, password expired?)
//!    bad ─▶ count stays; count = 5 ─▶ locked 30 min ─▶ audit web.lockout
//! ```
//! The counter is taken *before* the slow check, so ten parallel guesses get at
//! most five password checks. TOTP secrets are stored sealed (SM4-GCM under the
//! web key, the account name as associated data).

use serde::{Deserialize, Serialize};

use flumon_shared::crypto::SymKey;

use super::password;
use super::store::{self, FAILURES, USERS, now};
use super::totp;
use crate::error::{Error, Result};
use crate::state::AppState;

/// Failed logins before the account locks.
pub const MAX_FAILURES: u32 = 5;
/// How long a lock lasts.
pub const LOCK_SECS: i64 = 30 * 60;

/// What an account may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// Uploader of one hospital (its 统一社会信用代码).
    Hospital { code: String },
    /// Registration reviewer (admin listener).
    Reviewer,
}

/// A web account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    /// Hospital name or reviewer name, shown in the header.
    pub display: String,
    /// Where activation and notices go.
    #[serde(default)]
    pub email: Option<String>,
    /// argon2id PHC string; `None` until activated.
    #[serde(default)]
    pub password: Option<String>,
    /// Unix time the password was set.
    #[serde(default)]
    pub password_changed: i64,
    /// Earlier hashes (the current one included), at most 5.
    #[serde(default)]
    pub history: Vec<String>,
    /// TOTP secret, sealed under the web key (hex).
    #[serde(default)]
    pub totp_sealed: Option<String>,
    /// Step of the last TOTP code accepted (a code is never accepted twice).
    #[serde(default)]
    pub totp_last_step: u64,
    /// Activated (password and TOTP set) and not disabled.
    pub active: bool,
    pub created: i64,
}

impl User {
    /// A new, not yet activated account.
    pub fn new(username: &str, role: Role, display: &str, email: Option<String>) -> User {
        User {
            username: username.to_owned(),
            role,
            display: display.to_owned(),
            email,
            password: None,
            password_changed: 0,
            history: Vec::new(),
            totp_sealed: None,
            totp_last_step: 0,
            active: false,
            created: now(),
        }
    }

    /// The hospital of a hospital account.
    pub fn hospital(&self) -> Option<&str> {
        match &self.role {
            Role::Hospital { code } => Some(code),
            Role::Reviewer => None,
        }
    }
}

/// The lockout counter of one account name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Failures {
    count: u32,
    locked_until: i64,
    /// Time of the last attempt (stale counters are swept).
    #[serde(default)]
    last: i64,
}

/// Why a login failed (the page says the same for the first two, so it
/// does not tell which factor was wrong or whether the account exists).
#[derive(Debug)]
pub enum LoginError {
    BadCredentials,
    Locked { until: i64, just_now: bool },
    Other(Error),
}

impl From<Error> for LoginError {
    fn from(e: Error) -> Self {
        LoginError::Other(e)
    }
}

/// A successful login.
#[derive(Debug)]
pub struct LoginOk {
    pub user: User,
    pub must_change_password: bool,
}

/// Reads an account.
pub fn get(state: &AppState, username: &str) -> Result<Option<User>> {
    store::get(&store::tree(state, USERS)?, username.as_bytes())
}

/// Writes a new account; fails if the name is taken.
pub fn create(state: &AppState, user: &User) -> Result<()> {
    let t = store::tree(state, USERS)?;
    let bytes = serde_json::to_vec(user).map_err(crate::error::codec)?;
    match t.compare_and_swap(user.username.as_bytes(), None::<&[u8]>, Some(bytes))? {
        Ok(()) => Ok(()),
        Err(_) => Err(Error::Conflict("用户名已存在 (user name taken)".into())),
    }
}

/// Changes an account atomically.
pub fn modify(state: &AppState, username: &str, mut f: impl FnMut(&mut User) -> Result<()>) -> Result<User> {
    let t = store::tree(state, USERS)?;
    store::update(&t, username.as_bytes(), |cur: Option<User>| {
        let mut u = cur.ok_or(Error::NotFound)?;
        f(&mut u)?;
        Ok((Some(u.clone()), u))
    })
}

/// Seals a TOTP secret for storage.
pub fn seal_totp(key: &SymKey, username: &str, secret: &[u8]) -> Result<String> {
    let aad = format!("flumon-web totp v1\u{1f}{username}");
    Ok(hex::encode(flumon_shared::crypto::seal(key, aad.as_bytes(), secret)?))
}

fn open_totp(key: &SymKey, username: &str, sealed: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let aad = format!("flumon-web totp v1\u{1f}{username}");
    let bytes = hex::decode(sealed).map_err(crate::error::codec)?;
    Ok(zeroize::Zeroizing::new(flumon_shared::crypto::open(key, aad.as_bytes(), &bytes)?))
}

enum Reserve {
    Go,
    Locked(i64, bool),
}

fn reserve(state: &AppState, username: &str, t: i64) -> Result<Reserve> {
    let tree = store::tree(state, FAILURES)?;
    store::update(&tree, username.as_bytes(), |cur: Option<Failures>| {
        let mut f = cur.unwrap_or_default();
        if f.locked_until > t {
            return Ok((Some(f.clone()), Reserve::Locked(f.locked_until, false)));
        }
        if f.locked_until != 0 {
            f = Failures::default();
        }
        if f.count >= MAX_FAILURES {
            f.locked_until = t + LOCK_SECS;
            let until = f.locked_until;
            return Ok((Some(f), Reserve::Locked(until, true)));
        }
        f.count += 1;
        f.last = t;
        Ok((Some(f), Reserve::Go))
    })
}

/// After a failed check: locks when this was the last allowed failure.
fn failed(state: &AppState, username: &str, t: i64) -> Result<Option<i64>> {
    let tree = store::tree(state, FAILURES)?;
    store::update(&tree, username.as_bytes(), |cur: Option<Failures>| {
        let mut f = cur.unwrap_or_default();
        if f.count >= MAX_FAILURES && f.locked_until <= t {
            f.locked_until = t + LOCK_SECS;
            let until = f.locked_until;
            return Ok((Some(f), Some(until)));
        }
        Ok((Some(f), None))
    })
}

/// After a successful check: the counter goes, and so do counters of any name
/// untouched for a day and not locked (names tried by guessers stay few).
fn succeeded(state: &AppState, username: &str) -> Result<()> {
    let tree = store::tree(state, FAILURES)?;
    tree.remove(username.as_bytes())?;
    let t = now();
    for kv in tree.iter() {
        let (k, v) = kv?;
        let stale = serde_json::from_slice::<Failures>(&v).map_or(true, |f| f.last < t - 86_400 && f.locked_until < t);
        if stale {
            tree.remove(k)?;
        }
    }
    Ok(())
}

/// Checks a TOTP code and burns its step (atomically). True when accepted.
pub fn check_totp(state: &AppState, key: &SymKey, username: &str, code: &str, t: i64) -> Result<bool> {
    let tree = store::tree(state, USERS)?;
    let now_u = u64::try_from(t).unwrap_or(0);
    store::update(&tree, username.as_bytes(), |cur: Option<User>| {
        let Some(mut u) = cur else { return Ok((None, false)) };
        let Some(sealed) = u.totp_sealed.as_deref() else { return Ok((Some(u), false)) };
        let secret = open_totp(key, username, sealed)?;
        match totp::verify(&secret, code, now_u, u.totp_last_step) {
            Some(step) => {
                u.totp_last_step = step;
                Ok((Some(u), true))
            }
            None => Ok((Some(u), false)),
        }
    })
}

/// The login check. `key` opens TOTP secrets.
pub async fn login(
    state: &AppState,
    key: &SymKey,
    username: &str,
    pw: &str,
    code: &str,
) -> std::result::Result<LoginOk, LoginError> {
    let t = now();
    if let Reserve::Locked(until, just_now) = reserve(state, username, t)? {
        return Err(LoginError::Locked { until, just_now });
    }
    let user = get(state, username)?;
    let phc = user.as_ref().filter(|u| u.active).and_then(|u| u.password.clone());
    let pw_owned = password::Secret::new(pw.to_owned());
    let pw_ok = tokio::task::spawn_blocking(move || match phc {
        Some(h) => password::verify(&pw_owned, &h),
        None => {
            password::dummy_verify(&pw_owned);
            false
        }
    })
    .await
    .map_err(|e| Error::Internal(format!("password task: {e}")))?;
    // The TOTP step is burnt only when the password was right.
    let ok = pw_ok && check_totp(state, key, username, code, t)?;
    match (ok, user) {
        (true, Some(user)) => {
            succeeded(state, username)?;
            let must_change_password = password::expired(user.password_changed, t);
            Ok(LoginOk { user, must_change_password })
        }
        _ => match failed(state, username, t)? {
            Some(until) => Err(LoginError::Locked { until, just_now: true }),
            None => Err(LoginError::BadCredentials),
        },
    }
}

/// Sets a new password after checking the rules and the history (argon2 work on
/// the blocking pool).
pub async fn set_password(
    state: &AppState,
    username: &str,
    new_pw: &str,
) -> Result<std::result::Result<(), password::PolicyError>> {
    if let Err(e) = password::check_policy(new_pw, username) {
        return Ok(Err(e));
    }
    let user = get(state, username)?.ok_or(Error::NotFound)?;
    let history = user.history.clone();
    let pw = password::Secret::new(new_pw.to_owned());
    let (reused, phc) = tokio::task::spawn_blocking(move || {
        let reused = password::reused(&pw, &history);
        (reused, if reused { Ok(String::new()) } else { password::hash(&pw) })
    })
    .await
    .map_err(|e| Error::Internal(format!("password task: {e}")))?;
    if reused {
        return Ok(Err(password::PolicyError::Reused));
    }
    let phc = phc.map_err(Error::Internal)?;
    let t = now();
    modify(state, username, |u| {
        u.password = Some(phc.clone());
        u.password_changed = t;
        password::push_history(&mut u.history, phc.clone());
        Ok(())
    })?;
    Ok(Ok(()))
}

/// Whether the current password of `username` is `pw` (for the change form).
/// A wrong answer counts toward the lockout like a failed login.
pub async fn check_current_password(state: &AppState, username: &str, pw: &str) -> std::result::Result<(), LoginError> {
    let t = now();
    if let Reserve::Locked(until, just_now) = reserve(state, username, t)? {
        return Err(LoginError::Locked { until, just_now });
    }
    let phc = get(state, username)?.and_then(|u| u.password);
    let pw = password::Secret::new(pw.to_owned());
    let ok = tokio::task::spawn_blocking(move || phc.is_some_and(|h| password::verify(&pw, &h)))
        .await
        .map_err(|e| Error::Internal(format!("password task: {e}")))?;
    if ok {
        succeeded(state, username)?;
        return Ok(());
    }
    match failed(state, username, t)? {
        Some(until) => Err(LoginError::Locked { until, just_now: true }),
        None => Err(LoginError::BadCredentials),
    }
}
