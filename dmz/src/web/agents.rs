//! 前置机管理: the hospital's agents — a one-time enrolment code for
//! `flumon-agent enroll`, the API token (reissued, shown once), and revoking
//! every agent client certificate. The hospital is the session's.
//!
//! ```text
//!  GET  /hospital/agents               hospital, token state, certificates, pending code
//!  POST /hospital/agents/enrol-code    hospitals::new_enrol_code   ─▶ page showing the code once (24 h)
//!  POST /hospital/agents/token         hospitals::reissue_token    ─▶ page showing the token once
//!  POST /hospital/agents/revoke        hospitals::revoke_agents    ─▶ back to the page
//! ```
//! Secrets are shown once on a `no-store` page and never stored readable.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};

use super::auth::Empty;
use super::extract::{CsrfForm, HospitalUser, WebResult};
use super::layout::{csrf_field, html_ok, msg, page};
use super::registration::province;
use crate::error::Error;
use crate::hospitals::{self, now_cst};
use crate::state::AppState;

fn agents_page(state: &AppState, h: &HospitalUser, shown: Option<Markup>) -> WebResult {
    let hosp = hospitals::get(state, &h.code)?.ok_or(Error::NotFound)?;
    let now = now_cst();
    let body = html! {
        @if let Some(s) = shown { (s) }
        div.card {
            h2 { "前置机管理" span.en { "Agents" } }
            table.t.kv {
                tr { th { "医疗机构" } td { (hosp.name) } }
                tr { th { "统一社会信用代码" } td.code { (hosp.code) } }
                tr { th { "级别 / 地区" } td { (if hosp.level == 3 { "三级" } else { "二级" }) " · " (province(&hosp.region)) " (" (hosp.region) ")" } }
                tr { th { "API 令牌" } td { @if hosp.token_sm3.is_some() { span.tag.ok { "已签发" } } @else { span.tag.warn { "未签发" } } } }
                tr { th { "注册码" } td { @match &hosp.enrol {
                    Some(e) if e.expires > now => { span.tag.info { "待使用" } " 有效期至 " (e.expires.format("%Y-%m-%d %H:%M")) }
                    _ => { "无" }
                } } }
            }
        }
        div.card {
            h3 { "前置机客户端证书" }
            @if hosp.certs.is_empty() {
                div.empty { "尚无证书。生成注册码后, 在前置机上运行 flumon-agent enroll --dmz <DMZ 地址> --uscc <本院代码> --code <注册码> --ca ca.pem --config-dir <配置目录>。" }
            } @else {
                table.t {
                    tr { th { "证书指纹 (SM3)" } th { "签发时间" } th { "方式" } th { "状态" } }
                    @for c in &hosp.certs {
                        tr {
                            td.code { (c.fingerprint.get(..24).unwrap_or(&c.fingerprint)) "…" }
                            td { (c.issued.format("%Y-%m-%d %H:%M")) }
                            td { (if c.via == "enrol" { "注册码" } else { "管理员" }) }
                            td { @if c.revoked { span.tag.err { "已吊销" } } @else { span.tag.ok { "有效" } } }
                        }
                    }
                }
            }
        }
        div.grid3 {
            div.card {
                h3 { "生成注册码" }
                p.hint { "一次性注册码, 24 小时内有效, 用于前置机申请客户端证书。新注册码使旧注册码失效。" }
                form method="post" action="/hospital/agents/enrol-code" {
                    (csrf_field(&h.user.csrf))
                    button.btn type="submit" { "生成注册码" }
                }
            }
            div.card {
                h3 { "重新签发 API 令牌" }
                p.hint { "新令牌只显示一次; 旧令牌立即失效, 请同步更新前置机配置。" }
                form method="post" action="/hospital/agents/token" data-confirm="重新签发后旧令牌立即失效, 确认继续?" {
                    (csrf_field(&h.user.csrf))
                    button.btn.light type="submit" { "签发新令牌" }
                }
            }
            div.card {
                h3 { "吊销前置机证书" }
                p.hint { "前置机丢失或证书泄露时使用: 吊销本院全部客户端证书, 之后需重新注册。" }
                form method="post" action="/hospital/agents/revoke" data-confirm="确认吊销本院全部前置机证书?" {
                    (csrf_field(&h.user.csrf))
                    button.btn.danger type="submit" { "吊销全部证书" }
                }
            }
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/agents"), "前置机管理", body)))
}

/// `GET /hospital/agents`.
pub async fn page_handler(State(state): State<AppState>, h: HospitalUser) -> WebResult {
    agents_page(&state, &h, None)
}

/// The enrolment command with the flags `flumon-agent enroll` takes (agent/src/main.rs).
pub fn enroll_command(public_url: &str, uscc: &str, code: &str) -> String {
    format!(
        "flumon-agent enroll --dmz {public_url} --uscc {uscc} --code {code} --ca ca.pem --config-dir /etc/flumon-agent"
    )
}

fn once(title: &str, value: &str, note: &str) -> Markup {
    html! {
        div.card {
            h3 { (title) }
            (msg("warn", "请立即复制保存: 此内容只显示这一次, 系统不保存明文 (shown once)"))
            p.once { (value) }
            p.hint { (note) }
        }
    }
}

/// `POST /hospital/agents/enrol-code`.
pub async fn enrol_code(State(state): State<AppState>, h: HospitalUser, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let code = zeroize::Zeroizing::new(hospitals::new_enrol_code(&state, &h.code).await?);
    state.audit("web.agent_enrol_code", serde_json::json!({"account": h.user.username(), "hospital": h.code})).await?;
    let url = super::settings(&state)?.public_url;
    let cmd = enroll_command(&url, &h.code, &code);
    let shown = once("注册码", &code, &format!("在前置机上运行 (24 小时内有效, 只能使用一次): {cmd}"));
    agents_page(&state, &h, Some(shown))
}

/// `POST /hospital/agents/token`.
pub async fn token(State(state): State<AppState>, h: HospitalUser, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    let tok = zeroize::Zeroizing::new(hospitals::reissue_token(&state, &h.code).await?);
    state.audit("web.agent_token", serde_json::json!({"account": h.user.username(), "hospital": h.code})).await?;
    let shown = once("新的 API 令牌", &tok, "写入前置机配置的 token 项; 旧令牌已失效。");
    agents_page(&state, &h, Some(shown))
}

/// `POST /hospital/agents/revoke`.
pub async fn revoke(State(state): State<AppState>, h: HospitalUser, CsrfForm(_): CsrfForm<Empty>) -> WebResult {
    hospitals::revoke_agents(&state, &h.code).await?;
    state.audit("web.agent_revoke", serde_json::json!({"account": h.user.username(), "hospital": h.code})).await?;
    Ok(Redirect::to("/hospital/agents").into_response())
}
