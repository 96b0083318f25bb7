//! docs/FORMATS.md, followed to the letter by code that is not flumon's:
//! a small Python program using the `cryptography` package (SM3, HMAC-SM3,
//! SM4-GCM on OpenSSL) plus the `openssl` and `zstd` command lines. Each test
//! opens what flumon wrote and compares. A test prints a note and passes when
//! a tool is missing (python3 with SM4-GCM support, openssl, zstd).
//!
//! ```text
//!   flumon seal / seal_batch / Journal ──files──▶ formats.py + openssl + zstd ──▶ compare
//! ```

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::*;
use crate::batch::{BatchFields, EntryCounts, seal_batch};
use crate::journal::Journal;

/// The recipes of docs/FORMATS.md §1, §4 and §5 in Python.
const FORMATS_PY: &str = r#"
import sys, os, json
try:
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.SM4(bytes(16)), modes.GCM(bytes(12))).encryptor(); d.update(b"x"); d.finalize()
except Exception as e:
    print("unsupported:", e); sys.exit(3)

def sm3(b):
    h = hashes.Hash(hashes.SM3()); h.update(b); return h.finalize()

def gcm_open(key, nonce, aad, sealed):
    d = Cipher(algorithms.SM4(key), modes.GCM(nonce, sealed[-16:])).decryptor()
    d.authenticate_additional_data(aad)
    return d.update(sealed[:-16]) + d.finalize()

def der_sig(rs):
    def integer(v):
        v = v.lstrip(b"\0") or b"\0"
        if v[0] >= 0x80: v = b"\0" + v
        return b"\x02" + bytes([len(v)]) + v
    body = integer(rs[:32]) + integer(rs[32:])
    return b"\x30" + bytes([len(body)]) + body

def seg(key, aad, data):
    h = data[:36]
    assert h[:8] == b"FLUMONSG" and h[8] == 1 and h[9] == 1 and h[10:12] == b"\0\0"
    S = int.from_bytes(h[12:16], "big"); fid = h[16:32]; prefix = h[32:36]
    m = hmac.HMAC(key, hashes.SM3()); m.update(b"flumon segmented file v1" + fid); kf = m.finalize()[:16]
    body = data[36:]; out = b""; i = 0
    while True:
        s, body = body[:S + 16], body[S + 16:]
        last = len(body) == 0
        a = h + aad + i.to_bytes(8, "big") + (b"\x01" if last else b"\x00")
        out += gcm_open(kf, prefix + i.to_bytes(8, "big"), a, s)
        i += 1
        if last: return out

def batch(link, data, outdir):
    assert data[:8] == b"FLUMONB1" and int.from_bytes(data[8:10], "big") == 1
    n = data[10]; H = 107 + n
    digest = data[47 + n:79 + n]
    P = int.from_bytes(data[79 + n:87 + n], "big"); C = int.from_bytes(data[87 + n:95 + n], "big")
    nonce = data[95 + n:107 + n]
    assert len(data) == H + C + 64
    open(os.path.join(outdir, "signed.bin"), "wb").write(data[:H + C])
    open(os.path.join(outdir, "sig.der"), "wb").write(der_sig(data[H + C:]))
    z = gcm_open(link, nonce, data[:H], data[H:H + C])
    open(os.path.join(outdir, "payload.zst"), "wb").write(z)
    print(digest.hex(), P)

def journal(data, outdir):
    prev = None; seq = None
    for k, line in enumerate(data.split(b"\n")[:-1]):
        e = json.loads(line)
        if k == 0 and e["kind"] == "journal.anchor":
            chain = bytes.fromhex(e["prev"])
        else:
            if k == 0: assert e["seq"] == 1 and e["prev"] == "0" * 64
            else: assert e["seq"] == seq + 1 and bytes.fromhex(e["prev"]) == chain, "line %d" % (k + 1)
            chain = sm3(line)
        if e["kind"] in ("journal.checkpoint", "journal.anchor"):
            t = b"\x01" if e["kind"] == "journal.checkpoint" else b"\x02"
            msg = b"FLUMON-JOURNAL-V1" + t + e["seq"].to_bytes(8, "big") + e["time"].to_bytes(8, "big") + bytes.fromhex(e["prev"])
            open(os.path.join(outdir, "msg%d.bin" % k), "wb").write(msg)
            open(os.path.join(outdir, "sig%d.der" % k), "wb").write(der_sig(bytes.fromhex(e["detail"]["sig"])))
            print("signed", k, e["detail"]["key"])
        seq = e["seq"]
    print("head", seq, chain.hex())

cmd = sys.argv[1]
if cmd == "seg":
    sys.stdout.buffer.write(seg(bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), open(sys.argv[4], "rb").read()))
elif cmd == "batch":
    batch(bytes.fromhex(sys.argv[2]), open(sys.argv[3], "rb").read(), sys.argv[4])
elif cmd == "journal":
    journal(open(sys.argv[2], "rb").read(), sys.argv[3])
"#;

/// Runs the Python recipes; `None` (after a note) when python3 or SM4-GCM
/// support is missing.
fn py(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let script = dir.join("formats.py");
    std::fs::write(&script, FORMATS_PY).unwrap();
    let out = match Command::new("python3").arg(&script).args(args).output() {
        Ok(o) => o,
        Err(_) => {
            eprintln!("note: python3 not found; skipping FORMATS.md check");
            return None;
        }
    };
    if out.status.code() == Some(3) {
        eprintln!("note: python3 'cryptography' with SM4-GCM not available; skipping FORMATS.md check");
        return None;
    }
    assert!(out.status.success(), "formats.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

fn tool(name: &str) -> bool {
    let ok = Command::new(name).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
        || Command::new(name).arg("version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("note: {name} not found; skipping that part of the FORMATS.md check");
    }
    ok
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `openssl pkeyutl -verify` exactly as FORMATS.md §2 writes it.
fn openssl_verifies(pubkey: &Path, msg: &Path, sig: &Path) -> bool {
    Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey", s(pubkey), "-rawin", "-in", s(msg), "-sigfile", s(sig)])
        .args(["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn segmented_file_opens_per_formats_md() {
    let dir = tempfile::tempdir().unwrap();
    let key = SymKey::generate().unwrap();
    let aad = b"item:0001|hospital:440106001";
    for (n, seg) in [(0usize, 16u32), (100, 32), (96, 32), (3 << 20, DEFAULT_SEGMENT_SIZE)] {
        let pt: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
        let f = dir.path().join("blob.enc");
        std::fs::write(&f, seal_with_segment_size(&key, aad, seg, &pt).unwrap()).unwrap();
        let Some(out) = py(dir.path(), &["seg", &hex::encode(key.as_bytes()), &hex::encode(aad), s(&f)]) else {
            return;
        };
        assert_eq!(out, pt, "n={n}");
    }
}

#[test]
fn batch_opens_per_formats_md() {
    let dir = tempfile::tempdir().unwrap();
    let link = SymKey::generate().unwrap();
    let sign = Sm2PrivateKey::generate().unwrap();
    let entries: Vec<(u64, String)> = (0..100).map(|i| (i, format!("记录 {i}"))).collect();
    let fields = BatchFields {
        node_id: "dmz-01".into(),
        sequence: 5,
        created_ms: 1,
        counts: EntryCounts { records: 100, ..EntryCounts::default() },
    };
    let f = dir.path().join("b.batch");
    std::fs::write(&f, seal_batch(&fields, &entries, &link, &sign).unwrap()).unwrap();
    let Some(out) = py(dir.path(), &["batch", &hex::encode(link.as_bytes()), s(&f), s(dir.path())]) else {
        return;
    };
    let out = String::from_utf8(out).unwrap();
    let mut it = out.split_whitespace();
    let (digest, plen) = (it.next().unwrap().to_string(), it.next().unwrap().parse::<usize>().unwrap());
    let payload = bincode::serde::encode_to_vec(&entries, bincode::config::standard()).unwrap();
    assert_eq!(digest, hex::encode(sm3(&payload)));
    assert_eq!(plen, payload.len());
    if tool("openssl") {
        let pk = dir.path().join("dmz.pub.pem");
        sign.public_key().save(&pk).unwrap();
        assert!(openssl_verifies(&pk, &dir.path().join("signed.bin"), &dir.path().join("sig.der")));
        let other = dir.path().join("other.pub.pem");
        Sm2PrivateKey::generate().unwrap().public_key().save(&other).unwrap();
        assert!(!openssl_verifies(&other, &dir.path().join("signed.bin"), &dir.path().join("sig.der")));
    }
    if tool("zstd") {
        let out = Command::new("zstd").args(["-d", "-c", "-q", s(&dir.path().join("payload.zst"))]).output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, payload);
    }
}

#[test]
fn journal_verifies_per_formats_md() {
    let dir = tempfile::tempdir().unwrap();
    let sign = Sm2PrivateKey::generate().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut j = Journal::create(&p, sign.public_key()).unwrap();
    for i in 0..6 {
        j.append("batch.sent", &json!({"seq": i, "note": "说明 \"quoted\"\n"})).unwrap();
    }
    j.checkpoint(&sign).unwrap();
    j.append("x", &json!([1, 2.5, null])).unwrap();
    j.prune_before(4, &sign).unwrap();
    j.checkpoint(&sign).unwrap();
    let head = j.head();
    drop(j);
    let Some(out) = py(dir.path(), &["journal", s(&p), s(dir.path())]) else { return };
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("head {} {}", head.seq, hex::encode(head.hash))), "{out}");
    let fp = hex::encode(sign.public_key().fingerprint());
    let signed: Vec<&str> = out.lines().filter(|l| l.starts_with("signed")).collect();
    assert_eq!(signed.len(), 3, "{out}"); // anchor + 2 checkpoints
    assert!(signed.iter().all(|l| l.ends_with(&fp)));
    if tool("openssl") {
        let pk = dir.path().join("j.pub.pem");
        sign.public_key().save(&pk).unwrap();
        for l in signed {
            let k = l.split_whitespace().nth(1).unwrap();
            let msg = dir.path().join(format!("msg{k}.bin"));
            assert!(openssl_verifies(&pk, &msg, &dir.path().join(format!("sig{k}.der"))), "line {k}");
        }
    }
}

#[test]
fn segment_key_and_ctr_recipe_with_openssl_3_0() {
    // FORMATS.md §1 "Opening it without flumon", steps 1 and 3, with OpenSSL 3.0 only.
    if !tool("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SymKey::generate().unwrap();
    let pt: Vec<u8> = (0..200u32).map(|i| (i * 3) as u8).collect();
    let sealed = seal_with_segment_size(&key, b"aad", 64, &pt).unwrap();
    let m = dir.path().join("m");
    let mut label = b"flumon segmented file v1".to_vec();
    label.extend_from_slice(&sealed[16..32]);
    std::fs::write(&m, &label).unwrap();
    let out = Command::new("openssl")
        .args(["mac", "-digest", "SM3", "-macopt", &format!("hexkey:{}", hex::encode(key.as_bytes())), "-in", s(&m)])
        .arg("HMAC")
        .output()
        .unwrap();
    assert!(out.status.success());
    let kf = String::from_utf8(out.stdout).unwrap().trim().to_lowercase()[..32].to_string();
    let mut got = Vec::new();
    for (i, segment) in sealed[36..].chunks(64 + 16).enumerate() {
        let c = dir.path().join(format!("c{i}"));
        std::fs::write(&c, &segment[..segment.len() - 16]).unwrap();
        let iv = format!("{}{:016x}00000002", hex::encode(&sealed[32..36]), i);
        let out = Command::new("openssl")
            .args(["enc", "-d", "-sm4-ctr", "-K", &kf, "-iv", &iv, "-in", s(&c)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        got.extend_from_slice(&out.stdout);
    }
    assert_eq!(got, pt);
}
