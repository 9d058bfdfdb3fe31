//! The engine's rules for customer mail in: a new mail opens a support
//! ticket for triage (acknowledged by a reply in the same thread); a reply
//! to any of the ticket's mails lands on that ticket, reopening it when it
//! was closed recently; automatic mail (auto-replies, bounces, lists) and
//! the bot's own mail open nothing and get no answer; each mail is taken in
//! once (its key recorded in the same transaction as what it changed).
//! Also the threading words both sides agree on: the Message-IDs of the
//! bot's customer mail and the `+OPS-12` reply address. Part of the engine:
//! pure.

use crate::domain::rich::one_line;
use crate::domain::{Actor, Customer, EntryKind, Source, Ticket, TicketId, TicketState, UserName};
use crate::engine::context::{Cx, NewTicket, Out};
use crate::engine::effect::{Accepted, Decision, Effect, Mail, MailPurpose, Write};
use crate::engine::messages::{self, fill, subject_line};
use crate::engine::tickets::Action;
use crate::error::EngineError;

/// A mail read from the support inbox, as the IMAP adapter parsed it
/// (headers decoded, the text part or the HTML made text). Nothing here is
/// trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundMail {
    /// What the mail is known by for "taken in once": its Message-ID, or
    /// a digest of the raw mail when it has none.
    pub key: String,
    /// `Message-ID`, without the angle brackets.
    pub message_id: Option<String>,
    /// The sender's address (`From`), lower case.
    pub from: String,
    /// The recipients' addresses (`To`, `Cc`, `Delivered-To`,
    /// `X-Original-To`), lower case; the adapter keeps at most a few dozen.
    pub recipients: Vec<String>,
    /// `In-Reply-To` and `References`, without angle brackets.
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    /// The text part, or the HTML part made text.
    pub text: String,
    /// Attached files, noted (never kept).
    pub attachments: Vec<MailFile>,
    /// The headers that mark automatic mail, as written: `Auto-Submitted`,
    /// `Precedence`, `X-Auto-Response-Suppress`, `List-Id`, …
    pub auto_headers: Vec<(String, String)>,
    /// The envelope sender (`Return-Path`); `Some("")` for `<>`, a bounce.
    pub return_path: Option<String>,
    /// The top-level content type, such as `multipart/report`.
    pub content_type: String,
    /// The body was not read: the mail had this many bytes, more than
    /// `[support.inbox] max_mail_bytes`.
    pub unread_size: Option<u64>,
}

/// A file attached to a mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailFile {
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// The Message-ID (without angle brackets) of the acknowledgement of
/// ticket `id`: the root of the ticket's mail thread.
pub fn thread_root(id: &TicketId, domain: &str) -> String {
    format!("opsbot.{id}@{domain}")
}

/// The Message-ID of any later mail on ticket `id` (`seq`: its outbox
/// entry's, stable across a resend).
pub fn later_message_id(id: &TicketId, seq: u64, domain: &str) -> String {
    format!("opsbot.{id}.{seq}@{domain}")
}

/// The sender address with the ticket as a `+tag` (`support+OPS-12@…`),
/// when the address allows one (a plain `local@domain`, without a tag of
/// its own).
pub fn tagged_address(address: &str, id: &TicketId) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    (plain(local) && plain(domain)).then(|| format!("{local}+{id}@{domain}"))
}

/// The domain of an address (`support@example.com` → `example.com`).
pub fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("opsbot.invalid", |(_, d)| d)
}

/// The address inside a mailbox as written in the config
/// (`Support <support@example.com>` → `support@example.com`), lower case.
pub fn address_of(mailbox: &str) -> String {
    let m = mailbox.trim();
    let inner = match (m.rfind('<'), m.rfind('>')) {
        (Some(a), Some(b)) if a < b => &m[a + 1..b],
        _ => m,
    };
    inner.trim().to_ascii_lowercase()
}

/// The ticket a Message-ID of the bot's names (`opsbot.OPS-12@…`,
/// `opsbot.OPS-12.7@…`).
fn ticket_of_reference(r: &str, prefix: &str) -> Option<TicketId> {
    let rest = r.trim().trim_matches(['<', '>']).strip_prefix("opsbot.")?;
    let (local, _domain) = rest.split_once('@')?;
    let id = local.split('.').next()?;
    TicketId::parse(id, prefix).ok()
}

/// The ticket a `+tag` of the bot's own address names.
fn ticket_of_tag(recipient: &str, own: &str, prefix: &str) -> Option<TicketId> {
    let (own_local, own_domain) = own.rsplit_once('@')?;
    let (local, domain) = recipient.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(own_domain) {
        return None;
    }
    let tag = local.strip_prefix(own_local)?.strip_prefix('+')?;
    TicketId::parse(tag, prefix).ok()
}

/// Why a mail is automatic (an auto-reply, a bounce, a list's), if it is:
/// such mail opens nothing and is never answered, so that two robots never
/// write to each other for ever.
pub fn automatic(mail: &InboundMail) -> Option<String> {
    for (name, value) in &mail.auto_headers {
        let v = value.trim().to_ascii_lowercase();
        let auto = match name.to_ascii_lowercase().as_str() {
            "auto-submitted" => !v.is_empty() && v != "no",
            "precedence" => matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"),
            "x-auto-response-suppress" => !v.is_empty(),
            "list-id" | "list-unsubscribe" | "x-autoreply" | "x-autorespond" => true,
            _ => false,
        };
        if auto {
            return Some(format!("{name}: {}", one_line(value, 60)));
        }
    }
    if mail.return_path.as_deref().is_some_and(|r| {
        let r = r.trim().trim_matches(['<', '>']);
        r.is_empty()
    }) {
        return Some("an empty envelope sender (a bounce)".into());
    }
    let local = mail
        .from
        .rsplit_once('@')
        .map_or(mail.from.as_str(), |(l, _)| l);
    if ["mailer-daemon", "postmaster", "noreply", "no-reply"]
        .iter()
        .any(|d| local.eq_ignore_ascii_case(d))
    {
        return Some(format!("sent by {local}"));
    }
    if mail
        .content_type
        .to_ascii_lowercase()
        .starts_with("multipart/report")
    {
        return Some("a delivery report".into());
    }
    None
}

/// What the engine made of a mail, for the adapter's log.
fn taken(id: TicketId) -> Option<Accepted> {
    Some(Accepted {
        accepted: 1,
        tickets: vec![id],
    })
}

/// A mail from the support inbox.
pub(crate) fn inbound_mail(cx: &Cx<'_>, mail: &InboundMail) -> Result<Decision, EngineError> {
    let key = format!("mail:{}", mail.key);
    if let Some(id) = cx.view.idempotent(&key)? {
        // Taken in before (a restart before the mailbox heard of it).
        return Ok(Decision {
            reply: None,
            accepted: taken(id),
            writes: Vec::new(),
        });
    }
    let own = address_of(&cx.config.smtp.from);
    if automatic(mail).is_some() || mail.from.is_empty() || mail.from.eq_ignore_ascii_case(&own) {
        // Nothing opened, nothing answered.
        return Ok(Decision::default());
    }
    let prefix = &cx.config.tickets.prefix;
    let mut target = None;
    for r in mail.in_reply_to.iter().chain(mail.references.iter()) {
        if let Some(id) = ticket_of_reference(r, prefix) {
            target = Some(id);
            break;
        }
        if let Some(id) = cx.view.idempotent(&format!("mail:{r}"))? {
            target = Some(id);
            break;
        }
    }
    if target.is_none() {
        target = mail
            .recipients
            .iter()
            .find_map(|r| ticket_of_tag(r, &own, prefix));
    }
    // Only a customer's ticket takes mail: a tag or a reference naming an
    // internal ticket (an alert's) opens a new one instead.
    let existing = match target {
        Some(id) => cx.view.ticket(&id)?.filter(|t| t.customer.is_some()),
        None => None,
    };
    match existing {
        Some(t) => reply(cx, t, mail, key),
        None => open(cx, mail, key),
    }
}

/// The words of a mail as the ticket keeps them.
fn words(cx: &Cx<'_>, mail: &InboundMail) -> String {
    if let Some(size) = mail.unread_size {
        return messages::mail_unread(size);
    }
    let text = mail.text.trim();
    if text.is_empty() {
        return messages::mail_without_text(!mail.attachments.is_empty());
    }
    let max = cx.config.support.max_message;
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        return format!("{}\n{}", cut.trim_end(), messages::mail_cut(max));
    }
    text.to_string()
}

fn support_actor() -> Actor {
    Actor::new(UserName::system("support"), Source::Support)
}

fn customer_actor() -> Actor {
    Actor::new(UserName::system("customer"), Source::Support)
}

/// Notes the attachments on the timeline and in the thread.
fn note_files(cx: &Cx<'_>, out: &mut Out, t: &mut Ticket, actor: &Actor, files: &[MailFile]) {
    if files.is_empty() {
        return;
    }
    let listed: Vec<(String, String, u64)> = files
        .iter()
        .take(50)
        .map(|f| {
            (
                one_line(&f.name, 120),
                one_line(&f.content_type, 80),
                f.size,
            )
        })
        .collect();
    let body = messages::mail_attachments(&listed, files.len());
    let st = t.state;
    let e = cx.entry(t, actor, EntryKind::Commented, st, st, &body.to_plain());
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.thread(cx.ops(), &t.id, body);
}

/// A new mail: a support ticket for triage, acknowledged in its thread.
fn open(cx: &Cx<'_>, mail: &InboundMail, key: String) -> Result<Decision, EngineError> {
    let support = &cx.config.support;
    let mut subject = one_line(&mail.subject, support.max_subject);
    if subject.is_empty() {
        subject = messages::mail_no_subject();
    }
    let text = words(cx, mail);
    let actor = support_actor();
    let num = cx.view.last_ticket_number()? + 1;
    let mut out = Out::new();
    let mut t = cx.open_ticket(
        &mut out,
        NewTicket {
            num,
            actor: &actor,
            channel: cx.ops(),
            title: &subject,
            description: Some(&text),
            priority: support.priority,
            team: None,
            headline: "New support mail ",
        },
    );
    let from = one_line(&mail.from, 254);
    t.customer = Some(Customer {
        id: from.clone(),
        email: from,
    });
    note_files(cx, &mut out, &mut t, &actor, &mail.attachments);
    let id = t.id.clone();
    let tpl = &support.mail;
    out.writes.push(Write::Effect(Effect::Mail(Mail {
        to: mail.from.clone(),
        subject: subject_line(&fill(&tpl.ack_subject, &t, &text, "")),
        body: fill(&tpl.ack_body, &t, &text, ""),
        ticket: id.clone(),
        purpose: MailPurpose::Acknowledgement,
    })));
    if let Some(m) = &mail.message_id {
        // The acknowledgement answers this mail.
        out.writes.push(Write::MailThread(id.clone(), m.clone()));
    }
    out.writes.push(Write::Idempotency(key, id.clone()));
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: None,
        accepted: taken(id),
        writes: out.writes,
    })
}

/// A reply to one of a ticket's mails: on its timeline and in its thread;
/// a closed ticket is reopened when its customer writes within the window.
fn reply(
    cx: &Cx<'_>,
    mut t: Ticket,
    mail: &InboundMail,
    key: String,
) -> Result<Decision, EngineError> {
    let mut out = Out::new();
    let from = one_line(&mail.from, 254);
    let of_customer = t
        .customer
        .as_ref()
        .is_some_and(|c| c.email.eq_ignore_ascii_case(&mail.from));
    let window = cx
        .config
        .support
        .inbox
        .as_ref()
        .map_or(chrono::Duration::zero(), |i| i.reopen_within);
    let mut after = messages::MailReplyState::Open;
    if t.state == TicketState::Closed {
        // The window runs from the resolution the closing followed (kept
        // per closing; the ticket's last update moves with every entry).
        let resolved = t
            .sla
            .as_ref()
            .and_then(|s| s.resolved_at)
            .unwrap_or(t.updated_at);
        let recent = cx.now.signed_duration_since(resolved) <= window;
        if of_customer && recent && window > chrono::Duration::zero() {
            let reason = messages::mail_reopen_reason();
            t = cx
                .system_move(&mut out, &t, &customer_actor(), Action::Reopen { reason })
                .map_err(EngineError::from)?;
            after = messages::MailReplyState::Reopened;
        } else {
            after = messages::MailReplyState::StaysClosed;
        }
    }
    let text = words(cx, mail);
    // Only the customer's own mail is theirs on their page; another
    // writer's stays on the team's record.
    let actor = if of_customer {
        customer_actor()
    } else {
        Actor::new(UserName::system("mail"), Source::System)
    };
    let st = t.state;
    let e = cx.entry(
        &mut t,
        &actor,
        EntryKind::Commented,
        st,
        st,
        &messages::mail_reply_entry(&from, &text),
    );
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.thread(
        cx.ops(),
        &t.id,
        messages::customer_mail_story(&from, &text, of_customer, after),
    );
    note_files(cx, &mut out, &mut t, &actor, &mail.attachments);
    let id = t.id.clone();
    out.writes.push(Write::Idempotency(key, id.clone()));
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: None,
        accepted: taken(id),
        writes: out.writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bots_message_ids_and_tags_name_their_ticket() {
        let id = TicketId::new("OPS", 12);
        let root = thread_root(&id, "example.com");
        assert_eq!(root, "opsbot.OPS-12@example.com");
        assert_eq!(ticket_of_reference(&root, "OPS"), Some(id.clone()));
        let later = later_message_id(&id, 7, "example.com");
        assert_eq!(
            ticket_of_reference(&format!("<{later}>"), "OPS"),
            Some(id.clone())
        );
        assert_eq!(ticket_of_reference("CAF1234@mail.gmail.com", "OPS"), None);
        assert_eq!(ticket_of_reference("opsbot.nonsense@x", "OPS"), None);

        assert_eq!(
            tagged_address("support@example.com", &id).as_deref(),
            Some("support+OPS-12@example.com")
        );
        assert_eq!(tagged_address("support+x@example.com", &id), None);
        assert_eq!(tagged_address("\"odd one\"@example.com", &id), None);
        let own = "support@example.com";
        assert_eq!(
            ticket_of_tag("support+ops-12@example.com", own, "OPS"),
            Some(id)
        );
        assert_eq!(ticket_of_tag("support+OPS-12@evil.com", own, "OPS"), None);
        assert_eq!(
            ticket_of_tag("supportx+OPS-12@example.com", own, "OPS"),
            None
        );
        assert_eq!(ticket_of_tag("support@example.com", own, "OPS"), None);
        assert_eq!(
            address_of("Support <Support@Example.com>"),
            "support@example.com"
        );
        assert_eq!(address_of("support@example.com"), "support@example.com");
    }

    #[test]
    fn automatic_mail_is_known_by_its_headers_and_sender() {
        let base = InboundMail {
            from: "carol@example.com".into(),
            return_path: Some("carol@example.com".into()),
            content_type: "text/plain".into(),
            ..InboundMail::default()
        };
        assert_eq!(automatic(&base), None);
        let with = |name: &str, value: &str| InboundMail {
            auto_headers: vec![(name.into(), value.into())],
            ..base.clone()
        };
        assert_eq!(automatic(&with("Auto-Submitted", "no")), None);
        assert!(automatic(&with("Auto-Submitted", "auto-replied")).is_some());
        assert!(automatic(&with("Precedence", "Bulk")).is_some());
        assert!(automatic(&with("Precedence", "list")).is_some());
        assert_eq!(automatic(&with("Precedence", "first-class")), None);
        assert!(automatic(&with("X-Auto-Response-Suppress", "All")).is_some());
        let bounce = InboundMail {
            return_path: Some("<>".into()),
            ..base.clone()
        };
        assert!(automatic(&bounce).is_some());
        let daemon = InboundMail {
            from: "MAILER-DAEMON@mx.example.com".into(),
            ..base.clone()
        };
        assert!(automatic(&daemon).is_some());
        let report = InboundMail {
            content_type: "multipart/report; report-type=delivery-status".into(),
            ..base
        };
        assert!(automatic(&report).is_some());
    }
}
