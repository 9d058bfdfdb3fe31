//! `bot.toml` as written: the serde schema (`deny_unknown_fields` on every
//! section) and its defaults. `config` validates it into the model.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::org::AssignPolicy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) tickets: RawTickets,
    #[serde(default)]
    pub(super) roles: RawRoles,
    #[serde(default)]
    pub(super) teams: BTreeMap<String, RawTeam>,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) alerts: RawAlerts,
    #[serde(default)]
    pub(super) support: RawSupport,
    #[serde(default)]
    pub(super) smtp: RawSmtp,
    #[serde(default)]
    pub(super) services: BTreeMap<String, RawService>,
    #[serde(default)]
    pub(super) ci: RawCi,
    #[serde(default)]
    pub(super) discord: RawDiscord,
    /// Per priority: time to acknowledge and to resolve.
    #[serde(default)]
    pub(super) deadlines: BTreeMap<String, RawDeadline>,
    /// Escalation chains, tried in order.
    #[serde(default)]
    pub(super) escalation: Vec<RawChain>,
    /// On-call rotations, by team.
    #[serde(default)]
    pub(super) oncall: BTreeMap<String, RawRotation>,
    #[serde(default)]
    pub(super) reports: RawReports,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeadline {
    pub(super) acknowledge: Option<String>,
    pub(super) resolve: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChain {
    pub(super) name: String,
    #[serde(default)]
    pub(super) teams: Vec<String>,
    #[serde(default)]
    pub(super) priorities: Vec<String>,
    pub(super) steps: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRotation {
    pub(super) members: Vec<String>,
    pub(super) period: crate::domain::rotation::Period,
    #[serde(default = "default_handoff")]
    pub(super) handoff: String,
    #[serde(default = "default_time_zone")]
    pub(super) time_zone: String,
    pub(super) start: String,
    #[serde(default)]
    pub(super) overlapping_overrides: bool,
}

pub(super) fn default_handoff() -> String {
    "09:00".into()
}
pub(super) fn default_time_zone() -> String {
    "UTC".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReports {
    #[serde(default)]
    pub(super) weekly: Option<RawWeekly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeekly {
    pub(super) day: String,
    #[serde(default = "default_handoff")]
    pub(super) time: String,
    #[serde(default = "default_time_zone")]
    pub(super) time_zone: String,
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
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscord {
    #[serde(default = "default_discord_token_env")]
    pub(super) token_env: String,
    #[serde(default)]
    pub(super) guild_id: Option<Snowflakes>,
    /// Another base URL for Discord's API and gateway (tests, proxies).
    #[serde(default)]
    pub(super) api_base: Option<String>,
    #[serde(default)]
    pub(super) channels: BTreeMap<String, Snowflake>,
    #[serde(default)]
    pub(super) users: BTreeMap<String, Snowflake>,
    /// Interactions not answered within this are deferred (Discord allows 3 s).
    #[serde(default)]
    pub(super) defer_after: Option<String>,
    /// `operators`, `release_managers` or a team name → a Discord role id.
    #[serde(default)]
    pub(super) roles: BTreeMap<String, Snowflake>,
}

impl Default for RawDiscord {
    fn default() -> Self {
        Self {
            token_env: default_discord_token_env(),
            guild_id: None,
            api_base: None,
            defer_after: None,
            roles: BTreeMap::new(),
            channels: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }
}

pub(super) fn default_discord_token_env() -> String {
    "DISCORD_TOKEN".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCi {
    #[serde(default)]
    pub(super) jenkins: Option<RawJenkins>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJenkins {
    pub(super) url: String,
    pub(super) user: String,
    #[serde(default = "default_jenkins_token_env")]
    pub(super) token_env: String,
    #[serde(default = "default_jenkins_timeout")]
    pub(super) timeout: String,
    /// How often a running build is looked at (it backs off to 4× this).
    #[serde(default = "default_jenkins_poll")]
    pub(super) poll: String,
}

pub(super) fn default_jenkins_token_env() -> String {
    "JENKINS_TOKEN".into()
}
pub(super) fn default_jenkins_timeout() -> String {
    "10s".into()
}
pub(super) fn default_jenkins_poll() -> String {
    "2s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    #[serde(default)]
    pub(super) team: Option<String>,
    /// The job (in commands/) that deploys it, unless an environment says.
    pub(super) job: String,
    pub(super) environments: BTreeMap<String, RawEnvironment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    #[serde(default)]
    pub(super) job: Option<String>,
    /// A deploy waits for an approval.
    #[serde(default)]
    pub(super) protected: bool,
    /// Who may approve (default: release managers).
    #[serde(default)]
    pub(super) approvers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSupport {
    #[serde(default = "default_support_secret_env")]
    pub(super) secret_env: String,
    #[serde(default = "default_session_url")]
    pub(super) session_url: String,
    #[serde(default = "default_session_timeout")]
    pub(super) session_timeout: String,
    #[serde(default = "default_per_customer")]
    pub(super) per_customer_per_hour: u32,
    #[serde(default = "default_per_minute")]
    pub(super) per_minute: u32,
    #[serde(default = "default_max_subject")]
    pub(super) max_subject: usize,
    #[serde(default = "default_max_message")]
    pub(super) max_message: usize,
    #[serde(default)]
    pub(super) priority: Option<String>,
    #[serde(default)]
    pub(super) mail: RawMailTemplates,
}

impl Default for RawSupport {
    fn default() -> Self {
        Self {
            secret_env: default_support_secret_env(),
            session_url: default_session_url(),
            session_timeout: default_session_timeout(),
            per_customer_per_hour: default_per_customer(),
            per_minute: default_per_minute(),
            max_subject: default_max_subject(),
            max_message: default_max_message(),
            priority: None,
            mail: RawMailTemplates::default(),
        }
    }
}

pub(super) fn default_support_secret_env() -> String {
    "OPSBOT_SUPPORT_SECRET".into()
}
pub(super) fn default_session_url() -> String {
    "http://127.0.0.1:8790/sessions".into()
}
pub(super) fn default_session_timeout() -> String {
    "2s".into()
}
pub(super) fn default_per_customer() -> u32 {
    10
}
pub(super) fn default_per_minute() -> u32 {
    600
}
pub(super) fn default_max_subject() -> usize {
    200
}
pub(super) fn default_max_message() -> usize {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailTemplates {
    #[serde(default = "t_ack_subject")]
    pub(super) ack_subject: String,
    #[serde(default = "t_ack_body")]
    pub(super) ack_body: String,
    #[serde(default = "t_update_subject")]
    pub(super) update_subject: String,
    #[serde(default = "t_update_body")]
    pub(super) update_body: String,
    #[serde(default = "t_closed_subject")]
    pub(super) closed_subject: String,
    #[serde(default = "t_closed_body")]
    pub(super) closed_body: String,
}

impl Default for RawMailTemplates {
    fn default() -> Self {
        Self {
            ack_subject: t_ack_subject(),
            ack_body: t_ack_body(),
            update_subject: t_update_subject(),
            update_body: t_update_body(),
            closed_subject: t_closed_subject(),
            closed_body: t_closed_body(),
        }
    }
}

pub(super) fn t_ack_subject() -> String {
    "[{ticket}] We received your request: {subject}".into()
}
pub(super) fn t_ack_body() -> String {
    "Hello,\n\nwe received your request and opened ticket {ticket} for it:\n\n{message}\n\nWe will write again when it is solved.\n".into()
}
pub(super) fn t_update_subject() -> String {
    "[{ticket}] Update on your request: {subject}".into()
}
pub(super) fn t_update_body() -> String {
    "Hello,\n\nan update on your request ({ticket}):\n\n{note}\n".into()
}
pub(super) fn t_closed_subject() -> String {
    "[{ticket}] Solved: {subject}".into()
}
pub(super) fn t_closed_body() -> String {
    "Hello,\n\nyour request ({ticket}) is solved and closed.\n\n{note}\n\nIf the problem comes back, just write to us again.\n".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    #[serde(default = "default_smtp_host")]
    pub(super) host: String,
    #[serde(default = "default_smtp_port")]
    pub(super) port: u16,
    #[serde(default = "default_smtp_from")]
    pub(super) from: String,
    /// `none` (plain SMTP, for loopback), `starttls` or `tls`.
    #[serde(default = "default_smtp_tls")]
    pub(super) tls: String,
    #[serde(default)]
    pub(super) user_env: Option<String>,
    #[serde(default)]
    pub(super) password_env: Option<String>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: default_smtp_host(),
            port: default_smtp_port(),
            from: default_smtp_from(),
            tls: default_smtp_tls(),
            user_env: None,
            password_env: None,
        }
    }
}

pub(super) fn default_smtp_host() -> String {
    "127.0.0.1".into()
}
pub(super) fn default_smtp_port() -> u16 {
    2525
}
pub(super) fn default_smtp_from() -> String {
    "Support <support@example.com>".into()
}
pub(super) fn default_smtp_tls() -> String {
    "none".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_listen")]
    pub(super) listen: String,
    #[serde(default = "default_token_env")]
    pub(super) token_env: String,
    #[serde(default = "default_api_token_env")]
    pub(super) api_token_env: String,
    #[serde(default = "default_body_limit")]
    pub(super) body_limit: usize,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            token_env: default_token_env(),
            api_token_env: default_api_token_env(),
            body_limit: default_body_limit(),
        }
    }
}

pub(super) fn default_listen() -> String {
    "127.0.0.1:8787".into()
}
pub(super) fn default_token_env() -> String {
    "OPSBOT_HOOK_TOKEN".into()
}
pub(super) fn default_api_token_env() -> String {
    "OPSBOT_API_TOKEN".into()
}
pub(super) fn default_body_limit() -> usize {
    1024 * 1024
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    /// Route policy for alerts no route takes.
    #[serde(default)]
    pub(super) default: RawPolicy,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(super) message_rules: Vec<RawMessageRule>,
    /// Pending alert posts to one channel beyond this are merged into one summary.
    #[serde(default)]
    pub(super) coalesce_after: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) team: Option<String>,
    pub(super) priority: Option<String>,
    pub(super) group_by: Option<Vec<String>>,
    pub(super) resolve_on_recovery: Option<bool>,
    pub(super) stale_after: Option<String>,
    pub(super) on_refire: Option<crate::domain::alert::OnRefire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: String,
    #[serde(rename = "match", default)]
    pub(super) matchers: BTreeMap<String, String>,
    pub(super) team: Option<String>,
    pub(super) priority: Option<String>,
    pub(super) group_by: Option<Vec<String>>,
    pub(super) resolve_on_recovery: Option<bool>,
    pub(super) stale_after: Option<String>,
    pub(super) on_refire: Option<crate::domain::alert::OnRefire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessageRule {
    pub(super) channel: String,
    pub(super) pattern: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    #[serde(default = "default_storage_path")]
    pub(super) path: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            path: default_storage_path(),
        }
    }
}

pub(super) fn default_storage_path() -> String {
    "data".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTickets {
    #[serde(default = "default_prefix")]
    pub(super) prefix: String,
    #[serde(default = "default_ops_channel")]
    pub(super) channel: String,
    #[serde(default = "default_priority")]
    pub(super) default_priority: String,
}

impl Default for RawTickets {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            channel: default_ops_channel(),
            default_priority: default_priority(),
        }
    }
}

pub(super) fn default_prefix() -> String {
    "OPS".into()
}
pub(super) fn default_ops_channel() -> String {
    "ops".into()
}
pub(super) fn default_priority() -> String {
    "p3".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoles {
    #[serde(default)]
    pub(super) operators: Vec<String>,
    #[serde(default)]
    pub(super) qa_team: Option<String>,
    #[serde(default)]
    pub(super) release_managers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeam {
    pub(super) channel: String,
    pub(super) members: Vec<String>,
    #[serde(default)]
    pub(super) lead: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    /// What `/ticket assign team:…` does: leave it to the team, or pick the
    /// on-call person or the least-loaded member.
    #[serde(default)]
    pub(super) assign: AssignPolicy,
}
