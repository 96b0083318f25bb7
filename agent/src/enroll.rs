//! `flumon-agent enroll`: a fresh P-256 key pair made here (the private key
//! never leaves this machine), a CSR sent with the one-time enrolment code,
//! and the returned client certificate stored with a new agent.toml.
//!
//! ```text
//!  rcgen P-256 key ─▶ CSR (CN = uscc) ─▶ POST /api/v1/enroll {uscc, code, csr}  (TLS 1.3, trusts --ca only)
//!  ◀─ {cert, ca, fingerprint} ─▶ DIR/agent.pem, DIR/agent.key (0600), DIR/ca.pem, DIR/token (0600), DIR/agent.toml
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::https::Client;
use crate::{Error, write_new};

/// What enroll needs.
pub struct EnrollConfig {
    pub dmz: String,
    pub uscc: String,
    pub code: Zeroizing<String>,
    pub ca: PathBuf,
    pub config_dir: PathBuf,
    /// The API token, when known (else write it to DIR/token later).
    pub token: Option<Zeroizing<String>>,
}

/// What enroll wrote.
#[derive(Debug, serde::Serialize)]
pub struct EnrollReport {
    pub config: PathBuf,
    pub cert: PathBuf,
    pub fingerprint: String,
    pub token_written: bool,
}

#[derive(Deserialize)]
struct EnrollResp {
    cert: String,
    ca: String,
    fingerprint: String,
}

fn csr(uscc: &str) -> Result<(String, Zeroizing<String>), Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| Error::Tls(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("flumon-agent {uscc}"));
    let req = params.serialize_request(&key).map_err(|e| Error::Tls(e.to_string()))?;
    let pem = req.pem().map_err(|e| Error::Tls(e.to_string()))?;
    Ok((pem, Zeroizing::new(key.serialize_pem())))
}

/// Enrols this agent.
pub async fn enroll(cfg: &EnrollConfig) -> Result<EnrollReport, Error> {
    let dir = &cfg.config_dir;
    std::fs::create_dir_all(dir)?;
    let config = dir.join("agent.toml");
    let (cert_path, key_path) = (dir.join("agent.pem"), dir.join("agent.key"));
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(Error::Config(format!("{} 已存在, 不会覆盖; 请换一个目录 (exists)", p.display())));
        }
    }
    let (csr_pem, key_pem) = csr(&cfg.uscc)?;
    let client = Client::new(&cfg.dmz, &cfg.ca, None, Duration::from_secs(60))?;
    let body = serde_json::to_vec(&serde_json::json!({"uscc": cfg.uscc, "code": cfg.code.trim(), "csr": csr_pem}))?;
    let a = client.send("POST", "/api/v1/enroll", &[("content-type", "application/json")], body).await?;
    let text = String::from_utf8_lossy(&a.body).into_owned();
    match a.status {
        200 => {}
        401 | 403 => {
            return Err(Error::Auth {
                status: a.status, message: format!("注册码无效、已使用或已过期: {text}")
            });
        }
        s => return Err(Error::Http { status: s, message: text }),
    }
    let resp: EnrollResp = serde_json::from_slice(&a.body)?;
    write_new(&key_path, key_pem.as_bytes(), 0o600)?;
    write_new(&cert_path, resp.cert.as_bytes(), 0o644)?;
    let ca_path = dir.join("ca.pem");
    if !same_file(&cfg.ca, &ca_path) && !ca_path.exists() {
        // the CA we trusted for this call; the DMZ's copy must be the same
        let given = std::fs::read_to_string(&cfg.ca)?;
        if given.trim() != resp.ca.trim() {
            tracing::warn!("DMZ 返回的 CA 证书与 --ca 不同; 仍使用 --ca (the DMZ's CA differs from --ca)");
        }
        write_new(&ca_path, given.as_bytes(), 0o644)?;
    }
    let mut token_written = false;
    if let Some(t) = &cfg.token {
        write_new(&dir.join("token"), format!("{}\n", t.trim()).as_bytes(), 0o600)?;
        token_written = true;
    }
    if !config.exists() {
        write_new(&config, crate::config::template(&cfg.uscc, &cfg.dmz).as_bytes(), 0o644)?;
        for sub in ["exports", "state"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
    }
    Ok(EnrollReport { config, cert: cert_path, fingerprint: resp.fingerprint, token_written })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
