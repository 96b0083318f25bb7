//! For the portal browser test: the WebDriver client of `flumon_tests::webdriver`
//! (plain HTTP/1.1 to a local `chromedriver` driving headless Chromium), as the
//! intranet's browser tests use it; a failed step fails the test.
//!
//! ```text
//!  Driver ─▶ chromedriver --port ─▶ headless Chromium (acceptInsecureCerts) ─▶ https://127.0.0.1:PORT (the DMZ)
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::path::PathBuf;

use flumon_tests::webdriver::{self, Checked, Harness, Options};
use serde_json::json;

/// The portal tests' session: Accept-Language zh-CN, clicks return at once.
pub struct Portal;

impl Harness for Portal {
    fn fail(msg: String) -> ! {
        panic!("{msg}")
    }

    fn options() -> Options {
        Options { prefs: Some(json!({ "intl.accept_languages": "zh-CN" })), settle_clicks: false }
    }
}

/// A WebDriver session on a local chromedriver.
pub type Driver = Checked<Portal>;

/// Skips (visibly) when there is no browser, unless FLUMON_REQUIRE_BROWSER is set.
pub fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    webdriver::browser_or_skip().unwrap_or_else(|e| panic!("{e}"))
}

/// A strong test password.
pub const PASSWORD: &str = "Lx7#quartz-Meadow";
