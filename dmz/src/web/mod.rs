//! The DMZ's web pages: registration and review, accounts, and the hospital
//! pages (upload, receipts, history, calendar, agents), server-rendered in
//! Chinese with nothing loaded from elsewhere.
//!
//! ```text
//!  public listener  public_router()                     admin listener  admin_router()
//!   /  /apply  /apply/status  /apply/form                /review  /review/done  /review/{no}
//!   /login  /logout  /activate/{t}  /account/password    /review/{no}/scan/{slot}  …/approve …/reject
//!   /hospital/upload  /hospital/receipts[/{id}[/errors.csv]]   /login /logout /activate/{t} /account/password
//!   /hospital/calendar  /hospital/agents[/…]  /hospital/figures[.xlsx|/{table}.csv]  /hospital/downloads[/…]
//!  both: guard layer (extract.rs) ─▶ handlers ─▶ accounts · sessions · applications (sled web_*)
//! ```
//!
//! ## Who sees what (LEVEL3 roles, ARCHITECTURE invariant 6)
//! A hospital session carries its hospital code, copied from the account at
//! login; every hospital handler takes the code from the session, never from the
//! request, and looks receipts up only under it. Reviewer sessions exist only on
//! the admin listener and hospital sessions only on the public one (each record
//! names its realm; each listener has its own cookie and accepts only its own
//! realm). The admin router has no upload route; the public router no review route.
//!
//! ## Application scans: the reviewer copy (decision)
//! LEVEL3 has the registration reviewer review the scans, and the DMZ must not
//! be able to read its raw archive (invariant 5). Both hold:
//! 1. each scan is archived at once with `archive::archive_blob` (fresh SM4 key
//!    wrapped to the vault's SM2 key): the permanent record, unreadable here;
//! 2. a *reviewer copy* is sealed (SM4-GCM, segmented format) under the DMZ-held
//!    web key (`[web] review_key`, a key file beside the other keys, 0600, not in
//!    sled), the application number and slot as associated data, in `web_scans`;
//! 3. when the review ends (approve or reject) the reviewer copy is deleted;
//!    the vault copy stays. Nothing is re-encrypted: the vault copy already exists.
//!
//! Scans are institutional documents (licence, stamped form), not patient data;
//! the readable window is the review only, and the key is outside the store, so
//! a copy of the data folder alone opens nothing. The same key seals the TOTP
//! secrets of web accounts (the server must read them to check codes).

pub mod accounts;
pub mod activation;
pub mod agents;
pub mod applications;
pub mod auth;
pub mod calendar;
pub mod csrf;
pub mod downloads;
pub mod extract;
pub mod figures;
pub mod hospital;
pub mod layout;
pub mod mail_text;
pub use flumon_shared::auth::password;
pub mod registration;
pub mod review;
pub mod session;
pub mod settings;
pub mod store;
pub mod totp;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};

use flumon_shared::crypto::SymKey;

use crate::error::{Error, Result};
use crate::state::AppState;
use layout::Realm;
pub use settings::WebSettings;

/// Largest registration request: two scans of 10 MiB and the fields.
const APPLY_BODY_MAX: usize = 21 << 20;

/// The web settings of the running configuration.
pub fn settings(state: &AppState) -> Result<WebSettings> {
    WebSettings::from_config(&state.config)
}

/// The web key (reviewer copies of scans, TOTP secrets): read from
/// `[web] review_key`, created (mode 0600) when missing.
pub fn web_key(state: &AppState) -> Result<SymKey> {
    let path = settings(state)?.review_key;
    if !path.exists() {
        let key = SymKey::generate()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match key.save(&path) {
            Ok(()) => tracing::warn!("created the web review key file (it was missing)"),
            Err(e) if path.exists() => tracing::debug!(error = %e, "web key created concurrently"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(SymKey::load(&path)?)
}

/// The public listener's pages (hospitals and applicants).
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/", get(registration::home))
        .route("/static/style.css", get(layout::css))
        .route("/static/app.js", get(layout::js))
        .route(
            "/apply",
            get(registration::form).post(registration::submit).layer(DefaultBodyLimit::max(APPLY_BODY_MAX)),
        )
        .route("/apply/status", get(registration::status_form).post(registration::status))
        .route("/apply/form", get(registration::template))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/activate/{token}", get(activation::form).post(activation::submit))
        .route("/account/password", get(auth::password_form).post(auth::password_change))
        .route(
            "/hospital/upload",
            get(hospital::upload_form).post(hospital::upload).layer(DefaultBodyLimit::max(hospital::UPLOAD_BODY_MAX)),
        )
        .route("/hospital/receipts", get(hospital::history))
        .route("/hospital/receipts/{id}", get(hospital::receipt))
        .route("/hospital/receipts/{id}/errors.csv", get(hospital::errors_csv))
        .route("/hospital/calendar", get(calendar::page_handler))
        .route("/hospital/figures", get(figures::page_handler))
        .route("/hospital/figures.xlsx", get(figures::xlsx_handler))
        .route("/hospital/figures/{file}", get(figures::csv_handler))
        .route("/hospital/downloads", get(downloads::page_handler))
        .route("/hospital/downloads/file/{name}", get(downloads::file))
        .route("/hospital/downloads/doc/{id}", get(downloads::doc))
        .route("/hospital/downloads/img/{name}", get(downloads::img))
        .route("/hospital/agents", get(agents::page_handler))
        .route("/hospital/agents/enrol-code", post(agents::enrol_code))
        .route("/hospital/agents/token", post(agents::token))
        .route("/hospital/agents/revoke", post(agents::revoke))
        .layer(axum::middleware::from_fn(|req, next| extract::guard(Realm::Hospital, req, next)))
}

/// The admin listener's pages (registration reviewers).
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/review").into_response() }))
        .route("/static/style.css", get(layout::css))
        .route("/static/app.js", get(layout::js))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/activate/{token}", get(activation::form).post(activation::submit))
        .route("/account/password", get(auth::password_form).post(auth::password_change))
        .route("/review", get(review::pending))
        .route("/review/done", get(review::done))
        .route("/review/{no}", get(review::detail))
        .route("/review/{no}/scan/{slot}", get(review::scan))
        .route("/review/{no}/approve", post(review::approve))
        .route("/review/{no}/reject", post(review::reject))
        .route("/review/{no}/resend", post(review::resend))
        .layer(axum::middleware::from_fn(|req, next| extract::guard(Realm::Admin, req, next)))
}

/// The web account of a hospital an operator created (`admin create-hospital`, no
/// application to review): made inactive when absent; returns its one-time activation
/// URL on the public listener, or `None` when the account is already active (an
/// operator command does not reset a hospital's working login; the hospital's own
/// page or a reviewer does that).
pub async fn hospital_activation(state: &AppState, uscc: &str, display: &str) -> Result<Option<String>> {
    let user = accounts::User::new(uscc, accounts::Role::Hospital { code: uscc.to_owned() }, display, None);
    match accounts::create(state, &user) {
        Ok(()) | Err(Error::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    if accounts::get(state, uscc)?.is_some_and(|u| u.active) {
        return Ok(None);
    }
    let token = activation::issue(state, uscc).await?;
    state.audit("web.hospital_account_created", serde_json::json!({"account": uscc})).await?;
    state.store.durable().await?;
    Ok(Some(format!("{}/activate/{}", settings(state)?.public_url, token.as_str())))
}

/// Creates a reviewer account (not yet active) and returns its one-time
/// activation URL on the admin listener, valid `[web] activation_hours`.
/// For `flumon-dmz admin create-reviewer`.
pub async fn create_reviewer(state: &AppState, username: &str) -> Result<String> {
    let name = username.trim();
    let ok = (3..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if !ok {
        return Err(Error::bad_request(
            "用户名应为 3–32 个字母、数字或 ._-, 以字母开头 (3–32 letters, digits or ._-, starting with a letter)",
        ));
    }
    let user = accounts::User::new(name, accounts::Role::Reviewer, name, None);
    accounts::create(state, &user)?;
    let token = activation::issue(state, name).await?;
    state.audit("web.reviewer_created", serde_json::json!({"account": name})).await?;
    state.store.durable().await?;
    Ok(format!("{}/activate/{}", settings(state)?.admin_url, token.as_str()))
}
