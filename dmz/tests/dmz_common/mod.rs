//! Shared by the DMZ process tests: the built `flumon-dmz` binary run in a
//! temp dir (init, create-hospital, serve, kill -9), agents talking HTTPS
//! with their client certificates, synthetic records with known planted
//! identifiers, and reading every batch of the outbox back.
//!
//! ```text
//!  Dmz::new ─▶ `flumon-dmz init DIR` ─▶ dmz.toml (free ports, small limits) ─▶ start() ─▶ serve
//!  Dmz::hospital ─▶ `admin create-hospital` ─▶ Agent { token, cert, key } ─▶ Client (mTLS)
//!  batches() ─▶ open_batch(link key, DMZ public key) for every outbox/*.fbatch
//! ```
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use flumon_dmz::client::{Answer, Client};
use flumon_shared::batch::{BatchHeader, BatchLimits, open_batch};
use flumon_shared::crypto::{Sm2PublicKey, SymKey};
use flumon_shared::entries::Entry;
use flumon_shared::validate::ids::{id_check_char, uscc_check_char};

pub const BIN: &str = env!("CARGO_BIN_EXE_flumon-dmz");

/// A valid 统一社会信用代码 derived from `n`.
pub fn uscc(n: u32) -> String {
    let body = format!("91350100M{:07}Y", 1000 + n);
    let body: String = body.chars().take(17).collect();
    format!("{body}{}", uscc_check_char(&body).unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A DMZ installed in a temp dir.
pub struct Dmz {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    child: Option<Child>,
}

/// A hospital's agent credentials.
#[derive(Clone)]
pub struct Agent {
    pub uscc: String,
    pub token: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Dmz {
    /// `flumon-dmz init`, then the config edited: free ports, short batch age, `edit` for the rest.
    pub fn new(edit: impl FnOnce(&mut toml::Table)) -> Dmz {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN).arg("init").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DEMO") && stderr.contains("警告"), "loud demo-vault warning: {stderr}");
        let config = dir.path().join("dmz.toml");
        let mut t: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        let (public, admin) =
            (SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port())));
        let listen = t.get_mut("listen").unwrap().as_table_mut().unwrap();
        listen.insert("public".into(), public.to_string().into());
        listen.insert("admin".into(), admin.to_string().into());
        let batch = t.entry("batch").or_insert(toml::Value::Table(toml::Table::new())).as_table_mut().unwrap();
        batch.insert("max_age_secs".into(), 1.into());
        edit(&mut t);
        std::fs::write(&config, toml::to_string(&t).unwrap()).unwrap();
        Dmz { dir, config, public, admin, child: None }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs a CLI command with `--config`.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(BIN);
        c.args(args).arg("--config").arg(&self.config);
        c.output().unwrap()
    }

    /// `admin create-hospital`.
    pub fn hospital(&self, n: u32) -> Agent {
        self.hospital_named(n, &format!("测试医院{n}")).0
    }

    /// `admin create-hospital` named `name`: its agent and its web account's activation link.
    pub fn hospital_named(&self, n: u32, name: &str) -> (Agent, String) {
        let code = uscc(n);
        let out = self.cli(&[
            "admin",
            "create-hospital",
            "--uscc",
            &code,
            "--name",
            name,
            "--region",
            "350102",
            "--level",
            "3",
        ]);
        assert!(out.status.success(), "create-hospital: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = |k: &str| PathBuf::from(v[k].as_str().unwrap());
        let agent = Agent {
            uscc: v["uscc"].as_str().unwrap().to_owned(),
            token: v["token"].as_str().unwrap().to_owned(),
            cert: p("cert"),
            key: p("key"),
            ca: p("ca"),
        };
        (agent, v["activation_url"].as_str().unwrap().to_owned())
    }

    /// Starts `serve` and waits for both listeners.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("serve.log")).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if std::net::TcpStream::connect(self.public).is_ok() && std::net::TcpStream::connect(self.admin).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited {st}: {}", std::fs::read_to_string(self.path("serve.log")).unwrap_or_default());
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status once `serve` has exited by itself (the process is then forgotten).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(st)
    }

    /// SIGKILL, no warning.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait (graceful shutdown: the batcher drains the queue).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let st = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status().unwrap();
            assert!(st.success());
            let t0 = Instant::now();
            loop {
                if let Some(s) = c.try_wait().unwrap() {
                    assert!(
                        s.success(),
                        "serve exit {s}: {}",
                        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
                    );
                    return;
                }
                assert!(t0.elapsed() < Duration::from_secs(60), "serve did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn client(&self, a: &Agent) -> Client {
        Client::new(self.public, &a.ca, Some((&a.cert, &a.key))).unwrap()
    }

    pub fn client_no_cert(&self, a: &Agent) -> Client {
        Client::new(self.public, &a.ca, None).unwrap()
    }

    /// The admin listener's `/metrics`, as (name → value).
    pub async fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let c = Client::new(self.admin, &self.path("ca/ca.pem"), None).unwrap();
        let a = c.send("GET", "/metrics", &[], Vec::new()).await.unwrap();
        assert_eq!(a.status, 200);
        String::from_utf8(a.body)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(f64::NAN))))
            .collect()
    }

    /// Every batch in the outbox, opened and checked (signature, GCM, digest), in sequence order.
    pub fn batches(&self) -> Vec<(BatchHeader, Vec<Entry>)> {
        let link = SymKey::load(&self.path("keys/link.key")).unwrap();
        let pk = Sm2PublicKey::load(&self.path("keys/dmz-sign.pub.pem")).unwrap();
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.path("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "fbatch"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| open_batch::<Entry>(&std::fs::read(p).unwrap(), &link, &pk, &BatchLimits::default()).unwrap())
            .collect()
    }

    /// Waits until the outbound queue is empty (metrics) and no batch is being written.
    pub async fn wait_drained(&self) {
        let t0 = Instant::now();
        loop {
            let m = self.metrics().await;
            if m.get("flumon_dmz_queue_depth") == Some(&0.0) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "queue did not drain");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Dmz {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// China Standard Time now.
pub fn now_cst() -> NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc()
}

/// A valid citizen ID number for a woman born 1949-12-31 (odd `n` → a man), with check char.
pub fn sfzh(n: u32) -> String {
    let seq = n % 1000;
    let first17 = format!("11010519491231{seq:03}");
    format!("{first17}{}", id_check_char(&first17).unwrap())
}

const NAME_CHARS: [char; 20] = [
    '柏', '葛', '奚', '范', '彭', '郎', '鲁', '韦', '昌', '马', '苗', '凤', '花', '方', '俞', '任', '袁', '柳', '酆',
    '鲍',
];

/// Planted identifiers of record `n`.
pub struct Planted {
    pub xm: String,
    pub sfzh: String,
    pub dh: String,
    pub xzz: String,
    pub mzzyh: String,
}

pub fn planted(n: u32) -> Planted {
    let i = n as usize;
    Planted {
        xm: format!("试{}{}{}", NAME_CHARS[i % 20], NAME_CHARS[(i / 20) % 20], NAME_CHARS[(i / 400) % 20]),
        sfzh: sfzh(n),
        dh: format!("139{:08}", 70_000_000 + n),
        xzz: format!("福建省福州市鼓楼区测试巷{n}号"),
        mzzyh: format!("MZH{:07}", 3_000_000 + n),
    }
}

fn age(birth: NaiveDate, at: NaiveDate) -> i32 {
    let mut y = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        y -= 1;
    }
    y
}

/// A valid, in-scope §3.1 outpatient record `n` of hospital `org`, as JSON.
pub fn outpatient(org: &str, n: u32) -> serde_json::Value {
    let p = planted(n);
    let day = now_cst().date() - chrono::Duration::days(1);
    let csrq = NaiveDate::from_ymd_opt(1949, 12, 31).unwrap();
    let xb = if (n % 1000) % 2 == 1 { "1" } else { "2" };
    serde_json::json!({
        "ZZJGDM": org, "JLID": format!("R{n:08}"), "CZLX": "1",
        "GXSJ": format!("{day} 10:00:00"), "YWRQ": day.to_string(), "BBH": "1.0",
        "JZLSH": format!("MZ{n:010}"), "XM": p.xm, "XB": xb, "CSRQ": csrq.to_string(),
        "NL": age(csrq, day).to_string(), "ZJLX": "1", "SFZH": p.sfzh, "XZZ": p.xzz, "XZZ_XZQH": "350102",
        "DH": p.dh, "JZLX": "1", "MZZYH": p.mzzyh, "JZSJ": format!("{day} 09:30:00"), "KSMC": "发热门诊",
        "ZGTW": "38.6", "ZDBM1": "J10.1", "ZDMC1": "流行性感冒", "ZDYJ": "1", "LCFX": "1", "KBD": "2",
        "ZGZT": "1", "ZFY": "235.50",
    })
}

/// `{"records": [...]}` bytes.
pub fn json_file(records: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "records": records })).unwrap()
}

/// POSTs an upload.
pub async fn upload(c: &Client, token: &str, ty: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let auth = format!("Bearer {token}");
    let mut h = vec![("authorization", auth.as_str())];
    if let Some(ct) = content_type {
        h.push(("content-type", ct));
    }
    c.send("POST", &format!("/api/v1/upload/{ty}"), &h, body).await.unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The records as CSV with a header of field codes (all values are strings).
pub fn csv_of(records: &[serde_json::Value]) -> Vec<u8> {
    let keys: Vec<String> = records[0].as_object().unwrap().keys().cloned().collect();
    let mut s = keys.join(",");
    s.push('\n');
    for r in records {
        let row: Vec<String> = keys.iter().map(|k| r[k].as_str().unwrap_or("").to_owned()).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s.into_bytes()
}
