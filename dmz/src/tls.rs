//! TLS and certificates: the rustls server configuration (TLS 1.3 only, ring
//! provider, client certificate optional at the TLS layer), the DMZ's own CA
//! that issues agent client certificates (rcgen, P-256), and certificate
//! fingerprints.
//!
//! ```text
//!  agent ──TLS 1.3 (+ client cert signed by the DMZ CA, optional)──▶ rustls ServerConfig
//!                         peer cert ─▶ fingerprint = hex SM3(DER) ─▶ request Extension
//!  enrol: CSR (PEM) ─▶ only its public key is used ─▶ cert {CN = hospital code, clientAuth} ─▶ CA signs
//! ```
//! Revocation is not done in TLS (no CRL): a revoked certificate still
//! completes the handshake and is refused with 403 by the API, which looks
//! its fingerprint up in the store.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// The ring provider, which every rustls config of the DMZ uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Hex SM3 of a certificate's DER: how the store names client certificates.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(flumon_shared::crypto::sm3(der))
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> =
        CertificateDer::pem_file_iter(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?.collect();
    let certs = certs.map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{}: no certificate", path.display())));
    }
    Ok(certs)
}

/// The server configuration: TLS 1.3 only, client certificates signed by
/// `ca_cert` accepted but not required.
pub fn server_config(cert: &Path, key: &Path, ca_cert: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca_cert)? {
        roots.add(c).map_err(tls_err)?;
    }
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .allow_unauthenticated()
        .build()
        .map_err(tls_err)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A PEM certificate and, where generated here, its PKCS#8 PEM key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Option<Zeroizing<String>>,
    pub fingerprint: String,
}

fn validity(params: &mut CertificateParams, days: i64) {
    let from = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let to = from + chrono::Duration::days(days);
    use chrono::Datelike;
    let d = |x: chrono::NaiveDate| {
        rcgen::date_time_ymd(x.year(), u8::try_from(x.month()).unwrap_or(1), u8::try_from(x.day()).unwrap_or(1))
    };
    params.not_before = d(from);
    params.not_after = d(to);
}

fn serial() -> Result<SerialNumber> {
    let mut b: [u8; 16] = flumon_shared::crypto::random_array()?;
    if let Some(first) = b.first_mut() {
        *first &= 0x7F; // positive
    }
    Ok(SerialNumber::from_slice(&b))
}

fn gen_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)
}

/// A new self-signed CA (P-256) for agent client certificates.
pub fn generate_ca(common_name: &str) -> Result<Issued> {
    let key = gen_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "flumon DMZ");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(serial()?);
    validity(&mut params, 3650);
    let cert = params.self_signed(&key).map_err(tls_err)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: Some(Zeroizing::new(key.serialize_pem())),
        fingerprint: fingerprint(cert.der()),
    })
}

/// The DMZ's CA, loaded to issue client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM), handed to agents.
    pub cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca([key redacted])")
    }
}

impl Ca {
    /// Loads the CA certificate and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Ca> {
        let cert_pem = std::fs::read_to_string(cert)?;
        let key_pem = Zeroizing::new(std::fs::read_to_string(key)?);
        let kp = KeyPair::from_pem(&key_pem).map_err(tls_err)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, kp).map_err(tls_err)?;
        Ok(Ca { issuer, cert_pem })
    }

    fn client_params(common_name: &str) -> Result<CertificateParams> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, "flumon agent");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial()?);
        validity(&mut params, 825);
        Ok(params)
    }

    /// A new client certificate and key for `common_name` (operators, `create-hospital`).
    pub fn issue_client(&self, common_name: &str) -> Result<Issued> {
        let key = gen_key()?;
        let cert = Self::client_params(common_name)?.signed_by(&key, &self.issuer).map_err(tls_err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Some(Zeroizing::new(key.serialize_pem())),
            fingerprint: fingerprint(cert.der()),
        })
    }

    /// A TLS server certificate and key for `names` (DNS names or IP
    /// addresses), signed by this CA (local deployments: agents trust ca.pem).
    pub fn issue_server(&self, names: &[&str]) -> Result<Issued> {
        let key = gen_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => (*n).try_into().map(SanType::DnsName).map_err(tls_err),
            })
            .collect::<Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial()?);
        validity(&mut params, 825);
        let cert = params.signed_by(&key, &self.issuer).map_err(tls_err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Some(Zeroizing::new(key.serialize_pem())),
            fingerprint: fingerprint(cert.der()),
        })
    }

    /// Signs the public key of a PEM CSR (its signature checked; every other
    /// field of it ignored) as a client certificate for `common_name`.
    pub fn sign_csr(&self, csr_pem: &str, common_name: &str) -> Result<Issued> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|_| {
            Error::bad_request("证书签名请求 (CSR) 无法解析或签名无效 (unreadable or badly signed CSR)")
        })?;
        let cert = Self::client_params(common_name)?.signed_by(&csr.public_key, &self.issuer).map_err(tls_err)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: None, fingerprint: fingerprint(cert.der()) })
    }
}

/// Makes a CSR (for tests and tools): returns (CSR PEM, key PEM).
pub fn make_csr(common_name: &str) -> Result<(String, Zeroizing<String>)> {
    let key = gen_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).map_err(tls_err)?;
    Ok((csr.pem().map_err(tls_err)?, Zeroizing::new(key.serialize_pem())))
}
