//! The filters of the analysts' pages, kept in the URL so a view can be
//! shared: `?scope=&from=&to=&by=&ind=&date=`, the scope check (the API's
//! `scope_of` → `indicators::scoped`), the period, the filter bar and the
//! breadcrumb 全国 › 省 › 市 › 县.
//!
//! ```text
//!  ?query ─▶ Q ─┬▶ scoped(): Scope::resolve + scoped(account, scope)  (403 → 无权访问 page)
//!               ├▶ period(): from/to/by with page defaults
//!               └▶ url(path, overrides) ─▶ links and export URLs that keep every filter
//! ```

use maud::{Markup, html};
use serde::Deserialize;

use super::layout::scope_name;
use super::{PageError, WebUser};
use crate::api::AppState;
use crate::api::data::{DataQuery, scope_of, today};
use crate::indicators::{By, NATIONAL, Period, Scope, Scoped};
use crate::regions;
use crate::timeconv::{date_of, day_of};
use crate::{Error, Result};

/// The query of a page (unknown keys ignored).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Q {
    pub scope: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
    pub ind: Option<String>,
    pub date: Option<String>,
    pub format: Option<String>,
    pub table: Option<String>,
}

fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Q {
    /// The scope code asked for, else the account's.
    pub fn scope_code(&self, u: &WebUser) -> String {
        nonempty(&self.scope).map(str::to_string).or_else(|| u.account.scope.clone()).unwrap_or_default()
    }

    /// `path?filters` with some keys replaced (an empty value removes the key); never format/table.
    pub fn url(&self, path: &str, set: &[(&str, &str)]) -> String {
        let mut kv: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("scope", &self.scope),
            ("from", &self.from),
            ("to", &self.to),
            ("by", &self.by),
            ("ind", &self.ind),
            ("date", &self.date),
        ] {
            if let Some(v) = nonempty(v) {
                kv.push((k, v.to_string()));
            }
        }
        for (k, v) in set {
            kv.retain(|(x, _)| x != k);
            if !v.is_empty() {
                kv.push((k, (*v).to_string()));
            }
        }
        let q: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
        format!("{path}?{}", q.join("&"))
    }

    fn data_query(&self, u: &WebUser) -> DataQuery {
        DataQuery { scope: Some(self.scope_code(u)), ..DataQuery::default() }
    }

    /// The requested scope through the one access check.
    pub async fn scoped(&self, st: &AppState, u: &WebUser) -> Result<Scoped, PageError> {
        scope_of(st, &u.authed(), &self.data_query(u)).await.map_err(|e| u.err(e))
    }

    /// The `to` day (default today, China time).
    pub fn to_day(&self, st: &AppState) -> Result<i64> {
        nonempty(&self.to).map(parse_day).transpose().map(|d| d.unwrap_or_else(|| today(st)))
    }

    /// The period with a default length and cut.
    pub fn period(&self, st: &AppState, default_days: i64, default_by: By) -> Result<Period> {
        let to = self.to_day(st)?;
        let from = nonempty(&self.from).map(parse_day).transpose()?.unwrap_or(to - default_days + 1);
        let by = nonempty(&self.by).map(By::parse).transpose()?.unwrap_or(default_by);
        Period::new(date_of(from), date_of(to), by)
    }
}

/// `YYYY-MM-DD` → day number.
pub fn parse_day(s: &str) -> Result<i64> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(day_of)
        .map_err(|_| Error::BadRequest("日期格式须为 YYYY-MM-DD (date: YYYY-MM-DD)".into()))
}

/// The scopes offered in the filter: the account's own region, its children, and the current one.
fn scope_options(u: &WebUser, current: &str) -> Vec<(String, String)> {
    let own = u.account.scope.clone().unwrap_or_default();
    let mut v = vec![(own.clone(), scope_name(&own))];
    for r in regions::children(&own) {
        v.push((r.code.clone(), format!("　{}", r.name)));
    }
    if !v.iter().any(|(c, _)| c == current) && !current.is_empty() {
        v.push((current.to_string(), scope_name(current)));
    }
    v
}

/// The filter bar: scope, from, to, by (those named in `show`), plus page-specific controls.
pub fn bar(path: &str, q: &Q, u: &WebUser, p: Option<&Period>, show: &[&str], extra: Markup) -> Markup {
    let current = q.scope_code(u);
    html! {
        form.filters.autosubmit method="get" action=(path) {
            @if show.contains(&"scope") {
                div { label for="f-scope" { "地区范围" }
                    select #f-scope name="scope" {
                        @for (c, n) in scope_options(u, &current) {
                            option value=(c) selected[c == current] { (n) }
                        }
                    }
                }
            }
            @if let Some(p) = p {
                @if show.contains(&"from") {
                    div { label for="f-from" { "开始日期" } input #f-from type="date" name="from" value=(date_of(p.from).to_string()); }
                }
                @if show.contains(&"to") {
                    div { label for="f-to" { "结束日期" } input #f-to type="date" name="to" value=(date_of(p.to).to_string()); }
                }
                @if show.contains(&"by") {
                    div { label for="f-by" { "时间粒度" }
                        select #f-by name="by" {
                            option value="day" selected[p.by == By::Day] { "按日" }
                            option value="week" selected[p.by == By::Week] { "按周" }
                            option value="season" selected[p.by == By::Season] { "按流行季" }
                        }
                    }
                }
            }
            (extra)
            div { button.btn type="submit" { "查询" } }
        }
    }
}

/// 全国 › 省 › 市 › 县 (› 医院) for a scope, each a link to `path` keeping the filters.
pub fn crumbs(path: &str, q: &Q, s: &Scope) -> Markup {
    let mut chain: Vec<(String, String)> = Vec::new();
    let region = match s {
        Scope::Hospital { region, .. } => region.clone(),
        other => other.code().to_string(),
    };
    if region != NATIONAL {
        let mut c = Some(region.clone());
        while let Some(code) = c {
            chain.push((code.clone(), scope_name(&code)));
            c = regions::REGIONS.get(&code).map(|r| r.parent.clone()).filter(|p| p != NATIONAL);
        }
    }
    chain.push((NATIONAL.into(), "全国".into()));
    chain.reverse();
    if let Scope::Hospital { code, .. } = s {
        chain.push((code.clone(), format!("医院 {code}")));
    }
    html! {
        p.crumbs {
            "当前范围: "
            @for (i, (code, name)) in chain.iter().enumerate() {
                @if i > 0 { " › " }
                a href=(q.url(path, &[("scope", code)])) { (name) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_filters() {
        let q = Q { scope: Some("440000".into()), from: Some("2025-01-01".into()), ..Q::default() };
        assert_eq!(q.url("/map", &[]), "/map?scope=440000&from=2025-01-01");
        assert_eq!(q.url("/map", &[("scope", "440300")]), "/map?from=2025-01-01&scope=440300");
        assert_eq!(q.url("/map", &[("from", "")]), "/map?scope=440000");
        assert_eq!(enc("a b&c"), "a%20b%26c");
        assert!(parse_day("2025-13-01").is_err());
    }
}
