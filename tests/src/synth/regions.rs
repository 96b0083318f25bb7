//! A small embedded table of real GB/T 2260 county-level codes (districts of
//! large cities in several provinces), with the names used for hospital names
//! and addresses, and the street and compound names addresses are made of.

/// One county-level division.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct County {
    /// 6-digit GB/T 2260 code.
    pub code: &'static str,
    /// Province-level name (北京市, 广东省, …).
    pub province: &'static str,
    /// Prefecture-level city name without 市 (广州); the municipality's name for one.
    pub city: &'static str,
    /// Whether the province is a municipality (北京, 上海, 天津, 重庆).
    pub municipality: bool,
    /// District name (天河区).
    pub district: &'static str,
}

const fn c(code: &'static str, province: &'static str, city: &'static str, district: &'static str) -> County {
    let municipality =
        matches!(code.as_bytes(), [b'1', b'1', ..] | [b'1', b'2', ..] | [b'3', b'1', ..] | [b'5', b'0', ..]);
    County { code, province, city, municipality, district }
}

/// The counties hospitals are placed in (in this order, shifted by the seed).
pub const COUNTIES: &[County] = &[
    c("110105", "北京市", "北京", "朝阳区"),
    c("310104", "上海市", "上海", "徐汇区"),
    c("440106", "广东省", "广州", "天河区"),
    c("420106", "湖北省", "武汉", "武昌区"),
    c("510107", "四川省", "成都", "武侯区"),
    c("330106", "浙江省", "杭州", "西湖区"),
    c("370102", "山东省", "济南", "历下区"),
    c("610113", "陕西省", "西安", "雁塔区"),
    c("320106", "江苏省", "南京", "鼓楼区"),
    c("430102", "湖南省", "长沙", "芙蓉区"),
    c("410105", "河南省", "郑州", "金水区"),
    c("500103", "重庆市", "重庆", "渝中区"),
    c("110108", "北京市", "北京", "海淀区"),
    c("310115", "上海市", "上海", "浦东新区"),
    c("440304", "广东省", "深圳", "福田区"),
    c("420102", "湖北省", "武汉", "江岸区"),
    c("510104", "四川省", "成都", "锦江区"),
    c("330102", "浙江省", "杭州", "上城区"),
    c("370202", "山东省", "青岛", "市南区"),
    c("610102", "陕西省", "西安", "新城区"),
    c("320508", "江苏省", "苏州", "姑苏区"),
    c("120101", "天津市", "天津", "和平区"),
    c("210102", "辽宁省", "沈阳", "和平区"),
    c("350102", "福建省", "福州", "鼓楼区"),
    c("530102", "云南省", "昆明", "五华区"),
    c("110102", "北京市", "北京", "西城区"),
    c("310106", "上海市", "上海", "静安区"),
    c("440104", "广东省", "广州", "越秀区"),
];

/// Street names for addresses.
pub const STREETS: &[&str] = &[
    "建设路",
    "人民路",
    "解放路",
    "中山路",
    "和平路",
    "文化路",
    "友谊路",
    "长江路",
    "黄河路",
    "新华路",
    "光明路",
    "胜利路",
    "朝阳路",
    "青年路",
    "学府路",
    "东风路",
    "五一路",
    "幸福路",
    "迎宾大道",
    "滨江路",
];

/// Residential compound names for addresses.
pub const COMPOUNDS: &[&str] = &[
    "阳光花园",
    "幸福家园",
    "锦绣华庭",
    "翠湖苑",
    "金色家园",
    "丽景湾",
    "和谐小区",
    "书香苑",
    "碧水蓝天",
    "怡景新村",
    "东方明珠苑",
    "绿城桂花园",
    "学府名苑",
    "康乐小区",
];

impl County {
    /// `广东省广州市天河区`, `北京市朝阳区`.
    pub fn full_name(&self) -> String {
        if self.municipality {
            format!("{}{}", self.province, self.district)
        } else {
            format!("{}{}市{}", self.province, self.city, self.district)
        }
    }

    /// Other counties of the same province in the table (itself included).
    pub fn same_province(&self) -> impl Iterator<Item = &'static County> + '_ {
        COUNTIES.iter().filter(move |o| o.code.get(..2) == self.code.get(..2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumon_shared::validate::ids::is_region_code;

    #[test]
    fn table_is_valid() {
        let mut seen = std::collections::HashSet::new();
        for c in COUNTIES {
            assert!(is_region_code(c.code), "{}", c.code);
            assert!(seen.insert(c.code), "{} twice", c.code);
        }
        assert_eq!(COUNTIES[0].full_name(), "北京市朝阳区");
        assert_eq!(COUNTIES[2].full_name(), "广东省广州市天河区");
        assert!(COUNTIES[11].municipality);
        assert!(!COUNTIES[10].municipality);
    }
}
