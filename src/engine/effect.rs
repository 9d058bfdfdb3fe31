//! What a decision is made of: the direct reply, the effects delivered after
//! commit (posts, cards, mails, job orders), and the writes to the store.

use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, AlertStatus, Silence};
use crate::domain::rich::Rich;
use crate::domain::{
    ChannelName, Priority, TeamName, Ticket, TicketId, TicketState, TimelineEntry, Timestamp,
    UserName,
};

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
    /// A list with a page after this one: what asks for it (Discord shows
    /// a "Next page" button; the text names the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<ListMore>,
}

impl Reply {
    pub fn private(body: impl Into<Rich>) -> Self {
        Self {
            body: body.into(),
            ephemeral: true,
            file: None,
            more: None,
        }
    }
}

/// The next page of a `/ticket list`: its filter and page number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TicketState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default)]
    pub mine: bool,
    pub page: u64,
}

impl ListMore {
    /// The command, as the console takes it.
    pub fn command(&self) -> String {
        let mut s = String::from("/ticket list");
        if let Some(st) = self.state {
            s.push_str(&format!(" state:{st}"));
        }
        if let Some(t) = &self.team {
            s.push_str(&format!(" team:{t}"));
        }
        if self.mine {
            s.push_str(" mine:true");
        }
        s.push_str(&format!(" page:{}", self.page));
        s
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
    /// While its alert group flaps: the changes within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaps: Option<u64>,
    /// The next deadline: to be taken, else to be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// Which deadlines it missed, acknowledge before resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<DeadlineKind>,
    /// Its alert's links (web URLs only): link buttons on Discord.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::domain::links::Link>,
    /// Its alert's labels and annotations.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: crate::domain::alert::Labels,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: crate::domain::alert::Labels,
}

/// One of a ticket's two deadlines. Stored (in a queued card) as
/// `acknowledge` / `resolve`, the words the card shows.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DeadlineKind {
    /// To be taken by someone.
    Acknowledge,
    /// To be resolved.
    Resolve,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl PartialEq<&str> for DeadlineKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
            flaps: t.alerts.as_ref().map(|a| a.flaps).filter(|n| *n > 0),
            due: t.sla.as_ref().and_then(|s| s.ack_due.or(s.resolve_due)),
            missed: Self::missed(t),
            links: t
                .alerts
                .as_ref()
                .map(|a| a.links.clone())
                .unwrap_or_default(),
            labels: t
                .alerts
                .as_ref()
                .map(|a| a.labels.clone())
                .unwrap_or_default(),
            annotations: t
                .alerts
                .as_ref()
                .map(|a| a.annotations.clone())
                .unwrap_or_default(),
        }
    }

    fn missed(t: &Ticket) -> Vec<DeadlineKind> {
        let mut out = Vec::new();
        if let Some(s) = &t.sla {
            if s.ack_breached {
                out.push(DeadlineKind::Acknowledge);
            }
            if s.resolve_breached {
                out.push(DeadlineKind::Resolve);
            }
        }
        out
    }

    /// Whether the card of `a` would look different from the card of `b`
    /// (alert repeats are counted on the ticket, not shown as they come).
    pub(crate) fn differs(a: &Ticket, b: &Ticket) -> bool {
        a.state != b.state
            || a.priority != b.priority
            || a.team != b.team
            || a.assignee != b.assignee
            || a.title != b.title
            || Self::missed(a) != Self::missed(b)
            || a.alerts.as_ref().map(|s| s.flaps) != b.alerts.as_ref().map(|s| s.flaps)
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
    /// A silence to make or end in Alertmanager (its API v2).
    Alertmanager(crate::domain::silences::AmOrder),
    /// A page: the ticket's card sent to one person directly.
    Page(Page),
}

/// A page to one person: on Discord a direct message with the ticket's card
/// and an Acknowledge button (acknowledge = take); in the console a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub to: UserName,
    /// Why, in a line: who paged, or which escalation step.
    pub body: Rich,
    pub card: Card,
}

/// An e-mail to a customer. Plain text; the adapter builds headers from
/// these fields, never from raw text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub ticket: TicketId,
    /// Why it is sent.
    pub purpose: MailPurpose,
}

/// Why a mail to a customer is sent. Stored (in the outbox) and written on
/// the timeline as `acknowledgement`, `update` or `closed`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum MailPurpose {
    /// The request was received and a ticket opened.
    Acknowledgement,
    /// A note on the ticket for the customer.
    Update,
    /// The ticket was closed.
    Closed,
    /// A page to a person of the organisation (not a customer).
    Page,
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
    /// Drop a job order still queued in the outbox (by its seq): the run it
    /// was for is settled without it.
    DropJobOrder(u64),
    /// The public records: the status page, public incidents, customer links.
    Public(crate::domain::status::PublicWrite),
    /// Replace the maintenance windows.
    Maintenance(crate::domain::maintenance::MaintenanceBook),
    /// Replace the heartbeats' records.
    Heartbeats(crate::domain::heartbeat::HeartbeatBook),
    /// The customer's mail a ticket's mail thread answers (its
    /// Message-ID, without angle brackets): the acknowledgement replies to
    /// it, and every later mail names it in `References`.
    MailThread(TicketId, String),
    /// What the code loop keeps of a branch (`repo/branch`).
    Branch(String, crate::domain::code::BranchState),
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
    /// Its changes between firing and resolved, and whether it flaps.
    #[serde(
        default,
        skip_serializing_if = "crate::domain::flap::FlapState::is_quiet"
    )]
    pub flap: crate::domain::flap::FlapState,
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
    /// The silences in force in Alertmanager that the bot did not make, as
    /// last read from its API (`[alerts.alertmanager]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<crate::domain::silences::AmSilence>,
}

/// The engine's verdict on one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub reply: Option<Reply>,
    /// For alert batches: what was accepted.
    pub accepted: Option<Accepted>,
    pub writes: Vec<Write>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelName, Priority, Source, TicketState, UserName};

    /// Mails and cards queued in the outbox before `purpose` and `missed`
    /// were typed still read, and are written the same way.
    #[test]
    fn mail_purpose_and_missed_deadlines_read_the_stored_words() {
        for (word, purpose) in [
            ("acknowledgement", MailPurpose::Acknowledgement),
            ("update", MailPurpose::Update),
            ("closed", MailPurpose::Closed),
        ] {
            let old = format!(
                r#"{{"to":"ann@example.com","subject":"s","body":"b","ticket":"OPS-1","purpose":"{word}"}}"#
            );
            let mail: Mail = serde_json::from_str(&old).unwrap();
            assert_eq!(mail.purpose, purpose);
            assert_eq!(mail.purpose.to_string(), word);
            let again = serde_json::to_value(&mail).unwrap();
            assert_eq!(
                again,
                serde_json::from_str::<serde_json::Value>(&old).unwrap()
            );
        }

        let card = Card {
            channel: ChannelName::parse("ops").unwrap(),
            ticket: TicketId::new("OPS", 1),
            title: "Checkout down".into(),
            description: None,
            state: TicketState::Open,
            priority: Priority::P1,
            team: None,
            assignee: None,
            source: Source::Console,
            opened_by: UserName::parse("bella").unwrap(),
            created_at: chrono::DateTime::from_timestamp(1_774_000_000, 0).unwrap(),
            customer: false,
            alerts: None,
            flaps: None,
            due: None,
            missed: vec![DeadlineKind::Acknowledge, DeadlineKind::Resolve],
            links: Vec::new(),
            labels: Default::default(),
            annotations: Default::default(),
        };
        let mut stored = serde_json::to_value(&card).unwrap();
        assert_eq!(
            stored["missed"],
            serde_json::json!(["acknowledge", "resolve"])
        );
        stored["missed"] = serde_json::json!(["resolve"]);
        let read: Card = serde_json::from_value(stored).unwrap();
        assert_eq!(read.missed, [DeadlineKind::Resolve]);
        assert_eq!(read.missed, ["resolve"]);
    }
}
