//! The time-series pages, drawn on the server with `flumon_shared::svgchart`:
//! cases by encounter type (stacked), positivity by type/subtype (stacked),
//! antiviral use and the 48-hour rate, severe/critical and deaths; the MEM
//! chart (current season against the epidemic threshold and the intensity
//! bands, past seasons beside) and the nowcast (intervals shaded, incomplete
//! days marked apart from complete data).
//!
//! ```text
//!  /series?scope&from&to&by ─▶ report (one read, buckets) ─▶ 4 charts + table
//!  /mem?scope&to&ind       ─▶ levels::levels + nowcast::for_scope + report(by day, 5 weeks) ─▶ 2 charts + tables
//! ```

use axum::extract::{Query, State};
use flumon_shared::svgchart::{Band, Chart, HBand, HLine, Series};
use maud::html;

use super::analyst::maybe_export;
use super::filters::{Q, bar, crumbs};
use super::layout::{cell, html_ok, num, page, pct, ratio, svg};
use super::table::{Table, Td};
use super::{PageResult, WebUser};
use crate::api::AppState;
use crate::indicators::{By, Cell, Indicators, Period, Ratio, report};
use crate::levels::{self, Series as MemSeries};
use crate::nowcast;
use crate::timeconv::date_of;

fn v(c: Cell) -> Option<f64> {
    c.shown().map(|x| x as f64)
}

fn part(i: &Indicators, key: &str) -> Option<f64> {
    i.cases.by_encounter.parts.get(key).copied().and_then(v)
}

fn rv(r: &Ratio) -> Option<f64> {
    r.value
}

/// Subtypes in display order with Chinese labels.
const SUBTYPES: &[(&str, &str)] = &[
    ("A(H1N1)pdm09", "甲型 H1N1pdm09"),
    ("A(H3N2)", "甲型 H3N2"),
    ("A_other", "甲型 其他亚型"),
    ("A_unsubtyped", "甲型 未分亚型"),
    ("B/Victoria", "乙型 Victoria"),
    ("B/Yamagata", "乙型 Yamagata"),
    ("B_undetermined", "乙型 未定系"),
    ("A+B", "甲乙混合"),
    ("unknown", "型别不详"),
];

/// `GET /series`.
pub async fn series(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let by_default = if q.by.as_deref() == Some("day") { 56 } else { 26 * 7 };
    let p = q.period(&st, by_default, By::Week).map_err(|e| u.err(e))?;
    let r = report(&st.db, &s, &p).await.map_err(|e| u.err(e))?;
    let ps = &r.periods;
    let labels: Vec<String> = ps.iter().map(|i| i.period.clone()).collect();
    let mut t = Table::new(
        "series",
        "逐期指标",
        &[
            "时期",
            "病例数",
            "门诊",
            "急诊",
            "在院",
            "出院",
            "阳性率",
            "抗病毒使用率",
            "48h 内用药率",
            "重症",
            "危重症",
            "死亡",
        ],
    );
    for i in ps {
        let g = |k: &str| i.cases.by_encounter.parts.get(k).copied().map_or_else(|| "0".into(), cell);
        t.push(vec![
            Td::text(i.period.clone()),
            Td::num(cell(i.cases.total)),
            Td::num(g("outpatient")),
            Td::num(g("emergency")),
            Td::num(g("inpatient")),
            Td::num(g("discharged")),
            Td::num(ratio(&i.positivity)),
            Td::num(ratio(&i.antiviral_rate)),
            Td::num(ratio(&i.within_48h)),
            Td::num(cell(i.severe.num)),
            Td::num(cell(i.critical.num)),
            Td::num(cell(i.deaths)),
        ]);
    }
    if let Some(r) = maybe_export(&q, std::slice::from_ref(&t), "series") {
        return r;
    }
    let unit = match p.by {
        By::Day => "日",
        By::Week => "周",
        By::Season => "流行季",
    };
    let cases = Chart {
        title: format!("流感病例数 (按{unit}, 按就诊类型)"),
        y_label: "例".into(),
        x_labels: labels.clone(),
        bars: vec![
            Series::new("门诊", ps.iter().map(|i| part(i, "outpatient")).collect()),
            Series::new("急诊", ps.iter().map(|i| part(i, "emergency")).collect()),
            Series::new("在院", ps.iter().map(|i| part(i, "inpatient")).collect()),
            Series::new("出院", ps.iter().map(|i| part(i, "discharged")).collect()),
        ],
        ..Chart::default()
    };
    let mut subtype_bars = Vec::new();
    for (key, zh) in SUBTYPES {
        let vals: Vec<Option<f64>> = ps
            .iter()
            .map(|i| {
                let n = i.subtypes.parts.get(*key).copied().and_then(v)?;
                let d = i.positivity.den.shown().filter(|d| *d > 0)? as f64;
                Some(n / d)
            })
            .collect();
        if vals.iter().any(|x| x.is_some_and(|y| y > 0.0)) {
            subtype_bars.push(Series::new(*zh, vals));
        }
    }
    let positivity = Chart {
        title: "阳性率 (按型别/亚型堆积)".into(),
        x_labels: labels.clone(),
        percent: true,
        bars: subtype_bars,
        lines: vec![Series::new("总阳性率", ps.iter().map(|i| rv(&i.positivity)).collect()).color("#333333")],
        ..Chart::default()
    };
    let antivirals = Chart {
        title: "抗病毒药物使用率与 48 小时内用药率".into(),
        x_labels: labels.clone(),
        percent: true,
        lines: vec![
            Series::new("抗病毒药物使用率", ps.iter().map(|i| rv(&i.antiviral_rate)).collect()),
            Series::new("48 小时内用药率", ps.iter().map(|i| rv(&i.within_48h)).collect()),
            Series::new("重症 48 小时内用药率", ps.iter().map(|i| rv(&i.within_48h_severe)).collect()).dashed(),
        ],
        ..Chart::default()
    };
    let severe = Chart {
        title: "重症、危重症与死亡例数".into(),
        y_label: "例".into(),
        x_labels: labels,
        bars: vec![
            Series::new("重症", ps.iter().map(|i| v(i.severe.num)).collect()).color("#E69F00"),
            Series::new("危重症", ps.iter().map(|i| v(i.critical.num)).collect()).color("#D55E00"),
        ],
        lines: vec![Series::new("死亡", ps.iter().map(|i| v(i.deaths)).collect()).color("#000000")],
        ..Chart::default()
    };
    let url = q.url("/series", &[]);
    let body = html! {
        h2 { "时间序列 · " (s.scope().name()) }
        (crumbs("/series", &q, s.scope()))
        (bar("/series", &q, &u, Some(&p), &["scope", "from", "to", "by"], html! {}))
        @if r.small_cells { p.hint { "小于 5 的计数不显示 (图中留空)。" } }
        div.grid2 {
            div.card #cases { (svg(cases.render())) }
            div.card #positivity { (svg(positivity.render())) }
            div.card #antivirals { (svg(antivirals.render())) }
            div.card #severe { (svg(severe.render())) }
        }
        div.card { (t.html(Some(&url))) }
    };
    Ok(html_ok(page(&u.frame("/series"), "时间序列", body)))
}

/// `GET /mem`: MEM levels and the nowcast.
pub async fn mem(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let to = q.to_day(&st).map_err(|e| u.err(e))?;
    let ser = match q.ind.as_deref() {
        Some("cases") => MemSeries::Cases,
        _ => MemSeries::OeRatio,
    };
    let lv = levels::levels(&st.db, &s, to, ser, 10).await.map_err(|e| u.err(e))?;
    let nc = nowcast::for_scope(&st.db, &s, to, 8).await.map_err(|e| u.err(e))?;
    let recent = Period::new(date_of(to - 34), date_of(to), By::Day).map_err(|e| u.err(e))?;
    let daily = report(&st.db, &s, &recent).await.map_err(|e| u.err(e))?;

    // MEM chart: rows = season weeks (40 … 39); past seasons thin, current season bold.
    let m = &lv.model;
    let mut lines: Vec<Series> = Vec::new();
    let greys = ["#b8c4d6", "#9fb0c8", "#8799b8", "#7083a8", "#5c6f96"];
    let n_past = lv.seasons.len();
    for (k, (name, vals)) in lv.seasons.iter().enumerate() {
        let c = greys.get(k + greys.len().saturating_sub(n_past)).copied().unwrap_or("#9fb0c8");
        lines.push(Series::new(format!("{name} 季"), vals.clone()).color(c));
    }
    let current: Vec<Option<f64>> = lv
        .week_labels
        .iter()
        .map(|w| {
            lv.current
                .iter()
                .find(|c| c.week.rsplit('W').next().and_then(|x| x.parse::<u32>().ok()) == w.parse::<u32>().ok())
                .and_then(|c| c.value)
        })
        .collect();
    lines.push(Series::new(format!("{} 本季", lv.current_season), current).color("#c8102e"));
    let mut hbands = Vec::new();
    let mut hlines = Vec::new();
    if let (Some(et), Some(i)) = (m.epidemic_threshold, &m.intensity) {
        hbands.push(HBand { name: "低流行".into(), from: et, to: i.medium, color: "#2e9e5b".into() });
        hbands.push(HBand { name: "中流行".into(), from: i.medium, to: i.high, color: "#e0a800".into() });
        hbands.push(HBand { name: "高流行".into(), from: i.high, to: i.very_high, color: "#e06600".into() });
        hbands
            .push(HBand { name: "极高流行".into(), from: i.very_high, to: f64::INFINITY, color: "#b42318".into() });
        hlines.push(HLine { name: format!("流行阈值 {et:.2}"), value: et, color: "#0d3b66".into() });
    }
    let unit = if ser == MemSeries::Cases { "周病例数" } else { "门急诊流感样病例占比 (%)" };
    let mem_chart = Chart {
        title: format!("MEM 流行强度: {unit}, 本季与往季"),
        x_labels: lv.week_labels.iter().map(|w| format!("W{w}")).collect(),
        height: 340,
        lines,
        hbands,
        hlines,
        ..Chart::default()
    };
    let mut weeks = Table::new("levels", "本季各周流行水平", &["周", "数值", "流行水平", "数据完整"]);
    for w in lv.current.iter().rev() {
        let class = match w.level {
            Some(crate::mem::Level::High | crate::mem::Level::VeryHigh) => Some("alert"),
            Some(crate::mem::Level::Medium) => Some("warn"),
            _ => None,
        };
        weeks.push_class(
            vec![
                Td::text(w.week.clone()),
                Td::num(num(w.value, 2)),
                Td::text(w.level_zh.unwrap_or("—")),
                Td::text(if w.complete { "是" } else { "本周未结束" }),
            ],
            class,
        );
    }

    // Nowcast chart: the last 35 days; days still being reported are estimated with 80 % / 95 % bands.
    let days: Vec<(String, Option<f64>)> = daily.periods.iter().map(|i| (i.period.clone(), v(i.cases.total))).collect();
    let labels: Vec<String> = days.iter().map(|(d, _)| d.get(5..).unwrap_or(d).to_string()).collect();
    let est = |d: &str| nc.days.iter().find(|x| x.date == d);
    let first_nc = days.iter().position(|(d, _)| est(d).is_some_and(|x| x.interval.is_some()));
    let complete: Vec<Option<f64>> =
        days.iter().enumerate().map(|(k, (_, x))| if first_nc.is_none_or(|f| k < f) { *x } else { None }).collect();
    let reported: Vec<Option<f64>> =
        days.iter().enumerate().map(|(k, (_, x))| if first_nc.is_some_and(|f| k >= f) { *x } else { None }).collect();
    let pick = |f: &dyn Fn(&nowcast::model::Interval) -> f64| -> Vec<Option<f64>> {
        days.iter().map(|(d, _)| est(d).and_then(|x| x.interval.as_ref()).map(f)).collect()
    };
    let mut estimate: Vec<Option<f64>> = days.iter().map(|(d, _)| est(d).and_then(|x| x.estimate)).collect();
    if let Some(f) = first_nc.filter(|f| *f > 0)
        && let Some(slot) = estimate.get_mut(f - 1)
    {
        // Join the estimate to the last complete day.
        *slot = complete.get(f - 1).copied().flatten();
    }
    let nc_chart = Chart {
        title: "近 35 天每日病例数与实时预测 (nowcast)".into(),
        y_label: "例".into(),
        x_labels: labels,
        bars: vec![Series::new("已收到 (尚不完整)", reported).color("#c9d3e0")],
        bands: vec![
            Band {
                name: "95% 区间".into(),
                lower: pick(&|i| i.lo95),
                upper: pick(&|i| i.hi95),
                color: "#c8102e".into(),
                opacity: 0.12,
            },
            Band {
                name: "80% 区间".into(),
                lower: pick(&|i| i.lo80),
                upper: pick(&|i| i.hi80),
                color: "#c8102e".into(),
                opacity: 0.22,
            },
        ],
        lines: vec![
            Series::new("完整数据", complete).color("#0d3b66"),
            Series::new("预测值", estimate).color("#c8102e").dashed(),
        ],
        split: first_nc.map(|f| (f, "报告尚未完整".to_string())),
        ..Chart::default()
    };
    let mut nt = Table::new("nowcast", "实时预测 (nowcast)", &["日期", "已收到", "预测值", "80% 区间", "95% 区间"]);
    for d in &nc.days {
        let iv = |lo: f64, hi: f64| format!("{lo:.0} – {hi:.0}");
        nt.push(vec![
            Td::text(d.date.clone()),
            Td::num(cell(d.observed)),
            Td::num(num(d.estimate, 0)),
            Td::text(d.interval.as_ref().map_or_else(|| "—".into(), |i| iv(i.lo80, i.hi80))),
            Td::text(d.interval.as_ref().map_or_else(|| "—".into(), |i| iv(i.lo95, i.hi95))),
        ]);
    }
    for f in &nc.forecast {
        nt.push(vec![
            Td::text(format!("未来第 {} 周 (预报)", f.weeks_ahead)),
            Td::num("—"),
            Td::num(num(Some(f.estimate), 0)),
            Td::text(format!("{:.0} – {:.0}", f.interval.lo80, f.interval.hi80)),
            Td::text(format!("{:.0} – {:.0}", f.interval.lo95, f.interval.hi95)),
        ]);
    }
    let tables = [weeks, nt];
    if let Some(r) = maybe_export(&q, &tables, "mem") {
        return r;
    }
    let ind = html! {
        div { label for="f-ind" { "MEM 序列" }
            select #f-ind name="ind" {
                option value="oe_ratio" selected[ser == MemSeries::OeRatio] { "门急诊流感样病例占比" }
                option value="cases" selected[ser == MemSeries::Cases] { "周病例数" }
            }
        }
    };
    let last = lv.current.iter().rev().find(|w| w.complete && w.value.is_some());
    let url = q.url("/mem", &[]);
    let body = html! {
        h2 { "流行水平与预测 · " (s.scope().name()) }
        (crumbs("/mem", &q, s.scope()))
        (bar("/mem", &q, &u, Some(&recent), &["scope", "to"], ind))
        div.kpis {
            a.kpi href="#t-levels" {
                div.k { "当前流行水平" }
                div.v { (last.and_then(|w| w.level_zh).unwrap_or("—")) }
                div.d { (last.map_or("—".to_string(), |w| w.week.clone())) " · 流行阈值 " (num(m.epidemic_threshold, 2)) }
            }
            a.kpi href="#t-nowcast" {
                div.k { "近 7 天预测病例数" }
                div.v { (num(nc.last_week.estimate, 0)) }
                div.d { "已收到 " (cell(nc.last_week.observed)) " · 上一周 " (num(nc.previous_week.estimate, 0)) }
            }
            a.kpi href="#t-nowcast" {
                div.k { "周增长率" }
                div.v { (nc.growth.as_ref().map_or("—".to_string(), |g| pct(Some(g.weekly_rate)))) }
                div.d {
                    @if let Some(g) = &nc.growth {
                        @if let Some(d) = g.doubling_days { "倍增时间 " (num(Some(d), 1)) " 天" }
                        @else if let Some(h) = g.halving_days { "减半时间 " (num(Some(h), 1)) " 天" }
                        @else { "持平" }
                    } @else { "数据不足" }
                }
            }
        }
        @if let Some(reason) = &m.reason { p.msg.warn { "MEM: " (reason) } }
        div.card #memchart { (svg(mem_chart.render())) }
        div.card #nowcast {
            (svg(nc_chart.render()))
            p.hint { "灰色背景区间内的病例仍在陆续上报; 红色虚线为按报告延迟估计的最终病例数, 浅红色为 80% / 95% 预测区间。" }
        }
        @for t in &tables { div.card { (t.html(Some(&url))) } }
    };
    Ok(html_ok(page(&u.frame("/mem"), "流行水平与预测", body)))
}
