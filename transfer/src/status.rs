//! `status.json` in the state folder: what the running process knows now,
//! rewritten every second (temp + rename; it is a view, not a record), and
//! read by `flumon-transfer status`.
//!
//! ```text
//!  send / recv ─1 s─▶ state_dir/status.json ◀─ status --config … (age shown; stale = not running)
//! ```

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes the status file.
pub fn write(state_dir: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| Error::State(e.to_string()))?;
    let tmp = crate::fsutil::temp_path(state_dir, "status.json")?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    f.write_all(&text)?;
    drop(f);
    std::fs::rename(&tmp, state_dir.join("status.json"))?;
    Ok(())
}

/// Reads the status file (at most 4 MiB).
pub fn read(state_dir: &Path) -> Result<serde_json::Value> {
    let bytes = crate::fsutil::read_bounded(&state_dir.join("status.json"), 4 << 20)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::State(format!("status.json: {e}")))
}

/// A human summary of a status value: the fields in order, with its age.
pub fn render(value: &serde_json::Value) -> String {
    let mut out = String::new();
    let age = value
        .get("time_ms")
        .and_then(serde_json::Value::as_u64)
        .map(|t| crate::now_ms().saturating_sub(t) as f64 / 1000.0);
    if let Some(age) = age {
        out.push_str(&format!(
            "status written {age:.1} s ago{}\n",
            if age > 5.0 { " (STALE: the process is probably not running)" } else { "" }
        ));
    }
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}
