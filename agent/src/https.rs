//! The agent's HTTPS client: TLS 1.3 only (rustls, ring), the DMZ's CA as the
//! only trusted root, this agent's client certificate, one HTTP/1.1 request
//! per connection (hyper), a timeout on every request.
//!
//! ```text
//!  Client { url host:port, rustls ClientConfig (roots = DMZ CA, client cert) }
//!    ─▶ TCP ─▶ tokio-rustls (SNI = host) ─▶ hyper http1 ─▶ Answer { status, body }
//!  multipart(): the body of POST /api/v1/scans (fields + one file)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::Error;

fn tls(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A client of one DMZ.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let v: Result<Vec<_>, _> =
        CertificateDer::pem_file_iter(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?.collect();
    let v = v.map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    if v.is_empty() {
        return Err(Error::Tls(format!("{}: 没有证书 (no certificate)", path.display())));
    }
    Ok(v)
}

/// Splits `https://host:port[/]` (port defaults to 443).
pub fn host_port(url: &str) -> Result<(String, u16), Error> {
    let rest =
        url.strip_prefix("https://").ok_or_else(|| Error::Config(format!("DMZ 地址必须以 https:// 开头: {url}")))?;
    let hp = rest.split('/').next().unwrap_or_default();
    let (host, port) = match hp.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| Error::Config(format!("DMZ 地址端口无效: {url}")))?)
        }
        _ => (hp, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(Error::Config(format!("DMZ 地址无效: {url}")));
    }
    Ok((host.to_owned(), port))
}

impl Client {
    /// A client trusting only `ca`, presenting `identity` (cert, key) when given.
    pub fn new(url: &str, ca: &Path, identity: Option<(&Path, &Path)>, timeout: Duration) -> Result<Client, Error> {
        let (host, port) = host_port(url)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(tls)?;
        }
        let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_root_certificates(roots);
        let cfg = match identity {
            Some((cert, key)) => {
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
                b.with_client_auth_cert(certs(cert)?, key).map_err(tls)?
            }
            None => b.with_no_client_auth(),
        };
        Ok(Client { host, port, tls: Arc::new(cfg), timeout })
    }

    /// Sends one request.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, Error> {
        match tokio::time::timeout(self.timeout, self.send_inner(method, path, headers, body)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Network(format!("请求超时 ({} 秒) (request timed out)", self.timeout.as_secs()))),
        }
    }

    async fn send_inner(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, Error> {
        let net = |e: &dyn std::fmt::Display| Error::Network(format!("{}:{}: {e}", self.host, self.port));
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| net(&e))?;
        let _ = tcp.set_nodelay(true);
        let name = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(self.host.clone()).map_err(tls)?,
        };
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls)).connect(name, tcp).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData { Error::Tls(e.to_string()) } else { net(&e) }
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| net(&e))?;
        let task = tokio::spawn(conn);
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(bytes::Bytes::from(body))).map_err(|e| net(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| net(&e))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| net(&e))?.to_bytes().to_vec();
        task.abort();
        Ok(Answer { status, body })
    }
}

/// A multipart/form-data body: text fields then one file. Returns (content type, body).
pub fn multipart(fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> Result<(String, Vec<u8>), Error> {
    let b: [u8; 16] = flumon_shared::crypto::random_array()?;
    let boundary = format!("flumon-{}", hex::encode(b));
    let mut body = Vec::with_capacity(file.len() + 1024);
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    let safe: String = file_name.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(host_port("https://127.0.0.1:8443").unwrap(), ("127.0.0.1".into(), 8443));
        assert_eq!(host_port("https://dmz.example.cn/").unwrap(), ("dmz.example.cn".into(), 443));
        assert_eq!(host_port("https://[::1]:9000").unwrap(), ("::1".into(), 9000));
        assert!(host_port("http://x").is_err());
    }
}
