//! `bot.toml` as written: the serde schema (`deny_unknown_fields` on every
//! section) and its defaults. `config` validates it into the model. A value
//! the validation may find fault with is [`Written`]: it keeps the place it
//! was read from, so a problem names its line without reading the text again.

use std::collections::BTreeMap;

use serde::Deserialize;

pub(super) use super::written::Written;
use crate::domain::org::AssignPolicy;

/// A section whose keys may be left out is [`Written`] too: a problem with
/// a default it does not write is placed at the section's header.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    pub(super) storage: RawStorage,
    pub(super) log: RawLog,
    pub(super) tickets: RawTickets,
    pub(super) roles: Written<RawRoles>,
    pub(super) teams: BTreeMap<Written<String>, RawTeam>,
    pub(super) http: Written<RawHttp>,
    pub(super) alerts: RawAlerts,
    pub(super) support: Written<RawSupport>,
    pub(super) smtp: RawSmtp,
    pub(super) services: BTreeMap<Written<String>, RawService>,
    pub(super) ci: RawCi,
    pub(super) discord: RawDiscord,
    /// Per priority: time to acknowledge and to resolve.
    pub(super) deadlines: BTreeMap<Written<String>, RawDeadline>,
    /// Escalation chains, tried in order.
    pub(super) escalation: Vec<RawChain>,
    /// On-call rotations, by team.
    pub(super) oncall: BTreeMap<Written<String>, RawRotation>,
    pub(super) reports: RawReports,
    pub(super) status: super::status::RawStatus,
    /// `[monitoring]`: maintenance windows' limits and time zone.
    pub(super) monitoring: super::monitoring::RawMonitoring,
    /// Recurring maintenance windows.
    pub(super) maintenance: Vec<super::monitoring::RawMaintenance>,
    /// Heartbeats (a dead man's switch), by name.
    pub(super) heartbeats: BTreeMap<Written<String>, super::monitoring::RawHeartbeat>,
    /// What the bot knows of each person (their mail address for pages).
    pub(super) people: BTreeMap<Written<String>, super::people::RawPerson>,
    /// `[repos.NAME]`: repositories whose pushes are built.
    pub(super) repos: BTreeMap<Written<String>, super::repos::RawRepo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeadline {
    pub(super) acknowledge: Option<Written<String>>,
    pub(super) resolve: Option<Written<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChain {
    pub(super) name: Written<String>,
    #[serde(default)]
    pub(super) teams: Vec<Written<String>>,
    #[serde(default)]
    pub(super) priorities: Vec<Written<String>>,
    pub(super) steps: Written<Vec<Written<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRotation {
    pub(super) members: Written<Vec<Written<String>>>,
    pub(super) period: crate::domain::rotation::Period,
    #[serde(default = "default_handoff")]
    pub(super) handoff: Written<String>,
    #[serde(default = "default_time_zone")]
    pub(super) time_zone: Written<String>,
    pub(super) start: Written<String>,
    #[serde(default)]
    pub(super) overlapping_overrides: bool,
}

pub(super) fn default_handoff() -> Written<String> {
    String::from("09:00").into()
}
pub(super) fn default_time_zone() -> Written<String> {
    String::from("UTC").into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawReports {
    pub(super) weekly: Option<RawWeekly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeekly {
    pub(super) day: Written<String>,
    #[serde(default = "default_handoff")]
    pub(super) time: Written<String>,
    #[serde(default = "default_time_zone")]
    pub(super) time_zone: Written<String>,
}

/// A Discord id, written as a string or an integer.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Snowflake {
    Text(String),
    Number(u64),
}

/// One id or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Snowflakes {
    One(Snowflake),
    Many(Vec<Snowflake>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDiscord {
    pub(super) token_env: String,
    /// An untagged value keeps no places inside: a list's ids are placed
    /// at `guild_id`.
    pub(super) guild_id: Option<Written<Snowflakes>>,
    /// Another base URL for Discord's API and gateway (tests, proxies).
    pub(super) api_base: Option<Written<String>>,
    pub(super) channels: BTreeMap<Written<String>, Snowflake>,
    pub(super) users: BTreeMap<Written<String>, Snowflake>,
    /// Interactions not answered within this are deferred (Discord allows 3 s).
    pub(super) defer_after: Option<Written<String>>,
    /// `operators`, `release_managers` or a team name → a Discord role id.
    pub(super) roles: BTreeMap<Written<String>, Snowflake>,
    /// `threads` (a thread under each card) or `forum` (the operations
    /// channel is a forum channel: each ticket a post, its state a tag).
    pub(super) tickets: Option<Written<String>>,
}

impl Default for RawDiscord {
    fn default() -> Self {
        Self {
            token_env: "DISCORD_TOKEN".into(),
            guild_id: None,
            api_base: None,
            defer_after: None,
            roles: BTreeMap::new(),
            channels: BTreeMap::new(),
            users: BTreeMap::new(),
            tickets: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCi {
    pub(super) jenkins: Option<Written<RawJenkins>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJenkins {
    pub(super) url: Written<String>,
    pub(super) user: String,
    #[serde(default = "default_jenkins_token_env")]
    pub(super) token_env: Written<String>,
    #[serde(default = "default_jenkins_timeout")]
    pub(super) timeout: Written<String>,
    /// How often a running build is looked at (it backs off to 4× this).
    #[serde(default = "default_jenkins_poll")]
    pub(super) poll: Written<String>,
}

pub(super) fn default_jenkins_token_env() -> Written<String> {
    String::from("JENKINS_TOKEN").into()
}
pub(super) fn default_jenkins_timeout() -> Written<String> {
    String::from("10s").into()
}
pub(super) fn default_jenkins_poll() -> Written<String> {
    String::from("2s").into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    #[serde(default)]
    pub(super) team: Option<Written<String>>,
    /// The job (in commands/) that deploys it, unless an environment says.
    pub(super) job: Written<String>,
    /// The `[repos.NAME]` whose commits or tags its versions are.
    #[serde(default)]
    pub(super) repo: Option<Written<String>>,
    pub(super) environments: BTreeMap<Written<String>, RawEnvironment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawEnvironment {
    pub(super) job: Option<Written<String>>,
    /// A deploy waits for an approval.
    pub(super) protected: bool,
    /// Who may approve (default: release managers).
    pub(super) approvers: Option<Vec<Written<String>>>,
    /// A deploy opens a maintenance window this long for its service and
    /// environment, such as "10m".
    pub(super) maintenance: Option<Written<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSupport {
    pub(super) secret_env: Written<String>,
    pub(super) session_url: Written<String>,
    pub(super) session_timeout: Written<String>,
    pub(super) per_customer_per_hour: Written<u32>,
    pub(super) per_minute: Written<u32>,
    pub(super) max_subject: usize,
    pub(super) max_message: usize,
    pub(super) priority: Option<Written<String>>,
    pub(super) mail: RawMailTemplates,
    pub(super) inbox: Option<Written<super::inbox::RawInbox>>,
}

impl Default for RawSupport {
    fn default() -> Self {
        Self {
            secret_env: String::from("OPSBOT_SUPPORT_SECRET").into(),
            session_url: String::from("http://127.0.0.1:8790/sessions").into(),
            session_timeout: String::from("2s").into(),
            per_customer_per_hour: 10.into(),
            per_minute: 600.into(),
            max_subject: 200,
            max_message: 10_000,
            priority: None,
            mail: RawMailTemplates::default(),
            inbox: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMailTemplates {
    pub(super) ack_subject: Written<String>,
    pub(super) ack_body: String,
    pub(super) update_subject: Written<String>,
    pub(super) update_body: String,
    pub(super) closed_subject: Written<String>,
    pub(super) closed_body: String,
}

impl Default for RawMailTemplates {
    fn default() -> Self {
        Self {
            ack_subject: String::from("[{ticket}] We received your request: {subject}").into(),
            ack_body: "Hello,\n\nwe received your request and opened ticket {ticket} for it:\n\n{message}\n\nWe will write again when it is solved.\n".into(),
            update_subject: String::from("[{ticket}] Update on your request: {subject}").into(),
            update_body: "Hello,\n\nan update on your request ({ticket}):\n\n{note}\n".into(),
            closed_subject: String::from("[{ticket}] Solved: {subject}").into(),
            closed_body: "Hello,\n\nyour request ({ticket}) is solved and closed.\n\n{note}\n\nIf the problem comes back, just write to us again.\n".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSmtp {
    pub(super) host: Written<String>,
    pub(super) port: u16,
    pub(super) from: Written<String>,
    /// `none` (plain SMTP, for loopback), `starttls` or `tls`.
    pub(super) tls: Written<String>,
    pub(super) user_env: Option<Written<String>>,
    pub(super) password_env: Option<Written<String>>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: String::from("127.0.0.1").into(),
            port: 2525,
            from: String::from("Support <support@example.com>").into(),
            tls: String::from("none").into(),
            user_env: None,
            password_env: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    pub(super) listen: Written<String>,
    pub(super) token_env: Written<String>,
    pub(super) api_token_env: Written<String>,
    pub(super) body_limit: Written<usize>,
    pub(super) public_url: Option<Written<String>>,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: String::from("127.0.0.1:8787").into(),
            token_env: String::from("OPSBOT_HOOK_TOKEN").into(),
            api_token_env: String::from("OPSBOT_API_TOKEN").into(),
            body_limit: (1024 * 1024).into(),
            public_url: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAlerts {
    /// Route policy for alerts no route takes.
    pub(super) default: RawPolicy,
    pub(super) routes: Vec<RawRoute>,
    pub(super) message_rules: Vec<RawMessageRule>,
    /// Pending alert posts to one channel beyond this are merged into one summary.
    pub(super) coalesce_after: Option<usize>,
    /// The Alertmanager that keeps silences too.
    pub(super) alertmanager: Option<Written<super::alertmanager::RawAlertmanager>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) team: Option<Written<String>>,
    pub(super) priority: Option<Written<String>>,
    pub(super) group_by: Option<Vec<String>>,
    pub(super) resolve_on_recovery: Option<bool>,
    pub(super) stale_after: Option<Written<String>>,
    pub(super) on_refire: Option<crate::domain::alert::OnRefire>,
    /// `flap = { changes = 5, within = "30m" }`.
    pub(super) flap: Option<super::monitoring::RawFlap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: Written<String>,
    #[serde(rename = "match", default)]
    pub(super) matchers: BTreeMap<Written<String>, String>,
    pub(super) team: Option<Written<String>>,
    pub(super) priority: Option<Written<String>>,
    pub(super) group_by: Option<Vec<String>>,
    pub(super) resolve_on_recovery: Option<bool>,
    pub(super) stale_after: Option<Written<String>>,
    pub(super) on_refire: Option<crate::domain::alert::OnRefire>,
    pub(super) flap: Option<super::monitoring::RawFlap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessageRule {
    pub(super) channel: Written<String>,
    pub(super) pattern: Written<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStorage {
    /// `sled` (the data directory `path`) or `postgres` (the database the
    /// variable `url_env` names).
    pub(super) backend: Written<String>,
    pub(super) path: Written<String>,
    pub(super) url_env: Written<String>,
    /// How long the lease on once-only work lasts (several instances).
    pub(super) lease: Written<String>,
    /// sled's page cache, a size such as `256MiB` (ignored on PostgreSQL).
    pub(super) cache: Written<String>,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    /// `text` (for people) or `json` (one object per line, for collectors).
    pub(super) format: Written<String>,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: String::from("text").into(),
        }
    }
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            backend: String::from("sled").into(),
            path: String::from("data").into(),
            url_env: String::from("OPSBOT_DATABASE_URL").into(),
            lease: String::from("10s").into(),
            cache: String::from("256MiB").into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTickets {
    pub(super) prefix: Written<String>,
    pub(super) channel: Written<String>,
    pub(super) default_priority: Written<String>,
}

impl Default for RawTickets {
    fn default() -> Self {
        Self {
            prefix: String::from("OPS").into(),
            channel: String::from("ops").into(),
            default_priority: String::from("p3").into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRoles {
    pub(super) operators: Written<Vec<Written<String>>>,
    pub(super) qa_team: Option<Written<String>>,
    pub(super) release_managers: Vec<Written<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeam {
    pub(super) channel: Written<String>,
    pub(super) members: Written<Vec<Written<String>>>,
    #[serde(default)]
    pub(super) lead: Option<Written<String>>,
    #[serde(default)]
    pub(super) description: Option<String>,
    /// What `/ticket assign team:…` does: leave it to the team, or pick the
    /// on-call person or the least-loaded member.
    #[serde(default)]
    pub(super) assign: Written<AssignPolicy>,
}

#[cfg(test)]
mod tests {
    use super::RawConfig;

    fn raw(src: &str) -> RawConfig {
        toml::from_str(src).unwrap()
    }

    /// The defaults, as they were when each was written twice (once per field
    /// for serde, once in `impl Default`): an absent section, an empty one and
    /// a section that sets one key all give them.
    #[test]
    fn defaults_are_the_same_for_absent_empty_and_partial_sections() {
        let empty = raw("");
        let sections = raw(
            "[storage]\n[tickets]\n[roles]\n[http]\n[alerts]\n[support]\n\
             [support.mail]\n[smtp]\n[ci]\n[discord]\n[reports]\n",
        );
        assert_eq!(format!("{empty:?}"), format!("{sections:?}"));

        let c = &empty;
        assert_eq!(c.storage.path, "data");
        assert_eq!(c.tickets.prefix, "OPS");
        assert_eq!(c.tickets.channel, "ops");
        assert_eq!(c.tickets.default_priority, "p3");
        assert_eq!(c.http.listen, "127.0.0.1:8787");
        assert_eq!(c.http.token_env, "OPSBOT_HOOK_TOKEN");
        assert_eq!(c.http.api_token_env, "OPSBOT_API_TOKEN");
        assert_eq!(c.http.body_limit, 1024 * 1024);
        assert_eq!(c.support.secret_env, "OPSBOT_SUPPORT_SECRET");
        assert_eq!(c.support.session_url, "http://127.0.0.1:8790/sessions");
        assert_eq!(c.support.session_timeout, "2s");
        assert_eq!(c.support.per_customer_per_hour, 10);
        assert_eq!(c.support.per_minute, 600);
        assert_eq!(c.support.max_subject, 200);
        assert_eq!(c.support.max_message, 10_000);
        assert_eq!(c.support.priority, None);
        let m = &c.support.mail;
        assert_eq!(
            m.ack_subject,
            "[{ticket}] We received your request: {subject}"
        );
        assert!(m.ack_body.starts_with("Hello,\n\nwe received your request"));
        assert_eq!(
            m.update_subject,
            "[{ticket}] Update on your request: {subject}"
        );
        assert_eq!(
            m.update_body,
            "Hello,\n\nan update on your request ({ticket}):\n\n{note}\n"
        );
        assert_eq!(m.closed_subject, "[{ticket}] Solved: {subject}");
        assert!(m.closed_body.ends_with("just write to us again.\n"));
        assert_eq!(c.smtp.host, "127.0.0.1");
        assert_eq!(c.smtp.port, 2525);
        assert_eq!(c.smtp.from, "Support <support@example.com>");
        assert_eq!(c.smtp.tls, "none");
        assert_eq!(c.discord.token_env, "DISCORD_TOKEN");
        assert!(c.discord.guild_id.is_none() && c.discord.roles.is_empty());
        assert!(c.ci.jenkins.is_none() && c.reports.weekly.is_none());
        assert!(c.roles.operators.is_empty() && c.alerts.routes.is_empty());

        let partial = raw("[tickets]\nprefix = \"X\"\n[support]\nper_minute = 5\n\
             [support.mail]\nack_subject = \"s\"\n[smtp]\nport = 25\n\
             [http]\nbody_limit = 9\n");
        assert_eq!(partial.tickets.prefix, "X");
        assert_eq!(partial.tickets.channel, "ops");
        assert_eq!(partial.support.per_minute, 5);
        assert_eq!(partial.support.per_customer_per_hour, 10);
        assert_eq!(partial.support.mail.ack_subject, "s");
        assert_eq!(partial.support.mail.closed_subject, m.closed_subject);
        assert_eq!(partial.smtp.port, 25);
        assert_eq!(partial.smtp.host, "127.0.0.1");
        assert_eq!(partial.http.body_limit, 9);
        assert_eq!(partial.http.listen, "127.0.0.1:8787");
    }

    /// The shipped `bot.toml` still reads, and what it leaves out is defaulted.
    #[test]
    fn shipped_config_keeps_the_defaults_it_does_not_set() {
        let src =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bot.toml")).unwrap();
        let c = raw(&src);
        assert!(!c.teams.is_empty());
        if !src.contains("body_limit") {
            assert_eq!(c.http.body_limit, 1024 * 1024);
        }
        if !src.contains("max_message") {
            assert_eq!(c.support.max_message, 10_000);
        }
    }
}
