//! `flumon-batch-dump`: the intranet side's decrypted view of batch files, for the identifier
//! leak check of `deploy/run-local.sh --check` (ARCHITECTURE invariant 2). Batches are SM4-GCM
//! sealed, so searching their bytes for identifiers proves nothing; this opens every `.fbatch`
//! under the given folders the way the intranet's ingest does (`open_batch`: SM2 signature,
//! SM4-GCM, SM3 digest) and writes its entries as JSON (UTF-8, one entry a line) into OUT, where
//! `deploy/lib/check_leaks.py` searches them. A batch that does not open is an error: the check
//! must not pass on what it could not read. Test tooling only; it is no part of any zone.
//!
//!     flumon-batch-dump --link-key intranet/keys/link.key --dmz-pub intranet/keys/dmz-sign.pub.pem \
//!         --out DUMP_DIR  transfer/spool dmz/outbox transfer/quarantine

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;

use flumon_shared::batch::{BatchLimits, open_batch};
use flumon_shared::crypto::{Sm2PublicKey, SymKey};
use flumon_shared::entries::Entry;

/// Decrypt every batch file under the given folders into JSON lines (test tooling).
#[derive(Parser, Debug)]
#[command(name = "flumon-batch-dump", version)]
struct Cli {
    /// The link key (the intranet's keys/link.key).
    #[arg(long)]
    link_key: PathBuf,
    /// The DMZ's signing public key (the intranet's keys/dmz-sign.pub.pem).
    #[arg(long)]
    dmz_pub: PathBuf,
    /// Folder to write OUT/<batch>.<n>.json into (created).
    #[arg(long)]
    out: PathBuf,
    /// Batch files or folders searched recursively for `*.fbatch`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn batches(p: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if p.is_file() {
        if p.extension().is_some_and(|e| e == "fbatch") {
            out.push(p.to_owned());
        }
        return Ok(());
    }
    if !p.is_dir() {
        return Ok(());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .with_context(|| p.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    for q in v {
        batches(&q, out)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let key = SymKey::load(&cli.link_key).with_context(|| cli.link_key.display().to_string())?;
    let pubkey = Sm2PublicKey::load(&cli.dmz_pub).with_context(|| cli.dmz_pub.display().to_string())?;
    let limits = BatchLimits::default();
    let mut files = Vec::new();
    for p in &cli.paths {
        batches(p, &mut files)?;
    }
    if files.is_empty() {
        bail!("没有找到批次文件 (no .fbatch file under {:?})", cli.paths);
    }
    std::fs::create_dir_all(&cli.out)?;
    let (mut records, mut entries) = (0usize, 0usize);
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).with_context(|| f.display().to_string())?;
        let (header, list) = open_batch::<Entry>(&bytes, &key, &pubkey, &limits)
            .with_context(|| format!("批次无法打开 (batch does not open): {}", f.display()))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut w = std::io::BufWriter::new(std::fs::File::create(cli.out.join(format!("{name}.{i}.json")))?);
        writeln!(w, "{{\"node\":{:?},\"sequence\":{}}}", header.node_id, header.sequence)?;
        for e in &list {
            serde_json::to_writer(&mut w, e)?;
            w.write_all(b"\n")?;
            records += usize::from(matches!(e, Entry::Record(_)));
        }
        entries += list.len();
        w.flush()?;
    }
    println!("{} {} {}", files.len(), entries, records);
    Ok(())
}
