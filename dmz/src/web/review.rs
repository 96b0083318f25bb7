//! Reviewer pages on the admin listener (LEVEL3 role "registration reviewer":
//! review applications and their scans; approve, reject; never see uploads).
//!
//! ```text
//!  GET  /review                 pending applications          GET /review/done   decided ones
//!  GET  /review/{no}            the fields, checks, the two scans, approve / reject forms
//!  GET  /review/{no}/scan/{s}   reviewer copy (opened with the web key), audited web.scan_viewed
//!  POST /review/{no}/approve    decide (CAS: once) ─▶ hospitals::create_approved ─▶ account (user name =
//!                               USCC) ─▶ activation link (72 h) ─▶ reviewer copies deleted ─▶ e-mail
//!  POST /review/{no}/reject     reason required ─▶ reviewer copies deleted ─▶ e-mail; may apply again
//!  POST /review/{no}/resend     approved, not yet activated: a new link replaces the old one
//! ```

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use flumon_shared::validate::ids::is_valid_uscc;

use super::accounts::{self, Role, User};
use super::applications::{self, Application, SLOTS, Status};
use super::auth::Empty;
use super::extract::{CsrfForm, ReviewerUser, WebResult};
use super::layout::{csrf_field, cst, html_ok, msg, page};
use super::registration::province;
use super::{activation, mail_text};
use crate::error::Error;
use crate::state::AppState;

fn list(apps: &[Application], decided: bool) -> Markup {
    html! {
        @if apps.is_empty() {
            div.empty { "暂无记录" }
        } @else {
            table.t {
                tr {
                    th { "申请编号" } th { "医疗机构名称" } th { "统一社会信用代码" } th { "级别" } th { "地区" } th { "提交时间" }
                    @if decided { th { "状态" } th { "审核人" } th { "处理时间" } }
                    th { "操作" }
                }
                @for a in apps {
                    tr {
                        td.code { (a.no) } td { (a.name) } td.code { (a.uscc) } td { (if a.level == 3 { "三级" } else { "二级" }) }
                        td { (province(&a.region)) " " (a.region) } td { (cst(a.submitted)) }
                        @if decided {
                            td { span class={ "tag " (a.status.tag()) } { (a.status.zh()) } }
                            td { (a.reviewer.as_deref().unwrap_or("")) }
                            td { (a.decided.map(cst).unwrap_or_default()) }
                        }
                        td { a.btn.small href={ "/review/" (a.no) } { @if decided { "查看" } @else { "审核" } } }
                    }
                }
            }
        }
    }
}

/// `GET /review`.
pub async fn pending(State(state): State<AppState>, ReviewerUser(u): ReviewerUser) -> WebResult {
    let apps: Vec<_> = applications::all(&state)?.into_iter().filter(|a| a.status == Status::Pending).collect();
    let body = html! {
        div.card {
            h2 { "待审核申请" span.en { "Pending applications" } " (" (apps.len()) ")" }
            p.hint { "请核对申请表、执业许可证扫描件与填写信息一致, 并确认统一社会信用代码和执业许可证登记号真实有效。" }
            (list(&apps, false))
        }
    };
    Ok(html_ok(page(&u.frame("/review"), "待审核申请", body)))
}

/// `GET /review/done`.
pub async fn done(State(state): State<AppState>, ReviewerUser(u): ReviewerUser) -> WebResult {
    let apps: Vec<_> =
        applications::all(&state)?.into_iter().filter(|a| a.status != Status::Pending).take(500).collect();
    let body = html! {
        div.card {
            h2 { "已处理申请" span.en { "Decided applications" } }
            (list(&apps, true))
        }
    };
    Ok(html_ok(page(&u.frame("/review/done"), "已处理申请", body)))
}

fn load(state: &AppState, no: &str) -> Result<Application, Error> {
    applications::get(state, no)?.ok_or(Error::NotFound)
}

/// `GET /review/{no}`.
pub async fn detail(State(state): State<AppState>, ReviewerUser(u): ReviewerUser, Path(no): Path<String>) -> WebResult {
    let a = load(&state, &no)?;
    let registered = crate::hospitals::get(&state, &a.uscc)?.is_some();
    let account_active = accounts::get(&state, &a.uscc)?.is_some_and(|x| x.active);
    let body = html! {
        div.crumb { a href="/review" { "待审核申请" } " › " (a.no) }
        div.card {
            h2 { "注册申请 " (a.no) " " span class={ "tag " (a.status.tag()) } { (a.status.zh()) } }
            div.grid2 {
                table.t.kv {
                    tr { th { "医疗机构名称" } td { (a.name) } }
                    tr { th { "统一社会信用代码" } td.code { (a.uscc) " "
                        @if is_valid_uscc(&a.uscc) { span.tag.ok { "校验位正确" } } @else { span.tag.err { "校验位错误" } } } }
                    tr { th { "执业许可证登记号" } td.code { (a.licence_no) } }
                    tr { th { "医院级别" } td { (if a.level == 3 { "三级" } else { "二级" }) } }
                    tr { th { "所在地区" } td { (province(&a.region)) " (" (a.region) ")" } }
                    tr { th { "提交时间" } td { (cst(a.submitted)) } }
                }
                table.t.kv {
                    tr { th { "联系人" } td { (a.contact_name) } }
                    tr { th { "电子邮箱" } td { (a.email) } }
                    tr { th { "联系电话" } td { (a.phone) } }
                    tr { th { "系统中已注册" } td { @if registered { span.tag.warn { "是" } } @else { "否" } } }
                    @if let Some(r) = &a.reviewer { tr { th { "审核人" } td { (r) " · " (a.decided.map(cst).unwrap_or_default()) } } }
                    @if let Some(r) = &a.reason { tr { th { "审核意见" } td { (r) } } }
                }
            }
            h3 { "附件" }
            table.t {
                tr { th { "附件" } th { "类型" } th.num { "大小" } th { "SM3 摘要" } th { "查看" } }
                @for s in &a.scans {
                    tr {
                        td { (SLOTS.iter().find(|(k, _)| *k == s.slot).map_or("", |(_, l)| *l)) }
                        td { (s.kind.ext().to_uppercase()) }
                        td.num { (format!("{:.1} KB", s.size as f64 / 1024.0)) }
                        td.code { (s.sm3.get(..16).unwrap_or_default()) "…" }
                        td { @if s.review_copy {
                                a.btn.small.light href={ "/review/" (a.no) "/scan/" (s.slot) } target="_blank" { "打开" }
                            } @else { span.hint { "审核结束, 审核副本已删除 (原件加密存档)" } } }
                    }
                }
            }
            @if a.status == Status::Pending {
                div.grid2 {
                    div {
                        h3 { "批准" }
                        p.hint { "批准后系统创建医疗机构及账户 (用户名为统一社会信用代码), 并向联系人邮箱发送 72 小时内有效的激活链接。" }
                        form method="post" action={ "/review/" (a.no) "/approve" } data-confirm="确认批准该机构的注册申请?" {
                            (csrf_field(&u.csrf))
                            button.btn type="submit" { "批准申请" }
                        }
                    }
                    div {
                        h3 { "不予通过" }
                        form.f method="post" action={ "/review/" (a.no) "/reject" } {
                            (csrf_field(&u.csrf))
                            textarea name="reason" required maxlength="500" placeholder="审核意见 (将通过邮件告知申请单位), 如: 申请表未加盖公章" {}
                            p { button.btn.danger type="submit" { "不予通过" } }
                        }
                    }
                }
            }
            @if a.status == Status::Approved && !account_active {
                h3 { "激活" }
                @if !a.mailed { (msg("warn", "激活邮件未能发送, 请重新发送。")) }
                form method="post" action={ "/review/" (a.no) "/resend" } {
                    (csrf_field(&u.csrf))
                    button.btn.light type="submit" { "重新发送激活邮件" }
                    span.hint { " 旧链接随即失效" }
                }
            }
        }
    };
    Ok(html_ok(page(&u.frame("/review"), "审核申请", body)))
}

/// `GET /review/{no}/scan/{slot}`.
pub async fn scan(
    State(state): State<AppState>,
    ReviewerUser(u): ReviewerUser,
    Path((no, slot)): Path<(String, String)>,
) -> WebResult {
    let a = load(&state, &no)?;
    let s = a.scans.iter().find(|s| s.slot == slot).ok_or(Error::NotFound)?;
    let key = super::web_key(&state)?;
    let bytes = applications::read_scan(&state, &key, &no, &slot)?.ok_or(Error::NotFound)?;
    state
        .audit("web.scan_viewed", serde_json::json!({"application": no, "slot": slot, "account": u.username()}))
        .await?;
    let disp = match s.kind {
        applications::FileKind::Pdf => "attachment",
        _ => "inline",
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(s.kind.mime()));
    if let Ok(v) = HeaderValue::from_str(&format!("{disp}; filename=\"{no}-{slot}.{}\"", s.kind.ext())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("content-security-policy", HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"));
    Ok(r)
}

async fn send_activation(state: &AppState, a: &Application) -> Result<bool, Error> {
    let s = super::settings(state)?;
    let token = activation::issue(state, &a.uscc).await?;
    let link = format!("{}/activate/{}", s.public_url, token.as_str());
    let (subj, body) = mail_text::approved(&a.no, &a.name, &a.uscc, &link, s.activation_secs / 3600);
    let sent = match crate::mail::Mailer::from_config(&state.config)?.send(&a.email, &subj, &body).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "activation mail not sent");
            false
        }
    };
    let mut cur = load(state, &a.no)?;
    cur.mailed = sent;
    applications::put(state, &cur)?;
    Ok(sent)
}

/// `POST /review/{no}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    ReviewerUser(u): ReviewerUser,
    Path(no): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    let reviewer = u.username().to_owned();
    let mut a = applications::decide(&state, &no, Status::Approved, &reviewer, None)?;
    if let Err(e) = crate::hospitals::create_approved(&state, &a.uscc, &a.name, &a.region, a.level).await {
        // back to pending: nothing was created
        let t = super::store::tree(&state, super::store::APPLICATIONS)?;
        super::store::update(&t, no.as_bytes(), |cur: Option<Application>| {
            Ok((
                cur.map(|mut x| {
                    x.status = Status::Pending;
                    x.decided = None;
                    x.reviewer = None;
                    x
                }),
                (),
            ))
        })?;
        return Err(e.into());
    }
    let user = User::new(&a.uscc, Role::Hospital { code: a.uscc.clone() }, &a.name, Some(a.email.clone()));
    if accounts::create(&state, &user).is_err() {
        let (email, name) = (a.email.clone(), a.name.clone());
        accounts::modify(&state, &a.uscc, |x| {
            x.email = Some(email.clone());
            x.display = name.clone();
            Ok(())
        })?;
    }
    applications::drop_review_copies(&state, &mut a)?;
    applications::put(&state, &a)?;
    applications::release_open(&state, &a.uscc)?;
    state
        .audit("web.review.approved", serde_json::json!({"application": no, "hospital": a.uscc, "account": reviewer}))
        .await?;
    state.store.durable().await?;
    send_activation(&state, &a).await?;
    Ok(Redirect::to(&format!("/review/{no}")).into_response())
}

#[derive(Deserialize)]
pub struct RejectForm {
    reason: String,
}

/// `POST /review/{no}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    ReviewerUser(u): ReviewerUser,
    Path(no): Path<String>,
    CsrfForm(f): CsrfForm<RejectForm>,
) -> WebResult {
    let reason = f.reason.trim().to_owned();
    if reason.chars().count() < 2 || reason.chars().count() > 500 {
        return Err(Error::bad_request("请填写审核意见 (2–500 字) (a reason is required)").into());
    }
    let reviewer = u.username().to_owned();
    let mut a = applications::decide(&state, &no, Status::Rejected, &reviewer, Some(reason.clone()))?;
    applications::drop_review_copies(&state, &mut a)?;
    applications::put(&state, &a)?;
    applications::release_open(&state, &a.uscc)?;
    state
        .audit("web.review.rejected", serde_json::json!({"application": no, "hospital": a.uscc, "account": reviewer}))
        .await?;
    state.store.durable().await?;
    let s = super::settings(&state)?;
    let (subj, body) = mail_text::rejected(&a.no, &a.name, &reason, &format!("{}/apply", s.public_url));
    let sent = crate::mail::Mailer::from_config(&state.config)?.send(&a.email, &subj, &body).await.is_ok();
    a.mailed = sent;
    applications::put(&state, &a)?;
    Ok(Redirect::to(&format!("/review/{no}")).into_response())
}

/// `POST /review/{no}/resend`.
pub async fn resend(
    State(state): State<AppState>,
    ReviewerUser(u): ReviewerUser,
    Path(no): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> WebResult {
    let a = load(&state, &no)?;
    let active = accounts::get(&state, &a.uscc)?.is_some_and(|x| x.active);
    if a.status != Status::Approved || active {
        return Err(Error::Conflict("该申请无需重新发送激活邮件 (nothing to resend)".into()).into());
    }
    send_activation(&state, &a).await?;
    state.audit("web.activation_resent", serde_json::json!({"application": no, "account": u.username()})).await?;
    Ok(Redirect::to(&format!("/review/{no}")).into_response())
}
