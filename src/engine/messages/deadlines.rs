//! The words of deadlines and escalation (`engine::sla` decides, these say
//! it): the posts for a missed deadline and for each step of a chain, and
//! the timeline entries that record them.

use chrono::Duration;

use super::ticket_head;
use crate::domain::policy::{clock, human, CLOCK};
use crate::domain::rich::Rich;
use crate::domain::{ChannelName, Priority, TeamName, Ticket, TicketId, Timestamp, UserName};

/// For a timeline entry of a step run late: when it was due and how late
/// (nothing within a minute).
pub fn late(due: Timestamp, now: Timestamp) -> String {
    if now - due > Duration::minutes(1) {
        format!(" (due {}, {} late)", clock(due), human(now - due))
    } else {
        String::new()
    }
}

/// [`late`] for a post: the deadline a moment every reader sees in their
/// own time zone.
fn late_rich(due: Timestamp, now: Timestamp) -> Rich {
    if now - due > Duration::minutes(1) {
        Rich::new()
            .text(" (due ")
            .time(&due, CLOCK)
            .text(format!(", {} late)", human(now - due)))
    } else {
        Rich::new()
    }
}

/// In the ticket's thread (and, as plain words, its timeline): nobody took
/// it in time; `chain` the escalation that starts.
pub fn ack_missed(waited: &str, due: Timestamp, now: Timestamp, chain: Option<&str>) -> Rich {
    Rich::new()
        .text(format!("deadline missed: not taken within {waited}"))
        .append(late_rich(due, now))
        .text(match chain {
            Some(c) => format!("; escalation {c} starts"),
            None => String::new(),
        })
}

/// The timeline's words for a ticket not resolved by `due`.
pub fn resolve_missed(due: Timestamp, now: Timestamp) -> Rich {
    Rich::new()
        .text("deadline missed: not resolved by ")
        .time(&due, CLOCK)
        .append(late_rich(due, now))
}

/// In the team's channel: the ticket was not resolved by `due`; its
/// assignee pinged.
pub fn resolve_missed_post(t: &Ticket, due: Timestamp, now: Timestamp) -> Rich {
    let mut body = ticket_head(t)
        .text(" — ")
        .append(resolve_missed(due, now))
        .text(".");
    if let Some(a) = &t.assignee {
        body = body.text(" ").mention(a);
    }
    body
}

/// The timeline's words when the chain left the config.
pub fn chain_stopped(chain: &str) -> String {
    format!("escalation {chain} stopped: the chain is no longer in bot.toml")
}

/// How every step's entry begins: `step` counted from 1, of `steps`.
pub fn step_head(chain: &str, step: usize, steps: usize) -> String {
    format!("escalation {chain} step {step}/{steps}")
}

/// The command that takes the ticket, as the posts tell it.
pub fn take_it(id: &TicketId) -> String {
    format!("Take it: /ticket take id:{id}")
}

/// A `wait` step's entry; `until` is `None` past the calendar's end.
pub fn waiting(head: &str, d: Duration, until: Option<Timestamp>) -> String {
    match until {
        Some(until) => format!("{head}: wait {} (until {})", human(d), clock(until)),
        None => format!("{head}: wait {} (past the calendar's end)", human(d)),
    }
}

/// A `remind` step's entry.
pub fn reminded(head: &str, late: &str) -> String {
    format!("{head}: reminded in the thread{late}")
}

/// In the team's channel: the on-call person pinged.
pub fn oncall_post(t: &Ticket, waited: &str, who: &UserName, team: &TeamName) -> Rich {
    ticket_head(t)
        .text(format!(" — not taken for {waited}. "))
        .mention(who)
        .text(format!(", you are on call for {team}. {}", take_it(&t.id)))
}

/// Why the on-call person is paged.
pub fn oncall_page_why(head: &str, team: &TeamName) -> String {
    format!("{head}: you are on call for {team}")
}

/// An `oncall` step's entry.
pub fn oncall_paged(head: &str, who: &UserName, team: &TeamName, late: &str) -> String {
    format!("{head}: paged {who} (on call for {team}){late}")
}

/// An `oncall` step's entry when the team has no rotation (`pinged` what
/// was done instead).
pub fn oncall_without_rotation(pinged: &str, team: &TeamName) -> String {
    format!("{pinged}; team {team} has no on-call rotation")
}

/// A `raise` step's entry at the highest priority already.
pub fn priority_stays(head: &str, before: Priority, late: &str) -> String {
    format!("{head}: priority stays {before} (the highest){late}")
}

/// A `raise` step's entry.
pub fn priority_raised_entry(head: &str, before: Priority, after: Priority, late: &str) -> String {
    format!("{head}: priority raised from {before} to {after}{late}")
}

/// In the team's channel: every member pinged.
pub fn team_post(t: &Ticket, waited: &str, members: &[UserName]) -> Rich {
    let mut body = ticket_head(t).text(format!(" — nobody has taken it for {waited}."));
    for m in members {
        body = body.text(" ").mention(m);
    }
    body.text(format!(" {}", take_it(&t.id)))
}

/// A `team` step's entry.
pub fn team_pinged(head: &str, team: &TeamName, channel: &ChannelName, late: &str) -> String {
    format!("{head}: pinged team {team} in #{channel}{late}")
}

/// In `#ops`: every operator pinged.
pub fn operators_post(t: &Ticket, waited: &str, operators: &[UserName]) -> Rich {
    let mut body = ticket_head(t).text(format!(
        " — nobody has taken it for {waited}; operators, route it or take it."
    ));
    for o in operators {
        body = body.text(" ").mention(o);
    }
    body
}

/// An `operators` step's entry.
pub fn operators_pinged(head: &str, operators: &[UserName], late: &str) -> String {
    let names: Vec<&str> = operators.iter().map(|o| o.as_str()).collect();
    format!("{head}: pinged the operators ({}){late}", names.join(", "))
}

#[cfg(test)]
mod tests {
    //! The words of deadlines and escalation, as snapshots (plain: what the
    //! console and the timeline show).

    use chrono::{TimeZone, Utc};

    use super::*;

    fn u(s: &str) -> UserName {
        UserName::parse(s).unwrap()
    }

    #[test]
    fn deadline_words() {
        let mut t = crate::engine::messages::tests::ticket();
        let due = Utc.with_ymd_and_hms(2026, 3, 2, 15, 5, 0).unwrap();
        let now_on_time = due + Duration::seconds(20);
        let now_late = due + Duration::minutes(95);
        let team = TeamName::parse("backend").unwrap();
        let channel = ChannelName::parse("backend").unwrap();
        let head = step_head("p2-page", 2, 4);
        let late_words = late(due, now_late);
        let mut lines = vec![
            ack_missed("1h", due, now_on_time, None).to_plain(),
            ack_missed("1h", due, now_late, Some("p2-page")).to_plain(),
            resolve_missed(due, now_on_time).to_plain(),
            resolve_missed_post(&t, due, now_late).to_plain(),
        ];
        t.assignee = Some(u("bella"));
        lines.extend([
            resolve_missed_post(&t, due, now_on_time).to_plain(),
            chain_stopped("p2-page"),
            waiting(&head, Duration::minutes(10), Some(due)),
            waiting(&head, Duration::minutes(10), None),
            reminded(&head, ""),
            reminded(&head, &late_words),
            oncall_post(&t, "1h", &u("bob"), &team).to_plain(),
            oncall_page_why(&head, &team),
            oncall_paged(&head, &u("bob"), &team, &late_words),
            oncall_without_rotation(&team_pinged(&head, &team, &channel, ""), &team),
            priority_stays(&head, Priority::P1, ""),
            priority_raised_entry(&head, Priority::P3, Priority::P2, &late_words),
            team_post(&t, "1h", &[u("bob"), u("bella")]).to_plain(),
            team_pinged(&head, &team, &channel, &late_words),
            operators_post(&t, "1h", &[u("olivia"), u("oscar")]).to_plain(),
            operators_pinged(&head, &[u("olivia"), u("oscar")], ""),
        ]);
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("opsbot__engine__messages__deadline_words", lines.join("\n---\n"));
        });
    }
}
