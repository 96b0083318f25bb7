//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second steps,
//! one step of drift either way, and no code used twice.
//!
//! ```text
//!  secret (20 random bytes) ──base32──▶ otpauth://totp/ISSUER:ACCOUNT?secret=…  (shown once at activation)
//!  login: code ──▶ steps now-1, now, now+1 ──▶ matched step > last used step? ──▶ accept, remember step
//! ```
//! SHA-1 is what every authenticator app speaks; in HMAC it is not broken.
//! ring names it `HMAC_SHA1_FOR_LEGACY_USE_ONLY`.

use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of a step, seconds.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Length of a generated secret, bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

/// A fresh random secret.
pub fn generate_secret() -> Result<Zeroizing<Vec<u8>>, String> {
    let mut s = Zeroizing::new(vec![0u8; SECRET_LEN]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s)
        .map_err(|_| "system random generator failed".to_owned())?;
    Ok(s)
}

/// The HOTP value of `secret` at `counter` with `digits` digits (RFC 4226 §5.3).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let word = match mac.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    };
    word % 10u32.pow(digits)
}

/// The step that holds unix time `t`.
pub fn step_of(t: u64) -> u64 {
    t / STEP_SECONDS
}

/// The 6-digit code at unix time `t`, zero-padded.
pub fn code_at(secret: &[u8], t: u64) -> String {
    format!("{:06}", hotp(secret, step_of(t), DIGITS))
}

/// Check `code` at unix time `now` against steps now−1 … now+1 that are later than
/// `last_step` (the step of the last accepted code, 0 for none). Returns the step
/// matched, to be stored as the new `last_step`.
pub fn verify(secret: &[u8], code: &str, now: u64, last_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut found = None;
    for step in now_step.saturating_sub(1)..=now_step + 1 {
        let expected = format!("{:06}", hotp(secret, step, DIGITS));
        // Check every candidate, so timing does not tell which step matched.
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buf = 0u64;
    let mut bits = 0u32;
    for &b in data {
        buf = (buf << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let i = ((buf >> bits) & 31) as usize;
            out.push(B32.get(i).map_or('A', |c| char::from(*c)));
        }
    }
    if bits > 0 {
        let i = ((buf << (5 - bits)) & 31) as usize;
        out.push(B32.get(i).map_or('A', |c| char::from(*c)));
    }
    out
}

/// Decode RFC 4648 base32, ignoring case, spaces and padding.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u64;
    let mut bits = 0u32;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = B32.iter().position(|x| *x == c.to_ascii_uppercase())? as u64;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Percent-encode for an otpauth URI component.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI of Google Authenticator's key-URI format.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        pct(issuer),
        pct(account),
        base32_encode(secret),
        pct(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits, secret "12345678901234567890").
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, step_of(t), 8), want, "t={t}");
            assert_eq!(code_at(secret, t), format!("{:06}", want % 1_000_000));
        }
    }

    /// RFC 4226 appendix D.
    #[test]
    fn rfc4226_vectors() {
        let secret = b"12345678901234567890";
        let want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(secret, c as u64, 6), *w);
        }
    }

    #[test]
    fn window_and_reuse() {
        let secret = b"12345678901234567890";
        let t = 1_700_000_000u64;
        let step = step_of(t);
        let code = code_at(secret, t);
        assert_eq!(verify(secret, &code, t, 0), Some(step));
        assert_eq!(verify(secret, &code, t, step), None, "same code twice");
        assert_eq!(verify(secret, &code, t + 30, 0), Some(step), "one step late");
        assert_eq!(verify(secret, &code, t - 30, 0), Some(step), "one step early");
        assert_eq!(verify(secret, &code, t + 60, 0), None, "two steps late");
        assert_eq!(verify(secret, " 12345", t, 0), None);
        assert_eq!(verify(secret, "abcdef", t, 0), None);
        let next = code_at(secret, t + 30);
        assert_eq!(verify(secret, &next, t, step), Some(step + 1), "a later code after a used one");
    }

    #[test]
    fn base32() {
        // RFC 4648 §10
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb oi==").unwrap(), b"foobar");
        assert!(base32_decode("MZ1").is_none());
        let s = generate_secret().unwrap();
        assert_eq!(base32_decode(&base32_encode(&s)).unwrap(), s.as_slice());
    }

    #[test]
    fn uri() {
        let uri = otpauth_uri("flumon 流感监测", "alice", b"12345678901234567890");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"));
    }
}
