//! `flumon-agent`: command line of the hospital-side program.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flumon_agent::check::{self, CheckConfig};
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
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
            let now = match now {
                Some(s) => flumon_shared::validate::cells::parse_datetime(&s)
                    .with_context(|| format!("--now “{s}” 不是有效的时间, 应为 YYYY-MM-DD HH:MM:SS"))?,
                None => flumon_agent::now_cst(),
            };
            let cfg = CheckConfig { ty, org, now, files };
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            check::run(&cfg, &mut stdout.lock(), &mut stderr.lock()).context("检查失败 (check failed)")?;
            Ok(())
        }
    }
}
