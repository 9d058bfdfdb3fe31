//! The Discord adapter (serenity 0.12): slash commands registered from the
//! same declarations as the console, interactions turned into events and
//! answered at once, and an outbox sink that posts with a nonce (so a retry
//! never posts twice), allowed mentions limited to the people meant, text
//! escaped and cut to Discord's limits, progress messages edited in place
//! and each ticket's story in a thread under its card.

use std::sync::Arc;

use serenity::all::{
    ChannelId, CommandDataOptionValue, CommandInteraction, CommandOptionType, Context,
    CreateAllowedMentions, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateMessage, CreateThread, EditMessage, EventHandler,
    GuildId, Interaction, MessageId, Nonce, Ready, UserId,
};
use serenity::async_trait;
use tracing::{error, info, warn};

use crate::commands::{Command, CommandName, OptKind};
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Source, UserName};
use crate::engine::{Effect, Event};
use crate::render::{Rich, Seg};
use crate::runtime::{Bot, BotError, DeliveryError, Pace, Sink};
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

/// The typed command a slash interaction asks for.
pub fn command_of(
    config: &Config,
    cmd: &CommandInteraction,
) -> Result<Command, crate::error::UserError> {
    let name = cmd.data.name.as_str();
    let mut words = vec![name.to_string()];
    let mut options = &cmd.data.options;
    let nested;
    if let Some(first) = options.first() {
        if let CommandDataOptionValue::SubCommand(inner) = &first.value {
            if first.name != "run" {
                words.push(first.name.clone());
            }
            nested = inner.clone();
            options = &nested;
        }
    }
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

/// Serenity's event handler: registration and interactions.
pub struct Handler {
    pub bot: Bot,
    pub ready: tokio::sync::watch::Sender<bool>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let config = self.bot.engine().config();
        let commands = slash_commands(config);
        let res = match config.discord.guild_id {
            Some(g) => GuildId::new(g)
                .set_commands(&ctx.http, commands)
                .await
                .map(|_| ()),
            None => serenity::all::Command::set_global_commands(&ctx.http, commands)
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => info!(user = %ready.user.name, "connected to Discord; commands registered"),
            Err(e) => error!(error = %e, "cannot register the slash commands"),
        }
        self.ready.send_replace(true);
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
        let Interaction::Command(cmd) = interaction else {
            return;
        };
        let config = self.bot.engine().config();
        let user = actor_name(config, cmd.user.id);
        let channel = channel_name(config, cmd.channel_id);
        let answer = match command_of(config, &cmd) {
            Err(e) => Rich::new().text(e.to_string()),
            Ok(command) => {
                let event = Event::Command {
                    actor: Actor::new(user, Source::Discord),
                    channel,
                    command,
                };
                match self.bot.handle(event).await {
                    Ok(Some(r)) => r.body,
                    Ok(None) => Rich::new().text("Done."),
                    Err(BotError::Refused(e)) => Rich::new().text(e.to_string()),
                    Err(e) => Rich::new().text(e.to_string()),
                }
            }
        };
        let (text, pings) = render(&answer, config);
        let msg = CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(
                CreateAllowedMentions::new().users(pings.into_iter().map(UserId::new)),
            );
        if let Err(e) = cmd
            .create_response(&ctx.http, CreateInteractionResponse::Message(msg))
            .await
        {
            warn!(error = %e, "cannot answer an interaction");
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
        if let Err(e) = self.bot.store().adapter_set(key, &id.to_string()) {
            warn!(key, error = %e, "cannot remember a Discord message id");
        }
    }

    fn recall(&self, key: &str) -> Option<u64> {
        self.bot
            .store()
            .adapter_get(key)
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

impl Sink for DiscordSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Effect::Post(p) = &item.effect else {
            return Err(DeliveryError::Permanent("not a chat post".into()));
        };
        let config = self.bot.engine().config();
        let Some(channel) = config.discord.channel_id(&p.channel) else {
            return Err(DeliveryError::Permanent(format!(
                "#{} has no Discord channel id in [discord.channels]",
                p.channel
            )));
        };
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
                (None, None) => {}
            }
        }
        if let Some(key) = &p.replaces {
            let msg_key = format!("msg:{key}");
            if let Some(mid) = self.recall(&msg_key) {
                let edit = EditMessage::new().content(text).allowed_mentions(mentions);
                return target
                    .edit_message(&self.http, MessageId::new(mid), edit)
                    .await
                    .map(|_| ())
                    .map_err(classify);
            }
        }
        let nonce = format!("opsbot-{}", item.seq);
        let msg = CreateMessage::new()
            .content(text)
            .allowed_mentions(mentions)
            .nonce(Nonce::String(nonce))
            .enforce_nonce(true);
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

    fn pace(&self) -> Option<Pace> {
        Some(Pace::DISCORD)
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
