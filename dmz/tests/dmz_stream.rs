//! Streaming uploads (issue 3): a 64 MiB upload through a real `flumon-dmz`
//! over TLS without the server's memory growing with it, a whole-file error
//! found at the last row of a streamed file (nothing accepted), and bodies
//! cut off or over the limit leave nothing behind.
//!
//! ```text
//!  warm-up: 3 in-memory uploads of ~3.6 MiB, queue drained ─▶ VmHWM₀ ─▶ ~63 MiB CSV (20,000 rows, padded) ─▶ 200 ─▶ VmHWM₁ − VmHWM₀ < 32 MiB
//!  6 MiB CSV, extra column in the last row ─▶ 422 FILE_ROW_WIDTH, records_accepted unchanged
//!  TLS by hand: 16 of 60 MiB sent, connection dropped ─▶ no item left in raw/, meta all complete
//!  65 MiB body ─▶ 413, no item left
//!  ~9 MiB XLSX (3,000 records on sheet 1, padding on sheet 2) ─▶ streamed, rows read a chunk at a time ─▶ 200
//!  small XLSX (1,500 records) ─▶ 200; unknown column ─▶ 422 FILE_UNKNOWN_COLUMN
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;

use std::sync::Arc;
use std::time::Duration;

use dmz_common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;

fn vm_hwm_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn raw_files(dmz: &Dmz) -> Vec<std::path::PathBuf> {
    let dir = dmz.path("data/raw");
    if !dir.exists() {
        return Vec::new();
    }
    files_under(&dir)
}

/// CSV of `rows` outpatient records of `org` starting at `first`; `pad` adds
/// an empty row (commas only, skipped by the parser) of that many bytes after each.
fn padded_csv(org: &str, first: u32, rows: u32, pad: usize) -> Vec<u8> {
    let mut out = csv_of(&[outpatient(org, first)]);
    let header_end = out.iter().position(|b| *b == b'\n').unwrap() + 1;
    out.truncate(header_end);
    for n in first..first + rows {
        let one = csv_of(&[outpatient(org, n)]);
        let at = one.iter().position(|b| *b == b'\n').unwrap() + 1;
        out.extend_from_slice(&one[at..]);
        if pad > 0 {
            out.extend(std::iter::repeat_n(b',', pad - 1));
            out.push(b'\n');
        }
    }
    out
}

/// An XLSX file: the records on the first sheet (every value as text), and a
/// second sheet of `pad` bytes of hard-to-compress text (only the first sheet is read).
fn xlsx_of(records: &[serde_json::Value], pad: usize) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let keys: Vec<String> = records[0].as_object().unwrap().keys().cloned().collect();
    for (c, k) in keys.iter().enumerate() {
        ws.write_string(0, c as u16, k).unwrap();
    }
    for (r, rec) in records.iter().enumerate() {
        for (c, k) in keys.iter().enumerate() {
            let v = match &rec[k] {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ws.write_string(r as u32 + 1, c as u16, &v).unwrap();
        }
    }
    let ws = wb.add_worksheet();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..pad / 1000 {
        let cell: String = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        ws.write_string(i as u32, 0, &cell).unwrap();
    }
    wb.save_to_buffer().unwrap()
}

fn big_csv(org: &str, first: u32, rows: u32) -> Vec<u8> {
    padded_csv(org, first, rows, 0)
}

async fn cut_off_upload(dmz: &Dmz, a: &Agent, declared: usize, send: usize) {
    let mut roots = rustls::RootCertStore::empty();
    for c in flumon_dmz::tls::load_certs(&a.ca).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(flumon_dmz::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            flumon_dmz::tls::load_certs(&a.cert).unwrap(),
            PrivateKeyDer::from_pem_file(&a.key).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(dmz.public).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/upload/outpatient HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\
         content-type: text/csv\r\ncontent-length: {declared}\r\n\r\n",
        a.token
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let body = big_csv(&a.uscc, 900_000, 1000);
    let mut sent = 0;
    while sent < send {
        let n = body.len().min(send - sent);
        tls.write_all(&body[..n]).await.unwrap();
        sent += n;
    }
    tls.flush().await.unwrap();
    // the client goes away mid-body
    drop(tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_uploads() {
    let mut dmz = Dmz::new(|_| {});
    let a = dmz.hospital(61);
    let b = dmz.hospital(62);
    dmz.start();
    let c = dmz.client(&a);

    // warm-up: the ordinary in-memory path with bodies just under 4 MiB, and enough
    // records for the batcher to cut full 4 MiB batches: the baseline is a server that
    // has already done its usual work
    for k in 0..3u32 {
        let small = big_csv(&a.uscc, 1 + k * 13_000, 13_000);
        assert!(small.len() < 4 << 20);
        let r = upload(&c, &a.token, "outpatient", Some("text/csv"), small).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    dmz.wait_drained().await;
    let pid = dmz.pid().unwrap();
    let hwm0 = vm_hwm_kib(pid);

    // ~63 MiB of bytes, 20,000 rows (each followed by an empty row of 3,000 commas):
    // what the body's size costs, with little output
    let body = padded_csv(&a.uscc, 10_000, 20_000, 3000);
    let size = body.len();
    assert!(size > 60 << 20 && size <= 64 << 20, "{size}");
    let r = upload(&c, &a.token, "outpatient", Some("text/csv"), body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(20_000));
    let hwm1 = vm_hwm_kib(pid);
    let growth_mib = (hwm1.saturating_sub(hwm0)) as f64 / 1024.0;
    eprintln!(
        "streamed {:.1} MiB (20,000 rows): server VmHWM {:.1} → {:.1} MiB, growth {growth_mib:.1} MiB",
        size as f64 / 1048576.0,
        hwm0 as f64 / 1024.0,
        hwm1 as f64 / 1024.0
    );
    assert!(growth_mib < 32.0, "peak RSS grew by {growth_mib:.1} MiB for a {size}-byte upload");

    assert_eq!(raw_files(&dmz).len(), 1, "the streamed upload is archived as one file");
    let accepted0 = dmz.metrics().await["flumon_dmz_records_accepted_total"];

    // a whole-file error in the very last row of a streamed file: nothing accepted
    let mut bad = big_csv(&b.uscc, 500_000, 20_000);
    assert!(bad.len() > 5 << 20);
    bad.extend_from_slice(b"x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x\n");
    let cb = dmz.client(&b);
    let r = upload(&cb, &b.token, "outpatient", Some("text/csv"), bad).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json().unwrap();
    assert_eq!(j["errors"][0]["code"], "FILE_ROW_WIDTH", "{j}");
    assert_eq!(j["accepted"].as_u64(), Some(0));
    assert_eq!(dmz.metrics().await["flumon_dmz_records_accepted_total"], accepted0);
    // the original is archived (it is the record of what was sent)
    assert_eq!(raw_files(&dmz).len(), 2);

    // streamed JSON (over 4 MiB) is read the same way
    let recs: Vec<_> = (700_000..712_000).map(|n| outpatient(&b.uscc, n)).collect();
    let jf = json_file(&recs);
    assert!(jf.len() > 4 << 20);
    let r = upload(&cb, &b.token, "outpatient", Some("application/json"), jf).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(12_000));
    assert_eq!(raw_files(&dmz).len(), 3);

    // cut off after 16 MiB of a declared 60 MiB: nothing left behind, nothing counted
    let before = dmz.metrics().await;
    cut_off_upload(&dmz, &a, 60 << 20, 16 << 20).await;
    // the server may still be encrypting what it had received when it sees the end
    let t0 = std::time::Instant::now();
    while raw_files(&dmz).len() > 3 && t0.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(raw_files(&dmz).len(), 3, "a cut-off upload left its spool file");
    let after = dmz.metrics().await;
    for k in ["flumon_dmz_records_received_total", "flumon_dmz_uploads_total"] {
        assert_eq!(before[k], after[k], "{k}");
    }

    // over the limit while streaming: 413 with a receipt, nothing archived
    let mut huge = big_csv(&a.uscc, 2_000_000, 1000);
    let unit = huge.len();
    while huge.len() <= (64 << 20) + unit {
        huge.extend_from_within(unit / 2..unit);
    }
    let r = upload(&c, &a.token, "outpatient", Some("text/csv"), huge).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["errors"][0]["code"], "FILE_TOO_LARGE");
    assert_eq!(raw_files(&dmz).len(), 3, "a refused upload left its spool file");

    // streamed XLSX: a zip is read from its end, so its bytes are read back whole, its rows
    // a chunk at a time (three chunks here), the receipt as for any upload
    let recs: Vec<_> = (800_000..803_000).map(|n| outpatient(&b.uscc, n)).collect();
    let x = xlsx_of(&recs, 9 << 20);
    assert!(x.len() > 4 << 20, "{}", x.len());
    let xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let r = upload(&cb, &b.token, "outpatient", Some(xlsx_type), x).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(3000));
    assert_eq!(raw_files(&dmz).len(), 4);
    // a small XLSX (in memory) is read a chunk of rows at a time too; a whole-file error
    // (an unknown column) accepts nothing
    let recs: Vec<_> = (810_000..811_500).map(|n| outpatient(&b.uscc, n)).collect();
    let r = upload(&cb, &b.token, "outpatient", Some(xlsx_type), xlsx_of(&recs, 0)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["accepted"].as_u64(), Some(1500));
    let mut odd = recs[..3].to_vec();
    for rec in &mut odd {
        rec["NOT_A_FIELD"] = serde_json::json!("x");
    }
    let r = upload(&cb, &b.token, "outpatient", Some(xlsx_type), xlsx_of(&odd, 0)).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json().unwrap()["errors"][0]["code"], "FILE_UNKNOWN_COLUMN");
    assert_eq!(raw_files(&dmz).len(), 4, "small uploads are archived in sled");

    dmz.stop();
    // every raw item complete (nothing half-written), and its file where the meta says
    let cfg = flumon_dmz::Config::load(&dmz.config).unwrap();
    let db = sled::open(cfg.paths.data_dir.join("sled")).unwrap();
    let metas: Vec<flumon_dmz::archive::RawMeta> = db
        .open_tree("raw_meta")
        .unwrap()
        .iter()
        .values()
        .map(|v| serde_json::from_slice(&v.unwrap()).unwrap())
        .collect();
    assert!(metas.iter().all(|m| m.complete), "an incomplete raw item");
    assert_eq!(metas.iter().filter(|m| m.in_file).count(), 4);
    let receipts = db.open_tree("receipts").unwrap();
    let vias: Vec<String> = receipts
        .iter()
        .values()
        .map(|v| serde_json::from_slice::<serde_json::Value>(&v.unwrap()).unwrap()["via"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(vias.len(), 10);
    assert!(vias.iter().all(|v| v == "api"), "{vias:?}");
}
