//! Tests of SM2 signatures, encryption and key files (OpenSSL interop is in
//! `crypto::interop_tests`).

use super::*;

fn pair() -> Sm2PrivateKey {
    Sm2PrivateKey::generate().unwrap()
}

#[test]
fn sign_verify_round_trip() {
    let k = pair();
    let sig = k.sign(b"batch 17").unwrap();
    k.public_key().verify(b"batch 17", &sig).unwrap();
    // parts sign the concatenation
    let sig2 = k.sign_parts(&[b"batch", b" 17"]).unwrap();
    k.public_key().verify(b"batch 17", &sig2).unwrap();
    k.public_key().verify_parts(&[b"ba", b"tch 1", b"7"], &sig).unwrap();
}

#[test]
fn tampered_message_or_signature_fails() {
    let k = pair();
    let sig = k.sign(b"batch 17").unwrap();
    assert!(k.public_key().verify(b"batch 18", &sig).is_err());
    assert!(k.public_key().verify(b"", &sig).is_err());
    for i in 0..SM2_SIGNATURE_LEN {
        let mut b = sig.to_bytes();
        b[i] ^= 0x01;
        if let Ok(s) = Sm2Signature::from_bytes(&b) {
            assert!(k.public_key().verify(b"batch 17", &s).is_err(), "byte {i}");
        }
    }
}

#[test]
fn wrong_key_fails() {
    let a = pair();
    let b = pair();
    let sig = a.sign(b"m").unwrap();
    assert!(b.public_key().verify(b"m", &sig).is_err());
    assert_ne!(a.public_key(), b.public_key());
}

#[test]
fn signature_encodings() {
    let k = pair();
    let sig = k.sign(b"m").unwrap();
    let der = sig.to_der().unwrap();
    assert_eq!(der[0], 0x30);
    assert!((8..=72).contains(&der.len()));
    assert_eq!(Sm2Signature::from_der(&der).unwrap(), sig);
    assert!(Sm2Signature::from_bytes(&[0u8; 64]).is_err());
    assert!(Sm2Signature::from_bytes(&[1u8; 63]).is_err());
    assert!(Sm2Signature::from_bytes(&[0xffu8; 64]).is_err()); // r, s ≥ n
    assert!(Sm2Signature::from_der(&[0x30, 0]).is_err());
}

#[test]
fn der_of_small_integers() {
    let mut r = [0u8; 32];
    r[31] = 1;
    let mut s = [0u8; 32];
    s[0] = 0x80;
    let der = der_signature(&r, &s);
    assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 1, 1]);
    assert_eq!(&der[5..8], &[0x02, 33, 0]);
}

#[test]
fn encrypt_decrypt_round_trip_c1c3c2() {
    let k = pair();
    for n in [1usize, 16, 32, 33, 1024] {
        let pt: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let ct = k.public_key().encrypt(&pt).unwrap();
        assert_eq!(ct.len(), 65 + 32 + n);
        assert_eq!(ct[0], 0x04);
        // C3 = SM3(x2 ‖ M ‖ y2) sits right after C1: C2 is the tail, same length as M
        assert_eq!(*k.decrypt(&ct).unwrap(), pt);
        let der = k.public_key().encrypt_der(&pt).unwrap();
        assert_eq!(*k.decrypt_der(&der).unwrap(), pt);
    }
    assert!(k.public_key().encrypt(b"").is_err());
    assert!(k.public_key().encrypt(&[0u8; 1025]).is_err());
}

#[test]
fn decrypt_rejects_tampering_and_wrong_key() {
    let k = pair();
    let ct = k.public_key().encrypt(b"0123456789abcdef").unwrap();
    for i in 0..ct.len() {
        let mut t = ct.clone();
        t[i] ^= 0x04;
        assert!(k.decrypt(&t).is_err(), "byte {i}");
    }
    assert!(pair().decrypt(&ct).is_err());
    assert!(k.decrypt(&ct[..97]).is_err());
    assert!(k.decrypt(&[]).is_err());
    let mut long = ct.clone();
    long.push(0);
    assert!(k.decrypt(&long).is_err());
}

#[test]
fn pem_round_trips() {
    let k = pair();
    let pem = k.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let back = Sm2PrivateKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(back.public_key(), k.public_key());
    let sig = back.sign(b"x").unwrap();
    k.public_key().verify(b"x", &sig).unwrap();

    let der = k.to_pkcs8_der().unwrap();
    assert_eq!(Sm2PrivateKey::from_pkcs8_der(&der).unwrap().public_key(), k.public_key());

    let spki = k.public_key().to_spki_pem().unwrap();
    assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(&Sm2PublicKey::from_spki_pem(&spki).unwrap(), k.public_key());
    let spki_der = k.public_key().to_spki_der().unwrap();
    assert_eq!(&Sm2PublicKey::from_spki_der(&spki_der).unwrap(), k.public_key());
    let sec1 = k.public_key().to_sec1_bytes();
    assert_eq!(sec1.len(), 65);
    assert_eq!(&Sm2PublicKey::from_sec1_bytes(&sec1).unwrap(), k.public_key());

    assert!(Sm2PrivateKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    assert!(Sm2PublicKey::from_spki_pem(&pem).is_err());
    assert!(Sm2PrivateKey::from_pkcs8_pem(&spki).is_err());
    assert!(Sm2PublicKey::from_sec1_bytes(&[4u8; 65]).is_err());
}

#[test]
fn key_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let k = pair();
    let sk = dir.path().join("dmz-sign.pem");
    let pk = dir.path().join("dmz-sign.pub.pem");
    k.save(&sk).unwrap();
    k.public_key().save(&pk).unwrap();
    assert!(k.save(&sk).is_err(), "never overwrites");
    let k2 = Sm2PrivateKey::load(&sk).unwrap();
    let p2 = Sm2PublicKey::load(&pk).unwrap();
    assert_eq!(k2.public_key(), &p2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn debug_hides_the_secret() {
    let k = Sm2PrivateKey::from_scalar_bytes(&[0x11; 32]).unwrap();
    let d = format!("{k:?}");
    assert!(d.contains("[redacted]"));
    assert!(!d.contains("1111111111"));
    assert!(Sm2PrivateKey::from_scalar_bytes(&[0u8; 32]).is_err());
    assert!(Sm2PrivateKey::from_scalar_bytes(&[0xff; 32]).is_err());
}
