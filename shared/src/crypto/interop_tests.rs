//! Interoperability with OpenSSL 3 (an independent SM implementation): each
//! test runs the `openssl` command line on the same inputs and compares.
//! When `openssl` is not on PATH a test prints a note and passes.
//!
//! ```text
//!   ours ──bytes/files──▶ openssl dgst / mac / enc / pkey / pkeyutl ──▶ compare
//!   openssl ──files──▶ ours (SM2 signature verify, SM2 decrypt)
//! ```

use std::path::Path;
use std::process::Command;

use ctr::cipher::{KeyIvInit, StreamCipher};

use super::*;

fn have_openssl() -> bool {
    let ok = Command::new("openssl").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("note: openssl not found on PATH; skipping OpenSSL interop check");
    }
    ok
}

/// Runs openssl with `args`; returns stdout, panicking with stderr on failure.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl").args(args).output().unwrap().status.success()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 + 7) as u8).collect()
}

#[test]
fn openssl_sm3_of_a_file() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for n in [0usize, 3, 64, 100_000] {
        let f = dir.path().join(format!("data{n}"));
        let data = sample(n);
        std::fs::write(&f, &data).unwrap();
        let out = String::from_utf8(openssl(&["dgst", "-sm3", "-r", p(&f)])).unwrap();
        let theirs = out.split_whitespace().next().unwrap().to_lowercase();
        assert_eq!(theirs, hex::encode(sm3(&data)), "n={n}");
    }
}

#[test]
fn openssl_hmac_sm3() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("data");
    let data = sample(1000);
    std::fs::write(&f, &data).unwrap();
    for key in [sample(16), sample(32), sample(100)] {
        let hk = format!("hexkey:{}", hex::encode(&key));
        let out = openssl(&["mac", "-digest", "SM3", "-macopt", &hk, "-in", p(&f), "HMAC"]);
        let theirs = String::from_utf8(out).unwrap().trim().to_lowercase();
        assert_eq!(theirs, hex::encode(hmac_sm3(&key, &data)));
    }
}

#[test]
fn openssl_sm4_ctr_and_cbc_agree_with_our_block_cipher() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SymKey::from_slice(&sample(16)).unwrap();
    let iv: [u8; 16] = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];
    let data = sample(1000);
    let f = dir.path().join("pt");
    std::fs::write(&f, &data).unwrap();
    let (k_hex, iv_hex) = (hex::encode(key.as_bytes()), hex::encode(iv));

    // CTR: the ctr crate over our SM4 block cipher (128-bit big-endian counter, as OpenSSL)
    let out = dir.path().join("ctr");
    openssl(&["enc", "-sm4-ctr", "-K", &k_hex, "-iv", &iv_hex, "-in", p(&f), "-out", p(&out)]);
    let mut ours = data.clone();
    let mut c = ctr::Ctr128BE::<sm4::Sm4>::new(&(*key.as_bytes()).into(), &iv.into());
    c.apply_keystream(&mut ours);
    assert_eq!(std::fs::read(&out).unwrap(), ours);

    // CBC with PKCS#7 padding, built by hand from sm4_encrypt_block
    let out = dir.path().join("cbc");
    openssl(&["enc", "-sm4-cbc", "-K", &k_hex, "-iv", &iv_hex, "-in", p(&f), "-out", p(&out)]);
    let mut padded = data.clone();
    let pad = 16 - data.len() % 16;
    padded.extend(std::iter::repeat_n(pad as u8, pad));
    let mut prev = iv;
    let mut ours = Vec::new();
    for block in padded.chunks(16) {
        let mut b = [0u8; 16];
        for i in 0..16 {
            b[i] = block[i] ^ prev[i];
        }
        prev = sm4_encrypt_block(&key, &b);
        ours.extend_from_slice(&prev);
    }
    assert_eq!(std::fs::read(&out).unwrap(), ours);
}

#[test]
fn openssl_reads_our_sm2_key_files() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = Sm2PrivateKey::generate().unwrap();
    let (sk, pk) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
    k.save(&sk).unwrap();
    k.public_key().save(&pk).unwrap();
    let text = String::from_utf8(openssl(&["pkey", "-in", p(&sk), "-text", "-noout"])).unwrap();
    assert!(text.contains("Private-Key: (256 bit)"), "{text}");
    // OpenSSL derives the same public key from our private key file
    let their_pub = String::from_utf8(openssl(&["pkey", "-in", p(&sk), "-pubout"])).unwrap();
    assert_eq!(their_pub, k.public_key().to_spki_pem().unwrap());
    let text = String::from_utf8(openssl(&["pkey", "-pubin", "-in", p(&pk), "-text", "-noout"])).unwrap();
    assert!(text.contains("SM2") || text.contains("ASN1 OID"), "{text}");
}

#[test]
fn openssl_key_files_read_by_us() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
    openssl(&["genpkey", "-algorithm", "SM2", "-out", p(&sk)]);
    openssl(&["pkey", "-in", p(&sk), "-pubout", "-out", p(&pk)]);
    let k = Sm2PrivateKey::load(&sk).unwrap();
    let pubk = Sm2PublicKey::load(&pk).unwrap();
    assert_eq!(k.public_key(), &pubk);
}

#[test]
fn openssl_verifies_our_sm2_signature_and_we_verify_theirs() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = Sm2PrivateKey::generate().unwrap();
    let (sk, pk) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
    k.save(&sk).unwrap();
    k.public_key().save(&pk).unwrap();
    let msg = dir.path().join("msg");
    let data = sample(5000);
    std::fs::write(&msg, &data).unwrap();
    let distid = format!("distid:{SM2_DIST_ID}");

    // ours → OpenSSL (DER form of our r‖s)
    let sigf = dir.path().join("ours.sig");
    std::fs::write(&sigf, k.sign(&data).unwrap().to_der().unwrap()).unwrap();
    let verify = |sig: &Path, id: &str| {
        openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            p(&pk),
            "-rawin",
            "-in",
            p(&msg),
            "-sigfile",
            p(sig),
            "-digest",
            "sm3",
            "-pkeyopt",
            id,
        ])
    };
    assert!(verify(&sigf, &distid), "OpenSSL rejected our SM2 signature");
    assert!(!verify(&sigf, "distid:1234567812345679"), "distinguishing id must matter");

    // OpenSSL → ours
    let theirs = dir.path().join("theirs.sig");
    openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        p(&sk),
        "-rawin",
        "-in",
        p(&msg),
        "-digest",
        "sm3",
        "-pkeyopt",
        &distid,
        "-out",
        p(&theirs),
    ]);
    let sig = Sm2Signature::from_der(&std::fs::read(&theirs).unwrap()).unwrap();
    k.public_key().verify(&data, &sig).unwrap();
    assert!(k.public_key().verify(&data[1..], &sig).is_err());
}

#[test]
fn openssl_sm2_encryption_both_ways() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = Sm2PrivateKey::generate().unwrap();
    let (sk, pk) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
    k.save(&sk).unwrap();
    k.public_key().save(&pk).unwrap();
    let data_key = SymKey::generate().unwrap();
    let pt = dir.path().join("dk");
    std::fs::write(&pt, data_key.as_bytes()).unwrap();

    // OpenSSL encrypts (DER SM2Cipher) → we decrypt
    let ct = dir.path().join("ct.der");
    openssl(&["pkeyutl", "-encrypt", "-pubin", "-inkey", p(&pk), "-in", p(&pt), "-out", p(&ct)]);
    let back = k.decrypt_der(&std::fs::read(&ct).unwrap()).unwrap();
    assert_eq!(&back[..], data_key.as_bytes());

    // we encrypt (DER) → OpenSSL decrypts
    std::fs::write(&ct, k.public_key().encrypt_der(data_key.as_bytes()).unwrap()).unwrap();
    let out = openssl(&["pkeyutl", "-decrypt", "-inkey", p(&sk), "-in", p(&ct)]);
    assert_eq!(&out[..], data_key.as_bytes());

    // our raw C1C3C2 is the DER's fields concatenated: 04 ‖ x ‖ y ‖ C3 ‖ C2
    let raw = k.public_key().encrypt(data_key.as_bytes()).unwrap();
    let der = raw_c1c3c2_to_der(&raw);
    std::fs::write(&ct, der).unwrap();
    let out = openssl(&["pkeyutl", "-decrypt", "-inkey", p(&sk), "-in", p(&ct)]);
    assert_eq!(&out[..], data_key.as_bytes());
}

/// The conversion docs/FORMATS.md describes, written out for the test.
fn raw_c1c3c2_to_der(raw: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1)..];
        let mut out = vec![0x02];
        if v[0] & 0x80 != 0 {
            out.push(v.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(v.len() as u8);
        }
        out.extend_from_slice(v);
        out
    }
    let (x, y, c3, c2) = (&raw[1..33], &raw[33..65], &raw[65..97], &raw[97..]);
    let mut body = int(x);
    body.extend(int(y));
    body.extend([0x04, 32]);
    body.extend_from_slice(c3);
    body.extend([0x04, c2.len() as u8]);
    body.extend_from_slice(c2);
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}
