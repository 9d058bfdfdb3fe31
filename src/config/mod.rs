//! `bot.toml`: typed with serde (`deny_unknown_fields` everywhere), then a
//! validation pass for what serde cannot check. Every problem names its file,
//! line and key; the line comes from the span toml read the value from.

mod alertmanager;
pub mod found;
pub mod inbox;
pub mod jobs;
pub mod monitoring;
mod people;
mod problems;
mod raw;
pub mod repos;
mod size;
mod status;
#[cfg(test)]
pub(crate) use size::DEFAULT_CACHE;
mod validate;
mod written;

pub use alertmanager::AlertmanagerConfig;
pub use people::Person;
pub(crate) use problems::{deserialize_all, Validator};
pub use problems::{ConfigError, Problem, Severity};

use raw::*;

pub(crate) use crate::domain::org::{did_you_mean, no_team};
pub use crate::domain::org::{AssignPolicy, Org, Role, Team};
pub use crate::domain::service::{Environment, Service};
pub use status::StatusConfig;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::domain::{ChannelName, Priority, TeamName, UserName};

// ---------------------------------------------------------------------------
// The validated configuration.

/// How log lines are written (`[log] format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which database keeps the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageBackend {
    /// Embedded, in the data directory: one process.
    Sled,
    /// A PostgreSQL server: one or more instances.
    Postgres,
}

/// `[storage]`.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// The PostgreSQL URL's variable and value (for `postgres`).
    pub url: EnvSecret,
    /// How long the lease on once-only work lasts between renewals.
    pub lease: std::time::Duration,
    /// sled's page cache, in bytes (`cache`; nothing on PostgreSQL).
    pub cache: u64,
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config file itself.
    pub file: PathBuf,
    /// Where the sled database lives (resolved against the file's folder).
    pub storage_path: PathBuf,
    /// Which database keeps the records, and where.
    pub storage: StorageConfig,
    /// How the log is written.
    pub log_format: LogFormat,
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
    /// The GitLab pipeline trigger tokens forge CI jobs name
    /// (`trigger_token_env`), by env var.
    pub trigger_tokens: Vec<EnvSecret>,
    pub discord: DiscordConfig,
    /// Deadlines, escalation, on-call rotations, the report schedule.
    pub policy: crate::domain::policy::Policy,
    /// The public status page.
    pub status: StatusConfig,
    /// Maintenance windows: their limits and the recurring ones.
    pub monitoring: monitoring::MonitoringConfig,
    /// `[people.NAME]`: mail addresses for pages.
    pub people: BTreeMap<UserName, Person>,
    /// `[repos.*]`: the repositories whose pushes are built, by name.
    pub repos: BTreeMap<String, repos::RepoConfig>,
    /// `[people.*] emails`: a commit author's address (lowercased) → the person.
    pub authors: BTreeMap<String, UserName>,
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
    /// Each person whose `[discord.users]` entry is a Discord username →
    /// that username (lower case), looked up among the guild's members.
    pub usernames: BTreeMap<UserName, String>,
    /// The ids found by name once connected (channels, usernames).
    pub found: found::Found,
    /// How tickets are shown in the operations channel.
    pub tickets: TicketsIn,
}

/// How tickets are shown in the operations channel (`[discord] tickets`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TicketsIn {
    /// A card in a text channel, the ticket's story in a thread under it.
    #[default]
    Threads,
    /// A forum channel: each ticket a post (its card the starter message,
    /// its story in the post), its state the post's tag.
    Forum,
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

    /// The channel's id: as `[discord.channels]` writes it, else as found
    /// by name in the guild.
    pub fn channel_id(&self, name: &ChannelName) -> Option<u64> {
        self.channels
            .get(name)
            .copied()
            .or_else(|| self.found.channel_id(name))
    }

    pub fn channel_name(&self, id: u64) -> Option<ChannelName> {
        self.channels
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .or_else(|| {
                self.found
                    .channel_name(id)
                    .filter(|n| !self.channels.contains_key(n))
            })
    }

    /// The person's Discord user id: as `[discord.users]` writes it, else
    /// as found by their username among the guild's members.
    pub fn user_id(&self, name: &UserName) -> Option<u64> {
        self.users
            .get(name)
            .copied()
            .or_else(|| self.found.user_id(name))
    }

    pub fn user_name(&self, id: u64) -> Option<UserName> {
        self.users
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .or_else(|| {
                self.found
                    .user_name(id)
                    .filter(|n| !self.users.contains_key(n))
            })
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
    /// `[support.inbox]`: the IMAP mailbox customers write to, if any.
    pub inbox: Option<inbox::InboxConfig>,
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

    /// A secret a unit test holds (in the bot, secrets come from env vars).
    #[cfg(test)]
    pub(crate) fn for_tests(s: &str) -> Secret {
        Secret(s.to_string())
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
    /// Where the public reaches the bot's pages (`[http] public_url`, no
    /// trailing `/`); unset: customer mails carry no link.
    pub public_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Ordered routes; the last is the default route and matches everything.
    pub routes: Vec<crate::domain::alert::Route>,
    pub message_rules: Vec<crate::domain::alert::MessageRule>,
    pub coalesce_after: usize,
    /// `[alerts.alertmanager]`: silences kept in Alertmanager too.
    pub alertmanager: Option<AlertmanagerConfig>,
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
        out.extend(self.support.inbox.as_ref().map(|i| &i.password));
        out.extend(self.trigger_tokens.iter());
        for r in self.repos.values() {
            out.extend(r.secret.iter().chain(r.token.iter()));
        }
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
        let mut v = Validator::new(file, src);
        let config = v.validate(&raw);
        let mut problems = v.into_problems();
        let config = config.map(|mut c| {
            let secret_vars: Vec<String> = c.secrets().iter().map(|s| s.var.clone()).collect();
            let repos: Vec<(String, String)> = raw
                .repos
                .iter()
                .map(|(n, r)| (n.to_string(), r.provider.to_string()))
                .collect();
            let (jobs, job_problems) = crate::config::jobs::load_dir_in(
                &c.commands_dir(),
                &c.org,
                &secret_vars,
                &repos,
            );
            problems.extend(job_problems);
            c.jobs = jobs;
            for job in c.jobs.values() {
                let var = job.backend.forge().and_then(|f| f.trigger_token_env.as_deref());
                if let Some(var) = var {
                    if !c.trigger_tokens.iter().any(|t| t.var == var) {
                        c.trigger_tokens.push(EnvSecret::read(var));
                    }
                }
            }
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
                let raw_svc = raw.services.get(sname.as_str());
                for (ename, env) in svc.environments.iter_mut() {
                    let raw_env = raw_svc.and_then(|r| r.environments.get(ename.as_str()));
                    let explicit = raw_env.and_then(|e| e.job.as_ref());
                    let reported = explicit.is_none() && svc_reported.contains(sname);
                    if !c.jobs.contains_key(&env.job) && !reported {
                        if explicit.is_none() {
                            svc_reported.push(sname.clone());
                        }
                        let known = c.jobs.keys().cloned().collect::<Vec<_>>().join(", ");
                        let (key, at) = match explicit {
                            Some(job) => (format!("services.{sname}.environments.{ename}.job"), job.span()),
                            None => (format!("services.{sname}.job"), raw_svc.and_then(|r| r.job.span())),
                        };
                        v.error(key, at, format!("there is no job `{}` in commands/; jobs are: {known}", env.job));
                    }
                    match raw_env.and_then(|e| e.approvers.as_ref()) {
                        None => env.approvers = vec![crate::domain::job::Allowed::ReleaseManagers],
                        Some(list) => {
                            for (i, item) in list.iter().enumerate() {
                                match crate::domain::job::Allowed::parse(item, &c.org) {
                                    Ok(a) => env.approvers.push(a),
                                    Err(e) => v.error(
                                        format!("services.{sname}.environments.{ename}.approvers[{i}]"),
                                        item.span(),
                                        e,
                                    ),
                                }
                            }
                        }
                    }
                }
            }
            c.repos = v.validate_repos(&raw.repos, &c.org, &c.jobs);
            for (sname, svc) in c.services.iter_mut() {
                let Some(repo) = svc.repo.clone() else {
                    continue;
                };
                if !c.repos.contains_key(&repo) {
                    let at = raw
                        .services
                        .get(sname.as_str())
                        .and_then(|r| r.repo.as_ref())
                        .and_then(|r| r.span());
                    let known: Vec<&str> = c.repos.keys().map(String::as_str).collect();
                    v.error(
                        format!("services.{sname}.repo"),
                        at,
                        format!(
                            "there is no [repos.{repo}]; repositories are: {}{}",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") },
                            did_you_mean(&repo, &known)
                        ),
                    );
                    svc.repo = None;
                }
            }
            // A forge CI job works with its repository's API token.
            for job in c.jobs.values() {
                let Some(f) = job.backend.forge() else {
                    continue;
                };
                let Some(r) = c.repos.get(&f.repo) else {
                    continue;
                };
                if r.token.as_ref().is_none_or(|t| t.value.is_none()) {
                    problems.push(Problem {
                        severity: Severity::Warning,
                        file: job.file.clone(),
                        line: None,
                        column: None,
                        key: "repo".into(),
                        message: format!(
                            "[repos.{}] has no token set (token_env): this job cannot run until it is",
                            r.name
                        ),
                    });
                }
            }
            c.authors = v.validate_commit_emails(&raw.people, &c.org);
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
            "public pages: /status ({} listed){}\n",
            self.status.components.len(),
            match &self.http.public_url {
                Some(u) => format!("; customer mails link to {u}/support/tickets/…"),
                None => "; no [http] public_url: customer mails carry no link".into(),
            }
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
        if let Some(am) = &self.alerts.alertmanager {
            s.push_str(&format!(
                "silences kept in Alertmanager at {} too (its silences read every {})\n",
                am.url,
                humantime::format_duration(am.poll)
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
        if let Some(i) = &self.support.inbox {
            s.push_str(&format!(
                "support inbox: {} on {}:{} (tls {}) as {} (password from {}: {})\n",
                i.mailbox,
                i.host,
                i.port,
                i.tls.as_str(),
                i.user,
                i.password.var,
                if i.password.value.is_some() {
                    "set"
                } else {
                    "NOT SET, the inbox is not watched"
                }
            ));
        }
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
        s.push_str(&self.monitoring.summary());
        s.push_str(&self.discord_summary());
        s.push_str(&repos::summary(&self.repos, self.authors.len()));
        match self.storage.backend {
            StorageBackend::Sled => s.push_str(&format!(
                "storage: {} (sled), cache {}\n",
                self.storage_path.display(),
                size::show_size(self.storage.cache)
            )),
            StorageBackend::Postgres => s.push_str(&format!(
                "storage: postgres at ${} ({}), lease {}\n",
                self.storage.url.var,
                if self.storage.url.value.is_some() {
                    "set"
                } else {
                    "NOT SET, the bot refuses to start"
                },
                humantime::format_duration(self.storage.lease)
            )),
        }
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
                "no channel id for {} (looked up by name in the guild at start)",
                missing.join(", ")
            )
        };
        let mut out = format!(
            "discord: token from {} ({token}); {guilds}; {channels}; {} people, {} roles mapped; \
             answers deferred after {} ms\n",
            d.token.var,
            d.users.len() + d.usernames.len(),
            d.roles.len(),
            d.defer_after.as_millis()
        );
        if d.tickets == TicketsIn::Forum {
            out.push_str(&format!(
                "discord: tickets as posts in the forum channel #{}, each post tagged with its ticket's state ({}; tags missing from the forum are created at start)\n",
                self.tickets.channel,
                crate::domain::TicketState::NAMES.join(", ")
            ));
        }
        // People the org names whom Discord cannot know: they act on
        // Discord only through a mapped role.
        let unmapped: Vec<String> = self
            .org
            .people()
            .into_iter()
            .filter(|p| !d.users.contains_key(p) && !d.usernames.contains_key(p))
            .map(|p| p.to_string())
            .collect();
        if !unmapped.is_empty() {
            out.push_str(&format!(
                "discord: no Discord user for {} (add them under [discord.users], or they act on Discord only through a mapped role)\n",
                unmapped.join(", ")
            ));
        }
        out
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
    fn a_key_the_file_leaves_out_is_placed_at_its_section() {
        let src = GOOD.replace("operators = [\"olivia\"]\n", "");
        let err = parse(&src).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(
            (p.key.as_str(), p.line),
            ("roles.operators", Some(2)),
            "{err}"
        );
    }

    #[test]
    fn a_section_written_as_dotted_keys_places_its_values_and_refuses_unknown_keys() {
        let src = format!("http.body_limit = 5\n{GOOD}");
        let err = parse(&src).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(
            (p.key.as_str(), p.line),
            ("http.body_limit", Some(1)),
            "{err}"
        );
        let src = format!("http.bogus = 1\n{GOOD}");
        let err = parse(&src).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(
            (p.key.as_str(), p.line, p.column),
            ("http.bogus", Some(1), Some(6)),
            "{err}"
        );
        assert!(p.message.starts_with("unknown field `bogus`"), "{err}");
    }

    #[test]
    fn sleds_cache_is_a_size_in_kib_mib_or_gib_256mib_unless_written() {
        let c = parse(GOOD).unwrap().config;
        assert_eq!(c.storage.cache, 256 * 1024 * 1024);
        assert!(
            c.summary()
                .contains("storage: /etc/opsbot/data (sled), cache 256 MiB\n"),
            "{}",
            c.summary()
        );
        for (written, bytes, shown) in [
            ("8MiB", 8u64 << 20, "8 MiB"),
            ("16384KiB", 16 << 20, "16 MiB"),
            ("8200KiB", 8200 << 10, "8200 KiB"),
            ("1GiB", 1 << 30, "1 GiB"),
            (" 2 GiB ", 2 << 30, "2 GiB"),
            ("1536MiB", 1536 << 20, "1536 MiB"),
        ] {
            let loaded = parse(&format!("[storage]\ncache = {written:?}\n{GOOD}")).unwrap();
            assert!(
                loaded
                    .warnings
                    .iter()
                    .all(|p| !p.key.starts_with("storage")),
                "{:?}",
                loaded.warnings
            );
            let c = loaded.config;
            assert_eq!(c.storage.cache, bytes, "{written}");
            assert!(
                c.summary().contains(&format!("(sled), cache {shown}\n")),
                "{written}: {}",
                c.summary()
            );
        }
    }

    #[test]
    fn a_wrong_cache_size_is_refused_at_its_line_saying_what_is_accepted() {
        for (written, why) in [
            ("256", "is not a size"),
            ("256MB", "is not a size"),
            ("256mib", "is not a size"),
            ("MiB", "is not a size"),
            ("-1GiB", "is not a size"),
            ("1.5GiB", "is not a size"),
            ("", "is not a size"),
            ("7MiB", "is below the smallest cache, 8MiB"),
            ("0KiB", "is below the smallest cache, 8MiB"),
            ("8191KiB", "is below the smallest cache, 8MiB"),
            ("17179869184GiB", "is more than this machine can address"),
            (
                "99999999999999999999999KiB",
                "is more than this machine can address",
            ),
        ] {
            let src = format!("[storage]\npath = \"data\"\ncache = {written:?}\n{GOOD}");
            let err = parse(&src).unwrap_err();
            let errors: Vec<_> = err
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .collect();
            assert_eq!(errors.len(), 1, "{written}: {err}");
            let p = errors[0];
            assert_eq!(
                (p.file.as_path(), p.line, p.key.as_str()),
                (Path::new("/etc/opsbot/bot.toml"), Some(3), "storage.cache"),
                "{written}: {err}"
            );
            assert_eq!(
                p.message,
                format!("`{written}` {why}: write a whole number of KiB, MiB or GiB from 8MiB, such as \"256MiB\" or \"1GiB\""),
                "{err}"
            );
        }
        // Not a string: serde's refusal, at its place.
        let err = parse(&format!("[storage]\ncache = 268435456\n{GOOD}")).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(
            (p.key.as_str(), p.line),
            ("storage.cache", Some(2)),
            "{err}"
        );
    }

    #[test]
    fn the_cache_on_postgres_is_ignored_with_a_warning() {
        let src = format!("[storage]\nbackend = \"postgres\"\ncache = \"64MiB\"\n{GOOD}");
        let loaded = parse(&src).unwrap();
        let w: Vec<_> = loaded
            .warnings
            .iter()
            .filter(|p| p.key == "storage.cache")
            .collect();
        assert_eq!(w.len(), 1, "{:?}", loaded.warnings);
        assert_eq!((w[0].severity, w[0].line), (Severity::Warning, Some(3)));
        assert!(
            w[0].message
                .starts_with("is ignored with backend = \"postgres\""),
            "{}",
            w[0]
        );
        let summary = loaded.config.summary();
        let line = summary
            .lines()
            .find(|l| l.starts_with("storage: "))
            .unwrap();
        assert!(line.starts_with("storage: postgres at $"), "{line}");
        assert!(!line.contains("cache"), "{line}");
        // Not written: nothing to warn of.
        let src = format!("[storage]\nbackend = \"postgres\"\n{GOOD}");
        let loaded = parse(&src).unwrap();
        assert!(
            loaded.warnings.iter().all(|p| p.key != "storage.cache"),
            "{:?}",
            loaded.warnings
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
