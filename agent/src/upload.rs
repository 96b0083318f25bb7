//! `flumon-agent run`: one daily run, or the daemon that runs it every day.
//!
//! ```text
//!  run id = today (CST) ─┬ already prepared? ─yes─▶ only drain the queue
//!                        └ no: sources ─▶ extract (blocking pool) ─▶ queue.enqueue_run (atomic, fsynced)
//!  drain: for each queued chunk, in order:
//!     POST /api/v1/upload/{type} (text/csv) ─▶ 200 / 422 / 413 + receipt ─▶ check counts ─▶ queue.complete
//!                                           ─▶ 401 / 403: stop (credentials)   ─▶ network, 429, 5xx: backoff, retry
//!  scans folder ─▶ scans::process      --dry-run: chunks ─▶ check's receipts printed, nothing queued or sent
//!  daemon: sleep until schedule.daily_at ─▶ run (retrying until the queue is empty); scans every N minutes
//! ```

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;

use flumon_shared::receipt::Receipt;

use crate::config::AgentConfig;
use crate::extract::{ExtractConfig, TypeSummary, extract};
use crate::https::Client;
use crate::queue::{Queue, StoredReceipt};
use crate::source::{Mapping, read_folder};
use crate::{Error, scans};

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    /// Prepare a new run even if today's was prepared already.
    pub rerun: bool,
    /// Give up after this many failed attempts at one chunk (`None`: never).
    pub max_attempts: Option<u32>,
    /// Show progress bars (interactive).
    pub progress: bool,
    /// "Now" (tests); default the clock.
    pub now: Option<NaiveDateTime>,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct RunReport {
    pub run: String,
    pub prepared: bool,
    pub summary: std::collections::BTreeMap<String, TypeSummary>,
    /// Rows refused here (never sent), per source file.
    pub local_rejections: Vec<(String, Receipt)>,
    pub sent: Vec<StoredReceipt>,
    /// Receipts whose counts do not add up (should be none).
    pub warnings: Vec<String>,
    pub scans: Vec<scans::ScanOutcome>,
    /// --dry-run: the receipts `check` gives for each chunk.
    pub dry_run_receipts: Vec<Receipt>,
}

/// The HTTPS client of a configuration.
pub fn client(cfg: &AgentConfig) -> Result<Client, Error> {
    Client::new(
        &cfg.dmz.url,
        &cfg.dmz.ca,
        Some((&cfg.dmz.cert, &cfg.dmz.key)),
        Duration::from_secs(cfg.upload.timeout_secs),
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Queue(format!("worker: {e}")))?
}

async fn gather(cfg: &AgentConfig) -> Result<Vec<crate::source::SourceFile>, Error> {
    let mut files = Vec::new();
    if let Some(folder) = cfg.source.folder.clone() {
        let mapping = cfg.source.mapping.as_deref().map(Mapping::load).transpose()?;
        files.extend(blocking(move || read_folder(&folder, mapping.as_ref())).await?);
    }
    if !cfg.source.sql.is_empty() {
        let path = cfg.source.database_url_file.as_ref().ok_or_else(|| {
            Error::Config("[[source.sql]] 需要 source.database_url_file (the database URL file)".into())
        })?;
        let url = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
        );
        files.extend(crate::sql::run_queries(url.trim(), &cfg.source.sql).await?);
    }
    Ok(files)
}

/// One run: prepare today's chunks (once), send everything queued, then the scans.
pub async fn run_once(cfg: &AgentConfig, opts: &RunOptions) -> Result<RunReport, Error> {
    let now = opts.now.unwrap_or_else(crate::now_cst);
    let today = now.date().format("%Y-%m-%d").to_string();
    let run = if opts.rerun { format!("{today}#{}", now.format("%H%M%S")) } else { today.clone() };
    let mut report = RunReport { run: run.clone(), ..RunReport::default() };
    let queue = if opts.dry_run {
        None
    } else {
        Some(Arc::new(
            blocking({
                let dir = cfg.state.dir.clone();
                move || Queue::open(&dir)
            })
            .await?,
        ))
    };
    let prepare = match &queue {
        Some(q) => !q.has_run(&run)?,
        None => true,
    };
    if prepare {
        let files = gather(cfg).await?;
        let remembered = match &queue {
            Some(q) => q.cases()?,
            None => Default::default(),
        };
        let ecfg = ExtractConfig {
            org: cfg.hospital.uscc.clone(),
            now,
            days: cfg.source.days.unwrap_or(7),
            chunk_rows: cfg.upload.chunk_rows,
        };
        let ex = blocking(move || extract(files, remembered, &ecfg)).await?;
        report.summary = ex.summary.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
        report.local_rejections = ex.local_receipts.clone();
        if opts.dry_run {
            let ctx = flumon_shared::validate::Ctx { now, org: Some(cfg.hospital.uscc.clone()) };
            for c in &ex.chunks {
                report.dry_run_receipts.push(crate::check::check_bytes(c.ty, &c.csv, Some("text/csv"), &ctx));
            }
            return Ok(report);
        }
        if let Some(q) = &queue {
            let q2 = Arc::clone(q);
            let (run2, today2) = (run.clone(), today.clone());
            let keep_from = (now.date() - chrono::Duration::days(60)).format("%Y-%m-%d").to_string();
            report.prepared = blocking(move || {
                let done = q2.enqueue_run(&run2, &ex.chunks, &ex.cases, &today2)?;
                q2.prune_cases(&keep_from)?;
                Ok(done)
            })
            .await?;
        }
    }
    let Some(queue) = queue else { return Ok(report) };
    let client = client(cfg)?;
    let token = cfg.token()?;
    drain(cfg, opts, &queue, &client, &token, &mut report).await?;
    if let Some(folder) = &cfg.scans.folder {
        report.scans = scans::process(folder, &client, &token, &cfg.hospital.uscc).await?;
    }
    Ok(report)
}

enum Outcome {
    Done(StoredReceipt),
    Retry(String),
}

async fn send_chunk(
    queue: &Arc<Queue>,
    client: &Client,
    token: &str,
    seq: u64,
    h: &crate::queue::ChunkHeader,
) -> Result<Outcome, Error> {
    let q = Arc::clone(queue);
    let Some(csv) = blocking(move || q.csv(seq)).await? else {
        return Ok(Outcome::Retry("chunk vanished".into()));
    };
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/upload/{}", h.ty.as_str());
    let a = match client
        .send("POST", &path, &[("authorization", &auth), ("content-type", "text/csv; charset=utf-8")], csv)
        .await
    {
        Ok(a) => a,
        Err(Error::Network(m)) => return Ok(Outcome::Retry(m)),
        Err(e) => return Err(e),
    };
    let text = || String::from_utf8_lossy(&a.body).chars().take(500).collect::<String>();
    match a.status {
        200 | 413 | 422 => {
            let receipt: serde_json::Value = serde_json::from_slice(&a.body).map_err(|_| Error::Http {
                status: a.status,
                message: format!("回执不是 JSON (receipt is not JSON): {}", text()),
            })?;
            Ok(Outcome::Done(StoredReceipt {
                seq,
                chunk: h.clone(),
                status: a.status,
                receipt,
                time: crate::now_cst().format("%Y-%m-%d %H:%M:%S").to_string(),
            }))
        }
        401 | 403 => Err(Error::Auth { status: a.status, message: text() }),
        s if s == 429 || s >= 500 => Ok(Outcome::Retry(format!("HTTP {s}: {}", text()))),
        s => Err(Error::Http { status: s, message: text() }),
    }
}

/// Checks a receipt against the chunk it answers; returns a warning when something does not add up.
pub fn check_receipt(r: &StoredReceipt) -> Option<String> {
    let rc: Receipt = match serde_json::from_value(r.receipt.clone()) {
        Ok(rc) => rc,
        Err(e) => return Some(format!("回执无法解析 (unreadable receipt) seq {}: {e}", r.seq)),
    };
    let who = format!("{} 第 {}/{} 块", r.chunk.ty.as_str(), r.chunk.index, r.chunk.of);
    if r.status != 200 {
        return Some(format!("{who}: HTTP {} 整块被拒收: {:?}", r.status, rc.errors.first().map(|e| &e.message)));
    }
    if rc.ty != r.chunk.ty || rc.received != r.chunk.rows || rc.accepted + rc.rejected != rc.received {
        return Some(format!(
            "{who}: 回执行数不符 (sent {}, receipt {} / {} / {})",
            r.chunk.rows, rc.received, rc.accepted, rc.rejected
        ));
    }
    None
}

async fn drain(
    cfg: &AgentConfig,
    opts: &RunOptions,
    queue: &Arc<Queue>,
    client: &Client,
    token: &str,
    report: &mut RunReport,
) -> Result<(), Error> {
    let q = Arc::clone(queue);
    let pending = blocking(move || q.pending()).await?;
    let total: u64 = pending.iter().map(|(_, h)| h.rows as u64).sum();
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(s) = indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} 行 ({eta})") {
            b.set_style(s.progress_chars("=> "));
        }
        Some(b)
    } else {
        None
    };
    for (seq, h) in pending {
        if let Some(b) = &bar {
            b.set_message(h.ty.as_str());
        }
        let mut delay = Duration::from_secs(cfg.schedule.retry_initial_secs.max(1));
        let mut attempts = 0u32;
        let stored = loop {
            match send_chunk(queue, client, token, seq, &h).await? {
                Outcome::Done(r) => break r,
                Outcome::Retry(why) => {
                    attempts += 1;
                    if opts.max_attempts.is_some_and(|m| attempts >= m) {
                        return Err(Error::Network(format!(
                            "{attempts} 次尝试均失败, 未发送的数据保留在本地队列, 下次运行继续 (queued data kept): {why}"
                        )));
                    }
                    tracing::warn!(chunk = seq, attempt = attempts, retry_in = ?delay, "上传失败, 稍后重试 (upload failed, retrying): {why}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(cfg.schedule.retry_max_secs.max(1)));
                }
            }
        };
        if let Some(w) = check_receipt(&stored) {
            tracing::warn!("{w}");
            report.warnings.push(w);
        }
        let q = Arc::clone(queue);
        let s2 = stored.clone();
        blocking(move || q.complete(seq, &s2)).await?;
        if let Some(b) = &bar {
            b.inc(h.rows as u64);
        }
        report.sent.push(stored);
    }
    if let Some(b) = bar {
        b.finish_with_message("完成");
    }
    Ok(())
}

/// The next daily run time after `now`.
pub fn next_run(now: NaiveDateTime, at: chrono::NaiveTime) -> NaiveDateTime {
    let today = now.date().and_time(at);
    if today > now { today } else { today + chrono::Duration::days(1) }
}

/// The daemon: a run at `schedule.daily_at` every day (retried until the queue is empty), scans in between.
pub async fn daemon(cfg: &AgentConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
    let at = crate::config::daily_time(&cfg.schedule.daily_at)?;
    tokio::pin!(shutdown);
    let poll = Duration::from_secs(cfg.schedule.scan_poll_minutes.max(1) * 60);
    loop {
        let next = next_run(crate::now_cst(), at);
        tracing::info!(next = %next, "下次运行 (next run)");
        loop {
            let left = (next - crate::now_cst()).to_std().unwrap_or_default();
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(poll)) => {}
                () = &mut shutdown => return Ok(()),
            }
            if let Some(folder) = &cfg.scans.folder
                && let (Ok(c), Ok(t)) = (client(cfg), cfg.token())
            {
                match scans::process(folder, &c, &t, &cfg.hospital.uscc).await {
                    Ok(o) if !o.is_empty() => tracing::info!(count = o.len(), "扫描件已处理 (scans processed)"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("扫描件上传失败 (scans): {e}"),
                }
            }
        }
        let mut delay = Duration::from_secs(cfg.schedule.retry_initial_secs.max(1));
        loop {
            let opts = RunOptions { max_attempts: Some(5), ..RunOptions::default() };
            let r = tokio::select! {
                r = run_once(cfg, &opts) => r,
                () = &mut shutdown => return Ok(()),
            };
            match r {
                Ok(rep) => {
                    tracing::info!(run = %rep.run, chunks = rep.sent.len(), warnings = rep.warnings.len(), "每日上传完成 (daily run done)");
                    break;
                }
                Err(e @ (Error::Auth { .. } | Error::Config(_))) => {
                    tracing::error!("{e}; 明天再试 (will try again tomorrow)");
                    break;
                }
                Err(e) => {
                    tracing::warn!(retry_in = ?delay, "运行失败, 稍后重试 (run failed): {e}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                    delay = (delay * 2).min(Duration::from_secs(cfg.schedule.retry_max_secs.max(1)));
                }
            }
        }
    }
}
