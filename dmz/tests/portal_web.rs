//! The hospital portal pages (issue 9) over real TLS: 本院监测 with charts,
//! tables and CSV/XLSX exports, only ever the session's own hospital; the
//! 下载中心 after the documented release step (deploy/release-agent.sh),
//! every listed download served, its digest matching and its signature
//! verifying (in Rust, with `flumon-agent verify-release`, and with OpenSSL);
//! the enrolment command on the agents page.
//!
//! ```text
//!  Srv (in-process DMZ, TLS) ─▶ hospitals A, B (web accounts) ─▶ synthetic uploads (pipeline)
//!  A's browser ─▶ /hospital/figures[?hospital=B…] · /hospital/figures/{t}.csv · .xlsx ─▶ A's numbers only
//!  release-agent.sh ─▶ data/downloads ─▶ /hospital/downloads ─▶ every link ─▶ SM3 + SM2 checks
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod web_common;

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use chrono::Duration;
use flumon_dmz::figures;
use flumon_dmz::hospitals::now_cst;
use flumon_shared::crypto::{Sm2PublicKey, Sm2Signature, sm3};
use flumon_shared::model::RecordType;
use flumon_tests::synth::generate::{Options, upload};
use flumon_tests::synth::hospitals::Hospital;
use web_common::*;

const DMZ_BIN: &str = env!("CARGO_BIN_EXE_flumon-dmz");

/// An approved hospital with the synthetic code, an activated account, signed in.
async fn signed_in(srv: &Srv, h: &Hospital) -> Browser {
    use flumon_dmz::web::{accounts, activation};
    flumon_dmz::hospitals::create_approved(&srv.state, &h.code, &h.name, h.county.code, h.level).await.unwrap();
    let user = accounts::User::new(&h.code, accounts::Role::Hospital { code: h.code.clone() }, &h.name, None);
    accounts::create(&srv.state, &user).unwrap();
    let token = activation::issue(&srv.state, &h.code).await.unwrap();
    let mut b = srv.browser(false);
    let pw = "Hosp-Pass-2025!";
    let secret = activate(&mut b, &format!("/activate/{}", token.as_str()), pw).await;
    let mut totp = Totp::activated(secret);
    let b = srv.browser(false);
    let r = b.login(&h.code, pw, &totp.code().await).await;
    assert_eq!(r.status, 303, "login: {}", r.text());
    b
}

async fn feed(srv: &Srv, h: &Hospital, seed: u64, days: i64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { seed, hospitals: 1, days: 7, scale: 2.0, out: dir.path().to_path_buf(), ..Options::default() };
    let today = now_cst().date();
    for k in (1..=days).rev() {
        let (files, _) = upload(&opts, h, today - Duration::days(k)).unwrap();
        for f in files {
            let body = std::fs::read(dir.path().join(&f.path)).unwrap();
            let ty = RecordType::parse(&f.ty).unwrap();
            let (st, r) = flumon_dmz::pipeline::process_upload(
                &srv.state,
                &h.code,
                ty,
                Bytes::from(body),
                f.content_type.as_deref(),
            )
            .await
            .unwrap();
            assert_eq!(st.as_u16(), 200, "{r:?}");
        }
    }
}

/// The built agent program when present beside the DMZ's (else the DMZ's, another ELF program),
/// and whether it has `verify-release`.
fn agent_bin() -> (PathBuf, bool) {
    let p = PathBuf::from(DMZ_BIN).with_file_name("flumon-agent");
    if !p.exists() {
        return (PathBuf::from(DMZ_BIN), false);
    }
    let help = Command::new(&p).arg("--help").output().unwrap();
    let has = String::from_utf8_lossy(&help.stdout).contains("verify-release");
    (p, has)
}

fn hrefs(html: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("href=\"") {
        rest = &rest[i + 6..];
        let end = rest.find('"').unwrap();
        let h = rest[..end].replace("&amp;", "&");
        if h.starts_with(prefix) && !out.contains(&h) {
            out.push(h);
        }
        rest = &rest[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_figures_only_exports_and_download_center() {
    let srv = Srv::start(&[]).await;
    let ha = Hospital::generate(11, 0);
    let hb = Hospital::generate(11, 1);
    let a = signed_in(&srv, &ha).await;
    let b = signed_in(&srv, &hb).await;
    feed(&srv, &ha, 11, 3).await;
    feed(&srv, &hb, 12, 1).await;

    // 本院监测: the page, with charts, A's own numbers
    let ca = figures::counters(&srv.state.store, &ha.code).unwrap();
    let cb = figures::counters(&srv.state.store, &hb.code).unwrap();
    assert_ne!(ca, cb);
    let page = a.get("/hospital/figures").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("本院监测") && html.contains("<svg") && html.contains("抗流感药物储备"), "{html}");
    assert!(html.contains("/hospital/figures.xlsx") && html.contains("/hospital/figures/daily.csv"));

    // CSV of every table equals the table computed from A's counters; never B's
    let tables = figures::view::tables(&ca, now_cst().date());
    let tables_b = figures::view::tables(&cb, now_cst().date());
    for t in &tables {
        let r = a.get(&format!("/hospital/figures/{}.csv", t.id)).await;
        assert_eq!(r.status, 200, "{}", t.id);
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert_eq!(r.body, flumon_dmz::web::figures::csv_of(t).unwrap(), "{} is A's", t.id);
        // other hospital named in the URL: still A's
        for q in [format!("?hospital={}", hb.code), format!("?org={}", hb.code), format!("?zzjgdm={}", hb.code)] {
            let r2 = a.get(&format!("/hospital/figures/{}.csv{q}", t.id)).await;
            assert_eq!(r2.body, r.body, "a query cannot switch hospital");
        }
    }
    let daily_b = tables_b.iter().find(|t| t.id == "daily").unwrap();
    let rb = b.get("/hospital/figures/daily.csv").await;
    assert_eq!(rb.body, flumon_dmz::web::figures::csv_of(daily_b).unwrap(), "B sees B's");
    let ra = a.get("/hospital/figures/daily.csv").await;
    assert_ne!(ra.body, rb.body);
    for path in [format!("/hospital/figures/{}/daily.csv", hb.code), format!("/hospital/{}/figures", hb.code)] {
        assert_eq!(a.get(&path).await.status, 404, "{path}");
    }
    assert_eq!(a.get("/hospital/figures/nothing.csv").await.status, 404);
    let page_q = a.get(&format!("/hospital/figures?hospital={}", hb.code)).await.text();
    let strip = |s: &str| s.split("name=\"csrf\"").next().unwrap_or_default().to_owned();
    assert_eq!(strip(&page_q), strip(&html), "the page ignores a hospital in the URL");
    // signed out: no figures
    let anon = srv.browser(false);
    let r = anon.get("/hospital/figures/daily.csv").await;
    assert!(r.status == 303 || r.status == 401, "{}", r.status);

    // XLSX: a workbook with a sheet per table
    let x = a.get("/hospital/figures.xlsx").await;
    assert_eq!(x.status, 200);
    assert!(x.body.starts_with(b"PK\x03\x04"));
    let zip = String::from_utf8_lossy(&x.body);
    assert!(zip.contains(&format!("xl/worksheets/sheet{}.xml", tables.len())));

    // 下载中心: before the release step, the docs; after it, the program too
    let d0 = a.get("/hospital/downloads").await.text();
    assert!(d0.contains("尚未发布"));
    let (agent, agent_has_verify) = agent_bin();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/release-agent.sh"))
        .arg(srv.dir.path())
        .args(["--binary", agent.to_str().unwrap(), "--date", "2026-11-26"])
        .output()
        .unwrap();
    assert!(out.status.success(), "release: {}", String::from_utf8_lossy(&out.stderr));
    let page = a.get("/hospital/downloads").await.text();
    let links = hrefs(&page, "/hospital/downloads/");
    let manifest = flumon_dmz::web::downloads::releases(&srv.state).unwrap();
    assert_eq!(manifest.len(), 1);
    let rel = &manifest[0];
    assert!(page.contains(&rel.sm3) && page.contains(&rel.version) && page.contains("2026-11-26"));
    assert!(links.len() >= 3 + 2 * flumon_dmz::web::downloads::DOCS.len(), "{links:?}");
    let work = tempfile::tempdir().unwrap();
    for l in &links {
        let r = a.get(l).await;
        assert_eq!(r.status, 200, "{l}");
        assert!(!r.body.is_empty(), "{l}");
        let name = l.rsplit('/').next().unwrap();
        std::fs::write(work.path().join(name), &r.body).unwrap();
    }
    // the program: digest as listed, signature by the release key, three ways
    let prog = std::fs::read(work.path().join(&rel.file)).unwrap();
    assert_eq!(prog, std::fs::read(&agent).unwrap(), "the published program is the built one");
    assert_eq!(hex::encode(sm3(&prog)), rel.sm3);
    assert_eq!(prog.len() as u64, rel.size);
    let pk = Sm2PublicKey::from_spki_pem(&std::fs::read_to_string(work.path().join("release-sign.pub.pem")).unwrap())
        .unwrap();
    let own_pk = Sm2PublicKey::load(&srv.dir.path().join("keys/release-sign.pub.pem")).unwrap();
    assert_eq!(pk.to_sec1_bytes(), own_pk.to_sec1_bytes(), "the served key is the one init made");
    let sig = Sm2Signature::from_der(&std::fs::read(work.path().join(format!("{}.sig", rel.file))).unwrap()).unwrap();
    pk.verify(&prog, &sig).unwrap();
    assert!(pk.verify(&prog[1..], &sig).is_err());
    let f = |n: &str| work.path().join(n).to_str().unwrap().to_owned();
    let sig_name = format!("{}.sig", rel.file);
    let args = |file: &str, sm3: Option<&str>| flumon_agent::verify_release::Args {
        file: work.path().join(file),
        sig: work.path().join(&sig_name),
        pubkey: work.path().join("release-sign.pub.pem"),
        sm3: sm3.map(str::to_owned),
    };
    assert_eq!(flumon_agent::verify_release::verify(&args(&rel.file, Some(&rel.sm3))).unwrap(), rel.sm3);
    if agent_has_verify {
        let v = Command::new(&agent)
            .args(["verify-release", &f(&rel.file), "--sig", &f(&sig_name), "--pubkey", &f("release-sign.pub.pem")])
            .args(["--sm3", &rel.sm3])
            .output()
            .unwrap();
        assert!(v.status.success(), "verify-release: {}", String::from_utf8_lossy(&v.stderr));
        assert!(String::from_utf8_lossy(&v.stdout).contains("校验通过"));
    } else {
        eprintln!("note: target/debug/flumon-agent missing or older than verify-release; checked through the library");
    }
    let o = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey", &f("release-sign.pub.pem"), "-rawin", "-in", &f(&rel.file)])
        .args(["-sigfile", &f(&sig_name), "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"])
        .output()
        .unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Verified"), "openssl: {o:?}");
    // a tampered program is refused
    let mut bad = prog.clone();
    bad[100] ^= 1;
    std::fs::write(work.path().join("bad"), &bad).unwrap();
    assert!(flumon_agent::verify_release::verify(&args("bad", None)).is_err());
    assert!(flumon_agent::verify_release::verify(&args(&rel.file, Some(&"0".repeat(64)))).is_err());
    // the documents: rendered pages and the Markdown as embedded, versioned with a date
    for d in flumon_dmz::web::downloads::DOCS {
        let md = std::fs::read(work.path().join(format!("{}.md", d.id))).unwrap();
        assert_eq!(md, d.markdown.as_bytes());
        let h = a.get(&format!("/hospital/downloads/doc/{}", d.id)).await.text();
        assert!(h.contains(d.title) && h.contains(d.version) && h.contains(d.date));
        assert!(page.contains(&flumon_dmz::web::downloads::doc_sm3(d)[..16]));
        // every image the document shows is served
        for img in hrefs(&h.replace("src=\"", "href=\""), "/hospital/downloads/img/") {
            let r = a.get(&img).await;
            assert_eq!(r.status, 200, "{img}");
            assert!(r.body.starts_with(b"\x89PNG"));
        }
    }
    assert!(a.get("/hospital/downloads/doc/interface").await.text().contains("ZZJGDM"));
    assert!(page.contains("/apply/form"));
    assert_eq!(a.get("/apply/form").await.status, 200);
    // nothing but listed names
    for p in [
        "/hospital/downloads/file/releases.json",
        "/hospital/downloads/file/..%2Fdmz.toml",
        "/hospital/downloads/doc/x",
    ] {
        assert_eq!(a.get(p).await.status, 404, "{p}");
    }
    assert_ne!(anon.get(&format!("/hospital/downloads/file/{}", rel.file)).await.status, 200);

    // the enrolment command has the flags the agent takes
    a.get("/hospital/agents").await;
    let r = a.post_form("/hospital/agents/enrol-code", &[]).await;
    let t = r.text();
    for flag in ["flumon-agent enroll --dmz ", "--uscc ", "--code ", "--ca ", "--config-dir "] {
        assert!(t.contains(flag), "{flag} in {t}");
    }
    assert!(t.contains(&ha.code));
    srv.stop();
}
