//! The validation pass, one method per section: what serde cannot check
//! (names, regexes, references between sections, env vars).

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

impl Validator<'_> {
    pub(super) fn validate(&mut self, raw: RawConfig) -> Option<Config> {
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
                &[Seg::Key("storage"), Seg::Key("path")],
                "must name a directory for the database, such as \"data\"".into(),
            );
        }
        let storage_path = dir.join(&raw.storage.path);

        // [tickets]
        let prefix_ok = !raw.tickets.prefix.is_empty()
            && raw.tickets.prefix.len() <= 10
            && raw
                .tickets
                .prefix
                .starts_with(|c: char| c.is_ascii_uppercase())
            && raw
                .tickets
                .prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !prefix_ok {
            self.error(
                &[Seg::Key("tickets"), Seg::Key("prefix")],
                format!(
                    "must be 1 to 10 capital letters or digits, starting with a letter, such as \"OPS\"; got {:?}",
                    raw.tickets.prefix
                ),
            );
        }
        let ops_channel = self.channel(
            &[Seg::Key("tickets"), Seg::Key("channel")],
            &raw.tickets.channel,
        );
        let default_priority = match raw.tickets.default_priority.parse::<Priority>() {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(
                    &[Seg::Key("tickets"), Seg::Key("default_priority")],
                    e.to_string(),
                );
                None
            }
        };

        // [teams]
        let mut teams = BTreeMap::new();
        for (name, t) in &raw.teams {
            let tpath = [Seg::Key("teams"), Seg::Key(name)];
            let team_name = match TeamName::parse(name) {
                Ok(n) => n,
                Err(e) => {
                    self.error(&tpath, e.to_string());
                    continue;
                }
            };
            let channel = self.channel(
                &[Seg::Key("teams"), Seg::Key(name), Seg::Key("channel")],
                &t.channel,
            );
            let mut members = Vec::new();
            if t.members.is_empty() {
                self.error(
                    &[Seg::Key("teams"), Seg::Key(name), Seg::Key("members")],
                    format!("team `{name}` has no members: list at least one person, such as members = [\"bob\"]"),
                );
            }
            for (i, m) in t.members.iter().enumerate() {
                let path = [
                    Seg::Key("teams"),
                    Seg::Key(name),
                    Seg::Key("members"),
                    Seg::Index(i),
                ];
                if let Some(u) = self.user(&path, m) {
                    if members.contains(&u) {
                        self.error(&path, format!("`{u}` is listed twice"));
                    } else {
                        members.push(u);
                    }
                }
            }
            let lead = match &t.lead {
                Some(l) => {
                    let path = [Seg::Key("teams"), Seg::Key(name), Seg::Key("lead")];
                    match self.user(&path, l) {
                        Some(u) if members.contains(&u) => Some(u),
                        Some(u) => {
                            self.error(
                                &path,
                                format!(
                                    "`{u}` is not a member of team `{name}`; the lead must be one of: {}{}",
                                    t.members.join(", "),
                                    did_you_mean(
                                        u.as_str(),
                                        &t.members.iter().map(String::as_str).collect::<Vec<_>>()
                                    )
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
                        assign: t.assign,
                    },
                );
            }
        }

        // [roles]
        let mut operators = Vec::new();
        if raw.roles.operators.is_empty() {
            self.error(
                &[Seg::Key("roles"), Seg::Key("operators")],
                "name at least one service operator, such as operators = [\"olivia\"]: operators triage new tickets".into(),
            );
        }
        for (i, o) in raw.roles.operators.iter().enumerate() {
            if let Some(u) = self.user(
                &[Seg::Key("roles"), Seg::Key("operators"), Seg::Index(i)],
                o,
            ) {
                operators.push(u);
            }
        }
        let mut release_managers = Vec::new();
        for (i, o) in raw.roles.release_managers.iter().enumerate() {
            if let Some(u) = self.user(
                &[
                    Seg::Key("roles"),
                    Seg::Key("release_managers"),
                    Seg::Index(i),
                ],
                o,
            ) {
                release_managers.push(u);
            }
        }
        let qa_team = match &raw.roles.qa_team {
            Some(q) => {
                let path = [Seg::Key("roles"), Seg::Key("qa_team")];
                match TeamName::parse(q) {
                    Ok(t) if raw.teams.contains_key(t.as_str()) => Some(t),
                    Ok(t) => {
                        let known: Vec<&str> = raw.teams.keys().map(String::as_str).collect();
                        self.error(&path, no_team(t.as_str(), &known));
                        None
                    }
                    Err(e) => {
                        self.error(&path, e.to_string());
                        None
                    }
                }
            }
            None => None,
        };

        let services = self.validate_services(&raw.services, &teams_for_services(&raw, &dir));
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
        let policy = self.validate_policy(&raw, &teams);
        let org = Org {
            operators,
            qa_team,
            release_managers,
            teams,
        };
        let discord = self.validate_discord(&raw.discord, &team_names, &org.people());
        self.lone_names(&raw);

        Some(Config {
            policy: policy?,
            http: http?,
            alerts: alerts?,
            support: support?,
            smtp: smtp?,
            jobs: BTreeMap::new(),
            services,
            jenkins: self.validate_jenkins(raw.ci.jenkins.as_ref()),
            discord,
            file: self.file.to_path_buf(),
            storage_path,
            tickets: TicketsConfig {
                prefix: raw.tickets.prefix.clone(),
                channel: ops_channel?,
                default_priority: default_priority?,
            },
            org,
        })
    }
}

impl Validator<'_> {
    /// People are defined by being named (in [roles], in a team): a person
    /// named once, and a letter or two away from someone else, is most
    /// likely a typo of them. Said as a warning.
    pub(super) fn lone_names(&mut self, raw: &RawConfig) {
        let mut places: Vec<(&str, Vec<Seg<'_>>)> = Vec::new();
        for (i, o) in raw.roles.operators.iter().enumerate() {
            places.push((
                o,
                vec![Seg::Key("roles"), Seg::Key("operators"), Seg::Index(i)],
            ));
        }
        for (i, o) in raw.roles.release_managers.iter().enumerate() {
            places.push((
                o,
                vec![
                    Seg::Key("roles"),
                    Seg::Key("release_managers"),
                    Seg::Index(i),
                ],
            ));
        }
        for (name, t) in &raw.teams {
            for (i, m) in t.members.iter().enumerate() {
                places.push((
                    m,
                    vec![
                        Seg::Key("teams"),
                        Seg::Key(name),
                        Seg::Key("members"),
                        Seg::Index(i),
                    ],
                ));
            }
        }
        let mut names: Vec<&str> = places.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        for (name, path) in &places {
            if places.iter().filter(|(n, _)| n == name).count() != 1 {
                continue;
            }
            let others: Vec<&str> = names.iter().copied().filter(|n| n != name).collect();
            let hint = did_you_mean(name, &others);
            if !hint.is_empty() {
                self.warn(
                    path,
                    format!("`{name}` is named only here, and so is a person of its own{hint}"),
                );
            }
        }
    }

    pub(super) fn duration_at(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono::Duration> {
        use crate::domain::policy::{MAX_SPAN, MAX_SPAN_WORDS};
        match humantime::parse_duration(raw.trim()) {
            Ok(d) if d.as_secs() >= 60 && d <= MAX_SPAN => chrono::Duration::from_std(d).ok(),
            Ok(d) if d > MAX_SPAN => {
                self.error(
                    path,
                    format!("`{raw}` is too long: a deadline is at most {MAX_SPAN_WORDS}, such as \"4h\" or \"14d\""),
                );
                None
            }
            _ => {
                self.error(
                    path,
                    format!("`{raw}` is not a duration of a minute or more, such as \"15m\", \"4h\" or \"2d\""),
                );
                None
            }
        }
    }

    pub(super) fn time_zone(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono_tz::Tz> {
        match raw.trim().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    path,
                    format!("`{raw}` is not a time zone: use an IANA name such as \"Europe/Berlin\" or \"UTC\""),
                );
                None
            }
        }
    }

    pub(super) fn time_of_day(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono::NaiveTime> {
        match chrono::NaiveTime::parse_from_str(raw.trim(), "%H:%M") {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(
                    path,
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
            let path = [Seg::Key("deadlines"), Seg::Key(name)];
            let Ok(p) = name.parse::<Priority>() else {
                self.error(
                    &path,
                    format!(
                        "`{name}` is not a priority: use {}",
                        or_list(Priority::NAMES)
                    ),
                );
                ok = false;
                continue;
            };
            let mut one = |v: &mut Self, key: &'static str, raw: &Option<String>| match raw {
                None => None,
                Some(r) => {
                    let d =
                        v.duration_at(&[Seg::Key("deadlines"), Seg::Key(name), Seg::Key(key)], r);
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
        let mut chains = Vec::new();
        for (i, c) in raw.escalation.iter().enumerate() {
            let base = [Seg::Key("escalation"), Seg::Index(i)];
            let mut chain = Chain {
                name: c.name.trim().to_string(),
                teams: Vec::new(),
                priorities: Vec::new(),
                steps: Vec::new(),
            };
            if chain.name.is_empty() || chains.iter().any(|x: &Chain| x.name == chain.name) {
                self.error(
                    &[base[0].clone(), base[1].clone(), Seg::Key("name")],
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
                            &[
                                base[0].clone(),
                                base[1].clone(),
                                Seg::Key("teams"),
                                Seg::Index(j),
                            ],
                            no_team(t, &teams.keys().map(|t| t.as_str()).collect::<Vec<_>>()),
                        );
                        ok = false;
                    }
                }
            }
            for (j, p) in c.priorities.iter().enumerate() {
                match p.parse::<Priority>() {
                    Ok(p) => chain.priorities.push(p),
                    Err(e) => {
                        self.error(
                            &[
                                base[0].clone(),
                                base[1].clone(),
                                Seg::Key("priorities"),
                                Seg::Index(j),
                            ],
                            e.to_string(),
                        );
                        ok = false;
                    }
                }
            }
            if c.steps.is_empty() {
                self.error(
                    &[base[0].clone(), base[1].clone(), Seg::Key("steps")],
                    "a chain needs at least one step".into(),
                );
                ok = false;
            }
            for (j, st) in c.steps.iter().enumerate() {
                match Step::parse(st) {
                    Ok(s) => chain.steps.push(s),
                    Err(e) => {
                        self.error(
                            &[
                                base[0].clone(),
                                base[1].clone(),
                                Seg::Key("steps"),
                                Seg::Index(j),
                            ],
                            e,
                        );
                        ok = false;
                    }
                }
            }
            chains.push(chain);
        }
        let mut oncall = BTreeMap::new();
        for (name, r) in &raw.oncall {
            let key = |k: &'static str| [Seg::Key("oncall"), Seg::Key(name), Seg::Key(k)];
            let team = match TeamName::parse(name) {
                Ok(t) if teams.contains_key(&t) => t,
                _ => {
                    self.error(
                        &[Seg::Key("oncall"), Seg::Key(name)],
                        no_team(name, &teams.keys().map(|t| t.as_str()).collect::<Vec<_>>()),
                    );
                    ok = false;
                    continue;
                }
            };
            let mut members = Vec::new();
            if r.members.is_empty() {
                self.error(
                    &key("members"),
                    format!("the rotation of `{name}` has no members: list the team's people in the order they take turns"),
                );
                ok = false;
            }
            for (j, m) in r.members.iter().enumerate() {
                let path = [
                    Seg::Key("oncall"),
                    Seg::Key(name),
                    Seg::Key("members"),
                    Seg::Index(j),
                ];
                match self.user(&path, m) {
                    Some(u) if teams.get(&team).is_some_and(|t| t.members.contains(&u)) => {
                        members.push(u)
                    }
                    Some(u) => {
                        let known: Vec<&str> = teams
                            .get(&team)
                            .map(|t| t.members.iter().map(|m| m.as_str()).collect())
                            .unwrap_or_default();
                        self.error(
                            &path,
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
            let tz = self.time_zone(&key("time_zone"), &r.time_zone);
            let handoff = self.time_of_day(&key("handoff"), &r.handoff);
            let start = match chrono::NaiveDate::parse_from_str(r.start.trim(), "%Y-%m-%d") {
                Ok(d) if (1970..2200).contains(&chrono::Datelike::year(&d)) => Some(d),
                Ok(_) => {
                    self.error(
                        &key("start"),
                        format!(
                            "`{}` is out of range: the day of the first handoff must be from 1970-01-01 to 2199-12-31",
                            r.start
                        ),
                    );
                    None
                }
                Err(_) => {
                    self.error(
                        &key("start"),
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
                self.error(
                    &[Seg::Key("teams"), Seg::Key(name.as_str()), Seg::Key("assign")],
                    format!("team `{name}` assigns to its on-call person, but has no [oncall.{name}] rotation"),
                );
                ok = false;
            }
        }
        let weekly_report = match &raw.reports.weekly {
            None => None,
            Some(w) => {
                let key = |k: &'static str| [Seg::Key("reports"), Seg::Key("weekly"), Seg::Key(k)];
                let day = match w.day.trim().parse::<chrono::Weekday>() {
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.error(
                            &key("day"),
                            format!("`{}` is not a weekday, such as \"monday\"", w.day),
                        );
                        None
                    }
                };
                let time = self.time_of_day(&key("time"), &w.time);
                let tz = self.time_zone(&key("time_zone"), &w.time_zone);
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
    pub(super) fn snowflake(&mut self, path: &[Seg<'_>], v: &Snowflake) -> Option<u64> {
        let n = match v {
            Snowflake::Number(n) => Some(*n),
            Snowflake::Text(t) => t.trim().parse::<u64>().ok(),
        };
        match n {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    path,
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
            Some(Snowflakes::One(g)) => self
                .snowflake(&[Seg::Key("discord"), Seg::Key("guild_id")], g)
                .into_iter()
                .collect(),
            Some(Snowflakes::Many(gs)) => gs
                .iter()
                .enumerate()
                .filter_map(|(i, g)| {
                    self.snowflake(
                        &[Seg::Key("discord"), Seg::Key("guild_id"), Seg::Index(i)],
                        g,
                    )
                })
                .collect(),
        };
        if let Some(base) = &raw.api_base {
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                self.error(
                    &[Seg::Key("discord"), Seg::Key("api_base")],
                    format!("`{base}` is not an http(s) URL"),
                );
            }
        }
        let mut channels = BTreeMap::new();
        for (name, id) in &raw.channels {
            let path = [Seg::Key("discord"), Seg::Key("channels"), Seg::Key(name)];
            let (Some(c), Some(id)) = (self.channel(&path, name), self.snowflake(&path, id)) else {
                continue;
            };
            channels.insert(c, id);
        }
        let mut users = BTreeMap::new();
        for (name, id) in &raw.users {
            let path = [Seg::Key("discord"), Seg::Key("users"), Seg::Key(name)];
            let (Some(u), Some(id)) = (self.user(&path, name), self.snowflake(&path, id)) else {
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
                    self.error(&path, message);
                    continue;
                }
                // A Discord role may make them a member or an operator.
                self.warn(
                    &path,
                    format!("{message}; fine if a role in [discord.roles] is what makes them one"),
                );
            }
            users.insert(u, id);
        }
        let mut roles = Vec::new();
        for (name, id) in &raw.roles {
            let path = [Seg::Key("discord"), Seg::Key("roles"), Seg::Key(name)];
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
                            &path,
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
            if let (Some(g), Some(id)) = (grant, self.snowflake(&path, id)) {
                roles.push((id, g));
            }
        }
        let defer_after = match &raw.defer_after {
            None => DEFAULT_DEFER_AFTER,
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if d <= MAX_DEFER_AFTER => d,
                _ => {
                    self.error(
                        &[Seg::Key("discord"), Seg::Key("defer_after")],
                        format!(
                            "`{s}` is not a duration of at most 2500ms (Discord wants an \
                             answer within 3 s), such as \"1500ms\""
                        ),
                    );
                    DEFAULT_DEFER_AFTER
                }
            },
        };
        DiscordConfig {
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
        }
    }

    pub(super) fn validate_jenkins(&mut self, raw: Option<&RawJenkins>) -> Option<JenkinsConfig> {
        let raw = raw?;
        let key = |k: &'static str| [Seg::Key("ci"), Seg::Key("jenkins"), Seg::Key(k)];
        if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
            self.error(&key("url"), format!("`{}` is not an http(s) URL", raw.url));
        }
        let dur = |v: &mut Self, k: &'static str, s: &str| match humantime::parse_duration(s) {
            Ok(d) if d.as_millis() >= 10 && d.as_secs() <= 3600 => d,
            _ => {
                v.error(
                    &key(k),
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
                &key("token_env"),
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
        raw: &BTreeMap<String, RawService>,
        teams: &[TeamName],
    ) -> BTreeMap<String, Service> {
        let mut out = BTreeMap::new();
        for (name, svc) in raw {
            let team = svc.team.as_ref().and_then(|t| match TeamName::parse(t) {
                Ok(t) if teams.contains(&t) => Some(t),
                _ => {
                    self.error(
                        &[Seg::Key("services"), Seg::Key(name), Seg::Key("team")],
                        no_team(t, &teams.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
                    );
                    None
                }
            });
            if svc.environments.is_empty() {
                self.error(
                    &[Seg::Key("services"), Seg::Key(name)],
                    "a service needs at least one environment, such as [services.NAME.environments.staging]".into(),
                );
            }
            let mut envs = BTreeMap::new();
            for (ename, e) in &svc.environments {
                envs.insert(
                    ename.clone(),
                    Environment {
                        name: ename.clone(),
                        job: e.job.clone().unwrap_or_else(|| svc.job.clone()),
                        protected: e.protected,
                        // Checked against the org once roles are known.
                        approvers: Vec::new(),
                    },
                );
            }
            out.insert(
                name.clone(),
                Service {
                    name: name.clone(),
                    team,
                    environments: envs,
                },
            );
        }
        out
    }

    pub(super) fn validate_support(&mut self, raw: &RawSupport) -> Option<SupportConfig> {
        let mut ok = true;
        let secret = EnvSecret::read(&raw.secret_env);
        if secret.value.is_none() {
            self.warn(
                &[Seg::Key("support"), Seg::Key("secret_env")],
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
                &[Seg::Key("support"), Seg::Key("session_url")],
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
                    &[Seg::Key("support"), Seg::Key("session_timeout")],
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
            ("per_customer_per_hour", raw.per_customer_per_hour),
            ("per_minute", raw.per_minute),
        ] {
            if v == 0 {
                self.error(
                    &[Seg::Key("support"), Seg::Key(key)],
                    "must be at least 1".into(),
                );
                ok = false;
            }
        }
        let priority = match &raw.priority {
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => p,
                Err(e) => {
                    self.error(&[Seg::Key("support"), Seg::Key("priority")], e.to_string());
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
                    &[Seg::Key("support"), Seg::Key("mail"), Seg::Key(key)],
                    "a subject is one line: remove the line break".into(),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(SupportConfig {
            secret,
            session_url: raw.session_url.trim_end_matches('/').to_string(),
            session_timeout,
            per_customer_per_hour: raw.per_customer_per_hour,
            per_minute: raw.per_minute,
            max_subject: raw.max_subject.max(1),
            max_message: raw.max_message.max(1),
            priority,
            mail: MailTemplates {
                ack_subject: m.ack_subject.clone(),
                ack_body: m.ack_body.clone(),
                update_subject: m.update_subject.clone(),
                update_body: m.update_body.clone(),
                closed_subject: m.closed_subject.clone(),
                closed_body: m.closed_body.clone(),
            },
        })
    }

    pub(super) fn validate_smtp(&mut self, raw: &RawSmtp) -> Option<SmtpConfig> {
        let mut ok = true;
        if raw.host.trim().is_empty() {
            self.error(
                &[Seg::Key("smtp"), Seg::Key("host")],
                "name the mail server, such as \"127.0.0.1\"".into(),
            );
            ok = false;
        }
        if raw.from.parse::<lettre::message::Mailbox>().is_err() {
            self.error(
                &[Seg::Key("smtp"), Seg::Key("from")],
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
                    &[Seg::Key("smtp"), Seg::Key("tls")],
                    format!("`tls` must be one of none, starttls, tls; got `{other}`"),
                );
                ok = false;
                SmtpTls::None
            }
        };
        let mut cred = |key: &'static str, var: &Option<String>| -> Option<EnvSecret> {
            let var = var.as_ref()?;
            let s = EnvSecret::read(var);
            if s.value.is_none() {
                self.warn(
                    &[Seg::Key("smtp"), Seg::Key(key)],
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
            host: raw.host.clone(),
            port: raw.port,
            from: raw.from.clone(),
            tls,
            user,
            password,
        })
    }

    pub(crate) fn warn(&mut self, path: &[Seg<'_>], message: String) {
        self.problem(Severity::Warning, path, message)
    }

    pub(super) fn validate_http(&mut self, raw: &RawHttp) -> Option<HttpConfig> {
        let listen = match raw.listen.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    &[Seg::Key("http"), Seg::Key("listen")],
                    format!(
                        "`{}` is not an address: write HOST:PORT, such as \"127.0.0.1:8787\"",
                        raw.listen
                    ),
                );
                None
            }
        };
        if raw.body_limit < 1024 {
            self.error(
                &[Seg::Key("http"), Seg::Key("body_limit")],
                format!(
                    "{} bytes is too small for any webhook; use at least 1024",
                    raw.body_limit
                ),
            );
        }
        let token = EnvSecret::read(&raw.token_env);
        if token.value.is_none() {
            self.warn(
                &[Seg::Key("http"), Seg::Key("token_env")],
                format!(
                    "{} is not set: the hooks will refuse every request",
                    raw.token_env
                ),
            );
        }
        let api_token = EnvSecret::read(&raw.api_token_env);
        if api_token.value.is_none() {
            self.warn(
                &[Seg::Key("http"), Seg::Key("api_token_env")],
                format!(
                    "{} is not set: the ticket API (/api/v1/tickets) will refuse every request",
                    raw.api_token_env
                ),
            );
        }
        if let (Some(a), Some(h)) = (&api_token.value, &token.value) {
            if a.expose() == h.expose() {
                self.warn(
                    &[Seg::Key("http"), Seg::Key("api_token_env")],
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
            body_limit: raw.body_limit,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn route(
        &mut self,
        path: &[Seg<'_>],
        name: &str,
        matchers: &BTreeMap<String, String>,
        policy: &RawPolicy,
        base: Option<&crate::domain::alert::Route>,
        teams: &[TeamName],
    ) -> Option<crate::domain::alert::Route> {
        use crate::domain::alert::{anchored, OnRefire, Route};
        let key = |k: &'static str| -> Vec<Seg<'_>> {
            let mut p = path.to_vec();
            p.push(Seg::Key(k));
            p
        };
        let mut ok = true;
        let mut compiled = Vec::new();
        for (label, pattern) in matchers {
            match anchored(pattern) {
                Ok(r) => compiled.push((label.clone(), r)),
                Err(e) => {
                    let mut p = path.to_vec();
                    p.push(Seg::Key("match"));
                    p.push(Seg::Key(label));
                    self.error(&p, format!("the regular expression does not compile: {e}"));
                    ok = false;
                }
            }
        }
        let team = match &policy.team {
            Some(t) => match TeamName::parse(t) {
                Ok(t) if teams.contains(&t) => Some(t),
                _ => {
                    let known: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                    self.error(&key("team"), no_team(t, &known));
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
                    self.error(&key("priority"), e.to_string());
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
                        &key("stale_after"),
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
                        &key("stale_after"),
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
        })
    }

    pub(super) fn validate_alerts(
        &mut self,
        raw: &RawAlerts,
        teams: &[TeamName],
    ) -> Option<AlertsConfig> {
        let empty = BTreeMap::new();
        let default = self.route(
            &[Seg::Key("alerts"), Seg::Key("default")],
            "default",
            &empty,
            &raw.default,
            None,
            teams,
        );
        let mut routes = Vec::new();
        let mut names: Vec<&str> = vec!["default"];
        let mut ok = default.is_some();
        for (i, r) in raw.routes.iter().enumerate() {
            let path = [Seg::Key("alerts"), Seg::Key("routes"), Seg::Index(i)];
            if r.name.trim().is_empty() || names.contains(&r.name.as_str()) {
                let mut p = path.to_vec();
                p.push(Seg::Key("name"));
                self.error(
                    &p,
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
            };
            // A route inherits the default route's policy where it is silent.
            match self.route(
                &path,
                &r.name,
                &r.matchers,
                &policy,
                default.as_ref(),
                teams,
            ) {
                Some(route) => routes.push(route),
                None => ok = false,
            }
        }
        let mut rules = Vec::new();
        for (i, m) in raw.message_rules.iter().enumerate() {
            let path = [Seg::Key("alerts"), Seg::Key("message_rules"), Seg::Index(i)];
            let mut pp = path.to_vec();
            pp.push(Seg::Key("pattern"));
            let mut pc = path.to_vec();
            pc.push(Seg::Key("channel"));
            let channel = self.channel(&pc, &m.channel);
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
                        &pp,
                        "the pattern has no `(?P<alertname>…)` group: it must name the alert"
                            .into(),
                    );
                    ok = false;
                }
                Err(e) => {
                    self.error(&pp, format!("the regular expression does not compile: {e}"));
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
        })
    }
}

/// `a, b, c or d`.
fn or_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
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
