//! The page frame every intranet page shares (maud: values escaped unless
//! `PreEscaped`), the embedded assets, number formatting and the HTML error
//! page (无权访问 for 403).
//!
//! ```text
//!  ┌ header: 流感医疗服务监测系统 · 内网分析 ──── account · role · scope · 退出 ┐
//!  ├ nav: by role (analyst: 概览 时间序列 流行水平 地区分布 药物储备 数据质量) ┤
//!  │ main: the page's own markup                                            │
//!  └ footer ────────────────────────────────────────────────────────────────┘
//! ```

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::indicators::{Account, Cell, Ratio, Role};
use crate::regions;

/// The stylesheet.
pub const CSS: &str = include_str!("assets/style.css");
/// The script (sortable tables).
pub const JS: &str = include_str!("assets/app.js");
/// Bumped with the assets.
pub const ASSET_VERSION: &str = "1";

/// The signed-in account as the frame shows it.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    pub account: Option<&'a Account>,
    pub csrf: &'a str,
    /// Path of the current navigation item.
    pub active: &'a str,
}

/// Chinese role name.
pub fn role_zh(r: Role) -> &'static str {
    match r {
        Role::Analyst => "数据分析员",
        Role::Sysadmin => "系统管理员",
        Role::Secadmin => "安全管理员",
        Role::Auditor => "审计管理员",
    }
}

/// The display name of a scope code.
pub fn scope_name(code: &str) -> String {
    if code == crate::indicators::NATIONAL {
        "全国".into()
    } else {
        regions::name_of(code).unwrap_or_else(|| code.into())
    }
}

fn nav(role: Role) -> &'static [(&'static str, &'static str)] {
    match role {
        Role::Analyst => &[
            ("/overview", "概览"),
            ("/series", "时间序列"),
            ("/mem", "流行水平与预测"),
            ("/map", "地区分布"),
            ("/drugs", "药物储备"),
            ("/quality", "数据质量"),
        ],
        Role::Secadmin => &[
            ("/security", "传输与安全日志"),
            ("/security/transfer", "传输链路对账"),
            ("/security/events", "登录与访问事件"),
        ],
        Role::Sysadmin => &[("/users", "账户管理")],
        Role::Auditor => &[("/audit", "管理员操作日志")],
    }
}

/// A whole HTML page.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
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
                            h1 { "流感医疗服务监测系统" span.sub { " · 内网分析平台" } }
                            p { "Influenza Medical Service Monitoring · 网络安全等级保护第三级 · 内网" }
                        }
                        @if let Some(a) = frame.account {
                            div.who {
                                b { (a.name) } span.role { (role_zh(a.role)) }
                                @if let Some(s) = &a.scope { @if a.role == Role::Analyst { "范围: " (scope_name(s)) } }
                                form.inline method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(frame.csrf);
                                    button type="submit" { "退出" }
                                }
                            }
                        }
                    }
                }
                @if let Some(a) = frame.account {
                    nav.main {
                        ul {
                            @for (href, label) in nav(a.role) {
                                li { a href=(href) class=[(*href == frame.active).then_some("on")] { (label) } }
                            }
                        }
                    }
                }
                main { (body) }
                footer {
                    "流感医疗服务监测系统 · 内网 · 所有访问均记入审计日志 · 会话闲置 30 分钟自动退出"
                    br;
                    "小于 5 的计数在省级及以下账户中显示为 “<5”, 可反推的单元格显示为 “—”"
                }
            }
        }
    }
}

/// A message box (`ok`, `warn` or `err`).
pub fn msg(kind: &str, text: &str) -> Markup {
    html! { div class={ "msg " (kind) } { (text) } }
}

/// A 200 HTML answer with the security headers.
pub fn html_ok(m: Markup) -> Response {
    html_status(StatusCode::OK, m)
}

/// An HTML answer with a status and the security headers.
pub fn html_status(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, Html(m.into_string())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; connect-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    r
}

/// An HTML error page (403 → 无权访问).
pub fn error_page(frame: &Frame<'_>, status: StatusCode, text: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "无权访问 (403 Forbidden)",
        StatusCode::NOT_FOUND => "页面不存在 (404 Not Found)",
        StatusCode::UNAUTHORIZED => "请重新登录 (401)",
        StatusCode::LOCKED => "账户已锁定 (423)",
        s if s.is_server_error() => "服务器错误 (500)",
        _ => "请求有误 (400)",
    };
    let body = html! {
        div.card.narrow {
            h2 { (title) }
            (msg("err", text))
            @if status == StatusCode::FORBIDDEN {
                p.hint { "您的账户无权查看该范围或该功能的数据。本次访问已记入审计日志。" }
            }
            p { a.btn.light href="/" { "返回首页" } }
        }
    };
    html_status(status, page(frame, title, body))
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

/// Inline SVG from our own renderers (svgchart, the QR code, the tile map): text inside is escaped there.
pub fn svg(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

/// An integer with thousands separators.
pub fn int(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A count as shown (`<5`, `—`).
pub fn cell(c: Cell) -> String {
    match c {
        Cell::Value(v) => int(v),
        Cell::Small => "<5".into(),
        Cell::Hidden => "—".into(),
    }
}

/// A fraction as percent with one decimal, `—` when hidden or undefined.
pub fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "—".into(), |x| format!("{:.1}%", x * 100.0))
}

/// A ratio as percent.
pub fn ratio(r: &Ratio) -> String {
    pct(r.value)
}

/// A number with `d` decimals, `—` when absent.
pub fn num(v: Option<f64>, d: usize) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "—".into(), |x| format!("{x:.d$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(-12), "-12");
        assert_eq!(int(100), "100");
        assert_eq!(cell(Cell::Small), "<5");
        assert_eq!(pct(Some(0.1234)), "12.3%");
        assert_eq!(pct(None), "—");
        assert_eq!(num(Some(f64::NAN), 1), "—");
        assert_eq!(scope_name("000000"), "全国");
    }
}
