//! ARCHITECTURE invariants 2 and 5 against a real process: after uploads of
//! records with known planted identifiers (accepted, rejected, out of scope,
//! whole-file errors, a scan), no identifier is found in any file under the
//! DMZ's data folder or outbox (raw originals are encrypted, what crosses is
//! desensitised); the configuration holds no vault private key outside
//! `vault-DEMO-ONLY/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use dmz_common::*;
use flumon_shared::crypto::Sm2PrivateKey;
use flumon_shared::desens::outbound::OutRecord;
use flumon_shared::entries::Entry;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identifier_at_rest_or_in_batches() {
    let mut dmz = Dmz::new(|_| {});
    let a = dmz.hospital(21);
    dmz.start();
    let c = dmz.client(&a);
    let ns: Vec<u32> = (500..560).collect();
    // accepted, as JSON and as CSV
    let json_recs: Vec<_> = ns[..30].iter().map(|n| outpatient(&a.uscc, *n)).collect();
    let r = upload(&c, &a.token, "outpatient", Some("application/json"), json_file(&json_recs)).await;
    assert_eq!((r.status, r.json().unwrap()["accepted"].as_u64()), (200, Some(30)));
    let csv_recs: Vec<_> = ns[30..50].iter().map(|n| outpatient(&a.uscc, *n)).collect();
    let r = upload(&c, &a.token, "outpatient", Some("text/csv; charset=utf-8"), csv_of(&csv_recs)).await;
    assert_eq!(
        (r.status, r.json().unwrap()["accepted"].as_u64()),
        (200, Some(20)),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // out of scope (not influenza) and invalid rows: rejected, archived encrypted only
    let mut bad: Vec<_> = ns[50..55].iter().map(|n| outpatient(&a.uscc, *n)).collect();
    for r in &mut bad {
        r["ZDBM1"] = json!("J20.9");
        r["ZDMC1"] = json!("急性支气管炎");
    }
    bad.extend(ns[55..57].iter().map(|n| {
        let mut r = outpatient(&a.uscc, *n);
        r["NL"] = json!("3");
        r
    }));
    let r = upload(&c, &a.token, "outpatient", None, json_file(&bad)).await;
    assert_eq!((r.status, r.json().unwrap()["rejected"].as_u64()), (200, Some(7)));
    // a whole-file error (unknown column) with identifiers in it
    let mut unk = outpatient(&a.uscc, ns[57]);
    unk["BEIZHU"] = json!("备注");
    let r = upload(&c, &a.token, "outpatient", None, json_file(&[unk])).await;
    assert_eq!(r.status, 422);
    // a scan with an identifier in its text
    let p = planted(ns[58]);
    let pdf = format!("%PDF-1.4\n% {} {} {}\n1 0 obj << /Type /Page >> endobj\n%%EOF", p.xm, p.sfzh, p.dh);
    let boundary = "xXbOuNdArYxX";
    let mut body = Vec::new();
    for (k, v) in [("ZZJGDM", a.uscc.as_str()), ("JZLSH", "MZ0000000558"), ("WJXH", "1"), ("WJZS", "1"), ("NRLB", "2")]
    {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.pdf\"\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(pdf.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = format!("Bearer {}", a.token);
    let r = c.send("POST", "/api/v1/scans", &[("authorization", &auth), ("content-type", &ct)], body).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    dmz.wait_drained().await;
    dmz.stop();

    // what crossed: 50 desensitised records, none holding a planted value
    let batches = dmz.batches();
    let records: Vec<&OutRecord> = batches
        .iter()
        .flat_map(|(_, e)| e.iter())
        .filter_map(|e| if let Entry::Record(r) = e { Some(r) } else { None })
        .collect();
    assert_eq!(records.len(), 50);
    for r in &records {
        let OutRecord::Outpatient(o) = r else { panic!("not an outpatient record") };
        assert!(o.patient.person_key.as_deref().is_some_and(|k| k.bytes().all(|b| (b'a'..=b'p').contains(&b))));
        assert!(o.case_key.bytes().all(|b| (b'a'..=b'p').contains(&b)));
    }

    // no planted identifier in any file of the data folder or the outbox
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for n in &ns {
        let p = planted(*n);
        for (what, v) in [("XM", p.xm), ("SFZH", p.sfzh), ("DH", p.dh), ("XZZ", p.xzz), ("MZZYH", p.mzzyh)] {
            needles.push((format!("{what} of {n}"), v.into_bytes()));
        }
        needles.push((format!("JZLSH of {n}"), format!("MZ{n:010}").into_bytes()));
    }
    let mut files = files_under(&dmz.path("data"));
    files.extend(files_under(&dmz.path("outbox")));
    assert!(files.iter().any(|f| f.ends_with("sled/db")), "sled's log is searched");
    let mut searched = 0u64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        searched += bytes.len() as u64;
        for (what, needle) in &needles {
            assert!(!contains(&bytes, needle), "{what} found in {}", f.display());
        }
    }
    assert!(searched > 10_000, "searched only {searched} bytes");
    // control: plaintext that is not personal (the hospital's code) is found, so the search sees sled's data
    assert!(files.iter().any(|f| f.ends_with("sled/db") && contains(&std::fs::read(f).unwrap(), a.uscc.as_bytes())));

    // no vault private key outside vault-DEMO-ONLY/
    let vault = Sm2PrivateKey::load(&dmz.path("vault-DEMO-ONLY/vault.pem")).unwrap();
    let der = vault.to_pkcs8_der().unwrap();
    let pem = std::fs::read_to_string(dmz.path("vault-DEMO-ONLY/vault.pem")).unwrap();
    let body_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let cfg = std::fs::read_to_string(&dmz.config).unwrap();
    assert!(!cfg.contains("vault-DEMO-ONLY") && !cfg.contains("PRIVATE"), "dmz.toml points at or holds a private key");
    for f in files_under(dmz.dir.path()) {
        if f.starts_with(dmz.path("vault-DEMO-ONLY")) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, &der), "vault private key (DER) in {}", f.display());
        for l in &body_lines {
            assert!(!contains(&bytes, l.as_bytes()), "vault private key (PEM) in {}", f.display());
        }
    }
}
