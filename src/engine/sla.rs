//! Deadlines and escalation: the engine's rules for tickets that wait.
//!
//! Each ticket gets, when it opens (and again when it is reopened), a time to
//! acknowledge and a time to resolve from `[deadlines]` for its priority. The
//! due times live in the ticket's [`Sla`] and, through the store, in an index
//! keyed by the earliest one, so a timer pass reads only what is due.
//!
//! - The acknowledge deadline passes before anyone took the ticket: a breach
//!   is recorded and the first matching `[[escalation]]` chain starts. Its
//!   steps run in order: `wait 10m` waits (counted from when the previous
//!   step was due), `remind` posts in the ticket's thread, `oncall` pings the
//!   team's on-call person, `team` pings the team's channel, `operators`
//!   pings the operators, `raise` raises the priority by one.
//! - Taking or resolving the ticket stops the chain (recorded once).
//! - The resolve deadline passes before it was resolved: a breach is recorded
//!   and posted to the team.
//!
//! Every step, waits included, is one timeline entry. After a restart every
//! step that fell due while the bot was down runs once, in order, in the
//! first pass (they do not collapse: each ping was owed); entries of a late
//! step say when it was due. The step index is stored with the ticket in the
//! same transaction as the step's posts, so nothing repeats or is skipped.

use crate::domain::{ChannelName, EntryKind, Ticket, TicketId, TicketState, Timestamp};
use crate::engine::context::{sla_actor, Cx, Out};
use crate::engine::effect::{Decision, Write};
use crate::engine::messages;
use crate::engine::messages::deadlines as words;
use crate::error::EngineError;

pub use crate::domain::policy::{
    clock, human, later, Chain, Deadline, Policy, Step, WeeklyReport, CLOCK, MAX_SPAN,
    MAX_SPAN_WORDS,
};

/// Whether a state counts as still waiting for someone to take it.
fn unacknowledged(state: TicketState) -> bool {
    matches!(state, TicketState::Open | TicketState::Assigned)
}

fn unresolved(state: TicketState) -> bool {
    matches!(
        state,
        TicketState::Open | TicketState::Assigned | TicketState::InProgress
    )
}

/// A timer pass over tickets the store found due: breaches and
/// escalation steps, each once, in the order they fell due.
pub(crate) fn timers(cx: &Cx<'_>, tickets: &[TicketId]) -> Result<Decision, EngineError> {
    let mut out = Out::new();
    for id in tickets {
        let Some(mut t) = cx.view.ticket(id)? else {
            continue;
        };
        if run_timers(cx, &mut t, &mut out)? {
            out.writes.push(Write::Ticket(t));
        }
    }
    handoffs(cx, &mut out)?;
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// Fires what is due on one ticket; returns whether it changed.
fn run_timers(cx: &Cx<'_>, t: &mut Ticket, out: &mut Out) -> Result<bool, EngineError> {
    let mut changed = false;
    // Bounded: each turn fires one timer and moves it on.
    for _ in 0..256 {
        let Some(sla) = t.sla.clone() else {
            break;
        };
        let ack = sla
            .ack_due
            .filter(|d| !sla.ack_breached && *d <= cx.now && unacknowledged(t.state));
        let res = sla
            .resolve_due
            .filter(|d| !sla.resolve_breached && *d <= cx.now && unresolved(t.state));
        let step = sla.step_due.filter(|d| *d <= cx.now);
        // The earliest first; at equal times, the breach before its chain.
        let next = [(ack, 0u8), (step, 1), (res, 2)]
            .into_iter()
            .filter_map(|(d, k)| d.map(|d| (d, k)))
            .min();
        let Some((due, which)) = next else {
            // Timers that can no longer fire (a state they do not apply
            // to) leave the index.
            if let Some(s) = t.sla.as_mut() {
                let stale_ack = s.ack_due.is_some_and(|d| d <= cx.now) && !s.ack_breached;
                let stale_res = s.resolve_due.is_some_and(|d| d <= cx.now) && !s.resolve_breached;
                if stale_ack {
                    s.ack_due = None;
                    changed = true;
                }
                if stale_res {
                    s.resolve_due = None;
                    changed = true;
                }
            }
            break;
        };
        changed = true;
        match which {
            0 => ack_breach(cx, t, out, due),
            1 => escalation_step(cx, t, out, due)?,
            _ => resolve_breach(cx, t, out, due),
        }
    }
    Ok(changed)
}

fn record(cx: &Cx<'_>, t: &mut Ticket, out: &mut Out, kind: EntryKind, text: String) {
    let e = cx.entry(t, &sla_actor(), kind, t.state, t.state, &text);
    out.writes.push(Write::Timeline(t.id.clone(), e));
    t.updated_at = cx.now;
}

fn ack_breach(cx: &Cx<'_>, t: &mut Ticket, out: &mut Out, due: Timestamp) {
    let waited = human(due - t.created_at);
    let chain = cx.config.policy.chain_for(t).cloned();
    if let Some(s) = t.sla.as_mut() {
        s.ack_breached = true;
        if let Some(c) = &chain {
            s.chain = Some(c.name.clone());
            s.step = 0;
            s.step_due = Some(due);
        }
    }
    let text = words::ack_missed(
        &waited,
        due,
        cx.now,
        chain.as_ref().map(|c| c.name.as_str()),
    );
    record(cx, t, out, EntryKind::Breached, text.to_plain());
    out.thread(cx.ops(), &t.id, text);
}

fn resolve_breach(cx: &Cx<'_>, t: &mut Ticket, out: &mut Out, due: Timestamp) {
    if let Some(s) = t.sla.as_mut() {
        s.resolve_breached = true;
    }
    let text = words::resolve_missed(due, cx.now);
    record(cx, t, out, EntryKind::Breached, text.to_plain());
    let body = words::resolve_missed_post(t, due, cx.now);
    let channel = team_or_ops(cx, t);
    out.post(&channel, Some(&t.id), body);
}

fn team_or_ops(cx: &Cx<'_>, t: &Ticket) -> ChannelName {
    t.team
        .as_ref()
        .and_then(|n| cx.org.team(n))
        .map(|tm| tm.channel.clone())
        .unwrap_or_else(|| cx.ops().clone())
}

/// Runs the chain's next step, due at `due`.
fn escalation_step(
    cx: &Cx<'_>,
    t: &mut Ticket,
    out: &mut Out,
    due: Timestamp,
) -> Result<(), EngineError> {
    let Some(sla) = t.sla.clone() else {
        return Ok(());
    };
    let policy = &cx.config.policy;
    let chain = sla.chain.as_deref().and_then(|c| policy.chain(c));
    let Some(chain) = chain else {
        // The chain left the config: stop it, on the record.
        if let Some(s) = t.sla.as_mut() {
            s.step_due = None;
        }
        let text = words::chain_stopped(sla.chain.as_deref().unwrap_or(""));
        record(cx, t, out, EntryKind::Escalated, text);
        return Ok(());
    };
    let idx = sla.step as usize;
    let Some(step) = chain.steps.get(idx).copied() else {
        if let Some(s) = t.sla.as_mut() {
            s.step_due = None;
        }
        return Ok(());
    };
    let n = chain.steps.len();
    let late = words::late(due, cx.now);
    let waited = human(cx.now.min(due) - t.created_at);
    let head = words::step_head(&chain.name, idx + 1, n);
    let id = t.id.clone();
    let take = words::take_it(&id);
    let mut next_due = Some(due);
    let text = match step {
        Step::Wait(d) => {
            next_due = later(due, d);
            words::waiting(&head, d, next_due)
        }
        Step::Remind => {
            let body = messages::deadline_reminder(&id, &waited, &take, t.assignee.as_ref());
            out.thread(cx.ops(), &id, body);
            words::reminded(&head, &late)
        }
        Step::Oncall => {
            let team = t.team.clone();
            let rotation = team.as_ref().and_then(|n| policy.oncall.get(n));
            match (team, rotation) {
                (Some(team), Some(rot)) => {
                    let overrides = cx.view.overrides(&team)?;
                    match crate::domain::rotation::on_call(rot, &overrides, cx.now) {
                        Some((who, _)) => {
                            let body = words::oncall_post(t, &waited, &who, &team);
                            out.post(&team_or_ops(cx, t), Some(&id), body);
                            // And to the person, directly.
                            let why = words::oncall_page_why(&head, &team);
                            crate::engine::pages::page(cx, out, t, &who, &why);
                            words::oncall_paged(&head, &who, &team, &late)
                        }
                        None => ping_operators(cx, t, out, &head, &waited, &late),
                    }
                }
                (Some(team), None) => {
                    let text = ping_team(cx, t, out, &head, &waited, &late);
                    words::oncall_without_rotation(&text, &team)
                }
                (None, _) => ping_operators(cx, t, out, &head, &waited, &late),
            }
        }
        Step::Team => ping_team(cx, t, out, &head, &waited, &late),
        Step::Operators => ping_operators(cx, t, out, &head, &waited, &late),
        Step::Raise => {
            let before = t.priority;
            let after = before.raised();
            if after == before {
                words::priority_stays(&head, before, &late)
            } else {
                t.priority = after;
                // The higher priority's time to resolve counts from the
                // opening: the deadline only ever comes sooner.
                let sooner = policy
                    .deadlines
                    .get(&after)
                    .and_then(|d| d.resolve)
                    .and_then(|r| later(t.created_at, r));
                if let (Some(sooner), Some(s)) = (sooner, t.sla.as_mut()) {
                    if s.resolved_at.is_none() && !s.resolve_breached {
                        s.resolve_due = Some(s.resolve_due.map_or(sooner, |d| d.min(sooner)));
                    }
                }
                out.thread(
                    cx.ops(),
                    &id,
                    messages::priority_raised(before, after, &waited),
                );
                words::priority_raised_entry(&head, before, after, &late)
            }
        }
    };
    if let Some(s) = t.sla.as_mut() {
        s.step = sla.step + 1;
        s.step_due = if (s.step as usize) < n {
            next_due
        } else {
            None
        };
    }
    let kind = if matches!(step, Step::Raise) {
        EntryKind::Priority
    } else {
        EntryKind::Escalated
    };
    record(cx, t, out, kind, text);
    Ok(())
}

fn ping_team(
    cx: &Cx<'_>,
    t: &Ticket,
    out: &mut Out,
    head: &str,
    waited: &str,
    late: &str,
) -> String {
    let org = &cx.org;
    let Some(team) = t.team.as_ref().and_then(|n| org.team(n)) else {
        return ping_operators(cx, t, out, head, waited, late);
    };
    let body = words::team_post(t, waited, &team.members);
    out.post(&team.channel, Some(&t.id), body);
    words::team_pinged(head, &team.name, &team.channel, late)
}

fn ping_operators(
    cx: &Cx<'_>,
    t: &Ticket,
    out: &mut Out,
    head: &str,
    waited: &str,
    late: &str,
) -> String {
    let org = &cx.org;
    let body = words::operators_post(t, waited, &org.operators);
    out.post(cx.ops(), Some(&t.id), body);
    words::operators_pinged(head, &org.operators, late)
}

/// Posts each team's handoff once, when the person on call changes at a
/// shift boundary. The first pass of a new database only notes the shift.
fn handoffs(cx: &Cx<'_>, out: &mut Out) -> Result<(), EngineError> {
    for (team, rot) in &cx.config.policy.oncall {
        let Some(shift) = rot.shift_at(cx.now) else {
            continue;
        };
        let key = format!("handoff:{team}");
        let seen = cx.view.marker(&key)?;
        if seen == Some(shift.index) {
            continue;
        }
        out.writes.push(Write::Marker(key, shift.index));
        if seen.is_none() {
            continue;
        }
        let overrides = cx.view.overrides(team)?;
        let Some((who, by)) = crate::domain::rotation::on_call(rot, &overrides, cx.now) else {
            continue;
        };
        let Some(tm) = cx.org.team(team) else {
            continue;
        };
        let standing_in_for = by.is_some().then_some(&shift.user);
        let next = rot.next_shift(cx.now).map(|n| n.user);
        let body = messages::oncall_handoff(team, &who, shift.end, standing_in_for, next.as_ref());
        out.post(&tm.channel, None, body);
    }
    Ok(())
}
