//! The field tables of INTERFACE §2–§3 and §6: one [`TypeDef`] per record
//! type, the single source for the parser (header names), the validator
//! (types, lengths, code tables, requirements) and docs/INTERFACE.md.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::codes::{self, CodeTable};
use super::{FieldDef, FieldType, RecordType, Req, Sensitivity, normalize_header};

use FieldType::{Char, Date, DateTime, Dec, Int, Text};
use Req::{Conditional as C, Optional as N, Required as Y};

/// The table of one record type.
#[derive(Debug)]
pub struct TypeDef {
    /// The type.
    pub ty: RecordType,
    /// Its fields, in documentation order.
    pub fields: Vec<FieldDef>,
    /// Whether columns outside the table are kept (raw archive only) rather than refused.
    pub allows_extra: bool,
    by_code: HashMap<String, usize>,
    by_header: HashMap<String, usize>,
}

impl TypeDef {
    /// Index of a field by its code (exact, upper-case).
    pub fn index(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// Resolve a header cell (a field code in any case, or a Chinese name
    /// compared ignoring spaces and bracket width) to a field index.
    pub fn resolve_header(&self, header: &str) -> Option<usize> {
        let n = normalize_header(header);
        if let Some(i) = self.by_code.get(&n.to_ascii_uppercase()) {
            return Some(*i);
        }
        self.by_header.get(&n).copied()
    }

    /// The field at `index`.
    pub fn field(&self, index: usize) -> Option<&FieldDef> {
        self.fields.get(index)
    }

    fn new(ty: RecordType, fields: Vec<FieldDef>, allows_extra: bool) -> Self {
        let mut by_code = HashMap::new();
        let mut by_header = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            by_code.insert(f.code.clone(), i);
            by_header.insert(normalize_header(&f.zh), i);
            for alt in &f.alt_zh {
                by_header.insert(normalize_header(alt), i);
            }
        }
        TypeDef { ty, fields, allows_extra, by_code, by_header }
    }
}

/// The table of `ty`.
pub fn type_def(ty: RecordType) -> &'static TypeDef {
    static TABLES: LazyLock<Vec<TypeDef>> = LazyLock::new(|| RecordType::ALL.iter().map(|t| build(*t)).collect());
    let pos = RecordType::ALL.iter().position(|t| *t == ty).unwrap_or(0);
    // ALL and TABLES have the same length and order by construction.
    #[allow(clippy::indexing_slicing)]
    &TABLES[pos]
}

fn f(code: &str, zh: &str, ty: FieldType, req: Req, rule: &str) -> FieldDef {
    let sens = match ty {
        Text(_) => Sensitivity::FreeText,
        _ => Sensitivity::Plain,
    };
    FieldDef {
        code: code.to_owned(),
        zh: zh.to_owned(),
        alt_zh: Vec::new(),
        ty,
        req,
        rule: rule.to_owned(),
        codes: None,
        sens,
        fixed_width: None,
    }
}

trait Build {
    fn codes(self, t: CodeTable) -> Self;
    fn sens(self, s: Sensitivity) -> Self;
    fn width(self, w: u8) -> Self;
    fn alt(self, names: &[&str]) -> Self;
}

impl Build for FieldDef {
    fn codes(mut self, t: CodeTable) -> Self {
        self.codes = Some(t);
        self
    }
    fn sens(mut self, s: Sensitivity) -> Self {
        self.sens = s;
        self
    }
    fn width(mut self, w: u8) -> Self {
        self.fixed_width = Some(w);
        self
    }
    fn alt(mut self, names: &[&str]) -> Self {
        self.alt_zh.extend(names.iter().map(|s| (*s).to_owned()));
        self
    }
}

fn common() -> Vec<FieldDef> {
    vec![
        f("ZZJGDM", "组织机构代码", Char(18), Y, "18位统一社会信用代码(GB 32100 校验位), 须为上传医院本院的代码"),
        f("JLID", "记录唯一标识", Char(64), Y, "本院该记录的唯一标识, 同一医院同一类型内唯一")
            .sens(Sensitivity::Pseudonym),
        f("CZLX", "操作类型", Char(1), Y, "").codes(codes::CZLX),
        f("GXSJ", "更新时间", DateTime, Y, "医院最后修改该记录的时间; 不得晚于接收时间 5 分钟以上"),
        f("YWRQ", "业务日期", Date, Y, "近 30 天内(含当天); 删除时不检查"),
        f("BBH", "接口版本", Char(10), Y, "固定为 1.0"),
    ]
}

fn jzlsh(zh: &str) -> FieldDef {
    let f = f("JZLSH", zh, Char(50), Y, "关联病例的就诊流水号").sens(Sensitivity::Pseudonym);
    if zh == "就诊流水号" { f } else { f.alt(&["就诊流水号"]) }
}

fn patient(visit: &str) -> Vec<FieldDef> {
    vec![
        f("XM", "姓名", Char(40), Y, "直接标识符, 不出 DMZ").sens(Sensitivity::Identifier),
        f("XB", "性别", Char(1), Y, "GB/T 2261.1").codes(codes::XB),
        f("CSRQ", "出生日期", Date, Y, &format!("不晚于{visit}")).sens(Sensitivity::BirthDate),
        f("NL", "年龄(岁)", Int(3), Y, &format!("0–150; 出生日期到{visit}的周岁数")),
        f("BZYZS_NL", "年龄不足1周岁的(月)", Int(2), C, "年龄为 0 时必填, 否则为空; 0–11; 足月数"),
        f("ZJLX", "证件类型", Char(1), Y, "").codes(codes::ZJLX),
        f(
            "SFZH",
            "证件号码",
            Char(32),
            C,
            "证件类型不为 9 时必填; 居民身份证按 GB 11643 校验, 出生日期与性别须与 CSRQ、XB 一致",
        )
        .sens(Sensitivity::IdNumber),
        f("GJ", "国籍", Char(3), N, "GB/T 2659 数字代码").width(3),
        f("MZ", "民族", Char(2), N, "GB 3304 (01–56, 97, 98)").width(2),
        f("ZY", "职业", Char(2), N, "GB/T 2261.4").codes(codes::ZY).width(2),
        f("XZZ", "现住址", Char(200), Y, "直接标识符, 不出 DMZ").sens(Sensitivity::Identifier),
        f("XZZ_XZQH", "现住址区划", Char(6), Y, "GB/T 2260 县级代码, 6 位数字, 省级前缀有效"),
        f("DH", "联系电话", Char(40), N, "直接标识符, 不出 DMZ").sens(Sensitivity::Identifier),
        f("YLFKFS", "医疗付费方式", Char(2), N, "HQMS RC032").codes(codes::YLFKFS).width(2),
    ]
}

fn scrub_only() -> Vec<FieldDef> {
    vec![
        f("XM", "姓名", Char(40), N, "仅用于清除文本中的标识, 不出 DMZ").sens(Sensitivity::Identifier),
        f("BAH", "病案号", Char(50), N, "仅用于清除文本中的标识, 不出 DMZ").sens(Sensitivity::Identifier),
        f("SFZH", "证件号码", Char(32), N, "仅用于清除文本中的标识, 不出 DMZ").sens(Sensitivity::Identifier),
        f("DH", "联系电话", Char(40), N, "仅用于清除文本中的标识, 不出 DMZ").sens(Sensitivity::Identifier),
    ]
}

fn money(code: &str, zh: &str, req: Req, rule: &str) -> FieldDef {
    f(code, zh, Dec(10, 2), req, rule)
}

fn build(ty: RecordType) -> TypeDef {
    let mut v = common();
    match ty {
        RecordType::Outpatient => {
            v.push(jzlsh("就诊流水号"));
            v.extend(patient("就诊时间"));
            v.extend([
                f("JZLX", "就诊类型", Char(1), Y, "").codes(codes::JZLX),
                f("MZZYH", "门诊号/住院号", Char(50), Y, "直接标识符, 不出 DMZ").sens(Sensitivity::Identifier),
                f("JZSJ", "就诊/入院时间", DateTime, Y, "").alt(&["就诊时间", "入院时间"]),
                f("KSMC", "科室名称", Char(50), Y, ""),
                f("FBRQ", "发病日期", Date, N, "不晚于就诊时间"),
                f("ZGTW", "最高体温(℃)", Dec(4, 1), N, "34.0–43.0"),
            ]);
            for n in 1..=10 {
                let req = if n == 1 { Y } else { N };
                v.push(f(
                    &format!("ZDBM{n}"),
                    &format!("诊断编码{n}"),
                    Char(20),
                    req,
                    "ICD-10 国家临床版 2.0 (按形状检查: 字母+2位数字, 可跟 . 及至多 4 个字符); 1 为主要诊断",
                ));
                v.push(f(&format!("ZDMC{n}"), &format!("诊断名称{n}"), Char(100), req, "与诊断编码成对填写"));
            }
            v.extend([
                f("ZDYJ", "诊断依据", Char(1), Y, "").codes(codes::ZDYJ),
                f("LCFX", "临床分型", Char(1), Y, "").codes(codes::LCFX),
                f("GWYS", "高危因素", Char(50), N, "多个用 ; 分隔").codes(codes::GWYS),
                f("YMJZ", "本季流感疫苗接种", Char(1), N, "").codes(codes::YMJZ),
                f("KBD", "是否抗病毒治疗", Char(1), Y, "").codes(codes::YES_NO),
                f("KBDSJ", "抗病毒首剂时间", DateTime, C, "KBD = 1 时必填"),
                f("ICU", "入ICU", Char(1), N, "").codes(codes::YES_NO),
                f("JXTQ", "机械通气", Char(1), N, "").codes(codes::YES_NO),
                f("ECMO", "ECMO", Char(1), N, "").codes(codes::YES_NO),
                f("ZGZT", "当前转归", Char(1), Y, "").codes(codes::ZGZT),
                money("ZFY", "总费用(元)", Y, "≥ 0, 且不小于药费、检验费、抗病毒药费中的每一项").alt(&["总费用"]),
                money("YPF", "药费", N, "≥ 0"),
                money("JYF", "检验费", N, "≥ 0"),
                money("KBDF", "抗病毒药费", N, "≥ 0, 且不大于药费"),
            ]);
        }
        RecordType::Discharge => {
            v.push(jzlsh("就诊流水号(住院)"));
            v.extend(patient("入院时间"));
            v.extend([
                f("BAH", "病案号", Char(50), Y, "直接标识符, 不出 DMZ").sens(Sensitivity::Identifier),
                f("ZYCS", "住院次数", Int(4), Y, "≥ 1"),
                f("RYTJ", "入院途径", Char(1), Y, "HQMS RC026").codes(codes::RYTJ),
                f("RYSJ", "入院时间", DateTime, Y, ""),
                f("CYSJ", "出院时间", DateTime, Y, "不早于入院时间"),
                f("FBRQ", "发病日期", Date, N, "不晚于入院时间"),
                f("ZDYJ", "诊断依据", Char(1), N, "").codes(codes::ZDYJ),
                f("SJZYTS", "实际住院(天)", Int(4), Y, "入院日期到出院日期的天数, 当天出院计 1 天"),
                f("CYKB", "出院科别", Char(50), Y, ""),
                f("MZZD_JBBM", "门(急)诊诊断编码", Char(20), N, "ICD-10 形状"),
                f("MZZD", "门(急)诊诊断名称", Char(100), N, ""),
                f("ZYZD_JBDM", "主要诊断编码", Char(20), Y, "ICD-10 形状"),
                f("ZYZD", "主要诊断名称", Char(100), Y, ""),
                f("RYBQ", "主要诊断入院病情", Char(1), Y, "HQMS RC027").codes(codes::RYBQ),
            ]);
            for n in 1..=15 {
                v.push(f(&format!("QTZD_JBDM{n}"), &format!("其他诊断编码{n}"), Char(20), N, "ICD-10 形状"));
                v.push(f(&format!("QTZD{n}"), &format!("其他诊断名称{n}"), Char(100), N, "与编码成对填写"));
            }
            v.extend([
                f("LCFX", "最重临床分型", Char(1), Y, "").codes(codes::LCFX),
                f("ICUTS", "ICU天数", Int(4), N, "不大于实际住院天数"),
                f("JXTQSJ", "机械通气小时", Int(5), N, ""),
                f("ECMO", "ECMO", Char(1), N, "").codes(codes::YES_NO),
                f("KBD", "抗病毒治疗", Char(1), Y, "").codes(codes::YES_NO),
                f("KBDSJ", "抗病毒首剂时间", DateTime, C, "KBD = 1 时必填").alt(&["首剂时间"]),
                f("LYFS", "离院方式", Char(1), Y, "HQMS RC019").codes(codes::LYFS),
                money("ZFY", "总费用", Y, "> 0"),
                money("ZFJE", "自付金额", Y, "0 ≤ 自付金额 ≤ 总费用"),
                money("XYF", "西药费", N, "≥ 0"),
                money("KJYWF", "其中抗菌药物费", N, "≥ 0, 且不大于西药费"),
                money("HLF", "护理费", N, "≥ 0; 实际住院 > 1 天时如填写须 > 0"),
                money("YLFUF", "一般医疗服务费", N, "≥ 0; 实际住院 > 1 天时如填写须 > 0"),
            ]);
        }
        RecordType::Summary => {
            v.push(jzlsh("就诊流水号(住院)"));
            v.extend(scrub_only());
            v.extend([
                f("RYSJ", "入院时间", DateTime, Y, ""),
                f("CYSJ", "出院时间", DateTime, Y, "不早于入院时间"),
                f("RYQK", "入院情况", Text(2000), Y, "自由文本, 标识信息在 DMZ 清除"),
                f("RYZD", "入院诊断", Char(200), Y, "").sens(Sensitivity::FreeText),
                f("ZLGC", "诊疗经过", Text(4000), Y, "自由文本, 标识信息在 DMZ 清除"),
                f("CYZD", "出院诊断", Char(200), Y, "").sens(Sensitivity::FreeText),
                f("CYQK", "出院情况", Text(2000), Y, "自由文本, 标识信息在 DMZ 清除"),
                f("CYYZ", "出院医嘱", Text(2000), Y, "自由文本, 标识信息在 DMZ 清除"),
            ]);
        }
        RecordType::Death => {
            v.push(jzlsh("就诊流水号"));
            v.extend(scrub_only());
            v.extend([
                f("RYSJ", "入院时间", DateTime, C, "死亡地点不为 3 (急诊) 时必填"),
                f("SWSJ", "死亡时间", DateTime, Y, "不早于入院时间"),
                f("RYQK", "入院情况", Text(4000), Y, "自由文本, 标识信息在 DMZ 清除"),
                f("ZLGC", "诊疗经过", Text(4000), Y, "自由文本, 标识信息在 DMZ 清除"),
                f("ZJSY", "直接死亡原因", Char(100), Y, "").sens(Sensitivity::FreeText),
                f("ZJSY_JBDM", "直接死亡原因编码", Char(20), Y, "ICD-10 形状"),
                f("GBSY_JBDM", "根本死因编码", Char(20), Y, "ICD-10 形状"),
                f("LGSYXG", "流感与死亡关系", Char(1), Y, "").codes(codes::LGSYXG),
                f("SWDD", "死亡地点", Char(1), N, "").codes(codes::SWDD),
                f("GDRQ", "病历归档日期", Date, N, "全病历扫描件须在其后 7 天内上传"),
            ]);
        }
        RecordType::Medication => {
            v.push(jzlsh("就诊流水号"));
            v.extend([
                f("YZID", "医嘱/处方号", Char(50), Y, ""),
                f("YZLB", "医嘱类别", Char(1), Y, "").codes(codes::YZLB),
                f("YPBM", "药品编码", Char(30), N, "国家医保药品编码"),
                f("YPMC", "药品通用名", Char(100), Y, "抗流感药物按通用名包含关系归类"),
                f("YPGG", "规格", Char(50), N, ""),
                f("DCJL", "单次剂量", Dec(8, 3), Y, "> 0"),
                f("JLDW", "剂量单位", Char(10), Y, ""),
                f("PC", "频次", Char(20), Y, "如 bid, qd"),
                f("YYTJ", "给药途径", Char(20), Y, "口服, 吸入, 静脉滴注, …"),
                f("KSSJ", "开始时间", DateTime, Y, ""),
                f("TZSJ", "停止时间", DateTime, N, "不早于开始时间"),
                money("JE", "金额", N, "≥ 0"),
            ]);
        }
        RecordType::Lab => {
            v.push(jzlsh("就诊流水号"));
            v.extend([
                f("BGDH", "报告单号", Char(50), Y, ""),
                f("BBLB", "标本类别", Char(1), Y, "").codes(codes::BBLB),
                f("CYSJ", "采样时间", DateTime, Y, ""),
                f("BGSJ", "报告时间", DateTime, Y, "不早于采样时间"),
                f("JYXMMC", "检验项目名称", Char(100), Y, ""),
                f("JYFF", "检测方法", Char(1), Y, "").codes(codes::JYFF),
                f("DXJG", "定性结果", Char(1), Y, "").codes(codes::DXJG),
                f("BDLX", "型别", Char(1), C, "阳性或弱阳性时必填").codes(codes::BDLX),
                f("YX", "亚型/系", Char(2), N, "1x 仅与型别 1 或 3 同用, 2x 仅与型别 2 或 3 同用").codes(codes::YX),
                f("CT", "Ct值", Dec(4, 1), N, "0–50"),
            ]);
        }
        RecordType::Stock => {
            v.extend([
                f("TJRQ", "统计日期", Date, Y, ""),
                f("YPMC", "药品通用名", Char(100), Y, "须为抗流感药物"),
                f("YPGG", "规格", Char(50), Y, ""),
                f("KCL", "库存量(最小制剂单位)", Int(10), Y, "≥ 0; 同一统计日期、药品、规格只能有一条有效记录")
                    .alt(&["库存量"]),
                f("DRXHL", "当日消耗量", Int(10), Y, "≥ 0"),
            ]);
        }
        RecordType::Visits => {
            v.extend([
                f("TJRQ", "统计日期", Date, Y, "每院每日只能有一条有效记录"),
                f("MZRC", "门诊总诊疗人次", Int(8), Y, "≥ 0"),
                f("JZRC", "急诊总诊疗人次", Int(8), Y, "≥ 0"),
                f("ZYRS", "当日在院人数", Int(6), Y, "≥ 0"),
            ]);
        }
    }
    TypeDef::new(ty, v, ty == RecordType::Discharge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_headers_are_unique_per_type() {
        for ty in RecordType::ALL {
            let t = type_def(ty);
            assert_eq!(t.by_code.len(), t.fields.len(), "{ty}: duplicate code");
            assert_eq!(t.ty, ty);
        }
    }

    #[test]
    fn headers_resolve_by_code_and_chinese() {
        let t = type_def(RecordType::Outpatient);
        assert_eq!(t.resolve_header("zdbm3"), t.index("ZDBM3"));
        assert_eq!(t.resolve_header("最高体温（℃）"), t.index("ZGTW"));
        assert_eq!(t.resolve_header(" 诊断 名称1 "), t.index("ZDMC1"));
        assert_eq!(t.resolve_header("nonsense"), None);
        let d = type_def(RecordType::Discharge);
        assert_eq!(d.resolve_header("首剂时间"), d.index("KBDSJ"));
        assert_eq!(d.resolve_header("门（急）诊诊断编码"), d.index("MZZD_JBBM"));
        assert!(d.allows_extra);
        assert!(!t.allows_extra);
    }
}
