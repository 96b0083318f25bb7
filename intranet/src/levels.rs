//! MEM epidemic levels per scope: the weekly series of 门急诊流感占比 (%)
//! or of weekly cases from the rollups, seasons (ISO week 40 → 39) as
//! columns, `mem` on up to the last 10 past seasons, and the current
//! season's weeks classified baseline / low / medium / high / very high.
//!
//! ```text
//!  Scoped ─▶ fetch (oe numerator + visits, or cases) by day ─▶ (season, ISO week) sums
//!     ─▶ MemData { weeks 40…52 [53] 1…39, past seasons oldest first } ─▶ mem::memmodel
//!     ─▶ current season's complete weeks ─▶ MemResult::level_of
//! ```
//! A week before the scope's first data is missing (not 0); a season
//! without ISO week 53 has that row missing, which flumon interpolates
//! (MEM.md) and lists in `model.interpolated`.

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::indicators::{Scoped, fetch};
use crate::mem::{self, Level, MemData, MemOptions, MemResult, SeasonSeries};
use crate::timeconv::{date_of, day_of, iso_monday, season_start_year};
use crate::{Error, Result};

/// The weekly series MEM runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    /// 门急诊流感占比 in percent.
    #[default]
    OeRatio,
    /// Weekly case counts.
    Cases,
}

impl Series {
    /// Parses `oe_ratio|cases`.
    pub fn parse(s: &str) -> Result<Series> {
        match s {
            "oe_ratio" => Ok(Series::OeRatio),
            "cases" => Ok(Series::Cases),
            _ => Err(Error::BadRequest("series 须为 oe_ratio 或 cases (series: oe_ratio|cases)".into())),
        }
    }
}

/// One week of the current season.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeekLevel {
    /// `YYYY-Www`.
    pub week: String,
    pub value: Option<f64>,
    pub level: Option<Level>,
    pub level_zh: Option<&'static str>,
    /// False for the week still running at `asof`.
    pub complete: bool,
}

/// The MEM view of a scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Levels {
    pub scope: String,
    pub series: Series,
    pub asof: String,
    pub current_season: String,
    /// Past seasons used (oldest first), with their weekly values (rows = `week_labels`).
    pub week_labels: Vec<String>,
    pub seasons: BTreeMap<String, Vec<Option<f64>>>,
    pub model: MemResult,
    pub current: Vec<WeekLevel>,
}

/// The weeks of the season starting in ISO year `y`: (row label, Monday day).
fn season_weeks(y: i32) -> Vec<(u32, i64)> {
    let mut out = Vec::new();
    for w in 40..=53 {
        if let Some(m) = iso_monday(y, w) {
            out.push((w, day_of(m)));
        }
    }
    for w in 1..=39 {
        if let Some(m) = iso_monday(y + 1, w) {
            out.push((w, day_of(m)));
        }
    }
    out
}

/// Weekly values of one season: (numerator, denominator) by row label.
fn weekly(
    y: i32,
    num: &BTreeMap<i64, i64>,
    den: Option<&BTreeMap<i64, i64>>,
    first_day: i64,
    last_day: i64,
) -> BTreeMap<u32, (Option<f64>, bool)> {
    let mut out = BTreeMap::new();
    for (w, monday) in season_weeks(y) {
        if monday + 6 < first_day || monday > last_day {
            continue;
        }
        let n: i64 = num.range(monday..=monday + 6).map(|(_, v)| *v).sum();
        let v = match den {
            Some(den) => {
                let d: i64 = den.range(monday..=monday + 6).map(|(_, v)| *v).sum();
                (d > 0).then(|| 100.0 * n as f64 / d as f64)
            }
            None => Some(n as f64),
        };
        out.insert(w, (v, monday + 6 <= last_day));
    }
    out
}

/// MEM levels of the scope as of day `asof`.
pub async fn levels(db: &Db, s: &Scoped, asof: i64, series: Series, max_seasons: usize) -> Result<Levels> {
    let current = season_start_year(asof);
    let max_seasons = max_seasons.clamp(2, 10);
    let first_year = current - i32::try_from(max_seasons).unwrap_or(10);
    let from = iso_monday(first_year, 40).map(day_of).unwrap_or(asof - 3700);
    let (num, den): (BTreeMap<i64, i64>, Option<BTreeMap<i64, i64>>) = match series {
        Series::OeRatio => {
            let num = fetch::oe_numerator(db, s, from, asof).await?;
            let den = fetch::daily(db, s, from, asof, &["visits_rc"])
                .await?
                .into_iter()
                .map(|(d, m)| (d, m.values().sum()))
                .collect();
            (num, Some(den))
        }
        Series::Cases => {
            let num = fetch::daily(db, s, from, asof, &["case"])
                .await?
                .into_iter()
                .map(|(d, m)| (d, m.values().sum()))
                .collect();
            (num, None)
        }
    };
    let first_day = den.as_ref().unwrap_or(&num).keys().next().copied().unwrap_or(asof + 1);
    // Rows: 40…52, 53 when a past season has it, 1…39.
    let past: Vec<i32> = (first_year..current).collect();
    let has53 = past.iter().any(|y| iso_monday(*y, 53).is_some());
    let rows: Vec<u32> = (40..=52).chain(has53.then_some(53)).chain(1..=39).collect();
    let mut seasons = BTreeMap::new();
    let mut data = MemData { weeks: rows.iter().map(u32::to_string).collect(), seasons: Vec::new() };
    for y in &past {
        let wk = weekly(*y, &num, den.as_ref(), first_day, asof);
        let values: Vec<Option<f64>> = rows.iter().map(|w| wk.get(w).and_then(|x| x.0)).collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        let name = format!("{}/{}", y, y + 1);
        seasons.insert(name.clone(), values.clone());
        data.seasons.push(SeasonSeries { name, values });
    }
    let opts = MemOptions { max_seasons, ..MemOptions::default() };
    let model = if data.seasons.len() >= 2 {
        mem::memmodel(&data, &opts)
    } else {
        mem::memmodel(&MemData { weeks: data.weeks.clone(), seasons: Vec::new() }, &opts)
    };
    let wk = weekly(current, &num, den.as_ref(), first_day.min(asof), asof);
    let current_weeks: Vec<WeekLevel> = season_weeks(current)
        .into_iter()
        .filter(|(_, m)| *m <= asof)
        .map(|(w, monday)| {
            let (value, complete) = wk.get(&w).copied().unwrap_or((None, monday + 6 <= asof));
            let level = value.and_then(|v| model.level_of(v));
            let iso = date_of(monday).iso_week();
            WeekLevel {
                week: format!("{}-W{:02}", iso.year(), iso.week()),
                value,
                level,
                level_zh: level.map(Level::zh),
                complete,
            }
        })
        .collect();
    Ok(Levels {
        scope: s.scope().code().to_string(),
        series,
        asof: date_of(asof).to_string(),
        current_season: format!("{}/{}", current, current + 1),
        week_labels: data.weeks,
        seasons,
        model,
        current: current_weeks,
    })
}
