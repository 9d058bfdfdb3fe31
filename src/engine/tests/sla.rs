//! Deadlines, escalation and on-call on the engine, with a clock the test
//! moves, on the in-memory view.

use std::cell::{Ref, RefCell};
use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, Ticket, TicketState, Timestamp, UserName};
use crate::domain::{ChannelName, Priority, Source, TeamName, TicketId};
use crate::engine::sla::*;
use crate::engine::tests::post_line;
use crate::engine::Engine;
use crate::engine::{Decision, Effect, Event, MemoryView, View};
use crate::error::EngineError;

pub(crate) const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella", "bert"]
[teams.infra]
channel = "infra"
members = ["ivan", "inga"]
assign = "least_loaded"
[teams.web]
channel = "web"
members = ["wim", "wanda"]
assign = "oncall"

[deadlines]
p1 = { acknowledge = "15m", resolve = "4h" }
p3 = { acknowledge = "4h" }

[[escalation]]
name = "urgent"
priorities = ["p1"]
steps = ["remind", "wait 10m", "oncall", "wait 15m", "team", "wait 30m", "operators", "raise"]

[[escalation]]
name = "infra"
teams = ["infra"]
steps = ["operators"]

[oncall.backend]
members = ["bob", "bella", "bert"]
period = "daily"
handoff = "09:00"
time_zone = "Europe/Berlin"
start = "2026-03-23"

[oncall.web]
members = ["wim", "wanda"]
period = "weekly"
time_zone = "UTC"
start = "2026-03-02"

[[alerts.routes]]
name = "web"
match = { service = "web" }
team = "web"
priority = "p1"
"#;

struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new() -> Bench {
        Bench::with(CONFIG)
    }

    fn with(src: &str) -> Bench {
        let config = Config::parse(std::path::Path::new("bot.toml"), src)
            .unwrap()
            .config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            // Tuesday 2026-03-24 10:00 UTC (11:00 in Berlin): bella's day.
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    fn view(&self) -> Ref<'_, MemoryView> {
        self.view.borrow()
    }

    fn event(&self, ev: Event) -> Result<Decision, EngineError> {
        let mut view = self.view.borrow_mut();
        let d = self.engine.decide(&*view, &ev, self.now)?;
        view.apply(d.writes.clone());
        Ok(d)
    }

    fn cmd(&self, who: &str, line: &str) -> Result<String, String> {
        let command = parse_command(line, "OPS").map_err(|e| e.to_string())?;
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        };
        let reply = if ev.is_query() {
            self.engine.query(&*self.view(), &ev, self.now).map(Some)
        } else {
            self.event(ev).map(|d| d.reply)
        };
        match reply {
            Ok(r) => Ok(r.map(|r| r.body.to_plain()).unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The timer pass the runtime makes: the due index, then the engine.
    fn tick(&self) -> usize {
        let due = self
            .view()
            .due_tickets(self.now, usize::MAX, "OPS")
            .unwrap();
        let n = due.len();
        self.event(Event::Tick { tickets: due }).unwrap();
        n
    }

    fn at(&mut self, minutes_after_start: i64) {
        self.now = chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap()
            + Duration::minutes(minutes_after_start);
    }

    fn ticket(&self, n: u64) -> Ticket {
        self.view()
            .ticket(&TicketId::new("OPS", n))
            .unwrap()
            .unwrap()
    }

    /// Timeline entries from `from` on, as `kind: text`.
    fn timeline(&self, n: u64, from: usize) -> Vec<String> {
        use crate::engine::QueryView;
        self.view()
            .timeline(&TicketId::new("OPS", n))
            .unwrap()
            .into_iter()
            .skip(from)
            .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
            .collect()
    }

    /// Posts queued since the last call.
    fn posts(&self) -> Vec<String> {
        let items = self.view().outbox_pending(10_000).unwrap();
        let mut out = Vec::new();
        for i in items {
            self.view.borrow_mut().outbox_done(i.seq).unwrap();
            out.extend(post_line(i.effect));
        }
        out
    }
}

fn u(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

/// A p1 ticket for backend, opened at minute 0; entries 0 and 1 are
/// `opened` and `assigned`.
fn p1_backend(b: &mut Bench) {
    b.at(0);
    b.cmd(
        "olivia",
        "/ticket open title:\"Checkout down\" priority:p1 team:backend",
    )
    .unwrap();
    b.posts();
    let sla = b.ticket(1).sla.unwrap();
    assert_eq!(sla.ack_due, Some(b.now + Duration::minutes(15)));
    assert_eq!(sla.resolve_due, Some(b.now + Duration::hours(4)));
}

#[test]
fn every_escalation_step_fires_on_time_once() {
    let mut b = Bench::new();
    p1_backend(&mut b);
    // Nothing is due before the deadline.
    b.at(14);
    assert_eq!(b.tick(), 0);
    assert!(b.posts().is_empty());

    // 15m: the breach, and the chain's first step (remind) at once.
    b.at(15);
    assert_eq!(b.tick(), 1);
    assert_eq!(
        b.timeline(1, 2),
        vec![
            "breached: deadline missed: not taken within 15m; escalation urgent starts",
            "escalated: escalation urgent step 1/8: reminded in the thread",
            "escalated: escalation urgent step 2/8: wait 10m (until 2026-03-24 10:25 UTC)",
        ]
    );
    assert_eq!(
        b.posts(),
        vec![
            "#ops›OPS-1 deadline missed: not taken within 15m; escalation urgent starts",
            "#ops›OPS-1 Reminder: nobody has taken OPS-1 for 15m. Take it: /ticket take id:OPS-1",
        ]
    );
    let t = b.ticket(1);
    assert!(t.sla.as_ref().unwrap().ack_breached);
    // Again at the same time: nothing repeats.
    assert_eq!(b.tick(), 0);
    assert!(b.posts().is_empty());

    // 25m: page the on-call person. Tuesday 11:25 in Berlin: bella
    // (Monday 23 March is bob's, from 09:00 local).
    b.at(24);
    assert_eq!(b.tick(), 0);
    b.at(25);
    b.tick();
    assert_eq!(
        b.posts(),
        vec!["#backend OPS-1 · p1 · Checkout down — not taken for 25m. @bella, you are on call for backend. Take it: /ticket take id:OPS-1"]
    );
    // 40m: the team's channel, everyone pinged.
    b.at(40);
    b.tick();
    assert_eq!(
        b.posts(),
        vec!["#backend OPS-1 · p1 · Checkout down — nobody has taken it for 40m. @bob @bella @bert Take it: /ticket take id:OPS-1"]
    );
    // 70m: the operators, then the priority is raised (already p1).
    b.at(70);
    b.tick();
    assert_eq!(
        b.posts(),
        vec!["#ops OPS-1 · p1 · Checkout down — nobody has taken it for 1h 10m; operators, route it or take it. @olivia"]
    );
    assert_eq!(
        b.timeline(1, 5),
        vec![
            "escalated: escalation urgent step 3/8: paged bella (on call for backend)",
            "escalated: escalation urgent step 4/8: wait 15m (until 2026-03-24 10:40 UTC)",
            "escalated: escalation urgent step 5/8: pinged team backend in #backend",
            "escalated: escalation urgent step 6/8: wait 30m (until 2026-03-24 11:10 UTC)",
            "escalated: escalation urgent step 7/8: pinged the operators (olivia)",
            "priority: escalation urgent step 8/8: priority stays p1 (the highest)",
        ]
    );
    let sla = b.ticket(1).sla.unwrap();
    assert_eq!((sla.step, sla.step_due), (8, None));
    // Only the resolve deadline is left in the index.
    assert_eq!(b.view().timers_pending(), 1);

    // 4h: the resolve deadline; the team hears of it.
    b.at(240);
    assert_eq!(b.tick(), 1);
    assert_eq!(
        b.posts(),
        vec!["#backend OPS-1 · p1 · Checkout down — deadline missed: not resolved by 2026-03-24 14:00 UTC."]
    );
    assert!(b.ticket(1).sla.unwrap().resolve_breached);
    assert_eq!(b.view().timers_pending(), 0);
    b.at(600);
    assert_eq!(b.tick(), 0);
}

#[test]
fn raise_moves_the_priority_up() {
    let src = CONFIG.replace(
        "steps = [\"operators\"]",
        "steps = [\"raise\", \"wait 1h\", \"raise\"]",
    );
    let mut b = Bench::with(&src);
    b.cmd("olivia", "/ticket open title:disk team:infra")
        .unwrap();
    b.at(4 * 60);
    b.tick();
    assert_eq!(b.ticket(1).priority, Priority::P2);
    b.at(5 * 60);
    b.tick();
    assert_eq!(b.ticket(1).priority, Priority::P1);
    assert_eq!(
        b.timeline(1, 2),
        vec![
            "breached: deadline missed: not taken within 4h; escalation infra starts",
            "priority: escalation infra step 1/3: priority raised from p3 to p2",
            "escalated: escalation infra step 2/3: wait 1h (until 2026-03-24 15:00 UTC)",
            "priority: escalation infra step 3/3: priority raised from p2 to p1",
            // p1 is to be resolved within 4h of the opening, gone by now.
            "breached: deadline missed: not resolved by 2026-03-24 14:00 UTC (due 2026-03-24 14:00 UTC, 1h late)",
        ]
    );
}

#[test]
fn taking_the_ticket_stops_the_chain() {
    let mut b = Bench::new();
    p1_backend(&mut b);
    b.at(15);
    b.tick();
    b.at(20);
    b.cmd("bella", "/ticket take id:OPS-1").unwrap();
    let tl = b.timeline(1, 5);
    assert_eq!(
        tl,
        vec![
            "taken: taken by bella",
            "escalated: escalation urgent stopped: the ticket was taken",
        ]
    );
    let sla = b.ticket(1).sla.unwrap();
    assert_eq!(sla.acked_at, Some(b.now));
    assert_eq!(sla.step_due, None);
    b.posts();
    for m in [25, 40, 70, 200] {
        b.at(m);
        b.tick();
        assert!(b.posts().is_empty(), "minute {m}");
    }
    // Taking it again later does not record a second stop.
    assert_eq!(b.ticket(1).timeline_len, 7);
}

#[test]
fn resolving_stops_the_chain_and_the_resolve_deadline() {
    let mut b = Bench::new();
    p1_backend(&mut b);
    b.at(16);
    b.tick();
    b.cmd("olivia", "/ticket resolve id:OPS-1 note:restarted")
        .unwrap();
    assert_eq!(
        b.timeline(1, 5),
        vec![
            "resolved: restarted",
            "escalated: escalation urgent stopped: the ticket was resolved",
        ]
    );
    assert_eq!(b.view().timers_pending(), 0);
    b.posts();
    b.at(300);
    assert_eq!(b.tick(), 0);
    assert!(b.posts().is_empty());
}

/// The bot was down from minute 5 to minute 300: every step and both
/// breaches fire in the first pass, once each, in order, saying how late.
#[test]
fn timers_due_during_downtime_each_fire_once() {
    let mut b = Bench::new();
    p1_backend(&mut b);
    b.at(300);
    assert_eq!(b.tick(), 1);
    let tl = b.timeline(1, 2);
    assert_eq!(tl.len(), 10, "{tl:#?}");
    assert!(tl[0].starts_with(
        "breached: deadline missed: not taken within 15m (due 2026-03-24 10:15 UTC, 4h 45m late)"
    ));
    assert!(tl[1].starts_with("escalated: escalation urgent step 1/8: reminded in the thread (due"));
    assert!(tl[3].starts_with("escalated: escalation urgent step 3/8: paged bella"));
    assert!(tl[7].starts_with("escalated: escalation urgent step 7/8: pinged the operators"));
    assert!(tl[8].starts_with("priority: escalation urgent step 8/8"));
    assert!(tl[9].starts_with(
        "breached: deadline missed: not resolved by 2026-03-24 14:00 UTC (due 2026-03-24 14:00 UTC, 1h late)"
    ));
    assert_eq!(b.posts().len(), 6);
    assert_eq!(b.tick(), 0);
    assert!(b.posts().is_empty());
    assert_eq!(b.ticket(1).timeline_len, 12);
}

#[test]
fn a_reopened_ticket_gets_new_deadlines() {
    let mut b = Bench::new();
    p1_backend(&mut b);
    b.cmd("olivia", "/ticket resolve id:OPS-1 note:x").unwrap();
    b.cmd("olivia", "/ticket verify id:OPS-1").unwrap();
    b.at(60);
    b.cmd("bob", "/ticket reopen id:OPS-1 reason:again")
        .unwrap();
    let sla = b.ticket(1).sla.unwrap();
    assert_eq!(sla.ack_due, Some(b.now + Duration::minutes(15)));
    assert!(!sla.ack_breached);
    b.at(75);
    assert_eq!(b.tick(), 1);
}

#[test]
fn least_loaded_member_is_picked() {
    let b = Bench::new();
    // ivan has two tickets, inga one.
    for _ in 0..3 {
        b.cmd("olivia", "/ticket open title:x").unwrap();
    }
    b.cmd("olivia", "/ticket assign id:OPS-1 user:ivan team:infra")
        .unwrap();
    b.cmd("olivia", "/ticket assign id:OPS-2 user:ivan team:infra")
        .unwrap();
    b.cmd("olivia", "/ticket assign id:OPS-3 user:inga team:infra")
        .unwrap();
    b.cmd("olivia", "/ticket open title:new").unwrap();
    let r = b
        .cmd("olivia", "/ticket assign id:OPS-4 team:infra")
        .unwrap();
    assert_eq!(r, "OPS-4 is now assigned to inga.");
    // Now they are even (2 each): the first in the team's order wins.
    b.cmd("olivia", "/ticket open title:newer").unwrap();
    let r = b
        .cmd("olivia", "/ticket assign id:OPS-5 team:infra")
        .unwrap();
    assert_eq!(r, "OPS-5 is now assigned to ivan.");
    // Resolving lightens ivan's load.
    b.cmd("ivan", "/ticket take id:OPS-1").unwrap();
    b.cmd("ivan", "/ticket resolve id:OPS-1 note:ok").unwrap();
    b.cmd("ivan", "/ticket take id:OPS-2").unwrap();
    b.cmd("ivan", "/ticket resolve id:OPS-2 note:ok").unwrap();
    b.cmd("olivia", "/ticket open title:newest").unwrap();
    let r = b
        .cmd("olivia", "/ticket assign id:OPS-6 team:infra")
        .unwrap();
    assert_eq!(r, "OPS-6 is now assigned to ivan.");
}

#[test]
fn oncall_assignment_and_overrides() {
    let mut b = Bench::new();
    // Weekly in UTC from Monday 2 March: the week of 23 March is shift 3
    // (wim, wanda, wim, wanda): wanda's.
    b.cmd("olivia", "/ticket open title:x").unwrap();
    let r = b.cmd("olivia", "/ticket assign id:OPS-1 team:web").unwrap();
    assert_eq!(r, "OPS-1 is now assigned to wanda.");
    let shown = b.cmd("zed", "/oncall team:web").unwrap();
    assert!(
        shown.starts_with(
            "web: wanda is on call now until 2026-03-30 09:00 UTC (Mon 09:00 UTC); next: wim."
        ),
        "{shown}"
    );
    b.posts();
    // wanda stands wim in until tomorrow 09:00 (the rotation's zone: UTC).
    let r = b
        .cmd(
            "wanda",
            "/oncall set team:web user:wim until:\"2026-03-25 09:00\"",
        )
        .unwrap();
    assert_eq!(r, "wim is on call for web until 2026-03-25 09:00 UTC.");
    assert_eq!(
        b.posts(),
        vec!["#web On call for web now: @wim until 2026-03-25 09:00 UTC (override set by wanda)."]
    );
    let shown = b.cmd("zed", "/oncall team:web").unwrap();
    assert!(
        shown.starts_with(
            "web: wim is on call now (override set by wanda) until 2026-03-25 09:00 UTC"
        ),
        "{shown}"
    );
    // An alert for web goes to the on-call person: wim now.
    let alert = crate::domain::alert::Alert {
        source: crate::domain::alert::AlertSource::Generic,
        status: crate::domain::alert::AlertStatus::Firing,
        fingerprint: "f1".into(),
        labels: [("alertname", "Down"), ("service", "web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Default::default(),
        starts_at: None,
        generator_url: None,
    };
    b.event(Event::Alerts {
        alerts: vec![alert],
    })
    .unwrap();
    let t = b.ticket(2);
    assert_eq!(t.assignee, Some(u("wim")));
    assert_eq!(t.state, TicketState::Assigned);
    // After the override: wanda again.
    b.at(24 * 60);
    b.cmd("olivia", "/ticket open title:y").unwrap();
    let r = b.cmd("olivia", "/ticket assign id:OPS-3 team:web").unwrap();
    assert_eq!(r, "OPS-3 is now assigned to wanda.");
}

#[test]
fn bad_overrides_are_refused_and_store_nothing() {
    let b = Bench::new();
    b.cmd("bob", "/oncall set team:backend user:bert until:8h")
        .unwrap();
    b.posts();
    let cases = [
        ("bob", "/oncall set team:payments user:bob until:1h", "there is no team `payments`; known teams: backend, infra, web"),
        ("ivan", "/oncall set team:infra user:ivan until:1h", "team infra has no on-call rotation; teams with one: backend, web"),
        ("bob", "/oncall set team:backend user:ivan until:1h", "ivan is not a member of backend; its members are: bob, bella, bert"),
        ("ivan", "/oncall set team:backend user:bob until:1h", "only operators (olivia) or members of backend (bob, bella, bert) may set who is on call for backend"),
        ("bob", "/oncall set team:backend user:bob until:\"2026-03-24 09:00\"", "`until` is 2026-03-24 08:00 UTC, which is not in the future; give a later time"),
        ("bob", "/oncall set team:backend user:bob until:soon", "`until` must be a time such as"),
        ("bob", "/oncall set team:backend user:bella until:2h", "backend already has an override for bert from 2026-03-24 10:00 UTC until 2026-03-24 18:00 UTC; overrides of backend may not overlap"),
    ];
    let before = b
        .view()
        .overrides(&TeamName::parse("backend").unwrap())
        .unwrap();
    for (who, line, want) in cases {
        let got = b.cmd(who, line).unwrap_err();
        assert!(got.contains(want), "{line}\n got: {got}\nwant: {want}");
    }
    assert_eq!(
        b.view()
            .overrides(&TeamName::parse("backend").unwrap())
            .unwrap(),
        before
    );
    assert!(b.posts().is_empty());
}

#[test]
fn a_handoff_is_posted_once_per_shift() {
    let mut b = Bench::new();
    // The first pass of a new database only notes the shifts.
    b.tick();
    assert!(b.posts().is_empty());
    b.at(60);
    b.tick();
    assert!(b.posts().is_empty());
    // Wednesday 09:00 Berlin = 08:00 UTC: bert takes over from bella.
    b.now = chrono::Utc.with_ymd_and_hms(2026, 3, 25, 8, 0, 0).unwrap();
    b.tick();
    assert_eq!(
        b.posts(),
        vec!["#backend On call for backend now: @bert until 2026-03-26 08:00 UTC; next: bob."]
    );
    b.tick();
    assert!(b.posts().is_empty());
}

#[test]
fn report_periods_parse_or_are_refused() {
    let b = Bench::new();
    let got = b.cmd("olivia", "/report period:7x").unwrap_err();
    assert_eq!(
        got,
        "`period` must be a span from 1h to 366d, such as 7d, 24h or 4w; got `7x`"
    );
    let got = b.cmd("olivia", "/report team:nope").unwrap_err();
    assert!(got.starts_with("there is no team `nope`"), "{got}");
    let got = b.cmd("olivia", "/report period:2w").unwrap();
    assert!(got.starts_with("Report for the last 14d"), "{got}");
}

#[test]
fn steps_parse_and_refuse() {
    assert_eq!(
        Step::parse("wait 10m"),
        Ok(Step::Wait(Duration::minutes(10)))
    );
    assert_eq!(Step::parse(" Remind "), Ok(Step::Remind));
    assert!(Step::parse("wait 5s")
        .unwrap_err()
        .contains("a minute or more"));
    assert!(Step::parse("page").unwrap_err().contains("is not a step"));
    assert_eq!(human(Duration::minutes(90)), "1h 30m");
    assert_eq!(human(Duration::minutes(60 * 27)), "1d 3h");
}

/// The card effects queued since the last call (other items left alone),
/// and the card the newest ops post carries.
fn cards(b: &Bench) -> (Vec<crate::engine::Card>, Option<crate::engine::Card>) {
    let mut updates = Vec::new();
    let mut first = None;
    let items = b.view().outbox_pending(10_000).unwrap();
    for i in items {
        match i.effect {
            Effect::Card(c) => {
                b.view.borrow_mut().outbox_done(i.seq).unwrap();
                updates.push(c);
            }
            Effect::Post(p) if p.card.is_some() => first = p.card,
            _ => {}
        }
    }
    (updates, first)
}

#[test]
fn cards_show_deadlines_and_follow_breaches_and_moves() {
    let mut b = Bench::new();
    b.at(0);
    b.cmd(
        "olivia",
        "/ticket open title:\"Checkout down\" priority:p1 team:backend",
    )
    .unwrap();
    let (updates, first) = cards(&b);
    assert!(updates.is_empty(), "a new ticket's card is its first post");
    let card = first.expect("the ops post carries the card");
    assert_eq!(card.state, crate::domain::TicketState::Assigned);
    assert_eq!(card.due, Some(b.now + Duration::minutes(15)));
    assert!(card.missed.is_empty());
    b.posts();

    // Nobody took it: the breach shows on the card; a reminder alone does not.
    b.at(16);
    assert_eq!(b.tick(), 1);
    let (updates, _) = cards(&b);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].missed, ["acknowledge"]);
    b.posts();
    b.at(27);
    b.tick();
    assert!(cards(&b).0.is_empty(), "the on-call page changes no card");
    b.posts();

    // Taken: in progress, due to be resolved.
    b.cmd("bob", "/ticket take id:OPS-1").unwrap();
    let (updates, _) = cards(&b);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, crate::domain::TicketState::InProgress);
    assert_eq!(updates[0].assignee, Some(u("bob")));
    assert_eq!(
        updates[0].due,
        Some(chrono::Utc.with_ymd_and_hms(2026, 3, 24, 14, 0, 0).unwrap())
    );
}

#[test]
fn a_raised_priority_brings_the_resolve_deadline_forward() {
    let mut b = Bench::with(
        r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[deadlines]
p1 = { acknowledge = "15m", resolve = "4h" }
p2 = { acknowledge = "10m", resolve = "1d" }
[[escalation]]
name = "raise"
priorities = ["p2"]
steps = ["raise"]
"#,
    );
    b.at(0);
    b.cmd(
        "olivia",
        "/ticket open title:\"Slow\" priority:p2 team:backend",
    )
    .unwrap();
    let opened = b.now;
    assert_eq!(
        b.ticket(1).sla.unwrap().resolve_due,
        Some(opened + Duration::days(1))
    );
    b.at(11);
    b.tick();
    let t = b.ticket(1);
    assert_eq!(t.priority, crate::domain::Priority::P1);
    assert_eq!(
        t.sla.unwrap().resolve_due,
        Some(opened + Duration::hours(4)),
        "p1's 4h from the opening"
    );
    b.at(4 * 60 + 1);
    assert_eq!(b.tick(), 1);
    assert!(b.ticket(1).sla.unwrap().resolve_breached);
}
