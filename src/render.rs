//! Rich text that adapters render, and the pure builders of every message the
//! bot posts (in the manner of bors' `comment.rs`).
//!
//! A message is a list of segments. Our own words are [`Seg::Text`] and
//! [`Seg::Bold`]; anything a user, an alert or a customer wrote is
//! [`Seg::Quoted`], which an adapter must escape (Discord) or may print as is
//! (console); a ping is [`Seg::Mention`], the only way a message names someone
//! it means to notify.

use serde::{Deserialize, Serialize};

use crate::domain::{Ticket, TimelineEntry, UserName};

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Seg {
    /// Our own words, plain.
    Text(String),
    /// Our own words, emphasised.
    Bold(String),
    /// Untrusted text (titles, notes, comments, alert and customer text).
    Quoted(String),
    /// A person the message means to notify.
    Mention(UserName),
}

/// A message body made of segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rich(pub Vec<Seg>);

impl Rich {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Text(s.into()));
        self
    }

    pub fn bold(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Bold(s.into()));
        self
    }

    pub fn quoted(mut self, s: impl Into<String>) -> Self {
        self.0.push(Seg::Quoted(s.into()));
        self
    }

    pub fn mention(mut self, who: &UserName) -> Self {
        self.0.push(Seg::Mention(who.clone()));
        self
    }

    pub fn append(mut self, other: Rich) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The people this message pings.
    pub fn mentions(&self) -> Vec<UserName> {
        let mut out: Vec<UserName> = Vec::new();
        for seg in &self.0 {
            if let Seg::Mention(u) = seg {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        out
    }

    /// As the console shows it: plain text, mentions as `@name`.
    pub fn to_plain(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Text(s) | Seg::Bold(s) | Seg::Quoted(s) => out.push_str(s),
                Seg::Mention(u) => {
                    out.push('@');
                    out.push_str(u.as_str());
                }
            }
        }
        out
    }
}

impl From<&str> for Rich {
    fn from(s: &str) -> Self {
        Rich::new().text(s)
    }
}

impl From<String> for Rich {
    fn from(s: String) -> Self {
        Rich::new().text(s)
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn clip_plain(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Untrusted text on one line: newlines and tabs become spaces, cut to `max`.
pub fn one_line(s: &str, max: usize) -> String {
    let mut flat = String::with_capacity(s.len());
    let mut in_break = false;
    for c in s.chars() {
        if c.is_control() {
            if !in_break {
                flat.push(' ');
            }
            in_break = true;
        } else {
            flat.push(c);
            in_break = false;
        }
    }
    clip_plain(flat.trim(), max)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rendering_and_mentions() {
        let bob = UserName::parse("bob").unwrap();
        let r = Rich::new()
            .text("to ")
            .mention(&bob)
            .text(": ")
            .quoted("@everyone look")
            .mention(&bob);
        assert_eq!(r.to_plain(), "to @bob: @everyone look@bob");
        assert_eq!(r.mentions(), vec![bob]);
    }

    #[test]
    fn clipping_marks_the_cut() {
        assert_eq!(clip_plain("abcdef", 4), "abc…");
        assert_eq!(clip_plain("abc", 4), "abc");
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("a\r\nBcc: x", 20), "a Bcc: x");
    }
}
