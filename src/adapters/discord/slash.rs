//! Slash commands: registered from the declarations, and interactions turned
//! into typed commands and button presses.

use super::*;

pub(super) fn option_type(kind: OptKind) -> CommandOptionType {
    match kind {
        OptKind::Bool => CommandOptionType::Boolean,
        OptKind::Integer => CommandOptionType::Integer,
        _ => CommandOptionType::String,
    }
}

pub(super) fn create_option(o: &crate::commands::Opt) -> CreateCommandOption {
    let mut opt = CreateCommandOption::new(option_type(o.kind), o.name, cut(o.description, 100))
        .required(o.required);
    if let Some(choices) = o.kind.choices() {
        if o.kind != OptKind::Bool {
            for c in choices {
                opt = opt.add_string_choice(*c, *c);
            }
        }
    }
    if suggests(o.kind) {
        opt = opt.set_autocomplete(true);
    }
    opt
}

/// The slash commands, from the same declarations as the console: groups
/// become commands with subcommands; each job from `commands/` is one too.
pub fn slash_commands(config: &Config) -> Vec<CreateCommand> {
    let mut out: Vec<CreateCommand> = Vec::new();
    for group in CommandName::groups() {
        let specs: Vec<crate::commands::Spec> = CommandName::ALL
            .iter()
            .map(|c| c.spec())
            .filter(|s| s.group.unwrap_or(s.name) == group)
            .collect();
        let lone = specs.iter().find(|s| s.group.is_none());
        let subs: Vec<&crate::commands::Spec> =
            specs.iter().filter(|s| s.group.is_some()).collect();
        let mut cmd = CreateCommand::new(group);
        if subs.is_empty() {
            let Some(s) = lone else { continue };
            cmd = cmd.description(cut(s.summary, 100));
            for o in s.options {
                cmd = cmd.add_option(create_option(o));
            }
        } else {
            cmd = cmd.description(format!("{group} commands"));
            // Discord cannot invoke a command that has subcommands: a lone
            // command sharing the group's name (`/build job:…`) is one of
            // them (`/build run`, `/oncall show`).
            if let Some((s, name)) = lone.and_then(|s| {
                let c = CommandName::lookup(s.name)?;
                Some((s, c.discord_subcommand()?))
            }) {
                let mut sub = CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    name,
                    cut(s.summary, 100),
                );
                for o in s.options {
                    sub = sub.add_sub_option(create_option(o));
                }
                cmd = cmd.add_option(sub);
            }
            for s in subs {
                let mut sub = CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    s.name,
                    cut(s.summary, 100),
                );
                for o in s.options {
                    sub = sub.add_sub_option(create_option(o));
                }
                cmd = cmd.add_option(sub);
            }
        }
        out.push(cmd);
    }
    for job in config.jobs.values() {
        let mut cmd = CreateCommand::new(job.name.clone()).description(cut(&job.description, 100));
        for p in &job.params {
            cmd = cmd.add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    p.name.clone(),
                    cut(&p.description, 100),
                )
                .required(p.default.is_none()),
            );
        }
        out.push(cmd);
    }
    out
}

/// Who is acting: the person the config maps this Discord user to, or a
/// name made from the user's id.
pub(super) fn actor_name(config: &Config, id: UserId) -> UserName {
    config
        .discord
        .user_name(id.get())
        .or_else(|| UserName::parse(&format!("discord-{}", id.get())).ok())
        .unwrap_or_else(|| UserName::system("discord"))
}

pub(super) fn channel_name(config: &Config, id: ChannelId) -> ChannelName {
    config
        .discord
        .channel_name(id.get())
        .or_else(|| ChannelName::parse(&format!("discord-{}", id.get())).ok())
        .unwrap_or_else(|| config.tickets.channel.clone())
}

/// The command words an interaction names (`ticket open`; `build run`
/// stands for the lone `/build`, as the lookup knows) and its options.
pub(super) fn invoked(
    data: &serenity::all::CommandData,
) -> (Vec<String>, &[serenity::all::CommandDataOption]) {
    let mut words = vec![data.name.clone()];
    if let Some(first) = data.options.first() {
        if let CommandDataOptionValue::SubCommand(inner) = &first.value {
            words.push(first.name.clone());
            return (words, inner);
        }
    }
    (words, &data.options)
}

/// The typed command a slash interaction asks for.
pub fn command_of(
    config: &Config,
    cmd: &CommandInteraction,
) -> Result<Command, crate::error::UserError> {
    let name = cmd.data.name.as_str();
    let (words, options) = invoked(&cmd.data);
    let mut args = Vec::new();
    for o in options {
        let v = match &o.value {
            CommandDataOptionValue::String(s) => s.clone(),
            CommandDataOptionValue::Integer(n) => n.to_string(),
            CommandDataOptionValue::Boolean(b) => b.to_string(),
            CommandDataOptionValue::Number(n) => n.to_string(),
            _ => continue,
        };
        args.push((o.name.clone(), v));
    }
    if let Some(job) = config.jobs.get(name) {
        return Ok(Command::Build {
            job: job.name.clone(),
            params: args,
        });
    }
    let Some(c) = CommandName::lookup(&words.join(" ")) else {
        return Err(crate::error::UserError::new(format!(
            "this bot does not know /{}; /help lists its commands",
            words.join(" ")
        )));
    };
    Command::from_args(c, args, &config.tickets.prefix)
}

/// What a button, select menu or modal of the bot asks for. Their custom
/// ids (`opsbot:VERB:ID`) hold all they need, so a card posted before a
/// restart keeps working after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Press {
    Take(TicketId),
    Resolve(TicketId),
    Assign(TicketId),
    Qa(TicketId),
    Verify(TicketId),
    Reject(TicketId),
    Reopen(TicketId),
    Approve(RunId),
    Deny(RunId),
    /// "Next page" under a `/ticket list`.
    ListPage(crate::engine::ListMore),
}

impl Press {
    pub fn custom_id(&self) -> String {
        match self {
            Press::Take(t) => format!("opsbot:take:{t}"),
            Press::Resolve(t) => format!("opsbot:resolve:{t}"),
            Press::Assign(t) => format!("opsbot:assign:{t}"),
            Press::Qa(t) => format!("opsbot:qa:{t}"),
            Press::Verify(t) => format!("opsbot:verify:{t}"),
            Press::Reject(t) => format!("opsbot:reject:{t}"),
            Press::Reopen(t) => format!("opsbot:reopen:{t}"),
            Press::Approve(r) => format!("opsbot:approve:{r}"),
            Press::Deny(r) => format!("opsbot:deny:{r}"),
            // Names are short (a team's at most 32): well under Discord's
            // 100 characters.
            Press::ListPage(m) => format!(
                "opsbot:list:{}:{}:{}:{}",
                m.state.map_or("-", |s| s.as_str()),
                m.team.as_ref().map_or("-", |t| t.as_str()),
                u8::from(m.mine),
                m.page
            ),
        }
    }

    pub fn parse(custom_id: &str, prefix: &str) -> Option<Press> {
        let rest = custom_id.strip_prefix("opsbot:")?;
        let (verb, id) = rest.split_once(':')?;
        let ticket = || TicketId::parse(id, prefix).ok();
        let run = || RunId::parse(id).ok();
        Some(match verb {
            "take" => Press::Take(ticket()?),
            "resolve" => Press::Resolve(ticket()?),
            "assign" => Press::Assign(ticket()?),
            "qa" => Press::Qa(ticket()?),
            "verify" => Press::Verify(ticket()?),
            "reject" => Press::Reject(ticket()?),
            "reopen" => Press::Reopen(ticket()?),
            "approve" => Press::Approve(run()?),
            "deny" => Press::Deny(run()?),
            "list" => {
                let mut parts = id.split(':');
                let state = match parts.next()? {
                    "-" => None,
                    s => Some(s.parse().ok()?),
                };
                let team = match parts.next()? {
                    "-" => None,
                    t => Some(crate::domain::TeamName::parse(t).ok()?),
                };
                let mine = parts.next()? == "1";
                let page = parts.next()?.parse().ok()?;
                if parts.next().is_some() {
                    return None;
                }
                Press::ListPage(crate::engine::ListMore {
                    state,
                    team,
                    mine,
                    page,
                })
            }
            _ => return None,
        })
    }

    /// The text a modal asks for before this press becomes a command.
    pub(super) fn asks_for(&self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Press::Resolve(_) => Some(("note", "Resolve", "What fixed it")),
            Press::Reject(_) => Some(("reason", "Reject", "Why the fix does not hold")),
            Press::Reopen(_) => Some(("reason", "Reopen", "Why it is open again")),
            Press::Deny(_) => Some(("reason", "Deny", "Why not")),
            _ => None,
        }
    }

    /// The command this press stands for, with the value a select menu or
    /// modal gave.
    pub(super) fn command(&self, value: Option<&str>, prefix: &str) -> Result<Command, UserError> {
        let v = || value.unwrap_or_default().to_string();
        let (name, args): (CommandName, Vec<(&str, String)>) = match self {
            Press::Take(t) => (CommandName::TicketTake, vec![("id", t.to_string())]),
            Press::Qa(t) => (CommandName::TicketQa, vec![("id", t.to_string())]),
            Press::Verify(t) => (CommandName::TicketVerify, vec![("id", t.to_string())]),
            Press::Assign(t) => (
                CommandName::TicketAssign,
                vec![("id", t.to_string()), ("team", v())],
            ),
            Press::Resolve(t) => (
                CommandName::TicketResolve,
                vec![("id", t.to_string()), ("note", v())],
            ),
            Press::Reject(t) => (
                CommandName::TicketReject,
                vec![("id", t.to_string()), ("reason", v())],
            ),
            Press::Reopen(t) => (
                CommandName::TicketReopen,
                vec![("id", t.to_string()), ("reason", v())],
            ),
            Press::Approve(r) => (CommandName::Approve, vec![("run", r.to_string())]),
            Press::Deny(r) => (
                CommandName::Deny,
                vec![("run", r.to_string()), ("reason", v())],
            ),
            Press::ListPage(m) => {
                let mut args = vec![("page", m.page.to_string())];
                if let Some(s) = m.state {
                    args.push(("state", s.to_string()));
                }
                if let Some(t) = &m.team {
                    args.push(("team", t.to_string()));
                }
                if m.mine {
                    args.push(("mine", "true".to_string()));
                }
                (CommandName::TicketList, args)
            }
        };
        let args = args.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Command::from_args(name, args, prefix)
    }
}
