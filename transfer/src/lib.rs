//! `flumon-transfer`: moves the DMZ's batch files across a one-way link into
//! the intranet's inbound spool (TRANSFER.md; wire format in PROTOCOL.md).
//!
//! ```text
//!  DMZ                                                   intranet
//!  outbox/ ─▶ send ─▶ wire (MAC) ─▶ link ═ diode (UDP) ═▶ link ─▶ recv ─▶ checks ─▶ spool/
//!             │  fec (RaptorQ), bucket (rate)   or ferry (files)   │  fec, commit     └▶ quarantine/
//!             └▶ send journal ─────── carried by hand ──────────── recv journal ─▶ reconcile
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod audit;
pub mod bucket;
pub mod config;
pub mod error;
pub mod fec;
pub mod fsutil;
pub mod fuzz;
pub mod init;
pub mod link;
pub mod reconcile;
pub mod recv;
pub mod send;
pub mod settings;
pub mod spool;
pub mod status;
pub mod wire;

pub use error::{Error, Result};

/// Now, unix milliseconds.
pub fn now_ms() -> u64 {
    flumon_shared::journal::now_ms()
}
