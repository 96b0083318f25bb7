//! Tests of every rule: each valid example passes, each broken one fails with
//! the expected field and code.

use chrono::NaiveDate;

use super::*;
use crate::model::{Cell, Record};

pub(crate) fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap().and_hms_opt(2, 0, 0).unwrap()
}

pub(crate) const ORG: &str = "91350100M000100Y43";

pub(crate) fn ctx() -> Ctx {
    Ctx { now: now(), org: Some(ORG.to_owned()) }
}

/// A row of `ty` from (code, text) pairs.
pub(crate) fn row(ty: RecordType, pairs: &[(&str, &str)]) -> RawRow {
    let td = type_def(ty);
    let mut cells = vec![None; td.fields.len()];
    for (k, v) in pairs {
        let i = td.index(k).unwrap_or_else(|| panic!("no field {k}"));
        cells[i] = if v.is_empty() { None } else { Some(Cell::Text((*v).to_owned())) };
    }
    RawRow { row: 1, cells, extra: Vec::new() }
}

fn with(
    base: &[(&'static str, &'static str)],
    changes: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = base.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k)).copied().collect();
    v.extend_from_slice(changes);
    v
}

fn common() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ZZJGDM", ORG),
        ("JLID", "R1"),
        ("CZLX", "1"),
        ("GXSJ", "2026-11-19 10:00:00"),
        ("YWRQ", "2026-11-19"),
        ("BBH", "1.0"),
    ]
}

pub(crate) fn outpatient() -> Vec<(&'static str, &'static str)> {
    let mut v = common();
    v.extend([
        ("JZLSH", "MZ20261119001"),
        ("XM", "张三"),
        ("XB", "2"),
        ("CSRQ", "1949-12-31"),
        ("NL", "76"),
        ("ZJLX", "1"),
        ("SFZH", "11010519491231002X"),
        ("XZZ", "北京市朝阳区某街道1号"),
        ("XZZ_XZQH", "110105"),
        ("DH", "13800138000"),
        ("JZLX", "1"),
        ("MZZYH", "MZH778899"),
        ("JZSJ", "2026-11-19 09:30:00"),
        ("KSMC", "发热门诊"),
        ("FBRQ", "2026-11-18"),
        ("ZGTW", "38.6"),
        ("ZDBM1", "J10.1"),
        ("ZDMC1", "流行性感冒"),
        ("ZDYJ", "1"),
        ("LCFX", "1"),
        ("KBD", "1"),
        ("KBDSJ", "2026-11-19 10:00"),
        ("ZGZT", "1"),
        ("ZFY", "235.50"),
        ("YPF", "120"),
        ("KBDF", "80.5"),
    ]);
    v
}

pub(crate) fn discharge() -> Vec<(&'static str, &'static str)> {
    let mut v = common();
    v.extend([
        ("JZLSH", "ZY20261110001"),
        ("XM", "李四"),
        ("XB", "1"),
        ("CSRQ", "2026-03-15"),
        ("NL", "0"),
        ("BZYZS_NL", "7"),
        ("ZJLX", "9"),
        ("XZZ", "上海市徐汇区"),
        ("XZZ_XZQH", "310104"),
        ("BAH", "B0001"),
        ("ZYCS", "1"),
        ("RYTJ", "1"),
        ("RYSJ", "2026-11-10 08:00:00"),
        ("CYSJ", "2026-11-15 09:00:00"),
        ("SJZYTS", "5"),
        ("CYKB", "儿科"),
        ("ZYZD_JBDM", "J10.0"),
        ("ZYZD", "流行性感冒伴肺炎"),
        ("RYBQ", "1"),
        ("LCFX", "3"),
        ("KBD", "2"),
        ("LYFS", "1"),
        ("ZFY", "8000"),
        ("ZFJE", "1000"),
        ("XYF", "2000"),
        ("KJYWF", "500"),
        ("HLF", "300"),
    ]);
    v
}

fn lab() -> Vec<(&'static str, &'static str)> {
    let mut v = common();
    v.extend([
        ("JZLSH", "MZ20261119001"),
        ("BGDH", "L1"),
        ("BBLB", "1"),
        ("CYSJ", "2026-11-19 09:40"),
        ("BGSJ", "2026-11-19 11:40"),
        ("JYXMMC", "甲乙型流感病毒抗原"),
        ("JYFF", "1"),
        ("DXJG", "1"),
        ("BDLX", "1"),
        ("YX", "12"),
    ]);
    v
}

fn check(ty: RecordType, pairs: &[(&str, &str)]) -> Result<Record, Vec<RowError>> {
    validate_row(ty, &row(ty, pairs), &ctx())
}

#[track_caller]
fn fails(ty: RecordType, pairs: &[(&str, &str)], field: &str, code: &str) {
    let errs = check(ty, pairs).expect_err("row should be rejected");
    assert!(errs.iter().any(|e| e.field == field && e.code == code), "expected {field}/{code}, got {errs:?}");
}

#[test]
fn valid_rows_pass() {
    let r = check(RecordType::Outpatient, &outpatient()).unwrap();
    let Record::Outpatient(o) = r else { panic!() };
    assert_eq!(o.zfy, 23550);
    assert_eq!(o.zgtw, Some(386));
    assert_eq!(o.patient.sfzh.as_deref(), Some("11010519491231002X"));
    let r = check(RecordType::Discharge, &discharge()).unwrap();
    let Record::Discharge(d) = r else { panic!() };
    assert_eq!(d.patient.bzyzs_nl, Some(7));
    check(RecordType::Lab, &lab()).unwrap();
}

#[test]
fn common_rules() {
    let o = outpatient();
    fails(RecordType::Outpatient, &with(&o, &[("ZZJGDM", "91350100M000100Y44")]), "ZZJGDM", "BAD_ORG_CODE");
    fails(RecordType::Outpatient, &with(&o, &[("ZZJGDM", "12110105MB0000001G")]), "ZZJGDM", "BAD_ORG_CODE");
    fails(RecordType::Outpatient, &with(&o, &[("BBH", "2.0")]), "BBH", "BAD_VERSION");
    fails(RecordType::Outpatient, &with(&o, &[("GXSJ", "2026-11-20 02:06:00")]), "GXSJ", "FUTURE_TIME");
    assert!(check(RecordType::Outpatient, &with(&o, &[("GXSJ", "2026-11-20 02:04:00")])).is_ok());
    fails(RecordType::Outpatient, &with(&o, &[("YWRQ", "2026-10-20")]), "YWRQ", "YWRQ_WINDOW");
    assert!(check(RecordType::Outpatient, &with(&o, &[("YWRQ", "2026-10-21")])).is_ok());
    fails(RecordType::Outpatient, &with(&o, &[("YWRQ", "2026-11-21")]), "YWRQ", "YWRQ_WINDOW");
    fails(RecordType::Outpatient, &with(&o, &[("CZLX", "4")]), "CZLX", "BAD_CODE");
    fails(RecordType::Outpatient, &with(&o, &[("JLID", "")]), "JLID", "REQUIRED");
    fails(RecordType::Outpatient, &with(&o, &[("GXSJ", "2026-11-19")]), "GXSJ", "BAD_DATETIME");
}

#[test]
fn org_mismatch() {
    // A valid code of another hospital.
    let other = format!("{}{}", "12110105MB000000", "1");
    let check_char = ids::uscc_check_char(&other).unwrap();
    let code = format!("{other}{check_char}");
    let pairs: Vec<(&str, &str)> = outpatient().into_iter().filter(|(k, _)| *k != "ZZJGDM").collect();
    let mut pairs: Vec<(&str, &str)> = pairs;
    pairs.push(("ZZJGDM", &code));
    fails(RecordType::Outpatient, &pairs, "ZZJGDM", "ORG_MISMATCH");
}

#[test]
fn deletes_need_only_common_fields() {
    let d = [
        ("ZZJGDM", ORG),
        ("JLID", "R1"),
        ("CZLX", "3"),
        ("GXSJ", "2026-11-19 10:00:00"),
        ("BBH", "1.0"),
        ("JZLSH", "X1"),
        ("NL", "abc"),
    ];
    let r = check(RecordType::Outpatient, &d).unwrap();
    assert!(matches!(r, Record::Delete(_)));
    // YWRQ is not checked on deletes.
    let mut d2 = d.to_vec();
    d2.push(("YWRQ", "2020-01-01"));
    assert!(check(RecordType::Outpatient, &d2).is_ok());
    fails(RecordType::Outpatient, &d[..5], "JZLSH", "REQUIRED");
    let s = [("ZZJGDM", ORG), ("JLID", "S1"), ("CZLX", "3"), ("GXSJ", "2026-11-19 10:00:00"), ("BBH", "1.0")];
    assert!(check(RecordType::Stock, &s).is_ok());
}

#[test]
fn patient_rules() {
    let o = outpatient();
    fails(RecordType::Outpatient, &with(&o, &[("SFZH", "110105194912310021")]), "SFZH", "BAD_ID_NUMBER");
    fails(RecordType::Outpatient, &with(&o, &[("SFZH", "12345")]), "SFZH", "BAD_ID_NUMBER");
    fails(RecordType::Outpatient, &with(&o, &[("CSRQ", "1949-12-30"), ("NL", "76")]), "SFZH", "ID_BIRTH_MISMATCH");
    fails(RecordType::Outpatient, &with(&o, &[("XB", "1")]), "SFZH", "ID_SEX_MISMATCH");
    // XB 0 / 9 is not compared.
    assert!(check(RecordType::Outpatient, &with(&o, &[("XB", "9")])).is_ok());
    // Lower-case x and a 15-digit number.
    assert!(check(RecordType::Outpatient, &with(&o, &[("SFZH", "11010519491231002x")])).is_ok());
    assert!(check(RecordType::Outpatient, &with(&o, &[("SFZH", "110105491231002")])).is_ok());
    fails(RecordType::Outpatient, &with(&o, &[("SFZH", "")]), "SFZH", "COND_REQUIRED");
    assert!(check(RecordType::Outpatient, &with(&o, &[("SFZH", ""), ("ZJLX", "9")])).is_ok());
    assert!(check(RecordType::Outpatient, &with(&o, &[("SFZH", "E12345678"), ("ZJLX", "2")])).is_ok());
    fails(RecordType::Outpatient, &with(&o, &[("NL", "75")]), "NL", "AGE_MISMATCH");
    fails(RecordType::Outpatient, &with(&o, &[("NL", "151")]), "NL", "NUMBER_RANGE");
    fails(RecordType::Outpatient, &with(&o, &[("BZYZS_NL", "3")]), "BZYZS_NL", "MUST_BE_EMPTY");
    fails(
        RecordType::Outpatient,
        &with(&o, &[("CSRQ", "2026-11-20"), ("ZJLX", "9"), ("SFZH", ""), ("NL", "0"), ("BZYZS_NL", "0")]),
        "CSRQ",
        "DATE_ORDER",
    );
    fails(RecordType::Outpatient, &with(&o, &[("XZZ_XZQH", "990101")]), "XZZ_XZQH", "BAD_REGION");
    fails(RecordType::Outpatient, &with(&o, &[("MZ", "57")]), "MZ", "BAD_CODE");
    assert!(
        check(RecordType::Outpatient, &with(&o, &[("MZ", "01"), ("GJ", "156"), ("ZY", "31"), ("YLFKFS", "07")]))
            .is_ok()
    );
    fails(RecordType::Outpatient, &with(&o, &[("GJ", "CHN")]), "GJ", "BAD_CODE");
    fails(RecordType::Outpatient, &with(&o, &[("ZY", "12")]), "ZY", "BAD_CODE");
    fails(RecordType::Outpatient, &with(&o, &[("XB", "3")]), "XB", "BAD_CODE");
    let d = discharge();
    fails(RecordType::Discharge, &with(&d, &[("BZYZS_NL", "")]), "BZYZS_NL", "COND_REQUIRED");
    fails(RecordType::Discharge, &with(&d, &[("BZYZS_NL", "6")]), "BZYZS_NL", "AGE_MISMATCH");
    fails(RecordType::Discharge, &with(&d, &[("BZYZS_NL", "12")]), "BZYZS_NL", "NUMBER_RANGE");
    fails(RecordType::Outpatient, &with(&o, &[("XM", "")]), "XM", "REQUIRED");
    let long: &'static str = Box::leak("张".repeat(41).into_boxed_str());
    fails(RecordType::Outpatient, &with(&o, &[("XM", long)]), "XM", "TOO_LONG");
    let ok40: &'static str = Box::leak("张".repeat(40).into_boxed_str());
    assert!(check(RecordType::Outpatient, &with(&o, &[("XM", ok40)])).is_ok());
}

#[test]
fn outpatient_rules() {
    let o = outpatient();
    fails(RecordType::Outpatient, &with(&o, &[("FBRQ", "2026-11-20")]), "FBRQ", "DATE_ORDER");
    fails(RecordType::Outpatient, &with(&o, &[("ZGTW", "43.1")]), "ZGTW", "NUMBER_RANGE");
    fails(RecordType::Outpatient, &with(&o, &[("ZGTW", "38.55")]), "ZGTW", "NUMBER_RANGE");
    fails(RecordType::Outpatient, &with(&o, &[("ZDBM1", "10.1")]), "ZDBM1", "BAD_ICD");
    fails(RecordType::Outpatient, &with(&o, &[("ZDBM2", "J18.9")]), "ZDMC2", "DIAG_PAIR");
    fails(RecordType::Outpatient, &with(&o, &[("ZDMC1", "")]), "ZDMC1", "REQUIRED");
    fails(RecordType::Outpatient, &with(&o, &[("KBDSJ", "")]), "KBDSJ", "COND_REQUIRED");
    assert!(check(RecordType::Outpatient, &with(&o, &[("KBDSJ", ""), ("KBD", "2")])).is_ok());
    fails(RecordType::Outpatient, &with(&o, &[("YPF", "300")]), "YPF", "COST_RULE");
    fails(RecordType::Outpatient, &with(&o, &[("KBDF", "130")]), "KBDF", "COST_RULE");
    fails(RecordType::Outpatient, &with(&o, &[("ZFY", "-1")]), "ZFY", "BAD_NUMBER");
    fails(RecordType::Outpatient, &with(&o, &[("GWYS", "1;13")]), "GWYS", "BAD_CODE");
    let r = check(RecordType::Outpatient, &with(&o, &[("GWYS", "1;3；99")])).unwrap();
    let Record::Outpatient(r) = r else { panic!() };
    assert_eq!(r.gwys, vec![1, 3, 99]);
}

#[test]
fn discharge_rules() {
    let d = discharge();
    fails(RecordType::Discharge, &with(&d, &[("CYSJ", "2026-11-09 08:00:00")]), "CYSJ", "DATE_ORDER");
    fails(RecordType::Discharge, &with(&d, &[("SJZYTS", "6")]), "SJZYTS", "STAY_DAYS");
    assert!(
        check(RecordType::Discharge, &with(&d, &[("CYSJ", "2026-11-10 18:00:00"), ("SJZYTS", "1"), ("HLF", "0")]))
            .is_ok()
    );
    fails(RecordType::Discharge, &with(&d, &[("HLF", "0")]), "HLF", "COST_RULE");
    fails(RecordType::Discharge, &with(&d, &[("ZFJE", "9000")]), "ZFJE", "COST_RULE");
    fails(RecordType::Discharge, &with(&d, &[("ZFY", "0"), ("ZFJE", "0")]), "ZFY", "COST_RULE");
    fails(RecordType::Discharge, &with(&d, &[("KJYWF", "2500")]), "KJYWF", "COST_RULE");
    fails(RecordType::Discharge, &with(&d, &[("ICUTS", "6")]), "ICUTS", "STAY_DAYS");
    fails(RecordType::Discharge, &with(&d, &[("ZYCS", "0")]), "ZYCS", "NUMBER_RANGE");
    fails(RecordType::Discharge, &with(&d, &[("QTZD_JBDM3", "J18.9")]), "QTZD3", "DIAG_PAIR");
}

#[test]
fn other_types() {
    let l = lab();
    fails(RecordType::Lab, &with(&l, &[("BDLX", "")]), "BDLX", "COND_REQUIRED");
    fails(RecordType::Lab, &with(&l, &[("BDLX", "2")]), "YX", "SUBTYPE_MISMATCH");
    assert!(check(RecordType::Lab, &with(&l, &[("BDLX", "3"), ("YX", "21")])).is_ok());
    assert!(check(RecordType::Lab, &with(&l, &[("DXJG", "2"), ("BDLX", ""), ("YX", "")])).is_ok());
    fails(RecordType::Lab, &with(&l, &[("BGSJ", "2026-11-19 09:00")]), "BGSJ", "DATE_ORDER");
    fails(RecordType::Lab, &with(&l, &[("CT", "50.1")]), "CT", "NUMBER_RANGE");

    let mut m = common();
    m.extend([
        ("JZLSH", "MZ1"),
        ("YZID", "Y1"),
        ("YZLB", "3"),
        ("YPMC", "磷酸奥司他韦胶囊"),
        ("DCJL", "75"),
        ("JLDW", "mg"),
        ("PC", "bid"),
        ("YYTJ", "口服"),
        ("KSSJ", "2026-11-19 10:00"),
    ]);
    assert!(check(RecordType::Medication, &m).is_ok());
    fails(RecordType::Medication, &with(&m, &[("DCJL", "0")]), "DCJL", "NUMBER_RANGE");
    fails(RecordType::Medication, &with(&m, &[("TZSJ", "2026-11-19 09:00")]), "TZSJ", "DATE_ORDER");

    let mut s = common();
    s.extend([
        ("TJRQ", "2026-11-19"),
        ("YPMC", "磷酸奥司他韦胶囊"),
        ("YPGG", "75mg*10粒"),
        ("KCL", "500"),
        ("DRXHL", "20"),
    ]);
    assert!(check(RecordType::Stock, &s).is_ok());
    fails(RecordType::Stock, &with(&s, &[("YPMC", "对乙酰氨基酚片")]), "YPMC", "NOT_ANTIVIRAL");

    let mut v = common();
    v.extend([("TJRQ", "2026-11-19"), ("MZRC", "1200"), ("JZRC", "300"), ("ZYRS", "800")]);
    assert!(check(RecordType::Visits, &v).is_ok());
    fails(RecordType::Visits, &with(&v, &[("MZRC", "123456789")]), "MZRC", "NUMBER_RANGE");

    let mut d = common();
    d.extend([
        ("JZLSH", "ZY1"),
        ("SWSJ", "2026-11-19 03:00"),
        ("RYQK", "发热咳嗽三天"),
        ("ZLGC", "入院后予奥司他韦治疗"),
        ("ZJSY", "呼吸衰竭"),
        ("ZJSY_JBDM", "J96.0"),
        ("GBSY_JBDM", "J10.0"),
        ("LGSYXG", "1"),
    ]);
    fails(RecordType::Death, &d, "RYSJ", "COND_REQUIRED");
    assert!(check(RecordType::Death, &with(&d, &[("SWDD", "3")])).is_ok());
    fails(RecordType::Death, &with(&d, &[("RYSJ", "2026-11-19 04:00")]), "SWSJ", "DATE_ORDER");
}

#[test]
fn messages_never_repeat_values() {
    let o = outpatient();
    let errs = check(RecordType::Outpatient, &with(&o, &[("SFZH", "110105194912310021"), ("XM", "")])).unwrap_err();
    for e in &errs {
        assert!(!e.message.contains("110105194912310021"));
        assert!(!e.message.is_empty());
        assert!(ROW_ERROR_CODES.iter().any(|(c, _)| *c == e.code), "undocumented code {}", e.code);
    }
}

#[test]
fn number_cells_from_xlsx() {
    let td = type_def(RecordType::Visits);
    let mut r = row(RecordType::Visits, &{
        let mut v = common();
        v.extend([("TJRQ", "2026-11-19"), ("MZRC", "1"), ("JZRC", "1"), ("ZYRS", "1")]);
        v
    });
    r.cells[td.index("BBH").unwrap()] = Some(Cell::Number(1.0));
    r.cells[td.index("MZRC").unwrap()] = Some(Cell::Number(1200.0));
    r.cells[td.index("CZLX").unwrap()] = Some(Cell::Number(1.0));
    r.cells[td.index("TJRQ").unwrap()] =
        Some(Cell::DateTime(NaiveDate::from_ymd_opt(2026, 11, 19).unwrap().and_hms_opt(0, 0, 0).unwrap()));
    let rec = validate_row(RecordType::Visits, &r, &ctx()).unwrap();
    let Record::Visits(v) = rec else { panic!() };
    assert_eq!(v.mzrc, 1200);
    let tdo = type_def(RecordType::Outpatient);
    let mut r = row(RecordType::Outpatient, &outpatient());
    r.cells[tdo.index("SFZH").unwrap()] = Some(Cell::Number(110105194912310020.0));
    let errs = validate_row(RecordType::Outpatient, &r, &ctx()).unwrap_err();
    assert!(errs.iter().any(|e| e.code == "ID_AS_NUMBER"));
}
