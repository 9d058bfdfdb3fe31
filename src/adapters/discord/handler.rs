//! The gateway handler: interactions answered at once (or deferred), and
//! channel messages turned into events.

use super::*;

/// The three kinds of interaction the bot answers with a message.
pub(super) enum Asked<'a> {
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
    /// Set once what was not found by name has been told (once per start).
    pub setup_told: std::sync::atomic::AtomicBool,
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
        let config = &self.bot.config();
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
        // A list with more: a button that asks for the next page.
        let more: Vec<CreateActionRow> = reply
            .more
            .as_ref()
            .map(|m| {
                vec![CreateActionRow::Buttons(vec![CreateButton::new(
                    Press::ListPage(m.clone()).custom_id(),
                )
                .label("Next page")
                .style(serenity::all::ButtonStyle::Secondary)])]
            })
            .unwrap_or_default();
        let sent = if deferred {
            let mut edit = EditInteractionResponse::new()
                .content(text)
                .components(more)
                .allowed_mentions(mentions);
            if let Some(f) = file {
                edit = edit.new_attachment(f);
            }
            asked.edit(&ctx.http, edit).await
        } else {
            let mut msg = CreateInteractionResponseMessage::new()
                .content(text)
                .ephemeral(reply.ephemeral)
                .components(more)
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
        let config = &self.bot.config();
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
        let config = &self.bot.config();
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
        let config = &self.bot.config();
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
        let config = &self.bot.config();
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
        let guilds = names::guilds(config, &ready);
        let report = names::find_by_name(&ctx.http, config, &guilds, ready.user.id).await;
        let first = !self
            .setup_told
            .swap(true, std::sync::atomic::Ordering::SeqCst);
        if let (Some(event), true) = (report, first) {
            if let Err(e) = self.bot.handle(event).await {
                warn!(error = %e, "what was not found on Discord could not be told");
            }
        }
        // Forum mode: the ticket states' tags, added once if missing.
        if let Err(e) = forum::ensure_tags(&ctx.http, &self.bot).await {
            error!(error = ?e, "cannot set up the forum's tags");
        }
    }

    async fn channel_create(&self, _ctx: Context, channel: serenity::all::GuildChannel) {
        names::take_channel(self.bot.engine().config(), &channel);
    }

    async fn channel_update(
        &self,
        _ctx: Context,
        _old: Option<serenity::all::GuildChannel>,
        new: serenity::all::GuildChannel,
    ) {
        names::take_channel(self.bot.engine().config(), &new);
    }

    async fn message(&self, _ctx: Context, msg: serenity::all::Message) {
        if msg.author.bot {
            return;
        }
        let config = &self.bot.config();
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
        let config = &self.bot.config();
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
