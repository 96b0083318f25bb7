//! Shared setup of the agent's end-to-end tests: a real DMZ (dmz.rs), one
//! synthetic hospital's upload of today, and an agent.toml for it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_arguments
)]

pub mod dmz;

use std::path::{Path, PathBuf};

use flumon_tests::synth::{self, Options, hospitals::Hospital};

/// Today in China Standard Time.
pub fn today() -> chrono::NaiveDate {
    flumon_agent::now_cst().date()
}

/// One synthetic hospital and its upload of today (00:00 CST) written under `root`;
/// returns (hospital, the folder with the files, the upload time).
pub fn world(root: &Path, seed: u64, scale: f64) -> (Hospital, PathBuf, String) {
    let h = Hospital::generate(seed, 0);
    let opts = Options {
        seed,
        hospitals: 1,
        date: today(),
        days: 7,
        out: root.to_path_buf(),
        scale,
        lab_only_rate: 0.0,
        upload_hour: 0,
        ..Options::default()
    };
    let (files, _) = synth::upload(&opts, &h, today()).unwrap();
    let first = files.first().unwrap();
    let dir = root.join(Path::new(&first.path).parent().unwrap());
    (h, dir, first.upload_time.clone())
}

/// Writes agent.toml (and the token file) into `dir`.
pub fn agent_toml(
    dir: &Path,
    url: &str,
    ca: &Path,
    uscc: &str,
    cert: &Path,
    key: &Path,
    token: &str,
    exports: &Path,
    chunk_rows: usize,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    let text = format!(
        r#"[hospital]
uscc = "{uscc}"
[dmz]
url = "{url}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
token_file = "token"
[source]
folder = "{exports}"
[scans]
folder = "scans"
[upload]
chunk_rows = {chunk_rows}
timeout_secs = 120
[schedule]
retry_initial_secs = 1
retry_max_secs = 2
"#,
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
        exports = exports.display(),
    );
    let p = dir.join("agent.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::create_dir_all(dir.join("scans")).unwrap();
    p
}

/// What a dry run of `config` would send: (chunks, rows to send).
pub fn expected(config: &Path, now: &str) -> (usize, usize) {
    let cfg = flumon_agent::config::AgentConfig::load(config).unwrap();
    let now = flumon_shared::validate::cells::parse_datetime(now).unwrap();
    let opts = flumon_agent::upload::RunOptions { dry_run: true, now: Some(now), ..Default::default() };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(flumon_agent::upload::run_once(&cfg, &opts)).unwrap();
    (r.dry_run_receipts.len(), r.summary.values().map(|s| s.to_send).sum())
}

/// `flumon-agent run --once` as a child process.
pub fn run_agent(config: &Path, now: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_flumon-agent"));
    c.args(["run", "--once", "--attempts", "120", "--config"])
        .arg(config)
        .env("FLUMON_NOW", now)
        .env("RUST_LOG", "warn");
    c
}

/// The receipts the agent keeps (`flumon-agent receipts`).
pub fn stored_receipts(config: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flumon-agent"))
        .args(["receipts", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
