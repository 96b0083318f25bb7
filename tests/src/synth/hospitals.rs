//! The hospitals of the synthetic world: a valid 统一社会信用代码 (prefix 12
//! 事业单位, the county's GB/T 2260 code, a GB 11714 organisation code, the
//! GB 32100 check character), a name, a level, a size, and the habits of its
//! IT vendor's export (date style, line ends, JLID scheme, …).
//!
//! Hospital `i` depends only on `(seed, i)`: `--hospitals 3` is a prefix of
//! `--hospitals 5`.

use rand::Rng;
use serde::Serialize;

use super::regions::{COUNTIES, County};
use super::rng::{self, chance, tag};
use flumon_shared::validate::ids::uscc_check_char;

/// How a hospital writes dates (all accepted by INTERFACE §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DateStyle {
    /// `2026-11-20`, `2026-11-20 08:30:00`.
    #[default]
    Dash,
    /// `2026/11/20`, `2026/11/20 08:30:00`.
    Slash,
    /// `20261120` for dates (date-times as `Dash`).
    Compact,
}

/// The habits of a hospital's export.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Style {
    pub date: DateStyle,
    /// `T` between date and time instead of a space.
    pub t_sep: bool,
    /// Whether date-times carry seconds.
    pub seconds: bool,
    /// CSV lines end with CRLF (RFC 4180) rather than LF.
    pub crlf: bool,
    /// JLIDs are 32 hex digits rather than built from the business numbers.
    pub hashed_jlid: bool,
    /// The §3.1 record of an inpatient is deleted at discharge (else updated).
    pub deletes_inpatient: bool,
    /// `discharge` files carry extra HQMS front-page columns.
    pub hqms_extra: bool,
    /// JSON numbers for numeric fields rather than strings.
    pub json_numbers: bool,
    /// XLSX date fields as date cells rather than text.
    pub xlsx_date_cells: bool,
    /// XM/BAH/SFZH/DH filled in `summary` and `death`.
    pub scrub_fields: bool,
    /// Free text with line breaks between paragraphs.
    pub text_newlines: bool,
}

/// One hospital.
#[derive(Clone, Debug)]
pub struct Hospital {
    pub index: usize,
    /// 统一社会信用代码 (ZZJGDM).
    pub code: String,
    pub name: String,
    pub county: &'static County,
    /// 2 or 3 (二级, 三级).
    pub level: u8,
    /// Relative case volume (1.0 = a large tertiary hospital).
    pub size: f64,
    /// Beds.
    pub beds: u32,
    pub style: Style,
}

/// `hospitals.json` entry.
#[derive(Clone, Debug, Serialize)]
pub struct HospitalInfo {
    pub code: String,
    pub name: String,
    pub region: String,
    pub region_name: String,
    pub level: u8,
    pub size: f64,
    pub style: Style,
}

const KINDS: &[(&str, u8)] = &[
    ("{P}第一人民医院", 3),
    ("{c}市{d}人民医院", 2),
    ("{P}中心医院", 3),
    ("{P}第二人民医院", 2),
    ("{Q}人民医院", 3),
    ("{c}市{d}妇幼保健院", 2),
    ("{P}儿童医院", 3),
    ("{P}第三人民医院", 2),
    ("{P}中医医院", 3),
    ("{c}市{d}中西医结合医院", 2),
];

/// The GB 11714 check character of an 8-digit organisation code body.
pub fn org_check_char(body8: &str) -> Option<char> {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if body8.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (ch, w) in body8.chars().zip(W) {
        sum += ch.to_digit(10)? * w;
    }
    match 11 - sum % 11 {
        10 => Some('X'),
        11 => Some('0'),
        n => char::from_digit(n, 10),
    }
}

/// The 统一社会信用代码 of a 事业单位 in `county` with 7 serial digits.
pub fn uscc_for(county: &County, serial: u64) -> String {
    let body8 = format!("4{:07}", serial % 10_000_000);
    let org = format!("{body8}{}", org_check_char(&body8).unwrap_or('0'));
    let first17 = format!("12{}{org}", county.code);
    let check = uscc_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

impl Hospital {
    /// Hospital `index` of the world of `seed`.
    pub fn generate(seed: u64, index: usize) -> Hospital {
        let n = COUNTIES.len();
        let off = usize::try_from(rng::hash(seed, &[tag::HOSPITAL]) % 997).unwrap_or(0);
        let ci = (index + off) % n;
        let county = COUNTIES.get(ci).unwrap_or(&COUNTIES_FALLBACK);
        let round = index / n;
        let x = usize::try_from(rng::hash(seed, &[tag::HOSPITAL, ci as u64]) % 97).unwrap_or(0);
        let (pattern, level) = KINDS.get((round + x) % KINDS.len()).copied().unwrap_or(("{c}市人民医院", 3));
        // Place names unique per county: the city's (province's) own name only for
        // the first of its counties in the table.
        let first_of = |prefix_len: usize| {
            COUNTIES
                .iter()
                .find(|o| o.code.get(..prefix_len) == county.code.get(..prefix_len))
                .is_some_and(|o| o.code == county.code)
        };
        let place =
            if first_of(4) { format!("{}市", county.city) } else { format!("{}市{}", county.city, county.district) };
        let province_short = county.province.trim_end_matches('省').trim_end_matches('市');
        let q = if !first_of(2) {
            format!("{place}第一中心")
        } else if county.municipality {
            format!("{}市第一中心", county.city)
        } else {
            format!("{province_short}省")
        };
        let mut name = pattern
            .replace("{P}", &place)
            .replace("{Q}", &q)
            .replace("{c}", county.city)
            .replace("{d}", county.district);
        let again = round / KINDS.len();
        if again > 0 {
            name.push_str(&format!("（第{}院区）", again + 1));
        }
        let mut r = rng::stream(seed, &[tag::HOSPITAL, index as u64]);
        let serial = rng::hash(seed, &[tag::HOSPITAL, 0xC0DE]).wrapping_add((index as u64).wrapping_mul(104_729));
        let code = uscc_for(county, serial);
        let size = if level == 3 { r.random_range(0.8..2.0) } else { r.random_range(0.25..0.6) };
        let beds = if level == 3 { r.random_range(1000..3000) } else { r.random_range(200..700) };
        let date = rng::weighted(&mut r, &[(DateStyle::Dash, 0.7), (DateStyle::Slash, 0.2), (DateStyle::Compact, 0.1)]);
        let style = Style {
            date,
            t_sep: chance(&mut r, 0.1),
            seconds: chance(&mut r, 0.85),
            crlf: chance(&mut r, 0.6),
            hashed_jlid: chance(&mut r, 0.3),
            deletes_inpatient: chance(&mut r, 0.8),
            hqms_extra: chance(&mut r, 0.4),
            json_numbers: chance(&mut r, 0.5),
            xlsx_date_cells: chance(&mut r, 0.6),
            scrub_fields: chance(&mut r, 0.8),
            text_newlines: chance(&mut r, 0.5),
        };
        Hospital { index, code, name, county, level, size, beds, style }
    }

    /// The first `n` hospitals of the world of `seed`.
    pub fn world(seed: u64, n: usize) -> Vec<Hospital> {
        (0..n).map(|i| Hospital::generate(seed, i)).collect()
    }

    /// Its `hospitals.json` entry.
    pub fn info(&self) -> HospitalInfo {
        HospitalInfo {
            code: self.code.clone(),
            name: self.name.clone(),
            region: self.county.code.to_owned(),
            region_name: self.county.full_name(),
            level: self.level,
            size: (self.size * 1000.0).round() / 1000.0,
            style: self.style,
        }
    }
}

static COUNTIES_FALLBACK: County =
    County { code: "110105", province: "北京市", city: "北京", municipality: true, district: "朝阳区" };

#[cfg(test)]
mod tests {
    use super::*;
    use flumon_shared::validate::ids::is_valid_uscc;

    #[test]
    fn codes_are_valid_and_unique() {
        let hs = Hospital::world(42, 400);
        let mut codes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for h in &hs {
            assert!(is_valid_uscc(&h.code), "{}", h.code);
            assert!(h.code.starts_with("12"));
            assert_eq!(&h.code[2..8], h.county.code);
            assert!(codes.insert(h.code.clone()));
            assert!(names.insert(h.name.clone()), "{}", h.name);
            assert!(h.level == 2 || h.level == 3);
        }
        assert!(hs.iter().any(|h| h.level == 2) && hs.iter().any(|h| h.level == 3));
    }

    #[test]
    fn prefix_property() {
        let a = Hospital::world(7, 3);
        let b = Hospital::world(7, 5);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.code, y.code);
            assert_eq!(x.name, y.name);
        }
    }

    #[test]
    fn org_check() {
        // GB 11714 example: 12345678-8.
        assert_eq!(org_check_char("12345678"), Some('8'));
    }
}
