//! The web pages (dashboards): mounted at `/`, added by a later engineer on
//! top of the same query layer as the API.
//!
//! ```text
//!  /  ─▶ web::router() (empty for now)      /api/v1 ─▶ api::app
//! ```

use crate::api::AppState;

/// The pages' router (empty).
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
}
