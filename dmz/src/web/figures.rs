//! 本院监测: the signed-in hospital's own figures (crate::figures), with
//! charts (shared svgchart), tables, and exports as CSV (one table) or XLSX
//! (every table, one sheet each). The hospital is always the session's:
//! no route takes a hospital code, so no URL reaches another's figures.
//!
//! ```text
//!  session.code ─▶ figures::counters ─▶ view::tables ─▶ page: key figures · charts · tables
//!                                                  └──▶ /hospital/figures/{id}.csv · /hospital/figures.xlsx
//! ```

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use maud::{Markup, html};

use flumon_shared::svgchart::{Chart, Series};

use super::extract::{HospitalUser, WebResult};
use super::layout::{html_ok, page, trusted_svg};
use crate::error::{Error, Result};
use crate::figures::view::{self, ENCOUNTERS, Table, pct};
use crate::figures::{self, Counters};
use crate::hospitals::now_cst;
use crate::state::AppState;

/// Days shown in the daily chart.
const CHART_DAYS: i64 = 42;

async fn load(state: &AppState, code: &str) -> Result<Counters> {
    let st = state.clone();
    let code = code.to_owned();
    tokio::task::spawn_blocking(move || figures::counters(&st.store, &code))
        .await
        .map_err(|e| Error::Internal(format!("figures: {e}")))?
}

fn daily_chart(c: &Counters, today: NaiveDate) -> String {
    let days = view::days(c);
    let from = today - Duration::days(CHART_DAYS - 1);
    let dates: Vec<NaiveDate> = (0..CHART_DAYS).map(|i| from + Duration::days(i)).collect();
    let bars = ENCOUNTERS
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Series::new(
                *e,
                dates
                    .iter()
                    .map(|d| Some(days.get(d).and_then(|x| x.cases.get(i)).copied().unwrap_or(0) as f64))
                    .collect(),
            )
        })
        .collect();
    Chart {
        title: format!("近 {CHART_DAYS} 天流感病例数(按就诊类型, 按就诊/入院日期)"),
        y_label: "病例数".into(),
        x_labels: dates.iter().map(|d| d.format("%m-%d").to_string()).collect(),
        bars,
        // the last 7 days are still being reported (7-day resend)
        split: Some((dates.len().saturating_sub(7), "近7天仍在补报".into())),
        ..Chart::default()
    }
    .render()
}

fn rate(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn weekly_chart(c: &Counters) -> String {
    let weeks = view::weeks(&view::days(c));
    let recent: Vec<(&String, &view::Day)> =
        weeks.iter().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    let labels = recent.iter().map(|(w, _)| (*w).clone()).collect();
    let lines = vec![
        Series::new("病原学检测率", recent.iter().map(|(_, d)| rate(d.case_lab, d.total())).collect()),
        Series::new("抗病毒使用率", recent.iter().map(|(_, d)| rate(d.treated, d.total())).collect()),
        Series::new("48小时内用药率", recent.iter().map(|(_, d)| rate(d.treated48, d.treated_fbrq)).collect()),
        Series::new("门急诊流感占比", recent.iter().map(|(_, d)| rate(d.oe_cases_vis, d.visits)).collect()),
    ];
    Chart {
        title: "按周: 检测、治疗与流感占比".into(),
        y_label: "比例".into(),
        x_labels: labels,
        percent: true,
        lines,
        ..Chart::default()
    }
    .render()
}

fn table_html(t: &Table) -> Markup {
    html! {
        div.card id={ "t-" (t.id) } {
            div.calhead {
                h3 { (t.title) }
                a.btn.light.small href={ "/hospital/figures/" (t.id) ".csv" } { "导出 CSV" }
            }
            @if t.rows.is_empty() {
                div.empty { "暂无数据" }
            } @else {
                div.scroll {
                    table.t {
                        tr { @for (i, h) in t.headers.iter().enumerate() { th class=[(i > 0).then_some("num")] { (h) } } }
                        @for r in &t.rows {
                            tr {
                                @for (i, c) in r.iter().enumerate() {
                                    td class=[(i > 0 && !c.starts_with('⚠')).then_some("num")] {
                                        @if c.starts_with('⚠') { span.tag.err { (c) } } @else { (c) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /hospital/figures`.
pub async fn page_handler(State(state): State<AppState>, h: HospitalUser) -> WebResult {
    let c = load(&state, &h.code).await?;
    let today = now_cst().date();
    let tables = view::tables(&c, today);
    let days = view::days(&c);
    let last7: view::Day = days.range(today - Duration::days(7)..today).fold(view::Day::default(), |mut a, (_, d)| {
        for (x, y) in a.cases.iter_mut().zip(d.cases) {
            *x += y;
        }
        a.treated += d.treated;
        a.treated48 += d.treated48;
        a.treated_fbrq += d.treated_fbrq;
        a.deaths += d.deaths;
        a.severe += d.severe;
        a.critical += d.critical;
        a
    });
    let alerts = tables
        .iter()
        .find(|t| t.id == "stock")
        .map_or(0, |t| t.rows.iter().filter(|r| r.last().is_some_and(|c| c.starts_with('⚠'))).count());
    let body = html! {
        div.card {
            h2 { "本院监测" span.en { "Our own figures" } }
            p.hint {
                "根据本院上报并被接收的数据计算(只含本院), 口径与全国监测指标相同: 以最新版本为准, 已删除的记录不计, "
                "同一就诊流水号只计一例, 按就诊/入院日期归日。医院每日补报近 7 天数据, 近 7 天的数字仍会变化。"
            }
            div.figs {
                div.fig { b { (last7.total()) } span { "近7天病例" } }
                div.fig { b { (last7.treated) } span { "近7天抗病毒治疗" } }
                div.fig { b { (pct(last7.treated48, last7.treated_fbrq)) } span { "近7天48小时内用药率" } }
                div.fig class=[(last7.severe + last7.critical > 0).then_some("err")] { b { (last7.severe + last7.critical) } span { "近7天重症/危重症" } }
                div.fig class=[(last7.deaths > 0).then_some("err")] { b { (last7.deaths) } span { "近7天死亡" } }
                div.fig class=[(alerts > 0).then_some("err")] { b { (alerts) } span { "药物储备预警(<7天)" } }
            }
            p {
                a.btn href="/hospital/figures.xlsx" { "导出全部表格 (XLSX)" }
                " "
                @for t in &tables { a.btn.light.small href={ "#t-" (t.id) } { (t.title) } " " }
            }
        }
        div.card { (trusted_svg(daily_chart(&c, today))) }
        div.card { (trusted_svg(weekly_chart(&c))) }
        @for t in &tables { (table_html(t)) }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/figures"), "本院监测", body)))
}

fn attachment(bytes: Vec<u8>, ty: &'static str, name: &str) -> Response {
    let mut resp = bytes.into_response();
    let hd = resp.headers_mut();
    hd.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    hd.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        hd.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// One table as CSV with a UTF-8 BOM (Excel opens it in Chinese).
pub fn csv_of(t: &Table) -> Result<Vec<u8>> {
    let io = |e: csv::Error| Error::Internal(format!("csv: {e}"));
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record(&t.headers).map_err(io)?;
    for r in &t.rows {
        w.write_record(r).map_err(io)?;
    }
    w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))
}

/// Every table as one XLSX workbook, a sheet each; whole numbers as numbers.
pub fn xlsx_of(tables: &[Table]) -> Result<Vec<u8>> {
    let x = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let big = |_| Error::Internal("xlsx: too large".into());
    let mut wb = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for t in tables {
        let ws = wb.add_worksheet();
        let name: String = t.title.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
        ws.set_name(name).map_err(x)?;
        for (c, h) in t.headers.iter().enumerate() {
            let col = u16::try_from(c).map_err(big)?;
            ws.write_string_with_format(0, col, h, &bold).map_err(x)?;
            ws.set_column_width(col, 14).map_err(x)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let rr = u32::try_from(r + 1).map_err(big)?;
            for (c, cell) in row.iter().enumerate() {
                let col = u16::try_from(c).map_err(big)?;
                match cell.parse::<i64>() {
                    Ok(n) if c > 0 => ws.write_number(rr, col, n as f64).map_err(x)?,
                    _ => ws.write_string(rr, col, cell).map_err(x)?,
                };
            }
        }
    }
    wb.save_to_buffer().map_err(x)
}

/// `GET /hospital/figures/{id}.csv`.
pub async fn csv_handler(State(state): State<AppState>, h: HospitalUser, Path(file): Path<String>) -> WebResult {
    let id = file.strip_suffix(".csv").ok_or(Error::NotFound)?;
    let c = load(&state, &h.code).await?;
    let tables = view::tables(&c, now_cst().date());
    let t = tables.iter().find(|t| t.id == id).ok_or(Error::NotFound)?;
    Ok(attachment(csv_of(t)?, "text/csv; charset=utf-8", &format!("figures-{}-{id}.csv", h.code)))
}

/// `GET /hospital/figures.xlsx`.
pub async fn xlsx_handler(State(state): State<AppState>, h: HospitalUser) -> WebResult {
    let c = load(&state, &h.code).await?;
    let tables = view::tables(&c, now_cst().date());
    let bytes = xlsx_of(&tables)?;
    Ok(attachment(
        bytes,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &format!("figures-{}.xlsx", h.code),
    ))
}
