//! Customer mail over SMTP (lettre): the sink of the mail queue. Headers are
//! built by lettre from typed values (a parsed address, a one-line subject),
//! so text from customers never becomes a header.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::{info, warn};

use crate::adapters::console::Printer;
use crate::config::{SmtpConfig, SmtpTls};
use crate::domain::rich::one_line;
use crate::engine::{inbox, Effect, Event, Mail, MailPurpose};
use crate::runtime::{Bot, DeliveryError, Sink};
use crate::store::OutboxItem;

/// Sends customer mail; records each mail sent on its ticket.
pub struct SmtpSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    bot: Bot,
    /// Where the console shows `[mail → address] subject`, if there is one.
    printer: Option<Printer>,
    /// Whether "the mail server is down" was said already.
    warned: AtomicBool,
}

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("[smtp]: {0}")]
pub struct SmtpSetupError(String);

impl SmtpSink {
    pub fn new(
        cfg: &SmtpConfig,
        bot: Bot,
        printer: Option<Printer>,
    ) -> Result<SmtpSink, SmtpSetupError> {
        let builder = match cfg.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(|e| SmtpSetupError(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)
                .map_err(|e| SmtpSetupError(e.to_string()))?,
        };
        let mut builder = builder
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(10)));
        let secret = |s: &Option<crate::config::EnvSecret>| {
            s.as_ref()
                .and_then(|s| s.value.as_ref())
                .map(|v| v.expose().to_string())
        };
        if let (Some(u), Some(p)) = (secret(&cfg.user), secret(&cfg.password)) {
            builder = builder.credentials(Credentials::new(u, p));
        }
        let from = cfg
            .from
            .parse::<Mailbox>()
            .map_err(|e| SmtpSetupError(format!("`from`: {e}")))?;
        Ok(SmtpSink {
            transport: builder.build(),
            from,
            server: format!("{}:{}", cfg.host, cfg.port),
            bot,
            printer,
            warned: AtomicBool::new(false),
        })
    }

    /// The message, or why it can never be sent.
    fn message(&self, item: &OutboxItem, mail: &Mail) -> Result<Message, DeliveryError> {
        let to = mail.to.parse::<Mailbox>().map_err(|e| {
            DeliveryError::Permanent(format!(
                "`{}` is not a mail address: {e}",
                one_line(&mail.to, 80)
            ))
        })?;
        let thread = self.thread(item, mail)?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&mail.subject, 250))
            // Stable per outbox entry: a resend after a crash is recognisable.
            .message_id(Some(thread.message_id));
        if let Some(r) = thread.in_reply_to {
            b = b.in_reply_to(r);
        }
        if !thread.references.is_empty() {
            b = b.references(thread.references.join(" "));
        }
        // Replies come back tagged with their ticket (`support+OPS-12@…`).
        let tagged = inbox::tagged_address(self.from.email.as_ref(), &mail.ticket)
            .and_then(|a| a.parse::<lettre::Address>().ok());
        if let Some(addr) = tagged {
            b = b.reply_to(Mailbox::new(self.from.name.clone(), addr));
        }
        b.header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the mail: {e}")))
    }
}

/// A mail's threading headers, each id in angle brackets.
struct Thread {
    message_id: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
}

impl SmtpSink {
    /// The acknowledgement is the root of its ticket's thread (a reply to
    /// the customer's mail, when the ticket came by mail); every later mail
    /// replies to it. Ids are stable: a resend after a crash has the same.
    fn thread(&self, item: &OutboxItem, mail: &Mail) -> Result<Thread, DeliveryError> {
        let domain = self.from.email.domain().to_string();
        let store = self
            .bot
            .store()
            .map_err(|e| DeliveryError::Transient(e.to_string()))?;
        let customer = store
            .mail_thread(&mail.ticket)
            .map_err(|e| DeliveryError::Transient(e.to_string()))?
            .map(|m| format!("<{}>", one_line(&m, 250)));
        let root = format!("<{}>", inbox::thread_root(&mail.ticket, &domain));
        Ok(if mail.purpose == MailPurpose::Acknowledgement {
            Thread {
                message_id: root,
                in_reply_to: customer.clone(),
                references: customer.into_iter().collect(),
            }
        } else {
            Thread {
                message_id: format!(
                    "<{}>",
                    inbox::later_message_id(&mail.ticket, item.seq, &domain)
                ),
                in_reply_to: Some(root.clone()),
                references: customer.into_iter().chain([root]).collect(),
            }
        })
    }
}

impl Sink for SmtpSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Effect::Mail(mail) = &item.effect else {
            return Err(DeliveryError::Permanent("not a mail".into()));
        };
        let msg = self.message(item, mail)?;
        match self.transport.send(msg).await {
            Ok(_) => {
                if self.warned.swap(false, Ordering::Relaxed) {
                    info!(server = %self.server, "the mail server answers again; sending the queued mail");
                }
                if let Some(p) = &self.printer {
                    p.lock().await.effect(&item.effect);
                }
                if let Err(e) = self
                    .bot
                    .submit(Event::MailSent { mail: mail.clone() })
                    .await
                {
                    warn!(ticket = %mail.ticket, error = %e, "a mail was sent but not recorded on its ticket");
                }
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!(
                "the mail server refused the mail for good: {e}"
            ))),
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        server = %self.server,
                        error = %e,
                        "cannot send mail; customer mails stay queued and are retried"
                    );
                }
                Err(DeliveryError::Transient(e.to_string()))
            }
        }
    }
}
