//! Journal tests: append and reopen, every kind of tampering, checkpoints,
//! pruning, limits, and the fuzz body.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn key() -> &'static Sm2PrivateKey {
    static K: std::sync::OnceLock<Sm2PrivateKey> = std::sync::OnceLock::new();
    K.get_or_init(|| Sm2PrivateKey::generate().unwrap())
}

fn vk() -> &'static Sm2PublicKey {
    key().public_key()
}

/// A journal with `n` entries; returns its dir, path and head.
fn journal(n: u64) -> (tempfile::TempDir, PathBuf, JournalHead) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut j = Journal::create(&p, vk()).unwrap();
    for i in 1..=n {
        j.append_at(1_764_000_000_000 + i, "batch.sent", &json!({"seq": i, "digest": "ab".repeat(16), "note": "送出"}))
            .unwrap();
    }
    let h = j.head();
    (dir, p, h)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(String::from).collect()
}

fn write_lines(p: &Path, l: &[String]) {
    let mut s = l.join("\n");
    s.push('\n');
    std::fs::write(p, s).unwrap();
}

fn bad_line(p: &Path) -> Option<u64> {
    verify(p, vk()).unwrap().first_bad.map(|b| b.line)
}

#[test]
fn append_verify_reopen() {
    let (_d, p, h) = journal(10);
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.last_seq, r.head, r.good_lines), (10, h.hash, 10));
    let text = std::fs::read_to_string(&p).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(r#"{"seq":1,"time":1764000000001,"kind":"batch.sent","detail":{"#), "{first}");
    assert!(first.ends_with(&format!(r#""prev":"{}"}}"#, "0".repeat(64))));
    // each prev is the SM3 of the previous line
    let l = lines(&p);
    assert!(l[1].contains(&hex::encode(crate::crypto::sm3(l[0].as_bytes()))));

    let mut j = Journal::open(&p, vk()).unwrap();
    assert_eq!(j.head(), h);
    let h2 = j.append("login.failed", &json!({"account": "a1"})).unwrap();
    assert_eq!(h2.seq, 11);
    drop(j);
    assert!(verify(&p, vk()).unwrap().is_intact());
    let mut count = 0;
    visit(&p, vk(), |e| {
        count += 1;
        assert_eq!(e.seq, count);
    })
    .unwrap();
    assert_eq!(count, 11);
}

#[test]
fn empty_journal_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j");
    drop(Journal::create(&p, vk()).unwrap());
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact() && r.last_seq == 0 && r.head == [0; 32]);
    let mut j = Journal::open(&p, vk()).unwrap();
    assert_eq!(j.append("x", &json!(null)).unwrap().seq, 1);
    assert!(Journal::create(&p, vk()).is_err(), "create never overwrites");
}

#[test]
fn edited_byte_is_detected_at_that_line_or_the_next() {
    let (_d, p, _) = journal(6);
    let orig = std::fs::read(&p).unwrap();
    let l = lines(&p);
    let mut start = 0;
    for (i, line) in l.iter().enumerate().take(5) {
        for off in [1, 10, line.len() / 2, line.len() - 2] {
            let mut t = orig.clone();
            t[start + off] ^= 0x01;
            std::fs::write(&p, &t).unwrap();
            let bad = bad_line(&p).unwrap_or_else(|| panic!("edit line {} offset {off} undetected", i + 1));
            assert!(bad == i as u64 + 1 || bad == i as u64 + 2, "line {} reported as {bad}", i + 1);
        }
        start += line.len() + 1;
    }
}

#[test]
fn edited_last_line_changes_the_head() {
    // No later line vouches for the last one: its edit shows as a head that
    // differs from the one recorded (signed checkpoints, heads across the gate).
    let (_d, p, h) = journal(3);
    let mut l = lines(&p);
    let edited = l[2].replace(r#""seq":3},"#, r#""seq":4},"#);
    assert_ne!(edited, l[2]);
    l[2] = edited;
    write_lines(&p, &l);
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact());
    assert_ne!(r.head, h.hash);
}

#[test]
fn removed_inserted_and_reordered_lines_are_detected() {
    let (_d, p, _) = journal(6);
    let orig = lines(&p);

    let mut l = orig.clone();
    l.remove(2);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(3));

    let mut l = orig.clone();
    l.remove(0);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(1));

    let mut l = orig.clone();
    l.swap(3, 4);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(4));

    let mut l = orig.clone();
    l.insert(2, orig[1].clone());
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(3));

    let mut l = orig.clone();
    l.insert(6, orig[5].clone());
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(7));

    // whitespace or re-encoding of an otherwise identical entry
    let mut l = orig.clone();
    l[4] = l[4].replacen(":", ": ", 1);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(6));
    let mut l = orig.clone();
    l[5] = format!(" {}", l[5]);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(6));
}

#[test]
fn truncation_is_detected() {
    let (_d, p, h) = journal(4);
    let orig = std::fs::read(&p).unwrap();
    // mid-line: the last line has no newline
    std::fs::write(&p, &orig[..orig.len() - 10]).unwrap();
    let r = verify(&p, vk()).unwrap();
    assert_eq!(r.first_bad.as_ref().unwrap().line, 4);
    assert!(r.first_bad.unwrap().reason.contains("truncated"));
    // at a line boundary: intact, but the head went back
    std::fs::write(&p, &orig).unwrap();
    let l = lines(&p);
    write_lines(&p, &l[..3]);
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact());
    assert_eq!(r.last_seq, 3);
    assert_ne!(r.head, h.hash);
}

#[test]
fn long_lines_are_refused() {
    let (_d, p, _) = journal(1);
    let mut j = Journal::open(&p, vk()).unwrap();
    assert!(j.append("big", &json!({"x": "a".repeat(MAX_LINE)})).is_err());
    assert!(j.append("journal.checkpoint", &json!({})).is_err(), "reserved kind");
    assert!(j.append("", &json!({})).is_err());
    j.append("ok", &json!({})).unwrap();
    drop(j);
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
    f.write_all(b"\n").unwrap();
    let r = verify(&p, vk()).unwrap();
    assert_eq!(r.first_bad.unwrap().line, 3);
}

#[test]
fn only_one_writer() {
    let (_d, p, _) = journal(1);
    let _j = Journal::open(&p, vk()).unwrap();
    assert!(matches!(Journal::open(&p, vk()), Err(Error::Journal(_))));
    assert!(verify(&p, vk()).unwrap().is_intact(), "readers are not locked out");
}

#[test]
fn checkpoints_sign_the_head() {
    let (_d, p, _) = journal(3);
    let mut j = Journal::open(&p, vk()).unwrap();
    let h = j.checkpoint(key()).unwrap();
    j.append("after", &json!(1)).unwrap();
    assert!(j.checkpoint(&Sm2PrivateKey::generate().unwrap()).is_err(), "another key");
    drop(j);
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact());
    assert_eq!((r.checkpoints, r.last_checkpoint), (1, Some(h.seq)));
    // another verify key rejects the checkpoint
    let other = Sm2PrivateKey::generate().unwrap();
    let r = verify(&p, other.public_key()).unwrap();
    assert_eq!(r.first_bad.unwrap().line, 4);
    // a forged checkpoint (signature of the wrong seq) is rejected
    let mut l = lines(&p);
    let e: JournalEntry = serde_json::from_str(&l[3]).unwrap();
    let mut prev = [0u8; 32];
    hex::decode_to_slice(&e.prev, &mut prev).unwrap();
    let sig = key().sign(&signed_message(1, e.seq + 1, e.time, &prev)).unwrap();
    let forged = JournalEntry { detail: signature_detail(vk(), &sig), ..e };
    l[3] = serde_json::to_string(&forged).unwrap();
    l.truncate(4);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(4));
}

#[test]
fn prune_keeps_a_verifiable_journal() {
    let (_d, p, h) = journal(20);
    let mut j = Journal::open(&p, vk()).unwrap();
    let r = j.prune_before(8, key()).unwrap();
    assert_eq!(r, PruneReport { removed: 7, anchor_seq: Some(7) });
    assert_eq!(j.head(), h);
    let l = lines(&p);
    assert_eq!(l.len(), 14);
    assert!(l[0].contains(r#""kind":"journal.anchor""#) && l[0].starts_with(r#"{"seq":7,"#));
    assert!(l[1].starts_with(r#"{"seq":8,"#));
    let v = verify(&p, vk()).unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.anchored_at, v.last_seq, v.head), (Some(7), 20, h.hash));

    // appends continue the same chain; prune again; nothing to do below the anchor
    j.append("x", &json!({})).unwrap();
    assert_eq!(j.prune_before(5, key()).unwrap().removed, 0);
    assert_eq!(j.prune_before(8, key()).unwrap().removed, 0);
    assert_eq!(j.prune_before(15, key()).unwrap(), PruneReport { removed: 7, anchor_seq: Some(14) });
    assert!(j.prune_before(23, key()).is_err(), "beyond the head");
    assert!(j.prune_before(16, &Sm2PrivateKey::generate().unwrap()).is_err(), "another key");
    drop(j);
    let v = verify(&p, vk()).unwrap();
    assert!(v.is_intact() && v.anchored_at == Some(14) && v.last_seq == 21);

    // pruning everything leaves only the anchor, and the chain goes on from it
    let mut j = Journal::open(&p, vk()).unwrap();
    let head = j.head();
    assert_eq!(j.prune_before(22, key()).unwrap().removed, 7);
    assert_eq!(lines(&p).len(), 1);
    assert_eq!(j.head(), head);
    j.append("y", &json!({})).unwrap();
    drop(j);
    let v = verify(&p, vk()).unwrap();
    assert!(v.is_intact() && v.last_seq == 22 && v.anchored_at == Some(21));
    assert!(
        !std::fs::read_dir(p.parent().unwrap()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("tmp"))
    );
}

#[test]
fn a_pruned_journal_needs_its_valid_anchor() {
    let (_d, p, _) = journal(10);
    let mut j = Journal::open(&p, vk()).unwrap();
    j.prune_before(5, key()).unwrap();
    drop(j);
    let orig = lines(&p);
    // without the anchor: starts at seq 5
    write_lines(&p, &orig[1..]);
    assert_eq!(bad_line(&p), Some(1));
    // anchor with a changed seq or prev
    let mut l = orig.clone();
    l[0] = l[0].replacen(r#"{"seq":4,"#, r#"{"seq":3,"#, 1);
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(1));
    // anchor in the middle
    let mut l = orig.clone();
    l.insert(3, orig[0].clone());
    write_lines(&p, &l);
    assert_eq!(bad_line(&p), Some(4));
    // anchor signed by another key
    write_lines(&p, &orig);
    let other = Sm2PrivateKey::generate().unwrap();
    assert_eq!(verify(&p, other.public_key()).unwrap().first_bad.unwrap().line, 1);
    assert!(verify(&p, vk()).unwrap().is_intact());
}

#[test]
fn broken_journals_are_not_opened_or_pruned() {
    let (_d, p, _) = journal(5);
    let mut l = lines(&p);
    l.swap(1, 2);
    write_lines(&p, &l);
    assert!(matches!(Journal::open(&p, vk()), Err(Error::Journal(m)) if m.contains("line 2")));
}

#[test]
fn fuzz_body_on_valid_and_mutated_journals() {
    // the fuzz key's journal: valid, then every byte flipped
    let fk = Sm2PrivateKey::from_scalar_bytes(&[0x17; 32]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let mut j = Journal::create(&p, fk.public_key()).unwrap();
    j.append_at(1, "a", &json!({"k": [1, 2, 3]})).unwrap();
    j.checkpoint(&fk).unwrap();
    j.append_at(3, "b", &json!("s")).unwrap();
    drop(j);
    let bytes = std::fs::read(&p).unwrap();
    assert!(verify_bytes(&bytes, fk.public_key()).is_intact());
    fuzz_verify_journal(&bytes).unwrap();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x20;
        fuzz_verify_journal(&t).unwrap();
    }
    for s in [&b""[..], b"\n", b"{}", b"{}\n", b"\n\n\n", &[0xff; 10]] {
        fuzz_verify_journal(s).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn prop_fuzz_body_holds(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(fuzz_verify_journal(&data), Ok(()));
    }

    #[test]
    fn prop_json_ish_lines(lines in proptest::collection::vec(r#"\{"seq":[0-9]{1,2},"time":[0-9],"kind":"[a-z]{1,3}","detail":(null|\{\}|"[a-z]*"),"prev":"[0a-f]{64}"\}"#, 1..5)) {
        let text = lines.join("\n") + "\n";
        prop_assert_eq!(fuzz_verify_journal(text.as_bytes()), Ok(()));
    }
}

#[test]
fn open_recovers_a_torn_last_line() {
    let (_d, p, _) = journal(4);
    let orig = std::fs::read(&p).unwrap();
    let l = lines(&p);
    // a crash mid-append: part of a fifth line, no newline
    let mut torn = orig.clone();
    torn.extend_from_slice(b"{\"seq\":5,\"time\":17640000");
    std::fs::write(&p, &torn).unwrap();
    let mut j = Journal::open(&p, vk()).unwrap();
    assert_eq!(j.head().seq, 5, "the recovery entry takes seq 5");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.starts_with(std::str::from_utf8(&orig).unwrap()), "verified lines kept byte for byte");
    let last = text.lines().last().unwrap();
    assert!(last.contains(r#""kind":"journal.recovered""#) && last.contains(r#""truncated_bytes":24"#), "{last}");
    assert!(text.ends_with('\n'));
    j.append("after", &json!({})).unwrap();
    drop(j);
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.last_seq, r.good_lines), (6, 6));
    // the same holds when the torn line is the first one
    let (_d2, p2, _) = journal(0);
    std::fs::write(&p2, b"{\"seq\":1").unwrap();
    let j2 = Journal::open(&p2, vk()).unwrap();
    assert_eq!(j2.head().seq, 1);
    drop(j2);
    assert!(verify(&p2, vk()).unwrap().is_intact());
    // a complete bad line is still refused: only a torn tail is recovered
    let mut bad = l.clone();
    bad[1] = bad[1].replace("batch.sent", "batch.lost");
    write_lines(&p, &bad);
    assert!(Journal::open(&p, vk()).is_err());
    // a torn tail after a bad line is refused too
    let mut s = bad.join("\n");
    s.push_str("\n{\"seq\"");
    std::fs::write(&p, s).unwrap();
    assert!(Journal::open(&p, vk()).is_err());
    // nobody else may write the recovery kind
    let (_d3, p3, _) = journal(1);
    let mut j3 = Journal::open(&p3, vk()).unwrap();
    assert!(j3.append(KIND_RECOVERED, &json!({})).is_err());
}

/// A write that failed half-way (a full disk) leaves bytes that were never
/// acknowledged; the next append cuts them, records `journal.recovered`, and
/// the journal goes on verifying — the service resumes when space returns.
#[test]
fn a_failed_write_is_cut_and_the_journal_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut j = Journal::create(&p, vk()).unwrap();
    j.append("upload", &json!({"n": 1})).unwrap();
    // What a failed write_all leaves: part of a line, and the flag set.
    {
        use std::io::Write as _;
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"seq":2,"time":1,"kind":"upl"#).unwrap();
    }
    j.broken = true;
    let h = j.append("upload", &json!({"n": 2})).unwrap();
    assert_eq!(h.seq, 3, "entry 2 is the recovery record");
    let r = verify(&p, vk()).unwrap();
    assert!(r.is_intact(), "{r:?}");
    let l = lines(&p);
    assert_eq!(l.len(), 3);
    assert!(l[1].contains(KIND_RECOVERED) && l[1].contains("\"truncated_bytes\":29"), "{}", l[1]);
    // and it reopens cleanly
    drop(j);
    assert_eq!(Journal::open(&p, vk()).unwrap().head(), h);
}
