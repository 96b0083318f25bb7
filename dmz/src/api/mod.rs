//! The agents' API on the public listener (INTERFACE §1): uploads, death
//! scans, enrolment, ping. Every call but enrolment needs the bearer token
//! AND a client certificate registered to the same hospital.
//!
//! ```text
//!  POST /api/v1/upload/{type}  auth ─▶ rate limit (token) ─▶ body ≤ 64 MiB (else 413 + receipt)
//!                              ─▶ stream::receive: ≤ 4 MiB in memory, else streamed into the archive
//!                              ─▶ pipeline::process_upload_via / process_spooled ─▶ 200 / 422 / 413 + receipt
//!  POST /api/v1/scans          auth ─▶ multipart (scans.rs) ─▶ raw archive + ScanInfo ─▶ receipt
//!  POST /api/v1/enroll         {uscc, code, csr} ─▶ one-time code burnt ─▶ client certificate
//!  GET  /api/v1/ping           auth ─▶ {ok, hospital, node, time}
//! ```

mod scans;
pub mod stream;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use flumon_shared::model::RecordType;

use crate::error::{Error, Result};
use crate::hospitals;
use crate::metrics::Metrics;
use crate::pipeline::{self, Via};
use crate::server::Peer;
use crate::state::AppState;

/// The `/api/v1` routes.
pub fn router(state: &AppState) -> Router<AppState> {
    let lim = &state.config.limits;
    Router::new()
        .route("/api/v1/upload/{type}", post(upload).layer(DefaultBodyLimit::disable()))
        .route(
            "/api/v1/scans",
            post(scans::scans).layer(DefaultBodyLimit::max(lim.scan_max_bytes.saturating_add(1 << 20))),
        )
        .route("/api/v1/enroll", post(enroll).layer(DefaultBodyLimit::max(lim.other_max_bytes)))
        .route("/api/v1/ping", get(ping))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Authenticates an agent request and applies the per-token rate limit
/// (keyed by the hospital the token belongs to; failed attempts count
/// against the per-address limit only); returns the hospital code.
pub fn agent(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Result<String> {
    let code = hospitals::authenticate(state, bearer(headers), peer.cert_fp.as_deref()).inspect_err(|e| {
        if matches!(e, Error::Unauthorized(_) | Error::Forbidden(_)) {
            Metrics::add(&state.metrics.auth_failures, 1);
        }
    })?;
    state.limits.token(&format!("agent:{code}")).inspect_err(|_| Metrics::add(&state.metrics.rate_limited, 1))?;
    Ok(code)
}

/// Per-address rate limit for every request of the public listener.
pub async fn per_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<Peer>()
        && let Err(e) = state.limits.addr(peer.addr.ip())
    {
        Metrics::add(&state.metrics.rate_limited, 1);
        return e.into_response();
    }
    next.run(req).await
}

async fn upload(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    Path(ty): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    let org = agent(&state, &headers, &peer)?;
    let Some(ty) = RecordType::parse(&ty) else {
        return Err(Error::bad_request("未知的记录类型 (unknown record type)"));
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let max = state.config.limits.upload_max_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    // past the limit the rest of the body is read and dropped (up to a bound), so that
    // the client sees the 413 receipt instead of a connection reset
    let drain_cap = (max as u64).saturating_mul(2).max(max as u64 + (16 << 20));
    if declared.is_some_and(|n| n > drain_cap) {
        let (status, receipt) = pipeline::too_large_via(&state, &org, ty, Via::Api).await?;
        return Ok(close_after((status, Json(receipt)).into_response()));
    }
    // at most 2 × max_concurrent_uploads bodies of ≤ INLINE_MAX in memory at once; larger
    // ones stream into the raw archive (stream.rs)
    let _body_slot = state.body_slots.acquire().await.map_err(|_| Error::Unavailable("shutting down".into()))?;
    let mut body = body;
    let got = stream::receive(&state, &org, ty, &mut body, content_type.as_deref(), declared, drain_cap).await?;
    let (status, receipt) = match got {
        stream::Received::TooLarge => {
            let (status, receipt) = pipeline::too_large_via(&state, &org, ty, Via::Api).await?;
            return Ok(close_after((status, Json(receipt)).into_response()));
        }
        stream::Received::Small(bytes) => {
            pipeline::process_upload_via(&state, &org, ty, bytes, content_type.as_deref(), Via::Api).await?
        }
        stream::Received::Spooled(sp) => pipeline::process_spooled(&state, &org, ty, sp, Via::Api).await?,
    };
    Ok((status, Json(receipt)).into_response())
}

/// Asks the client to close the connection (the rest of a refused body is not read).
fn close_after(mut r: Response) -> Response {
    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollReq {
    /// The hospital's 统一社会信用代码.
    uscc: String,
    /// The one-time enrolment code from the hospital's page.
    code: String,
    /// PEM certificate signing request.
    csr: String,
}

#[derive(Serialize)]
struct EnrollResp {
    cert: String,
    ca: String,
    fingerprint: String,
}

async fn enroll(State(state): State<AppState>, Json(req): Json<EnrollReq>) -> Result<Json<EnrollResp>> {
    state.limits.token(&format!("enrol:{}", req.uscc))?;
    if req.csr.len() > 16 * 1024 {
        return Err(Error::bad_request("CSR 过大 (CSR too large)"));
    }
    let issued = hospitals::enrol(&state, &req.uscc, req.code.trim(), &req.csr).await.inspect_err(|e| {
        if matches!(e, Error::Forbidden(_)) {
            Metrics::add(&state.metrics.auth_failures, 1);
        }
    })?;
    Ok(Json(EnrollResp { cert: issued.cert_pem, ca: state.keys.ca.cert_pem.clone(), fingerprint: issued.fingerprint }))
}

async fn ping(State(state): State<AppState>, Extension(peer): Extension<Peer>, headers: HeaderMap) -> Result<Response> {
    let org = agent(&state, &headers, &peer)?;
    let body = serde_json::json!({
        "ok": true,
        "hospital": org,
        "node": state.config.node_id,
        "time": hospitals::now_cst().format("%Y-%m-%d %H:%M:%S").to_string(),
    });
    Ok((StatusCode::OK, Json(body)).into_response())
}
