//! The JSON API under `/api/v1/` (docs/API.md): state, the authenticated
//! account of a request (bearer token or session cookie + CSRF header), and
//! the router. Role checks are here; scope checks are `indicators::scoped`.
//!
//! ```text
//!  request ─▶ Authed (Authorization: Bearer T | Cookie flumon_session=T [+ X-CSRF-Token on writes];
//!                     password older than 90 days ─▶ 403 except /auth/password, /auth/logout, /me)
//!     │   (rate limits per account and address, limits.rs: 429)
//!     ├─ /auth/*, /me ─────────────────────────── auth.rs
//!     ├─ analyst:  /indicators /timeseries /regions /mem /nowcast /quality /drugs ─▶ data.rs ─▶ scoped()
//!     ├─ sysadmin: /admin/users…                  ─▶ admin.rs
//!     ├─ secadmin: /security/journals|events|reconcile ─▶ admin.rs
//!     └─ auditor:  /audit/journal                 ─▶ admin.rs
//! ```

pub mod admin;
pub mod auth;
pub mod data;
pub mod limits;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::routing::{get, post};

use crate::audit::Audit;
use crate::auth::{Clock, authenticate};
use crate::config::JournalSource;
use crate::db::Db;
use crate::indicators::{Account, Role};
use crate::{Error, Result};

/// The refusal while a password is older than 90 days.
pub const PASSWORD_EXPIRED: &str = "密码已超过 90 天未修改，请先修改密码 (password expired: change it first)";

/// The session cookie.
pub const COOKIE: &str = "flumon_session";

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub audit: Audit,
    pub clock: Clock,
    pub journals: Arc<Vec<JournalSource>>,
    /// Login and API rate limits (shared by every request of this server).
    pub limits: Arc<limits::RateLimits>,
}

/// The account behind a request.
#[derive(Clone, Debug)]
pub struct Authed {
    pub account: Account,
    pub token: String,
}

impl Authed {
    /// Refuses other roles.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.account.role == role {
            Ok(())
        } else {
            Err(Error::Forbidden("该角色无权访问此功能 (not allowed for this role)"))
        }
    }
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| val.to_string())
        })
    })
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let (token, via_cookie) = match bearer {
            Some(t) => (t, false),
            None => (cookie_token(parts).ok_or(Error::Unauthorized("请先登录 (login required)"))?, true),
        };
        let addr = limits::client_addr(&parts.extensions);
        let (account, csrf) = authenticate(&state.db, &state.clock, &token)
            .await?
            .ok_or(Error::Unauthorized("会话无效或已超时，请重新登录 (session expired)"))?;
        if via_cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes())) || csrf.is_empty() {
                return Err(Error::Forbidden("CSRF 校验失败 (CSRF check failed)"));
            }
        }
        let l = &state.limits;
        l.check("api", &account.name, &addr, l.api_per_account, l.api_per_address, state.clock.now())?;
        // LEVEL3: a password older than 90 days must be changed before anything else.
        let path = parts.uri.path();
        let allowed = ["/auth/password", "/auth/logout", "/me"].iter().any(|p| path.ends_with(p));
        if !allowed && crate::auth::accounts::password_expired(&state.db, &state.clock, &account.name).await? {
            return Err(Error::Forbidden(PASSWORD_EXPIRED));
        }
        Ok(Authed { account, token })
    }
}

/// The whole application: the API and the (later) web pages.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/activate", post(auth::activate))
        .route("/auth/confirm", post(auth::confirm))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/password", post(auth::password))
        .route("/me", get(auth::me))
        .route("/indicators", get(data::indicators))
        .route("/timeseries", get(data::timeseries))
        .route("/regions", get(data::regions))
        .route("/mem", get(data::mem_levels))
        .route("/nowcast", get(data::nowcast))
        .route("/quality", get(data::quality))
        .route("/drugs", get(data::drugs))
        .route("/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/admin/users/{name}/{action}", post(admin::user_action))
        .route("/security/journals", get(admin::journals))
        .route("/security/journals/{name}", get(admin::journal_entries))
        .route("/security/events", get(admin::events))
        .route("/security/reconcile", get(admin::reconcile))
        .route("/security/transfer/reconcile", get(admin::transfer_reconcile))
        .route("/security/transfer/events", get(admin::link_events))
        .route(
            "/security/sender-journal",
            post(admin::upload_sender_journal)
                .layer(axum::extract::DefaultBodyLimit::max(admin::MAX_SENDER_JOURNAL + (1 << 20))),
        )
        .route("/audit/journal", get(admin::audit_journal));
    Router::new().nest("/api/v1", api).merge(crate::web::router()).with_state(state)
}
