//! Pages that reach a person (issue 15): an escalation step that pages, or
//! `/page user:… id:…`, sends the ticket's card to the person directly (on
//! Discord a direct message with an Acknowledge button, which takes the
//! ticket); a page that cannot reach them (direct messages closed) is said
//! once in the ticket's team channel, and the chain goes on as before.

use crate::domain::{Actor, EntryKind, Ticket, TicketId, TicketState, UserName};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::{Card, Decision, Effect, Mail, MailPurpose, Page, Reply, Write};
use crate::engine::messages;
use crate::error::{EngineError, UserError};

/// Queues a page of `t` to `to`; `why` says who or what pages.
pub(crate) fn page(cx: &Cx<'_>, out: &mut Out, t: &Ticket, to: &UserName, why: &str) {
    out.writes.push(Write::Effect(Effect::Page(Page {
        to: to.clone(),
        body: messages::page(t, why),
        card: Card::of(t, cx.ops()),
    })));
    // And by mail, where the person has an address in bot.toml.
    if let Some(email) = cx.config.people.get(to).and_then(|p| p.email.as_ref()) {
        let (subject, body) = messages::page_mail(t, why);
        out.writes.push(Write::Effect(Effect::Mail(Mail {
            to: email.clone(),
            subject,
            body,
            ticket: t.id.clone(),
            purpose: MailPurpose::Page,
        })));
    }
}

/// `/page user:… id:…`.
pub(crate) fn page_command(
    cx: &Cx<'_>,
    actor: &Actor,
    to: &UserName,
    id: &TicketId,
) -> Result<Decision, EngineError> {
    let spec = crate::commands::CommandName::Page.spec();
    if !spec.who.admits(&actor.name, cx.org) {
        return Err(UserError::new(format!(
            "only {} may run /{}",
            spec.who.describe(),
            spec.full_name()
        ))
        .into());
    }
    let people = cx.org.people();
    if !people.contains(to) {
        let names: Vec<&str> = people.iter().map(|u| u.as_str()).collect();
        return Err(UserError::new(format!(
            "`{to}` is nobody bot.toml names; page one of: {}",
            names.join(", ")
        ))
        .into());
    }
    let mut t = cx.load(id)?;
    if matches!(t.state, TicketState::Closed | TicketState::Resolved) {
        return Err(UserError::new(format!(
            "{id} is {}: nobody needs paging for it (reopen it first if the problem is back)",
            t.state
        ))
        .into());
    }
    let mut out = Out::new();
    let why = format!("{} pages you", actor.name);
    page(cx, &mut out, &t, to, &why);
    let st = t.state;
    let text = format!("paged {to}");
    let e = cx.entry(&mut t, actor, EntryKind::Escalated, st, st, &text);
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.writes.push(Write::Ticket(t.clone()));
    Ok(Decision {
        reply: Some(Reply::private(messages::paged_reply(to, &t.id))),
        accepted: None,
        writes: out.writes,
    })
}

/// A page did not reach `to`: on the ticket's record, and said once per
/// person in the ticket's team channel (or the operations channel).
pub(crate) fn page_refused(
    cx: &Cx<'_>,
    to: &UserName,
    id: &TicketId,
    why: &str,
) -> Result<Decision, EngineError> {
    let mut out = Out::new();
    if let Some(mut t) = cx.view.ticket(id)? {
        let st = t.state;
        let actor = crate::engine::context::sla_actor();
        let text = format!("the page to {to} did not reach them: {why}");
        let e = cx.entry(&mut t, &actor, EntryKind::Escalated, st, st, &text);
        out.writes.push(Write::Timeline(t.id.clone(), e));
        let key = format!("page-refused:{to}");
        if cx.view.marker(&key)?.is_none() {
            out.writes.push(Write::Marker(key, cx.now.timestamp()));
            let channel = t
                .team
                .as_ref()
                .and_then(|n| cx.org.team(n))
                .map(|tm| tm.channel.clone())
                .unwrap_or_else(|| cx.ops().clone());
            out.post(&channel, Some(&t.id), messages::page_refused(to, &t, why));
        }
        out.writes.push(Write::Ticket(t));
    }
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
