//! File steps that must be atomic and durable: write-to-temp + fsync +
//! rename, commit without overwrite (hard link), bounded reads.
//!
//! ```text
//!  write_atomic:   dir/.name.<rand>.tmp ─write─▶ fsync ─rename─▶ dir/name ─▶ fsync dir
//!  commit_new:     tmp ─hard link─▶ final (EEXIST: refused, nothing overwritten) ─▶ unlink tmp ─▶ fsync dir
//!  read_bounded:   metadata ≤ max? ─▶ read at most max + 1 ─▶ ≤ max?
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Fsyncs a folder (so renames and links in it are durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// A random hex string of `n` bytes (temp names, session ids' text).
pub fn random_hex<const N: usize>() -> Result<String> {
    Ok(hex::encode(flumon_shared::crypto::random_array::<N>()?))
}

/// A fresh temp path in `dir` for `name` (dot-prefixed: nobody's final name).
pub fn temp_path(dir: &Path, name: &str) -> Result<PathBuf> {
    Ok(dir.join(format!(".{name}.{}.tmp", random_hex::<6>()?)))
}

/// Writes `bytes` to a new temp file in `dir` and fsyncs it.
pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = temp_path(dir, name)?;
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(tmp)
}

/// Writes `dir/name` atomically (replacing it if it exists).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp(dir, name, bytes)?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Moves `tmp` to `dest` only if `dest` does not exist (hard link, then
/// unlink); `Ok(false)` when `dest` exists (nothing changed).
pub fn commit_new(tmp: &Path, dest: &Path) -> Result<bool> {
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    std::fs::remove_file(tmp)?;
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(true)
}

/// Reads a whole file of at most `max` bytes, refusing larger ones before
/// reading them.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(Error::Usage(format!("{} is {len} bytes, over the limit of {max}", path.display())));
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(Error::Usage(format!("{} grew over the limit of {max} bytes", path.display())));
    }
    Ok(out)
}

/// Creates a folder (and parents).
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()))))
}

/// Parses `<node>-<seq:020>.fbatch`; `None` for any other name.
pub fn parse_batch_name(name: &str, node: &str) -> Option<u64> {
    let rest = name.strip_prefix(node)?.strip_prefix('-')?.strip_suffix(".fbatch")?;
    if rest.len() != 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// The file name of batch `seq` of `node` (as the DMZ writes it).
pub fn batch_name(node: &str, seq: u64) -> String {
    format!("{node}-{seq:020}.fbatch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(batch_name("dmz-1", 7), "dmz-1-00000000000000000007.fbatch");
        assert_eq!(parse_batch_name("dmz-1-00000000000000000007.fbatch", "dmz-1"), Some(7));
        for bad in [
            ".dmz-1-00000000000000000007.fbatch.tmp",
            "dmz-1-0000000000000000007.fbatch",
            "dmz-2-00000000000000000007.fbatch",
            "dmz-1-0000000000000000000x.fbatch",
            "dmz-1-00000000000000000007.fbatch.skip.json",
        ] {
            assert_eq!(parse_batch_name(bad, "dmz-1"), None, "{bad}");
        }
    }

    #[test]
    fn commit_refuses_overwrite_and_reads_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let t1 = write_temp(d.path(), "a", b"one").unwrap();
        assert!(commit_new(&t1, &d.path().join("a")).unwrap());
        let t2 = write_temp(d.path(), "a", b"two").unwrap();
        assert!(!commit_new(&t2, &d.path().join("a")).unwrap());
        assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"one");
        assert_eq!(read_bounded(&d.path().join("a"), 3).unwrap(), b"one");
        assert!(read_bounded(&d.path().join("a"), 2).is_err());
        write_atomic(d.path(), "b", b"x").unwrap();
        write_atomic(d.path(), "b", b"y").unwrap();
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), b"y");
    }
}
