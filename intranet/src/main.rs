//! `flumon-intranet`: command line. Thin: parses arguments, sets up logging
//! and calls the library.
//!
//! ```text
//!  mem --input FILE.csv ─▶ mem::memmodel ─▶ JSON
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use flumon_intranet::mem;

#[derive(Parser)]
#[command(name = "flumon-intranet", version, about = "flumon intranet service (流感医疗服务监测 内网)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// MEM epidemic thresholds of a weeks × seasons CSV (as the R package mem lays out its data).
    Mem {
        #[arg(long, env = "FLUMON_MEM_INPUT")]
        input: PathBuf,
        /// Use at most the last N seasons (default 10).
        #[arg(long, env = "FLUMON_MEM_SEASONS", default_value_t = 10)]
        seasons: usize,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
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
