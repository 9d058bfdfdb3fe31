//! The engine: the one place that decides. It takes one typed [`Event`], reads
//! the store through a [`View`], and returns a [`Decision`]: the records to
//! write, the effects that follow (posts), and the answer to the user. It does
//! no I/O and reads no clock; the store applies a decision in one transaction.

mod alerts;
mod builds;
mod deploys;
pub mod messages;
pub mod oncall;
pub mod report;
pub mod sla;
pub mod storm;
mod support;
pub mod tickets;

mod effect;
mod event;
mod memory;
mod view;

pub use effect::{
    Accepted, Ask, Attachment, Card, DeadlineKind, Decision, Effect, GroupRecord, Mail,
    MailPurpose, Member, Post, Reply, SilenceBook, Write,
};
pub use event::Event;
pub use memory::{MemoryView, Queued};
pub use view::{ListFilter, QueryView, View};

use std::sync::Arc;

use crate::commands::{self, Command};
use crate::config::Config;

use crate::domain::rich::{one_line, Rich};
use crate::domain::{
    Actor, ChannelName, EntryKind, Priority, TeamName, Ticket, TicketId, TicketState,
    TimelineEntry, Timestamp, UserName,
};
use crate::engine::tickets::Action;
use crate::error::{EngineError, UserError};

/// What a new ticket is made of.
pub(crate) struct NewTicket<'a> {
    pub num: u64,
    pub actor: &'a Actor,
    pub channel: &'a ChannelName,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub priority: Priority,
    pub team: Option<&'a TeamName>,
    /// How the card in the operations channel starts.
    pub headline: &'a str,
}

/// How many tickets `/ticket list` shows.
pub const LIST_LIMIT: usize = 25;
/// How many timeline entries `/ticket show` shows.
pub const SHOW_ENTRIES: usize = 20;

/// The decider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) config: Arc<Config>,
}

/// Collects the writes of one decision.
pub(crate) struct Out {
    pub(crate) writes: Vec<Write>,
    /// Posts made now are monitoring's (see [`Post::alert`]).
    pub(crate) alert: bool,
}

impl Out {
    pub(crate) fn new() -> Self {
        Self {
            writes: Vec::new(),
            alert: false,
        }
    }

    pub(crate) fn post(&mut self, channel: &ChannelName, ticket: Option<&TicketId>, body: Rich) {
        self.writes.push(Write::Effect(Effect::Post(Post {
            channel: channel.clone(),
            ticket: ticket.cloned(),
            thread: false,
            body,
            alert: self.alert,
            replaces: None,
            card: None,
            ask: None,
            file: None,
        })));
    }

    /// A post that replaces the earlier one with the same key, perhaps
    /// asking its readers something.
    pub(crate) fn progress(
        &mut self,
        channel: &ChannelName,
        key: String,
        body: Rich,
        ask: Option<Ask>,
    ) {
        self.writes.push(Write::Effect(Effect::Post(Post {
            channel: channel.clone(),
            ticket: None,
            thread: false,
            body,
            alert: false,
            replaces: Some(key),
            card: None,
            ask,
            file: None,
        })));
    }

    pub(crate) fn thread(&mut self, ops: &ChannelName, id: &TicketId, body: Rich) {
        self.writes.push(Write::Effect(Effect::Post(Post {
            channel: ops.clone(),
            ticket: Some(id.clone()),
            thread: true,
            body,
            alert: self.alert,
            replaces: None,
            card: None,
            ask: None,
            file: None,
        })));
    }
}

impl Engine {
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// For a command by someone chat granted roles to: an engine whose
    /// organisation has them in those roles (every rule then sees them as
    /// it sees people named in `bot.toml`). `None`: no grants beyond the
    /// config's.
    fn granting(&self, event: &Event) -> Option<Engine> {
        let Event::Command { actor, .. } = event else {
            return None;
        };
        let g = &actor.grants;
        let org = &self.config.org;
        let name = &actor.name;
        let adds = (g.operator && !org.is_operator(name))
            || (g.release_manager && !org.is_release_manager(name))
            || g.teams
                .iter()
                .any(|t| org.team(t).is_some_and(|tm| !tm.members.contains(name)));
        if !adds {
            return None;
        }
        let mut config = (*self.config).clone();
        let org = &mut config.org;
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
        Some(Engine::new(Arc::new(config)))
    }

    pub(crate) fn ops(&self) -> &ChannelName {
        &self.config.tickets.channel
    }

    /// Decides a writing event. Read-only commands are answered by [`Engine::query`].
    pub fn decide(
        &self,
        view: &dyn View,
        event: &Event,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        if let Some(engine) = self.granting(event) {
            return engine.decide(view, event, now);
        }
        let mut decision = self.decide_event(view, event, now)?;
        self.check_starts(&decision.writes)?;
        self.cards(view, &mut decision.writes)?;
        Ok(decision)
    }

    /// Keeps each ticket's card in step with the ticket: a new ticket's
    /// first post in the operations channel becomes its card; a ticket whose
    /// card would look different gets a card update.
    fn cards(&self, view: &dyn View, writes: &mut Vec<Write>) -> Result<(), EngineError> {
        let ops = self.ops();
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
            match view.ticket(&t.id)? {
                Some(before) if Card::differs(&before, t) => updates.push(Card::of(t, ops)),
                Some(_) => {}
                None => new_cards.push(Card::of(t, ops)),
            }
        }
        updates.reverse();
        for card in new_cards.into_iter().rev() {
            let first = writes.iter_mut().find_map(|w| match w {
                Write::Effect(Effect::Post(p))
                    if !p.thread
                        && p.channel == *ops
                        && p.ticket.as_ref() == Some(&card.ticket) =>
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

    fn decide_event(
        &self,
        view: &dyn View,
        event: &Event,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        match event {
            Event::Command {
                actor,
                channel,
                command,
            } => self.command(view, actor, channel, command, now),
            Event::ChatMessage {
                author,
                channel,
                text,
            } => self.chat_message(view, author, channel, text, now),
            Event::Alerts { alerts } => self.alerts(view, alerts, now),
            Event::MarkStale { groups } => self.mark_stale(view, groups, now),
            Event::SupportRequest {
                customer,
                subject,
                message,
                idempotency_key,
            } => self.support_request(
                view,
                customer,
                subject,
                message,
                idempotency_key.as_deref(),
                now,
            ),
            Event::MailSent { mail } => self.mail_sent(view, mail, now),
            Event::RunUpdate { run, update } => self.run_update(view, *run, update, now),
            Event::Tick { tickets } => self.timers(view, tickets, now),
            Event::LostRun { run, orders } => self.lost_run(view, *run, orders, now),
            Event::ChannelRefused { channel, why } => self.channel_refused(view, channel, why, now),
            Event::ScheduledReport { due, figures, file } => {
                self.scheduled_report(view, *due, figures, file.as_ref())
            }
        }
    }

    /// A channel refused a post for good: the operations channel hears of
    /// it once per channel (the post itself stays on record as a dead
    /// letter).
    fn channel_refused(
        &self,
        view: &dyn View,
        channel: &ChannelName,
        why: &str,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let key = format!("refused:{channel}");
        if channel == self.ops() || view.marker(&key)?.is_some() {
            return Ok(Decision::default());
        }
        let mut out = Out::new();
        out.writes.push(Write::Marker(key, now.timestamp()));
        out.post(self.ops(), None, messages::channel_refused(channel, why));
        Ok(Decision {
            reply: None,
            accepted: None,
            writes: out.writes,
        })
    }

    fn command(
        &self,
        view: &dyn View,
        actor: &Actor,
        channel: &ChannelName,
        command: &Command,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let org = &self.config.org;
        let (id, action) = match command {
            Command::TicketOpen {
                title,
                description,
                priority,
                team,
            } => {
                return self.open(
                    view,
                    actor,
                    channel,
                    title,
                    description.as_deref(),
                    *priority,
                    team.as_ref(),
                    now,
                )
            }
            Command::TicketAssign { id, team, user } => {
                let t = self.load(view, id)?;
                let action = match (team, user) {
                    (Some(team), None) => self.assign_to_team(view, team, now)?,
                    (team, Some(user)) => Action::AssignUser {
                        team: self.team_for(&t, team.as_ref(), user)?,
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
                    return self.comment_to_customer(view, actor, id, text, now);
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
                return self.alert_command(view, actor, command, now);
            }
            Command::Build { job, params } => {
                return self.build(view, actor, channel, job, params, now);
            }
            Command::BuildCancel { run } => return self.cancel_run(view, actor, *run, now),
            Command::Deploy {
                service,
                env,
                version,
                notes,
            } => {
                return self.deploy(
                    view,
                    actor,
                    channel,
                    service,
                    env,
                    version.as_deref(),
                    notes.as_deref(),
                    now,
                )
            }
            Command::Rollback { service, env } => {
                return self.rollback(view, actor, channel, service, env, now)
            }
            Command::Approve { run } => return self.approve(view, actor, *run, now),
            Command::Deny { run, reason } => return self.deny(view, actor, *run, reason, now),
            Command::OncallSet { team, user, until } => {
                return self.oncall_set(view, actor, team, user, until, now)
            }
            Command::TicketShow { .. }
            | Command::TicketList { .. }
            | Command::AlertSilences
            | Command::Runs
            | Command::Oncall { .. }
            | Command::Report { .. }
            | Command::Help { .. } => {
                // Queries write nothing; the runtime sends them to `query`.
                return Ok(Decision::default());
            }
        };
        let before = self.load(view, id)?;
        let tr = tickets::transition(&before, &action, &actor.name, org)?;
        let mut t = tr.ticket;
        t.updated_at = now;
        let mut out = Out::new();
        let entry = self.entry(&mut t, actor, tr.entry, tr.from, tr.to, &tr.text, now);
        out.writes.push(Write::Timeline(t.id.clone(), entry));
        self.deadlines_follow(&mut out, &mut t, tr.entry, now);
        let reply = self.announce(&mut out, &t, actor, &action);
        out.writes.push(Write::Ticket(t));
        Ok(Decision {
            reply: Some(Reply::private(reply)),
            accepted: None,
            writes: out.writes,
        })
    }

    /// The team a person is assigned for: the one given, else the ticket's
    /// team when they are in it, else their only team.
    fn team_for(
        &self,
        t: &Ticket,
        team: Option<&TeamName>,
        user: &UserName,
    ) -> Result<TeamName, UserError> {
        let org = &self.config.org;
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

    pub(crate) fn load(&self, view: &dyn View, id: &TicketId) -> Result<Ticket, EngineError> {
        match view.ticket(id)? {
            Some(t) => Ok(t),
            None => {
                let last = view.last_ticket_number()?;
                let hint = if last == 0 {
                    "there are no tickets yet".to_string()
                } else {
                    format!(
                        "the newest is {}; /ticket list shows open ones",
                        TicketId::new(&self.config.tickets.prefix, last)
                    )
                };
                Err(UserError::new(format!("there is no ticket {id}; {hint}")).into())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(
        &self,
        t: &mut Ticket,
        actor: &Actor,
        kind: EntryKind,
        from: TicketState,
        to: TicketState,
        text: &str,
        now: Timestamp,
    ) -> TimelineEntry {
        let seq = t.timeline_len;
        t.timeline_len += 1;
        // The report relies on it: no entry is later than its ticket's update.
        if t.updated_at < now {
            t.updated_at = now;
        }
        TimelineEntry {
            seq,
            at: now,
            actor: actor.name.clone(),
            source: actor.source,
            kind,
            from: (from != to).then_some(from),
            to: (from != to).then_some(to),
            text: text.to_string(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &self,
        view: &dyn View,
        actor: &Actor,
        channel: &ChannelName,
        title: &str,
        description: Option<&str>,
        priority: Option<Priority>,
        team: Option<&TeamName>,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let org = &self.config.org;
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
        let num = view.last_ticket_number()? + 1;
        let mut out = Out::new();
        let t = self.open_ticket(
            &mut out,
            NewTicket {
                num,
                actor,
                channel,
                title,
                description,
                priority: priority.unwrap_or(self.config.tickets.default_priority),
                team,
                headline: "New ticket ",
            },
            now,
        );
        let id = t.id.clone();
        let reply = Rich::new()
            .text("Opened ")
            .bold(id.to_string())
            .text(match &t.team {
                Some(team) => format!(" for team {team}."),
                None => format!(" in #{}.", self.ops()),
            });
        out.writes.push(Write::Ticket(t));
        Ok(Decision {
            reply: Some(Reply::private(reply)),
            accepted: None,
            writes: out.writes,
        })
    }

    /// Writes a new ticket (timeline, card in the operations channel, thread,
    /// and the team's channel when it has a team) into `out`; returns it. The
    /// caller writes the ticket record itself, once it is final.
    pub(crate) fn open_ticket(&self, out: &mut Out, new: NewTicket<'_>, now: Timestamp) -> Ticket {
        let NewTicket {
            num,
            actor,
            channel,
            title,
            description,
            priority,
            team,
            headline,
        } = new;
        let id = TicketId::new(&self.config.tickets.prefix, num);
        let mut t = Ticket {
            id: id.clone(),
            title: title.to_string(),
            description: description
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            priority,
            state: TicketState::Open,
            team: None,
            assignee: None,
            opened_by: actor.name.clone(),
            source: actor.source,
            channel: channel.clone(),
            created_at: now,
            updated_at: now,
            resolution: None,
            timeline_len: 0,
            alerts: None,
            customer: None,
            sla: None,
        };
        self.arm(&mut t, now);
        let opened = self.entry(
            &mut t,
            actor,
            EntryKind::Opened,
            TicketState::Open,
            TicketState::Open,
            title,
            now,
        );
        out.writes.push(Write::Timeline(id.clone(), opened));
        out.post(
            self.ops(),
            Some(&id),
            messages::ticket_opened(headline, &t, &actor.name, actor.source),
        );
        let mut story = Rich::new()
            .text(format!("{} opened this ticket: ", actor.name))
            .quoted(one_line(title, 256));
        if let Some(d) = &t.description {
            story = story
                .text("\n")
                .quoted(crate::domain::rich::clip_plain(d, 1500));
        }
        out.thread(self.ops(), &id, story);
        if let Some(team) = team {
            // Whoever opens a ticket may say which team owns it.
            let action = Action::AssignTeam(team.clone());
            let mut tr = tickets::Transition {
                ticket: t.clone(),
                entry: EntryKind::Assigned,
                text: format!("assigned to team {team}"),
                from: TicketState::Open,
                to: TicketState::Assigned,
            };
            tr.ticket.team = Some(team.clone());
            tr.ticket.state = TicketState::Assigned;
            t = tr.ticket;
            let e = self.entry(&mut t, actor, tr.entry, tr.from, tr.to, &tr.text, now);
            out.writes.push(Write::Timeline(id.clone(), e));
            self.announce(out, &t, actor, &action);
        }
        t
    }

    /// Keeps a ticket's deadlines in step with a move, recording a chain
    /// the move stopped.
    pub(crate) fn deadlines_follow(
        &self,
        out: &mut Out,
        t: &mut Ticket,
        kind: EntryKind,
        now: Timestamp,
    ) {
        if let Some(text) = self.after_move(t, kind, now) {
            let actor = crate::engine::sla::sla_actor();
            let e = self.entry(
                t,
                &actor,
                EntryKind::Escalated,
                t.state,
                t.state,
                &text,
                now,
            );
            out.writes.push(Write::Timeline(t.id.clone(), e));
        }
    }

    /// A move the bot makes itself (the states are checked, the roles are
    /// not): on the timeline, and announced like anyone's.
    pub(crate) fn system_move(
        &self,
        out: &mut Out,
        t: &Ticket,
        actor: &Actor,
        action: Action,
        now: Timestamp,
    ) -> Result<Ticket, UserError> {
        let tr = tickets::system_transition(t, &action, &self.config.org)?;
        let mut nt = tr.ticket;
        nt.updated_at = now;
        let e = self.entry(&mut nt, actor, tr.entry, tr.from, tr.to, &tr.text, now);
        out.writes.push(Write::Timeline(nt.id.clone(), e));
        self.deadlines_follow(out, &mut nt, tr.entry, now);
        self.announce(out, &nt, actor, &action);
        Ok(nt)
    }

    /// Posts a move where the people who act next will see it, and in the
    /// ticket's thread; returns the answer for the actor.
    pub(crate) fn announce(
        &self,
        out: &mut Out,
        t: &Ticket,
        actor: &Actor,
        action: &Action,
    ) -> Rich {
        let org = &self.config.org;
        let ops = self.ops().clone();
        let id = &t.id;
        let who = actor.name.as_str();
        let team_channel = t
            .team
            .as_ref()
            .and_then(|n| org.team(n))
            .map(|tm| tm.channel.clone());
        let head = messages::ticket_head(t);
        let cmd = |c: &str| format!("/ticket {c} id:{id}");
        match action {
            Action::AssignTeam(team) => {
                let lead = org.team(team).and_then(|tm| tm.lead.as_ref());
                let body = messages::ticket_assigned_team(t, team, who, lead);
                if let Some(ch) = &team_channel {
                    out.post(ch, Some(id), body);
                }
                out.thread(
                    &ops,
                    id,
                    Rich::new().text(format!("{who} assigned it to team {team}.")),
                );
                Rich::new().text(format!("{id} is now with team {team}."))
            }
            Action::AssignUser { team, user } => {
                let body = messages::ticket_assigned_user(t, team, user, who);
                if let Some(ch) = &team_channel {
                    out.post(ch, Some(id), body);
                }
                out.thread(
                    &ops,
                    id,
                    Rich::new().text(format!("{who} assigned it to {user} of team {team}.")),
                );
                Rich::new().text(format!("{id} is now assigned to {user}."))
            }
            Action::Take => {
                out.thread(
                    &ops,
                    id,
                    Rich::new().text(format!("{who} took it; it is in progress.")),
                );
                Rich::new().text(format!(
                    "You have {id}. When it is fixed: {} note:\"…\"",
                    cmd("resolve")
                ))
            }
            Action::Resolve { note } => {
                let notify: Vec<UserName> = org
                    .operators
                    .iter()
                    .filter(|o| **o != actor.name)
                    .cloned()
                    .collect();
                let body = messages::ticket_resolved(t, who, note, &notify);
                out.post(&ops, Some(id), body);
                out.thread(
                    &ops,
                    id,
                    Rich::new()
                        .text(format!("{who} resolved it: "))
                        .quoted(crate::domain::rich::clip_plain(note, 1500)),
                );
                Rich::new().text(format!("{id} is resolved; an operator will verify it."))
            }
            Action::SendToQa => {
                let qa_channel = org.qa().map(|q| q.channel.clone()).unwrap_or(ops.clone());
                let mut body = head.text(format!(" — sent to QA by {who}. Fix: "));
                body = body.quoted(one_line(t.resolution.as_deref().unwrap_or(""), 300));
                body = body.text(format!(
                    ". Test it, then {} or {} reason:…",
                    cmd("verify"),
                    cmd("reject")
                ));
                out.post(&qa_channel, Some(id), body);
                out.thread(&ops, id, Rich::new().text(format!("{who} sent it to QA.")));
                Rich::new().text(format!("{id} is with QA now."))
            }
            Action::Verify => {
                if let Some(mail) = self.closing_mail(t) {
                    out.writes.push(Write::Effect(Effect::Mail(mail)));
                }
                let body = messages::ticket_verified(t, who);
                out.post(&ops, Some(id), body.clone());
                if let Some(ch) = team_channel.as_ref().filter(|c| **c != ops) {
                    out.post(ch, Some(id), body);
                }
                out.thread(
                    &ops,
                    id,
                    Rich::new().text(format!("{who} verified the fix; the ticket is closed.")),
                );
                Rich::new().text(format!("{id} is closed."))
            }
            Action::Reject { reason } | Action::Reopen { reason } => {
                let verb = if matches!(action, Action::Reject { .. }) {
                    "rejected"
                } else {
                    "reopened"
                };
                let mut body = head
                    .text(format!(" — {verb} by {who}: "))
                    .quoted(one_line(reason, 300));
                let back = match (&t.team, &t.assignee) {
                    (Some(team), Some(a)) => {
                        body = body.text(format!(". Back to team {team}: ")).mention(a);
                        body = body.text(format!(", take it again with {}", cmd("take")));
                        format!("team {team} ({a})")
                    }
                    (Some(team), None) => {
                        body = body.text(format!(". Back to team {team}: {}", cmd("take")));
                        format!("team {team}")
                    }
                    _ => {
                        body = body.text(". It is open again, for the operators to route.");
                        "the operators".to_string()
                    }
                };
                out.post(team_channel.as_ref().unwrap_or(&ops), Some(id), body);
                out.thread(
                    &ops,
                    id,
                    Rich::new()
                        .text(format!("{who} {verb} it: "))
                        .quoted(crate::domain::rich::clip_plain(reason, 1500)),
                );
                Rich::new().text(format!("{id} is {verb}; it went back to {back}."))
            }
            Action::Comment { text } => {
                out.thread(
                    &ops,
                    id,
                    Rich::new()
                        .text(format!("{who}: "))
                        .quoted(crate::domain::rich::clip_plain(text, 1500)),
                );
                Rich::new().text(format!("Comment added to {id}."))
            }
        }
    }

    /// Answers a read-only command.
    pub fn query(
        &self,
        view: &dyn QueryView,
        event: &Event,
        now: Timestamp,
    ) -> Result<Reply, EngineError> {
        if let Some(engine) = self.granting(event) {
            return engine.query(view, event, now);
        }
        let Event::Command { actor, command, .. } = event else {
            return Err(UserError::new("not a query").into());
        };
        let org = &self.config.org;
        match command {
            Command::TicketShow { id } => {
                let t = self.load(view, id)?;
                let timeline = view.timeline(id)?;
                Ok(Reply::private(messages::ticket_detail(
                    &t,
                    &timeline,
                    SHOW_ENTRIES,
                    org.is_operator(&actor.name),
                )))
            }
            Command::TicketList { state, team, mine } => {
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
                let (tickets, total) = view.list(&filter, LIST_LIMIT)?;
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
                Ok(Reply::private(messages::ticket_list(
                    &tickets,
                    total,
                    &words.join(", "),
                )))
            }
            Command::AlertSilences => self.list_silences(view, now),
            Command::Oncall { team } => self.oncall_show(view, team.as_ref(), now),
            Command::Report { period, team } => self.report(view, *period, team.as_ref(), now),
            Command::Runs => self.list_runs(view),
            Command::Help { command } => Ok(Reply::private(commands::help(
                &actor.name,
                org,
                *command,
                &self.config.jobs,
                &|c| self.may_run(&actor.name, c),
            ))),
            _ => Err(UserError::new("not a query").into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
