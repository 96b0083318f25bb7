//! Cross-site request forgery defences, two layers on every POST:
//!
//! ```text
//!  1. origin:  Origin (or, without it, Referer) must be this listener's own https origin
//!              (the Host the browser used, or a configured base URL); neither header → refused
//!  2. token:   hidden form field `csrf` equals
//!                signed-in: the session's random token (sled, never leaves the server otherwise)
//!                anonymous: the `__Host-flumon-pre` cookie (double submit; a __Host- cookie
//!                           cannot be set or read by another site, SameSite=Strict)
//! ```
//! Comparisons are constant-time. A failure answers 403.

use subtle::ConstantTimeEq;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// A fresh token: 32 random bytes, URL-safe base64.
pub fn new_token() -> Result<String, String> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| "system random generator failed".to_owned())?;
    Ok(b64url(&b))
}

/// URL-safe base64 without padding.
pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = ((n >> (18 - 6 * i)) & 63) as usize;
            out.push(A.get(idx).map_or('A', |c| char::from(*c)));
        }
    }
    out
}

/// Whether the submitted token equals the expected one (constant time; empty never matches).
pub fn token_ok(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !expected.is_empty() && s.len() == expected.len() => {
            bool::from(s.as_bytes().ct_eq(expected.as_bytes()))
        }
        _ => false,
    }
}

/// The scheme-host-port origin of a URL (`https://h:p`), lower-cased, without the path.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut host = host.to_ascii_lowercase();
    if scheme == "https"
        && let Some(h) = host.strip_suffix(":443")
    {
        host = h.to_owned();
    }
    Some(format!("{scheme}://{host}"))
}

/// Whether a POST comes from this site: its Origin (or Referer when there is no
/// Origin) must be `https://` + the request's Host, or one of `allowed` (base URLs).
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let claimed = match (origin, referer) {
        (Some(o), _) if o != "null" => origin_of(o),
        (Some(_), _) => None,
        (None, Some(r)) => origin_of(r),
        (None, None) => None,
    };
    let Some(claimed) = claimed else { return false };
    let mut ok: Vec<String> = allowed.iter().filter_map(|a| origin_of(a)).collect();
    if let Some(h) = host
        && let Some(o) = origin_of(&format!("https://{h}"))
    {
        ok.push(o);
    }
    ok.contains(&claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token().unwrap());
        assert!(token_ok(&t, Some(&t)));
        assert!(!token_ok(&t, None));
        assert!(!token_ok(&t, Some("")));
        assert!(!token_ok(&t, Some(&t[..42])));
        let mut wrong = t.clone().into_bytes();
        wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
        assert!(!token_ok(&t, Some(std::str::from_utf8(&wrong).unwrap())));
        assert!(!token_ok("", Some("")));
    }

    #[test]
    fn base64url() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn origins() {
        let h = Some("dmz.example.cn:8443");
        assert!(same_origin(Some("https://dmz.example.cn:8443"), None, h, &[]));
        assert!(same_origin(Some("https://DMZ.example.cn:8443"), None, h, &[]));
        assert!(same_origin(None, Some("https://dmz.example.cn:8443/hospital/upload?x=1"), h, &[]));
        assert!(!same_origin(Some("https://evil.example:8443"), Some("https://dmz.example.cn:8443/"), h, &[]));
        assert!(!same_origin(Some("http://dmz.example.cn:8443"), None, h, &[]), "plain http");
        assert!(!same_origin(Some("null"), None, h, &[]));
        assert!(!same_origin(None, None, h, &[]));
        assert!(!same_origin(Some("https://dmz.example.cn:8443.evil.example"), None, h, &[]));
        assert!(!same_origin(None, Some("https://dmz.example.cn:8443@evil.example/"), h, &[]));
        assert!(same_origin(Some("https://report.example.cn"), None, h, &["https://report.example.cn/".to_owned()]));
        assert!(same_origin(Some("https://report.example.cn"), None, Some("report.example.cn:443"), &[]));
    }
}
