//! Saves the main web pages, as a signed-in user sees them, for the
//! screenshots in docs/screenshots/ (run by hand, see the end of the file):
//!
//! ```sh
//! FLUMON_PAGES_DIR=/tmp/pages cargo test -p flumon-dmz --test web_pages -- --ignored
//! for f in /tmp/pages/*.html; do n=$(basename "$f" .html)
//!   chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
//!     --disable-background-networking --disable-component-update --disable-sync --lang=zh-CN \
//!     --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1280,900 \
//!     --screenshot="docs/screenshots/dmz-$n.png" "file://$f"
//! done
//! ```
//! The pages are the server's own HTML with the stylesheet beside them (the
//! script is left out: it only adds confirm dialogs and a print button);
//! `--ignore-certificate-errors` against a running `flumon-dmz serve` gives
//! the same pictures for the public pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod web_common;

use web_common::*;

fn save(dir: &std::path::Path, name: &str, html: &str) {
    let html = html
        .replace("/static/style.css?v=1", "style.css")
        .replace("<script src=\"/static/app.js?v=1\" defer></script>", "");
    std::fs::write(dir.join(format!("{name}.html")), html).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes pages for screenshots; run by hand"]
async fn save_pages_for_screenshots() {
    let Ok(dir) = std::env::var("FLUMON_PAGES_DIR") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("style.css"), flumon_dmz::web::layout::CSS).unwrap();
    let srv = Srv::start(&[]).await;

    // public pages
    let b = srv.browser(false);
    save(&dir, "home", &b.get("/").await.text());
    save(&dir, "apply", &b.get("/apply").await.text());
    save(&dir, "login", &b.get("/login").await.text());
    save(&dir, "template", &b.get("/apply/form").await.text());
    // a form with errors
    let tok = b.token();
    let r = b
        .post_multipart(
            "/apply",
            &[
                ("csrf", &tok),
                ("name", "朝阳区第一人民医院"),
                ("uscc", "12110105MB00000010"),
                ("licence_no", "PDY00001X11010517A1002"),
                ("level", "3"),
                ("region", "990105"),
                ("contact_name", "王主任"),
                ("email", "flu@hospital"),
                ("phone", "010-65551234"),
            ],
            &[("form", "f.pdf", "application/pdf", pdf()), ("licence", "l.gif", "image/gif", b"GIF89a".to_vec())],
        )
        .await;
    save(&dir, "apply-errors", &r.text());

    // three applications
    for (i, name) in ["北京市朝阳区第一人民医院", "天津市和平区中心医院", "河北省石家庄市第三医院"].iter().enumerate()
    {
        let b = srv.browser(false);
        b.get("/apply").await;
        let tok = b.token();
        let code = uscc(&format!("1211010{}MB000000{}", i + 1, i + 1));
        let region = ["110105", "120101", "130102"][i];
        let r = b
            .post_multipart(
                "/apply",
                &[
                    ("csrf", &tok),
                    ("name", name),
                    ("uscc", &code),
                    ("licence_no", "PDY00001X11010517A1002"),
                    ("level", if i == 2 { "2" } else { "3" }),
                    ("region", region),
                    ("contact_name", "王主任"),
                    ("email", "flu@hospital.example.cn"),
                    ("phone", "010-65551234"),
                ],
                &[("form", "f.pdf", "application/pdf", pdf()), ("licence", "l.png", "image/png", png())],
            )
            .await;
        assert!(r.text().contains("申请已提交"));
        if i == 0 {
            save(&dir, "apply-done", &r.text());
        }
    }
    let (rname, rpw, rsecret) = srv.reviewer("reviewer1").await;
    let mut rt = Totp::activated(rsecret);
    let a = srv.browser(true);
    a.login(&rname, &rpw, &rt.code().await).await;
    save(&dir, "review-list", &a.get("/review").await.text());
    let list = a.get("/review").await.text();
    let no = between(&list, "<td class=\"code\">", "</td>").unwrap().to_owned();
    save(&dir, "review-detail", &a.get(&format!("/review/{no}")).await.text());

    // activation page of a new hospital
    let code = uscc("12110105MB0000777");
    flumon_dmz::hospitals::create_approved(&srv.state, &code, "北京市朝阳区第一人民医院", "110105", 3).await.unwrap();
    let user = flumon_dmz::web::accounts::User::new(
        &code,
        flumon_dmz::web::accounts::Role::Hospital { code: code.clone() },
        "北京市朝阳区第一人民医院",
        None,
    );
    flumon_dmz::web::accounts::create(&srv.state, &user).unwrap();
    let token = flumon_dmz::web::activation::issue(&srv.state, &code).await.unwrap();
    let mut h = srv.browser(false);
    let path = format!("/activate/{}", token.as_str());
    save(&dir, "activate", &h.get(&path).await.text());
    let secret = activate(&mut h, &path, "Hosp-Pass-2025!").await;
    let mut ht = Totp::activated(secret);
    h.login(&code, "Hosp-Pass-2025!", &ht.code().await).await;
    save(&dir, "upload", &h.get("/hospital/upload").await.text());
    let tok = h.token();
    let other = uscc("12110105MB0000009");
    let r = h
        .post_multipart(
            "/hospital/upload",
            &[("csrf", &tok), ("type", "visits")],
            &[("file", "visits.csv", "text/csv", visits_csv(&code, &other))],
        )
        .await;
    save(&dir, "receipt", &h.get(&r.location()).await.text());

    // a month of history for the calendar
    let tree = srv.state.store.tree("receipts").unwrap();
    let now = flumon_dmz::hospitals::now_cst();
    let first = now.date().with_day0(0).unwrap();
    use chrono::Datelike;
    for d in 0..now.date().day0() {
        let day = first + chrono::Duration::days(i64::from(d));
        for (k, ty) in ["outpatient", "lab", "medication", "visits", "stock", "discharge"].iter().enumerate() {
            if (d as usize + k) % 7 == 6 || (k == 5 && !d.is_multiple_of(3)) {
                continue;
            }
            let t = day.and_hms_opt(1, 10 + k as u32, 0).unwrap();
            let id = format!("dmz-1-u{:016x}", d as usize * 10 + k);
            let rej = if (d as usize * 3 + k).is_multiple_of(11) { 3 } else { 0 };
            let rec = flumon_dmz::hospitals::ReceiptRecord {
                receipt_id: id.clone(),
                ty: (*ty).to_owned(),
                time: t,
                status: 200,
                received: 120 + k * 40,
                accepted: 120 + k * 40 - rej,
                rejected: rej,
                errors: vec![],
                via: "api".to_owned(),
            };
            tree.insert(flumon_dmz::hospitals::receipt_key(&code, t, &id), serde_json::to_vec(&rec).unwrap()).unwrap();
        }
    }
    save(&dir, "history", &h.get("/hospital/receipts").await.text());
    save(&dir, "calendar", &h.get("/hospital/calendar").await.text());
    save(&dir, "agents", &h.get("/hospital/agents").await.text());
    save(&dir, "password", &h.get("/account/password").await.text());
}
