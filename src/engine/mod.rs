//! The engine: the one place that decides. It takes one typed [`Event`], reads
//! the store through a [`View`], and returns a [`Decision`]: the records to
//! write, the effects that follow (posts), and the answer to the user. It does
//! no I/O and reads no clock; the store applies a decision in one transaction.
//!
//! The files point down only: this one dispatches each event to a feature
//! (`tickets` and `ticketing`, `alerts`, `sla`, `oncall`, `builds`,
//! `deploys`, `support`, `report`, `maintenance`, `heartbeats`, `status`: the
//! public pages), a function over the decision's
//! `context` (`Cx`: configuration, organisation, view, time); the features share the
//! moves in `context` and the words in `messages`; `effect`, `event` and
//! `view` are the vocabulary at the bottom. The architecture test holds it.

mod alerts;
mod builds;
mod code;
mod context;
mod deploys;
mod forge_ci;
mod heartbeats;
pub mod inbox;
mod maintenance;
pub mod messages;
pub mod oncall;
mod pages;
mod reload;
pub mod report;
mod setup;
mod silences;
pub mod sla;
pub mod status;
pub mod storm;
mod support;
mod ticketing;
pub mod tickets;

mod effect;
mod event;
mod memory;
mod view;

pub use effect::Page;
pub use effect::{
    Accepted, Ask, Attachment, Card, DeadlineKind, Decision, Effect, GroupRecord, ListMore, Mail,
    MailPurpose, Member, Post, Reply, SilenceBook, Write,
};
pub use event::Event;
pub use memory::{MemoryView, Queued};
pub use view::{ListAt, ListFilter, QueryView, View};

use std::borrow::Cow;
use std::sync::Arc;

use crate::commands::{self, Command};
use crate::config::Config;
use crate::domain::org::Org;
use crate::domain::{Actor, ChannelName, Timestamp};
use crate::engine::context::{Cx, Out};
use crate::engine::tickets::Action;
use crate::error::{EngineError, UserError};

/// How many tickets `/ticket list` shows.
pub const LIST_LIMIT: usize = 25;
/// How many timeline entries `/ticket show` shows.
pub const SHOW_ENTRIES: usize = 20;

/// The decider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) config: Arc<Config>,
}

impl Engine {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides a writing event. Read-only commands are answered by [`Engine::query`].
    pub fn decide(
        &self,
        view: &dyn View,
        event: &Event,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let org = granted_org(&self.config.org, event);
        let cx = Cx {
            config: &self.config,
            org: &org,
            view,
            now,
        };
        let mut decision = decide_event(&cx, event)?;
        deploys::check_starts(cx.config, &decision.writes)?;
        cards(&cx, &mut decision.writes)?;
        status::link_mails(&cx, &mut decision.writes)?;
        Ok(decision)
    }

    /// Answers a read-only command.
    pub fn query(
        &self,
        view: &dyn QueryView,
        event: &Event,
        now: Timestamp,
    ) -> Result<Reply, EngineError> {
        let org = granted_org(&self.config.org, event);
        let cx = &Cx {
            config: &self.config,
            org: &org,
            view,
            now,
        };
        let Event::Command { actor, command, .. } = event else {
            return Err(UserError::new("not a query").into());
        };
        let org = &cx.org;
        match command {
            Command::TicketShow { id } => {
                let t = cx.load(id)?;
                // Only the entries shown are read: a long timeline costs
                // no more than a short one.
                let from = t.timeline_len.saturating_sub(SHOW_ENTRIES as u32);
                let mut tail = view.timeline_from(id, from)?;
                tail.drain(..tail.len().saturating_sub(SHOW_ENTRIES));
                let total = tail
                    .last()
                    .map_or(0, |e| e.seq as usize + 1)
                    .max(t.timeline_len as usize);
                Ok(Reply::private(messages::ticket_detail(
                    &t,
                    &tail,
                    total,
                    org.is_operator(&actor.name),
                )))
            }
            Command::TicketList {
                state,
                team,
                mine,
                page,
            } => {
                if let Some(team) = team {
                    if org.team(team).is_none() {
                        return Err(tickets::unknown_team(team, org).into());
                    }
                }
                let filter = ListFilter {
                    state: *state,
                    team: team.clone(),
                    assignee: mine.then(|| actor.name.clone()),
                };
                let mut words = Vec::new();
                match state {
                    Some(s) => words.push(format!("in state {s}")),
                    None => words.push("not closed".to_string()),
                }
                if let Some(team) = team {
                    words.push(format!("of team {team}"));
                }
                if *mine {
                    words.push("assigned to you".to_string());
                }
                let words = words.join(", ");
                let page = page.unwrap_or(1).max(1);
                // A page so far that its offset does not fit is past the end.
                let offset = (page - 1).checked_mul(LIST_LIMIT as u64);
                let at = ListAt {
                    offset: offset.unwrap_or(u64::MAX),
                    limit: LIST_LIMIT,
                    before: None,
                };
                let (tickets, total) = view.list(&filter, &at)?;
                if page > 1 && (offset.is_none() || tickets.is_empty()) {
                    return Err(UserError::new(messages::list_past_end(
                        page, total, &words, LIST_LIMIT,
                    ))
                    .into());
                }
                let shown_to = at.offset.saturating_add(tickets.len() as u64);
                let more = (shown_to < total).then(|| ListMore {
                    state: *state,
                    team: team.clone(),
                    mine: *mine,
                    page: page + 1,
                });
                let next = more.as_ref().map(ListMore::command);
                let mut reply = Reply::private(messages::ticket_list(
                    &tickets,
                    total,
                    &words,
                    page,
                    LIST_LIMIT,
                    next.as_deref(),
                ));
                reply.more = more;
                Ok(reply)
            }
            Command::AlertSilences => alerts::list_silences(cx),
            Command::MaintenanceList => maintenance::list(cx),
            Command::Oncall { team } => oncall::oncall_show(cx, team.as_ref()),
            Command::Report { period, team } => report::report(cx, view, *period, team.as_ref()),
            Command::Runs => builds::list_runs(view),
            Command::Help { command } => Ok(Reply::private(commands::help(
                &actor.name,
                org,
                *command,
                &cx.config.jobs,
                &|c| deploys::may_run(&self.config, cx.org, &actor.name, c),
            ))),
            Command::Whoami => {
                let may: Vec<String> = commands::CommandName::ALL
                    .iter()
                    .filter(|&&c| deploys::may_run(&self.config, cx.org, &actor.name, c))
                    .map(|c| c.shown_name())
                    .collect();
                Ok(Reply::private(messages::whoami(actor, cx.org, &may)))
            }
            _ => Err(UserError::new("not a query").into()),
        }
    }

    /// Whether a maintenance window is due to start or end at `now` (or an
    /// occurrence of a `[[maintenance]]` to open): then the timer sends
    /// [`Event::Maintenance`].
    pub fn maintenance_due(&self, view: &dyn View, now: Timestamp) -> Result<bool, EngineError> {
        maintenance::due(&Cx {
            config: &self.config,
            org: &self.config.org,
            view,
            now,
        })
    }

    /// Whether a heartbeat is past its deadline (or not yet waited for) at
    /// `now`: then the timer sends [`Event::HeartbeatCheck`].
    pub fn heartbeats_due(&self, view: &dyn View, now: Timestamp) -> Result<bool, EngineError> {
        heartbeats::due(&Cx {
            config: &self.config,
            org: &self.config.org,
            view,
            now,
        })
    }

    /// The next heartbeat deadline after `now` not yet said (`now` for a
    /// heartbeat not yet waited for), for the timer to wake then.
    pub fn heartbeats_next(
        &self,
        view: &dyn View,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, EngineError> {
        heartbeats::next_deadline(&Cx {
            config: &self.config,
            org: &self.config.org,
            view,
            now,
        })
    }

    /// Whether the weekly report is due at `now` (and whether to post it or
    /// only note the schedule), for the timer to compute its figures.
    pub fn weekly_report_due(
        &self,
        view: &dyn View,
        now: Timestamp,
    ) -> Result<Option<report::WeeklyDue>, EngineError> {
        report::weekly_report_due(&Cx {
            config: &self.config,
            org: &self.config.org,
            view,
            now,
        })
    }
}

/// The organisation a decision sees. For a command by someone chat granted
/// roles to, a copy of the config's organisation with them in those roles
/// (every rule then sees them as it sees people named in `bot.toml`, in the
/// lists it shows too); otherwise the config's own. Only the organisation is
/// copied, and only when the grants add to it.
fn granted_org<'a>(org: &'a Org, event: &Event) -> Cow<'a, Org> {
    let Event::Command { actor, .. } = event else {
        return Cow::Borrowed(org);
    };
    let g = &actor.grants;
    let name = &actor.name;
    let adds = (g.operator && !org.is_operator(name))
        || (g.release_manager && !org.is_release_manager(name))
        || g.teams
            .iter()
            .any(|t| org.team(t).is_some_and(|tm| !tm.members.contains(name)));
    if !adds {
        return Cow::Borrowed(org);
    }
    let mut org = org.clone();
    if g.operator && !org.operators.contains(name) {
        org.operators.push(name.clone());
    }
    if g.release_manager && !org.release_managers.contains(name) {
        org.release_managers.push(name.clone());
    }
    for t in &g.teams {
        if let Some(team) = org.teams.get_mut(t) {
            if !team.members.contains(name) {
                team.members.push(name.clone());
            }
        }
    }
    Cow::Owned(org)
}

/// Keeps each ticket's card in step with the ticket: a new ticket's
/// first post in the operations channel becomes its card; a ticket whose
/// card would look different gets a card update.
fn cards(cx: &Cx<'_>, writes: &mut Vec<Write>) -> Result<(), EngineError> {
    let ops = cx.ops();
    // Each ticket as it ends the decision (its last write), in order.
    let mut seen = std::collections::HashSet::new();
    let mut updates = Vec::new();
    let mut new_cards = Vec::new();
    for w in writes.iter().rev() {
        let Write::Ticket(t) = w else {
            continue;
        };
        if !seen.insert(&t.id) {
            continue;
        }
        match cx.view.ticket(&t.id)? {
            Some(before) if Card::differs(&before, t) => updates.push(Card::of(t, ops)),
            Some(_) => {}
            None => new_cards.push(Card::of(t, ops)),
        }
    }
    updates.reverse();
    for card in new_cards.into_iter().rev() {
        let first = writes.iter_mut().find_map(|w| match w {
            Write::Effect(Effect::Post(p))
                if !p.thread && p.channel == *ops && p.ticket.as_ref() == Some(&card.ticket) =>
            {
                Some(p)
            }
            _ => None,
        });
        match first {
            Some(p) => p.card = Some(card),
            None => updates.push(card),
        }
    }
    writes.extend(updates.into_iter().map(|c| Write::Effect(Effect::Card(c))));
    Ok(())
}

fn decide_event(cx: &Cx<'_>, event: &Event) -> Result<Decision, EngineError> {
    match event {
        Event::Command {
            actor,
            channel,
            command,
        } => decide_command(cx, actor, channel, command),
        Event::ChatMessage {
            author,
            channel,
            text,
        } => alerts::chat_message(cx, author, channel, text),
        Event::Alerts { alerts } => alerts::alerts(cx, alerts),
        Event::MarkStale { groups } => alerts::mark_stale(cx, groups),
        Event::SupportRequest {
            customer,
            subject,
            message,
            idempotency_key,
        } => support::support_request(cx, customer, subject, message, idempotency_key.as_deref()),
        Event::MailSent { mail } => support::mail_sent(cx, mail),
        Event::RunUpdate { run, update } => builds::run_update(cx, *run, update),
        Event::Tick { tickets } => sla::timers(cx, tickets),
        Event::LostRun { run, orders } => builds::lost_run(cx, *run, orders),
        Event::ChannelRefused { channel, why } => channel_refused(cx, channel, why),
        Event::ScheduledReport { due, figures, file } => {
            report::scheduled_report(cx, *due, figures, file.as_ref())
        }
        Event::Maintenance => maintenance::tick(cx),
        Event::Heartbeat { name } => heartbeats::beat(cx, name),
        Event::HeartbeatCheck => heartbeats::check(cx),
        Event::SilenceMade { silence, am_id } => silences::silence_made(cx, *silence, am_id),
        Event::AlertmanagerSilences { silences } => silences::alertmanager_silences(cx, silences),
        Event::PageRefused { to, ticket, why } => pages::page_refused(cx, to, ticket, why),
        Event::InboundMail { mail } => inbox::inbound_mail(cx, mail),
        Event::Push { delivery, push } => code::push(cx, delivery.as_deref(), push),
        Event::ForgeRun { delivery, run } => builds::forge_run(cx, delivery.as_deref(), run),
        Event::RepoReach { repo, error } => code::reach(cx, repo, error.as_deref()),
        Event::StatusRefused { repo, why } => code::status_refused(cx, repo, why),
        Event::DeployCommits { run, repo, found } => deploys::deploy_commits(cx, *run, repo, found),
        Event::ChatSetup {
            missing_channels,
            missing_users,
            members_refused,
            missing_permissions,
        } => setup::chat_setup(
            cx,
            missing_channels,
            missing_users,
            *members_refused,
            missing_permissions,
        ),
        Event::ConfigReloaded {
            ok,
            problems,
            restart,
        } => reload::config_reloaded(cx, *ok, problems, restart),
    }
}

/// A channel refused a post for good: the operations channel hears of
/// it once per channel (the post itself stays on record as a dead
/// letter).
fn channel_refused(cx: &Cx<'_>, channel: &ChannelName, why: &str) -> Result<Decision, EngineError> {
    let key = format!("refused:{channel}");
    if channel == cx.ops() || cx.view.marker(&key)?.is_some() {
        return Ok(Decision::default());
    }
    let mut out = Out::new();
    out.writes.push(Write::Marker(key, cx.now.timestamp()));
    out.post(cx.ops(), None, messages::channel_refused(channel, why));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

fn decide_command(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    command: &Command,
) -> Result<Decision, EngineError> {
    let (id, action) = match command {
        Command::TicketOpen {
            title,
            description,
            priority,
            team,
        } => {
            return ticketing::open(
                cx,
                actor,
                channel,
                title,
                description.as_deref(),
                *priority,
                team.as_ref(),
            )
        }
        Command::TicketAssign { id, team, user } => {
            let t = cx.load(id)?;
            let action = match (team, user) {
                (Some(team), None) => oncall::assign_to_team(cx, team)?,
                (team, Some(user)) => Action::AssignUser {
                    team: ticketing::team_for(cx, &t, team.as_ref(), user)?,
                    user: user.clone(),
                },
                (None, None) => {
                    return Err(UserError::new("give `team:` or `user:` (or both)").into())
                }
            };
            (id, action)
        }
        Command::TicketTake { id } => (id, Action::Take),
        Command::TicketComment { id, text, customer } => {
            if *customer {
                return support::comment_to_customer(cx, actor, id, text);
            }
            (id, Action::Comment { text: text.clone() })
        }
        Command::TicketResolve { id, note } => (id, Action::Resolve { note: note.clone() }),
        Command::TicketQa { id } => (id, Action::SendToQa),
        Command::TicketVerify { id } => (id, Action::Verify),
        Command::TicketReject { id, reason } => (
            id,
            Action::Reject {
                reason: reason.clone(),
            },
        ),
        Command::TicketReopen { id, reason } => (
            id,
            Action::Reopen {
                reason: reason.clone(),
            },
        ),
        Command::AlertSilence { .. } | Command::AlertUnsilence { .. } => {
            return alerts::alert_command(cx, actor, command);
        }
        Command::Build { job, params } => {
            return builds::build(cx, actor, channel, job, params);
        }
        Command::BuildCancel { run } => return builds::cancel_run(cx, actor, *run),
        Command::Deploy {
            service,
            env,
            version,
            notes,
        } => {
            return deploys::deploy(
                cx,
                actor,
                channel,
                service,
                env,
                version.as_deref(),
                notes.as_deref(),
            )
        }
        Command::Rollback { service, env } => {
            return deploys::rollback(cx, actor, channel, service, env)
        }
        Command::Approve { run } => return deploys::approve(cx, actor, *run),
        Command::Deny { run, reason } => return deploys::deny(cx, actor, *run, reason),
        Command::OncallSet { team, user, until } => {
            return oncall::oncall_set(cx, actor, team, user, until)
        }
        Command::StatusSet {
            service,
            state,
            message,
        } => return status::status_set(cx, actor, service, *state, message.as_deref()),
        Command::TicketPublic { id, text, title } => {
            return status::ticket_public(cx, actor, id, text, title.as_deref())
        }
        Command::TicketRevokeLink { id } => return status::revoke_link(cx, actor, id),
        Command::MaintenanceStart { .. }
        | Command::MaintenanceSchedule { .. }
        | Command::MaintenanceEnd { .. } => return maintenance::command(cx, actor, command),
        Command::Page { user, id } => return pages::page_command(cx, actor, user, id),
        Command::TicketShow { .. }
        | Command::TicketList { .. }
        | Command::AlertSilences
        | Command::Runs
        | Command::Oncall { .. }
        | Command::Report { .. }
        | Command::Help { .. }
        | Command::Whoami
        | Command::MaintenanceList => {
            // Queries write nothing; the runtime sends them to `query`.
            return Ok(Decision::default());
        }
    };
    ticketing::act(cx, actor, id, &action)
}

#[cfg(test)]
pub(crate) mod tests;
