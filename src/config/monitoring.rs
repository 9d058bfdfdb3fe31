//! `[monitoring]` and `[[maintenance]]`: how long a maintenance window may
//! last, the time zone `/maintenance schedule` reads local times in, and
//! the recurring windows of `bot.toml`.

use serde::Deserialize;

use super::raw::Written;
use super::Validator;
use crate::domain::heartbeat::Heartbeat;
use crate::domain::maintenance::{Every, Scheduled};
use crate::domain::TeamName;

/// The longest window when `[monitoring] max_maintenance` is not set.
pub const DEFAULT_MAX_MAINTENANCE: std::time::Duration = std::time::Duration::from_secs(86_400);
/// The longest `max_maintenance` allowed.
pub const MAX_MAX_MAINTENANCE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMonitoring {
    /// The longest maintenance window, such as "12h".
    pub(super) max_maintenance: Option<Written<String>>,
    /// The time zone of local times in `/maintenance schedule`.
    pub(super) time_zone: Option<Written<String>>,
}

/// A `[[maintenance]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub(super) name: Written<String>,
    /// As `/alert silence` takes them: "service=db job=~backup.*".
    pub(super) matchers: Written<String>,
    /// `daily` or `weekly`.
    pub(super) every: Written<String>,
    /// For weekly windows: the day, such as "sunday".
    pub(super) day: Option<Written<String>>,
    /// Local time of day it starts, "HH:MM".
    pub(super) start: Written<String>,
    /// How long it lasts, such as "1h".
    pub(super) duration: Written<String>,
    pub(super) time_zone: Option<Written<String>>,
    /// The team whose channel hears of it (the operations channel when not set).
    pub(super) team: Option<Written<String>>,
    pub(super) comment: Option<String>,
}

/// A `[heartbeats.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeartbeat {
    /// How often it beats, such as "5m".
    pub(super) every: Written<String>,
    /// How late a beat may be, such as "1m" (the default).
    pub(super) grace: Option<Written<String>>,
    pub(super) team: Option<Written<String>>,
    /// p2 unless set.
    pub(super) priority: Option<Written<String>>,
    /// An alert of this name counts as a beat, such as "Watchdog".
    pub(super) alertname: Option<Written<String>>,
}

/// How late a beat may be when `grace` is not set.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The validated `[monitoring]` section and the recurring windows.
#[derive(Clone, Debug)]
pub struct MonitoringConfig {
    pub max_maintenance: std::time::Duration,
    pub time_zone: chrono_tz::Tz,
    pub maintenance: Vec<Scheduled>,
    /// `[heartbeats.NAME]`, by name.
    pub heartbeats: std::collections::BTreeMap<String, Heartbeat>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            max_maintenance: DEFAULT_MAX_MAINTENANCE,
            time_zone: chrono_tz::Tz::UTC,
            maintenance: Vec::new(),
            heartbeats: Default::default(),
        }
    }
}

impl MonitoringConfig {
    /// A few words for `opsbot check`.
    pub fn summary(&self) -> String {
        let names: Vec<&str> = self.maintenance.iter().map(|m| m.name.as_str()).collect();
        let mut s = format!(
            "maintenance: windows of at most {}, local times in {}; recurring: {}\n",
            humantime::format_duration(self.max_maintenance),
            self.time_zone,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        for h in self.heartbeats.values() {
            s.push_str(&format!(
                "heartbeat {}: every {} (+{} grace), {}{}{}\n",
                h.name,
                humantime::format_duration(h.every),
                humantime::format_duration(h.grace),
                h.priority,
                h.team
                    .as_ref()
                    .map(|t| format!(", team {t}"))
                    .unwrap_or_default(),
                h.alertname
                    .as_ref()
                    .map(|a| format!(", alert {a} counts as a beat"))
                    .unwrap_or_default()
            ));
        }
        s
    }
}

impl Validator<'_> {
    pub(super) fn validate_monitoring(
        &mut self,
        raw: &RawMonitoring,
        windows: &[RawMaintenance],
        teams: &[TeamName],
    ) -> Option<MonitoringConfig> {
        let mut ok = true;
        let mut out = MonitoringConfig::default();
        if let Some(m) = &raw.max_maintenance {
            match humantime::parse_duration(m.trim()) {
                Ok(d) if d.as_secs() >= 60 && d <= MAX_MAX_MAINTENANCE => out.max_maintenance = d,
                _ => {
                    self.error(
                        "monitoring.max_maintenance",
                        m.span(),
                        format!(
                            "`{m}` is not a duration from 1m to 30d, such as \"12h\" or \"2d\""
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let Some(tz) = &raw.time_zone {
            match self.time_zone("monitoring.time_zone".into(), tz) {
                Some(tz) => out.time_zone = tz,
                None => ok = false,
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, w) in windows.iter().enumerate() {
            let key = |k: &str| format!("maintenance[{i}].{k}");
            if w.name.trim().is_empty() || names.contains(&w.name.as_str()) {
                self.error(
                    key("name"),
                    w.name.span(),
                    format!("`{}` must be a name of its own (each [[maintenance]] has one, used in posts)", w.name.as_str()),
                );
                ok = false;
            }
            names.push(w.name.as_str());
            let matchers = match crate::domain::alert::parse_matchers(&w.matchers) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.error(key("matchers"), w.matchers.span(), e.to_string());
                    None
                }
            };
            let every = match Every::parse(&w.every) {
                Ok(e) => Some(e),
                Err(e) => {
                    self.error(key("every"), w.every.span(), e.to_string());
                    None
                }
            };
            let weekday = match (&w.day, every) {
                (Some(d), Some(Every::Weekly)) => match d.trim().parse::<chrono::Weekday>() {
                    Ok(d) => Some(Some(d)),
                    Err(_) => {
                        self.error(
                            key("day"),
                            d.span(),
                            format!("`{d}` is not a day of the week, such as \"sunday\""),
                        );
                        None
                    }
                },
                (None, Some(Every::Weekly)) => {
                    self.error(
                        key("day"),
                        w.every.span(),
                        "a weekly window needs `day`, such as day = \"sunday\"".into(),
                    );
                    None
                }
                (Some(d), _) => {
                    self.error(
                        key("day"),
                        d.span(),
                        "`day` is only for weekly windows (every = \"weekly\")".into(),
                    );
                    None
                }
                (None, _) => Some(None),
            };
            let start = self.time_of_day(key("start"), &w.start);
            let period = every.map_or(u64::MAX, |e| e.days() as u64 * 86_400);
            let length = match humantime::parse_duration(w.duration.trim()) {
                Ok(d) if d.as_secs() >= 60 && d <= out.max_maintenance && d.as_secs() < period => {
                    Some(d)
                }
                _ => {
                    self.error(
                        key("duration"),
                        w.duration.span(),
                        format!(
                            "`{}` must be a duration from 1m to {} (monitoring.max_maintenance), shorter than the time between windows, such as \"1h\"",
                            w.duration.as_str(),
                            humantime::format_duration(out.max_maintenance)
                        ),
                    );
                    None
                }
            };
            let tz = match &w.time_zone {
                Some(tz) => self.time_zone(key("time_zone"), tz),
                None => Some(out.time_zone),
            };
            let team = match &w.team {
                Some(t) => match TeamName::parse(t) {
                    Ok(t) if teams.contains(&t) => Some(Some(t)),
                    _ => {
                        let known: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                        self.error(key("team"), t.span(), super::no_team(t, &known));
                        None
                    }
                },
                None => Some(None),
            };
            match (matchers, every, weekday, start, length, tz, team) {
                (
                    Some(matchers),
                    Some(every),
                    Some(weekday),
                    Some(start),
                    Some(length),
                    Some(tz),
                    Some(team),
                ) => out.maintenance.push(Scheduled {
                    name: w.name.to_string(),
                    matchers,
                    every,
                    weekday,
                    start,
                    length,
                    tz,
                    team,
                    comment: w.comment.clone(),
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl Validator<'_> {
    /// An environment's `maintenance = "10m"`: from a minute to a day.
    pub(super) fn maintenance_length(
        &mut self,
        key: String,
        raw: &Written<String>,
    ) -> Option<std::time::Duration> {
        match humantime::parse_duration(raw.trim()) {
            Ok(d) if d.as_secs() >= 60 && d <= DEFAULT_MAX_MAINTENANCE => Some(d),
            _ => {
                self.error(
                    key,
                    raw.span(),
                    format!("`{raw}` is not a duration from 1m to 1d, such as \"10m\" (the maintenance window a deploy opens)"),
                );
                None
            }
        }
    }
}

impl Validator<'_> {
    /// `[heartbeats.NAME]`.
    pub(super) fn validate_heartbeats(
        &mut self,
        mut out: MonitoringConfig,
        raw: &std::collections::BTreeMap<Written<String>, RawHeartbeat>,
        teams: &[TeamName],
    ) -> Option<MonitoringConfig> {
        let mut ok = true;
        for (name, h) in raw {
            let key = |k: &str| format!("heartbeats.{name}.{k}");
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if !name_ok {
                self.error(
                    format!("heartbeats.{name}"),
                    name.span(),
                    "a heartbeat's name is its URL (/hooks/heartbeat/NAME): use letters, digits, `-`, `_` or `.` (at most 64)".into(),
                );
                ok = false;
            }
            let span = |v: &Written<String>, min: u64, what: &str, this: &mut Self| {
                match humantime::parse_duration(v.trim()) {
                    Ok(d) if d.as_secs() >= min && d <= crate::domain::policy::MAX_SPAN => Some(d),
                    _ => {
                        this.error(
                            key(what),
                            v.span(),
                            format!(
                                "`{v}` is not a duration from {} to {}, such as \"5m\"",
                                if min == 0 { "0s" } else { "1s" },
                                crate::domain::policy::MAX_SPAN_WORDS
                            ),
                        );
                        None
                    }
                }
            };
            let every = span(&h.every, 1, "every", self);
            let grace = match &h.grace {
                Some(g) => span(g, 0, "grace", self),
                None => Some(DEFAULT_GRACE),
            };
            let team = match &h.team {
                Some(t) => match TeamName::parse(t) {
                    Ok(t) if teams.contains(&t) => Some(Some(t)),
                    _ => {
                        let known: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                        self.error(key("team"), t.span(), super::no_team(t, &known));
                        None
                    }
                },
                None => Some(None),
            };
            let priority = match &h.priority {
                Some(p) => match p.parse::<crate::domain::Priority>() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.error(key("priority"), p.span(), e.to_string());
                        None
                    }
                },
                None => Some(crate::domain::Priority::P2),
            };
            let alertname = match &h.alertname {
                Some(a) if a.trim().is_empty() => {
                    self.error(
                        key("alertname"),
                        a.span(),
                        "`alertname` must name an alert, such as \"Watchdog\"".into(),
                    );
                    None
                }
                Some(a) => Some(Some(a.trim().to_string())),
                None => Some(None),
            };
            match (every, grace, team, priority, alertname) {
                (Some(every), Some(grace), Some(team), Some(priority), Some(alertname))
                    if name_ok =>
                {
                    out.heartbeats.insert(
                        name.to_string(),
                        Heartbeat {
                            name: name.to_string(),
                            every,
                            grace,
                            team,
                            priority,
                            alertname,
                        },
                    );
                }
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// `flap = { changes = 5, within = "30m" }` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlap {
    pub(super) changes: Written<u32>,
    pub(super) within: Written<String>,
}

impl Validator<'_> {
    /// A route's `flap`: at least one change, within a minute to a day.
    pub(super) fn flap(&mut self, key: String, raw: &RawFlap) -> Option<crate::domain::flap::Flap> {
        let changes = *raw.changes;
        if changes == 0 {
            self.error(
                format!("{key}.changes"),
                raw.changes.span(),
                "`changes` must be 1 or more: how many changes between firing and resolved make a group flap".into(),
            );
            return None;
        }
        match humantime::parse_duration(raw.within.trim()) {
            Ok(d) if d.as_secs() >= 60 && d.as_secs() <= 86_400 => {
                Some(crate::domain::flap::Flap { changes, within: d })
            }
            _ => {
                self.error(
                    format!("{key}.within"),
                    raw.within.span(),
                    format!(
                        "`{}` is not a duration from 1m to 1d, such as \"30m\"",
                        raw.within.as_str()
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const TEAMS: &str = r#"
[roles]
operators = ["olivia"]
[teams.infra]
channel = "infra"
members = ["ivan"]
[teams.backend]
channel = "backend"
members = ["bob"]
"#;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(std::path::Path::new("bot.toml"), &format!("{TEAMS}{extra}"))
            .map(|l| l.config)
    }

    /// The README's examples, as written there.
    #[test]
    fn the_readme_examples_read() {
        let c = parse(
            r#"
[alerts.default]
flap = { changes = 5, within = "30m" }

[monitoring]
max_maintenance = "12h"
time_zone = "Europe/Berlin"

[[maintenance]]
name = "backups"
matchers = "service=db job=backup"
every = "weekly"
day = "sunday"
start = "03:00"
duration = "1h"
team = "infra"
comment = "weekly backup"

[heartbeats.prometheus]
every = "5m"
grace = "2m"
team = "infra"
priority = "p1"
alertname = "Watchdog"
"#,
        )
        .unwrap();
        let m = &c.monitoring;
        assert_eq!(m.max_maintenance.as_secs(), 12 * 3600);
        assert_eq!(m.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(m.maintenance[0].weekday, Some(chrono::Weekday::Sun));
        let h = &m.heartbeats["prometheus"];
        assert_eq!((h.every.as_secs(), h.grace.as_secs()), (300, 120));
        assert_eq!(h.alertname.as_deref(), Some("Watchdog"));
        let flap = c.alerts.routes.last().unwrap().flap.unwrap();
        assert_eq!((flap.changes, flap.within.as_secs()), (5, 1800));
        assert!(c.summary().contains("heartbeat prometheus: every 5m (+2m grace), p1, team infra, alert Watchdog counts as a beat"));
        // Without any of it: windows of at most a day, in UTC.
        let c = parse("").unwrap();
        assert_eq!(c.monitoring.max_maintenance.as_secs(), 86_400);
        assert!(c.monitoring.heartbeats.is_empty());
    }

    #[test]
    fn mistakes_are_named_with_their_key() {
        let cases = [
            ("[monitoring]\nmax_maintenance = \"90d\"\n", "monitoring.max_maintenance", "is not a duration from 1m to 30d"),
            ("[monitoring]\ntime_zone = \"Mars/Olympus\"\n", "monitoring.time_zone", "is not a time zone"),
            ("[[maintenance]]\nname = \"b\"\nmatchers = \"service=db\"\nevery = \"weekly\"\nstart = \"03:00\"\nduration = \"1h\"\n", "maintenance[0].day", "a weekly window needs `day`"),
            ("[[maintenance]]\nname = \"b\"\nmatchers = \"\"\nevery = \"daily\"\nstart = \"03:00\"\nduration = \"1h\"\n", "maintenance[0].matchers", "give at least one matcher"),
            ("[[maintenance]]\nname = \"b\"\nmatchers = \"a=b\"\nevery = \"daily\"\nstart = \"03:00\"\nduration = \"2d\"\n", "maintenance[0].duration", "shorter than the time between windows"),
            ("[[maintenance]]\nname = \"b\"\nmatchers = \"a=b\"\nevery = \"daily\"\nstart = \"3 am\"\nduration = \"1h\"\n", "maintenance[0].start", "is not a time of day"),
            ("[[maintenance]]\nname = \"b\"\nmatchers = \"a=b\"\nevery = \"daily\"\nstart = \"03:00\"\nduration = \"1h\"\nteam = \"web\"\n", "maintenance[0].team", "no team `web`"),
            ("[heartbeats.prometheus]\nevery = \"often\"\n", "heartbeats.prometheus.every", "is not a duration from 1s"),
            ("[heartbeats.prometheus]\nevery = \"5m\"\npriority = \"urgent\"\n", "heartbeats.prometheus.priority", "must be one of p1"),
            ("[heartbeats.\"a b\"]\nevery = \"5m\"\n", "heartbeats.a b", "a heartbeat's name is its URL"),
            ("[heartbeats.prometheus]\nevery = \"5m\"\nwhen = \"now\"\n", "heartbeats.prometheus.when", "unknown field `when`"),
            ("[alerts.default]\nflap = { changes = 0, within = \"30m\" }\n", "alerts.default.flap.changes", "must be 1 or more"),
            ("[alerts.default]\nflap = { changes = 3, within = \"forever\" }\n", "alerts.default.flap.within", "is not a duration from 1m to 1d"),
        ];
        for (text, key, words) in cases {
            let err = parse(text).unwrap_err();
            let p = err
                .problems
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no problem at {key}: {err}"));
            assert!(p.message.contains(words), "{key}: {}", p.message);
            assert!(p.line.is_some(), "{key} has no line: {err}");
        }
    }
}
