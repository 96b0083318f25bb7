//! `open` of more items than fit in one journal line: the ids are journaled
//! in parts under the 64 KiB line limit, the journal verifies, and the parts
//! together list every id, with the count and SM3 they claim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use flumon_shared::crypto::Sm2PublicKey;
use flumon_shared::journal::{self, JournalEntry, MAX_LINE};
use flumon_vault::Error;
use flumon_vault::keystore;
use flumon_vault::open::{self, IDS_PER_ENTRY, OpenConfig, Selection};

const N: usize = 2_600;
const HOSPITAL: &str = "91110000000000001A";

/// The parts of one journaled list, put back together: checks numbering,
/// count and SM3, returns the ids.
fn reassemble(parts: &[&JournalEntry], list: &str) -> Vec<String> {
    assert!(!parts.is_empty());
    let total_parts = parts[0].detail["parts"].as_u64().unwrap() as usize;
    assert_eq!(parts.len(), total_parts, "every part is present");
    let mut ids = Vec::new();
    for (n, e) in parts.iter().enumerate() {
        let d = &e.detail;
        assert_eq!(d["part"].as_u64().unwrap() as usize, n + 1);
        assert_eq!(d["parts"], parts[0].detail["parts"]);
        assert_eq!(d[format!("{list}_sm3")], parts[0].detail[format!("{list}_sm3")]);
        // who and why in every part
        assert_eq!(d["officer"], "张三");
        assert!(d["reason"].as_str().unwrap().contains("流感聚集性疫情调查"));
        assert!(d["os_user"].is_string());
        let part = d[list].as_array().unwrap();
        assert!(part.len() <= IDS_PER_ENTRY, "{} ids in one entry", part.len());
        ids.extend(part.iter().map(|v| v.as_str().unwrap().to_string()));
    }
    let d = &parts[0].detail;
    assert_eq!(d[format!("{list}_total")].as_u64().unwrap() as usize, ids.len());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(d[format!("{list}_sm3")].as_str().unwrap(), open::ids_sm3(&refs));
    ids
}

#[test]
fn open_of_more_than_2000_items_is_journaled_in_parts() {
    let t = tempfile::tempdir().unwrap();
    let vault = t.path().join("vault");
    vault_2_of_3(&vault);
    let vpub = Sm2PublicKey::load(&vault.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let items: Vec<Plain> = (1..=N)
        .map(|i| Plain {
            id: format!("dmz-1-r{i:016}"),
            hospital: HOSPITAL.into(),
            kind: "upload",
            bytes: format!("ZZJGDM,JLID\n12345678901234567X,{i}\n").into_bytes(),
        })
        .collect();
    let want: Vec<String> = items.iter().map(|p| p.id.clone()).collect();
    // one entry with every id would be over the line limit (the bug: open failed)
    assert!(serde_json::to_vec(&want).unwrap().len() > MAX_LINE);
    let (arch, _) = fake_export(&t.path().join("media"), &vpub, &items);
    let out = t.path().join("out");
    let cfg = |keys| OpenConfig {
        archive: arch.clone(),
        vault_dir: vault.clone(),
        keys,
        select: Selection::Hospital { code: HOSPITAL.into(), since: None },
        reason: "流感聚集性疫情调查 (test)".into(),
        officer: "张三".into(),
        out: out.clone(),
        dmz_pub: None,
    };

    // one share: refused, and the refusal lists every id too
    let e = open::open(&cfg(unlock(&vault, &[1]))).unwrap_err();
    assert!(matches!(e, Error::NotEnoughShares { .. }), "{e}");
    // two shares: every item opens
    let rep = open::open(&cfg(unlock(&vault, &[1, 3]))).unwrap();
    assert_eq!(rep.opened.len(), N);
    for p in [&items[0], &items[N / 2], &items[N - 1]] {
        assert_eq!(std::fs::read(out.join(format!("{}.csv", p.id))).unwrap(), p.bytes);
    }

    // the shared journal verify: chain intact, checkpoint signed
    let path = vault.join(open::JOURNAL_FILE);
    let mut entries = Vec::new();
    let jr = journal::visit(&path, &vpub, |e| entries.push(e.clone())).unwrap();
    assert!(jr.is_intact(), "{jr:?}");
    assert!(jr.checkpoints >= 1, "{jr:?}");
    assert_eq!(journal::verify(&path, &vpub).unwrap().last_seq, jr.last_seq);
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        assert!(line.len() <= MAX_LINE, "line of {} bytes", line.len());
    }

    let of_kind = |k: &str| entries.iter().filter(|e| e.kind == k).collect::<Vec<_>>();
    let refused = of_kind("vault.unlock.refused");
    let opens = of_kind("vault.open");
    let opened = of_kind("vault.opened");
    assert!(opens.len() >= N.div_ceil(IDS_PER_ENTRY), "{} parts", opens.len());
    // the open's parts are consecutive entries, all before the result
    let seqs: Vec<u64> = opens.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(opened.iter().all(|e| e.seq > *seqs.last().unwrap()));
    assert!(opens.iter().all(|e| e.detail["archive"].is_string() && e.detail["manifest_sm3"].is_string()));

    assert_eq!(reassemble(&refused, "items"), want);
    assert_eq!(reassemble(&opens, "items"), want);
    assert_eq!(reassemble(&opened, "opened"), want);
    assert!(opened.iter().all(|e| e.detail["failed"].is_null()));

    // tampering with one part's id breaks its SM3 and the chain
    let text = std::fs::read_to_string(&path).unwrap();
    let forged = text.replacen(&format!("\"{}\"", want[N - 1]), "\"dmz-1-rforged\"", 1);
    assert_ne!(forged, text);
    assert!(!journal::verify_bytes(forged.as_bytes(), &vpub).is_intact());
}
