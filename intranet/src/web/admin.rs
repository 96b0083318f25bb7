//! The administrators' pages (三权分立), none with case data, each through
//! the API's own handlers in `api::admin` (same role checks, same journaling):
//!
//! ```text
//!  secadmin: /security         ─▶ journals (chain verification) + reconcile (gaps highlighted)
//!            /security/events  ─▶ login / logout / activation events
//!  sysadmin: /users            ─▶ list, create (activation code shown once), reset TOTP, disable/enable, unlock
//!  auditor:  /audit            ─▶ the journal of sysadmin and secadmin actions
//! ```

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use flumon_shared::journal::JournalEntry;
use maud::html;
use serde::Deserialize;

use super::analyst::maybe_export;
use super::filters::Q;
use super::layout::{html_ok, int, msg, page, role_zh, scope_name};
use super::login::token_ok;
use super::table::{Table, Td};
use super::{PageResult, WebUser};
use crate::api::{AppState, admin as api};
use crate::indicators::Role;
use crate::{Error, Result};

fn cst_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .map(|d| (d + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn entries_table(name: &'static str, title: &str, es: &[JournalEntry]) -> Table {
    let mut t = Table::new(name, title, &["序号", "时间 (北京时间)", "事件", "操作人", "角色", "结果", "详情"]);
    for e in es.iter().rev() {
        let d = &e.detail;
        let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let outcome = s("outcome");
        t.push_class(
            vec![
                Td::num(e.seq.to_string()),
                Td::text(cst_ms(e.time)),
                Td::text(e.kind.clone()),
                Td::text(s("actor")),
                Td::text(s("role")),
                Td::text(outcome.clone()),
                Td::text(d.get("detail").map(|v| v.to_string()).unwrap_or_default()),
            ],
            (outcome != "ok" && !outcome.is_empty()).then_some("alert"),
        );
    }
    t
}

/// `GET /security`.
pub async fn security(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    u.require(Role::Secadmin)?;
    let a = u.authed();
    let journals = api::journals(State(st.clone()), a.clone()).await.map_err(|e| u.err(e))?.0;
    let rec = api::reconcile(State(st.clone()), a).await.map_err(|e| u.err(e))?.0;
    let mut jt = Table::new("journals", "日志链校验", &["日志", "结果", "最后序号", "检查点", "首个异常行", "原因"]);
    for j in &journals {
        jt.push_class(
            vec![
                Td::text(j.name.clone()),
                Td::text(if j.intact { "完整" } else { "异常" }),
                Td::num(j.last_seq.to_string()),
                Td::num(j.checkpoints.to_string()),
                Td::text(j.first_bad_line.map_or_else(|| "—".into(), |l| l.to_string())),
                Td::text(j.reason.clone().unwrap_or_default()),
            ],
            (!j.intact).then_some("alert"),
        );
    }
    let mut rt = Table::new(
        "reconcile",
        "批次对账 (按 DMZ 节点)",
        &["节点", "已收批次", "首个序号", "最后序号", "缺失批次数", "缺失序号 (前 100)", "DMZ 日志头"],
    );
    for r in &rec {
        rt.push_class(
            vec![
                Td::text(r.node.clone()),
                Td::num(int(r.batches)),
                Td::num(r.first_seq.to_string()),
                Td::num(r.last_seq.to_string()),
                Td::num(int(r.missing_count)),
                Td::text(r.missing.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")),
                Td::text(
                    r.dmz_journal_head
                        .as_ref()
                        .map_or_else(|| "—".into(), |(s, h)| format!("#{s} {}", h.get(..16).unwrap_or(h))),
                ),
            ],
            (r.missing_count > 0).then_some("alert"),
        );
    }
    let tables = [jt, rt];
    if let Some(r) = maybe_export(&q, &tables, "security") {
        return r;
    }
    let bad = journals.iter().filter(|j| !j.intact).count();
    let gaps: i64 = rec.iter().map(|r| r.missing_count).sum();
    let body = html! {
        h2 { "传输与安全日志" }
        @if bad == 0 { (msg("ok", &format!("{} 本日志哈希链校验通过。", journals.len()))) }
        @else { (msg("err", &format!("{bad} 本日志校验失败, 请立即核查!"))) }
        @if gaps > 0 { (msg("err", &format!("共缺失 {gaps} 个批次 (丢失或被拦截), 见下表红色行; 可在 DMZ 端执行重发。"))) }
        @else { (msg("ok", "各节点批次序号连续, 无缺失。")) }
        @for t in &tables { div.card { (t.html(Some("/security?"))) } }
        p.hint { "本页不含任何病例数据。隔离批次与心跳丢失记录在传输日志中 (事件 batch.quarantined / heartbeat.missed)。" }
    };
    Ok(html_ok(page(&u.frame("/security"), "传输与安全日志", body)))
}

/// `GET /security/events`.
pub async fn events(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    u.require(Role::Secadmin)?;
    let es = api::events(State(st.clone()), u.authed(), Query(api::Limit::default())).await.map_err(|e| u.err(e))?.0;
    let t = entries_table("events", "登录与访问事件 (最近 200 条, 新的在前)", &es);
    if let Some(r) = maybe_export(&q, std::slice::from_ref(&t), "events") {
        return r;
    }
    let failed = es.iter().filter(|e| e.kind != "login.ok" && e.kind.starts_with("login.")).count();
    let body = html! {
        h2 { "登录与访问事件" }
        @if failed > 0 { (msg("warn", &format!("最近记录中有 {failed} 次失败或锁定的登录。"))) }
        div.card { (t.html(Some("/security/events?"))) }
    };
    Ok(html_ok(page(&u.frame("/security/events"), "登录与访问事件", body)))
}

/// `GET /audit`.
pub async fn audit(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    u.require(Role::Auditor)?;
    let es =
        api::audit_journal(State(st.clone()), u.authed(), Query(api::Limit::default())).await.map_err(|e| u.err(e))?.0;
    let t = entries_table("audit", "系统管理员与安全管理员操作日志 (最近 200 条)", &es);
    if let Some(r) = maybe_export(&q, std::slice::from_ref(&t), "audit") {
        return r;
    }
    let body = html! {
        h2 { "管理员操作日志" }
        p.hint { "日志以 SM3 哈希链保护, 每条记录不可修改; 本页只读。" }
        div.card { (t.html(Some("/audit?"))) }
    };
    Ok(html_ok(page(&u.frame("/audit"), "管理员操作日志", body)))
}

async fn users_page(st: &AppState, u: &WebUser, note: Option<maud::Markup>) -> PageResult {
    let list = api::list_users(State(st.clone()), u.authed()).await.map_err(|e| u.err(e))?.0;
    let body = html! {
        h2 { "账户管理" }
        @if let Some(n) = note { (n) }
        div.card {
            h3 { "新建账户" }
            form.filters method="post" action="/users" {
                input type="hidden" name="csrf" value=(u.csrf);
                div { label for="n-name" { "用户名" } input #n-name type="text" name="name" required; }
                div { label for="n-role" { "角色" }
                    select #n-role name="role" {
                        @for r in [Role::Analyst, Role::Sysadmin, Role::Secadmin, Role::Auditor] { option value=(r.as_str()) { (role_zh(r)) } }
                    }
                }
                div { label for="n-scope" { "地区范围 (分析员: 000000 / 省 / 市代码)" } input #n-scope type="text" name="scope"; }
                div { button.btn type="submit" { "创建并生成激活码" } }
            }
        }
        div.card {
            table.data #t-users {
                thead { tr { th.sortable { "用户名" } th.sortable { "角色" } th.sortable { "地区范围" } th.sortable { "状态" } th { "操作" } } }
                tbody {
                    @for x in &list {
                        tr class=[(x.locked || x.disabled).then_some("warn")] {
                            td { (x.name) }
                            td { (Role::parse(&x.role).map(role_zh).unwrap_or("?")) }
                            td { (x.scope.as_deref().map(scope_name).unwrap_or_default()) }
                            td {
                                @if !x.activated { span.tag.bad { "未激活" } " " }
                                @if x.locked { span.tag.bad { "已锁定" } " " }
                                @if x.disabled { span.tag.bad { "已停用" } }
                                @if x.activated && !x.locked && !x.disabled { span.tag.good { "正常" } }
                            }
                            td {
                                @for (action, label) in [("reset", "重置密码与动态口令"), ("unlock", "解锁"), (if x.disabled { "enable" } else { "disable" }, if x.disabled { "启用" } else { "停用" })] {
                                    form.inline method="post" action=(format!("/users/{}/{action}", x.name)) {
                                        input type="hidden" name="csrf" value=(u.csrf);
                                        button.btn.small.light type="submit" { (label) }
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "本页不含任何病例数据。所有操作记入审计日志, 由审计管理员查阅。" }
    };
    Ok(html_ok(page(&u.frame("/users"), "账户管理", body)))
}

/// `GET /users`.
pub async fn users(State(st): State<AppState>, u: WebUser) -> PageResult {
    u.require(Role::Sysadmin)?;
    users_page(&st, &u, None).await
}

/// The new-user form.
#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    role: String,
    scope: Option<String>,
}

fn check_csrf(u: &WebUser, sent: &str) -> Result<()> {
    if token_ok(&u.csrf, sent) { Ok(()) } else { Err(Error::Forbidden("CSRF 校验失败 (CSRF check failed)")) }
}

fn code_note(name: &str, code: &str) -> maud::Markup {
    html! {
        div.msg.ok {
            "账户 " b { (name) } " 的激活码 (只显示这一次, 请线下交给本人): "
            code.secret #activation-code { (code) }
        }
    }
}

/// `POST /users`.
pub async fn create_user(State(st): State<AppState>, u: WebUser, Form(f): Form<NewUserForm>) -> PageResult {
    u.require(Role::Sysadmin)?;
    check_csrf(&u, &f.csrf).map_err(|e| u.err(e))?;
    let scope = f.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let body = serde_json::json!({ "name": f.name.trim(), "role": f.role, "scope": scope });
    let nu: api::NewUser = serde_json::from_value(body).map_err(|e| u.err(e.into()))?;
    match api::create_user(State(st.clone()), u.authed(), axum::Json(nu)).await {
        Ok(j) => {
            let code = j.0.get("activation_code").and_then(|v| v.as_str()).unwrap_or("").to_string();
            users_page(&st, &u, Some(code_note(f.name.trim(), &code))).await
        }
        Err(Error::BadRequest(m) | Error::Conflict(m)) => users_page(&st, &u, Some(msg("err", &m))).await,
        Err(e) => Err(u.err(e)),
    }
}

/// `POST /users/{name}/{action}`.
pub async fn user_action(
    State(st): State<AppState>,
    u: WebUser,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<super::login::CsrfFormPub>,
) -> PageResult {
    u.require(Role::Sysadmin)?;
    check_csrf(&u, &f.csrf).map_err(|e| u.err(e))?;
    let r = api::user_action(State(st.clone()), u.authed(), Path((name.clone(), action.clone())))
        .await
        .map_err(|e| u.err(e))?;
    match r.0.get("activation_code").and_then(|v| v.as_str()) {
        Some(code) => users_page(&st, &u, Some(code_note(&name, code))).await,
        None => Ok(Redirect::to("/users").into_response()),
    }
}
