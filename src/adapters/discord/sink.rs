//! The outbox sink of the chat queue: posts, edits and thread messages, sent
//! with a nonce so a retry never posts twice.

use super::*;

/// Posts to Discord channels: the outbox sink of the chat queue.
pub struct DiscordSink {
    pub http: Arc<serenity::http::Http>,
    pub bot: Bot,
}

/// Discord's "A thread has already been created for this message".
const THREAD_ALREADY_CREATED: isize = 160004;

/// Whether Discord refused a thread because the message has one.
fn thread_exists(e: &serenity::Error) -> bool {
    matches!(
        e,
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))
            if r.error.code == THREAD_ALREADY_CREATED
    )
}

/// Discord's "Thread is archived": a thread (or forum post) left idle is
/// archived, and takes no message or edit until it is unarchived.
const THREAD_ARCHIVED: isize = 50083;

fn archived(e: &serenity::Error) -> bool {
    matches!(
        e,
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r))
            if r.error.code == THREAD_ARCHIVED
    )
}

pub(super) fn classify(e: serenity::Error) -> DeliveryError {
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
    /// Remembers the id Discord gave a card, a thread or a message that
    /// later posts replace. It goes through the commit thread's group
    /// commit (flushed with its next batch, not one flush per id), and this
    /// returns once it is on disk: a recall from then on finds it, in this
    /// process and after a restart.
    ///
    /// If the bot dies between the post and that flush, the post's outbox
    /// entry is still pending too (an entry is settled only after
    /// [`Sink::deliver`] returns, so after this), and it is delivered again
    /// after the restart: a post goes with the nonce `opsbot-{seq}` and
    /// `enforce_nonce`, so Discord answers with the message it already made
    /// (within its nonce window of a few minutes) and its id is remembered
    /// then. A thread has no nonce: created again for a card that already
    /// has one, Discord refuses it, and the thread, which has the card's
    /// id, is noted then. That window (between Discord's answer
    /// and the flush) was there when each id was flushed on its own too;
    /// it is now at most one batch of the commit thread longer.
    pub(super) async fn remember(&self, key: &str, id: u64) {
        if let Err(e) = self.bot.note(key, &id.to_string()).await {
            warn!(key, error = %e, "cannot remember a Discord message id");
        }
    }

    /// Right before each request to Discord: whether this instance still
    /// holds the lease. A delivery that began while it did may have been
    /// paused half-way (SIGSTOP, a stall) past the lease, while another
    /// instance took over and delivered the same effect: Discord takes no
    /// fencing token, so the stale holder must not send at all. A post's
    /// nonce would catch a second post within Discord's window, but not an
    /// edit or a thread.
    pub(super) fn fence(&self) -> Result<(), DeliveryError> {
        if self.bot.lease().held() {
            Ok(())
        } else {
            Err(DeliveryError::Transient(
                "this instance no longer holds the lease".into(),
            ))
        }
    }

    /// Sends `msg` to `target`; when Discord refuses it because the
    /// thread is archived, unarchives the thread and sends it again. The
    /// message's id.
    pub(super) async fn send_in_thread(
        &self,
        target: ChannelId,
        msg: CreateMessage,
    ) -> Result<u64, DeliveryError> {
        self.fence()?;
        match target.send_message(&self.http, msg.clone()).await {
            Ok(m) => Ok(m.id.get()),
            Err(e) if archived(&e) => {
                self.unarchive(target).await?;
                self.fence()?;
                let m = target
                    .send_message(&self.http, msg)
                    .await
                    .map_err(classify)?;
                Ok(m.id.get())
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Edits message `mid` in `target`, unarchiving the thread first when
    /// Discord refuses the edit because it is archived.
    pub(super) async fn edit_in_thread(
        &self,
        target: ChannelId,
        mid: u64,
        edit: EditMessage,
    ) -> Result<(), DeliveryError> {
        self.fence()?;
        match target
            .edit_message(&self.http, MessageId::new(mid), edit.clone())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if archived(&e) => {
                self.unarchive(target).await?;
                self.fence()?;
                target
                    .edit_message(&self.http, MessageId::new(mid), edit)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn unarchive(&self, thread: ChannelId) -> Result<(), DeliveryError> {
        debug!(thread = %thread, "unarchiving the thread to post in it");
        self.fence()?;
        thread
            .edit_thread(&self.http, serenity::all::EditThread::new().archived(false))
            .await
            .map(|_| ())
            .map_err(classify)
    }

    pub(super) fn recall(&self, key: &str) -> Option<u64> {
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
        let config = &self.bot.config();
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
                    self.fence()?;
                    match ChannelId::new(channel)
                        .create_thread_from_message(
                            &self.http,
                            MessageId::new(card),
                            CreateThread::new(name),
                        )
                        .await
                    {
                        Ok(th) => {
                            self.remember(&thread_key, th.id.get()).await;
                            target = th.id;
                        }
                        // Made already, its id never noted: the instance
                        // (or process) that made it died or was paused
                        // between Discord's answer and the note. A thread
                        // started from a message has the message's id.
                        Err(e) if thread_exists(&e) => {
                            self.remember(&thread_key, card).await;
                            target = ChannelId::new(card);
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
                if self.to_forum(p) && !p.thread {
                    target = self.forum_edit_target(p, mid);
                }
                return self.edit_in_thread(target, mid, edit).await;
            }
        }
        let mut msg = CreateMessage::new()
            .content(text.clone())
            .allowed_mentions(mentions);
        if let Some(card) = &p.card {
            msg = msg
                .embed(card_embed(card, config))
                .components(card_components(card, config));
        } else if let Some(rows) = components {
            msg = msg.components(rows);
        } else if let Some(rows) = self.team_post_buttons(p) {
            msg = msg.components(rows);
        }
        if let Some(f) = &p.file {
            msg = msg.add_file(CreateAttachment::bytes(f.bytes.clone(), f.name.clone()));
        }
        if self.to_forum(p) && !p.thread {
            // A forum takes posts, not messages (and a post no nonce).
            let id = self.forum_post(channel, p, msg).await?;
            if let Some(key) = &p.replaces {
                self.remember(&format!("msg:{key}"), id).await;
            }
            return Ok(());
        }
        let msg = msg
            .nonce(Nonce::String(format!("opsbot-{seq}")))
            .enforce_nonce(true);
        let sent = self.send_in_thread(target, msg).await?;
        if let Some(key) = &p.replaces {
            self.remember(&format!("msg:{key}"), sent).await;
        }
        if let (false, Some(t)) = (p.thread, &p.ticket) {
            if p.channel == config.tickets.channel && self.recall(&format!("card:{t}")).is_none() {
                self.remember(&format!("card:{t}"), sent).await;
            }
        }
        Ok(())
    }

    /// A post about a ticket in a team's channel (QA's too) carries the
    /// buttons its card would carry, for the ticket as it is when the post
    /// goes out, so that the people pinged there act where they are (the
    /// engine still decides whether the one pressing may).
    fn team_post_buttons(&self, p: &Post) -> Option<Vec<CreateActionRow>> {
        let config = &self.bot.config();
        let ticket = p.ticket.as_ref()?;
        if p.thread
            || p.channel == config.tickets.channel
            || !config.org.teams.values().any(|t| t.channel == p.channel)
        {
            return None;
        }
        let store = self.bot.store().ok()?;
        let t = crate::engine::View::ticket(&store, ticket).ok()??;
        let rows = card_components(&Card::of(&t, &p.channel), config);
        (!rows.is_empty()).then_some(rows)
    }

    /// Edits a ticket's card to show it as it is now.
    async fn edit_card(&self, card: &Card) -> Result<(), DeliveryError> {
        let config = &self.bot.config();
        if config.discord.tickets == crate::config::TicketsIn::Forum
            && card.channel == config.tickets.channel
        {
            return self.forum_card(card).await;
        }
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
        self.fence()?;
        ChannelId::new(channel)
            .edit_message(&self.http, MessageId::new(mid), edit)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn channel_id(&self, name: &ChannelName) -> Result<u64, DeliveryError> {
        let config = &self.bot.config();
        let discord = &config.discord;
        discord.channel_id(name).ok_or_else(|| {
            if discord.found.looked() {
                DeliveryError::Permanent(format!(
                    "no channel named #{name} in the guild, and no id for it in [discord.channels]"
                ))
            } else {
                // Not looked up by name yet: the bot is still connecting.
                DeliveryError::Transient(format!("#{name} is not looked up on Discord yet"))
            }
        })
    }

    /// After a post was refused for good: the engine decides whether the
    /// operations channel hears of it (once per channel), and posts it
    /// through the outbox.
    async fn report_refusal(&self, channel: &ChannelName, why: &str) {
        let event = Event::ChannelRefused {
            channel: channel.clone(),
            why: why.to_string(),
        };
        if let Err(e) = self.bot.submit(event).await {
            warn!(channel = %channel, error = %e, "cannot tell the operations channel");
        }
    }
}

impl Sink for DiscordSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let (channel, r) = match &item.effect {
            Effect::Post(p) => (&p.channel, self.post(item.seq, p).await),
            Effect::Card(c) => (&c.channel, self.edit_card(c).await),
            // A page that cannot be delivered is reported as such, not as
            // a channel's refusal.
            Effect::Page(p) => return self.page(item.seq, p).await,
            Effect::Mail(_) | Effect::Job(_) | Effect::Alertmanager(_) => {
                return Err(DeliveryError::Permanent("not a chat post".into()))
            }
        };
        if let Err(DeliveryError::Permanent(why)) = &r {
            error!(channel = %channel, seq = item.seq, error = %why, "a post was refused for good");
            self.report_refusal(channel, why).await;
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

/// Discord's "Cannot send messages to this user" (direct messages closed).
const CANNOT_MESSAGE_USER: isize = 50007;

impl DiscordSink {
    /// A page: a direct message to the person with the ticket's card and an
    /// Acknowledge button (it takes the ticket). One Discord does not take
    /// for good (direct messages closed, no Discord id) is reported to the
    /// engine, which says so once; nothing is retried then.
    async fn page(&self, seq: u64, p: &crate::engine::Page) -> Result<(), DeliveryError> {
        let config = &self.bot.config();
        let refused = |why: String| Event::PageRefused {
            to: p.to.clone(),
            ticket: p.card.ticket.clone(),
            why,
        };
        let Some(uid) = config.discord.user_id(&p.to) else {
            let why = format!("{} has no Discord id under [discord.users]", p.to);
            return self.page_refused(refused(why)).await;
        };
        self.fence()?;
        let dm = match UserId::new(uid).create_dm_channel(&self.http).await {
            Ok(dm) => dm,
            Err(e) => return Err(classify(e)),
        };
        let (text, _) = render(&p.body, config);
        let acknowledge = CreateButton::new(Press::Take(p.card.ticket.clone()).custom_id())
            .label("Acknowledge")
            .style(ButtonStyle::Primary);
        let msg = CreateMessage::new()
            .content(text)
            .allowed_mentions(
                CreateAllowedMentions::new()
                    .everyone(false)
                    .all_roles(false),
            )
            .nonce(Nonce::String(format!("opsbot-{seq}")))
            .enforce_nonce(true)
            .embed(card_embed(&p.card, config))
            .components(vec![CreateActionRow::Buttons(vec![acknowledge])]);
        self.fence()?;
        match dm.id.send_message(&self.http, msg).await {
            Ok(_) => Ok(()),
            Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)))
                if r.error.code == CANNOT_MESSAGE_USER =>
            {
                let why = "their direct messages are closed (Discord error 50007)".to_string();
                self.page_refused(refused(why)).await
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn page_refused(&self, event: Event) -> Result<(), DeliveryError> {
        warn!(event = ?event, "a page did not reach its person");
        self.bot
            .submit(event)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError::Transient(e.to_string()))
    }
}
