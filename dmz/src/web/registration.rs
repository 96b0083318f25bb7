//! Public pages: the home page, the registration form (医疗机构注册申请), the
//! status lookup, and the printable application form template.
//!
//! ```text
//!  GET  /               what this is, links
//!  GET  /apply          form: name, 统一社会信用代码, 执业许可证登记号, level, region, contact, two scans
//!  POST /apply          multipart: csrf first ─▶ fields checked ─▶ one open application per USCC
//!                       ─▶ scans (PDF/JPEG/PNG by magic, ≤ 10 MiB): vault archive + reviewer copy
//!                       ─▶ Application (pending) ─▶ audit web.application ─▶ receipt page with the number
//!  GET|POST /apply/status   number + USCC ─▶ status (and the reason of a rejection)
//!  GET  /apply/form     printable 注册申请表 (print, stamp, scan, upload)
//! ```

use std::collections::BTreeMap;

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use flumon_shared::validate::ids::{PROVINCES, is_region_code, is_valid_uscc};

use super::applications::{self, Application, SCAN_MAX, SLOTS, Status};
use super::extract::{CsrfForm, Web, WebError, WebResult, check_token};
use super::layout::{csrf_field, html_ok, msg, page, row};
use crate::error::Error;
use crate::state::AppState;

/// `GET /`.
pub async fn home(web: Web) -> Response {
    let body = html! {
        div.hero {
            h2 { "流感医疗服务监测系统 · 数据上报" }
            p { "本系统供二级及以上医疗机构每日报送流感病例、检验、用药、死亡及抗流感药物库存等数据, 供国家、省、市卫生健康行政部门开展流感医疗服务监测。"
                "上报数据经校验后加密存档, 去标识化后方可进入内网分析。" }
            p.en { "Hospitals report influenza cases daily; uploads are validated, archived encrypted and de-identified before analysis." }
        }
        div.grid3 {
            div.card {
                h3 { "新机构注册" }
                ol.steps {
                    li { a href="/apply/form" { "下载并填写注册申请表" } ", 加盖单位公章后扫描" }
                    li { a href="/apply" { "在线提交注册申请" } ", 上传申请表与执业许可证扫描件" }
                    li { "审核通过后, 联系人邮箱将收到激活链接 (72 小时内有效)" }
                }
                p { a.btn href="/apply" { "提交注册申请" } " " a.btn.light href="/apply/status" { "查询进度" } }
            }
            div.card {
                h3 { "已注册机构" }
                p { "使用用户名、密码和动态验证码 (TOTP) 登录后, 可网页上传数据、查看回执与错误清单、上报历史与日历, 管理前置机。" }
                p { a.btn href="/login" { "登录" } }
            }
            div.card {
                h3 { "前置机接口" }
                p { "前置机 (flumon-agent) 通过 HTTPS 接口 " code { "POST /api/v1/upload/{type}" } " 每日自动上报近 7 日数据, 使用本院客户端证书和 API 令牌双重认证。" }
                p.hint { "注册码和 API 令牌在登录后的“前置机管理”页面生成。" }
            }
        }
        (msg("warn", "安全提示: 本系统不会通过电话或短信索要密码或动态验证码; 连续 5 次登录失败将锁定账户 30 分钟。"))
    };
    html_ok(page(&web.frame("/"), "首页", body))
}

/// The fields of the registration form.
#[derive(Clone, Debug, Default)]
pub struct ApplyFields {
    pub name: String,
    pub uscc: String,
    pub licence_no: String,
    pub level: String,
    pub region: String,
    pub contact_name: String,
    pub email: String,
    pub phone: String,
}

type Errs = BTreeMap<&'static str, String>;

fn text_ok(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n) && !s.chars().any(char::is_control)
}

/// Checks the text fields; returns the errors by field.
pub fn check_fields(f: &ApplyFields) -> Errs {
    let mut e = Errs::new();
    if !text_ok(&f.name, 2, 100) {
        e.insert("name", "请填写医疗机构名称 (2–100 字)".into());
    }
    if !is_valid_uscc(&f.uscc) {
        e.insert("uscc", "统一社会信用代码应为 18 位, 且校验位正确 (GB 32100)".into());
    }
    let lic_ok =
        (5..=40).contains(&f.licence_no.len()) && f.licence_no.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !lic_ok {
        e.insert("licence_no", "执业许可证登记号应为 5–40 位字母、数字".into());
    }
    if !matches!(f.level.as_str(), "2" | "3") {
        e.insert("level", "请选择医院级别".into());
    }
    if !is_region_code(&f.region) {
        e.insert("region", "行政区划代码应为 6 位 GB/T 2260 代码, 如 110105".into());
    }
    if !text_ok(&f.contact_name, 2, 30) {
        e.insert("contact_name", "请填写联系人姓名".into());
    }
    let email_ok = f.email.len() <= 100
        && f.email
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !f.email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if !email_ok {
        e.insert("email", "请填写有效的电子邮箱, 激活链接将发送至该邮箱".into());
    }
    let digits = f.phone.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=20).contains(&digits) || !f.phone.bytes().all(|b| b.is_ascii_digit() || b"-+ ()".contains(&b)) {
        e.insert("phone", "请填写有效的联系电话".into());
    }
    e
}

fn form_page(web: &Web, f: &ApplyFields, errs: &Errs, top: Option<&str>) -> Response {
    let err = |k: &str| errs.get(k).map(String::as_str);
    let body = html! {
        div.card {
            h2 { "医疗机构注册申请" span.en { "Hospital registration" } }
            p { "请先 " a href="/apply/form" target="_blank" { "下载注册申请表" } ", 填写并加盖单位公章后扫描, 与《医疗机构执业许可证》扫描件一并上传。带 * 为必填项。" }
            @if let Some(t) = top { (msg("err", t)) }
            @if !errs.is_empty() { (msg("err", "请修改下列标红的内容; 出于安全考虑, 文件需重新选择。")) }
            form.f method="post" action="/apply" enctype="multipart/form-data" data-busy="正在提交…" {
                (csrf_field(&web.csrf))
                h3 { "机构信息" }
                (row("医疗机构名称", true, html! { input type="text" name="name" value=(f.name) maxlength="100" required; }, None, err("name")))
                (row("统一社会信用代码", true, html! { input type="text" name="uscc" value=(f.uscc) maxlength="18" required; },
                    Some("18 位, 末位为校验码"), err("uscc")))
                (row("执业许可证登记号", true, html! { input type="text" name="licence_no" value=(f.licence_no) maxlength="40" required; }, None, err("licence_no")))
                (row("医院级别", true, html! {
                    select name="level" required {
                        option value="" { "请选择" }
                        option value="3" selected[f.level == "3"] { "三级" }
                        option value="2" selected[f.level == "2"] { "二级" }
                    }
                }, None, err("level")))
                (row("所在地区代码", true, html! { input type="text" name="region" value=(f.region) maxlength="6" inputmode="numeric" required; },
                    Some("6 位行政区划代码 (GB/T 2260), 如 110105 北京市朝阳区"), err("region")))
                h3 { "联系人" }
                (row("联系人姓名", true, html! { input type="text" name="contact_name" value=(f.contact_name) maxlength="30" required; }, None, err("contact_name")))
                (row("电子邮箱", true, html! { input type="email" name="email" value=(f.email) maxlength="100" required; },
                    Some("审核结果和账户激活链接将发送至此邮箱"), err("email")))
                (row("联系电话", true, html! { input type="tel" name="phone" value=(f.phone) maxlength="20" required; }, None, err("phone")))
                h3 { "附件 (PDF、JPEG 或 PNG, 每个不超过 10 MB)" }
                @for (slot, label) in SLOTS {
                    (row(label, true, html! { input type="file" name=(slot) accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png" required; },
                        None, err(slot)))
                }
                div.actions { button.btn type="submit" { "提交申请" } a.btn.light href="/" { "取消" } }
            }
        }
    };
    html_ok(page(&web.frame("/apply"), "医疗机构注册申请", body))
}

/// `GET /apply`.
pub async fn form(web: Web) -> Response {
    form_page(&web, &ApplyFields::default(), &Errs::new(), None)
}

/// Reads a multipart field up to `max` bytes; `None` when over.
async fn read_limited(field: &mut axum::extract::multipart::Field<'_>, max: usize) -> Result<Option<Vec<u8>>, Error> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| Error::bad_request("上传中断或格式错误 (bad upload)"))?
    {
        if out.len() + chunk.len() > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// `POST /apply`.
pub async fn submit(State(state): State<AppState>, web: Web, mut mp: Multipart) -> WebResult {
    let bad = || Error::bad_request("表单格式错误 (malformed form)");
    let mut first = true;
    let mut f = ApplyFields::default();
    let mut files: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut errs = Errs::new();
    while let Some(mut field) = mp.next_field().await.map_err(|_| bad())? {
        let name = field.name().unwrap_or_default().to_owned();
        if first {
            first = false;
            let tok = if name == "csrf" {
                read_limited(&mut field, 256).await?.map(|b| String::from_utf8_lossy(&b).into_owned())
            } else {
                None
            };
            if let Some(r) = check_token(&web, tok.as_deref()) {
                return Ok(r);
            }
            continue;
        }
        if let Some((slot, label)) = SLOTS.iter().find(|(s, _)| *s == name) {
            match read_limited(&mut field, SCAN_MAX).await? {
                None => {
                    errs.insert(slot, format!("{label}超过 10 MB"));
                }
                Some(b) if b.is_empty() => {}
                Some(b) if applications::FileKind::sniff(&b).is_none() => {
                    errs.insert(slot, format!("{label}应为 PDF、JPEG 或 PNG 文件"));
                }
                Some(b) => {
                    files.insert(slot, b);
                }
            }
            continue;
        }
        let value = read_limited(&mut field, 1024).await?.ok_or_else(bad)?;
        let value = String::from_utf8(value).map_err(|_| bad())?.trim().to_owned();
        match name.as_str() {
            "name" => f.name = value,
            "uscc" => f.uscc = value.to_ascii_uppercase(),
            "licence_no" => f.licence_no = value,
            "level" => f.level = value,
            "region" => f.region = value,
            "contact_name" => f.contact_name = value,
            "email" => f.email = value,
            "phone" => f.phone = value,
            _ => return Err(bad().into()),
        }
    }
    if first {
        return Ok(check_token(&web, None).unwrap_or_else(|| WebError::from(bad()).into_response()));
    }
    errs.extend(check_fields(&f));
    for (slot, label) in SLOTS {
        if !files.contains_key(slot) && !errs.contains_key(slot) {
            errs.insert(slot, format!("请上传{label}"));
        }
    }
    if !errs.is_empty() {
        return Ok(form_page(&web, &f, &errs, None));
    }
    if crate::hospitals::get(&state, &f.uscc)?.is_some() {
        return Ok(form_page(&web, &f, &errs, Some("该统一社会信用代码的机构已注册, 请直接登录 (already registered)")));
    }
    let no = applications::new_number()?;
    if let Err(open) = applications::claim_open(&state, &f.uscc, &no)? {
        let text = format!("该机构已有一份待审核的申请 ({open}), 请等待审核结果 (an application is pending)");
        return Ok(form_page(&web, &f, &errs, Some(&text)));
    }
    match store_application(&state, &no, &f, &files).await {
        Ok(()) => {}
        Err(e) => {
            applications::release_open(&state, &f.uscc)?;
            return Err(e.into());
        }
    }
    let mail = super::mail_text::received(&no, &f.name);
    if let Err(e) = crate::mail::Mailer::from_config(&state.config)?.send(&f.email, &mail.0, &mail.1).await {
        tracing::warn!(error = %e, "confirmation mail not sent");
    }
    let body = html! {
        div.card {
            h2 { "申请已提交" span.en { "Application received" } }
            (msg("ok", "注册申请已提交, 审核结果将发送至联系人邮箱。"))
            table.t.kv {
                tr { th { "申请编号" } td { b.secret { (no) } } }
                tr { th { "医疗机构名称" } td { (f.name) } }
                tr { th { "状态" } td { span.tag.warn { "待审核" } } }
            }
            p { "请记下申请编号; 可凭编号和统一社会信用代码 " a href="/apply/status" { "查询审核进度" } "。" }
        }
    };
    Ok(html_ok(page(&web.frame("/apply"), "申请已提交", body)))
}

async fn store_application(
    state: &AppState,
    no: &str,
    f: &ApplyFields,
    files: &BTreeMap<&'static str, Vec<u8>>,
) -> Result<(), Error> {
    let key = super::web_key(state)?;
    let mut scans = Vec::new();
    for (slot, _) in SLOTS {
        let bytes = files.get(slot).ok_or_else(|| Error::bad_request("缺少附件"))?;
        scans.push(applications::store_scan(state, &key, no, &f.uscc, slot, bytes).await?);
    }
    let app = Application {
        no: no.to_owned(),
        status: Status::Pending,
        submitted: super::store::now(),
        name: f.name.clone(),
        uscc: f.uscc.clone(),
        licence_no: f.licence_no.clone(),
        level: if f.level == "3" { 3 } else { 2 },
        region: f.region.clone(),
        contact_name: f.contact_name.clone(),
        email: f.email.clone(),
        phone: f.phone.clone(),
        scans,
        decided: None,
        reviewer: None,
        reason: None,
        mailed: false,
    };
    applications::put(state, &app)?;
    state
        .audit(
            "web.application",
            serde_json::json!({"application": no, "hospital": f.uscc, "level": app.level, "region": f.region,
                "scans": app.scans.iter().map(|s| serde_json::json!({"slot": s.slot, "sm3": s.sm3, "archive_item": s.archive_item})).collect::<Vec<_>>()}),
        )
        .await?;
    state.store.durable().await?;
    Ok(())
}

/// The province of a region code.
pub fn province(region: &str) -> &'static str {
    PROVINCES.iter().find(|(p, _)| region.get(..2) == Some(*p)).map_or("", |(_, n)| *n)
}

fn status_page(web: &Web, result: Option<Markup>) -> Response {
    let body = html! {
        div.card {
            h2 { "申请进度查询" span.en { "Application status" } }
            @if let Some(r) = result { (r) }
            form.f method="post" action="/apply/status" autocomplete="off" {
                (csrf_field(&web.csrf))
                (row("申请编号", true, html! { input type="text" name="no" maxlength="17" required placeholder="SQ20250101-XXXXXX"; }, None, None))
                (row("统一社会信用代码", true, html! { input type="text" name="uscc" maxlength="18" required; }, None, None))
                div.actions { button.btn type="submit" { "查询" } }
            }
        }
    };
    html_ok(page(&web.frame("/apply/status"), "申请进度查询", body))
}

/// `GET /apply/status`.
pub async fn status_form(web: Web) -> Response {
    status_page(&web, None)
}

#[derive(Deserialize)]
pub struct StatusForm {
    no: String,
    uscc: String,
}

/// `POST /apply/status`.
pub async fn status(State(state): State<AppState>, web: Web, CsrfForm(f): CsrfForm<StatusForm>) -> WebResult {
    let app = applications::get(&state, f.no.trim())?.filter(|a| a.uscc == f.uscc.trim().to_ascii_uppercase());
    let result = match app {
        None => msg("err", "未找到该申请, 请核对申请编号和统一社会信用代码 (not found)"),
        Some(a) => html! {
            table.t.kv {
                tr { th { "申请编号" } td { (a.no) } }
                tr { th { "医疗机构名称" } td { (a.name) } }
                tr { th { "提交时间" } td { (super::layout::cst(a.submitted)) } }
                tr { th { "状态" } td { span class={ "tag " (a.status.tag()) } { (a.status.zh()) } } }
                @if let Some(r) = &a.reason { tr { th { "审核意见" } td { (r) } } }
            }
            @if a.status == Status::Rejected { p { "可修改后 " a href="/apply" { "重新提交申请" } "。" } }
            @if a.status == Status::Approved { p { "激活链接已发送至联系人邮箱; 激活后即可 " a href="/login" { "登录" } "。" } }
        },
    };
    Ok(status_page(&web, Some(result)))
}

/// `GET /apply/form`: the printable application form.
pub async fn template(web: Web) -> Response {
    let blank = html! { td {} };
    let body = html! {
        div.noprint {
            (msg("ok", "请打印本页 (或另存为 PDF), 填写后加盖单位公章, 扫描为 PDF、JPEG 或 PNG 文件, 在注册申请页面上传。"))
            button.btn type="button" data-print { "打印申请表" } " " a.btn.light href="/apply" { "返回注册申请" }
        }
        div.paper {
            h1 { "流感医疗服务监测系统 医疗机构注册申请表" }
            p.no { "申请编号 (系统生成): ____________________" }
            table {
                tr { th { "医疗机构名称" } td colspan="3" {} }
                tr { th { "统一社会信用代码" } td colspan="3" {} }
                tr { th { "执业许可证登记号" } td colspan="3" {} }
                tr { th { "医院级别" } td { "□ 三级    □ 二级" } th { "行政区划代码" } (blank) }
                tr { th { "机构地址" } td colspan="3" {} }
                tr { th { "数据上报联系人" } (blank) th { "职务 / 科室" } (blank) }
                tr { th { "联系电话" } (blank) th { "电子邮箱" } (blank) }
                tr { th { "前置机部署情况" } td colspan="3" { "□ 已部署    □ 计划部署    □ 仅网页上报" } }
                tr { th { "单位承诺" } td colspan="3" {
                    "本单位承诺: 所填信息真实、准确; 按《流感医疗服务监测接口标准》每日如实报送数据; "
                    "妥善保管系统账户、密码、动态验证码设备、前置机证书及 API 令牌, 不转借他人; "
                    "发现账户或证书泄露立即在系统中吊销并报告。"
                } }
                tr { th { "法定代表人 / 负责人 (签字)" } td { } th { "日期" } td { "    年    月    日" } }
                tr { td.stamp colspan="4" { "(单位公章)" } }
            }
        }
    };
    html_ok(page(&web.frame("/apply/form"), "注册申请表", body))
}
