//! `bot.toml`: typed with serde (`deny_unknown_fields` everywhere), then a
//! validation pass for what serde cannot check. Every problem names its file,
//! line and key.

pub mod jobs;
mod raw;

use raw::*;

pub(crate) use crate::domain::org::{did_you_mean, no_team};
pub use crate::domain::org::{AssignPolicy, Org, Role, Team};
pub use crate::domain::service::{Environment, Service};

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::domain::{ChannelName, Priority, TeamName, UserName};

// ---------------------------------------------------------------------------
// The validated configuration.

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config file itself.
    pub file: PathBuf,
    /// Where the sled database lives (resolved against the file's folder).
    pub storage_path: PathBuf,
    pub tickets: TicketsConfig,
    pub org: Org,
    pub http: HttpConfig,
    pub alerts: AlertsConfig,
    pub support: SupportConfig,
    pub smtp: SmtpConfig,
    /// Jobs and custom commands from `commands/*.toml`, by name.
    pub jobs: BTreeMap<String, crate::domain::job::Job>,
    /// Services and their environments, by name.
    pub services: BTreeMap<String, Service>,
    /// The Jenkins server, when jobs run there.
    pub jenkins: Option<JenkinsConfig>,
    pub discord: DiscordConfig,
    /// Deadlines, escalation, on-call rotations, the report schedule.
    pub policy: crate::domain::policy::Policy,
}

/// How long an interaction may take before it is deferred, unless set.
pub const DEFAULT_DEFER_AFTER: std::time::Duration = std::time::Duration::from_millis(1500);
/// The longest `defer_after` allowed: the deferral itself must reach
/// Discord within its 3 s.
pub const MAX_DEFER_AFTER: std::time::Duration = std::time::Duration::from_millis(2500);

/// Where the bot meets its team on Discord.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// Interactions the engine has not answered within this are deferred
    /// ("thinking…") and the answer edited in when ready.
    pub defer_after: std::time::Duration,
    /// Discord role ids whose members act in a role of the organisation.
    pub roles: Vec<(u64, RoleGrant)>,
    pub token: EnvSecret,
    /// Commands are registered in these guilds (none: globally).
    pub guild_ids: Vec<u64>,
    /// Set for tests and proxies; unset: Discord itself, ratelimiter on.
    pub api_base: Option<String>,
    /// Each channel name the config uses → its Discord channel id.
    pub channels: BTreeMap<ChannelName, u64>,
    /// Each person → their Discord user id.
    pub users: BTreeMap<UserName, u64>,
}

/// What a mapped Discord role makes its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleGrant {
    Operators,
    ReleaseManagers,
    Team(TeamName),
}

impl DiscordConfig {
    /// The roles a member with these Discord role ids acts in.
    pub fn grants(&self, role_ids: &[u64]) -> crate::domain::Grants {
        let mut g = crate::domain::Grants::default();
        for (id, grant) in &self.roles {
            if !role_ids.contains(id) {
                continue;
            }
            match grant {
                RoleGrant::Operators => g.operator = true,
                RoleGrant::ReleaseManagers => g.release_manager = true,
                RoleGrant::Team(t) => {
                    if !g.teams.contains(t) {
                        g.teams.push(t.clone())
                    }
                }
            }
        }
        g
    }

    pub fn channel_id(&self, name: &ChannelName) -> Option<u64> {
        self.channels.get(name).copied()
    }

    pub fn channel_name(&self, id: u64) -> Option<&ChannelName> {
        self.channels
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k)
    }

    pub fn user_id(&self, name: &UserName) -> Option<u64> {
        self.users.get(name).copied()
    }

    pub fn user_name(&self, id: u64) -> Option<&UserName> {
        self.users.iter().find(|(_, v)| **v == id).map(|(k, _)| k)
    }
}

/// Where Jenkins is and how to talk to it.
#[derive(Clone, Debug)]
pub struct JenkinsConfig {
    pub url: String,
    pub user: String,
    pub token: EnvSecret,
    pub timeout: std::time::Duration,
    pub poll: std::time::Duration,
}

/// The company app's intake: signature, session check, limits, mail texts.
#[derive(Clone, Debug)]
pub struct SupportConfig {
    pub secret: EnvSecret,
    /// `GET {session_url}/{session_id}` says who the customer is.
    pub session_url: String,
    pub session_timeout: std::time::Duration,
    pub per_customer_per_hour: u32,
    pub per_minute: u32,
    pub max_subject: usize,
    pub max_message: usize,
    pub priority: Priority,
    pub mail: MailTemplates,
}

/// Customer mail texts; `{ticket}`, `{subject}`, `{message}` and `{note}`
/// are filled in.
#[derive(Clone, Debug)]
pub struct MailTemplates {
    pub ack_subject: String,
    pub ack_body: String,
    pub update_subject: String,
    pub update_body: String,
    pub closed_subject: String,
    pub closed_body: String,
}

/// How mail leaves: the SMTP server.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: SmtpTls,
    pub user: Option<EnvSecret>,
    pub password: Option<EnvSecret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// A secret read from the environment variable the config names. It never
/// prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret named by an environment variable, and its value if set.
#[derive(Clone, Debug)]
pub struct EnvSecret {
    pub var: String,
    pub value: Option<Secret>,
}

impl EnvSecret {
    fn read(var: &str) -> Self {
        let value = std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret);
        Self {
            var: var.to_string(),
            value,
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// Bearer token for the hooks.
    pub token: EnvSecret,
    /// Bearer token for the ticket API (customer data: not the hooks' token).
    pub api_token: EnvSecret,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Ordered routes; the last is the default route and matches everything.
    pub routes: Vec<crate::domain::alert::Route>,
    pub message_rules: Vec<crate::domain::alert::MessageRule>,
    pub coalesce_after: usize,
}

impl AlertsConfig {
    /// The first route that takes these labels (the default route last).
    pub fn route_for(&self, labels: &crate::domain::alert::Labels) -> &crate::domain::alert::Route {
        self.routes
            .iter()
            .find(|r| r.matches(labels))
            .unwrap_or_else(|| &self.routes[self.routes.len() - 1])
    }

    pub fn route(&self, name: &str) -> Option<&crate::domain::alert::Route> {
        self.routes.iter().find(|r| r.name == name)
    }
}

#[derive(Clone, Debug)]
pub struct TicketsConfig {
    pub prefix: String,
    /// The operations channel, where new tickets land.
    pub channel: ChannelName,
    pub default_priority: Priority,
}

// ---------------------------------------------------------------------------
// Problems, with their place.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One mistake (or warning) in a config file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: Option<usize>,
    /// 1-based, where the reader knows it (TOML syntax and type errors).
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A config that cannot be used: every problem found.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        writeln!(f, "the configuration has {errors} error(s):")?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// A loaded config, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Where to find the config: the flag, then `$OPSBOT_CONFIG`, then `./bot.toml`.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("OPSBOT_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("bot.toml"))
}

impl Config {
    /// Every secret the config names (Discord token, hook token, support
    /// secret, Jenkins token, SMTP credentials): none reaches a job, and a
    /// job's output never shows one's value.
    pub fn secrets(&self) -> Vec<&EnvSecret> {
        let mut out = vec![
            &self.discord.token,
            &self.http.token,
            &self.http.api_token,
            &self.support.secret,
        ];
        out.extend(self.jenkins.as_ref().map(|j| &j.token));
        out.extend(self.smtp.user.iter().chain(self.smtp.password.iter()));
        out
    }

    /// Reads, parses and validates a config file.
    pub fn load(file: &Path) -> Result<Loaded, ConfigError> {
        let src = std::fs::read_to_string(file).map_err(|e| ConfigError {
            problems: vec![Problem {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: None,
                column: None,
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        Self::parse(file, &src)
    }

    /// Parses and validates config text; `file` names it in messages and
    /// anchors relative paths.
    pub fn parse(file: &Path, src: &str) -> Result<Loaded, ConfigError> {
        let raw: RawConfig =
            deserialize_all(file, src).map_err(|problems| ConfigError { problems })?;
        let mut v = Validator {
            file,
            src,
            doc: toml_edit::ImDocument::parse(src).ok(),
            problems: Vec::new(),
        };
        let config = v.validate(raw);
        let mut problems = v.problems;
        let raw_services: BTreeMap<String, RawService> = toml::from_str::<RawConfig>(src)
            .map(|r| r.services)
            .unwrap_or_default();
        let config = config.map(|mut c| {
            let secret_vars: Vec<String> = c.secrets().iter().map(|s| s.var.clone()).collect();
            let (jobs, job_problems) =
                crate::config::jobs::load_dir(&c.commands_dir(), &c.org, &secret_vars);
            problems.extend(job_problems);
            c.jobs = jobs;
            if c.jenkins.is_none() {
                for job in c.jobs.values() {
                    if let crate::domain::job::Backend::Jenkins(_) = job.backend {
                        problems.push(Problem {
                            severity: Severity::Error,
                            file: job.file.clone(),
                            line: None,
                            column: None,
                            key: "backend".into(),
                            message: "this job runs on Jenkins, but bot.toml has no [ci.jenkins] (url, user, token_env)".into(),
                        });
                    }
                }
            }
            // What needs the jobs and the roles: deploy jobs, approvers.
            let mut v = Validator::new(file, src);
            let mut svc_reported: Vec<String> = Vec::new();
            for (sname, svc) in c.services.iter_mut() {
                for (ename, env) in svc.environments.iter_mut() {
                    let raw_env = raw_services.get(sname).and_then(|r| r.environments.get(ename));
                    let reported = raw_env.is_none_or(|e| e.job.is_none())
                        && svc_reported.contains(sname);
                    if !c.jobs.contains_key(&env.job) && !reported {
                        if raw_env.is_none_or(|e| e.job.is_none()) {
                            svc_reported.push(sname.clone());
                        }
                        let known = c.jobs.keys().cloned().collect::<Vec<_>>().join(", ");
                        let explicit = raw_env.is_some_and(|e| e.job.is_some());
                        let path: Vec<Seg<'_>> = if explicit {
                            vec![Seg::Key("services"), Seg::Key(sname), Seg::Key("environments"), Seg::Key(ename), Seg::Key("job")]
                        } else {
                            vec![Seg::Key("services"), Seg::Key(sname), Seg::Key("job")]
                        };
                        v.error(&path, format!("there is no job `{}` in commands/; jobs are: {known}", env.job));
                    }
                    match raw_env.and_then(|e| e.approvers.as_ref()) {
                        None => env.approvers = vec![crate::domain::job::Allowed::ReleaseManagers],
                        Some(list) => {
                            for (i, item) in list.iter().enumerate() {
                                match crate::domain::job::Allowed::parse(item, &c.org) {
                                    Ok(a) => env.approvers.push(a),
                                    Err(e) => v.error(
                                        &[Seg::Key("services"), Seg::Key(sname), Seg::Key("environments"), Seg::Key(ename), Seg::Key("approvers"), Seg::Index(i)],
                                        e,
                                    ),
                                }
                            }
                        }
                    }
                }
            }
            problems.extend(v.into_problems());
            c
        });
        let (errors, warnings): (Vec<_>, Vec<_>) = problems
            .into_iter()
            .partition(|p| p.severity == Severity::Error);
        match config {
            Some(config) if errors.is_empty() => Ok(Loaded { config, warnings }),
            _ => Err(ConfigError {
                problems: errors.into_iter().chain(warnings).collect(),
            }),
        }
    }

    /// The folder of custom commands and jobs: `commands/` beside the config.
    pub fn commands_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
            .join("commands")
    }

    /// A short summary of what the config defines, for `opsbot check`.
    pub fn summary(&self) -> String {
        let org = &self.org;
        let names = |v: &[UserName]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        let mut s = String::new();
        s.push_str(&format!(
            "tickets: ids {}-N, new tickets in #{}, default priority {}\n",
            self.tickets.prefix, self.tickets.channel, self.tickets.default_priority
        ));
        s.push_str(&format!(
            "people: {} (operators: {}; QA: {}; release managers: {})\n",
            org.people().len(),
            names(&org.operators),
            org.qa()
                .map(|t| format!("team {} ({})", t.name, names(&t.members)))
                .unwrap_or_else(|| "none".into()),
            names(&org.release_managers),
        ));
        s.push_str(&format!("teams: {}\n", org.teams.len()));
        for t in org.teams.values() {
            s.push_str(&format!(
                "  {} in #{}: {}{}\n",
                t.name,
                t.channel,
                names(&t.members),
                t.lead
                    .as_ref()
                    .map(|l| format!(" (lead {l})"))
                    .unwrap_or_default()
            ));
        }
        s.push_str(&format!(
            "http: {} (token from {}: {}; body limit {} bytes)\n",
            self.http.listen,
            self.http.token.var,
            if self.http.token.value.is_some() {
                "set"
            } else {
                "NOT SET, hooks refuse requests"
            },
            self.http.body_limit
        ));
        s.push_str(&format!(
            "alert routes: {}\n",
            self.alerts
                .routes
                .iter()
                .map(|r| format!(
                    "{} → {} {}",
                    r.name,
                    r.team.as_ref().map_or("operators", |t| t.as_str()),
                    r.priority
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for r in &self.alerts.message_rules {
            s.push_str(&format!(
                "message rule in #{}: {}\n",
                r.channel,
                r.pattern.as_str()
            ));
        }
        s.push_str(&format!(
            "support: sessions checked at {} (secret from {}: {}); mail via {}:{} from {}\n",
            self.support.session_url,
            self.support.secret.var,
            if self.support.secret.value.is_some() {
                "set"
            } else {
                "NOT SET, the intake refuses requests"
            },
            self.smtp.host,
            self.smtp.port,
            self.smtp.from
        ));
        s.push_str(&format!(
            "jobs (commands/): {}\n",
            if self.jobs.is_empty() {
                "none".to_string()
            } else {
                self.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        ));
        let p = &self.policy;
        s.push_str(&format!(
            "deadlines: {}\n",
            if p.deadlines.is_empty() {
                "none".to_string()
            } else {
                p.deadlines
                    .iter()
                    .map(|(prio, d)| {
                        let show = |x: Option<chrono::Duration>| {
                            x.map_or("-".to_string(), crate::domain::policy::human)
                        };
                        format!(
                            "{prio} take {} resolve {}",
                            show(d.acknowledge),
                            show(d.resolve)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        for c in &p.chains {
            s.push_str(&format!(
                "escalation {}: {}\n",
                c.name,
                c.steps
                    .iter()
                    .map(|st| st.describe())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        for r in p.oncall.values() {
            s.push_str(&format!(
                "on call for {}: {} ({}, handoff {} {})\n",
                r.team,
                names(&r.members),
                r.period.as_str(),
                r.handoff.format("%H:%M"),
                r.tz
            ));
        }
        if let Some(w) = &p.weekly_report {
            s.push_str(&format!(
                "weekly report: {} {} {} in #{}\n",
                w.day,
                w.time.format("%H:%M"),
                w.tz,
                self.tickets.channel
            ));
        }
        s.push_str(&self.discord_summary());
        s.push_str(&format!("storage: {}\n", self.storage_path.display()));
        s
    }

    /// The channels the bot posts in or reads: the operations channel, the
    /// teams' channels and the message rules' channels.
    pub fn channels_used(&self) -> Vec<ChannelName> {
        let mut all: Vec<ChannelName> = std::iter::once(self.tickets.channel.clone())
            .chain(self.org.teams.values().map(|t| t.channel.clone()))
            .chain(self.alerts.message_rules.iter().map(|r| r.channel.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    fn discord_summary(&self) -> String {
        let d = &self.discord;
        let token = match d.token.value {
            Some(_) => "set",
            None => "NOT SET, `opsbot run` refuses to start",
        };
        let guilds = if d.guild_ids.is_empty() {
            "global commands".to_string()
        } else {
            let ids: Vec<String> = d.guild_ids.iter().map(u64::to_string).collect();
            format!("commands in guild {}", ids.join(", "))
        };
        let missing: Vec<String> = self
            .channels_used()
            .into_iter()
            .filter(|c| d.channel_id(c).is_none())
            .map(|c| format!("#{c}"))
            .collect();
        let channels = if missing.is_empty() {
            "every channel mapped".to_string()
        } else {
            format!(
                "no channel id for {} (posts there are refused)",
                missing.join(", ")
            )
        };
        format!(
            "discord: token from {} ({token}); {guilds}; {channels}; {} people, {} roles mapped; \
             answers deferred after {} ms\n",
            d.token.var,
            d.users.len(),
            d.roles.len(),
            d.defer_after.as_millis()
        )
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// 1-based column (in characters) of a byte offset.
pub(crate) fn column_of(src: &str, offset: usize) -> usize {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    before.get(start..).map_or(0, |s| s.chars().count()) + 1
}

/// The most mistakes one file reports at once.
const MAX_REPORTED: usize = 50;

/// Deserializes TOML text, reporting every mistake serde finds rather than
/// the first: after each, the entry at fault is blanked out (byte offsets
/// kept) and the text read again. A TOML syntax error stops there (what
/// follows it cannot be read reliably) and is reported with its line and
/// column; the others name their key (`http.body_limit`,
/// `teams.ops.channel` for a missing field).
pub(crate) fn deserialize_all<T: serde::de::DeserializeOwned>(
    file: &Path,
    src: &str,
) -> Result<T, Vec<Problem>> {
    let mut text = src.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    for _ in 0..MAX_REPORTED {
        let e = match toml::from_str::<T>(&text) {
            Ok(v) if problems.is_empty() => return Ok(v),
            Ok(_) => break,
            Err(e) => e,
        };
        let doc = toml_edit::ImDocument::parse(text.as_str()).ok();
        if doc.is_none() && !problems.is_empty() {
            // Blanking made it unreadable: what was found stands.
            break;
        }
        let span = e.span();
        let found = match (&doc, &span) {
            (Some(doc), Some(span)) => entry_at(doc, &text, span.start),
            _ => None,
        };
        let message = e.message().trim().to_string();
        let key = match &found {
            Some((path, _)) => match missing_field(&message) {
                Some(field) if !path.is_empty() => format!("{path}.{field}"),
                Some(field) => field.to_string(),
                None => path.clone(),
            },
            None => String::new(),
        };
        // Blanking a wrong value can make it missing: said once.
        let again = !key.is_empty() && problems.iter().any(|p| p.key == key);
        if !again {
            problems.push(Problem {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: span.as_ref().map(|s| line_of(src, s.start)),
                column: span.as_ref().map(|s| column_of(src, s.start)),
                key,
                message,
            });
        }
        let Some((_, region)) = found else { break };
        let blanked = blank(&text, region);
        if blanked == text {
            break;
        }
        text = blanked;
    }
    Err(problems)
}

/// `channel` in serde's "missing field `channel`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
}

/// `text` with the bytes of `region` turned to spaces (newlines kept), so
/// that every other offset stays where it was.
fn blank(text: &str, region: Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if region.contains(&i) && c != '\n' {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

fn within(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The key path of what sits at `offset` (a key, a value, a table header)
/// and the region of its whole entry: the `key = value` line of a table,
/// or a table from its header to the next one.
fn entry_at(
    doc: &toml_edit::ImDocument<&str>,
    text: &str,
    offset: usize,
) -> Option<(String, Range<usize>)> {
    let mut headers = Vec::new();
    header_starts(doc.as_table(), &mut headers);
    headers.sort_unstable();
    let next_header = |at: usize| {
        headers
            .iter()
            .copied()
            .find(|h| *h > at)
            .unwrap_or(text.len())
    };
    let mut path = Vec::new();
    let region = walk_table(doc.as_table(), offset, &mut path, &next_header)?;
    let mut s = String::new();
    for p in &path {
        if !p.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(p);
    }
    Some((s, region))
}

/// Where every table header starts.
fn header_starts(t: &toml_edit::Table, out: &mut Vec<usize>) {
    for (_, item) in t.iter() {
        match item {
            toml_edit::Item::Table(sub) => {
                if let Some(s) = sub.span() {
                    out.push(s.start);
                }
                header_starts(sub, out);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for sub in a.iter() {
                    if let Some(s) = sub.span() {
                        out.push(s.start);
                    }
                    header_starts(sub, out);
                }
            }
            _ => {}
        }
    }
}

fn walk_table(
    t: &toml_edit::Table,
    offset: usize,
    path: &mut Vec<String>,
    next_header: &dyn Fn(usize) -> usize,
) -> Option<Range<usize>> {
    use toml_edit::Item;
    for (k, item) in t.iter() {
        path.push(k.to_string());
        let key_span = t.key(k).and_then(|key| key.span());
        match item {
            Item::Value(v) => {
                if within(key_span.clone(), offset) || within(v.span(), offset) {
                    let end = v.span().map_or(offset + 1, |s| s.end);
                    let start = key_span.map_or(offset, |s| s.start);
                    walk_value(v, offset, path);
                    return Some(start.min(offset)..end.max(offset + 1));
                }
            }
            Item::Table(sub) => {
                if let Some(r) = walk_table(sub, offset, path, next_header) {
                    return Some(r);
                }
                if within(sub.span(), offset) || within(key_span, offset) {
                    let start = sub.span().map_or(offset, |s| s.start);
                    return Some(start..next_header(start));
                }
            }
            Item::ArrayOfTables(a) => {
                for (i, sub) in a.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    if let Some(r) = walk_table(sub, offset, path, next_header) {
                        return Some(r);
                    }
                    if within(sub.span(), offset) {
                        let start = sub.span().map_or(offset, |s| s.start);
                        return Some(start..next_header(start));
                    }
                    path.pop();
                }
            }
            Item::None => {}
        }
        path.pop();
    }
    None
}

/// Goes down into an inline table or array to the value at `offset`.
fn walk_value(v: &toml_edit::Value, offset: usize, path: &mut Vec<String>) {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, x) in t.iter() {
                let key_span = t.key(k).and_then(|key| key.span());
                if within(key_span, offset) || within(x.span(), offset) {
                    path.push(k.to_string());
                    walk_value(x, offset, path);
                    return;
                }
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if within(x.span(), offset) {
                    path.push(format!("[{i}]"));
                    walk_value(x, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// A step of a key path.
#[derive(Clone, Debug)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_string(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

pub(crate) struct Validator<'a> {
    file: &'a Path,
    src: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(file: &'a Path, src: &'a str) -> Self {
        Validator {
            file,
            src,
            doc: toml_edit::ImDocument::parse(src).ok(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// The line of the deepest part of `path` that the document has.
    fn locate(&self, path: &[Seg<'_>]) -> Option<usize> {
        use toml_edit::{Item, TableLike};
        enum Node<'d> {
            Table(&'d dyn TableLike),
            Item(&'d Item),
        }
        let doc = self.doc.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut cur = Node::Table(doc.as_table());
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    let table = match cur {
                        Node::Table(t) => Some(t),
                        Node::Item(it) => it.as_table_like(),
                    };
                    let Some((key, it)) = table.and_then(|t| t.get_key_value(k)) else {
                        break;
                    };
                    best = key.span().or_else(|| it.span()).or(best);
                    cur = Node::Item(it);
                }
                Seg::Index(i) => {
                    let Node::Item(it) = cur else { break };
                    if let Some(t) = it.as_array_of_tables().and_then(|a| a.get(*i)) {
                        best = t.span().or(best);
                        cur = Node::Table(t);
                        continue;
                    }
                    if let Some(v) = it.as_array().and_then(|a| a.get(*i)) {
                        best = v.span().or(best);
                    }
                    break;
                }
            }
        }
        best.map(|s| line_of(self.src, s.start))
    }

    fn problem(&mut self, severity: Severity, path: &[Seg<'_>], message: String) {
        let line = self.locate(path);
        self.problems.push(Problem {
            severity,
            file: self.file.to_path_buf(),
            line,
            column: None,
            key: path_string(path),
            message,
        });
    }

    pub(crate) fn error(&mut self, path: &[Seg<'_>], message: String) {
        self.problem(Severity::Error, path, message)
    }

    fn user(&mut self, path: &[Seg<'_>], raw: &str) -> Option<UserName> {
        match UserName::parse(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    fn channel(&mut self, path: &[Seg<'_>], raw: &str) -> Option<ChannelName> {
        match ChannelName::parse(raw) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    fn validate(&mut self, raw: RawConfig) -> Option<Config> {
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
    fn lone_names(&mut self, raw: &RawConfig) {
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

    fn duration_at(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono::Duration> {
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

    fn time_zone(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono_tz::Tz> {
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

    fn time_of_day(&mut self, path: &[Seg<'_>], raw: &str) -> Option<chrono::NaiveTime> {
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
    fn validate_policy(
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
                    format!("`{name}` is not a priority: use p1, p2, p3 or p4"),
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
fn teams_for_services(raw: &RawConfig, _dir: &Path) -> Vec<TeamName> {
    raw.teams
        .keys()
        .filter_map(|n| TeamName::parse(n).ok())
        .collect()
}

impl Validator<'_> {
    fn snowflake(&mut self, path: &[Seg<'_>], v: &Snowflake) -> Option<u64> {
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

    fn validate_discord(
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

    fn validate_jenkins(&mut self, raw: Option<&RawJenkins>) -> Option<JenkinsConfig> {
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

    fn validate_services(
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

    fn validate_support(&mut self, raw: &RawSupport) -> Option<SupportConfig> {
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

    fn validate_smtp(&mut self, raw: &RawSmtp) -> Option<SmtpConfig> {
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

    fn validate_http(&mut self, raw: &RawHttp) -> Option<HttpConfig> {
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
    fn route(
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

    fn validate_alerts(&mut self, raw: &RawAlerts, teams: &[TeamName]) -> Option<AlertsConfig> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Loaded, ConfigError> {
        Config::parse(Path::new("/etc/opsbot/bot.toml"), src)
    }

    const GOOD: &str = r#"
[roles]
operators = ["olivia"]
qa_team = "qa"

[teams.backend]
channel = "backend"
members = ["bob", "bella"]

[teams.qa]
channel = "qa"
members = ["quinn"]
"#;

    #[test]
    fn a_small_config_loads_with_defaults() {
        let c = parse(GOOD).unwrap().config;
        assert_eq!(c.tickets.prefix, "OPS");
        assert_eq!(c.tickets.channel.as_str(), "ops");
        assert_eq!(c.storage_path, PathBuf::from("/etc/opsbot/data"));
        assert!(c.org.is_qa(&UserName::parse("quinn").unwrap()));
        assert!(!c.org.is_qa(&UserName::parse("bob").unwrap()));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let src = GOOD.replace("channel = \"qa\"", "chanel = \"qa\"");
        let err = parse(&src).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(p.line, Some(11), "{err}");
        assert!(p.message.contains("unknown field `chanel`"), "{err}");
        assert_eq!(p.key, "teams.qa.chanel");
    }

    #[test]
    fn every_validation_error_is_reported_with_its_place() {
        let src = r#"
[tickets]
prefix = "ops"

[roles]
operators = []
qa_team = "testers"

[teams.backend]
channel = "Back End"
members = ["bob", "bob"]
lead = "zed"
"#;
        let err = parse(src).unwrap_err();
        let got: Vec<(Option<usize>, &str)> = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(3), "tickets.prefix"),
                (Some(10), "teams.backend.channel"),
                (Some(11), "teams.backend.members[1]"),
                (Some(12), "teams.backend.lead"),
                (Some(6), "roles.operators"),
                (Some(7), "roles.qa_team"),
            ],
            "{err}"
        );
        assert!(err.to_string().contains("known teams: backend"));
    }

    #[test]
    fn alert_routes_and_message_rules_are_checked() {
        let src = format!(
            "{GOOD}{}",
            r#"
[[alerts.routes]]
name = "db"
match = { service = "db(" }
team = "dba"

[[alerts.routes]]
name = "ok"
match = { service = "web" }
stale_after = "soon"

[[alerts.message_rules]]
channel = "alerts"
pattern = '^(?P<status>\w+) (?P<service>\w+)'

[[alerts.message_rules]]
channel = "alerts"
pattern = '^(?P<alertname>[a-z'
"#
        );
        let err = parse(&src).unwrap_err();
        let got: Vec<(&str, &str)> = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.key.as_str(), p.message.split(':').next().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "alerts.routes[0].match.service",
                    "the regular expression does not compile"
                ),
                (
                    "alerts.routes[0].team",
                    "no team `dba` is defined; known teams"
                ),
                (
                    "alerts.routes[1].stale_after",
                    "`soon` is not a duration of a minute or more, such as \"6h\" or \"30m\""
                ),
                (
                    "alerts.message_rules[0].pattern",
                    "the pattern has no `(?P<alertname>…)` group"
                ),
                (
                    "alerts.message_rules[1].pattern",
                    "the regular expression does not compile"
                ),
            ],
            "{err}"
        );
        let lines: Vec<Option<usize>> = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.line)
            .collect();
        assert_eq!(
            lines,
            vec![Some(16), Some(17), Some(22), Some(26), Some(30)],
            "{err}"
        );
    }

    #[test]
    fn a_team_without_channel_is_an_error() {
        let src = "[roles]\noperators=[\"o\"]\n[teams.x]\nmembers=[\"a\"]\n";
        let err = parse(src).unwrap_err();
        assert!(
            err.problems[0].message.contains("missing field `channel`"),
            "{err}"
        );
        assert_eq!(err.problems[0].line, Some(3));
    }
}
