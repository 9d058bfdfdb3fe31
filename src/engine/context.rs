//! What every feature decides over: the context of one decision ([`Cx`]:
//! the configuration, the view of the store, the time), the writes it
//! collects ([`Out`]), and the moves every feature shares (loading a ticket,
//! timeline entries, opening a ticket, a move and its announcement, a
//! ticket's deadlines, a run's progress message). The bottom of the engine's
//! files: it imports no feature.

use crate::config::Config;
use crate::domain::org::Org;
use crate::domain::policy::later;
use crate::domain::rich::Rich;
use crate::domain::run::{Run, RunEntry, RunState};
use crate::domain::{
    Actor, ChannelName, EntryKind, Priority, Sla, Source, TeamName, Ticket, TicketId, TicketState,
    TimelineEntry, Timestamp, UserName,
};
use crate::engine::effect::{Ask, Effect, Mail, MailPurpose, Post, Write};
use crate::engine::messages;
use crate::engine::tickets::{self, Action};
use crate::engine::view::View;
use crate::error::{EngineError, UserError};

/// The context of one decision: what it reads, who is who, and when it
/// happens.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub(crate) config: &'a Config,
    /// The organisation as this decision sees it: the config's, with the
    /// acting person in the roles chat granted them (see `Engine::decide`).
    pub(crate) org: &'a Org,
    pub(crate) view: &'a dyn View,
    pub(crate) now: Timestamp,
}

/// The bot's name on the timeline for what deadlines do.
pub(crate) fn sla_actor() -> Actor {
    Actor::new(UserName::system("opsbot"), Source::System)
}

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

impl<'a> Cx<'a> {
    pub(crate) fn ops(&self) -> &ChannelName {
        &self.config.tickets.channel
    }

    pub(crate) fn load(&self, id: &TicketId) -> Result<Ticket, EngineError> {
        match self.view.ticket(id)? {
            Some(t) => Ok(t),
            None => {
                let last = self.view.last_ticket_number()?;
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

    pub(crate) fn entry(
        &self,
        t: &mut Ticket,
        actor: &Actor,
        kind: EntryKind,
        from: TicketState,
        to: TicketState,
        text: &str,
    ) -> TimelineEntry {
        let seq = t.timeline_len;
        t.timeline_len += 1;
        // The report relies on it: no entry is later than its ticket's update.
        if t.updated_at < self.now {
            t.updated_at = self.now;
        }
        TimelineEntry {
            seq,
            at: self.now,
            actor: actor.name.clone(),
            source: actor.source,
            kind,
            from: (from != to).then_some(from),
            to: (from != to).then_some(to),
            text: text.to_string(),
        }
    }

    /// Writes a new ticket (timeline, card in the operations channel, thread,
    /// and the team's channel when it has a team) into `out`; returns it. The
    /// caller writes the ticket record itself, once it is final.
    pub(crate) fn open_ticket(&self, out: &mut Out, new: NewTicket<'_>) -> Ticket {
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
            created_at: self.now,
            updated_at: self.now,
            resolution: None,
            timeline_len: 0,
            alerts: None,
            customer: None,
            sla: None,
        };
        self.arm(&mut t);
        let opened = self.entry(
            &mut t,
            actor,
            EntryKind::Opened,
            TicketState::Open,
            TicketState::Open,
            title,
        );
        out.writes.push(Write::Timeline(id.clone(), opened));
        out.post(
            self.ops(),
            Some(&id),
            messages::ticket_opened(headline, &t, &actor.name, actor.source),
        );
        let story = messages::ticket_opened_story(&actor.name, title, t.description.as_deref());
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
            let e = self.entry(&mut t, actor, tr.entry, tr.from, tr.to, &tr.text);
            out.writes.push(Write::Timeline(id.clone(), e));
            self.announce(out, &t, actor, &action);
        }
        t
    }

    /// Keeps a ticket's deadlines in step with a move, recording a chain
    /// the move stopped.
    pub(crate) fn deadlines_follow(&self, out: &mut Out, t: &mut Ticket, kind: EntryKind) {
        if let Some(text) = self.after_move(t, kind) {
            let actor = sla_actor();
            let e = self.entry(t, &actor, EntryKind::Escalated, t.state, t.state, &text);
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
    ) -> Result<Ticket, UserError> {
        let tr = tickets::system_transition(t, &action, self.org)?;
        let mut nt = tr.ticket;
        nt.updated_at = self.now;
        let e = self.entry(&mut nt, actor, tr.entry, tr.from, tr.to, &tr.text);
        out.writes.push(Write::Timeline(nt.id.clone(), e));
        self.deadlines_follow(out, &mut nt, tr.entry);
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
        let org = &self.org;
        let ops = self.ops().clone();
        let id = &t.id;
        let who = actor.name.as_str();
        let team_channel = t
            .team
            .as_ref()
            .and_then(|n| org.team(n))
            .map(|tm| tm.channel.clone());
        match action {
            Action::AssignTeam(team) => {
                let lead = org.team(team).and_then(|tm| tm.lead.as_ref());
                let body = messages::ticket_assigned_team(t, team, who, lead);
                if let Some(ch) = &team_channel {
                    out.post(ch, Some(id), body);
                }
            }
            Action::AssignUser { team, user } => {
                let body = messages::ticket_assigned_user(t, team, user, who);
                if let Some(ch) = &team_channel {
                    out.post(ch, Some(id), body);
                }
            }
            Action::Take | Action::Comment { .. } => {}
            Action::Resolve { note } => {
                let notify: Vec<UserName> = org
                    .operators
                    .iter()
                    .filter(|o| **o != actor.name)
                    .cloned()
                    .collect();
                let body = messages::ticket_resolved(t, who, note, &notify);
                out.post(&ops, Some(id), body);
            }
            Action::SendToQa => {
                let qa_channel = org.qa().map(|q| q.channel.clone()).unwrap_or(ops.clone());
                out.post(&qa_channel, Some(id), messages::ticket_sent_to_qa(t, who));
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
            }
            Action::Reject { reason } | Action::Reopen { reason } => {
                let body = messages::ticket_sent_back(
                    t,
                    who,
                    matches!(action, Action::Reopen { .. }),
                    reason,
                );
                out.post(team_channel.as_ref().unwrap_or(&ops), Some(id), body);
            }
        }
        out.thread(&ops, id, messages::ticket_move_story(who, action));
        messages::ticket_move_reply(t, action)
    }

    /// Sets the deadlines of a ticket that opens or is reopened at `now`.
    pub(crate) fn arm(&self, t: &mut Ticket) {
        let d = self
            .config
            .policy
            .deadlines
            .get(&t.priority)
            .copied()
            .unwrap_or_default();
        t.sla = Some(Sla {
            ack_due: d.acknowledge.and_then(|x| later(self.now, x)),
            resolve_due: d.resolve.and_then(|x| later(self.now, x)),
            ..Sla::default()
        });
    }

    /// Keeps the deadlines in step with a move; returns the text of a
    /// timeline entry when the move stopped a running chain.
    pub(crate) fn after_move(&self, t: &mut Ticket, kind: EntryKind) -> Option<String> {
        let d = self
            .config
            .policy
            .deadlines
            .get(&t.priority)
            .copied()
            .unwrap_or_default();
        let mut stopped = None;
        let sla = t.sla.get_or_insert_with(Sla::default);
        let mut stop = |sla: &mut Sla, why: &str| {
            if sla.step_due.take().is_some() {
                stopped = Some(format!(
                    "escalation {} stopped: {why}",
                    sla.chain.as_deref().unwrap_or("")
                ));
            }
        };
        match kind {
            EntryKind::Taken => {
                sla.acked_at.get_or_insert(self.now);
                sla.ack_due = None;
                stop(sla, "the ticket was taken");
            }
            EntryKind::Resolved => {
                sla.acked_at.get_or_insert(self.now);
                sla.resolved_at = Some(self.now);
                sla.ack_due = None;
                sla.resolve_due = None;
                stop(sla, "the ticket was resolved");
            }
            EntryKind::Rejected => {
                // The fix did not hold: the time to resolve starts again.
                sla.resolved_at = None;
                sla.resolve_due = d.resolve.and_then(|x| later(self.now, x));
                sla.resolve_breached = false;
            }
            EntryKind::Reopened => {
                *sla = Sla {
                    ack_due: d.acknowledge.and_then(|x| later(self.now, x)),
                    resolve_due: d.resolve.and_then(|x| later(self.now, x)),
                    ..Sla::default()
                };
            }
            _ => {}
        }
        stopped
    }

    /// The channels that follow a run: where it was asked for, and its team's.
    fn run_channels(&self, run: &Run) -> Vec<ChannelName> {
        let mut out = vec![run.channel.clone()];
        let team = match &run.deploy {
            Some(d) => self
                .config
                .services
                .get(&d.service)
                .and_then(|s| s.team.as_ref()),
            None => self.config.jobs.get(&run.job).and_then(|j| j.team.as_ref()),
        }
        .and_then(|t| self.org.team(t));
        if let Some(t) = team {
            if !out.contains(&t.channel) {
                out.push(t.channel.clone());
            }
        }
        out
    }

    /// The progress message of a run, as it stands.
    pub(crate) fn progress_of(&self, out: &mut Out, run: &Run) {
        let body = messages::run_progress(run);
        let ask = (run.state == RunState::WaitingApproval).then_some(Ask::Approval { run: run.id });
        for ch in self.run_channels(run) {
            out.progress(
                &ch,
                format!("run:{}:{}", run.id, ch),
                body.clone(),
                ask.clone(),
            );
        }
    }

    /// The mail that tells a ticket's customer it is closed, if it has one.
    pub(crate) fn closing_mail(&self, t: &Ticket) -> Option<Mail> {
        let c = t.customer.as_ref()?;
        let tpl = &self.config.support.mail;
        let note = t.resolution.as_deref().unwrap_or("");
        Some(Mail {
            to: c.email.clone(),
            subject: messages::subject_line(&messages::fill(&tpl.closed_subject, t, "", note)),
            body: messages::fill(&tpl.closed_body, t, "", note),
            ticket: t.id.clone(),
            purpose: MailPurpose::Closed,
        })
    }
}

pub(crate) fn step_run(
    run: &mut Run,
    actor: &Actor,
    state: RunState,
    text: String,
    now: Timestamp,
) {
    run.state = state;
    run.timeline.push(RunEntry {
        at: now,
        actor: actor.name.clone(),
        source: actor.source,
        state,
        text,
    });
}
