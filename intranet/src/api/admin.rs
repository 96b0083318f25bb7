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
    for j in st.journals.iter() {
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
