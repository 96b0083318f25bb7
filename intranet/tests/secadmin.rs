//! The security officer's transfer page: a real sender journal (built with
//! `flumon_shared::journal` as the transfer writes it) is uploaded through
//! the multipart form, reconciled against the receiver journal (a lost and
//! an altered batch highlighted, chains verified), quarantined batches and
//! missed heartbeats listed; other roles get 403, a bad CSRF token 403, and
//! an oversize or non-journal upload a clear Chinese error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::fresh_db;
use flumon_intranet::api::limits::RateLimits;
use flumon_intranet::api::{AppState, app};
use flumon_intranet::audit::Audit;
use flumon_intranet::auth::Clock;
use flumon_intranet::auth::accounts::{self, start_session};
use flumon_intranet::config::JournalSource;
use flumon_intranet::indicators::Role;
use flumon_shared::crypto::{Sm2PrivateKey, sm3};
use flumon_shared::journal::Journal;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

fn h(seq: u64) -> String {
    hex::encode(sm3(format!("batch {seq}").as_bytes()))
}

/// The sender journal as `flumon-transfer send` writes it: batches 1..=6 sent, 2 resent.
fn sender_journal(path: &Path, key: &Sm2PrivateKey) {
    let mut j = Journal::create(path, key.public_key()).unwrap();
    j.append("send.start", &json!({"mode": "diode"})).unwrap();
    for seq in 1..=6u64 {
        j.append("batch.sent", &json!({"seq": seq, "sm3": h(seq), "size": 1000 + seq, "passes": 1})).unwrap();
    }
    j.append("batch.resent", &json!({"seq": 2, "sm3": h(2), "passes": 1, "reason": "operator resend"})).unwrap();
    j.checkpoint(key).unwrap();
}

/// The receiver's: 3 never arrived, 5 arrived altered, 6 rejected; a record
/// quarantine, a gap, a missed heartbeat and its resumption.
fn receiver_journal(path: &Path, key: &Sm2PrivateKey) {
    let mut j = Journal::create(path, key.public_key()).unwrap();
    for seq in [1u64, 2, 4] {
        let q = u64::from(seq == 4);
        j.append("batch.received", &json!({"seq": seq, "sm3": h(seq), "quarantined_records": q})).unwrap();
    }
    j.append(
        "record.quarantined",
        &json!({"seq": 4, "sm3": h(4), "records": [{"record": 7, "fields": ["zz"]}], "quarantine": "n1-4.q.json"}),
    )
    .unwrap();
    j.append("batch.received", &json!({"seq": 5, "sm3": h(99), "quarantined_records": 0})).unwrap();
    j.append("batch.rejected", &json!({"seq": 6, "reason": "bad SM2 signature", "quarantine": "n1-000006.fbatch"}))
        .unwrap();
    j.append("gap.opened", &json!({"ranges": [[3, 3]], "batches": 1})).unwrap();
    j.append("heartbeat.missed", &json!({"silent_secs": 31, "ever_heard": true})).unwrap();
    j.append("heartbeat.resumed", &json!({"silent_secs": 95, "missed": 19})).unwrap();
    j.checkpoint(key).unwrap();
}

struct World {
    st: AppState,
    sender_key: Sm2PrivateKey,
    stored: std::path::PathBuf,
    /// (session token, csrf) of sec, nat (analyst), sys.
    sessions: Vec<(String, String)>,
}

async fn world(dir: &Path) -> World {
    let db = fresh_db(dir).await;
    let key = Sm2PrivateKey::generate().unwrap();
    let audit = Audit::open(&dir.join("journal/intranet.journal"), key.public_key()).unwrap();
    let (sk, rk) = (Sm2PrivateKey::generate().unwrap(), Sm2PrivateKey::generate().unwrap());
    sk.public_key().save(&dir.join("sender.pub.pem")).unwrap();
    rk.public_key().save(&dir.join("receiver.pub.pem")).unwrap();
    receiver_journal(&dir.join("receiver.journal"), &rk);
    let stored = dir.join("data/sender.journal");
    let journals = vec![
        JournalSource {
            name: "receiver".into(),
            path: dir.join("receiver.journal"),
            pubkey: dir.join("receiver.pub.pem"),
        },
        JournalSource { name: "sender".into(), path: stored.clone(), pubkey: dir.join("sender.pub.pem") },
    ];
    let limits = Arc::new(RateLimits::new(1_000, 1_000, 100_000, 100_000));
    let st = AppState { db, audit, clock: Clock::default(), journals: Arc::new(journals), limits };
    let mut sessions = Vec::new();
    for (name, role, scope) in
        [("sec", Role::Secadmin, None), ("nat", Role::Analyst, Some("000000")), ("sys", Role::Sysadmin, None)]
    {
        accounts::create_user(&st.db, &st.clock, name, role, scope).await.unwrap();
        sessions.push(start_session(&st.db, &st.clock, name).await.unwrap());
    }
    World { st, sender_key: sk, stored, sessions }
}

const BOUNDARY: &str = "----flumonTestBoundary7MA4YWxkTrZu0gW";

fn multipart(csrf: &str, file: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{BOUNDARY}\r\n\
         Content-Disposition: form-data; name=\"journal\"; filename=\"send-journal.log\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn page(st: &AppState, method: &str, uri: &str, token: &str, body: Option<Vec<u8>>) -> (StatusCode, String) {
    let sock: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .extension(axum::extract::ConnectInfo(sock))
        .header("cookie", format!("flumon_session={token}"));
    let req = match body {
        Some(v) => b.header("content-type", format!("multipart/form-data; boundary={BOUNDARY}")).body(Body::from(v)),
        None => b.body(Body::empty()),
    }
    .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The `<tr>` of batch `seq` in the batches table.
fn batch_row(html: &str, seq: u64) -> String {
    let t = &html[html.find("id=\"t-batches\"").expect("batches table")..];
    let t = &t[..t.find("</table>").unwrap()];
    t.split("<tr")
        .find(|r| r.contains(&format!(">{seq}</td>")))
        .unwrap_or_else(|| panic!("no row for batch {seq}"))
        .to_string()
}

#[tokio::test]
async fn upload_and_reconcile_a_real_sender_journal() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let (sec, csrf) = w.sessions[0].clone();

    // Before any upload: the page says so, and still lists quarantines and heartbeats.
    let (s, html) = page(&w.st, "GET", "/security/transfer", &sec, None).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("尚未上传发送端日志"), "{html}");
    assert!(!html.contains("id=\"t-batches\""));

    let sj = dir.path().join("send-journal.log");
    sender_journal(&sj, &w.sender_key);
    let bytes = std::fs::read(&sj).unwrap();
    let (s, html) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, &bytes))).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("已上传并保存发送端日志"), "{html}");
    assert_eq!(std::fs::read(&w.stored).unwrap(), bytes, "stored as uploaded in the data folder");

    // Lost (3) and altered (5, 6) are highlighted; received ones are not.
    for (seq, fate, class) in
        [(1, "已收到", None), (2, "已收到", None), (3, "丢失", Some("alert")), (4, "已收到", None)]
            .into_iter()
            .chain([(5, "被篡改/拒收", Some("alert")), (6, "被篡改/拒收", Some("alert"))])
    {
        let row = batch_row(&html, seq);
        assert!(row.contains(fate), "batch {seq}: {row}");
        assert_eq!(row.contains("class=\"alert\""), class.is_some(), "batch {seq}: {row}");
    }
    assert!(batch_row(&html, 2).contains(">2</td>") && batch_row(&html, 6).contains("bad SM2 signature"));
    // the summary line and both chains verified
    assert!(html.contains("汇总: 发送 6 批, 收到 3, 丢失 1, 被篡改/拒收 2, 发送端无记录 0, 隔离记录 1"), "{html}");
    assert!(html.contains("发送端日志链 完整 (9 条)") && html.contains("接收端日志链 完整 ("), "{html}");
    assert!(html.contains("msg err"), "lost batches make the summary an error");
    // quarantine (batch rejected + records, count only) and heartbeats
    assert!(html.contains("n1-000006.fbatch") && html.contains("1 条记录 · n1-4.q.json"), "{html}");
    assert!(!html.contains("\"zz\""), "no record content on the page");
    assert!(html.contains("心跳丢失") && html.contains("31 秒无心跳") && html.contains("丢失约 19 次心跳"), "{html}");

    // The same through the API, and the export of the batches table.
    let (s, csv) = page(&w.st, "GET", "/security/transfer?format=csv&table=batches", &sec, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.lines().any(|l| l.starts_with("3,丢失")), "{csv}");
    let resp = app(w.st.clone())
        .oneshot(
            Request::builder()
                .uri("/api/v1/security/transfer/reconcile")
                .header("authorization", format!("Bearer {sec}"))
                .extension(axum::extract::ConnectInfo("192.0.2.1:4000".parse::<std::net::SocketAddr>().unwrap()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let fates: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["fate"].as_str().unwrap()).collect();
    assert_eq!(fates, ["received", "received", "lost", "received", "altered", "altered"]);

    // The upload is journaled (no content, its SM3 and size).
    let es = w.st.audit.entries(|e| e.kind == "security.sender_journal.upload", 10).unwrap();
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].detail["detail"]["sm3"], json!(hex::encode(sm3(&bytes))), "{:?}", es[0]);

    // A tampered copy is kept but its broken chain is shown: the reconciliation uses the lines before.
    let tampered = String::from_utf8(bytes.clone()).unwrap().replacen("\"seq\":4", "\"seq\":44", 1);
    let (s, html) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, tampered.as_bytes()))).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("日志链在第") && html.contains("发送端日志链 断裂于第"), "{html}");
}

#[tokio::test]
async fn other_roles_csrf_and_bad_uploads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let (sec, csrf) = w.sessions[0].clone();
    let sj = dir.path().join("send-journal.log");
    sender_journal(&sj, &w.sender_key);
    let bytes = std::fs::read(&sj).unwrap();

    for (tok, tcsrf) in &w.sessions[1..] {
        let (s, html) = page(&w.st, "GET", "/security/transfer", tok, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(html.contains("无权访问"), "{html}");
        let (s, _) = page(&w.st, "POST", "/security/transfer", tok, Some(multipart(tcsrf, &bytes))).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart("0000", &bytes))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a wrong CSRF token");
    assert!(!w.stored.exists(), "nothing stored by a refused upload");

    // Not a journal: a CSV file.
    let (s, html) =
        page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, b"zjhm,xm\n110101,abc\n"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("不是有效的发送端传输日志"), "{html}");
    assert!(!w.stored.exists());

    // Oversize: above the page's body limit (the stream is cut) …
    let big = vec![b'x'; (66 << 20) + 1];
    let (s, html) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, &big))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("文件过大: 超过 64 MiB"), "{}", &html[..html.len().min(3000)]);
    // … and just above 64 MiB (within the body limit, refused by the size check).
    let big = vec![b'x'; (64 << 20) + 1];
    let (s, html) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, &big))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("文件过大: 超过 64 MiB"), "{}", &html[..html.len().min(3000)]);
    assert!(!w.stored.exists());
    let refused = w.st.audit.entries(|e| e.kind == "security.sender_journal.upload", 10).unwrap();
    assert_eq!(refused.len(), 2, "the non-journal and the 64 MiB + 1 upload are journaled as refused");
    assert!(refused.iter().all(|e| e.detail["outcome"] == json!("refused")), "{refused:?}");
}

async fn api(st: &AppState, method: &str, uri: &str, token: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let sock: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .extension(axum::extract::ConnectInfo(sock))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .body(Body::from(body))
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn the_api_twins_upload_reconcile_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let sec = w.sessions[0].0.clone();
    let sj = dir.path().join("send-journal.log");
    sender_journal(&sj, &w.sender_key);
    let bytes = std::fs::read(&sj).unwrap();

    let (s, v) = api(&w.st, "GET", "/api/v1/security/transfer/reconcile", &sec, vec![]).await;
    assert_eq!((s, v), (StatusCode::OK, serde_json::Value::Null), "nothing uploaded yet");
    for (tok, _) in &w.sessions[1..] {
        let (s, _) = api(&w.st, "POST", "/api/v1/security/sender-journal", tok, bytes.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = api(&w.st, "GET", "/api/v1/security/transfer/events", tok, vec![]).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, v) =
        api(&w.st, "POST", "/api/v1/security/sender-journal", &sec, b"{\"not\": \"a journal\"}".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("不是有效的发送端传输日志"), "{v}");
    let (s, v) = api(&w.st, "POST", "/api/v1/security/sender-journal", &sec, vec![b'{'; (64 << 20) + 1]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("文件过大"), "{v}");
    assert!(!w.stored.exists());

    let (s, v) = api(&w.st, "POST", "/api/v1/security/sender-journal", &sec, bytes.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["good_lines"].as_u64(), v["intact"].as_bool()), (Some(9), Some(true)), "{v}");
    let (s, v) = api(&w.st, "GET", "/api/v1/security/transfer/reconcile", &sec, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let lost: Vec<u64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fate"] == json!("lost"))
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(lost, [3]);
    let (s, v) = api(&w.st, "GET", "/api/v1/security/transfer/events?limit=1", &sec, vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["quarantined"].as_array().unwrap().len(), 1, "the last one only: {v}");
    assert_eq!(v["quarantined"][0]["reason"], json!("bad SM2 signature"), "{v}");
    assert_eq!(v["heartbeats"][0]["kind"], json!("heartbeat.resumed"), "{v}");
}

#[tokio::test]
async fn a_mass_loss_is_capped_on_the_page_and_whole_in_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let (sec, csrf) = w.sessions[0].clone();
    let sj = dir.path().join("send-journal.log");
    let mut j = Journal::create(&sj, w.sender_key.public_key()).unwrap();
    for seq in 1..=2600u64 {
        j.append("batch.sent", &json!({"seq": seq, "sm3": h(seq), "passes": 1})).unwrap();
    }
    drop(j);
    let bytes = std::fs::read(&sj).unwrap();
    let (s, html) = page(&w.st, "POST", "/security/transfer", &sec, Some(multipart(&csrf, &bytes))).await;
    assert_eq!(s, StatusCode::OK);
    let t = &html[html.find("id=\"t-batches\"").unwrap()..];
    let t = &t[..t.find("</table>").unwrap()];
    // 3 received (1, 2, 4), 2 altered (5, 6), 2595 lost (3, 7..=2600): the first 2000 problem rows shown
    assert_eq!(t.matches("<tr class=\"alert\"").count(), 2000);
    assert!(html.contains("共 2597 个"), "the title says how many");
    let (_, csv) = page(&w.st, "GET", "/security/transfer?format=csv&table=batches", &sec, None).await;
    assert_eq!(csv.lines().filter(|l| l.contains(",丢失,")).count(), 2595, "the export has every row");
}
