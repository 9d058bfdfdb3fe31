//! The permission check at start: the bot's permissions in every channel it
//! uses, computed as Discord computes them (the guild's @everyone role and
//! the bot's roles, Administrator meaning all, then the channel's
//! overwrites for @everyone, for the bot's roles together, and for the bot
//! itself), against what the features in the config need there.

use std::collections::HashMap;

use serenity::all::{GuildChannel, PermissionOverwriteType, Permissions, Role, RoleId};

use super::*;

/// The bot's permissions in `channel` of guild `guild`.
pub(super) fn in_channel(
    guild: GuildId,
    roles: &HashMap<RoleId, Role>,
    bot: UserId,
    bot_roles: &[RoleId],
    channel: &GuildChannel,
) -> Permissions {
    let of = |r: &RoleId| roles.get(r).map_or(Permissions::empty(), |r| r.permissions);
    let mut p = of(&RoleId::new(guild.get()));
    for r in bot_roles {
        p |= of(r);
    }
    if p.contains(Permissions::ADMINISTRATOR) {
        return Permissions::all();
    }
    let overwrites = &channel.permission_overwrites;
    for o in overwrites {
        if o.kind == PermissionOverwriteType::Role(RoleId::new(guild.get())) {
            p = (p & !o.deny) | o.allow;
        }
    }
    let (mut allow, mut deny) = (Permissions::empty(), Permissions::empty());
    for o in overwrites {
        if let PermissionOverwriteType::Role(r) = o.kind {
            if r.get() != guild.get() && bot_roles.contains(&r) {
                allow |= o.allow;
                deny |= o.deny;
            }
        }
    }
    p = (p & !deny) | allow;
    for o in overwrites {
        if o.kind == PermissionOverwriteType::Member(bot) {
            p = (p & !o.deny) | o.allow;
        }
    }
    p
}

/// What the bot needs in `channel`: to see it, post, embed and attach
/// everywhere; in the operations channel also threads (each ticket's story
/// goes in one); in a channel with message rules, its history.
pub(super) fn needed(config: &Config, channel: &ChannelName) -> Permissions {
    let mut p = Permissions::VIEW_CHANNEL
        | Permissions::SEND_MESSAGES
        | Permissions::EMBED_LINKS
        | Permissions::ATTACH_FILES;
    if channel == &config.tickets.channel {
        p |= Permissions::CREATE_PUBLIC_THREADS | Permissions::SEND_MESSAGES_IN_THREADS;
    }
    // A forum's tags are changed with Manage Channels.
    if channel == &config.tickets.channel
        && config.discord.tickets == crate::config::TicketsIn::Forum
    {
        p |= Permissions::MANAGE_CHANNELS;
    }
    if config
        .alerts
        .message_rules
        .iter()
        .any(|r| &r.channel == channel)
    {
        p |= Permissions::READ_MESSAGE_HISTORY;
    }
    p
}

/// A guild's roles, and the bot's among them.
type GuildRoles = (HashMap<RoleId, Role>, Vec<RoleId>);

/// Each channel the config uses, found in `listed`, where the bot lacks
/// something it needs: the channel and the names of what it lacks.
pub(super) async fn missing(
    http: &serenity::http::Http,
    config: &Config,
    bot: UserId,
    listed: &HashMap<ChannelId, (GuildId, GuildChannel)>,
) -> Vec<(ChannelName, Vec<String>)> {
    let mut guild_data: HashMap<GuildId, Option<GuildRoles>> = HashMap::new();
    let mut out = Vec::new();
    for name in config.channels_used() {
        let Some(id) = config.discord.channel_id(&name) else {
            continue;
        };
        let Some((guild, channel)) = listed.get(&ChannelId::new(id)) else {
            continue;
        };
        if !guild_data.contains_key(guild) {
            let roles = guild.roles(http).await;
            let member = guild.member(http, bot).await;
            let data = match (roles, member) {
                (Ok(r), Ok(m)) => Some((r, m.roles)),
                (Err(e), _) | (_, Err(e)) => {
                    warn!(guild = %guild, error = %e, "cannot read the guild's roles or the bot's member: permissions not checked");
                    None
                }
            };
            guild_data.insert(*guild, data);
        }
        let Some(Some((roles, bot_roles))) = guild_data.get(guild) else {
            continue;
        };
        let has = in_channel(*guild, roles, bot, bot_roles, channel);
        let lacks = needed(config, &name) - has;
        if !lacks.is_empty() {
            let names: Vec<String> = lacks
                .get_permission_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            warn!(channel = %name, lacks = %names.join(", "), "the bot lacks permissions it needs in a channel");
            out.push((name, names));
        }
    }
    out
}
