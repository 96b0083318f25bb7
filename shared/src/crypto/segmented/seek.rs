//! Random access into a segmented file (for a reader that must seek, such as
//! a zip's, whose directory is at its end): one segment decrypted at a time,
//! the one that holds the position asked for, each authenticated before any
//! of its plaintext is released.
//!
//! ```text
//!  file: header(36) ‖ seg_0 ‖ seg_1 ‖ … ‖ seg_n      seg_i = ct_i ‖ tag_i, seg_size + 16 bytes,
//!                                                    only the last shorter (and sealed with last = 1)
//!  position p ─▶ segment p / seg_size ─▶ seek to 36 + i·(seg_size + 16), read, open(i, last = ends the file)
//!             ─▶ bytes p % seg_size … of its plaintext
//! ```
//! The layout is known from the file's length alone, and every segment read
//! is checked as the stream reader checks it: a cut at a segment boundary
//! makes a full segment the last one, whose tag (sealed with last = 0) fails
//! when it is read. A segment never read is never checked; a zip reader
//! always reads the last one (the directory is there), and an empty last
//! segment is checked when the reader is made.

use std::io::{self, Read, Seek, SeekFrom};

use zeroize::Zeroizing;

use super::{FileCrypto, GCM_TAG_LEN, SEG_HEADER_LEN, SegmentLimits, internal, io_err, read_header};
use crate::crypto::SymKey;
use crate::{Error, Result};

/// A [`Read`] + [`Seek`] over the plaintext of a segmented file.
pub struct SeekDecryptReader<R: Read + Seek> {
    inner: R,
    fc: FileCrypto,
    seg_size: u64,
    seg_ct: u64,
    /// Ciphertext bytes after the header.
    body: u64,
    segments: u64,
    plain_len: u64,
    pos: u64,
    /// The segment in `out`, when one is.
    cached: Option<u64>,
    out: Zeroizing<Vec<u8>>,
}

impl<R: Read + Seek> SeekDecryptReader<R> {
    /// Reads and checks the header and works out the layout from the file's
    /// length; nothing else is read until asked for.
    pub fn new(key: &SymKey, aad: &[u8], mut inner: R, limits: SegmentLimits) -> Result<Self> {
        inner.seek(SeekFrom::Start(0))?;
        let (fc, _, seg_size) = read_header(key, aad, &mut inner, limits)?;
        let len = inner.seek(SeekFrom::End(0))?;
        let body = len.checked_sub(SEG_HEADER_LEN as u64).ok_or_else(|| internal("length"))?;
        let seg_size = u64::from(seg_size);
        let seg_ct = seg_size + GCM_TAG_LEN as u64;
        let segments = body.div_ceil(seg_ct);
        let last_len = body - (segments.saturating_sub(1)) * seg_ct;
        if segments == 0 || last_len < GCM_TAG_LEN as u64 {
            return Err(Error::Crypto("segmented file truncated (segment shorter than its tag)".into()));
        }
        let plain_len = body - segments * GCM_TAG_LEN as u64;
        if plain_len > limits.max_plaintext {
            return Err(Error::Format(format!("plaintext exceeds the limit of {} bytes", limits.max_plaintext)));
        }
        let mut r = SeekDecryptReader {
            inner,
            fc,
            seg_size,
            seg_ct,
            body,
            segments,
            plain_len,
            pos: 0,
            cached: None,
            out: Zeroizing::new(Vec::new()),
        };
        if last_len == GCM_TAG_LEN as u64 {
            // a last segment without plaintext is never read: check it now (as the
            // stream reader does), so a forged or cut end is found
            r.load(segments - 1)?;
        }
        Ok(r)
    }

    /// Length of the plaintext.
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.plain_len == 0
    }

    /// Reads, authenticates and decrypts segment `i` into `out`.
    fn load(&mut self, i: u64) -> Result<()> {
        let start = i * self.seg_ct;
        let len = self.seg_ct.min(self.body - start);
        let last = i + 1 == self.segments;
        self.cached = None;
        self.inner.seek(SeekFrom::Start(SEG_HEADER_LEN as u64 + start))?;
        let len = usize::try_from(len).map_err(|_| internal("segment length"))?;
        self.out.clear();
        self.out.resize(len, 0);
        self.inner.read_exact(self.out.as_mut_slice()).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::Crypto("segmented file shorter than its length said".into()),
            _ => Error::Io(e),
        })?;
        let body_len = len.checked_sub(GCM_TAG_LEN).ok_or_else(|| internal("segment"))?;
        let mut tag = [0u8; GCM_TAG_LEN];
        tag.copy_from_slice(self.out.get(body_len..).ok_or_else(|| internal("tag"))?);
        self.out.truncate(body_len);
        if !self.fc.open_segment(i, last, self.out.as_mut_slice(), &tag)? {
            self.out.clear();
            return Err(Error::Crypto(format!(
                "segment {i} failed authentication (tampered, truncated, reordered, wrong key or wrong associated data)"
            )));
        }
        self.cached = Some(i);
        Ok(())
    }
}

impl<R: Read + Seek> Read for SeekDecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plain_len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.pos / self.seg_size;
        if self.cached != Some(i) {
            self.load(i).map_err(io_err)?;
        }
        let at = usize::try_from(self.pos - i * self.seg_size).map_err(|_| io_err(internal("offset")))?;
        let avail = self.out.get(at..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        let (dst, _) = buf.split_at_mut(n);
        dst.copy_from_slice(avail.get(..n).unwrap_or_default());
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekDecryptReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, off) = match to {
            SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            SeekFrom::End(off) => (self.plain_len, off),
            SeekFrom::Current(off) => (self.pos, off),
        };
        self.pos = base
            .checked_add_signed(off)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file"))?;
        Ok(self.pos)
    }
}

impl<R: Read + Seek> std::fmt::Debug for SeekDecryptReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekDecryptReader").field("len", &self.plain_len).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;
    use crate::crypto::seal_with_segment_size;

    fn key() -> SymKey {
        SymKey::from_slice(&[7u8; 16]).unwrap()
    }

    fn reader(sealed: Vec<u8>) -> Result<SeekDecryptReader<Cursor<Vec<u8>>>> {
        SeekDecryptReader::new(&key(), b"aad", Cursor::new(sealed), SegmentLimits::default())
    }

    proptest! {
        /// Any seek and read gives the plaintext's bytes at that place.
        #[test]
        fn reads_anywhere(len in 0usize..400, seg in 16u32..70, ops in prop::collection::vec((0u64..450, 0usize..90), 1..20)) {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = seal_with_segment_size(&key(), b"aad", seg, &plain).unwrap();
            let mut r = reader(sealed).unwrap();
            prop_assert_eq!(r.len(), len as u64);
            for (at, n) in ops {
                r.seek(SeekFrom::Start(at)).unwrap();
                let mut buf = vec![0u8; n];
                let mut got = 0;
                while got < n {
                    let k = r.read(&mut buf[got..]).unwrap();
                    if k == 0 { break; }
                    got += k;
                }
                let from = (at as usize).min(len);
                let want = &plain[from..(from + n).min(len)];
                prop_assert_eq!(&buf[..got], want);
            }
            let mut all = Vec::new();
            r.seek(SeekFrom::Start(0)).unwrap();
            r.read_to_end(&mut all).unwrap();
            prop_assert_eq!(all, plain);
        }
    }

    #[test]
    fn tampering_and_cuts_are_errors() {
        let plain = vec![5u8; 100];
        let sealed = seal_with_segment_size(&key(), b"aad", 32, &plain).unwrap();
        // a flipped byte in segment 1: reading segment 0 works, segment 1 fails
        let mut bad = sealed.clone();
        bad[SEG_HEADER_LEN + 48 + 3] ^= 1;
        let mut r = reader(bad).unwrap();
        let mut b = [0u8; 32];
        r.read_exact(&mut b).unwrap();
        assert_eq!(r.read(&mut b).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // cut at a segment boundary: the new last segment was sealed as not last
        let cut = sealed[..SEG_HEADER_LEN + 2 * 48].to_vec();
        let mut r = reader(cut).unwrap();
        r.seek(SeekFrom::Start(40)).unwrap();
        assert!(r.read(&mut b).is_err());
        // cut inside a tag, or the header alone
        assert!(reader(sealed[..SEG_HEADER_LEN + 10].to_vec()).is_err());
        assert!(reader(sealed[..SEG_HEADER_LEN].to_vec()).is_err());
        // trailing bytes shift the last segment
        let mut long = sealed.clone();
        long.push(0);
        let mut r = reader(long).unwrap();
        r.seek(SeekFrom::End(-1)).unwrap();
        assert!(r.read(&mut b).is_err());
        // wrong associated data
        let mut r =
            SeekDecryptReader::new(&key(), b"other", Cursor::new(sealed.clone()), SegmentLimits::default()).unwrap();
        assert!(r.read(&mut b).is_err());
        // over the plaintext limit, before anything is read
        let lim = SegmentLimits { max_plaintext: 99, ..SegmentLimits::default() };
        assert!(SeekDecryptReader::new(&key(), b"aad", Cursor::new(sealed.clone()), lim).is_err());
        // a file cut after a full segment, with 16 bytes put after it as an empty last
        // segment (found by fuzzing): the full segment reads, the forged end must not pass
        let mut forged = sealed[..SEG_HEADER_LEN + 48].to_vec();
        forged.extend_from_slice(&[0u8; 16]);
        assert!(reader(forged).is_err());
        // a seek before the start
        let mut r = reader(sealed).unwrap();
        assert!(r.seek(SeekFrom::Current(-1)).is_err());
        assert_eq!(r.seek(SeekFrom::End(-100)).unwrap(), 0);
    }
}
