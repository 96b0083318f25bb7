//! The account and session tables (see the module diagram in `auth`).
//!
//! ```text
//!  users(name, role, scope, password_hash, totp_secret, activation_hash, failed, locked_until, …)
//!  sessions(token_hash, user_name, created, last_seen, csrf)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use sqlx::Row;
use zeroize::Zeroizing;

use super::{password, totp};
use crate::db::Db;
use crate::indicators::{Account, Role, Scope};
use crate::{Error, Result};

/// Failed logins that lock an account.
pub const MAX_FAILURES: i64 = 5;
/// How long a lock lasts (seconds).
pub const LOCK_SECONDS: i64 = 30 * 60;
/// Idle time that ends a session (seconds).
pub const IDLE_SECONDS: i64 = 30 * 60;
/// How old a session's stored `last_seen` must be before a request writes it again (seconds).
///
/// Requests within this time of the stored value write nothing, so a page load does not queue
/// behind an ingest that holds SQLite's write lock. The idle check reads the stored value, which
/// lags the last request by at most this much: an idle session ends between 29 and 30 minutes
/// after its last request, never later (LEVEL3), and one used at least every 29 minutes stays.
pub const LAST_SEEN_REFRESH_SECONDS: i64 = 60;
/// Validity of an activation code (seconds).
pub const ACTIVATION_SECONDS: i64 = 72 * 3600;

/// Wall-clock seconds, with an offset tests can move.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
    /// A stopped clock (tests that compare times across several calls): `now` = this + offset.
    frozen: Option<i64>,
}

impl Clock {
    /// A clock stopped at the current second; only [`Clock::advance`] moves it (tests).
    pub fn frozen() -> Clock {
        Clock { offset: Arc::default(), frozen: Some(chrono::Utc::now().timestamp()) }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.frozen.unwrap_or_else(|| chrono::Utc::now().timestamp()) + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock forward (tests).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

fn random_hex(n: usize) -> Result<String> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| Error::Internal("random generator".into()))?;
    Ok(hex::encode(&*b))
}

fn digest(s: &str) -> String {
    hex::encode(flumon_shared::crypto::sm3(s.as_bytes()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(e.to_string()))
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Creates an account; returns its one-time activation code.
pub async fn create_user(db: &Db, clock: &Clock, name: &str, role: Role, scope: Option<&str>) -> Result<String> {
    if !valid_name(name) {
        return Err(Error::BadRequest("用户名须为 3–32 个字母、数字或 ._- (user name)".into()));
    }
    let scope = match (role, scope) {
        (Role::Analyst, Some(code)) => match Scope::region(code)? {
            Scope::County { .. } => {
                return Err(Error::BadRequest(
                    "分析员范围须为全国、省或市 (analyst scope: national, province or city)".into(),
                ));
            }
            s => Some(s.code().to_string()),
        },
        (Role::Analyst, None) => return Err(Error::BadRequest("分析员须指定 --scope (analyst needs a scope)".into())),
        (_, Some(_)) => return Err(Error::BadRequest("只有分析员有地区范围 (only analysts have a scope)".into())),
        (_, None) => None,
    };
    let code = random_hex(10)?;
    let now = clock.now();
    let done = sqlx::query(
        "INSERT INTO users (name, role, scope, password_hash, totp_secret, activation_hash, failed, locked_until, \
         password_changed, history, disabled, created, totp_step, activation_expires) \
         VALUES ($1, $2, $3, NULL, NULL, $4, 0, 0, $5, '[]', 0, $5, 0, $6) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(scope)
    .bind(digest(&code))
    .bind(now)
    .bind(now + ACTIVATION_SECONDS)
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Conflict("用户名已存在 (user exists)".into()));
    }
    Ok(code)
}

/// A new activation code for an existing account (password and TOTP cleared).
pub async fn reset_user(db: &Db, clock: &Clock, name: &str) -> Result<String> {
    let code = random_hex(10)?;
    let now = clock.now();
    let done = sqlx::query(
        "UPDATE users SET password_hash = NULL, totp_secret = NULL, activation_hash = $1, activation_expires = $2, \
         failed = 0, locked_until = 0 WHERE name = $3",
    )
    .bind(digest(&code))
    .bind(now + ACTIVATION_SECONDS)
    .bind(name)
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    sqlx::query("DELETE FROM sessions WHERE user_name = $1").bind(name).execute(&db.pool).await?;
    Ok(code)
}

/// Disables (or re-enables) an account, ending its sessions; unlocks on `unlock`.
pub async fn set_flags(db: &Db, name: &str, disabled: Option<bool>, unlock: bool) -> Result<()> {
    let done = match disabled {
        Some(d) => {
            sqlx::query("UPDATE users SET disabled = $1 WHERE name = $2")
                .bind(i64::from(d))
                .bind(name)
                .execute(&db.pool)
                .await?
        }
        None => {
            sqlx::query("UPDATE users SET failed = 0, locked_until = 0 WHERE name = $1 AND $2 = 1")
                .bind(name)
                .bind(i64::from(unlock))
                .execute(&db.pool)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    if disabled == Some(true) {
        sqlx::query("DELETE FROM sessions WHERE user_name = $1").bind(name).execute(&db.pool).await?;
    }
    Ok(())
}

/// An account as sysadmin sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: String,
    pub scope: Option<String>,
    pub activated: bool,
    pub locked: bool,
    pub disabled: bool,
}

/// Every account.
pub async fn list_users(db: &Db, clock: &Clock) -> Result<Vec<UserInfo>> {
    let now = clock.now();
    let rows =
        sqlx::query("SELECT name, role, scope, activation_hash, locked_until, disabled FROM users ORDER BY name")
            .fetch_all(&db.pool)
            .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(UserInfo {
            name: r.try_get(0)?,
            role: r.try_get(1)?,
            scope: r.try_get(2)?,
            activated: r.try_get::<Option<String>, _>(3)?.is_none(),
            locked: r.try_get::<i64, _>(4)? > now,
            disabled: r.try_get::<i64, _>(5)? != 0,
        });
    }
    Ok(out)
}

/// What activation hands back once: the TOTP secret to enrol.
#[derive(Clone, Debug, Serialize)]
pub struct Enrolment {
    pub totp_secret: String,
    pub otpauth_uri: String,
}

async fn check_code(db: &Db, clock: &Clock, name: &str, code: &str) -> Result<()> {
    let row = sqlx::query("SELECT activation_hash, activation_expires FROM users WHERE name = $1 AND disabled = 0")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    let ok = row.is_some_and(|r| {
        let h: Option<String> = r.try_get(0).unwrap_or(None);
        let exp: i64 = r.try_get(1).unwrap_or(0);
        h.is_some_and(|h| bool::from(subtle::ConstantTimeEq::ct_eq(h.as_bytes(), digest(code.trim()).as_bytes())))
            && exp > clock.now()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Unauthorized("激活码无效或已过期 (invalid or expired activation code)"))
    }
}

/// Step 1 of activation: sets the password and returns a new TOTP secret.
pub async fn activate(db: &Db, clock: &Clock, name: &str, code: &str, pw: &str) -> Result<Enrolment> {
    check_code(db, clock, name, code).await?;
    password::check_policy(pw, name).map_err(|e| Error::BadRequest(e.to_string()))?;
    let pw = Zeroizing::new(pw.to_string());
    let hash = blocking(move || password::hash(&pw)).await?.map_err(Error::Internal)?;
    let secret = totp::generate_secret().map_err(Error::Internal)?;
    let b32 = totp::base32_encode(&secret);
    sqlx::query(
        "UPDATE users SET password_hash = $1, totp_secret = $2, totp_step = 0, password_changed = $3, history = $4 \
         WHERE name = $5",
    )
    .bind(&hash)
    .bind(&b32)
    .bind(clock.now())
    .bind(serde_json::to_string(&vec![hash.clone()])?)
    .bind(name)
    .execute(&db.pool)
    .await?;
    Ok(Enrolment { otpauth_uri: totp::otpauth_uri("flumon 内网", name, &secret), totp_secret: b32 })
}

/// Step 2 of activation: a TOTP code proves the enrolment; the account becomes active.
pub async fn confirm(db: &Db, clock: &Clock, name: &str, code: &str, totp_code: &str) -> Result<()> {
    check_code(db, clock, name, code).await?;
    let secret: Option<String> =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE name = $1").bind(name).fetch_one(&db.pool).await?;
    let secret =
        secret.and_then(|s| totp::base32_decode(&s)).ok_or(Error::Unauthorized("请先设置密码 (activate first)"))?;
    let now = u64::try_from(clock.now()).unwrap_or(0);
    let step = totp::verify(&secret, totp_code, now, 0).ok_or(Error::Unauthorized("动态口令错误 (wrong TOTP code)"))?;
    sqlx::query("UPDATE users SET activation_hash = NULL, totp_step = $1 WHERE name = $2")
        .bind(i64::try_from(step).unwrap_or(0))
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A new session.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    /// The bearer token (also the cookie value); shown once.
    pub token: String,
    /// To send as `X-CSRF-Token` with cookie-authenticated writes.
    pub csrf: String,
    pub role: Role,
    pub scope: Option<String>,
    /// The password is older than 90 days: change it.
    pub password_expired: bool,
}

/// Starts a session for an account (after its credentials were checked).
pub async fn start_session(db: &Db, clock: &Clock, name: &str) -> Result<(String, String)> {
    let token = random_hex(32)?;
    let csrf = random_hex(16)?;
    let now = clock.now();
    sqlx::query("INSERT INTO sessions (token_hash, user_name, created, last_seen, csrf) VALUES ($1, $2, $3, $3, $4)")
        .bind(digest(&token))
        .bind(name)
        .bind(now)
        .bind(&csrf)
        .execute(&db.pool)
        .await?;
    Ok((token, csrf))
}

/// Login with password and TOTP. Five failures lock the account for 30 minutes.
pub async fn login(db: &Db, clock: &Clock, name: &str, pw: &str, totp_code: &str) -> Result<Session> {
    let now = clock.now();
    let row = sqlx::query(
        "SELECT role, scope, password_hash, totp_secret, activation_hash, failed, locked_until, password_changed, \
         disabled, totp_step FROM users WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&db.pool)
    .await?;
    let pw_owned = Zeroizing::new(pw.to_string());
    let Some(row) = row else {
        blocking(move || password::dummy_verify(&pw_owned)).await?;
        return Err(Error::Unauthorized("用户名、密码或动态口令错误 (wrong credentials)"));
    };
    let locked_until: i64 = row.try_get(6)?;
    if locked_until > now {
        return Err(Error::Locked);
    }
    let hash: Option<String> = row.try_get(2)?;
    let secret: Option<String> = row.try_get(3)?;
    let activation: Option<String> = row.try_get(4)?;
    let disabled: i64 = row.try_get(8)?;
    let last_step: i64 = row.try_get(9)?;
    let hash2 = hash.clone().unwrap_or_default();
    let pw_ok = blocking(move || password::verify(&pw_owned, &hash2)).await?;
    let step = secret.as_deref().and_then(totp::base32_decode).and_then(|s| {
        totp::verify(&s, totp_code, u64::try_from(now).unwrap_or(0), u64::try_from(last_step).unwrap_or(0))
    });
    let ok = pw_ok && step.is_some() && activation.is_none() && disabled == 0 && hash.is_some();
    if !ok {
        // One atomic increment, so parallel attempts cannot overwrite each other's count.
        let failed: i64 = sqlx::query_scalar("UPDATE users SET failed = failed + 1 WHERE name = $1 RETURNING failed")
            .bind(name)
            .fetch_one(&db.pool)
            .await?;
        let lock = if failed >= MAX_FAILURES { now + LOCK_SECONDS } else { 0 };
        if lock > 0 {
            sqlx::query("UPDATE users SET failed = 0, locked_until = $1 WHERE name = $2")
                .bind(lock)
                .bind(name)
                .execute(&db.pool)
                .await?;
        }
        return Err(if lock > 0 {
            Error::Locked
        } else {
            Error::Unauthorized("用户名、密码或动态口令错误 (wrong credentials)")
        });
    }
    sqlx::query("UPDATE users SET failed = 0, locked_until = 0, totp_step = $1 WHERE name = $2")
        .bind(step.and_then(|s| i64::try_from(s).ok()).unwrap_or(0))
        .bind(name)
        .execute(&db.pool)
        .await?;
    let (token, csrf) = start_session(db, clock, name).await?;
    let role = Role::parse(&row.try_get::<String, _>(0)?)?;
    Ok(Session { token, csrf, role, scope: row.try_get(1)?, password_expired: password::expired(row.try_get(7)?, now) })
}

/// Changes the password of a logged-in account (policy, last 5 not reused).
pub async fn change_password(db: &Db, clock: &Clock, name: &str, old: &str, new: &str) -> Result<()> {
    password::check_policy(new, name).map_err(|e| Error::BadRequest(e.to_string()))?;
    let row =
        sqlx::query("SELECT password_hash, history FROM users WHERE name = $1").bind(name).fetch_one(&db.pool).await?;
    let hash: String = row.try_get::<Option<String>, _>(0)?.unwrap_or_default();
    let mut history: Vec<String> = serde_json::from_str(&row.try_get::<String, _>(1)?)?;
    let (old, new) = (Zeroizing::new(old.to_string()), Zeroizing::new(new.to_string()));
    let h2 = history.clone();
    let (ok, reused, new_hash) =
        blocking(move || (password::verify(&old, &hash), password::reused(&new, &h2), password::hash(&new))).await?;
    if !ok {
        return Err(Error::Unauthorized("原密码错误 (wrong password)"));
    }
    if reused {
        return Err(Error::BadRequest(password::PolicyError::Reused.to_string()));
    }
    let new_hash = new_hash.map_err(Error::Internal)?;
    password::push_history(&mut history, new_hash.clone());
    sqlx::query("UPDATE users SET password_hash = $1, history = $2, password_changed = $3 WHERE name = $4")
        .bind(new_hash)
        .bind(serde_json::to_string(&history)?)
        .bind(clock.now())
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The account of a session token, refreshing its idle timer when the stored one is more than
/// [`LAST_SEEN_REFRESH_SECONDS`] old; `None` when unknown, idle or disabled.
/// Returns the account and the session's CSRF token.
pub async fn authenticate(db: &Db, clock: &Clock, token: &str) -> Result<Option<(Account, String)>> {
    let th = digest(token);
    let now = clock.now();
    let row = sqlx::query(
        "SELECT s.last_seen, s.csrf, u.name, u.role, u.scope, u.disabled FROM sessions s \
         JOIN users u ON u.name = s.user_name WHERE s.token_hash = $1",
    )
    .bind(&th)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let last: i64 = row.try_get(0)?;
    if now - last > IDLE_SECONDS || row.try_get::<i64, _>(5)? != 0 {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(&th).execute(&db.pool).await?;
        return Ok(None);
    }
    // Fresh enough: no statement at all. On SQLite even an UPDATE that matches no row takes the
    // write lock (and waits for an ingest's BEGIN IMMEDIATE), so the check must happen here.
    if now - last > LAST_SEEN_REFRESH_SECONDS {
        // One conditional statement, no read-then-write: of concurrent requests of the same
        // session only those still seeing a stale value write, and last_seen never moves back.
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2 AND last_seen < $3")
            .bind(now)
            .bind(&th)
            .bind(now - LAST_SEEN_REFRESH_SECONDS)
            .execute(&db.pool)
            .await?;
    }
    let account =
        Account { name: row.try_get(2)?, role: Role::parse(&row.try_get::<String, _>(3)?)?, scope: row.try_get(4)? };
    Ok(Some((account, row.try_get(1)?)))
}

/// Whether the account's password is older than LEVEL3's 90 days (it must be changed before
/// anything else is read). Unknown accounts count as expired.
pub async fn password_expired(db: &Db, clock: &Clock, name: &str) -> Result<bool> {
    let changed: Option<i64> = sqlx::query_scalar("SELECT password_changed FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    Ok(changed.is_none_or(|c| password::expired(c, clock.now())))
}

/// Ends a session.
pub async fn logout(db: &Db, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(digest(token)).execute(&db.pool).await?;
    Ok(())
}
