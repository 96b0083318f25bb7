//! Shared by the web tests: an in-process DMZ on 127.0.0.1 with real TLS
//! (both listeners, real sled, maildir outbox), and a small browser: a cookie
//! jar, the CSRF token read from each page, same-origin `Origin` headers,
//! urlencoded and multipart forms.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flumon_dmz::client::{Answer, Client};
use flumon_dmz::{AppState, Config};

/// A running DMZ.
pub struct Srv {
    pub state: AppState,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Srv {
    /// Starts a fresh DMZ; `web` entries go into the `[web]` table.
    pub async fn start(web: &[(&str, toml::Value)]) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let report = flumon_dmz::init::init(dir.path(), None).unwrap();
        let mut cfg = Config::load(&report.config).unwrap();
        for (k, v) in web {
            cfg.web.insert((*k).to_owned(), v.clone());
        }
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, aa) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        cfg.listen.public = pa;
        cfg.listen.admin = aa;
        let paths = cfg.paths.clone();
        let state = tokio::task::spawn_blocking(move || flumon_dmz::open_state(cfg)).await.unwrap().unwrap();
        let tls = flumon_dmz::tls::server_config(&paths.tls_cert, &paths.tls_key, &paths.ca_cert).unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let t = flumon_dmz::server::Timeouts { header: Duration::from_secs(15), idle: Duration::from_secs(60) };
        let pub_app = flumon_dmz::public_app(&state);
        let adm_app = flumon_dmz::admin_app(&state);
        tokio::spawn(flumon_dmz::server::serve("public", public, Arc::clone(&tls), pub_app, t, rx.clone()));
        tokio::spawn(flumon_dmz::server::serve("admin", admin, tls, adm_app, t, rx));
        Srv { state, public: pa, admin: aa, ca: paths.ca_cert.clone(), dir, stop }
    }

    pub fn browser(&self, admin: bool) -> Browser {
        let addr = if admin { self.admin } else { self.public };
        Browser::new(Client::new(addr, &self.ca, None).unwrap())
    }

    /// Messages in the maildir outbox, decoded bodies.
    pub fn mails(&self) -> Vec<Mail> {
        let dir = self.state.config.paths.maildir.join("new");
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut names: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
            names.sort();
            for p in names {
                out.push(Mail::parse(&std::fs::read_to_string(p).unwrap()));
            }
        }
        out
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Creates a reviewer and activates it through the web; returns (name, password, TOTP secret).
    pub async fn reviewer(&self, name: &str) -> (String, String, Vec<u8>) {
        let url = flumon_dmz::web::create_reviewer(&self.state, name).await.unwrap();
        let path = url.split_once("/activate/").map(|(_, t)| format!("/activate/{t}")).unwrap();
        let mut b = self.browser(true);
        let pw = "Review-Pass-2025!".to_owned();
        let secret = activate(&mut b, &path, &pw).await;
        (name.to_owned(), pw, secret)
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Opens an activation page, reads the TOTP secret, sets `pw`; returns the secret.
pub async fn activate(b: &mut Browser, path: &str, pw: &str) -> Vec<u8> {
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let b32: String =
        between(&html, "<p class=\"secret\">", "</p>").unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    assert!(html.contains("<svg"), "QR code shown");
    let secret = flumon_dmz::web::totp::base32_decode(&b32).unwrap();
    let code = totp_now(&secret);
    let r = b.post_form(path, &[("password", pw), ("password2", pw), ("code", &code)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.location(), "/login?activated=1");
    secret
}

/// An authenticator: hands out codes of steps never used before, waiting for the
/// next step when needed (the server accepts each step once, ±1 step of drift).
pub struct Totp {
    pub secret: Vec<u8>,
    pub last: u64,
}

impl Totp {
    /// After activation, which used the step of now.
    pub fn activated(secret: Vec<u8>) -> Totp {
        Totp { secret, last: now_step() }
    }

    pub async fn code(&mut self) -> String {
        // Never a step already used (the server takes each once), never one that has gone out of
        // the server's ±1 window while the test did other work: the next step, valid for 60-90 s.
        let want = (self.last + 1).max(now_step() + 1);
        while now_step() + 1 < want {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.last = want;
        format!("{:06}", flumon_dmz::web::totp::hotp(&self.secret, want, 6))
    }
}

pub fn now_step() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30
}

/// The TOTP code of now.
pub fn totp_now(secret: &[u8]) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    flumon_dmz::web::totp::code_at(secret, t)
}

/// A code of a later step (for a second login within the same 30 s, since a code is never accepted twice).
pub fn totp_next(secret: &[u8]) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    flumon_dmz::web::totp::code_at(secret, t + 30)
}

pub fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// One mail of the maildir.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject_raw: String,
    pub body: String,
}

impl Mail {
    fn parse(text: &str) -> Mail {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let get = |name: &str| {
            head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned)).unwrap_or_default()
        };
        let enc = get("Content-Transfer-Encoding").to_ascii_lowercase();
        let body = match enc.as_str() {
            "base64" => String::from_utf8(b64decode(&body.replace(['\r', '\n'], ""))).unwrap(),
            "quoted-printable" => qp_decode(body),
            _ => body.to_owned(),
        };
        Mail { to: get("To"), subject_raw: get("Subject"), body }
    }

    /// The first URL in the body containing `needle`.
    pub fn link(&self, needle: &str) -> Option<String> {
        self.body.split_whitespace().find(|w| w.starts_with("https://") && w.contains(needle)).map(str::to_owned)
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        buf = (buf << 6) | A.iter().position(|x| *x == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A browser: cookies, CSRF token, same-origin headers.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub cookies: Arc<Mutex<BTreeMap<String, String>>>,
    pub csrf: Arc<Mutex<String>>,
    /// Origin sent with POSTs (the client always sends `Host: localhost`).
    pub origin: String,
}

pub trait AnswerExt {
    fn text(&self) -> String;
    fn location(&self) -> String;
}

impl AnswerExt for Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn location(&self) -> String {
        self.headers.get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    }
}

impl Browser {
    pub fn new(client: Client) -> Browser {
        Browser { client, cookies: Arc::default(), csrf: Arc::default(), origin: "https://localhost".to_owned() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn absorb(&self, a: &Answer) {
        for v in a.headers.get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let first = s.split(';').next().unwrap();
            let (k, val) = first.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            if s.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), val.to_owned());
            }
        }
        let body = String::from_utf8_lossy(&a.body);
        if let Some(t) = between(&body, "name=\"csrf\" value=\"", "\"") {
            *self.csrf.lock().unwrap() = t.to_owned();
        }
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
        let cookie = self.cookie_header();
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            h.push(("cookie", &cookie));
        }
        let a = self.client.send(method, path, &h, body).await.unwrap();
        self.absorb(&a);
        a
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Vec::new()).await
    }

    pub fn token(&self) -> String {
        self.csrf.lock().unwrap().clone()
    }

    /// POSTs an urlencoded form with the current CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let tok = self.token();
        let mut all = vec![("csrf", tok.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some(&self.origin.clone())).await
    }

    /// POSTs an urlencoded form as given, with an optional Origin.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap().into_bytes();
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        self.send("POST", path, &h, body).await
    }

    /// POSTs multipart/form-data: text fields, then files (name, filename, type, bytes).
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &str, Vec<u8>)],
    ) -> Answer {
        let boundary = "----flumontestboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        for (k, name, ty, bytes) in files {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ty}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        let origin = self.origin.clone();
        self.send("POST", path, &[("content-type", &ct), ("origin", &origin)], body).await
    }

    /// Logs in; returns the answer (303 on success).
    pub async fn login(&self, user: &str, pw: &str, code: &str) -> Answer {
        self.get("/login").await;
        self.post_form("/login", &[("username", user), ("password", pw), ("code", code)]).await
    }
}

/// A valid 统一社会信用代码 built from a 17-character body.
pub fn uscc(body17: &str) -> String {
    let c = flumon_shared::validate::ids::uscc_check_char(body17).unwrap();
    format!("{body17}{c}")
}

/// A small PDF and PNG for the registration scans.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec()
}

pub fn png() -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    v.extend_from_slice(&[0u8; 32]);
    v
}

/// An approved hospital with an activated web account (made in-process, activated through the web).
pub async fn hospital_account(srv: &Srv, body17: &str, name: &str) -> (String, String, Totp) {
    use flumon_dmz::web::{accounts, activation};
    let code = uscc(body17);
    flumon_dmz::hospitals::create_approved(&srv.state, &code, name, "110105", 3).await.unwrap();
    let user = accounts::User::new(&code, accounts::Role::Hospital { code: code.clone() }, name, None);
    accounts::create(&srv.state, &user).unwrap();
    let token = activation::issue(&srv.state, &code).await.unwrap();
    let mut b = srv.browser(false);
    let pw = "Hosp-Pass-2025!".to_owned();
    let secret = activate(&mut b, &format!("/activate/{}", token.as_str()), &pw).await;
    (code, pw, Totp::activated(secret))
}

/// A `visits` CSV for hospital `code`: one good row, one negative count, one of another hospital.
pub fn visits_csv(code: &str, other: &str) -> Vec<u8> {
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    let day = now.format("%Y-%m-%d");
    let y = (now - chrono::Duration::days(1)).format("%Y-%m-%d");
    let y2 = (now - chrono::Duration::days(2)).format("%Y-%m-%d");
    let t = (now - chrono::Duration::minutes(10)).format("%Y-%m-%d %H:%M:%S");
    format!(
        "ZZJGDM,JLID,CZLX,GXSJ,YWRQ,BBH,TJRQ,MZRC,JZRC,ZYRS\n\
         {code},V-{day},1,{t},{day},1.0,{day},1200,80,300\n\
         {code},V-{y},1,{t},{y},1.0,{y},-5,80,300\n\
         {other},V-{y2},1,{t},{y2},1.0,{y2},1000,70,290\n"
    )
    .into_bytes()
}
