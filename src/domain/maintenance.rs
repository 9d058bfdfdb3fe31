//! Maintenance windows: a span of time in which alerts that match are
//! recorded but open no ticket, page nobody and post nothing. A window is
//! one-off, or recurs daily or weekly at the same local wall-clock time in
//! its time zone (DST safe the way the on-call rotations are: see
//! [`crate::domain::rotation::local_instant`]).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, Matcher};
use crate::domain::error::UserError;
use crate::domain::rotation::local_instant;
use crate::domain::run::RunId;
use crate::domain::{TeamName, Timestamp};

/// How many firing alerts a window keeps to hand on when it ends (the
/// count goes on past it).
pub const MAX_HELD: usize = 1000;

/// How often a window comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Every {
    Daily,
    Weekly,
}

impl Every {
    pub fn days(self) -> i64 {
        match self {
            Every::Daily => 1,
            Every::Weekly => 7,
        }
    }

    pub fn parse(raw: &str) -> Result<Every, UserError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "daily" => Ok(Every::Daily),
            "weekly" => Ok(Every::Weekly),
            other => Err(UserError::new(format!(
                "`every` must be daily or weekly; got `{}`",
                crate::domain::rich::clip_plain(other, 40)
            ))),
        }
    }
}

/// A recurring window's rule: the local wall-clock start and end of its
/// current occurrence, in its time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recur {
    pub every: Every,
    /// An IANA time zone name, such as `Europe/Berlin`.
    pub tz: String,
    pub local_from: NaiveDateTime,
    pub local_until: NaiveDateTime,
}

impl Recur {
    fn zone(&self) -> Tz {
        self.tz.parse().unwrap_or(Tz::UTC)
    }

    /// The occurrence `n` periods on from the current one, as instants.
    pub fn occurrence(
        &self,
        n: i64,
    ) -> Option<(NaiveDateTime, NaiveDateTime, Timestamp, Timestamp)> {
        let step = Duration::try_days(self.every.days().checked_mul(n)?)?;
        let from = self.local_from.checked_add_signed(step)?;
        let until = self.local_until.checked_add_signed(step)?;
        let tz = self.zone();
        Some((
            from,
            until,
            local_instant(tz, from),
            local_instant(tz, until),
        ))
    }
}

/// The window a deploy opened, as its run notes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployWindow {
    pub id: u64,
    pub matchers: String,
    pub until: Timestamp,
}

/// Where a window comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// `/maintenance start` or `/maintenance schedule`, by this person.
    Command { by: String },
    /// A `[[maintenance]]` entry of `bot.toml`, by its name.
    Config { name: String },
    /// A deploy of an environment with `maintenance = "…"`.
    Deploy { run: RunId },
}

/// One maintenance window (for a recurring one: its current or next
/// occurrence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub id: u64,
    pub matchers: Vec<Matcher>,
    pub from: Timestamp,
    pub until: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recur: Option<Recur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub origin: Origin,
    /// The team whose channel hears of its start and end (none: the
    /// operations channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    /// Its start was posted (for this occurrence).
    #[serde(default)]
    pub started: bool,
    /// Alerts it took in (this occurrence).
    #[serde(default)]
    pub recorded: u64,
    /// Its alerts still firing, by fingerprint, to be handled as new alerts
    /// when it ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<String, Alert>,
}

impl Window {
    /// Whether it is in force at `now`.
    pub fn covers(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        self.matchers.iter().all(|m| m.matches(&alert.labels))
    }

    /// The matchers as written: `service=web env=production`.
    pub fn matchers_text(&self) -> String {
        self.matchers
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Takes an alert in: counted, and a firing one kept (a resolve lets
    /// it go).
    pub fn record(&mut self, alert: &Alert) {
        self.recorded = self.recorded.saturating_add(1);
        match alert.status {
            crate::domain::alert::AlertStatus::Firing => {
                if self.held.len() < MAX_HELD || self.held.contains_key(&alert.fingerprint) {
                    self.held.insert(alert.fingerprint.clone(), alert.clone());
                }
            }
            crate::domain::alert::AlertStatus::Resolved => {
                self.held.remove(&alert.fingerprint);
            }
        }
    }

    /// A recurring window moves on to its first occurrence that has not
    /// ended by `now`, starting afresh; `false` for a one-off window (or a
    /// rule that runs off the calendar).
    pub fn advance(&mut self, now: Timestamp) -> bool {
        let Some(r) = self.recur.as_mut() else {
            return false;
        };
        // Whole periods passed since the current occurrence ended, plus one.
        let period = r.every.days() * 86_400;
        let behind = (now - self.until).num_seconds().max(0) / period + 1;
        let Some((lf, lu, from, until)) = r.occurrence(behind) else {
            return false;
        };
        r.local_from = lf;
        r.local_until = lu;
        self.from = from;
        self.until = until;
        if self.until <= now {
            // A DST change moved it by an hour: one more period.
            let Some((lf, lu, from, until)) = r.occurrence(1) else {
                return false;
            };
            r.local_from = lf;
            r.local_until = lu;
            self.from = from;
            self.until = until;
        }
        self.started = false;
        self.recorded = 0;
        self.held.clear();
        true
    }
}

/// The windows, with the next id to hand out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceBook {
    pub next_id: u64,
    pub windows: Vec<Window>,
}

impl MaintenanceBook {
    /// The first window in force at `now` that matches the alert.
    pub fn covering(&mut self, alert: &Alert, now: Timestamp) -> Option<&mut Window> {
        self.windows
            .iter_mut()
            .find(|w| w.covers(now) && w.matches(alert))
    }

    /// Which of `names` (services and components of the status page) a
    /// window in force at `now` covers: one whose matchers pin the name by
    /// its `service` or `component` label (`service=web`, `service=~"web|api"`),
    /// whatever else they narrow it to (`env=production`).
    pub fn services_covered(&self, names: &[String], now: Timestamp) -> Vec<String> {
        names
            .iter()
            .filter(|name| {
                self.windows.iter().any(|w| {
                    w.covers(now)
                        && w.matchers.iter().any(|m| {
                            matches!(m.label.as_str(), "service" | "component")
                                && matches!(
                                    m.op,
                                    crate::domain::alert::MatchOp::Eq
                                        | crate::domain::alert::MatchOp::Re
                                )
                                && m.matches(
                                    &[(m.label.clone(), (*name).clone())].into_iter().collect(),
                                )
                        })
                })
            })
            .cloned()
            .collect()
    }

    pub fn allocate(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// A `[[maintenance]]` entry of `bot.toml`: a window that recurs at a
/// local time of day (every day, or on one weekday).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub every: Every,
    /// For weekly windows: the day it starts on.
    pub weekday: Option<chrono::Weekday>,
    pub start: chrono::NaiveTime,
    pub length: std::time::Duration,
    pub tz: Tz,
    pub team: Option<TeamName>,
    pub comment: Option<String>,
}

impl Scheduled {
    /// The occurrence in force at `now`, if one is: its local start and
    /// end and their instants.
    pub fn current(
        &self,
        now: Timestamp,
    ) -> Option<(NaiveDateTime, NaiveDateTime, Timestamp, Timestamp)> {
        let length = Duration::from_std(self.length).ok()?;
        let today = now.with_timezone(&self.tz).date_naive();
        // An occurrence that began up to a period (and a day) ago may still run.
        let back = self.every.days() + 1;
        for d in 0..=back {
            let day = today.checked_sub_signed(Duration::try_days(d)?)?;
            if let Some(w) = self.weekday {
                if chrono::Datelike::weekday(&day) != w {
                    continue;
                }
            }
            let lf = day.and_time(self.start);
            let lu = lf.checked_add_signed(length)?;
            let (from, until) = (local_instant(self.tz, lf), local_instant(self.tz, lu));
            if from <= now && now < until {
                return Some((lf, lu, from, until));
            }
        }
        None
    }
}

/// Reads `from:`/`until:` as an instant: RFC 3339, or `YYYY-MM-DD HH:MM`
/// (also with a `T`) in `tz`; returns the local wall-clock time too.
pub fn parse_time(name: &str, raw: &str, tz: Tz) -> Result<(NaiveDateTime, Timestamp), UserError> {
    let s = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        let utc = t.with_timezone(&chrono::Utc);
        return Ok((utc.with_timezone(&tz).naive_local(), utc));
    }
    for fmt in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok((n, local_instant(tz, n)));
        }
    }
    Err(UserError::new(format!(
        "`{name}` must be a time such as \"2026-03-30 22:00\" (in {tz}) or 2026-03-30T22:00:00Z; got `{}`",
        crate::domain::rich::clip_plain(s, 40)
    )))
}
