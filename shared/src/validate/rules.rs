//! The rules of each record type beyond the field table: dates in order,
//! ages against birth dates, ID numbers, costs, conditional requirements.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

use super::ids::{IdProblem, check_citizen_id, is_icd10_shape, is_region_code, is_valid_uscc};
use super::{Ctx, Row, RowError};
use crate::model::*;

/// Validate one row of type `ty`. A row with any error is rejected.
pub fn validate_row(ty: RecordType, raw: &RawRow, ctx: &Ctx) -> Result<Record, Vec<RowError>> {
    let op_cell = type_def(ty).index("CZLX").and_then(|i| raw.cells.get(i)).and_then(|c| c.as_ref());
    let delete = matches!(op_cell, Some(Cell::Text(s)) if s.trim() == "3")
        || matches!(op_cell, Some(Cell::Number(x)) if *x == 3.0);
    let mut r = Row::convert(ty, raw, delete);
    let common = common(&mut r, ctx, delete);
    let rec = if delete {
        Record::Delete(Box::new(Delete { ty, common, jzlsh: r.text("JZLSH") }))
    } else {
        match ty {
            RecordType::Outpatient => outpatient(&mut r, common),
            RecordType::Discharge => discharge(&mut r, common),
            RecordType::Summary => summary(&mut r, common),
            RecordType::Death => death(&mut r, common),
            RecordType::Medication => medication(&mut r, common),
            RecordType::Lab => lab(&mut r, common),
            RecordType::Stock => stock(&mut r, common),
            RecordType::Visits => visits(&mut r, common),
        }
    };
    if r.errs.is_empty() { Ok(rec) } else { Err(r.errs) }
}

fn common(r: &mut Row<'_>, ctx: &Ctx, delete: bool) -> Common {
    let zzjgdm = r.text("ZZJGDM").unwrap_or_default();
    if r.has("ZZJGDM") {
        if !is_valid_uscc(&zzjgdm) {
            r.error("ZZJGDM", "BAD_ORG_CODE", "18 位, 第 18 位为 GB 32100 校验位");
        } else if ctx.org.as_deref().is_some_and(|o| o != zzjgdm) {
            r.error("ZZJGDM", "ORG_MISMATCH", "只能上传本院的数据");
        }
    }
    if let Some(v) = r.text("BBH")
        && v != "1.0"
    {
        r.error("BBH", "BAD_VERSION", "");
    }
    let gxsj = r.datetime("GXSJ");
    if gxsj.is_some_and(|t| t > ctx.now + Duration::minutes(5)) {
        r.error("GXSJ", "FUTURE_TIME", "允许 5 分钟时钟误差, 请检查前置机或 HIS 的系统时间");
    }
    let ywrq = r.date("YWRQ");
    if !delete && let Some(d) = ywrq {
        let today = ctx.today();
        if d > today || d < today - Duration::days(30) {
            r.error("YWRQ", "YWRQ_WINDOW", "须在接收当天及之前 30 天内");
        }
    }
    let czlx = match r.code("CZLX") {
        Some(2) => Op::Update,
        Some(3) => Op::Delete,
        _ => Op::Insert,
    };
    Common {
        zzjgdm,
        jlid: r.text("JLID").unwrap_or_default(),
        czlx,
        gxsj: gxsj.unwrap_or_default(),
        ywrq,
        bbh: r.text("BBH").unwrap_or_default(),
    }
}

fn completed_years(birth: NaiveDate, at: NaiveDate) -> i64 {
    let mut y = i64::from(at.year()) - i64::from(birth.year());
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        y -= 1;
    }
    y
}

fn completed_months(birth: NaiveDate, at: NaiveDate) -> i64 {
    let mut m =
        (i64::from(at.year()) - i64::from(birth.year())) * 12 + i64::from(at.month()) - i64::from(birth.month());
    if at.day() < birth.day() {
        m -= 1;
    }
    m
}

fn patient(r: &mut Row<'_>, visit: Option<NaiveDateTime>, visit_field: &str) -> Patient {
    let csrq = r.date("CSRQ");
    let visit_date = visit.map(|v| v.date());
    if let (Some(b), Some(v)) = (csrq, visit_date)
        && b > v
    {
        r.error("CSRQ", "DATE_ORDER", &format!("出生日期不能晚于{visit_field}"));
    }
    let nl = r.int("NL");
    if nl.is_some_and(|n| n > 150) {
        r.error("NL", "NUMBER_RANGE", "0–150");
    } else if let (Some(n), Some(b), Some(v)) = (nl, csrq, visit_date)
        && b <= v
        && completed_years(b, v) != n
    {
        r.error("NL", "AGE_MISMATCH", &format!("应为出生日期到{visit_field}的周岁数"));
    }
    let months = r.int("BZYZS_NL");
    match nl {
        Some(0) => match months {
            None if !r.failed("BZYZS_NL") => r.error("BZYZS_NL", "COND_REQUIRED", "年龄为 0 岁时必填"),
            Some(m) if m > 11 => r.error("BZYZS_NL", "NUMBER_RANGE", "0–11"),
            Some(m) => {
                if let (Some(b), Some(v)) = (csrq, visit_date)
                    && b <= v
                    && completed_months(b, v) != m
                {
                    r.error("BZYZS_NL", "AGE_MISMATCH", &format!("应为出生日期到{visit_field}的足月数"));
                }
            }
            None => {}
        },
        Some(_) if months.is_some() => r.error("BZYZS_NL", "MUST_BE_EMPTY", "年龄不为 0 岁时应为空"),
        _ => {}
    }
    let zjlx = r.code("ZJLX");
    let xb = r.code("XB");
    let mut sfzh = r.text("SFZH");
    if zjlx.is_some_and(|z| z != 9) && sfzh.is_none() && !r.failed("SFZH") {
        r.error("SFZH", "COND_REQUIRED", "证件类型不为 9 (无证件) 时必填");
    }
    if zjlx == Some(1)
        && let Some(id) = sfzh.as_deref()
    {
        match check_citizen_id(id) {
            Err(p) => {
                let detail = match p {
                    IdProblem::Shape => "应为 18 位 (末位可为 X) 或 15 位数字",
                    IdProblem::Check => "校验位不符, 请核对号码",
                    IdProblem::BirthDate => "号码中的出生日期不存在",
                };
                r.error("SFZH", "BAD_ID_NUMBER", detail);
            }
            Ok(info) => {
                if csrq.is_some_and(|c| c != info.birth) {
                    r.error("SFZH", "ID_BIRTH_MISMATCH", "");
                }
                if xb.is_some_and(|x| (x == 1 || x == 2) && x != info.sex) {
                    r.error("SFZH", "ID_SEX_MISMATCH", "");
                }
            }
        }
    }
    if let Some(s) = sfzh.as_mut() {
        s.make_ascii_uppercase();
    }
    let gj = r.text("GJ");
    if gj.as_deref().is_some_and(|g| g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit())) {
        r.error("GJ", "BAD_CODE", "GB/T 2659 三位数字代码, 如 156");
    }
    let mz = r.text("MZ");
    if mz.as_deref().is_some_and(|m| !is_mz_code(m)) {
        r.error("MZ", "BAD_CODE", "GB 3304 两位代码 01–56, 97, 98");
    }
    let xzqh = r.text("XZZ_XZQH").unwrap_or_default();
    if r.has("XZZ_XZQH") && !is_region_code(&xzqh) {
        r.error("XZZ_XZQH", "BAD_REGION", "6 位县级代码, 前两位须为有效的省级代码");
    }
    Patient {
        xm: r.text("XM").unwrap_or_default(),
        xb: xb.unwrap_or_default(),
        csrq: csrq.unwrap_or_default(),
        nl: u16::try_from(nl.unwrap_or_default()).unwrap_or_default(),
        bzyzs_nl: months.and_then(|m| u8::try_from(m).ok()),
        zjlx: zjlx.unwrap_or_default(),
        sfzh,
        gj,
        mz,
        zy: r.text("ZY"),
        xzz: r.text("XZZ").unwrap_or_default(),
        xzz_xzqh: xzqh,
        dh: r.text("DH"),
        ylfkfs: r.text("YLFKFS"),
    }
}

fn order_dt(r: &mut Row<'_>, early: &str, late: &str, detail: &str) {
    if let (Some(a), Some(b)) = (r.datetime(early), r.datetime(late))
        && a > b
    {
        r.error(late, "DATE_ORDER", detail);
    }
}

fn date_not_after(r: &mut Row<'_>, date_field: &str, dt_field: &str, detail: &str) {
    if let (Some(d), Some(t)) = (r.date(date_field), r.datetime(dt_field))
        && d > t.date()
    {
        r.error(date_field, "DATE_ORDER", detail);
    }
}

fn icd(r: &mut Row<'_>, field: &str) {
    if let Some(c) = r.text(field)
        && !is_icd10_shape(&c)
    {
        r.error(field, "BAD_ICD", "如 J10.1: 字母 + 2 位数字, 可跟 . 及至多 4 个字符");
    }
}

fn diag_pair(r: &mut Row<'_>, code_f: &str, name_f: &str) -> Option<Diagnosis> {
    icd(r, code_f);
    match (r.text(code_f), r.text(name_f)) {
        (Some(code), Some(name)) => Some(Diagnosis { code, name }),
        (None, None) => None,
        (Some(_), None) if !r.failed(name_f) => {
            r.error(name_f, "DIAG_PAIR", "填写了诊断编码, 须同时填写诊断名称");
            None
        }
        (None, Some(_)) if !r.failed(code_f) => {
            r.error(code_f, "DIAG_PAIR", "填写了诊断名称, 须同时填写诊断编码");
            None
        }
        _ => None,
    }
}

fn kbdsj(r: &mut Row<'_>) -> Option<NaiveDateTime> {
    if r.code("KBD") == Some(1) && !r.has("KBDSJ") && !r.failed("KBDSJ") {
        r.error("KBDSJ", "COND_REQUIRED", "是否抗病毒治疗为 1 时必填");
    }
    r.datetime("KBDSJ")
}

fn not_more(r: &mut Row<'_>, part: &str, whole: &str, detail: &str) {
    if let (Some(p), Some(w)) = (r.int(part), r.int(whole))
        && p > w
    {
        r.error(part, "COST_RULE", detail);
    }
}

fn outpatient(r: &mut Row<'_>, common: Common) -> Record {
    let jzsj = r.datetime("JZSJ");
    let patient = patient(r, jzsj, "就诊时间");
    date_not_after(r, "FBRQ", "JZSJ", "发病日期不能晚于就诊时间");
    let zgtw = r.int("ZGTW");
    if zgtw.is_some_and(|t| !(340..=430).contains(&t)) {
        r.error("ZGTW", "NUMBER_RANGE", "34.0–43.0");
    }
    let mut diagnoses = Vec::new();
    for n in 1..=10 {
        if let Some(d) = diag_pair(r, &format!("ZDBM{n}"), &format!("ZDMC{n}")) {
            diagnoses.push(d);
        }
    }
    let kbdsj = kbdsj(r);
    for part in ["YPF", "JYF", "KBDF"] {
        not_more(r, part, "ZFY", "不能大于总费用");
    }
    not_more(r, "KBDF", "YPF", "抗病毒药费不能大于药费");
    let gwys = r
        .text("GWYS")
        .map(|s| s.split([';', '；']).filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_default();
    Record::Outpatient(Box::new(Outpatient {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        patient,
        jzlx: r.code("JZLX").unwrap_or_default(),
        mzzyh: r.text("MZZYH").unwrap_or_default(),
        jzsj: jzsj.unwrap_or_default(),
        ksmc: r.text("KSMC").unwrap_or_default(),
        fbrq: r.date("FBRQ"),
        zgtw: zgtw.and_then(|t| i32::try_from(t).ok()),
        diagnoses,
        zdyj: r.code("ZDYJ").unwrap_or_default(),
        lcfx: r.code("LCFX").unwrap_or_default(),
        gwys,
        ymjz: r.code("YMJZ"),
        kbd: r.code("KBD").unwrap_or_default(),
        kbdsj,
        icu: r.code("ICU"),
        jxtq: r.code("JXTQ"),
        ecmo: r.code("ECMO"),
        zgzt: r.code("ZGZT").unwrap_or_default(),
        zfy: r.int("ZFY").unwrap_or_default(),
        ypf: r.int("YPF"),
        jyf: r.int("JYF"),
        kbdf: r.int("KBDF"),
    }))
}

fn discharge(r: &mut Row<'_>, common: Common) -> Record {
    let rysj = r.datetime("RYSJ");
    let cysj = r.datetime("CYSJ");
    let patient = patient(r, rysj, "入院时间");
    order_dt(r, "RYSJ", "CYSJ", "出院时间不能早于入院时间");
    date_not_after(r, "FBRQ", "RYSJ", "发病日期不能晚于入院时间");
    let sjzyts = r.int("SJZYTS");
    if let (Some(a), Some(b), Some(days)) = (rysj, cysj, sjzyts) {
        let want = (b.date() - a.date()).num_days().max(1);
        if a <= b && days != want {
            r.error("SJZYTS", "STAY_DAYS", "入院日期到出院日期的天数, 当天出院计 1 天");
        }
    }
    if r.int("ZYCS") == Some(0) {
        r.error("ZYCS", "NUMBER_RANGE", "≥ 1");
    }
    let mzzd = diag_pair(r, "MZZD_JBBM", "MZZD");
    let zyzd = diag_pair(r, "ZYZD_JBDM", "ZYZD");
    let mut qtzd = Vec::new();
    for n in 1..=15 {
        if let Some(d) = diag_pair(r, &format!("QTZD_JBDM{n}"), &format!("QTZD{n}")) {
            qtzd.push(d);
        }
    }
    let icuts = r.int("ICUTS");
    if let (Some(i), Some(s)) = (icuts, sjzyts)
        && i > s
    {
        r.error("ICUTS", "STAY_DAYS", "ICU 天数不能大于实际住院天数");
    }
    let kbdsj = kbdsj(r);
    if r.int("ZFY") == Some(0) {
        r.error("ZFY", "COST_RULE", "总费用须大于 0");
    }
    not_more(r, "ZFJE", "ZFY", "自付金额不能大于总费用");
    not_more(r, "KJYWF", "XYF", "抗菌药物费不能大于西药费");
    if sjzyts.is_some_and(|s| s > 1) {
        for f in ["YLFUF", "HLF"] {
            if r.int(f) == Some(0) {
                r.error(f, "COST_RULE", "实际住院超过 1 天时, 填写的一般医疗服务费和护理费须大于 0");
            }
        }
    }
    let narrow16 = |v: Option<i64>| v.and_then(|n| u16::try_from(n).ok());
    Record::Discharge(Box::new(Discharge {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        patient,
        bah: r.text("BAH").unwrap_or_default(),
        zycs: narrow16(r.int("ZYCS")).unwrap_or_default(),
        rytj: r.code("RYTJ").unwrap_or_default(),
        rysj: rysj.unwrap_or_default(),
        cysj: cysj.unwrap_or_default(),
        fbrq: r.date("FBRQ"),
        zdyj: r.code("ZDYJ"),
        sjzyts: narrow16(sjzyts).unwrap_or_default(),
        cykb: r.text("CYKB").unwrap_or_default(),
        mzzd,
        zyzd: zyzd.unwrap_or(Diagnosis { code: String::new(), name: String::new() }),
        rybq: r.code("RYBQ").unwrap_or_default(),
        qtzd,
        lcfx: r.code("LCFX").unwrap_or_default(),
        icuts: narrow16(icuts),
        jxtqsj: r.int("JXTQSJ").and_then(|n| u32::try_from(n).ok()),
        ecmo: r.code("ECMO"),
        kbd: r.code("KBD").unwrap_or_default(),
        kbdsj,
        lyfs: r.code("LYFS").unwrap_or_default(),
        zfy: r.int("ZFY").unwrap_or_default(),
        zfje: r.int("ZFJE").unwrap_or_default(),
        xyf: r.int("XYF"),
        kjywf: r.int("KJYWF"),
        hlf: r.int("HLF"),
        ylfuf: r.int("YLFUF"),
    }))
}

fn scrub_ids(r: &Row<'_>) -> ScrubIds {
    ScrubIds { xm: r.text("XM"), bah: r.text("BAH"), sfzh: r.text("SFZH"), dh: r.text("DH") }
}

fn summary(r: &mut Row<'_>, common: Common) -> Record {
    order_dt(r, "RYSJ", "CYSJ", "出院时间不能早于入院时间");
    Record::Summary(Box::new(Summary {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        ids: scrub_ids(r),
        rysj: r.datetime("RYSJ").unwrap_or_default(),
        cysj: r.datetime("CYSJ").unwrap_or_default(),
        ryqk: r.text("RYQK").unwrap_or_default(),
        ryzd: r.text("RYZD").unwrap_or_default(),
        zlgc: r.text("ZLGC").unwrap_or_default(),
        cyzd: r.text("CYZD").unwrap_or_default(),
        cyqk: r.text("CYQK").unwrap_or_default(),
        cyyz: r.text("CYYZ").unwrap_or_default(),
    }))
}

fn death(r: &mut Row<'_>, common: Common) -> Record {
    let swdd = r.code("SWDD");
    if swdd != Some(3) && !r.has("RYSJ") && !r.failed("RYSJ") {
        r.error("RYSJ", "COND_REQUIRED", "死亡地点不是急诊 (3) 时必填");
    }
    order_dt(r, "RYSJ", "SWSJ", "死亡时间不能早于入院时间");
    icd(r, "ZJSY_JBDM");
    icd(r, "GBSY_JBDM");
    Record::Death(Box::new(Death {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        ids: scrub_ids(r),
        rysj: r.datetime("RYSJ"),
        swsj: r.datetime("SWSJ").unwrap_or_default(),
        ryqk: r.text("RYQK").unwrap_or_default(),
        zlgc: r.text("ZLGC").unwrap_or_default(),
        zjsy: r.text("ZJSY").unwrap_or_default(),
        zjsy_jbdm: r.text("ZJSY_JBDM").unwrap_or_default(),
        gbsy_jbdm: r.text("GBSY_JBDM").unwrap_or_default(),
        lgsyxg: r.code("LGSYXG").unwrap_or_default(),
        swdd,
        gdrq: r.date("GDRQ"),
    }))
}

fn medication(r: &mut Row<'_>, common: Common) -> Record {
    if r.int("DCJL") == Some(0) {
        r.error("DCJL", "NUMBER_RANGE", "单次剂量须大于 0");
    }
    order_dt(r, "KSSJ", "TZSJ", "停止时间不能早于开始时间");
    Record::Medication(Box::new(Medication {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        yzid: r.text("YZID").unwrap_or_default(),
        yzlb: r.code("YZLB").unwrap_or_default(),
        ypbm: r.text("YPBM"),
        ypmc: r.text("YPMC").unwrap_or_default(),
        ypgg: r.text("YPGG"),
        dcjl: r.int("DCJL").unwrap_or_default(),
        jldw: r.text("JLDW").unwrap_or_default(),
        pc: r.text("PC").unwrap_or_default(),
        yytj: r.text("YYTJ").unwrap_or_default(),
        kssj: r.datetime("KSSJ").unwrap_or_default(),
        tzsj: r.datetime("TZSJ"),
        je: r.int("JE"),
    }))
}

fn lab(r: &mut Row<'_>, common: Common) -> Record {
    order_dt(r, "CYSJ", "BGSJ", "报告时间不能早于采样时间");
    let dxjg = r.code("DXJG");
    let bdlx = r.code("BDLX");
    if matches!(dxjg, Some(1 | 3)) && bdlx.is_none() && !r.failed("BDLX") {
        r.error("BDLX", "COND_REQUIRED", "定性结果为阳性或弱阳性时必填 (不能分型填 9)");
    }
    let yx = r.code("YX");
    if let Some(y) = yx {
        let ok = match y / 10 {
            1 => matches!(bdlx, Some(1 | 3)),
            2 => matches!(bdlx, Some(2 | 3)),
            _ => false,
        };
        if !ok {
            r.error(
                "YX",
                "SUBTYPE_MISMATCH",
                "甲型亚型 (1x) 只能与型别 1 或 3 同用, 乙型系 (2x) 只能与型别 2 或 3 同用",
            );
        }
    }
    let ct = r.int("CT");
    if ct.is_some_and(|c| c > 500) {
        r.error("CT", "NUMBER_RANGE", "0–50");
    }
    Record::Lab(Box::new(Lab {
        common,
        jzlsh: r.text("JZLSH").unwrap_or_default(),
        bgdh: r.text("BGDH").unwrap_or_default(),
        bblb: r.code("BBLB").unwrap_or_default(),
        cysj: r.datetime("CYSJ").unwrap_or_default(),
        bgsj: r.datetime("BGSJ").unwrap_or_default(),
        jyxmmc: r.text("JYXMMC").unwrap_or_default(),
        jyff: r.code("JYFF").unwrap_or_default(),
        dxjg: dxjg.unwrap_or_default(),
        bdlx,
        yx,
        ct: ct.and_then(|c| i32::try_from(c).ok()),
    }))
}

fn stock(r: &mut Row<'_>, common: Common) -> Record {
    let ypmc = r.text("YPMC").unwrap_or_default();
    if r.has("YPMC") && antiviral_of(&ypmc).is_none() {
        let names: Vec<&str> = ANTIVIRALS.iter().map(|(n, _)| *n).collect();
        r.error("YPMC", "NOT_ANTIVIRAL", &format!("药品通用名须包含: {}", names.join("、")));
    }
    Record::Stock(Box::new(Stock {
        common,
        tjrq: r.date("TJRQ").unwrap_or_default(),
        ypmc,
        ypgg: r.text("YPGG").unwrap_or_default(),
        kcl: r.int("KCL").and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
        drxhl: r.int("DRXHL").and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
    }))
}

fn visits(r: &mut Row<'_>, common: Common) -> Record {
    let n = |r: &Row<'_>, f: &str| r.int(f).and_then(|n| u32::try_from(n).ok()).unwrap_or_default();
    Record::Visits(Box::new(Visits {
        common,
        tjrq: r.date("TJRQ").unwrap_or_default(),
        mzrc: n(r, "MZRC"),
        jzrc: n(r, "JZRC"),
        zyrs: n(r, "ZYRS"),
    }))
}
