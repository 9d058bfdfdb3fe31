//! The engine's customer-support rules: a request from the company app opens
//! a ticket for triage and acknowledges it by mail; operators can write to
//! the customer; closing the ticket tells the customer; every mail sent goes
//! on the ticket's record. Part of the engine: pure.

use crate::domain::rich::one_line;
use crate::domain::{Actor, Customer, EntryKind, Source, TicketId, TicketState, UserName};
use crate::engine::context::{Cx, NewTicket, Out};
use crate::engine::effect::{Accepted, Decision, Effect, Mail, MailPurpose, Reply, Write};
use crate::engine::messages::{self, fill, subject_line};
use crate::error::{EngineError, UserError};

pub(crate) fn support_request(
    cx: &Cx<'_>,
    customer: &Customer,
    subject: &str,
    message: &str,
    idempotency_key: Option<&str>,
) -> Result<Decision, EngineError> {
    if let Some(key) = idempotency_key {
        if let Some(id) = cx.view.idempotent(key)? {
            // A retry: the same ticket, nothing new.
            return Ok(Decision {
                reply: None,
                accepted: Some(Accepted {
                    accepted: 1,
                    tickets: vec![id],
                }),
                writes: Vec::new(),
            });
        }
    }
    let support = &cx.config.support;
    let subject = one_line(subject, support.max_subject);
    if subject.is_empty() {
        return Err(UserError::new("`subject` must not be empty").into());
    }
    if message.trim().is_empty() {
        return Err(UserError::new("`message` must not be empty").into());
    }
    let actor = Actor::new(UserName::system("support"), Source::Support);
    let num = cx.view.last_ticket_number()? + 1;
    let mut out = Out::new();
    let mut t = cx.open_ticket(
        &mut out,
        NewTicket {
            num,
            actor: &actor,
            channel: cx.ops(),
            title: &subject,
            description: Some(message),
            priority: support.priority,
            team: None,
            headline: "New support request ",
        },
    );
    t.customer = Some(customer.clone());
    let id = t.id.clone();
    let tpl = &support.mail;
    out.writes.push(Write::Effect(Effect::Mail(Mail {
        to: customer.email.clone(),
        subject: subject_line(&fill(&tpl.ack_subject, &t, message, "")),
        body: fill(&tpl.ack_body, &t, message, ""),
        ticket: id.clone(),
        purpose: MailPurpose::Acknowledgement,
    })));
    if let Some(key) = idempotency_key {
        out.writes
            .push(Write::Idempotency(key.to_string(), id.clone()));
    }
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: None,
        accepted: Some(Accepted {
            accepted: 1,
            tickets: vec![id],
        }),
        writes: out.writes,
    })
}

/// `/ticket comment … customer:true`: on the record, and mailed.
pub(crate) fn comment_to_customer(
    cx: &Cx<'_>,
    actor: &Actor,
    id: &TicketId,
    text: &str,
) -> Result<Decision, EngineError> {
    let org = &cx.org;
    if !org.is_operator(&actor.name) {
        return Err(UserError::new(format!(
            "only operators ({}) may write to a customer",
            org.operators
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    let mut t = cx.load(id)?;
    let Some(c) = t.customer.clone() else {
        return Err(UserError::new(format!(
            "{id} has no customer to write to: only tickets from the support intake have one; drop customer:true"
        ))
        .into());
    };
    if t.state == TicketState::Closed {
        return Err(UserError::new(format!(
            "{id} is closed: the customer was told; reopen it to write again"
        ))
        .into());
    }
    let mut out = Out::new();
    let st = t.state;
    let e = cx.entry(&mut t, actor, EntryKind::Commented, st, st, text);
    out.writes
        .push(crate::engine::status::show_to_customer(cx, &t.id, e.seq)?);
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.thread(
        cx.ops(),
        &t.id,
        messages::customer_comment_story(&actor.name, text),
    );
    let tpl = &cx.config.support.mail;
    out.writes.push(Write::Effect(Effect::Mail(Mail {
        to: c.email,
        subject: subject_line(&fill(&tpl.update_subject, &t, "", text)),
        body: fill(&tpl.update_body, &t, "", text),
        ticket: t.id.clone(),
        purpose: MailPurpose::Update,
    })));
    t.updated_at = cx.now;
    let reply = messages::customer_comment_reply(id);
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}

/// Records a mail the server took on its ticket's timeline.
pub(crate) fn mail_sent(cx: &Cx<'_>, mail: &Mail) -> Result<Decision, EngineError> {
    let Some(mut t) = cx.view.ticket(&mail.ticket)? else {
        return Ok(Decision::default());
    };
    let actor = Actor::new(UserName::system("support"), Source::Support);
    let text = match mail.purpose {
        crate::engine::effect::MailPurpose::Page => {
            format!("mailed the page to {}: {}", mail.to, mail.subject)
        }
        _ => format!("mailed the customer ({}): {}", mail.purpose, mail.subject),
    };
    let st = t.state;
    let e = cx.entry(&mut t, &actor, EntryKind::Mailed, st, st, &text);
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: vec![Write::Timeline(t.id.clone(), e), Write::Ticket(t)],
    })
}
