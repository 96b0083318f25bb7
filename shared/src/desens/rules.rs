//! The matchers of INTERFACE §5 free text, clauses (2) and (3), and the markers.
//!
//! The scrubber ([`super::scrub`]) replaces what these find; the receiver's
//! [`super::scan`] reports what they find. Both walk the text with the same
//! iterators, so what one has replaced the other cannot find again.
//!
//! Everything works on byte offsets that are always char boundaries: a digit
//! run starts at an ASCII digit or at the lead byte `EF` of a full-width digit,
//! neither of which can be a continuation byte, and every other step advances
//! by a whole char.

use super::scrub::IdKind;

/// The five markers of INTERFACE §5, with full-width brackets as the spec writes them.
pub(crate) const MARKERS: [(&str, IdKind); 5] = [
    ("［姓名］", IdKind::Name),
    ("［证件号］", IdKind::IdNumber),
    ("［电话］", IdKind::Phone),
    ("［病案号］", IdKind::CaseNumber),
    ("［地址］", IdKind::Address),
];

/// A match: bytes `start..end` of the text (char boundaries) and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: IdKind,
}

/// The char at byte offset `i`, if `i` is a char boundary inside the text.
pub(crate) fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|r| r.chars().next())
}

/// A set of characters of the Basic Multilingual Plane as a bitmap (8 KiB),
/// built at compile time: a membership test without branches on the
/// character, for the per-character walks over Chinese text.
pub(crate) struct CharSet([u64; 1024]);

impl CharSet {
    /// The set of the characters of `chars` (all in the BMP).
    // Runs at compile time only (statics): an index out of bounds there fails the build.
    #[allow(clippy::indexing_slicing)]
    pub(crate) const fn new(chars: &str) -> Self {
        let b = chars.as_bytes();
        let mut bits = [0u64; 1024];
        let mut i = 0;
        while i < b.len() {
            let (c, len) = if b[i] < 0x80 {
                (b[i] as u32, 1)
            } else if b[i] < 0xE0 {
                ((((b[i] & 0x1F) as u32) << 6) | (b[i + 1] & 0x3F) as u32, 2)
            } else {
                ((((b[i] & 0x0F) as u32) << 12) | (((b[i + 1] & 0x3F) as u32) << 6) | (b[i + 2] & 0x3F) as u32, 3)
            };
            bits[(c >> 6) as usize] |= 1 << (c & 63);
            i += len;
        }
        CharSet(bits)
    }

    #[inline]
    pub(crate) fn contains(&self, c: char) -> bool {
        let c = u32::from(c);
        self.0.get((c >> 6) as usize).is_some_and(|w| w & (1 << (c & 63)) != 0)
    }
}

/// Length in bytes of the marker starting at `i`, if one does.
pub(crate) fn marker_at(text: &str, i: usize) -> Option<usize> {
    let rest = text.get(i..)?;
    if !rest.starts_with('［') {
        return None;
    }
    MARKERS.iter().find(|(m, _)| rest.starts_with(m)).map(|(m, _)| m.len())
}

/// Whether `s` is one or more markers and nothing else.
pub(crate) fn is_markers_only(s: &str) -> bool {
    let mut i = 0;
    while i < s.len() {
        match marker_at(s, i) {
            Some(len) => i += len,
            None => return false,
        }
    }
    i > 0
}

// ───────────────────────── clause (2): shapes ─────────────────────────

/// The digit at byte `i` (ASCII or full-width ０–９): its value and byte length.
fn digit_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    match *b.get(i)? {
        d @ b'0'..=b'9' => Some((d - b'0', 1)),
        0xEF => match (b.get(i + 1), b.get(i + 2)) {
            (Some(0xBC), Some(&t @ 0x90..=0x99)) => Some((t - 0x90, 3)),
            _ => None,
        },
        _ => None,
    }
}

/// `X`, `x`, `Ｘ` or `ｘ` at byte `i`: its byte length.
fn x_at(b: &[u8], i: usize) -> Option<usize> {
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b'X' | b'x'), _, _) => Some(1),
        (Some(0xEF), Some(0xBC), Some(0xB8)) | (Some(0xEF), Some(0xBD), Some(0x98)) => Some(3),
        _ => None,
    }
}

/// A separator of the 3-4-4 form at byte `i`: space, hyphen, ideographic space,
/// no-break space, full-width hyphen-minus, or the Unicode hyphens and dashes
/// U+2010, U+2011, U+2013, U+2014. Its byte length.
fn sep_at(b: &[u8], i: usize) -> Option<usize> {
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b' ' | b'-'), _, _) => Some(1),
        (Some(0xC2), Some(0xA0), _) => Some(2),
        (Some(0xE3), Some(0x80), Some(0x80)) | (Some(0xEF), Some(0xBC), Some(0x8D)) => Some(3),
        (Some(0xE2), Some(0x80), Some(0x90 | 0x91 | 0x93 | 0x94)) => Some(3),
        _ => None,
    }
}

/// The start of a `+` or `＋` just before byte `i`.
fn plus_before(b: &[u8], i: usize) -> Option<usize> {
    let one = i.checked_sub(1)?;
    if b.get(one) == Some(&b'+') {
        return Some(one);
    }
    let three = i.checked_sub(3)?;
    match (b.get(three), b.get(three + 1), b.get(three + 2)) {
        (Some(0xEF), Some(0xBC), Some(0x8B)) => Some(three),
        _ => None,
    }
}

/// A maximal run of digits: where it starts and ends, how many digits, the first four.
struct Run {
    start: usize,
    end: usize,
    n: usize,
    first: [u8; 4],
}

impl Run {
    fn digit(&self, k: usize) -> u8 {
        self.first.get(k).copied().unwrap_or(u8::MAX)
    }
    /// Digits `k` and `k + 1` are `1` and `3`–`9`: a mobile prefix.
    fn mobile_prefix_at(&self, k: usize) -> bool {
        self.digit(k) == 1 && (3..=9).contains(&self.digit(k + 1))
    }
}

/// The run of digits starting at byte `i` (which must be a digit to give `Some`).
fn run_at(b: &[u8], i: usize) -> Option<Run> {
    digit_at(b, i)?;
    let mut run = Run { start: i, end: i, n: 0, first: [u8::MAX; 4] };
    while let Some((d, len)) = digit_at(b, run.end) {
        if let Some(slot) = run.first.get_mut(run.n) {
            *slot = d;
        }
        run.n += 1;
        run.end += len;
    }
    Some(run)
}

/// `sep dddd sep dddd` from byte `i` (the tail of a 3-4-4 mobile): its end.
fn tail_4_4(b: &[u8], i: usize) -> Option<usize> {
    let s1 = sep_at(b, i)?;
    let g2 = run_at(b, i + s1)?;
    if g2.n != 4 {
        return None;
    }
    let s2 = sep_at(b, g2.end)?;
    let g3 = run_at(b, g2.end + s2)?;
    (g3.n == 4).then_some(g3.end)
}

/// A mobile (11 digits, or 3-4-4) whose first digit run starts at byte `i`: its end.
fn mobile_at(b: &[u8], i: usize) -> Option<usize> {
    let run = run_at(b, i)?;
    match run.n {
        11 if run.mobile_prefix_at(0) => Some(run.end),
        3 if run.mobile_prefix_at(0) => tail_4_4(b, run.end),
        _ => None,
    }
}

/// Classify a maximal digit run: an ID-card or mobile shape that involves it.
fn classify(b: &[u8], run: &Run) -> Option<Span> {
    let span = |start, end, kind| Some(Span { start, end, kind });
    // +86 (the + and the country code are replaced with the number)
    if let Some(p) = plus_before(b, run.start)
        && run.digit(0) == 8
        && run.digit(1) == 6
    {
        match run.n {
            13 if run.mobile_prefix_at(2) => return span(p, run.end, IdKind::Phone),
            5 if run.mobile_prefix_at(2) => {
                if let Some(end) = tail_4_4(b, run.end) {
                    return span(p, end, IdKind::Phone);
                }
            }
            2 => {
                if let Some(s) = sep_at(b, run.end)
                    && let Some(end) = mobile_at(b, run.end + s)
                {
                    return span(p, end, IdKind::Phone);
                }
            }
            _ => {}
        }
    }
    match run.n {
        18 | 15 => span(run.start, run.end, IdKind::IdNumber),
        17 => x_at(b, run.end).and_then(|x| span(run.start, run.end + x, IdKind::IdNumber)),
        11 if run.mobile_prefix_at(0) => span(run.start, run.end, IdKind::Phone),
        3 if run.mobile_prefix_at(0) => tail_4_4(b, run.end).and_then(|end| span(run.start, end, IdKind::Phone)),
        _ => None,
    }
}

/// The ID-card and mobile shapes of §5 (2), left to right, never overlapping.
pub(crate) struct Shapes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Shapes<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Shapes { b: text.as_bytes(), pos: 0 }
    }
}

impl Iterator for Shapes<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        while self.pos < self.b.len() {
            match run_at(self.b, self.pos) {
                Some(run) => {
                    if let Some(span) = classify(self.b, &run) {
                        self.pos = span.end;
                        return Some(span);
                    }
                    self.pos = run.end;
                }
                // On to the next ASCII digit or full-width lead byte: only
                // digit starts are acted on, and those are never continuation bytes.
                None => {
                    let skip = self
                        .b
                        .get(self.pos + 1..)
                        .and_then(|r| r.iter().position(|&x| x.is_ascii_digit() || x == 0xEF));
                    self.pos = skip.map_or(self.b.len(), |k| self.pos + 1 + k);
                }
            }
        }
        None
    }
}

// ───────────────────────── clause (3): labels ─────────────────────────

/// The labels of §5 (3) by first character, longest first, with the kind of
/// their value. Besides the spec's list: the spellings 身份证号码, 手机号,
/// 手机号码, 电话号码 and 住院号码/病案号码/门诊号码/急诊号码, so that the value
/// starts after the label's 号码 (docs/SCRUBBING.md).
fn labels_starting(c: char) -> &'static [(&'static str, IdKind)] {
    use IdKind::*;
    match c {
        '身' => &[("身份证号码", IdNumber), ("身份证号", IdNumber), ("身份证", IdNumber)],
        '证' => &[("证件号码", IdNumber), ("证件号", IdNumber)],
        '联' => &[("联系电话", Phone)],
        '电' => &[("电话号码", Phone), ("电话", Phone)],
        '手' => &[("手机号码", Phone), ("手机号", Phone), ("手机", Phone)],
        '住' => &[("住院号码", CaseNumber), ("住院号", CaseNumber), ("住址", Address)],
        '病' => &[("病案号码", CaseNumber), ("病案号", CaseNumber)],
        '门' => &[("门诊号码", CaseNumber), ("门诊号", CaseNumber)],
        '急' => &[("急诊号码", CaseNumber), ("急诊号", CaseNumber)],
        '地' => &[("地址", Address)],
        '姓' => &[("姓名", Name)],
        '患' => &[("患者", Name), ("患儿", Name)],
        _ => &[],
    }
}

/// The first characters of the labels, and the marker bracket.
static LABEL_OR_MARKER_START: CharSet = CharSet::new("［身证联电手住病门急地姓患");

/// The label starting at byte `i`, longest first: its byte length and kind.
fn label_at(text: &str, i: usize) -> Option<(usize, IdKind)> {
    let rest = text.get(i..)?;
    labels_starting(rest.chars().next()?).iter().find(|(l, _)| rest.starts_with(l)).map(|(l, k)| (l.len(), *k))
}

/// Horizontal white space allowed around the colon: space, tab, ideographic
/// space, no-break space.
pub(crate) fn is_hspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{3000}' | '\u{a0}')
}

/// The delimiters that end a value (besides white space).
fn is_delimiter(c: char) -> bool {
    matches!(c, '，' | '。' | '；' | '、' | ',' | ';' | '（' | '）' | '(' | ')')
}

/// Skip horizontal space, an optional colon, horizontal space from byte `i`.
pub(crate) fn skip_colon(text: &str, mut i: usize) -> usize {
    let skip_space = |mut i: usize| {
        while let Some(c) = char_at(text, i).filter(|c| is_hspace(*c)) {
            i += c.len_utf8();
        }
        i
    };
    i = skip_space(i);
    if let Some(c) = char_at(text, i).filter(|c| matches!(c, ':' | '：')) {
        i = skip_space(i + c.len_utf8());
    }
    i
}

/// A label and its value: bytes `value_start..value_end` (empty when the label
/// is followed by a delimiter, white space after the colon, or the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Labelled {
    pub value_start: usize,
    pub value_end: usize,
    pub kind: IdKind,
    /// The value is one or more markers: already scrubbed.
    pub markers_only: bool,
}

impl Labelled {
    /// The value is not empty and not only markers: it must be replaced
    /// (scrubber) or reported (scan).
    pub(crate) fn needs_scrub(&self) -> bool {
        self.value_end > self.value_start && !self.markers_only
    }
}

/// The labels of §5 (3) with their values, left to right. Markers are skipped
/// whole (the 姓名 in ［姓名］ is not a label); labels that follow one another
/// directly (患者姓名) are one label whose kind is the last one's; after a
/// label, the walk goes on after its value.
pub(crate) struct Labels<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Labels<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Labels { text, pos: 0 }
    }
}

impl Iterator for Labels<'_> {
    type Item = Labelled;

    fn next(&mut self) -> Option<Labelled> {
        let text = self.text;
        let rest = text.get(self.pos..)?;
        let base = self.pos;
        // markers are skipped whole: the 姓名 in ［姓名］ is no label
        let mut skip_to = 0;
        for (off, c) in rest.char_indices() {
            let i = base + off;
            if i < skip_to || !LABEL_OR_MARKER_START.contains(c) {
                continue;
            }
            if let Some(len) = marker_at(text, i) {
                skip_to = i + len;
                continue;
            }
            let Some((len, mut kind)) = label_at(text, i) else {
                continue;
            };
            let mut end = i + len;
            while let Some((len, k)) = label_at(text, end) {
                end += len;
                kind = k;
            }
            let value_start = skip_colon(text, end);
            let mut value_end = value_start;
            while let Some(c) = char_at(text, value_end).filter(|c| !c.is_whitespace() && !is_delimiter(*c)) {
                value_end += c.len_utf8();
            }
            let markers_only = text.get(value_start..value_end).is_some_and(is_markers_only);
            self.pos = if value_end > value_start { value_end } else { end };
            return Some(Labelled { value_start, value_end, kind, markers_only });
        }
        self.pos = text.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(t: &str) -> Vec<(&str, IdKind)> {
        Shapes::new(t).map(|s| (&t[s.start..s.end], s.kind)).collect()
    }

    #[test]
    fn id_shapes() {
        use IdKind::IdNumber as I;
        assert_eq!(shapes("号11010519491231002X。"), vec![("11010519491231002X", I)]);
        assert_eq!(shapes("11010519491231002x1"), vec![("11010519491231002x", I)]);
        assert_eq!(shapes("a110105194912310021b"), vec![("110105194912310021", I)]);
        assert_eq!(shapes("110105491231002"), vec![("110105491231002", I)]);
        assert_eq!(shapes("１１０１０５４９１２３１００２"), vec![("１１０１０５４９１２３１００２", I)]);
        assert_eq!(shapes("11010519491231002Ｘ"), vec![("11010519491231002Ｘ", I)]);
        // inside longer runs, or too short: nothing
        assert!(shapes("1101051949123100212").is_empty());
        assert!(shapes("1101054912310021").is_empty());
        assert!(shapes("11010519491231002").is_empty());
    }

    #[test]
    fn mobile_shapes() {
        use IdKind::Phone as P;
        for m in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "138－1234－5678",
            "+8613812345678",
            "+86 13812345678",
            "+86-138-1234-5678",
            "＋86 138 1234 5678",
            "+86138 1234 5678",
            "１３８１２３４５６７８",
        ] {
            let t = format!("电{m}，");
            assert_eq!(shapes(&t), vec![(m, P)], "{m}");
        }
        assert!(shapes("12812345678").is_empty());
        assert!(shapes("138123456789").is_empty());
        assert!(shapes("0138-1234-5678").is_empty());
        assert!(shapes("138-1234-56789").is_empty());
        assert!(shapes("8613812345678").is_empty());
        assert!(shapes("38.5℃ 2026-11-20 5.2×10^9/L J10.1").is_empty());
        // the + without a mobile after it stays
        assert_eq!(shapes("86 13812345678"), vec![("13812345678", P)]);
    }

    fn labels(t: &str) -> Vec<(&str, IdKind, bool)> {
        Labels::new(t).map(|l| (&t[l.value_start..l.value_end], l.kind, l.markers_only)).collect()
    }

    #[test]
    fn label_values() {
        use IdKind::*;
        assert_eq!(labels("姓名：张三，男"), vec![("张三", Name, false)]);
        assert_eq!(labels("患者姓名: 欧阳·娜娜 住址 北京"), vec![("欧阳·娜娜", Name, false), ("北京", Address, false)]);
        assert_eq!(labels("联系电话 ：［电话］。"), vec![("［电话］", Phone, true)]);
        assert_eq!(labels("身份证号码：x-1"), vec![("x-1", IdNumber, false)]);
        assert_eq!(labels("住院号\n123"), vec![("", CaseNumber, false)]);
        assert_eq!(labels("［姓名］［地址］发热"), vec![]);
        assert_eq!(labels("［姓名发热"), vec![("发热", Name, false)]);
        assert_eq!(labels("电话"), vec![("", Phone, false)]);
    }

    #[test]
    fn char_set() {
        let set = CharSet::new("a©［身患");
        for c in ['a', '©', '［', '身', '患'] {
            assert!(set.contains(c));
        }
        for c in ['b', '\0', '姓', '\u{10000}', '\u{FFFF}'] {
            assert!(!set.contains(c));
        }
    }

    #[test]
    fn label_table_is_sane() {
        for c in "身证联电手住病门急地姓患".chars() {
            assert!(LABEL_OR_MARKER_START.contains(c));
            let labels = labels_starting(c);
            assert!(!labels.is_empty());
            for (i, (a, _)) in labels.iter().enumerate() {
                assert!(a.starts_with(c));
                for (b, _) in &labels[i + 1..] {
                    assert!(!(b.starts_with(a) && b.len() > a.len()), "{b} after {a}");
                }
            }
        }
    }

    #[test]
    fn markers_only() {
        assert!(is_markers_only("［姓名］［电话］"));
        assert!(!is_markers_only("［姓名］x"));
        assert!(!is_markers_only(""));
        assert!(!is_markers_only("［姓名"));
    }
}
