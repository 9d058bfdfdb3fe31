//! Maintenance windows and silences, as posts and answers (split out of
//! `messages.rs`, which re-exports them).

use super::*;

/// Where a window comes from, in a few words.
fn window_origin(w: &crate::domain::maintenance::Window) -> String {
    use crate::domain::maintenance::Origin;
    match &w.origin {
        Origin::Command { by } => format!("by {by}"),
        Origin::Config { name } => format!("[[maintenance]] {name} of bot.toml"),
        Origin::Deploy { run } => format!("for deploy {run}"),
    }
}

fn window_every(w: &crate::domain::maintenance::Window) -> String {
    match &w.recur {
        Some(r) => format!(", {} ({} local time)", r.every, r.tz),
        None => String::new(),
    }
}

/// In the team's channel: a maintenance window began.
pub fn maintenance_started(w: &crate::domain::maintenance::Window) -> Rich {
    let body = Rich::new()
        .bold(format!("Maintenance window {}", w.id))
        .text(format!(" ({}) is in force until ", window_origin(w)))
        .relative(&w.until, CLOCK)
        .text(": alerts matching ")
        .quoted(w.matchers_text())
        .text(" are recorded, but open no ticket, page nobody and post nothing.");
    match &w.comment {
        Some(c) => body.text(" — ").quoted(one_line(c, 200)),
        None => body,
    }
}

/// In the team's channel: a maintenance window ended (by someone, or as
/// its time was up).
pub fn maintenance_ended(w: &crate::domain::maintenance::Window, by: Option<&str>) -> Rich {
    let how = match by {
        Some(who) => format!(" was ended by {who}"),
        None => " ended".to_string(),
    };
    let held = w.held.len();
    let after = match held {
        0 => String::new(),
        1 => "; 1 alert still firing is handled now as a new alert".to_string(),
        n => format!("; {n} alerts still firing are handled now as new alerts"),
    };
    Rich::new()
        .bold(format!("Maintenance window {}", w.id))
        .text(" (")
        .quoted(w.matchers_text())
        .text(format!(
            "){how}: {} alert{} recorded during it{after}.",
            w.recorded,
            if w.recorded == 1 { "" } else { "s" }
        ))
}

/// The answer to whoever started a window.
pub fn maintenance_started_reply(w: &crate::domain::maintenance::Window) -> Rich {
    let id = w.id;
    Rich::new()
        .text(format!("Maintenance window {id} is in force until "))
        .relative(&w.until, CLOCK)
        .text(format!("; /maintenance end id:{id} ends it sooner."))
}

/// The answer to whoever scheduled a window.
pub fn maintenance_scheduled_reply(w: &crate::domain::maintenance::Window) -> Rich {
    let id = w.id;
    Rich::new()
        .text(format!("Maintenance window {id} for "))
        .quoted(w.matchers_text())
        .text(" is scheduled from ")
        .relative(&w.from, CLOCK)
        .text(" until ")
        .time(&w.until, CLOCK)
        .text(format!(
            "{}; /maintenance list shows it, /maintenance end id:{id} cancels it.",
            window_every(w)
        ))
}

/// The answer to whoever ended a window.
pub fn maintenance_ended_reply(w: &crate::domain::maintenance::Window) -> Rich {
    Rich::new().text(format!(
        "Maintenance window {} ended ({} alert{} recorded during it).",
        w.id,
        w.recorded,
        if w.recorded == 1 { "" } else { "s" }
    ))
}

/// On an existing ticket's timeline: an alert a window took in.
pub fn maintenance_note(
    id: u64,
    status: crate::domain::alert::AlertStatus,
    summary: &str,
) -> String {
    let what = match status {
        crate::domain::alert::AlertStatus::Firing => "fired",
        crate::domain::alert::AlertStatus::Resolved => "recovered",
    };
    format!("during maintenance window {id} (recorded, no post): {what}: {summary}")
}

/// `/maintenance list`.
pub fn maintenance_list(
    windows: &[&crate::domain::maintenance::Window],
    waiting: &[&crate::domain::maintenance::Scheduled],
    now: Timestamp,
) -> Rich {
    if windows.is_empty() && waiting.is_empty() {
        return Rich::new().text("No maintenance windows in force or to come.");
    }
    let mut r = Rich::new().text("Maintenance windows:");
    for w in windows {
        r = r.text(format!("\n  {} · ", w.id));
        r = if w.covers(now) {
            r.text("in force until ").relative(&w.until, CLOCK)
        } else {
            r.text("from ")
                .relative(&w.from, CLOCK)
                .text(" until ")
                .time(&w.until, CLOCK)
        };
        r = r
            .text(format!("{} · {} · ", window_every(w), window_origin(w)))
            .quoted(w.matchers_text())
            .text(format!(
                " · {} alert{} recorded, {} still firing",
                w.recorded,
                if w.recorded == 1 { "" } else { "s" },
                w.held.len()
            ));
        if let Some(c) = &w.comment {
            r = r.text(" — ").quoted(one_line(c, 100));
        }
    }
    for s in waiting {
        let day = s.weekday.map(|d| format!(" on {d}")).unwrap_or_default();
        r = r
            .text(format!(
                "\n  {} · {}{day} at {} for {} ({}) · [[maintenance]] of bot.toml · ",
                s.name,
                s.every,
                s.start.format("%H:%M"),
                humantime::format_duration(s.length),
                s.tz
            ))
            .quoted(
                s.matchers
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
    }
    r
}

// Silences in Alertmanager (issue 15).

/// The answer to whoever set a silence, when Alertmanager keeps silences too.
pub fn silence_set_reply_alertmanager(s: &Silence) -> Rich {
    let id = s.id;
    Rich::new()
        .text(format!("Silence {id} is on until "))
        .relative(&s.until, CLOCK)
        .text(format!(
            ", and is being made in Alertmanager (amtool silence query shows it); /alert unsilence id:{id} ends it in both."
        ))
}

/// `/alert silences` with Alertmanager's own silences: the bot's (each with
/// its id in Alertmanager once made there), then the ones made in
/// Alertmanager.
pub fn silences_list_alertmanager(
    ours: &[&Silence],
    theirs: &[&crate::domain::silences::AmSilence],
) -> Rich {
    let mut r = if ours.is_empty() {
        Rich::new().text("No silences of the bot in force.")
    } else {
        let mut r = Rich::new().text(format!("{} in force:", plural(ours.len(), "silence")));
        for s in ours {
            r = r
                .text(format!("\n  {} · until ", s.id))
                .relative(&s.until, CLOCK)
                .text(format!(" · by {} · ", s.created_by))
                .quoted(matchers_text(s));
            r = match &s.am_id {
                Some(am) => r.text(" · in Alertmanager as ").quoted(clip_plain(am, 36)),
                None => r.text(" · not yet in Alertmanager"),
            };
        }
        r
    };
    if theirs.is_empty() {
        return r;
    }
    r = r.text(format!(
        "\n{} made in Alertmanager (amtool silence expire ID ends one there):",
        plural(theirs.len(), "silence")
    ));
    for s in theirs {
        let matchers: Vec<String> = s.matchers.iter().map(|m| m.to_string()).collect();
        r = r
            .text("\n  ")
            .quoted(clip_plain(&s.id, 36))
            .text(" · until ")
            .relative(&s.ends_at, CLOCK)
            .text(" · by ")
            .quoted(one_line(&s.created_by, 60))
            .text(" · ")
            .quoted(one_line(&matchers.join(" "), 300));
        if !s.comment.trim().is_empty() {
            r = r.text(" — ").quoted(one_line(&s.comment, 200));
        }
    }
    r
}
