//! Heartbeats, a dead man's switch: something that should be heard from
//! every so often (a `POST /hooks/heartbeat/NAME`, or Alertmanager's
//! always-firing `Watchdog` alert). Silence past its deadline opens a
//! ticket; beats coming back resolve it for verification.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Priority, TeamName, TicketId, Timestamp};

/// A `[heartbeats.NAME]` of `bot.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub name: String,
    /// How often it beats.
    pub every: std::time::Duration,
    /// How late a beat may be before the silence is a problem.
    pub grace: std::time::Duration,
    pub team: Option<TeamName>,
    pub priority: Priority,
    /// An alert of this name (firing) counts as a beat, such as `Watchdog`.
    pub alertname: Option<String>,
}

impl Heartbeat {
    /// When the silence becomes a problem, heard from last at `last`.
    pub fn deadline(&self, last: Timestamp) -> Option<Timestamp> {
        let wait = chrono::Duration::from_std(self.every.checked_add(self.grace)?).ok()?;
        last.checked_add_signed(wait)
    }
}

/// What the bot knows of one heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The last beat, if any came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
    /// Since when the bot waits for it (its first check).
    pub since: Timestamp,
    /// The ticket its silence opened, while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketId>,
    /// When the silence was found (a silence opens one ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_at: Option<Timestamp>,
}

impl Beat {
    /// Heard from last (or waited for since).
    pub fn heard(&self) -> Timestamp {
        self.last.unwrap_or(self.since)
    }
}

/// Every heartbeat's record, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatBook {
    pub beats: BTreeMap<String, Beat>,
}
