//! What the cross-process tests in `tests/tests/` share: the workspace folder,
//! freshly built debug binaries, free loopback ports, and child processes that
//! are killed when the test ends (also when it fails).
//!
//! ```text
//!  binaries() ─ cargo build --bins (or $FLUMON_BIN) ─▶ target/debug/flumon-*
//!  Proc::spawn(cmd) ─▶ child ── drop ─▶ kill + wait
//! ```

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of freshly built debug binaries of every program (`$FLUMON_BIN` when set).
pub fn binaries() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("FLUMON_BIN") {
        return Ok(PathBuf::from(b));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "--bins", "-p", "flumon-dmz", "-p", "flumon-intranet", "-p", "flumon-agent"])
        .args(["-p", "flumon-transfer", "-p", "flumon-vault", "-p", "flumon-tests"])
        .current_dir(workspace())
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !st.success() {
        return Err(format!("cargo build: {st}"));
    }
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("debug"))
}

/// A loopback port nobody listens on (now).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_port(port: u16, within: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Starts `cmd`.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        cmd.spawn().map(Proc)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the tests run as root (network namespaces, tmpfs mounts).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
