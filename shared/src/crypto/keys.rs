//! Symmetric key material: [`SymKey`] (a 16-byte SM4 key) and [`MacKey`] (a
//! 32-byte HMAC-SM3 key with a key id for rotation), and their key files.
//!
//! ```text
//!   SystemRandom ──▶ SymKey::generate() ──▶ save() ──▶ "FLUMON SM4 KEY" file (0600, hex body)
//!                                            load() ◀──┘
//!   key file format: docs/FORMATS.md §3
//! ```
//!
//! Both types zeroize on drop, compare in constant time and never show their
//! bytes in `Debug`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::fill_random;
use super::hash::{SM3_LEN, hmac_sm3, hmac_sm3_verify};
use crate::{Error, Result};

/// Length of an SM4 key.
pub const SYM_KEY_LEN: usize = 16;
/// Length of an HMAC-SM3 key.
pub const MAC_KEY_LEN: usize = 32;

/// Largest key file we read (the real ones are ~100 bytes).
const MAX_KEY_FILE: u64 = 4096;

const SYM_BEGIN: &str = "-----BEGIN FLUMON SM4 KEY-----";
const SYM_END: &str = "-----END FLUMON SM4 KEY-----";
const MAC_BEGIN: &str = "-----BEGIN FLUMON HMAC-SM3 KEY-----";
const MAC_END: &str = "-----END FLUMON HMAC-SM3 KEY-----";
const KEY_ID_PREFIX: &str = "Key-Id: ";

/// A 128-bit SM4 key (per-upload data key, link key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymKey([u8; SYM_KEY_LEN]);

impl SymKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Result<Self> {
        let mut k = SymKey([0u8; SYM_KEY_LEN]);
        fill_random(&mut k.0)?;
        Ok(k)
    }

    /// Key from exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; SYM_KEY_LEN] =
            bytes.try_into().map_err(|_| Error::Key(format!("SM4 key must be {SYM_KEY_LEN} bytes")))?;
        Ok(SymKey(arr))
    }

    /// The raw key bytes (for building a cipher; do not log).
    pub fn as_bytes(&self) -> &[u8; SYM_KEY_LEN] {
        &self.0
    }

    /// A non-secret 8-byte fingerprint for logs and key-mismatch messages:
    /// the first 8 bytes of HMAC-SM3(key, "flumon key fingerprint"), in hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    /// The key file text (docs/FORMATS.md §3).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(100));
        s.push_str(SYM_BEGIN);
        s.push('\n');
        s.push_str(&Zeroizing::new(hex::encode(self.0)));
        s.push('\n');
        s.push_str(SYM_END);
        s.push('\n');
        s
    }

    /// Parses key file text.
    pub fn from_file_text(text: &str) -> Result<Self> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        expect_line(lines.next(), SYM_BEGIN)?;
        let mut k = SymKey([0u8; SYM_KEY_LEN]);
        decode_hex_line(lines.next(), &mut k.0)?;
        expect_line(lines.next(), SYM_END)?;
        expect_end(lines)?;
        Ok(k)
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_secret_file(path)?;
        Self::from_file_text(text_of(&text)?)
    }

    /// Writes a new key file (mode 0600, fsynced); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_secret_file(path, self.to_file_text().as_bytes())
    }
}

impl ConstantTimeEq for SymKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for SymKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SymKey {}

impl std::fmt::Debug for SymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymKey([redacted])")
    }
}

/// A 256-bit HMAC-SM3 key with the key id that names it on the wire.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MacKey {
    #[zeroize(skip)]
    id: u32,
    key: [u8; MAC_KEY_LEN],
}

impl MacKey {
    /// A fresh random key with the given id.
    pub fn generate(id: u32) -> Result<Self> {
        let mut k = MacKey { id, key: [0u8; MAC_KEY_LEN] };
        fill_random(&mut k.key)?;
        Ok(k)
    }

    /// Key from exactly 32 bytes.
    pub fn from_slice(id: u32, bytes: &[u8]) -> Result<Self> {
        let key: [u8; MAC_KEY_LEN] =
            bytes.try_into().map_err(|_| Error::Key(format!("HMAC-SM3 key must be {MAC_KEY_LEN} bytes")))?;
        Ok(MacKey { id, key })
    }

    /// The key id (not secret).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The raw key bytes (do not log).
    pub fn as_bytes(&self) -> &[u8; MAC_KEY_LEN] {
        &self.key
    }

    /// HMAC-SM3 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; SM3_LEN] {
        hmac_sm3(&self.key, data)
    }

    /// Constant-time check of a full or truncated (≥ 16 bytes) tag.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        hmac_sm3_verify(&self.key, data, tag)
    }

    /// A non-secret fingerprint, as [`SymKey::fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }

    /// The key file text (docs/FORMATS.md §3).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(160));
        s.push_str(MAC_BEGIN);
        s.push('\n');
        s.push_str(KEY_ID_PREFIX);
        s.push_str(&self.id.to_string());
        s.push('\n');
        s.push_str(&Zeroizing::new(hex::encode(self.key)));
        s.push('\n');
        s.push_str(MAC_END);
        s.push('\n');
        s
    }

    /// Parses key file text.
    pub fn from_file_text(text: &str) -> Result<Self> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        expect_line(lines.next(), MAC_BEGIN)?;
        let id_line = lines.next().ok_or_else(|| Error::Key("missing Key-Id line".into()))?;
        let id_text = id_line.strip_prefix(KEY_ID_PREFIX).ok_or_else(|| Error::Key("missing Key-Id line".into()))?;
        if id_text.is_empty() || id_text.len() > 10 || !id_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Key("Key-Id must be a decimal u32".into()));
        }
        let id: u32 = id_text.parse().map_err(|_| Error::Key("Key-Id must be a decimal u32".into()))?;
        let mut k = MacKey { id, key: [0u8; MAC_KEY_LEN] };
        decode_hex_line(lines.next(), &mut k.key)?;
        expect_line(lines.next(), MAC_END)?;
        expect_end(lines)?;
        Ok(k)
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_secret_file(path)?;
        Self::from_file_text(text_of(&text)?)
    }

    /// Writes a new key file (mode 0600, fsynced); refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_secret_file(path, self.to_file_text().as_bytes())
    }
}

impl ConstantTimeEq for MacKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.id.ct_eq(&other.id) & self.key.ct_eq(&other.key)
    }
}

impl PartialEq for MacKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for MacKey {}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacKey").field("id", &self.id).field("key", &"[redacted]").finish()
    }
}

fn fingerprint(key: &[u8]) -> String {
    let tag = hmac_sm3(key, b"flumon key fingerprint");
    hex::encode(tag.get(..8).unwrap_or_default())
}

fn expect_line(line: Option<&str>, want: &str) -> Result<()> {
    match line {
        Some(l) if l == want => Ok(()),
        _ => Err(Error::Key(format!("expected line {want:?}"))),
    }
}

fn expect_end<'a>(mut rest: impl Iterator<Item = &'a str>) -> Result<()> {
    if rest.all(|l| l.is_empty()) { Ok(()) } else { Err(Error::Key("unexpected text after key".into())) }
}

fn decode_hex_line(line: Option<&str>, out: &mut [u8]) -> Result<()> {
    let l = line.ok_or_else(|| Error::Key("missing key line".into()))?;
    if l.len() != out.len() * 2 {
        return Err(Error::Key(format!("key line must be {} hex digits", out.len() * 2)));
    }
    hex::decode_to_slice(l, out).map_err(|_| Error::Key("key line is not hex".into()))
}

fn text_of(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| Error::Key("key file is not UTF-8".into()))
}

/// Reads a small secret file into a buffer that is zeroized on drop,
/// refusing files over 4 KiB before reading them.
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_KEY_FILE {
        return Err(Error::Key(format!("key file {} is larger than {MAX_KEY_FILE} bytes", path.display())));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
    f.take(MAX_KEY_FILE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(Error::Key(format!("key file {} is larger than {MAX_KEY_FILE} bytes", path.display())));
    }
    Ok(buf)
}

/// Creates `path` (which must not exist) with mode 0600, writes `bytes`,
/// fsyncs the file and its directory.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_new_file(path, bytes, 0o600)
}

/// Creates `path` (which must not exist) with the given unix mode, writes
/// `bytes`, fsyncs the file and its directory.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_parent_dir(path)
}

/// fsync of the directory holding `path`, so a new name is durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sym_key_file_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("link.key");
        let k = SymKey::generate().unwrap();
        k.save(&p).unwrap();
        assert_eq!(SymKey::load(&p).unwrap(), k);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // never overwrites
        assert!(SymKey::generate().unwrap().save(&p).is_err());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("-----BEGIN FLUMON SM4 KEY-----\n"));
        assert_eq!(text.lines().nth(1).unwrap(), hex::encode(k.as_bytes()));
    }

    #[test]
    fn sym_key_rejects_bad_text() {
        let good = SymKey::from_slice(&[7u8; 16]).unwrap().to_file_text();
        assert!(SymKey::from_file_text(&good).is_ok());
        assert!(SymKey::from_file_text(&good.replace("BEGIN FLUMON SM4", "BEGIN FLUMON SM3")).is_err());
        assert!(SymKey::from_file_text(&good.replace("0707", "07")).is_err());
        assert!(SymKey::from_file_text(&good.replace("0707", "zz07")).is_err());
        assert!(SymKey::from_file_text(&format!("{}junk\n", &*good)).is_err());
        assert!(SymKey::from_file_text("").is_err());
        assert!(SymKey::from_slice(&[0u8; 15]).is_err());
        // CRLF line ends are accepted
        assert!(SymKey::from_file_text(&good.replace('\n', "\r\n")).is_ok());
    }

    #[test]
    fn oversized_key_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.key");
        std::fs::write(&p, vec![b'a'; 5000]).unwrap();
        assert!(matches!(SymKey::load(&p), Err(Error::Key(_))));
    }

    #[test]
    fn mac_key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mac.key");
        let k = MacKey::generate(4_000_000_000).unwrap();
        k.save(&p).unwrap();
        let back = MacKey::load(&p).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.id(), 4_000_000_000);
        let tag = k.mac(b"x");
        assert!(back.verify(b"x", &tag[..16]));
        assert!(
            MacKey::from_file_text(&k.to_file_text().replace("Key-Id: 4000000000", "Key-Id: 99999999999")).is_err()
        );
        assert!(MacKey::from_file_text(&k.to_file_text().replace("Key-Id: 4000000000", "Key-Id: -1")).is_err());
    }

    #[test]
    fn debug_is_redacted_and_eq_is_by_value() {
        let k = SymKey::from_slice(&[0xab; 16]).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("redacted") && !d.contains("ab") && !d.contains("171"));
        let m = MacKey::from_slice(3, &[0xcd; 32]).unwrap();
        let d = format!("{m:?}");
        assert!(d.contains("redacted") && !d.contains("cd") && !d.contains("205"));
        assert_ne!(m, MacKey::from_slice(4, &[0xcd; 32]).unwrap());
        assert_ne!(k, SymKey::from_slice(&[0xac; 16]).unwrap());
        assert_eq!(k.fingerprint().len(), 16);
    }
}
