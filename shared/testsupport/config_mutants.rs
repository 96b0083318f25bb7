//! Mutated variants of a configuration text, for the "a loader returns Ok or
//! Err, never panics, and its errors name the file" tests of every TOML
//! loader (issue 8). Not part of any library: the test modules of
//! flumon-dmz, flumon-intranet and flumon-agent include it with `#[path]`
//! (the transfer configs are fuzzed with cargo-fuzz, target `config_toml`).
//!
//! ```text
//!  template ─▶ truncations (every ~Nth byte) · byte flips · junk lines · values replaced
//!              (huge/negative numbers, wrong types, long strings, bad escapes) · unknown keys
//!              · duplicated lines · non-UTF-8 bytes · 2–4 of these at once
//! ```
#![allow(dead_code, clippy::indexing_slicing, clippy::panic)]

/// xorshift64*: deterministic, so a failing variant is found again.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Values put in place of a `key = value` line's value.
pub const VALUES: &[&str] = &[
    "18446744073709551616",
    "99999999999999999999999999999",
    "-1",
    "-9223372036854775809",
    "0",
    "1e400",
    "nan",
    "-inf",
    "0.5",
    "true",
    "\"\"",
    "\"x\"",
    "\"../../../../etc/passwd\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"unterminated",
    "[]",
    "[1, \"a\", [2]]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "'''\nmulti\nline'''",
    "0x7fffffffffffffff",
    "+",
    "",
];

/// Lines inserted between two lines.
pub const JUNK: &[&str] = &[
    "bogus = 1",
    "[bogus]",
    "[[bogus]]",
    "= 1",
    "a.b.c = {",
    "x = [1,",
    "\"\"\"",
    "[",
    "]]",
    "key = \"value\" trailing",
    "\u{feff}x = 1",
    "\t\t",
    "x.y = 1\nx = 2",
    "[paths]",
    "[[journals]]",
    "[limits]\nupload_max_bytes = 18446744073709551615",
];

/// Bytes written over one byte.
const FLIPS: &[u8] = b"=[]\"'\n#.,{}\\ 0-9ex\t\r\x00\x7f";

/// Invalid UTF-8 sequences.
const NOT_UTF8: &[&[u8]] = &[b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe4\xb8", b"\xf8\x88\x80\x80\x80"];

fn lines(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

fn insert(text: &[u8], at: usize, what: &[u8]) -> Vec<u8> {
    let at = at.min(text.len());
    let mut m = Vec::with_capacity(text.len() + what.len());
    m.extend_from_slice(&text[..at]);
    m.extend_from_slice(what);
    m.extend_from_slice(&text[at..]);
    m
}

/// One random mutation of `text`.
fn mutate_once(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let ls = lines(text);
    let line = if ls.is_empty() { (0, 0) } else { ls[rng.below(ls.len())] };
    match rng.below(8) {
        0 => text[..rng.below(text.len() + 1)].to_vec(),
        1 => {
            let mut m = text.to_vec();
            if !m.is_empty() {
                let i = rng.below(m.len());
                m[i] = FLIPS[rng.below(FLIPS.len())];
            }
            m
        }
        2 => {
            let mut m = text.to_vec();
            if !m.is_empty() {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(7);
            }
            m
        }
        3 => insert(text, line.0, format!("{}\n", JUNK[rng.below(JUNK.len())]).as_bytes()),
        4 => replace_value(text, line, VALUES[rng.below(VALUES.len())].as_bytes()),
        5 => rename_key(text, line),
        6 => {
            insert(text, line.0, &text[line.0..line.1.min(text.len())].iter().chain(b"\n").copied().collect::<Vec<_>>())
        }
        _ => insert(text, rng.below(text.len() + 1), NOT_UTF8[rng.below(NOT_UTF8.len())]),
    }
}

/// `key = value` on this line: the value replaced.
fn replace_value(text: &[u8], (s, e): (usize, usize), value: &[u8]) -> Vec<u8> {
    let l = &text[s..e];
    match l.iter().position(|b| *b == b'=') {
        Some(eq) if !l.starts_with(b"#") => {
            let mut m = text[..s + eq + 1].to_vec();
            m.push(b' ');
            m.extend_from_slice(value);
            m.extend_from_slice(&text[e..]);
            m
        }
        _ => text.to_vec(),
    }
}

/// `key = value` on this line: the key made unknown.
fn rename_key(text: &[u8], (s, e): (usize, usize)) -> Vec<u8> {
    let l = &text[s..e];
    match l.iter().position(|b| *b == b'=') {
        Some(eq) if !l.starts_with(b"#") => {
            let end = l[..eq].iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |p| p + 1);
            insert(text, s + end, b"_unknown")
        }
        _ => text.to_vec(),
    }
}

/// About `count` variants of `text` (deterministic for a seed): every
/// truncation at a step of len/200, every value line with every value of
/// [`VALUES`], every key renamed, and random single and stacked mutations.
pub fn mutants(text: &str, seed: u64, count: usize) -> Vec<Vec<u8>> {
    let t = text.as_bytes();
    let mut out = Vec::with_capacity(count);
    let step = (t.len() / 200).max(1);
    out.extend((0..t.len()).step_by(step).map(|n| t[..n].to_vec()));
    for line in lines(t) {
        let l = &t[line.0..line.1];
        if l.starts_with(b"#") || !l.contains(&b'=') {
            continue;
        }
        out.extend(VALUES.iter().map(|v| replace_value(t, line, v.as_bytes())));
        out.push(rename_key(t, line));
    }
    let mut rng = Rng::new(seed);
    while out.len() < count {
        let mut m = t.to_vec();
        for _ in 0..1 + rng.below(4) {
            m = mutate_once(&m, &mut rng);
        }
        out.push(m);
    }
    out
}

/// What [`check_all`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub ok: usize,
    pub err: usize,
    /// Variants that are not UTF-8 (for the caller's load-from-file check).
    pub not_utf8: Vec<Vec<u8>>,
}

/// Runs `parse` on every variant: a panic fails with the variant's text, an
/// `Err` whose message does not contain `name` fails too.
pub fn check_all(variants: &[Vec<u8>], name: &str, parse: impl Fn(&str) -> Result<(), String>) -> Seen {
    let mut seen = Seen::default();
    for v in variants {
        let Ok(text) = std::str::from_utf8(v) else {
            seen.not_utf8.push(v.clone());
            continue;
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(text))) {
            Ok(Ok(())) => seen.ok += 1,
            Ok(Err(msg)) => {
                assert!(msg.contains(name), "error does not name {name}: {msg}\n--- variant:\n{text}");
                seen.err += 1;
            }
            Err(_) => panic!("the loader panicked on this variant:\n{text}"),
        }
    }
    seen
}

/// Writes up to `take` of the non-UTF-8 variants (at least one must exist) to a file called `name`
/// and requires `load` of it to fail with a message naming the file.
pub fn check_not_utf8_files(
    seen: &Seen,
    name: &str,
    take: usize,
    load: impl Fn(&std::path::Path) -> Result<(), String>,
) {
    assert!(!seen.not_utf8.is_empty(), "no non-UTF-8 variant among the mutants");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    for v in seen.not_utf8.iter().take(take) {
        std::fs::write(&file, v).unwrap();
        let e = load(&file).expect_err("a file that is not UTF-8 loaded");
        assert!(e.contains(name), "{e}");
    }
}

/// Each `(edit of template, key)` must differ from `template` and fail `parse` with a message that
/// names `key` and `name`.
pub fn check_keys_named(
    template: &str,
    name: &str,
    cases: &[(String, &str)],
    parse: impl Fn(&str) -> Result<(), String>,
) {
    for (text, key) in cases {
        assert_ne!(text, template, "{key}: the template changed, fix the test");
        let e = parse(text).expect_err(key);
        assert!(e.contains(key) && e.contains(name), "{key}: {e}");
    }
}
