//! Periods: a date range cut into days, ISO weeks or seasons (ISO week 40 →
//! week 39). A bucket at the edge of the range covers only the days inside.
//!
//! ```text
//!  from ─┬─ day:    2025-01-06, 2025-01-07, …
//!        ├─ week:   2025-W02 (Mon…Sun), …
//!        └─ season: 2024/2025 (Monday of W40 … Sunday of W39)      ─▶ to
//! ```

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::timeconv::{date_of, day_of, iso_week_label, season_label};
use crate::{Error, Result};

/// How a range is cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Day,
    #[default]
    Week,
    Season,
}

impl By {
    /// Parses `day|week|season`.
    pub fn parse(s: &str) -> Result<By> {
        match s {
            "day" => Ok(By::Day),
            "week" => Ok(By::Week),
            "season" => Ok(By::Season),
            _ => Err(Error::BadRequest("by 须为 day、week 或 season (by: day|week|season)".into())),
        }
    }

    /// The label of the bucket holding `day`.
    pub fn label(self, day: i64) -> String {
        match self {
            By::Day => date_of(day).to_string(),
            By::Week => iso_week_label(day),
            By::Season => season_label(day),
        }
    }
}

/// A date range (both ends included) and its cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub by: By,
}

/// The longest range a query may ask for (days).
pub const MAX_DAYS: i64 = 366 * 12;

impl Period {
    /// A checked range.
    pub fn new(from: NaiveDate, to: NaiveDate, by: By) -> Result<Period> {
        let (from, to) = (day_of(from), day_of(to));
        if to < from {
            return Err(Error::BadRequest("结束日期早于开始日期 (to before from)".into()));
        }
        if to - from > MAX_DAYS {
            return Err(Error::BadRequest("时间范围过长，最多 12 年 (range too long)".into()));
        }
        Ok(Period { from, to, by })
    }

    /// Parses `YYYY-MM-DD` dates.
    pub fn parse(from: &str, to: &str, by: By) -> Result<Period> {
        let p = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| Error::BadRequest("日期格式须为 YYYY-MM-DD (date: YYYY-MM-DD)".into()))
        };
        Period::new(p(from)?, p(to)?, by)
    }

    /// The buckets in order: (label, first day, last day), clipped to the range.
    pub fn buckets(&self) -> Vec<(String, i64, i64)> {
        let mut out: Vec<(String, i64, i64)> = Vec::new();
        for day in self.from..=self.to {
            let label = self.by.label(day);
            match out.last_mut() {
                Some(last) if last.0 == label => last.2 = day,
                _ => out.push((label, day, day)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let p = Period::parse("2024-09-28", "2024-10-08", By::Week).unwrap();
        let b = p.buckets();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].0, "2024-W39");
        assert_eq!(b[1].0, "2024-W40");
        assert_eq!(b[1].2 - b[1].1, 6);
        let s = Period::parse("2024-09-28", "2024-10-08", By::Season).unwrap().buckets();
        assert_eq!(s.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["2023/2024", "2024/2025"]);
        assert!(Period::parse("2024-10-08", "2024-09-28", By::Day).is_err());
        assert!(Period::parse("2024-13-08", "2024-09-28", By::Day).is_err());
    }
}
