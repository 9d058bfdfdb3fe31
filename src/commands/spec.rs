//! The declarations: every command's name, options (types, choices), who may
//! run it and its help text; one exhaustive `match` in [`CommandName::spec`].

use crate::domain::org::{Org, Role};
use crate::domain::{Priority, TicketState, UserName, MAX_TEXT, MAX_TITLE};

/// Every command the bot knows. [`CommandName::ALL`] is derived from this
/// list, so a new variant is registered, parsed and in the help at once (and
/// [`CommandName::spec`] does not compile until it is declared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
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
    Whoami,
    Oncall,
    OncallSet,
    Report,
    StatusSet,
    TicketPublic,
    TicketRevokeLink,
    MaintenanceStart,
    MaintenanceSchedule,
    MaintenanceList,
    MaintenanceEnd,
    Page,
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
    /// A state of the status page (`operational` … `maintenance`).
    ServiceState,
}

impl OptKind {
    /// The fixed choices, when the option has them.
    pub fn choices(self) -> Option<&'static [&'static str]> {
        match self {
            OptKind::Priority => Some(Priority::NAMES),
            OptKind::State => Some(TicketState::NAMES),
            OptKind::Bool => Some(&["true", "false"]),
            OptKind::ServiceState => Some(crate::domain::status::ServiceState::NAMES),
            _ => None,
        }
    }

    pub(super) fn placeholder(self) -> String {
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

pub(super) const fn req(name: &'static str, kind: OptKind, description: &'static str) -> Opt {
    Opt {
        name,
        kind,
        required: true,
        description,
    }
}

pub(super) const fn opt(name: &'static str, kind: OptKind, description: &'static str) -> Opt {
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
    /// the engine decides (`may_run` in `engine/deploys.rs`); this admits no one by itself.
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

pub(super) const TEXT: OptKind = OptKind::Text { max: MAX_TEXT };
pub(super) const TITLE: OptKind = OptKind::Text { max: MAX_TITLE };
pub(super) const TICKET_ID: Opt = req("id", OptKind::Ticket, "The ticket, such as OPS-12");
pub(super) const MEMBERS: &[Role] = &[Role::Operator, Role::Member];

impl CommandName {
    /// Every command, in declaration order (the order of the help).
    pub const ALL: &'static [CommandName] = <CommandName as strum::VariantArray>::VARIANTS;

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
                        opt("page", OptKind::Integer, "Which page of 25, newest first (1: the first)"),
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
            CommandName::Whoami => Spec {
                group: None,
                name: "whoami",
                summary: "Who the bot thinks you are: your teams, roles and what you may run",
                options: const { &[] },
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
            CommandName::StatusSet => Spec {
                group: Some("status"),
                name: "set",
                summary: "Set a service's state on the public status page",
                options: const {
                    &[
                        req(
                            "service",
                            OptKind::Text { max: 64 },
                            "A service or component of the status page, such as web",
                        ),
                        req(
                            "state",
                            OptKind::ServiceState,
                            "operational, degraded, partial_outage, major_outage or maintenance",
                        ),
                        opt("message", TEXT, "What the public reads beside it"),
                    ]
                },
                who: Who::Roles(const { &[Role::Operator] }),
            },
            CommandName::TicketPublic => ticket(
                "public",
                "Make an incident ticket public on the status page, with a public update",
                const {
                    &[
                        TICKET_ID,
                        req("text", TEXT, "The update the public reads"),
                        opt(
                            "title",
                            TITLE,
                            "The incident's public title; the ticket's title when not given",
                        ),
                    ]
                },
                Who::Roles(const { &[Role::Operator] }),
            ),
            CommandName::TicketRevokeLink => ticket(
                "revoke-link",
                "Revoke the customer's page link of a ticket; the next mail carries a new one",
                const { &[TICKET_ID] },
                Who::Roles(const { &[Role::Operator] }),
            ),
            CommandName::MaintenanceStart => Spec {
                group: Some("maintenance"),
                name: "start",
                summary: "Start a maintenance window now: matching alerts are recorded but open no ticket, page nobody",
                options: const {
                    &[
                        req(
                            "matchers",
                            OptKind::Matchers,
                            "Which alerts, such as \"service=web env=production\"",
                        ),
                        req(
                            "duration",
                            OptKind::Duration,
                            "How long, such as 30m or 2h (at most [monitoring] max_maintenance)",
                        ),
                        opt("comment", TEXT, "Why"),
                    ]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::MaintenanceSchedule => Spec {
                group: Some("maintenance"),
                name: "schedule",
                summary: "Schedule a maintenance window, once or every day or week",
                options: const {
                    &[
                        req(
                            "matchers",
                            OptKind::Matchers,
                            "Which alerts, such as \"service=db\"",
                        ),
                        req(
                            "from",
                            OptKind::Text { max: 100 },
                            "When it starts: \"2026-03-30 22:00\" ([monitoring] time_zone) or 2026-03-30T22:00:00Z",
                        ),
                        req(
                            "until",
                            OptKind::Text { max: 100 },
                            "When it ends, written the same way",
                        ),
                        opt(
                            "every",
                            OptKind::Text { max: 10 },
                            "daily or weekly: it comes back at the same local time",
                        ),
                        opt("comment", TEXT, "Why"),
                    ]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::MaintenanceList => Spec {
                group: Some("maintenance"),
                name: "list",
                summary: "List the maintenance windows in force and to come, with the alerts they took in",
                options: &[],
                who: Who::Anyone,
            },
            CommandName::MaintenanceEnd => Spec {
                group: Some("maintenance"),
                name: "end",
                summary: "End a maintenance window now (a recurring one for good)",
                options: const {
                    &[req(
                        "id",
                        OptKind::Integer,
                        "The window's number, from /maintenance list",
                    )]
                },
                who: Who::Roles(MEMBERS),
            },
            CommandName::Page => Spec {
                group: None,
                name: "page",
                summary: "Page someone about a ticket: a direct message with it and an Acknowledge button",
                options: const {
                    &[
                        req("user", OptKind::User, "The person to page"),
                        TICKET_ID,
                    ]
                },
                who: Who::Roles(MEMBERS),
            },
        }
    }

    /// Finds a command by what a user typed: `ticket open`, `/ticket open`,
    /// and the form Discord shows (`build run`, `oncall show`).
    pub fn lookup(words: &str) -> Option<CommandName> {
        let norm = words
            .trim()
            .trim_start_matches('/')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        CommandName::ALL
            .iter()
            .copied()
            .find(|c| c.spec().full_name() == norm)
            .or_else(|| {
                CommandName::ALL
                    .iter()
                    .copied()
                    .find(|c| c.shown_name() == norm)
            })
    }

    /// Discord cannot invoke a command that also has subcommands: a lone
    /// command whose name is also a group's (`/build` beside `/build
    /// cancel`) shows on Discord as this subcommand of the group (`/build
    /// run`, `/oncall show`). `None` for every other command.
    pub fn discord_subcommand(self) -> Option<&'static str> {
        let s = self.spec();
        if s.group.is_some()
            || !CommandName::ALL
                .iter()
                .any(|c| c.spec().group == Some(s.name))
        {
            return None;
        }
        Some(match self {
            CommandName::Oncall => "show",
            _ => "run",
        })
    }

    /// The name as Discord shows it, and as `/help` names it: `ticket open`,
    /// `build run`, `oncall show`, `help`.
    pub fn shown_name(self) -> String {
        let s = self.spec();
        match self.discord_subcommand() {
            Some(sub) => format!("{} {sub}", s.name),
            None => s.full_name(),
        }
    }

    /// [`Spec::usage`] with the name Discord shows: `/build run job:<job>
    /// [ref:<text>]`.
    pub fn shown_usage(self) -> String {
        let s = self.spec();
        let usage = s.usage();
        match usage.strip_prefix(&format!("/{}", s.full_name())) {
            Some(rest) => format!("/{}{rest}", self.shown_name()),
            None => usage,
        }
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
