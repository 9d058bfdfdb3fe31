//! The support inbox over IMAP (async-imap on tokio, TLS by tokio-rustls):
//! watches `[support.inbox] mailbox` (IDLE where the server has it, a look
//! every `poll` otherwise), parses each new mail with mail-parser into an
//! [`InboundMail`] and hands it to the engine, which decides what it is.
//!
//! Each mail is handled once. The mails to look at are those without the
//! keyword [`DONE`]; a mail gets it (with `\Seen` when it opened or touched a
//! ticket) only after the engine's decision is durable, and the engine
//! records each mail's Message-ID in the same transaction as what it
//! changed, so a mail seen again after a crash between the two changes
//! nothing twice. Automatic mail the engine ignored, and mail over the
//! sender's hourly limit, get the keyword but stay unread, for a person.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::TryStreamExt;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::adapters::http::RateLimit;
use crate::config::inbox::{InboxConfig, InboxTls};
use crate::engine::inbox::{InboundMail, MailFile};
use crate::engine::Event;
use crate::runtime::{Bot, BotError};

/// The keyword a mail gets once the bot has handled it.
pub const DONE: &str = "$OpsbotDone";

/// How long connecting, logging in and each command may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The most recipients, references and attachments kept of one mail.
const MOST: usize = 50;

/// Why the inbox cannot be read now.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("the server refused the login of {0}: {1}")]
    Login(String, async_imap::error::Error),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("the server took longer than {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("the bot cannot take mail in now: {0}")]
    Bot(String),
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Session = async_imap::Session<Stream>;

async fn timed<T, E: Into<InboxError>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, InboxError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(InboxError::Timeout(TIMEOUT)),
    }
}

/// Watches the support inbox until `stop` turns true. `None` (and a
/// warning) when the password is not set.
pub fn spawn(bot: Bot, cfg: &InboxConfig, stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    if cfg.password.value.is_none() {
        warn!(
            var = %cfg.password.var,
            "the support inbox is not watched: its password variable is not set"
        );
        return None;
    }
    let inbox = Inbox {
        per_sender: RateLimit::new(cfg.per_sender_per_hour, Duration::from_secs(3600)),
        cfg: cfg.clone(),
        bot,
    };
    Some(tokio::spawn(inbox.run(stop)))
}

struct Inbox {
    cfg: InboxConfig,
    bot: Bot,
    per_sender: RateLimit,
}

impl Inbox {
    fn server(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut down = false;
        loop {
            let result = match self.session().await {
                Ok(s) => {
                    if down {
                        info!(server = %self.server(), "the support inbox answers again");
                        down = false;
                    }
                    self.watch(s, &mut stop).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => return,
                Err(e) if !down => {
                    warn!(server = %self.server(), error = %e, "cannot read the support inbox; trying again");
                    down = true;
                }
                Err(_) => {}
            }
            let wait = self.cfg.poll.min(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Connects, logs in and selects the mailbox.
    async fn session(&self) -> Result<Session, InboxError> {
        let host = self.cfg.host.clone();
        let tcp = timed(async {
            TcpStream::connect((host.as_str(), self.cfg.port))
                .await
                .map_err(|e| InboxError::Connect(self.server(), e))
        })
        .await?;
        let stream = match self.cfg.tls {
            InboxTls::Implicit => Stream::Tls(Box::new(self.tls(tcp).await?)),
            InboxTls::StartTls | InboxTls::None => Stream::Plain(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        let greeting = timed(async {
            client
                .read_response()
                .await
                .map_err(|e| InboxError::Imap(e.into()))
        })
        .await?;
        if greeting.is_none() {
            return Err(InboxError::Closed);
        }
        if self.cfg.tls == InboxTls::StartTls {
            timed(client.run_command_and_check_ok("STARTTLS", None)).await?;
            let Stream::Plain(tcp) = client.into_inner() else {
                return Err(InboxError::Tls(self.server(), "not a plain stream".into()));
            };
            client = async_imap::Client::new(Stream::Tls(Box::new(self.tls(tcp).await?)));
        }
        let password = self
            .cfg
            .password
            .value
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        let login = tokio::time::timeout(TIMEOUT, client.login(&self.cfg.user, password)).await;
        let mut session = match login {
            Ok(Ok(s)) => s,
            Ok(Err((e, _))) => return Err(InboxError::Login(self.cfg.user.clone(), e)),
            Err(_) => return Err(InboxError::Timeout(TIMEOUT)),
        };
        timed(session.select(&self.cfg.mailbox)).await?;
        Ok(session)
    }

    async fn tls(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, InboxError> {
        use tokio_rustls::rustls;
        let fail = |e: String| InboxError::Tls(self.server(), e);
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &self.cfg.ca_file {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::CertificateDer;
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| fail(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(self.cfg.host.clone())
            .map_err(|e| fail(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        timed(async {
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| fail(e.to_string()))
        })
        .await
    }

    /// Takes in what is new, then waits for more (IDLE, or `poll`), until
    /// `stop`.
    async fn watch(
        &self,
        mut s: Session,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), InboxError> {
        let idle = timed(s.capabilities()).await?.has_str("IDLE");
        loop {
            self.take_in(&mut s, stop).await?;
            if *stop.borrow() {
                let _ = timed(s.logout()).await;
                return Ok(());
            }
            if idle {
                let mut h = s.idle();
                timed(h.init()).await?;
                {
                    let (wait, interrupt) = h.wait_with_timeout(self.cfg.poll);
                    tokio::select! {
                        r = wait => { r?; }
                        _ = stop.wait_for(|s| *s) => drop(interrupt),
                    }
                }
                s = timed(h.done()).await?;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.poll) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
    }

    /// Every mail not yet handled, oldest first.
    async fn take_in(
        &self,
        s: &mut Session,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), InboxError> {
        let found = timed(s.uid_search(format!("NOT KEYWORD {DONE} NOT DELETED"))).await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        for uid in uids {
            if *stop.borrow() {
                return Ok(());
            }
            let Some(mail) = self.fetch(s, uid).await? else {
                continue;
            };
            let flags = if self.per_sender.take(&mail.from).is_err() {
                warn!(uid, "a sender is over [support.inbox] per_sender_per_hour: the mail is left unread in the mailbox");
                format!("({DONE})")
            } else {
                match self
                    .bot
                    .submit(Event::InboundMail {
                        mail: Box::new(mail),
                    })
                    .await
                {
                    Ok(outcome) => match outcome.accepted {
                        Some(a) => {
                            let tickets: Vec<String> =
                                a.tickets.iter().map(|t| t.to_string()).collect();
                            info!(uid, tickets = %tickets.join(","), "a mail was taken in");
                            format!("(\\Seen {DONE})")
                        }
                        None => {
                            info!(uid, "an automatic mail (or the bot's own) was left alone");
                            format!("({DONE})")
                        }
                    },
                    Err(e @ (BotError::Refused(_) | BotError::Internal(_))) => {
                        warn!(uid, error = %e, "a mail could not be taken in; it is left unread in the mailbox");
                        format!("({DONE})")
                    }
                    Err(e) => return Err(InboxError::Bot(e.to_string())),
                }
            };
            // Only now, after the commit: a crash before this line leaves
            // the mail to be seen again, and the engine knows it.
            let stream =
                timed(s.uid_store(uid.to_string(), format!("+FLAGS.SILENT {flags}"))).await?;
            let _ = timed(stream.try_collect::<Vec<_>>()).await?;
        }
        Ok(())
    }

    /// One mail, parsed; its body only when it is not too large.
    async fn fetch(&self, s: &mut Session, uid: u32) -> Result<Option<InboundMail>, InboxError> {
        let size = {
            let stream = timed(s.uid_fetch(uid.to_string(), "(UID RFC822.SIZE)")).await?;
            let got = timed(stream.try_collect::<Vec<_>>()).await?;
            got.iter().find_map(|f| f.size).map(u64::from)
        };
        let Some(size) = size else {
            // Gone meanwhile (expunged by someone else).
            return Ok(None);
        };
        let whole = size <= self.cfg.max_mail_bytes;
        let query = if whole {
            "(UID BODY.PEEK[])"
        } else {
            "(UID BODY.PEEK[HEADER])"
        };
        let stream = timed(s.uid_fetch(uid.to_string(), query)).await?;
        let got = timed(stream.try_collect::<Vec<_>>()).await?;
        let raw = got
            .iter()
            .find_map(|f| if whole { f.body() } else { f.header() });
        Ok(raw.map(|raw| parse(raw, (!whole).then_some(size))))
    }
}

/// A Message-ID as the bot keeps it: without angle brackets, printable
/// ASCII without spaces, at most 250 characters; `None` if nothing is left.
fn clean_id(s: &str) -> Option<String> {
    let id: String = s
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        .take(250)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The ids of `In-Reply-To` or `References`.
fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<&str> = match v {
        HeaderValue::Text(t) => t.split_whitespace().collect(),
        HeaderValue::TextList(l) => l.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    list.into_iter().filter_map(clean_id).take(MOST).collect()
}

/// The headers that mark automatic mail.
const AUTO_HEADERS: [&str; 7] = [
    "Auto-Submitted",
    "Precedence",
    "X-Auto-Response-Suppress",
    "List-Id",
    "List-Unsubscribe",
    "X-Autoreply",
    "X-Autorespond",
];

/// A raw mail (RFC 5322, MIME) as the engine reads it. `unread`: only the
/// header was fetched; the mail has that many bytes.
pub fn parse(raw: &[u8], unread: Option<u64>) -> InboundMail {
    let key_of_raw = || format!("sha256:{}", hex::encode(Sha256::digest(raw)));
    let Some(m) = MessageParser::default().parse(raw) else {
        return InboundMail {
            key: key_of_raw(),
            unread_size: unread,
            ..InboundMail::default()
        };
    };
    let message_id = m.message_id().and_then(clean_id);
    let from = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut recipients = Vec::new();
    for a in m.to().into_iter().chain(m.cc()) {
        for addr in a.iter() {
            if let Some(x) = addr.address() {
                recipients.push(x.trim().to_ascii_lowercase());
            }
        }
    }
    for h in m.headers() {
        let name = h.name();
        if name.eq_ignore_ascii_case("Delivered-To") || name.eq_ignore_ascii_case("X-Original-To") {
            if let Some(t) = h.value().as_text() {
                recipients.push(t.trim().trim_matches(['<', '>']).to_ascii_lowercase());
            }
        }
    }
    // Tagged addresses first: they say which ticket a reply is for.
    recipients.sort_by_key(|r| !r.contains('+'));
    recipients.truncate(MOST);
    let auto_headers = AUTO_HEADERS
        .iter()
        .filter_map(|name| {
            m.header_raw(*name)
                .map(|v| (name.to_string(), v.trim().to_string()))
        })
        .collect();
    let content_type = m
        .root_part()
        .content_type()
        .map(|c| match c.subtype() {
            Some(sub) => format!("{}/{}", c.ctype(), sub),
            None => c.ctype().to_string(),
        })
        .unwrap_or_else(|| "text/plain".into())
        .to_ascii_lowercase();
    let text = if unread.is_some() {
        String::new()
    } else {
        m.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    };
    let attachments = m
        .attachments()
        .take(MOST)
        .map(|p| MailFile {
            name: p.attachment_name().unwrap_or_default().to_string(),
            content_type: p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_default(),
            size: p.len() as u64,
        })
        .collect();
    InboundMail {
        key: message_id.clone().unwrap_or_else(key_of_raw),
        message_id,
        from,
        recipients,
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        subject: m.subject().unwrap_or_default().to_string(),
        text,
        attachments,
        auto_headers,
        return_path: m.header_raw("Return-Path").map(|r| r.trim().to_string()),
        content_type,
        unread_size: unread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_decoded() {
        let raw = b"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <Joerg@Example.com>\r\n\
To: support@example.com\r\n\
Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n\
Message-ID: <abc@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Die Kasse zeigt =22Fehler=22 f=FCr meine Bestellung.\r\n";
        let m = parse(raw, None);
        assert_eq!(m.from, "joerg@example.com");
        assert_eq!(m.subject, "Grüße aus Köln");
        assert_eq!(m.key, "abc@example.com");
        assert_eq!(
            m.text.trim(),
            "Die Kasse zeigt \"Fehler\" für meine Bestellung."
        );
        assert_eq!(m.recipients, ["support@example.com"]);
    }

    #[test]
    fn html_only_mail_becomes_text_and_threading_headers_are_read() {
        let raw = b"From: carol@example.com\r\n\
To: Support <support+OPS-3@example.com>\r\n\
Subject: Re: [OPS-3] We received your request\r\n\
In-Reply-To: <opsbot.OPS-3@example.com>\r\n\
References: <first@mail.example.com>\r\n <opsbot.OPS-3@example.com>\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+U3RpbGwgPGI+YnJva2VuPC9iPjwvcD4=\r\n";
        let m = parse(raw, None);
        assert_eq!(m.text.trim(), "Still broken");
        assert_eq!(m.in_reply_to, ["opsbot.OPS-3@example.com"]);
        assert_eq!(
            m.references,
            ["first@mail.example.com", "opsbot.OPS-3@example.com"]
        );
        assert_eq!(m.recipients, ["support+ops-3@example.com"]);
        assert!(m.message_id.is_none());
        assert!(m.key.starts_with("sha256:"), "{}", m.key);
        assert_eq!(m.content_type, "text/html");
    }

    #[test]
    fn garbage_is_a_mail_with_nothing_in_it() {
        let m = parse(b"\x00\x01\x02", None);
        assert!(m.key.starts_with("sha256:"));
        let m = parse(b"", None);
        assert!(m.from.is_empty());
        assert_eq!(clean_id("<a b\"c>"), Some("abc".into()));
        assert_eq!(clean_id("<>"), None);
    }
}
