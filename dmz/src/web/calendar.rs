//! 上报日历: a month of the hospital's uploads, one chip per day and type,
//! coloured by type, marked red when that day's uploads of the type had
//! rejected rows or whole-file errors.
//!
//! ```text
//!  receipts of the month (session's hospital) ─▶ day → type → (uploads, rejected rows, failed files)
//!  ─▶ Monday-first grid, ‹ previous | next › month, legend, monthly totals per type
//! ```

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use chrono::{Datelike, NaiveDate, NaiveTime};
use maud::html;

use flumon_shared::model::RecordType;

use super::extract::{HospitalUser, WebResult};
use super::hospital::{MonthQuery, month_range, type_zh};
use super::layout::{html_ok, page};
use crate::hospitals::now_cst;
use crate::state::AppState;

#[derive(Default, Clone, Copy)]
struct Cell {
    uploads: usize,
    rejected: usize,
    failed: usize,
}

/// Short labels for the chips.
fn short(ty: &str) -> &'static str {
    match ty {
        "outpatient" => "门急诊",
        "discharge" => "出院",
        "lab" => "检验",
        "medication" => "用药",
        "summary" => "小结",
        "death" => "死亡",
        "stock" => "库存",
        "visits" => "人次",
        _ => "扫描件",
    }
}

/// `GET /hospital/calendar?month=YYYY-MM`.
pub async fn page_handler(State(state): State<AppState>, h: HospitalUser, Query(q): Query<MonthQuery>) -> WebResult {
    let (first, next) = month_range(q.month.as_deref());
    let list: Vec<_> = crate::hospitals::receipts(&state, &h.code, first.and_time(NaiveTime::MIN))?
        .into_iter()
        .filter(|r| r.time < next.and_time(NaiveTime::MIN))
        .collect();
    let mut days: BTreeMap<NaiveDate, BTreeMap<String, Cell>> = BTreeMap::new();
    let mut totals: BTreeMap<String, Cell> = BTreeMap::new();
    for r in &list {
        for map in [days.entry(r.time.date()).or_default(), &mut totals] {
            let c = map.entry(r.ty.clone()).or_default();
            c.uploads += 1;
            c.rejected += r.rejected;
            c.failed += usize::from(r.status != 200);
        }
    }
    let today = now_cst().date();
    let lead = first.weekday().num_days_from_monday();
    let start = first - chrono::Duration::days(i64::from(lead));
    let weeks: Vec<Vec<NaiveDate>> = (0..6)
        .map(|w| (0..7).map(|d| start + chrono::Duration::days(w * 7 + d)).collect())
        .filter(|wk: &Vec<NaiveDate>| wk.first().is_some_and(|d| *d < next))
        .collect();
    let prev = first.checked_sub_months(chrono::Months::new(1)).unwrap_or(first);
    let order =
        |ty: &str| RecordType::parse(ty).and_then(|t| RecordType::ALL.iter().position(|x| *x == t)).unwrap_or(99);
    let sorted: BTreeMap<NaiveDate, Vec<(String, Cell)>> = days
        .into_iter()
        .map(|(d, m)| {
            let mut v: Vec<(String, Cell)> = m.into_iter().collect();
            v.sort_by_key(|(t, _)| order(t));
            (d, v)
        })
        .collect();
    let body = html! {
        div.card {
            h2 { "上报日历" span.en { "Upload calendar" } }
            div.calhead {
                a.btn.light.small href={ "/hospital/calendar?month=" (prev.format("%Y-%m")) } { "‹ 上月" }
                span.month { (first.format("%Y 年 %m 月")) }
                a.btn.light.small href={ "/hospital/calendar?month=" (next.format("%Y-%m")) } { "下月 ›" }
                a href={ "/hospital/receipts?month=" (first.format("%Y-%m")) } { "本月上报明细" }
            }
            table.cal {
                tr { @for d in ["一", "二", "三", "四", "五", "六", "日"] { th { "星期" (d) } } }
                @for wk in &weeks {
                    tr {
                        @for d in wk {
                            @let inside = *d >= first && *d < next;
                            td class={ @if !inside { "out" } @if *d == today { " today" } } {
                                div.d { (d.day()) }
                                @if inside {
                                    @if let Some(types) = sorted.get(d) {
                                        @for (ty, c) in types {
                                            span class={ "chip ty-" (ty) @if c.rejected > 0 || c.failed > 0 { " bad" } }
                                                title={ (type_zh(ty)) ": " (c.uploads) " 次上报, 拒收 " (c.rejected) " 条" } {
                                                (short(ty))
                                                @if c.uploads > 1 { "×" (c.uploads) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.legend {
                "图例: "
                @for t in RecordType::ALL { span class={ "chip ty-" (t.as_str()) } { (short(t.as_str())) } " " }
                " · " span.chip.ty-outpatient.bad { "红框" } " 当日该类数据有拒收记录或整个文件被拒 · 蓝框: 今天"
            }
        }
        div.card {
            h3 { "本月合计" }
            @if totals.is_empty() {
                div.empty { "本月暂无上报" }
            } @else {
                table.t {
                    tr { th { "数据类型" } th.num { "上报次数" } th.num { "拒收记录" } th.num { "被拒文件" } }
                    @for (ty, c) in &totals {
                        tr { td { span class={ "chip ty-" (ty) } { (short(ty)) } " " (type_zh(ty)) } td.num { (c.uploads) } td.num { (c.rejected) } td.num { (c.failed) } }
                    }
                }
            }
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/calendar"), "上报日历", body)))
}
