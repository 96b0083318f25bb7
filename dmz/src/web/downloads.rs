//! 下载中心: what a hospital downloads from the DMZ, each item with a version
//! and a date: the agent program (published by deploy/release-agent.sh with
//! its SM3 digest and an SM2 signature by the release key made at
//! `flumon-dmz init`), the agent guide and the interface standard (docs/*.md
//! embedded at build time, rendered to HTML), the application form template,
//! and the operating guide with screenshots.
//!
//! ```text
//!  data_dir/downloads/releases.json ─▶ [{file, name, version, date, size, sm3}]  (written by the release script)
//!  data_dir/downloads/{file, file.sig, release-sign.pub.pem}  ─▶ GET /hospital/downloads/file/{name}
//!  docs/AGENT.md · INTERFACE.md · HOSPITAL-GUIDE.md (include_str!) ─▶ pulldown-cmark ─▶ /hospital/downloads/doc/{id}
//!  docs/screenshots/dmz-*.png (include_bytes!) ─▶ /hospital/downloads/img/{name}
//! ```
//! Only names listed in the manifest (or the public key) are served: no path
//! from the request reaches the file system.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{PreEscaped, html};
use serde::{Deserialize, Serialize};

use flumon_shared::crypto::sm3;

use super::extract::{HospitalUser, WebResult};
use super::layout::{html_ok, msg, page};
use crate::error::{Error, Result};
use crate::state::AppState;

/// The release signing key written by `flumon-dmz init`, relative to the config folder.
pub const RELEASE_KEY: &str = "keys/release-sign.pem";
/// Its public key, beside it.
pub const RELEASE_PUB: &str = "keys/release-sign.pub.pem";
/// The public key as served, in the downloads folder.
pub const PUB_NAME: &str = "release-sign.pub.pem";
/// The downloads folder under the data folder.
pub const DIR: &str = "downloads";
/// The manifest the release script writes.
pub const MANIFEST: &str = "releases.json";

/// One published file (the release script writes these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// File name in the downloads folder; its signature is `{file}.sig`.
    pub file: String,
    /// What it is (`flumon-agent`).
    pub name: String,
    pub version: String,
    /// Release date (YYYY-MM-DD).
    pub date: String,
    pub size: u64,
    /// SM3 of the file, hex.
    pub sm3: String,
    /// Target (`linux-x86_64`).
    #[serde(default)]
    pub target: String,
}

/// An embedded document: id, title, version, date, Markdown.
pub struct Doc {
    pub id: &'static str,
    pub title: &'static str,
    pub version: &'static str,
    pub date: &'static str,
    pub markdown: &'static str,
}

/// The documents of the download center.
pub const DOCS: &[Doc] = &[
    Doc {
        id: "agent-guide",
        title: "前置机程序安装与使用指南",
        version: "1.1",
        date: "2026-11-26",
        markdown: include_str!("../../../docs/AGENT.md"),
    },
    Doc {
        id: "interface",
        title: "数据接口标准 (接口标准 1.0)",
        version: "1.0",
        date: "2026-11-26",
        markdown: include_str!("../../../docs/INTERFACE.md"),
    },
    Doc {
        id: "hospital-guide",
        title: "医疗机构网页操作指南 (含截图)",
        version: "1.0",
        date: "2026-11-26",
        markdown: include_str!("../../../docs/HOSPITAL-GUIDE.md"),
    },
];

/// Screenshots the operating guide shows (docs/screenshots/).
pub const IMAGES: &[(&str, &[u8])] = &[
    ("dmz-login.png", include_bytes!("../../../docs/screenshots/dmz-login.png")),
    ("dmz-upload.png", include_bytes!("../../../docs/screenshots/dmz-upload.png")),
    ("dmz-receipt.png", include_bytes!("../../../docs/screenshots/dmz-receipt.png")),
    ("dmz-history.png", include_bytes!("../../../docs/screenshots/dmz-history.png")),
    ("dmz-calendar.png", include_bytes!("../../../docs/screenshots/dmz-calendar.png")),
    ("dmz-figures.png", include_bytes!("../../../docs/screenshots/dmz-figures.png")),
    ("dmz-downloads.png", include_bytes!("../../../docs/screenshots/dmz-downloads.png")),
    ("dmz-agents.png", include_bytes!("../../../docs/screenshots/dmz-agents.png")),
];

fn folder(state: &AppState) -> PathBuf {
    state.config.paths.data_dir.join(DIR)
}

/// The published releases (none when the script never ran).
pub fn releases(state: &AppState) -> Result<Vec<Release>> {
    let p = folder(state).join(MANIFEST);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Config(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// SM3 of an embedded document, hex.
pub fn doc_sm3(d: &Doc) -> String {
    hex::encode(sm3(d.markdown.as_bytes()))
}

/// `GET /hospital/downloads`.
pub async fn page_handler(State(state): State<AppState>, h: HospitalUser) -> WebResult {
    let rel = releases(&state)?;
    let has_pub = folder(&state).join(PUB_NAME).exists();
    let body = html! {
        div.card {
            h2 { "下载中心" span.en { "Downloads" } }
            p.hint { "下载前置机程序、技术文档和申请表。程序文件附 SM3 摘要和 SM2 签名, 安装前请先校验 (见《前置机程序安装与使用指南》第 0 节)。" }
            h3 { "前置机程序 (flumon-agent)" }
            @if rel.is_empty() {
                (msg("warn", "尚未发布前置机程序。请联系 DMZ 运维人员 (运维人员: 运行 deploy/release-agent.sh 发布)。"))
            } @else {
                table.t {
                    tr { th { "程序" } th { "版本" } th { "平台" } th { "发布日期" } th.num { "大小" } th { "SM3 摘要" } th { "下载" } }
                    @for r in &rel {
                        tr {
                            td { (r.name) }
                            td { (r.version) }
                            td { (r.target) }
                            td { (r.date) }
                            td.num { (format!("{:.1} MiB", r.size as f64 / 1_048_576.0)) }
                            td.code { (r.sm3) }
                            td {
                                a href={ "/hospital/downloads/file/" (r.file) } { "程序" } " · "
                                a href={ "/hospital/downloads/file/" (r.file) ".sig" } { "签名" }
                            }
                        }
                    }
                }
            }
            @if has_pub {
                p { "发布签名公钥: " a href={ "/hospital/downloads/file/" (PUB_NAME) } { (PUB_NAME) }
                    " (请通过电话或公文向 DMZ 运维人员核对其 SM3 指纹)" }
            }
            pre { "flumon-agent verify-release flumon-agent --sig flumon-agent.sig --pubkey release-sign.pub.pem --sm3 <上表的 SM3 摘要>\n"
                  "openssl pkeyutl -verify -pubin -inkey release-sign.pub.pem -rawin -in flumon-agent \\\n"
                  "    -sigfile flumon-agent.sig -digest sm3 -pkeyopt distid:1234567812345678" }
            h3 { "文档与表格" }
            table.t {
                tr { th { "名称" } th { "版本" } th { "日期" } th { "SM3 摘要" } th { "查看 / 下载" } }
                @for d in DOCS {
                    tr {
                        td { (d.title) }
                        td { (d.version) }
                        td { (d.date) }
                        td.code { (doc_sm3(d).get(..16).unwrap_or_default()) "…" }
                        td {
                            a href={ "/hospital/downloads/doc/" (d.id) } { "网页查看" } " · "
                            a href={ "/hospital/downloads/doc/" (d.id) ".md" } { "下载 (Markdown)" }
                        }
                    }
                }
                tr {
                    td { "医疗机构注册申请表 (模板)" }
                    td { "1.0" }
                    td { "2026-11-20" }
                    td { "—" }
                    td { a href="/apply/form" { "打印 / 另存为 PDF" } }
                }
            }
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/downloads"), "下载中心", body)))
}

fn with_type(bytes: Vec<u8>, ty: &'static str, attach: Option<&str>) -> Response {
    let mut resp = bytes.into_response();
    let hd = resp.headers_mut();
    hd.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    if let Some(name) = attach
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        hd.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /hospital/downloads/file/{name}`: a published file, its `.sig`, or the public key.
pub async fn file(State(state): State<AppState>, _h: HospitalUser, Path(name): Path<String>) -> WebResult {
    let rel = releases(&state)?;
    let listed = name == PUB_NAME
        || rel.iter().any(|r| r.file == name || name.strip_suffix(".sig").is_some_and(|f| f == r.file));
    if !listed {
        return Err(Error::NotFound.into());
    }
    let path = folder(&state).join(&name);
    let bytes = tokio::fs::read(&path).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        _ => Error::Io(e),
    })?;
    let ty = if name.ends_with(".pem") { "application/x-pem-file" } else { "application/octet-stream" };
    Ok(with_type(bytes, ty, Some(&name)))
}

/// Markdown to HTML, with the guide's screenshot links pointed at the embedded images.
pub fn render(md: &str) -> String {
    let md = md.replace("](screenshots/", "](/hospital/downloads/img/");
    let opts = pulldown_cmark::Options::ENABLE_TABLES;
    let parser = pulldown_cmark::Parser::new_ext(&md, opts).map(|ev| match ev {
        // documentation is ours, but raw HTML in it is shown as text, never run
        pulldown_cmark::Event::Html(s) | pulldown_cmark::Event::InlineHtml(s) => pulldown_cmark::Event::Text(s),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, parser);
    out
}

/// `GET /hospital/downloads/doc/{id}` (HTML) or `{id}.md` (the Markdown).
pub async fn doc(h: HospitalUser, Path(id): Path<String>) -> WebResult {
    if let Some(base) = id.strip_suffix(".md") {
        let d = DOCS.iter().find(|d| d.id == base).ok_or(Error::NotFound)?;
        return Ok(with_type(
            d.markdown.as_bytes().to_vec(),
            "text/markdown; charset=utf-8",
            Some(&format!("{base}-{}.md", d.version)),
        ));
    }
    let d = DOCS.iter().find(|d| d.id == id).ok_or(Error::NotFound)?;
    let body = html! {
        div.card.doc {
            p.crumb { a href="/hospital/downloads" { "下载中心" } " › " (d.title) " · 版本 " (d.version) " · " (d.date) }
            (PreEscaped(render(d.markdown)))
        }
    };
    Ok(html_ok(page(&h.user.frame("/hospital/downloads"), d.title, body)))
}

/// `GET /hospital/downloads/img/{name}`: an embedded screenshot.
pub async fn img(_h: HospitalUser, Path(name): Path<String>) -> WebResult {
    let (_, bytes) = IMAGES.iter().find(|(n, _)| *n == name).ok_or(Error::NotFound)?;
    Ok(with_type(bytes.to_vec(), "image/png", None))
}
