//! Forum mode (`[discord] tickets = "forum"`): the operations channel is a
//! Discord forum channel. Each ticket is a post in it (its card the post's
//! starter message, its story in the post, where the thread under a card
//! would have it), and the ticket's state is the post's applied tag, so a
//! team filters open tickets in Discord's own UI. The tags are the forum's:
//! those missing are added at start (the forum's own are kept), and their
//! ids noted.

use serde_json::json;
use serenity::all::{ChannelType, CreateForumPost, EditThread, ForumTagId, GuildChannel};

use super::*;
use crate::config::TicketsIn;

/// Discord's limits: tags in a forum, characters in a tag's name, and
/// characters in a thread's name.
const MAX_TAGS: usize = 20;
const MAX_TAG_NAME: usize = 20;
const MAX_THREAD_NAME: usize = 100;

fn tag_key(state: TicketState) -> String {
    format!("forum-tag:{}", state.as_str())
}

fn permanent(why: String) -> DeliveryError {
    DeliveryError::Permanent(why)
}

/// Makes sure the forum has a tag for every ticket state, adding those it
/// lacks in one change that keeps its own tags; notes each tag's id. Does
/// nothing in threads mode, or on an instance that does not hold the lease
/// (the one that does adds them).
pub(super) async fn ensure_tags(
    http: &serenity::http::Http,
    bot: &Bot,
) -> Result<(), DeliveryError> {
    let config = &bot.config();
    if config.discord.tickets != TicketsIn::Forum || !bot.lease().held() {
        return Ok(());
    }
    let name = &config.tickets.channel;
    let Some(id) = config.discord.channel_id(name) else {
        return Err(DeliveryError::Transient(format!(
            "#{name} is not looked up on Discord yet"
        )));
    };
    let forum = match http
        .get_channel(ChannelId::new(id))
        .await
        .map_err(classify)?
    {
        serenity::all::Channel::Guild(c) if c.kind == ChannelType::Forum => c,
        _ => {
            return Err(permanent(format!(
                "#{name} is not a forum channel, and [discord] tickets = \"forum\" needs one \
                 (make #{name} a forum channel, or set tickets = \"threads\")"
            )))
        }
    };
    let has = |s: &str| {
        forum
            .available_tags
            .iter()
            .any(|t| t.name.eq_ignore_ascii_case(s))
    };
    let missing: Vec<&str> = TicketState::NAMES
        .iter()
        .copied()
        .filter(|s| !has(s))
        .collect();
    let tags = if missing.is_empty() {
        forum.available_tags
    } else {
        if forum.available_tags.len() + missing.len() > MAX_TAGS {
            return Err(permanent(format!(
                "the forum #{name} has {} tags; the {} for ticket states ({}) would pass \
                 Discord's {MAX_TAGS}: remove some of its tags",
                forum.available_tags.len(),
                missing.len(),
                missing.join(", ")
            )));
        }
        let mut all: Vec<serde_json::Value> = forum
            .available_tags
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect();
        all.extend(missing.iter().map(|s| {
            let s: String = s.chars().take(MAX_TAG_NAME).collect();
            json!({ "name": s, "moderated": false })
        }));
        if !bot.lease().held() {
            return Ok(());
        }
        info!(forum = %name, tags = %missing.join(", "), "adding the ticket states' tags to the forum");
        http.edit_channel(ChannelId::new(id), &json!({ "available_tags": all }), None)
            .await
            .map_err(classify)?
            .available_tags
    };
    for state in TicketState::ALL {
        if let Some(t) = tags
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(state.as_str()))
        {
            if let Err(e) = bot.note(&tag_key(*state), &t.id.get().to_string()).await {
                warn!(error = %e, "cannot remember a forum tag's id");
            }
        }
    }
    Ok(())
}

/// A post's name: the ticket and its title, or the first line of a post
/// that is not a ticket's, cut to Discord's limit. Discord renders no
/// markdown in a post's name: it is plain text, never escaped.
fn post_name(p: &Post) -> String {
    let name = match &p.card {
        Some(c) => format!("{} · {}", c.ticket, one_line(&c.title, MAX_THREAD_NAME)),
        None => one_line(
            p.body.to_plain().lines().next().unwrap_or_default(),
            MAX_THREAD_NAME,
        ),
    };
    let name: String = name.trim().chars().take(MAX_THREAD_NAME).collect();
    if name.is_empty() {
        "opsbot".into()
    } else {
        name
    }
}

impl DiscordSink {
    /// Whether tickets are posts in a forum channel, and this post goes to it.
    pub(super) fn to_forum(&self, p: &Post) -> bool {
        let config = &self.bot.config();
        config.discord.tickets == TicketsIn::Forum && p.channel == config.tickets.channel
    }

    /// The id of the forum's tag for `state`, adding the tags first if
    /// they are not noted yet.
    async fn tag(&self, state: TicketState) -> Result<ForumTagId, DeliveryError> {
        if self.recall(&tag_key(state)).is_none() {
            self.fence()?;
            ensure_tags(&self.http, &self.bot).await?;
        }
        self.recall(&tag_key(state))
            .map(ForumTagId::new)
            .ok_or_else(|| DeliveryError::Transient(format!("no tag for {state} in the forum yet")))
    }

    /// The tag for `state`, or none when the forum's tags cannot be made
    /// for good (Manage Channels missing, no room for them): the ticket is
    /// still posted, untagged, and the start's permission check has told
    /// `#ops` what is missing.
    async fn tag_or_none(&self, state: TicketState) -> Result<Option<ForumTagId>, DeliveryError> {
        match self.tag(state).await {
            Ok(t) => Ok(Some(t)),
            Err(DeliveryError::Permanent(why)) => {
                warn!(state = %state, error = %why, "the forum post goes without its state's tag");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A post (not in a ticket's thread) to the forum channel, where Discord
    /// takes no plain message: a ticket's card starts its post, tagged with
    /// its state; another post about a ticket goes in the ticket's post; any
    /// other starts a post of its own.
    pub(super) async fn forum_post(
        &self,
        forum: u64,
        p: &Post,
        msg: CreateMessage,
    ) -> Result<u64, DeliveryError> {
        let ticket = p.ticket.as_ref();
        let thread = ticket.and_then(|t| self.recall(&format!("thread:{t}")));
        if let Some(c) = &p.card {
            if let Some(card) = self.recall(&format!("card:{}", c.ticket)) {
                // Posted already (delivered again after a restart).
                debug!(ticket = %c.ticket, "the ticket's forum post is there already");
                return Ok(card);
            }
            if let Some(th) = self.find_post(forum, &c.ticket).await? {
                // Made before, its id never noted (the bot died between
                // Discord's answer and the note, or the answer was lost):
                // a forum post takes no nonce, so the post is found by its
                // name and adopted rather than made twice.
                info!(ticket = %c.ticket, post = th, "adopting the ticket's forum post made before");
                self.remember(&format!("thread:{}", c.ticket), th).await;
                self.remember(&format!("card:{}", c.ticket), th).await;
                return Ok(th);
            }
            let mut post = CreateForumPost::new(post_name(p), msg);
            if let Some(tag) = self.tag_or_none(c.state).await? {
                post = post.add_applied_tag(tag);
            }
            self.fence()?;
            let th = ChannelId::new(forum)
                .create_forum_post(&self.http, post)
                .await
                .map_err(classify)?;
            // A post's starter message has the post's (thread's) id.
            self.remember(&format!("thread:{}", c.ticket), th.id.get())
                .await;
            self.remember(&format!("card:{}", c.ticket), th.id.get())
                .await;
            return Ok(th.id.get());
        }
        if let Some(th) = thread {
            let sent = self.send_in_thread(ChannelId::new(th), msg).await?;
            return Ok(sent);
        }
        self.fence()?;
        let th = ChannelId::new(forum)
            .create_forum_post(&self.http, CreateForumPost::new(post_name(p), msg))
            .await
            .map_err(classify)?;
        Ok(th.id.get())
    }

    /// The post of `ticket` in `forum` if Discord has one: among the
    /// guild's active threads, else the forum's most recent archived ones,
    /// by its name (`OPS-1 · …`, which only the bot gives a post).
    async fn find_post(&self, forum: u64, ticket: &TicketId) -> Result<Option<u64>, DeliveryError> {
        let prefix = format!("{ticket} · ");
        let ours = |t: &GuildChannel| {
            t.parent_id.map(|p| p.get()) == Some(forum) && t.name.starts_with(&prefix)
        };
        let guild = match self.bot.config().discord.guild_ids.as_slice() {
            [g] => GuildId::new(*g),
            _ => {
                self.fence()?;
                match ChannelId::new(forum)
                    .to_channel(&self.http)
                    .await
                    .map_err(classify)?
                {
                    serenity::all::Channel::Guild(c) => c.guild_id,
                    _ => return Ok(None),
                }
            }
        };
        self.fence()?;
        let active = self
            .http
            .get_guild_active_threads(guild)
            .await
            .map_err(classify)?;
        if let Some(t) = active.threads.iter().find(|t| ours(t)) {
            return Ok(Some(t.id.get()));
        }
        self.fence()?;
        let archived = self
            .http
            .get_channel_archived_public_threads(ChannelId::new(forum), None, Some(50))
            .await
            .map_err(classify)?;
        Ok(archived
            .threads
            .iter()
            .find(|t| ours(t))
            .map(|t| t.id.get()))
    }

    /// Where a message of the forum channel is edited: in the ticket's post,
    /// else in the post it started (whose id it has).
    pub(super) fn forum_edit_target(&self, p: &Post, mid: u64) -> ChannelId {
        p.ticket
            .as_ref()
            .and_then(|t| self.recall(&format!("thread:{t}")))
            .map_or(ChannelId::new(mid), ChannelId::new)
    }

    /// Edits a ticket's card, the starter message of its post, and sets the
    /// post's tag to the ticket's state.
    pub(super) async fn forum_card(&self, card: &Card) -> Result<(), DeliveryError> {
        let config = &self.bot.config();
        let t = &card.ticket;
        let (Some(thread), Some(mid)) = (
            self.recall(&format!("thread:{t}")),
            self.recall(&format!("card:{t}")),
        ) else {
            debug!(ticket = %t, "no forum post to update");
            return Ok(());
        };
        // The tag first, with `archived: false`: Discord archives a post
        // left idle (3 days), and refuses an edit in it until unarchived.
        let tag = self.tag_or_none(card.state).await?;
        let mut change = EditThread::new().archived(false);
        if let Some(tag) = tag {
            change = change.applied_tags([tag]);
        }
        self.fence()?;
        ChannelId::new(thread)
            .edit_thread(&self.http, change)
            .await
            .map_err(classify)?;
        let edit = EditMessage::new()
            .embed(card_embed(card, config))
            .components(card_components(card, config));
        self.fence()?;
        ChannelId::new(thread)
            .edit_message(&self.http, MessageId::new(mid), edit)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
