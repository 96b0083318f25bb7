//! Measurement of the scrubber on synthetic clinical text (docs/SCRUBBING.md).
//!
//! A seeded generator writes 出院小结-like sentences: clean ones (temperatures,
//! dates, doses, lab values, ICD codes, 患者 and kinship words used as plain
//! words) and ones with planted identifiers (own values, ID-card and mobile
//! shapes in every written form, labelled values, kin names, and forms the rule
//! does not cover). Each sentence is scrubbed on its own with its record's own
//! values, then:
//!
//! * recall = planted identifiers whose text no longer occurs / planted;
//! * false scrubs = clean tokens not found, in order, in the output / clean tokens.
//!
//! `cargo test -p flumon-shared --lib desens::measure -- --nocapture` prints the
//! figures; add `--release` for meaningful throughput.

use std::collections::BTreeMap;
use std::time::Instant;

use super::scan::scan;
use super::scrub::{OwnIds, ScrubOptions, scrub_with};
use crate::validate::ids::id_check_char;

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1e6 < p
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// Surnames by frequency band: the top 30, the rest of the top 100, and
/// surnames outside the scrubber's list.
const SURNAMES_TOP: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
];
const SURNAMES_MID: &[&str] = &[
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任",
    "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "方", "白", "欧阳",
];
const SURNAMES_RARE: &[&str] = &["聂", "庞", "倪", "庄", "翟", "殷", "詹", "申", "耿", "焦", "柯", "阮"];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀", "英",
    "霞", "平", "刚", "桂", "华", "玉", "兰", "萍", "红", "鹏", "辉", "飞", "宇", "浩", "凯", "俊", "帆", "旭", "宁",
    "龙", "林", "欢", "佳", "雪", "婷", "晨", "梅", "琳", "丹", "颖", "文", "斌", "波", "亮", "建", "国", "志", "海",
    "子", "涵", "轩", "怡", "欣", "思", "雨", "嘉", "梓", "博", "一", "诺",
];
const AREAS: &[&str] = &["110105", "310104", "440106", "330106", "510107", "420111", "320102", "370102"];
const PLACES: &[&str] =
    &["浙江省杭州市西湖区", "北京市朝阳区", "广东省广州市天河区", "四川省成都市武侯区", "湖北省武汉市洪山区"];
const ROADS: &[&str] = &["文三路", "建国路", "天河北路", "人民南路", "珞喻路"];

fn name(r: &mut Rng) -> String {
    let band = r.below(100);
    let surname = if band < 80 {
        r.pick(SURNAMES_TOP)
    } else if band < 95 {
        r.pick(SURNAMES_MID)
    } else {
        r.pick(SURNAMES_RARE)
    };
    let mut n = surname.to_string();
    for _ in 0..(1 + r.below(2)) {
        n.push_str(r.pick(GIVEN));
    }
    n
}

fn date(r: &mut Rng) -> String {
    format!("2026-{:02}-{:02}", r.range(1, 12), r.range(1, 28))
}

fn id18(r: &mut Rng) -> String {
    let body =
        format!("{}{}{:02}{:02}{}", r.pick(AREAS), r.range(1930, 2025), r.range(1, 12), r.range(1, 28), r.digits(3));
    let check = id_check_char(&body).unwrap();
    format!("{body}{check}")
}

fn id15(r: &mut Rng) -> String {
    format!("{}{}{:02}{:02}{}", r.pick(AREAS), r.range(30, 99), r.range(1, 12), r.range(1, 28), r.digits(3))
}

fn full_width(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_graphic() { char::from_u32(c as u32 + 0xFEE0).unwrap() } else { c }).collect()
}

fn mobile(r: &mut Rng) -> String {
    format!("1{}{}", r.pick(&["3", "5", "7", "8", "9"]), r.digits(9))
}

/// A mobile in one of its written forms.
fn mobile_written(r: &mut Rng) -> String {
    let m = mobile(r);
    let (a, b, c) = (&m[..3], &m[3..7], &m[7..]);
    match r.below(8) {
        0 => m.clone(),
        1 => format!("{a} {b} {c}"),
        2 => format!("{a}-{b}-{c}"),
        3 => format!("+86 {m}"),
        4 => format!("+86{m}"),
        5 => format!("+86-{a}-{b}-{c}"),
        6 => full_width(&m),
        _ => format!("{a}－{b}－{c}"),
    }
}

fn address(r: &mut Rng) -> String {
    format!("{}{}{}号{}幢{}室", r.pick(PLACES), r.pick(ROADS), r.range(1, 999), r.range(1, 30), r.range(101, 2808))
}

fn landline(r: &mut Rng) -> String {
    format!("{}-{}", r.pick(&["0571", "010", "020", "028"]), r.digits(8))
}

/// A piece of a sentence.
enum Seg {
    /// Clean text that must survive (counted per token).
    Clean(String),
    /// Labels, punctuation: not counted.
    Glue(String),
    /// A planted identifier: its category and the strings that must be gone.
    Planted(&'static str, Vec<String>),
}

struct Own {
    xm: String,
    bah: String,
    sfzh: String,
    dh: String,
}

struct Sentence {
    group: &'static str,
    segs: Vec<Seg>,
}

impl Sentence {
    fn text(&self) -> String {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Clean(t) => t.as_str(),
                Seg::Glue(t) => t.as_str(),
                Seg::Planted(_, v) => v[0].as_str(),
            })
            .collect()
    }
}

/// A clean template: `|` separates tokens, `{x}` is a random value.
const CLEAN: &[(&str, &str)] = &[
    ("患者/患儿 as a word", "患者|于|{date}|出现|发热|，|体温最高|{temp}|，|伴|咳嗽|、|咳痰|。"),
    ("患者/患儿 as a word", "患儿|{age}|岁|，|因|发热|{days}|天|入院|。"),
    ("患者/患儿 as a word", "患者|神志清|，|精神可|，|体温|{temp}|。"),
    ("患者/患儿 as a word", "患者|家属|诉|患者|昨日|起|咳嗽|加重|。"),
    ("电话 as a word", "出院后|电话|随访|，|{date}|门诊|复查|。"),
    ("kinship words", "其母|有|高血压|病史|，|其父|体健|。"),
    ("kinship words", "家属|签字|同意|，|女儿|陪同|就诊|。"),
    ("kinship words", "丈夫|吸烟史|20年|，|妻子|体健|。"),
    ("kinship words", "其父|于|{year}|年|因|心梗|去世|，|母亲|高血压|病史|。"),
    ("kinship words", "家属|要求|出院|，|已|告知|风险|，|其子|同意|。"),
    ("kinship words", "家属|陆续|到院|探视|，|父亲|曾|患|肺结核|。"),
    ("kinship words", "家属|严格|遵守|探视|制度|，|其女|方便|时|复诊|。"),
    ("kinship words", "母亲|身体|健康|，|家属|任何|时候|可|咨询|。"),
    // written after the NOT_NAMES list, as held-out text
    ("kinship words", "其女|于|上午|来院|探视|。"),
    ("kinship words", "其父|白内障|术后|，|母亲|体健|。"),
    ("other", "入院查体|：|T| |{temp}|，|P| |{pulse}|次/分|，|R| |{resp}|次/分|，|BP| |{bp}|mmHg|。"),
    ("other", "血常规|：|白细胞| |{wbc}|×10^9/L|，|中性粒细胞百分比| |{pct}|%|，|淋巴细胞| |{lym}|×10^9/L|。"),
    ("other", "予|奥司他韦| |{dose}|mg| |口服| |bid|，|疗程|5天|。"),
    ("other", "出院诊断|：|流行性感冒|（|{icd}|）|，|社区获得性肺炎|（|J18.9|）|。"),
    ("other", "甲型流感病毒核酸检测|阳性|，|Ct值| |{ct}|。"),
    ("other", "胸部CT|示|双肺散在磨玻璃影|。"),
    ("other", "CRP| |{crp}|mg/L|，|PCT| |{pct2}|ng/ml|。"),
    ("other", "于|{datetime}|转入ICU|，|予|机械通气|。"),
    ("other", "出院医嘱|：|注意休息|，|{date}|门诊|复查|。"),
    ("other", "SpO2| |{spo2}|%|，|氧合指数| |{pf}|mmHg|。"),
    ("other", "流感疫苗接种史|不详|。"),
    ("other", "住院|{days}|天|，|总费用|{fee}|元|。"),
    ("other", "标本条码| |{barcode}|，|送检|{date}|。"),
    ("other", "复查|血常规|：|WBC| |{wbc}|×10^9/L|，|PLT| |{plt}|×10^9/L|。"),
    ("other", "既往|体健|，|否认|高血压|、|糖尿病|病史|。"),
    ("other", "出院时间|：|{datetime}|，|共|{days}|天|。"),
];

fn slot(r: &mut Rng, name: &str) -> String {
    match name {
        "date" => date(r),
        "datetime" => format!("{} {:02}:{:02}", date(r), r.range(0, 23), r.range(0, 59)),
        "temp" => format!("{}.{}℃", r.range(36, 41), r.range(0, 9)),
        "age" => r.range(1, 14).to_string(),
        "days" => r.range(1, 14).to_string(),
        "year" => r.range(1990, 2025).to_string(),
        "pulse" => r.range(60, 130).to_string(),
        "resp" => r.range(12, 35).to_string(),
        "bp" => format!("{}/{}", r.range(90, 160), r.range(50, 100)),
        "wbc" | "lym" | "crp" | "pct2" => format!("{}.{}", r.range(0, 20), r.range(0, 9)),
        "pct" | "spo2" => r.range(60, 99).to_string(),
        "dose" => r.pick(&["30", "45", "75", "150"]).to_string(),
        "icd" => r.pick(&["J10.1", "J11.1", "J10.0", "J09.X01", "J11.101"]).to_string(),
        "ct" => format!("{}.{}", r.range(15, 38), r.range(0, 9)),
        "pf" => r.range(100, 450).to_string(),
        "fee" => format!("{}.{:02}", r.range(500, 99999), r.range(0, 99)),
        "barcode" => r.digits(12),
        "plt" => r.range(50, 400).to_string(),
        _ => unreachable!("{name}"),
    }
}

fn clean_sentence(r: &mut Rng) -> Sentence {
    let (group, template) = r.pick(CLEAN);
    let segs = template
        .split('|')
        .map(|tok| {
            if let Some(name) = tok.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Seg::Clean(slot(r, name))
            } else if tok.chars().all(|c| c.is_whitespace() || "，。；、：（）".contains(c)) {
                Seg::Glue(tok.to_string())
            } else {
                Seg::Clean(tok.to_string())
            }
        })
        .collect();
    Sentence { group, segs }
}

fn planted_sentence(r: &mut Rng, own: &Own) -> Sentence {
    use Seg::{Clean as C, Planted as P};
    let c = |s: &str| C(s.to_string());
    #[allow(non_snake_case)]
    let G = |s: &str| Seg::Glue(s.to_string());
    let one = |v: String| vec![v];
    let segs = match r.below(21) {
        0 => vec![P("own XM", one(own.xm.clone())), c("自诉"), c("3天前受凉后出现发热"), G("。")],
        1 => vec![c("本次病历号"), P("own BAH", one(own.bah.clone())), G("，"), c("请妥善保管"), G("。")],
        2 => vec![c("核对证件"), P("own SFZH", one(own.sfzh.to_lowercase())), c("无误"), G("。")],
        3 => vec![c("回访请拨"), P("own DH", one(own.dh.clone())), G("。")],
        4 => {
            let id = match r.below(4) {
                0 => id18(r),
                1 => id18(r).to_lowercase(),
                2 => id15(r),
                _ => full_width(&id18(r)),
            };
            vec![c("核对来访者证件"), P("ID-card shape", one(id)), G("。")]
        }
        5 => vec![c("如有不适可拨打"), P("mobile shape", one(mobile_written(r))), c("咨询"), G("。")],
        6 => vec![G("姓名："), P("label 姓名/患者/患儿", one(name(r))), G("，"), c("性别"), G("："), c("男"), G("。")],
        7 => vec![
            G("患者"),
            P("label 姓名/患者/患儿", one(name(r))),
            G(" "),
            c(&format!("{}岁", r.range(18, 90))),
            G("。"),
        ],
        8 => vec![G("患儿姓名："), P("label 姓名/患者/患儿", one(name(r))), G("。")],
        9 => {
            let v = if r.chance(0.5) { format!("E{}", r.digits(8)) } else { format!("H{}", r.digits(10)) };
            vec![G(r.pick(&["身份证号：", "证件号码：", "证件号 "])), P("label 证件号", one(v)), G("。")]
        }
        10 => {
            let v = if r.chance(0.5) { landline(r) } else { mobile_written(r) };
            vec![G(r.pick(&["联系电话：", "电话：", "手机："])), P("label 电话", one(v)), G("；")]
        }
        11 => {
            let v = match r.below(3) {
                0 => format!("ZY{}", r.digits(8)),
                1 => r.digits(7),
                _ => format!("MZ-{}", r.digits(6)),
            };
            vec![G(r.pick(&["住院号：", "病案号：", "门诊号：", "急诊号 "])), P("label 病案号", one(v)), G("。")]
        }
        12 => vec![G(r.pick(&["住址：", "地址：", "现住址 "])), P("label 地址", one(address(r))), G("。")],
        13 => vec![c("其子"), P("kin name", one(name(r))), c("陪同就诊"), G("。")],
        14 => vec![c("家属"), G("："), P("kin name", one(name(r))), G("（"), c("女儿"), G("）"), G("。")],
        15 => vec![c("联系人"), P("kin name", one(name(r))), G("，"), c("已告知病情"), G("。")],
        16 => vec![c("妻子"), P("kin name", one(name(r))), c("签字同意"), G("。")],
        17 => vec![c("曾与同事"), P("not covered: bare name", one(name(r))), c("密切接触"), G("。")],
        18 => vec![c("家住"), P("not covered: unlabelled address", one(address(r))), G("。")],
        19 => vec![c("可拨打"), P("not covered: unlabelled landline", one(landline(r))), c("联系"), G("。")],
        _ => {
            let (p, rest) = (r.pick(PLACES).to_string(), format!("{}{}号", r.pick(ROADS), r.range(1, 999)));
            let shown = format!("{p}，{rest}");
            vec![G("住址："), P("not covered: address past a comma", vec![shown, rest]), G("。")]
        }
    };
    Sentence { group: "planted", segs }
}

#[derive(Default)]
struct Tally {
    planted: BTreeMap<&'static str, (usize, usize)>,
    clean: BTreeMap<&'static str, (usize, usize)>,
}

fn measure(records: &[(Own, Vec<Sentence>)], opts: &ScrubOptions) -> Tally {
    let mut t = Tally::default();
    for (own, sentences) in records {
        let ids = OwnIds { xm: &own.xm, bah: &own.bah, sfzh: &own.sfzh, dh: &own.dh };
        for s in sentences {
            let out = scrub_with(&s.text(), &ids, opts).text;
            assert!(scan(&out).is_empty(), "{out}");
            let mut pos = 0;
            for seg in &s.segs {
                match seg {
                    Seg::Planted(cat, checks) => {
                        let e = t.planted.entry(cat).or_default();
                        e.0 += 1;
                        e.1 += usize::from(checks.iter().all(|c| !out.contains(c.as_str())));
                    }
                    Seg::Clean(tok) => {
                        let e = t.clean.entry(s.group).or_default();
                        e.0 += 1;
                        match out[pos..].find(tok.as_str()) {
                            Some(i) => pos += i + tok.len(),
                            None => e.1 += 1,
                        }
                    }
                    Seg::Glue(_) => {}
                }
            }
        }
    }
    t
}

fn corpus(seed: u64, n: usize) -> Vec<(Own, Vec<Sentence>)> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let own = Own {
                xm: name(&mut r),
                bah: format!("{}", r.range(100_000, 9_999_999)),
                sfzh: id18(&mut r),
                dh: mobile(&mut r),
            };
            let sentences = (0..30)
                .map(|_| if r.chance(0.35) { planted_sentence(&mut r, &own) } else { clean_sentence(&mut r) })
                .collect();
            (own, sentences)
        })
        .collect()
}

fn pct(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

#[test]
fn recall_and_false_scrubs() {
    let records = corpus(20_261_120, 2_000);
    let rule = measure(&records, &ScrubOptions { kin_names: false });
    let kin = measure(&records, &ScrubOptions { kin_names: true });

    println!("\nrecall: planted identifiers removed (2,000 records × 30 sentences)");
    println!("{:<40} {:>7} {:>12} {:>12}", "category", "planted", "spec rule", "+ kin names");
    for (cat, (n, gone)) in &rule.planted {
        let gone_kin = kin.planted[cat].1;
        println!("{cat:<40} {n:>7} {:>11.2}% {:>11.2}%", pct(*gone, *n), pct(gone_kin, *n));
    }
    println!("\nfalse scrubs: clean tokens altered");
    println!("{:<40} {:>7} {:>12} {:>12}", "sentence group", "tokens", "spec rule", "+ kin names");
    let (mut all, mut all_rule, mut all_kin) = (0, 0, 0);
    for (group, (n, bad)) in &rule.clean {
        let bad_kin = kin.clean[group].1;
        println!("{group:<40} {n:>7} {:>11.2}% {:>11.2}%", pct(*bad, *n), pct(bad_kin, *n));
        all += n;
        all_rule += bad;
        all_kin += bad_kin;
    }
    println!("{:<40} {all:>7} {:>11.2}% {:>11.2}%", "all", pct(all_rule, all), pct(all_kin, all));

    // the shapes and labels the spec covers: every one removed, with or without kin names
    for t in [&rule, &kin] {
        for (cat, (n, gone)) in &t.planted {
            if !cat.starts_with("not covered") && !cat.starts_with("kin") {
                assert_eq!(gone, n, "{cat}");
            }
        }
    }
    let (n, gone) = kin.planted["kin name"];
    assert!(pct(gone, n) >= 90.0, "kin recall {}", pct(gone, n));
    let (n, bad) = kin.clean["other"];
    assert!(pct(bad, n) < 0.5, "false scrubs in plain clinical text {}", pct(bad, n));
    let (n, bad) = kin.clean["kinship words"];
    // the held-out templates (其女于上午, 其父白内障) are false scrubs: about 2.8 %
    assert!(pct(bad, n) < 5.0, "kin false scrubs {}", pct(bad, n));

    // throughput on ~4 kB documents (meaningful only with --release)
    let docs: Vec<(String, &Own)> = records
        .chunks(3)
        .take(500)
        .map(|rs| {
            let text: Vec<String> = rs.iter().flat_map(|(_, ss)| ss.iter().map(Sentence::text)).collect();
            (text.join("\n"), &rs[0].0)
        })
        .collect();
    let bytes: usize = docs.iter().map(|d| d.0.len()).sum();
    let start = Instant::now();
    for (doc, own) in &docs {
        let ids = OwnIds { xm: &own.xm, bah: &own.bah, sfzh: &own.sfzh, dh: &own.dh };
        std::hint::black_box(scrub_with(doc, &ids, &ScrubOptions::default()));
    }
    let t = start.elapsed().as_secs_f64();
    {
        use super::kin::KinNames;
        use super::rules::{Labels, Shapes};
        let time = |name: &str, f: &dyn Fn(&str) -> usize| {
            let mut best = f64::MAX;
            let mut n = 0;
            for _ in 0..7 {
                let st = Instant::now();
                n = 0;
                for (doc, _) in &docs {
                    n += f(doc);
                }
                best = best.min(st.elapsed().as_secs_f64());
            }
            println!("  {name}: {:.1} µs/doc ({n})", best * 1e6 / docs.len() as f64);
        };
        time("own", &|d| {
            let mut v = Vec::new();
            super::scrub::own_spans_for_bench(
                d,
                &OwnIds { xm: "王伟", bah: "1234567", sfzh: "11010519491231002X", dh: "13812345678" },
                &mut v,
            );
            v.len()
        });
        time("scrub-nokin", &|d| {
            scrub_with(
                d,
                &OwnIds { xm: "王伟", bah: "1234567", sfzh: "11010519491231002X", dh: "13812345678" },
                &ScrubOptions { kin_names: false },
            )
            .hits
            .len()
        });
        time("scrub", &|d| {
            scrub_with(
                d,
                &OwnIds { xm: "王伟", bah: "1234567", sfzh: "11010519491231002X", dh: "13812345678" },
                &ScrubOptions { kin_names: true },
            )
            .hits
            .len()
        });
        time("shapes", &|d| Shapes::new(d).count());
        time("labels", &|d| Labels::new(d).count());
        time("kin", &|d| KinNames::new(d).count());
        time("for scale: chars().count()", &|d| d.chars().count());
    }
    let start = Instant::now();
    for (doc, _) in &docs {
        std::hint::black_box(scan(doc));
    }
    let ts = start.elapsed().as_secs_f64();
    println!(
        "\nthroughput ({} build): {} docs of {:.1} kB avg; scrub {:.1} µs/doc ({:.0} MB/s); scan {:.1} µs/doc",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        docs.len(),
        bytes as f64 / docs.len() as f64 / 1000.0,
        t * 1e6 / docs.len() as f64,
        bytes as f64 / t / 1e6,
        ts * 1e6 / docs.len() as f64
    );
}
