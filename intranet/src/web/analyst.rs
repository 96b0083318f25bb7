//! The analysts' overview (headline figures of the scope this week against
//! last week, each linking to its detail), the drug reserve and the
//! reporting quality pages. A handful of rollup reads per page, never case rows.
//!
//! ```text
//!  /overview?scope&to ─▶ report(this 7 days) + report(previous 7 days) + MEM levels ─▶ cards + table
//!  /drugs?scope&date  ─▶ views::drug_reserve ─▶ by-drug table + hospitals (< 7 days highlighted)
//!  /quality?scope&from&to ─▶ views::quality (period and yesterday) + report totals (rules, death scans)
//! ```

use axum::extract::{Query, State};
use maud::{Markup, html};

use super::filters::{Q, bar, crumbs, parse_day};
use super::layout::{cell, html_ok, int, num, page, pct, ratio};
use super::table::{Table, Td, export};
use super::{PageResult, WebUser};
use crate::api::AppState;
use crate::api::data::today;
use crate::indicators::views::{self, ALERT_DAYS};
use crate::indicators::{By, Cell, Indicators, Period, Ratio, report};
use crate::levels::{self, Series};
use crate::timeconv::date_of;

/// Answers the export of one of the page's tables when `?format=` is set.
pub fn maybe_export(q: &Q, tables: &[Table], stem: &str) -> Option<PageResult> {
    let f = q.format.as_deref()?;
    Some(export(tables, q.table.as_deref(), f, stem).map_err(Into::into))
}

fn kpi(title: &str, value: String, detail: Markup, href: &str, class: &str) -> Markup {
    html! {
        a class={ "kpi " (class) } href=(href) {
            div.k { (title) }
            div.v { (value) }
            div.d { (detail) }
        }
    }
}

fn change(now: Cell, before: Cell) -> Markup {
    match (now.shown(), before.shown()) {
        (Some(a), Some(b)) if b > 0 => {
            let r = (a - b) as f64 / b as f64 * 100.0;
            let cls = if r > 0.0 { "up" } else { "down" };
            html! { "较上周 " span class=(cls) { (format!("{}{r:.1}%", if r > 0.0 { "+" } else { "" })) } " (上周 " (int(b)) ")" }
        }
        _ => html! { "上周 " (super::layout::cell(before)) },
    }
}

fn severe_count(i: &Indicators) -> Cell {
    match (i.severe.num, i.critical.num) {
        (Cell::Value(a), Cell::Value(b)) => Cell::Value(a + b),
        _ => Cell::Hidden,
    }
}

fn ratio_row(t: &mut Table, name: &str, a: &Ratio, b: &Ratio) {
    t.push(vec![Td::text(name), Td::num(ratio(a)), Td::num(ratio(b))]);
}

/// `GET /overview`.
pub async fn overview(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let to = q.to_day(&st).map_err(|e| u.err(e))?;
    let week = Period::new(date_of(to - 6), date_of(to), By::Season).map_err(|e| u.err(e))?;
    let prev = Period::new(date_of(to - 13), date_of(to - 7), By::Season).map_err(|e| u.err(e))?;
    let now = report(&st.db, &s, &week).await.map_err(|e| u.err(e))?.total;
    let before = report(&st.db, &s, &prev).await.map_err(|e| u.err(e))?.total;
    let lv = levels::levels(&st.db, &s, to, Series::OeRatio, 10).await.map_err(|e| u.err(e))?;
    let last_level = lv.current.iter().rev().find(|w| w.complete && w.value.is_some());

    let mut t = Table::new("overview", "主要指标: 本周与上周", &["指标", "本周", "上周"]);
    t.push(vec![Td::text("流感病例数"), Td::num(cell(now.cases.total)), Td::num(cell(before.cases.total))]);
    ratio_row(&mut t, "门急诊流感样病例占比", &now.oe_ratio, &before.oe_ratio);
    t.push(vec![Td::text("新增住院"), Td::num(cell(now.admissions)), Td::num(cell(before.admissions))]);
    ratio_row(&mut t, "病原学检测率", &now.tested_rate, &before.tested_rate);
    ratio_row(&mut t, "阳性率", &now.positivity, &before.positivity);
    ratio_row(&mut t, "抗病毒药物使用率", &now.antiviral_rate, &before.antiviral_rate);
    ratio_row(&mut t, "48 小时内用药率", &now.within_48h, &before.within_48h);
    t.push(vec![Td::text("重症及危重症例数"), Td::num(cell(severe_count(&now))), Td::num(cell(severe_count(&before)))]);
    ratio_row(&mut t, "重症比例", &now.severe, &before.severe);
    t.push(vec![Td::text("死亡例数"), Td::num(cell(now.deaths)), Td::num(cell(before.deaths))]);
    ratio_row(&mut t, "住院病死率", &now.inpatient_fatality, &before.inpatient_fatality);
    ratio_row(&mut t, "上报及时率", &now.quality.timeliness, &before.quality.timeliness);
    if let Some(r) = maybe_export(&q, std::slice::from_ref(&t), "overview") {
        return r;
    }
    let series_url = q.url("/series", &[]);
    let (lvl_text, lvl_class) = match last_level {
        Some(w) => (w.level_zh.unwrap_or("未定").to_string(), format!("lvl-{}", w.level_zh.unwrap_or(""))),
        None => ("—".into(), String::new()),
    };
    let body = html! {
        h2 { "概览 · " (s.scope().name()) }
        (crumbs("/overview", &q, s.scope()))
        (bar("/overview", &q, &u, Some(&week), &["scope", "to"], html! {}))
        p.hint { "统计周期: " (date_of(to - 6)) " 至 " (date_of(to)) " (近 7 天), 对比上一 7 天。点击卡片查看详情。" }
        div.kpis {
            (kpi("本周流感病例数", cell(now.cases.total), change(now.cases.total, before.cases.total), &format!("{series_url}#cases"), "kpi-cases"))
            (kpi("阳性率", ratio(&now.positivity), html! { "上周 " (ratio(&before.positivity)) }, &format!("{series_url}#positivity"), ""))
            (kpi("抗病毒药物使用率", ratio(&now.antiviral_rate), html! { "48 小时内用药率 " (ratio(&now.within_48h)) }, &format!("{series_url}#antivirals"), ""))
            (kpi("重症及危重症", cell(severe_count(&now)), html! { "上周 " (cell(severe_count(&before))) }, &format!("{series_url}#severe"), ""))
            (kpi("死亡例数", cell(now.deaths), html! { "上周 " (cell(before.deaths)) }, &format!("{series_url}#severe"), ""))
            (kpi("当前流行水平 (MEM)", lvl_text, html! {
                @if let Some(w) = last_level { (w.week) " 门急诊占比 " (num(w.value, 2)) "%" } @else { "历史流行季不足, 暂无阈值" }
            }, &q.url("/mem", &[]), &lvl_class))
        }
        div.card { (t.html(Some(&q.url("/overview", &[])))) }
    };
    Ok(html_ok(page(&u.frame("/overview"), "概览", body)))
}

/// `GET /drugs`.
pub async fn drugs(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let date = match q.date.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => parse_day(d).map_err(|e| u.err(e))?,
        None => today(&st),
    };
    let r = views::drug_reserve(&st.db, &s, date).await.map_err(|e| u.err(e))?;
    let mut by = Table::new("by_drug", "按药品汇总", &["药品", "库存量", "日均消耗 (近 7 天)", "可用天数", "状态"]);
    for (drug, x) in &r.by_drug {
        by.push_class(
            vec![
                Td::text(drug.clone()),
                Td::num(int(x.kcl)),
                Td::num(num(Some(x.mean_use), 1)),
                Td::num(num(x.days, 1)),
                Td::text(if x.alert { "不足 7 天" } else { "正常" }),
            ],
            x.alert.then_some("alert"),
        );
    }
    let mut hs = Table::new(
        "hospitals",
        "各医院储备 (不足 7 天的排在前面并标红)",
        &["医院", "机构代码", "药品", "统计日期", "库存量", "日均消耗", "可用天数"],
    );
    let mut rows = r.hospitals.clone();
    rows.sort_by(|a, b| {
        b.reserve.alert.cmp(&a.reserve.alert).then(
            a.reserve
                .days
                .unwrap_or(f64::MAX)
                .partial_cmp(&b.reserve.days.unwrap_or(f64::MAX))
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    for h in &rows {
        hs.push_class(
            vec![
                Td::text(h.name.clone()),
                Td::text(h.hospital.clone()),
                Td::text(h.drug.clone()),
                Td::text(h.tjrq.clone()),
                Td::num(int(h.reserve.kcl)),
                Td::num(num(Some(h.reserve.mean_use), 1)),
                Td::num(num(h.reserve.days, 1)),
            ],
            h.reserve.alert.then_some("alert"),
        );
    }
    let tables = [by, hs];
    if let Some(r) = maybe_export(&q, &tables, "drugs") {
        return r;
    }
    let date_input = html! {
        div { label for="f-date" { "截至日期" } input #f-date type="date" name="date" value=(r.date); }
    };
    let url = q.url("/drugs", &[]);
    let body = html! {
        h2 { "抗流感药物储备 · " (s.scope().name()) }
        (crumbs("/drugs", &q, s.scope()))
        (bar("/drugs", &q, &u, None, &["scope"], date_input))
        div.kpis {
            (kpi("储备不足 7 天的医院-药品", int(r.alerts.len() as i64), html! { "共 " (int(rows.len() as i64)) " 条储备记录" }, "#t-hospitals", if r.alerts.is_empty() { "" } else { "lvl-very_high" }))
        }
        p.hint { "可用天数 = 最新库存量 ÷ 近 7 天日均消耗量; 低于 " (ALERT_DAYS) " 天标红。" }
        @for t in &tables { div.card { (t.html(Some(&url))) } }
    };
    Ok(html_ok(page(&u.frame("/drugs"), "药物储备", body)))
}

/// `GET /quality`.
pub async fn quality(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    let s = q.scoped(&st, &u).await?;
    let p = q.period(&st, 28, By::Week).map_err(|e| u.err(e))?;
    let yesterday = today(&st) - 1;
    let y = Period::new(date_of(yesterday), date_of(yesterday), By::Day).map_err(|e| u.err(e))?;
    let per = views::quality(&st.db, &s, &p).await.map_err(|e| u.err(e))?;
    let yq = views::quality(&st.db, &s, &y).await.map_err(|e| u.err(e))?;
    let total = report(&st.db, &s, &p).await.map_err(|e| u.err(e))?.total;
    let missed: std::collections::BTreeSet<String> = yq
        .iter()
        .filter(|h| h.quality.timeliness.den.shown().unwrap_or(0) > 0 && h.quality.timeliness.num == Cell::Value(0))
        .map(|h| h.hospital.clone())
        .collect();
    let mut hs = Table::new(
        "hospitals",
        "各医院上报质量",
        &["医院", "机构代码", "地区", "昨日上报", "上报及时率", "完整率", "逻辑错误率", "迟报量"],
    );
    for h in &per {
        let miss = missed.contains(&h.hospital);
        let bad =
            h.quality.timeliness.value.is_some_and(|v| v < 0.8) || h.quality.error_rate.value.is_some_and(|v| v > 0.05);
        hs.push_class(
            vec![
                Td::text(h.name.clone()),
                Td::text(h.hospital.clone()),
                Td::text(super::layout::scope_name(&h.region)),
                Td::text(if miss { "未上报" } else { "已上报" }),
                Td::num(ratio(&h.quality.timeliness)),
                Td::num(ratio(&h.quality.completeness)),
                Td::num(ratio(&h.quality.error_rate)),
                Td::num(int(h.quality.late)),
            ],
            if miss {
                Some("alert")
            } else if bad {
                Some("warn")
            } else {
                None
            },
        );
    }
    let mut rules = Table::new("rules", "按校验规则的拒收行数", &["规则", "拒收行数", "占接收行数"]);
    let received = total.quality.error_rate.den.shown().unwrap_or(0);
    for (rule, n) in &total.quality.rejected_by_rule {
        rules.push(vec![
            Td::text(rule.clone()),
            Td::num(int(*n)),
            Td::num(pct((received > 0).then(|| *n as f64 / received as f64))),
        ]);
    }
    let scans = &total.death_scan_timely;
    let overdue = match (scans.den.shown(), scans.num.shown()) {
        (Some(d), Some(n)) => int(d - n),
        _ => "—".into(),
    };
    let tables = [hs, rules];
    if let Some(r) = maybe_export(&q, &tables, "quality") {
        return r;
    }
    let url = q.url("/quality", &[]);
    let body = html! {
        h2 { "数据质量 · " (s.scope().name()) }
        (crumbs("/quality", &q, s.scope()))
        (bar("/quality", &q, &u, Some(&p), &["scope", "from", "to"], html! {}))
        div.kpis {
            (kpi("昨日未上报医院", int(missed.len() as i64), html! { (date_of(yesterday)) " · 共 " (int(per.len() as i64)) " 家" }, "#t-hospitals", if missed.is_empty() { "" } else { "lvl-very_high" }))
            (kpi("上报及时率", ratio(&total.quality.timeliness), html! { "次日 08:00 前上报" }, "#t-hospitals", ""))
            (kpi("逻辑错误率", ratio(&total.quality.error_rate), html! { "拒收行 ÷ 接收行" }, "#t-rules", ""))
            (kpi("迟报量", int(total.quality.late), html! { "业务日期 7 天后才收到的记录" }, "#t-hospitals", ""))
            (kpi("死亡病例扫描件逾期", overdue, html! { "及时率 " (ratio(scans)) }, "#t-hospitals", ""))
        }
        @for t in &tables { div.card { (t.html(Some(&url))) } }
    };
    Ok(html_ok(page(&u.frame("/quality"), "数据质量", body)))
}
