//! The analysts' endpoints. Each resolves `?scope` (default: the account's
//! own) and passes it through `indicators::scoped` before reading anything;
//! every read and every refusal is journaled (`access.read`: account, endpoint,
//! scope, period; no figures).
//!
//! ```text
//!  GET /indicators?scope&from&to&by        ─▶ compute::report
//!  GET /timeseries?scope&from&to&by&series ─▶ views::series
//!  GET /regions?scope&from&to              ─▶ views::tree
//!  GET /mem?scope&asof&series&seasons      ─▶ levels::levels
//!  GET /nowcast?scope&asof&backtest_weeks  ─▶ nowcast::for_scope
//!  GET /quality?scope&from&to              ─▶ views::quality
//!  GET /drugs?scope&date                   ─▶ views::drug_reserve
//! ```

use axum::Json;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, Authed};
use crate::indicators::views::{self, DrugReserve, HospitalQuality, Point, Tree};
use crate::indicators::{By, Period, Report, Role, Scope, Scoped, report, scoped};
use crate::levels::{self, Levels, Series};
use crate::nowcast::{self, Nowcast};
use crate::timeconv::{day_of, secs_to_dt};
use crate::{Error, Result};

/// Every query parameter of the data endpoints.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQuery {
    pub scope: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
    pub series: Option<String>,
    pub asof: Option<String>,
    pub date: Option<String>,
    pub backtest_weeks: Option<usize>,
    pub seasons: Option<usize>,
}

/// Today in China Standard Time.
pub fn today(st: &AppState) -> i64 {
    day_of(secs_to_dt(st.clock.now() + 8 * 3600).date())
}

fn parse_day(s: &str) -> Result<i64> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(day_of)
        .map_err(|_| Error::BadRequest("日期格式须为 YYYY-MM-DD (date: YYYY-MM-DD)".into()))
}

/// The scope of a request, through the one access check (web pages: journaled as endpoint `web`).
pub async fn scope_of(st: &AppState, a: &Authed, q: &DataQuery) -> Result<Scoped> {
    scope_for(st, a, q, "web").await
}

/// The scope of a request through the one access check, and the read (or the refusal) journaled:
/// who, which endpoint, which scope and period parameters; never any figure.
pub async fn scope_for(st: &AppState, a: &Authed, q: &DataQuery, endpoint: &str) -> Result<Scoped> {
    let code = q.scope.clone().or_else(|| a.account.scope.clone()).unwrap_or_default();
    let res = resolve_scope(st, a, &code).await;
    let outcome = if res.is_ok() { "ok" } else { "denied" };
    let cut = |o: &Option<String>| o.as_deref().map(|v| v.chars().take(32).collect::<String>());
    let detail = json!({
        "endpoint": endpoint, "scope": cut(&Some(code.clone())),
        "from": cut(&q.from), "to": cut(&q.to), "by": cut(&q.by), "series": cut(&q.series),
        "asof": cut(&q.asof), "date": cut(&q.date),
    });
    st.audit.record("access.read", &a.account.name, a.account.role.as_str(), outcome, detail)?;
    res
}

async fn resolve_scope(st: &AppState, a: &Authed, code: &str) -> Result<Scoped> {
    if a.account.role != Role::Analyst {
        return Err(Error::Forbidden("该角色无权查看病例数据 (this role sees no case data)"));
    }
    // The web pages reach data through here too: no data before an expired password is changed.
    if crate::auth::accounts::password_expired(&st.db, &st.clock, &a.account.name).await? {
        return Err(Error::Forbidden(super::PASSWORD_EXPIRED));
    }
    let scope = Scope::resolve(&st.db, code).await?;
    Ok(scoped(&a.account, &scope)?)
}

fn period(st: &AppState, q: &DataQuery, default_days: i64) -> Result<Period> {
    let to = q.to.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| today(st));
    let from = q.from.as_deref().map(parse_day).transpose()?.unwrap_or(to - default_days + 1);
    let by = q.by.as_deref().map(By::parse).transpose()?.unwrap_or_default();
    Period::new(crate::timeconv::date_of(from), crate::timeconv::date_of(to), by)
}

pub async fn indicators(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<Report>> {
    let s = scope_for(&st, &a, &q, "/indicators").await?;
    Ok(Json(report(&st.db, &s, &period(&st, &q, 28)?).await?))
}

pub async fn timeseries(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<Vec<Point>>> {
    let s = scope_for(&st, &a, &q, "/timeseries").await?;
    let name = q.series.clone().unwrap_or_else(|| "cases".into());
    Ok(Json(views::series(&st.db, &s, &period(&st, &q, 364)?, &name).await?))
}

pub async fn regions(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<Tree>> {
    let s = scope_for(&st, &a, &q, "/regions").await?;
    Ok(Json(views::tree(&st.db, &s, &period(&st, &q, 7)?).await?))
}

pub async fn mem_levels(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<Levels>> {
    let s = scope_for(&st, &a, &q, "/mem").await?;
    let asof = q.asof.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| today(&st));
    let series = q.series.as_deref().map(Series::parse).transpose()?.unwrap_or_default();
    Ok(Json(levels::levels(&st.db, &s, asof, series, q.seasons.unwrap_or(10)).await?))
}

pub async fn nowcast(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<Nowcast>> {
    let s = scope_for(&st, &a, &q, "/nowcast").await?;
    let asof = q.asof.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| today(&st));
    let weeks = q.backtest_weeks.unwrap_or(8).min(52);
    Ok(Json(nowcast::for_scope(&st.db, &s, asof, weeks).await?))
}

pub async fn quality(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<DataQuery>,
) -> Result<Json<Vec<HospitalQuality>>> {
    let s = scope_for(&st, &a, &q, "/quality").await?;
    Ok(Json(views::quality(&st.db, &s, &period(&st, &q, 28)?).await?))
}

pub async fn drugs(State(st): State<AppState>, a: Authed, Query(q): Query<DataQuery>) -> Result<Json<DrugReserve>> {
    let s = scope_for(&st, &a, &q, "/drugs").await?;
    let date = q.date.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| today(&st));
    Ok(Json(views::drug_reserve(&st.db, &s, date).await?))
}
