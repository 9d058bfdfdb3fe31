//! Alert routing, grouping, silences and storms on the engine, with a clock
//! the test moves, on the in-memory view.

use std::cell::{Ref, RefCell};
use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::alert::Labels;
use crate::domain::alert::{Alert, AlertSource, AlertStatus};
use crate::domain::{
    Actor, ChannelName, Source, Ticket, TicketId, TicketState, Timestamp, UserName,
};
use crate::engine::tests::post_line;
use crate::engine::Event;
use crate::engine::{Accepted, Decision, Engine, MemoryView, View, Write};
use crate::error::EngineError;

pub(crate) const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
qa_team = "qa"
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.infra]
channel = "infra"
members = ["ivan"]
[teams.qa]
channel = "qa"
members = ["quinn"]

[alerts.default]
stale_after = "2h"

[[alerts.routes]]
name = "web-critical"
match = { service = "web|checkout", severity = "critical" }
team = "backend"
priority = "p1"
group_by = ["alertname", "service"]
resolve_on_recovery = true

[[alerts.routes]]
name = "db"
match = { service = "db.*" }
team = "infra"
priority = "p2"
on_refire = "new"

[[alerts.message_rules]]
channel = "alerts"
pattern = '^\[(?P<status>FIRING|RESOLVED)\] (?P<alertname>\S+) (?P<service>\S+)'
"#;

/// The engine on the in-memory view, with a clock the test moves.
struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn alert(status: AlertStatus, pairs: &[(&str, &str)]) -> Alert {
    let l = labels(pairs);
    Alert {
        source: AlertSource::Alertmanager,
        status,
        fingerprint: crate::domain::alert::fingerprint(&l),
        labels: l,
        annotations: Labels::new(),
        starts_at: None,
        generator_url: None,
    }
}

pub(crate) fn firing(pairs: &[(&str, &str)]) -> Alert {
    alert(AlertStatus::Firing, pairs)
}

fn resolved(pairs: &[(&str, &str)]) -> Alert {
    alert(AlertStatus::Resolved, pairs)
}

impl Bench {
    fn new() -> Bench {
        let config = Config::parse(std::path::Path::new("bot.toml"), CONFIG)
            .unwrap()
            .config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
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

    fn alerts(&self, alerts: Vec<Alert>) -> Accepted {
        self.event(Event::Alerts { alerts })
            .unwrap()
            .accepted
            .unwrap()
    }

    fn cmd(&self, who: &str, line: &str) -> Result<Decision, EngineError> {
        let command = parse_command(line, "OPS").unwrap();
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        };
        if ev.is_query() {
            let r = self.engine.query(&*self.view(), &ev, self.now)?;
            return Ok(Decision {
                reply: Some(r),
                ..Decision::default()
            });
        }
        self.event(ev)
    }

    fn advance(&mut self, d: chrono::Duration) {
        self.now += d;
    }

    fn ticket(&self, n: u64) -> Ticket {
        self.view()
            .ticket(&TicketId::new("OPS", n))
            .unwrap()
            .unwrap()
    }

    fn timeline(&self, n: u64) -> Vec<String> {
        use crate::engine::QueryView;
        self.view()
            .timeline(&TicketId::new("OPS", n))
            .unwrap()
            .into_iter()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
            .collect()
    }

    /// The posts queued since the last call, as `#channel text` or
    /// `#channel›OPS-N text` for threads.
    fn posts(&self) -> Vec<String> {
        let items = self.view().outbox_pending(10_000).unwrap();
        let mut out = Vec::new();
        for i in items {
            self.view.borrow_mut().outbox_done(i.seq).unwrap();
            out.extend(post_line(i.effect));
        }
        out
    }

    fn tickets(&self) -> usize {
        self.view().ticket_count()
    }
}

#[test]
fn routes_pick_team_and_priority_first_match_wins() {
    let b = Bench::new();
    let acc = b.alerts(vec![
        firing(&[
            ("alertname", "Latency"),
            ("service", "checkout"),
            ("severity", "critical"),
        ]),
        firing(&[
            ("alertname", "Latency"),
            ("service", "checkout"),
            ("severity", "warning"),
        ]),
        firing(&[
            ("alertname", "Disk"),
            ("service", "db-2"),
            ("severity", "critical"),
        ]),
    ]);
    assert_eq!(acc.accepted, 3);
    assert_eq!(acc.tickets.len(), 3);
    let (t1, t2, t3) = (b.ticket(1), b.ticket(2), b.ticket(3));
    assert_eq!(
        (t1.team.unwrap().as_str(), t1.priority.as_str()),
        ("backend", "p1")
    );
    // Not critical: no route takes it; the default leaves it to the operators.
    assert_eq!(
        (t2.team, t2.priority.as_str(), t2.state),
        (None, "p3", TicketState::Open)
    );
    // `db.*` comes after web-critical but matches db-2 whatever the severity.
    assert_eq!(
        (t3.team.unwrap().as_str(), t3.priority.as_str()),
        ("infra", "p2")
    );
}

#[test]
fn one_ticket_per_group_with_repeats_and_joins_noted() {
    let b = Bench::new();
    let a1 = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
        ("instance", "web-1"),
    ];
    let a2 = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
        ("instance", "web-2"),
    ];
    let acc = b.alerts(vec![firing(&a1), firing(&a1), firing(&a2)]);
    assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
    b.posts();
    let acc = b.alerts(vec![firing(&a1)]);
    assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
    assert_eq!(b.tickets(), 1);
    let t = b.ticket(1);
    assert_eq!(t.alerts.as_ref().unwrap().count, 4);
    let tl = b.timeline(1);
    assert_eq!(
        &tl[2..],
        [
            "alert: repeat #2: Latency web (web-1)",
            "alert: joined: Latency web (web-2)",
            "alert: repeat #3: Latency web (web-1)"
        ]
    );
    // A repeat is on the record but posts nothing.
    assert!(b.posts().is_empty());
}

#[test]
fn recovery_notes_then_resolves_when_the_route_says_so() {
    let b = Bench::new();
    let a1 = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
        ("instance", "1"),
    ];
    let a2 = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
        ("instance", "2"),
    ];
    b.alerts(vec![firing(&a1), firing(&a2)]);
    b.posts();
    b.alerts(vec![resolved(&a1)]);
    assert_eq!(b.ticket(1).state, TicketState::Assigned);
    assert_eq!(
        b.posts(),
        vec!["#backend OPS-1 · p1 · Latency web — recovered: Latency web (1); 1 still firing"]
    );
    b.alerts(vec![resolved(&a2), resolved(&a2)]);
    let t = b.ticket(1);
    assert_eq!(t.state, TicketState::Resolved);
    assert_eq!(t.resolution.as_deref(), Some("all alerts recovered"));
    let posts = b.posts();
    assert_eq!(posts[0], "#backend OPS-1 · p1 · Latency web — recovered: Latency web (2); no alert of this ticket is firing");
    assert!(posts[1].starts_with("#ops OPS-1 · p1 · Latency web — resolved by alertmanager: all alerts recovered. Operators, verify it"), "{posts:?}");
    assert!(
        posts[1].ends_with("@olivia"),
        "the operator is pinged: {posts:?}"
    );
    // The second resolve of the same alert changed nothing more.
    assert_eq!(posts.len(), 3);

    // A route without resolve_on_recovery only notes it.
    let db = [("alertname", "Disk"), ("service", "db-1")];
    b.alerts(vec![firing(&db), resolved(&db)]);
    assert_eq!(b.ticket(2).state, TicketState::Assigned);
    assert_eq!(b.timeline(2).last().unwrap(), "alert: recovered: Disk db-1");
}

#[test]
fn refiring_after_close_reopens_or_opens_anew_as_the_route_says() {
    let b = Bench::new();
    let web = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
    ];
    b.alerts(vec![firing(&web), resolved(&web)]);
    b.cmd("olivia", "/ticket verify id:OPS-1").unwrap();
    assert_eq!(b.ticket(1).state, TicketState::Closed);
    b.posts();
    let acc = b.alerts(vec![firing(&web)]);
    assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
    let t = b.ticket(1);
    assert_eq!(t.state, TicketState::Assigned);
    assert!(b
        .timeline(1)
        .contains(&"reopened: the alert fired again: Latency web".to_string()));
    let posts = b.posts();
    assert!(
        posts[0].starts_with(
            "#backend OPS-1 · p1 · Latency web — reopened by alertmanager: the alert fired again"
        ),
        "{posts:?}"
    );

    // The db route says "new".
    let db = [("alertname", "Disk"), ("service", "db-1")];
    b.alerts(vec![firing(&db)]);
    b.cmd("olivia", "/ticket resolve id:OPS-2 note:cleaned")
        .unwrap();
    b.cmd("olivia", "/ticket verify id:OPS-2").unwrap();
    let acc = b.alerts(vec![firing(&db)]);
    assert_eq!(acc.tickets, vec![TicketId::new("OPS", 3)]);
    assert_eq!(b.ticket(2).state, TicketState::Closed);
    assert_eq!(b.ticket(3).state, TicketState::Assigned);
    // The group now follows the new ticket.
    b.alerts(vec![firing(&db)]);
    assert_eq!(b.ticket(3).alerts.unwrap().count, 2);
}

#[test]
fn a_fix_that_does_not_hold_goes_back_to_the_team() {
    let b = Bench::new();
    let web = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
    ];
    b.alerts(vec![firing(&web), resolved(&web)]);
    assert_eq!(b.ticket(1).state, TicketState::Resolved);
    b.posts();
    // Before the operator verifies, it fires again.
    b.alerts(vec![firing(&web)]);
    let t = b.ticket(1);
    assert_eq!(t.state, TicketState::Assigned);
    assert_eq!(t.resolution, None);
    let posts = b.posts();
    assert!(
        posts[0].starts_with("#backend OPS-1 · p1 · Latency web — rejected by alertmanager: the alert fired again: Latency web"),
        "{posts:?}"
    );
    let e = b.cmd("olivia", "/ticket verify id:OPS-1").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("cannot verify OPS-1: it is `assigned`"));
}

#[test]
fn a_late_resolve_of_an_earlier_episode_is_ignored() {
    let b = Bench::new();
    let labels_ = [("alertname", "Mem"), ("instance", "h1")];
    let at = |h: u32| Some(chrono::Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap());
    let mut first = firing(&labels_);
    first.starts_at = at(9);
    let mut late_resolve = resolved(&labels_);
    late_resolve.starts_at = at(9);
    let mut again = firing(&labels_);
    again.starts_at = at(11);
    b.alerts(vec![first, resolved(&labels_)]);
    b.alerts(vec![again]);
    // The resolve of the 9 o'clock episode arrives after the 11 o'clock firing.
    let acc = b.alerts(vec![late_resolve]);
    assert!(acc.tickets.is_empty());
    assert_eq!(b.timeline(1).last().unwrap(), "alert: fired again: Mem h1");
    let g = b.view().groups().next().unwrap().unwrap();
    let members: Vec<_> = b.view().group_members(&g.key).map(|m| m.unwrap()).collect();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].1.status, AlertStatus::Firing);
}

#[test]
fn quiet_groups_go_stale_once_and_wake_up_again() {
    let mut b = Bench::new();
    let a = [("alertname", "Mem"), ("instance", "h1")];
    b.alerts(vec![firing(&a)]);
    b.posts();
    let bot_candidates = |b: &Bench| -> Vec<String> {
        b.view()
            .groups()
            .map(|g| g.unwrap())
            .filter(|g| !g.stale)
            .map(|g| g.key)
            .collect()
    };
    b.advance(chrono::Duration::minutes(119));
    b.event(Event::MarkStale {
        groups: bot_candidates(&b),
    })
    .unwrap();
    assert!(b.posts().is_empty(), "not yet");
    b.advance(chrono::Duration::minutes(2));
    b.event(Event::MarkStale {
        groups: bot_candidates(&b),
    })
    .unwrap();
    assert_eq!(
        b.timeline(1).last().unwrap(),
        "stale: no alert for over 2h (route default): marked stale"
    );
    let posts = b.posts();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].starts_with("#ops OPS-1 · p3 · Mem h1 — stale: no alert for over 2h."),
        "{posts:?}"
    );
    // Marked once: a second pass does nothing.
    let all: Vec<String> = b.view().groups().map(|g| g.unwrap().key).collect();
    b.event(Event::MarkStale { groups: all }).unwrap();
    assert!(b.posts().is_empty());
    // The alert comes back.
    b.alerts(vec![firing(&a)]);
    assert!(b
        .timeline(1)
        .contains(&"alert: alerts arrive again; no longer stale".to_string()));
    assert!(!b.view().groups().next().unwrap().unwrap().stale);
}

#[test]
fn unsilence_ends_it_now() {
    let b = Bench::new();
    b.cmd("olivia", "/alert silence matchers:alertname=X duration:2h")
        .unwrap();
    b.cmd("olivia", "/alert unsilence id:1").unwrap();
    let acc = b.alerts(vec![firing(&[("alertname", "X")])]);
    assert_eq!(acc.tickets.len(), 1);
}

#[test]
fn a_chat_line_in_a_ruled_channel_is_an_alert() {
    let b = Bench::new();
    let ev = |channel: &str, text: &str| Event::ChatMessage {
        author: Actor::new(UserName::parse("grafana-bot").unwrap(), Source::Console),
        channel: ChannelName::parse(channel).unwrap(),
        text: text.into(),
    };
    b.event(ev("alerts", "[FIRING] HighLatency web")).unwrap();
    // The same words elsewhere are just chat.
    b.event(ev("backend", "[FIRING] HighLatency web")).unwrap();
    b.event(ev("alerts", "coffee?")).unwrap();
    assert_eq!(b.tickets(), 1);
    let t = b.ticket(1);
    assert_eq!(t.opened_by.as_str(), "monitoring");
    assert!(t
        .description
        .unwrap()
        .starts_with("posted by grafana-bot in #alerts: [FIRING] HighLatency web"));
    b.event(ev("alerts", "[RESOLVED] HighLatency web")).unwrap();
    assert_eq!(
        b.timeline(1).last().unwrap(),
        "alert: recovered: HighLatency web"
    );
}

pub(crate) fn web(i: usize) -> Alert {
    let instance = format!("web-{i}");
    firing(&[
        ("alertname", "Latency"),
        ("service", "web"),
        ("severity", "critical"),
        ("instance", instance.as_str()),
    ])
}

#[test]
fn a_flood_of_one_group_makes_one_post_per_kind_and_keeps_the_record() {
    let b = Bench::new();
    // 500 alerts of one group, each twice, in one batch.
    let mut batch: Vec<Alert> = (0..500).map(web).collect();
    batch.extend((0..500).map(web));
    let acc = b.alerts(batch);
    assert_eq!(acc.accepted, 1000);
    assert_eq!(acc.tickets, vec![TicketId::new("OPS", 1)]);
    let posts = b.posts();
    assert_eq!(posts.len(), 5, "{posts:#?}");
    assert!(
        posts[0].starts_with("#ops New alert ticket OPS-1"),
        "{posts:?}"
    );
    assert_eq!(
        posts[4],
        "#ops›OPS-1 +499 alerts joined this ticket: Latency web (web-1), Latency web (web-2), Latency web (web-3) and 496 more"
    );
    // Counts and timeline as if they had come one by one.
    assert_eq!(b.ticket(1).alerts.unwrap().count, 1000);
    let tl = b.timeline(1);
    assert_eq!(
        tl.iter()
            .filter(|e| e.starts_with("alert: joined: "))
            .count(),
        499
    );
    assert_eq!(
        tl.iter()
            .filter(|e| e.starts_with("alert: repeat #2: "))
            .count(),
        500
    );
    let g = b.view().groups().next().unwrap().unwrap();
    assert_eq!(g.firing, 500);
    assert_eq!(b.view().group_members(&g.key).count(), 500);

    // All recover in one batch: one post, then the resolve it leads to.
    let resolved_all: Vec<Alert> = (0..500)
        .map(|i| {
            let mut a = web(i);
            a.status = AlertStatus::Resolved;
            a
        })
        .collect();
    b.alerts(resolved_all);
    let posts = b.posts();
    assert_eq!(
        posts[0],
        "#backend OPS-1 · p1 · Latency web — 500 alerts recovered: Latency web (web-0), Latency web (web-1), Latency web (web-2) and 497 more; no alert of this ticket is firing"
    );
    assert!(
        posts[1].starts_with(
            "#ops OPS-1 · p1 · Latency web — resolved by alertmanager: all alerts recovered."
        ),
        "{posts:?}"
    );
    assert_eq!(posts.len(), 3, "{posts:#?}");
    assert_eq!(b.ticket(1).state, TicketState::Resolved);

    // They fire again: back to the team, and one post for the lot.
    b.alerts((0..500).map(web).collect());
    let posts = b.posts();
    assert!(posts[0].starts_with("#backend OPS-1 · p1 · Latency web — rejected by alertmanager: the alert fired again: Latency web (web-0)"), "{posts:?}");
    assert_eq!(
        posts.last().unwrap(),
        "#backend OPS-1 · p1 · Latency web — 500 alerts fired again: Latency web (web-0), Latency web (web-1), Latency web (web-2) and 497 more"
    );
    assert_eq!(posts.len(), 3, "{posts:#?}");
    assert_eq!(b.view().groups().next().unwrap().unwrap().firing, 500);
}

/// The bytes an event writes, counted as the store encodes them.
fn written(writes: &[Write]) -> usize {
    let len = |v: Result<Vec<u8>, serde_json::Error>| v.map(|v| v.len()).unwrap_or(0);
    writes
        .iter()
        .map(|w| match w {
            Write::Ticket(t) => len(serde_json::to_vec(t)),
            Write::Timeline(_, e) => len(serde_json::to_vec(e)),
            Write::Effect(e) => len(serde_json::to_vec(e)),
            Write::Group(g) => len(serde_json::to_vec(g)),
            Write::Member(k, fp, m) => k.len() + fp.len() + len(serde_json::to_vec(m)),
            _ => 0,
        })
        .sum()
}

#[test]
fn an_alert_costs_the_same_whatever_the_size_of_its_group() {
    let b = Bench::new();
    let mut size = 0;
    let mut costs = Vec::new();
    for target in [10, 3000] {
        b.alerts((size..target).map(web).collect());
        size = target;
        // One new alert of the group, one repeat, one recovery.
        let mut resolve = web(1);
        resolve.status = AlertStatus::Resolved;
        let mut cost = Vec::new();
        for a in [web(size), web(0), resolve] {
            let d = b.event(Event::Alerts { alerts: vec![a] }).unwrap();
            cost.push((d.writes.len(), written(&d.writes)));
        }
        size += 1;
        b.alerts(vec![web(1)]);
        costs.push(cost);
    }
    for (small, big) in costs[0].iter().zip(&costs[1]) {
        assert_eq!(small.0, big.0, "records written: {costs:?}");
        // A few more digits in the counters and names, no more.
        assert!(big.1 <= small.1 + 32, "bytes written: {costs:?}");
    }
}
