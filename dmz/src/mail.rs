//! Outgoing mail: activation links and review decisions.
//!
//! ```text
//!  Mailer::from_config ─┬─ [mail] smtp_relay = "host:port" ─▶ lettre SMTP (tokio, rustls + ring)
//!                       │     port 465: implicit TLS; loopback host: plain; otherwise STARTTLS required
//!                       │     (`[web] mail_tls = "wrapper" | "starttls" | "none"` overrides)
//!                       └─ none ─▶ maildir `paths.maildir`: tmp/NAME (write, fsync) ─▶ new/NAME (rename, fsync dir)
//! ```
//! Messages are RFC 5322, UTF-8 text/plain (lettre picks quoted-printable or base64
//! for the body, RFC 2047 for the subject). Built with lettre's builder and
//! written as `Message::formatted()`, so the maildir holds exactly what SMTP
//! would have carried. lettre builds here with rustls on the ring provider (no
//! aws-lc); trusted roots are the system's (`rustls-native-certs`).
//! Log lines never name the recipient.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;
use crate::error::{Error, Result};

/// Sender used when `[mail] from` is empty.
pub const DEFAULT_FROM: &str = "flumon 流感医疗服务监测系统 <noreply@flumon.invalid>";

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
enum Sink {
    Maildir(PathBuf),
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
}

/// Sends mail as configured.
pub struct Mailer {
    sink: Sink,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.sink {
            Sink::Maildir(_) => "maildir",
            Sink::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer").field("sink", &kind).finish()
    }
}

/// The TLS mode of an SMTP relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    Wrapper,
    StartTls,
    None,
}

fn tls_mode(host: &str, port: u16, over: Option<&str>) -> Result<TlsMode> {
    match over {
        Some("wrapper") => Ok(TlsMode::Wrapper),
        Some("starttls") => Ok(TlsMode::StartTls),
        Some("none") => Ok(TlsMode::None),
        Some(other) => Err(Error::Config(format!("web.mail_tls: unknown mode {other:?} (wrapper | starttls | none)"))),
        None if port == 465 => Ok(TlsMode::Wrapper),
        None if matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]") => Ok(TlsMode::None),
        None => Ok(TlsMode::StartTls),
    }
}

impl Mailer {
    /// The mailer the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Mailer> {
        let from_text = if cfg.mail.from.trim().is_empty() { DEFAULT_FROM } else { cfg.mail.from.trim() };
        let from: Mailbox = from_text.parse().map_err(|e| Error::Config(format!("mail.from: {e}")))?;
        let sink = match cfg.mail.smtp_relay.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Sink::Maildir(cfg.paths.maildir.clone()),
            Some(relay) => {
                let (host, port) = split_host_port(relay)?;
                let over = cfg.web.get("mail_tls").and_then(|v| v.as_str());
                smtp_sink(&host, port, tls_mode(&host, port, over)?)?
            }
        };
        Ok(Mailer { sink, from })
    }

    /// A mailer that writes into the maildir `dir` (tests, local runs).
    pub fn maildir(dir: &Path, from: &str) -> Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|e| Error::Config(format!("mail from: {e}")))?;
        Ok(Mailer { sink: Sink::Maildir(dir.to_path_buf()), from })
    }

    /// Builds and sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        let to: Mailbox = to.parse().map_err(|_| Error::bad_request("电子邮箱地址无效 (invalid e-mail address)"))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| Error::Internal(format!("mail: {e}")))?;
        match &self.sink {
            Sink::Maildir(dir) => {
                let dir = dir.clone();
                let bytes = msg.formatted();
                tokio::task::spawn_blocking(move || write_maildir(&dir, &bytes))
                    .await
                    .map_err(|e| Error::Internal(format!("mail task: {e}")))??;
            }
            Sink::Smtp(t) => {
                // the relay's answer can quote the address: only the kind of failure is kept
                t.send(msg).await.map_err(|e| {
                    let kind = if e.is_permanent() {
                        "permanent"
                    } else if e.is_transient() {
                        "transient"
                    } else if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection or TLS"
                    };
                    Error::Unavailable(format!("smtp: {kind} failure"))
                })?;
            }
        }
        tracing::info!("mail sent");
        Ok(())
    }
}

fn smtp_sink(host: &str, port: u16, mode: TlsMode) -> Result<Sink> {
    let builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.to_owned()).port(port).timeout(Some(SMTP_TIMEOUT));
    let builder = match mode {
        TlsMode::None => builder.tls(Tls::None),
        mode => {
            let params = TlsParameters::builder(host.trim_matches(['[', ']']).to_owned())
                .build_rustls()
                .map_err(|e| Error::Config(format!("mail TLS: {e}")))?;
            if mode == TlsMode::Wrapper {
                builder.tls(Tls::Wrapper(params))
            } else {
                builder.tls(Tls::Required(params))
            }
        }
    };
    Ok(Sink::Smtp(Box::new(builder.build())))
}

fn split_host_port(relay: &str) -> Result<(String, u16)> {
    let bad = || Error::Config(format!("mail.smtp_relay: {relay:?} is not host:port"));
    let (host, port) = relay.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// A unique maildir file name: time, process, counter and a random part.
fn unique_name() -> Result<String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let rnd: [u8; 6] = flumon_shared::crypto::random_array()?;
    Ok(format!(
        "{}.M{}P{}Q{}R{}.flumon-dmz",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        hex::encode(rnd)
    ))
}

/// Delivers `bytes` into the maildir `dir` (creating tmp/, new/, cur/): write and
/// fsync under tmp/, rename into new/, fsync new/.
pub fn write_maildir(dir: &Path, bytes: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let name = unique_name()?;
    let tmp = dir.join("tmp").join(&name);
    let dst = dir.join("new").join(&name);
    {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &dst)?;
    std::fs::File::open(dir.join("new"))?.sync_all()?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(tls_mode("smtp.example.cn", 465, None).unwrap(), TlsMode::Wrapper);
        assert_eq!(tls_mode("smtp.example.cn", 25, None).unwrap(), TlsMode::StartTls);
        assert_eq!(tls_mode("127.0.0.1", 25, None).unwrap(), TlsMode::None);
        assert_eq!(tls_mode("127.0.0.1", 25, Some("starttls")).unwrap(), TlsMode::StartTls);
        assert!(tls_mode("x", 25, Some("ssl")).is_err());
        assert_eq!(split_host_port("relay.example.cn:587").unwrap(), ("relay.example.cn".to_owned(), 587));
        assert_eq!(split_host_port("[::1]:25").unwrap(), ("[::1]".to_owned(), 25));
        assert!(split_host_port("relay").is_err());
        assert!(split_host_port(":25").is_err());
    }

    /// A relay on loopback (plain SMTP): lettre speaks to it and the message arrives whole.
    #[tokio::test]
    async fn smtp_to_a_loopback_relay() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 relay ESMTP\r\n").await.unwrap();
            let (mut data, mut in_data, mut rcpt) = (String::new(), false, String::new());
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                    }
                    continue;
                }
                let up = line.to_ascii_uppercase();
                let reply: &[u8] = if up.starts_with("EHLO") {
                    b"250-relay\r\n250 8BITMIME\r\n"
                } else if up.starts_with("DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if up.starts_with("QUIT") {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    if up.starts_with("RCPT") {
                        rcpt = line.clone();
                    }
                    b"250 ok\r\n"
                };
                w.write_all(reply).await.unwrap();
            }
            (rcpt, data)
        });
        let m =
            Mailer { sink: smtp_sink("127.0.0.1", port, TlsMode::None).unwrap(), from: DEFAULT_FROM.parse().unwrap() };
        m.send("contact@hospital.example.cn", "激活链接", "https://x/activate/abc\n").await.unwrap();
        drop(m);
        let (rcpt, data) = server.await.unwrap();
        assert!(rcpt.contains("<contact@hospital.example.cn>"), "{rcpt}");
        assert!(data.contains("To: contact@hospital.example.cn") && data.contains("Subject: =?utf-8?"), "{data}");
    }

    #[tokio::test]
    async fn maildir_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailer::maildir(dir.path(), DEFAULT_FROM).unwrap();
        m.send(
            "contact@hospital.example.cn",
            "流感监测系统: 注册申请已批准",
            "您好,\n激活链接: https://x/activate/abc\n",
        )
        .await
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("new")).unwrap().collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("To: contact@hospital.example.cn"), "{text}");
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
        assert!(m.send("not an address", "s", "b").await.is_err());
    }
}
