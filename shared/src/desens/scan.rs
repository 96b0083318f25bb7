//! The receiver's re-scan (ARCHITECTURE invariant 2): every free-text field of
//! an arriving record is searched for the shapes and labels of INTERFACE §5
//! (2)–(3); a record with any hit is quarantined.
//!
//! A hit tells the kind, the clause and where (a char offset), never the text
//! it matched, so that it can go into an audit entry. The scan uses the very
//! matchers the scrubber replaces with, so `scan(scrub(x))` is empty for every
//! `x` (property-tested in the scrubber's tests). Own values (clause 1) cannot
//! be re-checked: the receiver does not know them.

use serde::{Deserialize, Serialize};

use super::rules::{Labels, Shapes};
use super::scrub::{Clause, IdKind};

/// One finding of the scan: kind, clause ([`Clause::Shape`] or
/// [`Clause::Label`]) and the char offset where the offending text starts (for
/// a label: its value). Never the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScanHit {
    pub kind: IdKind,
    pub clause: Clause,
    pub start: usize,
}

/// Scan one free-text field. Empty when the text is clean; hits come in text
/// order. Allocates nothing for clean text.
pub fn scan(text: &str) -> Vec<ScanHit> {
    // (byte offset, kind, clause)
    let mut found: Vec<(usize, IdKind, Clause)> = Shapes::new(text).map(|s| (s.start, s.kind, Clause::Shape)).collect();
    found.extend(Labels::new(text).filter(|l| l.needs_scrub()).map(|l| (l.value_start, l.kind, Clause::Label)));
    if found.is_empty() {
        return Vec::new();
    }
    found.sort_by_key(|f| f.0);
    // byte offsets to char offsets in one walk
    let mut hits = Vec::with_capacity(found.len());
    let (mut byte, mut chars) = (0usize, 0usize);
    for (start, kind, clause) in found {
        if let Some(between) = text.get(byte..start) {
            chars += between.chars().count();
            byte = start;
        }
        hits.push(ScanHit { kind, clause, start: chars });
    }
    hits
}

/// Whether the text passes the scan (no hit), without collecting hits.
pub fn is_clean(text: &str) -> bool {
    Shapes::new(text).next().is_none() && !Labels::new(text).any(|l| l.needs_scrub())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shapes_and_labels_without_text() {
        let t = "患者［姓名］，男。身份证 11010519491231002X，手机：138 1234 5678；住址：北京市朝阳区";
        let hits = scan(t);
        assert_eq!(
            hits,
            vec![
                ScanHit { kind: IdKind::IdNumber, clause: Clause::Shape, start: 13 },
                ScanHit { kind: IdKind::IdNumber, clause: Clause::Label, start: 13 },
                ScanHit { kind: IdKind::Phone, clause: Clause::Shape, start: 35 },
                ScanHit { kind: IdKind::Phone, clause: Clause::Label, start: 35 },
                ScanHit { kind: IdKind::Address, clause: Clause::Label, start: 52 },
            ]
        );
        let chars: Vec<char> = t.chars().collect();
        assert_eq!(chars[13], '1');
        assert_eq!(chars[52], '北');
        assert!(!is_clean(t));
        // a hit's Debug holds no digits of the match
        let dbg = format!("{hits:?}");
        assert!(!dbg.contains("1101") && !dbg.contains("1234") && !dbg.contains("北京"));
    }

    #[test]
    fn clean_text_passes() {
        for t in [
            "",
            "患者［姓名］，男，45岁。体温38.5℃，白细胞 5.2×10^9/L，2026-11-20 复查，诊断 J10.1。",
            "联系电话：［电话］ 住址：［地址］［地址］ 姓名， 电话",
            "［姓名］［证件号］［电话］［病案号］［地址］",
        ] {
            assert!(scan(t).is_empty(), "{t}");
            assert!(is_clean(t), "{t}");
        }
    }
}
