//! Ticket cards: embeds, colours, buttons, and the asks (modals, approvals).

use super::*;

pub fn priority_colour(p: Priority) -> u32 {
    match p {
        Priority::P1 => 0xE0_31_31,
        Priority::P2 => 0xF0_8C_00,
        Priority::P3 => 0xF1_C4_0F,
        Priority::P4 => 0x7F_8C_8D,
    }
}

pub(super) fn person(config: &Config, u: &UserName) -> String {
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
        e = e.description(cut(&escape(d), description_room(card)));
    }
    if card.due.is_some() || !card.missed.is_empty() {
        let mut due = card
            .due
            .filter(|_| card.state != TicketState::Closed)
            .map(|d| format!("<t:{}:R>", d.timestamp()))
            .unwrap_or_else(|| "—".into());
        if !card.missed.is_empty() {
            let missed: Vec<&str> = card.missed.iter().map(|d| d.as_str()).collect();
            due.push_str(&format!(" · missed: {}", missed.join(", ")));
        }
        e = e.field("Due", due, true);
    }
    if let Some(n) = card.alerts {
        e = e.field("Alerts", n.to_string(), true);
    }
    if let Some(n) = card.flaps {
        e = e.field("Flapping", format!("{n} changes"), true);
    }
    if card.customer {
        e = e.field("Customer", "waits for an answer by mail", true);
    }
    if let Ok(ts) = serenity::model::Timestamp::from_unix_timestamp(card.created_at.timestamp()) {
        e = e.timestamp(ts);
    }
    e = alert_fields(card, e);
    e
}

/// The buttons that fit a ticket's state (the engine still decides whether
/// the one who presses may), and a menu of teams to assign it to.
pub fn card_components(card: &Card, config: &Config) -> Vec<CreateActionRow> {
    let id = &card.ticket;
    let mut buttons = Vec::new();
    let mut assign = false;
    for kind in crate::engine::tickets::allowed_from(card.state) {
        use crate::engine::tickets::Kind;
        let (press, label, style) = match kind {
            Kind::Take => (Press::Take(id.clone()), "Take", ButtonStyle::Primary),
            Kind::Resolve => (Press::Resolve(id.clone()), "Resolve…", ButtonStyle::Success),
            Kind::Qa => (Press::Qa(id.clone()), "Send to QA", ButtonStyle::Secondary),
            Kind::Verify => (Press::Verify(id.clone()), "Verify", ButtonStyle::Success),
            Kind::Reject => (Press::Reject(id.clone()), "Reject…", ButtonStyle::Danger),
            Kind::Reopen => (Press::Reopen(id.clone()), "Reopen…", ButtonStyle::Secondary),
            Kind::Assign => {
                assign = true;
                continue;
            }
            Kind::Comment => continue,
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
    rows.extend(link_row(card));
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
pub(super) fn ask_components(ask: &Ask) -> Vec<CreateActionRow> {
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

// ---------------------------------------------------------------------------
// An alert's links, labels and annotations on its card (issue 15).

/// Discord's limits on an embed: a field's name and value, and all the
/// text of the embed together.
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_EMBED_TOTAL: usize = 6000;
/// What the card's own fields (state, priority, team, assignee, source,
/// age, due, alerts, customer: names and values) take at most.
const CARD_FIELDS_AT_MOST: usize = 800;

/// Annotations shown elsewhere on the card: the title is the summary, the
/// description holds the description.
const SHOWN_ELSEWHERE: [&str; 3] = ["summary", "title", "description"];

/// The alert's labels (`name=value`, a line each) and annotations
/// (`**name**: value`), each field cut to what Discord takes.
fn alert_field_values(card: &Card) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !card.labels.is_empty() {
        let lines: Vec<String> = card
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(&one_line(v, 200))))
            .collect();
        out.push(("Labels", cut(&lines.join("\n"), MAX_FIELD_VALUE)));
    }
    let shown: Vec<String> = card
        .annotations
        .iter()
        .filter(|(k, v)| !SHOWN_ELSEWHERE.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| format!("**{}**: {}", escape(k), escape(&one_line(v, 300))))
        .collect();
    if !shown.is_empty() {
        out.push(("Annotations", cut(&shown.join("\n"), MAX_FIELD_VALUE)));
    }
    out
}

/// Adds the alert's labels and annotations to its card's embed.
fn alert_fields(card: &Card, mut e: CreateEmbed) -> CreateEmbed {
    for (name, value) in alert_field_values(card) {
        e = e.field(name, value, false);
    }
    e
}

/// How long the description may be so that the whole embed stays within
/// [`MAX_EMBED_TOTAL`]: what the title, the card's fields and the alert's
/// fields leave.
fn description_room(card: &Card) -> usize {
    let alert: usize = alert_field_values(card)
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    MAX_EMBED_TOTAL
        .saturating_sub(MAX_EMBED_TITLE + CARD_FIELDS_AT_MOST + alert)
        .clamp(100, MAX_EMBED_DESCRIPTION)
}

/// The alert's links as link buttons (style 5: they open the URL, nothing
/// comes back to the bot). The engine kept only web URLs of at most 512
/// characters; one per kind, five at most: one row.
fn link_row(card: &Card) -> Option<CreateActionRow> {
    let buttons: Vec<CreateButton> = card
        .links
        .iter()
        .filter(|l| crate::domain::links::web_url(&l.url).is_some())
        .take(5)
        .map(|l| CreateButton::new_link(l.url.clone()).label(cut(&l.label, 80)))
        .collect();
    (!buttons.is_empty()).then_some(CreateActionRow::Buttons(buttons))
}
