//! `flumon-agent`: command line of the hospital-side program. Thin: argument
//! parsing, logging, prompts; the work is in the library.
//!
//! ```text
//!  check FILES…                    offline receipts            (check.rs)
//!  enroll --dmz URL --uscc C --code CODE --ca CA.pem --config-dir DIR   (enroll.rs)
//!  run --config agent.toml [--once] [--dry-run] [--rerun]   one run, or the daily daemon   (upload.rs)
//!  receipts --config agent.toml    the receipts kept locally
//!  verify-release FILE --sig SIG --pubkey KEY [--sm3 HEX]   a download's signature   (verify_release.rs)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flumon_agent::check::{self, CheckConfig};
use flumon_agent::config::AgentConfig;
use flumon_agent::upload::{self, RunOptions};
use flumon_shared::model::RecordType;

#[derive(Parser)]
#[command(name = "flumon-agent", version, about = "flumon 前置机程序: 检查并上传流感病例数据 (hospital-side agent)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// 离线检查文件, 输出 DMZ 将给出的回执, 不上传 (check files offline and print the receipts, sending nothing)
    Check {
        /// 记录类型 (record type): outpatient, discharge, summary, death, medication, lab, stock, visits
        #[arg(long = "type", env = "FLUMON_TYPE")]
        ty: String,
        /// 本院统一社会信用代码; 给出时检查 ZZJGDM (the hospital's code; checks ZZJGDM)
        #[arg(long, env = "FLUMON_ORG")]
        org: Option<String>,
        /// 按此时间 (北京时间, YYYY-MM-DD HH:MM:SS) 检查, 默认当前时间 (check as of this time)
        #[arg(long, env = "FLUMON_NOW")]
        now: Option<String>,
        /// 要检查的文件 (CSV, XLSX, JSON)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// 用一次性注册码注册本前置机, 取得客户端证书 (enrol this agent with a one-time code)
    Enroll {
        /// DMZ 地址, 如 https://dmz.example.cn:8443
        #[arg(long, env = "FLUMON_DMZ_URL")]
        dmz: String,
        /// 本院统一社会信用代码
        #[arg(long, env = "FLUMON_ORG")]
        uscc: String,
        /// 一次性注册码 (DMZ 医院页面上生成, 24 小时内有效)
        #[arg(long, env = "FLUMON_ENROL_CODE")]
        code: String,
        /// DMZ 的 CA 证书 (PEM)
        #[arg(long, env = "FLUMON_DMZ_CA")]
        ca: PathBuf,
        /// 配置目录 (agent.toml, 证书, 密钥)
        #[arg(long, env = "FLUMON_AGENT_DIR")]
        config_dir: PathBuf,
        /// API 令牌 (在医院页面上只显示一次); 不给出时提示输入, 直接回车则稍后写入 DIR/token
        #[arg(long, env = "FLUMON_AGENT_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// 上传: 每日一次的守护模式, 或 --once 运行一次 (upload: daily daemon, or once)
    Run {
        #[arg(long, env = "FLUMON_AGENT_CONFIG")]
        config: PathBuf,
        /// 只运行一次 (run once and exit)
        #[arg(long)]
        once: bool,
        /// 只显示 check 会给出的回执, 不发送 (print check's receipts, send nothing)
        #[arg(long)]
        dry_run: bool,
        /// 今天已运行过仍重新提取 (prepare today's data again)
        #[arg(long)]
        rerun: bool,
        /// --once 时每块最多尝试次数 (attempts per chunk with --once)
        #[arg(long, env = "FLUMON_AGENT_ATTEMPTS", default_value_t = 8)]
        attempts: u32,
        /// 按此时间运行 (测试用; YYYY-MM-DD HH:MM:SS)
        #[arg(long, env = "FLUMON_NOW", hide = true)]
        now: Option<String>,
    },
    /// 显示本地保存的回执 (print the receipts kept locally)
    Receipts {
        #[arg(long, env = "FLUMON_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// 校验从下载中心下载的程序: SM2 签名与 SM3 摘要 (verify a downloaded release)
    VerifyRelease(flumon_agent::verify_release::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flumon-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_now(now: Option<String>) -> anyhow::Result<chrono::NaiveDateTime> {
    match now {
        Some(s) => flumon_shared::validate::cells::parse_datetime(&s)
            .with_context(|| format!("--now “{s}” 不是有效的时间, 应为 YYYY-MM-DD HH:MM:SS")),
        None => Ok(flumon_agent::now_cst()),
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { ty, org, now, files } => {
            let ty = RecordType::parse(&ty).with_context(|| {
                format!(
                    "未知的记录类型 “{ty}” (unknown type); 可选: {}",
                    RecordType::ALL.map(|t| t.as_str()).join(", ")
                )
            })?;
            let cfg = CheckConfig { ty, org, now: parse_now(now)?, files };
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            check::run(&cfg, &mut stdout.lock(), &mut stderr.lock()).context("检查失败 (check failed)")?;
            Ok(())
        }
        Command::Enroll { dmz, uscc, code, ca, config_dir, token } => {
            let token = match token {
                Some(t) => Some(zeroize::Zeroizing::new(t)),
                None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    eprint!("请输入 API 令牌 (直接回车跳过, 稍后写入 {}/token): ", config_dir.display());
                    let mut line = zeroize::Zeroizing::new(String::new());
                    std::io::stdin().read_line(&mut line)?;
                    let t = line.trim().to_owned();
                    (!t.is_empty()).then(|| zeroize::Zeroizing::new(t))
                }
                None => None,
            };
            let cfg = flumon_agent::enroll::EnrollConfig {
                dmz,
                uscc,
                code: zeroize::Zeroizing::new(code),
                ca,
                config_dir,
                token,
            };
            let rt = tokio::runtime::Runtime::new()?;
            let r = rt.block_on(flumon_agent::enroll::enroll(&cfg)).context("注册失败 (enrolment failed)")?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            eprintln!(
                "注册成功。请检查 {} 中的设置, 然后运行 flumon-agent run --config {} --dry-run",
                r.config.display(),
                r.config.display()
            );
            Ok(())
        }
        Command::Run { config, once, dry_run, rerun, attempts, now } => {
            let cfg = AgentConfig::load(&config)?;
            let rt = tokio::runtime::Runtime::new()?;
            if !once && !dry_run {
                return rt.block_on(upload::daemon(&cfg, shutdown())).context("守护进程失败 (daemon failed)");
            }
            let opts = RunOptions {
                dry_run,
                rerun,
                max_attempts: Some(attempts.max(1)),
                progress: true,
                now: now.map(|n| parse_now(Some(n))).transpose()?,
            };
            let r = rt.block_on(upload::run_once(&cfg, &opts)).context("运行失败 (run failed)")?;
            if dry_run {
                for rc in &r.dry_run_receipts {
                    println!("{}", serde_json::to_string(rc)?);
                }
            } else {
                for s in &r.sent {
                    println!("{}", serde_json::to_string(s)?);
                }
                for s in &r.scans {
                    println!("{}", serde_json::to_string(s)?);
                }
            }
            for (t, s) in &r.summary {
                eprintln!(
                    "{t}: {} 个文件 {} 行; 本地拒收 {}, 不在最近窗口 {}, 待发送 {} (files / rows / refused here / outside window / to send)",
                    s.files, s.rows, s.rejected_here, s.outside_window, s.to_send
                );
            }
            for (f, rc) in &r.local_rejections {
                eprintln!(
                    "{f}: 本地拒收 {} 行, 未发送; 详见 check (refused here, not sent): {:?}",
                    rc.rejected, rc.error_counts
                );
            }
            for w in &r.warnings {
                eprintln!("警告 (warning): {w}");
            }
            Ok(())
        }
        Command::VerifyRelease(a) => Ok(flumon_agent::verify_release::main(&a)?),
        Command::Receipts { config } => {
            let cfg = AgentConfig::load(&config)?;
            let q = flumon_agent::queue::Queue::open(&cfg.state.dir)?;
            for r in q.receipts()? {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(())
        }
    }
}

async fn shutdown() {
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
