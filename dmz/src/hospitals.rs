//! Hospitals: the registry of approved hospitals, their API tokens, agent
//! client certificates and one-time enrolment codes, and the check every
//! agent request passes (token AND certificate of the same hospital).
//!
//! ```text
//!  hospitals    code ─▶ Hospital (JSON)           hosp_tokens  SM3(token) ─▶ code
//!  hosp_certs   cert fingerprint ─▶ code          registry_dirty code ─▶ change id (batcher sends it)
//!  agent request: Bearer token ─SM3─▶ hosp_tokens ─▶ code ─┐ (401 if unknown)
//!                 TLS peer cert ─SM3─▶ hosp_certs ─▶ code ─┴─ equal, not revoked, active ─▶ Ok(code) (else 403)
//! ```
//! Tokens and enrolment codes are 32 random bytes; only their SM3 is stored
//! and compared in constant time.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use flumon_shared::crypto::{random_array, sm3};
use flumon_shared::entries::HospitalInfo;
use flumon_shared::validate::ids::{is_region_code, is_valid_uscc};

use crate::error::{Error, Result, codec};
use crate::state::AppState;
use crate::store::trees;
use crate::tls::Issued;

/// The tree of hospitals whose registry entry must cross in the next batch.
pub const REGISTRY_DIRTY: &str = "registry_dirty";

/// An approved hospital.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hospital {
    /// 统一社会信用代码.
    pub code: String,
    pub name: String,
    /// 2 or 3.
    pub level: u8,
    /// GB/T 2260 county code.
    pub region: String,
    pub approved: NaiveDate,
    pub active: bool,
    /// Hex SM3 of the current API token.
    #[serde(default)]
    pub token_sm3: Option<String>,
    /// Agent client certificates ever registered.
    #[serde(default)]
    pub certs: Vec<AgentCert>,
    /// The pending one-time enrolment code.
    #[serde(default)]
    pub enrol: Option<EnrolCode>,
}

/// An agent client certificate registered to a hospital.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCert {
    /// Hex SM3 of the certificate's DER.
    pub fingerprint: String,
    pub issued: NaiveDateTime,
    pub revoked: bool,
    /// `admin` (create-hospital) or `enrol`.
    pub via: String,
}

/// A one-time enrolment code (stored as its SM3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolCode {
    pub sm3: String,
    pub expires: NaiveDateTime,
}

/// One receipt in a hospital's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub receipt_id: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub time: NaiveDateTime,
    /// HTTP status answered (200, 413, 422).
    pub status: u16,
    pub received: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<flumon_shared::validate::RowError>,
    /// `api` or `web`.
    #[serde(default)]
    pub via: String,
}

impl Hospital {
    /// The registry entry that crosses the gate.
    pub fn info(&self) -> HospitalInfo {
        HospitalInfo {
            code: self.code.clone(),
            name: self.name.clone(),
            level: self.level,
            region: self.region.clone(),
            approved: self.approved,
            active: self.active,
        }
    }
}

/// China Standard Time, now.
pub fn now_cst() -> NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc()
}

/// A fresh secret: 32 random bytes as 64 hex digits.
pub fn new_secret() -> Result<Zeroizing<String>> {
    let b: Zeroizing<[u8; 32]> = Zeroizing::new(random_array()?);
    Ok(Zeroizing::new(hex::encode(b.as_slice())))
}

fn hash_hex(secret: &str) -> String {
    hex::encode(sm3(secret.as_bytes()))
}

fn ct_eq_hex(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The hospital with `code`, if any.
pub fn get(state: &AppState, code: &str) -> Result<Option<Hospital>> {
    let t = state.store.tree(trees::HOSPITALS)?;
    match t.get(code.as_bytes())? {
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(codec)?)),
        None => Ok(None),
    }
}

/// Every hospital.
pub fn all(state: &AppState) -> Result<Vec<Hospital>> {
    let t = state.store.tree(trees::HOSPITALS)?;
    t.iter().values().map(|v| serde_json::from_slice(&v?).map_err(codec)).collect()
}

fn put(state: &AppState, h: &Hospital) -> Result<()> {
    let t = state.store.tree(trees::HOSPITALS)?;
    t.insert(h.code.as_bytes(), serde_json::to_vec(h).map_err(codec)?)?;
    // a fresh value per change: the batcher clears the flag only if it is the one it sent
    let version = state.store.next_id()?;
    state.store.tree(REGISTRY_DIRTY)?.insert(h.code.as_bytes(), &crate::store::be(version)[..])?;
    Ok(())
}

fn must_get(state: &AppState, code: &str) -> Result<Hospital> {
    get(state, code)?.ok_or(Error::NotFound)
}

/// Creates an approved, active hospital (after review, or by an operator).
pub async fn create_approved(state: &AppState, code: &str, name: &str, region: &str, level: u8) -> Result<Hospital> {
    if !is_valid_uscc(code) {
        return Err(Error::bad_request("统一社会信用代码无效 (invalid unified social credit code)"));
    }
    if !is_region_code(region) {
        return Err(Error::bad_request("行政区划代码无效 (invalid GB/T 2260 region code)"));
    }
    if !matches!(level, 2 | 3) {
        return Err(Error::bad_request("医院级别应为 2 或 3 (level must be 2 or 3)"));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_request("医院名称应为 1–100 个字符 (name must be 1–100 characters)"));
    }
    if get(state, code)?.is_some() {
        return Err(Error::Conflict("该医院已存在 (hospital already exists)".into()));
    }
    let h = Hospital {
        code: code.to_owned(),
        name: name.to_owned(),
        level,
        region: region.to_owned(),
        approved: now_cst().date(),
        active: true,
        token_sm3: None,
        certs: Vec::new(),
        enrol: None,
    };
    put(state, &h)?;
    state.audit("hospital.created", serde_json::json!({"hospital": code, "level": level, "region": region})).await?;
    state.store.durable().await?;
    state.batcher_wake.notify_one();
    Ok(h)
}

/// A new one-time enrolment code for the hospital's agent (valid 24 h; replaces any earlier one).
pub async fn new_enrol_code(state: &AppState, code: &str) -> Result<String> {
    let mut h = must_get(state, code)?;
    let secret = new_secret()?;
    h.enrol = Some(EnrolCode { sm3: hash_hex(&secret), expires: now_cst() + chrono::Duration::hours(24) });
    put(state, &h)?;
    state.audit("agent.enrol_code", serde_json::json!({"hospital": code})).await?;
    state.store.durable().await?;
    Ok(secret.to_string())
}

/// A new API token for the hospital; the old one stops working.
pub async fn reissue_token(state: &AppState, code: &str) -> Result<String> {
    let mut h = must_get(state, code)?;
    let tokens = state.store.tree(trees::HOSP_TOKENS)?;
    if let Some(old) = &h.token_sm3 {
        tokens.remove(old.as_bytes())?;
    }
    let secret = new_secret()?;
    let hash = hash_hex(&secret);
    tokens.insert(hash.as_bytes(), code.as_bytes())?;
    h.token_sm3 = Some(hash);
    put(state, &h)?;
    state.audit("agent.token_issued", serde_json::json!({"hospital": code})).await?;
    state.store.durable().await?;
    Ok(secret.to_string())
}

/// Revokes every client certificate of the hospital.
pub async fn revoke_agents(state: &AppState, code: &str) -> Result<()> {
    let mut h = must_get(state, code)?;
    let certs = state.store.tree(trees::HOSP_CERTS)?;
    let mut n = 0u32;
    for c in h.certs.iter_mut().filter(|c| !c.revoked) {
        c.revoked = true;
        certs.remove(c.fingerprint.as_bytes())?;
        n += 1;
    }
    put(state, &h)?;
    state.audit("agent.revoked", serde_json::json!({"hospital": code, "certificates": n})).await?;
    state.store.durable().await?;
    Ok(())
}

fn register_cert(state: &AppState, h: &mut Hospital, fingerprint: &str, via: &str) -> Result<()> {
    state.store.tree(trees::HOSP_CERTS)?.insert(fingerprint.as_bytes(), h.code.as_bytes())?;
    h.certs.push(AgentCert {
        fingerprint: fingerprint.to_owned(),
        issued: now_cst(),
        revoked: false,
        via: via.to_owned(),
    });
    Ok(())
}

/// Issues a client certificate and key for the hospital's agent (operators' `create-hospital`).
pub async fn issue_agent_cert(state: &AppState, code: &str) -> Result<Issued> {
    let mut h = must_get(state, code)?;
    let issued = state.keys.ca.issue_client(&format!("flumon-agent {code}"))?;
    register_cert(state, &mut h, &issued.fingerprint, "admin")?;
    put(state, &h)?;
    state.audit("agent.cert_issued", serde_json::json!({"hospital": code, "fingerprint": issued.fingerprint})).await?;
    state.store.durable().await?;
    Ok(issued)
}

/// Enrolment: burns the one-time code and signs the CSR's key as a client
/// certificate of the hospital whose code it was.
pub async fn enrol(state: &AppState, code: &str, enrol_code: &str, csr_pem: &str) -> Result<Issued> {
    let refused = || Error::forbidden("注册码无效、已使用或已过期 (enrolment code invalid, used or expired)");
    let Some(mut h) = get(state, code)? else {
        return Err(refused());
    };
    let ok = match &h.enrol {
        Some(e) => ct_eq_hex(&e.sm3, &hash_hex(enrol_code)) && e.expires > now_cst(),
        None => false,
    };
    if !ok || !h.active {
        state.audit("agent.enrol_refused", serde_json::json!({"hospital": code})).await?;
        return Err(refused());
    }
    // burn the code first: a CSR that fails still used it up
    h.enrol = None;
    put(state, &h)?;
    let issued = state.keys.ca.sign_csr(csr_pem, &format!("flumon-agent {code}"));
    let issued = match issued {
        Ok(i) => i,
        Err(e) => {
            state.store.durable().await?;
            return Err(e);
        }
    };
    register_cert(state, &mut h, &issued.fingerprint, "enrol")?;
    put(state, &h)?;
    state.audit("agent.enrolled", serde_json::json!({"hospital": code, "fingerprint": issued.fingerprint})).await?;
    state.store.durable().await?;
    Ok(issued)
}

/// The agent check: a known token and a registered, unrevoked client
/// certificate of the same active hospital. Returns its code.
pub fn authenticate(state: &AppState, bearer: Option<&str>, cert_fp: Option<&str>) -> Result<String> {
    let Some(token) = bearer.filter(|t| !t.is_empty()) else {
        return Err(Error::Unauthorized("需要 API 令牌 (bearer token required)"));
    };
    let hash = hash_hex(token);
    let tokens = state.store.tree(trees::HOSP_TOKENS)?;
    let Some(code) = tokens.get(hash.as_bytes())? else {
        return Err(Error::Unauthorized("API 令牌无效 (invalid bearer token)"));
    };
    let code = String::from_utf8_lossy(&code).into_owned();
    let h = must_get(state, &code).map_err(|_| Error::Unauthorized("API 令牌无效 (invalid bearer token)"))?;
    if !h.token_sm3.as_deref().is_some_and(|s| ct_eq_hex(s, &hash)) {
        return Err(Error::Unauthorized("API 令牌无效 (invalid bearer token)"));
    }
    if !h.active {
        return Err(Error::forbidden("医院账户已停用 (hospital deactivated)"));
    }
    let Some(fp) = cert_fp else {
        return Err(Error::forbidden("需要本院的客户端证书 (client certificate of this hospital required)"));
    };
    let ok = h.certs.iter().any(|c| !c.revoked && ct_eq_hex(&c.fingerprint, fp));
    let indexed =
        state.store.tree(trees::HOSP_CERTS)?.get(fp.as_bytes())?.is_some_and(|v| v.as_ref() == code.as_bytes());
    if !(ok && indexed) {
        return Err(Error::forbidden(
            "客户端证书不属于本院或已吊销 (client certificate not of this hospital, or revoked)",
        ));
    }
    Ok(code)
}

/// The hospital's receipts since `since` (China Standard Time), newest last.
pub fn receipts(state: &AppState, code: &str, since: NaiveDateTime) -> Result<Vec<ReceiptRecord>> {
    let t = state.store.tree(trees::RECEIPTS)?;
    let mut start = code.as_bytes().to_vec();
    start.push(0x1F);
    let prefix = start.clone();
    start.extend_from_slice(since.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
    let mut out = Vec::new();
    for kv in t.range(start..) {
        let (k, v) = kv?;
        if !k.starts_with(&prefix) {
            break;
        }
        out.push(serde_json::from_slice(&v).map_err(codec)?);
    }
    Ok(out)
}

/// The key of a receipt in the `receipts` tree: code ␟ time ␟ receipt id (sorted by time).
pub fn receipt_key(code: &str, time: NaiveDateTime, receipt_id: &str) -> Vec<u8> {
    let mut k = code.as_bytes().to_vec();
    k.push(0x1F);
    k.extend_from_slice(time.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
    k.push(0x1F);
    k.extend_from_slice(receipt_id.as_bytes());
    k
}
