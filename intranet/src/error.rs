//! The one error type of `flumon-intranet`, and how each kind answers over HTTP.
//!
//! ```text
//!  handler ─▶ Err(Error) ─▶ IntoResponse
//!     4xx: {"error": CODE, "message": "中文 (English)"}       (what the client did wrong)
//!     5xx: {"error": "INTERNAL", "message": "服务器内部错误…"}   (details to the log only)
//! ```
//! Messages never carry an identifier or a secret.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Every failure of the intranet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the shared library (crypto, batch format, journal).
    #[error("shared: {0}")]
    Shared(#[from] flumon_shared::Error),
    /// The database.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Operating system I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// JSON encoding or decoding.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// TLS or certificate handling.
    #[error("tls: {0}")]
    Tls(String),
    /// A configuration that cannot be used.
    #[error("config: {0}")]
    Config(String),
    /// Anything else that is the server's fault.
    #[error("internal: {0}")]
    Internal(String),
    /// 400: a request the client got wrong ("中文 (English)").
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no or bad credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 409: conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 423: the account is locked.
    #[error("locked")]
    Locked,
    /// 429: too many requests from this account or address.
    #[error("too many requests: {0}")]
    TooMany(&'static str),
}

impl Error {
    /// The HTTP status and stable code of this error.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Error::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            Error::Locked => (StatusCode::LOCKED, "LOCKED"),
            Error::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let message = match &self {
            Error::BadRequest(m) | Error::Conflict(m) => m.clone(),
            Error::Unauthorized(m) | Error::Forbidden(m) | Error::TooMany(m) => (*m).to_string(),
            Error::NotFound => "未找到 (not found)".into(),
            Error::Locked => "账户已锁定，请30分钟后再试 (account locked for 30 minutes)".into(),
            other => {
                tracing::error!(error = %other, "internal error");
                "服务器内部错误，请联系系统管理员 (internal server error)".into()
            }
        };
        (status, Json(serde_json::json!({ "error": code, "message": message }))).into_response()
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
