//! Opens an archive item with tools outside flumon, following only
//! docs/FORMATS.md (§1 segmented SM4-GCM, §2 SM2 C1C3C2 ↔ DER) and the
//! export's manifest: `openssl pkeyutl -decrypt` unwraps the data key, Python
//! `cryptography` (SM3, HMAC-SM3, SM4-GCM) decrypts the segments. Skips with
//! a note when openssl or python3 with SM4-GCM is missing (.ci/run installs
//! `cryptography` with pip).
//!
//! ```text
//!  items/<id>.key (hex C1C3C2) ─python─▶ DER SM2Cipher ─openssl pkeyutl -decrypt─▶ SM4 key
//!  items/<id>.sm4 ─python (FORMATS.md §1, aad = id ‖ hospital)─▶ plaintext == uploaded bytes
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use flumon_shared::crypto::Sm2PublicKey;
use flumon_vault::keystore;

const OPEN_PY: &str = r#"
import sys, json
try:
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.SM4(bytes(16)), modes.GCM(bytes(12))).encryptor(); d.update(b"x"); d.finalize()
except Exception as e:
    print("unsupported:", e); sys.exit(3)

def der_len(n):
    if n < 0x80: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big"); return bytes([0x80 | len(b)]) + b

def tlv(tag, v): return bytes([tag]) + der_len(len(v)) + v

def integer(v):
    v = v.lstrip(b"\0") or b"\0"
    if v[0] >= 0x80: v = b"\0" + v
    return tlv(2, v)

def c1c3c2_to_der(raw):
    # FORMATS.md §2: 04 | x1(32) | y1(32) | C3(32) | C2
    assert raw[0] == 4
    x, y, c3, c2 = raw[1:33], raw[33:65], raw[65:97], raw[97:]
    return tlv(0x30, integer(x) + integer(y) + tlv(4, c3) + tlv(4, c2))

def seg_open(key, aad, data):
    # FORMATS.md §1
    h = data[:36]
    assert h[:8] == b"FLUMONSG" and h[8] == 1 and h[9] == 1
    S = int.from_bytes(h[12:16], "big"); fid = h[16:32]; prefix = h[32:36]
    m = hmac.HMAC(key, hashes.SM3()); m.update(b"flumon segmented file v1" + fid); kf = m.finalize()[:16]
    body = data[36:]; out = b""; i = 0
    while True:
        seg = body[:S + 16]; body = body[S + 16:]
        last = len(body) == 0
        nonce = prefix + i.to_bytes(8, "big")
        a = h + aad + i.to_bytes(8, "big") + (b"\x01" if last else b"\x00")
        d = Cipher(algorithms.SM4(kf), modes.GCM(nonce, seg[-16:])).decryptor()
        d.authenticate_additional_data(a)
        out += d.update(seg[:-16]) + d.finalize()
        i += 1
        if last: return out

cmd = sys.argv[1]
if cmd == "der":
    raw = bytes.fromhex(open(sys.argv[2]).read().strip())
    open(sys.argv[3], "wb").write(c1c3c2_to_der(raw))
elif cmd == "open":
    folder, item_id, keyfile, out = sys.argv[2:6]
    man = json.load(open(folder + "/manifest.json"))
    it = [i for i in man["items"] if i["item_id"] == item_id][0]
    data = open(folder + "/" + it["file"], "rb").read()
    plain = seg_open(open(keyfile, "rb").read(), it["item_id"].encode() + it["hospital"].encode(), data)
    h = hashes.Hash(hashes.SM3()); h.update(plain)
    assert h.finalize().hex() == it["plain_sm3"], "plaintext SM3 differs from the manifest"
    open(out, "wb").write(plain)
"#;

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn archive_item_opens_with_openssl_and_python_per_formats_md() {
    if !have("openssl", &["version"]) {
        eprintln!("note: openssl not found; SKIPPING the outside-tools archive check");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).to_str().unwrap().to_owned();
    let script = t.path().join("open.py");
    std::fs::write(&script, OPEN_PY).unwrap();
    let py = |args: &[&str]| Command::new("python3").arg(&script).args(args).output();
    match py(&["probe"]) {
        Ok(o) if o.status.code() == Some(3) || !o.status.success() => {
            eprintln!(
                "note: python3 'cryptography' with SM4-GCM missing; SKIPPING the outside-tools archive check (pip install cryptography)"
            );
            return;
        }
        Err(_) => {
            eprintln!("note: python3 not found; SKIPPING the outside-tools archive check");
            return;
        }
        Ok(_) => {}
    }

    let vault = t.path().join("vault");
    vault_2_of_3(&vault);
    let vpub = Sm2PublicKey::load(&vault.join(keystore::PUBLIC_KEY_FILE)).unwrap();
    let mut items = sample_items();
    items[0].bytes = (0..1000u32).flat_map(|i| format!("行 {i},数据\n").into_bytes()).collect(); // many 64-byte segments
    let (arch, _) = fake_export(&t.path().join("media"), &vpub, &items);
    // the officers rebuild the private key; from here on only outside tools
    let key = keystore::unlock(&unlock(&vault, &[1, 2]), &vpub).unwrap();
    std::fs::write(t.path().join("vault.pem"), key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();

    for it in &items {
        let wrapped = arch.join(format!("items/{}.key", it.id));
        let o = py(&["der", wrapped.to_str().unwrap(), &p("wrapped.der")]).unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = Command::new("openssl")
            .args(["pkeyutl", "-decrypt", "-inkey", &p("vault.pem"), "-in", &p("wrapped.der"), "-out", &p("key.bin")])
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::metadata(t.path().join("key.bin")).unwrap().len(), 16);
        let o = py(&["open", arch.to_str().unwrap(), &it.id, &p("key.bin"), &p("plain.bin")]).unwrap();
        assert!(o.status.success(), "python: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(t.path().join("plain.bin")).unwrap(), it.bytes, "{}", it.id);
    }
}
