//! The Discord adapter (serenity 0.12): slash commands registered from the
//! same declarations as the console, interactions turned into events and
//! answered at once, and an outbox sink that posts with a nonce (so a retry
//! never posts twice), allowed mentions limited to the people meant, text
//! escaped and cut to Discord's limits, progress messages edited in place
//! and each ticket's story in a thread under its card.

use std::sync::Arc;

use serenity::all::{
    ActionRowComponent, AutocompleteChoice, ButtonStyle, ChannelId, CommandDataOptionValue,
    CommandInteraction, CommandOptionType, ComponentInteraction, ComponentInteractionDataKind,
    Context, CreateActionRow, CreateAllowedMentions, CreateAttachment, CreateAutocompleteResponse,
    CreateButton, CreateCommand, CreateCommandOption, CreateEmbed, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage, CreateModal,
    CreateSelectMenu, CreateSelectMenuKind, CreateSelectMenuOption, CreateThread,
    EditInteractionResponse, EditMessage, EventHandler, GuildId, InputTextStyle, Interaction,
    MessageId, ModalInteraction, Nonce, Ready, UserId,
};
use serenity::async_trait;
use tracing::{debug, error, info, warn};

use crate::commands::{Command, CommandName, OptKind};
use crate::config::Config;
use crate::domain::rich::{one_line, Rich, Seg};
use crate::domain::run::RunId;
use crate::domain::{Actor, ChannelName, Priority, Source, TicketId, TicketState, UserName};
use crate::engine::{Ask, Card, Effect, Event, Post, Reply};
use crate::error::UserError;
use crate::runtime::{Bot, DeliveryError, Pace, Sink};
use crate::store::OutboxItem;

/// Discord's limit on a message's content.
pub const MAX_CONTENT: usize = 2000;

/// Escapes text someone else wrote so it cannot format, link or ping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '<' | ':' => {
                out.push('\\');
                out.push(c);
            }
            // `@everyone`, `@here` and `<@id>` never form.
            '@' => out.push_str("@\u{200b}"),
            c => out.push(c),
        }
    }
    out
}

/// A message body as Discord markdown, and the user ids it pings.
pub fn render(body: &Rich, config: &Config) -> (String, Vec<u64>) {
    let mut out = String::new();
    let mut pings = Vec::new();
    for seg in &body.0 {
        match seg {
            Seg::Text(t) => out.push_str(t),
            Seg::Bold(t) => {
                out.push_str("**");
                out.push_str(&escape(t));
                out.push_str("**");
            }
            Seg::Quoted(t) => out.push_str(&escape(t)),
            Seg::Mention(u) => match config.discord.user_id(u) {
                Some(id) => {
                    out.push_str(&format!("<@{id}>"));
                    if !pings.contains(&id) {
                        pings.push(id);
                    }
                }
                None => {
                    out.push('@');
                    out.push_str(&escape(u.as_str()));
                }
            },
        }
    }
    (cut(&out, MAX_CONTENT), pings)
}

/// Cuts text to `max` characters, saying so.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let note = "… (cut: too long for Discord)";
    let keep = max - note.chars().count();
    let mut out: String = s.chars().take(keep).collect();
    // Never end inside an escape.
    while out.ends_with('\\') {
        out.pop();
    }
    out.push_str(note);
    out
}

fn option_type(kind: OptKind) -> CommandOptionType {
    match kind {
        OptKind::Bool => CommandOptionType::Boolean,
        OptKind::Integer => CommandOptionType::Integer,
        _ => CommandOptionType::String,
    }
}

fn create_option(o: &crate::commands::Opt) -> CreateCommandOption {
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
            // A lone command sharing the group's name (`/build job:…`) is its `run` subcommand.
            if let Some(s) = lone {
                let mut sub = CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    "run",
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
fn actor_name(config: &Config, id: UserId) -> UserName {
    config
        .discord
        .user_name(id.get())
        .cloned()
        .or_else(|| UserName::parse(&format!("discord-{}", id.get())).ok())
        .unwrap_or_else(|| UserName::system("discord"))
}

fn channel_name(config: &Config, id: ChannelId) -> ChannelName {
    config
        .discord
        .channel_name(id.get())
        .cloned()
        .or_else(|| ChannelName::parse(&format!("discord-{}", id.get())).ok())
        .unwrap_or_else(|| config.tickets.channel.clone())
}

/// The command words an interaction names (`ticket open`; a `run`
/// subcommand stands for its group's lone command) and its options.
fn invoked(
    data: &serenity::all::CommandData,
) -> (Vec<String>, &[serenity::all::CommandDataOption]) {
    let mut words = vec![data.name.clone()];
    if let Some(first) = data.options.first() {
        if let CommandDataOptionValue::SubCommand(inner) = &first.value {
            if first.name != "run" {
                words.push(first.name.clone());
            }
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
            _ => return None,
        })
    }

    /// The text a modal asks for before this press becomes a command.
    fn asks_for(&self) -> Option<(&'static str, &'static str, &'static str)> {
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
    fn command(&self, value: Option<&str>, prefix: &str) -> Result<Command, UserError> {
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
        };
        let args = args.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Command::from_args(name, args, prefix)
    }
}

/// A card's colour: how urgent the ticket is.
pub fn priority_colour(p: Priority) -> u32 {
    match p {
        Priority::P1 => 0xE0_31_31,
        Priority::P2 => 0xF0_8C_00,
        Priority::P3 => 0xF1_C4_0F,
        Priority::P4 => 0x7F_8C_8D,
    }
}

fn person(config: &Config, u: &UserName) -> String {
    // In an embed a mention shows the name and never pings.
    match config.discord.user_id(u) {
        Some(id) => format!("<@{id}>"),
        None => escape(u.as_str()),
    }
}

/// A ticket's card as an embed: colour by priority, the fields operators
/// look at; the age is Discord's relative timestamp, always current.
pub fn card_embed(card: &Card, config: &Config) -> CreateEmbed {
    let title = format!("{} · {}", card.ticket, escape(&card.title));
    let mut e = CreateEmbed::new()
        .title(cut(&title, MAX_EMBED_TITLE))
        .colour(priority_colour(card.priority))
        .field("State", card.state.to_string(), true)
        .field("Priority", card.priority.as_str(), true)
        .field(
            "Team",
            card.team
                .as_ref()
                .map(|t| escape(t.as_str()))
                .unwrap_or_else(|| "—".into()),
            true,
        )
        .field(
            "Assignee",
            card.assignee
                .as_ref()
                .map(|u| person(config, u))
                .unwrap_or_else(|| "—".into()),
            true,
        )
        .field(
            "Source",
            format!("{} · {}", card.source, person(config, &card.opened_by)),
            true,
        )
        .field(
            "Age",
            format!("<t:{}:R>", card.created_at.timestamp()),
            true,
        );
    if let Some(d) = &card.description {
        e = e.description(cut(&escape(d), MAX_EMBED_DESCRIPTION));
    }
    if card.due.is_some() || !card.missed.is_empty() {
        let mut due = card
            .due
            .filter(|_| card.state != TicketState::Closed)
            .map(|d| format!("<t:{}:R>", d.timestamp()))
            .unwrap_or_else(|| "—".into());
        if !card.missed.is_empty() {
            due.push_str(&format!(" · missed: {}", card.missed.join(", ")));
        }
        e = e.field("Due", due, true);
    }
    if let Some(n) = card.alerts {
        e = e.field("Alerts", n.to_string(), true);
    }
    if card.customer {
        e = e.field("Customer", "waits for an answer by mail", true);
    }
    if let Ok(ts) = serenity::model::Timestamp::from_unix_timestamp(card.created_at.timestamp()) {
        e = e.timestamp(ts);
    }
    e
}

/// The buttons that fit a ticket's state (the engine still decides whether
/// the one who presses may), and a menu of teams to assign it to.
pub fn card_components(card: &Card, config: &Config) -> Vec<CreateActionRow> {
    let id = &card.ticket;
    let mut buttons = Vec::new();
    let mut assign = false;
    for word in crate::engine::tickets::allowed_from(card.state) {
        let (press, label, style) = match word {
            "take" => (Press::Take(id.clone()), "Take", ButtonStyle::Primary),
            "resolve" => (Press::Resolve(id.clone()), "Resolve…", ButtonStyle::Success),
            "qa" => (Press::Qa(id.clone()), "Send to QA", ButtonStyle::Secondary),
            "verify" => (Press::Verify(id.clone()), "Verify", ButtonStyle::Success),
            "reject" => (Press::Reject(id.clone()), "Reject…", ButtonStyle::Danger),
            "reopen" => (Press::Reopen(id.clone()), "Reopen…", ButtonStyle::Secondary),
            "assign" => {
                assign = true;
                continue;
            }
            _ => continue,
        };
        if matches!(press, Press::Qa(_)) && config.org.qa().is_none() {
            continue;
        }
        buttons.push(
            CreateButton::new(press.custom_id())
                .label(label)
                .style(style),
        );
    }
    let mut rows = Vec::new();
    if !buttons.is_empty() {
        rows.push(CreateActionRow::Buttons(buttons));
    }
    if assign && !config.org.teams.is_empty() {
        let options = config
            .org
            .teams
            .values()
            .filter(|t| Some(&t.name) != card.team.as_ref())
            .take(25)
            .map(|t| {
                let mut o = CreateSelectMenuOption::new(t.name.as_str(), t.name.as_str());
                if let Some(d) = &t.description {
                    o = o.description(cut(d, 100));
                }
                o
            })
            .collect::<Vec<_>>();
        if !options.is_empty() {
            rows.push(CreateActionRow::SelectMenu(
                CreateSelectMenu::new(
                    Press::Assign(id.clone()).custom_id(),
                    CreateSelectMenuKind::String { options },
                )
                .placeholder("Assign to a team…"),
            ));
        }
    }
    rows
}

/// The Approve and Deny buttons of a deploy waiting for approval.
fn ask_components(ask: &Ask) -> Vec<CreateActionRow> {
    match ask {
        Ask::Approval { run } => vec![CreateActionRow::Buttons(vec![
            CreateButton::new(Press::Approve(*run).custom_id())
                .label("Approve")
                .style(ButtonStyle::Success),
            CreateButton::new(Press::Deny(*run).custom_id())
                .label("Deny…")
                .style(ButtonStyle::Danger),
        ])],
    }
}

/// The option a partly typed value is for: its kind, from the declarations.
fn focused_kind(config: &Config, data: &serenity::all::CommandData, name: &str) -> Option<OptKind> {
    if config.jobs.contains_key(&data.name) {
        return None;
    }
    let (words, _) = invoked(data);
    let c = CommandName::lookup(&words.join(" "))?;
    c.spec()
        .options
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.kind)
}

/// The string value of option `name` as typed so far, anywhere in the tree.
fn typed(data: &serenity::all::CommandData, name: &str) -> Option<String> {
    fn find(opts: &[serenity::all::CommandDataOption], name: &str) -> Option<String> {
        for o in opts {
            match &o.value {
                CommandDataOptionValue::SubCommand(inner)
                | CommandDataOptionValue::SubCommandGroup(inner) => {
                    if let Some(v) = find(inner, name) {
                        return Some(v);
                    }
                }
                CommandDataOptionValue::String(v) if o.name == name => return Some(v.clone()),
                CommandDataOptionValue::Autocomplete { value, .. } if o.name == name => {
                    return Some(value.clone())
                }
                _ => {}
            }
        }
        None
    }
    find(&data.options, name)
}

/// Whether the bot suggests values for options of this kind as they are typed.
pub fn suggests(kind: OptKind) -> bool {
    matches!(
        kind,
        OptKind::Ticket
            | OptKind::Team
            | OptKind::User
            | OptKind::Job
            | OptKind::Service
            | OptKind::Environment
            | OptKind::Run
            | OptKind::Command
    )
}

/// Suggestions for a partly typed option: (shown, value), at most 25.
pub fn suggestions(
    bot: &Bot,
    kind: OptKind,
    partial: &str,
    service: Option<&str>,
) -> Vec<(String, String)> {
    let config = bot.engine().config();
    let p = partial.trim().to_lowercase();
    let hit = |s: &str| p.is_empty() || s.to_lowercase().contains(&p);
    let names = |items: Vec<String>| -> Vec<(String, String)> {
        items
            .into_iter()
            .filter(|n| hit(n))
            .take(MAX_CHOICES)
            .map(|n| (n.clone(), n))
            .collect()
    };
    match kind {
        OptKind::Ticket => bot
            .store()
            .ok()
            .and_then(|s| s.suggest_tickets(&p, MAX_CHOICES).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let shown = format!("{} · {} · {}", t.id, t.state, one_line(&t.title, 60));
                (cut(&shown, 100), t.id.to_string())
            })
            .collect(),
        OptKind::Team => names(config.org.teams.keys().map(|t| t.to_string()).collect()),
        OptKind::User => names(config.org.people().iter().map(|u| u.to_string()).collect()),
        OptKind::Job => names(config.jobs.keys().cloned().collect()),
        OptKind::Service => names(config.services.keys().cloned().collect()),
        OptKind::Environment => names(
            config
                .services
                .values()
                .filter(|s| service.is_none_or(|want| s.name == want))
                .flat_map(|s| s.environments.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        ),
        OptKind::Run => bot
            .store()
            .ok()
            .and_then(|s| crate::engine::QueryView::recent_runs(&s, SUGGEST_RUNS).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| hit(&r.id.to_string()) || hit(&r.job))
            .take(MAX_CHOICES)
            .map(|r| {
                let shown = format!("{} · {} · {}", r.id, r.job, r.state);
                (cut(&shown, 100), r.id.to_string())
            })
            .collect(),
        OptKind::Command => names(
            CommandName::ALL
                .iter()
                .map(|c| c.spec().full_name())
                .chain(config.jobs.keys().cloned())
                .collect(),
        ),
        _ => Vec::new(),
    }
}

/// How many recent runs autocomplete looks through.
pub const SUGGEST_RUNS: usize = 200;
/// How many choices Discord shows for autocomplete.
pub const MAX_CHOICES: usize = 25;
/// Discord's limit on an embed's title.
pub const MAX_EMBED_TITLE: usize = 256;
/// Discord's limit on an embed's description.
pub const MAX_EMBED_DESCRIPTION: usize = 4096;

/// The three kinds of interaction the bot answers with a message.
enum Asked<'a> {
    Command(&'a CommandInteraction),
    Component(&'a ComponentInteraction),
    Modal(&'a ModalInteraction),
}

impl Asked<'_> {
    async fn respond(
        &self,
        http: &serenity::http::Http,
        r: CreateInteractionResponse,
    ) -> serenity::Result<()> {
        match self {
            Asked::Command(i) => i.create_response(http, r).await,
            Asked::Component(i) => i.create_response(http, r).await,
            Asked::Modal(i) => i.create_response(http, r).await,
        }
    }

    async fn edit(
        &self,
        http: &serenity::http::Http,
        e: EditInteractionResponse,
    ) -> serenity::Result<()> {
        let r = match self {
            Asked::Command(i) => i.edit_response(http, e).await,
            Asked::Component(i) => i.edit_response(http, e).await,
            Asked::Modal(i) => i.edit_response(http, e).await,
        };
        r.map(|_| ())
    }
}

/// Serenity's event handler: registration and interactions.
pub struct Handler {
    pub bot: Bot,
    pub ready: tokio::sync::watch::Sender<bool>,
}

impl Handler {
    /// Runs `command` for `user` and answers within Discord's limit: at
    /// once when the engine is quick, else deferred and edited in later.
    /// Refusals and private answers are ephemeral.
    async fn answer(
        &self,
        ctx: &Context,
        asked: Asked<'_>,
        user: UserId,
        member: Option<&serenity::all::Member>,
        channel: ChannelId,
        command: Result<Command, UserError>,
    ) {
        let config = self.bot.engine().config();
        let work = async {
            match command {
                Err(e) => Reply::private(e.to_string()),
                Ok(command) => {
                    let roles: Vec<u64> = member
                        .map(|m| m.roles.iter().map(|r| r.get()).collect())
                        .unwrap_or_default();
                    let actor = Actor::new(actor_name(config, user), Source::Discord)
                        .with_grants(config.discord.grants(&roles));
                    let event = Event::Command {
                        actor,
                        channel: channel_name(config, channel),
                        command,
                    };
                    match self.bot.handle(event).await {
                        Ok(Some(r)) => r,
                        Ok(None) => Reply::private("Done."),
                        Err(e) => Reply::private(e.to_string()),
                    }
                }
            }
        };
        tokio::pin!(work);
        let within = config.discord.defer_after;
        let reply = if within.is_zero() {
            // Set to 0: always defer.
            None
        } else {
            tokio::select! {
                r = &mut work => Some(r),
                _ = tokio::time::sleep(within) => None,
            }
        };
        let (reply, deferred) = match reply {
            Some(r) => (r, false),
            None => {
                let defer = CreateInteractionResponse::Defer(
                    CreateInteractionResponseMessage::new().ephemeral(true),
                );
                if let Err(e) = asked.respond(&ctx.http, defer).await {
                    warn!(error = %e, "cannot defer an interaction");
                }
                (work.await, true)
            }
        };
        let (text, pings) = render(&reply.body, config);
        let mentions = CreateAllowedMentions::new()
            .everyone(false)
            .all_roles(false)
            .users(pings.into_iter().map(UserId::new));
        let file = reply
            .file
            .as_ref()
            .map(|f| CreateAttachment::bytes(f.bytes.clone(), f.name.clone()));
        let sent = if deferred {
            let mut edit = EditInteractionResponse::new()
                .content(text)
                .allowed_mentions(mentions);
            if let Some(f) = file {
                edit = edit.new_attachment(f);
            }
            asked.edit(&ctx.http, edit).await
        } else {
            let mut msg = CreateInteractionResponseMessage::new()
                .content(text)
                .ephemeral(reply.ephemeral)
                .allowed_mentions(mentions);
            if let Some(f) = file {
                msg = msg.add_file(f);
            }
            asked
                .respond(&ctx.http, CreateInteractionResponse::Message(msg))
                .await
        };
        if let Err(e) = sent {
            warn!(error = %e, "cannot answer an interaction");
        }
    }

    async fn autocomplete(&self, ctx: &Context, ac: CommandInteraction) {
        let config = self.bot.engine().config();
        let Some(focused) = ac.data.autocomplete() else {
            return;
        };
        let choices = match focused_kind(config, &ac.data, focused.name) {
            Some(kind) => {
                let service = typed(&ac.data, "service");
                suggestions(&self.bot, kind, focused.value, service.as_deref())
            }
            None => Vec::new(),
        };
        let choices = choices
            .into_iter()
            .map(|(name, value)| AutocompleteChoice::new(name, value))
            .collect();
        let r = CreateInteractionResponse::Autocomplete(
            CreateAutocompleteResponse::new().set_choices(choices),
        );
        if let Err(e) = ac.create_response(&ctx.http, r).await {
            warn!(error = %e, "cannot answer an autocomplete");
        }
    }

    async fn component(&self, ctx: &Context, c: ComponentInteraction) {
        let config = self.bot.engine().config();
        let Some(press) = Press::parse(&c.data.custom_id, &config.tickets.prefix) else {
            let refused = Err(UserError::new(
                "this button is not one of this bot's (or it is too old); use the slash commands",
            ));
            return self
                .answer(
                    ctx,
                    Asked::Component(&c),
                    c.user.id,
                    c.member.as_ref(),
                    c.channel_id,
                    refused,
                )
                .await;
        };
        if let Some((field, title, label)) = press.asks_for() {
            let input = CreateInputText::new(InputTextStyle::Paragraph, label, field)
                .required(true)
                .max_length(1500);
            let what = match &press {
                Press::Deny(r) => r.to_string(),
                Press::Resolve(t) | Press::Reject(t) | Press::Reopen(t) => t.to_string(),
                _ => String::new(),
            };
            let modal = CreateModal::new(press.custom_id(), format!("{title} {what}"))
                .components(vec![CreateActionRow::InputText(input)]);
            if let Err(e) = c
                .create_response(&ctx.http, CreateInteractionResponse::Modal(modal))
                .await
            {
                warn!(error = %e, "cannot open a modal");
            }
            return;
        }
        let value = match &c.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values.first().cloned(),
            _ => None,
        };
        let command = press.command(value.as_deref(), &config.tickets.prefix);
        self.answer(
            ctx,
            Asked::Component(&c),
            c.user.id,
            c.member.as_ref(),
            c.channel_id,
            command,
        )
        .await;
    }

    async fn modal(&self, ctx: &Context, m: ModalInteraction) {
        let config = self.bot.engine().config();
        let value = m
            .data
            .components
            .iter()
            .flat_map(|row| row.components.iter())
            .find_map(|c| match c {
                ActionRowComponent::InputText(t) => t.value.clone(),
                _ => None,
            });
        let command = match Press::parse(&m.data.custom_id, &config.tickets.prefix) {
            Some(press) => press.command(value.as_deref(), &config.tickets.prefix),
            None => Err(UserError::new(
                "this form is not one of this bot's; use the slash commands",
            )),
        };
        self.answer(
            ctx,
            Asked::Modal(&m),
            m.user.id,
            m.member.as_ref(),
            m.channel_id,
            command,
        )
        .await;
    }
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let config = self.bot.engine().config();
        let commands = slash_commands(config);
        let res = if config.discord.guild_ids.is_empty() {
            serenity::all::Command::set_global_commands(&ctx.http, commands)
                .await
                .map(|_| ())
        } else {
            let mut res = Ok(());
            for g in &config.discord.guild_ids {
                if let Err(e) = GuildId::new(*g)
                    .set_commands(&ctx.http, commands.clone())
                    .await
                {
                    error!(guild = g, error = %e, "cannot register the slash commands in a guild");
                    res = Err(e);
                }
            }
            res
        };
        match res {
            Ok(()) => info!(user = %ready.user.name, "connected to Discord; commands registered"),
            Err(e) => error!(error = %e, "cannot register the slash commands"),
        }
        self.ready.send_replace(true);
        self.bot.health().set_gateway(true, chrono::Utc::now());
    }

    async fn message(&self, _ctx: Context, msg: serenity::all::Message) {
        if msg.author.bot {
            return;
        }
        let config = self.bot.engine().config();
        let channel = channel_name(config, msg.channel_id);
        // Only channels with message rules are the bot's business.
        if !config
            .alerts
            .message_rules
            .iter()
            .any(|r| r.channel == channel)
        {
            return;
        }
        let event = Event::ChatMessage {
            author: Actor::new(actor_name(config, msg.author.id), Source::Discord),
            channel,
            text: msg.content.clone(),
        };
        if let Err(e) = self.bot.handle(event).await {
            warn!(error = %e, "a chat message could not be handled");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let config = self.bot.engine().config();
        match interaction {
            Interaction::Command(cmd) => {
                let command = command_of(config, &cmd);
                self.answer(
                    &ctx,
                    Asked::Command(&cmd),
                    cmd.user.id,
                    cmd.member.as_deref(),
                    cmd.channel_id,
                    command,
                )
                .await
            }
            Interaction::Autocomplete(ac) => self.autocomplete(&ctx, ac).await,
            Interaction::Component(c) => self.component(&ctx, c).await,
            Interaction::Modal(m) => self.modal(&ctx, m).await,
            _ => {}
        }
    }
}

/// Posts to Discord channels: the outbox sink of the chat queue.
pub struct DiscordSink {
    pub http: Arc<serenity::http::Http>,
    pub bot: Bot,
}

fn classify(e: serenity::Error) -> DeliveryError {
    if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = &e {
        let code = r.status_code.as_u16();
        if code == 429 || code >= 500 {
            return DeliveryError::Transient(format!("Discord answered {code}"));
        }
        return DeliveryError::Permanent(format!(
            "Discord refused the post ({code}): {}",
            r.error.message
        ));
    }
    DeliveryError::Transient(e.to_string())
}

impl DiscordSink {
    fn remember(&self, key: &str, id: u64) {
        let set = self.bot.store().map_err(|e| e.to_string()).and_then(|s| {
            s.adapter_set(key, &id.to_string())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = set {
            warn!(key, error = %e, "cannot remember a Discord message id");
        }
    }

    fn recall(&self, key: &str) -> Option<u64> {
        self.bot
            .store()
            .ok()
            .and_then(|s| s.adapter_get(key).ok().flatten())
            .and_then(|v| v.parse().ok())
    }
}

impl DiscordSink {
    /// Posts (or, for a message that follows one thing, edits) a post.
    async fn post(&self, seq: u64, p: &Post) -> Result<(), DeliveryError> {
        let config = self.bot.engine().config();
        let channel = self.channel_id(&p.channel)?;
        let (text, pings) = render(&p.body, config);
        let mentions = CreateAllowedMentions::new()
            .everyone(false)
            .all_roles(false)
            .users(pings.into_iter().map(UserId::new));
        let mut target = ChannelId::new(channel);
        // A ticket's story goes in a thread under its card.
        if let (true, Some(t)) = (p.thread, &p.ticket) {
            let thread_key = format!("thread:{t}");
            match (self.recall(&thread_key), self.recall(&format!("card:{t}"))) {
                (Some(th), _) => target = ChannelId::new(th),
                (None, Some(card)) => {
                    let name: String = format!("{t}").chars().take(90).collect();
                    match ChannelId::new(channel)
                        .create_thread_from_message(
                            &self.http,
                            MessageId::new(card),
                            CreateThread::new(name),
                        )
                        .await
                    {
                        Ok(th) => {
                            self.remember(&thread_key, th.id.get());
                            target = th.id;
                        }
                        Err(e) => return Err(classify(e)),
                    }
                }
                (None, None) => {
                    // Its card never reached Discord (merged into a storm's
                    // summary, or refused): rather than spill the story
                    // into the channel, leave it to the timeline
                    // (`/ticket show`).
                    debug!(ticket = %t, "no card to hang the thread on; the timeline keeps it");
                    return Ok(());
                }
            }
        }
        let components = p.ask.as_ref().map(ask_components);
        if let Some(key) = &p.replaces {
            if let Some(mid) = self.recall(&format!("msg:{key}")) {
                // The buttons go when the question is answered.
                let edit = EditMessage::new()
                    .content(text)
                    .allowed_mentions(mentions)
                    .components(components.unwrap_or_default());
                return target
                    .edit_message(&self.http, MessageId::new(mid), edit)
                    .await
                    .map(|_| ())
                    .map_err(classify);
            }
        }
        let mut msg = CreateMessage::new()
            .content(text)
            .allowed_mentions(mentions)
            .nonce(Nonce::String(format!("opsbot-{seq}")))
            .enforce_nonce(true);
        if let Some(card) = &p.card {
            msg = msg
                .embed(card_embed(card, config))
                .components(card_components(card, config));
        } else if let Some(rows) = components {
            msg = msg.components(rows);
        }
        if let Some(f) = &p.file {
            msg = msg.add_file(CreateAttachment::bytes(f.bytes.clone(), f.name.clone()));
        }
        let sent = target
            .send_message(&self.http, msg)
            .await
            .map_err(classify)?;
        if let Some(key) = &p.replaces {
            self.remember(&format!("msg:{key}"), sent.id.get());
        }
        if let (false, Some(t)) = (p.thread, &p.ticket) {
            if p.channel == config.tickets.channel && self.recall(&format!("card:{t}")).is_none() {
                self.remember(&format!("card:{t}"), sent.id.get());
            }
        }
        Ok(())
    }

    /// Edits a ticket's card to show it as it is now.
    async fn edit_card(&self, card: &Card) -> Result<(), DeliveryError> {
        let config = self.bot.engine().config();
        let channel = self.channel_id(&card.channel)?;
        let Some(mid) = self.recall(&format!("card:{}", card.ticket)) else {
            // Its card was never posted (merged into a storm's summary, or
            // refused for good): nothing to edit.
            debug!(ticket = %card.ticket, "no card to update");
            return Ok(());
        };
        let edit = EditMessage::new()
            .embed(card_embed(card, config))
            .components(card_components(card, config));
        ChannelId::new(channel)
            .edit_message(&self.http, MessageId::new(mid), edit)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn channel_id(&self, name: &ChannelName) -> Result<u64, DeliveryError> {
        self.bot
            .engine()
            .config()
            .discord
            .channel_id(name)
            .ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "#{name} has no Discord channel id in [discord.channels]"
                ))
            })
    }

    /// After a post was refused for good: the operations channel hears of
    /// it once per channel (the post itself stays on record as a dead
    /// letter).
    async fn tell_ops_once(&self, channel: &ChannelName, why: &str) {
        let config = self.bot.engine().config();
        let ops = &config.tickets.channel;
        let key = format!("broken:{channel}");
        if channel == ops || self.recall(&key).is_some() {
            return;
        }
        let Some(ops_id) = config.discord.channel_id(ops) else {
            return;
        };
        let text = format!(
            "I cannot post in #{}: {}. Give me access to that channel (View Channel, Send \
             Messages, Create Public Threads) or fix its id in [discord.channels]. Its posts \
             are kept on record; `opsbot export` shows them.",
            escape(channel.as_str()),
            escape(why)
        );
        let msg = CreateMessage::new()
            .content(cut(&text, MAX_CONTENT))
            .allowed_mentions(
                CreateAllowedMentions::new()
                    .everyone(false)
                    .all_roles(false),
            )
            .nonce(Nonce::String(format!(
                "opsbot-b{:016x}",
                fnv1a(channel.as_str())
            )))
            .enforce_nonce(true);
        match ChannelId::new(ops_id).send_message(&self.http, msg).await {
            Ok(sent) => self.remember(&key, sent.id.get()),
            Err(e) => warn!(channel = %channel, error = %e, "cannot tell the operations channel"),
        }
    }
}

/// A stable 64-bit hash (FNV-1a), for nonces that must be the same after
/// a restart and fit Discord's 25 characters.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Sink for DiscordSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let (channel, r) = match &item.effect {
            Effect::Post(p) => (&p.channel, self.post(item.seq, p).await),
            Effect::Card(c) => (&c.channel, self.edit_card(c).await),
            Effect::Mail(_) | Effect::Job(_) => {
                return Err(DeliveryError::Permanent("not a chat post".into()))
            }
        };
        if let Err(DeliveryError::Permanent(why)) = &r {
            error!(channel = %channel, seq = item.seq, error = %why, "a post was refused for good");
            self.tell_ops_once(channel, why).await;
        }
        r
    }

    fn pace(&self) -> Option<Pace> {
        Some(Pace::DISCORD)
    }

    /// Channels are paced apart; a slow answer in one (or a rate limit
    /// the client waits out) must not hold back the others.
    fn parallel(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_cannot_ping_or_format() {
        assert_eq!(
            escape("@everyone **hi** <@123>"),
            "@\u{200b}everyone \\*\\*hi\\*\\* \\<@\u{200b}123\\>"
        );
        let long = "x".repeat(3000);
        let c = cut(&long, MAX_CONTENT);
        assert_eq!(c.chars().count(), MAX_CONTENT);
        assert!(c.ends_with("(cut: too long for Discord)"));
    }
}
