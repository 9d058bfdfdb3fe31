//! The pure builders of what the bot posts (in the manner of bors'
//! `comment.rs`): each takes the state and returns the [`Rich`] text a person
//! reads.

use crate::domain::alert::Silence;
use crate::domain::policy::CLOCK;
use crate::domain::rich::{clip_plain, one_line, Rich};
use crate::domain::run::{Run, RunId, RunState};
use crate::domain::{ChannelName, Source, TeamName, Ticket, TicketId, TimelineEntry, UserName};
use crate::domain::{Priority, Timestamp};
use crate::engine::tickets::Action;

pub mod answers;
mod commits;
pub mod deadlines;
mod maintenance;
pub use commits::*;
pub use maintenance::*;
pub mod oncall;
pub mod public;
pub use public::*;

/// `OPS-3 · p2 · Title`: how a ticket is named in a one-line post.
pub fn ticket_head(t: &Ticket) -> Rich {
    Rich::new()
        .bold(t.id.to_string())
        .text(format!(" · {} · ", t.priority))
        .quoted(one_line(&t.title, 120))
}

/// A ticket in full, for `/ticket show`: `tail` holds the newest entries
/// of a timeline of `total`.
pub fn ticket_detail(
    t: &Ticket,
    tail: &[TimelineEntry],
    total: usize,
    show_customer: bool,
) -> Rich {
    let mut r = Rich::new()
        .bold(t.id.to_string())
        .text(" ")
        .quoted(one_line(&t.title, 200))
        .text(format!(
            "\nstate: {} · priority: {} · team: {} · assignee: {} · source: {} · opened by {} at ",
            t.state,
            t.priority,
            t.team.as_ref().map_or("none", |x| x.as_str()),
            t.assignee.as_ref().map_or("none", |x| x.as_str()),
            t.source,
            t.opened_by,
        ))
        .time(&t.created_at, "%Y-%m-%d %H:%M UTC");
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
    let skip = total.saturating_sub(tail.len());
    r = r.text(format!("\ntimeline ({total} entries):"));
    if skip > 0 {
        r = r.text(format!(
            "\n  … {skip} earlier entries (see GET /api/v1/tickets/{})",
            t.id
        ));
    }
    for e in tail {
        r = r.text("\n  ").time(&e.at, "%Y-%m-%d %H:%M").text(format!(
            " {} ({}) {}: ",
            e.actor,
            e.source,
            e.kind.as_str()
        ));
        r = r.quoted(one_line(&e.text, 300));
    }
    r
}

/// `/whoami`: who the bot thinks the person is (their name, teams, roles,
/// grants from chat roles) and what they may run; for someone the config
/// does not name, what an operator adds to `bot.toml`.
pub fn whoami(actor: &crate::domain::Actor, org: &crate::domain::org::Org, may: &[String]) -> Rich {
    let name = &actor.name;
    let teams: Vec<String> = org
        .teams_of(name)
        .map(|t| {
            if t.lead.as_ref() == Some(name) {
                format!("{} (lead)", t.name)
            } else {
                t.name.to_string()
            }
        })
        .chain(
            actor
                .grants
                .teams
                .iter()
                .filter(|t| !org.is_member(name, t))
                .map(|t| format!("{t} (from a chat role)")),
        )
        .collect();
    let mut roles: Vec<&str> = Vec::new();
    if org.is_operator(name) {
        roles.push("operator");
    } else if actor.grants.operator {
        roles.push("operator (from a chat role)");
    }
    if org.is_release_manager(name) {
        roles.push("release manager");
    } else if actor.grants.release_manager {
        roles.push("release manager (from a chat role)");
    }
    if org.is_qa(name) {
        roles.push("QA");
    }
    let known = org.people().contains(name) || !teams.is_empty() || !roles.is_empty();
    let mut text = format!("You are {name}, on {}.", actor.source);
    if known {
        text.push_str(&format!(
            "
Teams: {}.",
            if teams.is_empty() {
                "none".to_string()
            } else {
                teams.join(", ")
            }
        ));
        text.push_str(&format!(
            "
Roles: {}.",
            if roles.is_empty() {
                "member".to_string()
            } else {
                roles.join(", ")
            }
        ));
    } else {
        let discord_id = name.as_str().strip_prefix("discord-");
        text.push_str(
            "
bot.toml does not name you, so you may run only what anyone may.",
        );
        match discord_id {
            Some(id) => text.push_str(&format!(
                "
An operator adds you: under [discord.users] a line `yourname = \"{id}\"`, and `yourname` in a team's `members` (or in [roles]); or maps one of your Discord roles in [discord.roles]."
            )),
            None => text.push_str(&format!(
                "
An operator adds `{name}` to a team's `members` in bot.toml (or to [roles])."
            )),
        }
    }
    text.push_str(&format!(
        "
You may run: {}.",
        may.iter()
            .map(|c| format!("/{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Rich::new().text(text)
}

/// `1,234`: a count as people read it.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One page of `/ticket list`, newest first: `page` (from 1) of `per_page`
/// tickets, out of `total`; `next` is the command for the next page.
pub fn ticket_list(
    tickets: &[Ticket],
    total: u64,
    filter: &str,
    page: u64,
    per_page: usize,
    next: Option<&str>,
) -> Rich {
    if tickets.is_empty() {
        return Rich::new().text(format!("No tickets {filter}."));
    }
    let per = (per_page as u64).max(1);
    let pages = total.div_ceil(per).max(1);
    let mut r = if pages == 1 {
        let noun = if total == 1 { "ticket" } else { "tickets" };
        Rich::new().text(format!("{total} {noun} {filter}, newest first:"))
    } else {
        let first = page.saturating_sub(1).saturating_mul(per).saturating_add(1);
        let last = first.saturating_add(tickets.len() as u64 - 1);
        Rich::new().text(format!(
            "Tickets {filter}: {}–{} of {}, page {} of {}, newest first:",
            thousands(first),
            thousands(last),
            thousands(total),
            thousands(page),
            thousands(pages)
        ))
    };
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
    if let Some(next) = next {
        r = r.text(format!("\nNext page: {next}"));
    }
    r
}

/// A page asked for past the last one of a list.
pub fn list_past_end(page: u64, total: u64, filter: &str, per_page: usize) -> String {
    let pages = total.div_ceil((per_page as u64).max(1));
    match total {
        0 => format!(
            "there is no page {}: there are no tickets {filter}",
            thousands(page)
        ),
        _ => format!(
            "there is no page {}: {} {} {filter} make {} {} of {per_page}; ask for page 1 to {}",
            thousands(page),
            thousands(total),
            if total == 1 { "ticket" } else { "tickets" },
            thousands(pages),
            if pages == 1 { "page" } else { "pages" },
            thousands(pages)
        ),
    }
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

/// In the operations channel: a new ticket (`headline` says what kind).
pub fn ticket_opened(headline: &str, t: &Ticket, by: &UserName, source: Source) -> Rich {
    Rich::new()
        .text(headline)
        .append(ticket_head(t))
        .text(format!(" — opened by {by} ({source})"))
}

/// To the team's channel: the ticket is the team's now; its lead (if it
/// has one) picks someone.
pub fn ticket_assigned_team(
    t: &Ticket,
    team: &TeamName,
    who: &str,
    lead: Option<&UserName>,
) -> Rich {
    let id = &t.id;
    let body = ticket_head(t).text(format!(" — assigned to team {team} by {who}."));
    match lead {
        Some(lead) => body
            .text(" ")
            .mention(lead)
            .text(", pick someone with ")
            .text(format!("/ticket assign id:{id} user:…"))
            .text(format!(", or take it: /ticket take id:{id}")),
        None => body.text(format!(" Take it: /ticket take id:{id}")),
    }
}

/// To the team's channel: the ticket is one member's now.
pub fn ticket_assigned_user(t: &Ticket, team: &TeamName, user: &UserName, who: &str) -> Rich {
    ticket_head(t)
        .text(" — assigned to ")
        .mention(user)
        .text(format!(
            " (team {team}) by {who}. Take it: /ticket take id:{}",
            t.id
        ))
}

/// In the operations channel: the fix is done; the operators (`notify`)
/// verify it.
pub fn ticket_resolved(t: &Ticket, who: &str, note: &str, notify: &[UserName]) -> Rich {
    let id = &t.id;
    let mut body = ticket_head(t)
        .text(format!(" — resolved by {who}: "))
        .quoted(one_line(note, 300))
        .text(format!(
            ". Operators, verify it (/ticket verify id:{id}), send it to QA (/ticket qa id:{id}) or reject it (/ticket reject id:{id} reason:…)."
        ));
    for o in notify {
        body = body.text(" ").mention(o);
    }
    body
}

/// In the operations and the team's channel: verified, and closed.
pub fn ticket_verified(t: &Ticket, who: &str) -> Rich {
    ticket_head(t).text(format!(" — verified by {who} and closed."))
}

/// A run's progress message, as it stands.
pub fn run_progress(run: &Run) -> Rich {
    let mut body = Rich::new()
        .bold(run.id.to_string())
        .text(format!(" · {} ", run.job))
        .quoted(run.params_text())
        .text(format!(" · {}", run.state));
    match run.state {
        RunState::Running => {
            if let Some(at) = run.started_at {
                body = body.text(" since ").relative(&at, "%H:%M:%S UTC");
            }
            if let Some(r) = &run.backend_ref {
                body = body.text(format!(" ({r})"));
            }
        }
        s if s.is_final() => {
            if let Some(d) = run.duration_secs() {
                body = body.text(format!(" in {d:.1} s"));
            }
            if let Some(last) = run.timeline.last() {
                body = body.text(" — ").quoted(clip_plain(&last.text, 200));
            }
        }
        _ => {
            if let Some(last) = run.timeline.last().filter(|_| run.timeline.len() > 1) {
                body = body.text(" — ").quoted(clip_plain(&last.text, 200));
            }
        }
    }
    body = body.text(format!(" · requested by {}", run.requester));
    match run.deploy.as_ref().and_then(|d| d.maintenance.as_ref()) {
        Some(w) if !run.state.is_final() => body
            .text(format!(" · maintenance window {} until ", w.id))
            .relative(&w.until, "%H:%M UTC")
            .text(": alerts matching ")
            .quoted(w.matchers.clone())
            .text(" are recorded, no tickets"),
        _ => body,
    }
}

/// To the deploy's channels: a deploy to a protected environment waits for
/// one of `approvers` (the people among them named in `notify`).
pub fn deploy_needs_approval(
    id: RunId,
    what: &str,
    by: &UserName,
    approvers: &str,
    notify: &[UserName],
    notes: Option<&str>,
) -> Rich {
    let mut body = Rich::new()
        .bold(id.to_string())
        .text(format!(
            " · {what} by {by} needs an approval from {approvers}: "
        ))
        .text(format!("/approve run:{id} or /deny run:{id} reason:…"));
    for p in notify {
        body = body.text(" ").mention(p);
    }
    if let Some(n) = notes {
        body = body.text(". Notes: ").quoted(one_line(n, 300));
    }
    body
}

/// In the operations channel: the weekly report, over its figures.
pub fn weekly_report(figures: &Rich) -> Rich {
    Rich::new().text("Weekly report. ").append(figures.clone())
}

/// To the operations channel: a channel refuses the bot's posts.
pub fn channel_refused(channel: &ChannelName, why: &str) -> Rich {
    Rich::new()
        .text("I cannot post in #")
        .quoted(channel.as_str())
        .text(": ")
        .quoted(why)
        .text(
            ". Give me access to that channel (View Channel, Send Messages, Create Public \
             Threads) or fix its id in [discord.channels]. Its posts are kept on record; \
             `opsbot export` shows them.",
        )
}

/// The first line of a new ticket's thread: who opened it, and what they
/// wrote.
pub fn ticket_opened_story(by: &UserName, title: &str, description: Option<&str>) -> Rich {
    let story = Rich::new()
        .text(format!("{by} opened this ticket: "))
        .quoted(one_line(title, 256));
    match description {
        Some(d) => story.text("\n").quoted(clip_plain(d, 1500)),
        None => story,
    }
}

/// The answer to whoever opened a ticket.
pub fn ticket_opened_reply(id: &TicketId, team: Option<&TeamName>, ops: &ChannelName) -> Rich {
    Rich::new()
        .text("Opened ")
        .bold(id.to_string())
        .text(match team {
            Some(team) => format!(" for team {team}."),
            None => format!(" in #{ops}."),
        })
}

/// The answer to whoever started a run.
pub fn run_started_reply(id: RunId, job: &str, params: &str) -> Rich {
    Rich::new()
        .text("Started ")
        .bold(id.to_string())
        .text(format!(": {job} "))
        .quoted(params.to_string())
        .text(format!(". Cancel it with /build cancel run:{id}"))
}

/// A failed run's last lines of output, in the channel it was asked in.
pub fn run_failed_output(id: RunId, job: &str, reason: &str, last_lines: &str) -> Rich {
    Rich::new()
        .text(format!(
            "{id} {job} failed ({reason}). The output ends with:\n"
        ))
        .code(clip_plain(last_lines, 1500))
}

/// In the thread of the ticket a job's failure opened: it failed again.
pub fn run_failed_again(id: RunId) -> Rich {
    Rich::new().text(format!("{id} failed again."))
}

/// In the thread of the ticket a job's failure opened: it passed.
pub fn run_passed_fixed(id: RunId) -> Rich {
    Rich::new().text(format!("{id} passed: fixed."))
}

/// `/runs`: the newest runs, one a line.
pub fn runs_list(runs: &[Run]) -> Rich {
    let mut r = Rich::new().text("Recent runs:");
    for run in runs {
        r = r
            .text("\n  ")
            .bold(run.id.to_string())
            .text(format!(" · {} · {} · ", run.job, run.state))
            .quoted(run.params_text())
            .text(format!(" · by {}", run.requester));
        if let Some(d) = run.duration_secs() {
            r = r.text(format!(" · {d:.1} s"));
        }
    }
    r
}

/// In a ticket's thread: what an operator mailed its customer.
pub fn customer_comment_story(who: &UserName, text: &str) -> Rich {
    Rich::new()
        .text(format!("{who} wrote to the customer: "))
        .quoted(clip_plain(text, 1500))
}

/// The answer to whoever wrote to a ticket's customer.
pub fn customer_comment_reply(id: &TicketId) -> Rich {
    Rich::new().text(format!("Comment added to {id} and mailed to the customer."))
}

/// The matchers of a silence, as typed.
fn matchers_text(s: &Silence) -> String {
    s.matchers
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// In the operations channel: someone silenced alerts.
pub fn silence_set(who: &str, s: &Silence, duration: std::time::Duration) -> Rich {
    let body = Rich::new()
        .text(format!("{who} silenced alerts matching "))
        .quoted(matchers_text(s))
        .text(format!(
            " for {} (until ",
            humantime::format_duration(duration)
        ))
        .relative(&s.until, "%Y-%m-%d %H:%M UTC")
        .text(format!("): silence {}", s.id));
    match &s.comment {
        Some(c) => body.text(" — ").quoted(one_line(c, 200)),
        None => body,
    }
}

/// The answer to whoever set a silence.
pub fn silence_set_reply(s: &Silence) -> Rich {
    let id = s.id;
    Rich::new()
        .text(format!("Silence {id} is on until "))
        .relative(&s.until, "%Y-%m-%d %H:%M UTC")
        .text(format!("; /alert unsilence id:{id} ends it."))
}

/// In the operations channel: someone ended a silence.
pub fn silence_ended(who: &str, s: &Silence) -> Rich {
    Rich::new()
        .text(format!("{who} ended silence {} (", s.id))
        .quoted(matchers_text(s))
        .text(").")
}

/// The answer to whoever ended a silence.
pub fn silence_ended_reply(id: u64) -> Rich {
    Rich::new().text(format!("Silence {id} ended."))
}

/// `/alert silences`, when some are in force.
pub fn silences_list(active: &[&Silence]) -> Rich {
    let noun = if active.len() == 1 {
        "silence"
    } else {
        "silences"
    };
    let mut r = Rich::new().text(format!("{} {noun} in force:", active.len()));
    for s in active {
        r = r
            .text(format!("\n  {} · until ", s.id))
            .relative(&s.until, "%Y-%m-%d %H:%M UTC")
            .text(format!(" · by {} · ", s.created_by))
            .quoted(matchers_text(s));
    }
    r
}

/// In a team's channel: someone stands in on call.
pub fn oncall_override_set(
    team: &TeamName,
    user: &UserName,
    until: Timestamp,
    by: &UserName,
) -> Rich {
    Rich::new()
        .text(format!("On call for {team} now: "))
        .mention(user)
        .text(" until ")
        .relative(&until, CLOCK)
        .text(format!(" (override set by {by})."))
}

/// In a ticket's thread: an escalation's reminder that nobody took it.
pub fn deadline_reminder(
    id: &TicketId,
    waited: &str,
    take: &str,
    assignee: Option<&UserName>,
) -> Rich {
    let body = Rich::new().text(format!(
        "Reminder: nobody has taken {id} for {waited}. {take}"
    ));
    match assignee {
        Some(a) => body.text(" ").mention(a),
        None => body,
    }
}

/// In a ticket's thread: an escalation raised its priority.
pub fn priority_raised(before: Priority, after: Priority, waited: &str) -> Rich {
    Rich::new().text(format!(
        "Priority raised from {before} to {after}: nobody has taken it for {waited}."
    ))
}

/// In a team's channel: who is on call from this handoff, until when,
/// for whom they stand in, and who is next.
pub fn oncall_handoff(
    team: &TeamName,
    who: &UserName,
    until: Timestamp,
    standing_in_for: Option<&UserName>,
    next: Option<&UserName>,
) -> Rich {
    let mut body = Rich::new()
        .text(format!("On call for {team} now: "))
        .mention(who)
        .text(" until ")
        .relative(&until, CLOCK);
    if let Some(u) = standing_in_for {
        body = body.text(format!(" (standing in for {u})"));
    }
    if let Some(next) = next {
        body = body.text(format!("; next: {next}."));
    }
    body
}

/// A ticket command as a person types it.
fn ticket_cmd(id: &TicketId, c: &str) -> String {
    format!("/ticket {c} id:{id}")
}

/// The word for a move that sends a ticket back.
fn back_verb(reopened: bool) -> &'static str {
    if reopened {
        "reopened"
    } else {
        "rejected"
    }
}

/// The post in QA's channel for a ticket sent to QA.
pub fn ticket_sent_to_qa(t: &Ticket, who: &str) -> Rich {
    ticket_head(t)
        .text(format!(" — sent to QA by {who}. Fix: "))
        .quoted(one_line(t.resolution.as_deref().unwrap_or(""), 300))
        .text(format!(
            ". Test it, then {} or {} reason:…",
            ticket_cmd(&t.id, "verify"),
            ticket_cmd(&t.id, "reject")
        ))
}

/// The post for a ticket rejected or reopened (`reopened`): who it went
/// back to, and how they take it again.
pub fn ticket_sent_back(t: &Ticket, who: &str, reopened: bool, reason: &str) -> Rich {
    let verb = back_verb(reopened);
    let body = ticket_head(t)
        .text(format!(" — {verb} by {who}: "))
        .quoted(one_line(reason, 300));
    match (&t.team, &t.assignee) {
        (Some(team), Some(a)) => body
            .text(format!(". Back to team {team}: "))
            .mention(a)
            .text(format!(
                ", take it again with {}",
                ticket_cmd(&t.id, "take")
            )),
        (Some(team), None) => body.text(format!(
            ". Back to team {team}: {}",
            ticket_cmd(&t.id, "take")
        )),
        _ => body.text(". It is open again, for the operators to route."),
    }
}

/// The line in a ticket's thread for a move by `who`.
pub fn ticket_move_story(who: &str, action: &Action) -> Rich {
    match action {
        Action::AssignTeam(team) => Rich::new().text(format!("{who} assigned it to team {team}.")),
        Action::AssignUser { team, user } => {
            Rich::new().text(format!("{who} assigned it to {user} of team {team}."))
        }
        Action::Take => Rich::new().text(format!("{who} took it; it is in progress.")),
        Action::Resolve { note } => Rich::new()
            .text(format!("{who} resolved it: "))
            .quoted(clip_plain(note, 1500)),
        Action::SendToQa => Rich::new().text(format!("{who} sent it to QA.")),
        Action::Verify => {
            Rich::new().text(format!("{who} verified the fix; the ticket is closed."))
        }
        Action::Reject { reason } | Action::Reopen { reason } => {
            let verb = back_verb(matches!(action, Action::Reopen { .. }));
            Rich::new()
                .text(format!("{who} {verb} it: "))
                .quoted(clip_plain(reason, 1500))
        }
        Action::Comment { text } => Rich::new()
            .text(format!("{who}: "))
            .quoted(clip_plain(text, 1500)),
    }
}

/// The answer to whoever made a move, from the ticket as the move left it.
pub fn ticket_move_reply(t: &Ticket, action: &Action) -> Rich {
    let id = &t.id;
    match action {
        Action::AssignTeam(team) => Rich::new().text(format!("{id} is now with team {team}.")),
        Action::AssignUser { user, .. } => {
            Rich::new().text(format!("{id} is now assigned to {user}."))
        }
        Action::Take => Rich::new().text(format!(
            "You have {id}. When it is fixed: {} note:\"…\"",
            ticket_cmd(id, "resolve")
        )),
        Action::Resolve { .. } => {
            Rich::new().text(format!("{id} is resolved; an operator will verify it."))
        }
        Action::SendToQa => Rich::new().text(format!("{id} is with QA now.")),
        Action::Verify => Rich::new().text(format!("{id} is closed.")),
        Action::Reject { .. } | Action::Reopen { .. } => {
            let verb = back_verb(matches!(action, Action::Reopen { .. }));
            let back = match (&t.team, &t.assignee) {
                (Some(team), Some(a)) => format!("team {team} ({a})"),
                (Some(team), None) => format!("team {team}"),
                _ => "the operators".to_string(),
            };
            Rich::new().text(format!("{id} is {verb}; it went back to {back}."))
        }
        Action::Comment { .. } => Rich::new().text(format!("Comment added to {id}.")),
    }
}

/// Fills `{ticket}`, `{subject}`, `{message}` and `{note}` in a template.
pub(crate) fn fill(template: &str, t: &Ticket, message: &str, note: &str) -> String {
    template
        .replace("{ticket}", &t.id.to_string())
        .replace("{subject}", &t.title)
        .replace("{message}", message)
        .replace("{note}", note)
}

/// A subject is one line, whatever the template and the customer wrote.
pub(crate) fn subject_line(s: &str) -> String {
    one_line(s, 250)
}

// ---------------------------------------------------------------------------
// Heartbeats.

/// The title of the ticket a silent heartbeat opens.
pub fn heartbeat_silent_title(name: &str, since: Timestamp) -> String {
    format!(
        "monitoring for {name} has been silent since {}",
        since.format("%Y-%m-%d %H:%M UTC")
    )
}

/// Its description: what was expected, and what makes it right.
pub fn heartbeat_silent_description(
    hb: &crate::domain::heartbeat::Heartbeat,
    ever: bool,
) -> String {
    let how = match &hb.alertname {
        Some(a) => format!("POST /hooks/heartbeat/{} or a firing {a} alert", hb.name),
        None => format!("POST /hooks/heartbeat/{}", hb.name),
    };
    format!(
        "heartbeat {} is expected every {} (grace {}): {how}.{} When beats come back the ticket is resolved for verification.",
        hb.name,
        humantime::format_duration(hb.every),
        humantime::format_duration(hb.grace),
        if ever { "" } else { " None came since the bot began waiting for it." }
    )
}

/// The resolution note when beats come back.
pub fn heartbeat_returned(name: &str, silent_since: Timestamp) -> String {
    format!(
        "heartbeat {name} beats again (silent since {})",
        silent_since.format("%Y-%m-%d %H:%M UTC")
    )
}

// ---------------------------------------------------------------------------
// Flapping.

fn window_words(within: std::time::Duration) -> String {
    humantime::format_duration(within).to_string()
}

/// In the team's channel: a ticket's alert group flaps.
pub fn flapping_started(t: &Ticket, changes: usize, within: std::time::Duration) -> Rich {
    ticket_head(t).text(format!(
        " — flapping: its alerts changed between firing and resolved {changes} times within {}. Its firing and resolved posts are held until it stays in one state for {}; the timeline keeps every one.",
        window_words(within),
        window_words(within)
    ))
}

/// In the team's channel: it stopped flapping.
pub fn flapping_ended(t: &Ticket, firing: bool, within: std::time::Duration) -> Rich {
    ticket_head(t).text(format!(
        " — no longer flapping: {} for {}; its posts resume.",
        if firing { "firing" } else { "resolved" },
        window_words(within)
    ))
}

/// On the timeline: the group started flapping.
pub fn flapping_note(changes: usize, within: std::time::Duration) -> String {
    format!(
        "flapping: {changes} changes between firing and resolved within {}; posts held",
        window_words(within)
    )
}

/// On the timeline: it stopped.
pub fn flapping_ended_note(firing: bool, within: std::time::Duration) -> String {
    format!(
        "no longer flapping: {} for {}",
        if firing { "firing" } else { "resolved" },
        window_words(within)
    )
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

// ---------------------------------------------------------------------------
// Pages (issue 15).

/// What a page says to the person paged, above the ticket's card.
pub fn page(t: &Ticket, why: &str) -> Rich {
    ticket_head(t).text(format!(
        " — {why}. Acknowledge takes it (or /ticket take id:{}).",
        t.id
    ))
}

/// A page by mail: its subject and plain-text body.
pub fn page_mail(t: &Ticket, why: &str) -> (String, String) {
    let subject = format!("[{}] {} · {}", t.id, t.priority, one_line(&t.title, 200));
    let body = format!(
        "{why}.\n\n{} · {} · {}\nState: {}\n\nAcknowledge it in chat: /ticket take id:{}\n",
        t.id,
        t.priority,
        one_line(&t.title, 200),
        t.state,
        t.id
    );
    (subject, body)
}

/// The answer to whoever paged someone.
pub fn paged_reply(to: &UserName, id: &TicketId) -> Rich {
    Rich::new().text(format!(
        "Paged {to} about {id}: a direct message with the ticket and an Acknowledge button."
    ))
}

/// In the team's channel, once per person: a page did not reach them.
pub fn page_refused(to: &UserName, t: &Ticket, why: &str) -> Rich {
    ticket_head(t)
        .text(" — a page to ")
        .mention(to)
        .text(format!(
            " did not reach them ({}); pages to them are said here only once, and the escalation goes on.",
            one_line(why, 200)
        ))
}

/// What became of a closed ticket when its customer wrote again by mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailReplyState {
    /// It was not closed.
    Open,
    /// Closed recently: reopened (announced as every move is).
    Reopened,
    /// Closed longer ago than `[support.inbox] reopen_within`, or the
    /// writer is not its customer: it stays closed.
    StaysClosed,
}

/// In a ticket's thread: a mail from the customer (or someone else) about it.
pub fn customer_mail_story(
    from: &str,
    text: &str,
    of_customer: bool,
    after: MailReplyState,
) -> Rich {
    let who = if of_customer {
        "The customer"
    } else {
        "Someone who is not the ticket's customer"
    };
    let body = Rich::new()
        .text(format!("{who} wrote by mail ("))
        .quoted(one_line(from, 254))
        .text("): ")
        .quoted(clip_plain(text, 1500));
    match after {
        // The reopening is announced as every move is.
        MailReplyState::Open | MailReplyState::Reopened => body,
        MailReplyState::StaysClosed => body.text(
            "\nThe ticket stays closed; reopen it with /ticket reopen if the problem is back.",
        ),
    }
}

/// The timeline's words for a mail that landed on a ticket.
pub fn mail_reply_entry(from: &str, text: &str) -> String {
    format!("mail from {from}: {text}")
}

/// Why a ticket was reopened by a customer's mail.
pub fn mail_reopen_reason() -> String {
    "the customer wrote again by mail".to_string()
}

/// In a ticket's thread and on its timeline: the files a mail had.
pub fn mail_attachments(files: &[(String, String, u64)], total: usize) -> Rich {
    let mut body = Rich::new().text("Attached to the mail (not kept): ");
    for (i, (name, kind, size)) in files.iter().enumerate() {
        if i > 0 {
            body = body.text(", ");
        }
        body = body
            .quoted(if name.is_empty() {
                "(no name)".to_string()
            } else {
                name.clone()
            })
            .text(format!(
                " ({}, {})",
                if kind.is_empty() {
                    "unknown type"
                } else {
                    kind
                },
                size_words(*size)
            ));
    }
    if total > files.len() {
        body = body.text(format!(", and {} more", total - files.len()));
    }
    body
}

/// A size in bytes, in words (`512 B`, `12.3 KiB`, `4.0 MiB`).
fn size_words(bytes: u64) -> String {
    const KI: u64 = 1024;
    if bytes < KI {
        format!("{bytes} B")
    } else if bytes < KI * KI {
        format!("{:.1} KiB", bytes as f64 / KI as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (KI * KI) as f64)
    }
}

/// A mail's title when it has no subject.
pub fn mail_no_subject() -> String {
    "(no subject)".to_string()
}

/// A mail's words when it has no text.
pub fn mail_without_text(has_files: bool) -> String {
    if has_files {
        "(the mail has no text, only attachments)".to_string()
    } else {
        "(the mail has no text)".to_string()
    }
}

/// A mail too large to read.
pub fn mail_unread(size: u64) -> String {
    format!(
        "(the mail has {}, more than [support.inbox] max_mail_bytes: only its headers were read; it stays in the mailbox)",
        size_words(size)
    )
}

/// After a mail's text, cut to the longest a ticket keeps.
pub fn mail_cut(max: usize) -> String {
    format!("(cut after {max} characters; the whole mail stays in the mailbox)")
}
/// In the thread of a ticket a commit message names.
pub fn commit_noted(
    kind: crate::domain::code::TicketRef,
    repo: &str,
    branch: &str,
    c: &crate::domain::code::Commit,
    author: Option<&UserName>,
    url: Option<&str>,
) -> Rich {
    let verb = match kind {
        crate::domain::code::TicketRef::Fixes => "says it fixes this",
        crate::domain::code::TicketRef::Refs => "refers to this",
    };
    Rich::new()
        .text(format!("A commit pushed to {repo} "))
        .quoted(one_line(branch, 100))
        .text(format!(" {verb}:"))
        .append(commit_line(c, author, url))
}

/// In a build ticket's thread: the commits since the last green build.
pub fn build_suspects(
    last_green: Option<&str>,
    suspects: &[(
        crate::domain::code::Commit,
        Option<UserName>,
        Option<String>,
    )],
) -> Rich {
    let mut r = match last_green {
        Some(g) => Rich::new().text(format!(
            "Commits since the last green build ({}):",
            crate::domain::code::short(g)
        )),
        None => Rich::new().text("No green build on record; the commits pushed so far:"),
    };
    if suspects.is_empty() {
        r = r.text(" none known");
    }
    for (c, who, url) in suspects {
        r = r.append(commit_line(c, who.as_ref(), url.as_deref()));
    }
    r
}

/// In a repository's team channel: the poller cannot reach it.
pub fn repo_unreachable(repo: &str, error: &str) -> Rich {
    Rich::new()
        .text(format!("Cannot reach the repository {repo}; its pushes are not seen until it answers (retried with backoff): "))
        .quoted(one_line(error, 300))
}

/// In a repository's team channel: a job a push starts refused the
/// push's parameters (`why`, the job's own words, quoted).
pub fn push_job_cannot_start(job: &str, repo: &str, short_sha: &str, why: &str) -> Rich {
    Rich::new()
        .text(format!("{job} of {repo} {short_sha} cannot start: "))
        .quoted(why)
}

/// In a team's channel: an alert ticket no alert kept alive for `took`.
pub fn ticket_stale(t: &Ticket, took: &str) -> Rich {
    ticket_head(t).text(format!(
        " — stale: no alert for over {took}. Silenced alerts send no resolve; check it, and resolve it if the problem is gone."
    ))
}

/// In a repository's team channel: the poller reaches it again.
pub fn repo_reachable(repo: &str) -> Rich {
    Rich::new().text(format!(
        "The repository {repo} answers again; its pushes are built as before."
    ))
}

/// In a repository's team channel: the forge refuses its commit statuses.
pub fn status_refused(repo: &str, why: &str) -> Rich {
    Rich::new()
        .text(format!("The forge refuses the commit statuses of {repo} (they are kept as dead letters; check its token_env and the token's rights): "))
        .quoted(one_line(why, 300))
}

/// In a repository's team channel: a pull request to build.
pub fn pr_posted(repo: &str, pr: &crate::domain::code::PullRequest, head: &str, sha: &str) -> Rich {
    let mut r = Rich::new()
        .quoted(one_line(&pr.author, 60))
        .text(format!(" updated pull request #{} of {repo} (", pr.number))
        .quoted(one_line(head, 100))
        .text(" into ")
        .quoted(one_line(&pr.base, 100))
        .text(format!(") → {}: ", crate::domain::code::short(sha)))
        .quoted(one_line(&pr.title, 120));
    if let Some(u) = &pr.url {
        r = r.text(" ").quoted(one_line(u, 200));
    }
    r
}

/// To a pull request's author: its build failed (no ticket: the branch
/// is theirs until it merges).
pub fn pr_build_failed(
    run: RunId,
    job: &str,
    repo: &str,
    pr: &crate::domain::code::PullRequest,
) -> Rich {
    Rich::new().quoted(one_line(&pr.author, 60)).text(format!(
        ": {run} ({job}) failed on your pull request #{} of {repo}; no ticket is opened for it",
        pr.number
    ))
}
/// What the bot did not find on Discord when it connected: channels the
/// config names by name only, people whose username no member has, and
/// whether Discord refused the member list. `None` when nothing is missing.
pub fn discord_not_found(
    channels: &[ChannelName],
    users: &[(UserName, String)],
    members_refused: bool,
) -> Option<Rich> {
    if channels.is_empty() && users.is_empty() {
        return None;
    }
    let mut r =
        Rich::new().text("Setting up on Discord, I did not find everything bot.toml names.");
    if !channels.is_empty() {
        let one = channels.len() == 1;
        r = r.text(if one {
            " No channel named "
        } else {
            " No channels named "
        });
        for (i, c) in channels.iter().enumerate() {
            if i > 0 {
                r = r.text(", ");
            }
            r = r.quoted(c.as_str());
        }
        r = r.text(if one {
            " in the guild: create it with exactly that name, or put its id under \
             [discord.channels]. Until then, posts meant for it are kept on record, not posted."
        } else {
            " in the guild: create them with exactly those names, or put their ids under \
             [discord.channels]. Until then, posts meant for them are kept on record, not posted."
        });
    }
    if !users.is_empty() {
        if members_refused {
            r = r.text(
                " Discord refused me the guild's member list (enable the Server Members \
                 Intent for the application in the Developer Portal), so I could not look up ",
            );
        } else {
            r = r.text(" No member of the guild has the username of ");
        }
        for (i, (person, username)) in users.iter().enumerate() {
            if i > 0 {
                r = r.text(", ");
            }
            r = r
                .text(format!("{person} ("))
                .quoted(username.as_str())
                .text(")");
        }
        r = r.text(
            ": fix the username under [discord.users], or write their Discord user id there. \
             Until then they act on Discord only through a mapped role.",
        );
    }
    Some(r)
}

/// The permissions the bot lacks in the channels it uses, as Discord names
/// them. `None` when it lacks nothing.
pub fn discord_permissions_missing(missing: &[(ChannelName, Vec<String>)]) -> Option<Rich> {
    if missing.is_empty() {
        return None;
    }
    let mut r = Rich::new().text("I lack permissions I need on Discord:");
    for (i, (channel, lacks)) in missing.iter().enumerate() {
        r = r
            .text(if i == 0 { " in #" } else { "; in #" })
            .quoted(channel.as_str())
            .text(": ")
            .text(lacks.join(", "));
    }
    Some(r.text(
        ". Give them to my role (Server Settings › Roles), or allow them in those \
         channels' permissions, which may deny them; `opsbot invite` prints an invite \
         with everything I need.",
    ))
}

#[cfg(test)]
mod tests {
    //! What a person reads, as snapshots: a change of wording shows up as a
    //! reviewed diff of `snapshots/`.

    use super::*;

    pub(super) fn ticket() -> Ticket {
        serde_json::from_value(serde_json::json!({
            "id": "OPS-7",
            "title": "Checkout returns 502 for some customers",
            "description": "Since the 14:00 deploy, about 3% of checkouts fail.",
            "priority": "p2",
            "state": "open",
            "opened_by": "olivia",
            "source": "discord",
            "channel": "ops",
            "created_at": "2026-03-02T14:05:00Z",
            "updated_at": "2026-03-02T14:05:00Z",
            "timeline_len": 1,
        }))
        .unwrap()
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn team(name: &str) -> TeamName {
        TeamName::parse(name).unwrap()
    }

    fn run(state: &str, extra: serde_json::Value) -> Run {
        let mut v = serde_json::json!({
            "id": "RUN-12",
            "job": "build-web",
            "params": {"ref": "main"},
            "requester": "bob",
            "channel": "backend",
            "state": state,
            "created_at": "2026-03-02T14:05:00Z",
            "timeline": [{
                "at": "2026-03-02T14:05:00Z",
                "actor": "bob",
                "source": "discord",
                "state": "queued",
                "text": "requested by bob",
            }],
        });
        if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn whoami_reads() {
        use crate::domain::org::{Org, Team};
        use crate::domain::{Actor, Grants, Source};
        let mut org = Org {
            operators: vec![user("olivia")],
            ..Org::default()
        };
        org.teams.insert(
            team("backend"),
            Team {
                name: team("backend"),
                channel: ChannelName::parse("backend").unwrap(),
                members: vec![user("bob"), user("bella")],
                lead: Some(user("bob")),
                description: None,
                assign: Default::default(),
            },
        );
        let may = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let lines = [
            whoami(
                &Actor::new(user("bob"), Source::Discord),
                &org,
                &may(&["help", "whoami", "ticket take"]),
            )
            .to_plain(),
            whoami(
                &Actor::new(user("olivia"), Source::Console),
                &org,
                &may(&["help", "ticket verify"]),
            )
            .to_plain(),
            whoami(
                &Actor::new(user("discord-81234"), Source::Discord).with_grants(Grants {
                    operator: false,
                    release_manager: false,
                    teams: vec![team("backend")],
                }),
                &org,
                &may(&["help", "whoami", "ticket take"]),
            )
            .to_plain(),
            whoami(
                &Actor::new(user("discord-81234"), Source::Discord),
                &org,
                &may(&["help", "whoami"]),
            )
            .to_plain(),
            whoami(
                &Actor::new(user("zed"), Source::Console),
                &org,
                &may(&["help", "whoami"]),
            )
            .to_plain(),
        ];
        insta::assert_snapshot!("whoami", lines.join("\n---\n"));
    }

    #[test]
    fn opening_runs_and_customer_comments_read() {
        let t = ticket();
        let ops = ChannelName::parse("ops").unwrap();
        let lines = [
            ticket_opened_story(&user("olivia"), &t.title, t.description.as_deref()).to_plain(),
            ticket_opened_story(&user("olivia"), &t.title, None).to_plain(),
            ticket_opened_reply(&t.id, Some(&team("backend")), &ops).to_plain(),
            ticket_opened_reply(&t.id, None, &ops).to_plain(),
            run_started_reply(RunId(12), "build-web", "ref=main").to_plain(),
            run_failed_output(RunId(12), "build-web", "exit 1", "error[E0308]: mismatched types\nbuild failed").to_plain(),
            run_failed_again(RunId(12)).to_plain(),
            run_passed_fixed(RunId(12)).to_plain(),
            runs_list(&[run("running", serde_json::json!({})), run("succeeded", serde_json::json!({"started_at": "2026-03-02T14:05:10Z", "finished_at": "2026-03-02T14:06:40Z"}))]).to_plain(),
            customer_comment_story(&user("olivia"), "We found the cause and are rolling out a fix.").to_plain(),
            customer_comment_reply(&t.id).to_plain(),
        ];
        insta::assert_snapshot!("opening_runs_and_customer_comments", lines.join("\n---\n"));
    }

    #[test]
    fn silences_and_overrides_read() {
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let mut s: Silence = serde_json::from_value(serde_json::json!({
            "id": 3,
            "matchers": ["alertname=DiskFull", "env=~prod|staging"],
            "until": "2026-03-02T16:05:00Z",
            "created_by": "olivia",
            "created_at": "2026-03-02T14:05:00Z",
        }))
        .unwrap();
        let two_hours = std::time::Duration::from_secs(2 * 3600);
        let mut lines = vec![silence_set("olivia", &s, two_hours).to_plain()];
        s.comment = Some("DB failover drill".into());
        lines.push(silence_set("olivia", &s, two_hours).to_plain());
        lines.push(silence_set_reply(&s).to_plain());
        lines.push(silence_ended("bob", &s).to_plain());
        lines.push(silence_ended_reply(3).to_plain());
        lines.push(silences_list(&[&s]).to_plain());
        lines.push(silences_list(&[&s, &s]).to_plain());
        lines.push(
            oncall_override_set(
                &team("backend"),
                &user("bella"),
                at("2026-03-03T08:00:00Z"),
                &user("bob"),
            )
            .to_plain(),
        );
        insta::assert_snapshot!("silences_and_overrides", lines.join("\n---\n"));
    }

    #[test]
    fn escalations_and_handoffs_read() {
        let t = ticket();
        let until: Timestamp = "2026-03-03T08:00:00Z".parse().unwrap();
        let take = "Take it with /ticket take id:OPS-7";
        let lines = [
            deadline_reminder(&t.id, "2h", take, None).to_plain(),
            deadline_reminder(&t.id, "2h", take, Some(&user("bella"))).to_plain(),
            priority_raised(Priority::P3, Priority::P2, "4h").to_plain(),
            oncall_handoff(
                &team("backend"),
                &user("bert"),
                until,
                None,
                Some(&user("bob")),
            )
            .to_plain(),
            oncall_handoff(
                &team("backend"),
                &user("bella"),
                until,
                Some(&user("bert")),
                None,
            )
            .to_plain(),
        ];
        insta::assert_snapshot!("escalations_and_handoffs", lines.join("\n---\n"));
    }

    /// Every move's words: the thread's line, the answer, and the posts of
    /// QA and of a ticket sent back.
    #[test]
    fn ticket_moves_read() {
        let mut t = ticket();
        t.team = Some(team("backend"));
        t.assignee = Some(user("bella"));
        t.resolution = Some("Pinned the pool size back to 20.".into());
        let note = "Pinned the pool size back to 20.".to_string();
        let reason = "Still 502s under load".to_string();
        let moves = [
            Action::AssignTeam(team("backend")),
            Action::AssignUser {
                team: team("backend"),
                user: user("bella"),
            },
            Action::Take,
            Action::Resolve { note },
            Action::SendToQa,
            Action::Verify,
            Action::Reject {
                reason: reason.clone(),
            },
            Action::Reopen {
                reason: reason.clone(),
            },
            Action::Comment {
                text: "Looking at the pool metrics now.".into(),
            },
        ];
        let lines: Vec<String> = moves
            .iter()
            .map(|a| {
                format!(
                    "{:?}\n  thread: {}\n  reply: {}",
                    a.kind(),
                    ticket_move_story("bob", a).to_plain(),
                    ticket_move_reply(&t, a).to_plain()
                )
            })
            .collect();
        insta::assert_snapshot!("ticket_moves", lines.join("\n"));
        insta::assert_snapshot!("ticket_sent_to_qa", ticket_sent_to_qa(&t, "bob").to_plain());
        let mut back = vec![ticket_sent_back(&t, "quinn", false, &reason).to_plain()];
        t.assignee = None;
        back.push(ticket_sent_back(&t, "olivia", true, &reason).to_plain());
        back.push(
            ticket_move_reply(
                &t,
                &Action::Reopen {
                    reason: reason.clone(),
                },
            )
            .to_plain(),
        );
        t.team = None;
        back.push(ticket_sent_back(&t, "olivia", true, &reason).to_plain());
        back.push(ticket_move_reply(&t, &Action::Reopen { reason }).to_plain());
        insta::assert_snapshot!("ticket_sent_back", back.join("\n"));
    }

    #[test]
    fn ticket_opened_reads() {
        let t = ticket();
        insta::assert_snapshot!(
            ticket_opened("New ticket ", &t, &user("olivia"), Source::Discord).to_plain()
        );
    }

    #[test]
    fn ticket_assigned_reads() {
        let t = ticket();
        insta::assert_snapshot!(
            "ticket_assigned_team_with_lead",
            ticket_assigned_team(&t, &team("backend"), "olivia", Some(&user("bob"))).to_plain()
        );
        insta::assert_snapshot!(
            "ticket_assigned_team_without_lead",
            ticket_assigned_team(&t, &team("backend"), "olivia", None).to_plain()
        );
        insta::assert_snapshot!(
            "ticket_assigned_user",
            ticket_assigned_user(&t, &team("backend"), &user("bella"), "bob").to_plain()
        );
    }

    #[test]
    fn ticket_resolved_and_verified_read() {
        let t = ticket();
        insta::assert_snapshot!(
            "ticket_resolved",
            ticket_resolved(
                &t,
                "bella",
                "rolled back the proxy config",
                &[user("olivia")]
            )
            .to_plain()
        );
        insta::assert_snapshot!("ticket_verified", ticket_verified(&t, "olivia").to_plain());
    }

    #[test]
    fn alert_joins_read() {
        let t = ticket();
        let one = ["DiskFull on web-1".to_string()];
        let many = [
            "DiskFull on web-1".to_string(),
            "DiskFull on web-2".to_string(),
        ];
        insta::assert_snapshot!("alerts_joined_one", alerts_joined(&one, 1).to_plain());
        insta::assert_snapshot!("alerts_joined_many", alerts_joined(&many, 5).to_plain());
        insta::assert_snapshot!(
            "alerts_fired_again",
            alerts_fired_again(&t, &many, 2).to_plain()
        );
        insta::assert_snapshot!(
            "alerts_recovered",
            alerts_recovered(&t, &many, 2, 3).to_plain()
        );
    }

    #[test]
    fn storm_summary_reads() {
        let few: Vec<(TicketId, usize)> = (1..=3).map(|n| (TicketId::new("OPS", n), 4)).collect();
        let lots: Vec<(TicketId, usize)> = (1..=12).map(|n| (TicketId::new("OPS", n), 1)).collect();
        insta::assert_snapshot!("storm_summary_few", storm_summary(12, &few).to_plain());
        insta::assert_snapshot!("storm_summary_lots", storm_summary(12, &lots).to_plain());
    }

    #[test]
    fn build_progress_reads() {
        insta::assert_snapshot!(
            "run_progress_queued",
            run_progress(&run("queued", serde_json::json!({}))).to_plain()
        );
        insta::assert_snapshot!(
            "run_progress_running",
            run_progress(&run(
                "running",
                serde_json::json!({
                    "started_at": "2026-03-02T14:05:02Z",
                    "backend_ref": "pid 4242",
                })
            ))
            .to_plain()
        );
        let mut done = run(
            "succeeded",
            serde_json::json!({
                "started_at": "2026-03-02T14:05:02Z",
                "finished_at": "2026-03-02T14:06:14Z",
            }),
        );
        done.timeline.push(
            serde_json::from_value(serde_json::json!({
                "at": "2026-03-02T14:06:14Z",
                "actor": "bob",
                "source": "discord",
                "state": "succeeded",
                "text": "exit status 0",
            }))
            .unwrap(),
        );
        insta::assert_snapshot!("run_progress_succeeded", run_progress(&done).to_plain());
    }

    #[test]
    fn deploy_approval_reads() {
        insta::assert_snapshot!(deploy_needs_approval(
            RunId(13),
            "deploy of web 1.4.2 to production",
            &user("bob"),
            "release managers (rita)",
            &[user("rita")],
            Some("fixes the checkout 502"),
        )
        .to_plain());
    }

    #[test]
    fn weekly_report_and_refused_channel_read() {
        insta::assert_snapshot!(
            "weekly_report",
            weekly_report(&"Last 7 days: 4 tickets opened, 3 closed.".into()).to_plain()
        );
        insta::assert_snapshot!(
            "channel_refused",
            channel_refused(
                &ChannelName::parse("backend").unwrap(),
                "Discord refused the post (403): Missing Permissions"
            )
            .to_plain()
        );
    }

    #[test]
    fn maintenance_windows_read() {
        use crate::domain::maintenance::{Origin, Window};
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        let mut w: Window = serde_json::from_value(serde_json::json!({
            "id": 4,
            "matchers": ["service=web", "env=~prod.*"],
            "from": "2026-03-02T14:00:00Z",
            "until": "2026-03-02T15:30:00Z",
            "origin": {"kind": "command", "by": "bob"},
            "team": "backend",
            "recorded": 1,
        }))
        .unwrap();
        let mut lines = vec![
            maintenance_started(&w).to_plain(),
            maintenance_started_reply(&w).to_plain(),
            maintenance_ended(&w, None).to_plain(),
            maintenance_ended(&w, Some("olivia")).to_plain(),
            maintenance_ended_reply(&w).to_plain(),
            maintenance_note(4, crate::domain::alert::AlertStatus::Firing, "Latency web"),
        ];
        w.comment = Some("cache migration".into());
        w.recorded = 12;
        let firing: crate::domain::alert::Alert = serde_json::from_value(serde_json::json!({
            "source": "alertmanager", "status": "firing", "fingerprint": "f1",
            "labels": {"alertname": "Latency", "service": "web"},
        }))
        .unwrap();
        w.held.insert("f1".into(), firing.clone());
        lines.push(maintenance_started(&w).to_plain());
        lines.push(maintenance_ended(&w, None).to_plain());
        w.held.insert("f2".into(), firing);
        lines.push(maintenance_ended(&w, None).to_plain());
        w.origin = Origin::Deploy {
            run: crate::domain::run::RunId(7),
        };
        let mut daily = w.clone();
        daily.id = 5;
        daily.origin = Origin::Config {
            name: "backups".into(),
        };
        daily.recur = Some(crate::domain::maintenance::Recur {
            every: crate::domain::maintenance::Every::Daily,
            tz: "Europe/Berlin".into(),
            local_from: "2026-03-03T01:00:00".parse().unwrap(),
            local_until: "2026-03-03T02:00:00".parse().unwrap(),
        });
        daily.from = at("2026-03-03T00:00:00Z");
        daily.until = at("2026-03-03T01:00:00Z");
        lines.push(maintenance_scheduled_reply(&daily).to_plain());
        lines.push(maintenance_list(&[&w, &daily], &[], at("2026-03-02T14:10:00Z")).to_plain());
        lines.push(maintenance_list(&[], &[], at("2026-03-02T14:10:00Z")).to_plain());
        insta::assert_snapshot!("maintenance_windows", lines.join("\n---\n"));
    }

    #[test]
    fn heartbeats_read() {
        let since: Timestamp = "2026-03-02T10:04:00Z".parse().unwrap();
        let mut hb = crate::domain::heartbeat::Heartbeat {
            name: "prometheus".into(),
            every: std::time::Duration::from_secs(300),
            grace: std::time::Duration::from_secs(60),
            team: Some(team("infra")),
            priority: Priority::P1,
            alertname: Some("Watchdog".into()),
        };
        let mut lines = vec![
            heartbeat_silent_title("prometheus", since),
            heartbeat_silent_description(&hb, true),
        ];
        hb.alertname = None;
        lines.push(heartbeat_silent_description(&hb, false));
        lines.push(heartbeat_returned("prometheus", since));
        insta::assert_snapshot!("heartbeats", lines.join("\n---\n"));
    }

    #[test]
    fn flapping_reads() {
        let t = ticket();
        let within = std::time::Duration::from_secs(1800);
        let lines = [
            flapping_started(&t, 6, within).to_plain(),
            flapping_ended(&t, false, within).to_plain(),
            flapping_ended(&t, true, within).to_plain(),
            flapping_note(6, within),
            flapping_ended_note(false, within),
        ];
        insta::assert_snapshot!("flapping", lines.join("\n---\n"));
    }

    #[test]
    fn silences_in_alertmanager_read() {
        let mut s: Silence = serde_json::from_value(serde_json::json!({
            "id": 3,
            "matchers": ["alertname=DiskFull", "env=~prod|staging"],
            "until": "2026-03-02T16:05:00Z",
            "created_by": "olivia",
            "created_at": "2026-03-02T14:05:00Z",
        }))
        .unwrap();
        let theirs: crate::domain::silences::AmSilence =
            serde_json::from_value(serde_json::json!({
                "id": "5f0c9a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21",
                "matchers": [
                    {"name": "service", "value": "db", "isRegex": false, "isEqual": true},
                    {"name": "instance", "value": "db-[12]", "isRegex": true, "isEqual": false},
                ],
                "created_by": "ivan",
                "comment": "kernel upgrade",
                "starts_at": "2026-03-02T13:00:00Z",
                "ends_at": "2026-03-02T18:00:00Z",
            }))
            .unwrap();
        let mut lines = vec![
            silence_set_reply_alertmanager(&s).to_plain(),
            silences_list_alertmanager(&[&s], &[]).to_plain(),
        ];
        s.am_id = Some("0b7e3c55-91aa-4f0e-a3d2-6c1f8e9b2d40".into());
        lines.push(silences_list_alertmanager(&[&s], &[&theirs]).to_plain());
        lines.push(silences_list_alertmanager(&[], &[&theirs, &theirs]).to_plain());
        insta::assert_snapshot!("silences_in_alertmanager", lines.join("\n---\n"));
    }

    #[test]
    fn pages_read() {
        let t = ticket();
        let bella = user("bella");
        let lines = [
            page(&t, "olivia pages you").to_plain(),
            page(&t, "escalation p1 step 2/3: you are on call for backend").to_plain(),
            paged_reply(&bella, &t.id).to_plain(),
            {
                let (subject, body) = page_mail(&t, "olivia pages you");
                format!("{subject}\n{body}")
            },
            page_refused(&bella, &t, "direct messages closed (Discord error 50007)").to_plain(),
        ];
        insta::assert_snapshot!("pages", lines.join("\n---\n"));
    }

    #[test]
    fn customer_mail_reads() {
        let files = [
            (
                "invoice.pdf".to_string(),
                "application/pdf".to_string(),
                48_213,
            ),
            (
                "screen.png".to_string(),
                "image/png".to_string(),
                3 * 1024 * 1024,
            ),
            (String::new(), String::new(), 12),
        ];
        let lines = [
            customer_mail_story(
                "carol@example.com",
                "It still fails.",
                true,
                MailReplyState::Open,
            )
            .to_plain(),
            customer_mail_story(
                "carol@example.com",
                "It is back!",
                true,
                MailReplyState::Reopened,
            )
            .to_plain(),
            customer_mail_story(
                "mallory@example.net",
                "Me too",
                false,
                MailReplyState::StaysClosed,
            )
            .to_plain(),
            mail_reply_entry("carol@example.com", "It still fails."),
            mail_attachments(&files, 3).to_plain(),
            mail_attachments(&files[..1], 60).to_plain(),
            mail_no_subject(),
            mail_without_text(true),
            mail_without_text(false),
            mail_unread(25 * 1024 * 1024),
            mail_cut(10_000),
        ];
        insta::assert_snapshot!("customer_mail", lines.join("\n---\n"));
    }

    #[test]
    fn what_discord_lacks_reads() {
        let ch = |n: &str| ChannelName::parse(n).unwrap();
        assert!(discord_not_found(&[], &[], false).is_none());
        insta::assert_snapshot!(
            "discord_not_found",
            discord_not_found(
                &[ch("backend"), ch("qa")],
                &[(user("bob"), "bob.builds".into())],
                false
            )
            .unwrap()
            .to_plain()
        );
        insta::assert_snapshot!(
            "discord_members_refused",
            discord_not_found(&[], &[(user("bob"), "bob.builds".into())], true)
                .unwrap()
                .to_plain()
        );
    }

    #[test]
    fn missing_permissions_read() {
        let ch = |n: &str| ChannelName::parse(n).unwrap();
        assert!(discord_permissions_missing(&[]).is_none());
        insta::assert_snapshot!(
            "discord_permissions_missing",
            discord_permissions_missing(&[
                (ch("ops"), vec!["Create Public Threads".into()]),
                (
                    ch("backend"),
                    vec!["Embed Links".into(), "Attach Files".into()]
                ),
            ])
            .unwrap()
            .to_plain()
        );
    }
}

#[cfg(test)]
mod code_tests {
    //! The code loop's words, as snapshots.

    use super::*;
    use crate::domain::code::{Commit, TicketRef};

    fn commit(sha: &str, message: &str, author: &str) -> Commit {
        Commit {
            sha: sha.repeat(40 / sha.len()),
            message: message.into(),
            author_name: author.into(),
            author_email: format!("{}@example.com", author.to_lowercase()),
            url: None,
        }
    }

    fn listed() -> Vec<(Commit, Option<UserName>, Option<String>)> {
        vec![
            (
                commit(
                    "a1",
                    "Retry the payment call\n\nFixes OPS-12",
                    "Bob Builder",
                ),
                Some(UserName::parse("bob").unwrap()),
                Some(format!(
                    "https://github.com/acme/web/commit/{}",
                    "a1".repeat(20)
                )),
            ),
            (
                commit("b2", "@everyone <@&1> **look**", "Mallory"),
                None,
                None,
            ),
        ]
    }

    #[test]
    fn pushes_read() {
        insta::assert_snapshot!(
            "push_posted",
            push_posted("web", "main", "bob", &"c3".repeat(20), None, &listed(), 2).to_plain()
        );
        insta::assert_snapshot!(
            "push_forced_many",
            push_posted(
                "web",
                "feature/x",
                "bella",
                &"c3".repeat(20),
                Some(&"d4".repeat(20)),
                &listed(),
                14
            )
            .to_plain()
        );
        insta::assert_snapshot!(
            "branch_deleted",
            branch_deleted("web", "feature/x", "bella", &[RunId(4)]).to_plain()
        );
    }

    #[test]
    fn commits_on_tickets_and_suspects_read() {
        let l = listed();
        insta::assert_snapshot!(
            "commit_noted",
            commit_noted(
                TicketRef::Fixes,
                "web",
                "main",
                &l[0].0,
                l[0].1.as_ref(),
                l[0].2.as_deref()
            )
            .to_plain()
        );
        insta::assert_snapshot!(
            "build_suspects",
            build_suspects(Some(&"e5".repeat(20)), &l).to_plain()
        );
        insta::assert_snapshot!(
            "repo_reach",
            format!(
                "{}\n{}",
                repo_unreachable(
                    "web",
                    "fatal: '/srv/git/web.git' does not appear to be a git repository"
                )
                .to_plain(),
                repo_reachable("web").to_plain()
            )
        );
        let pr = crate::domain::code::PullRequest {
            number: 2,
            title: "Update the README with new information.".into(),
            author: "Codertocat".into(),
            base: "master".into(),
            url: Some("https://github.com/Codertocat/Hello-World/pull/2".into()),
        };
        insta::assert_snapshot!(
            "pull_request",
            format!(
                "{}\n{}",
                pr_posted("hello", &pr, "changes", &"ec".repeat(20)).to_plain(),
                pr_build_failed(RunId(5), "ci-web", "hello", &pr).to_plain()
            )
        );
        insta::assert_snapshot!(
            "status_refused",
            status_refused("web", "401 Unauthorized: Bad credentials").to_plain()
        );
    }
}

/// How many of a refused config's problems a post lists; the log has all.
const RELOAD_PROBLEMS_SHOWN: usize = 10;

/// `SIGHUP` read `bot.toml` and `commands/` again and they are in effect.
/// `restart`: the settings that changed but wait for a restart.
pub fn config_reloaded(restart: &[String]) -> Rich {
    let r = Rich::new().text(
        "Reloaded bot.toml and commands/: the teams, routes, jobs and people in them are in effect from now on.",
    );
    if restart.is_empty() {
        return r;
    }
    let mut r = r.text(
        " These changed but need a restart to take effect (until then they keep their old value): ",
    );
    for (i, key) in restart.iter().enumerate() {
        if i > 0 {
            r = r.text(", ");
        }
        r = r.code(one_line(key, 80));
    }
    r.text(".")
}

/// `SIGHUP` found `bot.toml` or `commands/` invalid: the running config
/// stays. `problems`: each with its file, line and key.
pub fn config_reload_refused(problems: &[String]) -> Rich {
    let mut r = Rich::new().text(
        "I did not reload bot.toml: it has problems, so the config I started with (or last reloaded) stays in effect. Fix them, run `opsbot check`, and send SIGHUP again:",
    );
    for p in problems.iter().take(RELOAD_PROBLEMS_SHOWN) {
        r = r.text("\n- ").quoted(one_line(p, 300));
    }
    if problems.len() > RELOAD_PROBLEMS_SHOWN {
        r = r.text(format!(
            "\n… and {} more (the log has them all).",
            problems.len() - RELOAD_PROBLEMS_SHOWN
        ));
    }
    r
}

#[cfg(test)]
mod reload_tests {
    //! The reload's words, as snapshots.

    use super::*;

    #[test]
    fn reload_words() {
        insta::assert_snapshot!(
            "config_reloaded",
            format!(
                "{}\n{}",
                config_reloaded(&[]).to_plain(),
                config_reloaded(&["[http] listen".into(), "[storage]".into()]).to_plain()
            )
        );
        insta::assert_snapshot!(
            "config_reload_refused",
            config_reload_refused(&[
                "error: bot.toml:7:1: routes[0].team: no team named `nope`; the teams are: core, web"
                    .into(),
                "error: commands/deploy.toml: key `run`: missing; add run = \"./deploy.sh\"".into(),
            ])
            .to_plain()
        );
        let many: Vec<String> = (0..12).map(|i| format!("error: problem {i}")).collect();
        let plain = config_reload_refused(&many).to_plain();
        assert!(plain.contains("problem 9"), "{plain}");
        assert!(!plain.contains("problem 10"), "{plain}");
        assert!(plain.contains("… and 2 more"), "{plain}");
    }
}
