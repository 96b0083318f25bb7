//! For the portal browser test: a minimal WebDriver client (plain HTTP/1.1 to
//! a local `chromedriver` driving headless Chromium), as the intranet's
//! browser tests use (intranet/tests/web_common).
//!
//! ```text
//!  Driver ─▶ chromedriver --port ─▶ headless Chromium (acceptInsecureCerts) ─▶ https://127.0.0.1:PORT (the DMZ)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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

/// Skips (visibly) when there is no browser, unless FLUMON_REQUIRE_BROWSER is set.
pub fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    match browser() {
        Some(b) => Some(b),
        None if std::env::var_os("FLUMON_REQUIRE_BROWSER").is_some() => {
            panic!(
                "FLUMON_REQUIRE_BROWSER is set but chromium / chromedriver are missing (apt-get install chromium chromium-driver)"
            )
        }
        None => {
            eprintln!(
                "SKIP: chromium or chromedriver not installed; browser test not run (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// A WebDriver session on a local chromedriver.
pub struct Driver {
    port: u16,
    child: Child,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes (the driver may keep the connection open).
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "webdriver closed the connection");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len = head.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()));
    let body = match len {
        Some(len) => {
            while buf.len() < head_end + len {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0, "webdriver closed the connection early");
                buf.extend_from_slice(&tmp[..n]);
            }
            String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string()
        }
        None => {
            let _ = s.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf[head_end..]).to_string()
        }
    };
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    pub fn start(chrome: &Path, driver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chrome.to_string_lossy(),
                "prefs": { "intl.accept_languages": "zh-CN" },
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1360,900", "--lang=zh-CN", "--ignore-certificate-errors"]
            }
        }}});
        let v = http(port, "POST", "/session", Some(&caps));
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        Driver { port, child, session }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let t0 = Instant::now();
        let v = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        if t0.elapsed() > Duration::from_secs(3) {
            eprintln!("slow: webdriver {method} {path} {body:?} took {:.1} s", t0.elapsed().as_secs_f64());
        }
        if v["value"].get("error").is_some() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    fn find_opt(&self, css: &str) -> Option<String> {
        let v = http(
            self.port,
            "POST",
            &format!("/session/{}/element", self.session),
            Some(&json!({ "using": "css selector", "value": css })),
        );
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    pub fn exists(&self, css: &str) -> bool {
        self.find_opt(css).is_some()
    }

    pub fn find(&self, css: &str) -> String {
        self.find_opt(css).unwrap_or_else(|| panic!("no element {css} on {}: {}", self.url(), self.source()))
    }

    pub fn count(&self, css: &str) -> usize {
        self.cmd("POST", "/elements", Some(json!({ "using": "css selector", "value": css })))
            .as_array()
            .map_or(0, Vec::len)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None).as_str().unwrap_or_default().to_string()
    }

    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Fetches `path` from the page (same origin, the session cookie sent): [status, content-type, text, bytes, first two bytes].
    pub fn fetch(&self, path: &str) -> Value {
        let script = "const cb = arguments[arguments.length - 1];\
            fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer().then(b => {\
              const u = new Uint8Array(b);\
              cb([r.status, r.headers.get('content-type') || '', new TextDecoder().decode(b), b.byteLength, String.fromCharCode(u[0] || 0, u[1] || 0)]);\
            })).catch(e => cb([0, String(e), '', 0, '']));";
        self.cmd("POST", "/execute/async", Some(json!({ "script": script, "args": [path] })))
    }

    /// A PNG of the whole page (the window is resized to the page's height first).
    pub fn screenshot(&self, file: &Path) {
        let h =
            self.js("return Math.min(document.documentElement.scrollHeight, 4000);", json!([])).as_u64().unwrap_or(900);
        self.cmd("POST", "/window/rect", Some(json!({ "width": 1360, "height": h + 120 })));
        std::thread::sleep(Duration::from_millis(300));
        let b64 = self.cmd("GET", "/screenshot", None).as_str().unwrap_or_default().to_string();
        std::fs::write(file, b64_decode(&b64)).unwrap();
        self.cmd("POST", "/window/rect", Some(json!({ "width": 1360, "height": 900 })));
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

/// A strong test password.
pub const PASSWORD: &str = "Lx7#quartz-Meadow";

impl Driver {
    /// Sends keys to an element without clearing it first (file inputs).
    pub fn send_keys(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }
}
