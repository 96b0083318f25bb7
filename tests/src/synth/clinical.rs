//! Clinical tables: diagnoses (ICD-10 国家临床版 2.0 shaped codes and names),
//! departments, drugs (anti-influenza and others, with 规格, dose, route,
//! price and 国家医保药品编码-like codes), influenza tests.

use super::epidemic::Virus;

/// A diagnosis: code and name.
pub type Dx = (&'static str, &'static str);

/// The main diagnosis of an influenza case.
pub fn flu_dx(virus: Option<Virus>, pneumonia: bool) -> Dx {
    match virus {
        Some(v) if v.is_novel() => match v {
            Virus::H7 => ("J09.x00", "人感染H7N9禽流感"),
            Virus::H9 => ("J09.x00", "人感染H9N2禽流感"),
            _ => ("J09.x00", "人感染H5N1禽流感"),
        },
        Some(v) if v.is_a() && pneumonia => ("J10.000", "甲型流行性感冒伴肺炎"),
        Some(v) if v.is_b() && pneumonia => ("J10.000", "乙型流行性感冒伴肺炎"),
        Some(Virus::H1N1) => ("J10.100", "甲型H1N1流感"),
        Some(v) if v.is_a() => ("J10.100", "甲型流行性感冒"),
        Some(v) if v.is_b() => ("J10.100", "乙型流行性感冒"),
        Some(_) if pneumonia => ("J10.000", "流行性感冒伴肺炎，流感病毒已标明"),
        Some(_) => ("J10.100", "流行性感冒，流感病毒已标明"),
        None if pneumonia => ("J11.000", "流行性感冒伴肺炎"),
        None => ("J11.100", "流行性感冒"),
    }
}

/// Main diagnoses that are in scope by name only (rule 2), not by code.
pub const NAME_ONLY_DX: &[Dx] =
    &[("J06.900", "急性上呼吸道感染（甲流）"), ("B34.900", "病毒感染（乙流）"), ("J06.900", "流感样病例")];

/// The main diagnosis of an encounter that is in scope only by a positive test (rule 3).
pub const NOT_FLU_DX: &[Dx] = &[("J06.900", "急性上呼吸道感染"), ("J02.900", "急性咽炎"), ("R50.900", "发热")];

/// Comorbidities with the high-risk factor (GWYS) they imply.
pub const COMORBIDITIES: &[(Dx, u8)] = &[
    (("J44.900", "慢性阻塞性肺疾病"), 3),
    (("J45.900", "支气管哮喘"), 3),
    (("I10.x00", "高血压"), 4),
    (("I25.100", "冠状动脉粥样硬化性心脏病"), 4),
    (("I50.900", "心力衰竭"), 4),
    (("N18.900", "慢性肾脏病"), 5),
    (("K74.600", "肝硬化"), 6),
    (("D64.900", "贫血"), 7),
    (("I63.900", "脑梗死"), 8),
    (("E11.900", "2型糖尿病"), 9),
    (("E66.900", "肥胖症"), 11),
];

/// Complications of severe cases.
pub const COMPLICATIONS: &[Dx] = &[
    ("J18.900", "肺炎"),
    ("J96.000", "急性呼吸衰竭"),
    ("J80.x00", "急性呼吸窘迫综合征"),
    ("A41.900", "脓毒症"),
    ("R57.200", "感染性休克"),
    ("I40.900", "急性心肌炎"),
    ("G04.900", "急性脑炎"),
    ("N17.900", "急性肾损伤"),
];

/// Symptoms and minor diagnoses that accompany mild cases.
pub const MINOR: &[Dx] =
    &[("R50.900", "发热"), ("J20.900", "急性支气管炎"), ("R05.x00", "咳嗽"), ("J02.900", "急性咽炎")];

/// A drug as hospitals order and stock it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Drug {
    /// 药品通用名 as the hospital writes it.
    pub ypmc: &'static str,
    pub ypgg: &'static str,
    /// 国家医保药品编码-like code.
    pub ypbm: &'static str,
    /// Adult single dose, in thousandths of `jldw`.
    pub dose_milli: i64,
    pub jldw: &'static str,
    pub pc: &'static str,
    pub yytj: &'static str,
    /// Days of a course (1 = a single dose).
    pub days: i64,
    /// Doses a day.
    pub per_day: i64,
    /// Price of one dose (fen).
    pub dose_price: i64,
    /// Smallest dosage units per dose (for stock consumption).
    pub units_per_dose: i64,
    pub antiviral: bool,
    pub antibacterial: bool,
    /// Only for children (paediatric forms).
    pub paediatric: bool,
}

#[allow(clippy::too_many_arguments)]
const fn drug(
    ypmc: &'static str,
    ypgg: &'static str,
    ypbm: &'static str,
    dose_milli: i64,
    jldw: &'static str,
    pc: &'static str,
    yytj: &'static str,
    days: i64,
    per_day: i64,
    dose_price: i64,
) -> Drug {
    Drug {
        ypmc,
        ypgg,
        ypbm,
        dose_milli,
        jldw,
        pc,
        yytj,
        days,
        per_day,
        dose_price,
        units_per_dose: 1,
        antiviral: false,
        antibacterial: false,
        paediatric: false,
    }
}

const fn av(mut d: Drug, units: i64) -> Drug {
    d.antiviral = true;
    d.units_per_dose = units;
    d
}

pub const OSELTAMIVIR: Drug =
    av(drug("磷酸奥司他韦胶囊", "75mg*10粒", "XJ05AHA056E001010104377", 75_000, "mg", "bid", "口服", 5, 2, 420), 1);
pub const OSELTAMIVIR_KIDS: Drug = Drug {
    paediatric: true,
    ..av(drug("磷酸奥司他韦颗粒", "15mg*10袋", "XJ05AHA056N001020104377", 30_000, "mg", "bid", "口服", 5, 2, 360), 2)
};
pub const BALOXAVIR: Drug =
    av(drug("玛巴洛沙韦片", "20mg*2片", "XJ05AXM306A001010178624", 40_000, "mg", "st", "口服", 1, 1, 22_200), 2);
pub const PERAMIVIR: Drug = av(
    drug("帕拉米韦氯化钠注射液", "100ml:0.3g", "XJ05AHP015B002010101566", 300_000, "mg", "qd", "静脉滴注", 3, 1, 9_800),
    1,
);
pub const ZANAMIVIR: Drug =
    av(drug("扎那米韦吸入粉雾剂", "5mg*20泡", "XJ05AHZ019L001010100123", 10_000, "mg", "bid", "吸入", 5, 2, 1_650), 2);
pub const ARBIDOL: Drug =
    av(drug("盐酸阿比多尔片", "0.1g*12片", "XJ05AXA080A001010101958", 200, "g", "tid", "口服", 5, 3, 260), 2);

/// The anti-influenza drugs hospitals stock (stock rows, one per drug and 规格).
pub const STOCKED: &[Drug] = &[OSELTAMIVIR, OSELTAMIVIR_KIDS, BALOXAVIR, PERAMIVIR, ZANAMIVIR, ARBIDOL];

/// Other drugs ordered for influenza patients.
pub const OTHERS: &[Drug] = &[
    drug("对乙酰氨基酚片", "0.5g*12片", "XN02BEA022A001010102346", 500, "g", "prn", "口服", 1, 1, 35),
    drug("布洛芬混悬液", "100ml:2g", "XM01AEB011X001010101521", 5_000, "ml", "tid", "口服", 3, 3, 120),
    drug("连花清瘟胶囊", "0.35g*24粒", "ZA01BAL0010010101234", 1_400, "g", "tid", "口服", 5, 3, 110),
    drug("复方甘草口服溶液", "100ml", "XR05DAF044X001010101744", 10_000, "ml", "tid", "口服", 5, 3, 40),
    drug("盐酸氨溴索口服溶液", "100ml:0.6g", "XR05CBA055X001010102235", 10_000, "ml", "bid", "口服", 5, 2, 90),
];

/// Drugs for inpatients (antibacterials, steroids, fluids).
pub const INPATIENT: &[Drug] = &[
    Drug {
        antibacterial: true,
        ..drug("注射用头孢曲松钠", "1g", "XJ01DDT040B001010101234", 2_000, "g", "qd", "静脉滴注", 5, 1, 1_800)
    },
    Drug {
        antibacterial: true,
        ..drug(
            "注射用哌拉西林钠他唑巴坦钠",
            "4.5g",
            "XJ01CRP007B001010104502",
            4_500,
            "g",
            "q8h",
            "静脉滴注",
            7,
            3,
            4_600,
        )
    },
    Drug {
        antibacterial: true,
        ..drug(
            "盐酸莫西沙星氯化钠注射液",
            "250ml:0.4g",
            "XJ01MAM139B002010102381",
            400,
            "g",
            "qd",
            "静脉滴注",
            5,
            1,
            5_200,
        )
    },
    drug("注射用甲泼尼龙琥珀酸钠", "40mg", "XH02ABJ105B001010102011", 40_000, "mg", "qd", "静脉滴注", 3, 1, 2_400),
    drug("吸入用布地奈德混悬液", "2ml:1mg", "XR03BAB041L001010100356", 1_000, "mg", "bid", "雾化吸入", 5, 2, 680),
    drug("0.9%氯化钠注射液", "250ml", "XB05BBL051B002010100287", 250_000, "ml", "qd", "静脉滴注", 5, 1, 320),
];

/// Departments (KSMC / CYKB).
pub const DEPT_OUTPATIENT: &[&str] = &["发热门诊", "呼吸内科门诊", "内科门诊", "全科医学科门诊"];
pub const DEPT_CHILD_OUTPATIENT: &[&str] = &["儿科门诊", "儿科发热门诊"];
pub const DEPT_EMERGENCY: &[&str] = &["急诊科", "急诊内科"];
pub const DEPT_CHILD_EMERGENCY: &[&str] = &["儿科急诊"];
pub const DEPT_WARD: &[&str] = &["呼吸与危重症医学科", "感染性疾病科", "老年医学科", "全科医学科", "心血管内科"];
pub const DEPT_CHILD_WARD: &[&str] = &["儿科", "儿童呼吸科"];
pub const DEPT_ICU: &str = "重症医学科";

/// An influenza test: (JYXMMC, JYFF, subtypes?, fee in fen).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Test {
    pub jyxmmc: &'static str,
    pub jyff: u8,
    /// Whether the method reports A subtypes / B lineages.
    pub subtypes: bool,
    pub fee: i64,
    /// Minutes from sampling to report (min, max).
    pub turnaround: (i64, i64),
}

pub const TESTS: &[(Test, f64)] = &[
    (
        Test {
            jyxmmc: "甲型/乙型流感病毒抗原检测", jyff: 1, subtypes: false, fee: 6_000, turnaround: (20, 90)
        },
        55.0,
    ),
    (
        Test {
            jyxmmc: "甲型/乙型流感病毒核酸检测", jyff: 2, subtypes: false, fee: 9_000, turnaround: (180, 1_440)
        },
        25.0,
    ),
    (
        Test {
            jyxmmc: "流感病毒核酸分型检测", jyff: 2, subtypes: true, fee: 16_000, turnaround: (300, 2_880)
        },
        16.0,
    ),
    (Test { jyxmmc: "流感病毒分离培养", jyff: 3, subtypes: true, fee: 20_000, turnaround: (2_880, 7_200) }, 1.0),
    (Test { jyxmmc: "流感病毒IgM抗体检测", jyff: 4, subtypes: false, fee: 5_000, turnaround: (120, 1_440) }, 2.0),
    (
        Test {
            jyxmmc: "呼吸道病原体多重核酸检测（含流感）",
            jyff: 2,
            subtypes: true,
            fee: 38_000,
            turnaround: (240, 2_880),
        },
        1.0,
    ),
];

/// Nucleic acid tests, for repeated testing.
pub const PCR_TESTS: &[Test] = &[
    Test {
        jyxmmc: "甲型/乙型流感病毒核酸检测", jyff: 2, subtypes: false, fee: 9_000, turnaround: (180, 1_440)
    },
    Test { jyxmmc: "流感病毒核酸分型检测", jyff: 2, subtypes: true, fee: 16_000, turnaround: (300, 2_880) },
];

#[cfg(test)]
mod tests {
    use super::*;
    use flumon_shared::model::antiviral_of;
    use flumon_shared::scope::{is_flu_code, is_flu_name};
    use flumon_shared::validate::ids::is_icd10_shape;

    #[test]
    fn tables_fit_the_interface() {
        for v in [None, Some(Virus::H1N1), Some(Virus::H7), Some(Virus::BVictoria), Some(Virus::Untyped)] {
            for p in [false, true] {
                let (c, n) = flu_dx(v, p);
                assert!(is_icd10_shape(c) && is_flu_code(c), "{c}");
                assert!(n.chars().count() <= 100);
            }
        }
        for (c, n) in NAME_ONLY_DX {
            assert!(is_icd10_shape(c) && !is_flu_code(c) && is_flu_name(n), "{n}");
        }
        for (c, n) in NOT_FLU_DX.iter().chain(COMPLICATIONS).chain(MINOR).chain(COMORBIDITIES.iter().map(|(d, _)| d)) {
            assert!(is_icd10_shape(c) && !is_flu_code(c) && !is_flu_name(n), "{c} {n}");
        }
        for d in STOCKED {
            assert!(d.antiviral && antiviral_of(d.ypmc).is_some(), "{}", d.ypmc);
            assert!(d.ypbm.len() <= 30);
        }
        for d in OTHERS.iter().chain(INPATIENT) {
            assert!(!d.antiviral && antiviral_of(d.ypmc).is_none(), "{}", d.ypmc);
        }
    }
}
