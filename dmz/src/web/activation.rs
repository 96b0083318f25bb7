//! One-time activation links: a new account (hospital after approval, or a
//! reviewer from the CLI) sets its password and enrols TOTP.
//!
//! ```text
//!  issue(user) ─▶ token (32 random bytes) ─▶ web_activation[SM3(token)] = {user, expires, TOTP secret (sealed)}
//!                 earlier tokens of the user are deleted; the link is mailed (or printed by the CLI)
//!  GET  /activate/{token}   QR code (otpauth://, inline SVG) + base32 secret + password form
//!  POST /activate/{token}   rules ─▶ TOTP code matches the secret ─▶ token removed (CAS: one use)
//!                           ─▶ account: password, TOTP, active ─▶ audit web.activated
//! ```
//! Links expire after `[web] activation_hours` (72 h). A hospital token works
//! only on the public listener, a reviewer token only on the admin listener.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use flumon_shared::crypto::sm3;

use super::accounts::{self, Role};
use super::csrf::b64url;
use super::extract::{CsrfForm, Web, WebResult};
use super::layout::{Realm, csrf_field, html_ok, msg, page, row, trusted_svg};
use super::store::{self, ACTIVATION, now};
use super::{password, totp};
use crate::error::{Error, Result};
use crate::state::AppState;

/// A pending activation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Activation {
    pub username: String,
    pub expires: i64,
    /// The TOTP secret to enrol, sealed like an account's.
    pub totp_sealed: String,
}

/// Makes a new activation token for `username` (replacing earlier ones).
pub async fn issue(state: &AppState, username: &str) -> Result<Zeroizing<String>> {
    let s = super::settings(state)?;
    let key = super::web_key(state)?;
    let tree = store::tree(state, ACTIVATION)?;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if serde_json::from_slice::<Activation>(&v).is_ok_and(|a| a.username == username || a.expires < now()) {
            tree.remove(k)?;
        }
    }
    let raw: Zeroizing<[u8; 32]> = Zeroizing::new(flumon_shared::crypto::random_array()?);
    let token = Zeroizing::new(b64url(raw.as_slice()));
    let secret = totp::generate_secret().map_err(Error::Internal)?;
    let a = Activation {
        username: username.to_owned(),
        expires: now() + s.activation_secs,
        totp_sealed: accounts::seal_totp(&key, username, &secret)?,
    };
    store::put(&tree, &sm3(token.as_bytes()), &a)?;
    state.store.durable().await?;
    Ok(token)
}

fn find(state: &AppState, web: &Web, token: &str) -> Result<(Activation, accounts::User)> {
    let invalid = || {
        Error::bad_request("激活链接无效、已使用或已过期, 请联系审核人员重新发送 (activation link invalid or expired)")
    };
    if token.len() != 43 {
        return Err(invalid());
    }
    let tree = store::tree(state, ACTIVATION)?;
    let a: Activation = store::get(&tree, &sm3(token.as_bytes()))?.ok_or_else(invalid)?;
    if a.expires < now() {
        return Err(invalid());
    }
    let user = accounts::get(state, &a.username)?.ok_or_else(invalid)?;
    let fits =
        matches!((&user.role, web.realm), (Role::Reviewer, Realm::Admin) | (Role::Hospital { .. }, Realm::Hospital));
    if !fits {
        return Err(invalid());
    }
    Ok((a, user))
}

fn open_secret(state: &AppState, a: &Activation) -> Result<Zeroizing<Vec<u8>>> {
    let key = super::web_key(state)?;
    let aad = format!("flumon-web totp v1\u{1f}{}", a.username);
    let bytes = hex::decode(&a.totp_sealed).map_err(crate::error::codec)?;
    Ok(Zeroizing::new(flumon_shared::crypto::open(&key, aad.as_bytes(), &bytes)?))
}

fn activation_page(state: &AppState, web: &Web, token: &str, errs: [Option<&str>; 2]) -> WebResult {
    let (a, user) = find(state, web, token)?;
    let s = super::settings(state)?;
    let secret = open_secret(state, &a)?;
    let uri = Zeroizing::new(totp::otpauth_uri(&s.totp_issuer, &a.username, &secret));
    let svg = totp::qr_svg(&uri).map_err(Error::Internal)?;
    let b32 = Zeroizing::new(totp::base32_encode(&secret));
    let spaced: String =
        b32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
    let body = html! {
        div.card {
            h2 { "激活账户" span.en { "Activate your account" } }
            (msg("ok", "请设置登录密码, 并在手机身份验证器应用中添加动态验证码 (TOTP)。此链接只能使用一次。"))
            table.t.kv {
                tr { th { "用户名" } td { b { (a.username) } } }
                tr { th { "名称" } td { (user.display) } }
                tr { th { "链接有效期至" } td { (super::layout::cst(a.expires)) } }
            }
            h3 { "第一步: 添加动态验证码" }
            div.qr {
                (trusted_svg(svg))
                div {
                    p { "用身份验证器应用 (如 FreeOTP、Google Authenticator、Microsoft Authenticator) 扫描左侧二维码;" }
                    p { "无法扫描时, 手动输入密钥 (基于时间, 6 位, 30 秒):" }
                    p.secret { (spaced) }
                }
            }
            h3 { "第二步: 设置密码并输入验证码" }
            form.f method="post" action={ "/activate/" (token) } autocomplete="off" {
                (csrf_field(&web.csrf))
                (row("新密码", true, html! { input type="password" name="password" required maxlength="128"; },
                    Some("至少 10 个字符, 含大写字母、小写字母、数字、符号中的至少三类"), errs[0]))
                (row("确认密码", true, html! { input type="password" name="password2" required maxlength="128"; }, None, None))
                (row("动态验证码", true, html! {
                    input type="text" name="code" required inputmode="numeric" pattern="[0-9]{6}" maxlength="6";
                }, Some("身份验证器应用中显示的 6 位数字"), errs[1]))
                div.actions { button.btn type="submit" { "激活账户" } }
            }
        }
    };
    Ok(html_ok(page(&web.frame(""), "激活账户", body)))
}

/// `GET /activate/{token}`.
pub async fn form(State(state): State<AppState>, web: Web, Path(token): Path<String>) -> WebResult {
    activation_page(&state, &web, &token, [None, None])
}

#[derive(Deserialize)]
pub struct ActivateForm {
    password: String,
    password2: String,
    code: String,
}

/// `POST /activate/{token}`.
pub async fn submit(
    State(state): State<AppState>,
    web: Web,
    Path(token): Path<String>,
    CsrfForm(f): CsrfForm<ActivateForm>,
) -> WebResult {
    let (a, _) = find(&state, &web, &token)?;
    if let Err(e) = password::check_policy(&f.password, &a.username) {
        return activation_page(&state, &web, &token, [Some(&e.to_string()), None]);
    }
    if f.password != f.password2 {
        return activation_page(&state, &web, &token, [Some(&password::PolicyError::Mismatch.to_string()), None]);
    }
    let secret = open_secret(&state, &a)?;
    let t = now();
    let Some(step) = totp::verify(&secret, &f.code, u64::try_from(t).unwrap_or(0), 0) else {
        return activation_page(&state, &web, &token, [None, Some("动态验证码不正确, 请检查手机时间 (wrong code)")]);
    };
    let pw = password::Secret::new(f.password.clone());
    let phc = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| Error::Internal(format!("password task: {e}")))?
        .map_err(Error::Internal)?;
    // One use: the token is removed only if it is still the one we read.
    let tree = store::tree(&state, ACTIVATION)?;
    let key = sm3(token.as_bytes());
    let cur = tree.get(key)?;
    let Some(cur) = cur else {
        return Err(Error::bad_request("激活链接已使用 (activation link already used)").into());
    };
    if tree.compare_and_swap(key, Some(cur), None::<&[u8]>)?.is_err() {
        return Err(Error::bad_request("激活链接已使用 (activation link already used)").into());
    }
    let sealed = a.totp_sealed.clone();
    accounts::modify(&state, &a.username, |u| {
        u.password = Some(phc.clone());
        u.password_changed = t;
        u.history = vec![phc.clone()];
        u.totp_sealed = Some(sealed.clone());
        u.totp_last_step = step;
        u.active = true;
        Ok(())
    })?;
    super::session::destroy_all_of(&state, &a.username, None)?;
    state.audit("web.activated", serde_json::json!({"account": a.username})).await?;
    state.store.durable().await?;
    Ok(Redirect::to("/login?activated=1").into_response())
}
