//! The web pages (Chinese, server-rendered with maud, SVG charts from
//! `flumon_shared::svgchart`, assets embedded): mounted at `/` beside the
//! API. A page reads through the same query layer and the same one access
//! check (`api::data::scope_of` → `indicators::scoped`) as the API.
//!
//! ```text
//!  browser ─▶ /login /activate /logout          login.rs   (pre-login CSRF cookie, session cookie = API's)
//!          ─▶ WebUser (cookie → authenticate, idle timeout) ─▶ role pages:
//!               analyst:  /overview /series /mem /map /drugs /quality  ─▶ scope_of ─▶ scoped ─▶ rollups
//!               secadmin: /security /security/events                   ─▶ api::admin handlers
//!               sysadmin: /users (+ POST actions)                      ─▶ api::admin handlers
//!               auditor:  /audit                                       ─▶ api::admin handlers
//!          every table: ?format=csv|xlsx&table=NAME                    table.rs
//!          Err(Error) ─▶ HTML error page (403 → 无权访问)
//! ```

pub mod admin;
pub mod analyst;
pub mod charts;
pub mod filters;
pub mod geo;
pub mod layout;
pub mod login;
pub mod table;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::{AppState, Authed, COOKIE};
use crate::auth::authenticate;
use crate::indicators::{Account, Role};
use layout::Frame;

/// The signed-in account of a page request.
#[derive(Clone, Debug)]
pub struct WebUser {
    pub account: Account,
    pub token: String,
    pub csrf: String,
}

impl WebUser {
    /// The frame of its pages.
    pub fn frame<'a>(&'a self, active: &'a str) -> Frame<'a> {
        Frame { account: Some(&self.account), csrf: &self.csrf, active }
    }

    /// As the API's authenticated account (to call its handlers).
    pub fn authed(&self) -> Authed {
        Authed { account: self.account.clone(), token: self.token.clone() }
    }

    /// Refuses other roles with a 无权访问 page.
    pub fn require(&self, role: Role) -> Result<(), PageError> {
        if self.account.role == role {
            Ok(())
        } else {
            Err(self.err(crate::Error::Forbidden("该角色无权访问此页面 (not allowed for this role)")))
        }
    }

    /// An error shown inside this user's frame.
    pub fn err(&self, e: crate::Error) -> PageError {
        PageError { error: Box::new(e), user: Some(Box::new(self.clone())) }
    }
}

/// The session cookie's value.
pub fn session_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == name).then(|| val.to_string())
        })
    })
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login?expired=1").into_response();
        let Some(token) = session_cookie(&parts.headers, COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match authenticate(&st.db, &st.clock, &token).await {
            Ok(Some((account, csrf))) => Ok(WebUser { account, token, csrf }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// A failed page: rendered as an HTML error page.
#[derive(Debug)]
pub struct PageError {
    pub error: Box<crate::Error>,
    pub user: Option<Box<WebUser>>,
}

impl From<crate::Error> for PageError {
    fn from(error: crate::Error) -> PageError {
        PageError { error: Box::new(error), user: None }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _) = self.error.status();
        let text = match self.error.as_ref() {
            crate::Error::BadRequest(m) | crate::Error::Conflict(m) => m.clone(),
            crate::Error::Unauthorized(m) | crate::Error::Forbidden(m) => (*m).to_string(),
            crate::Error::NotFound => "未找到 (not found)".into(),
            crate::Error::Locked => "账户已锁定，请联系系统管理员 (account locked)".into(),
            other => {
                tracing::error!("web page: {other}");
                "服务器内部错误，请稍后再试 (internal error)".into()
            }
        };
        let frame = match &self.user {
            Some(u) => u.frame(""),
            None => Frame { account: None, csrf: "", active: "" },
        };
        layout::error_page(&frame, status, &text)
    }
}

/// Page result.
pub type PageResult = Result<Response, PageError>;

async fn home(u: WebUser) -> Response {
    let to = match u.account.role {
        Role::Analyst => "/overview",
        Role::Secadmin => "/security",
        Role::Sysadmin => "/users",
        Role::Auditor => "/audit",
    };
    Redirect::to(to).into_response()
}

async fn not_found() -> Response {
    layout::error_page(&Frame { account: None, csrf: "", active: "" }, StatusCode::NOT_FOUND, "页面不存在 (not found)")
}

/// The pages' router.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(home))
        .route("/static/style.css", get(layout::css))
        .route("/static/app.js", get(layout::js))
        .route("/login", get(login::login_form).post(login::login_post))
        .route("/logout", post(login::logout))
        .route("/activate", get(login::activate_form).post(login::activate_post))
        .route("/activate/confirm", post(login::confirm_post))
        .route("/overview", get(analyst::overview))
        .route("/series", get(charts::series))
        .route("/mem", get(charts::mem))
        .route("/map", get(geo::map))
        .route("/drugs", get(analyst::drugs))
        .route("/quality", get(analyst::quality))
        .route("/security", get(admin::security))
        .route("/security/events", get(admin::events))
        .merge(admin::transfer_routes())
        .route("/users", get(admin::users).post(admin::create_user))
        .route("/users/{name}/{action}", post(admin::user_action))
        .route("/audit", get(admin::audit))
        .fallback(not_found)
}
