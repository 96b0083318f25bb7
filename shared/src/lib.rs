//! `flumon-shared`: what every flumon program has in common.
//!
//! ```text
//!  upload bytes ─▶ parse ─▶ RawRow ─▶ validate ─▶ Record ─▶ scope ─▶ desens ─▶ Outbound ─▶ batch
//!  (CSV/XLSX/JSON)  (model field tables drive parse, validate and docs/INTERFACE.md)
//!  crypto: SM3 / HMAC-SM3 / SM4-GCM / SM2      journal: SM3 hash-chained audit log
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod auth;
pub mod batch;
pub mod crypto;
pub mod desens;
pub mod docgen;
pub mod entries;
pub mod error;
pub mod journal;
pub mod model;
pub mod parse;
pub mod receipt;
pub mod scope;
pub mod svgchart;
pub mod validate;

pub use error::{Error, Result};
