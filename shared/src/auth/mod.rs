//! People's authentication, shared by the DMZ's and the intranet's accounts
//! (LEVEL3.md 身份鉴别 and 双因素): the password policy with argon2id hashing,
//! and TOTP (RFC 6238).
//!
//! ```text
//!  password ─▶ password::check_policy ─▶ password::hash (argon2id) ─▶ stored
//!  login: password::verify + totp::verify (step not used before) ─▶ session
//! ```

pub mod password;
pub mod totp;
