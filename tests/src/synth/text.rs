//! Free text of discharge summaries (§3.3) and death records (§3.4):
//! multi-sentence clinical Chinese built from the encounter's facts, with,
//! under `--plant-ids`, identifiers planted where real records have them (the
//! patient's own name, ID number and phone, other ID numbers and mobiles,
//! labelled values, relatives' names), each recorded as a [`PlantedId`].

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::Serialize;

use super::encounter::World;
use super::encounter::{Encounter, Kind, MedOrder};
use super::people::{citizen_id, mobile};
use super::rng::{self, R, between, chance};
use super::stay::{DeathInfo, Stay, Summary};

/// An identifier planted in free text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlantedId {
    /// The field it is in (RYQK, ZLGC, …).
    pub field: &'static str,
    /// own_name, own_id, own_phone, other_id, other_mobile, label_value, kin_name.
    pub kind: &'static str,
    /// Exactly as written in the text.
    pub value: String,
    /// Which clause of INTERFACE §5 should scrub it: `own` (1), `shape` (2),
    /// `label` (3), or `none` (a relative's name: no clause covers it).
    pub rule: &'static str,
}

fn md(t: NaiveDateTime) -> String {
    format!("{}月{}日", t.month(), t.day())
}

fn ymd(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

fn sex_word(enc: &Encounter) -> &'static str {
    match (enc.person.xb, enc.nl < 14) {
        (2, true) => "女童",
        (2, false) => "女",
        (_, true) => "男童",
        _ => "男",
    }
}

fn age_words(enc: &Encounter) -> String {
    match enc.months {
        Some(m) if m > 0 => format!("{m}月龄"),
        Some(_) => "新生儿".to_owned(),
        None => format!("{}岁", enc.nl),
    }
}

fn dose(o: &MedOrder) -> String {
    let d = o.dcjl;
    if d % 1000 == 0 { format!("{}{}", d / 1000, o.drug.jldw) } else { format!("{}{}", d as f64 / 1000.0, o.drug.jldw) }
}

fn complaint(r: &mut R, enc: &Encounter) -> String {
    let days = enc.fbrq.map_or(2, |f| (enc.jzsj.date() - f).num_days().max(1));
    let c = rng::pick(
        r,
        &["发热、咳嗽", "发热伴咽痛", "咳嗽、咳痰伴发热", "发热、肌肉酸痛", "高热伴寒战", "发热、乏力伴咳嗽"],
    );
    let extra = if enc.lcfx_final >= 3 {
        rng::pick(r, &["，气促1天", "，加重伴呼吸困难1天", "，胸闷气短半天"])
    } else {
        ""
    };
    let (open, close) = if chance(r, 0.2) { ("\"", "\"") } else { ("“", "”") };
    format!("{open}{c}{days}天{extra}{close}")
}

fn labs_sentence(enc: &Encounter) -> String {
    let mut parts = Vec::new();
    for l in &enc.labs {
        let res = match l.dxjg {
            1 | 3 => {
                let what = enc.virus.map_or("", |v| v.zh());
                let weak = if l.dxjg == 3 { "弱" } else { "" };
                if what.is_empty() { format!("{weak}阳性") } else { format!("{weak}阳性（{what}）") }
            }
            2 => "阴性".to_owned(),
            _ => "结果无效".to_owned(),
        };
        parts.push(format!("{}{}{}", md(l.cysj), l.jyxmmc, res));
    }
    if parts.is_empty() { "未行流感病原学检测".to_owned() } else { parts.join("，") }
}

fn drugs_sentence(enc: &Encounter, antiviral: bool) -> String {
    let v: Vec<String> = enc
        .meds
        .iter()
        .filter(|o| o.drug.antiviral == antiviral)
        .map(|o| format!("{} {} {} {}", o.drug.ypmc, dose(o), o.drug.pc, o.drug.yytj))
        .collect();
    v.join("、")
}

fn names(dx: &[(&str, &str)]) -> String {
    let v: Vec<String> = dx.iter().enumerate().map(|(i, d)| format!("{}.{}", i + 1, d.1)).collect();
    let s = v.join(" ");
    s.chars().take(200).collect()
}

/// Plants for one text: returns what to append and records it.
struct Planter<'a> {
    on: bool,
    /// Plant in every text, not in half of them (death records are few: their fields must not
    /// go without planted identifiers in a small run).
    always: bool,
    out: Vec<PlantedId>,
    enc: &'a Encounter,
    bah: Option<&'a str>,
}

impl Planter<'_> {
    fn plant(&mut self, r: &mut R, field: &'static str) -> String {
        // the same draws as before `always` (none when off), so the synthetic world does not change
        if !self.on || !(chance(r, 0.5) || self.always) {
            return String::new();
        }
        let p = &self.enc.person;
        let mut s = String::new();
        let n = between(r, 1, 2);
        for _ in 0..n {
            let kind = rng::pick(
                r,
                &["own_name", "own_id", "own_phone", "other_id", "other_mobile", "label_value", "kin_name"],
            );
            let (text, value, rule) = match kind {
                "own_name" => (format!("患者{}诉症状较前好转。", p.xm), p.xm.clone(), "own"),
                "own_id" => match &p.sfzh {
                    Some(id) => (format!("（证件号{id}）"), id.clone(), "own"),
                    None => continue,
                },
                "own_phone" => match &p.dh {
                    Some(dh) => (format!("联系电话：{dh}。"), dh.clone(), "own"),
                    None => continue,
                },
                "other_id" => {
                    let region = self.enc.person.xzz_xzqh;
                    let birth = NaiveDate::from_ymd_opt(1960 + i32::try_from(between(r, 0, 40)).unwrap_or(0), 3, 9)
                        .unwrap_or_default();
                    let id = citizen_id(region, birth, u32::try_from(between(r, 0, 99)).unwrap_or(0), 1);
                    (format!("陪护人{}，身份证{id}。", p.kin.relation), id, "shape")
                }
                "other_mobile" => {
                    let m = mobile(r);
                    let (a, b, c) = (m.get(..3).unwrap_or(""), m.get(3..7).unwrap_or(""), m.get(7..).unwrap_or(""));
                    let written = match between(r, 0, 2) {
                        0 => m.clone(),
                        1 => format!("{a} {b} {c}"),
                        _ => format!("+86-{a}-{b}-{c}"),
                    };
                    (format!("家属已告知，随访号码 {written} 。"), written, "shape")
                }
                "label_value" => match (between(r, 0, 2), self.bah) {
                    (0, Some(bah)) => (format!("病案号：{bah}，"), bah.to_owned(), "label"),
                    (1, _) => (format!("住址：{}；", p.xzz), p.xzz.clone(), "label"),
                    _ => (format!("住院号：{}，", self.enc.mzzyh), self.enc.mzzyh.clone(), "label"),
                },
                _ => (format!("由{}{}陪同。", p.kin.relation, p.kin.name), p.kin.name.clone(), "none"),
            };
            s.push_str(&text);
            self.out.push(PlantedId { field, kind, value, rule });
        }
        s
    }
}

fn join(paragraphs: &[String], newlines: bool) -> String {
    let v: Vec<&str> = paragraphs.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
    v.join(if newlines { "\n" } else { "" })
}

fn admission(r: &mut R, enc: &Encounter, rysj: Option<NaiveDateTime>) -> String {
    let t = enc.zgtw.map_or(38.6, |x| f64::from(x) / 10.0);
    let when = rysj.map_or_else(|| format!("于{}来我院急诊", md(enc.jzsj)), |t| format!("于{}入院", ymd(t.date())));
    let history = rng::pick(
        r,
        &[
            "起病前有流感样病例接触史",
            "家中有类似症状者",
            "自服退热药物后体温可暂时下降，但反复升高",
            "外院予对症治疗效果欠佳",
            "病程中无咯血、无胸痛",
        ],
    );
    let exam = if enc.lcfx_final >= 3 {
        "神志清，精神差，呼吸急促，口唇轻度发绀，双肺呼吸音粗，可闻及湿啰音"
    } else {
        rng::pick(
            r,
            &[
                "神志清，精神可，咽部充血，双肺呼吸音粗，未闻及明显干湿啰音",
                "神志清，精神欠佳，咽部充血，双侧扁桃体I度肿大，双肺呼吸音清",
            ],
        )
    };
    format!(
        "{}，{}，因{}{}。{}。查体：T {:.1}℃，P {}次/分，R {}次/分，BP {}/{}mmHg，{}。",
        sex_word(enc),
        age_words(enc),
        complaint(r, enc),
        when,
        history,
        t,
        between(r, 80, 125),
        between(r, 18, 32),
        between(r, 95, 150),
        between(r, 55, 95),
        exam
    )
}

fn course(r: &mut R, enc: &Encounter, stay_days: i64) -> String {
    let wbc = f64::from(u32::try_from(between(r, 25, 140)).unwrap_or(60)) / 10.0;
    let mut s = format!(
        "入院后完善相关检查，血常规：WBC {wbc}×10^9/L, LY {}%，C反应蛋白 {}mg/L；{}。{}。",
        between(r, 8, 40),
        between(r, 2, 90),
        labs_sentence(enc),
        rng::pick(
            r,
            &["胸部CT示双肺多发斑片状磨玻璃影", "胸部CT示右下肺少许渗出", "胸片未见明显异常", "胸部CT示双肺纹理增多"]
        )
    );
    let av = drugs_sentence(enc, true);
    if av.is_empty() {
        s.push_str("未予抗病毒治疗，");
    } else {
        s.push_str(&format!("予{av}抗病毒治疗，"));
    }
    let other = drugs_sentence(enc, false);
    if !other.is_empty() {
        s.push_str(&format!("{other}，"));
    }
    s.push_str("并予退热、补液、止咳化痰等对症支持治疗。");
    if enc.flags.0 == 1 {
        s.push_str(&format!(
            "入院第{}天病情加重，出现呼吸困难，指脉氧饱和度降至{}%，转入重症医学科，予{}。",
            between(r, 1, 3),
            between(r, 78, 90),
            if enc.flags.2 == 1 {
                "气管插管机械通气及体外膜肺氧合（ECMO）支持"
            } else if enc.flags.1 == 1 {
                "气管插管呼吸机辅助通气"
            } else {
                "经鼻高流量氧疗"
            }
        ));
    }
    s.push_str(&format!("住院{stay_days}天。"));
    s
}

/// The texts of the summary of `stay`, and what was planted in them.
pub fn summary(w: &World<'_>, r: &mut R, enc: &Encounter, stay: &Stay) -> (Summary, Vec<PlantedId>) {
    let nl = w.hospital.style.text_newlines;
    let mut p = Planter { on: w.plant_ids, always: false, out: Vec::new(), enc, bah: Some(&stay.bah) };
    let ryqk = join(&[admission(r, enc, Some(stay.rysj)), p.plant(r, "RYQK")], nl);
    let zlgc = join(
        &[
            course(r, enc, stay.sjzyts),
            format!(
                "经治疗后患者体温于入院第{}天恢复正常，咳嗽、咳痰逐渐减轻，{}。",
                between(r, 2, 4),
                rng::pick(r, &["复查胸部CT示病灶较前吸收", "复查血常规基本正常", "一般情况良好"])
            ),
            p.plant(r, "ZLGC"),
        ],
        nl,
    );
    let ryzd = names(&enc.dx);
    let mut cyzd_dx = vec![stay.zyzd];
    cyzd_dx.extend(stay.qtzd.iter().copied());
    let cyzd = names(&cyzd_dx);
    let cyqk = join(
        &[
            format!(
                "{}出院。患者无发热{}天，偶有咳嗽，无气促，精神、饮食、睡眠可。查体：双肺呼吸音清，未闻及干湿啰音。",
                md(stay.cysj),
                between(r, 2, 5)
            ),
            p.plant(r, "CYQK"),
        ],
        nl,
    );
    let base = format!(
        "1.注意休息，多饮水，清淡饮食；2.居家休息至退热后48小时，外出佩戴口罩；3.{}；4.不适随诊，{}周后{}门诊复诊。",
        if enc.meds.iter().any(|o| o.drug.antiviral && o.drug.days > 1) {
            "抗病毒药物按疗程服完"
        } else {
            "按医嘱服药"
        },
        between(r, 1, 2),
        if enc.nl < 14 { "儿科" } else { "呼吸内科" }
    );
    let cyyz = join(&[base.clone(), p.plant(r, "CYYZ")], nl);
    let cyyz_amended = format!("{cyyz}5.出院带药已核对。");
    let s = Summary { ryqk, ryzd, zlgc, cyzd, cyqk, cyyz, cyyz_amended };
    (s, p.out)
}

/// RYQK and ZLGC of a death record, and what was planted in them.
pub fn death(w: &World<'_>, r: &mut R, enc: &Encounter, d: &DeathInfo) -> (String, String, Vec<PlantedId>) {
    let nl = w.hospital.style.text_newlines;
    let bah = enc.stay.as_ref().map(|s| s.bah.as_str());
    let mut p = Planter { on: w.plant_ids, always: true, out: Vec::new(), enc, bah };
    let ryqk = join(&[admission(r, enc, d.rysj), p.plant(r, "RYQK")], nl);
    let days = d.rysj.map_or(0, |t| (d.swsj.date() - t.date()).num_days().max(1));
    let before = if enc.kind == Kind::Emergency {
        format!(
            "急诊予{}，并予吸氧、补液等治疗。",
            if drugs_sentence(enc, true).is_empty() { "抗病毒".to_owned() } else { drugs_sentence(enc, true) }
        )
    } else {
        course(r, enc, days)
    };
    let end = format!(
        "患者病情进行性加重，{}{}时{}分出现心率、血压进行性下降，经积极抢救无效，于{}时{}分宣告临床死亡。死亡原因：{}。",
        md(d.swsj),
        d.swsj.format("%H"),
        d.swsj.format("%M"),
        d.swsj.format("%H"),
        d.swsj.format("%M"),
        d.zjsy.1
    );
    let zlgc = join(&[before, end, p.plant(r, "ZLGC")], nl);
    (ryqk, zlgc, p.out)
}
