//! The counters turned into the tables the pages, charts and exports show
//! (本院监测). Rates are computed here from the counted numerators and
//! denominators, with the definitions of INDICATORS.md.
//!
//! ```text
//!  Counters ─▶ Days (per day: cases by type, tests, treated, 48 h, stays, severe, deaths, visits)
//!           ─▶ tables: daily · weekly (ISO) · lab by method · subtypes · antivirals · stock (可用天数,
//!              alert < 7) · reporting quality by type · rejections by rule · quality summary
//! ```

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::contrib::Counters;

/// A table with a stable id (file name of its export), a Chinese title and text cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub id: &'static str,
    pub title: &'static str,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The encounter types of cases, in display order.
pub const ENCOUNTERS: [&str; 4] = ["门诊", "急诊", "在院", "出院"];

/// Numbers of one day (or week).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Day {
    pub cases: [i64; 4],
    pub case_lab: i64,
    pub treated: i64,
    pub treated_fbrq: i64,
    pub treated48: i64,
    pub sev_treated_fbrq: i64,
    pub sev_treated48: i64,
    pub stays: i64,
    pub severe: i64,
    pub critical: i64,
    pub icu: i64,
    pub deaths: i64,
    pub lab_n: i64,
    pub vis_days: i64,
    pub visits: i64,
    /// 门急诊 cases on days with a visits row.
    pub oe_cases_vis: i64,
}

impl Day {
    pub fn total(&self) -> i64 {
        self.cases.iter().sum()
    }

    fn add(&mut self, o: &Day) {
        for (a, b) in self.cases.iter_mut().zip(o.cases) {
            *a += b;
        }
        self.case_lab += o.case_lab;
        self.treated += o.treated;
        self.treated_fbrq += o.treated_fbrq;
        self.treated48 += o.treated48;
        self.sev_treated_fbrq += o.sev_treated_fbrq;
        self.sev_treated48 += o.sev_treated48;
        self.stays += o.stays;
        self.severe += o.severe;
        self.critical += o.critical;
        self.icu += o.icu;
        self.deaths += o.deaths;
        self.lab_n += o.lab_n;
        self.vis_days += o.vis_days;
        self.visits += o.visits;
        self.oe_cases_vis += o.oe_cases_vis;
    }
}

/// `n / d` as a percentage with one decimal, `—` without a denominator.
pub fn pct(n: i64, d: i64) -> String {
    if d <= 0 { "—".into() } else { format!("{:.1}%", n as f64 * 100.0 / d as f64) }
}

/// The counters split at the first `:` of their name: kind → rest → value.
fn split(c: &Counters) -> BTreeMap<&str, BTreeMap<&str, i64>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for (k, v) in c {
        let (kind, rest) = k.split_once(':').unwrap_or((k.as_str(), ""));
        out.entry(kind).or_default().insert(rest, *v);
    }
    out
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Per day.
pub fn days(c: &Counters) -> BTreeMap<NaiveDate, Day> {
    let mut out: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    for (k, v) in c {
        let Some((kind, rest)) = k.split_once(':') else { continue };
        let Some(day) = date(rest) else { continue };
        let e = out.entry(day).or_default();
        match kind {
            "case" => {
                let enc = rest.get(11..).unwrap_or("");
                if let Some(slot) = ENCOUNTERS.iter().position(|x| *x == enc).and_then(|i| e.cases.get_mut(i)) {
                    *slot += v;
                }
            }
            "case_lab" => e.case_lab += v,
            "treated" => e.treated += v,
            "treated_fbrq" => e.treated_fbrq += v,
            "treated48" => e.treated48 += v,
            "sev_treated_fbrq" => e.sev_treated_fbrq += v,
            "sev_treated48" => e.sev_treated48 += v,
            "stay" => e.stays += v,
            "severe" => e.severe += v,
            "critical" => e.critical += v,
            "icu" => e.icu += v,
            "death" => e.deaths += v,
            "lab_n" => e.lab_n += v,
            "vis_day" => e.vis_days += v,
            "vis_mz" | "vis_jz" => e.visits += v,
            _ => {}
        }
    }
    out.retain(|_, d| *d != Day::default());
    for d in out.values_mut() {
        if d.vis_days > 0 {
            d.oe_cases_vis = d.cases.first().copied().unwrap_or(0) + d.cases.get(1).copied().unwrap_or(0);
        }
    }
    out
}

/// ISO week label `2026-W47`.
pub fn week_label(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Per ISO week.
pub fn weeks(days: &BTreeMap<NaiveDate, Day>) -> BTreeMap<String, Day> {
    let mut out: BTreeMap<String, Day> = BTreeMap::new();
    for (d, v) in days {
        out.entry(week_label(*d)).or_default().add(v);
    }
    out
}

fn row_of(label: String, d: &Day) -> Vec<String> {
    let mut r = vec![label];
    r.extend(d.cases.iter().map(i64::to_string));
    r.extend([
        d.total().to_string(),
        d.case_lab.to_string(),
        pct(d.case_lab, d.total()),
        d.treated.to_string(),
        pct(d.treated, d.total()),
        pct(d.treated48, d.treated_fbrq),
        pct(d.sev_treated48, d.sev_treated_fbrq),
        d.stays.to_string(),
        d.severe.to_string(),
        d.critical.to_string(),
        d.icu.to_string(),
        d.deaths.to_string(),
        if d.vis_days > 0 { d.visits.to_string() } else { "—".into() },
        pct(d.oe_cases_vis, d.visits),
    ]);
    r
}

fn case_headers(first: &str) -> Vec<String> {
    let mut h = vec![first.to_owned()];
    h.extend(ENCOUNTERS.iter().map(|e| format!("{e}病例")));
    h.extend(
        [
            "病例合计",
            "有检测病例",
            "病原学检测率",
            "抗病毒治疗病例",
            "抗病毒使用率",
            "48小时内用药率",
            "重症48小时内用药率",
            "住院病例",
            "重症",
            "危重症",
            "入ICU",
            "死亡",
            "门急诊诊疗人次",
            "门急诊流感占比",
        ]
        .map(str::to_owned),
    );
    h
}

/// Every table, newest days first in the day table. `today` (CST) is for the scan deadlines.
pub fn tables(c: &Counters, today: NaiveDate) -> Vec<Table> {
    let days = days(c);
    let weeks = weeks(&days);
    let sp = split(c);
    let empty = BTreeMap::new();
    let get = |k: &str| sp.get(k).unwrap_or(&empty);
    let mut out = Vec::new();
    out.push(Table {
        id: "daily",
        title: "按日病例与治疗",
        headers: case_headers("日期"),
        rows: days.iter().rev().map(|(d, v)| row_of(d.format("%Y-%m-%d").to_string(), v)).collect(),
    });
    out.push(Table {
        id: "weekly",
        title: "按周(ISO 周)病例与治疗",
        headers: case_headers("周"),
        rows: weeks.iter().rev().map(|(w, v)| row_of(w.clone(), v)).collect(),
    });
    // 阳性率 by method
    let method = |m: &str| match m {
        "1" => "抗原",
        "2" => "核酸",
        "3" => "培养",
        "4" => "血清抗体",
        _ => "其他",
    };
    let mut by_m: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (rest, v) in get("lab_valid") {
        by_m.entry(rest.get(11..).unwrap_or("")).or_default().0 += v;
    }
    for (rest, v) in get("lab_pos") {
        by_m.entry(rest.get(11..).unwrap_or("")).or_default().1 += v;
    }
    out.push(Table {
        id: "lab",
        title: "病原学检测与阳性率(按检测方法)",
        headers: ["检测方法", "有效结果数", "阳性数", "阳性率"].map(str::to_owned).to_vec(),
        rows: by_m
            .iter()
            .map(|(m, (n, p))| vec![method(m).into(), n.to_string(), p.to_string(), pct(*p, *n)])
            .collect(),
    });
    let mut by_sub: BTreeMap<&str, i64> = BTreeMap::new();
    for (rest, v) in get("sub") {
        *by_sub.entry(rest.get(11..).unwrap_or("")).or_default() += v;
    }
    let pos: i64 = by_sub.values().sum();
    out.push(Table {
        id: "subtypes",
        title: "阳性结果型别构成",
        headers: ["型别/亚型", "阳性数", "构成比"].map(str::to_owned).to_vec(),
        rows: by_sub.iter().map(|(s, n)| vec![(*s).to_owned(), n.to_string(), pct(*n, pos)]).collect(),
    });
    let mut by_class: BTreeMap<&str, i64> = BTreeMap::new();
    for (rest, v) in get("treated_class") {
        *by_class.entry(rest.get(11..).unwrap_or("")).or_default() += v;
    }
    let mut by_drug: BTreeMap<&str, i64> = BTreeMap::new();
    for (rest, v) in get("order") {
        *by_drug.entry(rest.get(11..).unwrap_or("")).or_default() += v;
    }
    let empiric: i64 = get("empiric").values().sum();
    let mut rows: Vec<Vec<String>> = by_class
        .iter()
        .map(|(k, n)| vec!["药物类别".into(), (*k).to_owned(), n.to_string(), "病例数".into()])
        .collect();
    rows.extend(by_drug.iter().map(|(k, n)| vec!["药品".into(), (*k).to_owned(), n.to_string(), "医嘱数".into()]));
    rows.push(vec!["经验性用药".into(), "无流感诊断的就诊".into(), empiric.to_string(), "医嘱数".into()]);
    out.push(Table {
        id: "antiviral",
        title: "抗病毒药物使用",
        headers: ["分组", "名称", "数量", "单位"].map(str::to_owned).to_vec(),
        rows,
    });
    out.push(stock_table(&sp));
    out.extend(quality_tables(&sp, today));
    out
}

/// 可用天数 per drug: stock on the latest day ÷ mean daily use over its 7 days; alert below 7.
fn stock_table(sp: &BTreeMap<&str, BTreeMap<&str, i64>>) -> Table {
    let empty = BTreeMap::new();
    let kcl = sp.get("stock_kcl").unwrap_or(&empty);
    let use7 = sp.get("stock_use7").unwrap_or(&empty);
    let day = sp.get("stock_day").unwrap_or(&empty);
    let mut rows = Vec::new();
    for (drug, k) in kcl.iter().chain(use7.iter().filter(|(d, _)| !kcl.contains_key(*d))) {
        let k = if kcl.contains_key(drug) { *k } else { 0 };
        let u = use7.get(drug).copied().unwrap_or(0);
        let on = day
            .get(drug)
            .and_then(|n| i32::try_from(*n).ok())
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .map_or("—".to_owned(), |d| d.format("%Y-%m-%d").to_string());
        let (days, alert) = if u > 0 {
            let days = k as f64 / (u as f64 / 7.0);
            (format!("{days:.1}"), if days < 7.0 { "⚠ 低于7天" } else { "正常" })
        } else {
            ("—".to_owned(), "无消耗")
        };
        rows.push(vec![
            (*drug).to_owned(),
            on,
            k.to_string(),
            format!("{:.1}", u as f64 / 7.0),
            days,
            alert.to_owned(),
        ]);
    }
    Table {
        id: "stock",
        title: "抗流感药物储备",
        headers: ["药品", "最近统计日期", "库存量", "近7日日均消耗", "可用天数", "预警"].map(str::to_owned).to_vec(),
        rows,
    }
}

fn type_zh(t: &str) -> &'static str {
    flumon_shared::model::RecordType::parse(t).map_or("其他", flumon_shared::model::RecordType::zh)
}

fn quality_tables(sp: &BTreeMap<&str, BTreeMap<&str, i64>>, today: NaiveDate) -> Vec<Table> {
    let empty = BTreeMap::new();
    let get = |k: &str| sp.get(k).unwrap_or(&empty);
    let mut by_ty: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    let mut updays = std::collections::BTreeSet::new();
    for (rest, v) in get("upl") {
        updays.insert(rest.get(..10).unwrap_or(""));
        by_ty.entry(rest.get(11..).unwrap_or("")).or_default().0 += v;
    }
    for (rest, v) in get("rows") {
        by_ty.entry(rest.get(11..).unwrap_or("")).or_default().1 += v;
    }
    for (rest, v) in get("rej") {
        by_ty.entry(rest.get(11..).unwrap_or("")).or_default().2 += v;
    }
    let rows_total: i64 = by_ty.values().map(|t| t.1).sum();
    let by_type = Table {
        id: "quality",
        title: "上报质量(按类型)",
        headers: ["数据类型", "上传次数", "上报行数", "拒收行数", "拒收率"].map(str::to_owned).to_vec(),
        rows: by_ty
            .iter()
            .map(|(t, (u, r, j))| vec![type_zh(t).to_owned(), u.to_string(), r.to_string(), j.to_string(), pct(*j, *r)])
            .collect(),
    };
    let mut rules: Vec<(&str, i64)> = get("rule").iter().map(|(k, v)| (*k, *v)).collect();
    rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let by_rule = Table {
        id: "rules",
        title: "拒收原因(按规则代码)",
        headers: ["规则代码", "次数", "占上报行数"].map(str::to_owned).to_vec(),
        rows: rules.iter().map(|(k, v)| vec![(*k).to_owned(), v.to_string(), pct(*v, rows_total)]).collect(),
    };
    let late: i64 = get("late").values().sum();
    let mut due = 0;
    let mut past = 0;
    let done_by = get("scan_done");
    let done: i64 = done_by.values().sum();
    for (rest, v) in get("scan_due") {
        due += v;
        if date(rest).is_some_and(|d| d < today) {
            past += v - done_by.get(rest).copied().unwrap_or(0);
        }
    }
    let first = updays.iter().next().and_then(|d| date(d));
    let expected = first.map_or(0, |f| (today - f).num_days() + 1);
    let summary = Table {
        id: "summary",
        title: "上报质量概况",
        headers: ["指标", "数值"].map(str::to_owned).to_vec(),
        rows: vec![
            vec!["有上传的天数".into(), updays.len().to_string()],
            vec!["自首次上传以来的天数".into(), expected.to_string()],
            vec!["迟报记录(首次收到晚于业务日期7天以上)".into(), late.to_string()],
            vec!["死亡病例扫描件应交(归档日期+7天)".into(), due.to_string()],
            vec!["已交扫描件".into(), done.to_string()],
            vec!["期限已过仍未交".into(), past.to_string()],
        ],
    };
    vec![by_type, by_rule, summary]
}
