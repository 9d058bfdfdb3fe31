//! The vocabulary of the bot: ids parsed once at the edge, tickets, timelines.
//!
//! Nothing here does I/O. Names and ids are newtypes so that nothing deeper
//! than an adapter handles a raw string for them.

pub mod alert;
pub mod ci;
pub mod code;
pub mod error;
pub mod flap;
pub mod heartbeat;
pub mod job;
pub mod links;
pub mod maintenance;
pub mod org;
pub mod policy;
pub mod rich;
pub mod rotation;
pub mod run;
pub mod sanitize;
pub mod service;
pub mod silences;
pub mod status;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::error::UserError;

/// Wall-clock time as the engine sees it (always passed in, never read inside).
pub type Timestamp = DateTime<Utc>;

/// Longest ticket title accepted.
pub const MAX_TITLE: usize = 256;
/// Longest description, note, reason or comment accepted.
pub const MAX_TEXT: usize = 4000;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses a name: lowercase letters, digits, `-`, `_` and `.`,
            /// starting with a letter or digit, at most 64 characters.
            pub fn parse(raw: &str) -> Result<Self, UserError> {
                let s = raw.trim();
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
                if ok {
                    Ok(Self(s.to_string()))
                } else {
                    Err(UserError::new(format!(
                        "`{}` is not a valid {} name: use lowercase letters, digits, `-`, `_` or `.` (at most 64)",
                        crate::domain::rich::clip_plain(s, 40),
                        $what
                    )))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A person, by the name the configuration gives them.
    UserName,
    "person"
);
impl UserName {
    /// A name the bot itself uses (`alertmanager`, `monitoring`): a literal
    /// known to be valid.
    pub(crate) fn system(name: &'static str) -> UserName {
        debug_assert!(UserName::parse(name).is_ok(), "{name}");
        UserName(name.to_string())
    }
}

name_type!(
    /// A team from the configuration.
    TeamName,
    "team"
);

/// A chat channel, by the name the configuration uses (without the `#`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelName(String);

impl ChannelName {
    /// Accepts `ops` or `#ops`.
    pub fn parse(raw: &str) -> Result<Self, UserError> {
        let s = raw.trim();
        let s = s.strip_prefix('#').unwrap_or(s);
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(UserError::new(format!(
                "`{}` is not a valid channel name: use lowercase letters, digits, `-` or `_`",
                crate::domain::rich::clip_plain(s, 40)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `PREFIX-N`: the prefix comes from the configuration, N counts from 1.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId {
    prefix: String,
    num: u64,
}

impl TicketId {
    pub fn new(prefix: &str, num: u64) -> Self {
        Self {
            prefix: prefix.to_string(),
            num,
        }
    }

    pub fn num(&self) -> u64 {
        self.num
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Parses what a user typed: `OPS-12`, `ops-12` or just `12`, under the
    /// configured prefix.
    pub fn parse(raw: &str, prefix: &str) -> Result<Self, UserError> {
        let s = raw.trim();
        let digits = match s.rsplit_once('-') {
            Some((p, n)) if p.eq_ignore_ascii_case(prefix) => n,
            Some(_) => "",
            None => s.strip_prefix('#').unwrap_or(s),
        };
        match digits.parse::<u64>() {
            Ok(n) if n > 0 && digits.chars().all(|c| c.is_ascii_digit()) => {
                Ok(Self::new(prefix, n))
            }
            _ => Err(UserError::new(format!(
                "`{}` is not a ticket id: ticket ids look like {prefix}-12",
                crate::domain::rich::clip_plain(s, 40)
            ))),
        }
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.prefix, self.num)
    }
}

impl From<TicketId> for String {
    fn from(id: TicketId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for TicketId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (p, n) = s
            .rsplit_once('-')
            .ok_or_else(|| format!("bad ticket id {s:?}"))?;
        let num = n.parse().map_err(|_| format!("bad ticket id {s:?}"))?;
        Ok(Self::new(p, num))
    }
}

/// Ticket priority, `p1` the highest. Its names (`p1`…`p4`) are the serde
/// names, the `Display` and the list in the parse error, all from the derives.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::VariantNames,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: &'static [Priority] = <Priority as strum::VariantArray>::VARIANTS;
    pub const NAMES: &'static [&'static str] = <Priority as strum::VariantNames>::VARIANTS;

    /// One step more urgent (p1 stays p1).
    pub fn raised(self) -> Priority {
        match self {
            Priority::P1 | Priority::P2 => Priority::P1,
            Priority::P3 => Priority::P2,
            Priority::P4 => Priority::P3,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Priority {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, UserError> {
        one_of("priority", Priority::ALL, Priority::NAMES, s)
    }
}

/// The variant of `all` whose name is `s` (any case, spaces around), or an
/// error naming `key` and every name it may take.
fn one_of<T: Copy + Into<&'static str>>(
    key: &str,
    all: &[T],
    names: &[&str],
    s: &str,
) -> Result<T, UserError> {
    all.iter()
        .copied()
        .find(|v| (*v).into().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            UserError::new(format!(
                "`{key}` must be one of {}; got `{}`",
                names.join(", "),
                crate::domain::rich::clip_plain(s, 40)
            ))
        })
}

/// The six states of a ticket. See [`crate::engine::tickets`] for the moves between them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TicketState {
    Open,
    Assigned,
    InProgress,
    Resolved,
    Qa,
    Closed,
}

impl TicketState {
    pub const ALL: &'static [TicketState] = <TicketState as strum::VariantArray>::VARIANTS;
    pub const NAMES: &'static [&'static str] = <TicketState as strum::VariantNames>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// One byte per state, for index keys.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl FromStr for TicketState {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, UserError> {
        one_of("state", TicketState::ALL, TicketState::NAMES, s)
    }
}

/// Where an action came from.
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
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    Console,
    Discord,
    Http,
    Alert,
    Support,
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who acts, and through which adapter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: UserName,
    pub source: Source,
    /// Roles the chat gave this person for this action (a Discord role the
    /// config maps to operators, release managers or a team), on top of
    /// what `bot.toml` says of them by name.
    #[serde(default, skip_serializing_if = "Grants::is_empty")]
    pub grants: Grants,
}

impl Actor {
    pub fn new(name: UserName, source: Source) -> Self {
        Self {
            name,
            source,
            grants: Grants::default(),
        }
    }

    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }
}

/// Roles granted by chat rather than by name in `bot.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    #[serde(default)]
    pub operator: bool,
    #[serde(default)]
    pub release_manager: bool,
    /// Teams the person acts as a member of.
    #[serde(default)]
    pub teams: Vec<TeamName>,
}

impl Grants {
    pub fn is_empty(&self) -> bool {
        !self.operator && !self.release_manager && self.teams.is_empty()
    }
}

/// A ticket as stored. Its timeline is stored beside it, entry by entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub priority: Priority,
    pub state: TicketState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<UserName>,
    pub opened_by: UserName,
    pub source: Source,
    /// The channel where the ticket was opened.
    pub channel: ChannelName,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last resolution note, while resolved, in QA or closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Number of timeline entries; the next entry's sequence number.
    pub timeline_len: u32,
    /// For tickets opened by monitoring: how many alerts, and when the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertStats>,
    /// For tickets a customer opened through the app: who to write to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Deadlines and escalation, as the policy set them when it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
}

/// A ticket's deadlines and the progress of its escalation chain. Kept with
/// the ticket, so that a restart neither repeats nor skips a step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sla {
    /// A member must take it by then; `None` once taken or resolved (or no deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_due: Option<Timestamp>,
    /// It must be resolved by then; `None` once resolved (or no deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_due: Option<Timestamp>,
    /// When it was first taken (or resolved without being taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<Timestamp>,
    /// When it was last resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The acknowledge deadline passed before anyone took it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ack_breached: bool,
    /// The resolve deadline passed before it was resolved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolve_breached: bool,
    /// The escalation chain started when the acknowledge deadline passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The index of the chain's next step.
    #[serde(default)]
    pub step: u32,
    /// When the next step is due; `None`: no chain running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_due: Option<Timestamp>,
}

impl Sla {
    /// The earliest timer still to fire, if any: the key of the due index.
    pub fn next_due(&self) -> Option<Timestamp> {
        let ack = self.ack_due.filter(|_| !self.ack_breached);
        let res = self.resolve_due.filter(|_| !self.resolve_breached);
        [ack, res, self.step_due].into_iter().flatten().min()
    }
}

/// The customer behind a support ticket, as the app's session check said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub email: String,
}

/// Monitoring's side of a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStats {
    /// The alert group the ticket stands for.
    pub group: String,
    /// Alerts received for it, repeats included.
    pub count: u64,
    pub last_seen: Timestamp,
    /// While its group flaps: its changes between firing and resolved
    /// within the route's window (0: not flapping).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flaps: u64,
    /// The first alert's links (runbook, dashboard…), web URLs only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::domain::links::Link>,
    /// The first alert's labels and annotations (links left out), for its
    /// card.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: crate::domain::alert::Labels,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: crate::domain::alert::Labels,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What happened on a ticket.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EntryKind {
    Opened,
    /// Monitoring: an alert fired, repeated, joined or recovered.
    Alert,
    /// Monitoring: no alert for longer than the route allows.
    Stale,
    /// A mail to the customer was sent.
    Mailed,
    Assigned,
    Taken,
    Commented,
    Resolved,
    SentToQa,
    Verified,
    Rejected,
    Reopened,
    /// A deadline passed: not taken, or not resolved, in time.
    Breached,
    /// A step of an escalation chain ran (or the chain stopped).
    Escalated,
    /// The priority changed (an escalation raised it).
    Priority,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One line of a ticket's story: who did what, when, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub seq: u32,
    pub at: Timestamp,
    pub actor: UserName,
    pub source: Source,
    pub kind: EntryKind,
    /// The state before, when the entry changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TicketState>,
    /// The state after, when the entry changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TicketState>,
    /// What the actor wrote, or a short description of the action.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_parse_with_or_without_prefix() {
        assert_eq!(TicketId::parse("OPS-12", "OPS").unwrap().num(), 12);
        assert_eq!(
            TicketId::parse("ops-3", "OPS").unwrap().to_string(),
            "OPS-3"
        );
        assert_eq!(TicketId::parse("7", "OPS").unwrap().to_string(), "OPS-7");
        for bad in [
            "", "OPS-", "OPS-0", "XYZ-3", "OPS-1a", "-4", "OPS--1", "OPS-+1",
        ] {
            let err = TicketId::parse(bad, "OPS").unwrap_err();
            assert!(err.to_string().contains("OPS-12"), "{bad}: {err}");
        }
    }

    #[test]
    fn names_refuse_odd_characters() {
        assert!(UserName::parse("bella").is_ok());
        assert!(UserName::parse("Bella").is_err());
        assert!(UserName::parse("@everyone").is_err());
        assert!(TeamName::parse("").is_err());
        assert_eq!(ChannelName::parse("#ops").unwrap().as_str(), "ops");
    }

    /// The derived names are the stored (serde) names, so `Display`, the
    /// parse errors and the database agree.
    #[test]
    fn derived_names_are_the_serde_names() {
        fn same<T: Serialize + Copy + Into<&'static str> + fmt::Display>(all: &[T]) {
            for &v in all {
                let serde = serde_json::to_value(v).unwrap();
                let name: &'static str = v.into();
                assert_eq!(serde, serde_json::Value::from(name));
                assert_eq!(v.to_string(), name);
            }
        }
        same(Priority::ALL);
        same(TicketState::ALL);
        same(<Source as strum::VariantArray>::VARIANTS);
        same(<run::RunState as strum::VariantArray>::VARIANTS);
        same(<alert::AlertSource as strum::VariantArray>::VARIANTS);
        fn same_name<T: Serialize + Copy + Into<&'static str>>(all: &[T]) {
            for &v in all {
                let name: &'static str = v.into();
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::Value::from(name)
                );
            }
        }
        same_name(<EntryKind as strum::VariantArray>::VARIANTS);
        same_name(<alert::AlertStatus as strum::VariantArray>::VARIANTS);
        assert_eq!(Priority::NAMES, ["p1", "p2", "p3", "p4"]);
        assert_eq!(
            TicketState::NAMES,
            [
                "open",
                "assigned",
                "in_progress",
                "resolved",
                "qa",
                "closed"
            ]
        );
    }

    #[test]
    fn priorities_and_states_round_trip() {
        for &p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        }
        for &s in TicketState::ALL {
            assert_eq!(s.as_str().parse::<TicketState>().unwrap(), s);
        }
        let err = "urgent".parse::<Priority>().unwrap_err().to_string();
        assert_eq!(
            err,
            "`priority` must be one of p1, p2, p3, p4; got `urgent`"
        );
    }
}
