//! `flumon-vault`: command line of the offline vault. Thin: arguments,
//! passphrase prompts (no echo), logging; the work is in the library.
//!
//! ```text
//!  keygen --out DIR [--shares N --threshold M]   list ARCHIVE   verify ARCHIVE
//!  open ARCHIVE --vault-dir DIR (--item ID | --hospital CODE [--since T]) --reason TEXT --out DIR
//!  verify-journal --vault-dir DIR
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use flumon_shared::crypto::Sm2PublicKey;
use flumon_vault::archive::Archive;
use flumon_vault::keystore::{self, KdfParams, KeygenConfig, Unlock};
use flumon_vault::open::{self, OpenConfig, Selection};

#[derive(Parser)]
#[command(name = "flumon-vault", version, about = "flumon 离线保管库: 开启 DMZ 原始数据归档 (offline vault)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Cmd {
    /// 生成保管库 SM2 密钥对 (make the vault key pair)
    Keygen {
        #[arg(long, env = "FLUMON_VAULT_DIR")]
        out: PathBuf,
        /// 拆分为 N 份 (split into N shares)
        #[arg(long, requires = "threshold")]
        shares: Option<u8>,
        /// 开启需要的份数 M (shares needed)
        #[arg(long, requires = "shares")]
        threshold: Option<u8>,
        /// 口令文件, 每份一个, 按顺序 (passphrase files, one per share; default: prompt)
        #[arg(long, env = "FLUMON_VAULT_PASSPHRASE_FILES", value_delimiter = ',')]
        passphrase_file: Vec<PathBuf>,
        /// argon2id 内存 (MiB), 至少 8 (memory of the key derivation)
        #[arg(long, env = "FLUMON_VAULT_KDF_MIB", default_value_t = 256)]
        kdf_mib: u32,
        /// argon2id 轮数 (passes)
        #[arg(long, env = "FLUMON_VAULT_KDF_PASSES", default_value_t = 3)]
        kdf_passes: u32,
    },
    /// 列出归档条目 (list an archive's items)
    List {
        archive: PathBuf,
        /// JSON 输出 (JSON lines)
        #[arg(long)]
        json: bool,
    },
    /// 校验归档: 清单签名与每个条目的 SM3 (verify signature and digests)
    Verify {
        archive: PathBuf,
        /// DMZ 签名公钥 (the DMZ's signing public key, dmz-sign.pub.pem, brought separately)
        #[arg(long, env = "FLUMON_VAULT_DMZ_PUBKEY")]
        dmz_pubkey: Option<PathBuf>,
    },
    /// 开启条目, 写出原始文件 (decrypt items and write the originals)
    Open {
        archive: PathBuf,
        #[arg(long, env = "FLUMON_VAULT_DIR")]
        vault_dir: PathBuf,
        /// 份额文件 (share files; default: vault.key in the vault folder)
        #[arg(long, env = "FLUMON_VAULT_SHARES", value_delimiter = ',')]
        share: Vec<PathBuf>,
        /// 口令文件, 与密钥文件一一对应 (passphrase files, in key file order; default: prompt)
        #[arg(long, env = "FLUMON_VAULT_PASSPHRASE_FILES", value_delimiter = ',')]
        passphrase_file: Vec<PathBuf>,
        #[arg(long, conflicts_with = "hospital")]
        item: Option<String>,
        #[arg(long, required_unless_present = "item")]
        hospital: Option<String>,
        /// 仅此时间之后收到的条目 (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)
        #[arg(long, requires = "hospital")]
        since: Option<String>,
        /// 开启原因, 记入日志 (why; journaled)
        #[arg(long)]
        reason: String,
        /// 操作人 (officer; default: the OS user)
        #[arg(long, env = "FLUMON_VAULT_OFFICER")]
        officer: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "FLUMON_VAULT_DMZ_PUBKEY")]
        dmz_pubkey: Option<PathBuf>,
    },
    /// 校验保管库日志 (verify the vault's journal)
    VerifyJournal {
        #[arg(long, env = "FLUMON_VAULT_DIR")]
        vault_dir: PathBuf,
    },
}

fn read_pass_file(p: &Path) -> anyhow::Result<Zeroizing<String>> {
    let t = Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("无法读取口令文件 {}", p.display()))?);
    Ok(Zeroizing::new(t.trim_end_matches(['\r', '\n']).to_owned()))
}

fn prompt(msg: &str) -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(rpassword::prompt_password(msg).context("无法读取口令 (cannot read passphrase)")?))
}

fn passphrases(files: &[PathBuf], labels: &[String], confirm: bool) -> anyhow::Result<Vec<Zeroizing<String>>> {
    if !files.is_empty() {
        if files.len() != labels.len() {
            bail!("需要 {} 个口令文件, 提供了 {} 个 (passphrase files needed)", labels.len(), files.len());
        }
        return files.iter().map(|f| read_pass_file(f)).collect();
    }
    let mut out = Vec::new();
    for l in labels {
        let p = prompt(&format!("请输入 {l} 的口令 (passphrase): "))?;
        if confirm && *prompt(&format!("请再次输入 {l} 的口令 (again): "))? != *p {
            bail!("两次输入的口令不一致 (passphrases differ)");
        }
        out.push(p);
    }
    Ok(out)
}

fn parse_time(s: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .with_context(|| format!("--since {s:?}: 应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM:SS"))
}

fn dmz_key(p: Option<&Path>) -> anyhow::Result<Option<Sm2PublicKey>> {
    p.map(|p| Sm2PublicKey::load(p).with_context(|| format!("DMZ 公钥 {}", p.display()))).transpose()
}

fn warn_signer(from_archive: bool, signer: &str) {
    if from_archive {
        eprintln!(
            "注意: 未给出 --dmz-pubkey, 清单用归档自带的公钥验证, 只能证明内容未在导出后被意外改动。\n\
             请与 DMZ 的签名公钥指纹核对 (compare with the DMZ's key fingerprint): {signer}"
        );
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flumon-vault: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Keygen { out, shares, threshold, passphrase_file, kdf_mib, kdf_passes } => {
            let shares = shares.zip(threshold);
            let labels: Vec<String> = match shares {
                None => vec!["保管库私钥".into()],
                Some((n, _)) => (1..=n).map(|x| format!("份额 {x}/{n}")).collect(),
            };
            let pass = passphrases(&passphrase_file, &labels, true)?;
            let kdf = KdfParams { m_kib: kdf_mib.saturating_mul(1024), t: kdf_passes, p: 1 };
            let r = keystore::keygen(&KeygenConfig { out, shares, passphrases: pass, kdf })?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            eprintln!(
                "公钥 {} 交给 DMZ 运维 (flumon-dmz init --vault-pubkey); 指纹 {}",
                r.public_key.display(),
                r.fingerprint
            );
        }
        Cmd::List { archive, json } => {
            let a = Archive::open(&archive)?;
            for it in &a.manifest.items {
                if json {
                    println!("{}", serde_json::to_string(it)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{} 字节",
                        it.item_id,
                        it.hospital,
                        it.kind,
                        it.ty.as_deref().unwrap_or("-"),
                        it.time.format("%Y-%m-%d %H:%M:%S"),
                        it.plain_size
                    );
                }
            }
            eprintln!("{}: {} 个条目 (未校验; 用 verify 校验)", a.folder(), a.manifest.items.len());
        }
        Cmd::Verify { archive, dmz_pubkey } => {
            let a = Archive::open(&archive)?;
            let r = a.verify(dmz_key(dmz_pubkey.as_deref())?.as_ref())?;
            warn_signer(r.signer_from_archive, &r.signer);
            println!("{}", serde_json::to_string_pretty(&r)?);
            eprintln!("校验通过: {} 个条目, 签名与 SM3 摘要均正确 (verified)", r.items);
        }
        Cmd::Open {
            archive,
            vault_dir,
            share,
            passphrase_file,
            item,
            hospital,
            since,
            reason,
            officer,
            out,
            dmz_pubkey,
        } => {
            let key_files = if share.is_empty() { vec![vault_dir.join(keystore::WHOLE_KEY_FILE)] } else { share };
            let labels: Vec<String> = key_files.iter().map(|p| p.display().to_string()).collect();
            let pass = passphrases(&passphrase_file, &labels, false)?;
            let keys = key_files.into_iter().zip(pass).map(|(path, passphrase)| Unlock { path, passphrase }).collect();
            let select = match (item, hospital) {
                (Some(id), _) => Selection::Item(id),
                (None, Some(code)) => {
                    Selection::Hospital { code, since: since.as_deref().map(parse_time).transpose()? }
                }
                (None, None) => bail!("需要 --item 或 --hospital"),
            };
            let cfg = OpenConfig {
                archive,
                vault_dir,
                keys,
                select,
                reason,
                officer: officer.unwrap_or_else(flumon_vault::os_user),
                out,
                dmz_pub: dmz_key(dmz_pubkey.as_deref())?,
            };
            let r = open::open(&cfg)?;
            warn_signer(r.signer_from_archive, &r.signer);
            for o in &r.opened {
                println!("{}", serde_json::to_string(o)?);
            }
            eprintln!("已开启 {} 个条目, 已记入保管库日志 (opened and journaled)", r.opened.len());
        }
        Cmd::VerifyJournal { vault_dir } => {
            let key = Sm2PublicKey::load(&vault_dir.join(keystore::PUBLIC_KEY_FILE))?;
            let r = flumon_shared::journal::verify(&vault_dir.join(open::JOURNAL_FILE), &key)?;
            if !r.is_intact() {
                bail!("保管库日志校验失败 (journal does not verify): {:?}", r.first_bad);
            }
            println!(
                "保管库日志完整: {} 行, 最后序号 {}, {} 个签名检查点 (journal intact)",
                r.good_lines, r.last_seq, r.checkpoints
            );
        }
    }
    Ok(())
}
