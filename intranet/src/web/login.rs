//! Login (password + TOTP), first-login activation (password, TOTP enrolment
//! with a server-rendered QR code, confirmation) and logout.
//!
//! ```text
//!  GET /login ─▶ form + __Host-flumon-pre cookie (double-submit CSRF, SameSite=Strict)
//!  POST /login {name, password, totp, csrf} ─▶ accounts::login ─▶ Set-Cookie flumon_session (as the API) ─▶ 303 /
//!  GET /activate ─▶ POST /activate {name, code, password ×2} ─▶ accounts::activate ─▶ QR (otpauth URI as SVG) + secret
//!                ─▶ POST /activate/confirm {name, code, totp} ─▶ accounts::confirm ─▶ 303 /login?activated=1
//!  POST /logout {csrf = session's token} ─▶ session deleted, cookie cleared
//! ```

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::layout::{Frame, html_status, msg, page, svg};
use super::{PageResult, WebUser, session_cookie};
use crate::api::{AppState, COOKIE};
use crate::auth::accounts;
use crate::{Error, Result};

/// The pre-login CSRF cookie.
pub const PRE_COOKIE: &str = "__Host-flumon-pre";

fn random_token() -> Result<String> {
    let mut b = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| Error::Internal("system random generator failed".into()))?;
    Ok(hex::encode(b))
}

/// Whether `sent` equals `expected` (constant time; empty never matches).
pub fn token_ok(expected: &str, sent: &str) -> bool {
    !expected.is_empty() && expected.len() == sent.len() && bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))
}

/// The pre-login token of the request, or a new one to set.
fn pre_token(headers: &HeaderMap) -> Result<(String, bool)> {
    match session_cookie(headers, PRE_COOKIE).filter(|t| t.len() == 48 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(t) => Ok((t, false)),
        None => Ok((random_token()?, true)),
    }
}

fn with_pre(mut r: Response, token: &str, fresh: bool) -> Response {
    if fresh
        && let Ok(v) =
            HeaderValue::from_str(&format!("{PRE_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn check_pre(headers: &HeaderMap, sent: &str) -> Result<()> {
    let cookie = session_cookie(headers, PRE_COOKIE).unwrap_or_default();
    if token_ok(&cookie, sent) {
        Ok(())
    } else {
        Err(Error::Forbidden("表单已过期，请刷新页面后重试 (CSRF check failed)"))
    }
}

const ANON: Frame<'static> = Frame { account: None, csrf: "", active: "" };

fn login_page(csrf: &str, note: Option<Markup>, name: &str) -> Markup {
    page(
        &ANON,
        "登录",
        html! {
            div.card.narrow {
                h2 { "用户登录" }
                @if let Some(n) = note { (n) }
                form method="post" action="/login" autocomplete="off" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.row { label for="name" { "用户名" } input #name type="text" name="name" value=(name) required; }
                    div.row { label for="password" { "密码" } input #password type="password" name="password" required; }
                    div.row {
                        label for="totp" { "动态口令 (TOTP, 6 位数字)" }
                        input #totp type="text" name="totp" inputmode="numeric" maxlength="6" pattern="[0-9]{6}" required;
                    }
                    div.row { button.btn #login type="submit" { "登录" } }
                }
                p.hint { "首次登录请使用系统管理员发放的激活码: " a href="/activate" { "激活账户" } }
                p.hint { "连续 5 次登录失败账户将被锁定; 会话闲置 30 分钟自动退出。" }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    expired: Option<String>,
    activated: Option<String>,
    out: Option<String>,
}

/// `GET /login`.
pub async fn login_form(headers: HeaderMap, Query(q): Query<LoginQuery>) -> PageResult {
    let (t, fresh) = pre_token(&headers)?;
    let note = if q.expired.is_some() {
        Some(msg("warn", "会话已超时或无效，请重新登录。"))
    } else if q.activated.is_some() {
        Some(msg("ok", "账户已激活，请使用新密码和动态口令登录。"))
    } else if q.out.is_some() {
        Some(msg("ok", "您已安全退出。"))
    } else {
        None
    };
    Ok(with_pre(html_status(StatusCode::OK, login_page(&t, note, "")), &t, fresh))
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: crate::api::auth::Pw,
    totp: String,
}

/// `POST /login`.
pub async fn login_post(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<LoginForm>) -> PageResult {
    check_pre(&headers, &f.csrf)?;
    let r = accounts::login(&st.db, &st.clock, f.name.trim(), &f.password, f.totp.trim()).await;
    let (kind, outcome) = match &r {
        Ok(_) => ("login.ok", "ok"),
        Err(Error::Locked) => ("login.locked", "locked"),
        Err(_) => ("login.failed", "failed"),
    };
    let role = r.as_ref().map(|s| s.role.as_str()).unwrap_or("");
    st.audit.record(kind, f.name.trim(), role, outcome, json!({ "via": "web" }))?;
    match r {
        Ok(s) => {
            let mut resp = Redirect::to("/").into_response();
            let cookie = format!("{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict", s.token);
            let v = HeaderValue::from_str(&cookie).map_err(|_| Error::Internal("cookie".into()))?;
            resp.headers_mut().append(header::SET_COOKIE, v);
            Ok(resp)
        }
        Err(e) => {
            let text = match e {
                Error::Locked => "账户已锁定，请联系系统管理员解锁 (account locked)".to_string(),
                Error::Unauthorized(m) => m.to_string(),
                Error::BadRequest(m) => m,
                other => return Err(other.into()),
            };
            let status = if text.contains("锁定") { StatusCode::LOCKED } else { StatusCode::UNAUTHORIZED };
            Ok(html_status(status, login_page(&f.csrf, Some(msg("err", &text)), f.name.trim())))
        }
    }
}

/// A form carrying only the CSRF token (logout, account actions).
#[derive(Deserialize)]
pub struct CsrfFormPub {
    pub csrf: String,
}

/// `POST /logout`.
pub async fn logout(State(st): State<AppState>, u: WebUser, Form(f): Form<CsrfFormPub>) -> PageResult {
    if !token_ok(&u.csrf, &f.csrf) {
        return Err(u.err(Error::Forbidden("CSRF 校验失败 (CSRF check failed)")));
    }
    accounts::logout(&st.db, &u.token).await?;
    st.audit.record("logout", &u.account.name, u.account.role.as_str(), "ok", json!({ "via": "web" }))?;
    let mut resp = Redirect::to("/login?out=1").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("flumon_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

fn activate_page(csrf: &str, note: Option<Markup>, name: &str) -> Markup {
    page(
        &ANON,
        "激活账户",
        html! {
            div.card.narrow {
                h2 { "激活账户 · 第 1 步: 设置密码" }
                @if let Some(n) = note { (n) }
                form method="post" action="/activate" autocomplete="off" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.row { label for="name" { "用户名" } input #name type="text" name="name" value=(name) required; }
                    div.row { label for="code" { "激活码 (由系统管理员发放, 一次有效)" } input #code type="text" name="code" required; }
                    div.row { label for="password" { "新密码" } input #password type="password" name="password" required; }
                    div.row { label for="password2" { "再次输入新密码" } input #password2 type="password" name="password2" required; }
                    p.hint { "密码至少 10 位, 须包含大写字母、小写字母、数字和符号中的至少三类, 不得包含用户名。" }
                    div.row { button.btn #activate type="submit" { "下一步: 绑定动态口令" } }
                }
            }
        },
    )
}

/// `GET /activate`.
pub async fn activate_form(headers: HeaderMap) -> PageResult {
    let (t, fresh) = pre_token(&headers)?;
    Ok(with_pre(html_status(StatusCode::OK, activate_page(&t, None, "")), &t, fresh))
}

/// The activation form.
#[derive(Deserialize)]
pub struct ActivateForm {
    csrf: String,
    name: String,
    code: String,
    password: crate::api::auth::Pw,
    password2: crate::api::auth::Pw,
}

/// The otpauth URI as an SVG QR code.
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("qr: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// `POST /activate`.
pub async fn activate_post(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<ActivateForm>) -> PageResult {
    check_pre(&headers, &f.csrf)?;
    let name = f.name.trim();
    if *f.password != *f.password2 {
        let note = msg("err", "两次输入的密码不一致 (passwords differ)");
        return Ok(html_status(StatusCode::BAD_REQUEST, activate_page(&f.csrf, Some(note), name)));
    }
    let r = accounts::activate(&st.db, &st.clock, name, f.code.trim(), &f.password).await;
    st.audit.record("account.activate", name, "", if r.is_ok() { "ok" } else { "failed" }, json!({ "via": "web" }))?;
    let e = match r {
        Ok(e) => e,
        Err(Error::Unauthorized(m)) => {
            return Ok(html_status(StatusCode::UNAUTHORIZED, activate_page(&f.csrf, Some(msg("err", m)), name)));
        }
        Err(Error::BadRequest(m)) => {
            return Ok(html_status(StatusCode::BAD_REQUEST, activate_page(&f.csrf, Some(msg("err", &m)), name)));
        }
        Err(other) => return Err(other.into()),
    };
    let qr = qr_svg(&e.otpauth_uri)?;
    let body = html! {
        div.card.narrow {
            h2 { "激活账户 · 第 2 步: 绑定动态口令" }
            (msg("ok", "密码已设置。请用手机上的身份验证器 (动态口令) 应用扫描下方二维码。"))
            div.qr {
                (svg(qr))
                div {
                    p { "无法扫码时, 请手动输入密钥:" }
                    p { code.secret #secret { (e.totp_secret) } }
                    p.hint { "TOTP (RFC 6238): SHA1, 30 秒, 6 位数字。密钥只显示这一次。" }
                }
            }
            form method="post" action="/activate/confirm" autocomplete="off" {
                input type="hidden" name="csrf" value=(f.csrf);
                input type="hidden" name="name" value=(name);
                input type="hidden" name="code" value=(f.code.trim());
                div.row {
                    label for="totp" { "输入应用显示的 6 位动态口令以确认" }
                    input #totp type="text" name="totp" inputmode="numeric" maxlength="6" required;
                }
                div.row { button.btn #confirm type="submit" { "确认并完成激活" } }
            }
        }
    };
    Ok(html_status(StatusCode::OK, page(&ANON, "绑定动态口令", body)))
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    name: String,
    code: String,
    totp: String,
}

/// `POST /activate/confirm`.
pub async fn confirm_post(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<ConfirmForm>) -> PageResult {
    check_pre(&headers, &f.csrf)?;
    let r = accounts::confirm(&st.db, &st.clock, f.name.trim(), f.code.trim(), f.totp.trim()).await;
    st.audit.record(
        "account.confirm",
        f.name.trim(),
        "",
        if r.is_ok() { "ok" } else { "failed" },
        json!({ "via": "web" }),
    )?;
    match r {
        Ok(()) => Ok(Redirect::to("/login?activated=1").into_response()),
        Err(Error::Unauthorized(m)) => {
            let note = msg("err", &format!("{m}。请重新开始激活。"));
            Ok(html_status(StatusCode::UNAUTHORIZED, activate_page(&f.csrf, Some(note), f.name.trim())))
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_and_tokens() {
        let s = qr_svg("otpauth://totp/flumon:%E5%86%85?secret=JBSWY3DPEHPK3PXP&issuer=flumon").unwrap();
        assert!(s.contains("<svg") && s.contains("</svg>"));
        assert!(token_ok("abc", "abc"));
        assert!(!token_ok("", ""));
        assert!(!token_ok("abc", "abd"));
        let t = random_token().unwrap();
        assert_eq!(t.len(), 48);
    }
}
