//! The page frame every HTML answer shares (maud templates: every value is
//! escaped unless wrapped in `PreEscaped`), the embedded assets and the HTML
//! error page.
//!
//! ```text
//!  ┌ header: 流感医疗服务监测系统 · 数据上报 ─────────────── user · 退出 ┐
//!  ├ nav: per realm (public / hospital / reviewer), current item marked ┤
//!  │ main: the page's own markup                                        │
//!  └ footer ────────────────────────────────────────────────────────────┘
//! ```
//! Styles and script are served from `/static/` (one CSS file, one small JS
//! file, `include_str!`): the Content-Security-Policy allows nothing else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The stylesheet.
pub const CSS: &str = include_str!("assets/style.css");
/// The script.
pub const JS: &str = include_str!("assets/app.js");
/// Bumped with the assets, so browsers fetch new copies.
pub const ASSET_VERSION: &str = "1";

/// Which site and navigation a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    /// Public pages before login.
    Public,
    /// A signed-in hospital user.
    Hospital,
    /// The admin listener (reviewers).
    Admin,
}

/// What the frame needs to know about the request.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    pub realm: Realm,
    /// Path of the current navigation item.
    pub active: &'a str,
    /// Signed-in user's display name.
    pub user: Option<&'a str>,
    /// CSRF token for the logout button.
    pub csrf: &'a str,
}

fn nav_items(realm: Realm, signed_in: bool) -> Vec<(&'static str, &'static str)> {
    match realm {
        Realm::Public => vec![
            ("/", "首页"),
            ("/apply", "医疗机构注册申请"),
            ("/apply/status", "申请进度查询"),
            ("/apply/form", "申请表下载"),
            ("/login", "登录"),
        ],
        Realm::Hospital => vec![
            ("/hospital/upload", "上传数据"),
            ("/hospital/receipts", "上报历史"),
            ("/hospital/calendar", "上报日历"),
            ("/hospital/figures", "本院监测"),
            ("/hospital/downloads", "下载中心"),
            ("/hospital/agents", "前置机管理"),
            ("/account/password", "修改密码"),
        ],
        Realm::Admin if signed_in => {
            vec![("/review", "待审核申请"), ("/review/done", "已处理申请"), ("/account/password", "修改密码")]
        }
        Realm::Admin => vec![("/login", "审核人员登录")],
    }
}

/// A whole HTML page.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let subtitle = if frame.realm == Realm::Admin { "注册审核" } else { "数据上报" };
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " - 流感医疗服务监测系统" }
                link rel="stylesheet" href={ "/static/style.css?v=" (ASSET_VERSION) };
                script src={ "/static/app.js?v=" (ASSET_VERSION) } defer {}
            }
            body {
                header.top {
                    div.inner {
                        div.emblem { "流" }
                        div.brand {
                            h1 { "流感医疗服务监测系统" span.sub { " · " (subtitle) } }
                            p { "Influenza Medical Service Monitoring System · 网络安全等级保护第三级" }
                        }
                        @if let Some(user) = frame.user {
                            div.who {
                                "当前用户: " b { (user) }
                                form.inline method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(frame.csrf);
                                    button type="submit" { "退出" }
                                }
                            }
                        }
                    }
                }
                nav.main {
                    ul {
                        @for (href, label) in nav_items(frame.realm, frame.user.is_some()) {
                            li { a href=(href) class=[(href == frame.active).then_some("on")] { (label) } }
                        }
                    }
                }
                main { (body) }
                footer {
                    "流感医疗服务监测系统 · 本系统按网络安全等级保护第三级要求建设, 所有操作均记入审计日志"
                    br;
                    "会话闲置 30 分钟自动退出 · 请勿在公共计算机上保存密码"
                }
            }
        }
    }
}

/// A message box (`ok`, `warn` or `err`).
pub fn msg(kind: &str, text: &str) -> Markup {
    html! { div class={ "msg " (kind) } { (text) } }
}

/// Renders markup as a 200 HTML answer.
pub fn html_ok(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

/// Renders markup with a status.
pub fn html_status(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

/// An HTML error page for the realm.
pub fn error_page(realm: Realm, status: StatusCode, text: &str) -> Response {
    let frame = Frame { realm, active: "", user: None, csrf: "" };
    let title = match status {
        StatusCode::FORBIDDEN => "禁止访问 (403 Forbidden)",
        StatusCode::NOT_FOUND => "页面不存在 (404 Not Found)",
        StatusCode::PAYLOAD_TOO_LARGE => "文件过大 (413)",
        StatusCode::TOO_MANY_REQUESTS => "请求过于频繁 (429)",
        s if s.is_server_error() => "服务器错误",
        _ => "请求有误",
    };
    let back = if realm == Realm::Admin { "/review" } else { "/" };
    let body = html! {
        div.card {
            h2 { (title) }
            (msg("err", text))
            p { a.btn.light href=(back) { "返回首页" } }
        }
    };
    html_status(status, page(&frame, title, body))
}

/// `GET /static/style.css`.
pub async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /static/app.js`.
pub async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, ty: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    r
}

/// Inline SVG that the page embeds as is (from our own QR renderer only).
pub fn trusted_svg(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

/// One labelled row of a form: label, the control, a hint, and the field's error.
pub fn row(label: &str, required: bool, control: Markup, hint: Option<&str>, err: Option<&str>) -> Markup {
    html! {
        div class={ "row" @if err.is_some() { " bad" } } {
            label.l { @if required { span.req { "*" } } (label) }
            div {
                (control)
                @if let Some(e) = err { div.fe { (e) } }
                @if let Some(h) = hint { div.hint { (h) } }
            }
        }
    }
}

/// The hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A date-time (unix seconds) in China Standard Time, `YYYY-MM-DD HH:MM`.
pub fn cst(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| (d + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
