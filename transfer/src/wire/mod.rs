//! The datagram codec (PROTOCOL.md §2): header, MAC, bodies, and the
//! receiver's checks in their fixed order.
//!
//! ```text
//!  "FT" │ ver │ kind │ key id u32 │ session u64 │ number u64 │ body … │ HMAC-SM3₁₆
//!  recv: length ─▶ magic/version ─▶ (data: redundant? drop) ─▶ key id ─▶ MAC ─▶ body (exact length)
//! ```
//!
//! Every read goes through [`Reader`], which never reads past its slice and
//! rejects trailing bytes.

mod body;
mod mac;

pub use body::{
    DataHead, Heartbeat, MANIFEST_ENTRY_LEN, ManifestEntry, ManifestPart, heartbeat_len, manifest_capacity,
};
pub use mac::{KeyRing, MacSigner};

/// First two bytes of every datagram.
pub const MAGIC: [u8; 2] = *b"FT";
/// Protocol version.
pub const VERSION: u8 = 1;
/// Common header bytes.
pub const HEADER_LEN: usize = 24;
/// Truncated MAC bytes.
pub const MAC_LEN: usize = 16;
/// Smallest possible datagram.
pub const MIN_DATAGRAM: usize = HEADER_LEN + MAC_LEN;
/// Data body bytes before the symbol.
pub const DATA_HEAD_LEN: usize = 28;
/// A data datagram is this plus the symbol size.
pub const DATA_OVERHEAD: usize = HEADER_LEN + DATA_HEAD_LEN + MAC_LEN;
/// Heartbeat body bytes.
pub const HEARTBEAT_BODY: usize = 88;
/// ESIs are 24-bit.
pub const MAX_ESI: u32 = 1 << 24;

/// Datagram kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data = 1,
    Heartbeat = 2,
    Manifest = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Heartbeat),
            3 => Some(Kind::Manifest),
            _ => None,
        }
    }
}

/// Why a datagram was dropped (each is a counter in the receiver's status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Shorter than header + MAC.
    Short,
    /// Longer than the largest datagram of these settings.
    Long,
    /// Wrong magic, version or kind.
    Foreign,
    /// A data datagram of a batch already assembled (dropped before its MAC).
    Redundant,
    /// Key id not among the receiver's keys.
    UnknownKey,
    /// MAC did not verify.
    BadMac,
    /// Datagram number already seen or behind the window.
    Replayed,
    /// Body length or a field out of its range.
    Malformed,
    /// Disagrees with earlier datagrams of the same batch.
    Inconsistent,
    /// From a session whose heartbeat showed other settings.
    SettingsMismatch,
    /// The receiver's memory bounds were reached.
    Overload,
}

impl Reject {
    /// Every reason, for status output.
    pub const ALL: [Reject; 11] = [
        Reject::Short,
        Reject::Long,
        Reject::Foreign,
        Reject::Redundant,
        Reject::UnknownKey,
        Reject::BadMac,
        Reject::Replayed,
        Reject::Malformed,
        Reject::Inconsistent,
        Reject::SettingsMismatch,
        Reject::Overload,
    ];

    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Short => "short",
            Reject::Long => "long",
            Reject::Foreign => "foreign",
            Reject::Redundant => "redundant",
            Reject::UnknownKey => "unknown_key",
            Reject::BadMac => "bad_mac",
            Reject::Replayed => "replayed",
            Reject::Malformed => "malformed",
            Reject::Inconsistent => "inconsistent",
            Reject::SettingsMismatch => "settings_mismatch",
            Reject::Overload => "overload",
        }
    }

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub key_id: u32,
    pub session: u64,
    pub number: u64,
}

impl Header {
    /// Appends the header's 24 bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.session.to_be_bytes());
        out.extend_from_slice(&self.number.to_be_bytes());
    }
}

/// A forward-only reader over a slice: every read is checked, nothing is
/// allocated, and [`Reader::finish`] rejects trailing bytes.
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader(buf)
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Reject> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(Reject::Malformed)?;
        self.0 = rest;
        Ok(head)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Reject> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Reject::Malformed)?;
        self.0 = rest;
        Ok(*head)
    }
    pub fn u8(&mut self) -> Result<u8, Reject> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, Reject> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, Reject> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, Reject> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn remaining(&self) -> usize {
        self.0.len()
    }
    pub fn finish(self) -> Result<(), Reject> {
        if self.0.is_empty() { Ok(()) } else { Err(Reject::Malformed) }
    }
}

/// Steps 1–2 of the receiver's checks: length bounds, magic, version, kind.
/// The header fields are returned but must not be trusted before the MAC.
pub fn precheck(buf: &[u8], max_len: usize) -> Result<Header, Reject> {
    if buf.len() < MIN_DATAGRAM {
        return Err(Reject::Short);
    }
    if buf.len() > max_len {
        return Err(Reject::Long);
    }
    let mut r = Reader::new(buf);
    if r.array::<2>()? != MAGIC || r.u8()? != VERSION {
        return Err(Reject::Foreign);
    }
    let kind = Kind::from_u8(r.u8()?).ok_or(Reject::Foreign)?;
    Ok(Header { kind, key_id: r.u32()?, session: r.u64()?, number: r.u64()? })
}

/// For the redundancy shortcut (step 3): the (seq, content id) of a data
/// datagram that passed [`precheck`]. Used only to drop.
pub fn peek_batch_id(buf: &[u8]) -> Option<(u64, [u8; 8])> {
    let mut r = Reader::new(buf.get(HEADER_LEN..)?);
    Some((r.u64().ok()?, r.array().ok()?))
}

/// Step 5: verifies the MAC; returns the body (between header and MAC).
pub fn authenticate<'a>(buf: &'a [u8], key: &MacSigner) -> Result<&'a [u8], Reject> {
    let split = buf.len().checked_sub(MAC_LEN).ok_or(Reject::Short)?;
    let (signed, tag) = buf.split_at_checked(split).ok_or(Reject::Short)?;
    if !key.verify(signed, tag) {
        return Err(Reject::BadMac);
    }
    signed.get(HEADER_LEN..).ok_or(Reject::Short)
}

/// Appends the MAC over everything in `out` from `start`.
pub fn seal(out: &mut Vec<u8>, start: usize, key: &MacSigner) {
    let tag = key.tag(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&tag);
}

#[cfg(test)]
mod tests;
