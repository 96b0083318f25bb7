//! Settings of the web pages: the `[web]` table of dmz.toml, which this module
//! reads itself (unknown keys are errors).
//!
//! ```toml
//! [web]
//! public_url = "https://report.example.cn"     # base of links in e-mails (default https://<public listen>)
//! admin_url = "https://10.0.0.5:9443"          # base of reviewer activation links (default https://<admin listen>)
//! review_key = "review.key"                    # SM4 key of the reviewer copies of application scans;
//!                                              # relative: beside paths.link_key; created when missing
//! session_idle_secs = 1800                     # LEVEL3: 30 minutes idle ends a session
//! session_max_secs = 43200                     # absolute lifetime of a session
//! activation_hours = 72                        # lifetime of an activation link
//! totp_issuer = "flumon"                       # name shown in authenticator apps
//! mail_tls = "starttls"                        # (read by crate::mail) wrapper | starttls | none
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    public_url: Option<String>,
    admin_url: Option<String>,
    review_key: Option<PathBuf>,
    session_idle_secs: Option<u64>,
    session_max_secs: Option<u64>,
    activation_hours: Option<u64>,
    totp_issuer: Option<String>,
    mail_tls: Option<String>,
}

/// The settings, with defaults filled in.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub public_url: String,
    pub admin_url: String,
    pub review_key: PathBuf,
    pub session_idle_secs: i64,
    pub session_max_secs: i64,
    pub activation_secs: i64,
    pub totp_issuer: String,
}

fn default_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("https://localhost:{}", addr.port()) } else { format!("https://{addr}") }
}

fn secs(v: Option<u64>, default: u64, name: &str) -> Result<i64> {
    let v = v.unwrap_or(default);
    if v == 0 || v > 366 * 86_400 {
        return Err(Error::Config(format!("web.{name}: out of range")));
    }
    i64::try_from(v).map_err(|_| Error::Config(format!("web.{name}: out of range")))
}

impl WebSettings {
    /// Reads `[web]` from the configuration.
    pub fn from_config(cfg: &Config) -> Result<WebSettings> {
        let raw: Raw =
            toml::Value::Table(cfg.web.clone()).try_into().map_err(|e| Error::Config(format!("[web]: {e}")))?;
        let key_dir = cfg.paths.link_key.parent().map(PathBuf::from).unwrap_or_default();
        let review_key = match raw.review_key {
            Some(p) if p.is_absolute() => p,
            Some(p) => key_dir.join(p),
            None => key_dir.join("review.key"),
        };
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        let idle = secs(raw.session_idle_secs, 1800, "session_idle_secs")?;
        let max = secs(raw.session_max_secs, 12 * 3600, "session_max_secs")?;
        let _ = raw.mail_tls;
        Ok(WebSettings {
            public_url: raw.public_url.map(trim).unwrap_or_else(|| default_url(cfg.listen.public)),
            admin_url: raw.admin_url.map(trim).unwrap_or_else(|| default_url(cfg.listen.admin)),
            review_key,
            session_idle_secs: idle,
            session_max_secs: max.max(idle),
            activation_secs: secs(raw.activation_hours, 72, "activation_hours")?.saturating_mul(3600),
            totp_issuer: raw.totp_issuer.unwrap_or_else(|| "flumon 流感监测".to_owned()),
        })
    }
}
