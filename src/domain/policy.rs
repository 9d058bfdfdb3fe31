//! The organisation's policy: deadlines per priority, escalation chains,
//! on-call rotations, the weekly report; and their time maths.

use chrono::Duration;

use crate::domain::{Priority, TeamName, Ticket, Timestamp};

/// The longest deadline or escalation wait `bot.toml` may set: beyond it a
/// time is no deadline at all (and, far enough, overflows the calendar).
pub const MAX_SPAN: std::time::Duration = std::time::Duration::from_secs(365 * 86400);

/// [`MAX_SPAN`] in words, for the errors that name it.
pub const MAX_SPAN_WORDS: &str = "365 days";

/// `t + d`, or `None` past the calendar's end (checked: `d` comes from input).
pub fn later(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add_signed(d)
}

/// The time to acknowledge and to resolve for one priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline {
    pub acknowledge: Option<Duration>,
    pub resolve: Option<Duration>,
}

/// One step of an escalation chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Wait(Duration),
    Remind,
    Oncall,
    Team,
    Operators,
    Raise,
}

impl Step {
    pub const WORDS: &'static str = "remind, oncall, team, operators, raise or wait DURATION";

    /// `remind`, `oncall`, `team`, `operators`, `raise`, `wait 10m`.
    pub fn parse(raw: &str) -> Result<Step, String> {
        let s = raw.trim().to_ascii_lowercase();
        let step = match s.as_str() {
            "remind" => Step::Remind,
            "oncall" | "on-call" | "page oncall" => Step::Oncall,
            "team" => Step::Team,
            "operators" => Step::Operators,
            "raise" => Step::Raise,
            _ => match s.strip_prefix("wait") {
                Some(d) => match humantime::parse_duration(d.trim()) {
                    Ok(d) if d.as_secs() >= 60 && d <= MAX_SPAN => {
                        Step::Wait(Duration::from_std(d).map_err(|e| e.to_string())?)
                    }
                    Ok(d) if d > MAX_SPAN => {
                        return Err(format!(
                            "`{raw}`: a wait is at most {MAX_SPAN_WORDS}, such as \"wait 15m\" or \"wait 1d\""
                        ))
                    }
                    _ => {
                        return Err(format!(
                        "`{raw}`: wait needs a duration of a minute or more, such as \"wait 15m\""
                    ))
                    }
                },
                None => return Err(format!("`{raw}` is not a step: use {}", Step::WORDS)),
            },
        };
        Ok(step)
    }

    pub fn describe(self) -> String {
        match self {
            Step::Wait(d) => format!("wait {}", human(d)),
            Step::Remind => "remind".into(),
            Step::Oncall => "oncall".into(),
            Step::Team => "team".into(),
            Step::Operators => "operators".into(),
            Step::Raise => "raise".into(),
        }
    }
}

/// An escalation chain: for the tickets of some teams and/or priorities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// Empty: any team (or none).
    pub teams: Vec<TeamName>,
    /// Empty: any priority.
    pub priorities: Vec<Priority>,
    pub steps: Vec<Step>,
}

impl Chain {
    fn matches(&self, t: &Ticket) -> bool {
        (self.teams.is_empty() || t.team.as_ref().is_some_and(|x| self.teams.contains(x)))
            && (self.priorities.is_empty() || self.priorities.contains(&t.priority))
    }
}

/// When the weekly report goes to the operations channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeeklyReport {
    pub day: chrono::Weekday,
    pub time: chrono::NaiveTime,
    pub tz: chrono_tz::Tz,
}

impl WeeklyReport {
    /// The latest scheduled instant at or before `now`.
    pub fn last_due(&self, now: Timestamp) -> Timestamp {
        let local = now.with_timezone(&self.tz).date_naive();
        for back in 0..8 {
            let Some(day) = local.checked_sub_signed(Duration::days(back)) else {
                break;
            };
            if chrono::Datelike::weekday(&day) == self.day {
                let at = crate::domain::rotation::local_instant(self.tz, day.and_time(self.time));
                if at <= now {
                    return at;
                }
            }
        }
        now.checked_sub_signed(Duration::days(7)).unwrap_or(now)
    }
}

/// The whole policy from `bot.toml`.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub deadlines: std::collections::BTreeMap<Priority, Deadline>,
    pub chains: Vec<Chain>,
    pub oncall: std::collections::BTreeMap<TeamName, crate::domain::rotation::Rotation>,
    pub weekly_report: Option<WeeklyReport>,
}

impl Policy {
    pub fn chain_for(&self, t: &Ticket) -> Option<&Chain> {
        self.chains.iter().find(|c| c.matches(t))
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// `90m` → `1h 30m`; whole minutes.
pub fn human(d: Duration) -> String {
    let mins = d.num_minutes().max(0);
    let (days, hours, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m}m"));
    }
    parts.join(" ")
}

/// How a moment reads in the bot's words (and in the console).
pub const CLOCK: &str = "%Y-%m-%d %H:%M UTC";

pub fn clock(t: Timestamp) -> String {
    t.format(CLOCK).to_string()
}
