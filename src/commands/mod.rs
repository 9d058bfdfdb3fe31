//! Every chat command, declared once: name, options (with types and choices),
//! who may run it, and help. The console parser, `/help` and (later) Discord's
//! registration all read these declarations.
//!
//! [`CommandName::spec`] is an exhaustive `match`: a new command does not
//! compile until its declaration and help exist.

use std::collections::BTreeMap;

use crate::domain::error::UserError;
use crate::domain::org::{Org, Role};
use crate::domain::rich::clip_plain;
use crate::domain::sanitize::clean_untrusted;
use crate::domain::{Priority, TeamName, TicketId, TicketState, UserName, MAX_TEXT, MAX_TITLE};

/// Every command the bot knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandName {
    TicketOpen,
    TicketShow,
    TicketList,
    TicketAssign,
    TicketTake,
    TicketComment,
    TicketResolve,
    TicketQa,
    TicketVerify,
    TicketReject,
    TicketReopen,
    AlertSilence,
    AlertSilences,
    AlertUnsilence,
    Build,
    BuildCancel,
    Runs,
    Deploy,
    Rollback,
    Approve,
    Deny,
    Help,
    Oncall,
    OncallSet,
    Report,
}

/// The type of an option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptKind {
    /// Free text, at most `max` characters, never empty.
    Text {
        max: usize,
    },
    Ticket,
    Team,
    User,
    Priority,
    State,
    Bool,
    /// A whole number, at least 1.
    Integer,
    /// A duration such as `90m`, `2h` or `1d`.
    Duration,
    /// Label matchers such as `alertname=HighLatency service=~check.*`.
    Matchers,
    /// A job from `commands/`.
    Job,
    /// A service from `[services]`.
    Service,
    /// An environment of a service.
    Environment,
    /// A run id, such as RUN-3.
    Run,
    /// The name of another command, for `/help`.
    Command,
}

impl OptKind {
    /// The fixed choices, when the option has them.
    pub fn choices(self) -> Option<&'static [&'static str]> {
        match self {
            OptKind::Priority => Some(Priority::NAMES),
            OptKind::State => Some(TicketState::NAMES),
            OptKind::Bool => Some(&["true", "false"]),
            _ => None,
        }
    }

    fn placeholder(self) -> String {
        match self.choices() {
            Some(c) => c.join("|"),
            None => match self {
                OptKind::Text { .. } => "<text>".into(),
                OptKind::Ticket => "<ticket id>".into(),
                OptKind::Team => "<team>".into(),
                OptKind::User => "<person>".into(),
                OptKind::Command => "<command>".into(),
                OptKind::Job => "<job>".into(),
                OptKind::Service => "<service>".into(),
                OptKind::Environment => "<env>".into(),
                OptKind::Run => "<run id>".into(),
                OptKind::Integer => "<number>".into(),
                OptKind::Duration => "<duration>".into(),
                OptKind::Matchers => "<label=value …>".into(),
                _ => "<value>".into(),
            },
        }
    }
}

/// One option of a command.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    pub name: &'static str,
    pub kind: OptKind,
    pub required: bool,
    pub description: &'static str,
}

const fn req(name: &'static str, kind: OptKind, description: &'static str) -> Opt {
    Opt {
        name,
        kind,
        required: true,
        description,
    }
}

const fn opt(name: &'static str, kind: OptKind, description: &'static str) -> Opt {
    Opt {
        name,
        kind,
        required: false,
        description,
    }
}

/// Who may run a command at all (the ticket's state may narrow it further).
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Anyone,
    Roles(&'static [Role]),
    /// Set by the config (jobs' `who`, environments' approvers), in words:
    /// the engine decides (`Engine::may_run`); this admits no one by itself.
    Config(&'static str),
}

impl Who {
    pub fn admits(self, user: &UserName, org: &Org) -> bool {
        match self {
            Who::Anyone => true,
            Who::Roles(roles) => roles.iter().any(|r| org.has_role(user, *r)),
            Who::Config(_) => false,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Who::Anyone => "anyone".into(),
            Who::Config(words) => words.into(),
            Who::Roles(roles) => roles
                .iter()
                .map(|r| match r {
                    Role::Operator => "operators",
                    Role::Qa => "QA",
                    Role::ReleaseManager => "release managers",
                    Role::Member => "team members",
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The declaration of one command.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The group, as `ticket` in `/ticket open`.
    pub group: Option<&'static str>,
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [Opt],
    pub who: Who,
}

impl Spec {
    /// `ticket open`
    pub fn full_name(&self) -> String {
        match self.group {
            Some(g) => format!("{g} {}", self.name),
            None => self.name.to_string(),
        }
    }

    /// `/ticket open title:<text> [priority:p1|p2|p3|p4]`
    pub fn usage(&self) -> String {
        let mut s = format!("/{}", self.full_name());
        for o in self.options {
            let part = format!("{}:{}", o.name, o.kind.placeholder());
            if o.required {
                s.push_str(&format!(" {part}"));
            } else {
                s.push_str(&format!(" [{part}]"));
            }
        }
        s
    }

    pub fn option(&self, name: &str) -> Option<&'static Opt> {
        self.options.iter().find(|o| o.name == name)
    }
}

const TEXT: OptKind = OptKind::Text { max: MAX_TEXT };
const TITLE: OptKind = OptKind::Text { max: MAX_TITLE };
const TICKET_ID: Opt = req("id", OptKind::Ticket, "The ticket, such as OPS-12");
const MEMBERS: &[Role] = &[Role::Operator, Role::Member];

impl CommandName {
    pub const ALL: [CommandName; 25] = [
        CommandName::TicketOpen,
        CommandName::TicketShow,
        CommandName::TicketList,
        CommandName::TicketAssign,
        CommandName::TicketTake,
        CommandName::TicketComment,
        CommandName::TicketResolve,
        CommandName::TicketQa,
        CommandName::TicketVerify,
        CommandName::TicketReject,
        CommandName::TicketReopen,
        CommandName::AlertSilence,
        CommandName::AlertSilences,
        CommandName::AlertUnsilence,
        CommandName::Build,
        CommandName::BuildCancel,
        CommandName::Runs,
        CommandName::Deploy,
        CommandName::Rollback,
        CommandName::Approve,
        CommandName::Deny,
        CommandName::Help,
        CommandName::Oncall,
        CommandName::OncallSet,
        CommandName::Report,
    ];

    /// The declaration. Exhaustive on purpose.
    pub fn spec(self) -> Spec {
        let ticket = |name, summary, options, who| Spec {
            group: Some("ticket"),
            name,
            summary,
            options,
            who,
        };
        match self {
            CommandName::TicketOpen => ticket(
                "open",
                "Open a ticket",
                const {
                    &[
                        req(
                            "title",
                            TITLE,
                            "What is wrong, in a line (at most 256 characters)",
                        ),
                        opt("description", TEXT, "More detail"),
                        opt(
                            "priority",
                            OptKind::Priority,
                            "p1 (highest) to p4; p3 when not given",
                        ),
                        opt(
                            "team",
                            OptKind::Team,
                            "The team that owns the problem, if known",
                        ),
                    ]
                },
                Who::Anyone,
            ),
            CommandName::TicketShow => ticket(
                "show",
                "Show a ticket and its timeline",
                const { &[TICKET_ID] },
                Who::Anyone,
            ),
            CommandName::TicketList => ticket(
                "list",
                "List tickets (not closed ones unless state:closed)",
                const {
                    &[
                        opt("state", OptKind::State, "Only tickets in this state"),
                        opt("team", OptKind::Team, "Only this team's tickets"),
                        opt("mine", OptKind::Bool, "Only tickets assigned to you"),
                    ]
                },
                Who::Anyone,
            ),
            CommandName::TicketAssign => ticket(
                "assign",
                "Route a ticket to a team, or to one person of it",
                const {
                    &[
                        TICKET_ID,
                        opt("team", OptKind::Team, "The team that owns the problem"),
                        opt("user", OptKind::User, "The person who will fix it"),
                    ]
                },
                Who::Roles(MEMBERS),
            ),
            CommandName::TicketTake => ticket(
                "take",
                "Take a ticket yourself (acknowledge it)",
                const { &[TICKET_ID] },
                Who::Roles(MEMBERS),
            ),
            CommandName::TicketComment => ticket(
                "comment",
                "Add a comment to a ticket's timeline",
                const {
                    &[
                        TICKET_ID,
                        req("text", TEXT, "The comment"),
                        opt(
                            "customer",
                            OptKind::Bool,
                            "Also mail it to the ticket's customer (operators)",
                        ),
                    ]
                },
                Who::Anyone,
            ),
            CommandName::TicketResolve => ticket(
                "resolve",
                "Mark the fix as done, for the operator to verify",
                const { &[TICKET_ID, req("note", TEXT, "What was done")] },
                Who::Roles(MEMBERS),
            ),
            CommandName::TicketQa => ticket(
                "qa",
                "Hand a resolved ticket to QA to test",
                const { &[TICKET_ID] },
                Who::Roles(const { &[Role::Operator] }),
            ),
            CommandName::TicketVerify => ticket(
                "verify",
                "Confirm the fix: closes the ticket and tells the customer",
                const { &[TICKET_ID] },
                Who::Roles(const { &[Role::Operator, Role::Qa] }),
            ),
            CommandName::TicketReject => ticket(
                "reject",
                "The fix did not pass: send the ticket back to the team",
                const { &[TICKET_ID, req("reason", TEXT, "What is still wrong")] },
                Who::Roles(const { &[Role::Operator, Role::Qa] }),
            ),
            CommandName::TicketReopen => ticket(
                "reopen",
                "Reopen a closed ticket",
                const { &[TICKET_ID, req("reason", TEXT, "Why it is not fixed")] },
                Who::Roles(MEMBERS),
            ),
            CommandName::AlertSilence => Spec {
                group: Some("alert"),
                name: "silence",
                summary: "Silence alerts: kept on record, but no ticket and no post until it ends",
                options: const {
                    &[
                        req(
                            "matchers",
                            OptKind::Matchers,
                            "Which alerts, such as \"alertname=HighLatency service=~check.*\"",
                        ),
                        req(
                            "duration",
                            OptKind::Duration,
                            "How long, such as 30m, 2h or 1d (at most 30d)",
                        ),
                        opt("comment", TEXT, "Why"),
                    ]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::AlertSilences => Spec {
                group: Some("alert"),
                name: "silences",
                summary: "List the silences in force",
                options: &[],
                who: Who::Anyone,
            },
            CommandName::AlertUnsilence => Spec {
                group: Some("alert"),
                name: "unsilence",
                summary: "End a silence now",
                options: const {
                    &[req(
                        "id",
                        OptKind::Integer,
                        "The silence's number, from /alert silences",
                    )]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::Build => Spec {
                group: None,
                name: "build",
                summary: "Start a build (jobs are in commands/)",
                options: const {
                    &[
                        req("job", OptKind::Job, "The job, such as build-web"),
                        opt(
                            "ref",
                            OptKind::Text { max: 200 },
                            "The git ref; the job's default when not given",
                        ),
                    ]
                },
                who: Who::Config("those a job's `who` names (a deploy job also needs its environment's approval)"),
            },
            CommandName::BuildCancel => Spec {
                group: Some("build"),
                name: "cancel",
                summary: "Cancel a queued or running build",
                options: const { &[req("run", OptKind::Run, "The run, such as RUN-3")] },
                who: Who::Config("who asked for the run, operators, or those who may run its job"),
            },
            CommandName::Runs => Spec {
                group: None,
                name: "runs",
                summary: "List recent builds and deploys",
                options: &[],
                who: Who::Anyone,
            },
            CommandName::Deploy => {
                Spec {
                    group: None,
                    name: "deploy",
                    summary: "Deploy a service to an environment",
                    options: const {
                        &[
                        req("service", OptKind::Service, "The service, such as web"),
                        req("env", OptKind::Environment, "The environment, such as staging"),
                        opt("version", OptKind::Text { max: 200 }, "The version; the job's default when not given"),
                        opt("notes", TEXT, "Release notes; `fixes OPS-12` resolves that ticket when it succeeds"),
                    ]
                    },
                    who: Who::Config("those the deploy job's `who` names"),
                }
            }
            CommandName::Rollback => Spec {
                group: None,
                name: "rollback",
                summary: "Redeploy the last version that succeeded before the current one",
                options: const {
                    &[
                        req("service", OptKind::Service, "The service, such as web"),
                        req(
                            "env",
                            OptKind::Environment,
                            "The environment, such as production",
                        ),
                    ]
                },
                who: Who::Config("those the deploy job's `who` names"),
            },
            CommandName::Approve => Spec {
                group: None,
                name: "approve",
                summary: "Approve a deploy to a protected environment",
                options: const {
                    &[req(
                        "run",
                        OptKind::Run,
                        "The run waiting for approval, such as RUN-3",
                    )]
                },
                who: Who::Config("the approvers of a protected environment, never who asked for the deploy"),
            },
            CommandName::Deny => Spec {
                group: None,
                name: "deny",
                summary: "Refuse a deploy to a protected environment",
                options: const {
                    &[
                        req(
                            "run",
                            OptKind::Run,
                            "The run waiting for approval, such as RUN-3",
                        ),
                        req("reason", TEXT, "Why not"),
                    ]
                },
                who: Who::Config("the approvers of a protected environment, or who asked for the deploy"),
            },
            CommandName::Help => Spec {
                group: None,
                name: "help",
                summary: "What you may run, or how to use one command",
                options: const {
                    &[opt(
                        "command",
                        OptKind::Command,
                        "A command, such as `ticket open`",
                    )]
                },
                who: Who::Anyone,
            },
            CommandName::Oncall => Spec {
                group: None,
                name: "oncall",
                summary: "Who is on call now, and who is next",
                options: const {
                    &[opt(
                        "team",
                        OptKind::Team,
                        "Only this team (every team with a rotation when not given)",
                    )]
                },
                who: Who::Anyone,
            },
            CommandName::OncallSet => Spec {
                group: Some("oncall"),
                name: "set",
                summary: "Put someone on call for a team from now until a time (an override)",
                options: const {
                    &[
                        req("team", OptKind::Team, "The team"),
                        req("user", OptKind::User, "Who stands in (a member of the team)"),
                        req(
                            "until",
                            OptKind::Text { max: 100 },
                            "When it ends: \"2026-03-30 09:00\" (the rotation's time zone) or a duration such as 8h",
                        ),
                    ]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::Report => Spec {
                group: None,
                name: "report",
                summary: "Tickets opened and closed, times to acknowledge and resolve, breaches, with a chart",
                options: const {
                    &[
                        opt(
                            "period",
                            OptKind::Text { max: 20 },
                            "How far back, such as 7d, 24h or 4w (7d when not given)",
                        ),
                        opt("team", OptKind::Team, "Only this team's tickets"),
                    ]
                },
                who: Who::Anyone,
            },
        }
    }

    /// Finds a command by what a user typed: `ticket open`, `/ticket open`.
    pub fn lookup(words: &str) -> Option<CommandName> {
        let norm = words
            .trim()
            .trim_start_matches('/')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        CommandName::ALL
            .into_iter()
            .find(|c| c.spec().full_name() == norm)
    }

    /// The command groups (`ticket`) and lone commands (`help`).
    pub fn groups() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in CommandName::ALL {
            let s = c.spec();
            let g = s.group.unwrap_or(s.name);
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }
}

/// A typed command, ready for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    TicketOpen {
        title: String,
        description: Option<String>,
        priority: Option<Priority>,
        team: Option<TeamName>,
    },
    TicketShow {
        id: TicketId,
    },
    TicketList {
        state: Option<TicketState>,
        team: Option<TeamName>,
        mine: bool,
    },
    TicketAssign {
        id: TicketId,
        team: Option<TeamName>,
        user: Option<UserName>,
    },
    TicketTake {
        id: TicketId,
    },
    TicketComment {
        id: TicketId,
        text: String,
        /// Also mail it to the customer of a support ticket.
        customer: bool,
    },
    TicketResolve {
        id: TicketId,
        note: String,
    },
    TicketQa {
        id: TicketId,
    },
    TicketVerify {
        id: TicketId,
    },
    TicketReject {
        id: TicketId,
        reason: String,
    },
    TicketReopen {
        id: TicketId,
        reason: String,
    },
    AlertSilence {
        matchers: Vec<crate::domain::alert::Matcher>,
        duration: std::time::Duration,
        comment: Option<String>,
    },
    AlertSilences,
    AlertUnsilence {
        id: u64,
    },
    /// A build of a job, from `/build` or the job's own command.
    Build {
        job: String,
        params: Vec<(String, String)>,
    },
    BuildCancel {
        run: crate::domain::run::RunId,
    },
    Runs,
    Deploy {
        service: String,
        env: String,
        version: Option<String>,
        notes: Option<String>,
    },
    Rollback {
        service: String,
        env: String,
    },
    Approve {
        run: crate::domain::run::RunId,
    },
    Deny {
        run: crate::domain::run::RunId,
        reason: String,
    },
    Help {
        command: Option<CommandName>,
    },
    Oncall {
        team: Option<TeamName>,
    },
    OncallSet {
        team: TeamName,
        user: UserName,
        /// As typed; read in the rotation's time zone by the engine.
        until: String,
    },
    Report {
        period: ReportPeriod,
        team: Option<TeamName>,
    },
}

/// How far back `/report` looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportPeriod(pub std::time::Duration);

impl Default for ReportPeriod {
    fn default() -> Self {
        ReportPeriod(std::time::Duration::from_secs(7 * 86400))
    }
}

impl ReportPeriod {
    /// `7d`, `24h`, `4w`: from an hour to a year.
    pub fn parse(raw: &str) -> Result<ReportPeriod, UserError> {
        let s = raw.trim();
        let d = match s.strip_suffix('w').map(str::parse::<u64>) {
            Some(Ok(w)) => Some(std::time::Duration::from_secs(w.saturating_mul(7 * 86400))),
            _ => humantime::parse_duration(s).ok(),
        };
        match d {
            Some(d) if d.as_secs() >= 3600 && d.as_secs() <= 366 * 86400 => Ok(ReportPeriod(d)),
            _ => Err(UserError::new(format!(
                "`period` must be a span from 1h to 366d, such as 7d, 24h or 4w; got `{}`",
                clip_plain(s, 40)
            ))),
        }
    }

    pub fn label(self) -> String {
        let s = self.0.as_secs();
        if s % 86400 == 0 {
            format!("{}d", s / 86400)
        } else if s % 3600 == 0 {
            format!("{}h", s / 3600)
        } else {
            humantime::format_duration(self.0).to_string()
        }
    }
}

impl Command {
    pub fn name(&self) -> CommandName {
        match self {
            Command::TicketOpen { .. } => CommandName::TicketOpen,
            Command::TicketShow { .. } => CommandName::TicketShow,
            Command::TicketList { .. } => CommandName::TicketList,
            Command::TicketAssign { .. } => CommandName::TicketAssign,
            Command::TicketTake { .. } => CommandName::TicketTake,
            Command::TicketComment { .. } => CommandName::TicketComment,
            Command::TicketResolve { .. } => CommandName::TicketResolve,
            Command::TicketQa { .. } => CommandName::TicketQa,
            Command::TicketVerify { .. } => CommandName::TicketVerify,
            Command::TicketReject { .. } => CommandName::TicketReject,
            Command::TicketReopen { .. } => CommandName::TicketReopen,
            Command::AlertSilence { .. } => CommandName::AlertSilence,
            Command::AlertSilences => CommandName::AlertSilences,
            Command::AlertUnsilence { .. } => CommandName::AlertUnsilence,
            Command::Build { .. } => CommandName::Build,
            Command::BuildCancel { .. } => CommandName::BuildCancel,
            Command::Runs => CommandName::Runs,
            Command::Deploy { .. } => CommandName::Deploy,
            Command::Rollback { .. } => CommandName::Rollback,
            Command::Approve { .. } => CommandName::Approve,
            Command::Deny { .. } => CommandName::Deny,
            Command::Help { .. } => CommandName::Help,
            Command::Oncall { .. } => CommandName::Oncall,
            Command::OncallSet { .. } => CommandName::OncallSet,
            Command::Report { .. } => CommandName::Report,
        }
    }

    /// Commands that only read: answered from the store, never written.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            Command::TicketShow { .. }
                | Command::TicketList { .. }
                | Command::AlertSilences
                | Command::Runs
                | Command::Help { .. }
                | Command::Oncall { .. }
                | Command::Report { .. }
        )
    }

    /// Queries that read much (a report over the whole timeline): answered
    /// off the commit thread.
    pub fn is_heavy(&self) -> bool {
        matches!(self, Command::Report { .. })
    }

    /// Builds the typed command from named option values, checking each
    /// against the declaration. `prefix` is the ticket id prefix.
    pub fn from_args(
        name: CommandName,
        args: Vec<(String, String)>,
        prefix: &str,
    ) -> Result<Command, UserError> {
        let spec = name.spec();
        let args = args
            .into_iter()
            .map(|(k, v)| (clean_untrusted(&k), clean_untrusted(&v)))
            .collect();
        let mut a = Args::check(&spec, args)?;
        let cmd = match name {
            CommandName::TicketOpen => Command::TicketOpen {
                title: a.text("title")?,
                description: a.opt_text("description")?,
                priority: a.opt_parse("priority")?,
                team: a.opt_team("team")?,
            },
            CommandName::TicketShow => Command::TicketShow {
                id: a.ticket(prefix)?,
            },
            CommandName::TicketList => Command::TicketList {
                state: a.opt_parse("state")?,
                team: a.opt_team("team")?,
                mine: a.opt_bool("mine")?.unwrap_or(false),
            },
            CommandName::TicketAssign => {
                let id = a.ticket(prefix)?;
                let team = a.opt_team("team")?;
                let user = a.opt_user("user")?;
                if team.is_none() && user.is_none() {
                    return Err(UserError::new(format!(
                        "give `team:` or `user:` (or both): {}",
                        spec.usage()
                    )));
                }
                Command::TicketAssign { id, team, user }
            }
            CommandName::TicketTake => Command::TicketTake {
                id: a.ticket(prefix)?,
            },
            CommandName::TicketComment => Command::TicketComment {
                id: a.ticket(prefix)?,
                text: a.text("text")?,
                customer: a.opt_bool("customer")?.unwrap_or(false),
            },
            CommandName::TicketResolve => Command::TicketResolve {
                id: a.ticket(prefix)?,
                note: a.text("note")?,
            },
            CommandName::TicketQa => Command::TicketQa {
                id: a.ticket(prefix)?,
            },
            CommandName::TicketVerify => Command::TicketVerify {
                id: a.ticket(prefix)?,
            },
            CommandName::TicketReject => Command::TicketReject {
                id: a.ticket(prefix)?,
                reason: a.text("reason")?,
            },
            CommandName::TicketReopen => Command::TicketReopen {
                id: a.ticket(prefix)?,
                reason: a.text("reason")?,
            },
            CommandName::AlertSilence => Command::AlertSilence {
                matchers: crate::domain::alert::parse_matchers(&a.text("matchers")?)?,
                duration: a.duration("duration")?,
                comment: a.opt_text("comment")?,
            },
            CommandName::AlertSilences => Command::AlertSilences,
            CommandName::Build => {
                let job = a.text("job")?;
                let params = a.opt_text("ref")?.map(|r| ("ref".to_string(), r));
                Command::Build {
                    job,
                    params: params.into_iter().collect(),
                }
            }
            CommandName::BuildCancel => Command::BuildCancel {
                run: crate::domain::run::RunId::parse(&a.text("run")?)?,
            },
            CommandName::Runs => Command::Runs,
            CommandName::Deploy => Command::Deploy {
                service: a.text("service")?,
                env: a.text("env")?,
                version: a.opt_text("version")?,
                notes: a.opt_text("notes")?,
            },
            CommandName::Rollback => Command::Rollback {
                service: a.text("service")?,
                env: a.text("env")?,
            },
            CommandName::Approve => Command::Approve {
                run: crate::domain::run::RunId::parse(&a.text("run")?)?,
            },
            CommandName::Deny => Command::Deny {
                run: crate::domain::run::RunId::parse(&a.text("run")?)?,
                reason: a.text("reason")?,
            },
            CommandName::AlertUnsilence => Command::AlertUnsilence {
                id: a.integer("id")?,
            },
            CommandName::Oncall => Command::Oncall {
                team: a.opt_team("team")?,
            },
            CommandName::OncallSet => Command::OncallSet {
                team: a
                    .opt_team("team")?
                    .ok_or_else(|| UserError::new("`team:` is required"))?,
                user: a
                    .opt_user("user")?
                    .ok_or_else(|| UserError::new("`user:` is required"))?,
                until: a.text("until")?,
            },
            CommandName::Report => Command::Report {
                period: match a.take("period") {
                    Some(p) => ReportPeriod::parse(&p)?,
                    None => ReportPeriod::default(),
                },
                team: a.opt_team("team")?,
            },
            CommandName::Help => Command::Help {
                command: match a.take("command") {
                    None => None,
                    Some(raw) => Some(lookup_for_help(&raw)?),
                },
            },
        };
        Ok(cmd)
    }
}

fn lookup_for_help(raw: &str) -> Result<CommandName, UserError> {
    CommandName::lookup(raw).ok_or_else(|| {
        UserError::new(format!(
            "there is no command `{}`; commands are: {}",
            clip_plain(raw.trim(), 40),
            CommandName::ALL
                .iter()
                .map(|c| c.spec().full_name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Option values checked against a declaration.
struct Args {
    spec: Spec,
    values: BTreeMap<&'static str, String>,
}

impl Args {
    fn check(spec: &Spec, args: Vec<(String, String)>) -> Result<Args, UserError> {
        let mut values = BTreeMap::new();
        let names = || {
            spec.options
                .iter()
                .map(|o| o.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (k, v) in args {
            let Some(o) = spec.option(&k) else {
                let known = if spec.options.is_empty() {
                    "it takes no options".to_string()
                } else {
                    format!("its options are: {}", names())
                };
                return Err(UserError::new(format!(
                    "/{} has no option `{}`; {known}",
                    spec.full_name(),
                    clip_plain(&k, 40)
                )));
            };
            if values.insert(o.name, v).is_some() {
                return Err(UserError::new(format!(
                    "option `{}` is given twice; give it once",
                    o.name
                )));
            }
        }
        for o in spec.options.iter().filter(|o| o.required) {
            if !values.contains_key(o.name) {
                return Err(UserError::new(format!(
                    "/{} needs `{}:` ({}); usage: {}",
                    spec.full_name(),
                    o.name,
                    o.description,
                    spec.usage()
                )));
            }
        }
        for (k, v) in &values {
            let Some(o) = spec.option(k) else { continue };
            if let Some(choices) = o.kind.choices() {
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(v.trim())) {
                    return Err(UserError::new(format!(
                        "`{}` must be one of {}; got `{}`",
                        o.name,
                        choices.join(", "),
                        clip_plain(v, 40)
                    )));
                }
            }
            let limit = match o.kind {
                OptKind::Text { max } => Some(max),
                OptKind::Matchers | OptKind::Duration => Some(1000),
                _ => None,
            };
            if let Some(max) = limit {
                let len = v.trim().chars().count();
                if len == 0 {
                    return Err(UserError::new(format!(
                        "`{}` must not be empty: {}",
                        o.name, o.description
                    )));
                }
                if len > max {
                    return Err(UserError::new(format!(
                        "`{}` is {len} characters long; the limit is {max}",
                        o.name
                    )));
                }
            }
        }
        Ok(Args {
            spec: *spec,
            values,
        })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        debug_assert!(self.spec.option(name).is_some(), "undeclared option {name}");
        self.values.remove(name)
    }

    fn text(&mut self, name: &str) -> Result<String, UserError> {
        self.take(name)
            .map(|v| v.trim().to_string())
            .ok_or_else(|| UserError::new(format!("`{name}:` is required")))
    }

    fn opt_text(&mut self, name: &str) -> Result<Option<String>, UserError> {
        Ok(self.take(name).map(|v| v.trim().to_string()))
    }

    fn opt_parse<T: std::str::FromStr<Err = UserError>>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, UserError> {
        self.take(name).map(|v| v.parse::<T>()).transpose()
    }

    fn opt_team(&mut self, name: &str) -> Result<Option<TeamName>, UserError> {
        self.take(name).map(|v| TeamName::parse(&v)).transpose()
    }

    fn opt_user(&mut self, name: &str) -> Result<Option<UserName>, UserError> {
        self.take(name)
            .map(|v| UserName::parse(v.trim().trim_start_matches('@')))
            .transpose()
    }

    fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, UserError> {
        Ok(self
            .take(name)
            .map(|v| v.trim().eq_ignore_ascii_case("true")))
    }

    fn integer(&mut self, name: &str) -> Result<u64, UserError> {
        let raw = self.text(name)?;
        raw.trim_start_matches('#')
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                UserError::new(format!(
                    "`{name}` must be a whole number such as 3; got `{}`",
                    clip_plain(&raw, 40)
                ))
            })
    }

    fn duration(&mut self, name: &str) -> Result<std::time::Duration, UserError> {
        let raw = self.text(name)?;
        match humantime::parse_duration(&raw) {
            Ok(d) if d.as_secs() >= 60 && d.as_secs() <= 30 * 86400 => Ok(d),
            _ => Err(UserError::new(format!(
                "`{name}` must be a duration from 1m to 30d, such as 30m, 2h or 1d; got `{}`",
                clip_plain(&raw, 40)
            ))),
        }
    }

    fn ticket(&mut self, prefix: &str) -> Result<TicketId, UserError> {
        let raw = self
            .take("id")
            .ok_or_else(|| UserError::new("`id:` is required"))?;
        TicketId::parse(&raw, prefix)
    }
}

/// A console line split into a command and its `name:value` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub name: CommandName,
    pub args: Vec<(String, String)>,
}

/// Splits a line into words; double quotes group (`\"` and `\\` escape inside).
fn words(line: &str) -> Result<Vec<String>, UserError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push('\\'),
            },
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(UserError::new(
            "a double quote is not closed: put values with spaces in \"…\"",
        ));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parses a console line such as `/ticket open title:"Disk full" priority:p2`.
pub fn parse_line(line: &str) -> Result<Invocation, UserError> {
    let line = &clean_untrusted(line);
    let body = line.trim().strip_prefix('/').unwrap_or(line.trim());
    let words = words(body)?;
    let mut it = words.into_iter().peekable();
    let Some(first) = it.next() else {
        return Err(UserError::new("type a command, such as /help"));
    };
    let first_lc = first.to_ascii_lowercase();
    let groups = CommandName::groups();
    let is_group = CommandName::ALL
        .iter()
        .any(|c| c.spec().group == Some(first_lc.as_str()));
    let lone = CommandName::ALL
        .iter()
        .copied()
        .find(|c| c.spec().group.is_none() && c.spec().name == first_lc);
    let name = if is_group {
        let sub = it.peek().cloned().unwrap_or_default().to_ascii_lowercase();
        let full = format!("{first_lc} {sub}");
        match CommandName::lookup(&full) {
            Some(n) => {
                it.next();
                n
            }
            // Discord cannot show `/build job:x` beside `/build cancel`, so it
            // shows the lone command as `/build run job:x`; both are taken.
            None if sub == "run" && lone.is_some() => {
                it.next();
                lone.unwrap_or(CommandName::Help)
            }
            // `/build job:x` is the lone command; `/build cancel …` the group's.
            None if lone.is_some() => lone.unwrap_or(CommandName::Help),
            None => {
                let subs: Vec<&str> = CommandName::ALL
                    .iter()
                    .map(|c| c.spec())
                    .filter(|s| s.group == Some(first_lc.as_str()))
                    .map(|s| s.name)
                    .collect();
                let what = if sub.is_empty() {
                    format!("/{first_lc} needs a subcommand")
                } else {
                    format!("/{first_lc} has no subcommand `{}`", clip_plain(&sub, 40))
                };
                return Err(UserError::new(format!(
                    "{what}; try one of: {}",
                    subs.join(", ")
                )));
            }
        }
    } else {
        match CommandName::lookup(&first_lc) {
            Some(n) => n,
            None => {
                return Err(UserError::new(format!(
                    "unknown command /{}; commands are /{} (try /help)",
                    clip_plain(&first, 40),
                    groups.join(", /")
                )))
            }
        }
    };
    let spec = name.spec();
    let mut args = Vec::new();
    for w in it {
        match w.split_once(':') {
            Some((k, v)) if !k.is_empty() => args.push((k.to_ascii_lowercase(), v.to_string())),
            _ => {
                return Err(UserError::new(format!(
                    "`{}` is not an option: write options as name:value, such as {}",
                    clip_plain(&w, 40),
                    spec.usage()
                )))
            }
        }
    }
    Ok(Invocation { name, args })
}

/// Parses a console line, where a job from `commands/` is a command too
/// (`/build-web ref:main`): its options are the job's parameters.
pub fn parse_with_jobs(
    line: &str,
    prefix: &str,
    jobs: &std::collections::BTreeMap<String, crate::domain::job::Job>,
) -> Result<Command, UserError> {
    let line = &clean_untrusted(line);
    let body = line.trim().trim_start_matches('/');
    let first = body.split_whitespace().next().unwrap_or("");
    if let Some(job) = jobs.get(first) {
        let mut params = Vec::new();
        for w in words(&body[first.len()..])? {
            match w.split_once(':') {
                Some((k, v)) if !k.is_empty() => {
                    params.push((k.to_ascii_lowercase(), v.to_string()))
                }
                _ => {
                    return Err(UserError::new(format!(
                        "`{}` is not an option: write parameters as name:value, such as /{} {}",
                        clip_plain(&w, 40),
                        job.name,
                        job.params
                            .iter()
                            .map(|p| format!("{}:…", p.name))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )))
                }
            }
        }
        return Ok(Command::Build {
            job: job.name.clone(),
            params,
        });
    }
    parse_command(line, prefix)
}

/// Parses a console line all the way to a typed command.
pub fn parse_command(line: &str, prefix: &str) -> Result<Command, UserError> {
    let inv = parse_line(line)?;
    Command::from_args(inv.name, inv.args, prefix)
}

/// `/help`: what `user` may run, or how to use one command. `may` is the
/// engine's own permission check, so that help promises nothing the engine
/// refuses.
pub fn help(
    user: &UserName,
    org: &Org,
    command: Option<CommandName>,
    jobs: &BTreeMap<String, crate::domain::job::Job>,
    may: &dyn Fn(CommandName) -> bool,
) -> String {
    match command {
        Some(c) => {
            let s = c.spec();
            let mut out = format!(
                "{}\n{}\nwho may run it: {}",
                s.usage(),
                s.summary,
                s.who.describe()
            );
            if !may(c) {
                out.push_str(" (not you)");
            }
            for o in s.options {
                out.push_str(&format!(
                    "\n  {}{}: {}",
                    o.name,
                    if o.required { "" } else { " (optional)" },
                    o.description
                ));
            }
            out
        }
        None => {
            let mut out = String::from("Commands you may run:");
            for c in CommandName::ALL {
                let s = c.spec();
                if may(c) {
                    out.push_str(&format!("\n  /{} — {}", s.full_name(), s.summary));
                }
            }
            let mine: Vec<&crate::domain::job::Job> =
                jobs.values().filter(|j| j.admits(user, org)).collect();
            if !mine.is_empty() {
                out.push_str("\nJobs you may run (from commands/):");
                for j in mine {
                    let params: String = j
                        .params
                        .iter()
                        .map(|p| match &p.default {
                            Some(d) => format!(" [{}:… (default {d})]", p.name),
                            None => format!(" {}:…", p.name),
                        })
                        .collect();
                    out.push_str(&format!("\n  /{}{params} — {}", j.name, j.description));
                }
            }
            out.push_str("\nMore on one: /help command:\"ticket open\"");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        parse_command(line, "OPS").map_err(|e| e.to_string())
    }

    #[test]
    fn accepted_lines() {
        let cases: Vec<(&str, Command)> = vec![
            (
                r#"/ticket open title:"Checkout fails" priority:p1"#,
                Command::TicketOpen {
                    title: "Checkout fails".into(),
                    description: None,
                    priority: Some(Priority::P1),
                    team: None,
                },
            ),
            (
                r#"/ticket open title:Disk team:infra description:"say \"hi\"""#,
                Command::TicketOpen {
                    title: "Disk".into(),
                    description: Some("say \"hi\"".into()),
                    priority: None,
                    team: Some(TeamName::parse("infra").unwrap()),
                },
            ),
            (
                "/ticket assign id:ops-3 user:@bella",
                Command::TicketAssign {
                    id: TicketId::new("OPS", 3),
                    team: None,
                    user: Some(UserName::parse("bella").unwrap()),
                },
            ),
            (
                "/ticket list state:in_progress mine:true",
                Command::TicketList {
                    state: Some(TicketState::InProgress),
                    team: None,
                    mine: true,
                },
            ),
            (
                "/help command:\"ticket open\"",
                Command::Help {
                    command: Some(CommandName::TicketOpen),
                },
            ),
            ("/help", Command::Help { command: None }),
            (
                "/ticket resolve id:OPS-1 note:\"fixed: the cache key\"",
                Command::TicketResolve {
                    id: TicketId::new("OPS", 1),
                    note: "fixed: the cache key".into(),
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "{line}");
        }
    }

    #[test]
    fn build_is_taken_as_discord_shows_it_too() {
        let plain = parse("/build job:build-web ref:main").unwrap();
        assert_eq!(parse("/build run job:build-web ref:main").unwrap(), plain);
        assert!(matches!(plain, Command::Build { .. }));
        assert!(matches!(
            parse("/build cancel run:RUN-2").unwrap(),
            Command::BuildCancel { .. }
        ));
    }

    #[test]
    fn refused_lines_say_what_would_be_right() {
        let long = format!("/ticket open title:{}", "x".repeat(257));
        let cases: Vec<(&str, &str)> = vec![
            ("/frobnicate", "unknown command /frobnicate; commands are /ticket, /alert, /build, /runs, /deploy, /rollback, /approve, /deny, /help"),
            ("/ticket", "/ticket needs a subcommand; try one of: open, show"),
            ("/ticket close id:1", "/ticket has no subcommand `close`; try one of: open"),
            ("/ticket open", "/ticket open needs `title:`"),
            ("/ticket open title:x colour:red", "/ticket open has no option `colour`; its options are: title, description, priority, team"),
            ("/ticket open title:x priority:urgent", "`priority` must be one of p1, p2, p3, p4; got `urgent`"),
            ("/ticket open title:\"   \"", "`title` must not be empty"),
            (&long, "`title` is 257 characters long; the limit is 256"),
            ("/ticket open title:x title:y", "option `title` is given twice"),
            ("/ticket open title:\"unclosed", "a double quote is not closed"),
            ("/ticket open oops", "`oops` is not an option: write options as name:value"),
            ("/ticket show id:XYZ-3", "`XYZ-3` is not a ticket id: ticket ids look like OPS-12"),
            ("/ticket assign id:OPS-1", "give `team:` or `user:` (or both)"),
            ("/ticket list state:done", "`state` must be one of open, assigned, in_progress, resolved, qa, closed; got `done`"),
            ("/help command:fly", "there is no command `fly`"),
            ("/ticket open title:x team:Back_End", "is not a valid team name"),
        ];
        for (line, want) in cases {
            let got = parse(line).unwrap_err();
            assert!(got.contains(want), "{line}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn every_declaration_is_well_formed() {
        for c in CommandName::ALL {
            let s = c.spec();
            assert_eq!(CommandName::lookup(&s.full_name()), Some(c));
            assert!(!s.summary.is_empty());
            for o in s.options {
                assert!(!o.description.is_empty(), "{} {}", s.full_name(), o.name);
                assert!(o.name.chars().all(|c| c.is_ascii_lowercase()));
            }
        }
    }
}
