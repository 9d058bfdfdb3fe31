//! The validation pass, one method per section: what serde cannot check
//! (names, regexes, references between sections, env vars).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::*;

impl Validator<'_> {
    pub(super) fn validate(&mut self, raw: &RawConfig) -> Option<Config> {
        let dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };

        // [storage]
        if raw.storage.path.trim().is_empty() {
            self.error(
                "storage.path",
                raw.storage.path.span(),
                "must name a directory for the database, such as \"data\"".into(),
            );
        }
        let storage_path = dir.join(&*raw.storage.path);
        let backend = match raw.storage.backend.trim() {
            "sled" => StorageBackend::Sled,
            "postgres" => StorageBackend::Postgres,
            other => {
                self.error(
                    "storage.backend",
                    raw.storage.backend.span(),
                    format!(
                        "must be \"sled\" (a data directory, one process) or \"postgres\" (a PostgreSQL database, one or more instances); got {:?}",
                        crate::domain::rich::clip_plain(other, 40)
                    ),
                );
                StorageBackend::Sled
            }
        };
        let url = EnvSecret::read(&raw.storage.url_env);
        let lease = match humantime::parse_duration(raw.storage.lease.trim()) {
            Ok(d)
                if d >= std::time::Duration::from_secs(1)
                    && d <= std::time::Duration::from_secs(300) =>
            {
                d
            }
            _ => {
                self.error(
                    "storage.lease",
                    raw.storage.lease.span(),
                    format!(
                        "`{}` is not a lease length between 1s and 5m, such as \"10s\"",
                        crate::domain::rich::clip_plain(&raw.storage.lease, 40)
                    ),
                );
                std::time::Duration::from_secs(10)
            }
        };
        if backend == StorageBackend::Postgres && raw.storage.url_env.trim().is_empty() {
            self.error(
                "storage.url_env",
                raw.storage.url_env.span(),
                "must name the environment variable that holds the PostgreSQL URL, such as \"OPSBOT_DATABASE_URL\"".into(),
            );
        }
        let cache = match super::size::parse_size(&raw.storage.cache) {
            Ok(bytes) => bytes,
            Err(why) => {
                self.error(
                    "storage.cache",
                    raw.storage.cache.span(),
                    format!(
                        "`{}` {why}: write a whole number of KiB, MiB or GiB from 8MiB, such as \"256MiB\" or \"1GiB\"",
                        crate::domain::rich::clip_plain(&raw.storage.cache, 40)
                    ),
                );
                super::size::DEFAULT_CACHE
            }
        };
        if backend == StorageBackend::Postgres && raw.storage.cache.span().is_some() {
            self.warn(
                "storage.cache",
                raw.storage.cache.span(),
                "is ignored with backend = \"postgres\": it sizes sled's cache, and PostgreSQL keeps its own (its `shared_buffers`)".into(),
            );
        }
        let storage = StorageConfig {
            backend,
            url,
            lease,
            cache,
        };
        let log_format = match raw.log.format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                self.error(
                    "log.format",
                    raw.log.format.span(),
                    format!(
                        "must be \"text\" (for people) or \"json\" (one object per line, for log collectors); got {:?}",
                        crate::domain::rich::clip_plain(other, 40)
                    ),
                );
                LogFormat::Text
            }
        };

        // [tickets]
        let prefix = &raw.tickets.prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 10
            && prefix.starts_with(|c: char| c.is_ascii_uppercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !prefix_ok {
            self.error(
                "tickets.prefix",
                prefix.span(),
                format!(
                    "must be 1 to 10 capital letters or digits, starting with a letter, such as \"OPS\"; got {:?}",
                    **prefix
                ),
            );
        }
        let ops_channel = self.channel("tickets.channel", &raw.tickets.channel);
        let default_priority = match raw.tickets.default_priority.parse::<Priority>() {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(
                    "tickets.default_priority",
                    raw.tickets.default_priority.span(),
                    e.to_string(),
                );
                None
            }
        };

        // [teams]
        let mut teams = BTreeMap::new();
        for (name, t) in &raw.teams {
            let team_name = match TeamName::parse(name) {
                Ok(n) => n,
                Err(e) => {
                    self.error(format!("teams.{name}"), name.span(), e.to_string());
                    continue;
                }
            };
            let channel = self.channel(format!("teams.{name}.channel"), &t.channel);
            let mut members = Vec::new();
            if t.members.is_empty() {
                self.error(
                    format!("teams.{name}.members"),
                    t.members.span(),
                    format!("team `{name}` has no members: list at least one person, such as members = [\"bob\"]"),
                );
            }
            for (i, m) in t.members.iter().enumerate() {
                let key = format!("teams.{name}.members[{i}]");
                if let Some(u) = self.user(key.as_str(), m) {
                    if members.contains(&u) {
                        self.error(key, m.span(), format!("`{u}` is listed twice"));
                    } else {
                        members.push(u);
                    }
                }
            }
            let lead = match &t.lead {
                Some(l) => {
                    let key = format!("teams.{name}.lead");
                    match self.user(key.as_str(), l) {
                        Some(u) if members.contains(&u) => Some(u),
                        Some(u) => {
                            let written: Vec<&str> = t.members.iter().map(|m| m.as_str()).collect();
                            self.error(
                                key,
                                l.span(),
                                format!(
                                    "`{u}` is not a member of team `{name}`; the lead must be one of: {}{}",
                                    written.join(", "),
                                    did_you_mean(u.as_str(), &written)
                                ),
                            );
                            None
                        }
                        None => None,
                    }
                }
                None => None,
            };
            if let Some(channel) = channel {
                teams.insert(
                    team_name.clone(),
                    Team {
                        name: team_name,
                        channel,
                        members,
                        lead,
                        description: t.description.clone(),
                        assign: *t.assign,
                    },
                );
            }
        }

        // [roles]
        let mut operators = Vec::new();
        if raw.roles.operators.is_empty() {
            self.error(
                "roles.operators",
                raw.roles.operators.span().or(raw.roles.span()),
                "name at least one service operator, such as operators = [\"olivia\"]: operators triage new tickets".into(),
            );
        }
        for (i, o) in raw.roles.operators.iter().enumerate() {
            if let Some(u) = self.user(format!("roles.operators[{i}]"), o) {
                operators.push(u);
            }
        }
        let mut release_managers = Vec::new();
        for (i, o) in raw.roles.release_managers.iter().enumerate() {
            if let Some(u) = self.user(format!("roles.release_managers[{i}]"), o) {
                release_managers.push(u);
            }
        }
        let qa_team = match &raw.roles.qa_team {
            Some(q) => match TeamName::parse(q) {
                Ok(t) if raw.teams.contains_key(t.as_str()) => Some(t),
                Ok(t) => {
                    let known: Vec<&str> = raw.teams.keys().map(|k| k.as_str()).collect();
                    self.error("roles.qa_team", q.span(), no_team(t.as_str(), &known));
                    None
                }
                Err(e) => {
                    self.error("roles.qa_team", q.span(), e.to_string());
                    None
                }
            },
            None => None,
        };

        let services = self.validate_services(&raw.services, &teams_for_services(raw, &dir));
        let http = self.validate_http(&raw.http);
        let support = self.validate_support(&raw.support);
        let smtp = self.validate_smtp(&raw.smtp);
        // Every team the file defines, even one with mistakes of its own.
        let team_names: Vec<TeamName> = raw
            .teams
            .keys()
            .filter_map(|n| TeamName::parse(n).ok())
            .collect();
        let alerts = self.validate_alerts(&raw.alerts, &team_names);
        let policy = self.validate_policy(raw, &teams);
        let monitoring = self
            .validate_monitoring(&raw.monitoring, &raw.maintenance, &team_names)
            .and_then(|m| self.validate_heartbeats(m, &raw.heartbeats, &team_names));
        let org = Org {
            operators,
            qa_team,
            release_managers,
            teams,
        };
        let discord = self.validate_discord(&raw.discord, &team_names, &org.people());
        self.lone_names(raw);
        let service_names: Vec<String> = services.keys().cloned().collect();
        let status = self.validate_status(&raw.status, &service_names);
        let people = self.validate_people(&raw.people, &org.people());

        Some(Config {
            policy: policy?,
            http: http?,
            alerts: alerts?,
            support: support?,
            smtp: smtp?,
            jobs: BTreeMap::new(),
            services,
            jenkins: self.validate_jenkins(raw.ci.jenkins.as_ref()),
            trigger_tokens: Vec::new(),
            discord,
            file: self.file.to_path_buf(),
            storage_path,
            storage,
            log_format,
            tickets: TicketsConfig {
                prefix: raw.tickets.prefix.to_string(),
                channel: ops_channel?,
                default_priority: default_priority?,
            },
            org,
            status,
            monitoring: monitoring?,
            people,
            repos: BTreeMap::new(),
            authors: BTreeMap::new(),
        })
    }
}

impl Validator<'_> {
    /// People are defined by being named (in [roles], in a team): a person
    /// named once, and a letter or two away from someone else, is most
    /// likely a typo of them. Said as a warning.
    pub(super) fn lone_names(&mut self, raw: &RawConfig) {
        let mut places: Vec<(&Written<String>, String)> = Vec::new();
        for (i, o) in raw.roles.operators.iter().enumerate() {
            places.push((o, format!("roles.operators[{i}]")));
        }
        for (i, o) in raw.roles.release_managers.iter().enumerate() {
            places.push((o, format!("roles.release_managers[{i}]")));
        }
        for (name, t) in &raw.teams {
            for (i, m) in t.members.iter().enumerate() {
                places.push((m, format!("teams.{name}.members[{i}]")));
            }
        }
        let mut names: Vec<&str> = places.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for (name, key) in &places {
            if places.iter().filter(|(n, _)| n == name).count() != 1 {
                continue;
            }
            let others: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| *n != name.as_str())
                .collect();
            let hint = did_you_mean(name, &others);
            if !hint.is_empty() {
                self.warn(
                    key.as_str(),
                    name.span(),
                    format!("`{name}` is named only here, and so is a person of its own{hint}"),
                );
            }
        }
    }

    pub(super) fn duration_at(
        &mut self,
        key: String,
        raw: &Written<String>,
    ) -> Option<chrono::Duration> {
        use crate::domain::policy::{MAX_SPAN, MAX_SPAN_WORDS};
        match humantime::parse_duration(raw.trim()) {
            Ok(d) if d.as_secs() >= 60 && d <= MAX_SPAN => chrono::Duration::from_std(d).ok(),
            Ok(d) if d > MAX_SPAN => {
                self.error(
                    key,
                    raw.span(),
                    format!("`{raw}` is too long: a deadline is at most {MAX_SPAN_WORDS}, such as \"4h\" or \"14d\""),
                );
                None
            }
            _ => {
                self.error(
                    key,
                    raw.span(),
                    format!("`{raw}` is not a duration of a minute or more, such as \"15m\", \"4h\" or \"2d\""),
                );
                None
            }
        }
    }

    pub(super) fn time_zone(
        &mut self,
        key: String,
        raw: &Written<String>,
    ) -> Option<chrono_tz::Tz> {
        match raw.trim().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    key,
                    raw.span(),
                    format!("`{raw}` is not a time zone: use an IANA name such as \"Europe/Berlin\" or \"UTC\""),
                );
                None
            }
        }
    }

    pub(super) fn time_of_day(
        &mut self,
        key: String,
        raw: &Written<String>,
    ) -> Option<chrono::NaiveTime> {
        match chrono::NaiveTime::parse_from_str(raw.trim(), "%H:%M") {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(
                    key,
                    raw.span(),
                    format!("`{raw}` is not a time of day: write HH:MM, such as \"09:00\""),
                );
                None
            }
        }
    }

    /// `[deadlines]`, `[[escalation]]`, `[oncall.TEAM]` and `[reports]`.
    pub(super) fn validate_policy(
        &mut self,
        raw: &RawConfig,
        teams: &BTreeMap<TeamName, Team>,
    ) -> Option<crate::domain::policy::Policy> {
        use crate::domain::policy::{Chain, Deadline, Policy, Step, WeeklyReport};
        let mut ok = true;
        let mut deadlines = BTreeMap::new();
        for (name, d) in &raw.deadlines {
            let Ok(p) = name.parse::<Priority>() else {
                self.error(
                    format!("deadlines.{name}"),
                    name.span(),
                    format!(
                        "`{name}` is not a priority: use {}",
                        or_list(Priority::NAMES)
                    ),
                );
                ok = false;
                continue;
            };
            let mut one = |v: &mut Self, key: &'static str, raw: &Option<Written<String>>| match raw
            {
                None => None,
                Some(r) => {
                    let d = v.duration_at(format!("deadlines.{name}.{key}"), r);
                    if d.is_none() {
                        ok = false;
                    }
                    d
                }
            };
            let acknowledge = one(self, "acknowledge", &d.acknowledge);
            let resolve = one(self, "resolve", &d.resolve);
            deadlines.insert(
                p,
                Deadline {
                    acknowledge,
                    resolve,
                },
            );
        }
        let known_teams = || teams.keys().map(|t| t.as_str()).collect::<Vec<_>>();
        let mut chains = Vec::new();
        for (i, c) in raw.escalation.iter().enumerate() {
            let base = format!("escalation[{i}]");
            let mut chain = Chain {
                name: c.name.trim().to_string(),
                teams: Vec::new(),
                priorities: Vec::new(),
                steps: Vec::new(),
            };
            if chain.name.is_empty() || chains.iter().any(|x: &Chain| x.name == chain.name) {
                self.error(
                    format!("{base}.name"),
                    c.name.span(),
                    format!(
                        "each chain needs its own name; `{}` is empty or used twice",
                        c.name
                    ),
                );
                ok = false;
            }
            for (j, t) in c.teams.iter().enumerate() {
                match TeamName::parse(t) {
                    Ok(n) if teams.contains_key(&n) => chain.teams.push(n),
                    _ => {
                        self.error(
                            format!("{base}.teams[{j}]"),
                            t.span(),
                            no_team(t, &known_teams()),
                        );
                        ok = false;
                    }
                }
            }
            for (j, p) in c.priorities.iter().enumerate() {
                match p.parse::<Priority>() {
                    Ok(p) => chain.priorities.push(p),
                    Err(e) => {
                        self.error(format!("{base}.priorities[{j}]"), p.span(), e.to_string());
                        ok = false;
                    }
                }
            }
            if c.steps.is_empty() {
                self.error(
                    format!("{base}.steps"),
                    c.steps.span(),
                    "a chain needs at least one step".into(),
                );
                ok = false;
            }
            for (j, st) in c.steps.iter().enumerate() {
                match Step::parse(st) {
                    Ok(s) => chain.steps.push(s),
                    Err(e) => {
                        self.error(format!("{base}.steps[{j}]"), st.span(), e);
                        ok = false;
                    }
                }
            }
            chains.push(chain);
        }
        let mut oncall = BTreeMap::new();
        for (name, r) in &raw.oncall {
            let key = |k: &str| format!("oncall.{name}.{k}");
            let team = match TeamName::parse(name) {
                Ok(t) if teams.contains_key(&t) => t,
                _ => {
                    self.error(
                        format!("oncall.{name}"),
                        name.span(),
                        no_team(name, &known_teams()),
                    );
                    ok = false;
                    continue;
                }
            };
            let mut members = Vec::new();
            if r.members.is_empty() {
                self.error(
                    key("members"),
                    r.members.span(),
                    format!("the rotation of `{name}` has no members: list the team's people in the order they take turns"),
                );
                ok = false;
            }
            for (j, m) in r.members.iter().enumerate() {
                let path = format!("oncall.{name}.members[{j}]");
                match self.user(path.as_str(), m) {
                    Some(u) if teams.get(&team).is_some_and(|t| t.members.contains(&u)) => {
                        members.push(u)
                    }
                    Some(u) => {
                        let known: Vec<&str> = teams
                            .get(&team)
                            .map(|t| t.members.iter().map(|m| m.as_str()).collect())
                            .unwrap_or_default();
                        self.error(
                            path,
                            m.span(),
                            format!(
                                "`{u}` is not a member of team `{name}`; its members are: {}{}",
                                known.join(", "),
                                did_you_mean(u.as_str(), &known)
                            ),
                        );
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            let tz = self.time_zone(key("time_zone"), &r.time_zone);
            let handoff = self.time_of_day(key("handoff"), &r.handoff);
            let start = match chrono::NaiveDate::parse_from_str(r.start.trim(), "%Y-%m-%d") {
                Ok(d) if (1970..2200).contains(&chrono::Datelike::year(&d)) => Some(d),
                Ok(_) => {
                    self.error(
                        key("start"),
                        r.start.span(),
                        format!(
                            "`{}` is out of range: the day of the first handoff must be from 1970-01-01 to 2199-12-31",
                            r.start
                        ),
                    );
                    None
                }
                Err(_) => {
                    self.error(
                        key("start"),
                        r.start.span(),
                        format!(
                            "`{}` is not a date: write YYYY-MM-DD, the day of the first handoff",
                            r.start
                        ),
                    );
                    None
                }
            };
            if let (Some(tz), Some(handoff), Some(start)) = (tz, handoff, start) {
                if !members.is_empty() {
                    oncall.insert(
                        team.clone(),
                        crate::domain::rotation::Rotation {
                            team,
                            members,
                            period: r.period,
                            handoff,
                            tz,
                            start,
                            overlapping_overrides: r.overlapping_overrides,
                        },
                    );
                }
            } else {
                ok = false;
            }
        }
        for (name, t) in teams {
            if t.assign == AssignPolicy::Oncall
                && !oncall.contains_key(name)
                && !raw.oncall.contains_key(name.as_str())
            {
                let at = raw.teams.get(name.as_str()).and_then(|t| t.assign.span());
                self.error(
                    format!("teams.{name}.assign"),
                    at,
                    format!("team `{name}` assigns to its on-call person, but has no [oncall.{name}] rotation"),
                );
                ok = false;
            }
        }
        let weekly_report = match &raw.reports.weekly {
            None => None,
            Some(w) => {
                let key = |k: &str| format!("reports.weekly.{k}");
                let day = match w.day.trim().parse::<chrono::Weekday>() {
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.error(
                            key("day"),
                            w.day.span(),
                            format!("`{}` is not a weekday, such as \"monday\"", w.day),
                        );
                        None
                    }
                };
                let time = self.time_of_day(key("time"), &w.time);
                let tz = self.time_zone(key("time_zone"), &w.time_zone);
                match (day, time, tz) {
                    (Some(day), Some(time), Some(tz)) => Some(WeeklyReport { day, time, tz }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
        };
        ok.then_some(Policy {
            deadlines,
            chains,
            oncall,
            weekly_report,
        })
    }
}

/// The org as far as services need it (team names), before roles exist.
pub(super) fn teams_for_services(raw: &RawConfig, _dir: &Path) -> Vec<TeamName> {
    raw.teams
        .keys()
        .filter_map(|n| TeamName::parse(n).ok())
        .collect()
}

impl Validator<'_> {
    pub(super) fn snowflake(
        &mut self,
        key: &str,
        at: Option<Range<usize>>,
        v: &Snowflake,
    ) -> Option<u64> {
        let n = match v {
            Snowflake::Number(n) => Some(*n),
            Snowflake::Text(t) => t.trim().parse::<u64>().ok(),
        };
        match n {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    key,
                    at,
                    "a Discord id is a number such as \"123456789012345678\"".into(),
                );
                None
            }
        }
    }

    pub(super) fn validate_discord(
        &mut self,
        raw: &RawDiscord,
        teams: &[TeamName],
        people: &[UserName],
    ) -> DiscordConfig {
        let guild_ids: Vec<u64> = match &raw.guild_id {
            None => Vec::new(),
            Some(g) => match &**g {
                Snowflakes::One(one) => self
                    .snowflake("discord.guild_id", g.span(), one)
                    .into_iter()
                    .collect(),
                Snowflakes::Many(gs) => gs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, one)| {
                        self.snowflake(&format!("discord.guild_id[{i}]"), g.span(), one)
                    })
                    .collect(),
            },
        };
        if let Some(base) = &raw.api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                self.error(
                    "discord.api_base",
                    base.span(),
                    format!("`{base}` is not an http(s) URL"),
                );
            }
        }
        let mut channels = BTreeMap::new();
        for (name, id) in &raw.channels {
            let key = format!("discord.channels.{name}");
            let (Some(c), Some(id)) = (
                self.channel(key.as_str(), name),
                self.snowflake(&key, name.span(), id),
            ) else {
                continue;
            };
            channels.insert(c, id);
        }
        let mut users = BTreeMap::new();
        let mut usernames = BTreeMap::new();
        for (name, id) in &raw.users {
            let key = format!("discord.users.{name}");
            // Not a number: a Discord username, looked up once connected.
            let username = match id {
                Snowflake::Text(t) if t.trim().parse::<u64>().is_err() => Some(t.trim()),
                _ => None,
            };
            if let Some(username) = username {
                let Some(u) = self.user(key.as_str(), name) else {
                    continue;
                };
                if !discord_username(username) {
                    self.error(
                        key.as_str(),
                        name.span(),
                        format!(
                            "`{}` is neither a Discord user id (a number such as \
                             \"123456789012345678\") nor a Discord username (2 to 32 of a-z, \
                             0-9, `_` and `.`, as in \"olivia.k\")",
                            crate::domain::rich::clip_plain(username, 40)
                        ),
                    );
                    continue;
                }
                if !people.contains(&u) && raw.roles.is_empty() {
                    let known: Vec<&str> = people.iter().map(|p| p.as_str()).collect();
                    self.error(
                        key,
                        name.span(),
                        format!(
                            "`{u}` is nobody the config names (in [roles] or a team's members); people are: {}{}",
                            known.join(", "),
                            did_you_mean(u.as_str(), &known)
                        ),
                    );
                    continue;
                }
                usernames.insert(u, username.to_ascii_lowercase());
                continue;
            }
            let (Some(u), Some(id)) = (
                self.user(key.as_str(), name),
                self.snowflake(&key, name.span(), id),
            ) else {
                continue;
            };
            if !people.contains(&u) {
                let known: Vec<&str> = people.iter().map(|p| p.as_str()).collect();
                let message = format!(
                    "`{u}` is nobody the config names (in [roles] or a team's members); people are: {}{}",
                    known.join(", "),
                    did_you_mean(u.as_str(), &known)
                );
                if raw.roles.is_empty() {
                    self.error(key, name.span(), message);
                    continue;
                }
                // A Discord role may make them a member or an operator.
                self.warn(
                    key,
                    name.span(),
                    format!("{message}; fine if a role in [discord.roles] is what makes them one"),
                );
            }
            users.insert(u, id);
        }
        let mut roles = Vec::new();
        for (name, id) in &raw.roles {
            let key = format!("discord.roles.{name}");
            let grant = match name.as_str() {
                "operators" => Some(RoleGrant::Operators),
                "release_managers" => Some(RoleGrant::ReleaseManagers),
                other => match TeamName::parse(other) {
                    Ok(t) if teams.contains(&t) => Some(RoleGrant::Team(t)),
                    _ => {
                        let known: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                        let all: Vec<&str> = ["operators", "release_managers"]
                            .into_iter()
                            .chain(known.iter().copied())
                            .collect();
                        self.error(
                            key.as_str(),
                            name.span(),
                            format!(
                                "`{other}` is not operators, release_managers or a team ({}){}",
                                known.join(", "),
                                did_you_mean(other, &all)
                            ),
                        );
                        None
                    }
                },
            };
            if let (Some(g), Some(id)) = (grant, self.snowflake(&key, name.span(), id)) {
                roles.push((id, g));
            }
        }
        let defer_after = match &raw.defer_after {
            None => DEFAULT_DEFER_AFTER,
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if d <= MAX_DEFER_AFTER => d,
                _ => {
                    self.error(
                        "discord.defer_after",
                        s.span(),
                        format!(
                            "`{s}` is not a duration of at most 2500ms (Discord wants an \
                             answer within 3 s), such as \"1500ms\""
                        ),
                    );
                    DEFAULT_DEFER_AFTER
                }
            },
        };
        let tickets = match raw.tickets.as_ref().map(|t| (t, t.as_str())) {
            None | Some((_, "threads")) => TicketsIn::Threads,
            Some((_, "forum")) => TicketsIn::Forum,
            Some((t, _)) => {
                self.error(
                    "discord.tickets",
                    t.span(),
                    format!(
                        "`{t}` is not a way to show tickets: \"threads\" (a card in a text \
                         channel, a thread under it) or \"forum\" (the operations channel is \
                         a forum channel, each ticket a post tagged with its state)"
                    ),
                );
                TicketsIn::Threads
            }
        };
        DiscordConfig {
            tickets,
            token: EnvSecret::read(&raw.token_env),
            guild_ids,
            defer_after,
            roles,
            api_base: raw
                .api_base
                .as_ref()
                .map(|b| b.trim_end_matches('/').to_string()),
            channels,
            users,
            usernames,
            found: Default::default(),
        }
    }

    pub(super) fn validate_jenkins(
        &mut self,
        raw: Option<&Written<RawJenkins>>,
    ) -> Option<JenkinsConfig> {
        let raw = raw?;
        let key = |k: &str| format!("ci.jenkins.{k}");
        if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
            self.error(
                key("url"),
                raw.url.span(),
                format!("`{}` is not an http(s) URL", raw.url),
            );
        }
        let dur = |v: &mut Self, k: &str, s: &Written<String>| match humantime::parse_duration(s) {
            Ok(d) if d.as_millis() >= 10 && d.as_secs() <= 3600 => d,
            _ => {
                v.error(
                    key(k),
                    s.span(),
                    format!("`{s}` is not a duration from 10ms to 1h, such as \"2s\""),
                );
                std::time::Duration::from_secs(2)
            }
        };
        let timeout = dur(self, "timeout", &raw.timeout);
        let poll = dur(self, "poll", &raw.poll);
        let token = EnvSecret::read(&raw.token_env);
        if token.value.is_none() {
            self.warn(
                key("token_env"),
                raw.token_env.span().or(raw.span()),
                format!(
                    "{} is not set: requests to Jenkins go without credentials",
                    raw.token_env
                ),
            );
        }
        Some(JenkinsConfig {
            url: raw.url.trim_end_matches('/').to_string(),
            user: raw.user.clone(),
            token,
            timeout,
            poll,
        })
    }

    pub(super) fn validate_services(
        &mut self,
        raw: &BTreeMap<Written<String>, RawService>,
        teams: &[TeamName],
    ) -> BTreeMap<String, Service> {
        let mut out = BTreeMap::new();
        for (name, svc) in raw {
            let team = svc.team.as_ref().and_then(|t| match TeamName::parse(t) {
                Ok(t) if teams.contains(&t) => Some(t),
                _ => {
                    self.error(
                        format!("services.{name}.team"),
                        t.span(),
                        no_team(t, &teams.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
                    );
                    None
                }
            });
            if svc.environments.is_empty() {
                self.error(
                    format!("services.{name}"),
                    name.span(),
                    "a service needs at least one environment, such as [services.NAME.environments.staging]".into(),
                );
            }
            let mut envs = BTreeMap::new();
            for (ename, e) in &svc.environments {
                envs.insert(
                    ename.to_string(),
                    Environment {
                        name: ename.to_string(),
                        job: e.job.as_ref().unwrap_or(&svc.job).to_string(),
                        protected: e.protected,
                        // Checked against the org once roles are known.
                        approvers: Vec::new(),
                        maintenance: e.maintenance.as_ref().and_then(|m| {
                            self.maintenance_length(
                                format!("services.{name}.environments.{ename}.maintenance"),
                                m,
                            )
                        }),
                    },
                );
            }
            out.insert(
                name.to_string(),
                Service {
                    name: name.to_string(),
                    team,
                    // Checked against [repos] once they are read.
                    repo: svc.repo.as_ref().map(|r| r.to_string()),
                    environments: envs,
                },
            );
        }
        out
    }

    pub(super) fn validate_support(&mut self, raw: &Written<RawSupport>) -> Option<SupportConfig> {
        let mut ok = true;
        let secret = EnvSecret::read(&raw.secret_env);
        if secret.value.is_none() {
            self.warn(
                "support.secret_env",
                raw.secret_env.span().or(raw.span()),
                format!(
                    "{} is not set: the support intake will refuse every request",
                    raw.secret_env
                ),
            );
        }
        let url_ok = (raw.session_url.starts_with("http://")
            || raw.session_url.starts_with("https://"))
            && raw.session_url.len() > "http://".len();
        if !url_ok {
            self.error(
                "support.session_url",
                raw.session_url.span(),
                format!(
                    "`{}` is not an http(s) URL, such as \"https://app.example.com/api/sessions\"",
                    raw.session_url
                ),
            );
            ok = false;
        }
        let session_timeout = match humantime::parse_duration(&raw.session_timeout) {
            Ok(d) if d.as_millis() >= 10 && d.as_secs() <= 60 => d,
            _ => {
                self.error(
                    "support.session_timeout",
                    raw.session_timeout.span(),
                    format!(
                        "`{}` is not a duration from 10ms to 60s, such as \"2s\"",
                        raw.session_timeout
                    ),
                );
                ok = false;
                std::time::Duration::from_secs(2)
            }
        };
        for (key, v) in [
            ("per_customer_per_hour", &raw.per_customer_per_hour),
            ("per_minute", &raw.per_minute),
        ] {
            if **v == 0 {
                self.error(
                    format!("support.{key}"),
                    v.span(),
                    "must be at least 1".into(),
                );
                ok = false;
            }
        }
        let priority = match &raw.priority {
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => p,
                Err(e) => {
                    self.error("support.priority", p.span(), e.to_string());
                    ok = false;
                    Priority::P3
                }
            },
            None => Priority::P3,
        };
        let m = &raw.mail;
        for (key, text) in [
            ("ack_subject", &m.ack_subject),
            ("update_subject", &m.update_subject),
            ("closed_subject", &m.closed_subject),
        ] {
            if text.contains('\n') || text.contains('\r') {
                self.error(
                    format!("support.mail.{key}"),
                    text.span(),
                    "a subject is one line: remove the line break".into(),
                );
                ok = false;
            }
        }
        let inbox = self.validate_inbox(raw.inbox.as_ref());
        if !ok {
            return None;
        }
        Some(SupportConfig {
            secret,
            session_url: raw.session_url.trim_end_matches('/').to_string(),
            session_timeout,
            per_customer_per_hour: *raw.per_customer_per_hour,
            per_minute: *raw.per_minute,
            max_subject: raw.max_subject.max(1),
            max_message: raw.max_message.max(1),
            priority,
            mail: MailTemplates {
                ack_subject: m.ack_subject.to_string(),
                ack_body: m.ack_body.clone(),
                update_subject: m.update_subject.to_string(),
                update_body: m.update_body.clone(),
                closed_subject: m.closed_subject.to_string(),
                closed_body: m.closed_body.clone(),
            },
            inbox,
        })
    }

    pub(super) fn validate_smtp(&mut self, raw: &RawSmtp) -> Option<SmtpConfig> {
        let mut ok = true;
        if raw.host.trim().is_empty() {
            self.error(
                "smtp.host",
                raw.host.span(),
                "name the mail server, such as \"127.0.0.1\"".into(),
            );
            ok = false;
        }
        if raw.from.parse::<lettre::message::Mailbox>().is_err() {
            self.error(
                "smtp.from",
                raw.from.span(),
                format!(
                    "`{}` is not a mail address, such as \"Support <support@example.com>\"",
                    raw.from
                ),
            );
            ok = false;
        }
        let tls = match raw.tls.as_str() {
            "none" => SmtpTls::None,
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            other => {
                self.error(
                    "smtp.tls",
                    raw.tls.span(),
                    format!("`tls` must be one of none, starttls, tls; got `{other}`"),
                );
                ok = false;
                SmtpTls::None
            }
        };
        let mut cred = |key: &str, var: &Option<Written<String>>| -> Option<EnvSecret> {
            let var = var.as_ref()?;
            let s = EnvSecret::read(var);
            if s.value.is_none() {
                self.warn(
                    format!("smtp.{key}"),
                    var.span(),
                    format!("{var} is not set: mail is sent without logging in"),
                );
            }
            Some(s)
        };
        let user = cred("user_env", &raw.user_env);
        let password = cred("password_env", &raw.password_env);
        if !ok {
            return None;
        }
        Some(SmtpConfig {
            host: raw.host.to_string(),
            port: raw.port,
            from: raw.from.to_string(),
            tls,
            user,
            password,
        })
    }

    pub(super) fn validate_http(&mut self, raw: &Written<RawHttp>) -> Option<HttpConfig> {
        let listen = match raw.listen.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    "http.listen",
                    raw.listen.span(),
                    format!(
                        "`{}` is not an address: write HOST:PORT, such as \"127.0.0.1:8787\"",
                        raw.listen
                    ),
                );
                None
            }
        };
        if *raw.body_limit < 1024 {
            self.error(
                "http.body_limit",
                raw.body_limit.span(),
                format!(
                    "{} bytes is too small for any webhook; use at least 1024",
                    raw.body_limit
                ),
            );
        }
        let token = EnvSecret::read(&raw.token_env);
        if token.value.is_none() {
            self.warn(
                "http.token_env",
                raw.token_env.span().or(raw.span()),
                format!(
                    "{} is not set: the hooks will refuse every request",
                    raw.token_env
                ),
            );
        }
        let api_token = EnvSecret::read(&raw.api_token_env);
        if api_token.value.is_none() {
            self.warn(
                "http.api_token_env",
                raw.api_token_env.span().or(raw.span()),
                format!(
                    "{} is not set: the ticket API (/api/v1/tickets) will refuse every request",
                    raw.api_token_env
                ),
            );
        }
        if let (Some(a), Some(h)) = (&api_token.value, &token.value) {
            if a.expose() == h.expose() {
                self.warn(
                    "http.api_token_env",
                    raw.api_token_env.span().or(raw.span()),
                    format!(
                        "{} holds the same token as {}: whoever holds the hook token reads every ticket; give the ticket API a token of its own",
                        raw.api_token_env, raw.token_env
                    ),
                );
            }
        }
        Some(HttpConfig {
            listen: listen?,
            token,
            api_token,
            body_limit: *raw.body_limit,
            public_url: self.validate_public_url(raw.public_url.as_ref()),
        })
    }

    /// One route as written, `[alerts.default]` or one of
    /// `[[alerts.routes]]`; `base` is the default route, whose policy a
    /// route inherits where it is silent.
    pub(super) fn route(
        &mut self,
        written: &RouteWritten<'_>,
        base: Option<&crate::domain::alert::Route>,
        teams: &[TeamName],
    ) -> Option<crate::domain::alert::Route> {
        use crate::domain::alert::{anchored, OnRefire, Route};
        let RouteWritten {
            key: path,
            name,
            matchers,
            policy,
        } = written;
        let key = |k: &str| format!("{path}.{k}");
        let mut ok = true;
        let mut compiled = Vec::new();
        for (label, pattern) in *matchers {
            match anchored(pattern) {
                Ok(r) => compiled.push((label.to_string(), r)),
                Err(e) => {
                    self.error(
                        format!("{path}.match.{label}"),
                        label.span(),
                        format!("the regular expression does not compile: {e}"),
                    );
                    ok = false;
                }
            }
        }
        let team = match &policy.team {
            Some(t) => match TeamName::parse(t) {
                Ok(t) if teams.contains(&t) => Some(t),
                _ => {
                    let known: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                    self.error(key("team"), t.span(), no_team(t, &known));
                    ok = false;
                    None
                }
            },
            None => base.and_then(|b| b.team.clone()),
        };
        let priority = match &policy.priority {
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => p,
                Err(e) => {
                    self.error(key("priority"), p.span(), e.to_string());
                    ok = false;
                    Priority::P3
                }
            },
            None => base.map_or(Priority::P3, |b| b.priority),
        };
        let stale_after = match &policy.stale_after {
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if d.as_secs() >= 60 && d <= crate::domain::policy::MAX_SPAN => Some(d),
                Ok(d) if d > crate::domain::policy::MAX_SPAN => {
                    self.error(
                        key("stale_after"),
                        s.span(),
                        format!(
                            "`{s}` is too long: a group goes stale after at most {}, such as \"6h\" or \"30m\"",
                            crate::domain::policy::MAX_SPAN_WORDS
                        ),
                    );
                    ok = false;
                    None
                }
                _ => {
                    self.error(
                        key("stale_after"),
                        s.span(),
                        format!("`{s}` is not a duration of a minute or more, such as \"6h\" or \"30m\""),
                    );
                    ok = false;
                    None
                }
            },
            None => base.and_then(|b| b.stale_after),
        };
        let group_by = policy
            .group_by
            .clone()
            .unwrap_or_else(|| base.map(|b| b.group_by.clone()).unwrap_or_default());
        let flap = match &policy.flap {
            Some(f) => match self.flap(key("flap"), f) {
                Some(f) => Some(f),
                None => {
                    ok = false;
                    None
                }
            },
            None => base.and_then(|b| b.flap),
        };
        if !ok {
            return None;
        }
        Some(Route {
            name: name.to_string(),
            matchers: compiled,
            team,
            priority,
            group_by,
            resolve_on_recovery: policy
                .resolve_on_recovery
                .unwrap_or_else(|| base.is_some_and(|b| b.resolve_on_recovery)),
            stale_after,
            on_refire: policy
                .on_refire
                .unwrap_or_else(|| base.map_or(OnRefire::Reopen, |b| b.on_refire)),
            flap,
        })
    }

    pub(super) fn validate_alerts(
        &mut self,
        raw: &RawAlerts,
        teams: &[TeamName],
    ) -> Option<AlertsConfig> {
        let empty = BTreeMap::new();
        let default = self.route(
            &RouteWritten {
                key: "alerts.default".into(),
                name: "default",
                matchers: &empty,
                policy: &raw.default,
            },
            None,
            teams,
        );
        let mut routes = Vec::new();
        let mut names: Vec<&str> = vec!["default"];
        let mut ok = default.is_some();
        for (i, r) in raw.routes.iter().enumerate() {
            let path = format!("alerts.routes[{i}]");
            if r.name.trim().is_empty() || names.contains(&r.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    r.name.span(),
                    format!(
                        "route names must be unique and not empty; `{}` is taken",
                        r.name
                    ),
                );
                ok = false;
            }
            names.push(&r.name);
            let policy = RawPolicy {
                team: r.team.clone(),
                priority: r.priority.clone(),
                group_by: r.group_by.clone(),
                resolve_on_recovery: r.resolve_on_recovery,
                stale_after: r.stale_after.clone(),
                on_refire: r.on_refire,
                flap: r.flap.clone(),
            };
            // A route inherits the default route's policy where it is silent.
            let written = RouteWritten {
                key: path,
                name: &r.name,
                matchers: &r.matchers,
                policy: &policy,
            };
            match self.route(&written, default.as_ref(), teams) {
                Some(route) => routes.push(route),
                None => ok = false,
            }
        }
        let mut rules = Vec::new();
        for (i, m) in raw.message_rules.iter().enumerate() {
            let path = format!("alerts.message_rules[{i}]");
            let channel = self.channel(format!("{path}.channel"), &m.channel);
            match regex::Regex::new(&m.pattern) {
                Ok(r) if r.capture_names().flatten().any(|n| n == "alertname") => {
                    if let Some(channel) = channel {
                        rules.push(crate::domain::alert::MessageRule {
                            channel,
                            pattern: r,
                        });
                    }
                }
                Ok(_) => {
                    self.error(
                        format!("{path}.pattern"),
                        m.pattern.span(),
                        "the pattern has no `(?P<alertname>…)` group: it must name the alert"
                            .into(),
                    );
                    ok = false;
                }
                Err(e) => {
                    self.error(
                        format!("{path}.pattern"),
                        m.pattern.span(),
                        format!("the regular expression does not compile: {e}"),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        routes.push(default?);
        Some(AlertsConfig {
            routes,
            message_rules: rules,
            coalesce_after: raw.coalesce_after.unwrap_or(3).max(1),
            alertmanager: self.validate_alertmanager(raw.alertmanager.as_ref()),
        })
    }
}

/// A route as the file writes it: its key (`alerts.routes[2]`), name,
/// matchers and policy.
pub(super) struct RouteWritten<'r> {
    pub(super) key: String,
    pub(super) name: &'r str,
    pub(super) matchers: &'r BTreeMap<Written<String>, String>,
    pub(super) policy: &'r RawPolicy,
}

/// `a, b, c or d`.
fn or_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A Discord username as Discord allows it now: 2 to 32 characters of
/// a-z, 0-9, `_` and `.`, never two periods in a row (upper case is taken
/// and compared in lower case).
fn discord_username(s: &str) -> bool {
    let n = s.chars().count();
    (2..=32).contains(&n)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !s.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_priority_hint_lists_the_derived_names() {
        assert_eq!(or_list(Priority::NAMES), "p1, p2, p3 or p4");
        assert_eq!(or_list(&["a"]), "a");
    }
}
