//! The public side's rules: `/status set`, `/ticket public`, `/ticket
//! revoke-link`; the customer's page link in every mail to a customer; and
//! what the public pages show (the status page, the customer's own ticket),
//! as pure functions of the records that the HTTP adapter renders. Part of
//! the engine: pure.
//!
//! A customer's link carries a token: the HMAC-SHA256, under the store's
//! link key (32 random bytes made once per store), of the ticket's number
//! and its link generation. Revoking the link counts the generation up, so
//! the old token no longer matches and the next mail carries a new one.

use hmac::{Hmac, Mac};

use crate::config::Config;
use crate::domain::rich::one_line;
use crate::domain::status::{
    PublicIncident, PublicUpdate, PublicWrite, ServiceState, ServiceStatus, StatusBoard,
    StatusChange, HISTORY_DAYS, MAX_LOG,
};
use crate::domain::{
    Actor, EntryKind, Source, Ticket, TicketId, TicketState, TimelineEntry, Timestamp,
};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::{Decision, Effect, Reply, Write};
use crate::engine::messages;
use crate::error::{EngineError, UserError};

/// The token of a ticket's customer link: 256 bits, base64url.
pub fn link_token(key: &[u8], id: &TicketId, generation: u64) -> Option<String> {
    use base64::Engine as _;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(b"opsbot customer page\0");
    mac.update(&id.num().to_be_bytes());
    mac.update(&generation.to_be_bytes());
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The address of a ticket's customer page.
pub fn link_url(base: &str, id: &TicketId, token: &str) -> String {
    format!("{base}/support/tickets/{id}?token={token}")
}

fn operators_only(cx: &Cx<'_>, actor: &Actor, what: &str) -> Result<(), EngineError> {
    if cx.org.is_operator(&actor.name) {
        return Ok(());
    }
    Err(UserError::new(format!(
        "only operators ({}) may {what}",
        cx.org
            .operators
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .into())
}

/// `/status set service:… state:… [message:…]`.
pub(crate) fn status_set(
    cx: &Cx<'_>,
    actor: &Actor,
    service: &str,
    state: ServiceState,
    message: Option<&str>,
) -> Result<Decision, EngineError> {
    operators_only(cx, actor, "set the status page")?;
    let service = service.trim();
    let listed = &cx.config.status.components;
    if !cx.config.status.lists(service) {
        let valid = if listed.is_empty() {
            "the status page lists nothing: add [services] or [status] components to bot.toml"
                .to_string()
        } else {
            format!("the status page lists {}", listed.join(", "))
        };
        return Err(UserError::new(format!(
            "there is no service or component `{}`; {valid}",
            crate::domain::rich::clip_plain(service, 40)
        ))
        .into());
    }
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    let mut board = cx.view.status_board()?;
    let since = match board.services.get(service) {
        Some(s) if s.state == state => s.since,
        _ => cx.now,
    };
    board.services.insert(
        service.to_string(),
        ServiceStatus {
            state,
            message: message.map(str::to_string),
            since,
        },
    );
    board.log.push(StatusChange {
        at: cx.now,
        service: service.to_string(),
        state,
        message: message.map(str::to_string),
    });
    prune(&mut board, cx.now);
    let mut out = Out::new();
    out.post(
        cx.ops(),
        None,
        messages::status_set(&actor.name, service, state, message),
    );
    out.writes.push(Write::Public(PublicWrite::Board(board)));
    Ok(Decision {
        reply: Some(Reply::private(messages::status_set_reply(service, state))),
        accepted: None,
        writes: out.writes,
    })
}

/// Keeps the board's log to what the page shows: the last
/// [`HISTORY_DAYS`], at most [`MAX_LOG`] changes.
fn prune(board: &mut StatusBoard, now: Timestamp) {
    if let Some(from) = now.checked_sub_signed(chrono::Duration::days(HISTORY_DAYS)) {
        board.log.retain(|c| c.at >= from);
    }
    let extra = board.log.len().saturating_sub(MAX_LOG);
    board.log.drain(..extra);
}

/// `/ticket public id:… text:… [title:…]`: the ticket becomes a public
/// incident (under `title`, else its own title), with this public update.
/// A customer's request never does: its words are the customer's.
pub(crate) fn ticket_public(
    cx: &Cx<'_>,
    actor: &Actor,
    id: &TicketId,
    text: &str,
    title: Option<&str>,
) -> Result<Decision, EngineError> {
    operators_only(cx, actor, "post to the status page")?;
    let mut t = cx.load(id)?;
    if t.customer.is_some() {
        return Err(UserError::new(format!(
            "{id} is a customer's request: its words are theirs, not the public's; open an incident ticket (/ticket open) and make that one public"
        ))
        .into());
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(UserError::new("`text` must not be empty").into());
    }
    let existing = cx.view.incident(id)?;
    let first = existing.is_none();
    let mut incident = existing.unwrap_or_else(|| PublicIncident {
        ticket: id.clone(),
        title: one_line(&t.title, crate::domain::MAX_TITLE),
        published_at: cx.now,
        updates: Vec::new(),
    });
    if let Some(title) = title.map(str::trim).filter(|s| !s.is_empty()) {
        incident.title = one_line(title, crate::domain::MAX_TITLE);
    }
    incident.updates.push(PublicUpdate {
        at: cx.now,
        text: text.to_string(),
    });
    let mut out = Out::new();
    let st = t.state;
    let e = cx.entry(
        &mut t,
        actor,
        EntryKind::Commented,
        st,
        st,
        &format!("public update on the status page: {text}"),
    );
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.thread(
        cx.ops(),
        &t.id,
        messages::ticket_public_story(&actor.name, text, first),
    );
    out.writes
        .push(Write::Public(PublicWrite::Incident(incident)));
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: Some(Reply::private(messages::ticket_public_reply(id, first))),
        accepted: None,
        writes: out.writes,
    })
}

/// `/ticket revoke-link id:…`: the customer's old link stops working.
pub(crate) fn revoke_link(
    cx: &Cx<'_>,
    actor: &Actor,
    id: &TicketId,
) -> Result<Decision, EngineError> {
    operators_only(cx, actor, "revoke a customer's link")?;
    let mut t = cx.load(id)?;
    if t.customer.is_none() {
        return Err(UserError::new(format!(
            "{id} has no customer, so no customer page: only tickets from customers have one"
        ))
        .into());
    }
    let generation = cx.view.link_generation(id)?.saturating_add(1);
    let mut out = Out::new();
    let st = t.state;
    let e = cx.entry(
        &mut t,
        actor,
        EntryKind::Commented,
        st,
        st,
        "revoked the customer's page link",
    );
    out.writes.push(Write::Timeline(t.id.clone(), e));
    out.writes.push(Write::Public(PublicWrite::LinkGeneration(
        id.clone(),
        generation,
    )));
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: Some(Reply::private(messages::link_revoked_reply(id))),
        accepted: None,
        writes: out.writes,
    })
}

/// The writes that make a team's entry customer-visible (a reply mailed to
/// the customer), for the customer's page.
pub(crate) fn show_to_customer(cx: &Cx<'_>, id: &TicketId, seq: u32) -> Result<Write, EngineError> {
    let mut seqs = cx.view.customer_visible(id)?;
    if !seqs.contains(&seq) {
        seqs.push(seq);
    }
    Ok(Write::Public(PublicWrite::CustomerVisible(
        id.clone(),
        seqs,
    )))
}

/// Ends every mail to a customer in this decision with the link to their
/// ticket's page, when the bot has a public address (`[http] public_url`).
pub(crate) fn link_mails(cx: &Cx<'_>, writes: &mut [Write]) -> Result<(), EngineError> {
    let Some(base) = cx.config.http.public_url.as_deref() else {
        return Ok(());
    };
    if !writes
        .iter()
        .any(|w| matches!(w, Write::Effect(Effect::Mail(_))))
    {
        return Ok(());
    }
    let Some(key) = cx.view.link_key()? else {
        return Ok(());
    };
    // A link revoked in this same decision: the new generation.
    let revoked: Vec<(TicketId, u64)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Public(PublicWrite::LinkGeneration(id, g)) => Some((id.clone(), *g)),
            _ => None,
        })
        .collect();
    for w in writes.iter_mut() {
        let Write::Effect(Effect::Mail(m)) = w else {
            continue;
        };
        let generation = match revoked.iter().rev().find(|(id, _)| *id == m.ticket) {
            Some((_, g)) => *g,
            None => cx.view.link_generation(&m.ticket)?,
        };
        if let Some(token) = link_token(&key, &m.ticket, generation) {
            m.body.push_str(&messages::customer_page_footer(&link_url(
                base, &m.ticket, &token,
            )));
        }
    }
    Ok(())
}

/// What the customer's page shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomerPage {
    pub id: TicketId,
    pub title: String,
    pub state: TicketState,
    /// The state in the customer's words.
    pub state_words: &'static str,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// Oldest first.
    pub entries: Vec<CustomerEntry>,
    /// Once closed: what was done.
    pub resolution: Option<String>,
}

/// One line of the customer's timeline.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomerEntry {
    pub at: Timestamp,
    /// The customer wrote it (else the team did).
    pub from_customer: bool,
    pub text: String,
}

/// The customer's view of their ticket: their own messages, the team's
/// replies mailed to them (`visible`), reopening and closing, and the
/// resolution once closed. Never an internal comment, a team, a person's
/// name or anything of another ticket.
pub fn customer_page(t: &Ticket, timeline: &[TimelineEntry], visible: &[u32]) -> CustomerPage {
    let mut entries = Vec::new();
    for e in timeline {
        let line = match e.kind {
            EntryKind::Opened => Some((
                true,
                t.description.clone().unwrap_or_else(|| t.title.clone()),
            )),
            // The customer's own later messages (mail in) come from the
            // support source.
            EntryKind::Commented if e.source == Source::Support => Some((true, e.text.clone())),
            EntryKind::Commented if visible.contains(&e.seq) => Some((false, e.text.clone())),
            EntryKind::Reopened => Some((false, "Your request was reopened.".to_string())),
            EntryKind::Verified if e.to == Some(TicketState::Closed) => {
                Some((false, "Your request was closed.".to_string()))
            }
            _ => None,
        };
        if let Some((from_customer, text)) = line {
            entries.push(CustomerEntry {
                at: e.at,
                from_customer,
                text,
            });
        }
    }
    CustomerPage {
        id: t.id.clone(),
        title: t.title.clone(),
        state: t.state,
        state_words: messages::customer_state(t.state),
        opened_at: t.created_at,
        updated_at: t.updated_at,
        entries,
        resolution: (t.state == TicketState::Closed)
            .then(|| t.resolution.clone())
            .flatten(),
    }
}

/// What the status page shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StatusPage {
    pub title: String,
    /// The worst state of any service or component.
    pub overall: ServiceState,
    pub components: Vec<ComponentView>,
    /// Incidents not resolved yet, newest first.
    pub open_incidents: Vec<IncidentView>,
    /// Incidents resolved in the last [`HISTORY_DAYS`], newest first.
    pub past_incidents: Vec<IncidentView>,
    /// The state changes of the last [`HISTORY_DAYS`], newest first.
    pub changes: Vec<StatusChange>,
    pub updated_at: Timestamp,
}

/// One service or component on the status page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ComponentView {
    pub name: String,
    pub state: ServiceState,
    pub message: Option<String>,
    pub since: Option<Timestamp>,
}

/// One public incident on the status page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IncidentView {
    pub id: TicketId,
    pub title: String,
    pub published_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Newest first; the resolution (when resolved) is the first.
    pub updates: Vec<PublicUpdate>,
}

/// How bad a state is, for the page's overall state.
fn severity(s: ServiceState) -> u8 {
    match s {
        ServiceState::Operational => 0,
        ServiceState::Maintenance => 1,
        ServiceState::Degraded => 2,
        ServiceState::PartialOutage => 3,
        ServiceState::MajorOutage => 4,
    }
}

/// The status page from the records. `in_maintenance` names the services
/// and components a maintenance window covers now: they show as
/// maintenance unless something worse was set. (The maintenance windows
/// are built apart from the status page; until they fill this, it is
/// empty and `/status set state:maintenance` is the way to show one.)
pub fn status_page(
    config: &Config,
    board: &StatusBoard,
    incidents: &[(PublicIncident, Option<Ticket>)],
    in_maintenance: &[String],
    now: Timestamp,
) -> StatusPage {
    let components: Vec<ComponentView> = config
        .status
        .components
        .iter()
        .map(|name| {
            let set = board.services.get(name);
            let mut state = set.map(|s| s.state).unwrap_or_default();
            if in_maintenance.contains(name)
                && severity(state) < severity(ServiceState::Maintenance)
            {
                state = ServiceState::Maintenance;
            }
            ComponentView {
                name: name.clone(),
                state,
                message: set.and_then(|s| s.message.clone()),
                since: set.map(|s| s.since),
            }
        })
        .collect();
    let overall = components
        .iter()
        .map(|c| c.state)
        .max_by_key(|s| severity(*s))
        .unwrap_or_default();
    let from = now.checked_sub_signed(chrono::Duration::days(HISTORY_DAYS));
    let recent = |at: Timestamp| from.is_none_or(|f| at >= f);
    let mut open_incidents = Vec::new();
    let mut past_incidents = Vec::new();
    for (i, t) in incidents {
        let resolved_at = t.as_ref().and_then(|t| {
            matches!(
                t.state,
                TicketState::Resolved | TicketState::Qa | TicketState::Closed
            )
            .then(|| {
                t.sla
                    .as_ref()
                    .and_then(|s| s.resolved_at)
                    .unwrap_or(t.updated_at)
            })
        });
        let mut updates: Vec<PublicUpdate> = i.updates.iter().rev().cloned().collect();
        if let (Some(at), Some(t)) = (resolved_at, t.as_ref()) {
            let text = match t.resolution.as_deref().map(str::trim) {
                Some(note) if !note.is_empty() => format!("Resolved: {note}"),
                _ => "Resolved.".to_string(),
            };
            updates.insert(0, PublicUpdate { at, text });
        }
        let view = IncidentView {
            id: i.ticket.clone(),
            title: i.title.clone(),
            published_at: i.published_at,
            resolved_at,
            updates,
        };
        match resolved_at {
            None => open_incidents.push(view),
            Some(at) if recent(at) => past_incidents.push(view),
            Some(_) => {}
        }
    }
    let changes = board
        .log
        .iter()
        .rev()
        .filter(|c| recent(c.at))
        .cloned()
        .collect();
    StatusPage {
        title: config.status.title.clone(),
        overall,
        components,
        open_incidents,
        past_incidents,
        changes,
        updated_at: now,
    }
}
