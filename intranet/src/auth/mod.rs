//! Accounts of LEVEL3 in SQL: creation with a one-time activation code,
//! activation (password + TOTP enrolment), login with password + TOTP,
//! lockout (5 failures → 30 minutes), sessions ending after 30 idle minutes.
//!
//! ```text
//!  create_user ─▶ activation code (shown once; SM3 stored, 72 h)
//!  activate(name, code, password) ─▶ argon2id hash + TOTP secret (returned once)
//!  confirm(name, code, totp) ─▶ account active
//!  login(name, password, totp) ─▶ failures++ (5 ─▶ locked 30 min) │ session token (SM3 stored) + CSRF token
//!  authenticate(token) ─▶ idle > 30 min ─▶ gone │ (last_seen > 60 s old ─▶ last_seen = now) ─▶ Account
//! ```
//! Argon2 runs in `spawn_blocking`.

pub mod accounts;
pub use flumon_shared::auth::password;
pub use flumon_shared::auth::totp;

pub use accounts::{Clock, Session, authenticate, create_user, login, logout};
