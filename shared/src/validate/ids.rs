//! Check characters and shapes of codes from national standards: GB 11643
//! citizen ID numbers, GB 32100 unified social credit codes (统一社会信用代码),
//! GB/T 2260 region codes, ICD-10 shapes.

use chrono::NaiveDate;

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits.
pub fn id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(ID_WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    ID_CHECK.get((sum % 11) as usize).map(|b| char::from(*b))
}

/// What a citizen ID number says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdInfo {
    /// The 18-character form (a 15-digit number converted), upper-case.
    pub normalized: String,
    pub birth: NaiveDate,
    /// 1 male, 2 female (GB/T 2261.1).
    pub sex: u8,
}

/// Why an ID number is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdProblem {
    Shape,
    Check,
    BirthDate,
}

/// Check a 居民身份证 number (18 characters with check, or 15 digits of the first
/// generation with a 19YYMMDD birth date). A lower-case x is read as X.
pub fn check_citizen_id(s: &str) -> Result<IdInfo, IdProblem> {
    let up = s.trim().to_ascii_uppercase();
    let normalized = match up.len() {
        18 => {
            let (body, check) = up.split_at(17);
            if !body.bytes().all(|b| b.is_ascii_digit()) {
                return Err(IdProblem::Shape);
            }
            let want = id_check_char(body).ok_or(IdProblem::Shape)?;
            if !check.starts_with(want) {
                return Err(IdProblem::Check);
            }
            up
        }
        15 => {
            if !up.bytes().all(|b| b.is_ascii_digit()) {
                return Err(IdProblem::Shape);
            }
            fifteen_to_eighteen(&up).ok_or(IdProblem::Shape)?
        }
        _ => return Err(IdProblem::Shape),
    };
    let birth =
        normalized.get(6..14).and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok()).ok_or(IdProblem::BirthDate)?;
    let sex_digit = normalized.as_bytes().get(16).map(|b| b.wrapping_sub(b'0')).ok_or(IdProblem::Shape)?;
    let sex = if sex_digit % 2 == 1 { 1 } else { 2 };
    Ok(IdInfo { normalized, birth, sex })
}

/// Convert a 15-digit first-generation number to its 18-character form.
pub fn fifteen_to_eighteen(s: &str) -> Option<String> {
    if s.len() != 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let body = format!("{}19{}", s.get(..6)?, s.get(6..)?);
    let check = id_check_char(&body)?;
    Some(format!("{body}{check}"))
}

const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn uscc_value(c: char) -> Option<u32> {
    USCC_CHARS.find(c).map(|i| i as u32)
}

/// The GB 32100 check character of the first 17 characters of a 统一社会信用代码.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARS.chars().nth(check as usize)
}

/// Whether `s` is a valid 18-character 统一社会信用代码.
pub fn is_valid_uscc(s: &str) -> bool {
    if s.len() != 18 || !s.is_ascii() {
        return false;
    }
    match (s.get(..17), s.get(17..)) {
        (Some(body), Some(check)) => uscc_check_char(body).map(|c| c.to_string()) == Some(check.to_owned()),
        _ => false,
    }
}

/// GB/T 2260 province-level prefixes.
pub const PROVINCES: &[(&str, &str)] = &[
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("14", "山西省"),
    ("15", "内蒙古自治区"),
    ("21", "辽宁省"),
    ("22", "吉林省"),
    ("23", "黑龙江省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("34", "安徽省"),
    ("35", "福建省"),
    ("36", "江西省"),
    ("37", "山东省"),
    ("41", "河南省"),
    ("42", "湖北省"),
    ("43", "湖南省"),
    ("44", "广东省"),
    ("45", "广西壮族自治区"),
    ("46", "海南省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("52", "贵州省"),
    ("53", "云南省"),
    ("54", "西藏自治区"),
    ("61", "陕西省"),
    ("62", "甘肃省"),
    ("63", "青海省"),
    ("64", "宁夏回族自治区"),
    ("65", "新疆维吾尔自治区"),
    ("71", "台湾省"),
    ("81", "香港特别行政区"),
    ("82", "澳门特别行政区"),
];

/// A 6-digit GB/T 2260 code with a valid province prefix.
pub fn is_region_code(s: &str) -> bool {
    s.len() == 6
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.get(..2).is_some_and(|p| PROVINCES.iter().any(|(c, _)| *c == p))
}

/// ICD-10 by shape: a letter, two digits, optionally `.` and up to 4 more characters.
pub fn is_icd10_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let head = match (b.first(), b.get(1), b.get(2)) {
        (Some(l), Some(d1), Some(d2)) => l.is_ascii_alphabetic() && d1.is_ascii_digit() && d2.is_ascii_digit(),
        _ => false,
    };
    if !head {
        return false;
    }
    match b.get(3..) {
        None | Some([]) => true,
        Some([b'.', rest @ ..]) => rest.len() <= 4 && rest.iter().all(|c| c.is_ascii_alphanumeric()),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citizen_ids() {
        // GB 11643 example: 11010519491231002X
        let info = check_citizen_id("11010519491231002x").unwrap();
        assert_eq!(info.normalized, "11010519491231002X");
        assert_eq!(info.birth, NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(info.sex, 2);
        assert_eq!(check_citizen_id("110105194912310021"), Err(IdProblem::Check));
        assert_eq!(check_citizen_id("11010519491331002X").unwrap_err(), IdProblem::Check);
        assert_eq!(check_citizen_id("1101051949123100"), Err(IdProblem::Shape));
        let info = check_citizen_id("110105491231002").unwrap();
        assert_eq!(info.birth, NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(info.normalized.len(), 18);
        assert_eq!(check_citizen_id("110105491331002"), Err(IdProblem::BirthDate));
    }

    #[test]
    fn uscc() {
        // Check character computed by the GB 32100 algorithm.
        let body = "91350100M000100Y4";
        let c = uscc_check_char(body).unwrap();
        assert_eq!(c, '3');
        assert!(is_valid_uscc("91350100M000100Y43"));
        assert!(!is_valid_uscc("91350100M000100Y44"));
        assert!(!is_valid_uscc("91350100M000100Y4"));
        assert!(!is_valid_uscc("91350100M00010OY43"));
    }

    #[test]
    fn shapes() {
        assert!(is_region_code("110105"));
        assert!(!is_region_code("990105"));
        assert!(!is_region_code("11010"));
        assert!(is_icd10_shape("J10"));
        assert!(is_icd10_shape("J10.1"));
        assert!(is_icd10_shape("J10.100x"));
        assert!(!is_icd10_shape("J10.10000"));
        assert!(!is_icd10_shape("J1"));
        assert!(!is_icd10_shape("10.1"));
        assert!(!is_icd10_shape("J10-1"));
    }
}
