//! `init` + `serve`: HTTPS with TLS 1.3 only (a TLS 1.2 client is refused),
//! the spool watcher ingesting a batch dropped in the inbound spool, the
//! API answering over TLS, graceful shutdown, signed journal checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use flumon_intranet::auth::Clock;
use flumon_intranet::auth::accounts::{create_user, start_session};
use flumon_intranet::config::{Config, init};
use flumon_intranet::db::Db;
use flumon_intranet::indicators::Role;
use flumon_shared::crypto::SymKey;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts the self-signed test certificate (signatures still checked).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client(versions: &[&'static rustls::SupportedProtocolVersion]) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn get(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, serde_json::Value) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls =
        client(&[&rustls::version::TLS13]).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn serve_over_tls13_and_ingest_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new();
    // The DMZ's files as `flumon-dmz init` names them.
    let dmz = dir.path().join("dmz");
    std::fs::create_dir_all(dmz.join("keys")).unwrap();
    SymKey::from_slice(w.link.as_bytes()).unwrap().save(&dmz.join("keys/link.key")).unwrap();
    w.sign.public_key().save(&dmz.join("keys/dmz-sign.pub.pem")).unwrap();
    let idir = dir.path().join("intranet");
    let cfg_path = init(&idir, Some(&dmz)).unwrap();
    assert!(init(&idir, Some(&dmz)).is_err(), "init never overwrites");
    let mut cfg = Config::load(&cfg_path).unwrap();
    cfg.ingest.poll_seconds = 1;
    let batch = w.drop_batch(
        &cfg.paths.spool,
        &[
            hospital(ORG_A, "110101"),
            outpatient(
                common(&w, ORG_A, "r1", "2025-01-06 10:00:00", "2025-01-06 20:00:00"),
                "c1",
                "2025-01-06 09:00:00",
                |_| {},
            ),
        ],
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(flumon_intranet::server::run(cfg.clone(), listener, rx));
    // An account, made beside the running server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = Db::open(&cfg.database_url).await.unwrap();
    let clock = Clock::default();
    create_user(&db, &clock, "nat", Role::Analyst, Some("000000")).await.unwrap();
    let token = start_session(&db, &clock, "nat").await.unwrap().0;
    let path = "/api/v1/indicators?scope=000000&from=2025-01-06&to=2025-01-12";
    let mut cases = serde_json::Value::Null;
    for _ in 0..60 {
        let (status, body) = get(addr, path, &token).await;
        assert_eq!(status, 200, "{body}");
        cases = body["total"]["cases"]["total"].clone();
        if cases == serde_json::json!(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(cases, serde_json::json!(1), "the watcher ingested the batch");
    assert!(cfg.paths.spool.join("done").join(batch.file_name().unwrap()).exists());
    assert_eq!(get(addr, "/api/v1/me", "nope").await.0, 401);
    // TLS 1.2 only: refused.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(client(&[&rustls::version::TLS12]).connect(ServerName::try_from("localhost").unwrap(), tcp).await.is_err());
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(40), server).await.unwrap().unwrap().unwrap();

    // The audit journal got a signed checkpoint at start (then hourly) that verifies with the public key,
    // and an edited entry is caught.
    let pubkey = flumon_shared::crypto::Sm2PublicKey::load(&cfg.paths.journal_pub).unwrap();
    let report = flumon_shared::journal::verify(&cfg.paths.journal, &pubkey).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(report.checkpoints >= 2, "signed checkpoints at start and at shutdown: {report:?}");
    let text = std::fs::read_to_string(&cfg.paths.journal).unwrap();
    let other_key = flumon_shared::crypto::Sm2PrivateKey::generate().unwrap();
    let other = other_key.public_key();
    let forged = flumon_shared::journal::verify(&cfg.paths.journal, other).unwrap();
    assert!(!forged.is_intact() || forged.checkpoints == 0, "another key does not verify the checkpoints");
    assert!(text.contains("access.read"), "analyst reads are journaled");
    std::fs::write(&cfg.paths.journal, text.replacen("access.read", "access.reaD", 1)).unwrap();
    let edited = flumon_shared::journal::verify(&cfg.paths.journal, &pubkey).unwrap();
    assert!(!edited.is_intact(), "an edited entry breaks the chain: {edited:?}\n{text}");
}
