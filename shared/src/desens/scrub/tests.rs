//! Tests of the scrubber: the spec's clauses one by one, and properties
//! (never panics, own values always gone, the receiver's scan finds nothing).

use proptest::prelude::*;

use super::*;
use crate::desens::scan::scan;

const NO_KIN: ScrubOptions = ScrubOptions { kin_names: false };

fn s(text: &str) -> String {
    scrub(text, &OwnIds::default()).text
}

fn own() -> OwnIds<'static> {
    OwnIds { xm: "张三丰", bah: "ZY2026-0042", sfzh: "11010519491231002X", dh: "010-62345678" }
}

#[test]
fn clause_1_own_values() {
    let r = scrub("张三丰自诉发热，病案zy2026-0042，证号11010519491231002x；座机010-62345678。", &own());
    assert_eq!(r.text, "［姓名］自诉发热，病案［病案号］，证号［证件号］；座机［电话］。");
    assert!(r.hits.iter().all(|h| h.clause == Clause::Own));
    assert_eq!(r.hits.len(), 4);
    // the 15-digit form of the own SFZH, inside a longer digit run (only clause 1 can see it)
    let r = scrub("旧证号1101054912310029", &own());
    assert_eq!(r.text, "旧证号［证件号］9");
    // full-width own values
    let r = scrub("ＺＹ２０２６－００４２", &own());
    assert_eq!(r.text, "［病案号］");
    // values shorter than 2 characters are not searched
    let r = scrub("王说了三次", &OwnIds { xm: "王", bah: "3", ..OwnIds::default() });
    assert_eq!(r.text, "王说了三次");
    // overlapping own values: one marker over their union, kind of the longest
    let r = scrub("AB12345", &OwnIds { xm: "AB1", bah: "12345", ..OwnIds::default() });
    assert_eq!(r.text, "［病案号］");
}

#[test]
fn clause_2_shapes() {
    assert_eq!(s("证11010519491231002x号"), "证［证件号］号");
    assert_eq!(s("老证110105491231002。"), "老证［证件号］。");
    assert_eq!(s("码1101051949123100212"), "码1101051949123100212");
    assert_eq!(s("拨 +86 138-1234-5678 或 139 8765 4321"), "拨 ［电话］ 或 ［电话］");
    assert_eq!(s("拨１３８１２３４５６７８"), "拨［电话］");
    assert_eq!(
        s("T 38.5℃，WBC 5.2×10^9/L，2026-11-20，J10.1，ZFY 12345.67元"),
        "T 38.5℃，WBC 5.2×10^9/L，2026-11-20，J10.1，ZFY 12345.67元"
    );
    let r = scrub("13812345678", &OwnIds::default());
    assert_eq!(r.hits, vec![Hit { kind: IdKind::Phone, clause: Clause::Shape }]);
}

#[test]
fn clause_3_labels() {
    assert_eq!(s("姓名：李四，男"), "姓名：［姓名］，男");
    assert_eq!(s("患者姓名: 欧阳·娜娜 住址 北京市朝阳区建国路8号-3。"), "患者姓名: ［姓名］ 住址 ［地址］。");
    assert_eq!(s("住院号ZY001(二次)"), "住院号［病案号］(二次)");
    assert_eq!(s("身份证号码：E1234567"), "身份证号码：［证件号］");
    assert_eq!(s("联系电话：0571-88886666；"), "联系电话：［电话］；");
    assert_eq!(s("急诊号 A-12\n门诊号：\n病案号"), "急诊号 ［病案号］\n门诊号：\n病案号");
    // empty values replace nothing
    assert_eq!(s("姓名：，电话 。地址"), "姓名：，电话 。地址");
    // a marker put there by (1) or (2) is not replaced again…
    let r = scrub("手机：13812345678", &OwnIds::default());
    assert_eq!(r.text, "手机：［电话］");
    assert_eq!(r.hits.len(), 1);
    // …but what follows it is part of the value
    assert_eq!(s("电话：13812345678转8001"), "电话：［电话］");
    // the literal rule on 患者 as a plain word (docs/SCRUBBING.md: false scrubs)
    assert_eq!(s("患者于3天前发热，患儿 咳嗽"), "患者［姓名］，患儿 ［姓名］");
    assert_eq!(s("患者，男，45岁"), "患者，男，45岁");
}

#[test]
fn kin_names_switch() {
    let t = "其子张伟陪同，家属：李娜，其母有高血压病史。";
    assert_eq!(scrub(t, &OwnIds::default()).text, "其子［姓名］陪同，家属：［姓名］，其母有高血压病史。");
    assert_eq!(scrub_with(t, &OwnIds::default(), &NO_KIN).text, t);
    let r = scrub("其妻王芳", &OwnIds::default());
    assert_eq!(r.hits, vec![Hit { kind: IdKind::Name, clause: Clause::Kin }]);
}

#[test]
fn order_and_hits() {
    let r = scrub("患者张三丰，身份证：11010519491231002X，电话 138 1234 5678，住址：杭州，其女张敏", &own());
    assert_eq!(r.text, "患者［姓名］，身份证：［证件号］，电话 ［电话］，住址：［地址］，其女［姓名］");
    let clauses: Vec<Clause> = r.hits.iter().map(|h| h.clause).collect();
    assert_eq!(clauses, [Clause::Own, Clause::Own, Clause::Shape, Clause::Label, Clause::Kin]);
    assert!(scan(&r.text).is_empty());
}

#[test]
fn debug_hides_own_values() {
    assert_eq!(format!("{:?}", own()), "OwnIds([redacted])");
}

/// Fragments that provoke the rules: labels, kin words, surnames, digits of
/// both widths, separators, colons, delimiters, markers and half markers.
const FRAGMENTS: &[&str] = &[
    "姓名",
    "患者",
    "患儿",
    "身份证",
    "号码",
    "证件号",
    "电话",
    "手机",
    "联系电话",
    "住院号",
    "病案号",
    "门诊号",
    "急诊号",
    "住址",
    "地址",
    "号",
    "码",
    "家属",
    "其子",
    "其妻",
    "妻子",
    "联系人",
    "陪护",
    "王",
    "欧阳",
    "张",
    "于",
    "高",
    "伟",
    "芳",
    "血压",
    "发热",
    "今日",
    "·",
    "1",
    "3",
    "8",
    "86",
    "138",
    "1234",
    "5678",
    "13812345678",
    "11010519491231002",
    "110105491231002",
    "X",
    "x",
    "Ｘ",
    "１",
    "３",
    "８",
    " ",
    "-",
    "－",
    "\u{3000}",
    "\t",
    "+",
    "＋",
    ":",
    "：",
    "，",
    "。",
    "(",
    "）",
    "；",
    "\n",
    "［姓名］",
    "［电话］",
    "［地址］",
    "［",
    "］",
    "名］",
    "38.5℃",
];

fn fragment_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..48).prop_map(|v| v.concat())
}

/// Own values: made of the fragments too (so they overlap rules and each other),
/// or realistic.
fn own_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(FRAGMENTS), 1..4).prop_map(|v| v.concat()),
        "[\\u4e00-\\u9fa5]{2,4}",
        "[0-9A-Za-z]{2,12}",
        Just(String::new()),
    ]
}

fn folded(s: &str) -> String {
    s.chars().map(fold).collect()
}

/// An own value that can be asked to be absent: at least 2 characters after
/// trimming, and not text that every marker brings with it.
fn checkable(v: &str) -> bool {
    let v = v.trim();
    let fv = folded(v);
    v.chars().count() >= 2
        && !v.contains(['［', '］'])
        && !["姓名", "证件号", "电话", "病案号", "地址"].iter().any(|m| folded(m).contains(&fv))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_any_string(text in any::<String>(), xm in any::<String>(), sfzh in "\\PC{0,20}") {
        let ids = OwnIds { xm: &xm, bah: &text, sfzh: &sfzh, dh: "" };
        let _ = scrub(&text, &ids);
        let _ = scan(&text);
    }

    #[test]
    fn scan_finds_nothing_after_scrub(text in fragment_text(), kin in any::<bool>(),
                                      xm in own_value(), bah in own_value(), dh in own_value()) {
        let ids = OwnIds { xm: &xm, bah: &bah, sfzh: "", dh: &dh };
        let out = scrub_with(&text, &ids, &ScrubOptions { kin_names: kin }).text;
        prop_assert!(scan(&out).is_empty(), "{:?} -> {:?}: {:?}", text, out, scan(&out));
        prop_assert!(crate::desens::scan::is_clean(&out));
    }

    #[test]
    fn scan_finds_nothing_after_scrub_any(text in "\\PC{0,80}") {
        let out = scrub(&text, &OwnIds::default()).text;
        prop_assert!(scan(&out).is_empty(), "{:?} -> {:?}", text, out);
    }

    #[test]
    fn own_values_always_gone(parts in prop::collection::vec(fragment_text(), 1..5),
                              xm in own_value(), bah in own_value(), sfzh in own_value(), dh in own_value(),
                              kin in any::<bool>()) {
        // the values planted between the parts of the text
        let vals = [&xm, &bah, &sfzh, &dh];
        let mut text = String::new();
        for (i, p) in parts.iter().enumerate() {
            text.push_str(p);
            text.push_str(vals[i % 4]);
        }
        let ids = OwnIds { xm: &xm, bah: &bah, sfzh: &sfzh, dh: &dh };
        let out = folded(&scrub_with(&text, &ids, &ScrubOptions { kin_names: kin }).text);
        for v in vals.iter().filter(|v| checkable(v)) {
            prop_assert!(!out.contains(&folded(v.trim())), "{:?} in {:?}", v, out);
        }
    }

    #[test]
    fn scrub_is_idempotent_on_the_rule(text in fragment_text()) {
        let once = scrub_with(&text, &OwnIds::default(), &NO_KIN);
        let twice = scrub_with(&once.text, &OwnIds::default(), &NO_KIN);
        prop_assert_eq!(&twice.text, &once.text);
        prop_assert!(twice.hits.is_empty());
    }
}
