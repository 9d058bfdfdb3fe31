//! The public side of the bot: the status page's records (each service's
//! state, the log of changes, the incidents made public) and the customer's
//! page link (its generation, which revoking a link counts up). No rules,
//! no I/O.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::error::UserError;
use crate::domain::{TicketId, Timestamp};

/// A service's state on the status page. The names are the serde names,
/// the `Display`, and what `/status set state:…` takes.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
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
pub enum ServiceState {
    #[default]
    Operational,
    Degraded,
    PartialOutage,
    MajorOutage,
    Maintenance,
}

impl ServiceState {
    pub const ALL: &'static [ServiceState] = <ServiceState as strum::VariantArray>::VARIANTS;
    pub const NAMES: &'static [&'static str] = <ServiceState as strum::VariantNames>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The state in words for the page: `partial outage`.
    pub fn words(self) -> &'static str {
        match self {
            ServiceState::Operational => "Operational",
            ServiceState::Degraded => "Degraded performance",
            ServiceState::PartialOutage => "Partial outage",
            ServiceState::MajorOutage => "Major outage",
            ServiceState::Maintenance => "Under maintenance",
        }
    }
}

impl FromStr for ServiceState {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, UserError> {
        ServiceState::ALL
            .iter()
            .copied()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                UserError::new(format!(
                    "`state` must be one of {}; got `{}`",
                    ServiceState::NAMES.join(", "),
                    crate::domain::rich::clip_plain(s, 40)
                ))
            })
    }
}

/// One service's (or component's) current state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub state: ServiceState,
    /// What the operator told the public, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub since: Timestamp,
}

/// One `/status set`, kept for the page's history and the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub at: Timestamp,
    pub service: String,
    pub state: ServiceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the status page shows of the services: their states, and the
/// recent changes (newest last).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBoard {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceStatus>,
    #[serde(default)]
    pub log: Vec<StatusChange>,
}

/// How long the status page remembers changes and incidents.
pub const HISTORY_DAYS: i64 = 90;
/// The most changes the board keeps, whatever their age.
pub const MAX_LOG: usize = 1000;

/// An incident ticket an operator made public, with its public updates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIncident {
    pub ticket: TicketId,
    /// The ticket's title when it was made public.
    pub title: String,
    pub published_at: Timestamp,
    pub updates: Vec<PublicUpdate>,
}

/// One public update of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUpdate {
    pub at: Timestamp,
    pub text: String,
}

/// A write of the public records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicWrite {
    /// Replace the status board.
    Board(StatusBoard),
    /// Insert or replace a public incident.
    Incident(PublicIncident),
    /// The generation of a ticket's customer link (counted up to revoke it).
    LinkGeneration(TicketId, u64),
    /// The seqs of a ticket's timeline entries the customer may see (the
    /// team's replies mailed to them).
    CustomerVisible(TicketId, Vec<u32>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_refusals_list_the_valid_ones() {
        for &s in ServiceState::ALL {
            assert_eq!(s.as_str().parse::<ServiceState>().unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(
            "down".parse::<ServiceState>().unwrap_err().to_string(),
            "`state` must be one of operational, degraded, partial_outage, major_outage, maintenance; got `down`"
        );
    }
}
