//! `flumon-transfer send`: the DMZ side. A scheduler thread decides which
//! pass of which batch goes next and builds its datagrams; the send thread
//! paces them onto the link with heartbeats and manifests (diode mode), or
//! the scheduler copies files to the ferry-out folder (ferry mode).
//!
//! ```text
//!  outbox/ ─scan 1 s─▶ scheduler ─ due passes first, then the lowest new seq ─▶ pass::queue_pass ─▶ net thread ─▶ link
//!     ▲                  │ state log (attempts, passes)   ◀── Done ──────────────────────────────┘
//!     └ retention        │ journal: batch.sent / resent / refused / expired
//!                        └ status.json, requests/ (resend), checkpoint hourly
//! ```

mod net;
pub mod outbox;
mod pass;
mod sched;
pub mod state;

pub use net::Shared;
pub use sched::{Selector, SendOptions, SendSummary, queue_request};

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::config::SendConfig;
use crate::error::{Error, Result};
use crate::link::LinkTx;

/// Runs the sender until `opts.stop` (or, with `opts.once`, until nothing is left to send).
pub fn run(cfg: SendConfig, link: Option<Box<dyn LinkTx>>, opts: SendOptions) -> Result<SendSummary> {
    crate::fsutil::ensure_dir(&cfg.state_dir)?;
    let _lock = lock_state(&cfg.state_dir)?
        .ok_or_else(|| Error::Usage(format!("another sender holds {}", cfg.state_dir.join("lock").display())))?;
    sched::run(cfg, link, opts)
}

/// Takes the state folder's lock; `None` when a running sender holds it.
pub fn lock_state(dir: &Path) -> Result<Option<File>> {
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e.into()),
    }
}
