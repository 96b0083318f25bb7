//! The administrators' endpoints (三权分立): sysadmin manages accounts and
//! sees no data; secadmin reads the transfer journals, login events and the
//! batch reconciliation, no case data; auditor reads the journal of the
//! other two. Every administrator action is journaled.
//!
//! ```text
//!  sysadmin: GET/POST /admin/users · POST /admin/users/{name}/reset|disable|enable|unlock
//!  secadmin: GET /security/journals · /security/journals/{name} · /security/events · /security/reconcile
//!  auditor:  GET /audit/journal
//! ```

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use flumon_shared::crypto::Sm2PublicKey;
use flumon_shared::journal::reconcile::{self, Note, Tally};
pub use flumon_shared::journal::reconcile::{BatchRow, Fate};
use flumon_shared::journal::{self, JournalEntry};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use super::{AppState, Authed};
use crate::audit::role_of;
use crate::auth::accounts::{self, UserInfo};
use crate::indicators::Role;
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    role: String,
    scope: Option<String>,
}

pub async fn create_user(
    State(st): State<AppState>,
    a: Authed,
    Json(b): Json<NewUser>,
) -> Result<Json<serde_json::Value>> {
    a.require(Role::Sysadmin)?;
    let role = Role::parse(&b.role)?;
    let r = accounts::create_user(&st.db, &st.clock, &b.name, role, b.scope.as_deref()).await;
    st.audit.record(
        "account.create",
        &a.account.name,
        "sysadmin",
        if r.is_ok() { "ok" } else { "failed" },
        json!({ "user": b.name, "role": b.role, "scope": b.scope }),
    )?;
    Ok(Json(json!({ "name": b.name, "activation_code": r? })))
}

pub async fn list_users(State(st): State<AppState>, a: Authed) -> Result<Json<Vec<UserInfo>>> {
    a.require(Role::Sysadmin)?;
    Ok(Json(accounts::list_users(&st.db, &st.clock).await?))
}

pub async fn user_action(
    State(st): State<AppState>,
    a: Authed,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>> {
    a.require(Role::Sysadmin)?;
    let r = match action.as_str() {
        "reset" => accounts::reset_user(&st.db, &st.clock, &name).await.map(|c| json!({ "activation_code": c })),
        "disable" => accounts::set_flags(&st.db, &name, Some(true), false).await.map(|()| json!({ "disabled": true })),
        "enable" => accounts::set_flags(&st.db, &name, Some(false), false).await.map(|()| json!({ "disabled": false })),
        "unlock" => accounts::set_flags(&st.db, &name, None, true).await.map(|()| json!({ "unlocked": true })),
        _ => return Err(Error::NotFound),
    };
    st.audit.record(
        &format!("account.{action}"),
        &a.account.name,
        "sysadmin",
        if r.is_ok() { "ok" } else { "failed" },
        json!({ "user": name }),
    )?;
    Ok(Json(r?))
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    limit: Option<usize>,
}

impl Limit {
    fn get(&self) -> usize {
        self.limit.unwrap_or(200).clamp(1, 10_000)
    }
}

/// A journal's verification as the security officer sees it.
#[derive(Clone, Debug, Serialize)]
pub struct JournalStatus {
    pub name: String,
    pub intact: bool,
    pub last_seq: u64,
    pub checkpoints: u64,
    pub first_bad_line: Option<u64>,
    pub reason: Option<String>,
}

fn status(name: &str, r: &journal::VerifyReport) -> JournalStatus {
    JournalStatus {
        name: name.into(),
        intact: r.is_intact(),
        last_seq: r.last_seq,
        checkpoints: r.checkpoints,
        first_bad_line: r.first_bad.as_ref().map(|b| b.line),
        reason: r.first_bad.as_ref().map(|b| b.reason.clone()),
    }
}

fn read_source(st: &AppState, name: &str) -> Result<(std::path::PathBuf, Sm2PublicKey)> {
    let j = st.journals.iter().find(|j| j.name == name).ok_or(Error::NotFound)?;
    Ok((j.path.clone(), Sm2PublicKey::load(&j.pubkey)?))
}

pub async fn journals(State(st): State<AppState>, a: Authed) -> Result<Json<Vec<JournalStatus>>> {
    a.require(Role::Secadmin)?;
    st.audit.record("security.journals", &a.account.name, "secadmin", "ok", json!({}))?;
    let mut out = vec![status("intranet", &st.audit.verify()?)];
    // the sender's journal appears once a security officer uploaded it
    for j in st.journals.iter().filter(|j| j.name != SENDER || j.path.exists()) {
        let r = match Sm2PublicKey::load(&j.pubkey).and_then(|k| journal::verify(&j.path, &k)) {
            Ok(r) => status(&j.name, &r),
            Err(e) => JournalStatus {
                name: j.name.clone(),
                intact: false,
                last_seq: 0,
                checkpoints: 0,
                first_bad_line: None,
                reason: Some(e.to_string()),
            },
        };
        out.push(r);
    }
    Ok(Json(out))
}

pub async fn journal_entries(
    State(st): State<AppState>,
    a: Authed,
    Path(name): Path<String>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<JournalEntry>>> {
    a.require(Role::Secadmin)?;
    st.audit.record("security.journal.read", &a.account.name, "secadmin", "ok", json!({ "journal": name }))?;
    let (path, key) = read_source(&st, &name)?;
    let limit = l.get();
    let mut out = std::collections::VecDeque::new();
    journal::visit(&path, &key, |e| {
        out.push_back(e.clone());
        if out.len() > limit {
            out.pop_front();
        }
    })?;
    Ok(Json(out.into()))
}

/// Login and access events of the intranet journal.
pub async fn events(State(st): State<AppState>, a: Authed, Query(l): Query<Limit>) -> Result<Json<Vec<JournalEntry>>> {
    a.require(Role::Secadmin)?;
    st.audit.record("security.events", &a.account.name, "secadmin", "ok", json!({}))?;
    Ok(Json(st.audit.entries(
        |e| {
            e.kind.starts_with("login.")
                || e.kind == "logout"
                || e.kind.starts_with("account.activate")
                || e.kind.starts_with("access.")
        },
        l.get(),
    )?))
}

/// Batches received per DMZ node: sequence range, gaps, last journal head.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReconcile {
    pub node: String,
    pub batches: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Sequence numbers never ingested (at most 100 listed).
    pub missing: Vec<i64>,
    pub missing_count: i64,
    pub dmz_journal_head: Option<(i64, String)>,
}

pub async fn reconcile(State(st): State<AppState>, a: Authed) -> Result<Json<Vec<NodeReconcile>>> {
    a.require(Role::Secadmin)?;
    st.audit.record("security.reconcile", &a.account.name, "secadmin", "ok", json!({}))?;
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in sqlx::query("SELECT node, seq FROM batches ORDER BY node, seq").fetch_all(&st.db.pool).await? {
        seqs.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
    }
    let mut heads: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for r in sqlx::query("SELECT node, seq, hash FROM dmz_heads ORDER BY node, seq").fetch_all(&st.db.pool).await? {
        heads.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
    }
    let mut out = Vec::new();
    for (node, s) in seqs {
        let (first, last) = (s.first().copied().unwrap_or(0), s.last().copied().unwrap_or(0));
        let have: std::collections::BTreeSet<i64> = s.iter().copied().collect();
        let missing_count = (last - first + 1) - have.len() as i64;
        let missing = (first..=last).filter(|q| !have.contains(q)).take(100).collect();
        out.push(NodeReconcile {
            dmz_journal_head: heads.remove(&node),
            node,
            batches: have.len() as i64,
            first_seq: first,
            last_seq: last,
            missing,
            missing_count,
        });
    }
    Ok(Json(out))
}

/// The journal of the sysadmin's and secadmin's actions.
pub async fn audit_journal(
    State(st): State<AppState>,
    a: Authed,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<JournalEntry>>> {
    a.require(Role::Auditor)?;
    Ok(Json(st.audit.entries(|e| matches!(role_of(e), "sysadmin" | "secadmin"), l.get())?))
}

// ── The transfer link (TRANSFER.md "Audit"): the sender's journal carried by hand ──────────────────
//
//  upload (≤ 64 MiB) ─▶ verify with [[journals]] "sender".pubkey ─▶ no good line? refused
//                    ─▶ temp file + rename into its configured path (the data folder) ─▶ journaled
//  sender journal  ─▶ batch.sent / batch.resent ─┐
//  receiver journal ─▶ batch.received / rejected ─┴▶ join on seq ─▶ received | altered | lost | unsent
//  (the join is flumon_shared::journal::reconcile, as for flumon-transfer; the notes are worded here)

/// The `[[journals]]` names of the transfer's two ends.
pub const SENDER: &str = "sender";
pub const RECEIVER: &str = "receiver";
/// The largest sender journal accepted.
pub const MAX_SENDER_JOURNAL: usize = 64 << 20;

fn source(st: &AppState, name: &str) -> Result<(std::path::PathBuf, Sm2PublicKey)> {
    read_source(st, name).map_err(|e| match e {
        Error::NotFound => Error::BadRequest(format!(
            "intranet.toml 未登记 [[journals]] name = \"{name}\" (日志路径与检查点公钥) (journal \"{name}\" not configured)"
        )),
        e => e,
    })
}

/// What an upload left.
#[derive(Clone, Debug, Serialize)]
pub struct Upload {
    pub bytes: usize,
    pub sm3: String,
    pub good_lines: u64,
    pub intact: bool,
    pub first_bad: Option<String>,
}

/// Stores an uploaded sender journal after verifying it with the sender's key.
pub async fn store_sender_journal(st: &AppState, a: &Authed, bytes: axum::body::Bytes) -> Result<Upload> {
    a.require(Role::Secadmin)?;
    let refuse = |why: String, size: usize| -> Result<Upload> {
        st.audit.record(
            "security.sender_journal.upload",
            &a.account.name,
            "secadmin",
            "refused",
            json!({ "bytes": size, "reason": why }),
        )?;
        Err(Error::BadRequest(why))
    };
    if bytes.len() > MAX_SENDER_JOURNAL {
        return refuse(format!("文件过大: 超过 {} MiB (file too large)", MAX_SENDER_JOURNAL >> 20), bytes.len());
    }
    if bytes.is_empty() {
        return refuse("文件为空 (empty file)".into(), 0);
    }
    let (path, key) = source(st, SENDER)?;
    let task = tokio::task::spawn_blocking(move || -> Result<Upload> {
        let r = journal::verify_bytes(&bytes, &key);
        let up = Upload {
            bytes: bytes.len(),
            sm3: hex::encode(flumon_shared::crypto::sm3(&bytes)),
            good_lines: r.good_lines,
            intact: r.is_intact(),
            first_bad: r.first_bad.map(|b| format!("第 {} 行: {}", b.line, b.reason)),
        };
        if up.good_lines > 0 {
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".upload.{}.tmp", journal::now_ms()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(up)
    });
    let up = task.await.map_err(|e| Error::BadRequest(format!("校验任务失败 (verify task failed): {e}")))??;
    if up.good_lines == 0 {
        let why = format!(
            "不是有效的发送端传输日志, 或不是用登记的发送端公钥签的 (not a sender journal): {}",
            up.first_bad.clone().unwrap_or_default()
        );
        return refuse(why, up.bytes);
    }
    st.audit.record(
        "security.sender_journal.upload",
        &a.account.name,
        "secadmin",
        "ok",
        json!({ "bytes": up.bytes, "sm3": up.sm3, "lines": up.good_lines, "intact": up.intact }),
    )?;
    Ok(up)
}

/// `POST /security/sender-journal` (raw body; the CSRF header as every API POST).
pub async fn upload_sender_journal(
    State(st): State<AppState>,
    a: Authed,
    bytes: axum::body::Bytes,
) -> Result<Json<Upload>> {
    Ok(Json(store_sender_journal(&st, &a, bytes).await?))
}

/// One journal's chain as the reconciliation used it.
#[derive(Clone, Debug, Serialize)]
pub struct Chain {
    pub intact: bool,
    pub lines: u64,
    pub last_seq: u64,
    pub checkpoints: u64,
    pub head: String,
    pub first_bad: Option<String>,
}

fn read_all(path: &std::path::Path, key: &Sm2PublicKey) -> Result<(Chain, Vec<JournalEntry>)> {
    let (r, es) = reconcile::read_entries(path, key)?;
    let c = Chain {
        intact: r.is_intact(),
        lines: r.good_lines,
        last_seq: r.last_seq,
        checkpoints: r.checkpoints,
        head: hex::encode(r.head),
        first_bad: r.first_bad.map(|b| format!("第 {} 行: {}", b.line, b.reason)),
    };
    Ok((c, es))
}

/// The sender journal against the receiver journal.
#[derive(Clone, Debug, Serialize)]
pub struct TransferReconcile {
    pub sender: Chain,
    pub receiver: Chain,
    pub rows: Vec<BatchRow>,
}

impl TransferReconcile {
    pub fn count(&self, f: Fate) -> usize {
        Tally::of(&self.rows).fate(f)
    }
    pub fn sent(&self) -> usize {
        Tally::of(&self.rows).sent
    }
}

fn u(e: &JournalEntry, k: &str) -> Option<u64> {
    e.detail.get(k).and_then(serde_json::Value::as_u64)
}

fn s(e: &JournalEntry, k: &str) -> Option<String> {
    e.detail.get(k).and_then(|v| v.as_str()).map(str::to_owned)
}

/// The notes in Chinese.
fn note(n: Note<'_>) -> String {
    match n {
        Note::None => String::new(),
        Note::OtherCopyRejected(why) => format!("另一份副本被拒收: {why}"),
        Note::OtherSm3 => "收到的 SM3 与发送的不同".into(),
        Note::Rejected(why) => format!("被拒收: {why}"),
        Note::NotInSender(Some(why)) => format!("发送端日志中没有; 被拒收: {why}"),
        Note::NotInSender(None) => "发送端日志中没有".into(),
    }
}

/// Joins the two journals on the batch sequence number.
pub fn join(sent_entries: &[JournalEntry], recv_entries: &[JournalEntry]) -> Vec<BatchRow> {
    reconcile::join(sent_entries, recv_entries, note)
}

/// The last uploaded sender journal against the receiver journal; `None` before any upload.
pub async fn transfer_reconcile_of(st: &AppState, a: &Authed) -> Result<Option<TransferReconcile>> {
    a.require(Role::Secadmin)?;
    let (spath, skey) = source(st, SENDER)?;
    let (rpath, rkey) = source(st, RECEIVER)?;
    if !spath.exists() {
        return Ok(None);
    }
    st.audit.record("security.transfer.reconcile", &a.account.name, "secadmin", "ok", json!({}))?;
    let task = tokio::task::spawn_blocking(move || -> Result<TransferReconcile> {
        let (sender, se) = read_all(&spath, &skey)?;
        let (receiver, re) = read_all(&rpath, &rkey)?;
        Ok(TransferReconcile { sender, receiver, rows: join(&se, &re) })
    });
    Ok(Some(task.await.map_err(|e| Error::BadRequest(format!("对账任务失败 (reconcile task failed): {e}")))??))
}

/// `GET /security/transfer/reconcile`.
pub async fn transfer_reconcile(State(st): State<AppState>, a: Authed) -> Result<Json<Option<TransferReconcile>>> {
    Ok(Json(transfer_reconcile_of(&st, &a).await?))
}

/// Receiver journal events the security officer follows (no record content).
#[derive(Clone, Debug, Serialize)]
pub struct LinkEvent {
    pub seq: u64,
    pub time: u64,
    pub kind: String,
    /// Batch sequence number (quarantine events).
    pub batch: Option<u64>,
    /// Reason (rejections), or the silence in seconds (heartbeats).
    pub reason: String,
    /// The quarantine file name, or the number of quarantined records.
    pub what: String,
}

/// Quarantined batches / records and missed heartbeats of the receiver journal.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkEvents {
    pub quarantined: Vec<LinkEvent>,
    pub heartbeats: Vec<LinkEvent>,
}

pub async fn link_events_of(st: &AppState, a: &Authed, limit: usize) -> Result<LinkEvents> {
    a.require(Role::Secadmin)?;
    st.audit.record("security.transfer.events", &a.account.name, "secadmin", "ok", json!({}))?;
    let (path, key) = source(st, RECEIVER)?;
    let task = tokio::task::spawn_blocking(move || -> Result<LinkEvents> {
        let mut out = LinkEvents::default();
        journal::visit(&path, &key, |e| {
            let ev = |reason: String, what: String| LinkEvent {
                seq: e.seq,
                time: e.time,
                kind: e.kind.clone(),
                batch: u(e, "seq"),
                reason,
                what,
            };
            match e.kind.as_str() {
                "batch.rejected" => {
                    out.quarantined.push(ev(s(e, "reason").unwrap_or_default(), s(e, "quarantine").unwrap_or_default()))
                }
                "record.quarantined" => {
                    let n = e.detail.get("records").and_then(|v| v.as_array()).map_or(0, Vec::len);
                    let q = s(e, "quarantine").unwrap_or_default();
                    out.quarantined
                        .push(ev("记录含个人身份信息, 已隔离 (identifier found)".into(), format!("{n} 条记录 · {q}")))
                }
                "heartbeat.missed" | "heartbeat.resumed" => {
                    let secs = u(e, "silent_secs").unwrap_or(0);
                    let what = u(e, "missed").map(|m| format!("丢失约 {m} 次心跳")).unwrap_or_default();
                    out.heartbeats.push(LinkEvent { batch: None, ..ev(format!("{secs} 秒无心跳"), what) })
                }
                _ => {}
            }
        })?;
        for v in [&mut out.quarantined, &mut out.heartbeats] {
            let cut = v.len().saturating_sub(limit);
            v.drain(..cut);
        }
        Ok(out)
    });
    task.await.map_err(|e| Error::BadRequest(format!("读取任务失败 (read task failed): {e}")))?
}

/// `GET /security/transfer/events`.
pub async fn link_events(State(st): State<AppState>, a: Authed, Query(l): Query<Limit>) -> Result<Json<LinkEvents>> {
    Ok(Json(link_events_of(&st, &a, l.get()).await?))
}
