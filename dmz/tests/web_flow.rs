//! The whole web path: registration → review (reviewer with password + TOTP)
//! → activation e-mail from the maildir → password + TOTP → login → web upload
//! → receipt page with errors → errors CSV → history and calendar; and the
//! separation of the two listeners.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod web_common;

use web_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_review_activation_upload() {
    let srv = Srv::start(&[]).await;
    let code = uscc("12110105MB0000001");
    let email = "flu-office@hospital.example.cn";

    // 1. the public pages and the application
    let b = srv.browser(false);
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text().contains("流感医疗服务监测系统"));
    assert!(home.headers.get("content-security-policy").unwrap().to_str().unwrap().contains("default-src 'none'"));
    let tpl = b.get("/apply/form").await;
    assert!(tpl.text().contains("注册申请表") && tpl.text().contains("单位公章"));
    let css = b.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    b.get("/apply").await;
    let fields = |uscc: &str| {
        vec![
            ("name".to_owned(), "北京市朝阳区测试医院".to_owned()),
            ("uscc".to_owned(), uscc.to_owned()),
            ("licence_no".to_owned(), "PDY00001X11010517A1002".to_owned()),
            ("level".to_owned(), "3".to_owned()),
            ("region".to_owned(), "110105".to_owned()),
            ("contact_name".to_owned(), "王主任".to_owned()),
            ("email".to_owned(), email.to_owned()),
            ("phone".to_owned(), "010-65551234".to_owned()),
        ]
    };
    let submit = |b: Browser,
                  f: Vec<(String, String)>,
                  files: Vec<(&'static str, &'static str, &'static str, Vec<u8>)>| async move {
        let tok = b.token();
        let mut all: Vec<(&str, &str)> = vec![("csrf", tok.as_str())];
        all.extend(f.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        b.post_multipart("/apply", &all, &files).await
    };
    // a wrong check character and a GIF are refused with messages at the fields
    let mut bad_uscc = code.clone();
    bad_uscc.replace_range(17.., if code.ends_with('0') { "1" } else { "0" });
    let r = submit(
        b.clone(),
        fields(&bad_uscc),
        vec![("form", "a.gif", "image/gif", b"GIF89a....".to_vec()), ("licence", "l.png", "image/png", png())],
    )
    .await;
    assert_eq!(r.status, 200);
    let t = r.text();
    assert!(t.contains("校验位正确") && t.contains("应为 PDF、JPEG 或 PNG"), "{t}");
    let r = submit(
        b.clone(),
        fields(&code),
        vec![("form", "申请表.pdf", "application/pdf", pdf()), ("licence", "licence.png", "image/png", png())],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("申请已提交"), "{t}");
    let no = between(&t, "<b class=\"secret\">", "</b>").unwrap().to_owned();
    // a second application while one is pending is refused
    let r = submit(
        b.clone(),
        fields(&code),
        vec![("form", "f.pdf", "application/pdf", pdf()), ("licence", "l.pdf", "application/pdf", pdf())],
    )
    .await;
    assert!(r.text().contains("待审核的申请"), "{}", r.text());
    // status lookup
    b.get("/apply/status").await;
    let r = b.post_form("/apply/status", &[("no", &no), ("uscc", &code)]).await;
    assert!(r.text().contains("待审核"));
    assert_eq!(srv.mails().len(), 1, "confirmation mail");

    // 2. review on the admin listener
    let (rname, rpw, rsecret) = srv.reviewer("reviewer1").await;
    let mut rtotp = Totp::activated(rsecret);
    let a = srv.browser(true);
    let r = a.login(&rname, &rpw, &rtotp.code().await).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.location(), "/review");
    let list = a.get("/review").await;
    assert!(list.text().contains(&no), "pending list shows the application");
    let d = a.get(&format!("/review/{no}")).await;
    assert!(d.text().contains("北京市朝阳区测试医院") && d.text().contains("校验位正确"));
    let scan = a.get(&format!("/review/{no}/scan/form")).await;
    assert_eq!(scan.status, 200);
    assert_eq!(scan.headers.get("content-type").unwrap(), "application/pdf");
    assert_eq!(scan.body, pdf(), "reviewer copy opens");
    let scan = a.get(&format!("/review/{no}/scan/licence")).await;
    assert_eq!(scan.body, png());
    let r = a.post_form(&format!("/review/{no}/approve"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(flumon_dmz::hospitals::get(&srv.state, &code).unwrap().is_some(), "hospital created");
    let scan = a.get(&format!("/review/{no}/scan/form")).await;
    assert_eq!(scan.status, 404, "reviewer copy deleted when the review ended");
    let again = a.post_form(&format!("/review/{no}/approve"), &[]).await;
    assert_eq!(again.status, 409, "decided once");
    // the vault copies stay in the raw archive
    let metas = flumon_dmz::archive::all_meta(&srv.state.store).unwrap();
    assert_eq!(metas.iter().filter(|m| m.kind.starts_with("registration_")).count(), 2);

    // 3. the activation e-mail
    let mails = srv.mails();
    let m = mails.iter().find(|m| m.body.contains("/activate/")).expect("activation mail");
    assert_eq!(m.to, email);
    assert!(m.body.contains(&code), "user name in the mail");
    let link = m.link("/activate/").unwrap();
    let path = format!("/activate/{}", link.split_once("/activate/").unwrap().1);

    // 4. activation (password + TOTP) and login
    let mut h = srv.browser(false);
    let pw = "Hosp-Pass-2025!";
    let secret = activate(&mut h, &path, pw).await;
    let mut htotp = Totp::activated(secret);
    let reuse = h.get(&path).await;
    assert_eq!(reuse.status, 400, "the link works once");
    let r = h.login(&code, pw, &htotp.code().await).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.location(), "/hospital/upload");
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-flumon=")
            && cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );

    // 5. web upload with errors
    let up = h.get("/hospital/upload").await;
    assert!(up.text().contains("上传数据"));
    let tok = h.token();
    let other = uscc("12110105MB0000009");
    let r = h
        .post_multipart(
            "/hospital/upload",
            &[("csrf", &tok), ("type", "visits")],
            &[("file", "visits.csv", "text/csv", visits_csv(&code, &other))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let rpath = r.location();
    assert!(rpath.starts_with("/hospital/receipts/"));
    let rid = rpath.trim_start_matches("/hospital/receipts/").to_owned();
    let page = h.get(&rpath).await;
    let t = page.text();
    assert_eq!(page.status, 200);
    assert!(t.contains("部分拒收") && t.contains("错误清单"), "{t}");
    assert!(t.contains("MZRC 门诊总诊疗人次"), "field with its Chinese name: {t}");
    assert!(t.contains("ZZJGDM"), "other hospital's code rejected");
    let csv = h.get(&format!("{rpath}/errors.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/csv"));
    assert!(csv.body.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM for Excel");
    let text = String::from_utf8(csv.body[3..].to_vec()).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert!(lines[0].starts_with("行号 (row),字段 (field)"));
    assert!(lines.len() >= 3, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("2,MZRC,")), "{text}");

    // 5b. a file over 4 MiB is streamed into the raw archive as it arrives (api/stream.rs),
    // not held in memory, and gives the same receipt: the three rows above plus 5 MiB of
    // empty rows (commas only, which the parser skips)
    let in_file = |srv: &Srv| {
        flumon_dmz::archive::all_meta(&srv.state.store).unwrap().iter().filter(|m| m.in_file && m.complete).count()
    };
    let files_before = in_file(&srv);
    let mut big = visits_csv(&code, &other);
    while big.len() <= 5 << 20 {
        big.extend(std::iter::repeat_n(b',', 4095));
        big.push(b'\n');
    }
    let tok = h.token();
    let r = h
        .post_multipart(
            "/hospital/upload",
            &[("csrf", &tok), ("type", "visits")],
            &[("file", "big.csv", "text/csv", big)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(in_file(&srv), files_before + 1, "the web upload over 4 MiB went to the archive as a file");
    let page = h.get(&r.location()).await;
    let t = page.text();
    assert!(t.contains("部分拒收") && t.contains("MZRC 门诊总诊疗人次"), "{t}");

    // 6. history and calendar
    let hist = h.get("/hospital/receipts").await;
    assert!(hist.text().contains(&rid));
    let cal = h.get("/hospital/calendar").await;
    assert!(cal.text().contains("chip ty-visits bad"), "{}", cal.text());
    let agents = h.get("/hospital/agents").await;
    assert!(agents.text().contains("前置机客户端证书"));

    // 7. the listeners keep their users apart
    let hosp_cookie = h.cookies.lock().unwrap().get("__Host-flumon").cloned().unwrap();
    let rev_cookie = a.cookies.lock().unwrap().get("__Host-flumon-admin").cloned().unwrap();
    let c = srv.browser(true);
    let r = c
        .send(
            "GET",
            "/review",
            &[("cookie", &format!("__Host-flumon-admin={hosp_cookie}; __Host-flumon={hosp_cookie}"))],
            vec![],
        )
        .await;
    assert_eq!(r.status, 303, "a hospital session is no session on the admin listener");
    assert_eq!(r.location(), "/login");
    let c = srv.browser(false);
    let r = c
        .send(
            "GET",
            "/hospital/upload",
            &[("cookie", &format!("__Host-flumon={rev_cookie}; __Host-flumon-admin={rev_cookie}"))],
            vec![],
        )
        .await;
    assert_eq!(r.status, 303, "a reviewer session is no session on the public listener");
    // the admin listener has no upload page, the public one no review page
    assert_eq!(a.get("/hospital/upload").await.status, 404);
    let tok = a.token();
    let r = a
        .post_multipart(
            "/hospital/upload",
            &[("csrf", &tok), ("type", "visits")],
            &[("file", "v.csv", "text/csv", visits_csv(&code, &other))],
        )
        .await;
    assert_eq!(r.status, 404, "a reviewer cannot upload");
    assert_eq!(h.get("/review").await.status, 404);
    // a hospital account cannot sign in on the admin listener, a reviewer not on the public one
    let ha = srv.browser(true);
    let r = ha.login(&code, pw, &htotp.code().await).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("用户名、密码或动态验证码错误"));
    let rp = srv.browser(false);
    let r = rp.login(&rname, &rpw, &rtotp.code().await).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("用户名、密码或动态验证码错误"));

    // 8. logout ends the session
    let r = h.post_form("/logout", &[]).await;
    assert_eq!(r.status, 303);
    let r = h.send("GET", "/hospital/upload", &[("cookie", &format!("__Host-flumon={hosp_cookie}"))], vec![]).await;
    assert_eq!(r.status, 303);

    // 9. the audit journal has the story, and no password
    let journal = std::fs::read_to_string(srv.state.config.paths.data_dir.join("audit.jsonl")).unwrap();
    for kind in [
        "web.application",
        "web.review.approved",
        "web.activated",
        "web.login",
        "web.upload",
        "web.logout",
        "web.scan_viewed",
        "web.login_failed",
    ] {
        assert!(journal.contains(kind), "{kind} audited");
    }
    assert!(!journal.contains(pw) && !journal.contains(&rpw));
}

/// `admin create-hospital` (operators, `deploy/run-local.sh`) also gives the hospital's web
/// user a one-time activation link on the public listener; it works once, the hospital logs
/// in with password + TOTP, and the operator path never resets a live login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_created_hospital_gets_a_web_activation_link() {
    let srv = Srv::start(&[]).await;
    let code = uscc("91110105MA01PRK00");
    let req = flumon_dmz::admin::CreateReq {
        uscc: code.clone(),
        name: "运维创建医院".into(),
        region: "110105".into(),
        level: 3,
    };
    let created = flumon_dmz::admin::create(&srv.state, &req).await.unwrap();
    let url = created.activation_url.expect("an activation link for a new hospital");
    let path = url.split_once("/activate/").map(|(_, t)| format!("/activate/{t}")).unwrap();
    // the link belongs to the public listener: the admin listener refuses it
    let a = srv.browser(true);
    assert_ne!(a.get(&path).await.status, 200, "a hospital link on the admin listener");
    let mut b = srv.browser(false);
    let pw = "Oper-Hosp-2025!";
    let secret = activate(&mut b, &path, pw).await;
    let mut totp = Totp::activated(secret);
    let r = b.login(&code, pw, &totp.code().await).await;
    assert_eq!(r.status, 303, "{}", r.text());
    // used once
    let again = srv.browser(false);
    assert_ne!(again.get(&path).await.status, 200, "an activation link works once");
    // the same hospital again is refused, and a live login is never reset by the operator path
    assert!(flumon_dmz::admin::create(&srv.state, &req).await.is_err(), "hospital created twice");
    let relink = flumon_dmz::web::hospital_activation(&srv.state, &code, "运维创建医院").await.unwrap();
    assert!(relink.is_none(), "an active web account is not reset by an operator command");
}
