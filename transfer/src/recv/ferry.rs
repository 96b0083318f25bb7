//! Ferry mode's reader (PROTOCOL.md §6): polls `ferry_in/`, waits until a
//! file has stopped changing, reads it with a bound, and hands it on.
//!
//! ```text
//!  ferry_in/<node>-<seq:020>.fbatch ─ size+mtime unchanged for settle ─▶ len ≤ max? ─▶ read (≤ max + 1)
//!     ─▶ Input::Ferry { seq, path, bytes }        too large ─▶ Input::FerryRefused
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use super::Input;
use crate::fsutil::{parse_batch_name, read_bounded};

struct Seen {
    len: u64,
    mtime: Option<SystemTime>,
    stable_since: Instant,
    handed: bool,
}

/// Polls until `stop`.
pub fn run(
    dir: &Path,
    node: &str,
    max: u32,
    settle: Duration,
    stop: Arc<AtomicBool>,
    tx: Sender<Input>,
) -> std::io::Result<()> {
    let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut present = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(seq) = name.to_str().and_then(|n| parse_batch_name(n, node)) else { continue };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = e.path();
            present.push(path.clone());
            let (len, mtime) = (meta.len(), meta.modified().ok());
            let s = seen.entry(path.clone()).or_insert(Seen { len, mtime, stable_since: now, handed: false });
            if s.len != len || s.mtime != mtime {
                *s = Seen { len, mtime, stable_since: now, handed: false };
                continue;
            }
            if s.handed || now.duration_since(s.stable_since) < settle {
                continue;
            }
            s.handed = true;
            let input = if len > u64::from(max) {
                Input::FerryRefused { seq, path, reason: format!("file of {len} bytes is over max_batch_bytes {max}") }
            } else {
                match read_bounded(&path, u64::from(max)) {
                    Ok(bytes) => Input::Ferry { seq, path, bytes },
                    Err(e) => Input::FerryRefused { seq, path, reason: e.to_string() },
                }
            };
            if tx.send(input).is_err() {
                return Ok(());
            }
        }
        seen.retain(|p, _| present.contains(p));
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
