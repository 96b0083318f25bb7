//! `flumon-dmz`: command line. Thin: parses arguments, sets up logging and
//! calls the library.
//!
//! ```text
//!  init DIR ─▶ init::init          serve ─▶ flumon_dmz::run(config, public, admin, shutdown)
//!  admin create-hospital / create-reviewer / export-raw / purge-raw
//!     ─▶ store free (server down)? open it directly ─▶ same library functions
//!     └▶ store locked (server up)  ─▶ admin listener /operator/* (operator cert + token)
//!  exit status: 0 stopped on SIGTERM/Ctrl-C; 75 (EX_TEMPFAIL) the store kept failing
//!  (store/health.rs: restart it, sled recovers from its log); 1 any other error
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use flumon_dmz::admin::{
    CreateReq, Created, EnrolCodeResp, ExportReq, HospitalReq, PurgeReq, ReviewerReq, ReviewerResp,
};
use flumon_dmz::{AppState, Config, Error};

/// mimalloc instead of glibc's malloc: sled copies and frees a leaf node on
/// every write, and glibc's allocator was about a quarter of the server's CPU
/// in a profile of the upload benchmark (docs/PERFORMANCE.md, DMZ "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "flumon-dmz", version, about = "flumon DMZ service (流感医疗服务监测 DMZ)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a working configuration for a local deployment into DIR.
    Init {
        dir: PathBuf,
        /// The offline vault's SM2 public key (PEM); without it a DEMO vault key pair is made.
        #[arg(long, env = "FLUMON_VAULT_PUBKEY")]
        vault_pubkey: Option<PathBuf>,
    },
    /// Run the public and admin HTTPS listeners.
    Serve {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
    },
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
    /// Copy still-encrypted raw items and a signed manifest to a folder; mark them exported.
    ExportRaw {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        to: PathBuf,
        /// Only items received at or after this time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, China Standard Time).
        #[arg(long)]
        since: Option<String>,
    },
    /// Delete exported raw items whose export is older than DAYS days.
    PurgeRaw {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        exported_older_than: u32,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create an approved hospital; print JSON {uscc, token, cert, key, ca, activation_url}: the
    /// activation_url is the one-time link where the hospital's web user sets a password and TOTP.
    CreateHospital {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        uscc: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        level: u8,
        /// Where to write the agent's certificate and key (default: <config dir>/agents/<uscc>/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a one-time enrolment code (24 h) for the hospital's agent; print JSON {uscc, code}.
    EnrolCode {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        uscc: String,
    },
    /// Create a reviewer account; print JSON {name, activation_url}: the one-time link
    /// (admin listener) where the reviewer sets a password and enrols TOTP.
    CreateReviewer {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        /// Login name: 3–32 letters, digits or ._-, starting with a letter.
        #[arg(long)]
        name: String,
    },
    /// Revoke every agent client certificate of the hospital.
    RevokeAgents {
        #[arg(long, env = "FLUMON_DMZ_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        uscc: String,
    },
}

fn parse_time(s: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .with_context(|| format!("--since {s:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"))
}

/// The store when no server holds it; `None` when one does.
fn open_local(config: &Config) -> anyhow::Result<Option<AppState>> {
    match flumon_dmz::open_state(config.clone()) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Unavailable(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn remote<T: serde::de::DeserializeOwned>(
    config: &Config,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<T> {
    let p = &config.paths;
    let client =
        flumon_dmz::client::Client::new(config.listen.admin, &p.ca_cert, Some((&p.operator_cert, &p.operator_key)))?;
    let token = std::fs::read_to_string(&p.operator_token).context("operator token")?;
    let a = client.post_json(path, token.trim(), &body).await.context("admin listener")?;
    if a.status != 200 {
        bail!("admin listener answered {}: {}", a.status, String::from_utf8_lossy(&a.body));
    }
    Ok(serde_json::from_slice(&a.body)?)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    if secret {
        flumon_dmz::keys::write_secret(path, bytes)?;
    } else {
        flumon_dmz::keys::write_public(path, bytes)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Init { dir, vault_pubkey } => {
            let r = flumon_dmz::init::init(&dir, vault_pubkey.as_deref())?;
            if r.demo_vault {
                eprintln!("\n{}\n", flumon_dmz::init::DEMO_VAULT_WARNING);
            }
            println!("{}", r.config.display());
        }
        Cmd::Serve { config } => {
            let cfg = Config::load(&config)?;
            let public = tokio::net::TcpListener::bind(cfg.listen.public).await.context("public listener")?;
            let admin = tokio::net::TcpListener::bind(cfg.listen.admin).await.context("admin listener")?;
            match flumon_dmz::run(cfg, public, admin, shutdown_signal()).await {
                Ok(()) => {}
                // the store's health logged why; the supervisor restarts the process
                Err(Error::StoreFailed(_)) => std::process::exit(flumon_dmz::store::health::EXIT_STORE_FAILED),
                Err(e) => return Err(e.into()),
            }
        }
        Cmd::Admin { cmd: AdminCmd::CreateHospital { config, uscc, name, region, level, out } } => {
            let cfg = Config::load(&config)?;
            let req = CreateReq { uscc, name, region, level };
            let created: Created = match open_local(&cfg)? {
                Some(state) => flumon_dmz::admin::create(&state, &req).await?,
                None => remote(&cfg, "/operator/create-hospital", serde_json::to_value(&req)?).await?,
            };
            let base = config.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = out.unwrap_or_else(|| base.join("agents").join(&created.uscc));
            std::fs::create_dir_all(&dir)?;
            let (cert, key) = (dir.join("agent.pem"), dir.join("agent.key"));
            write_file(&cert, created.cert_pem.as_bytes(), false)?;
            write_file(&key, created.key_pem.as_bytes(), true)?;
            let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let out = serde_json::json!({
                "uscc": created.uscc, "token": created.token,
                "cert": abs(&cert), "key": abs(&key), "ca": abs(&cfg.paths.ca_cert),
                "activation_url": created.activation_url,
            });
            println!("{out}");
        }
        Cmd::Admin { cmd: AdminCmd::EnrolCode { config, uscc } } => {
            let cfg = Config::load(&config)?;
            let r: EnrolCodeResp = match open_local(&cfg)? {
                Some(state) => flumon_dmz::admin::new_enrol_code(&state, &uscc).await?,
                None => remote(&cfg, "/operator/enrol-code", serde_json::to_value(HospitalReq { uscc })?).await?,
            };
            println!("{}", serde_json::to_string(&r)?);
        }
        Cmd::Admin { cmd: AdminCmd::CreateReviewer { config, name } } => {
            let cfg = Config::load(&config)?;
            let r: ReviewerResp = match open_local(&cfg)? {
                Some(state) => flumon_dmz::admin::create_reviewer(&state, &name).await?,
                None => remote(&cfg, "/operator/create-reviewer", serde_json::to_value(ReviewerReq { name })?).await?,
            };
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "一次性激活链接 (one-time activation link, expires): 在其中设置密码并绑定 TOTP 验证器 (set a password and enrol TOTP)"
            );
        }
        Cmd::Admin { cmd: AdminCmd::RevokeAgents { config, uscc } } => {
            let cfg = Config::load(&config)?;
            match open_local(&cfg)? {
                Some(state) => flumon_dmz::admin::revoke(&state, &uscc).await?,
                None => {
                    let _: serde_json::Value = remote(
                        &cfg,
                        "/operator/revoke-agents",
                        serde_json::to_value(HospitalReq { uscc: uscc.clone() })?,
                    )
                    .await?;
                }
            }
            println!("{}", serde_json::json!({"uscc": uscc, "revoked": true}));
        }
        Cmd::ExportRaw { config, to, since } => {
            let cfg = Config::load(&config)?;
            let since = since.as_deref().map(parse_time).transpose()?;
            std::fs::create_dir_all(&to)?;
            let to = std::fs::canonicalize(&to)?;
            let report: flumon_dmz::export::ExportReport = match open_local(&cfg)? {
                Some(state) => {
                    tokio::task::spawn_blocking(move || flumon_dmz::export::export_raw(&state, &to, since)).await??
                }
                None => remote(&cfg, "/operator/export-raw", serde_json::to_value(ExportReq { to, since })?).await?,
            };
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::PurgeRaw { config, exported_older_than } => {
            let cfg = Config::load(&config)?;
            let report: flumon_dmz::export::PurgeReport = match open_local(&cfg)? {
                Some(state) => {
                    tokio::task::spawn_blocking(move || flumon_dmz::export::purge_raw(&state, exported_older_than))
                        .await??
                }
                None => {
                    let req = PurgeReq { exported_older_than_days: exported_older_than };
                    remote(&cfg, "/operator/purge-raw", serde_json::to_value(req)?).await?
                }
            };
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
