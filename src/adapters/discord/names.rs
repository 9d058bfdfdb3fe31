//! Channels and people by name, so that `bot.toml` needs no copied ids:
//! once connected, each channel the config uses without an id in
//! `[discord.channels]` is looked up by its name among the guild's
//! channels, and each username in `[discord.users]` among the guild's
//! members (paged, 1000 at a time); a channel created or renamed later is
//! taken up as it happens; then the bot's permissions in each channel it
//! uses are checked (`perms.rs`). What is not found or missing is logged
//! and told to the
//! engine once per start (it tells `#ops`). An id written in `bot.toml`
//! always wins.

use serenity::all::{ChannelType, GuildChannel};

use super::*;

/// Channel kinds the bot can post in, or start posts in.
fn postable(kind: ChannelType) -> bool {
    matches!(
        kind,
        ChannelType::Text | ChannelType::News | ChannelType::Forum
    )
}

/// The channels the config uses that `[discord.channels]` gives no id.
fn wanted_channels(config: &Config) -> Vec<ChannelName> {
    config
        .channels_used()
        .into_iter()
        .filter(|c| !config.discord.channels.contains_key(c))
        .collect()
}

/// The guilds to look in: the configured ones, else those READY names.
pub(super) fn guilds(config: &Config, ready: &Ready) -> Vec<GuildId> {
    if config.discord.guild_ids.is_empty() {
        ready.guilds.iter().map(|g| g.id).collect()
    } else {
        config
            .discord
            .guild_ids
            .iter()
            .map(|g| GuildId::new(*g))
            .collect()
    }
}

/// Looks up the channels and people the config names by name; returns the
/// event that reports what is missing (`None`: all found).
pub(super) async fn find_by_name(
    http: &serenity::http::Http,
    config: &Config,
    guilds: &[GuildId],
    bot: UserId,
) -> Option<Event> {
    let found = &config.discord.found;
    let wanted = wanted_channels(config);
    let mut listed = std::collections::HashMap::new();
    for g in guilds {
        match g.channels(http).await {
            Ok(chans) => {
                for (id, c) in chans {
                    take_channel(config, &c);
                    listed.insert(id, (*g, c));
                }
            }
            Err(e) => warn!(guild = %g, error = %e, "cannot list the guild's channels"),
        }
    }
    let missing_channels: Vec<ChannelName> = wanted
        .into_iter()
        .filter(|c| found.channel_id(c).is_none())
        .collect();
    let mut members_refused = false;
    if !config.discord.usernames.is_empty() {
        'guilds: for g in guilds {
            let mut after: Option<UserId> = None;
            loop {
                let page = match g.members(http, Some(MEMBERS_PAGE), after).await {
                    Ok(p) => p,
                    Err(e) => {
                        members_refused = true;
                        warn!(guild = %g, error = %e, "cannot list the guild's members (is the Server Members Intent enabled for the application?)");
                        continue 'guilds;
                    }
                };
                for m in &page {
                    let username = m.user.name.to_ascii_lowercase();
                    for (person, wanted) in &config.discord.usernames {
                        if *wanted == username && found.set_user(person, m.user.id.get()) {
                            info!(person = %person, username = %wanted, "found on Discord by username");
                        }
                    }
                }
                match page.last() {
                    Some(m) if page.len() as u64 == MEMBERS_PAGE => after = Some(m.user.id),
                    _ => break,
                }
            }
        }
    }
    found.set_looked();
    let missing_users: Vec<(UserName, String)> = config
        .discord
        .usernames
        .iter()
        .filter(|(p, _)| found.user_id(p).is_none())
        .map(|(p, u)| (p.clone(), u.clone()))
        .collect();
    let missing_permissions = perms::missing(http, config, bot, &listed).await;
    if missing_channels.is_empty() && missing_users.is_empty() && missing_permissions.is_empty() {
        return None;
    }
    if !missing_channels.is_empty() {
        let names: Vec<String> = missing_channels.iter().map(|c| format!("#{c}")).collect();
        warn!(
            channels = %names.join(", "),
            "no channel of these exact names in the guild, and no id in [discord.channels]: posts there are refused"
        );
    }
    if !missing_users.is_empty() {
        let names: Vec<String> = missing_users
            .iter()
            .map(|(p, u)| format!("{p} ({u})"))
            .collect();
        warn!(people = %names.join(", "), "no guild member has these usernames from [discord.users]");
    }
    Some(Event::ChatSetup {
        missing_channels,
        missing_users,
        members_refused,
        missing_permissions,
    })
}

/// A guild channel seen (listed, created or renamed): noted if the config
/// uses its name and gives it no id; a channel noted before under another
/// name is forgotten under that one.
pub(super) fn take_channel(config: &Config, c: &GuildChannel) {
    let found = &config.discord.found;
    if let Some(old) = found.channel_name(c.id.get()) {
        if old.as_str() != c.name && found.set_channel(&old, None) {
            info!(channel = %old, now = %c.name, "a channel found by name was renamed");
        }
    }
    if !postable(c.kind) {
        return;
    }
    let Ok(name) = ChannelName::parse(&c.name) else {
        return;
    };
    if wanted_channels(config).contains(&name) && found.set_channel(&name, Some(c.id.get())) {
        info!(channel = %name, id = c.id.get(), "found the channel by name");
    }
}

/// How many members one page asks for (Discord's most).
pub const MEMBERS_PAGE: u64 = 1000;
