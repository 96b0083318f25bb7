//! The one error type of `flumon-dmz`, and how each kind answers over HTTP.
//!
//! ```text
//!  handler ─▶ Err(Error) ─▶ IntoResponse
//!     4xx: {"error": CODE, "message": "中文 (English)"}      (what the client did wrong)
//!     5xx: {"error": "INTERNAL", "message": "服务器内部错误…"}  (details to the log only)
//!     503 + Retry-After: a full disk (STORAGE_FULL), a store given up (RESTARTING, store/health.rs)
//!  sled I/O / bug / corruption ─▶ response extension StoreFault ─▶ the store's watchdog checks it
//! ```
//! Messages never carry an identifier or a secret: callers put only fixed
//! text and counts into them.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every failure of the DMZ.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the shared library (crypto, formats, journal, key files).
    #[error("shared: {0}")]
    Shared(#[from] flumon_shared::Error),
    /// The sled store.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// Operating system I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// TLS or certificate handling.
    #[error("tls: {0}")]
    Tls(String),
    /// A configuration that cannot be used.
    #[error("config: {0}")]
    Config(String),
    /// Encoding or decoding of stored values.
    #[error("codec: {0}")]
    Codec(String),
    /// Anything else that is the server's fault.
    #[error("internal: {0}")]
    Internal(String),
    /// 401: no or bad credentials. The text is "中文 (English)".
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 400: a request the client got wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 409: conflicts with the current state (e.g. already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413 for requests other than record uploads (those answer a receipt).
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// 429 with `Retry-After` seconds.
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    /// 503: shutting down or a dependency is unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: the store keeps failing and the process is
    /// exiting to be restarted (store/health.rs); `serve` exits 75.
    #[error("store failed, restarting: {0}")]
    StoreFailed(String),
}

/// Marks a response whose error came from sled (I/O, bug, corruption), so
/// the store's watchdog checks the store (`crate::public_app`).
#[derive(Clone, Copy, Debug)]
pub struct StoreFault;

/// Seconds a client should wait while the DMZ restarts after a store failure.
pub const RESTART_RETRY_AFTER: &str = "30";

impl Error {
    /// Shorthand for a 403 with a fixed bilingual message.
    pub fn forbidden(msg: &str) -> Self {
        Error::Forbidden(msg.to_owned())
    }

    /// Shorthand for a 400 with a bilingual message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// The I/O error behind this one, if any.
    fn io(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io(e) | Error::Shared(flumon_shared::Error::Io(e)) | Error::Sled(sled::Error::Io(e)) => Some(e),
            _ => None,
        }
    }

    /// The kind of the I/O error behind this one, if any.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        self.io().map(std::io::Error::kind)
    }

    /// An error of sled itself (I/O, a reported bug, corruption): the store may be failing for good.
    pub fn is_store_fault(&self) -> bool {
        matches!(self, Error::Sled(sled::Error::Io(_) | sled::Error::ReportableBug(_) | sled::Error::Corruption { .. }))
    }

    /// A full disk (ENOSPC) or an exhausted quota (EDQUOT): the upload was not accepted and can be
    /// retried once space returns, so it answers 503 with `Retry-After`, not 500. By kind too: sled
    /// hands out copies of its stored error that keep the kind but not the OS error number.
    pub fn is_storage_full(&self) -> bool {
        self.io().is_some_and(|e| {
            e.raw_os_error().is_some_and(|c| c == 28 || c == 122)
                || matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        })
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        if self.is_storage_full() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::StoreFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_message(&self) -> (&'static str, String) {
        if self.is_storage_full() {
            return (
                "STORAGE_FULL",
                "服务器存储空间不足, 本次数据未被接收, 请稍后重试 (storage full: nothing was accepted, retry later)"
                    .to_owned(),
            );
        }
        match self {
            Error::Unauthorized(m) => ("UNAUTHORIZED", (*m).to_owned()),
            Error::Forbidden(m) => ("FORBIDDEN", m.clone()),
            Error::NotFound => ("NOT_FOUND", "未找到 (not found)".to_owned()),
            Error::BadRequest(m) => ("BAD_REQUEST", m.clone()),
            Error::Conflict(m) => ("CONFLICT", m.clone()),
            Error::TooLarge(m) => ("TOO_LARGE", m.clone()),
            Error::RateLimited { .. } => ("RATE_LIMITED", "请求过于频繁, 请稍后再试 (too many requests)".to_owned()),
            Error::Unavailable(_) => ("UNAVAILABLE", "服务暂不可用, 请稍后再试 (service unavailable)".to_owned()),
            Error::StoreFailed(_) => (
                "RESTARTING",
                "服务正在重启, 本次数据未被接收, 请稍后重试 (restarting: nothing was accepted, retry later)".to_owned(),
            ),
            _ => ("INTERNAL", "服务器内部错误, 请稍后重试或联系管理员 (internal server error)".to_owned()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // a store given up was logged once by store/health.rs; the refusals that follow are not errors
        if status.is_server_error() && !matches!(self, Error::StoreFailed(_)) {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), "request refused");
        }
        let (code, message) = self.code_and_message();
        let mut resp = (status, Json(serde_json::json!({ "error": code, "message": message }))).into_response();
        if let Error::RateLimited { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.is_storage_full() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        if matches!(self, Error::StoreFailed(_)) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RESTART_RETRY_AFTER));
        }
        if self.is_store_fault() {
            resp.extensions_mut().insert(StoreFault);
        }
        resp
    }
}

/// Result alias for the DMZ.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps any displayable codec error.
pub(crate) fn codec(e: impl std::fmt::Display) -> Error {
    Error::Codec(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_answers_503_with_retry_after() {
        let full = || std::io::Error::from_raw_os_error(28);
        for e in
            [Error::Io(full()), Error::Shared(flumon_shared::Error::Io(full())), Error::Sled(sled::Error::Io(full()))]
        {
            assert!(e.is_storage_full());
            let r = e.into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "60");
        }
        // sled's copy of its stored error: the kind survives, the OS error number does not
        let copied = sled::Error::Io(full()).clone();
        assert!(Error::Sled(copied).is_storage_full());
        let other = Error::Io(std::io::Error::from_raw_os_error(5));
        assert!(!other.is_storage_full());
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_failed_store_answers_503_with_retry_after_and_sled_faults_are_marked() {
        let r = Error::StoreFailed("flush".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), RESTART_RETRY_AFTER);
        let r = Error::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(28))).into_response();
        assert!(r.extensions().get::<StoreFault>().is_some());
        let r = Error::Sled(sled::Error::ReportableBug("x".into())).into_response();
        assert!(r.extensions().get::<StoreFault>().is_some());
        let r = Error::Io(std::io::Error::from_raw_os_error(28)).into_response();
        assert!(r.extensions().get::<StoreFault>().is_none(), "a full disk outside sled is not the store's");
        assert!(
            Error::Sled(sled::Error::Unsupported("x".into()))
                .into_response()
                .extensions()
                .get::<StoreFault>()
                .is_none()
        );
    }
}
