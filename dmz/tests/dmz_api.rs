//! The agents' API of a real `flumon-dmz` process over real TLS: receipts,
//! error codes (table-driven), 413, content types, authentication (token,
//! client certificate, hospital), enrolment and revocation, TLS 1.2 refused,
//! scans, resend dedupe, operator export/purge through the admin listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::sync::Arc;

use dmz_common::*;
use flumon_dmz::client::Client;
use serde_json::{Value, json};

fn codes(receipt: &Value) -> Vec<(u64, String, String)> {
    receipt["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn with(mut v: Value, k: &str, val: Value) -> Value {
    if val.is_null() {
        v.as_object_mut().unwrap().remove(k);
    } else {
        v[k] = val;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_api_end_to_end() {
    let mut dmz = Dmz::new(|t| {
        let l = t.entry("limits").or_insert(toml::Value::Table(toml::Table::new())).as_table_mut().unwrap();
        l.insert("upload_max_bytes".into(), (2 * 1024 * 1024).into());
        l.insert("upload_max_rows".into(), 50.into());
    });
    let a = dmz.hospital(1);
    let b = dmz.hospital(2);
    dmz.start();
    let ca = dmz.client(&a);

    // a valid upload: 200 with a receipt id
    let r = upload(&ca, &a.token, "outpatient", Some("application/json"), json_file(&[outpatient(&a.uscc, 1)])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    assert!(v["receipt_id"].as_str().unwrap().starts_with("dmz-1-u"));
    assert_eq!((v["received"].as_u64(), v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(1), Some(1), Some(0)));

    // row errors, table-driven: (change, field, code)
    let base = outpatient(&a.uscc, 2);
    let day = now_cst().date();
    let rows: Vec<(Value, &str, &str)> = vec![
        (with(base.clone(), "KSMC", Value::Null), "KSMC", "REQUIRED"),
        (with(base.clone(), "XB", json!("7")), "XB", "BAD_CODE"),
        (with(base.clone(), "ZFY", json!("abc")), "ZFY", "BAD_NUMBER"),
        (with(base.clone(), "YWRQ", json!("2026-13-45")), "YWRQ", "BAD_DATE"),
        (with(base.clone(), "JZSJ", json!("yesterday")), "JZSJ", "BAD_DATETIME"),
        (with(base.clone(), "BBH", json!("2.0")), "BBH", "BAD_VERSION"),
        (with(base.clone(), "ZZJGDM", json!("91350100M000100Y44")), "ZZJGDM", "BAD_ORG_CODE"),
        (with(base.clone(), "ZZJGDM", json!(b.uscc)), "ZZJGDM", "ORG_MISMATCH"),
        (
            with(base.clone(), "GXSJ", json!(format!("{} 10:00:00", day + chrono::Duration::days(2)))),
            "GXSJ",
            "FUTURE_TIME",
        ),
        (with(base.clone(), "YWRQ", json!((day - chrono::Duration::days(40)).to_string())), "YWRQ", "YWRQ_WINDOW"),
        (with(base.clone(), "SFZH", json!("110105194912310021")), "SFZH", "BAD_ID_NUMBER"),
        (with(base.clone(), "NL", json!("30")), "NL", "AGE_MISMATCH"),
        (with(base.clone(), "XZZ_XZQH", json!("990101")), "XZZ_XZQH", "BAD_REGION"),
        (with(base.clone(), "ZDBM1", json!("流感")), "ZDBM1", "BAD_ICD"),
        (with(base.clone(), "KSMC", json!("科".repeat(60))), "KSMC", "TOO_LONG"),
        (with(with(base.clone(), "ZDBM1", json!("J20.9")), "ZDMC1", json!("急性支气管炎")), "", "OUT_OF_SCOPE"),
    ];
    let records: Vec<Value> = rows.iter().map(|(r, _, _)| r.clone()).collect();
    let r = upload(&ca, &a.token, "outpatient", Some("application/json"), json_file(&records)).await;
    assert_eq!(r.status, 200);
    let v = r.json().unwrap();
    assert_eq!(v["received"].as_u64(), Some(rows.len() as u64));
    assert_eq!(v["rejected"].as_u64(), Some(rows.len() as u64), "{v}");
    let got = codes(&v);
    for (i, (_, field, code)) in rows.iter().enumerate() {
        let row = i as u64 + 1;
        assert!(
            got.iter().any(|(r, f, c)| *r == row && f == field && c == code),
            "row {row}: want {field} {code}, got {got:?}"
        );
    }
    for e in v["errors"].as_array().unwrap() {
        let m = e["message"].as_str().unwrap();
        assert!(!m.contains("110105") && !m.contains("测试巷"), "a message repeats a value: {m}");
    }

    // whole-file errors: 422 with the receipt, counts 0, one error at row 0
    let cases: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
        (Some("application/json"), Vec::new(), "FILE_EMPTY"),
        (Some("application/json"), b"{\"rows\":[]}".to_vec(), "FILE_JSON"),
        (
            Some("application/json"),
            b"{\"records\":[{\"ZZJGDM\":\"x\",\"HELLO\":\"1\"}]}".to_vec(),
            "FILE_UNKNOWN_COLUMN",
        ),
        (Some("application/json"), b"{\"records\":[{\"ZZJGDM\":\"x\"".to_vec(), "FILE_TRUNCATED"),
        (Some("image/png"), json_file(&[outpatient(&a.uscc, 3)]), "FILE_FORMAT"),
        (Some("text/csv; charset=latin1"), b"ZZJGDM\nx\n".to_vec(), "FILE_ENCODING"),
        (Some("text/csv"), b"NOPE,NADA\n1,2\n".to_vec(), "FILE_NO_HEADER"),
        (Some("text/csv"), b"ZZJGDM,JLID,ZZJGDM\n1,2,3\n".to_vec(), "FILE_DUPLICATE_COLUMN"),
        (Some("text/csv"), b"ZZJGDM,JLID\n1,2,3\n".to_vec(), "FILE_ROW_WIDTH"),
    ];
    for (ct, body, code) in cases {
        let r = upload(&ca, &a.token, "outpatient", ct, body).await;
        assert_eq!(r.status, 422, "{code}: {}", String::from_utf8_lossy(&r.body));
        let v = r.json().unwrap();
        assert_eq!(codes(&v), vec![(0, String::new(), code.to_owned())], "{v}");
        assert_eq!((v["received"].as_u64(), v["accepted"].as_u64()), (Some(0), Some(0)));
        assert!(!v["receipt_id"].as_str().unwrap().is_empty());
    }
    // a header with no rows is a valid empty upload; CSV with Chinese headers works
    let r = upload(&ca, &a.token, "visits", Some("text/csv"), "组织机构代码,记录唯一标识,操作类型,更新时间,业务日期,接口版本,统计日期,门诊总诊疗人次,急诊总诊疗人次,当日在院人数\n".into()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["received"].as_u64(), Some(0));

    // 413: too many rows (a receipt says so), and too many bytes
    let many: Vec<Value> = (100..160).map(|n| outpatient(&a.uscc, n)).collect();
    let r = upload(&ca, &a.token, "outpatient", Some("application/json"), json_file(&many)).await;
    assert_eq!(r.status, 413);
    assert_eq!(codes(&r.json().unwrap())[0].2, "FILE_TOO_MANY_ROWS");
    let r = upload(&ca, &a.token, "outpatient", Some("text/csv"), vec![b'x'; 3 * 1024 * 1024]).await;
    assert_eq!(r.status, 413);
    assert_eq!(codes(&r.json().unwrap())[0].2, "FILE_TOO_LARGE");

    // unknown type
    let r = upload(&ca, &a.token, "nonsense", Some("application/json"), json_file(&[])).await;
    assert_eq!(r.status, 400);

    // authentication
    let ok_body = || json_file(&[outpatient(&a.uscc, 5)]);
    let r =
        ca.send("POST", "/api/v1/upload/outpatient", &[("content-type", "application/json")], ok_body()).await.unwrap();
    assert_eq!(r.status, 401, "no token");
    let r = upload(&ca, "00".repeat(32).as_str(), "outpatient", None, ok_body()).await;
    assert_eq!(r.status, 401, "unknown token");
    let r = upload(&dmz.client_no_cert(&a), &a.token, "outpatient", None, ok_body()).await;
    assert_eq!(r.status, 403, "no client certificate");
    let r = upload(&dmz.client(&b), &a.token, "outpatient", None, ok_body()).await;
    assert_eq!(r.status, 403, "hospital B's certificate with A's token");
    let r = upload(&dmz.client(&b), &b.token, "outpatient", None, ok_body()).await;
    assert_eq!(r.status, 200, "B's token and certificate, A's ZZJGDM: rows rejected");
    assert_eq!(codes(&r.json().unwrap()), vec![(1, "ZZJGDM".to_owned(), "ORG_MISMATCH".to_owned())]);
    let ping =
        ca.send("GET", "/api/v1/ping", &[("authorization", &format!("Bearer {}", a.token))], Vec::new()).await.unwrap();
    assert_eq!(ping.status, 200);
    assert_eq!(ping.json().unwrap()["hospital"].as_str(), Some(a.uscc.as_str()));

    // TLS 1.2 is refused; TLS 1.3 without a client certificate is fine at the TLS layer
    tls12_refused(dmz.public, &a.ca).await;

    // enrolment: one-time code + CSR ─▶ a certificate that works; the code cannot be reused
    let out = dmz.cli(&["admin", "enrol-code", "--uscc", &a.uscc]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let code = serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"].as_str().unwrap().to_owned();
    let (csr, key_pem) = flumon_dmz::tls::make_csr("agent").unwrap();
    let anon = dmz.client_no_cert(&a);
    let enrol = |code: String, csr: String| {
        let anon = anon.clone();
        let uscc = a.uscc.clone();
        async move {
            let body = serde_json::to_vec(&json!({"uscc": uscc, "code": code, "csr": csr})).unwrap();
            anon.send("POST", "/api/v1/enroll", &[("content-type", "application/json")], body).await.unwrap()
        }
    };
    let r = enrol(code.clone(), csr.clone()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cert = r.json().unwrap()["cert"].as_str().unwrap().to_owned();
    let (cp, kp) = (dmz.path("enrolled.pem"), dmz.path("enrolled.key"));
    std::fs::write(&cp, cert).unwrap();
    std::fs::write(&kp, key_pem.as_bytes()).unwrap();
    let enrolled = Client::new(dmz.public, &a.ca, Some((&cp, &kp))).unwrap();
    let r = upload(&enrolled, &a.token, "outpatient", None, json_file(&[outpatient(&a.uscc, 6)])).await;
    assert_eq!(r.status, 200, "enrolled certificate works");
    let r = enrol(code, csr).await;
    assert_eq!(r.status, 403, "code reused");
    let r = enrol("ab".repeat(32), flumon_dmz::tls::make_csr("x").unwrap().0).await;
    assert_eq!(r.status, 403, "wrong code");

    // death scans: PDF accepted, GIF refused by magic bytes, other hospital's ZZJGDM refused
    let scan = |zzjgdm: String, file: Vec<u8>| {
        let c = dmz.client(&a);
        let token = a.token.clone();
        async move {
            let (ct, body) = multipart(
                &[("ZZJGDM", &zzjgdm), ("JZLSH", "MZ0000000001"), ("WJXH", "1"), ("WJZS", "2"), ("NRLB", "1")],
                &file,
            );
            c.send(
                "POST",
                "/api/v1/scans",
                &[("authorization", &format!("Bearer {token}")), ("content-type", &ct)],
                body,
            )
            .await
            .unwrap()
        }
    };
    let r = scan(a.uscc.clone(), b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF".to_vec()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(1));
    let r = scan(a.uscc.clone(), b"GIF89a....".to_vec()).await;
    assert_eq!(r.status, 422);
    assert_eq!(codes(&r.json().unwrap())[0].2, "FILE_FORMAT");
    let r = scan(b.uscc.clone(), b"%PDF-1.4".to_vec()).await;
    assert_eq!(r.status, 422);
    assert_eq!(codes(&r.json().unwrap())[0].2, "ORG_MISMATCH");

    // resend dedupe: the same file twice ─▶ the second queues nothing new
    let file = json_file(&(200..210).map(|n| outpatient(&a.uscc, n)).collect::<Vec<_>>());
    let m0 = dmz.metrics().await;
    let r1 = upload(&ca, &a.token, "outpatient", None, file.clone()).await;
    let m1 = dmz.metrics().await;
    let r2 = upload(&ca, &a.token, "outpatient", None, file).await;
    let m2 = dmz.metrics().await;
    assert_eq!((r1.status, r2.status), (200, 200));
    assert_eq!(r2.json().unwrap()["accepted"].as_u64(), Some(10), "the resend is accepted again");
    let q = "flumon_dmz_records_queued_total";
    assert_eq!(m1[q] - m0[q], 10.0);
    assert_eq!(m2[q] - m1[q], 0.0, "unchanged records not queued again");
    assert_eq!(m2["flumon_dmz_records_unchanged_total"] - m1["flumon_dmz_records_unchanged_total"], 10.0);

    // revocation: the agent's certificate is refused afterwards
    let out = dmz.cli(&["admin", "revoke-agents", "--uscc", &a.uscc]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = upload(&ca, &a.token, "outpatient", None, json_file(&[outpatient(&a.uscc, 7)])).await;
    assert_eq!(r.status, 403, "revoked certificate");
    let r = upload(&enrolled, &a.token, "outpatient", None, json_file(&[outpatient(&a.uscc, 7)])).await;
    assert_eq!(r.status, 403, "revoked enrolled certificate");

    // operator endpoints need the operator credentials
    let c = Client::new(dmz.admin, &a.ca, Some((&a.cert, &a.key))).unwrap();
    let r = c.post_json("/operator/purge-raw", "x", &json!({"exported_older_than_days": 0})).await.unwrap();
    assert_eq!(r.status, 401);

    // export-raw and purge-raw while the server runs (through the admin listener)
    dmz.wait_drained().await;
    let to = dmz.path("media");
    let out = dmz.cli(&["export-raw", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n_items = rep["items"].as_u64().unwrap();
    assert!(n_items >= 10, "{rep}");
    check_export(&dmz, &to.join(rep["folder"].as_str().unwrap()), n_items);
    let out = dmz.cli(&["purge-raw", "--exported-older-than", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let purged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(purged["items"].as_u64(), Some(n_items));
    // nothing unexported is deleted: a new upload survives a purge, then exports
    let r = upload(&dmz.client(&b), &b.token, "outpatient", None, json_file(&[outpatient(&b.uscc, 9)])).await;
    assert_eq!(r.status, 200);
    let out = dmz.cli(&["purge-raw", "--exported-older-than", "0"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["items"].as_u64(), Some(0));
    let out = dmz.cli(&["export-raw", "--to", to.to_str().unwrap()]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["items"].as_u64(), Some(1));

    // the batches carry the registry, receipts, scans and the journal head
    dmz.wait_drained().await;
    dmz.stop();
    let batches = dmz.batches();
    assert!(!batches.is_empty());
    for (i, (h, _)) in batches.iter().enumerate() {
        assert_eq!(h.sequence, i as u64 + 1, "contiguous sequence numbers");
        assert_eq!(h.node_id, "dmz-1");
    }
    let all: Vec<_> = batches.into_iter().flat_map(|(_, e)| e).collect();
    use flumon_shared::entries::Entry;
    let hospitals: Vec<_> =
        all.iter().filter_map(|e| if let Entry::Hospital(h) = e { Some(h.code.clone()) } else { None }).collect();
    assert!(hospitals.contains(&a.uscc) && hospitals.contains(&b.uscc));
    assert!(all.iter().any(|e| matches!(e, Entry::Scan(s) if s.pages == Some(1))));
    assert!(all.iter().any(|e| matches!(e, Entry::JournalHead(_))));
    assert!(all.iter().filter(|e| matches!(e, Entry::Receipt(_))).count() >= 15);
    // the audit journal verifies
    let pk = flumon_shared::crypto::Sm2PublicKey::load(&dmz.path("keys/dmz-sign.pub.pem")).unwrap();
    let rep = flumon_shared::journal::verify(&dmz.path("data/audit.jsonl"), &pk).unwrap();
    assert!(rep.is_intact() && rep.checkpoints >= 1, "{rep:?}");
}

fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----flumonTestBoundary7MA4YWxk";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

async fn tls12_refused(addr: std::net::SocketAddr, ca: &std::path::Path) {
    let mut roots = rustls::RootCertStore::empty();
    for c in flumon_dmz::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(flumon_dmz::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let r = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await;
    assert!(r.is_err(), "a TLS 1.2 handshake succeeded");
}

/// The export folder: manifest signed, ciphertexts match, and the demo vault key opens an item.
fn check_export(dmz: &Dmz, dir: &std::path::Path, n: u64) {
    use flumon_shared::crypto::{Sm2PrivateKey, Sm2PublicKey, Sm2Signature, SymKey, open, sm3};
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let sig = hex::decode(std::fs::read_to_string(dir.join("manifest.sig")).unwrap().trim()).unwrap();
    let pk = Sm2PublicKey::load(&dmz.path("keys/dmz-sign.pub.pem")).unwrap();
    pk.verify(&manifest, &Sm2Signature::from_bytes(&sig).unwrap()).unwrap();
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let items = m["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, n);
    let vault = Sm2PrivateKey::load(&dmz.path("vault-DEMO-ONLY/vault.pem")).unwrap();
    let mut opened = 0;
    for it in items {
        let ct = std::fs::read(dir.join(it["file"].as_str().unwrap())).unwrap();
        assert_eq!(hex::encode(sm3(&ct)), it["cipher_sm3"].as_str().unwrap());
        let wrapped =
            hex::decode(std::fs::read_to_string(dir.join(it["key_file"].as_str().unwrap())).unwrap().trim()).unwrap();
        let key = SymKey::from_slice(&vault.decrypt(&wrapped).unwrap()).unwrap();
        let item_id = it["item_id"].as_str().unwrap();
        let hospital = it["hospital"].as_str().unwrap();
        let aad = [item_id.as_bytes(), hospital.as_bytes()].concat();
        let plain = open(&key, &aad, &ct).unwrap();
        assert_eq!(hex::encode(sm3(&plain)), it["plain_sm3"].as_str().unwrap());
        // swapping items fails (the AAD binds id and hospital)
        let wrong = [b"other".as_slice(), hospital.as_bytes()].concat();
        assert!(open(&key, &wrong, &ct).is_err());
        opened += 1;
    }
    assert_eq!(opened, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_and_init_refuses_to_overwrite() {
    let mut dmz = Dmz::new(|t| {
        let l = t.entry("limits").or_insert(toml::Value::Table(toml::Table::new())).as_table_mut().unwrap();
        l.insert("per_token_per_minute".into(), 1.into());
        l.insert("per_token_burst".into(), 3.into());
    });
    let out = std::process::Command::new(BIN).arg("init").arg(dmz.dir.path()).output().unwrap();
    assert!(!out.status.success(), "init over an existing configuration must refuse");
    let a = dmz.hospital(31);
    dmz.start();
    let c = dmz.client(&a);
    let auth = format!("Bearer {}", a.token);
    let r = upload(&c, &a.token, "outpatient", None, json_file(&[outpatient(&a.uscc, 1)])).await;
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        assert_eq!(c.send("GET", "/api/v1/ping", &[("authorization", &auth)], Vec::new()).await.unwrap().status, 200);
    }
    let r = c.send("GET", "/api/v1/ping", &[("authorization", &auth)], Vec::new()).await.unwrap();
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(r.json().unwrap()["error"].as_str(), Some("RATE_LIMITED"));
    let m = dmz.metrics().await;
    assert!(m["flumon_dmz_durability_seconds_count"] >= 1.0);
    dmz.stop();
}
