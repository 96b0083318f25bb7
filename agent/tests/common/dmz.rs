//! A real `flumon-dmz` for tests: `init` in a temporary folder (free ports),
//! `serve` as a child process that can be killed and restarted, and the
//! operator commands (create-hospital, enrol-code, export-raw). The binary is
//! `target/debug/flumon-dmz`, built with `cargo build -p flumon-dmz` when missing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// target/debug of the workspace.
pub fn target_debug() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("../target")).join("debug")
}

/// The path of a workspace binary, built when missing.
pub fn binary(package: &str) -> PathBuf {
    let exe = target_debug().join(package);
    if !exe.exists() {
        let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = Command::new(env!("CARGO")).args(["build", "-p", package]).current_dir(ws).status().unwrap();
        assert!(st.success(), "cargo build -p {package}");
    }
    exe
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Dmz {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    exe: PathBuf,
    child: Option<Child>,
}

impl Dmz {
    /// `flumon-dmz init DIR [--vault-pubkey FILE]`, on free loopback ports.
    pub fn init(dir: &Path, vault_pub: Option<&Path>) -> Dmz {
        let exe = binary("flumon-dmz");
        let mut c = Command::new(&exe);
        c.arg("init").arg(dir);
        if let Some(v) = vault_pub {
            c.arg("--vault-pubkey").arg(v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "dmz init: {}", String::from_utf8_lossy(&out.stderr));
        let config = dir.join("dmz.toml");
        let (port, admin) = (free_port(), free_port());
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("127.0.0.1:8443", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:8444", &format!("127.0.0.1:{admin}"));
        std::fs::write(&config, text).unwrap();
        Dmz { dir: dir.to_path_buf(), config, port, exe, child: None }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca/ca.pem")
    }

    /// Starts `serve` and waits until it listens.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("serve.log")).unwrap();
        let child = Command::new(&self.exe)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(120), "DMZ did not start: {}", self.log());
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("DMZ exited {st}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn admin(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(&self.exe).args(args).arg("--config").arg(&self.config).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap()
    }

    /// {uscc, token, cert, key, ca}
    pub fn create_hospital(&self, uscc: &str, name: &str, region: &str, level: u8) -> serde_json::Value {
        let l = level.to_string();
        self.admin(&["admin", "create-hospital", "--uscc", uscc, "--name", name, "--region", region, "--level", &l])
    }

    pub fn enrol_code(&self, uscc: &str) -> String {
        self.admin(&["admin", "enrol-code", "--uscc", uscc])["code"].as_str().unwrap().to_owned()
    }

    pub fn export_raw(&self, to: &Path) -> serde_json::Value {
        self.admin(&["export-raw", "--to", to.to_str().unwrap()])
    }

    /// The `upload` entries of the DMZ's audit journal.
    pub fn uploads(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("data/audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == "upload")
            .map(|v| v["detail"].clone())
            .collect()
    }
}

impl Drop for Dmz {
    fn drop(&mut self) {
        self.kill();
    }
}
