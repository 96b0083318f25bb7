//! Hospital pages: upload a file, the receipt with its errors, the errors as
//! CSV, the history of receipts. Every handler takes the hospital from the
//! session (`HospitalUser::code`), never from the request: a receipt id of
//! another hospital is simply not found.
//!
//! ```text
//!  GET  /hospital/upload            type + file form, the latest receipts
//!  POST /hospital/upload            multipart: csrf, type, file ─▶ api::stream::receive (≤ 4 MiB in memory,
//!                                   else streamed into the raw archive) ─▶ pipeline (session's code)
//!                                   ─▶ 303 /hospital/receipts/{id}      (over the size limit: 413 receipt)
//!  GET  /hospital/receipts?month=   the month's receipts (newest first)
//!  GET  /hospital/receipts/{id}     counts + error table (row, field, code, message)
//!  GET  /hospital/receipts/{id}/errors.csv   UTF-8 with BOM (Excel), same columns
//! ```

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use maud::{Markup, html};
use serde::Deserialize;

use flumon_shared::model::{RecordType, type_def};

use super::extract::{HospitalUser, Web, WebResult, check_token};
use super::layout::{csrf_field, html_ok, msg, page, row};
use crate::api::stream::Received;
use crate::error::Error;
use crate::hospitals::{ReceiptRecord, now_cst};
use crate::pipeline::Via;
use crate::state::AppState;
use crate::store::trees;

/// Largest web upload request (the file limit is `limits.upload_max_bytes`).
pub const UPLOAD_BODY_MAX: usize = (64 << 20) + (1 << 20);
/// Errors shown on the receipt page (the CSV has all of them).
const ERRORS_SHOWN: usize = 1000;

/// Chinese name of a type name as stored in receipts.
pub fn type_zh(ty: &str) -> &'static str {
    RecordType::parse(ty).map_or("死亡病历扫描件", RecordType::zh)
}

/// "ZDBM1 诊断编码1" for a field code of the type, or the code alone.
fn field_label(ty: &str, code: &str) -> String {
    let zh = RecordType::parse(ty)
        .map(type_def)
        .and_then(|td| td.index(code).and_then(|i| td.field(i)).map(|f| f.zh.clone()));
    match zh {
        Some(z) if !code.is_empty() => format!("{code} {z}"),
        _ => code.to_owned(),
    }
}

fn status_tag(r: &ReceiptRecord) -> Markup {
    let (kind, text) = match (r.status, r.rejected) {
        (200, 0) => ("ok", "全部接收"),
        (200, _) => ("warn", "部分拒收"),
        (413, _) => ("err", "文件过大"),
        _ => ("err", "整个文件被拒"),
    };
    html! { span class={ "tag " (kind) } { (text) } }
}

fn receipts_table(list: &[ReceiptRecord]) -> Markup {
    html! {
        @if list.is_empty() {
            div.empty { "暂无上报记录" }
        } @else {
            table.t {
                tr { th { "上报时间" } th { "数据类型" } th { "途径" } th.num { "收到" } th.num { "接收" } th.num { "拒收" } th { "结果" } th { "回执" } }
                @for r in list {
                    tr {
                        td { (r.time.format("%Y-%m-%d %H:%M:%S")) }
                        td { (type_zh(&r.ty)) }
                        td { (match r.via.as_str() { "web" => "网页", "api" => "前置机", _ => "—" }) }
                        td.num { (r.received) } td.num { (r.accepted) } td.num { (r.rejected) }
                        td { (status_tag(r)) }
                        td { a href={ "/hospital/receipts/" (r.receipt_id) } { (r.receipt_id) } }
                    }
                }
            }
        }
    }
}

/// The hospital's receipts between two times, newest first.
fn receipts_between(
    state: &AppState,
    code: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<ReceiptRecord>, Error> {
    let mut v: Vec<_> = crate::hospitals::receipts(state, code, from)?.into_iter().filter(|r| r.time < to).collect();
    v.reverse();
    Ok(v)
}

/// `GET /hospital/upload`.
pub async fn upload_form(State(state): State<AppState>, h: HospitalUser) -> WebResult {
    let now = now_cst();
    let recent: Vec<_> =
        receipts_between(&state, &h.code, now - chrono::Duration::days(7), now + chrono::Duration::days(1))?
            .into_iter()
            .take(8)
            .collect();
    let max_mb = state.config.limits.upload_max_bytes >> 20;
    let body = html! {
        div.card {
            h2 { "上传数据" span.en { "Upload a file" } }
            p { "选择数据类型和文件后上传, 系统即时校验并给出回执。支持 CSV (UTF-8 或 GB18030)、XLSX、JSON; 单个文件不超过 "
                (max_mb) " MB、20 万行。字段和错误代码见《接口标准》。" }
            form.f method="post" action="/hospital/upload" enctype="multipart/form-data" data-busy="正在上传和校验…" {
                (csrf_field(&h.user.csrf))
                (row("数据类型", true, html! {
                    select name="type" required {
                        @for t in RecordType::ALL { option value=(t.as_str()) { (t.zh()) " (" (t.as_str()) ")" } }
                    }
                }, None, None))
                (row("数据文件", true, html! { input type="file" name="file" required accept=".csv,.xlsx,.json"; }, None, None))
                div.actions { button.btn type="submit" { "上传并校验" } }
            }
        }
        div.card {
            h3 { "最近 7 天的上报" }
            (receipts_table(&recent))
            p { a href="/hospital/receipts" { "全部上报历史 ›" } }
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/upload"), "上传数据", body)))
}

fn content_type_of(part_type: Option<&str>, file_name: Option<&str>) -> Option<String> {
    let by_name = file_name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
    match by_name.as_deref() {
        Some("csv") => Some("text/csv".to_owned()),
        Some("xlsx") => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned()),
        Some("json") => Some("application/json".to_owned()),
        _ => part_type.filter(|t| !t.is_empty()).map(str::to_owned),
    }
}

/// `POST /hospital/upload`.
pub async fn upload(State(state): State<AppState>, web: Web, h: HospitalUser, mut mp: Multipart) -> WebResult {
    let bad = || Error::bad_request("表单格式错误 (malformed form)");
    let tok = match mp.next_field().await.map_err(|_| bad())? {
        Some(f) if f.name() == Some("csrf") => Some(f.text().await.map_err(|_| bad())?),
        _ => None,
    };
    if let Some(r) = check_token(&web, tok.as_deref()) {
        return Ok(r);
    }
    state.limits.token(&format!("web:{}", h.user.username()))?;
    let mut ty = None;
    let max = state.config.limits.upload_max_bytes;
    while let Some(mut field) = mp.next_field().await.map_err(|_| bad())? {
        match field.name() {
            Some("type") => {
                let t = field.text().await.map_err(|_| bad())?;
                ty = Some(
                    RecordType::parse(t.trim()).ok_or_else(|| Error::bad_request("未知的数据类型 (unknown type)"))?,
                );
            }
            Some("file") => {
                let ty = ty.ok_or_else(bad)?;
                let ct = content_type_of(field.content_type(), field.file_name());
                // as for agents (api/stream.rs): up to 4 MiB in memory, larger files streamed
                // into the raw archive and read back in chunks; past the limit, the 413 receipt
                let _body_slot =
                    state.body_slots.acquire().await.map_err(|_| Error::Unavailable("shutting down".into()))?;
                let got = crate::api::stream::receive(&state, &h.code, ty, &mut field, ct.as_deref(), None, max as u64)
                    .await?;
                let (_, receipt) = match got {
                    Received::TooLarge => crate::pipeline::too_large(&state, &h.code, ty).await?,
                    Received::Small(bytes) => {
                        crate::pipeline::process_upload(&state, &h.code, ty, bytes, ct.as_deref()).await?
                    }
                    Received::Spooled(sp) => {
                        crate::pipeline::process_spooled(&state, &h.code, ty, sp, Via::Web).await?
                    }
                };
                state
                    .audit(
                        "web.upload",
                        serde_json::json!({"account": h.user.username(), "hospital": h.code, "receipt_id": receipt.receipt_id}),
                    )
                    .await?;
                return Ok(Redirect::to(&format!("/hospital/receipts/{}", receipt.receipt_id)).into_response());
            }
            _ => return Err(bad().into()),
        }
    }
    Err(Error::bad_request("请选择要上传的文件 (no file)").into())
}

#[derive(Deserialize, Default)]
pub struct MonthQuery {
    pub month: Option<String>,
}

/// The first day of `YYYY-MM` (or of this month), and of the next month.
pub fn month_range(q: Option<&str>) -> (NaiveDate, NaiveDate) {
    let today = now_cst().date();
    let first = q
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .filter(|d| (2000..=2100).contains(&d.year()))
        .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    (first, next)
}

/// `GET /hospital/receipts?month=YYYY-MM`.
pub async fn history(State(state): State<AppState>, h: HospitalUser, Query(q): Query<MonthQuery>) -> WebResult {
    let (first, next) = month_range(q.month.as_deref());
    let list = receipts_between(
        &state,
        &h.code,
        first.and_time(chrono::NaiveTime::MIN),
        next.and_time(chrono::NaiveTime::MIN),
    )?;
    let prev = first.checked_sub_months(chrono::Months::new(1)).unwrap_or(first);
    let (sent, acc, rej) = list.iter().fold((0, 0, 0), |a, r| (a.0 + r.received, a.1 + r.accepted, a.2 + r.rejected));
    let body = html! {
        div.card {
            h2 { "上报历史" span.en { "Receipts" } }
            div.calhead {
                a.btn.light.small href={ "/hospital/receipts?month=" (prev.format("%Y-%m")) } { "‹ 上月" }
                span.month { (first.format("%Y 年 %m 月")) }
                a.btn.light.small href={ "/hospital/receipts?month=" (next.format("%Y-%m")) } { "下月 ›" }
                a href={ "/hospital/calendar?month=" (first.format("%Y-%m")) } { "查看日历" }
            }
            div.figs {
                div.fig { b { (list.len()) } span { "次上报" } }
                div.fig { b { (sent) } span { "条记录收到" } }
                div.fig.ok { b { (acc) } span { "条接收" } }
                div.fig.err { b { (rej) } span { "条拒收" } }
            }
            (receipts_table(&list))
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/receipts"), "上报历史", body)))
}

/// The receipt `id` of hospital `code` (looked up under that hospital only).
fn find_receipt(state: &AppState, code: &str, id: &str) -> Result<ReceiptRecord, Error> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(Error::NotFound);
    }
    let mut prefix = code.as_bytes().to_vec();
    prefix.push(0x1F);
    let mut suffix = vec![0x1F];
    suffix.extend_from_slice(id.as_bytes());
    for kv in state.store.tree(trees::RECEIPTS)?.scan_prefix(&prefix) {
        let (k, v) = kv?;
        if k.ends_with(&suffix) {
            return serde_json::from_slice(&v).map_err(crate::error::codec);
        }
    }
    Err(Error::NotFound)
}

/// `GET /hospital/receipts/{id}`.
pub async fn receipt(State(state): State<AppState>, h: HospitalUser, Path(id): Path<String>) -> WebResult {
    let r = find_receipt(&state, &h.code, &id)?;
    let body = html! {
        div.crumb { a href="/hospital/receipts" { "上报历史" } " › 回执 " (r.receipt_id) }
        div.card {
            h2 { "上报回执" span.en { "Receipt" } }
            table.t.kv {
                tr { th { "回执编号" } td.code { (r.receipt_id) } }
                tr { th { "数据类型" } td { (type_zh(&r.ty)) " (" (r.ty) ")" } }
                tr { th { "上报时间" } td { (r.time.format("%Y-%m-%d %H:%M:%S")) } }
                tr { th { "结果" } td { (status_tag(&r)) } }
            }
            div.figs {
                div.fig { b { (r.received) } span { "收到 (received)" } }
                div.fig.ok { b { (r.accepted) } span { "接收 (accepted)" } }
                div.fig.err { b { (r.rejected) } span { "拒收 (rejected)" } }
            }
            @if r.errors.is_empty() {
                (msg("ok", "没有错误, 全部记录已接收。"))
            } @else {
                div.calhead {
                    h3 { "错误清单 (" (r.errors.len()) " 条)" }
                    a.btn.small href={ "/hospital/receipts/" (r.receipt_id) "/errors.csv" } { "下载错误清单 CSV" }
                }
                @if r.errors.len() > ERRORS_SHOWN { (msg("warn", &format!("仅显示前 {ERRORS_SHOWN} 条, 完整清单请下载 CSV。"))) }
                table.t {
                    tr { th.num { "行号" } th { "字段" } th { "错误代码" } th { "说明" } }
                    @for e in r.errors.iter().take(ERRORS_SHOWN) {
                        tr {
                            td.num { @if e.row == 0 { "整个文件" } @else { (e.row) } }
                            td { (field_label(&r.ty, &e.field)) }
                            td.code { (e.code) }
                            td { (e.message) }
                        }
                    }
                }
                p.hint { "行号从第一条数据行算起 (表头不计)。有错误的行整行拒收, 修改后重新上传即可; 已接收的行重复上传不会重复计数。" }
            }
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/receipts"), "上报回执", body)))
}

/// `GET /hospital/receipts/{id}/errors.csv`.
pub async fn errors_csv(State(state): State<AppState>, h: HospitalUser, Path(id): Path<String>) -> WebResult {
    let r = find_receipt(&state, &h.code, &id)?;
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    let io = |e: csv::Error| Error::Internal(format!("csv: {e}"));
    w.write_record(["行号 (row)", "字段 (field)", "字段名称", "错误代码 (code)", "说明 (message)"]).map_err(io)?;
    for e in &r.errors {
        let zh = field_label(&r.ty, &e.field);
        let zh = zh.strip_prefix(e.field.as_str()).unwrap_or_default().trim();
        w.write_record([e.row.to_string().as_str(), &e.field, zh, &e.code, &e.message]).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))?;
    let mut resp = bytes.into_response();
    let hd = resp.headers_mut();
    hd.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"errors-{}.csv\"", r.receipt_id)) {
        hd.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
