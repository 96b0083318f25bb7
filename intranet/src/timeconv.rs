//! Dates and times as the database keeps them: days since 1970-01-01 and
//! seconds since 1970-01-01T00:00:00, both in China Standard Time as the
//! records carry them (no zone arithmetic anywhere).
//!
//! ```text
//!  NaiveDate ⇄ day (i64)      NaiveDateTime ⇄ secs (i64)      ISO week / season of a day
//! ```

use chrono::{Datelike, NaiveDate, NaiveDateTime};

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01.
pub fn day_of(d: NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

/// The day of a date-time.
pub fn day_of_dt(t: NaiveDateTime) -> i64 {
    day_of(t.date())
}

/// Seconds since 1970-01-01T00:00:00.
pub fn secs(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

/// The date-time of seconds since 1970-01-01T00:00:00.
pub fn secs_to_dt(s: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(s, 0).map(|d| d.naive_utc()).unwrap_or_default()
}

/// The date of a day number.
pub fn date_of(day: i64) -> NaiveDate {
    epoch().checked_add_signed(chrono::Duration::days(day)).unwrap_or_default()
}

/// The ISO week of a day as `YYYY-Www`.
pub fn iso_week_label(day: i64) -> String {
    let w = date_of(day).iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The season of a day (ISO week 40 to week 39): `YYYY/YYYY+1`.
pub fn season_label(day: i64) -> String {
    let y = season_start_year(day);
    format!("{}/{}", y, y + 1)
}

/// The first ISO year of the season a day falls in.
pub fn season_start_year(day: i64) -> i32 {
    let w = date_of(day).iso_week();
    if w.week() >= 40 { w.year() } else { w.year() - 1 }
}

/// The Monday of ISO week `week` of ISO year `year`.
pub fn iso_monday(year: i32, week: u32) -> Option<NaiveDate> {
    NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_weeks_seasons() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        assert_eq!(date_of(day_of(d)), d);
        assert_eq!(day_of(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(iso_week_label(day_of(d)), "2024-W01");
        assert_eq!(season_label(day_of(d)), "2023/2024");
        // 2024-09-30 is ISO week 40 of 2024: a new season.
        assert_eq!(season_label(day_of(NaiveDate::from_ymd_opt(2024, 9, 30).unwrap())), "2024/2025");
        assert_eq!(season_label(day_of(NaiveDate::from_ymd_opt(2024, 9, 29).unwrap())), "2023/2024");
        let t = d.and_hms_opt(8, 0, 1).unwrap();
        assert_eq!(secs_to_dt(secs(t)), t);
    }
}
