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
mod support;
pub mod tickets;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commands::{self, Command};
use crate::config::Config;
use crate::domain::alert::{Alert, AlertStatus, Silence};
use crate::domain::rich::{one_line, Rich};
use crate::domain::{
    Actor, ChannelName, EntryKind, Priority, TeamName, Ticket, TicketId, TicketState,
    TimelineEntry, Timestamp, UserName,
};
use crate::engine::tickets::Action;
use crate::error::{EngineError, StoreError, UserError};

/// Something that happened, typed at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A slash command run by a person in a channel.
    Command {
        actor: Actor,
        channel: ChannelName,
        command: Command,
    },
    /// An ordinary chat message in a channel.
    ChatMessage {
        author: Actor,
        channel: ChannelName,
        text: String,
    },
    /// A batch of alerts from a monitoring tool, accepted or refused whole.
    Alerts { alerts: Vec<Alert> },
    /// Alert groups the timer found quiet for longer than their route allows.
    MarkStale { groups: Vec<String> },
    /// A customer's request from the company app, signature and session
    /// already checked by the adapter.
    SupportRequest {
        customer: crate::domain::Customer,
        subject: String,
        message: String,
        idempotency_key: Option<String>,
    },
    /// The mail server took a mail: it goes on the ticket's record.
    MailSent { mail: Mail },
    /// A job backend reports on a run.
    RunUpdate {
        run: crate::domain::run::RunId,
        update: crate::domain::run::RunUpdate,
    },
    /// The timer: tickets the due index says have a deadline or an
    /// escalation step due (the engine checks again), and the rotations'
    /// handoffs.
    Tick { tickets: Vec<TicketId> },
    /// The weekly report, computed by the timer from the store: posted once
    /// for the scheduled instant `due`.
    ScheduledReport {
        due: Timestamp,
        body: Rich,
        file: Option<Attachment>,
    },
}

impl Event {
    /// Whether the event only reads.
    pub fn is_query(&self) -> bool {
        matches!(self, Event::Command { command, .. } if command.is_query())
    }

    /// The event with every piece of untrusted text in it (chat text, alert
    /// labels and annotations, the customer's words, job output, a job's
    /// parameter values) through [`crate::domain::sanitize::clean_untrusted`], as it enters the
    /// engine: nothing stored or shown carries a terminal escape or a bidi
    /// override. Typed commands are cleaned as they are parsed
    /// ([`Command::from_args`](crate::commands::Command::from_args)).
    pub fn cleaned(self) -> Event {
        let c = crate::domain::sanitize::clean_owned;
        let labels = |l: crate::domain::alert::Labels| -> crate::domain::alert::Labels {
            l.into_iter().map(|(k, v)| (c(k), c(v))).collect()
        };
        match self {
            Event::Command {
                actor,
                channel,
                command: Command::Build { job, params },
            } => Event::Command {
                actor,
                channel,
                command: Command::Build {
                    job: c(job),
                    params: params.into_iter().map(|(k, v)| (c(k), c(v))).collect(),
                },
            },
            Event::ChatMessage {
                author,
                channel,
                text,
            } => Event::ChatMessage {
                author,
                channel,
                text: c(text),
            },
            Event::Alerts { alerts } => Event::Alerts {
                alerts: alerts
                    .into_iter()
                    .map(|a| crate::domain::alert::Alert {
                        labels: labels(a.labels),
                        annotations: labels(a.annotations),
                        fingerprint: c(a.fingerprint),
                        generator_url: a.generator_url.map(c),
                        ..a
                    })
                    .collect(),
            },
            Event::SupportRequest {
                customer,
                subject,
                message,
                idempotency_key,
            } => Event::SupportRequest {
                customer: crate::domain::Customer {
                    id: c(customer.id),
                    email: c(customer.email),
                },
                subject: c(subject),
                message: c(message),
                idempotency_key,
            },
            Event::RunUpdate { run, update } => {
                use crate::domain::run::RunUpdate as U;
                let update = match update {
                    U::Submitted { backend_ref } => U::Submitted {
                        backend_ref: c(backend_ref),
                    },
                    U::Waiting { reason } => U::Waiting { reason: c(reason) },
                    U::Started { backend_ref } => U::Started {
                        backend_ref: c(backend_ref),
                    },
                    U::Finished {
                        success,
                        reason,
                        tail,
                    } => U::Finished {
                        success,
                        reason: c(reason),
                        tail: c(tail),
                    },
                    U::Lost { reason } => U::Lost { reason: c(reason) },
                };
                Event::RunUpdate { run, update }
            }
            other => other,
        }
    }
}

/// The direct answer to the person who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub body: Rich,
    /// Seen only by the person who asked.
    pub ephemeral: bool,
    /// A file to attach (the chart of `/report`): Discord attaches it, the
    /// console writes it under the data folder and prints its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Attachment>,
}

impl Reply {
    pub fn private(body: impl Into<Rich>) -> Self {
        Self {
            body: body.into(),
            ephemeral: true,
            file: None,
        }
    }
}

/// A file that goes with a message: its name (such as `report.png`) and
/// bytes (a PNG). Kept in the outbox as hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attachment({}, {} bytes)", self.name, self.bytes.len())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// A message to post in a channel, or in a ticket's thread under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub channel: ChannelName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketId>,
    /// Posted in the ticket's own thread rather than in the channel.
    #[serde(default)]
    pub thread: bool,
    pub body: Rich,
    /// Caused by monitoring: may be merged with others into one summary
    /// when many wait for the same channel (storm control).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alert: bool,
    /// A message that follows one thing (a run's progress): later posts with
    /// the same key replace it (Discord edits it in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// This post is the ticket's card (its first post in the operations
    /// channel): adapters that can show more (Discord) show the ticket's
    /// state with it, with the buttons that fit, and keep it up to date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// What the post asks of its readers, for adapters with buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Ask>,
    /// A file attached to the post (the scheduled report's chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Attachment>,
}

/// What a ticket's card shows: the ticket as it stands after a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The operations channel, where the card is.
    pub channel: ChannelName,
    pub ticket: TicketId,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub state: TicketState,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<UserName>,
    pub source: crate::domain::Source,
    pub opened_by: UserName,
    pub created_at: Timestamp,
    /// A customer waits for it (a support request).
    #[serde(default)]
    pub customer: bool,
    /// Alerts received for it, for monitoring's tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<u64>,
    /// The next deadline: to be taken, else to be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// Which deadlines it missed: `acknowledge`, `resolve`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

impl Card {
    pub fn of(t: &Ticket, channel: &ChannelName) -> Self {
        Self {
            channel: channel.clone(),
            ticket: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            state: t.state,
            priority: t.priority,
            team: t.team.clone(),
            assignee: t.assignee.clone(),
            source: t.source,
            opened_by: t.opened_by.clone(),
            created_at: t.created_at,
            customer: t.customer.is_some(),
            alerts: t.alerts.as_ref().map(|a| a.count),
            due: t.sla.as_ref().and_then(|s| s.ack_due.or(s.resolve_due)),
            missed: Self::missed(t),
        }
    }

    fn missed(t: &Ticket) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = &t.sla {
            if s.ack_breached {
                out.push("acknowledge".to_string());
            }
            if s.resolve_breached {
                out.push("resolve".to_string());
            }
        }
        out
    }

    /// Whether the card of `a` would look different from the card of `b`
    /// (alert repeats are counted on the ticket, not shown as they come).
    fn differs(a: &Ticket, b: &Ticket) -> bool {
        a.state != b.state
            || a.priority != b.priority
            || a.team != b.team
            || a.assignee != b.assignee
            || a.title != b.title
            || Self::missed(a) != Self::missed(b)
    }
}

/// A question a post puts to its readers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ask {
    /// Approve or deny this deploy (`/approve`, `/deny`).
    Approval { run: crate::domain::run::RunId },
}

/// What follows from a decision, delivered after commit by the outbox workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    Post(Post),
    /// The ticket's card changed: adapters that keep a card up to date
    /// (Discord) edit it; the others show nothing (the posts said it).
    Card(Card),
    Mail(Mail),
    Job(crate::domain::run::JobOrder),
}

/// An e-mail to a customer. Plain text; the adapter builds headers from
/// these fields, never from raw text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub ticket: TicketId,
    /// Why it is sent: `acknowledgement`, `update` or `closed`.
    pub purpose: String,
}

/// One record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Insert or replace a ticket (the store keeps its indexes).
    Ticket(Ticket),
    /// Append an entry to a ticket's timeline.
    Timeline(TicketId, TimelineEntry),
    /// Queue an effect in the outbox.
    Effect(Effect),
    /// Insert or replace an alert group (its members kept in the record,
    /// if any, are written as members of their own).
    Group(GroupRecord),
    /// Insert or replace one alert of a group: (group key, fingerprint, alert).
    /// Each is a record of its own, so that an alert costs the same whatever
    /// the size of its group.
    Member(String, String, Member),
    /// Replace the silences.
    Silences(SilenceBook),
    /// Keep a silenced alert on record.
    Silenced(Alert),
    /// Remember which ticket a support request's `Idempotency-Key` opened.
    Idempotency(String, TicketId),
    /// Insert or replace a run.
    Run(crate::domain::run::Run),
    /// The ticket open for a job that is failing on its main ref (None: fixed).
    Broken(String, Option<TicketId>),
    /// Who holds the deploy lock of `service/env` (None: free).
    Lock(String, Option<crate::domain::run::RunId>),
    /// The succeeded deploys of `service/env`, oldest first.
    History(String, Vec<crate::domain::run::Deployed>),
    /// Replace a team's on-call overrides.
    Overrides(TeamName, Vec<crate::domain::rotation::Override>),
    /// A timer's mark (the last handoff posted, the last scheduled report).
    Marker(String, i64),
}

/// What an alert batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub accepted: usize,
    /// The tickets the batch opened or touched, in order, without repeats.
    pub tickets: Vec<TicketId>,
}

/// One open alert group and its ticket. Its alerts are records of their
/// own ([`Write::Member`], [`View::member`]); the group keeps their count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub key: String,
    pub route: String,
    pub ticket: TicketId,
    /// Alerts in the group, by fingerprint: only in records written before
    /// alerts had records of their own (the store splits them when it
    /// opens), and as a way to write a group with its first alerts.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub members: std::collections::BTreeMap<String, Member>,
    pub last_seen: Timestamp,
    #[serde(default)]
    pub stale: bool,
    /// How many of its alerts are firing.
    #[serde(default)]
    pub firing: u64,
    /// The firing episode, counted up when the ticket is reopened: an alert
    /// last seen in an earlier episode counts as resolved.
    #[serde(default)]
    pub episode: u64,
    /// The episode the group's ticket began in: alerts last seen before it
    /// belong to an earlier ticket of the group, not to this one.
    #[serde(default)]
    pub first_episode: u64,
}

/// One alert of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub status: AlertStatus,
    pub count: u64,
    pub last_seen: Timestamp,
    pub summary: String,
    /// When the current firing episode started, as the source said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// The group's episode when this alert was last seen.
    #[serde(default)]
    pub episode: u64,
}

/// The silences, with the next id to hand out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceBook {
    pub next_id: u64,
    pub silences: Vec<Silence>,
}

/// The engine's verdict on one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub reply: Option<Reply>,
    /// For alert batches: what was accepted.
    pub accepted: Option<Accepted>,
    pub writes: Vec<Write>,
}

/// Reads the engine may make while deciding (inside the write transaction).
pub trait View {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;
    /// The highest ticket number ever allocated (0 when none).
    fn last_ticket_number(&self) -> Result<u64, StoreError>;
    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError>;
    /// One alert of a group, by fingerprint.
    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError>;
    fn silences(&self) -> Result<SilenceBook, StoreError>;
    /// The ticket a support request with this idempotency key opened.
    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError>;
    fn run(
        &self,
        id: crate::domain::run::RunId,
    ) -> Result<Option<crate::domain::run::Run>, StoreError>;
    /// The highest run number ever allocated (0 when none).
    fn last_run_number(&self) -> Result<u64, StoreError>;
    /// The ticket open for a job failing on its main ref.
    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError>;
    /// Who holds the deploy lock of `service/env`.
    fn lock(&self, key: &str) -> Result<Option<crate::domain::run::RunId>, StoreError>;
    /// The succeeded deploys of `service/env`, oldest first.
    fn history(&self, key: &str) -> Result<Vec<crate::domain::run::Deployed>, StoreError>;
    /// A team's on-call overrides.
    fn overrides(
        &self,
        team: &TeamName,
    ) -> Result<Vec<crate::domain::rotation::Override>, StoreError>;
    /// A timer's mark.
    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError>;
    /// How many tickets are assigned to or in progress with `user`.
    fn load(&self, user: &UserName) -> Result<u64, StoreError>;
}

/// What `/ticket list` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `None`: every state but `closed`.
    pub state: Option<TicketState>,
    pub team: Option<TeamName>,
    pub assignee: Option<UserName>,
}

/// Reads for queries, outside any transaction.
pub trait QueryView: View {
    fn timeline(&self, id: &TicketId) -> Result<Vec<TimelineEntry>, StoreError>;
    /// Matching tickets sorted by priority then id, at most `limit`, with the
    /// total count.
    fn list(&self, filter: &ListFilter, limit: usize) -> Result<(Vec<Ticket>, usize), StoreError>;
    /// The newest runs, newest first.
    fn recent_runs(&self, limit: usize) -> Result<Vec<crate::domain::run::Run>, StoreError>;
    /// Every ticket (of `team`, when given) with its timeline, as a report
    /// reads them; tickets last touched before `from` may be left out.
    fn report_rows(
        &self,
        from: Timestamp,
        team: Option<&TeamName>,
    ) -> Result<Vec<crate::report::Row>, StoreError>;
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
            Event::ScheduledReport { due, body, file } => {
                self.scheduled_report(view, *due, body, file.as_ref())
            }
        }
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
            Rich::new()
                .text(headline)
                .append(messages::ticket_head(&t))
                .text(format!(" — opened by {} ({})", actor.name, actor.source)),
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
                let mut body = head.text(format!(" — assigned to team {team} by {who}."));
                if let Some(lead) = org.team(team).and_then(|tm| tm.lead.as_ref()) {
                    body = body.text(" ").mention(lead).text(", pick someone with ");
                    body = body.text(format!("/ticket assign id:{id} user:…"));
                    body = body.text(format!(", or take it: {}", cmd("take")));
                } else {
                    body = body.text(format!(" Take it: {}", cmd("take")));
                }
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
                let body = head
                    .text(" — assigned to ")
                    .mention(user)
                    .text(format!(" (team {team}) by {who}. Take it: {}", cmd("take")));
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
                let mut body = head
                    .text(format!(" — resolved by {who}: "))
                    .quoted(one_line(note, 300));
                body = body.text(format!(
                    ". Operators, verify it ({}), send it to QA ({}) or reject it ({} reason:…).",
                    cmd("verify"),
                    cmd("qa"),
                    cmd("reject")
                ));
                for o in &org.operators {
                    if o != &actor.name {
                        body = body.text(" ").mention(o);
                    }
                }
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
                let body = head.text(format!(" — verified by {who} and closed."));
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
