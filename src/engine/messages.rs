//! The pure builders of what the bot posts (in the manner of bors'
//! `comment.rs`): each takes the state and returns the [`Rich`] text a person
//! reads.

use crate::domain::rich::{clip_plain, one_line, Rich};
use crate::domain::{Ticket, TicketId, TimelineEntry};

/// `OPS-3 · p2 · Title`: how a ticket is named in a one-line post.
pub fn ticket_head(t: &Ticket) -> Rich {
    Rich::new()
        .bold(t.id.to_string())
        .text(format!(" · {} · ", t.priority))
        .quoted(one_line(&t.title, 120))
}

/// A ticket in full, for `/ticket show`.
pub fn ticket_detail(
    t: &Ticket,
    timeline: &[TimelineEntry],
    max_entries: usize,
    show_customer: bool,
) -> Rich {
    let mut r = Rich::new()
        .bold(t.id.to_string())
        .text(" ")
        .quoted(one_line(&t.title, 200))
        .text(format!(
            "\nstate: {} · priority: {} · team: {} · assignee: {} · source: {} · opened by {} at {}",
            t.state,
            t.priority,
            t.team.as_ref().map_or("none", |x| x.as_str()),
            t.assignee.as_ref().map_or("none", |x| x.as_str()),
            t.source,
            t.opened_by,
            t.created_at.format("%Y-%m-%d %H:%M UTC"),
        ));
    if let Some(c) = t.customer.as_ref().filter(|_| show_customer) {
        r = r
            .text("\ncustomer: ")
            .quoted(format!("{} <{}>", c.id, c.email));
    }
    if let Some(d) = &t.description {
        r = r.text("\ndescription: ").quoted(clip_plain(d, 1000));
    }
    if let Some(n) = &t.resolution {
        r = r.text("\nresolution: ").quoted(clip_plain(n, 1000));
    }
    let skip = timeline.len().saturating_sub(max_entries);
    r = r.text(format!("\ntimeline ({} entries):", timeline.len()));
    if skip > 0 {
        r = r.text(format!(
            "\n  … {skip} earlier entries (see GET /api/v1/tickets/{})",
            t.id
        ));
    }
    for e in &timeline[skip..] {
        r = r.text(format!(
            "\n  {} {} ({}) {}: ",
            e.at.format("%Y-%m-%d %H:%M"),
            e.actor,
            e.source,
            e.kind.as_str()
        ));
        r = r.quoted(one_line(&e.text, 300));
    }
    r
}

/// One line per ticket, for `/ticket list`.
pub fn ticket_list(tickets: &[Ticket], total: usize, filter: &str) -> Rich {
    if tickets.is_empty() {
        return Rich::new().text(format!("No tickets {filter}."));
    }
    let noun = if total == 1 { "ticket" } else { "tickets" };
    let mut r = Rich::new().text(format!("{total} {noun} {filter}:"));
    for t in tickets {
        r = r
            .text("\n")
            .bold(t.id.to_string())
            .text(format!(
                " · {} · {} · {}{} · ",
                t.priority,
                t.state,
                t.team.as_ref().map_or("no team", |x| x.as_str()),
                t.assignee
                    .as_ref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ))
            .quoted(one_line(&t.title, 80));
    }
    if total > tickets.len() {
        r = r.text(format!(
            "\n… and {} more; narrow with state:, team: or mine:true",
            total - tickets.len()
        ));
    }
    r
}

/// `«a», «b», «c» and 7 more`: the alerts a gathered post names.
fn some_alerts(mut r: Rich, names: &[String], count: u64) -> Rich {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            r = r.text(", ");
        }
        r = r.quoted(one_line(n, 100));
    }
    let more = count.saturating_sub(names.len() as u64);
    if more > 0 {
        r = r.text(format!(" and {more} more"));
    }
    r
}

/// In a ticket's thread: alerts that joined its group in one batch.
pub fn alerts_joined(names: &[String], count: u64) -> Rich {
    match names {
        [one] if count == 1 => Rich::new()
            .text("Another alert joined this ticket: ")
            .quoted(one_line(one, 200)),
        _ => some_alerts(
            Rich::new().text(format!("+{count} alerts joined this ticket: ")),
            names,
            count,
        ),
    }
}

/// To the ticket's team: alerts of its group that fired again in one batch.
pub fn alerts_fired_again(t: &Ticket, names: &[String], count: u64) -> Rich {
    match names {
        [one] if count == 1 => ticket_head(t)
            .text(" — fired again: ")
            .quoted(one_line(one, 200)),
        _ => some_alerts(
            ticket_head(t).text(format!(" — {count} alerts fired again: ")),
            names,
            count,
        ),
    }
}

/// To the ticket's team: alerts of its group that recovered in one batch,
/// and how many still fire.
pub fn alerts_recovered(t: &Ticket, names: &[String], count: u64, still: u64) -> Rich {
    let r = match names {
        [one] if count == 1 => ticket_head(t)
            .text(" — recovered: ")
            .quoted(one_line(one, 200)),
        _ => some_alerts(
            ticket_head(t).text(format!(" — {count} alerts recovered: ")),
            names,
            count,
        ),
    };
    if still == 0 {
        r.text("; no alert of this ticket is firing")
    } else {
        r.text(format!("; {still} still firing"))
    }
}

/// Storm control: `updates` monitoring posts merged into one, with how many
/// of them each ticket had (in the order they came).
pub fn storm_summary(updates: usize, per_ticket: &[(TicketId, usize)]) -> Rich {
    let shown: Vec<String> = per_ticket
        .iter()
        .take(10)
        .map(|(id, n)| format!("{id} ({n})"))
        .collect();
    let mut text = format!(
        "Alert storm: {} alert updates for {} tickets: {}",
        updates,
        per_ticket.len(),
        shown.join(", ")
    );
    if per_ticket.len() > 10 {
        text.push_str(&format!(" and {} more", per_ticket.len() - 10));
    }
    text.push_str(". /ticket list shows them; /ticket show id:… tells each one's story.");
    Rich::new().text(text)
}
