//! `report`: every indicator of a scope and period, the drug reserve at the
//! period's end, the nowcast with its backtest and the MEM levels as of the
//! end — the same functions (and so the same numbers) as the API, as JSON or
//! as CSV rows `section,period,indicator,value`.
//!
//! ```text
//!  --scope --from --to --by ─▶ Account::console() ─▶ scoped ─▶ report · drug_reserve · nowcast · levels
//!     ─▶ JSON {indicators, drug_reserve, nowcast, mem}  │  CSV (the JSON flattened, one value a row)
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::db::Db;
use crate::indicators::views::{DrugReserve, drug_reserve};
use crate::indicators::{Account, Period, Report, Scope, report, scoped};
use crate::levels::{Levels, Series, levels};
use crate::nowcast::{self, Nowcast};
use crate::{Error, Result};

/// Everything `report` prints.
#[derive(Clone, Debug, Serialize)]
pub struct FullReport {
    pub indicators: Report,
    pub drug_reserve: DrugReserve,
    pub nowcast: Nowcast,
    pub mem: Levels,
}

/// Builds the report (console rights: national, no small-cell rule).
pub async fn build(db: &Db, scope: &str, period: &Period) -> Result<FullReport> {
    let s = scoped(&Account::console(), &Scope::resolve(db, scope).await?)?;
    Ok(FullReport {
        indicators: report(db, &s, period).await?,
        drug_reserve: drug_reserve(db, &s, period.to).await?,
        nowcast: nowcast::for_scope(db, &s, period.to, 8).await?,
        mem: levels(db, &s, period.to, Series::OeRatio, 10).await?,
    })
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The report as CSV: `indicator,value` rows (paths into the JSON).
pub fn to_csv(r: &FullReport) -> Result<String> {
    let v = serde_json::to_value(r)?;
    let mut rows = Vec::new();
    flatten("", &v, &mut rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["indicator", "value"]).map_err(|e| Error::Internal(e.to_string()))?;
    for (k, val) in rows {
        w.write_record([k, val]).map_err(|e| Error::Internal(e.to_string()))?;
    }
    String::from_utf8(w.into_inner().map_err(|e| Error::Internal(e.to_string()))?)
        .map_err(|e| Error::Internal(e.to_string()))
}
