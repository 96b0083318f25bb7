//! Activation, login, logout, password change and `/me`.
//!
//! ```text
//!  POST /auth/activate {name, code, password} ─▶ {totp_secret, otpauth_uri}
//!  POST /auth/confirm  {name, code, totp}     ─▶ active
//!  POST /auth/login    {name, password, totp} ─▶ Set-Cookie flumon_session (Secure; HttpOnly; SameSite=Strict) + {token, csrf}
//!  POST /auth/logout · POST /auth/password {old, new} · GET /me
//! ```

use axum::Json;
use axum::extract::State;
use axum::http::Extensions;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// A password in a request body, wiped when dropped.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Pw(String);

impl Drop for Pw {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::ops::Deref for Pw {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

use super::{AppState, Authed, COOKIE};
use crate::auth::accounts;
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    name: String,
    code: String,
    password: Pw,
}

pub async fn activate(State(st): State<AppState>, Json(b): Json<ActivateBody>) -> Result<Json<accounts::Enrolment>> {
    let r = accounts::activate(&st.db, &st.clock, &b.name, &b.code, &b.password).await;
    st.audit.record("account.activate", &b.name, "", if r.is_ok() { "ok" } else { "failed" }, json!({}))?;
    Ok(Json(r?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    name: String,
    code: String,
    totp: String,
}

pub async fn confirm(State(st): State<AppState>, Json(b): Json<ConfirmBody>) -> Result<Json<serde_json::Value>> {
    let r = accounts::confirm(&st.db, &st.clock, &b.name, &b.code, &b.totp).await;
    st.audit.record("account.confirm", &b.name, "", if r.is_ok() { "ok" } else { "failed" }, json!({}))?;
    r?;
    Ok(Json(json!({ "activated": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    name: String,
    password: Pw,
    totp: String,
}

pub async fn login(State(st): State<AppState>, ext: Extensions, Json(b): Json<LoginBody>) -> Result<Response> {
    let addr = super::limits::client_addr(&ext);
    let l = &st.limits;
    if let Err(e) = l.check("login", &b.name, &addr, l.login_per_account, l.login_per_address, st.clock.now()) {
        st.audit.record("login.throttled", &b.name, "", "refused", json!({ "addr": addr }))?;
        return Err(e);
    }
    let r = accounts::login(&st.db, &st.clock, &b.name, &b.password, &b.totp).await;
    let (kind, outcome) = match &r {
        Ok(_) => ("login.ok", "ok"),
        Err(Error::Locked) => ("login.locked", "locked"),
        Err(_) => ("login.failed", "failed"),
    };
    let role = r.as_ref().map(|s| s.role.as_str()).unwrap_or("");
    st.audit.record(kind, &b.name, role, outcome, json!({}))?;
    let s = r?;
    let cookie = format!("{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict", s.token);
    Ok(([(header::SET_COOKIE, cookie)], Json(s)).into_response())
}

pub async fn logout(State(st): State<AppState>, a: Authed) -> Result<Response> {
    accounts::logout(&st.db, &a.token).await?;
    st.audit.record("logout", &a.account.name, a.account.role.as_str(), "ok", json!({}))?;
    let cookie = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({ "logged_out": true }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    old: Pw,
    new: Pw,
}

pub async fn password(
    State(st): State<AppState>,
    a: Authed,
    Json(b): Json<PasswordBody>,
) -> Result<Json<serde_json::Value>> {
    let r = accounts::change_password(&st.db, &st.clock, &a.account.name, &b.old, &b.new).await;
    st.audit.record(
        "account.password",
        &a.account.name,
        a.account.role.as_str(),
        if r.is_ok() { "ok" } else { "failed" },
        json!({}),
    )?;
    r?;
    Ok(Json(json!({ "changed": true })))
}

pub async fn me(a: Authed) -> Json<crate::indicators::Account> {
    Json(a.account)
}
