//! The ticket commands: opening a ticket, and moving one as a person asks
//! (the rules of who may are in [`tickets`](crate::engine::tickets)).

use crate::domain::{Actor, ChannelName, Priority, TeamName, Ticket, TicketId, UserName};
use crate::engine::context::{Cx, NewTicket, Out};
use crate::engine::effect::{Decision, Reply, Write};
use crate::engine::messages;
use crate::engine::tickets::{self, Action};
use crate::error::{EngineError, UserError};

pub(crate) fn open(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    title: &str,
    description: Option<&str>,
    priority: Option<Priority>,
    team: Option<&TeamName>,
) -> Result<Decision, EngineError> {
    let org = &cx.org;
    let title = title.trim();
    if title.is_empty() {
        return Err(UserError::new("`title` must not be empty").into());
    }
    if title.chars().count() > crate::domain::MAX_TITLE {
        return Err(UserError::new(format!(
            "`title` is {} characters long; the limit is {}",
            title.chars().count(),
            crate::domain::MAX_TITLE
        ))
        .into());
    }
    if let Some(team) = team {
        if org.team(team).is_none() {
            return Err(tickets::unknown_team(team, org).into());
        }
    }
    let num = cx.view.last_ticket_number()? + 1;
    let mut out = Out::new();
    let t = cx.open_ticket(
        &mut out,
        NewTicket {
            num,
            actor,
            channel,
            title,
            description,
            priority: priority.unwrap_or(cx.config.tickets.default_priority),
            team,
            headline: "New ticket ",
        },
    );
    let id = t.id.clone();
    let reply = messages::ticket_opened_reply(&id, t.team.as_ref(), cx.ops());
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}

/// The team a person is assigned for: the one given, else the ticket's
/// team when they are in it, else their only team.
pub(crate) fn team_for(
    cx: &Cx<'_>,
    t: &Ticket,
    team: Option<&TeamName>,
    user: &UserName,
) -> Result<TeamName, UserError> {
    let org = &cx.org;
    if let Some(team) = team {
        return Ok(team.clone());
    }
    if let Some(tt) = &t.team {
        if org.is_member(user, tt) {
            return Ok(tt.clone());
        }
    }
    let teams: Vec<&TeamName> = org.teams_of(user).map(|t| &t.name).collect();
    match teams.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(UserError::new(format!(
            "{user} is not a member of any team; teams are: {}",
            org.team_names()
        ))),
        many => Err(UserError::new(format!(
            "{user} is in several teams ({}); say which with team:…",
            many.iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A person's move of a ticket: checked by the rules, on the timeline,
/// its deadlines kept in step, and announced.
pub(crate) fn act(
    cx: &Cx<'_>,
    actor: &Actor,
    id: &TicketId,
    action: &Action,
) -> Result<Decision, EngineError> {
    let org = &cx.org;
    let before = cx.load(id)?;
    let tr = tickets::transition(&before, action, &actor.name, org)?;
    let mut t = tr.ticket;
    t.updated_at = cx.now;
    let mut out = Out::new();
    let entry = cx.entry(&mut t, actor, tr.entry, tr.from, tr.to, &tr.text);
    out.writes.push(Write::Timeline(t.id.clone(), entry));
    cx.deadlines_follow(&mut out, &mut t, tr.entry);
    let reply = cx.announce(&mut out, &t, actor, action);
    out.writes.push(Write::Ticket(t));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}
