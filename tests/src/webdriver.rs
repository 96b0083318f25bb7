//! A minimal WebDriver client for the browser tests (the DMZ portal's and the
//! intranet's): plain HTTP/1.1 to a local `chromedriver` driving headless
//! Chromium, which accepts the tests' self-signed certificates.
//!
//! ```text
//!  browser() ─▶ (chromium, chromedriver) paths, or None (browser_or_skip: skip, or Err under FLUMON_REQUIRE_BROWSER)
//!  Session::start ─▶ chromedriver --port=P ─▶ POST /session (headless, zh-CN, acceptInsecureCerts)
//!  Session::goto / find / click / … ─▶ /session/{id}/… ─▶ Result<_, String> (the driver's error in the message)
//!  Checked<H> = a Session whose steps end the test through H::fail (a test panics there) on any error
//! ```

use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Proc, free_port};

/// What a WebDriver step returns: the value, or what went wrong.
pub type Result<T> = std::result::Result<T, String>;

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are, if installed.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| {
            names.iter().find_map(|n| {
                std::env::var_os("PATH")
                    .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(n)).find(|p| p.exists()))
            })
        })
    };
    let chrome = find(&["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"])?;
    let driver = find(&["/usr/bin/chromedriver", "chromedriver"])?;
    Some((chrome, driver))
}

/// The browser, or `Ok(None)` after a visible SKIP line when there is none;
/// an error when FLUMON_REQUIRE_BROWSER is set and there is none.
pub fn browser_or_skip() -> Result<Option<(PathBuf, PathBuf)>> {
    match browser() {
        Some(b) => Ok(Some(b)),
        None if std::env::var_os("FLUMON_REQUIRE_BROWSER").is_some() => Err(
            "FLUMON_REQUIRE_BROWSER is set but chromium / chromedriver are missing (apt-get install chromium chromium-driver)"
                .to_owned(),
        ),
        None => {
            eprintln!(
                "SKIP: chromium or chromedriver not installed; browser test not run (apt-get install chromium chromium-driver)"
            );
            Ok(None)
        }
    }
}

/// How a session is set up.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Chromium preferences (`goog:chromeOptions.prefs`), if any.
    pub prefs: Option<Value>,
    /// `click` waits for the navigation it started (`settle`).
    pub settle_clicks: bool,
}

/// A WebDriver session on a local chromedriver (ended and the driver killed when dropped).
pub struct Session {
    port: u16,
    session: String,
    settle_clicks: bool,
    // Dropped after `drop` below deleted the session: kills and reaps chromedriver.
    _driver: Proc,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
    }
}

fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>, tmp: &mut [u8], what: &str) -> Result<()> {
    let n = s.read(tmp).map_err(|e| format!("webdriver read: {e}"))?;
    if n == 0 {
        return Err(what.to_owned());
    }
    buf.extend_from_slice(tmp.get(..n).unwrap_or_default());
    Ok(())
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let io = |e: std::io::Error| format!("webdriver {method} {path}: {e}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(600))).map_err(io)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(io)?;
    // Read the head, then exactly Content-Length bytes (the driver may keep the connection open).
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 65536];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        read_more(&mut s, &mut buf, &mut tmp, "webdriver closed the connection")?;
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().map_err(|e| format!("webdriver Content-Length {v:?}: {e}")))
        .transpose()?;
    let body = match len {
        Some(len) => {
            while buf.len() < head_end + len {
                read_more(&mut s, &mut buf, &mut tmp, "webdriver closed the connection early")?;
            }
            buf.get(head_end..head_end + len)
        }
        None => {
            let _ = s.read_to_end(&mut buf);
            buf.get(head_end..)
        }
    };
    Ok(serde_json::from_str(&String::from_utf8_lossy(body.unwrap_or_default())).unwrap_or(Value::Null))
}

fn value(v: &Value) -> &Value {
    v.get("value").unwrap_or(&Value::Null)
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

impl Session {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub fn start(chrome: &Path, driver: &Path, opts: &Options) -> Result<Session> {
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let child =
            Proc::spawn(Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()))
                .map_err(|e| format!("{}: {e}", driver.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() >= deadline {
                return Err("chromedriver did not start".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut chrome_opts = json!({
            "binary": chrome.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1360,900", "--lang=zh-CN", "--ignore-certificate-errors"]
        });
        if let (Some(prefs), Some(o)) = (&opts.prefs, chrome_opts.as_object_mut()) {
            o.insert("prefs".to_owned(), prefs.clone());
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": chrome_opts
        }}});
        let v = http(port, "POST", "/session", Some(&caps))?;
        let session = value(&v).get("sessionId").and_then(Value::as_str).ok_or_else(|| format!("no session: {v}"))?;
        Ok(Session { port, session: session.to_owned(), settle_clicks: opts.settle_clicks, _driver: child })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let t0 = Instant::now();
        let v = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref())?;
        if t0.elapsed() > Duration::from_secs(3) {
            eprintln!("slow: webdriver {method} {path} {body:?} took {:.1} s", t0.elapsed().as_secs_f64());
        }
        let v = value(&v);
        if v.get("error").is_some() {
            return Err(format!("webdriver {method} {path}: {v}"));
        }
        Ok(v.clone())
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).map(drop)
    }

    pub fn url(&self) -> Result<String> {
        self.cmd("GET", "/url", None).map(|v| string(&v))
    }

    pub fn source(&self) -> Result<String> {
        self.cmd("GET", "/source", None).map(|v| string(&v))
    }

    /// The element's reference, or `None` when there is no such element.
    pub fn find_opt(&self, css: &str) -> Result<Option<String>> {
        let v = http(
            self.port,
            "POST",
            &format!("/session/{}/element", self.session),
            Some(&json!({ "using": "css selector", "value": css })),
        )?;
        let e = value(&v).get(ELEMENT).and_then(Value::as_str);
        if e.is_none() && std::env::var_os("FLUMON_WD_DEBUG").is_some() {
            eprintln!("find {css}: {v}");
        }
        Ok(e.map(str::to_owned))
    }

    pub fn exists(&self, css: &str) -> Result<bool> {
        Ok(self.find_opt(css)?.is_some())
    }

    /// The element's reference; an error naming the page when there is none.
    pub fn find(&self, css: &str) -> Result<String> {
        self.find_opt(css)?.ok_or_else(|| {
            format!("no element {css} on {}: {}", self.url().unwrap_or_default(), self.source().unwrap_or_default())
        })
    }

    pub fn count(&self, css: &str) -> Result<usize> {
        let v = self.cmd("POST", "/elements", Some(json!({ "using": "css selector", "value": css })))?;
        Ok(v.as_array().map_or(0, Vec::len))
    }

    pub fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})))?;
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text }))).map(drop)
    }

    /// Sends keys to an element without clearing it first (file inputs).
    pub fn send_keys(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text }))).map(drop)
    }

    /// Clicks; with `Options::settle_clicks`, then waits for a navigation it started to finish.
    pub fn click(&self, css: &str) -> Result<()> {
        let e = self.find(css)?;
        if self.settle_clicks {
            self.js("window.__flumonOld = true;", json!([]))?;
        }
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))?;
        if self.settle_clicks {
            self.settle()?;
        }
        Ok(())
    }

    /// Waits (up to 20 s) until the page is a new, completely loaded document.
    pub fn settle(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = http(
                self.port,
                "POST",
                &format!("/session/{}/execute/sync", self.session),
                Some(
                    &json!({ "script": "return document.readyState === 'complete' && !window.__flumonOld;", "args": [] }),
                ),
            )?;
            if *value(&v) == json!(true) || Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Submits the filter form (`form.filters`) after `script` set its fields, and waits for the new page.
    pub fn submit_filters(&self, script: &str, args: Value) -> Result<()> {
        self.js("window.__flumonOld = true;", json!([]))?;
        self.js(&format!("{script}; document.querySelector('form.filters').submit();"), args)?;
        self.settle()
    }

    pub fn text(&self, css: &str) -> Result<String> {
        let e = self.find(css)?;
        self.cmd("GET", &format!("/element/{e}/text"), None).map(|v| string(&v))
    }

    pub fn js(&self, script: &str, args: Value) -> Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Fetches `path` from the page (same origin, the session cookie sent): [status, content-type, text, bytes, first two bytes].
    pub fn fetch(&self, path: &str) -> Result<Value> {
        let script = "const cb = arguments[arguments.length - 1];\
            fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer().then(b => {\
              const u = new Uint8Array(b);\
              cb([r.status, r.headers.get('content-type') || '', new TextDecoder().decode(b), b.byteLength, String.fromCharCode(u[0] || 0, u[1] || 0)]);\
            })).catch(e => cb([0, String(e), '', 0, '']));";
        self.cmd("POST", "/execute/async", Some(json!({ "script": script, "args": [path] })))
    }

    /// A PNG of the whole page (the window is resized to the page's height first).
    pub fn screenshot(&self, file: &Path) -> Result<()> {
        let h = self.js("return Math.min(document.documentElement.scrollHeight, 4000);", json!([]))?.as_u64();
        self.cmd("POST", "/window/rect", Some(json!({ "width": 1360, "height": h.unwrap_or(900) + 120 })))?;
        std::thread::sleep(Duration::from_millis(300));
        let b64 = string(&self.cmd("GET", "/screenshot", None)?);
        std::fs::write(file, b64_decode(&b64)).map_err(|e| format!("{}: {e}", file.display()))?;
        self.cmd("POST", "/window/rect", Some(json!({ "width": 1360, "height": 900 }))).map(drop)
    }
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// How a test uses `Checked`: what ends it on an error, and its session options.
pub trait Harness {
    /// Ends the test with `msg` (a test panics).
    fn fail(msg: String) -> !;

    /// The options `Checked::start` opens the session with.
    fn options() -> Options {
        Options::default()
    }
}

/// A `Session` for test code: each step returns its value, and on an error
/// ends the test through `H::fail` with the message.
pub struct Checked<H> {
    session: Session,
    harness: PhantomData<H>,
}

impl<H: Harness> Checked<H> {
    fn ok<T>(r: Result<T>) -> T {
        r.unwrap_or_else(|e| H::fail(e))
    }

    pub fn start(chrome: &Path, driver: &Path) -> Self {
        Checked { session: Self::ok(Session::start(chrome, driver, &H::options())), harness: PhantomData }
    }

    /// The session underneath (its steps return errors instead).
    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn goto(&self, url: &str) {
        Self::ok(self.session.goto(url))
    }

    pub fn url(&self) -> String {
        Self::ok(self.session.url())
    }

    pub fn source(&self) -> String {
        Self::ok(self.session.source())
    }

    pub fn exists(&self, css: &str) -> bool {
        Self::ok(self.session.exists(css))
    }

    pub fn find(&self, css: &str) -> String {
        Self::ok(self.session.find(css))
    }

    pub fn count(&self, css: &str) -> usize {
        Self::ok(self.session.count(css))
    }

    pub fn type_into(&self, css: &str, text: &str) {
        Self::ok(self.session.type_into(css, text))
    }

    /// Sends keys to an element without clearing it first (file inputs).
    pub fn send_keys(&self, css: &str, text: &str) {
        Self::ok(self.session.send_keys(css, text))
    }

    /// Clicks (and waits for the navigation it started under `Options::settle_clicks`).
    pub fn click(&self, css: &str) {
        Self::ok(self.session.click(css))
    }

    /// Waits (up to 20 s) until the page is a new, completely loaded document.
    pub fn settle(&self) {
        Self::ok(self.session.settle())
    }

    /// Submits the filter form after `script` set its fields, and waits for the new page.
    pub fn submit_filters(&self, script: &str, args: Value) {
        Self::ok(self.session.submit_filters(script, args))
    }

    pub fn text(&self, css: &str) -> String {
        Self::ok(self.session.text(css))
    }

    pub fn js(&self, script: &str, args: Value) -> Value {
        Self::ok(self.session.js(script, args))
    }

    /// Fetches `path` from the page: [status, content-type, text, bytes, first two bytes].
    pub fn fetch(&self, path: &str) -> Value {
        Self::ok(self.session.fetch(path))
    }

    /// A PNG of the whole page.
    pub fn screenshot(&self, file: &Path) {
        Self::ok(self.session.screenshot(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_decodes_standard_and_url_alphabets() {
        assert_eq!(b64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
        assert_eq!(b64_decode("-_8"), [0xfb, 0xff]);
        assert_eq!(b64_decode(""), b"");
    }
}
