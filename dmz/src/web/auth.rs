//! Login, logout and password change, on both listeners (the listener decides
//! which kind of account may sign in: hospital users on the public one,
//! reviewers on the admin one).
//!
//! ```text
//!  GET  /login             form: 用户名, 密码, 动态验证码 (TOTP)
//!  POST /login             per-account rate limit ─▶ accounts::login ─▶ role fits listener?
//!                          ─▶ new session (fresh id) ─▶ 303 to the start page (or to the password
//!                          page when the password is older than 90 days)
//!  POST /logout            session deleted, cookie cleared
//!  GET|POST /account/password   current + new twice; rules, last 5; other sessions ended
//! ```
//! Audited: web.login, web.login_failed, web.lockout, web.logout,
//! web.password_changed — with the account name only when the account exists,
//! never the password or the code.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::accounts::{self, LoginError, Role};
use super::extract::{AnyUser, CsrfForm, Web, WebResult};
use super::layout::{self, Realm, csrf_field, html_ok, msg, page, row};
use super::{password, session};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    expired: Option<String>,
    activated: Option<String>,
}

fn login_page(web: &Web, notice: Option<(&str, &str)>, username: &str) -> Response {
    let admin = web.realm == Realm::Admin;
    let title = if admin { "审核人员登录" } else { "医疗机构用户登录" };
    let body = html! {
        div.card.login {
            h2 { (title) span.en { "Sign in" } }
            @if let Some((kind, text)) = notice { (msg(kind, text)) }
            form.f method="post" action="/login" autocomplete="off" {
                (csrf_field(&web.csrf))
                (row("用户名", true, html! { input type="text" name="username" value=(username) required maxlength="64" autofocus; },
                    Some(if admin { "审核人员账号" } else { "医疗机构账号: 统一社会信用代码" }), None))
                (row("密码", true, html! { input type="password" name="password" required maxlength="128"; }, None, None))
                (row("动态验证码", true, html! {
                    input type="text" name="code" required inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code";
                }, Some("身份验证器应用 (TOTP) 中显示的 6 位数字"), None))
                div.actions { button.btn type="submit" { "登 录" } }
            }
            @if !admin {
                p.hint { "尚未注册? " a href="/apply" { "提交医疗机构注册申请" } " · 连续 5 次登录失败将锁定账户 30 分钟" }
            }
        }
    };
    html_ok(page(&web.frame("/login"), title, body))
}

/// `GET /login`.
pub async fn login_form(web: Web, Query(q): Query<LoginQuery>) -> Response {
    if let session::Lookup::Live(s) = &web.lookup {
        return Redirect::to(start_page(web.realm, s.rec.must_change_password)).into_response();
    }
    let notice = match (q.expired, q.activated) {
        (Some(_), _) => Some(("warn", "会话已超时, 请重新登录 (session expired)")),
        (None, Some(_)) => Some(("ok", "账户已激活, 请用新密码和动态验证码登录 (account activated)")),
        (None, None) => None,
    };
    login_page(&web, notice, "")
}

fn start_page(realm: Realm, must_change: bool) -> &'static str {
    match (must_change, realm) {
        (true, _) => "/account/password",
        (false, Realm::Admin) => "/review",
        (false, _) => "/hospital/upload",
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    code: String,
}

fn plausible_username(s: &str) -> bool {
    (3..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `POST /login`.
pub async fn login(State(state): State<AppState>, web: Web, CsrfForm(f): CsrfForm<LoginForm>) -> WebResult {
    let username = f.username.trim().to_owned();
    let bad = "用户名、密码或动态验证码错误 (wrong user name, password or code)";
    if !plausible_username(&username) {
        state.audit("web.login_failed", serde_json::json!({"account": null, "listener": realm_str(web.realm)})).await?;
        return Ok(login_page(&web, Some(("err", bad)), ""));
    }
    state.limits.token(&format!("web:{username}"))?;
    let key = super::web_key(&state)?;
    let result = accounts::login(&state, &key, &username, &f.password, &f.code).await;
    let known = accounts::get(&state, &username)?.is_some();
    let account = if known { Some(username.as_str()) } else { None };
    let ok = match result {
        Ok(ok) => ok,
        Err(LoginError::Locked { until, just_now }) => {
            if just_now {
                state.audit("web.lockout", serde_json::json!({"account": account, "until": until})).await?;
            } else {
                state.audit("web.login_failed", serde_json::json!({"account": account, "locked": true})).await?;
            }
            let text =
                format!("连续登录失败次数过多, 账户已锁定至 {} (account locked for 30 minutes)", layout::cst(until));
            return Ok(login_page(&web, Some(("err", &text)), &username));
        }
        Err(LoginError::BadCredentials) => {
            state.audit("web.login_failed", serde_json::json!({"account": account})).await?;
            return Ok(login_page(&web, Some(("err", bad)), &username));
        }
        Err(LoginError::Other(e)) => return Err(e.into()),
    };
    let fits =
        matches!((&ok.user.role, web.realm), (Role::Reviewer, Realm::Admin) | (Role::Hospital { .. }, Realm::Hospital));
    if !fits {
        state.audit("web.login_failed", serde_json::json!({"account": account, "wrong_listener": true})).await?;
        return Ok(login_page(&web, Some(("err", bad)), &username));
    }
    // A new id at every login (no session fixation); an old session of this browser ends.
    if let session::Lookup::Live(old) = &web.lookup {
        session::destroy(&state, old)?;
    }
    let id = session::create(&state, web.realm, &ok.user, ok.must_change_password)?;
    state
        .audit(
            "web.login",
            serde_json::json!({"account": username, "listener": realm_str(web.realm), "hospital": ok.user.hospital(),
                "password_expired": ok.must_change_password}),
        )
        .await?;
    let mut r = Redirect::to(start_page(web.realm, ok.must_change_password)).into_response();
    r.headers_mut().append(header::SET_COOKIE, session::set_cookie(session::cookie_name(web.realm), &id)?);
    Ok(r)
}

fn realm_str(r: Realm) -> &'static str {
    if r == Realm::Admin { "admin" } else { "public" }
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, user: AnyUser, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    session::destroy(&state, &user.session)?;
    state.audit("web.logout", serde_json::json!({"account": user.username()})).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, session::clear_cookie(session::cookie_name(user.realm)));
    Ok(r)
}

fn password_page(user: &AnyUser, notice: Option<(&str, &str)>, field_err: [Option<&str>; 2]) -> Response {
    let body = html! {
        div.card {
            h2 { "修改密码" span.en { "Change password" } }
            @if user.session.rec.must_change_password {
                (msg("warn", "密码已超过 90 天未修改, 请先设置新密码 (password expired: set a new one)"))
            }
            @if let Some((kind, text)) = notice { (msg(kind, text)) }
            form.f method="post" action="/account/password" autocomplete="off" {
                (csrf_field(&user.csrf))
                (row("当前密码", true, html! { input type="password" name="current" required maxlength="128"; }, None, field_err[0]))
                (row("新密码", true, html! { input type="password" name="new" required maxlength="128"; },
                    Some("至少 10 个字符, 含大写字母、小写字母、数字、符号中的至少三类; 不能与最近 5 次相同; 每 90 天须更换"),
                    field_err[1]))
                (row("确认新密码", true, html! { input type="password" name="new2" required maxlength="128"; }, None, None))
                div.actions { button.btn type="submit" { "保存" } }
            }
        }
    };
    html_ok(page(&user.frame("/account/password"), "修改密码", body))
}

/// `GET /account/password`.
pub async fn password_form(user: AnyUser) -> Response {
    password_page(&user, None, [None, None])
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    new2: String,
}

/// `POST /account/password`.
pub async fn password_change(
    State(state): State<AppState>,
    user: AnyUser,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> WebResult {
    let name = user.username().to_owned();
    match accounts::check_current_password(&state, &name, &f.current).await {
        Ok(()) => {}
        Err(LoginError::Locked { until, just_now }) => {
            if just_now {
                state.audit("web.lockout", serde_json::json!({"account": name, "until": until})).await?;
            }
            session::destroy(&state, &user.session)?;
            let mut r = Redirect::to("/login").into_response();
            r.headers_mut().append(header::SET_COOKIE, session::clear_cookie(session::cookie_name(user.realm)));
            return Ok(r);
        }
        Err(LoginError::BadCredentials) => {
            state.audit("web.password_change_failed", serde_json::json!({"account": name})).await?;
            return Ok(password_page(&user, None, [Some("当前密码错误 (wrong current password)"), None]));
        }
        Err(LoginError::Other(e)) => return Err(e.into()),
    }
    if f.new != f.new2 {
        let m = password::PolicyError::Mismatch.to_string();
        return Ok(password_page(&user, None, [None, Some(&m)]));
    }
    match accounts::set_password(&state, &name, &f.new).await? {
        Ok(()) => {}
        Err(e) => {
            let m = e.to_string();
            return Ok(password_page(&user, None, [None, Some(&m)]));
        }
    }
    session::destroy_all_of(&state, &name, Some(&user.session.key))?;
    session::clear_must_change(&state, &user.session)?;
    state.audit("web.password_changed", serde_json::json!({"account": name})).await?;
    state.store.durable().await?;
    let mut fresh = user.clone();
    fresh.session.rec.must_change_password = false;
    Ok(password_page(&fresh, Some(("ok", "密码已修改, 其他会话已退出 (password changed)")), [None, None]))
}
