//! Planted invalid rows (`--invalid-rate`): a copy of a valid row, under a new
//! JLID, with exactly one error of a known code, so that the expected receipt
//! is exact. The copy is an extra row: the valid world stays intact.

use chrono::{Datelike, Duration, NaiveDate};

use flumon_shared::model::RecordType;

use super::people::citizen_id;
use super::rng::{self, R};
use super::row::{Row, V};

/// The representative set of planted error codes.
pub const CODES: &[&str] = &[
    "REQUIRED",
    "BAD_CODE",
    "BAD_DATE",
    "BAD_DATETIME",
    "TOO_LONG",
    "BAD_ID_NUMBER",
    "ID_BIRTH_MISMATCH",
    "ID_SEX_MISMATCH",
    "AGE_MISMATCH",
    "DATE_ORDER",
    "BAD_ORG_CODE",
    "COST_RULE",
    "STAY_DAYS",
    "SUBTYPE_MISMATCH",
    "COND_REQUIRED",
    "BAD_ICD",
    "OUT_OF_SCOPE",
    "YWRQ_WINDOW",
    "BAD_VERSION",
    "NOT_ANTIVIRAL",
    "NUMBER_RANGE",
];

/// The codes that can be planted in a row of `ty`.
pub fn applicable(ty: RecordType) -> &'static [&'static str] {
    use RecordType::*;
    match ty {
        Outpatient => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "BAD_CODE",
            "BAD_ID_NUMBER",
            "ID_BIRTH_MISMATCH",
            "ID_SEX_MISMATCH",
            "AGE_MISMATCH",
            "DATE_ORDER",
            "COST_RULE",
            "COND_REQUIRED",
            "BAD_ICD",
            "OUT_OF_SCOPE",
            "NUMBER_RANGE",
        ],
        Discharge => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "BAD_CODE",
            "BAD_ID_NUMBER",
            "ID_BIRTH_MISMATCH",
            "ID_SEX_MISMATCH",
            "AGE_MISMATCH",
            "DATE_ORDER",
            "COST_RULE",
            "STAY_DAYS",
            "COND_REQUIRED",
            "BAD_ICD",
            "OUT_OF_SCOPE",
            "NUMBER_RANGE",
        ],
        Summary => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "DATE_ORDER",
        ],
        Death => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "BAD_CODE",
            "DATE_ORDER",
            "COND_REQUIRED",
            "BAD_ICD",
        ],
        Medication => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "BAD_CODE",
            "DATE_ORDER",
            "NUMBER_RANGE",
        ],
        Lab => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "BAD_CODE",
            "DATE_ORDER",
            "SUBTYPE_MISMATCH",
            "COND_REQUIRED",
            "NUMBER_RANGE",
        ],
        Stock => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "NOT_ANTIVIRAL",
            "NUMBER_RANGE",
        ],
        Visits => &[
            "REQUIRED",
            "BAD_DATE",
            "BAD_DATETIME",
            "TOO_LONG",
            "BAD_ORG_CODE",
            "YWRQ_WINDOW",
            "BAD_VERSION",
            "NUMBER_RANGE",
        ],
    }
}

/// One planted error: the field (empty for OUT_OF_SCOPE) and the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    pub field: String,
    pub code: &'static str,
}

fn dt(row: &Row, code: &str) -> Option<chrono::NaiveDateTime> {
    match row.get(code) {
        Some(V::Dt(t)) => Some(*t),
        _ => None,
    }
}

fn date(row: &Row, code: &str) -> Option<NaiveDate> {
    match row.get(code) {
        Some(V::Date(d)) => Some(*d),
        _ => None,
    }
}

fn int(row: &Row, code: &str) -> Option<i64> {
    match row.get(code) {
        Some(V::I(n) | V::D2(n)) => Some(*n),
        _ => None,
    }
}

/// A different valid character in the last position of a 统一社会信用代码.
fn bad_org(code: &str) -> String {
    let body: String = code.chars().take(17).collect();
    let last = code.chars().nth(17).unwrap_or('0');
    let other = if last == '1' { '2' } else { '1' };
    format!("{body}{other}")
}

/// Set ZJLX 1 and a citizen ID for `(birth, sex)`; make XB 1 or 2. Returns the sex used.
fn id_for(row: &mut Row, birth: NaiveDate, sex_of_id: impl Fn(u8) -> u8) -> Option<String> {
    let xb = match row.text("XB") {
        Some("1") => 1,
        Some("2") => 2,
        _ => {
            row.set("XB", V::code(1));
            1
        }
    };
    let region = row.text("XZZ_XZQH").unwrap_or("110105").to_owned();
    row.set("ZJLX", V::code(1));
    Some(citizen_id(&region, birth, 37, sex_of_id(xb)))
}

/// Plant `code` in a copy of `src` (a valid, non-delete row). `today` is the upload day.
/// Returns `None` when the code does not apply to the row.
pub fn plant(r: &mut R, src: &Row, code: &'static str, today: NaiveDate, n: usize) -> Option<(Row, Planted)> {
    let ty = src.ty;
    let mut row = src.clone();
    row.plants.clear();
    row.lab_scope = false;
    let jlid = src.text("JLID").unwrap_or("X").to_owned();
    row.set("JLID", V::S(format!("E{n}-{jlid}").chars().take(64).collect()));
    let field: &str = match code {
        "REQUIRED" => {
            let f = match ty {
                RecordType::Outpatient => "KSMC",
                RecordType::Discharge => "CYKB",
                RecordType::Summary => "CYYZ",
                RecordType::Death => "ZJSY",
                RecordType::Medication => "PC",
                RecordType::Lab => "JYXMMC",
                RecordType::Stock => "YPGG",
                RecordType::Visits => "ZYRS",
            };
            row.set(f, V::E);
            f
        }
        "BAD_CODE" => {
            let (f, v) = match ty {
                RecordType::Outpatient => ("LCFX", "5"),
                RecordType::Discharge => ("RYTJ", "4"),
                RecordType::Death => ("LGSYXG", "4"),
                RecordType::Medication => ("YZLB", "4"),
                RecordType::Lab => ("BBLB", "6"),
                _ => return None,
            };
            row.set(f, V::St(v));
            f
        }
        "BAD_DATE" => {
            row.set("YWRQ", V::Raw(format!("{}-{:02}-32", today.year(), today.month())));
            "YWRQ"
        }
        "BAD_DATETIME" => {
            row.set("GXSJ", V::Raw(format!("{} 24:{:02}:00", today.format("%Y-%m-%d"), rng::between(r, 0, 59))));
            "GXSJ"
        }
        "TOO_LONG" => {
            if ty == RecordType::Summary && rng::chance(r, 0.5) {
                let base = src.text("RYQK").unwrap_or("入院情况").to_owned();
                let mut s = base.clone();
                while s.chars().count() <= 2000 {
                    s.push_str(&base);
                    s.push('。');
                }
                row.set("RYQK", V::S(s));
                "RYQK"
            } else {
                row.set("JLID", V::S(format!("{jlid}{}", "X".repeat(65))));
                "JLID"
            }
        }
        "BAD_ID_NUMBER" => {
            let birth = date(&row, "CSRQ")?;
            let id = id_for(&mut row, birth, |xb| xb)?;
            let (body, check) = id.split_at(17);
            let wrong = if check == "1" { '2' } else { '1' };
            row.set("SFZH", V::S(format!("{body}{wrong}")));
            "SFZH"
        }
        "ID_BIRTH_MISMATCH" => {
            let birth = date(&row, "CSRQ")?;
            let other = birth.checked_sub_signed(Duration::days(1))?;
            let id = id_for(&mut row, other, |xb| xb)?;
            row.set("SFZH", V::S(id));
            "SFZH"
        }
        "ID_SEX_MISMATCH" => {
            let birth = date(&row, "CSRQ")?;
            let id = id_for(&mut row, birth, |xb| 3 - xb)?;
            row.set("SFZH", V::S(id));
            "SFZH"
        }
        "AGE_MISMATCH" => match int(&row, "NL")? {
            0 => {
                let m = int(&row, "BZYZS_NL")?;
                row.set("BZYZS_NL", V::I((m + 1) % 12));
                "BZYZS_NL"
            }
            n if n < 149 => {
                row.set("NL", V::I(n + 1));
                "NL"
            }
            _ => return None,
        },
        "DATE_ORDER" => match ty {
            RecordType::Outpatient => {
                let t = dt(&row, "JZSJ")?;
                row.set("FBRQ", V::Date(t.date() + Duration::days(1)));
                "FBRQ"
            }
            RecordType::Discharge | RecordType::Summary => {
                let t = dt(&row, "RYSJ")?;
                row.set("CYSJ", V::Dt(t - Duration::hours(1)));
                "CYSJ"
            }
            RecordType::Death => {
                let s = dt(&row, "SWSJ")?;
                row.set("RYSJ", V::Dt(s + Duration::hours(1)));
                "SWSJ"
            }
            RecordType::Medication => {
                let t = dt(&row, "KSSJ")?;
                row.set("TZSJ", V::Dt(t - Duration::hours(1)));
                "TZSJ"
            }
            RecordType::Lab => {
                let t = dt(&row, "CYSJ")?;
                row.set("BGSJ", V::Dt(t - Duration::hours(1)));
                "BGSJ"
            }
            _ => return None,
        },
        "BAD_ORG_CODE" => {
            let c = bad_org(src.text("ZZJGDM")?);
            row.set("ZZJGDM", V::S(c));
            "ZZJGDM"
        }
        "COST_RULE" => match ty {
            RecordType::Outpatient => {
                let zfy = int(&row, "ZFY")?;
                row.set("YPF", V::D2(zfy + 100));
                "YPF"
            }
            RecordType::Discharge => {
                let zfy = int(&row, "ZFY")?;
                row.set("ZFJE", V::D2(zfy + 100));
                "ZFJE"
            }
            _ => return None,
        },
        "STAY_DAYS" => {
            let n = int(&row, "SJZYTS")?;
            row.set("SJZYTS", V::I(n + 1));
            "SJZYTS"
        }
        "SUBTYPE_MISMATCH" => {
            row.set("BDLX", V::code(2));
            row.set("YX", V::code(11));
            "YX"
        }
        "COND_REQUIRED" => match ty {
            RecordType::Outpatient | RecordType::Discharge => {
                row.set("KBD", V::code(1));
                row.set("KBDSJ", V::E);
                "KBDSJ"
            }
            RecordType::Lab => {
                row.set("DXJG", V::code(1));
                row.set("BDLX", V::E);
                row.set("YX", V::E);
                "BDLX"
            }
            RecordType::Death => {
                row.set("RYSJ", V::E);
                row.set("SWDD", V::code(2));
                "RYSJ"
            }
            _ => return None,
        },
        "BAD_ICD" => {
            let f = match ty {
                RecordType::Outpatient => "ZDBM1",
                RecordType::Discharge => "ZYZD_JBDM",
                RecordType::Death => "GBSY_JBDM",
                _ => return None,
            };
            row.set(f, V::St(rng::pick(r, &["J1O.1", "10.100", "JX1.000", "J10-1"])));
            f
        }
        "OUT_OF_SCOPE" => {
            let jzlsh = format!("{}X{n}", src.text("JZLSH")?);
            row.set("JZLSH", V::S(jzlsh.chars().take(50).collect()));
            match ty {
                RecordType::Outpatient => {
                    for i in 1..=10 {
                        row.set(&format!("ZDBM{i}"), V::E);
                        row.set(&format!("ZDMC{i}"), V::E);
                    }
                    row.set("ZDBM1", V::St("J06.900"));
                    row.set("ZDMC1", V::St("急性上呼吸道感染"));
                    row.set("ZDYJ", V::code(1));
                }
                RecordType::Discharge => {
                    for i in 1..=15 {
                        row.set(&format!("QTZD_JBDM{i}"), V::E);
                        row.set(&format!("QTZD{i}"), V::E);
                    }
                    row.set("MZZD_JBBM", V::E);
                    row.set("MZZD", V::E);
                    row.set("ZYZD_JBDM", V::St("J18.900"));
                    row.set("ZYZD", V::St("肺炎"));
                    row.set("ZDYJ", V::code(1));
                }
                _ => return None,
            }
            ""
        }
        "YWRQ_WINDOW" => {
            row.set("YWRQ", V::Date(today - Duration::days(rng::between(r, 31, 90))));
            "YWRQ"
        }
        "BAD_VERSION" => {
            row.set("BBH", V::St(rng::pick(r, &["2.0", "1.1", "V1.0"])));
            "BBH"
        }
        "NOT_ANTIVIRAL" => {
            row.set("YPMC", V::St(rng::pick(r, &["对乙酰氨基酚片", "连花清瘟胶囊", "注射用头孢曲松钠"])));
            "YPMC"
        }
        "NUMBER_RANGE" => {
            let (f, v) = match ty {
                RecordType::Outpatient => ("ZGTW", V::D1(rng::between(r, 431, 460))),
                RecordType::Discharge => ("ZYCS", V::I(0)),
                RecordType::Medication => ("DCJL", V::D3(0)),
                RecordType::Lab => ("CT", V::D1(rng::between(r, 501, 600))),
                RecordType::Stock => ("KCL", V::I(12_345_678_901)),
                RecordType::Visits => ("MZRC", V::I(123_456_789)),
                _ => return None,
            };
            row.set(f, v);
            f
        }
        _ => return None,
    };
    Some((row, Planted { field: field.to_owned(), code }))
}

/// Plant a random applicable code in a copy of `src` (tries a few codes).
pub fn plant_any(r: &mut R, src: &Row, today: NaiveDate, n: usize) -> Option<(Row, Planted)> {
    let codes = applicable(src.ty);
    for _ in 0..8 {
        let code = rng::pick(r, codes);
        if let Some(p) = plant(r, src, code, today, n) {
            return Some(p);
        }
    }
    None
}
