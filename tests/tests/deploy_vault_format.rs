//! docs/FORMATS.md §6 (vault key files) followed with no flumon code: Python
//! `cryptography` (Argon2id, SM4-GCM) opens a whole key file and two of three
//! share files, the shares are combined in GF(2⁸) by the document's formula,
//! and OpenSSL derives the public key, which must be `vault.pub.pem`.
//!
//! ```text
//!  flumon-vault keygen (whole; 3 shares, threshold 2) ─▶ key files
//!  python3: Argon2id ─▶ SM4-GCM open (AAD of §6) ─▶ PKCS#8 | y ─▶ Lagrange at 0 ─▶ d ─▶ SEC1 DER
//!  openssl pkey -pubout ═ vault.pub.pem      (one share alone: a different key)
//! ```
//! Skips with a visible message without python3 `cryptography` ≥ 44 or openssl (CI installs both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = r#"
import json, subprocess, sys
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def open_key_file(path, passphrase):
    kf = json.load(open(path)); k = kf["kdf"]; s = kf["share"]
    share = "whole" if s is None else "%d/%d/%d" % (s["x"], s["threshold"], s["shares"])
    aad = "\n".join([kf["format"], kf["public_key"], share,
                     "argon2id/%d/%d/%d" % (k["m_kib"], k["t"], k["p"]), kf["salt"]]).encode()
    key = Argon2id(salt=bytes.fromhex(kf["salt"]), length=16, iterations=k["t"],
                   lanes=k["p"], memory_cost=k["m_kib"]).derive(passphrase.encode())
    c = bytes.fromhex(kf["sealed"])
    d = Cipher(algorithms.SM4(key), modes.GCM(bytes.fromhex(kf["nonce"]), c[-16:])).decryptor()
    d.authenticate_additional_data(aad)
    return kf, d.update(c[:-16]) + d.finalize()

def gmul(a, b):
    p = 0
    for _ in range(8):
        if b & 1: p ^= a
        hi = a & 0x80
        a = (a << 1) & 0xFF
        if hi: a ^= 0x1B
        b >>= 1
    return p

def ginv(a):
    r = 1
    for _ in range(254): r = gmul(r, a)
    return r

def combine(shares):  # [(x, y bytes)] -> d
    out = bytearray(len(shares[0][1]))
    for j, (xj, yj) in enumerate(shares):
        l = 1
        for k, (xk, _) in enumerate(shares):
            if k != j: l = gmul(l, gmul(xk, ginv(xk ^ xj)))
        for i in range(len(out)): out[i] ^= gmul(yj[i], l)
    return bytes(out)

def public_pem_of_scalar(d):
    oid = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301 (SM2)
    body = bytes([2, 1, 1, 4, 32]) + d + bytes([0xA0, len(oid)]) + oid
    der = bytes([0x30, len(body)]) + body
    return subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout"], input=der,
                          capture_output=True, check=True).stdout.decode()

def public_pem_of_pkcs8(der):
    return subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout"], input=der,
                          capture_output=True, check=True).stdout.decode()

whole_dir, shares_dir = sys.argv[1], sys.argv[2]
kf, der = open_key_file(whole_dir + "/vault.key", "whole-key-passphrase")
assert public_pem_of_pkcs8(der) == open(whole_dir + "/vault.pub.pem").read(), "whole key"
print("whole ok", kf["kdf"])
got = []
for x in (1, 3):
    kf, y = open_key_file("%s/share-%d-of-3.key" % (shares_dir, x), "officer-%d-passphrase" % x)
    assert kf["share"]["x"] == x and len(y) == 32
    got.append((x, y))
want = open(shares_dir + "/vault.pub.pem").read()
assert public_pem_of_scalar(combine(got)) == want, "shares 1 and 3"
print("shares ok")
alone = got[0][1]  # one share is not the key
try:
    assert public_pem_of_scalar(alone) != want
except subprocess.CalledProcessError:
    pass
try:
    open_key_file("%s/share-2-of-3.key" % shares_dir, "wrong passphrase")
    sys.exit("a wrong passphrase opened a share")
except Exception as e:
    if isinstance(e, SystemExit): raise
print("FORMATS §6 recipe ok")
"#;

fn vault_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("FLUMON_BIN") {
        return PathBuf::from(b).join("flumon-vault");
    }
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let st = Command::new(env!("CARGO")).args(["build", "-q", "-p", "flumon-vault"]).current_dir(&ws).status().unwrap();
    assert!(st.success());
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"))
        .join("debug/flumon-vault")
}

fn keygen(bin: &Path, out: &Path, passes: &[&str], shares: Option<(u8, u8)>) {
    let mut files = Vec::new();
    for (i, p) in passes.iter().enumerate() {
        let f = out.with_extension(format!("pass{i}"));
        std::fs::write(&f, format!("{p}\n")).unwrap();
        files.push(f.display().to_string());
    }
    let mut c = Command::new(bin);
    c.args(["keygen", "--kdf-mib", "8", "--kdf-passes", "2", "--out"]).arg(out);
    c.arg("--passphrase-file").arg(files.join(","));
    if let Some((n, m)) = shares {
        c.args(["--shares", &n.to_string(), "--threshold", &m.to_string()]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "keygen: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn vault_key_files_open_with_standard_tools() {
    let py = Command::new("python3")
        .args(["-c", "from cryptography.hazmat.primitives.kdf.argon2 import Argon2id; import cryptography"])
        .output();
    if !py.is_ok_and(|o| o.status.success()) {
        eprintln!("跳过 (SKIPPED): 需要 python3 cryptography ≥ 44 (Argon2id, SM4-GCM)");
        return;
    }
    if !Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("跳过 (SKIPPED): 需要 openssl");
        return;
    }
    let bin = vault_bin();
    let t = tempfile::tempdir().unwrap();
    let whole = t.path().join("whole");
    let shares = t.path().join("shares");
    keygen(&bin, &whole, &["whole-key-passphrase"], None);
    keygen(&bin, &shares, &["officer-1-passphrase", "officer-2-passphrase", "officer-3-passphrase"], Some((3, 2)));
    let script = t.path().join("recipe.py");
    std::fs::write(&script, RECIPE).unwrap();
    let o = Command::new("python3").arg(&script).arg(&whole).arg(&shares).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(o.status.success(), "FORMATS §6 recipe failed: {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("FORMATS §6 recipe ok"));
}
