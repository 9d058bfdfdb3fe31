//! The Discord adapter (serenity 0.12): slash commands registered from the
//! same declarations as the console, interactions turned into events and
//! answered at once, and an outbox sink that posts with a nonce (so a retry
//! never posts twice), allowed mentions limited to the people meant, text
//! escaped and cut to Discord's limits, progress messages edited in place
//! and each ticket's story in a thread under its card.

mod autocomplete;
mod cards;
mod forum;
mod handler;
pub mod invite;
mod names;
mod perms;
mod sink;
mod slash;
mod text;

pub use autocomplete::*;
pub use cards::*;
pub use handler::*;
pub use sink::*;
pub use slash::*;
pub use text::*;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The posts that say when something is due or ends, as Discord gets
    /// them: every moment a timestamp (`<t:…:f>`), and what is due or in
    /// force until then also relative (`<t:…:R>`); the console's words are
    /// the engine's snapshots.
    #[test]
    fn times_in_posts_reach_discord_as_timestamps() {
        use crate::engine::messages as m;
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
        let loaded = crate::config::Config::load(&file).expect("the shipped config loads");
        let at = |s: &str| -> crate::domain::Timestamp { s.parse().unwrap() };
        let user = |s: &str| UserName::parse(s).unwrap();
        let team = crate::domain::TeamName::parse("backend").unwrap();
        let silence: crate::domain::alert::Silence = serde_json::from_value(serde_json::json!({
            "id": 3, "matchers": ["alertname=DiskFull"], "until": "2026-03-02T16:05:00Z",
            "created_by": "olivia", "created_at": "2026-03-02T14:05:00Z",
        }))
        .unwrap();
        let window: crate::domain::maintenance::Window =
            serde_json::from_value(serde_json::json!({
                "id": 4, "matchers": ["service=web"], "from": "2026-03-02T14:00:00Z",
                "until": "2026-03-02T15:30:00Z", "origin": {"kind": "command", "by": "bob"},
                "team": "backend", "recorded": 0,
            }))
            .unwrap();
        let posts = [
            m::silence_set("olivia", &silence, std::time::Duration::from_secs(7200)),
            m::silence_set_reply(&silence),
            m::oncall_handoff(
                &team,
                &user("bella"),
                at("2026-03-09T08:00:00Z"),
                None,
                None,
            ),
            m::oncall_override_set(
                &team,
                &user("bella"),
                at("2026-03-03T08:00:00Z"),
                &user("bob"),
            ),
            m::maintenance_started(&window),
            m::maintenance_scheduled_reply(&window),
        ];
        let shown: Vec<String> = posts.iter().map(|p| render(p, &loaded.config).0).collect();
        insta::assert_snapshot!("times_on_discord", shown.join("\n---\n"));
    }

    #[test]
    fn untrusted_text_cannot_ping_or_format() {
        assert_eq!(
            escape("@everyone **hi** <@123>"),
            "@\u{200b}everyone \\*\\*hi\\*\\* \\<@\u{200b}123\\>"
        );
        // A job's output is a code block that a fence inside cannot close.
        let block = code_block("error: **boom** <@123>\n```\nrm -rf /\n```");
        assert!(
            block.starts_with("```\n") && block.ends_with("\n```"),
            "{block}"
        );
        assert_eq!(block.matches("```").count(), 2, "{block}");
        assert!(block.contains("**boom** <@123>"), "{block}");
        // A time is Discord's timestamp, shown in each reader's zone.
        let at = chrono::DateTime::from_timestamp(1_774_000_000, 0).unwrap();
        let rich = Rich::new().text("until ").time(&at, "%Y-%m-%d %H:%M UTC");
        assert_eq!(rich.to_plain(), "until 2026-03-20 09:46 UTC");
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
        let loaded = crate::config::Config::load(&file).expect("the shipped config loads");
        assert_eq!(render(&rich, &loaded.config).0, "until <t:1774000000:f>");
        // Something due or in force until then: also how far from now.
        let rich = Rich::new()
            .text("until ")
            .relative(&at, "%Y-%m-%d %H:%M UTC");
        assert_eq!(rich.to_plain(), "until 2026-03-20 09:46 UTC");
        assert_eq!(
            render(&rich, &loaded.config).0,
            "until <t:1774000000:f> (<t:1774000000:R>)"
        );
        let long = "x".repeat(3000);
        let c = cut(&long, MAX_CONTENT);
        assert_eq!(c.chars().count(), MAX_CONTENT);
        assert!(c.ends_with("(cut: too long for Discord)"));
    }
}
