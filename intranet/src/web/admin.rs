//! The administrators' pages (三权分立), none with case data, each through
//! the API's own handlers in `api::admin` (same role checks, same journaling):
//!
//! ```text
//!  secadmin: /security         ─▶ journals (chain verification) + reconcile (gaps highlighted)
//!            /security/events  ─▶ login / logout / activation events
//!            /security/transfer ─▶ upload the sender journal (multipart, ≤ 64 MiB, CSRF) ─▶ reconcile
//!                                  per batch (lost / altered highlighted) + quarantined batches + missed heartbeats
//!  sysadmin: /users            ─▶ list, create (activation code shown once), reset TOTP, disable/enable, unlock
//!  auditor:  /audit            ─▶ the journal of sysadmin and secadmin actions
//! ```

use axum::Form;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use flumon_shared::journal::JournalEntry;
use maud::html;
use serde::Deserialize;

use super::analyst::maybe_export;
use super::filters::Q;
use super::layout::{html_ok, html_status, int, msg, page, role_zh, scope_name};
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
        p.hint { "本页不含任何病例数据。发送端日志上传、逐批对账、隔离批次与心跳丢失见 " a href="/security/transfer" { "传输链路对账" } "。" }
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

// ── /security/transfer ───────────────────────────────────────────────────────────────────────────

/// The transfer page's routes: the upload needs more than the default 2 MiB body.
pub fn transfer_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/security/transfer", get(transfer).post(upload))
        .layer(DefaultBodyLimit::max(api::MAX_SENDER_JOURNAL + (1 << 20)))
}

fn fate_zh(f: api::Fate) -> &'static str {
    match f {
        api::Fate::Received => "已收到",
        api::Fate::Altered => "被篡改/拒收",
        api::Fate::Lost => "丢失",
        api::Fate::Unsent => "发送端无记录",
    }
}

fn short(h: Option<&str>) -> String {
    h.map_or_else(|| "—".into(), |h| format!("{}…", h.get(..16).unwrap_or(h)))
}

fn chain_zh(c: &api::Chain) -> String {
    if c.intact {
        format!("完整 ({} 条)", c.lines)
    } else {
        format!("断裂于{} (只用了其前 {} 条)", c.first_bad.as_deref().unwrap_or("?"), c.lines)
    }
}

/// Rows shown on the page: the last received ones, and the first problem ones (exports and the API have every row).
const RECEIVED_SHOWN: usize = 500;
const PROBLEMS_SHOWN: usize = 2000;

fn transfer_tables(rec: Option<&api::TransferReconcile>, ev: &api::LinkEvents, all: bool) -> Vec<Table> {
    let mut out = Vec::new();
    if let Some(r) = rec {
        let mut ct =
            Table::new("chains", "日志链校验", &["日志", "结果", "有效条数", "最后序号", "检查点", "链头", "首个异常"]);
        for (name, c) in [("发送端 (DMZ, 人工带入)", &r.sender), ("接收端 (内网)", &r.receiver)] {
            ct.push_class(
                vec![
                    Td::text(name),
                    Td::text(if c.intact { "完整" } else { "断裂" }),
                    Td::num(c.lines.to_string()),
                    Td::num(c.last_seq.to_string()),
                    Td::num(c.checkpoints.to_string()),
                    Td::text(short(Some(&c.head))),
                    Td::text(c.first_bad.clone().unwrap_or_else(|| "—".into())),
                ],
                (!c.intact).then_some("alert"),
            );
        }
        out.push(ct);
        let received = r.count(api::Fate::Received);
        let problems = r.rows.len() - received;
        let skip = if all { 0 } else { received.saturating_sub(RECEIVED_SHOWN) };
        let keep = if all { usize::MAX } else { PROBLEMS_SHOWN };
        let title = if skip > 0 || problems > keep {
            format!(
                "逐批对账 (只列最近 {RECEIVED_SHOWN} 个正常批次与前 {PROBLEMS_SHOWN} 个异常批次 (共 {problems} 个); 导出含全部)"
            )
        } else {
            "逐批对账".into()
        };
        let mut bt = Table::new(
            "batches",
            title,
            &["批次序号", "结果", "发送 SM3", "接收 SM3", "发送次数", "隔离记录数", "说明"],
        );
        let (mut seen_ok, mut seen_bad) = (0, 0);
        for row in &r.rows {
            if row.fate == api::Fate::Received {
                seen_ok += 1;
                if seen_ok <= skip {
                    continue;
                }
            } else {
                seen_bad += 1;
                if seen_bad > keep {
                    continue;
                }
            }
            let class = match row.fate {
                api::Fate::Lost | api::Fate::Altered => Some("alert"),
                api::Fate::Unsent => Some("warn"),
                api::Fate::Received => None,
            };
            bt.push_class(
                vec![
                    Td::num(row.seq.to_string()),
                    Td::text(fate_zh(row.fate)),
                    Td::text(short(row.sent_sm3.as_deref())),
                    Td::text(short(row.received_sm3.as_deref())),
                    Td::num(row.passes.to_string()),
                    Td::num(row.quarantined_records.to_string()),
                    Td::text(row.note.clone()),
                ],
                class,
            );
        }
        out.push(bt);
    }
    let mut qt = Table::new(
        "quarantine",
        "隔离的批次与记录 (接收端日志)",
        &["日志序号", "时间 (北京时间)", "事件", "批次序号", "原因", "隔离文件 / 记录数"],
    );
    for e in ev.quarantined.iter().rev() {
        qt.push_class(
            vec![
                Td::num(e.seq.to_string()),
                Td::text(cst_ms(e.time)),
                Td::text(if e.kind == "batch.rejected" { "批次拒收" } else { "记录隔离" }),
                Td::num(e.batch.map_or_else(|| "—".into(), |b| b.to_string())),
                Td::text(e.reason.clone()),
                Td::text(e.what.clone()),
            ],
            (e.kind == "batch.rejected").then_some("alert"),
        );
    }
    out.push(qt);
    let mut ht =
        Table::new("heartbeats", "心跳丢失 (接收端日志)", &["日志序号", "时间 (北京时间)", "事件", "静默时长", "说明"]);
    for e in ev.heartbeats.iter().rev() {
        ht.push_class(
            vec![
                Td::num(e.seq.to_string()),
                Td::text(cst_ms(e.time)),
                Td::text(if e.kind == "heartbeat.missed" { "心跳丢失" } else { "心跳恢复" }),
                Td::text(e.reason.clone()),
                Td::text(e.what.clone()),
            ],
            (e.kind == "heartbeat.missed").then_some("warn"),
        );
    }
    out.push(ht);
    out
}

async fn transfer_page(
    st: &AppState,
    u: &WebUser,
    q: &Q,
    note: Option<maud::Markup>,
    status: StatusCode,
) -> PageResult {
    let a = u.authed();
    // an unconfigured journal is a warning on the page, not an error page
    let mut setup = Vec::new();
    let rec = match api::transfer_reconcile_of(st, &a).await {
        Ok(r) => r,
        Err(Error::BadRequest(m)) => {
            setup.push(m);
            None
        }
        Err(e) => return Err(u.err(e)),
    };
    let ev = match api::link_events_of(st, &a, 1000).await {
        Ok(ev) => ev,
        Err(Error::BadRequest(m)) => {
            setup.push(m);
            api::LinkEvents::default()
        }
        Err(e) => return Err(u.err(e)),
    };
    setup.dedup();
    let tables = transfer_tables(rec.as_ref(), &ev, q.format.is_some());
    if let Some(r) = maybe_export(q, &tables, "transfer") {
        return r;
    }
    let summary = rec.as_ref().map(|r| {
        let (lost, altered) = (r.count(api::Fate::Lost), r.count(api::Fate::Altered));
        let text = format!(
            "汇总: 发送 {} 批, 收到 {}, 丢失 {lost}, 被篡改/拒收 {altered}, 发送端无记录 {}, 隔离记录 {}; 发送端日志链 {}; 接收端日志链 {}。",
            r.sent(),
            r.count(api::Fate::Received),
            r.count(api::Fate::Unsent),
            r.rows.iter().map(|x| x.quarantined_records).sum::<u64>(),
            chain_zh(&r.sender),
            chain_zh(&r.receiver),
        );
        let ok = lost == 0 && altered == 0 && r.sender.intact && r.receiver.intact;
        msg(if ok { "ok" } else { "err" }, &text)
    });
    let body = html! {
        h2 { "传输链路对账" }
        @if let Some(n) = note { (n) }
        @for m in &setup { (msg("err", m)) }
        div.card {
            h3 { "上传发送端传输日志" }
            p.hint { "从 DMZ 发送端人工带入的日志文件 (flumon-transfer 的 send journal), 不超过 64 MiB; 以登记的发送端公钥校验哈希链与签名检查点后保存。" }
            form.filters method="post" action="/security/transfer" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(u.csrf);
                div { label for="f-journal" { "日志文件" } input #f-journal type="file" name="journal" required; }
                div { button.btn type="submit" { "上传并对账" } }
            }
        }
        @match &summary {
            Some(s) => { div #summary { (s) } }
            None => { (msg("warn", "尚未上传发送端日志, 无法逐批对账; 下方仍列出接收端的隔离与心跳记录。")) }
        }
        @for t in &tables { div.card { (t.html(Some("/security/transfer?"))) } }
        p.hint { "本页不含任何病例数据: 只有批次序号、SM3 摘要、原因与时间。" }
    };
    Ok(html_status(status, page(&u.frame("/security/transfer"), "传输链路对账", body)))
}

/// `GET /security/transfer`.
pub async fn transfer(State(st): State<AppState>, u: WebUser, Query(q): Query<Q>) -> PageResult {
    u.require(Role::Secadmin)?;
    transfer_page(&st, &u, &q, None, StatusCode::OK).await
}

fn upload_err(e: &MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::BadRequest(format!("文件过大: 超过 {} MiB (file too large)", api::MAX_SENDER_JOURNAL >> 20))
    } else {
        Error::BadRequest(format!("上传中断或格式错误 (bad upload): {}", e.body_text()))
    }
}

async fn read_upload(mp: Result<Multipart, MultipartRejection>) -> Result<(String, Option<axum::body::Bytes>)> {
    let mut mp =
        mp.map_err(|e| Error::BadRequest(format!("请用页面上的表单上传 (multipart expected): {}", e.body_text())))?;
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(f) = mp.next_field().await.map_err(|e| upload_err(&e))? {
        match f.name() {
            Some("csrf") => csrf = f.text().await.map_err(|e| upload_err(&e))?,
            Some("journal") => file = Some(f.bytes().await.map_err(|e| upload_err(&e))?),
            _ => {}
        }
    }
    Ok((csrf, file))
}

/// `POST /security/transfer` (multipart: csrf, journal).
pub async fn upload(State(st): State<AppState>, u: WebUser, mp: Result<Multipart, MultipartRejection>) -> PageResult {
    u.require(Role::Secadmin)?;
    let q = Q::default();
    let bad = |m: String| (Some(msg("err", &m)), StatusCode::BAD_REQUEST);
    let (note, status) = match read_upload(mp).await {
        Err(Error::BadRequest(m)) => bad(m),
        Err(e) => return Err(u.err(e)),
        Ok((csrf, file)) => {
            check_csrf(&u, &csrf).map_err(|e| u.err(e))?;
            match file {
                None => bad("请选择日志文件 (no file)".into()),
                Some(bytes) => match api::store_sender_journal(&st, &u.authed(), bytes).await {
                    Ok(up) => {
                        let mut t = format!(
                            "已上传并保存发送端日志: {} 字节, {} 条有效记录, SM3 {}。",
                            up.bytes,
                            up.good_lines,
                            short(Some(&up.sm3))
                        );
                        if let Some(b) = &up.first_bad {
                            t.push_str(&format!(" 注意: 日志链在{b}处断裂, 其后内容未用于对账。"));
                        }
                        (Some(msg(if up.intact { "ok" } else { "warn" }, &t)), StatusCode::OK)
                    }
                    Err(Error::BadRequest(m)) => bad(m),
                    Err(e) => return Err(u.err(e)),
                },
            }
        }
    };
    transfer_page(&st, &u, &q, note, status).await
}
