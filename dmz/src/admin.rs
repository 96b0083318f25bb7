//! The admin listener's own routes: `/metrics` and the operator endpoints
//! the CLI uses while the server runs (sled is single-process). Operator
//! calls need the operator token AND the operator client certificate that
//! `init` issued; every one is audited.
//!
//! ```text
//!  GET  /metrics                     Prometheus text (no identifiers in it)
//!  POST /operator/export-raw         {to, since?}              ─▶ export::export_raw  (writes on this host)
//!  POST /operator/purge-raw          {exported_older_than_days} ─▶ export::purge_raw
//!  POST /operator/create-hospital    {uscc, name, region, level} ─▶ token + client cert (PEM)
//!  POST /operator/enrol-code         {uscc} ─▶ a one-time enrolment code (24 h) for `flumon-agent enroll`
//!  POST /operator/revoke-agents      {uscc} ─▶ every client certificate of the hospital revoked
//!  POST /operator/create-reviewer    {name} ─▶ reviewer account + one-time activation link (password + TOTP)
//! ```

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::export::{self, ExportReport, PurgeReport};
use crate::hospitals;
use crate::server::Peer;
use crate::state::AppState;

/// Routes of the admin listener besides the web engineer's.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/operator/export-raw", post(export_raw))
        .route("/operator/purge-raw", post(purge_raw))
        .route("/operator/create-hospital", post(create_hospital))
        .route("/operator/enrol-code", post(enrol_code))
        .route("/operator/revoke-agents", post(revoke_agents))
        .route("/operator/create-reviewer", post(create_reviewer_ep))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

fn operator(state: &AppState, headers: &HeaderMap, peer: &Peer) -> Result<()> {
    let token = crate::api::bearer(headers).ok_or(Error::Unauthorized("需要操作员令牌 (operator token required)"))?;
    let hash = flumon_shared::crypto::sm3(token.as_bytes());
    if !bool::from(hash.ct_eq(&state.keys.operator_token_sm3)) {
        return Err(Error::Unauthorized("操作员令牌无效 (invalid operator token)"));
    }
    let ok = peer.cert_fp.as_deref().is_some_and(|fp| {
        fp.len() == state.keys.operator_cert_fp.len()
            && bool::from(fp.as_bytes().ct_eq(state.keys.operator_cert_fp.as_bytes()))
    });
    if !ok {
        return Err(Error::forbidden("需要操作员客户端证书 (operator client certificate required)"));
    }
    Ok(())
}

/// Body of `/operator/export-raw`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportReq {
    pub to: std::path::PathBuf,
    #[serde(default)]
    pub since: Option<chrono::NaiveDateTime>,
}

/// Body of `/operator/purge-raw`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeReq {
    pub exported_older_than_days: u32,
}

/// Body of `/operator/create-hospital`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    pub uscc: String,
    pub name: String,
    pub region: String,
    pub level: u8,
}

/// What `create-hospital` hands back: the token and the agent's certificate and key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    pub uscc: String,
    pub token: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    /// One-time link (public listener) where the hospital's web user sets a password and
    /// enrols TOTP; `None` when the hospital's web account is already active.
    #[serde(default)]
    pub activation_url: Option<String>,
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> Result<T> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st)).await.map_err(|e| Error::Internal(format!("operator task: {e}")))?
}

async fn export_raw(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<ExportReq>,
) -> Result<Json<ExportReport>> {
    operator(&state, &headers, &peer)?;
    if !req.to.is_absolute() {
        return Err(Error::bad_request("目标目录须为绝对路径 (target folder must be an absolute path)"));
    }
    Ok(Json(blocking(&state, move |st| export::export_raw(st, &req.to, req.since)).await?))
}

async fn purge_raw(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<PurgeReq>,
) -> Result<Json<PurgeReport>> {
    operator(&state, &headers, &peer)?;
    Ok(Json(blocking(&state, move |st| export::purge_raw(st, req.exported_older_than_days)).await?))
}

async fn create_hospital(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<CreateReq>,
) -> Result<Json<Created>> {
    operator(&state, &headers, &peer)?;
    Ok(Json(create(&state, &req).await?))
}

/// Creates an approved hospital with a token and an agent certificate (CLI and endpoint).
pub async fn create(state: &AppState, req: &CreateReq) -> Result<Created> {
    hospitals::create_approved(state, &req.uscc, &req.name, &req.region, req.level).await?;
    let token = hospitals::reissue_token(state, &req.uscc).await?;
    let issued = hospitals::issue_agent_cert(state, &req.uscc).await?;
    let activation_url = crate::web::hospital_activation(state, &req.uscc, &req.name).await?;
    state.audit("operator.create_hospital", serde_json::json!({"hospital": req.uscc})).await?;
    Ok(Created {
        uscc: req.uscc.clone(),
        token,
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem.map(|k| k.to_string()).unwrap_or_default(),
        ca_pem: state.keys.ca.cert_pem.clone(),
        activation_url,
    })
}

/// Body of `/operator/enrol-code` and `/operator/revoke-agents`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalReq {
    pub uscc: String,
}

/// The answer of `/operator/enrol-code`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrolCodeResp {
    pub uscc: String,
    pub code: String,
}

async fn enrol_code(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<HospitalReq>,
) -> Result<Json<EnrolCodeResp>> {
    operator(&state, &headers, &peer)?;
    Ok(Json(new_enrol_code(&state, &req.uscc).await?))
}

/// A one-time enrolment code for the hospital (CLI and endpoint).
pub async fn new_enrol_code(state: &AppState, uscc: &str) -> Result<EnrolCodeResp> {
    let code = hospitals::new_enrol_code(state, uscc).await?;
    state.audit("operator.enrol_code", serde_json::json!({"hospital": uscc})).await?;
    Ok(EnrolCodeResp { uscc: uscc.to_owned(), code })
}

async fn revoke_agents(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<HospitalReq>,
) -> Result<Json<serde_json::Value>> {
    operator(&state, &headers, &peer)?;
    revoke(&state, &req.uscc).await?;
    Ok(Json(serde_json::json!({"uscc": req.uscc, "revoked": true})))
}

/// Revokes every agent certificate of the hospital (CLI and endpoint).
pub async fn revoke(state: &AppState, uscc: &str) -> Result<()> {
    hospitals::revoke_agents(state, uscc).await?;
    state.audit("operator.revoke_agents", serde_json::json!({"hospital": uscc})).await
}

/// Body of `/operator/create-reviewer`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerReq {
    pub name: String,
}

/// The answer of `/operator/create-reviewer`: the one-time activation link
/// (admin listener) where the reviewer sets a password and enrols TOTP.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReviewerResp {
    pub name: String,
    pub activation_url: String,
    /// Hours the link stays valid.
    pub expires_hours: i64,
}

async fn create_reviewer_ep(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Json(req): Json<ReviewerReq>,
) -> Result<Json<ReviewerResp>> {
    operator(&state, &headers, &peer)?;
    Ok(Json(create_reviewer(&state, &req.name).await?))
}

/// Creates a reviewer account (CLI and endpoint); audited by the web module.
pub async fn create_reviewer(state: &AppState, name: &str) -> Result<ReviewerResp> {
    let url = crate::web::create_reviewer(state, name).await?;
    state.audit("operator.create_reviewer", serde_json::json!({"account": name.trim()})).await?;
    let expires_hours = crate::web::settings(state)?.activation_secs / 3600;
    Ok(ReviewerResp { name: name.trim().to_owned(), activation_url: url, expires_hours })
}
