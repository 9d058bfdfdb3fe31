//! `opsbot invite`: the OAuth2 URL that adds the bot to a server with the
//! scopes and the permissions the features in the config need, no more.

use base64::Engine as _;
use serenity::model::Permissions;

use crate::config::Config;

/// What the features in `config` need the bot to be allowed in its
/// channels, each with why.
pub fn permissions(config: &Config) -> Vec<(Permissions, &'static str)> {
    let mut p = vec![
        (Permissions::VIEW_CHANNEL, "see the channels it posts in"),
        (
            Permissions::SEND_MESSAGES,
            "post tickets, alerts, builds and deploys",
        ),
        (Permissions::EMBED_LINKS, "show ticket cards (embeds)"),
        (
            Permissions::ATTACH_FILES,
            "attach report charts and job output",
        ),
        (
            Permissions::CREATE_PUBLIC_THREADS,
            "open each ticket's thread under its card",
        ),
        (
            Permissions::SEND_MESSAGES_IN_THREADS,
            "post a ticket's story in its thread",
        ),
    ];
    if !config.alerts.message_rules.is_empty() {
        p.push((
            Permissions::READ_MESSAGE_HISTORY,
            "read the messages its message rules watch",
        ));
    }
    if config.discord.tickets == crate::config::TicketsIn::Forum {
        p.push((
            Permissions::MANAGE_CHANNELS,
            "add the ticket states' tags to the forum channel (tickets = \"forum\")",
        ));
    }
    p
}

/// The bot's application id from its token (the token's first part is the
/// bot user's id, which is the application's), if it reads as one.
pub fn client_id_from_token(token: &str) -> Option<u64> {
    let first = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(first.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(first))
        .ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

/// The invite URL for application `client_id`; with one guild in the
/// config, that guild is chosen already.
pub fn url(config: &Config, client_id: u64) -> String {
    let bits = permissions(config)
        .iter()
        .fold(Permissions::empty(), |all, (p, _)| all | *p)
        .bits();
    let mut url = format!(
        "https://discord.com/oauth2/authorize?client_id={client_id}&scope=bot+applications.commands&permissions={bits}"
    );
    if let [guild] = config.discord.guild_ids.as_slice() {
        url.push_str(&format!("&guild_id={guild}&disable_guild_select=true"));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_is_read_from_the_tokens_first_part() {
        // "123456789012345678" in base64, as Discord writes it.
        assert_eq!(
            client_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.xyz"),
            Some(123456789012345678)
        );
        assert_eq!(client_id_from_token("not a token"), None);
        assert_eq!(client_id_from_token(""), None);
    }
}
