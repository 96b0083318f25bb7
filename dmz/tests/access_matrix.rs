//! The access matrix (ARCHITECTURE invariant 6, LEVEL3 roles): every route of both
//! listeners of a real `flumon-dmz serve`, asked by every kind of caller, against
//! an allow/deny table written out below; every cell is checked and every
//! mismatching cell is listed (not only the first).
//!
//! ```text
//!  MATRIX row = (listener, method, path, body, [expected class for each of the 11 principals])
//!  principals: AN anonymous browser · HA / HB hospital A / B web sessions · RV reviewer session
//!              (admin cookie, sent to both listeners as a browser would) · RF the reviewer's session id
//!              under the public cookie name · AF hospital A's session id under the admin cookie name ·
//!              AG agent A (client cert A + token A) · AX client cert A + token B · TN token A, no cert ·
//!              OP operator token + operator cert · ON operator token, no cert
//!  every row exists on BOTH listeners: a route asked on the wrong listener must be 404
//!  route list of the sources (web/mod.rs, api/mod.rs, admin.rs) grep'd at test time == the table's routes
//!  then: a hospital's and a reviewer's right password and fresh code on the other listener's /login: refused
//! ```
//!
//! Classes: `OK` 2xx, or a redirect elsewhere than the login page; `INV` 400/422, the
//! handler was reached and refused the (deliberately invalid) content, or an activation
//! link refused on the wrong listener; `LOG` a redirect to `/login`; `U401`; `F403` (other
//! than the two CSRF refusals); `XSITE` 403 of the listener guard (no same-origin `Origin` /
//! `Referer`, or a body type no form has); `CSRF` 403 of the form reader: the CSRF token of
//! the form is wrong (read only after the session and role were accepted); `N404`.
//!
//! State-changing POSTs are not carried out: an "allow" is shown by reaching the handler's
//! own validation instead of its effect: a form without its fields (400), a reject without a
//! reason (400), an upload of an unknown type (400), an activation with a too-short password
//! (the page again, 200, nothing stored), an operator call with an invalid argument (400) or a
//! harmless one (purge of items exported > 100 years ago, an enrolment code or revocation for
//! hospital C, which nothing else uses). Forms that carry no field at all (logout, agent
//! token / revoke / enrol code, approve, resend) have nothing to get wrong but the token: they
//! are sent with a wrong CSRF token, and "allow" is the form reader's CSRF refusal, which comes
//! only after the session and its role were accepted (a wrong principal gets `LOG` or `F403`);
//! that a right token passes the same reader is shown by the other form rows. (A body over the
//! 64 KiB form limit would give 413, but a server answering before it reads a body resets the
//! connection under the client's write, so those cells would be flaky.) Web principals send the
//! CSRF token the listener would have put in their page and a same-origin `Origin`; agents and
//! operators send neither, as their clients do, so web POSTs refuse them (`XSITE`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dmz_common;
mod web_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dmz_common::{Agent, Dmz, json_file, outpatient, upload};
use flumon_dmz::client::{Answer, Client};
use web_common::{AnswerExt, Browser, Totp, activate, between, pdf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L {
    /// The public listener.
    P,
    /// The admin listener.
    A,
}
use L::{A, P};

/// What a cell's answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum C {
    Ok,
    Invalid,
    XSite,
    Login,
    Unauth,
    Forbidden,
    Csrf,
    NotFound,
    Other(u16),
}
const OK: C = C::Ok;
const INV: C = C::Invalid;
const XSITE: C = C::XSite;
const LOG: C = C::Login;
const U401: C = C::Unauth;
const F403: C = C::Forbidden;
const CSRF: C = C::Csrf;
const N404: C = C::NotFound;

/// The request body of a row (see the module docs).
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    /// urlencoded: `csrf=<the principal's token>&` then these fields.
    Form(&'static str),
    /// urlencoded, a well-formed but wrong CSRF token.
    BadToken,
    /// multipart: the token first, then these fields.
    Multi(&'static [(&'static str, &'static str)]),
    /// multipart content type, no part at all.
    EmptyMulti,
    Json(&'static str),
}
use Body::{BadToken, EmptyMulti, Form, Json, Multi};
const NONE: Body = Body::None;

const PRINCIPALS: [&str; 11] = ["AN", "HA", "HB", "RV", "RF", "AF", "AG", "AX", "TN", "OP", "ON"];
/// Principals that are browsers (cookies, CSRF token, Origin).
const WEB: usize = 6;

type Row = (L, &'static str, &'static str, Body, [C; 11]);

const ALL_OK: [C; 11] = [OK; 11];
const ALL_404: [C; 11] = [N404; 11];

/// Path placeholders: `{receipt_a}` `{receipt_b}` (a receipt of hospital A / B), `{hosp_token}`
/// (an unused activation link of hospital C), `{rev_token}` (of a second reviewer), `{app}` (a
/// pending application), `{slot}`, `{figures_csv}`, `{pub_key}`, `{doc}`, `{img}`, `{type}`.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                                AN     HA     HB     RV     RF     AF     AG     AX     TN     OP     ON
    // ── public listener: the public router ──
    (P, "GET",  "/", NONE,                                            ALL_OK),
    (P, "GET",  "/static/style.css", NONE,                            ALL_OK),
    (P, "GET",  "/static/app.js", NONE,                               ALL_OK),
    (P, "GET",  "/apply", NONE,                                       ALL_OK),
    (P, "POST", "/apply", Multi(&[("name", "")]),                     [OK,    OK,    OK,    OK,    OK,    OK,    XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/apply/status", NONE,                                ALL_OK),
    (P, "POST", "/apply/status", Form(""),                            [INV,   INV,   INV,   INV,   INV,   INV,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/apply/form", NONE,                                  ALL_OK),
    (P, "GET",  "/login", NONE,                                       ALL_OK),
    (P, "POST", "/login", Form(""),                                   [INV,   INV,   INV,   INV,   INV,   INV,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "POST", "/logout", BadToken,                                  [LOG,   CSRF,  CSRF,  LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/activate/{hosp_token}", NONE,                       ALL_OK),
    (P, "POST", "/activate/{hosp_token}", Form("password=x&password2=x&code=000000"),
                                                                      [OK,    OK,    OK,    OK,    OK,    OK,    XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/activate/{rev_token}", NONE,                        [INV; 11]),
    (P, "POST", "/activate/{rev_token}", Form("password=x&password2=x&code=000000"),
                                                                      [INV,   INV,   INV,   INV,   INV,   INV,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/account/password", NONE,                            [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "POST", "/account/password", Form(""),                        [LOG,   INV,   INV,   LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/hospital/upload", NONE,                             [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "POST", "/hospital/upload", Multi(&[("type", "nosuch")]),     [LOG,   INV,   INV,   LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "GET",  "/hospital/receipts", NONE,                           [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/receipts/{receipt_a}", NONE,               [LOG,   OK,    N404,  LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/receipts/{receipt_b}", NONE,               [LOG,   N404,  OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/receipts/{receipt_a}/errors.csv", NONE,    [LOG,   OK,    N404,  LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/receipts/{receipt_b}/errors.csv", NONE,    [LOG,   N404,  OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/calendar", NONE,                           [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/figures", NONE,                            [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/figures.xlsx", NONE,                       [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/figures/{figures_csv}", NONE,              [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/downloads", NONE,                          [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/downloads/file/{pub_key}", NONE,           [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/downloads/doc/{doc}", NONE,                [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/downloads/img/{img}", NONE,                [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "GET",  "/hospital/agents", NONE,                             [LOG,   OK,    OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (P, "POST", "/hospital/agents/enrol-code", BadToken,              [LOG,   CSRF,  CSRF,  LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "POST", "/hospital/agents/token", BadToken,                   [LOG,   CSRF,  CSRF,  LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (P, "POST", "/hospital/agents/revoke", BadToken,                  [LOG,   CSRF,  CSRF,  LOG,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    // ── public listener: the agents' API ──
    (P, "POST", "/api/v1/upload/{type}", Json("not json"),            [U401,  U401,  U401,  U401,  U401,  U401,  INV,   F403,  F403,  U401,  U401]),
    (P, "POST", "/api/v1/scans", EmptyMulti,                          [U401,  U401,  U401,  U401,  U401,  U401,  INV,   F403,  F403,  U401,  U401]),
    (P, "POST", "/api/v1/enroll", Json("{}"),                         [INV; 11]),
    (P, "GET",  "/api/v1/ping", NONE,                                 [U401,  U401,  U401,  U401,  U401,  U401,  OK,    F403,  F403,  U401,  U401]),
    // ── public listener: the admin listener's routes are not there ──
    (P, "GET",  "/review", NONE,                                      ALL_404),
    (P, "GET",  "/review/done", NONE,                                 ALL_404),
    (P, "GET",  "/review/{app}", NONE,                                ALL_404),
    (P, "GET",  "/review/{app}/scan/{slot}", NONE,                    ALL_404),
    (P, "POST", "/review/{app}/approve", BadToken,                    ALL_404),
    (P, "POST", "/review/{app}/reject", Form("reason=+"),             ALL_404),
    (P, "POST", "/review/{app}/resend", BadToken,                     ALL_404),
    (P, "GET",  "/metrics", NONE,                                     ALL_404),
    (P, "POST", "/operator/export-raw", Json(r#"{"to":"relative"}"#), ALL_404),
    (P, "POST", "/operator/purge-raw", Json(r#"{"exported_older_than_days":36500}"#), ALL_404),
    (P, "POST", "/operator/create-hospital", Json(r#"{"uscc":"bad","name":"x","region":"350102","level":3}"#), ALL_404),
    (P, "POST", "/operator/enrol-code", Json(r#"{"uscc":"{uscc_c}"}"#), ALL_404),
    (P, "POST", "/operator/revoke-agents", Json(r#"{"uscc":"{uscc_c}"}"#), ALL_404),
    (P, "POST", "/operator/create-reviewer", Json(r#"{"name":"x"}"#), ALL_404),

    // ── admin listener: the admin router ──
    (A, "GET",  "/", NONE,                                            ALL_OK),
    (A, "GET",  "/static/style.css", NONE,                            ALL_OK),
    (A, "GET",  "/static/app.js", NONE,                               ALL_OK),
    (A, "GET",  "/login", NONE,                                       ALL_OK),
    (A, "POST", "/login", Form(""),                                   [INV,   INV,   INV,   INV,   INV,   INV,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "POST", "/logout", BadToken,                                  [LOG,   LOG,   LOG,   CSRF,  LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "GET",  "/activate/{rev_token}", NONE,                        ALL_OK),
    (A, "POST", "/activate/{rev_token}", Form("password=x&password2=x&code=000000"),
                                                                      [OK,    OK,    OK,    OK,    OK,    OK,    XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "GET",  "/activate/{hosp_token}", NONE,                       [INV; 11]),
    (A, "POST", "/activate/{hosp_token}", Form("password=x&password2=x&code=000000"),
                                                                      [INV,   INV,   INV,   INV,   INV,   INV,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "GET",  "/account/password", NONE,                            [LOG,   LOG,   LOG,   OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (A, "POST", "/account/password", Form(""),                        [LOG,   LOG,   LOG,   INV,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "GET",  "/review", NONE,                                      [LOG,   LOG,   LOG,   OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (A, "GET",  "/review/done", NONE,                                 [LOG,   LOG,   LOG,   OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (A, "GET",  "/review/{app}", NONE,                                [LOG,   LOG,   LOG,   OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (A, "GET",  "/review/{app}/scan/{slot}", NONE,                    [LOG,   LOG,   LOG,   OK,    LOG,   LOG,   LOG,   LOG,   LOG,   LOG,   LOG]),
    (A, "POST", "/review/{app}/approve", BadToken,                    [LOG,   LOG,   LOG,   CSRF,  LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "POST", "/review/{app}/reject", Form("reason=+"),             [LOG,   LOG,   LOG,   INV,   LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    (A, "POST", "/review/{app}/resend", BadToken,                     [LOG,   LOG,   LOG,   CSRF,  LOG,   LOG,   XSITE, XSITE, XSITE, XSITE, XSITE]),
    // ── admin listener: metrics (open by design: no identifiers, management network) and operator calls ──
    (A, "GET",  "/metrics", NONE,                                     ALL_OK),
    (A, "POST", "/operator/export-raw", Json(r#"{"to":"relative"}"#), [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  INV,   F403]),
    (A, "POST", "/operator/purge-raw", Json(r#"{"exported_older_than_days":36500}"#),
                                                                      [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  OK,    F403]),
    (A, "POST", "/operator/create-hospital", Json(r#"{"uscc":"bad","name":"x","region":"350102","level":3}"#),
                                                                      [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  INV,   F403]),
    (A, "POST", "/operator/enrol-code", Json(r#"{"uscc":"{uscc_c}"}"#),
                                                                      [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  OK,    F403]),
    (A, "POST", "/operator/revoke-agents", Json(r#"{"uscc":"{uscc_c}"}"#),
                                                                      [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  OK,    F403]),
    (A, "POST", "/operator/create-reviewer", Json(r#"{"name":"x"}"#), [U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  U401,  INV,   F403]),
    // ── admin listener: the public listener's routes are not there ──
    (A, "GET",  "/apply", NONE,                                       ALL_404),
    (A, "POST", "/apply", Multi(&[("name", "")]),                     ALL_404),
    (A, "GET",  "/apply/status", NONE,                                ALL_404),
    (A, "POST", "/apply/status", Form(""),                            ALL_404),
    (A, "GET",  "/apply/form", NONE,                                  ALL_404),
    (A, "GET",  "/hospital/upload", NONE,                             ALL_404),
    (A, "POST", "/hospital/upload", Multi(&[("type", "nosuch")]),     ALL_404),
    (A, "GET",  "/hospital/receipts", NONE,                           ALL_404),
    (A, "GET",  "/hospital/receipts/{receipt_a}", NONE,               ALL_404),
    (A, "GET",  "/hospital/receipts/{receipt_a}/errors.csv", NONE,    ALL_404),
    (A, "GET",  "/hospital/calendar", NONE,                           ALL_404),
    (A, "GET",  "/hospital/figures", NONE,                            ALL_404),
    (A, "GET",  "/hospital/figures.xlsx", NONE,                       ALL_404),
    (A, "GET",  "/hospital/figures/{figures_csv}", NONE,              ALL_404),
    (A, "GET",  "/hospital/downloads", NONE,                          ALL_404),
    (A, "GET",  "/hospital/downloads/file/{pub_key}", NONE,           ALL_404),
    (A, "GET",  "/hospital/downloads/doc/{doc}", NONE,                ALL_404),
    (A, "GET",  "/hospital/downloads/img/{img}", NONE,                ALL_404),
    (A, "GET",  "/hospital/agents", NONE,                             ALL_404),
    (A, "POST", "/hospital/agents/enrol-code", BadToken,              ALL_404),
    (A, "POST", "/hospital/agents/token", BadToken,                   ALL_404),
    (A, "POST", "/hospital/agents/revoke", BadToken,                  ALL_404),
    (A, "POST", "/api/v1/upload/{type}", Json("not json"),            ALL_404),
    (A, "POST", "/api/v1/scans", EmptyMulti,                          ALL_404),
    (A, "POST", "/api/v1/enroll", Json("{}"),                         ALL_404),
    (A, "GET",  "/api/v1/ping", NONE,                                 ALL_404),
];

/// (method, normalised path) pairs.
type Routes = BTreeSet<(String, String)>;

/// `{x}` segments made `{}`.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                skip = true;
                out.push_str("{}");
            }
            '}' => skip = false,
            c if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

/// The (method, normalised path) of every `.route(` call in `src`.
fn routes_in(src: &str) -> Routes {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices(".route(") {
        let rest = &src[i + ".route(".len()..];
        let mut depth = 1usize;
        let mut end = rest.len();
        for (j, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("route path literal");
        for m in ["get", "post", "put", "delete", "patch", "any"] {
            let pat = format!("{m}(");
            let found = call.match_indices(&pat).any(|(k, _)| {
                k == 0 || !call[..k].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if found {
                out.insert((m.to_ascii_uppercase(), normalise(path)));
            }
        }
    }
    out
}

/// The routes each listener serves, read from the router sources.
fn source_routes() -> (Routes, Routes) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let read = |p: &str| std::fs::read_to_string(src.join(p)).unwrap();
    let web = read("web/mod.rs");
    let (before_admin, admin_part) = web.split_at(web.find("pub fn admin_router").expect("admin_router"));
    let public_part = &before_admin[before_admin.find("pub fn public_router").expect("public_router")..];
    let mut public = routes_in(public_part);
    public.extend(routes_in(&read("api/mod.rs")));
    let mut admin = routes_in(admin_part);
    admin.extend(routes_in(&read("admin.rs")));
    (public, admin)
}

#[test]
fn table_covers_every_route_of_the_sources() {
    let (public, admin) = source_routes();
    assert!(public.len() >= 30 && admin.len() >= 15, "router sources parsed: {public:?} {admin:?}");
    let all: BTreeSet<_> = public.union(&admin).cloned().collect();
    for (l, served) in [(P, &public), (A, &admin)] {
        let table: BTreeSet<(String, String)> =
            MATRIX.iter().filter(|r| r.0 == l).map(|r| (r.1.to_owned(), normalise(r.2))).collect();
        let missing: Vec<_> = all.difference(&table).collect();
        let extra: Vec<_> = table.difference(&all).collect();
        assert!(missing.is_empty(), "routes of the sources without a row on the {l:?} listener: {missing:?}");
        assert!(extra.is_empty(), "rows on the {l:?} listener of routes no source has: {extra:?}");
        for r in MATRIX.iter().filter(|r| r.0 == l && !served.contains(&(r.1.to_owned(), normalise(r.2)))) {
            assert_eq!(r.4, ALL_404, "{l:?} {} {} is not served there: every cell must be 404", r.1, r.2);
        }
    }
}

/// Who asks.
struct Who {
    name: &'static str,
    cookies: String,
    bearer: Option<String>,
    /// The CSRF token of this principal's pages on the public / admin listener (browsers only).
    token: [String; 2],
    clients: [Client; 2],
}

fn cookie_of(b: &Browser, name: &str) -> String {
    b.cookies.lock().unwrap().get(name).cloned().unwrap_or_else(|| panic!("cookie {name} missing"))
}

/// `admin create-hospital` (server stopped): the agent and the path of the web account's activation link.
fn create_hospital(dmz: &Dmz, n: u32) -> (Agent, String) {
    let (agent, url) = dmz.hospital_named(n, &format!("矩阵医院{n}"));
    (agent, activation_path(&url))
}

fn activation_path(url: &str) -> String {
    url.split_once("/activate/").map(|(_, t)| format!("/activate/{t}")).unwrap()
}

/// `admin create-reviewer` (server stopped): the path of the activation link.
fn create_reviewer(dmz: &Dmz, name: &str) -> String {
    let out = dmz.cli(&["admin", "create-reviewer", "--name", name]);
    assert!(out.status.success(), "create-reviewer: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    activation_path(v["activation_url"].as_str().unwrap())
}

/// Activates through the web and signs in; returns the browser with its session.
async fn sign_in(client: Client, activation: &str, user: &str) -> Browser {
    let mut b = Browser::new(client);
    let pw = "Matrix-Pass-2026!";
    let secret = activate(&mut b, activation, pw).await;
    let mut totp = Totp::activated(secret);
    let r = b.login(user, pw, &totp.code().await).await;
    assert_eq!(r.status, 303, "login of {user}: {}", r.text());
    b
}

/// The CSRF token the listener puts in this cookie jar's pages: the login page's, or when
/// signed in there, the start page's.
async fn token_for(c: &Client, cookies: &str) -> String {
    let h = [("cookie", cookies)];
    let mut a = c.send("GET", "/login", &h, Vec::new()).await.unwrap();
    if a.status == 303 {
        a = c.send("GET", &a.location(), &h, Vec::new()).await.unwrap();
    }
    between(&a.text(), "name=\"csrf\" value=\"", "\"")
        .unwrap_or_else(|| panic!("no CSRF token: {}", a.text()))
        .to_owned()
}

fn classify(a: &Answer) -> C {
    match a.status {
        200..=299 => C::Ok,
        300..=399 if a.location().starts_with("/login") => C::Login,
        300..=399 => C::Ok,
        400 | 422 => C::Invalid,
        401 => C::Unauth,
        403 => {
            let t = a.text();
            if t.contains("CSRF token missing or wrong") {
                C::Csrf
            } else if t.contains("跨站请求被拒绝") || t.contains("unsupported request type") {
                C::XSite
            } else {
                C::Forbidden
            }
        }
        404 => C::NotFound,
        s => C::Other(s),
    }
}

const BOUNDARY: &str = "----flumonmatrixboundary";

fn multipart(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body.into_bytes()
}

/// Sends the cell's request; (class, status, start of the body).
async fn ask(who: &Who, l: L, method: &str, path: &str, body: Body, subst: &[(&str, String)]) -> (C, u16, String) {
    let fill = |s: &str| subst.iter().fold(s.to_owned(), |acc, (k, v)| acc.replace(k, v));
    let i = usize::from(l == A);
    let tok = &who.token[i];
    let mp_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let (ct, bytes): (Option<&str>, Vec<u8>) = match body {
        Body::None => (None, Vec::new()),
        Form(extra) => {
            let sep = if extra.is_empty() { "" } else { "&" };
            (Some("application/x-www-form-urlencoded"), format!("csrf={tok}{sep}{extra}").into_bytes())
        }
        BadToken => (Some("application/x-www-form-urlencoded"), format!("csrf={}", "A".repeat(43)).into_bytes()),
        Multi(fields) => {
            let mut all = vec![("csrf", tok.as_str())];
            all.extend_from_slice(fields);
            (Some(&mp_type), multipart(&all))
        }
        EmptyMulti => (Some(&mp_type), multipart(&[])),
        Json(j) => (Some("application/json"), fill(j).into_bytes()),
    };
    let auth = who.bearer.as_ref().map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = Vec::new();
    if !who.cookies.is_empty() {
        h.push(("cookie", &who.cookies));
    }
    // browsers send a same-origin Origin with a POST; agents and operators do not, as their clients
    if !who.token[0].is_empty() && method != "GET" {
        h.push(("origin", "https://localhost"));
    }
    if let Some(a) = &auth {
        h.push(("authorization", a));
    }
    if let Some(ct) = ct {
        h.push(("content-type", ct));
    }
    let a = who.clients[i].send(method, &fill(path), &h, bytes).await.unwrap();
    let head: String = a.text().chars().take(160).collect();
    (classify(&a), a.status, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_principal_against_every_route() {
    let t0 = Instant::now();
    let mut dmz = Dmz::new(|t| {
        let l = t.entry("limits").or_insert(toml::Value::Table(toml::Table::new())).as_table_mut().unwrap();
        for k in ["per_addr_per_minute", "per_addr_burst", "per_token_per_minute", "per_token_burst"] {
            l.insert(k.into(), 100_000.into());
        }
    });
    let (a, act_a) = create_hospital(&dmz, 1);
    let (b, act_b) = create_hospital(&dmz, 2);
    let (c, act_c) = create_hospital(&dmz, 3);
    let act_r = create_reviewer(&dmz, "reviewer1");
    let act_r2 = create_reviewer(&dmz, "reviewer2");
    let (d, act_d) = create_hospital(&dmz, 4);
    let act_r3 = create_reviewer(&dmz, "reviewer3");
    dmz.start();
    let cfg = flumon_dmz::Config::load(&dmz.config).unwrap();
    let p = &cfg.paths;
    let ca = a.ca.clone();
    let client = |addr, id: Option<(&Path, &Path)>| Client::new(addr, &ca, id).unwrap();
    let plain = |l: L| client(if l == P { dmz.public } else { dmz.admin }, None);

    // web sessions: hospitals A and B on the public listener, the reviewer on the admin one
    let ha = sign_in(plain(P), &act_a, &a.uscc).await;
    let hb = sign_in(plain(P), &act_b, &b.uscc).await;
    let rv = sign_in(plain(A), &act_r, "reviewer1").await;
    let anon = Browser::new(plain(P));
    anon.get("/login").await;

    // a receipt of each hospital; a pending application with its scans
    let mut receipts = Vec::new();
    for (ag, n) in [(&a, 1), (&b, 2)] {
        let r = upload(
            &dmz.client(ag),
            &ag.token,
            "outpatient",
            Some("application/json"),
            json_file(&[outpatient(&ag.uscc, n)]),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        receipts.push(r.json().unwrap()["receipt_id"].as_str().unwrap().to_owned());
    }
    let tok = anon.token();
    let applied = anon
        .post_multipart(
            "/apply",
            &[
                ("csrf", &tok),
                ("name", "矩阵市中心医院"),
                ("uscc", &dmz_common::uscc(9)),
                ("licence_no", "PDY00002X12010117A1002"),
                ("level", "2"),
                ("region", "350102"),
                ("contact_name", "李科长"),
                ("email", "office@matrix-hospital.example.cn"),
                ("phone", "0591-23456789"),
            ],
            &[
                ("form", "form.jpg", "image/jpeg", vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F']),
                ("licence", "licence.pdf", "application/pdf", pdf()),
            ],
        )
        .await;
    let app = between(&applied.text(), "<b class=\"secret\">", "</b>")
        .unwrap_or_else(|| panic!("application: {}", applied.text()))
        .to_owned();

    // the principals
    let jar = |br: &Browser| {
        br.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    };
    let pre = |br: &Browser| format!("__Host-flumon-pre={}", cookie_of(br, "__Host-flumon-pre"));
    let rf = format!("{}; __Host-flumon={}", pre(&rv), cookie_of(&rv, "__Host-flumon-admin"));
    let af = format!("{}; __Host-flumon-admin={}", pre(&ha), cookie_of(&ha, "__Host-flumon"));
    let op_token = std::fs::read_to_string(&p.operator_token).unwrap().trim().to_owned();
    let cert_a = Some((a.cert.as_path(), a.key.as_path()));
    let cert_op = Some((p.operator_cert.as_path(), p.operator_key.as_path()));
    let both = |id: Option<(&Path, &Path)>| [client(dmz.public, id), client(dmz.admin, id)];
    let mut whos = Vec::new();
    for (name, cookies) in
        [("AN", jar(&anon)), ("HA", jar(&ha)), ("HB", jar(&hb)), ("RV", jar(&rv)), ("RF", rf), ("AF", af)]
    {
        let clients = both(None);
        let token = [token_for(&clients[0], &cookies).await, token_for(&clients[1], &cookies).await];
        whos.push(Who { name, cookies, bearer: None, token, clients });
    }
    for (name, bearer, id) in [
        ("AG", &a.token, cert_a),
        ("AX", &b.token, cert_a),
        ("TN", &a.token, None),
        ("OP", &op_token, cert_op),
        ("ON", &op_token, None),
    ] {
        let token = [String::new(), String::new()];
        whos.push(Who { name, cookies: String::new(), bearer: Some(bearer.clone()), token, clients: both(id) });
    }
    assert_eq!(whos.iter().map(|w| w.name).collect::<Vec<_>>(), PRINCIPALS);
    assert_eq!(whos.iter().filter(|w| !w.token[0].is_empty()).count(), WEB);
    // the session tokens differ from the anonymous ones (a browser signed in got its session's)
    assert_ne!(whos[1].token[0], whos[1].token[1], "hospital A: session token on public, login page's on admin");
    assert_ne!(whos[3].token[1], whos[3].token[0], "reviewer: session token on admin, login page's on public");

    let subst: Arc<Vec<(&str, String)>> = Arc::new(vec![
        ("{receipt_a}", receipts[0].clone()),
        ("{receipt_b}", receipts[1].clone()),
        ("{hosp_token}", act_c.trim_start_matches("/activate/").to_owned()),
        ("{rev_token}", act_r2.trim_start_matches("/activate/").to_owned()),
        ("{app}", app.clone()),
        ("{slot}", "licence".to_owned()),
        ("{figures_csv}", "daily.csv".to_owned()),
        ("{pub_key}", flumon_dmz::web::downloads::PUB_NAME.to_owned()),
        ("{doc}", "agent-guide".to_owned()),
        ("{img}", "dmz-login.png".to_owned()),
        ("{type}", "outpatient".to_owned()),
        ("{uscc_c}", c.uscc.clone()),
    ]);
    let setup = t0.elapsed();

    // every cell, a few at a time
    let whos = Arc::new(whos);
    let sem = Arc::new(tokio::sync::Semaphore::new(6));
    let mut tasks = tokio::task::JoinSet::new();
    for (ri, row) in MATRIX.iter().enumerate() {
        for pi in 0..PRINCIPALS.len() {
            let (whos, subst, sem) = (Arc::clone(&whos), Arc::clone(&subst), Arc::clone(&sem));
            tasks.spawn(async move {
                let _slot = sem.acquire().await.unwrap();
                let (l, m, path, body, _) = *row;
                (ri, pi, ask(&whos[pi], l, m, path, body, &subst).await)
            });
        }
    }
    let mut cells = Vec::new();
    while let Some(r) = tasks.join_next().await {
        cells.push(r.unwrap());
    }
    cells.sort_by_key(|(ri, pi, _)| (*ri, *pi));
    assert_eq!(cells.len(), MATRIX.len() * PRINCIPALS.len());
    let mut bad = Vec::new();
    for (ri, pi, (got, status, head)) in &cells {
        let (l, m, path, _, want) = MATRIX[*ri];
        if want[*pi] != *got {
            bad.push(format!(
                "  {:<2} {l:?} {m:<4} {path:<45} want {:?}, got {got:?} ({status}): {}",
                PRINCIPALS[*pi],
                want[*pi],
                head.replace('\n', " ")
            ));
        }
    }
    eprintln!(
        "access matrix: {} rows × {} principals = {} cells, setup {:.1?}, all {:.1?}",
        MATRIX.len(),
        PRINCIPALS.len(),
        cells.len(),
        setup,
        t0.elapsed()
    );
    assert!(bad.is_empty(), "{} of {} cells differ from the table:\n{}", bad.len(), cells.len(), bad.join("\n"));

    // the allowed answers are the principal's own: agent A's ping names A, and each
    // hospital's history lists its own receipt only
    let auth = format!("Bearer {}", a.token);
    let ping = whos[6].clients[0].send("GET", "/api/v1/ping", &[("authorization", &auth)], Vec::new()).await.unwrap();
    assert_eq!(ping.json().unwrap()["hospital"], a.uscc.as_str());
    for (br, own, other) in [(&ha, &receipts[0], &receipts[1]), (&hb, &receipts[1], &receipts[0])] {
        let page = br.get("/hospital/receipts").await.text();
        assert!(page.contains(own.as_str()) && !page.contains(other.as_str()), "own receipts only: {page}");
    }
    // the login route by role × listener: right credentials and a fresh code on the other
    // role's listener give the login page again and no session
    let pw = "Matrix-Pass-2026!";
    for (l, act, user, other) in [(P, &act_d, d.uscc.as_str(), A), (A, &act_r3, "reviewer3", P)] {
        let mut br = Browser::new(plain(l));
        let mut totp = Totp::activated(activate(&mut br, act, pw).await);
        let wrong = Browser::new(plain(other));
        let r = wrong.login(user, pw, &totp.code().await).await;
        assert_eq!(r.status, 200, "{user} signs in on the {other:?} listener: {}", r.text());
        assert!(r.text().contains("用户名、密码或动态验证码错误"), "{}", r.text());
        let jar = wrong.cookies.lock().unwrap().clone();
        assert!(jar.keys().all(|k| k == "__Host-flumon-pre"), "{user} on the {other:?} listener got {jar:?}");
    }
    // refused for the listener, not for the credentials
    let journal = std::fs::read_to_string(p.data_dir.join("audit.jsonl")).unwrap();
    assert_eq!(journal.matches("\"wrong_listener\":true").count(), 2, "{journal}");

    // nothing of the matrix changed a session: the three still work
    assert_eq!(ha.get("/hospital/agents").await.status, 200);
    assert_eq!(rv.get("/review").await.status, 200);
    dmz.stop();
}
