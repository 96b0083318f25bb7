//! The web pages in headless Chromium, driving the real `flumon-intranet`
//! binary over HTTPS with a database loaded from sealed batches: activation
//! with the QR/secret and TOTP, login, every analyst page, period and scope
//! changes, the map drill-down, CSV/XLSX exports, a figure compared with the
//! API's JSON, the scope rules through the browser (a provincial analyst
//! editing the URL, a secadmin), and the administrators' pages.
//! Screenshots into docs/screenshots/ when FLUMON_SCREENSHOTS=1.
//! Without chromium/chromedriver: prints SKIP and passes, unless FLUMON_REQUIRE_BROWSER is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;
mod web_common;

use std::path::PathBuf;

use chrono::Duration;
use serde_json::json;
use web_common::*;

fn shots() -> Option<PathBuf> {
    std::env::var_os("FLUMON_SCREENSHOTS")
        .map(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"))
}

fn shot(d: &Driver, name: &str) {
    if let Some(dir) = shots() {
        std::fs::create_dir_all(&dir).unwrap();
        d.screenshot(&dir.join(format!("intranet-{name}.png")));
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_and_administrators_in_a_real_browser() {
    let Some((chrome, driver)) = browser_or_skip() else { return };
    let s = Server::start(&[
        ("natl", "analyst", Some("000000")),
        ("gdfx", "analyst", Some("440000")),
        ("secu", "secadmin", None),
        ("sysa", "sysadmin", None),
        ("audi", "auditor", None),
    ])
    .await;
    let d = Driver::start(&chrome, &driver);
    let t = today();

    // Login page, then activation with the QR code and TOTP, then login.
    d.goto(&s.url("/login"));
    assert!(d.source().contains("用户登录"));
    shot(&d, "login");
    d.goto(&s.url("/activate"));
    d.type_into("#name", "natl");
    d.type_into("#code", "wrong-code");
    d.type_into("#password", PASSWORD);
    d.type_into("#password2", PASSWORD);
    d.click("#activate");
    assert!(d.source().contains("激活码无效"), "a wrong code is refused");
    activate_and_login(&d, &s, "natl");
    assert!(d.url().ends_with("/overview"), "{}", d.url());
    assert!(d.text("header").contains("natl") && d.text("header").contains("全国"));

    // Overview: this week's cases equal the API's figure for the same 7 days.
    let shown = digits(&d.text(".kpi-cases .v"));
    let api = d.fetch(&format!("/api/v1/indicators?scope=000000&from={}&to={}&by=season", t - Duration::days(6), t));
    assert_eq!(api[0], 200, "{api}");
    let j: serde_json::Value = serde_json::from_str(api[2].as_str().unwrap()).unwrap();
    assert_eq!(shown, j["total"]["cases"]["total"].to_string(), "overview = API");
    assert!(shown.parse::<i64>().unwrap() > 0);
    shot(&d, "overview");

    // Scope change through the filter: 广东省.
    d.js(
        "document.querySelector('#f-scope').value = '440000'; document.querySelector('form.filters').submit();",
        json!([]),
    );
    assert!(d.url().contains("scope=440000"), "{}", d.url());
    assert!(d.text("h2").contains("广东"));

    // Time series: weekly by default, then daily over two weeks.
    d.goto(&s.url("/series"));
    assert_eq!(d.count("svg.chart"), 4);
    assert!(d.count("#t-series tbody tr") >= 20, "half a year of weeks");
    shot(&d, "series");
    let from = t - Duration::days(13);
    d.submit_filters(
        "document.querySelector('#f-by').value = 'day'; document.querySelector('#f-from').value = arguments[0]",
        json!([from.to_string()]),
    );
    assert!(d.url().contains("by=day") && d.url().contains(&format!("from={from}")), "{}", d.url());
    assert_eq!(d.count("#t-series tbody tr"), 14);

    // MEM and nowcast.
    d.goto(&s.url("/mem"));
    assert_eq!(d.count("svg.chart"), 2);
    assert!(d.source().contains("流行阈值"), "MEM thresholds from two past seasons");
    assert!(d.source().contains("报告尚未完整"), "nowcast days marked");
    shot(&d, "mem");

    // Map and drill-down: 广东 → 深圳 → 南山 → hospitals.
    d.goto(&s.url("/map?ind=cases"));
    assert_eq!(d.count("a.tile"), 34, "a national analyst reaches every province");
    shot(&d, "map");
    d.click("a.tile[data-code='440000']");
    assert!(d.url().contains("scope=440000"), "{}", d.url());
    d.click("#t-regions a[href*='scope=440300']");
    assert!(d.url().contains("scope=440300"));
    d.click("#t-regions a[href*='scope=440305']");
    assert!(d.text("#t-regions").contains("南山区人民医院"), "hospitals at the county level");
    // Export of the table on this page, CSV and XLSX, through the browser session.
    let csv = d.fetch("/map?scope=440000&format=csv&table=regions");
    assert_eq!(csv[0], 200);
    assert!(csv[1].as_str().unwrap().starts_with("text/csv"));
    assert!(csv[2].as_str().unwrap().contains("深圳市"), "{csv}");
    let xlsx = d.fetch("/map?scope=440000&format=xlsx&table=regions");
    assert_eq!(xlsx[0], 200);
    assert_eq!(xlsx[4], "PK", "an XLSX (zip) file");

    // Drug reserve and quality.
    d.goto(&s.url("/drugs"));
    assert!(d.count("#t-hospitals tr.alert") >= 1, "a hospital under 7 days highlighted");
    shot(&d, "drugs");
    d.goto(&s.url("/quality"));
    assert!(d.text("#t-hospitals").contains("未上报"), "the hospital without yesterday's upload");
    assert!(d.text("#t-rules").contains("E101"));
    shot(&d, "quality");
    d.click("header button");
    assert!(d.url().contains("/login?out=1"));
    d.goto(&s.url("/overview"));
    assert!(d.url().contains("/login"), "logged out: pages need a session");

    // A provincial analyst: own province only, in the page and the export.
    activate_and_login(&d, &s, "gdfx");
    assert!(d.text("h2").contains("广东"));
    d.goto(&s.url("/overview?scope=110000"));
    assert!(d.source().contains("无权访问"), "URL edited to 北京 refused");
    let denied = d.fetch("/map?scope=110000&format=csv");
    assert_eq!(denied[0], 403, "export refused too");
    assert_eq!(d.fetch("/api/v1/indicators?scope=000000")[0], 403);
    d.goto(&s.url("/map"));
    assert_eq!(d.count("a.tile"), 1, "only 广东 links");
    assert!(!d.exists("a.tile[data-code='110000']"));
    shot(&d, "map-province");
    d.click("header button");

    // secadmin: security pages, no case data.
    activate_and_login(&d, &s, "secu");
    assert!(d.url().ends_with("/security"), "{}", d.url());
    assert!(d.source().contains("日志链校验"));
    shot(&d, "security");
    for p in ["/overview", "/series", "/map", "/drugs", "/quality", "/mem"] {
        d.goto(&s.url(p));
        assert!(d.source().contains("无权访问"), "secadmin refused {p}");
    }
    assert_eq!(d.fetch("/map?format=csv")[0], 403);
    // the sender's journal, carried from the DMZ, uploaded through the form: batch 3 lost, highlighted
    d.goto(&s.url("/security/transfer"));
    d.type_into("#f-journal", &s.dir.path().join("transfer/send-journal.log").display().to_string());
    d.click("form.filters button");
    assert!(d.source().contains("已上传并保存发送端日志"), "{}", d.source());
    assert!(d.text("#summary").contains("丢失 1"), "{}", d.text("#summary"));
    assert!(d.exists("#t-batches tr.alert"), "the lost batch highlighted");
    assert!(d.text("#t-heartbeats").contains("心跳丢失"));
    shot(&d, "transfer");
    d.goto(&s.url("/security/events"));
    assert!(d.text("#t-events").contains("login.ok"));
    d.goto(&s.url("/security"));
    d.click("header button");

    // sysadmin: create an account; auditor sees that action.
    activate_and_login(&d, &s, "sysa");
    assert!(d.url().ends_with("/users"));
    d.type_into("#n-name", "szfx");
    d.js("document.querySelector('#n-role').value = 'analyst';", json!([]));
    d.type_into("#n-scope", "440300");
    d.click("form.filters button");
    assert!(!d.text("#activation-code").is_empty(), "activation code shown once");
    assert!(d.text("#t-users").contains("sz"));
    shot(&d, "users");
    d.goto(&s.url("/overview"));
    assert!(d.source().contains("无权访问"));
    d.goto(&s.url("/users"));
    d.click("header button");
    activate_and_login(&d, &s, "audi");
    assert!(d.url().ends_with("/audit"));
    assert!(d.text("#t-audit").contains("account.create"));
    shot(&d, "audit");
}
