//! Desensitisation (INTERFACE §5): what the DMZ does to a record before it may
//! cross to the intranet, and what the intranet receiver checks again.
//!
//! ```text
//!   scrub.rs  free text ─▶ scrub() ─▶ text with ［姓名］ ［证件号］ ［电话］ ［病案号］ ［地址］
//!             clauses (1) own XM/BAH/SFZH/DH, (2) ID-card and mobile shapes,
//!             (3) label + value, then (beyond the rule, switchable) kin names
//!   scan.rs   receiver side (ARCHITECTURE invariant 2): scan() finds the shapes and
//!             labels of (2)–(3) that are not markers; scan(scrub(x)) is always empty
//!   keys.rs   SFZH ─▶ person_key(), JZLSH / JLID ─▶ pseudonym(): HMAC-SM3, letters a–p
//!   rules.rs  the matchers (2)–(3) and the markers, shared by scrub and scan
//!   kin.rs    kinship words and surnames for the kin-name rule
//! ```
//!
//! docs/SCRUBBING.md describes the rules as implemented, the decisions where
//! the spec leaves room, and the measured recall and false-scrub rates.

pub mod keys;
pub mod outbound;
pub mod scan;
pub mod scrub;

mod kin;
mod rules;

#[cfg(test)]
mod measure;
