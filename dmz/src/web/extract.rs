//! What every web handler starts from: the listener guard (Origin check,
//! security headers, anonymous CSRF cookie), the request's session, the
//! signed-in user of the right kind, and forms whose CSRF token was checked.
//!
//! ```text
//!  request ─▶ guard (layer, per router): realm into extensions; POST: Origin/Referer = own origin,
//!             body urlencoded or multipart, else 403; no __Host-flumon-pre cookie → make one
//!          ─▶ Web (session lookup, CSRF token) ─▶ HospitalUser / ReviewerUser / AnyUser (else → /login)
//!          ─▶ CsrfForm<T>: urlencoded body, field csrf = token, else 403
//!  response ◀─ CSP, nosniff, frame-ancestors none, no-store, HSTS (+ Set-Cookie of the new pre token)
//! ```
//! Multipart forms (uploads, registration) check the token themselves with
//! [`check_token`] before they read a file.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::csrf;
use super::layout::{self, Frame, Realm};
use super::session::{self, COOKIE_PRE, Lookup, Session};
use crate::error::Error;
use crate::state::AppState;

/// Largest urlencoded form.
const FORM_MAX: usize = 64 * 1024;

/// An error answered as an HTML page.
#[derive(Debug)]
pub struct WebError(pub Error);

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        WebError(e)
    }
}

impl From<sled::Error> for WebError {
    fn from(e: sled::Error) -> Self {
        WebError(Error::Sled(e))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let text = match &self.0 {
            Error::Forbidden(m) | Error::BadRequest(m) | Error::Conflict(m) | Error::TooLarge(m) => m.clone(),
            Error::Unauthorized(m) => (*m).to_owned(),
            Error::NotFound => "未找到该页面或记录 (not found)".to_owned(),
            Error::RateLimited { .. } => "请求过于频繁, 请稍后再试 (too many requests)".to_owned(),
            other => {
                tracing::error!(error = %other, "web request failed");
                "服务器内部错误, 请稍后重试或联系管理员 (internal server error)".to_owned()
            }
        };
        let mut r = layout::error_page(Realm::Public, status, &text);
        if let Error::RateLimited { retry_after } = self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Result of a web handler.
pub type WebResult = Result<Response, WebError>;

fn forbidden(text: &str) -> Response {
    layout::error_page(Realm::Public, StatusCode::FORBIDDEN, text)
}

/// The layer of each web router: see the module docs.
pub async fn guard(realm: Realm, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(realm);
    let mut new_pre = None;
    if session::cookie(req.headers(), COOKIE_PRE).is_none_or(|v| v.len() != 43)
        && let Ok(t) = csrf::new_token()
    {
        if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE_PRE}={t}")) {
            req.headers_mut().append(header::COOKIE, v);
        }
        new_pre = Some(t);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let h = req.headers();
        let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
        let host = get(header::HOST).map(str::to_owned).or_else(|| req.uri().authority().map(|a| a.to_string()));
        if !csrf::same_origin(get(header::ORIGIN), get(header::REFERER), host.as_deref(), &[]) {
            tracing::info!("cross-site or origin-less POST refused");
            return secure(forbidden("跨站请求被拒绝 (cross-site request refused)"), None);
        }
        let ct = get(header::CONTENT_TYPE).unwrap_or_default().to_ascii_lowercase();
        if !(ct.starts_with("application/x-www-form-urlencoded") || ct.starts_with("multipart/form-data")) {
            return secure(forbidden("不支持的请求类型 (unsupported request type)"), None);
        }
    }
    let resp = next.run(req).await;
    secure(resp, new_pre)
}

fn secure(mut r: Response, new_pre: Option<String>) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        if !h.contains_key(k) {
            h.insert(k, HeaderValue::from_static(v));
        }
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    set(h, "strict-transport-security", "max-age=31536000");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    if let Some(t) = new_pre
        && let Ok(v) = session::set_cookie(COOKIE_PRE, &t)
    {
        h.append(header::SET_COOKIE, v);
    }
    r
}

/// The request as the web layer sees it.
#[derive(Clone, Debug)]
pub struct Web {
    pub realm: Realm,
    pub lookup: Lookup,
    /// The CSRF token forms must carry: the session's, or the anonymous cookie's.
    pub csrf: String,
}

impl Web {
    /// The page frame for an anonymous (or any) visitor.
    pub fn frame<'a>(&'a self, active: &'a str) -> Frame<'a> {
        match &self.lookup {
            Lookup::Live(s) => Frame {
                realm: if self.realm == Realm::Admin { Realm::Admin } else { Realm::Hospital },
                active,
                user: Some(&s.rec.display),
                csrf: &self.csrf,
            },
            _ => Frame {
                realm: if self.realm == Realm::Admin { Realm::Admin } else { Realm::Public },
                active,
                user: None,
                csrf: &self.csrf,
            },
        }
    }
}

impl FromRequestParts<AppState> for Web {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(w) = parts.extensions.get::<Web>() {
            return Ok(w.clone());
        }
        let realm = parts.extensions.get::<Realm>().copied().unwrap_or(Realm::Hospital);
        let lookup = session::lookup(state, realm, &parts.headers).map_err(|e| WebError(e).into_response())?;
        let csrf = match &lookup {
            Lookup::Live(s) => s.rec.csrf.clone(),
            _ => session::cookie(&parts.headers, COOKIE_PRE).unwrap_or_default(),
        };
        let w = Web { realm, lookup, csrf };
        parts.extensions.insert(w.clone());
        Ok(w)
    }
}

/// A signed-in user (any kind, password change pending allowed).
#[derive(Clone, Debug)]
pub struct AnyUser {
    pub session: Session,
    pub realm: Realm,
    pub csrf: String,
}

impl AnyUser {
    pub fn frame<'a>(&'a self, active: &'a str) -> Frame<'a> {
        Frame { realm: self.realm, active, user: Some(&self.session.rec.display), csrf: &self.csrf }
    }

    pub fn username(&self) -> &str {
        &self.session.rec.username
    }
}

fn to_login(expired: bool) -> Response {
    Redirect::to(if expired { "/login?expired=1" } else { "/login" }).into_response()
}

impl FromRequestParts<AppState> for AnyUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let w = Web::from_request_parts(parts, state).await?;
        match w.lookup {
            Lookup::Live(session) => Ok(AnyUser {
                session,
                realm: if w.realm == Realm::Admin { Realm::Admin } else { Realm::Hospital },
                csrf: w.csrf,
            }),
            Lookup::Expired => Err(to_login(true)),
            Lookup::None => Err(to_login(false)),
        }
    }
}

async fn fully_signed(parts: &mut Parts, state: &AppState) -> Result<AnyUser, Response> {
    let u = AnyUser::from_request_parts(parts, state).await?;
    if u.session.rec.must_change_password {
        return Err(Redirect::to("/account/password").into_response());
    }
    Ok(u)
}

/// A hospital user on the public listener; `code` comes from the session only.
#[derive(Clone, Debug)]
pub struct HospitalUser {
    pub user: AnyUser,
    pub code: String,
}

impl FromRequestParts<AppState> for HospitalUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = fully_signed(parts, state).await?;
        match (user.realm, user.session.rec.hospital.clone()) {
            (Realm::Hospital, Some(code)) => Ok(HospitalUser { user, code }),
            _ => Err(forbidden("仅限医疗机构用户 (hospital users only)")),
        }
    }
}

/// A reviewer on the admin listener.
#[derive(Clone, Debug)]
pub struct ReviewerUser(pub AnyUser);

impl FromRequestParts<AppState> for ReviewerUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = fully_signed(parts, state).await?;
        if user.realm == Realm::Admin && user.session.rec.hospital.is_none() {
            Ok(ReviewerUser(user))
        } else {
            Err(forbidden("仅限审核人员 (reviewers only)"))
        }
    }
}

/// Checks a submitted CSRF token against the request's: `Some(403 page)` on mismatch.
pub fn check_token(web: &Web, submitted: Option<&str>) -> Option<Response> {
    if csrf::token_ok(&web.csrf, submitted) {
        None
    } else {
        tracing::info!("POST with a missing or wrong CSRF token refused");
        Some(forbidden("表单已失效或来源无效, 请刷新页面后重试 (CSRF token missing or wrong)"))
    }
}

/// An urlencoded form whose `csrf` field was checked.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct TokenOnly {
    csrf: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let web = Web::from_request_parts(&mut parts, state).await?;
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(forbidden("不支持的请求类型 (unsupported request type)"));
        }
        let bytes = axum::body::to_bytes(body, FORM_MAX)
            .await
            .map_err(|_| WebError(Error::TooLarge("表单过大 (form too large)".into())).into_response())?;
        let tok: TokenOnly = serde_urlencoded::from_bytes(&bytes).unwrap_or(TokenOnly { csrf: None });
        if let Some(r) = check_token(&web, tok.csrf.as_deref()) {
            return Err(r);
        }
        let t: T = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| WebError(Error::bad_request("表单内容无效 (invalid form)")).into_response())?;
        Ok(CsrfForm(t))
    }
}
