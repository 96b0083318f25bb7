//! Reading an upload body without holding it (issue 3: "a 64 MiB upload must
//! not need memory proportional to its size"). Up to [`INLINE_MAX`] the body
//! is kept in memory and goes the ordinary way; past it, every frame goes to
//! a blocking worker that encrypts it into the raw archive (a file, SM4-GCM
//! segments) and scans it (format, encoding, CSV quotes), then the pipeline
//! reads the archived bytes back to parse them in chunks. The same for an
//! agent's request body and for the file field of the web upload form
//! ([`Chunks`]).
//!
//! ```text
//!  frames ─▶ ≤ INLINE_MAX? ─ yes, body ends ─▶ Received::Small(Bytes)
//!              │ no
//!              ▼ channel (4 frames) ─▶ worker: RawWriter (raw/ITEM.fsg) + Scan
//!  end of body ─▶ End ─▶ finish: fsync file, meta complete ─▶ Received::Spooled
//!  > max bytes ─▶ worker aborts (item deleted), rest drained ─▶ Received::TooLarge
//!  read error / client gone (sender dropped) ─▶ worker aborts: nothing is left
//!                                              that counts as received
//! ```

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use flumon_shared::model::RecordType;
use flumon_shared::parse::stream::Scan;

use crate::archive::RawWriter;
use crate::error::{Error, Result};
use crate::pipeline::{self, Spooled};
use crate::state::AppState;

/// Bodies up to this size are processed from memory (one chunk of work).
pub const INLINE_MAX: usize = 4 << 20;

/// A source of body bytes: an agent's request body, or the file field of the
/// web page's multipart form.
pub trait Chunks {
    /// The next piece of the body; `Ok(None)` at its end; `Err(())` when it
    /// could not be read (cut off, timed out, malformed multipart).
    fn next_chunk(&mut self) -> impl Future<Output = std::result::Result<Option<Bytes>, ()>> + Send;
}

impl Chunks for Body {
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, ()> {
        loop {
            match self.frame().await {
                None => return Ok(None),
                Some(Err(_)) => return Err(()),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }
}

impl Chunks for axum::extract::multipart::Field<'_> {
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, ()> {
        self.chunk().await.map_err(|_| ())
    }
}

/// What reading a body gave.
pub enum Received {
    Small(Bytes),
    Spooled(Box<Spooled>),
    TooLarge,
}

enum Msg {
    Data(Bytes),
    End,
}

struct Spool {
    tx: mpsc::Sender<Msg>,
    worker: JoinHandle<Result<Option<Spooled>>>,
}

impl Spool {
    fn start(state: &AppState, org: &str, ty: RecordType, ct: Option<&str>) -> Spool {
        let (tx, mut rx) = mpsc::channel::<Msg>(4);
        let st = state.clone();
        let (org, ct) = (org.to_owned(), ct.map(str::to_owned));
        let worker = tokio::task::spawn_blocking(move || {
            let receipt_id = pipeline::new_receipt_id(&st)?;
            let mut w = RawWriter::begin(&st, &org, "upload", Some(ty.as_str()), Some(&receipt_id), true)?;
            let mut scan = Scan::new(ct.as_deref());
            loop {
                match rx.blocking_recv() {
                    Some(Msg::Data(b)) => {
                        scan.update(&b);
                        if let Err(e) = w.write(&b) {
                            w.abort(&st.store)?;
                            return Err(e);
                        }
                    }
                    Some(Msg::End) => break,
                    None => {
                        w.abort(&st.store)?;
                        return Ok(None);
                    }
                }
            }
            let (meta, key) = w.finish(&st.store)?;
            let limits = flumon_shared::parse::Limits {
                max_bytes: st.config.limits.upload_max_bytes,
                max_rows: st.config.limits.upload_max_rows,
                ..Default::default()
            };
            let plan = scan.finish(&limits);
            Ok(Some(Spooled { receipt_id, meta, key, plan }))
        });
        Spool { tx, worker }
    }

    async fn send(&mut self, b: Bytes) -> Result<()> {
        if self.tx.send(Msg::Data(b)).await.is_err() {
            // the worker stopped: its error says why
            let (tx, _) = mpsc::channel(1);
            drop(std::mem::replace(&mut self.tx, tx));
            return Err(join(&mut self.worker).await.err().unwrap_or_else(|| Error::Internal("spool stopped".into())));
        }
        Ok(())
    }

    async fn abort(self) {
        let Spool { tx, mut worker } = self;
        drop(tx);
        if let Err(e) = join(&mut worker).await {
            tracing::warn!(error = %e, "aborting a streamed upload");
        }
    }

    async fn finish(self) -> Result<Spooled> {
        let Spool { tx, mut worker } = self;
        let sent = tx.send(Msg::End).await;
        drop(tx);
        let out = join(&mut worker).await?;
        sent.map_err(|_| Error::Internal("spool stopped".into()))?;
        out.ok_or_else(|| Error::Internal("spool ended without its item".into()))
    }
}

async fn join(worker: &mut JoinHandle<Result<Option<Spooled>>>) -> Result<Option<Spooled>> {
    worker.await.map_err(|e| Error::Internal(format!("spool worker: {e}")))?
}

/// Reads a body of at most `max` bytes: in memory when small, streamed into
/// the archive when not; `TooLarge` past `max` (what is past is read and
/// dropped, up to `drain_cap` bytes in all, so the client sees the 413).
pub async fn receive<C: Chunks + Send>(
    state: &AppState,
    org: &str,
    ty: RecordType,
    body: &mut C,
    ct: Option<&str>,
    declared: Option<u64>,
    drain_cap: u64,
) -> Result<Received> {
    let max = state.config.limits.upload_max_bytes as u64;
    let inline = (INLINE_MAX as u64).min(max);
    let want = declared.unwrap_or(0).min(inline);
    let mut buf = BytesMut::with_capacity(usize::try_from(want).unwrap_or(0));
    let mut total = 0u64;
    let mut spool: Option<Spool> = None;
    let mut over = false;
    loop {
        let d = match body.next_chunk().await {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(()) => {
                if let Some(s) = spool.take() {
                    s.abort().await;
                }
                return Err(Error::bad_request("请求体读取失败或超时 (request body could not be read)"));
            }
        };
        total = total.saturating_add(d.len() as u64);
        if total > max && !over {
            over = true;
            buf = BytesMut::new();
            if let Some(s) = spool.take() {
                s.abort().await;
            }
        }
        if over {
            if total > drain_cap {
                return Ok(Received::TooLarge);
            }
            continue;
        }
        match &mut spool {
            Some(s) => s.send(d).await?,
            None if total <= inline => buf.extend_from_slice(&d),
            None => {
                let mut s = Spool::start(state, org, ty, ct);
                let head = std::mem::take(&mut buf).freeze();
                if !head.is_empty() {
                    s.send(head).await?;
                }
                s.send(d).await?;
                spool = Some(s);
            }
        }
    }
    if over {
        return Ok(Received::TooLarge);
    }
    match spool {
        None => Ok(Received::Small(buf.freeze())),
        Some(s) => Ok(Received::Spooled(Box::new(s.finish().await?))),
    }
}
