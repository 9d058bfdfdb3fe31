//! Every chat command, declared once: name, options (with types and choices),
//! who may run it, and help. The console parser, `/help` and (later) Discord's
//! registration all read these declarations.
//!
//! [`CommandName::spec`] is an exhaustive `match`: a new command does not
//! compile until its declaration and help exist.

use crate::domain::error::UserError;
use crate::domain::rich::clip_plain;
use crate::domain::sanitize::clean_untrusted;
use crate::domain::{Priority, TeamName, TicketId, TicketState, UserName};

mod args;
mod help;
mod parse;
mod spec;

use args::Args;
pub use help::help;
pub use parse::{parse_command, parse_line, parse_with_jobs, Invocation};
pub use spec::{CommandName, Opt, OptKind, Spec, Who};

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
        /// From 1; `None`: the first.
        page: Option<u64>,
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
    /// Who the bot thinks the person is.
    Whoami,
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
    StatusSet {
        service: String,
        state: crate::domain::status::ServiceState,
        message: Option<String>,
    },
    TicketPublic {
        id: TicketId,
        text: String,
        title: Option<String>,
    },
    TicketRevokeLink {
        id: TicketId,
    },
    MaintenanceStart {
        matchers: Vec<crate::domain::alert::Matcher>,
        duration: std::time::Duration,
        comment: Option<String>,
    },
    MaintenanceSchedule {
        matchers: Vec<crate::domain::alert::Matcher>,
        /// As typed; read in `[monitoring] time_zone` by the engine.
        from: String,
        until: String,
        every: Option<crate::domain::maintenance::Every>,
        comment: Option<String>,
    },
    MaintenanceList,
    MaintenanceEnd {
        id: u64,
    },
    /// Pages `user` about ticket `id`.
    Page {
        user: UserName,
        id: TicketId,
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
            Command::Whoami => CommandName::Whoami,
            Command::Oncall { .. } => CommandName::Oncall,
            Command::OncallSet { .. } => CommandName::OncallSet,
            Command::Report { .. } => CommandName::Report,
            Command::StatusSet { .. } => CommandName::StatusSet,
            Command::TicketPublic { .. } => CommandName::TicketPublic,
            Command::TicketRevokeLink { .. } => CommandName::TicketRevokeLink,
            Command::MaintenanceStart { .. } => CommandName::MaintenanceStart,
            Command::MaintenanceSchedule { .. } => CommandName::MaintenanceSchedule,
            Command::MaintenanceList => CommandName::MaintenanceList,
            Command::MaintenanceEnd { .. } => CommandName::MaintenanceEnd,
            Command::Page { .. } => CommandName::Page,
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
                | Command::Whoami
                | Command::Oncall { .. }
                | Command::Report { .. }
                | Command::MaintenanceList
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
                page: a.opt_integer("page")?,
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
            CommandName::Whoami => Command::Whoami,
            CommandName::StatusSet => Command::StatusSet {
                service: a.text("service")?,
                state: a.text("state")?.parse()?,
                message: a.opt_text("message")?,
            },
            CommandName::TicketPublic => Command::TicketPublic {
                id: a.ticket(prefix)?,
                text: a.text("text")?,
                title: a.opt_text("title")?,
            },
            CommandName::TicketRevokeLink => Command::TicketRevokeLink {
                id: a.ticket(prefix)?,
            },
            CommandName::Page => {
                let user = a.opt_user("user")?.ok_or_else(|| {
                    UserError::new(format!(
                        "give `user:`, the person to page: {}",
                        spec.usage()
                    ))
                })?;
                Command::Page {
                    user,
                    id: a.ticket(prefix)?,
                }
            }
            CommandName::Help => Command::Help {
                command: match a.take("command") {
                    None => None,
                    Some(raw) => Some(lookup_for_help(&raw)?),
                },
            },
            CommandName::MaintenanceStart => Command::MaintenanceStart {
                matchers: crate::domain::alert::parse_matchers(&a.text("matchers")?)?,
                duration: a.duration("duration")?,
                comment: a.opt_text("comment")?,
            },
            CommandName::MaintenanceSchedule => Command::MaintenanceSchedule {
                matchers: crate::domain::alert::parse_matchers(&a.text("matchers")?)?,
                from: a.text("from")?,
                until: a.text("until")?,
                every: match a.take("every") {
                    Some(e) => Some(crate::domain::maintenance::Every::parse(&e)?),
                    None => None,
                },
                comment: a.opt_text("comment")?,
            },
            CommandName::MaintenanceList => Command::MaintenanceList,
            CommandName::MaintenanceEnd => Command::MaintenanceEnd {
                id: a.integer("id")?,
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
                .map(|c| c.shown_name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
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
                    page: None,
                },
            ),
            (
                "/ticket list page:2",
                Command::TicketList {
                    state: None,
                    team: None,
                    mine: false,
                    page: Some(2),
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
    fn oncall_is_taken_as_discord_shows_it_too() {
        let plain = parse("/oncall team:backend").unwrap();
        assert_eq!(parse("/oncall show team:backend").unwrap(), plain);
        assert!(matches!(plain, Command::Oncall { .. }));
        assert!(matches!(
            parse("/oncall set team:backend user:bob until:8h").unwrap(),
            Command::OncallSet { .. }
        ));
        assert_eq!(
            parse("/help command:\"oncall show\""),
            Ok(Command::Help {
                command: Some(CommandName::Oncall)
            })
        );
    }

    /// Discord cannot invoke a command that also has subcommands: a lone
    /// command that shares its name with a group is named by a subcommand
    /// of it, one the group does not already have.
    #[test]
    fn every_command_has_a_form_discord_can_invoke() {
        assert_eq!(CommandName::Build.shown_name(), "build run");
        assert_eq!(CommandName::Oncall.shown_name(), "oncall show");
        assert_eq!(CommandName::TicketOpen.shown_name(), "ticket open");
        assert_eq!(CommandName::Help.shown_name(), "help");
        assert_eq!(
            CommandName::Build.shown_usage(),
            "/build run job:<job> [ref:<text>]"
        );
        let mut shown = std::collections::HashSet::new();
        for &c in CommandName::ALL {
            assert!(shown.insert(c.shown_name()), "{} twice", c.shown_name());
            assert_eq!(CommandName::lookup(&c.shown_name()), Some(c));
            let s = c.spec();
            if s.group.is_none() {
                let is_group = CommandName::ALL
                    .iter()
                    .any(|g| g.spec().group == Some(s.name));
                assert_eq!(is_group, c.discord_subcommand().is_some(), "{}", s.name);
            }
        }
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
            ("/ticket list page:0", "`page` must be a whole number such as 3; got `0`"),
            ("/ticket list page:-1", "`page` must be a whole number such as 3; got `-1`"),
            ("/ticket list page:99999999999999999999", "`page` must be a whole number such as 3; got `99999999999999999999`"),
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
        for &c in CommandName::ALL {
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
