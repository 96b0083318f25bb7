//! Patients: names (surname + given name), sex, birth date, identity documents
//! (居民身份证 with a GB 11643 check character consistent with birth date and
//! sex, some 15-digit first-generation numbers, some lower-case x, passports,
//! no document), nationality, ethnicity, occupation, address, mobile.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;

use super::hospitals::Hospital;
use super::regions::{COMPOUNDS, COUNTIES, County, STREETS};
use super::rng::{self, R, between, chance, pick, weighted};
use super::row::ymd8;
use flumon_shared::validate::ids::id_check_char;

const SURNAMES: &[(&str, f64)] = &[
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.7),
    ("刘", 5.4),
    ("陈", 4.5),
    ("杨", 3.1),
    ("黄", 2.2),
    ("赵", 2.0),
    ("吴", 1.9),
    ("周", 1.8),
    ("徐", 1.5),
    ("孙", 1.5),
    ("马", 1.4),
    ("朱", 1.3),
    ("胡", 1.3),
    ("郭", 1.1),
    ("何", 1.1),
    ("高", 1.0),
    ("林", 1.0),
    ("罗", 0.9),
    ("郑", 0.9),
    ("梁", 0.8),
    ("谢", 0.7),
    ("宋", 0.7),
    ("唐", 0.7),
    ("许", 0.6),
    ("韩", 0.6),
    ("冯", 0.6),
    ("邓", 0.6),
    ("曹", 0.6),
    ("彭", 0.5),
    ("曾", 0.5),
    ("肖", 0.5),
    ("田", 0.5),
    ("董", 0.5),
    ("袁", 0.5),
    ("潘", 0.4),
    ("于", 0.4),
    ("蒋", 0.4),
    ("蔡", 0.4),
    ("余", 0.4),
    ("杜", 0.4),
    ("叶", 0.4),
    ("程", 0.4),
    ("苏", 0.3),
    ("魏", 0.3),
    ("吕", 0.3),
    ("丁", 0.3),
    ("任", 0.3),
    ("沈", 0.3),
    ("姚", 0.3),
    ("卢", 0.3),
    ("姜", 0.3),
    ("崔", 0.3),
    ("钟", 0.3),
    ("谭", 0.3),
    ("欧阳", 0.05),
    ("司马", 0.02),
    ("诸葛", 0.01),
    ("上官", 0.02),
];

const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "宇",
    "浩", "俊", "帆", "子轩", "浩然", "宇轩", "博文", "志强", "建国", "建华", "国强", "德明", "晨", "睿", "泽", "铭",
    "昊", "天佑", "一鸣", "家豪",
];
const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "桂英", "秀英", "秀兰", "玉兰", "婷", "雪", "慧", "颖",
    "琳", "欣怡", "梓涵", "诗涵", "雨桐", "子涵", "佳怡", "淑珍", "凤英", "晓燕", "思琪", "梦瑶", "可欣", "悦", "蕾",
];
const KIN_MALE: &[&str] = &["小明", "小刚", "建军", "志远", "国庆", "伟东", "晓东", "海涛"];
const KIN_FEMALE: &[&str] = &["小红", "秀珍", "丽华", "晓梅", "美玲", "春燕", "海燕", "小芳"];

const FOREIGN: &[(&str, &str)] = &[
    ("840", "JOHN SMITH"),
    ("410", "KIM MINJUN"),
    ("392", "SATO HIROSHI"),
    ("643", "IVANOV ALEKSEI"),
    ("276", "MUELLER ANNA"),
    ("250", "MARTIN SOPHIE"),
    ("704", "NGUYEN VAN AN"),
    ("826", "BROWN EMMA"),
];

const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157",
    "158", "159", "166", "173", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198",
    "199",
];

/// A patient.
#[derive(Clone, Debug)]
pub struct Person {
    pub xm: String,
    /// 1 男, 2 女 (rarely 9 未说明).
    pub xb: u8,
    pub csrq: NaiveDate,
    /// 1 居民身份证, 2 护照, 3 港澳台通行证, 4 外国人永久居留证, 9 无证件.
    pub zjlx: u8,
    pub sfzh: Option<String>,
    pub gj: &'static str,
    pub mz: &'static str,
    pub zy: Option<&'static str>,
    pub xzz: String,
    pub xzz_xzqh: &'static str,
    pub dh: Option<String>,
    pub ylfkfs: Option<&'static str>,
    /// A relative (for free text).
    pub kin: Kin,
}

/// A relative named in free text (其子王小明).
#[derive(Clone, Debug)]
pub struct Kin {
    /// 其子, 其女, 其母, 其父, 其妻, 其夫.
    pub relation: &'static str,
    pub name: String,
    pub mobile: String,
}

/// A mobile number (11 digits, valid prefixes).
pub fn mobile(r: &mut R) -> String {
    format!("{}{:08}", pick(r, MOBILE_PREFIXES), r.random_range(0..100_000_000u32))
}

/// The 18-character 居民身份证 number for a region, birth date, serial (0–99) and sex.
pub fn citizen_id(region: &str, birth: NaiveDate, serial: u32, sex: u8) -> String {
    let sex_digit = (serial % 5) * 2 + if sex == 1 { 1 } else { 0 };
    let first17 = format!("{region}{}{:02}{sex_digit}", ymd8(birth), serial % 100);
    let check = id_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

/// A first-generation 15-digit number (birth year 19YY).
pub fn citizen_id15(region: &str, birth: NaiveDate, serial: u32, sex: u8) -> String {
    let sex_digit = (serial % 5) * 2 + if sex == 1 { 1 } else { 0 };
    format!("{region}{}{:02}{sex_digit}", ymd8(birth).get(2..).unwrap_or_default(), serial % 100)
}

/// A surname + given name.
pub fn chinese_name(r: &mut R, sex: u8) -> (String, &'static str) {
    let surname = weighted(r, SURNAMES);
    let given = if sex == 2 { pick(r, FEMALE_CHARS) } else { pick(r, MALE_CHARS) };
    let mut g = given.to_owned();
    if g.chars().count() == 1 && chance(r, 0.45) {
        g.push_str(if sex == 2 { pick(r, FEMALE_CHARS) } else { pick(r, MALE_CHARS) });
        g = g.chars().take(2).collect();
    }
    (format!("{surname}{g}"), surname)
}

/// Completed years from `birth` to `at` (INTERFACE §2 NL).
pub fn completed_years(birth: NaiveDate, at: NaiveDate) -> i64 {
    let mut y = i64::from(at.year()) - i64::from(birth.year());
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        y -= 1;
    }
    y
}

/// Completed months from `birth` to `at` (INTERFACE §2 BZYZS_NL).
pub fn completed_months(birth: NaiveDate, at: NaiveDate) -> i64 {
    let mut m =
        (i64::from(at.year()) - i64::from(birth.year())) * 12 + i64::from(at.month()) - i64::from(birth.month());
    if at.day() < birth.day() {
        m -= 1;
    }
    m
}

fn address(r: &mut R, county: &County) -> String {
    let street = pick(r, STREETS);
    let no = between(r, 1, 399);
    if chance(r, 0.15) {
        return format!("{}{}{}号", county.full_name(), street, no);
    }
    format!(
        "{}{}{}号{}{}栋{}单元{}室",
        county.full_name(),
        street,
        no,
        pick(r, COMPOUNDS),
        between(r, 1, 30),
        between(r, 1, 6),
        between(r, 1, 33) * 100 + between(r, 1, 6)
    )
}

fn occupation(r: &mut R, age: i64) -> Option<&'static str> {
    if chance(r, 0.1) {
        return None;
    }
    Some(match age {
        0..=5 => "90",
        6..=22 => "31",
        23..=59 => weighted(
            r,
            &[
                ("13", 3.0),
                ("17", 3.0),
                ("21", 1.0),
                ("24", 3.0),
                ("27", 2.0),
                ("51", 1.5),
                ("54", 1.5),
                ("70", 1.0),
                ("11", 0.5),
                ("37", 0.1),
                ("90", 1.0),
            ],
        ),
        _ => weighted(r, &[("80", 6.0), ("27", 2.0), ("70", 1.0), ("90", 1.0)]),
    })
}

impl Person {
    /// A patient of `hospital` born on `csrq`.
    pub fn generate(r: &mut R, hospital: &Hospital, csrq: NaiveDate, visit: NaiveDate) -> Person {
        let age = completed_years(csrq, visit);
        let xb = if chance(r, 0.002) {
            9
        } else if chance(r, 0.5) {
            1
        } else {
            2
        };
        let sex_for_name = if xb == 9 { 1 } else { xb };
        let (mut xm, surname) = chinese_name(r, sex_for_name);
        // Where the patient lives: mostly the hospital's county, else its province, rarely elsewhere.
        let home: &'static County = if chance(r, 0.6) {
            hospital.county
        } else if chance(r, 0.85) {
            let same: Vec<&'static County> = hospital.county.same_province().collect();
            rng::pick_ref(r, &same).copied().unwrap_or(hospital.county)
        } else {
            COUNTIES.get(r.random_range(0..COUNTIES.len())).unwrap_or(hospital.county)
        };
        // Where the ID was issued: the home county, or another in the table.
        let issued: &'static County =
            if chance(r, 0.7) { home } else { COUNTIES.get(r.random_range(0..COUNTIES.len())).unwrap_or(home) };
        let zjlx = if age <= 1 && chance(r, 0.3) {
            9
        } else {
            weighted(r, &[(1u8, 95.0), (2, 1.5), (3, 0.8), (4, 0.3), (9, 2.4)])
        };
        let mut gj = "156";
        let serial = r.random_range(0..100u32);
        let sfzh = match zjlx {
            1 => {
                let sex = if xb == 9 { pick(r, &[1u8, 2]) } else { xb };
                let old = csrq.year() < 1990 && csrq.year() >= 1900 && chance(r, 0.05);
                let id = if old {
                    citizen_id15(issued.code, csrq, serial, sex)
                } else {
                    citizen_id(issued.code, csrq, serial, sex)
                };
                Some(if id.ends_with('X') && chance(r, 0.3) { id.to_ascii_lowercase() } else { id })
            }
            2 => {
                if chance(r, 0.6) {
                    let (g, name) = pick(r, FOREIGN);
                    gj = g;
                    xm = name.to_owned();
                    Some(format!("{}{:07}", pick(r, &["P", "G", "X", "N"]), r.random_range(0..10_000_000u32)))
                } else {
                    Some(format!("E{:08}", r.random_range(0..100_000_000u32)))
                }
            }
            3 => {
                gj = pick(r, &["344", "446", "158"]);
                Some(format!("{}{:08}", pick(r, &["H", "M"]), r.random_range(0..100_000_000u32)))
            }
            4 => {
                let (g, name) = pick(r, FOREIGN);
                gj = g;
                xm = name.to_owned();
                Some(format!(
                    "9{}{:011}",
                    hospital.county.code.get(..2).unwrap_or("11"),
                    r.random_range(0..100_000_000_000u64)
                ))
            }
            _ => None,
        };
        let mz = if gj != "156" {
            "97"
        } else {
            weighted(
                r,
                &[
                    ("01", 91.0),
                    ("03", 1.8),
                    ("02", 0.5),
                    ("05", 0.8),
                    ("08", 1.3),
                    ("11", 0.8),
                    ("04", 0.5),
                    ("06", 0.7),
                    ("10", 0.4),
                    ("15", 0.5),
                ],
            )
        };
        let dh = if chance(r, 0.9) {
            Some(if chance(r, 0.95) {
                mobile(r)
            } else {
                format!("0{}-{:08}", between(r, 10, 99), r.random_range(20_000_000..90_000_000u32))
            })
        } else {
            None
        };
        let ylfkfs = if chance(r, 0.1) {
            None
        } else {
            Some(weighted(
                r,
                &[
                    ("01", 40.0),
                    ("02", 30.0),
                    ("03", 8.0),
                    ("04", 1.0),
                    ("05", 2.0),
                    ("06", 1.0),
                    ("07", 12.0),
                    ("08", 1.0),
                    ("99", 2.0),
                ],
            ))
        };
        let kin_sex = pick(r, &[1u8, 2]);
        let relation = match (age, kin_sex, xb) {
            (0..=17, 1, _) => "其父",
            (0..=17, _, _) => "其母",
            (18..=59, 1, 2) => "其夫",
            (18..=59, 2, 1) => "其妻",
            (_, 1, _) => "其子",
            _ => "其女",
        };
        let kin_given = if kin_sex == 1 { pick(r, KIN_MALE) } else { pick(r, KIN_FEMALE) };
        let kin_surname =
            if matches!(relation, "其母" | "其妻" | "其夫") { weighted(r, SURNAMES) } else { surname };
        let kin = Kin { relation, name: format!("{kin_surname}{kin_given}"), mobile: mobile(r) };
        Person {
            xm,
            xb,
            csrq,
            zjlx,
            sfzh,
            gj,
            mz,
            zy: occupation(r, age),
            xzz: address(r, home),
            xzz_xzqh: home.code,
            dh,
            ylfkfs,
            kin,
        }
    }
}

/// A birth date for a patient seen on `visit`: an age group as CNIC reports
/// them, weighted as influenza cases are (children and the old over-represented).
pub fn birth_date(r: &mut R, visit: NaiveDate, inpatient_bias: bool) -> NaiveDate {
    let groups: &[((i64, i64), f64)] = if inpatient_bias {
        &[
            ((0, 0), 8.0),
            ((1, 4), 17.0),
            ((5, 14), 12.0),
            ((15, 24), 4.0),
            ((25, 59), 20.0),
            ((60, 79), 26.0),
            ((80, 99), 13.0),
        ]
    } else {
        &[
            ((0, 0), 3.0),
            ((1, 4), 17.0),
            ((5, 14), 26.0),
            ((15, 24), 10.0),
            ((25, 59), 31.0),
            ((60, 79), 11.0),
            ((80, 99), 2.0),
        ]
    };
    let (lo, hi) = weighted(r, groups);
    let years = between(r, lo, hi);
    let days = years * 365 + (years / 4) + between(r, 0, 364);
    let d = visit - Duration::days(days.max(if years == 0 { 7 } else { 0 }));
    d.max(NaiveDate::from_ymd_opt(1920, 1, 1).unwrap_or(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumon_shared::validate::ids::check_citizen_id;

    #[test]
    fn ids_match_birth_and_sex() {
        let mut r = rng::stream(1, &[]);
        let h = Hospital::generate(1, 0);
        let visit = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let mut kinds = std::collections::HashMap::new();
        for _ in 0..3000 {
            let bias = chance(&mut r, 0.3);
            let b = birth_date(&mut r, visit, bias);
            assert!(b <= visit);
            let p = Person::generate(&mut r, &h, b, visit);
            *kinds.entry(p.zjlx).or_insert(0) += 1;
            if p.zjlx == 1 {
                let id = p.sfzh.clone().unwrap();
                let info = check_citizen_id(&id).unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(info.birth, p.csrq);
                if p.xb == 1 || p.xb == 2 {
                    assert_eq!(info.sex, p.xb);
                }
            }
            assert!(p.xm.chars().count() <= 40);
            assert!(p.xzz.chars().count() <= 200);
        }
        assert!(kinds.len() >= 4, "{kinds:?}");
    }

    #[test]
    fn ages() {
        let b = NaiveDate::from_ymd_opt(2020, 3, 15).unwrap();
        assert_eq!(completed_years(b, NaiveDate::from_ymd_opt(2026, 3, 14).unwrap()), 5);
        assert_eq!(completed_years(b, NaiveDate::from_ymd_opt(2026, 3, 15).unwrap()), 6);
        assert_eq!(completed_months(b, NaiveDate::from_ymd_opt(2020, 5, 14).unwrap()), 1);
        assert_eq!(completed_months(b, NaiveDate::from_ymd_opt(2020, 5, 15).unwrap()), 2);
    }
}
