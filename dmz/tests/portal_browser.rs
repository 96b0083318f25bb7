//! The hospital pages in headless Chromium (WebDriver) against the real DMZ
//! server (TLS listeners, sled, the pipeline): login with password + TOTP,
//! a web upload with its receipt, history and calendar, 本院监测 with charts,
//! the 下载中心 after the release step, and the agents page. Screenshots of
//! each go to `$FLUMON_SCREENSHOTS` when set (docs/screenshots/dmz-*.png):
//!
//! ```sh
//! FLUMON_SCREENSHOTS=$PWD/docs/screenshots cargo test -p flumon-dmz --test portal_browser
//! ```
//! Skips visibly without chromium + chromedriver, unless FLUMON_REQUIRE_BROWSER is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod portal_common;
mod web_common;

use std::path::PathBuf;
use std::process::Command;

use chrono::Duration;
use flumon_dmz::hospitals::now_cst;
use flumon_tests::synth::generate::{Options, upload};
use flumon_tests::synth::hospitals::Hospital;
use portal_common::Driver;
use web_common::*;

fn shot(d: &Driver, name: &str) {
    let dir = std::env::var_os("FLUMON_SCREENSHOTS").map(PathBuf::from);
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("flumon-portal-shots"));
    std::fs::create_dir_all(&dir).unwrap();
    d.screenshot(&dir.join(format!("dmz-{name}.png")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospital_pages_in_a_browser() {
    let Some((chrome, driver)) = portal_common::browser_or_skip() else { return };
    let srv = Srv::start(&[]).await;
    let h = Hospital::generate(21, 0);
    flumon_dmz::hospitals::create_approved(&srv.state, &h.code, &h.name, h.county.code, h.level).await.unwrap();
    {
        use flumon_dmz::web::accounts;
        let user = accounts::User::new(&h.code, accounts::Role::Hospital { code: h.code.clone() }, &h.name, None);
        accounts::create(&srv.state, &user).unwrap();
    }
    let token = flumon_dmz::web::activation::issue(&srv.state, &h.code).await.unwrap();
    let pw = "Hosp-Pass-2025!";
    let mut b = srv.browser(false);
    let secret = activate(&mut b, &format!("/activate/{}", token.as_str()), pw).await;
    // three weeks of the hospital's daily uploads (synthetic), through the web upload page
    let web = srv.browser(false);
    let mut totp = Totp::activated(secret);
    let r = web.login(&h.code, pw, &totp.code().await).await;
    assert_eq!(r.status, 303);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        seed: 21,
        hospitals: 1,
        days: 7,
        scale: 2.0,
        invalid_rate: 0.01,
        out: dir.path().into(),
        ..Options::default()
    };
    let today = now_cst().date();
    for k in (1..=22).rev().step_by(3) {
        let (files, _) = upload(&opts, &h, today - Duration::days(k)).unwrap();
        for f in files {
            let body = std::fs::read(dir.path().join(&f.path)).unwrap();
            web.get("/hospital/upload").await;
            let tok = web.token();
            let ct = f.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
            let name = f.path.rsplit('/').next().unwrap().to_owned();
            let r = web
                .post_multipart("/hospital/upload", &[("csrf", &tok), ("type", &f.ty)], &[("file", &name, &ct, body)])
                .await;
            assert!(r.status == 200 || r.status == 303, "{}", r.status);
        }
    }
    // the release build when there is one (the debug one is ~200 MB)
    let debug = PathBuf::from(env!("CARGO_BIN_EXE_flumon-dmz")).with_file_name("flumon-agent");
    let release = debug.parent().and_then(|p| p.parent()).map(|t| t.join("release/flumon-agent"));
    let binary = release
        .filter(|p| p.exists())
        .or_else(|| debug.exists().then_some(debug))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flumon-dmz")));
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/release-agent.sh"))
        .arg(srv.dir.path())
        .args(["--binary", binary.to_str().unwrap(), "--version", "0.1.0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = dir.path().join("visits-web.csv");
    std::fs::write(&csv, visits_csv(&h.code, &uscc("12110105MB0000009"))).unwrap();

    let base = format!("https://127.0.0.1:{}", srv.public.port());
    let (code, csv2) = (totp.code().await, csv.clone());
    let h2 = h.clone();
    tokio::task::spawn_blocking(move || {
        let d = Driver::start(&chrome, &driver);
        let url = |p: &str| format!("{base}{p}");
        d.goto(&url("/login"));
        assert!(d.source().contains("登"));
        d.type_into("input[name=username]", &h2.code);
        shot(&d, "login");
        d.type_into("input[name=password]", pw);
        d.type_into("input[name=code]", &code);
        d.click("main form button[type=submit]");
        // this harness does not wait for the navigation a click starts: wait for it here
        let t = std::time::Instant::now();
        while d.url().contains("/login") && t.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(!d.url().contains("/login"), "signed in: {}", d.source());

        d.goto(&url("/hospital/upload"));
        d.click("select[name=type] option[value=visits]");
        d.send_keys("input[name=file]", csv2.to_str().unwrap());
        shot(&d, "upload");
        d.click("main form button[type=submit]");
        let src = d.source();
        let main = src.split("<main>").nth(1).unwrap_or(&src).to_owned();
        assert!(src.contains("回执") && src.contains("拒收"), "{}", main.get(..main.len().min(1500)).unwrap_or(""));
        shot(&d, "receipt");

        d.goto(&url("/hospital/receipts"));
        assert!(d.count("table.t tr") > 5, "history lists the uploads");
        shot(&d, "history");
        d.goto(&url("/hospital/calendar"));
        assert!(d.count("span.chip") > 10);
        shot(&d, "calendar");

        d.goto(&url("/hospital/figures"));
        assert!(d.count("svg") >= 2, "charts drawn");
        assert!(d.count("table.t") >= 6, "tables");
        let src = d.source();
        assert!(src.contains("本院监测") && src.contains("抗流感药物储备") && src.contains("上报质量"));
        shot(&d, "figures");
        // the export links (their content is checked over TLS in portal_web.rs; the pages' CSP allows no fetch)
        assert!(d.exists("a[href='/hospital/figures.xlsx']") && d.exists("a[href='/hospital/figures/daily.csv']"));
        d.goto(&url("/hospital/downloads"));
        let src = d.source();
        assert!(src.contains("flumon-agent-0.1.0-linux-x86_64") && src.contains("release-sign.pub.pem"));
        shot(&d, "downloads");
        d.goto(&url("/hospital/downloads/doc/hospital-guide"));
        assert!(d.count("img") >= 5, "the guide shows its screenshots");
        let broken = d.js(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);",
            serde_json::json!([]),
        );
        assert_eq!(broken, serde_json::json!([]), "every screenshot loads");
        d.goto(&url("/hospital/downloads/doc/interface"));
        assert!(d.count("table") > 5, "the interface standard's tables rendered");

        d.goto(&url("/hospital/agents"));
        d.click("form[action='/hospital/agents/enrol-code'] button");
        let src = d.source();
        assert!(src.contains("flumon-agent enroll --dmz"), "{src}");
        shot(&d, "agents");
    })
    .await
    .unwrap();
    srv.stop();
}
