//! Web security properties: lockout (also under parallel attempts), idle
//! session timeout, CSRF token and Origin checks, and hospital isolation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod web_common;

use web_common::*;

fn journal(srv: &Srv) -> String {
    std::fs::read_to_string(srv.state.config.paths.data_dir.join("audit.jsonl")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_five_failures_also_in_parallel() {
    let srv = Srv::start(&[]).await;
    // sequential
    let (code, pw, mut totp) = hospital_account(&srv, "12110105MB0000101", "顺序医院").await;
    let b = srv.browser(false);
    for i in 1..=5 {
        let r = b.login(&code, "Wrong-Pass-123!", "000000").await;
        assert_eq!(r.status, 200);
        let t = r.text();
        if i < 5 {
            assert!(t.contains("用户名、密码或动态验证码错误"), "attempt {i}: {t}");
        } else {
            assert!(t.contains("账户已锁定"), "attempt {i} locks: {t}");
        }
    }
    let r = b.login(&code, &pw, &totp.code().await).await;
    assert_eq!(r.status, 200, "the right password is refused while locked");
    assert!(r.text().contains("账户已锁定"));
    assert!(journal(&srv).contains("web.lockout"));

    // parallel: 10 wrong attempts at once; at most 5 are checked, the account ends locked
    let (code2, pw2, mut totp2) = hospital_account(&srv, "12110105MB0000102", "并发医院").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let b = srv.browser(false);
        let c = code2.clone();
        tasks.push(tokio::spawn(async move { b.login(&c, "Wrong-Pass-123!", "000000").await.text() }));
    }
    let mut wrong = 0;
    let mut locked = 0;
    for t in tasks {
        let t = t.await.unwrap();
        if t.contains("账户已锁定") {
            locked += 1;
        } else if t.contains("用户名、密码或动态验证码错误") {
            wrong += 1;
        }
    }
    eprintln!("parallel: {wrong} wrong, {locked} locked");
    assert_eq!(wrong + locked, 10);
    assert!(wrong <= 5, "at most 5 checks: {wrong} wrong, {locked} locked");
    assert!(locked >= 5);
    let r = srv.browser(false).login(&code2, &pw2, &totp2.code().await).await;
    assert!(r.text().contains("账户已锁定"), "locked after the parallel burst");
    let failures = journal(&srv).matches("web.login_failed").count();
    assert!(failures >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_session_expires_and_redirects_to_login() {
    let srv = Srv::start(&[("session_idle_secs", toml::Value::Integer(2))]).await;
    let (code, pw, mut totp) = hospital_account(&srv, "12110105MB0000201", "超时医院").await;
    let b = srv.browser(false);
    let r = b.login(&code, &pw, &totp.code().await).await;
    assert_eq!(r.status, 303);
    assert_eq!(b.get("/hospital/upload").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let r = b.get("/hospital/receipts").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/login?expired=1");
    let page = b.get("/login?expired=1").await;
    assert!(page.text().contains("会话已超时"));
    // the POST of an expired session goes nowhere either
    let r = b.post_form("/hospital/agents/token", &[]).await;
    assert_ne!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_token_and_origin_are_checked() {
    let srv = Srv::start(&[]).await;
    let (code, pw, mut totp) = hospital_account(&srv, "12110105MB0000301", "防护医院").await;
    let b = srv.browser(false);
    // the login form itself needs the anonymous token
    b.get("/login").await;
    let r = b
        .post_raw("/login", &[("username", &code), ("password", &pw), ("code", "123456")], Some("https://localhost"))
        .await;
    assert_eq!(r.status, 403, "login without token");
    let r = b.login(&code, &pw, &totp.code().await).await;
    assert_eq!(r.status, 303);
    b.get("/hospital/agents").await;
    let tok = b.token();
    let o = Some("https://localhost");
    let none = b.post_raw("/hospital/agents/token", &[], o).await;
    assert_eq!(none.status, 403, "no token");
    let wrong =
        b.post_raw("/hospital/agents/token", &[("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")], o).await;
    assert_eq!(wrong.status, 403, "wrong token");
    let cross = b.post_raw("/hospital/agents/token", &[("csrf", &tok)], Some("https://evil.example")).await;
    assert_eq!(cross.status, 403, "cross-site Origin");
    assert!(cross.text().contains("跨站请求被拒绝"));
    let bare = b.post_raw("/hospital/agents/token", &[("csrf", &tok)], None).await;
    assert_eq!(bare.status, 403, "neither Origin nor Referer");
    let referer = b
        .send(
            "POST",
            "/hospital/agents/token",
            &[("content-type", "application/x-www-form-urlencoded"), ("referer", "https://localhost/hospital/agents")],
            format!("csrf={tok}").into_bytes(),
        )
        .await;
    assert_eq!(referer.status, 200, "same-origin Referer without Origin");
    assert!(referer.text().contains("新的 API 令牌"));
    let json = b
        .send(
            "POST",
            "/hospital/agents/token",
            &[("content-type", "application/json"), ("origin", "https://localhost")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(json.status, 403, "other body types refused");
    // multipart upload without the token
    let r = b
        .post_multipart("/hospital/upload", &[("type", "visits")], &[("file", "v.csv", "text/csv", b"x".to_vec())])
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post_multipart(
            "/hospital/upload",
            &[("csrf", "nope"), ("type", "visits")],
            &[("file", "v.csv", "text/csv", b"x".to_vec())],
        )
        .await;
    assert_eq!(r.status, 403);
    // registration without the anonymous token
    let anon = srv.browser(false);
    anon.get("/apply").await;
    let r = anon.post_multipart("/apply", &[("name", "x")], &[]).await;
    assert_eq!(r.status, 403);
    // the session's token is not the anonymous one: another browser's token fails
    let other = srv.browser(false);
    other.get("/login").await;
    let r = b.post_raw("/logout", &[("csrf", &other.token())], o).await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hospital_sees_only_its_own_receipts() {
    let srv = Srv::start(&[]).await;
    let (a_code, a_pw, mut a_totp) = hospital_account(&srv, "12110105MB0000401", "甲医院").await;
    let (b_code, b_pw, mut b_totp) = hospital_account(&srv, "12110105MB0000402", "乙医院").await;
    let a = srv.browser(false);
    assert_eq!(a.login(&a_code, &a_pw, &a_totp.code().await).await.status, 303);
    let b = srv.browser(false);
    assert_eq!(b.login(&b_code, &b_pw, &b_totp.code().await).await.status, 303);
    // a field naming the other hospital is refused outright
    a.get("/hospital/upload").await;
    let tok = a.token();
    let r = a
        .post_multipart(
            "/hospital/upload",
            &[("csrf", &tok), ("hospital", &b_code), ("type", "visits")],
            &[("file", "v.csv", "text/csv", visits_csv(&a_code, &b_code))],
        )
        .await;
    assert_eq!(r.status, 400, "unknown form fields refused");
    let rb = {
        b.get("/hospital/upload").await;
        let tok = b.token();
        let r = b
            .post_multipart(
                "/hospital/upload",
                &[("csrf", &tok), ("type", "visits")],
                &[("file", "v.csv", "text/csv", visits_csv(&b_code, &a_code))],
            )
            .await;
        assert_eq!(r.status, 303);
        r.location().trim_start_matches("/hospital/receipts/").to_owned()
    };
    let ra = {
        let tok = a.token();
        let r = a
            .post_multipart(
                "/hospital/upload",
                &[("csrf", &tok), ("type", "visits")],
                &[("file", "v.csv", "text/csv", visits_csv(&a_code, &b_code))],
            )
            .await;
        assert_eq!(r.status, 303);
        r.location().trim_start_matches("/hospital/receipts/").to_owned()
    };
    assert_ne!(ra, rb);
    // A's receipt: A's rows accepted, B's ZZJGDM row rejected
    let page = a.get(&format!("/hospital/receipts/{ra}")).await.text();
    assert!(page.contains("ZZJGDM"));
    // every page with B's ids and B's code
    for path in [
        format!("/hospital/receipts/{rb}"),
        format!("/hospital/receipts/{rb}/errors.csv"),
        format!("/hospital/receipts/{rb}?hospital={b_code}"),
        format!("/hospital/receipts/{rb}/errors.csv?code={b_code}"),
    ] {
        let r = a.get(&path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains(&b_code));
    }
    for path in [
        format!("/hospital/receipts?hospital={b_code}"),
        format!("/hospital/receipts?code={b_code}&month=2020-01"),
        format!("/hospital/calendar?hospital={b_code}"),
        format!("/hospital/agents?code={b_code}"),
        format!("/hospital/upload?hospital={b_code}"),
    ] {
        let r = a.get(&path).await;
        let t = r.text();
        assert!(r.status == 200 || r.status == 400, "{path}: {}", r.status);
        assert!(!t.contains(&rb), "{path} shows B's receipt");
        assert!(!t.contains("乙医院"), "{path} shows B");
    }
    let hist = a.get("/hospital/receipts").await.text();
    assert!(hist.contains(&ra) && !hist.contains(&rb));
    // agent actions with B's code in the form act on A
    a.get("/hospital/agents").await;
    let r = a.post_form("/hospital/agents/enrol-code", &[("code", &b_code), ("hospital", &b_code)]).await;
    assert_eq!(r.status, 200);
    let hb = flumon_dmz::hospitals::get(&srv.state, &b_code).unwrap().unwrap();
    assert!(hb.enrol.is_none(), "B untouched");
    let ha = flumon_dmz::hospitals::get(&srv.state, &a_code).unwrap().unwrap();
    assert!(ha.enrol.is_some(), "A's code made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_password_must_be_changed_and_codes_work_once() {
    let srv = Srv::start(&[]).await;
    let (code, pw, mut totp) = hospital_account(&srv, "12110105MB0000501", "过期医院").await;
    // a TOTP code is accepted once
    let b = srv.browser(false);
    let c = totp.code().await;
    assert_eq!(b.login(&code, &pw, &c).await.status, 303);
    let again = srv.browser(false).login(&code, &pw, &c).await;
    assert_eq!(again.status, 200, "the same code twice");
    // the password is 91 days old
    flumon_dmz::web::accounts::modify(&srv.state, &code, |u| {
        u.password_changed -= 91 * 86_400;
        Ok(())
    })
    .unwrap();
    let b = srv.browser(false);
    let r = b.login(&code, &pw, &totp.code().await).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account/password");
    let r = b.get("/hospital/upload").await;
    assert_eq!(r.location(), "/account/password", "nothing else until changed");
    let page = b.get("/account/password").await;
    assert!(page.text().contains("密码已超过 90 天"));
    let same = b.post_form("/account/password", &[("current", &pw), ("new", &pw), ("new2", &pw)]).await;
    assert!(same.text().contains("最近 5 次"), "{}", same.text());
    let weak =
        b.post_form("/account/password", &[("current", &pw), ("new", "alllowercase"), ("new2", "alllowercase")]).await;
    assert!(weak.text().contains("至少三类"));
    let wrong = b
        .post_form(
            "/account/password",
            &[("current", "Not-The-One-1"), ("new", "Brand-New-Pass-9"), ("new2", "Brand-New-Pass-9")],
        )
        .await;
    assert!(wrong.text().contains("当前密码错误"));
    let ok = b
        .post_form("/account/password", &[("current", &pw), ("new", "Brand-New-Pass-9"), ("new2", "Brand-New-Pass-9")])
        .await;
    assert!(ok.text().contains("密码已修改"), "{}", ok.text());
    assert_eq!(b.get("/hospital/upload").await.status, 200);
    let journal = std::fs::read_to_string(srv.state.config.paths.data_dir.join("audit.jsonl")).unwrap();
    assert!(journal.contains("web.password_changed"));
    assert!(!journal.contains("Brand-New-Pass-9"));
}
