//! Password rules of LEVEL3 身份鉴别 and argon2id hashing.
//!
//! ```text
//!  check_policy(pw, username)  ≥ 10 characters, 3 of 4 kinds (upper, lower, digit, symbol),
//!                              ≤ 128 characters, not containing the user name
//!  hash(pw)                    argon2id (m = 19 MiB, t = 2, p = 1), PHC string, random salt
//!  verify(pw, phc)             constant-time compare inside argon2
//!  reused(pw, history)         the new password against the last HISTORY_LEN hashes
//!  expired(changed_at, now)    older than MAX_AGE_DAYS → the next login must change it
//! ```
//! Hashing and verifying take tens of milliseconds: callers run them in
//! `tokio::task::spawn_blocking`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 10;
/// Longest accepted password, in characters (bounds the hashing work an attacker can ask for).
pub const MAX_LEN: usize = 128;
/// How many character kinds (of upper, lower, digit, symbol) a password needs.
pub const MIN_KINDS: usize = 3;
/// How many earlier passwords may not be used again.
pub const HISTORY_LEN: usize = 5;
/// A password must be changed after this many days.
pub const MAX_AGE_DAYS: i64 = 90;

/// Why a new password is refused; `Display` is the Chinese message shown on the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    TooShort,
    TooLong,
    TooFewKinds,
    ContainsUsername,
    Mismatch,
    Reused,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            PolicyError::TooShort => "密码至少 10 个字符 (at least 10 characters)",
            PolicyError::TooLong => "密码最多 128 个字符 (at most 128 characters)",
            PolicyError::TooFewKinds => {
                "密码须包含大写字母、小写字母、数字、符号中的至少三类 (3 of: upper, lower, digit, symbol)"
            }
            PolicyError::ContainsUsername => "密码不能包含用户名 (must not contain the user name)",
            PolicyError::Mismatch => "两次输入的密码不一致 (the passwords differ)",
            PolicyError::Reused => "不能使用最近 5 次用过的密码 (one of the last 5 passwords)",
        };
        f.write_str(s)
    }
}

/// The kinds of character in `pw`: (upper, lower, digit, symbol).
fn kinds(pw: &str) -> usize {
    let (mut u, mut l, mut d, mut s) = (false, false, false, false);
    for c in pw.chars() {
        if c.is_uppercase() {
            u = true;
        } else if c.is_lowercase() {
            l = true;
        } else if c.is_ascii_digit() {
            d = true;
        } else if !c.is_whitespace() && !c.is_control() {
            s = true;
        }
    }
    [u, l, d, s].iter().filter(|k| **k).count()
}

/// Check a new password against the rules (not against the history: see [`reused`]).
pub fn check_policy(pw: &str, username: &str) -> Result<(), PolicyError> {
    let n = pw.chars().count();
    if n < MIN_LEN {
        return Err(PolicyError::TooShort);
    }
    if n > MAX_LEN {
        return Err(PolicyError::TooLong);
    }
    if kinds(pw) < MIN_KINDS {
        return Err(PolicyError::TooFewKinds);
    }
    if username.chars().count() >= 3 && pw.to_lowercase().contains(&username.to_lowercase()) {
        return Err(PolicyError::ContainsUsername);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    // OWASP's first argon2id choice: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash `pw` with argon2id and a fresh 16-byte salt; the PHC string carries the parameters.
pub fn hash(pw: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "system random generator failed".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher().hash_password(pw.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `pw` matches the PHC string `phc` (false for a malformed hash).
pub fn verify(pw: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(pw.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing, verified against when the user does not exist, so that an
/// unknown name takes as long as a wrong password.
pub fn dummy_verify(pw: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("dummy-Password-1").unwrap_or_default());
    let _ = verify(pw, phc);
}

/// Whether `pw` is one of the hashed passwords in `history` (the current one included).
pub fn reused(pw: &str, history: &[String]) -> bool {
    history.iter().any(|h| verify(pw, h))
}

/// Push the new hash on the history, keeping the last [`HISTORY_LEN`].
pub fn push_history(history: &mut Vec<String>, phc: String) {
    history.push(phc);
    while history.len() > HISTORY_LEN {
        history.remove(0);
    }
}

/// Whether a password set at `changed_at` (unix seconds) must be changed at `now`.
pub fn expired(changed_at: i64, now: i64) -> bool {
    now.saturating_sub(changed_at) >= MAX_AGE_DAYS * 86_400
}

/// A password held while it is used, wiped when dropped.
pub type Secret = Zeroizing<String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_policy("Ab1!", "u"), Err(PolicyError::TooShort));
        assert_eq!(check_policy("abcdefghij", "u"), Err(PolicyError::TooFewKinds));
        assert_eq!(check_policy("abcdefghi1", "u"), Err(PolicyError::TooFewKinds));
        assert_eq!(check_policy("abcdefgh1A", "u"), Ok(()));
        assert_eq!(check_policy("abcdefgh1!", "u"), Ok(()));
        assert_eq!(check_policy("ABCDEFGH1!", "u"), Ok(()));
        assert_eq!(check_policy("abcdefgH!!", "u"), Ok(()));
        assert_eq!(check_policy("流感监测系统密码ab1", "u"), Ok(()), "CJK counts as a symbol, digits and lower");
        assert_eq!(check_policy(&"Aa1!".repeat(40), "u"), Err(PolicyError::TooLong));
        assert_eq!(check_policy("xReviewer1!", "reviewer"), Err(PolicyError::ContainsUsername));
        assert_eq!(check_policy("Aa1!Aa1!Aa", "ab"), Ok(()), "short names are not checked");
        assert!(!PolicyError::Reused.to_string().is_empty());
    }

    #[test]
    fn hash_and_history() {
        let h = hash("Correct-Horse-1").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("Correct-Horse-1", &h));
        assert!(!verify("Correct-Horse-2", &h));
        assert!(!verify("Correct-Horse-1", "not a hash"));
        let h2 = hash("Correct-Horse-1").unwrap();
        assert_ne!(h, h2, "fresh salt");
        let mut hist = Vec::new();
        for i in 0..7 {
            push_history(&mut hist, format!("h{i}"));
        }
        assert_eq!(hist, ["h2", "h3", "h4", "h5", "h6"]);
        assert!(reused("Correct-Horse-1", &[h2]));
        dummy_verify("x");
    }

    #[test]
    fn expiry() {
        assert!(!expired(0, 89 * 86_400));
        assert!(expired(0, 90 * 86_400));
    }
}
