//! `agent.toml`: every setting of the agent (docs/AGENT.md explains each).
//! Unknown keys are errors; relative paths are relative to the file's folder.
//!
//! ```text
//!  agent.toml ─▶ FileConfig (deny_unknown_fields) ─▶ resolve paths ─▶ AgentConfig ─▶ run / daemon
//!  [hospital] uscc   [dmz] url ca cert key token_file   [source] folder mapping days database_url_file [[source.sql]]
//!  [scans] folder    [upload] chunk_rows timeout_secs   [schedule] daily_at retry_*   [state] dir
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The whole file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub hospital: Hospital,
    pub dmz: Dmz,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub scans: Scans,
    #[serde(default)]
    pub upload: Upload,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub state: State,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hospital {
    /// 统一社会信用代码 (18 characters), the ZZJGDM of every record.
    pub uscc: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dmz {
    /// `https://host:port` of the DMZ's public listener.
    pub url: String,
    /// The DMZ's CA certificate (PEM): the only trusted root.
    pub ca: PathBuf,
    /// This agent's client certificate (PEM) and key (PKCS#8 PEM, 0600).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// File holding the API token (0600); the environment variable FLUMON_AGENT_TOKEN overrides it.
    pub token_file: PathBuf,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Folder of HIS exports (`<type>*.csv|xlsx|json`).
    pub folder: Option<PathBuf>,
    /// HIS column names → field codes (TOML).
    pub mapping: Option<PathBuf>,
    /// Days sent, counted back from today by YWRQ (default 7).
    pub days: Option<u32>,
    /// File holding the HIS database URL (postgres://… or mysql://…), 0600.
    pub database_url_file: Option<PathBuf>,
    /// One query per type, returning columns named by field code.
    #[serde(default)]
    pub sql: Vec<SqlQuery>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlQuery {
    #[serde(rename = "type")]
    pub ty: String,
    pub query: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scans {
    /// Folder watched for death full-record scans.
    pub folder: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upload {
    /// Rows per request (at most 200,000; default 20,000).
    pub chunk_rows: usize,
    /// Seconds allowed for one request.
    pub timeout_secs: u64,
}

impl Default for Upload {
    fn default() -> Self {
        Upload { chunk_rows: 20_000, timeout_secs: 600 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Daily run time, HH:MM China Standard Time (default 02:00).
    pub daily_at: String,
    /// First retry delay and the longest delay (doubling in between), seconds.
    pub retry_initial_secs: u64,
    pub retry_max_secs: u64,
    /// Minutes between looks at the scans folder in daemon mode.
    pub scan_poll_minutes: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { daily_at: "02:00".into(), retry_initial_secs: 30, retry_max_secs: 3600, scan_poll_minutes: 10 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// Local queue and receipts (sled).
    pub dir: PathBuf,
}

impl Default for State {
    fn default() -> Self {
        State { dir: PathBuf::from("state") }
    }
}

impl AgentConfig {
    /// Reads and resolves `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        AgentConfig::parse(&text, path)
    }

    /// Parses and checks the text of the agent.toml found at `path` (every
    /// error names it), making relative paths relative to its folder. Reads no file.
    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, Error> {
        let mut c: AgentConfig = toml::from_str(text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut c.dmz.ca);
        abs(&mut c.dmz.cert);
        abs(&mut c.dmz.key);
        abs(&mut c.dmz.token_file);
        abs(&mut c.state.dir);
        for p in [&mut c.source.folder, &mut c.source.mapping, &mut c.source.database_url_file, &mut c.scans.folder]
            .into_iter()
            .flatten()
        {
            abs(p);
        }
        c.check().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(c)
    }

    fn check(&self) -> Result<(), Error> {
        if self.hospital.uscc.chars().count() != 18 {
            return Err(Error::Config("hospital.uscc 应为 18 位统一社会信用代码".into()));
        }
        if !(1..=200_000).contains(&self.upload.chunk_rows) {
            return Err(Error::Config("upload.chunk_rows 应在 1 至 200000 之间".into()));
        }
        if !self.dmz.url.starts_with("https://") {
            return Err(Error::Config("dmz.url 必须以 https:// 开头 (TLS only)".into()));
        }
        if !(1..=30).contains(&self.source.days.unwrap_or(7)) {
            return Err(Error::Config("source.days 应在 1 至 30 之间".into()));
        }
        daily_time(&self.schedule.daily_at)?;
        Ok(())
    }

    /// The API token: FLUMON_AGENT_TOKEN, else the token file.
    pub fn token(&self) -> Result<zeroize::Zeroizing<String>, Error> {
        if let Ok(t) = std::env::var("FLUMON_AGENT_TOKEN")
            && !t.trim().is_empty()
        {
            return Ok(zeroize::Zeroizing::new(t.trim().to_owned()));
        }
        let t = zeroize::Zeroizing::new(std::fs::read_to_string(&self.dmz.token_file).map_err(|e| {
            Error::Config(format!("无法读取 API 令牌文件 {} (token file): {e}", self.dmz.token_file.display()))
        })?);
        Ok(zeroize::Zeroizing::new(t.trim().to_owned()))
    }
}

/// `HH:MM` → (hour, minute).
pub fn daily_time(s: &str) -> Result<chrono::NaiveTime, Error> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| Error::Config(format!("schedule.daily_at “{s}” 应为 HH:MM (北京时间)")))
}

/// The text of a new agent.toml (enroll writes it).
pub fn template(uscc: &str, url: &str) -> String {
    format!(
        r#"# flumon-agent 配置 (written by `flumon-agent enroll`; docs/AGENT.md explains every setting).
# 相对路径相对于本文件所在目录 (relative paths are relative to this file's folder).

[hospital]
uscc = "{uscc}"              # 本院统一社会信用代码 = 每条记录的 ZZJGDM

[dmz]
url = "{url}"
ca = "ca.pem"                # DMZ 的 CA 证书: 唯一信任的根
cert = "agent.pem"           # 本前置机的客户端证书
key = "agent.key"            # 其私钥 (0600)
token_file = "token"         # API 令牌 (0600); 环境变量 FLUMON_AGENT_TOKEN 优先

[source]
folder = "exports"           # HIS 导出文件目录: <类型>*.csv / .xlsx / .json
# mapping = "mapping.toml"   # HIS 列名 → 字段代码
# days = 7                   # 按 YWRQ 上传最近几天 (默认 7)
# database_url_file = "his-db.url"   # 直接查询 HIS 数据库 (postgres:// 或 mysql://)
# [[source.sql]]
# type = "outpatient"
# query = "SELECT ... AS ZZJGDM, ... AS JLID, ..."

[scans]
# folder = "scans"           # 死亡病例全病历扫描件目录

[upload]
chunk_rows = 20000           # 每次请求的行数
timeout_secs = 600

[schedule]
daily_at = "02:00"           # 每日运行时间 (北京时间)
retry_initial_secs = 30
retry_max_secs = 3600
scan_poll_minutes = 10

[state]
dir = "state"                # 本地队列与回执
"#
    )
}

#[cfg(test)]
#[path = "../../shared/testsupport/config_mutants.rs"]
pub(crate) mod config_mutants;

#[cfg(test)]
mod tests {
    //! agent.toml loader on thousands of mutated templates (the deploy
    //! template and the one `enroll` writes): Ok or Err, never a panic, every
    //! error names the file (issue 8).
    use super::*;

    const DEPLOY: &str = include_str!("../../deploy/config/agent.toml");

    #[test]
    fn mutated_templates_never_panic_and_errors_name_the_file() {
        let path = Path::new("/nonexistent-flumon/etc/agent.toml");
        let enrolled = template("12110000400000000X", "https://dmz.example.cn:8443");
        for (seed, text) in [(0xa9e7, DEPLOY), (0xe4c0, enrolled.as_str())] {
            AgentConfig::parse(text, path).unwrap();
            let variants = config_mutants::mutants(text, seed, 1500);
            let seen = config_mutants::check_all(&variants, "agent.toml", |t| {
                let c = AgentConfig::parse(t, path).map_err(|e| e.to_string())?;
                daily_time(&c.schedule.daily_at).map_err(|e| format!("checked, yet: {e}"))?;
                Ok(())
            });
            assert!(seen.ok > 50 && seen.err > 500, "{seen:?}");
            // not UTF-8: through load, from a file
            config_mutants::check_not_utf8_files(&seen, "agent.toml", 10, |f| {
                AgentConfig::load(f).map(drop).map_err(|e| e.to_string())
            });
        }
        // a few errors name the key too
        let cases = [
            (DEPLOY.replace("chunk_rows = 20000", "chunk_rows = 0"), "upload.chunk_rows"),
            (DEPLOY.replace("chunk_rows = 20000", "chunk_rows = 99999999999999999999999"), "chunk_rows"),
            (DEPLOY.replace("daily_at = \"02:00\"", "daily_at = \"25:61\""), "schedule.daily_at"),
            (DEPLOY.replace("days = 7", "days = 31"), "source.days"),
            (DEPLOY.replace("days = 7", "days = \"7\""), "days"),
            (DEPLOY.replace("[upload]", "[upload]\nbogus = 1"), "bogus"),
        ];
        config_mutants::check_keys_named(DEPLOY, "agent.toml", &cases, |t| {
            AgentConfig::parse(t, path).map(drop).map_err(|e| e.to_string())
        });
    }
}
