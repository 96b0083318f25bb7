//! A minimal HTTPS client (one request per connection, HTTP/1.1, TLS 1.3,
//! ring): the CLI uses it to reach the running server's admin listener, and
//! the end-to-end tests use it as an agent would.
//!
//! ```text
//!  Client { trust: CA/server cert PEM, identity: client cert + key (optional) }
//!    ─▶ TCP ─▶ TLS 1.3 (SNI "localhost" or the IP) ─▶ hyper http1 ─▶ (status, headers, body)
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};

use crate::error::{Error, Result};

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(crate::error::codec)
    }
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    /// Trusts the certificates in `trust_pem`; presents `identity` (cert PEM, key PEM) when given.
    pub fn new(addr: SocketAddr, trust_pem: &Path, identity: Option<(&Path, &Path)>) -> Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        for c in crate::tls::load_certs(trust_pem)? {
            roots.add(c).map_err(tls_err)?;
        }
        let b = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_root_certificates(roots);
        let cfg = match identity {
            Some((cert, key)) => {
                let chain = crate::tls::load_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(tls_err)?;
                b.with_client_auth_cert(chain, key).map_err(tls_err)?
            }
            None => b.with_no_client_auth(),
        };
        Ok(Client { addr, tls: Arc::new(cfg) })
    }

    /// Sends one request.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Answer> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = if self.addr.ip().is_loopback() {
            ServerName::try_from("localhost").map_err(tls_err)?
        } else {
            ServerName::IpAddress(self.addr.ip().into())
        };
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(tls_err)?;
        let task = tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(bytes::Bytes::from(body))).map_err(tls_err)?;
        let resp = sender.send_request(req).await.map_err(tls_err)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(tls_err)?.to_bytes().to_vec();
        task.abort();
        Ok(Answer { status, headers, body })
    }

    /// POSTs JSON with a bearer token.
    pub async fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> Result<Answer> {
        let auth = format!("Bearer {token}");
        let bytes = serde_json::to_vec(body).map_err(crate::error::codec)?;
        self.send("POST", path, &[("authorization", &auth), ("content-type", "application/json")], bytes).await
    }
}
