//! The API: the whole role × scope × endpoint matrix (expected table
//! below), activation / login / lockout / idle timeout / CSRF, the report
//! CLI's numbers equal to the API's, and `serve` over TLS 1.3 with the
//! spool watcher.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use flumon_intranet::api::limits::RateLimits;
use flumon_intranet::api::{AppState, app};
use flumon_intranet::audit::Audit;
use flumon_intranet::auth::accounts::{self, start_session};
use flumon_intranet::auth::{Clock, totp};
use flumon_intranet::config::JournalSource;
use flumon_intranet::indicators::{By, Period, Role};
use flumon_shared::crypto::Sm2PrivateKey;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn state(dir: &std::path::Path) -> AppState {
    let db = fixture(dir).await;
    let key = Sm2PrivateKey::generate().unwrap();
    let audit = Audit::open(&dir.join("journal/intranet.journal"), key.public_key()).unwrap();
    // A transfer receiver's journal for the security officer.
    let rk = Sm2PrivateKey::generate().unwrap();
    let rpath = dir.join("receiver.journal");
    let mut j = flumon_shared::journal::Journal::create(&rpath, rk.public_key()).unwrap();
    j.append("batch.received", &json!({"seq": 1})).unwrap();
    drop(j);
    rk.public_key().save(&dir.join("receiver.pub.pem")).unwrap();
    let journals = vec![JournalSource { name: "receiver".into(), path: rpath, pubkey: dir.join("receiver.pub.pem") }];
    // Limits far above what the tests send, except where a test sets its own.
    let limits = Arc::new(RateLimits::new(1_000, 1_000, 100_000, 100_000));
    AppState { db, audit, clock: Clock::default(), journals: Arc::new(journals), limits }
}

async fn call(st: &AppState, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    call_from(st, "192.0.2.1", method, uri, token, body).await
}

/// A request as the server hands it over: with the client's address.
async fn call_from(
    st: &AppState,
    addr: &str,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let sock: std::net::SocketAddr = format!("{addr}:4000").parse().unwrap();
    let mut b = Request::builder().method(method).uri(uri).extension(axum::extract::ConnectInfo(sock));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const ACCOUNTS: [(&str, Role, Option<&str>); 6] = [
    ("nat", Role::Analyst, Some("000000")),
    ("bj1", Role::Analyst, Some("110000")),
    ("sz1", Role::Analyst, Some("440300")),
    ("sys", Role::Sysadmin, None),
    ("sec", Role::Secadmin, None),
    ("aud", Role::Auditor, None),
];

/// Data endpoints: requested scope → allowed for (nat, bj, sz, sys, sec, aud).
const DATA_MATRIX: &[(&str, [bool; 6])] = &[
    ("000000", [true, false, false, false, false, false]),
    ("110000", [true, true, false, false, false, false]),
    ("110100", [true, true, false, false, false, false]),
    ("110101", [true, true, false, false, false, false]),
    (ORG_A, [true, true, false, false, false, false]),
    ("440000", [true, false, false, false, false, false]),
    ("440300", [true, false, true, false, false, false]),
    ("440305", [true, false, true, false, false, false]),
    (ORG_B, [true, false, true, false, false, false]),
    ("310000", [true, false, false, false, false, false]),
];

const DATA_ENDPOINTS: &[&str] = &[
    "/api/v1/indicators?from=2025-01-06&to=2025-01-12&by=week",
    "/api/v1/timeseries?from=2025-01-06&to=2025-01-12&by=day&series=cases",
    "/api/v1/regions?from=2025-01-06&to=2025-01-12",
    "/api/v1/mem?asof=2025-01-12",
    "/api/v1/nowcast?asof=2025-01-12&backtest_weeks=2",
    "/api/v1/quality?from=2025-01-06&to=2025-01-12",
    "/api/v1/drugs?date=2025-01-10",
];

/// Other endpoints: (method, path) → allowed for (nat, bj, sz, sys, sec, aud).
const OTHER_MATRIX: &[(&str, &str, [bool; 6])] = &[
    ("GET", "/api/v1/me", [true, true, true, true, true, true]),
    ("GET", "/api/v1/admin/users", [false, false, false, true, false, false]),
    ("POST", "/api/v1/admin/users", [false, false, false, true, false, false]),
    ("POST", "/api/v1/admin/users/nat/unlock", [false, false, false, true, false, false]),
    ("GET", "/api/v1/security/journals", [false, false, false, false, true, false]),
    ("GET", "/api/v1/security/journals/receiver", [false, false, false, false, true, false]),
    ("GET", "/api/v1/security/events", [false, false, false, false, true, false]),
    ("GET", "/api/v1/security/reconcile", [false, false, false, false, true, false]),
    ("GET", "/api/v1/audit/journal", [false, false, false, false, false, true]),
];

#[tokio::test]
async fn role_scope_endpoint_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let mut tokens = Vec::new();
    for (name, role, scope) in ACCOUNTS {
        accounts::create_user(&st.db, &st.clock, name, role, scope).await.unwrap();
        tokens.push(start_session(&st.db, &st.clock, name).await.unwrap().0);
    }
    let mut checked = 0;
    for ep in DATA_ENDPOINTS {
        for (scope, allowed) in DATA_MATRIX {
            for (i, tok) in tokens.iter().enumerate() {
                let (status, body) = call(&st, "GET", &format!("{ep}&scope={scope}"), Some(tok), None).await;
                let want = if allowed[i] { StatusCode::OK } else { StatusCode::FORBIDDEN };
                assert_eq!(status, want, "{} {ep} scope {scope}: {body}", ACCOUNTS[i].0);
                checked += 1;
            }
        }
        // Without a scope: the account's own (analysts), refused (others); without a token: 401.
        for (i, tok) in tokens.iter().enumerate() {
            let (status, _) = call(&st, "GET", ep, Some(tok), None).await;
            assert_eq!(status == StatusCode::OK, ACCOUNTS[i].1 == Role::Analyst, "{} {ep}", ACCOUNTS[i].0);
        }
        assert_eq!(call(&st, "GET", ep, None, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&st, "GET", ep, Some("bogus"), None).await.0, StatusCode::UNAUTHORIZED);
    }
    for (k, (method, path, allowed)) in OTHER_MATRIX.iter().enumerate() {
        for (i, tok) in tokens.iter().enumerate() {
            let body = (*method == "POST" && path.ends_with("users"))
                .then(|| json!({"name": format!("new{k}{i}"), "role": "analyst", "scope": "110000"}));
            let (status, b) = call(&st, method, path, Some(tok), body).await;
            let want = if allowed[i] { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(status, want, "{} {method} {path}: {b}", ACCOUNTS[i].0);
            checked += 1;
        }
    }
    assert_eq!(checked, DATA_ENDPOINTS.len() * DATA_MATRIX.len() * 6 + OTHER_MATRIX.len() * 6);

    // What the allowed answers hold: small cells below national, no case data for secadmin.
    let (_, nat) =
        call(&st, "GET", "/api/v1/indicators?scope=110000&from=2025-01-06&to=2025-01-12", Some(&tokens[0]), None).await;
    assert_eq!(nat["total"]["cases"]["total"], json!(4));
    let (_, bj) =
        call(&st, "GET", "/api/v1/indicators?scope=110000&from=2025-01-06&to=2025-01-12", Some(&tokens[1]), None).await;
    assert_eq!(bj["total"]["cases"]["total"], json!("<5"));
    let (_, rec) = call(&st, "GET", "/api/v1/security/reconcile", Some(&tokens[4]), None).await;
    assert_eq!(rec[0]["node"], json!("dmz1"));
    assert_eq!(rec[0]["missing_count"], json!(0));
    let (_, j) = call(&st, "GET", "/api/v1/security/journals", Some(&tokens[4]), None).await;
    assert!(j.as_array().unwrap().iter().all(|x| x["intact"] == json!(true)), "{j}");
    // The auditor sees the sysadmin's and secadmin's actions, not the analysts' reads.
    let (_, a) = call(&st, "GET", "/api/v1/audit/journal", Some(&tokens[5]), None).await;
    let kinds: Vec<&str> = a.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"account.create") && kinds.contains(&"security.reconcile"), "{kinds:?}");
    assert!(
        a.as_array().unwrap().iter().all(|e| ["sysadmin", "secadmin"].contains(&e["detail"]["role"].as_str().unwrap()))
    );
    // Bad input: 400, never 500.
    assert_eq!(
        call(&st, "GET", "/api/v1/indicators?scope=999999", Some(&tokens[0]), None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&st, "GET", "/api/v1/indicators?from=2025-13-01", Some(&tokens[0]), None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(call(&st, "GET", "/api/v1/indicators?nope=1", Some(&tokens[0]), None).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(&st, "GET", "/api/v1/timeseries?series=x", Some(&tokens[0]), None).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn activation_login_lockout_idle_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let code = accounts::create_user(&st.db, &st.clock, "alice", Role::Analyst, Some("110000")).await.unwrap();
    let pw = "Flu-Monitor-2025";
    // Not yet active: no login.
    assert_eq!(
        call(&st, "POST", "/api/v1/auth/login", None, Some(json!({"name": "alice", "password": pw, "totp": "000000"})))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &st,
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"name": "alice", "code": "wrong", "password": pw}))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &st,
            "POST",
            "/api/v1/auth/activate",
            None,
            Some(json!({"name": "alice", "code": code, "password": "short"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (s, enrol) =
        call(&st, "POST", "/api/v1/auth/activate", None, Some(json!({"name": "alice", "code": code, "password": pw})))
            .await;
    assert_eq!(s, StatusCode::OK, "{enrol}");
    let secret = totp::base32_decode(enrol["totp_secret"].as_str().unwrap()).unwrap();
    let now = || u64::try_from(st.clock.now()).unwrap();
    let (s, b) = call(
        &st,
        "POST",
        "/api/v1/auth/confirm",
        None,
        Some(json!({"name": "alice", "code": code, "totp": totp::code_at(&secret, now())})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The code is spent.
    assert_eq!(
        call(&st, "POST", "/api/v1/auth/activate", None, Some(json!({"name": "alice", "code": code, "password": pw})))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Login needs a later TOTP step than the one used to confirm.
    st.clock.advance(30);
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(json!({"name": "alice", "password": pw, "totp": totp::code_at(&secret, now())}).to_string()))
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let sess: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let token = sess["token"].as_str().unwrap().to_string();
    let csrf = sess["csrf"].as_str().unwrap().to_string();
    let cookie_kv = cookie.split(';').next().unwrap().to_string();
    // Cookie reads work; cookie writes need the CSRF header.
    let with_cookie = |method: &str, uri: &str, csrf: Option<&str>| {
        let mut b = Request::builder().method(method).uri(uri).header("cookie", &cookie_kv);
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        b.header("content-type", "application/json").body(Body::from("{\"old\":\"x\",\"new\":\"y\"}")).unwrap()
    };
    assert_eq!(app(st.clone()).oneshot(with_cookie("GET", "/api/v1/me", None)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        app(st.clone()).oneshot(with_cookie("POST", "/api/v1/auth/password", None)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app(st.clone()).oneshot(with_cookie("POST", "/api/v1/auth/password", Some(&csrf))).await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "past CSRF, refused by the password policy"
    );
    // Idle 31 minutes: the session is gone.
    assert_eq!(call(&st, "GET", "/api/v1/me", Some(&token), None).await.0, StatusCode::OK);
    st.clock.advance(31 * 60);
    assert_eq!(call(&st, "GET", "/api/v1/me", Some(&token), None).await.0, StatusCode::UNAUTHORIZED);
    // Five wrong logins lock the account for 30 minutes, even with the right password then.
    for i in 0..5 {
        let (s, _) = call(
            &st,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"name": "alice", "password": "Wrong-Pass-1", "totp": "123456"})),
        )
        .await;
        assert_eq!(s, if i < 4 { StatusCode::UNAUTHORIZED } else { StatusCode::LOCKED });
    }
    let good = || json!({"name": "alice", "password": pw, "totp": totp::code_at(&secret, u64::try_from(st.clock.now()).unwrap())});
    assert_eq!(call(&st, "POST", "/api/v1/auth/login", None, Some(good())).await.0, StatusCode::LOCKED);
    st.clock.advance(31 * 60);
    let (s, b) = call(&st, "POST", "/api/v1/auth/login", None, Some(good())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The same TOTP code cannot be used twice.
    assert_eq!(call(&st, "POST", "/api/v1/auth/login", None, Some(good())).await.0, StatusCode::UNAUTHORIZED);
    // Logout ends the session.
    let t = b["token"].as_str().unwrap();
    assert_eq!(call(&st, "POST", "/api/v1/auth/logout", Some(t), None).await.0, StatusCode::OK);
    assert_eq!(call(&st, "GET", "/api/v1/me", Some(t), None).await.0, StatusCode::UNAUTHORIZED);
    // The security officer sees the failed logins and the lock.
    accounts::create_user(&st.db, &st.clock, "sec", Role::Secadmin, None).await.unwrap();
    let sec = start_session(&st.db, &st.clock, "sec").await.unwrap().0;
    let (_, ev) = call(&st, "GET", "/api/v1/security/events", Some(&sec), None).await;
    let kinds: Vec<&str> = ev.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"login.failed") && kinds.contains(&"login.locked") && kinds.contains(&"login.ok"),
        "{kinds:?}"
    );
}

/// The idle timer is written at most once a minute: requests within 60 s of the stored
/// `last_seen` write nothing (they pass while another connection holds the write lock, as an
/// ingest does), a session used every 29 minutes stays, and one idle 30 minutes since its last
/// request is gone even when that request did not move `last_seen`.
#[tokio::test]
async fn idle_timer_written_at_most_once_a_minute() {
    use accounts::{IDLE_SECONDS, LAST_SEEN_REFRESH_SECONDS as REFRESH, authenticate};
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(dir.path()).await;
    // stopped: a real second ticking between a request and an assertion must not matter
    let clock = Clock::frozen();
    accounts::create_user(&db, &clock, "bj1", Role::Analyst, Some("110000")).await.unwrap();
    let token = start_session(&db, &clock, "bj1").await.unwrap().0;
    let last_seen = || async {
        sqlx::query_scalar::<_, i64>("SELECT last_seen FROM sessions WHERE user_name = 'bj1'")
            .fetch_optional(&db.pool)
            .await
            .unwrap()
    };
    let auth = || async { authenticate(&db, &clock, &token).await.unwrap().map(|(a, _)| a.name) };
    let t0 = clock.now();
    assert_eq!(last_seen().await, Some(t0));

    // (a) Two requests within 60 s of the stored value: neither writes.
    clock.advance(30);
    assert_eq!(auth().await.as_deref(), Some("bj1"));
    clock.advance(REFRESH - 30);
    assert_eq!(auth().await.as_deref(), Some("bj1"));
    assert_eq!(last_seen().await, Some(t0), "no write within {REFRESH} s");
    // ... not even while another connection holds the write lock (SQLite: BEGIN IMMEDIATE, as
    // ingest does; PostgreSQL: a lock on the session's row). A write would wait for it.
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query("UPDATE sessions SET created = created WHERE user_name = 'bj1'").execute(&mut *tx).await.unwrap();
    let held = tokio::time::timeout(std::time::Duration::from_secs(5), auth()).await;
    assert_eq!(held.expect("a fresh session's request waited for the write lock").as_deref(), Some("bj1"));
    tx.rollback().await.unwrap();
    // More than 60 s after the stored value: one write.
    clock.advance(1);
    assert_eq!(auth().await.as_deref(), Some("bj1"));
    assert_eq!(last_seen().await, Some(t0 + REFRESH + 1));

    // An active session: a request every 59 s for 40 minutes stays, writing every other time.
    let mut writes = 0;
    for _ in 0..40 {
        let before = last_seen().await;
        clock.advance(59);
        assert_eq!(auth().await.as_deref(), Some("bj1"), "an active session expired");
        let after = last_seen().await.unwrap();
        assert!(after + REFRESH >= clock.now());
        if Some(after) != before {
            assert_eq!(after, clock.now());
            writes += 1;
        }
    }
    assert_eq!(writes, 20);

    // A request that did not write (stored value 59 s behind), then 29 minutes: still in.
    let written = last_seen().await.unwrap();
    clock.advance(written + REFRESH - 1 - clock.now());
    assert_eq!(auth().await.as_deref(), Some("bj1"));
    assert_eq!(last_seen().await, Some(written));
    clock.advance(29 * 60);
    assert_eq!(auth().await.as_deref(), Some("bj1"), "used 29 minutes ago");
    assert_eq!(last_seen().await, Some(clock.now()));

    // (b) Idle 30 minutes after a request that did not write: gone, the row deleted.
    clock.advance(REFRESH - 1);
    assert_eq!(auth().await.as_deref(), Some("bj1"));
    clock.advance(IDLE_SECONDS);
    assert_eq!(auth().await, None, "idle for 30 minutes");
    assert_eq!(last_seen().await, None);

    // Idle exactly 30 minutes after a request that wrote: gone one second later.
    let token = start_session(&db, &clock, "bj1").await.unwrap().0;
    clock.advance(IDLE_SECONDS);
    assert!(authenticate(&db, &clock, &token).await.unwrap().is_some());
    let token = start_session(&db, &clock, "bj1").await.unwrap().0;
    clock.advance(IDLE_SECONDS + 1);
    assert!(authenticate(&db, &clock, &token).await.unwrap().is_none());
}

/// JSON as the API sends it (text, parsed back: the same float parsing on both sides).
fn as_json<T: serde::Serialize>(x: &T) -> Value {
    serde_json::from_str(&serde_json::to_string(x).unwrap()).unwrap()
}

#[tokio::test]
async fn report_equals_api() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    accounts::create_user(&st.db, &st.clock, "nat", Role::Analyst, Some("000000")).await.unwrap();
    let tok = start_session(&st.db, &st.clock, "nat").await.unwrap().0;
    for (scope, by) in [("000000", "week"), ("110000", "day"), (ORG_B, "season")] {
        let p = Period::parse("2025-01-06", "2025-01-12", By::parse(by).unwrap()).unwrap();
        let r = flumon_intranet::report::build(&st.db, scope, &p).await.unwrap();
        let q = format!("scope={scope}&from=2025-01-06&to=2025-01-12");
        let (_, api) = call(&st, "GET", &format!("/api/v1/indicators?{q}&by={by}"), Some(&tok), None).await;
        assert_eq!(as_json(&r.indicators), api, "{scope}");
        let (_, d) = call(&st, "GET", &format!("/api/v1/drugs?scope={scope}&date=2025-01-12"), Some(&tok), None).await;
        assert_eq!(as_json(&r.drug_reserve), d);
        let (_, n) =
            call(&st, "GET", &format!("/api/v1/nowcast?scope={scope}&asof=2025-01-12"), Some(&tok), None).await;
        assert_eq!(as_json(&r.nowcast), n);
        let (_, m) = call(&st, "GET", &format!("/api/v1/mem?scope={scope}&asof=2025-01-12"), Some(&tok), None).await;
        assert_eq!(as_json(&r.mem), m);
        let csv = flumon_intranet::report::to_csv(&r).unwrap();
        assert!(csv.starts_with("indicator,value\n"));
    }
    let p = Period::parse("2025-01-06", "2025-01-12", By::Week).unwrap();
    let csv =
        flumon_intranet::report::to_csv(&flumon_intranet::report::build(&st.db, "000000", &p).await.unwrap()).unwrap();
    assert!(csv.contains("indicators.total.cases.total,5\n"), "{csv:.400}");
    assert!(csv.contains("indicators.periods[0].oe_ratio.value,0.01\n"));
}

#[tokio::test]
async fn analyst_reads_are_journaled_without_figures() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    accounts::create_user(&st.db, &st.clock, "bj1", Role::Analyst, Some("110000")).await.unwrap();
    accounts::create_user(&st.db, &st.clock, "sec", Role::Secadmin, None).await.unwrap();
    let bj = start_session(&st.db, &st.clock, "bj1").await.unwrap().0;
    let sec = start_session(&st.db, &st.clock, "sec").await.unwrap().0;
    let uri = "/api/v1/indicators?scope=110100&from=2025-01-06&to=2025-01-12&by=day";
    assert_eq!(call(&st, "GET", uri, Some(&bj), None).await.0, StatusCode::OK);
    assert_eq!(
        call(&st, "GET", "/api/v1/regions?scope=440000", Some(&bj), None).await.0,
        StatusCode::FORBIDDEN,
        "outside the account's region"
    );
    let reads = st.audit.entries(|e| e.kind == "access.read", 100).unwrap();
    assert_eq!(reads.len(), 2, "{reads:?}");
    let d = &reads[0].detail;
    assert_eq!(
        (d["actor"].as_str(), d["role"].as_str(), d["outcome"].as_str()),
        (Some("bj1"), Some("analyst"), Some("ok"))
    );
    let x = &d["detail"];
    assert_eq!(x["endpoint"], json!("/indicators"));
    assert_eq!(x["scope"], json!("110100"));
    assert_eq!(
        (x["from"].as_str(), x["to"].as_str(), x["by"].as_str()),
        (Some("2025-01-06"), Some("2025-01-12"), Some("day"))
    );
    assert_eq!(reads[1].detail["outcome"], json!("denied"));
    assert_eq!(reads[1].detail["detail"]["endpoint"], json!("/regions"));
    // No figure of the answer is in the journal.
    let text = serde_json::to_string(&reads).unwrap();
    assert!(!text.contains("cases") && !text.contains("total"), "{text}");
    // The security officer sees the reads among the access events.
    let (s, ev) = call(&st, "GET", "/api/v1/security/events", Some(&sec), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ev.as_array().unwrap().iter().filter(|e| e["kind"] == json!("access.read")).count(), 2);
}

#[tokio::test]
async fn an_expired_password_must_be_changed_before_any_data() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let code = accounts::create_user(&st.db, &st.clock, "bj1", Role::Analyst, Some("110000")).await.unwrap();
    let pw = "Alt-Passwort-2025";
    let e = accounts::activate(&st.db, &st.clock, "bj1", &code, pw).await.unwrap();
    let secret = totp::base32_decode(&e.totp_secret).unwrap();
    let now = || u64::try_from(st.clock.now()).unwrap();
    accounts::confirm(&st.db, &st.clock, "bj1", &code, &totp::code_at(&secret, now())).await.unwrap();
    let uri = "/api/v1/indicators?from=2025-01-06&to=2025-01-12";
    st.clock.advance(60);
    let s = accounts::login(&st.db, &st.clock, "bj1", pw, &totp::code_at(&secret, now())).await.unwrap();
    assert!(!s.password_expired);
    assert_eq!(call(&st, "GET", uri, Some(&s.token), None).await.0, StatusCode::OK);
    // 90 days later: the login says so, and nothing but /me, logout and the password change answers.
    st.clock.advance(90 * 86_400);
    let s = accounts::login(&st.db, &st.clock, "bj1", pw, &totp::code_at(&secret, now())).await.unwrap();
    assert!(s.password_expired);
    let t = Some(s.token.as_str());
    let (status, body) = call(&st, "GET", uri, t, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.to_string().contains("密码已超过 90 天"), "{body}");
    assert_eq!(call(&st, "GET", "/api/v1/regions", t, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&st, "GET", "/api/v1/me", t, None).await.0, StatusCode::OK);
    // The data layer refuses as well (the web pages read through it).
    let account =
        flumon_intranet::indicators::Account { name: "bj1".into(), role: Role::Analyst, scope: Some("110000".into()) };
    let authed = flumon_intranet::api::Authed { account, token: s.token.clone() };
    assert!(flumon_intranet::api::data::scope_of(&st, &authed, &Default::default()).await.is_err());
    let (status, body) =
        call(&st, "POST", "/api/v1/auth/password", t, Some(json!({"old": pw, "new": "Neu-Passwort-2026!"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(call(&st, "GET", uri, t, None).await.0, StatusCode::OK);
}

/// An activated account; returns its TOTP secret.
async fn activated(st: &AppState, name: &str, pw: &str) -> Vec<u8> {
    let code = accounts::create_user(&st.db, &st.clock, name, Role::Analyst, Some("110000")).await.unwrap();
    let e = accounts::activate(&st.db, &st.clock, name, &code, pw).await.unwrap();
    let secret = totp::base32_decode(&e.totp_secret).unwrap();
    let t = u64::try_from(st.clock.now()).unwrap();
    accounts::confirm(&st.db, &st.clock, name, &code, &totp::code_at(&secret, t)).await.unwrap();
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_and_lockout_under_parallel_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = state(dir.path()).await;
    st.limits = Arc::new(RateLimits::new(10, 25, 5, 1_000));
    let pw = "Richtig-Passwort-2025";
    let secret = activated(&st, "bj1", pw).await;
    st.clock.advance(60 - st.clock.now().rem_euclid(60)); // the start of a minute: one window for all
    // 20 wrong passwords at once from one address: 10 reach the password check, 10 are refused with 429;
    // the failure count is atomic, so five of them lock the account whatever the interleaving.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let st = st.clone();
        set.spawn(async move {
            let body = json!({"name": "bj1", "password": format!("Falsch-Passwort-{i:02}"), "totp": "000000"});
            call(&st, "POST", "/api/v1/auth/login", None, Some(body)).await
        });
    }
    let mut by_status = std::collections::BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(body["message"].as_str().unwrap().contains("请求过于频繁"), "{body}");
        }
        *by_status.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(by_status.get(&429), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&401).unwrap_or(&0) + by_status.get(&423).unwrap_or(&0), 10, "{by_status:?}");
    assert!(by_status.get(&423).is_some_and(|n| *n >= 1), "{by_status:?}");
    // Locked: even the right password and code are refused.
    let t = u64::try_from(st.clock.now()).unwrap();
    let r = accounts::login(&st.db, &st.clock, "bj1", pw, &totp::code_at(&secret, t + 30)).await;
    assert!(matches!(r, Err(flumon_intranet::Error::Locked)), "{r:?}");
    // Per address: other account names from the same address hit its limit (25 a minute) …
    let mut last = StatusCode::OK;
    for i in 0..10 {
        let body = json!({"name": format!("x{i}"), "password": "Falsch-Passwort-1", "totp": "000000"});
        last = call(&st, "POST", "/api/v1/auth/login", None, Some(body)).await.0;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // … while another address is still heard.
    let body = json!({"name": "x0", "password": "Falsch-Passwort-1", "totp": "000000"});
    assert_eq!(
        call_from(&st, "192.0.2.9", "POST", "/api/v1/auth/login", None, Some(body)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // API: 5 requests a minute per account here; the sixth gets 429, the next minute is fresh.
    accounts::create_user(&st.db, &st.clock, "nat", Role::Analyst, Some("000000")).await.unwrap();
    let tok = start_session(&st.db, &st.clock, "nat").await.unwrap().0;
    st.clock.advance(60 - st.clock.now().rem_euclid(60));
    for _ in 0..5 {
        assert_eq!(call(&st, "GET", "/api/v1/me", Some(&tok), None).await.0, StatusCode::OK);
    }
    let (status, body) = call(&st, "GET", "/api/v1/me", Some(&tok), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    st.clock.advance(60);
    assert_eq!(call(&st, "GET", "/api/v1/me", Some(&tok), None).await.0, StatusCode::OK);
    // The throttled logins are in the journal.
    assert!(!st.audit.entries(|e| e.kind == "login.throttled", 100).unwrap().is_empty());
}
