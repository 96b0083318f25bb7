//! `flumon-intranet`: command line. Thin: parses arguments, sets up logging
//! and calls the library.
//!
//! ```text
//!  init DIR [--dmz-dir D]                  ─▶ config::init
//!  serve --config FILE                     ─▶ server::run (HTTPS TLS 1.3 + spool watcher)
//!  admin create-user --config --name --role [--scope] ─▶ auth::create_user ─▶ one-time activation code
//!  report --config --scope --from --to [--by] --format json|csv ─▶ report::build
//!  ingest --config                         ─▶ one pass over the spool
//!  check --config                          ─▶ check::run: counts + rollups vs recomputation (exit 1 if they differ)
//!  mem --input FILE.csv                    ─▶ mem::memmodel ─▶ JSON
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use flumon_intranet::config::Config;
use flumon_intranet::indicators::{By, Period, Role};
use flumon_intranet::{auth, mem, report, server};

/// mimalloc instead of glibc's malloc, as in `flumon-dmz` (the ingest bench
/// uses it too, so its figures are the server's; docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "flumon-intranet", version, about = "flumon intranet service (流感医疗服务监测 内网)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes DIR/intranet.toml, a TLS certificate, the journal key and folders.
    Init {
        dir: PathBuf,
        /// The DMZ's folder (from `flumon-dmz init`): copies keys/link.key and keys/dmz-sign.pub.pem.
        #[arg(long, env = "FLUMON_DMZ_DIR")]
        dmz_dir: Option<PathBuf>,
    },
    /// Serves HTTPS and ingests the spool.
    Serve {
        #[arg(long, env = "FLUMON_INTRANET_CONFIG")]
        config: PathBuf,
    },
    /// Account administration.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Every indicator of a scope and period.
    Report {
        #[arg(long, env = "FLUMON_INTRANET_CONFIG")]
        config: PathBuf,
        #[arg(long, env = "FLUMON_REPORT_SCOPE")]
        scope: String,
        #[arg(long, env = "FLUMON_REPORT_FROM")]
        from: String,
        #[arg(long, env = "FLUMON_REPORT_TO")]
        to: String,
        #[arg(long, env = "FLUMON_REPORT_BY", default_value = "week")]
        by: String,
        #[arg(long, env = "FLUMON_REPORT_FORMAT", default_value = "json")]
        format: String,
    },
    /// One ingest pass over the spool.
    Ingest {
        #[arg(long, env = "FLUMON_INTRANET_CONFIG")]
        config: PathBuf,
    },
    /// Counts per hospital and type, and the rollups compared with a full recomputation (exit 1 if they differ).
    Check {
        #[arg(long, env = "FLUMON_INTRANET_CONFIG")]
        config: PathBuf,
    },
    /// MEM epidemic thresholds of a weeks × seasons CSV (as the R package mem lays out its data).
    Mem {
        #[arg(long, env = "FLUMON_MEM_INPUT")]
        input: PathBuf,
        /// Use at most the last N seasons (default 10).
        #[arg(long, env = "FLUMON_MEM_SEASONS", default_value_t = 10)]
        seasons: usize,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Creates an account and prints its one-time activation code.
    CreateUser {
        #[arg(long, env = "FLUMON_INTRANET_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// analyst | sysadmin | secadmin | auditor
        #[arg(long)]
        role: String,
        /// GB/T 2260 code of an analyst's region (000000, a province or a city).
        #[arg(long)]
        scope: Option<String>,
    },
}

async fn shutdown_signal(tx: tokio::sync::watch::Sender<bool>) {
    let _ = tokio::signal::ctrl_c().await;
    let _ = tx.send(true);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Init { dir, dmz_dir } => {
            let p = flumon_intranet::config::init(&dir, dmz_dir.as_deref())?;
            println!("已写入 {} (written)", p.display());
            if dmz_dir.is_none() {
                println!(
                    "请把 DMZ 的 keys/link.key 与 keys/dmz-sign.pub.pem 复制到 {}/keys/ (copy the DMZ's keys)",
                    dir.display()
                );
            }
        }
        Cmd::Serve { config } => {
            let cfg = Config::load(&config)?;
            let listener =
                tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("bind {}", cfg.listen))?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(shutdown_signal(tx));
            server::run(cfg, listener, rx).await?;
        }
        Cmd::Admin { cmd: AdminCmd::CreateUser { config, name, role, scope } } => {
            let cfg = Config::load(&config)?;
            let st = server::state(&cfg).await?;
            let code = auth::create_user(&st.db, &st.clock, &name, Role::parse(&role)?, scope.as_deref()).await?;
            st.audit.record(
                "account.create",
                "console",
                "sysadmin",
                "ok",
                serde_json::json!({ "user": name, "role": role, "scope": scope }),
            )?;
            println!("用户 {name} 已创建。一次性激活码 (one-time activation code, 72 h): {code}");
        }
        Cmd::Report { config, scope, from, to, by, format } => {
            let cfg = Config::load(&config)?;
            let db = flumon_intranet::db::Db::open(&cfg.database_url).await?;
            let period = Period::parse(&from, &to, By::parse(&by)?)?;
            let r = report::build(&db, &scope, &period).await?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&r)?),
                "csv" => print!("{}", report::to_csv(&r)?),
                _ => anyhow::bail!("--format 须为 json 或 csv (json|csv)"),
            }
        }
        Cmd::Ingest { config } => {
            let cfg = Config::load(&config)?;
            let db = flumon_intranet::db::Db::open(&cfg.database_url).await?;
            let keys = server::ingest_keys(&cfg)?;
            for (name, outcome) in flumon_intranet::ingest::ingest_spool(&db, &keys, &cfg.paths.spool).await? {
                println!("{name}: {outcome:?}");
            }
        }
        Cmd::Check { config } => {
            let cfg = Config::load(&config)?;
            let db = flumon_intranet::db::Db::open(&cfg.database_url).await?;
            let c = flumon_intranet::check::run(&db).await?;
            println!("{}", serde_json::to_string_pretty(&c)?);
            if !c.consistent() {
                eprintln!(
                    "汇总表与明细重算不一致: {} 个单元格 (rollups differ from a recomputation)",
                    c.mismatch_count
                );
                std::process::exit(1);
            }
        }
        Cmd::Mem { input, seasons } => {
            let text = std::fs::read_to_string(&input).with_context(|| format!("读取 {}", input.display()))?;
            let data = mem::read_csv(&text)?;
            let opts = mem::MemOptions { max_seasons: seasons, ..mem::MemOptions::default() };
            let result = mem::memmodel(&data, &opts);
            println!("{}", serde_json::to_string_pretty(&result)?);
        }
    }
    Ok(())
}
