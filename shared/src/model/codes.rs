//! Code tables of INTERFACE.md (GB/T 2261, HQMS RC0xx and flumon's own), as
//! `(code, 中文)` pairs the validator checks against and the generated
//! documentation lists.

/// A code table: `(code, meaning)`.
pub type CodeTable = &'static [(&'static str, &'static str)];

pub const CZLX: CodeTable = &[("1", "新增"), ("2", "修改"), ("3", "删除")];
pub const XB: CodeTable = &[("0", "未知的性别"), ("1", "男"), ("2", "女"), ("9", "未说明的性别")];
pub const ZJLX: CodeTable =
    &[("1", "居民身份证"), ("2", "护照"), ("3", "港澳台通行证"), ("4", "外国人永久居留证"), ("9", "无证件")];
pub const ZY: CodeTable = &[
    ("11", "国家公务员"),
    ("13", "专业技术人员"),
    ("17", "职员"),
    ("21", "企业管理人员"),
    ("24", "工人"),
    ("27", "农民"),
    ("31", "学生"),
    ("37", "现役军人"),
    ("51", "自由职业者"),
    ("54", "个体经营者"),
    ("70", "无业人员"),
    ("80", "退(离)休人员"),
    ("90", "其他"),
];
pub const YLFKFS: CodeTable = &[
    ("01", "城镇职工基本医疗保险"),
    ("02", "城镇居民基本医疗保险"),
    ("03", "新型农村合作医疗"),
    ("04", "贫困救助"),
    ("05", "商业医疗保险"),
    ("06", "全公费"),
    ("07", "全自费"),
    ("08", "其他社会保险"),
    ("99", "其他"),
];
pub const JZLX: CodeTable = &[("1", "门诊"), ("2", "急诊"), ("3", "在院")];
pub const ZDYJ: CodeTable = &[("1", "临床诊断"), ("2", "实验室确诊")];
pub const LCFX: CodeTable = &[("1", "轻型"), ("2", "中型"), ("3", "重型"), ("4", "危重型")];
pub const GWYS: CodeTable = &[
    ("1", "年龄<5岁"),
    ("2", "年龄≥65岁"),
    ("3", "慢性呼吸系统病"),
    ("4", "心血管病"),
    ("5", "肾病"),
    ("6", "肝病"),
    ("7", "血液病"),
    ("8", "神经系统病"),
    ("9", "代谢及内分泌病"),
    ("10", "免疫抑制"),
    ("11", "肥胖"),
    ("12", "妊娠及围产期"),
    ("99", "其他"),
];
pub const YMJZ: CodeTable = &[("1", "是"), ("2", "否"), ("9", "不详")];
pub const YES_NO: CodeTable = &[("1", "是"), ("2", "否")];
pub const ZGZT: CodeTable = &[("1", "在治"), ("2", "治愈/好转离院"), ("3", "死亡"), ("4", "转院"), ("9", "其他")];
pub const RYTJ: CodeTable = &[("1", "急诊"), ("2", "门诊"), ("3", "其他医疗机构转入"), ("9", "其他")];
pub const RYBQ: CodeTable = &[("1", "有"), ("2", "临床未确定"), ("3", "情况不明"), ("4", "无")];
pub const LYFS: CodeTable = &[
    ("1", "医嘱离院"),
    ("2", "医嘱转院"),
    ("3", "医嘱转社区卫生服务机构/乡镇卫生院"),
    ("4", "非医嘱离院"),
    ("5", "死亡"),
    ("9", "其他"),
];
pub const LGSYXG: CodeTable = &[("1", "直接"), ("2", "促成"), ("3", "无关")];
pub const SWDD: CodeTable = &[("1", "ICU"), ("2", "普通病房"), ("3", "急诊"), ("9", "其他")];
pub const YZLB: CodeTable = &[("1", "长期医嘱"), ("2", "临时医嘱"), ("3", "门诊处方")];
pub const BBLB: CodeTable =
    &[("1", "鼻咽拭子"), ("2", "口咽拭子"), ("3", "痰"), ("4", "支气管肺泡灌洗液"), ("5", "血清"), ("9", "其他")];
pub const JYFF: CodeTable = &[("1", "抗原"), ("2", "核酸"), ("3", "培养"), ("4", "血清抗体"), ("9", "其他")];
pub const DXJG: CodeTable = &[("1", "阳性"), ("2", "阴性"), ("3", "弱阳性"), ("4", "无效")];
pub const BDLX: CodeTable = &[("1", "甲型"), ("2", "乙型"), ("3", "甲乙混合"), ("9", "未分型")];
pub const YX: CodeTable = &[
    ("11", "A(H1N1)pdm09"),
    ("12", "A(H3N2)"),
    ("13", "A(H5)"),
    ("14", "A(H7)"),
    ("15", "A(H9)"),
    ("19", "A未分亚型"),
    ("21", "B/Victoria"),
    ("22", "B/Yamagata"),
    ("29", "B未分系"),
];
pub const NRLB: CodeTable = &[
    ("1", "首页"),
    ("2", "病程记录"),
    ("3", "医嘱"),
    ("4", "检验检查"),
    ("5", "护理"),
    ("6", "死亡讨论"),
    ("9", "其他"),
];

/// GB 3304 民族: 01–56, 97 其他, 98 外国血统中国籍人士 (names not listed here).
pub fn is_mz_code(s: &str) -> bool {
    match s.parse::<u8>() {
        Ok(n) => s.len() == 2 && ((1..=56).contains(&n) || n == 97 || n == 98),
        Err(_) => false,
    }
}

/// Whether `code` is in `table`.
pub fn in_table(table: CodeTable, code: &str) -> bool {
    table.iter().any(|(c, _)| *c == code)
}

/// Anti-influenza drug classes of INTERFACE §3.5: `(generic name, class)`.
pub const ANTIVIRALS: &[(&str, &str)] = &[
    ("奥司他韦", "NAI"),
    ("扎那米韦", "NAI"),
    ("帕拉米韦", "NAI"),
    ("玛巴洛沙韦", "PA"),
    ("法维拉韦", "RdRp"),
    ("阿比多尔", "HA"),
    ("昂拉地韦", "PB2"),
    ("金刚烷胺", "M2"),
    ("金刚乙胺", "M2"),
];

/// The generic name and class of an anti-influenza drug whose name contains it.
pub fn antiviral_of(ypmc: &str) -> Option<(&'static str, &'static str)> {
    ANTIVIRALS.iter().copied().find(|(name, _)| ypmc.contains(name))
}
