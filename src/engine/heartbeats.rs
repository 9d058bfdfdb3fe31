//! Heartbeats, a dead man's switch: a beat (`POST /hooks/heartbeat/NAME`,
//! or a firing alert of the heartbeat's `alertname`, such as Alertmanager's
//! `Watchdog`) is recorded; the timer finds one silent past its deadline
//! and opens a ticket for its team, once per silence (a deadline passed
//! while the bot was down is found once after it starts); beats coming
//! back resolve that ticket for verification. Pure, like the rest of the
//! engine.

use crate::domain::heartbeat::{Beat, Heartbeat, HeartbeatBook};
use crate::domain::{Actor, Source, TicketState, UserName};
use crate::engine::context::{Cx, NewTicket, Out};
use crate::engine::effect::{Decision, Write};
use crate::engine::messages;
use crate::engine::oncall::on_call_now;
use crate::engine::tickets::Action;
use crate::error::{EngineError, UserError};

/// The name heartbeats act under on a ticket's timeline.
fn monitor() -> Actor {
    Actor::new(UserName::system("heartbeat"), Source::Alert)
}

/// The heartbeat a firing alert of this name beats for, if any.
pub(crate) fn for_alert<'a>(cx: &Cx<'a>, alertname: &str) -> Option<&'a Heartbeat> {
    cx.config
        .monitoring
        .heartbeats
        .values()
        .find(|h| h.alertname.as_deref() == Some(alertname))
}

/// Records a beat of `hb` into `book` (and `out`): a ticket its silence
/// opened is resolved for verification.
pub(crate) fn beat_into(
    cx: &Cx<'_>,
    out: &mut Out,
    book: &mut HeartbeatBook,
    hb: &Heartbeat,
) -> Result<(), EngineError> {
    let b = book.beats.entry(hb.name.clone()).or_insert(Beat {
        last: None,
        since: cx.now,
        ticket: None,
        missed_at: None,
    });
    let silent_since = b.heard();
    b.last = Some(cx.now);
    b.missed_at = None;
    let Some(id) = b.ticket.take() else {
        return Ok(());
    };
    let Some(t) = cx.view.ticket(&id)? else {
        return Ok(());
    };
    if matches!(
        t.state,
        TicketState::Open | TicketState::Assigned | TicketState::InProgress
    ) {
        let note = messages::heartbeat_returned(&hb.name, silent_since);
        let t = cx.system_move(out, &t, &monitor(), Action::Resolve { note })?;
        out.writes.push(Write::Ticket(t));
    }
    Ok(())
}

/// `POST /hooks/heartbeat/NAME`.
pub(crate) fn beat(cx: &Cx<'_>, name: &str) -> Result<Decision, EngineError> {
    let Some(hb) = cx.config.monitoring.heartbeats.get(name) else {
        let known: Vec<&str> = cx
            .config
            .monitoring
            .heartbeats
            .keys()
            .map(String::as_str)
            .collect();
        return Err(UserError::new(format!(
            "no heartbeat `{}` is configured; heartbeats: {}",
            crate::domain::rich::clip_plain(name, 64),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    let mut book = cx.view.heartbeats()?;
    let mut out = Out::new();
    beat_into(cx, &mut out, &mut book, hb)?;
    out.writes.push(Write::Heartbeats(book));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// Whether the timer has something to do: a heartbeat not yet waited for,
/// or one silent past its deadline and not yet said.
pub(crate) fn due(cx: &Cx<'_>) -> Result<bool, EngineError> {
    let book = cx.view.heartbeats()?;
    Ok(cx
        .config
        .monitoring
        .heartbeats
        .values()
        .any(|hb| match book.beats.get(&hb.name) {
            None => true,
            Some(b) => missed(hb, b, cx.now),
        }))
}

/// The earliest deadline the timer has yet to look at: a heartbeat not yet
/// waited for is due now; one already said silent waits for its next beat.
pub(crate) fn next_deadline(cx: &Cx<'_>) -> Result<Option<crate::domain::Timestamp>, EngineError> {
    let book = cx.view.heartbeats()?;
    Ok(cx
        .config
        .monitoring
        .heartbeats
        .values()
        .filter_map(|hb| match book.beats.get(&hb.name) {
            None => Some(cx.now),
            Some(b) if b.missed_at.is_none() => hb.deadline(b.heard()),
            Some(_) => None,
        })
        .min())
}

fn missed(hb: &Heartbeat, b: &Beat, now: crate::domain::Timestamp) -> bool {
    b.missed_at.is_none() && hb.deadline(b.heard()).is_some_and(|d| d <= now)
}

/// The timer: starts waiting for new heartbeats, and opens a ticket for
/// each one silent past its deadline (once per silence).
pub(crate) fn check(cx: &Cx<'_>) -> Result<Decision, EngineError> {
    let mut book = cx.view.heartbeats()?;
    let mut out = Out::new();
    let mut next = cx.view.last_ticket_number()? + 1;
    for hb in cx.config.monitoring.heartbeats.values() {
        let b = book.beats.entry(hb.name.clone()).or_insert(Beat {
            last: None,
            since: cx.now,
            ticket: None,
            missed_at: None,
        });
        if !missed(hb, b, cx.now) {
            continue;
        }
        b.missed_at = Some(cx.now);
        let actor = monitor();
        let title = messages::heartbeat_silent_title(&hb.name, b.heard());
        let description = messages::heartbeat_silent_description(hb, b.last.is_some());
        let mut t = cx.open_ticket(
            &mut out,
            NewTicket {
                num: next,
                actor: &actor,
                channel: cx.ops(),
                title: &title,
                description: Some(&description),
                priority: hb.priority,
                team: hb.team.as_ref(),
                headline: "New heartbeat ticket ",
            },
        );
        next += 1;
        if let Some(team) = hb.team.as_ref() {
            if let Some(user) = on_call_now(cx, team)? {
                let action = Action::AssignUser {
                    team: team.clone(),
                    user,
                };
                t = cx.system_move(&mut out, &t, &actor, action)?;
            }
        }
        b.ticket = Some(t.id.clone());
        out.writes.push(Write::Ticket(t));
    }
    out.writes.push(Write::Heartbeats(book));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
