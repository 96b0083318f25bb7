//! `flumon-intranet`: the isolated zone's service. It ingests the verified
//! batches the transfer receiver leaves in the inbound spool, keeps the live
//! records in SQL, computes every indicator of INDICATORS.md, MEM epidemic
//! levels and nowcasts, and serves them to scoped accounts.
//!
//! ```text
//!  inbound/*.fbatch ─▶ ingest (one transaction per batch, natural keys, tombstones) ─▶ SQL ─▶ rollups
//!                                                                                       │
//!  analysts ─HTTPS (TLS 1.3)─▶ /api/v1 ─▶ query::scoped (the one scope check) ─▶ indicators · MEM · nowcast
//!  report CLI ─────────────────────────▶ same functions
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod api;
pub mod audit;
pub mod auth;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod indicators;
pub mod ingest;
pub mod levels;
pub mod mem;
pub mod nowcast;
pub mod regions;
pub mod report;
pub mod server;
pub mod timeconv;
pub mod web;

pub use error::{Error, Result};
