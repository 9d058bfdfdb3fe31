//! Autocomplete: suggestions for partly typed option values.

use super::*;

/// The option a partly typed value is for: its kind, from the declarations.
pub(super) fn focused_kind(
    config: &Config,
    data: &serenity::all::CommandData,
    name: &str,
) -> Option<OptKind> {
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
pub(super) fn typed(data: &serenity::all::CommandData, name: &str) -> Option<String> {
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
    let config = &bot.config();
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
            .and_then(|s| s.snapshot(|v| v.suggest_tickets(&p, MAX_CHOICES)).ok())
            .and_then(Result::ok)
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
                .map(|c| c.shown_name())
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
