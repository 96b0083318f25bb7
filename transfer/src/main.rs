//! `flumon-transfer`: thin command line over the library (clap, tracing;
//! SIGINT / SIGTERM set the stop flag the library polls).
//!
//! ```text
//!  send | recv | resend | verify | reconcile | status | init ─▶ flumon_transfer::… ─▶ exit status
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use flumon_shared::crypto::Sm2PublicKey;
use flumon_transfer::config::{Mode, RecvConfig, RecvFile, SendConfig, SendFile};
use flumon_transfer::link::{LinkRx, LinkTx, UdpRx, UdpTx};
use flumon_transfer::send::{Selector, SendOptions};

#[derive(Parser)]
#[command(name = "flumon-transfer", version, about = "flumon's one-way transfer: DMZ outbox ═▶ intranet spool")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send the DMZ outbox over the link (DMZ side).
    Send {
        #[arg(long, env = "FLUMON_TRANSFER_SEND_CONFIG")]
        config: PathBuf,
        /// Exit once every batch in the outbox has had its passes.
        #[arg(long)]
        once: bool,
    },
    /// Receive into the inbound spool (intranet side).
    Recv {
        #[arg(long, env = "FLUMON_TRANSFER_RECV_CONFIG")]
        config: PathBuf,
    },
    /// Resend batches after reading the receiver's gap report.
    Resend {
        #[arg(long, env = "FLUMON_TRANSFER_SEND_CONFIG")]
        config: PathBuf,
        /// A..B (inclusive) or a single sequence number.
        #[arg(long, conflicts_with = "since")]
        seq: Option<String>,
        /// Batches created at or after: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" (local time) or unix ms.
        #[arg(long)]
        since: Option<String>,
        /// Passes of the resend (fresh repair symbols each).
        #[arg(long, default_value_t = 3)]
        passes: u8,
    },
    /// Verify a journal's hash chain and checkpoint signatures.
    Verify {
        journal: PathBuf,
        /// The journal's SM2 public key (keys/*-journal.pub.pem).
        #[arg(long, env = "FLUMON_TRANSFER_JOURNAL_PUB")]
        key: PathBuf,
    },
    /// Compare the sender's and the receiver's journals batch by batch.
    Reconcile {
        sender_journal: PathBuf,
        receiver_journal: PathBuf,
        #[arg(long, env = "FLUMON_TRANSFER_SENDER_PUB")]
        sender_key: PathBuf,
        #[arg(long, env = "FLUMON_TRANSFER_RECEIVER_PUB")]
        receiver_key: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What the running sender or receiver knows now.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
    /// Write send.toml and recv.toml from the DMZ's keys.
    Init {
        #[arg(long)]
        dmz_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 47100)]
        port: u16,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("flumon-transfer: {e:#}");
            std::process::exit(2);
        }
    }
}

fn stop_on_signal() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        flag.store(true, Ordering::Relaxed);
    })?;
    Ok(stop)
}

fn send_link(cfg: &SendConfig) -> Result<Option<Box<dyn LinkTx>>> {
    if cfg.mode != Mode::Diode {
        return Ok(None);
    }
    let (tx, granted) = UdpTx::bind(cfg.diode.local_addr, cfg.diode.target, cfg.diode.send_buffer_bytes)
        .context("binding the sending socket")?;
    tracing::info!(target = %cfg.diode.target, send_buffer = granted, "sending socket ready (send-only)");
    Ok(Some(Box::new(tx)))
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Send { config, once } => {
            let cfg = SendConfig::load(&config)?;
            let link = send_link(&cfg)?;
            let opts = SendOptions { stop: stop_on_signal()?, once, ..SendOptions::default() };
            let sum = flumon_transfer::send::run(cfg, link, opts)?;
            println!("{}", serde_json::to_string(&sum)?);
            Ok(0)
        }
        Cmd::Recv { config } => {
            let cfg = RecvConfig::load(&config)?;
            let link: Option<Box<dyn LinkRx>> = if cfg.mode == Mode::Diode {
                let (rx, granted) = UdpRx::bind(cfg.diode.listen, cfg.diode.recv_buffer_bytes)
                    .context("binding the receiving socket")?;
                if granted < cfg.diode.recv_buffer_bytes {
                    tracing::warn!(
                        asked = cfg.diode.recv_buffer_bytes,
                        granted,
                        "receive buffer smaller than asked: raise net.core.rmem_max"
                    );
                }
                tracing::info!(listen = %cfg.diode.listen, recv_buffer = granted, "receiving socket ready (receive-only)");
                Some(Box::new(rx))
            } else {
                None
            };
            let opts = flumon_transfer::recv::RecvOptions { stop: stop_on_signal()? };
            let sum = flumon_transfer::recv::run(cfg, link, opts)?;
            println!("{}", serde_json::to_string(&sum)?);
            Ok(0)
        }
        Cmd::Resend { config, seq, since, passes } => {
            let select = match (seq, since) {
                (Some(s), None) => parse_range(&s)?,
                (None, Some(t)) => Selector::Since { ms: parse_time(&t)? },
                _ => bail!("give --seq A..B or --since TIME"),
            };
            let cfg = SendConfig::load(&config)?;
            flumon_transfer::fsutil::ensure_dir(&cfg.state_dir)?;
            let lock = flumon_transfer::send::lock_state(&cfg.state_dir)?;
            if lock.is_none() {
                let p = flumon_transfer::send::queue_request(&cfg.state_dir, select, passes)?;
                println!("queued for the running sender: {}", p.display());
                return Ok(0);
            }
            drop(lock);
            let link = send_link(&cfg)?;
            let opts = SendOptions {
                stop: stop_on_signal()?,
                once: true,
                only_requests: true,
                requests: vec![(select, passes)],
            };
            let sum = flumon_transfer::send::run(cfg, link, opts)?;
            println!("{}", serde_json::to_string(&sum)?);
            Ok(0)
        }
        Cmd::Verify { journal, key } => {
            let key = Sm2PublicKey::load(&key).with_context(|| format!("{}", key.display()))?;
            let r = flumon_transfer::reconcile::verify(&journal, &key)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if r.intact {
                println!("chain ok: {} entries, last seq {}, {} checkpoints", r.lines, r.last_seq, r.checkpoints);
                Ok(0)
            } else {
                println!("chain BROKEN: {}", r.first_bad.as_deref().unwrap_or("?"));
                Ok(1)
            }
        }
        Cmd::Reconcile { sender_journal, receiver_journal, sender_key, receiver_key, json } => {
            let sk = Sm2PublicKey::load(&sender_key).with_context(|| format!("{}", sender_key.display()))?;
            let rk = Sm2PublicKey::load(&receiver_key).with_context(|| format!("{}", receiver_key.display()))?;
            let r = flumon_transfer::reconcile::reconcile(&sender_journal, &sk, &receiver_journal, &rk)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.render());
            }
            Ok(if r.ok() { 0 } else { 1 })
        }
        Cmd::Status { config } => {
            let dir = match SendFile::load(&config) {
                Ok(f) => f.state_dir,
                Err(_) => RecvFile::load(&config)?.state_dir,
            };
            match flumon_transfer::status::read(&dir) {
                Ok(v) => print!("{}", flumon_transfer::status::render(&v)),
                Err(e) => println!("no status in {} ({e}): the process has not run yet", dir.display()),
            }
            Ok(0)
        }
        Cmd::Init { dmz_dir, out, port } => {
            let r = flumon_transfer::init::init(&dmz_dir, &out, port)?;
            println!("node {}: wrote {} and {}", r.node_id, r.send_toml.display(), r.recv_toml.display());
            Ok(0)
        }
    }
}

fn parse_range(s: &str) -> Result<Selector> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let from: u64 = a.trim().parse().context("--seq A..B: A is not a number")?;
    let to: u64 = b.trim().trim_start_matches('=').parse().context("--seq A..B: B is not a number")?;
    if to < from {
        bail!("--seq A..B needs A ≤ B");
    }
    Ok(Selector::Seq { from, to })
}

fn parse_time(s: &str) -> Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(u64::try_from(t.timestamp_millis())?);
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            let local = t.and_local_timezone(chrono::Local).single().context("ambiguous local time")?;
            return Ok(u64::try_from(local.timestamp_millis())?);
        }
    }
    bail!("cannot read time {s:?}: use RFC 3339, \"YYYY-MM-DD HH:MM[:SS]\" or unix milliseconds")
}
