//! One pass of one batch: blocks encoded, symbols interleaved, datagrams
//! built and sealed into chunks for the send thread; and the ferry copy.
//!
//! ```text
//!  Loaded batch ─▶ groups of ≤ 16 blocks ─▶ BlockEncoder each
//!    round j = 0, 1, …: for each block of the group: esi_of(attempt, j) ─▶ header ‖ fields ‖ symbol ‖ (MAC room)
//!    ─▶ Chunk (64 datagrams) ─▶ channel ─▶ … ─▶ Out::PassDone
//!  ferry: bytes ─▶ ferry_out/.name.tmp ─fsync─▶ link to ferry_out/name (never overwrites) ─▶ fsync dir
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;

use crate::error::{Error, Result};
use crate::fec::{BlockEncoder, PlanCache, esi_of};
use crate::send::net::{Chunk, Out, Shared};
use crate::send::outbox::Loaded;
use crate::settings::LinkSettings;
use crate::wire::{DataHead, Header, Kind, MAC_LEN, MacSigner};

/// Blocks interleaved together (bounds the sender's memory to ~16 blocks).
pub const INTERLEAVE_BLOCKS: usize = 16;
/// Datagrams per chunk handed to the send thread.
const CHUNK_DATAGRAMS: usize = 64;

/// What a pass needs.
#[derive(Debug)]
pub struct PassCtx<'a> {
    pub settings: &'a LinkSettings,
    pub key: &'a MacSigner,
    pub session: u64,
    pub shared: &'a Shared,
    pub stop: &'a AtomicBool,
}

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassEnd {
    Queued,
    Stopped,
}

/// Builds and queues every datagram of pass `attempt` of `b`, then the
/// PassDone marker.
pub fn queue_pass(
    ctx: &PassCtx<'_>,
    plans: &mut PlanCache,
    b: &Loaded,
    attempt: u32,
    resend: bool,
    out: &SyncSender<Out>,
) -> Result<PassEnd> {
    let s = ctx.settings;
    let len = b.bytes.len();
    let batch_len = u32::try_from(len).map_err(|_| Error::Fec("batch over 4 GiB".into()))?;
    let attempt8 = u8::try_from(attempt).map_err(|_| Error::Fec(format!("pass attempt {attempt} over 255")))?;
    let content_id: [u8; 8] = b.sm3.first_chunk::<8>().copied().unwrap_or_default();
    let blocks = s.block_count(len);
    let t = usize::from(s.symbol_size);
    let mut chunk = new_chunk(s);
    let send = |c: Chunk| out.send(Out::Datagrams(c)).map_err(|_| Error::Fec("the send thread stopped".into()));
    for first in (0..blocks).step_by(INTERLEAVE_BLOCKS) {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(PassEnd::Stopped);
        }
        let mut encs = Vec::with_capacity(INTERLEAVE_BLOCKS);
        for bi in first..(first + INTERLEAVE_BLOCKS).min(blocks) {
            let g = s.block(len, bi).ok_or_else(|| Error::Fec("block geometry".into()))?;
            if attempt > s.max_attempt(&g) {
                return Err(Error::Fec(format!("batch {}: pass attempts exhausted", b.seq)));
            }
            let need_repair = attempt > 1 || g.r > 0;
            encs.push((bi as u16, BlockEncoder::new(&b.bytes, g, s.symbol_size, plans, need_repair)?));
        }
        let rounds = encs.iter().map(|(_, e)| e.geometry().k + e.geometry().r).max().unwrap_or(0);
        for j in 0..rounds {
            for (bi, enc) in &encs {
                let g = enc.geometry();
                if j >= g.k + g.r {
                    continue;
                }
                let esi = esi_of(g, attempt, j);
                let hdr = Header {
                    kind: Kind::Data,
                    key_id: ctx.key.id(),
                    session: ctx.session,
                    number: ctx.shared.number(),
                };
                let dh = DataHead { seq: b.seq, content_id, batch_len, block: *bi, attempt: attempt8, esi };
                let start = chunk.buf.len();
                hdr.write(&mut chunk.buf);
                dh.write_fields(&mut chunk.buf);
                enc.symbol(esi, &mut chunk.buf)?;
                if chunk.buf.len() - start != crate::wire::HEADER_LEN + crate::wire::DATA_HEAD_LEN + t {
                    return Err(Error::Fec("datagram of the wrong length".into()));
                }
                // room for the MAC: the send thread seals (it has the spare cycles)
                chunk.buf.extend_from_slice(&[0u8; MAC_LEN]);
                chunk.ends.push(chunk.buf.len());
                if chunk.ends.len() >= CHUNK_DATAGRAMS {
                    send(std::mem::replace(&mut chunk, new_chunk(s)))?;
                }
            }
        }
    }
    if !chunk.ends.is_empty() {
        send(chunk)?;
    }
    out.send(Out::PassDone { seq: b.seq, attempt, resend })
        .map_err(|_| Error::Fec("the send thread stopped".into()))?;
    Ok(PassEnd::Queued)
}

fn new_chunk(s: &LinkSettings) -> Chunk {
    Chunk { buf: Vec::with_capacity(CHUNK_DATAGRAMS * s.datagram_len()), ends: Vec::with_capacity(CHUNK_DATAGRAMS) }
}

/// Copies a batch into the ferry-out folder atomically. `Ok(Err(reason))`
/// when a different file already has that name there.
pub fn ferry_copy(ferry_out: &Path, name: &str, b: &Loaded) -> Result<std::result::Result<(), String>> {
    let dest = ferry_out.join(name);
    let tmp = crate::fsutil::write_temp(ferry_out, name, &b.bytes)?;
    if crate::fsutil::commit_new(&tmp, &dest)? {
        return Ok(Ok(()));
    }
    let _ = std::fs::remove_file(&tmp);
    let existing = crate::fsutil::read_bounded(&dest, b.bytes.len() as u64 + 1).ok();
    match existing {
        Some(e) if flumon_shared::crypto::sm3(&e) == b.sm3 => Ok(Ok(())),
        _ => Ok(Err(format!("{} already holds a different file", dest.display()))),
    }
}
