//! The local durable queue (sled): chunks wait here until the DMZ's receipt
//! for them is stored, so a DMZ outage or a restart loses nothing, and a
//! chunk whose receipt is stored is never sent again.
//!
//! ```text
//!  state/queue (sled, one process at a time)
//!    runs      run id (CST date) ─▶ {prepared, chunks}     a run is prepared once (atomically with its chunks)
//!    chunks    seq u64 ─▶ u32 len ‖ header JSON ‖ CSV       in upload order
//!    receipts  seq u64 ─▶ {run, type, rows, status, receipt, time}   kept for the hospital's records
//!    cases     JZLSH ─▶ last date seen in scope            (labs and orders of older cases still go)
//!  send ─▶ receipt ─▶ transaction { chunks.remove(seq); receipts.insert(seq) } ─▶ flush + fsync ─▶ next
//! ```
//! The one window in which a chunk can go twice: the agent dies after the
//! DMZ answered and before the receipt is on disk here. The DMZ takes the
//! same records again without changing anything downstream (INTERFACE §1).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::Transactional;

use flumon_shared::model::RecordType;

use crate::Error;
use crate::extract::Chunk;

/// What is stored with a queued chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    pub run: String,
    #[serde(rename = "type")]
    pub ty: RecordType,
    /// 1-based index of the chunk within its run and type, and how many there are.
    pub index: usize,
    pub of: usize,
    pub rows: usize,
}

/// A stored receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredReceipt {
    pub seq: u64,
    pub chunk: ChunkHeader,
    pub status: u16,
    pub receipt: serde_json::Value,
    pub time: String,
}

/// The queue.
pub struct Queue {
    db: sled::Db,
    dir: std::path::PathBuf,
    runs: sled::Tree,
    chunks: sled::Tree,
    receipts: sled::Tree,
    cases: sled::Tree,
}

fn tx_err(e: sled::transaction::TransactionError<Error>) -> Error {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => e.into(),
    }
}

impl Queue {
    /// Opens (or creates) the queue in `dir`.
    pub fn open(dir: &Path) -> Result<Queue, Error> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("queue");
        let db = sled::Config::new().path(&path).mode(sled::Mode::HighThroughput).open().map_err(|e| {
            Error::Queue(format!(
                "{}: {e} (是否已有另一个 flumon-agent 在运行? another agent running?)",
                path.display()
            ))
        })?;
        Ok(Queue {
            runs: db.open_tree("runs")?,
            chunks: db.open_tree("chunks")?,
            receipts: db.open_tree("receipts")?,
            cases: db.open_tree("cases")?,
            dir: path,
            db,
        })
    }

    /// Flushes sled and fsyncs its files (sled's flush alone is not an fsync).
    pub fn durable(&self) -> Result<(), Error> {
        self.db.flush()?;
        fn sync(p: &Path) -> std::io::Result<()> {
            for e in std::fs::read_dir(p)? {
                let p = e?.path();
                if p.is_dir() {
                    sync(&p)?;
                } else {
                    std::fs::OpenOptions::new().read(true).open(&p)?.sync_all()?;
                }
            }
            std::fs::File::open(p)?.sync_all()
        }
        sync(&self.dir)?;
        Ok(())
    }

    /// Whether run `run` was already prepared.
    pub fn has_run(&self, run: &str) -> Result<bool, Error> {
        Ok(self.runs.contains_key(run.as_bytes())?)
    }

    /// Cases remembered from earlier runs.
    pub fn cases(&self) -> Result<HashSet<String>, Error> {
        self.cases.iter().keys().map(|k| Ok(String::from_utf8_lossy(&k?).into_owned())).collect()
    }

    /// Queues the chunks of `run` and remembers its cases, atomically; false when the run was already prepared.
    pub fn enqueue_run(
        &self,
        run: &str,
        chunks: &[Chunk],
        cases: &HashSet<String>,
        today: &str,
    ) -> Result<bool, Error> {
        let mut of: std::collections::HashMap<RecordType, usize> = std::collections::HashMap::new();
        for c in chunks {
            *of.entry(c.ty).or_default() += 1;
        }
        let mut idx: std::collections::HashMap<RecordType, usize> = std::collections::HashMap::new();
        let mut values = Vec::with_capacity(chunks.len());
        for c in chunks {
            let i = idx.entry(c.ty).or_default();
            *i += 1;
            let h = ChunkHeader {
                run: run.to_owned(),
                ty: c.ty,
                index: *i,
                of: of.get(&c.ty).copied().unwrap_or(0),
                rows: c.rows,
            };
            let hj = serde_json::to_vec(&h)?;
            let mut v = Vec::with_capacity(4 + hj.len() + c.csv.len());
            v.extend_from_slice(&u32::try_from(hj.len()).unwrap_or(u32::MAX).to_be_bytes());
            v.extend_from_slice(&hj);
            v.extend_from_slice(&c.csv);
            values.push((self.db.generate_id()?.to_be_bytes(), v));
        }
        let info = serde_json::to_vec(&serde_json::json!({"prepared": today, "chunks": chunks.len()}))?;
        let done = (&self.runs, &self.chunks, &self.cases)
            .transaction(|(runs, ch, cs)| {
                if runs.get(run.as_bytes())?.is_some() {
                    return Ok(false);
                }
                for (k, v) in &values {
                    ch.insert(&k[..], v.as_slice())?;
                }
                for c in cases {
                    cs.insert(c.as_bytes(), today.as_bytes())?;
                }
                runs.insert(run.as_bytes(), info.as_slice())?;
                Ok(true)
            })
            .map_err(tx_err)?;
        self.durable()?;
        Ok(done)
    }

    /// Forgets cases last seen before `before` (YYYY-MM-DD).
    pub fn prune_cases(&self, before: &str) -> Result<(), Error> {
        for kv in self.cases.iter() {
            let (k, v) = kv?;
            if v.as_ref() < before.as_bytes() {
                self.cases.remove(k)?;
            }
        }
        Ok(())
    }

    /// The queued chunks, in order: (seq, header).
    pub fn pending(&self) -> Result<Vec<(u64, ChunkHeader)>, Error> {
        let mut out = Vec::new();
        for kv in self.chunks.iter() {
            let (k, v) = kv?;
            out.push((seq_of(&k)?, split(&v)?.0));
        }
        Ok(out)
    }

    /// A queued chunk's CSV.
    pub fn csv(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        match self.chunks.get(seq.to_be_bytes())? {
            Some(v) => Ok(Some(split(&v)?.1.to_vec())),
            None => Ok(None),
        }
    }

    /// Stores the receipt of chunk `seq` and removes the chunk, atomically and durably.
    pub fn complete(&self, seq: u64, rec: &StoredReceipt) -> Result<(), Error> {
        let v = serde_json::to_vec(rec)?;
        (&self.chunks, &self.receipts)
            .transaction(|(ch, rc)| {
                ch.remove(&seq.to_be_bytes())?;
                rc.insert(&seq.to_be_bytes(), v.as_slice())?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.durable()
    }

    /// Every stored receipt, oldest first.
    pub fn receipts(&self) -> Result<Vec<StoredReceipt>, Error> {
        self.receipts.iter().values().map(|v| Ok(serde_json::from_slice(&v?)?)).collect()
    }
}

fn seq_of(k: &[u8]) -> Result<u64, Error> {
    let a: [u8; 8] = k.try_into().map_err(|_| Error::Queue("bad key".into()))?;
    Ok(u64::from_be_bytes(a))
}

fn split(v: &[u8]) -> Result<(ChunkHeader, &[u8]), Error> {
    let bad = || Error::Queue("队列条目损坏 (corrupt queue entry)".into());
    let (len, rest) = v.split_first_chunk::<4>().ok_or_else(bad)?;
    let n = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
    let (h, csv) = (rest.get(..n).ok_or_else(bad)?, rest.get(n..).ok_or_else(bad)?);
    Ok((serde_json::from_slice(h)?, csv))
}
