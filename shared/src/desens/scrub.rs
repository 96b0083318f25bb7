//! The free-text scrubber of INTERFACE §5: every identifier is replaced by a
//! marker of its kind — ［姓名］ ［证件号］ ［电话］ ［病案号］ ［地址］.
//!
//! ```text
//!  text ─(1) own XM, BAH, SFZH, DH ─(2) ID-card / mobile shapes ─(3) label + value
//!       ─(kin) names after kinship words (ScrubOptions::kin_names, beyond the rule) ─▶ Scrubbed
//! ```
//!
//! The clauses apply in that order, each to the result of the one before.
//! A label whose value is already one or more markers is left alone; an empty
//! value replaces nothing. Text is matched as it is (no NFKC), except that
//! full-width digits count as digits in the shapes, and own values are matched
//! with full-width ASCII folded to ASCII and ASCII letters without regard to
//! case. docs/SCRUBBING.md has the decisions and the measured recall.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::kin::KinNames;
use super::rules::{Labels, Shapes, Span};
use crate::model::ScrubIds;

/// The kind of an identifier, and so of its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// ［姓名］
    Name,
    /// ［证件号］
    IdNumber,
    /// ［电话］
    Phone,
    /// ［病案号］ (also 住院号, 门诊号, 急诊号)
    CaseNumber,
    /// ［地址］
    Address,
}

impl IdKind {
    /// The marker that replaces an identifier of this kind.
    pub const fn marker(self) -> &'static str {
        match self {
            IdKind::Name => "［姓名］",
            IdKind::IdNumber => "［证件号］",
            IdKind::Phone => "［电话］",
            IdKind::CaseNumber => "［病案号］",
            IdKind::Address => "［地址］",
        }
    }

    /// A stable ASCII name for audit entries and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdKind::Name => "name",
            IdKind::IdNumber => "id_number",
            IdKind::Phone => "phone",
            IdKind::CaseNumber => "case_number",
            IdKind::Address => "address",
        }
    }
}

/// Which rule found an identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clause {
    /// §5 (1): the record's own XM, BAH, SFZH or DH.
    Own,
    /// §5 (2): an ID-card-shaped or mobile-shaped string.
    Shape,
    /// §5 (3): the value after a label.
    Label,
    /// Beyond the rule: a name after a kinship word ([`ScrubOptions::kin_names`]).
    Kin,
}

impl Clause {
    /// A stable ASCII name for audit entries and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Clause::Own => "own",
            Clause::Shape => "shape",
            Clause::Label => "label",
            Clause::Kin => "kin",
        }
    }
}

/// One replacement: what kind, by which rule. Never the replaced text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hit {
    pub kind: IdKind,
    pub clause: Clause,
}

/// The scrubbed text and what was replaced, in the order the clauses ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scrubbed {
    pub text: String,
    pub hits: Vec<Hit>,
}

/// The record's own identifiers (§3.3/§3.4 XM, BAH, SFZH, DH); `""` for absent.
/// Its `Debug` never shows them.
#[derive(Clone, Copy, Default)]
pub struct OwnIds<'a> {
    pub xm: &'a str,
    pub bah: &'a str,
    pub sfzh: &'a str,
    pub dh: &'a str,
}

impl<'a> OwnIds<'a> {
    /// Borrow the identifier fields of a summary or death record.
    pub fn from_ids(ids: &'a ScrubIds) -> Self {
        OwnIds {
            xm: ids.xm.as_deref().unwrap_or(""),
            bah: ids.bah.as_deref().unwrap_or(""),
            sfzh: ids.sfzh.as_deref().unwrap_or(""),
            dh: ids.dh.as_deref().unwrap_or(""),
        }
    }
}

impl fmt::Debug for OwnIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnIds([redacted])")
    }
}

/// Switches of the scrubber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubOptions {
    /// Also replace names after kinship words (其子张伟 → 其子［姓名］), beyond
    /// the spec's rule. Default on.
    pub kin_names: bool,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions { kin_names: true }
    }
}

/// Scrub free text with the default options (kin names on).
pub fn scrub(text: &str, own: &OwnIds<'_>) -> Scrubbed {
    scrub_with(text, own, &ScrubOptions::default())
}

/// Scrub free text: clauses (1), (2), (3) of §5 in that order, then kin names
/// when switched on.
pub fn scrub_with(text: &str, own: &OwnIds<'_>, opts: &ScrubOptions) -> Scrubbed {
    let mut hits = Vec::new();
    let mut spans = Vec::new();
    let mut cur = Cow::Borrowed(text);

    own_spans(&cur, own, &mut spans);
    replace(&mut cur, &spans, Clause::Own, &mut hits);

    spans.clear();
    spans.extend(Shapes::new(&cur));
    replace(&mut cur, &spans, Clause::Shape, &mut hits);

    spans.clear();
    spans.extend(Labels::new(&cur).filter(|l| l.needs_scrub()).map(|l| Span {
        start: l.value_start,
        end: l.value_end,
        kind: l.kind,
    }));
    replace(&mut cur, &spans, Clause::Label, &mut hits);

    if opts.kin_names {
        spans.clear();
        spans.extend(KinNames::new(&cur));
        replace(&mut cur, &spans, Clause::Kin, &mut hits);
    }

    Scrubbed { text: cur.into_owned(), hits }
}

/// Replace sorted, non-overlapping spans (char boundaries) by their markers.
fn replace(cur: &mut Cow<'_, str>, spans: &[Span], clause: Clause, hits: &mut Vec<Hit>) {
    if spans.is_empty() {
        return;
    }
    let text: &str = cur;
    let mut out = String::with_capacity(text.len() + 8 * spans.len());
    let mut last = 0;
    for s in spans {
        // Spans come sorted and disjoint from one walk; `get` keeps a bad one
        // from panicking (it is then skipped, never half-applied).
        let (Some(before), true) = (text.get(last..s.start), text.is_char_boundary(s.end)) else {
            continue;
        };
        out.push_str(before);
        out.push_str(s.kind.marker());
        hits.push(Hit { kind: s.kind, clause });
        last = s.end;
    }
    out.push_str(text.get(last..).unwrap_or(""));
    *cur = Cow::Owned(out);
}

// ───────────────────────── clause (1): own values ─────────────────────────

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space folded to ASCII;
/// ASCII letters upper-cased.
fn fold(c: char) -> char {
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    };
    c.to_ascii_uppercase()
}

/// Whether `needle` matches the start of `hay` after folding both; the byte
/// length matched in `hay`.
fn folded_prefix(hay: &str, needle: &str) -> Option<usize> {
    if needle.is_ascii() {
        // Fast path: equal bytes but for ASCII case. Where they differ at an
        // ASCII byte of `hay` they differ after folding too; only a non-ASCII
        // byte (a full-width form) needs the char-by-char comparison below.
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        match h.iter().zip(n).position(|(a, b)| !a.eq_ignore_ascii_case(b)) {
            None if h.len() >= n.len() => return Some(n.len()),
            None => return None,
            Some(k) if h.get(k).is_some_and(u8::is_ascii) => return None,
            Some(_) => {}
        }
    }
    let mut hs = hay.char_indices();
    for n in needle.chars() {
        let (_, h) = hs.next()?;
        if fold(h) != fold(n) {
            return None;
        }
    }
    Some(hs.next().map_or(hay.len(), |(i, _)| i))
}

/// The other written form of a 居民身份证 number: 18 → 15 digits when born in
/// 19xx, 15 → 18 digits with the check character.
fn other_id_form(sfzh: &str) -> Option<String> {
    let up = sfzh.to_ascii_uppercase();
    match up.len() {
        15 => crate::validate::ids::fifteen_to_eighteen(&up),
        18 if up.is_ascii() && up.get(6..8) == Some("19") => {
            let (a, b) = (up.get(..6)?, up.get(8..17)?);
            (a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())).then(|| format!("{a}{b}"))
        }
        _ => None,
    }
}

/// The characters that fold to the same as `c`: itself, and for ASCII its
/// full-width form and the other case of a letter in both widths.
fn fold_variants(c: char) -> [Option<char>; 4] {
    let f = fold(c);
    if !f.is_ascii_graphic() {
        return [Some(c), None, None, None];
    }
    let wide = |a: char| char::from_u32(u32::from(a) + 0xFEE0);
    let lower = f.to_ascii_lowercase();
    if lower == f { [Some(f), wide(f), None, None] } else { [Some(f), wide(f), Some(lower), wide(lower)] }
}

/// Every occurrence of every own value (overlapping ones too), merged into
/// disjoint spans; a merged span takes the kind of its longest occurrence.
fn own_spans(text: &str, own: &OwnIds<'_>, out: &mut Vec<Span>) {
    use IdKind as K;
    let alt = other_id_form(own.sfzh.trim());
    let candidates = [
        (own.sfzh.trim(), K::IdNumber),
        (alt.as_deref().unwrap_or(""), K::IdNumber),
        (own.dh.trim(), K::Phone),
        (own.bah.trim(), K::CaseNumber),
        (own.xm.trim(), K::Name),
    ];
    // the values worth searching, with their folded first character
    let mut needles: [(&str, K, char); 5] = [("", K::Name, ' '); 5];
    let mut n = 0;
    for (v, kind) in candidates {
        let mut cs = v.chars();
        // absent, or shorter than 2 characters: not searched
        if let (Some(first), Some(_)) = (cs.next(), cs.next())
            && let Some(slot) = needles.get_mut(n)
        {
            *slot = (v, kind, fold(first));
            n += 1;
        }
    }
    let needles = needles.get(..n).unwrap_or(&[]);
    // each way of writing a first character, once (SFZH, DH and BAH often share '1')
    let mut variants: [char; 20] = ['\0'; 20];
    let mut nv = 0;
    for &(v, _, _) in needles {
        for c in v.chars().next().map(fold_variants).into_iter().flatten().flatten() {
            if !variants.get(..nv).unwrap_or(&[]).contains(&c)
                && let Some(slot) = variants.get_mut(nv)
            {
                *slot = c;
                nv += 1;
            }
        }
    }
    let mut found: Vec<Span> = Vec::new();
    for &variant in variants.get(..nv).unwrap_or(&[]) {
        let folded = fold(variant);
        // a memchr-fast search, then every value that starts so
        for (i, _) in text.match_indices(variant) {
            for &(v, kind, first) in needles {
                if first == folded
                    && let Some(len) = text.get(i..).and_then(|rest| folded_prefix(rest, v))
                {
                    found.push(Span { start: i, end: i + len, kind });
                }
            }
        }
    }
    if found.is_empty() {
        return;
    }
    // longest first among equal starts, so that it gives the kind
    found.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut best = 0;
    for s in found {
        match out.last_mut() {
            Some(m) if s.start < m.end => {
                if s.end - s.start > best {
                    best = s.end - s.start;
                    m.kind = s.kind;
                }
                m.end = m.end.max(s.end);
            }
            _ => {
                best = s.end - s.start;
                out.push(s);
            }
        }
    }
}

#[cfg(test)]
pub(crate) fn own_spans_for_bench(text: &str, own: &OwnIds<'_>, out: &mut Vec<Span>) {
    own_spans(text, own, out);
}

#[cfg(test)]
mod tests;
