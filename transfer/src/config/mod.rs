//! send.toml and recv.toml: file structs (serde, unknown keys are errors),
//! paths made absolute against the file's folder, keys loaded, and the plain
//! runtime configs the library runs with.
//!
//! ```text
//!  send.toml ─▶ SendFile (deny_unknown_fields) ─▶ resolve paths, load keys ─▶ SendConfig ─▶ send::run
//!  recv.toml ─▶ RecvFile (deny_unknown_fields) ─▶ resolve paths, load keys ─▶ RecvConfig ─▶ recv::run
//!  [link] in both ─▶ LinkSettings ─▶ settings digest (PROTOCOL.md §1)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use flumon_shared::crypto::{MacKey, Sm2PrivateKey, Sm2PublicKey, SymKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::settings::LinkSettings;

/// Diode (UDP) or ferry (files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Diode,
    Ferry,
}

impl Mode {
    /// Lowercase name, for journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Diode => "diode",
            Mode::Ferry => "ferry",
        }
    }
}

/// `[link]`: the settings both sides must share.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    pub node_id: String,
    #[serde(default = "d_mtu")]
    pub mtu: u16,
    #[serde(default = "d_symbol")]
    pub symbol_size: u16,
    #[serde(default = "d_block")]
    pub block_symbols: u16,
    #[serde(default = "d_ratio")]
    pub repair_ratio: f64,
    #[serde(default = "d_extra")]
    pub repair_extra: u16,
}

fn d_mtu() -> u16 {
    1500
}
fn d_symbol() -> u16 {
    1400
}
fn d_block() -> u16 {
    750
}
fn d_ratio() -> f64 {
    0.10
}
fn d_extra() -> u16 {
    2
}

impl LinkFile {
    /// The checked settings.
    pub fn settings(&self) -> Result<LinkSettings> {
        if !(0.0..=4.0).contains(&self.repair_ratio) {
            return Err(Error::Config("link.repair_ratio must be within 0..=4".into()));
        }
        let s = LinkSettings {
            node_id: self.node_id.clone(),
            mtu: self.mtu,
            symbol_size: self.symbol_size,
            block_symbols: self.block_symbols,
            repair_ppm: (self.repair_ratio * 1e6).round() as u32,
            repair_extra: self.repair_extra,
        };
        s.check()?;
        Ok(s)
    }
}

/// send.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFile {
    pub mode: Mode,
    /// The DMZ's outbox (batch files written by `flumon-dmz`).
    pub outbox: PathBuf,
    /// Sender state: state log, status, requests, lock.
    pub state_dir: PathBuf,
    /// The sender's audit journal and its SM2 checkpoint key.
    pub journal: PathBuf,
    pub journal_key: PathBuf,
    /// The DMZ's SM2 public key (for `check_signatures`).
    pub dmz_public_key: PathBuf,
    /// Also verify each batch's SM2 signature before sending (off by default:
    /// the receiver verifies every batch anyway; docs/DECISIONS.md).
    #[serde(default)]
    pub check_signatures: bool,
    /// HMAC-SM3 datagram key (its key id is in the file).
    pub mac_key: PathBuf,
    #[serde(default = "d_retention")]
    pub retention_days: u32,
    #[serde(default = "d_max_batch")]
    pub max_batch_bytes: u32,
    pub link: LinkFile,
    #[serde(default)]
    pub diode: Option<SendDiodeFile>,
    #[serde(default)]
    pub ferry: Option<FerryOutFile>,
}

fn d_retention() -> u32 {
    7
}
fn d_max_batch() -> u32 {
    272 << 20
}

/// `[diode]` of send.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendDiodeFile {
    /// Where datagrams go (the diode's input, or the receiver on loopback).
    pub target: SocketAddr,
    /// The address the sending socket is bound to.
    #[serde(default = "d_local")]
    pub local_addr: SocketAddr,
    /// Token-bucket rate in Mbit/s of UDP payload (0: unlimited — never on a real diode).
    #[serde(default = "d_rate")]
    pub rate_mbit: u32,
    #[serde(default = "d_burst")]
    pub burst_bytes: u32,
    #[serde(default = "d_sndbuf")]
    pub send_buffer_bytes: u32,
    #[serde(default = "d_passes")]
    pub passes: u8,
    #[serde(default = "d_pass_gap")]
    pub pass_gap_ms: u32,
    #[serde(default = "d_heartbeat")]
    pub heartbeat_ms: u32,
    #[serde(default = "d_manifest_secs")]
    pub manifest_secs: u32,
    #[serde(default = "d_manifest_hours")]
    pub manifest_hours: u32,
}

fn d_local() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}
fn d_rate() -> u32 {
    800
}
fn d_burst() -> u32 {
    256 << 10
}
fn d_sndbuf() -> u32 {
    4 << 20
}
fn d_passes() -> u8 {
    2
}
fn d_pass_gap() -> u32 {
    500
}
fn d_heartbeat() -> u32 {
    1000
}
fn d_manifest_secs() -> u32 {
    60
}
fn d_manifest_hours() -> u32 {
    6
}

/// `[ferry]` of send.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FerryOutFile {
    pub ferry_out: PathBuf,
}

/// recv.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvFile {
    pub mode: Mode,
    /// The inbound spool the intranet ingests from.
    pub spool: PathBuf,
    pub quarantine: PathBuf,
    pub state_dir: PathBuf,
    pub journal: PathBuf,
    pub journal_key: PathBuf,
    /// SM4 link key (batches are decrypted to be checked), DMZ public key.
    pub link_key: PathBuf,
    pub dmz_public_key: PathBuf,
    /// HMAC-SM3 datagram keys accepted (several during a rotation).
    pub mac_keys: Vec<PathBuf>,
    #[serde(default = "d_first_seq")]
    pub first_seq: u64,
    #[serde(default = "d_gap_grace")]
    pub gap_grace_secs: u32,
    #[serde(default = "d_max_batch")]
    pub max_batch_bytes: u32,
    #[serde(default = "d_max_payload")]
    pub max_payload_bytes: u64,
    pub link: LinkFile,
    #[serde(default)]
    pub diode: Option<RecvDiodeFile>,
    #[serde(default)]
    pub ferry: Option<FerryInFile>,
}

fn d_first_seq() -> u64 {
    1
}
fn d_gap_grace() -> u32 {
    10
}
fn d_max_payload() -> u64 {
    flumon_shared::batch::DEFAULT_MAX_PAYLOAD
}

/// `[diode]` of recv.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvDiodeFile {
    pub listen: SocketAddr,
    #[serde(default = "d_rcvbuf")]
    pub recv_buffer_bytes: u32,
    #[serde(default = "d_open_batches")]
    pub max_open_batches: u32,
    #[serde(default = "d_open_bytes")]
    pub max_open_bytes: u64,
    #[serde(default = "d_partial_timeout")]
    pub partial_timeout_secs: u32,
}

fn d_rcvbuf() -> u32 {
    32 << 20
}
fn d_open_batches() -> u32 {
    64
}
fn d_open_bytes() -> u64 {
    1 << 30
}
fn d_partial_timeout() -> u32 {
    300
}

/// `[ferry]` of recv.toml.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FerryInFile {
    pub ferry_in: PathBuf,
    #[serde(default = "d_settle")]
    pub settle_ms: u32,
}

fn d_settle() -> u32 {
    2000
}

/// Runtime diode settings of the sender.
#[derive(Clone, Debug)]
pub struct SendDiode {
    pub target: SocketAddr,
    pub local_addr: SocketAddr,
    /// Bytes a second (0: unlimited).
    pub rate_bytes: u64,
    pub burst_bytes: u64,
    pub send_buffer_bytes: usize,
    pub passes: u8,
    pub pass_gap_ms: u64,
    pub heartbeat_ms: u32,
    pub manifest_secs: u64,
    pub manifest_hours: u64,
}

/// Everything `send` runs with.
#[derive(Debug)]
pub struct SendConfig {
    pub mode: Mode,
    pub link: LinkSettings,
    pub outbox: PathBuf,
    pub state_dir: PathBuf,
    pub journal: PathBuf,
    pub journal_key: Sm2PrivateKey,
    pub dmz_public_key: Sm2PublicKey,
    /// Verify SM2 signatures before sending (the receiver always does).
    pub check_signatures: bool,
    pub mac_key: MacKey,
    pub retention_days: u32,
    pub max_batch_bytes: u32,
    pub diode: SendDiode,
    pub ferry_out: Option<PathBuf>,
}

/// Runtime diode settings of the receiver.
#[derive(Clone, Debug)]
pub struct RecvDiode {
    pub listen: SocketAddr,
    pub recv_buffer_bytes: usize,
    pub max_open_batches: usize,
    pub max_open_bytes: u64,
    pub partial_timeout_secs: u64,
}

/// Everything `recv` runs with.
#[derive(Debug)]
pub struct RecvConfig {
    pub mode: Mode,
    pub link: LinkSettings,
    pub spool: PathBuf,
    pub quarantine: PathBuf,
    pub state_dir: PathBuf,
    pub journal: PathBuf,
    pub journal_key: Sm2PrivateKey,
    pub link_key: SymKey,
    pub dmz_public_key: Sm2PublicKey,
    pub mac_keys: Vec<MacKey>,
    pub first_seq: u64,
    pub gap_grace_secs: u64,
    pub max_batch_bytes: u32,
    pub max_payload_bytes: u64,
    pub diode: RecvDiode,
    pub ferry_in: Option<PathBuf>,
    pub settle_ms: u64,
}

mod load;
