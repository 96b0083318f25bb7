//! For the browser tests: a synthetic two-and-a-bit seasons of data for a
//! handful of hospitals in four provinces (sealed batches ingested into the
//! server's database), the real `flumon-intranet` binary serving HTTPS, and the
//! WebDriver client of `flumon_tests::webdriver` (plain HTTP/1.1 to a local `chromedriver`).
//!
//! ```text
//!  generate() ─▶ entries ─▶ sealed batches ─▶ ingest_spool(db)      (what the transfer receiver delivers)
//!  Server::start ─▶ init + admin create-user (binary) ─▶ serve (binary, TLS 1.3, random port)
//!  Driver ─▶ chromedriver --port ─▶ headless Chromium (acceptInsecureCerts) ─▶ https://127.0.0.1:PORT
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as CDuration, NaiveDate, NaiveDateTime};
use flumon_shared::entries::{Entry, HospitalInfo};
use flumon_tests::webdriver::{self, Checked, Harness, Options};
use serde_json::json;

use crate::common::*;

/// (USCC, name, region) of the synthetic hospitals.
pub const HOSPITALS: &[(&str, &str, &str)] = &[
    ("12110000400000101A", "东城区人民医院", "110101"),
    ("12110000400000102B", "朝阳区第一医院", "110105"),
    ("12310000400000103C", "黄浦区中心医院", "310101"),
    ("12440000400000104D", "南山区人民医院", "440305"),
    ("12440000400000105E", "天河区第一人民医院", "440106"),
    ("12440000400000106F", "福田区妇幼保健院", "440304"),
    ("12510000400000107G", "锦江区人民医院", "510104"),
];

/// Today in China time.
pub fn today() -> NaiveDate {
    (chrono::Utc::now() + CDuration::hours(8)).date_naive()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn poisson(&mut self, lambda: f64) -> u32 {
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u32, 1.0);
        loop {
            p *= self.next();
            if p <= l || k > 500 {
                return k;
            }
            k += 1;
        }
    }
}

fn ts(d: NaiveDate, h: u32) -> String {
    format!("{} {:02}:00:00", d, h.min(23))
}

/// Expected daily cases of a mid-sized hospital on `d`: baseline plus one epidemic per season.
fn curve(d: NaiveDate) -> f64 {
    let peaks = [NaiveDate::from_ymd_opt(2025, 1, 8).unwrap(), NaiveDate::from_ymd_opt(2025, 12, 30).unwrap()];
    let mut v: f64 = 0.4;
    for p in peaks {
        let x = (d - p).num_days() as f64 / 16.0;
        v += 5.0 * (-x * x).exp();
    }
    // The current season rises towards today.
    let t = today();
    let x = (d - (t + CDuration::days(20))).num_days() as f64 / 18.0;
    v + 4.0 * (-x * x).exp()
}

/// Every entry: hospitals, cases with labs, orders, deaths, visits, stock and upload receipts,
/// each received after a reporting delay (records not yet received by today are left out).
pub fn generate(w: &World) -> Vec<Entry> {
    let t = today();
    let start = NaiveDate::from_ymd_opt(2024, 9, 30).unwrap();
    let mut r = Rng(42);
    let mut out = Vec::new();
    for (code, name, region) in HOSPITALS {
        out.push(Entry::Hospital(HospitalInfo {
            code: (*code).into(),
            name: (*name).into(),
            level: 3,
            region: (*region).into(),
            approved: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
            active: true,
        }));
    }
    let mut n = 0u64;
    for (hi, (org, _, _)) in HOSPITALS.iter().enumerate() {
        let size = 0.5 + 0.2 * hi as f64;
        let mut d = start;
        while d <= t {
            let delay = |r: &mut Rng| -> i64 {
                let u = r.next();
                if u < 0.45 {
                    0
                } else if u < 0.7 {
                    1
                } else if u < 0.85 {
                    2
                } else if u < 0.95 {
                    3
                } else {
                    5
                }
            };
            let k = r.poisson(curve(d) * size);
            for _ in 0..k {
                n += 1;
                let dl = delay(&mut r);
                let recv = d + CDuration::days(dl);
                if recv > t {
                    continue;
                }
                let h = 8 + (r.next() * 10.0) as u32;
                let key = format!("c{n}");
                let c = |suffix: &str, hh: u32| common(w, org, &format!("{key}{suffix}"), &ts(d, hh), &ts(recv, 23));
                let u = r.next();
                let (jzlx, lcfx) = if u < 0.68 {
                    (1, 1)
                } else if u < 0.9 {
                    (2, 1)
                } else if u < 0.97 {
                    (3, 3)
                } else {
                    (3, 4)
                };
                let age = (r.next() * 85.0) as u16;
                let sex = if r.next() < 0.5 { 1 } else { 2 };
                out.push(outpatient(c("o", h), &key, &ts(d, h), |o| {
                    o.jzlx = jzlx;
                    o.lcfx = lcfx;
                    o.patient = patient(sex, age);
                    o.fbrq = Some(d - CDuration::days(1));
                    if lcfx == 4 {
                        o.icu = Some(1);
                    }
                }));
                if r.next() < 0.45 {
                    let pos = r.next() < 0.55;
                    let s = r.next();
                    let (bdlx, yx) = if !pos {
                        (None, None)
                    } else if s < 0.45 {
                        (Some(1), Some(12))
                    } else if s < 0.7 {
                        (Some(1), Some(11))
                    } else if s < 0.8 {
                        (Some(1), None)
                    } else {
                        (Some(2), Some(21))
                    };
                    out.push(lab(c("l", h + 1), &key, &ts(d, h), 1, if pos { 1 } else { 2 }, bdlx, yx));
                }
                if r.next() < 0.55 {
                    out.push(medication(c("m", h + 2), &key, "奥司他韦胶囊", &ts(d, h + 2)));
                }
                if lcfx == 4 && r.next() < 0.25 {
                    let late = if r.next() < 0.7 { Some(d + CDuration::days(1)) } else { None };
                    let late = late.map(|x| x.to_string());
                    out.push(death(c("x", h + 3), &key, &ts(d, h + 3), late.as_deref()));
                }
            }
            // Visits (门急诊人次) for every day already reported.
            if d < t {
                let mz = 700.0 * size * (1.0 + 0.1 * r.next());
                out.push(visits(
                    common(w, org, &format!("v{d}"), &ts(d, 23), &ts(d + CDuration::days(1), 1)),
                    &d.to_string(),
                    mz as u32,
                    (mz * 0.2) as u32,
                ));
            }
            // Drug stock over the last 12 days; hospital 3 runs low.
            if (t - d).num_days() < 12 && d < t {
                let use_ = (6.0 * size) as u64 + 2;
                let kcl = if hi == 3 { 30 } else { 400 + 40 * hi as u64 };
                out.push(stock(
                    common(w, org, &format!("s{d}"), &ts(d, 23), &ts(d + CDuration::days(1), 1)),
                    &d.to_string(),
                    "奥司他韦胶囊",
                    "75mg",
                    kcl,
                    use_,
                ));
                out.push(stock(
                    common(w, org, &format!("t{d}"), &ts(d, 23), &ts(d + CDuration::days(1), 1)),
                    &d.to_string(),
                    "玛巴洛沙韦片",
                    "20mg",
                    if hi == 5 { 8 } else { 120 },
                    3,
                ));
            }
            // Upload receipts: hospital 6 did not upload yesterday; some rows rejected.
            if d < t && !(hi == 6 && d >= t - CDuration::days(2)) {
                let rej = (r.next() * 4.0) as u64;
                let rule = if r.next() < 0.6 { "E101" } else { "E205" };
                let hour = if hi == 2 { 10 } else { 6 };
                out.push(receipt(&format!("r{org}{d}"), org, &ts(d + CDuration::days(1), hour), 200, rej, rule));
            }
            d += CDuration::days(1);
        }
    }
    out
}

/// A running `flumon-intranet serve` with its accounts' activation codes.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    pub child: Child,
    pub codes: std::collections::BTreeMap<String, String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub const BIN: &str = env!("CARGO_BIN_EXE_flumon-intranet");

impl Server {
    /// init, ingest the synthetic batches, create the accounts, serve.
    pub async fn start(users: &[(&str, &str, Option<&str>)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let w = World::new();
        let dmz = dir.path().join("dmz");
        std::fs::create_dir_all(dmz.join("keys")).unwrap();
        flumon_shared::crypto::SymKey::from_slice(w.link.as_bytes()).unwrap().save(&dmz.join("keys/link.key")).unwrap();
        w.sign.public_key().save(&dmz.join("keys/dmz-sign.pub.pem")).unwrap();
        let idir = dir.path().join("intranet");
        let config = flumon_intranet::config::init(&idir, Some(&dmz)).unwrap();
        let port = free_port();
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("listen") {
                    format!("listen = \"127.0.0.1:{port}\"")
                } else {
                    l.to_string()
                }
            })
            .filter(|l| l.trim() != "journals = []")
            .collect::<Vec<_>>()
            .join("\n");
        let text = text + &transfer_journals(&dir.path().join("transfer"));
        std::fs::write(&config, text).unwrap();
        let cfg = flumon_intranet::config::Config::load(&config).unwrap();
        // Ingest the batches as the receiver would deliver them.
        let t0 = Instant::now();
        let entries = generate(&w);
        let spool = dir.path().join("batches");
        std::fs::create_dir_all(&spool).unwrap();
        for chunk in entries.chunks(4000) {
            w.drop_batch(&spool, chunk);
        }
        let db = flumon_intranet::db::Db::open(&cfg.database_url).await.unwrap();
        if let Err(e) = flumon_intranet::ingest::ingest_spool(&db, &w.keys(), &spool).await {
            panic!("ingest: {e}");
        }
        db.pool.close().await;
        eprintln!("web test data: {} entries ingested in {:.1} s", entries.len(), t0.elapsed().as_secs_f64());
        let mut codes = std::collections::BTreeMap::new();
        for (name, role, scope) in users {
            let mut c = Command::new(BIN);
            c.args(["admin", "create-user", "--config"]).arg(&config).args(["--name", name, "--role", role]);
            if let Some(s) = scope {
                c.args(["--scope", s]);
            }
            let o = c.output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout);
            let code = out.rsplit(": ").next().unwrap().trim().to_string();
            codes.insert((*name).to_string(), code);
        }
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Server { dir, config, port, child, codes }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// The transfer's journals for the security officer's page: the receiver's (batch 3 never
/// arrived), and the sender's, left in DIR/send-journal.log for the test to upload.
fn transfer_journals(dir: &Path) -> String {
    use flumon_shared::crypto::Sm2PrivateKey;
    use flumon_shared::journal::Journal;
    std::fs::create_dir_all(dir).unwrap();
    let (sk, rk) = (Sm2PrivateKey::generate().unwrap(), Sm2PrivateKey::generate().unwrap());
    sk.public_key().save(&dir.join("sender.pub.pem")).unwrap();
    rk.public_key().save(&dir.join("receiver.pub.pem")).unwrap();
    let h = |seq: u64| hex::encode(flumon_shared::crypto::sm3(format!("batch {seq}").as_bytes()));
    let mut s = Journal::create(&dir.join("send-journal.log"), sk.public_key()).unwrap();
    let mut r = Journal::create(&dir.join("recv-journal.log"), rk.public_key()).unwrap();
    for seq in 1..=4u64 {
        s.append("batch.sent", &json!({"seq": seq, "sm3": h(seq), "passes": 1})).unwrap();
        if seq != 3 {
            r.append("batch.received", &json!({"seq": seq, "sm3": h(seq), "quarantined_records": 0})).unwrap();
        }
    }
    r.append("heartbeat.missed", &json!({"silent_secs": 31, "ever_heard": true})).unwrap();
    s.checkpoint(&sk).unwrap();
    r.checkpoint(&rk).unwrap();
    let d = dir.display();
    format!(
        "\n[[journals]]\nname = \"receiver\"\npath = \"{d}/recv-journal.log\"\npubkey = \"{d}/receiver.pub.pem\"\n\
         [[journals]]\nname = \"sender\"\npath = \"data/sender-journal.log\"\npubkey = \"{d}/sender.pub.pem\"\n"
    )
}

/// The intranet tests' session: clicks wait for the navigation they start.
pub struct Intranet;

impl Harness for Intranet {
    fn fail(msg: String) -> ! {
        panic!("{msg}")
    }

    fn options() -> Options {
        Options { prefs: None, settle_clicks: true }
    }
}

/// A WebDriver session on a local chromedriver (`flumon_tests::webdriver`); a failed step fails the test.
pub type Driver = Checked<Intranet>;

/// Skips (visibly) when there is no browser, unless FLUMON_REQUIRE_BROWSER is set.
pub fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    webdriver::browser_or_skip().unwrap_or_else(|e| panic!("{e}"))
}

/// A strong test password.
pub const PASSWORD: &str = "Lx7#quartz-Meadow";

/// The TOTP code for a base32 secret at now + `ahead` seconds.
pub fn totp(secret_b32: &str, ahead: u64) -> String {
    let secret = flumon_shared::auth::totp::base32_decode(secret_b32.trim()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    flumon_shared::auth::totp::code_at(&secret, now + ahead)
}

/// Activates `name` through the pages (password, QR + secret, confirm) and logs in; returns the TOTP secret.
pub fn activate_and_login(d: &Driver, s: &Server, name: &str) -> String {
    d.goto(&s.url("/activate"));
    d.type_into("#name", name);
    d.type_into("#code", &s.codes[name]);
    d.type_into("#password", PASSWORD);
    d.type_into("#password2", PASSWORD);
    d.click("#activate");
    assert!(d.exists(".qr svg"), "QR code shown: {}", d.source());
    let secret = d.text("#secret");
    d.type_into("#totp", &totp(&secret, 0));
    d.click("#confirm");
    assert!(d.url().contains("/login?activated=1"), "{}", d.url());
    d.type_into("#name", name);
    d.type_into("#password", PASSWORD);
    // The confirmation used this step's code: the next step's is accepted (±1 step) and not a replay.
    d.type_into("#totp", &totp(&secret, 30));
    d.click("#login");
    assert!(!d.url().contains("/login"), "logged in: {}", d.source());
    secret
}

pub fn ymd(d: NaiveDate) -> String {
    d.to_string()
}

pub fn dtm(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}
