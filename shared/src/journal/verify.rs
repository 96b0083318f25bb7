//! Reading and verifying a journal: bounded line reads, the line format, and
//! the chain rules, shared by `verify`, `Journal::open` and pruning.
//!
//! ```text
//!  bytes ─▶ read_line (≤ 64 KiB, must end in '\n') ─▶ parse (five fields, nothing else)
//!        ─▶ chain rules: seq = previous + 1, prev = chain value, signatures
//!        ─▶ VerifyReport { head, last_seq, …, first_bad }
//!  chain value after a line = SM3(line bytes without '\n');
//!  after an anchor          = the anchor's own `prev` (it stands for the pruned entries)
//! ```

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use crate::crypto::{Sm2PublicKey, Sm2Signature, sm3};

/// Longest line (without its newline) a reader accepts.
pub const MAX_LINE: usize = 64 * 1024;
/// Kind of a signed checkpoint entry (in the chain).
pub const KIND_CHECKPOINT: &str = "journal.checkpoint";
/// Kind of the signed anchor that starts a pruned journal.
pub const KIND_ANCHOR: &str = "journal.anchor";
/// Kind of the entry `Journal::open` appends after cutting away a torn
/// last line (a crash mid-append; that entry was never acknowledged).
pub const KIND_RECOVERED: &str = "journal.recovered";
/// Prefix reserved for the journal's own kinds.
pub(crate) const RESERVED_PREFIX: &str = "journal.";
/// Domain label of checkpoint and anchor signatures.
const SIG_LABEL: &[u8; 17] = b"FLUMON-JOURNAL-V1";

/// One journal line as stored (field order is the on-disk order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Sequence number, 1 for the first entry ever, +1 each entry.
    pub seq: u64,
    /// Unix milliseconds when appended.
    pub time: u64,
    /// What happened (`batch.sent`, `login.failed`, …).
    pub kind: String,
    /// Details as JSON.
    pub detail: serde_json::Value,
    /// Hex SM3 chain value before this entry (64 hex digits).
    pub prev: String,
}

/// The first line that breaks the journal, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Line number (1-based).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// The outcome of verifying a journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines that verified (including an anchor).
    pub good_lines: u64,
    /// Seq of the last good entry (0 for an empty journal).
    pub last_seq: u64,
    /// Chain value after the last good line (zeros for an empty journal).
    pub head: [u8; 32],
    /// Seq of the anchor if the journal was pruned.
    pub anchored_at: Option<u64>,
    /// Signed checkpoints that verified.
    pub checkpoints: u64,
    /// Seq of the last checkpoint.
    pub last_checkpoint: Option<u64>,
    /// The first bad line; `None` when the whole journal verified.
    pub first_bad: Option<BadLine>,
    /// Bytes of the verified lines (newlines included) from the start.
    pub good_bytes: u64,
    /// The first bad line is the last one and has no newline: a torn append.
    pub torn_tail: bool,
}

impl VerifyReport {
    /// True when every line verified.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// What `read_line` found.
pub(crate) enum LineRead {
    /// A line ending in '\n' (the newline is not in the buffer).
    Line,
    /// End of input, nothing read.
    Eof,
    /// Bytes at the end of input with no newline.
    Unterminated,
    /// More than `MAX_LINE` bytes without a newline.
    TooLong,
}

/// Reads one line into `buf` without ever holding more than `MAX_LINE + 1` bytes.
pub(crate) fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    buf.clear();
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if buf.is_empty() { LineRead::Eof } else { LineRead::Unterminated });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(LineRead::Line);
        }
    }
}

/// Bytes signed by a checkpoint (kind 1) or an anchor (kind 2).
pub(crate) fn signed_message(kind: u8, seq: u64, time: u64, prev: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIG_LABEL.len() + 1 + 8 + 8 + 32);
    m.extend_from_slice(SIG_LABEL);
    m.push(kind);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&time.to_be_bytes());
    m.extend_from_slice(prev);
    m
}

/// The `detail` of a checkpoint or anchor.
pub(crate) fn signature_detail(key: &Sm2PublicKey, sig: &Sm2Signature) -> serde_json::Value {
    serde_json::json!({ "key": hex::encode(key.fingerprint()), "sig": hex::encode(sig.to_bytes()) })
}

/// Checks a checkpoint's or anchor's signature.
fn check_signature(e: &JournalEntry, kind: u8, prev: &[u8; 32], key: &Sm2PublicKey) -> Result<(), String> {
    let obj = e.detail.as_object().ok_or("signature detail is not an object")?;
    if obj.len() != 2 {
        return Err("signature detail must hold exactly key and sig".into());
    }
    let fp = obj.get("key").and_then(|v| v.as_str()).ok_or("signature detail has no key")?;
    if fp != hex::encode(key.fingerprint()) {
        return Err(format!("signed by another key ({fp})"));
    }
    let sig_hex = obj.get("sig").and_then(|v| v.as_str()).ok_or("signature detail has no sig")?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut sig).map_err(|_| "signature is not 128 hex digits")?;
    let sig = Sm2Signature::from_bytes(&sig).map_err(|_| "signature out of range")?;
    key.verify(&signed_message(kind, e.seq, e.time, prev), &sig).map_err(|_| "signature does not verify".to_string())
}

/// Parses a line: one JSON object with exactly the five fields, nothing
/// around it. (Byte-exact form is not re-checked: the chain hashes the raw
/// bytes, and re-encoding would depend on serde_json's map-order feature.)
pub(crate) fn parse_line(raw: &[u8]) -> Result<(JournalEntry, [u8; 32]), String> {
    if raw.first() != Some(&b'{') || raw.last() != Some(&b'}') || raw.contains(&b'\r') {
        return Err("not a journal entry: a line is one JSON object with nothing around it".into());
    }
    let e: JournalEntry = serde_json::from_slice(raw).map_err(|err| format!("not a journal entry: {err}"))?;
    let mut prev = [0u8; 32];
    if e.prev.len() != 64 || e.prev.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("prev must be 64 lowercase hex digits".into());
    }
    hex::decode_to_slice(&e.prev, &mut prev).map_err(|_| "prev must be 64 lowercase hex digits")?;
    Ok((e, prev))
}

/// The chain rules, fed one raw line at a time.
pub(crate) struct Verifier<'k> {
    key: &'k Sm2PublicKey,
    pub(crate) report: VerifyReport,
}

impl<'k> Verifier<'k> {
    pub(crate) fn new(key: &'k Sm2PublicKey) -> Self {
        Verifier { key, report: VerifyReport::default() }
    }

    /// Checks the next line; on success the report's head and seq move on.
    pub(crate) fn line(&mut self, raw: &[u8]) -> Result<JournalEntry, String> {
        let (e, prev) = parse_line(raw)?;
        let first = self.report.good_lines == 0;
        if e.kind == KIND_ANCHOR {
            if !first {
                return Err("an anchor may only be the first line".into());
            }
            if e.seq == 0 {
                return Err("anchor seq must be at least 1".into());
            }
            check_signature(&e, 2, &prev, self.key).map_err(|m| format!("anchor: {m}"))?;
            let r = &mut self.report;
            r.good_lines = 1;
            r.last_seq = e.seq;
            r.head = prev;
            r.anchored_at = Some(e.seq);
            return Ok(e);
        }
        let want_seq = self.report.last_seq.checked_add(1).ok_or("seq overflow")?;
        if e.seq != want_seq {
            return Err(format!("seq {} where {want_seq} was expected (entry removed, inserted or reordered)", e.seq));
        }
        if prev != self.report.head {
            return Err(
                "prev does not match the previous entry (an earlier entry was changed, removed or reordered)".into()
            );
        }
        if e.kind.is_empty() || e.kind.len() > 64 {
            return Err("kind must be 1..=64 bytes".into());
        }
        if e.kind == KIND_CHECKPOINT {
            check_signature(&e, 1, &prev, self.key).map_err(|m| format!("checkpoint: {m}"))?;
            self.report.checkpoints += 1;
            self.report.last_checkpoint = Some(e.seq);
        } else if e.kind.starts_with(RESERVED_PREFIX) && e.kind != KIND_RECOVERED {
            return Err(format!("unknown reserved kind {}", e.kind));
        }
        let r = &mut self.report;
        r.good_lines += 1;
        r.last_seq = e.seq;
        r.head = sm3(raw);
        Ok(e)
    }
}

/// Verifies a whole journal from a reader, calling `visit` for every good
/// entry (anchor included). Stops at the first bad line. I/O errors are
/// errors; everything else lands in the report.
pub(crate) fn verify_stream(
    r: &mut impl BufRead,
    key: &Sm2PublicKey,
    mut visit: impl FnMut(&JournalEntry, u64),
) -> io::Result<VerifyReport> {
    let mut v = Verifier::new(key);
    let mut buf = Vec::with_capacity(1024);
    let mut offset: u64 = 0;
    loop {
        let line_no = v.report.good_lines + 1;
        let bad = |reason: String| BadLine { line: line_no, reason };
        match read_line(r, &mut buf)? {
            LineRead::Eof => return Ok(v.report),
            LineRead::Unterminated => {
                v.report.first_bad = Some(bad("truncated last line (no newline)".into()));
                v.report.torn_tail = true;
                return Ok(v.report);
            }
            LineRead::TooLong => {
                v.report.first_bad = Some(bad(format!("line longer than {MAX_LINE} bytes")));
                return Ok(v.report);
            }
            LineRead::Line => match v.line(&buf) {
                Ok(e) => {
                    visit(&e, offset);
                    offset += buf.len() as u64 + 1;
                    v.report.good_bytes = offset;
                }
                Err(reason) => {
                    v.report.first_bad = Some(bad(reason));
                    return Ok(v.report);
                }
            },
        }
    }
}
