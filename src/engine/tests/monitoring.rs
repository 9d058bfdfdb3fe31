//! Monitoring on the engine, with a clock the test moves. Maintenance
//! windows: one-off, recurring over a DST change, of `bot.toml`, opened by
//! a deploy, ending with their alerts still firing, and bad input.
//! Heartbeats: missed, returned, missed during downtime, Watchdog beats.
//! Flapping: enter, hold, leave.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::{Actor, ChannelName, Source, TicketId, TicketState, Timestamp, UserName};
use crate::engine::tests::alerts::alert;
use crate::engine::tests::post_line;
use crate::engine::{Decision, Engine, Event, MemoryView, QueryView, View};
use crate::error::EngineError;

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.infra]
channel = "infra"
members = ["ivan"]

[[alerts.routes]]
name = "web"
match = { service = "web" }
team = "backend"
priority = "p2"
group_by = ["alertname", "service"]
resolve_on_recovery = true
flap = { changes = 3, within = "30m" }

[[alerts.routes]]
name = "db"
match = { service = "db" }
team = "infra"
priority = "p2"

[monitoring]
max_maintenance = "6h"
time_zone = "Europe/Berlin"

[[maintenance]]
name = "backups"
matchers = "service=db job=backup"
every = "weekly"
day = "sunday"
start = "03:00"
duration = "1h"
team = "infra"
comment = "weekly backup"

[heartbeats.prometheus]
every = "5m"
grace = "1m"
team = "infra"
priority = "p1"
alertname = "Watchdog"

[heartbeats.backup-job]
every = "1h"
"#;

struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

fn web(name: &str, status: AlertStatus) -> Alert {
    alert(status, &[("alertname", name), ("service", "web")])
}

impl Bench {
    fn new(now: Timestamp) -> Bench {
        Bench::with(std::path::Path::new("bot.toml"), CONFIG, now)
    }

    fn with(file: &std::path::Path, text: &str, now: Timestamp) -> Bench {
        let config = Config::parse(file, text).unwrap().config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            now,
        }
    }

    fn event(&self, ev: Event) -> Result<Decision, EngineError> {
        let mut view = self.view.borrow_mut();
        let d = self.engine.decide(&*view, &ev, self.now)?;
        view.apply(d.writes.clone());
        Ok(d)
    }

    /// Runs a command; the reply's text, or the refusal's.
    fn cmd(&self, who: &str, line: &str) -> Result<String, String> {
        let command = parse_command(line, "OPS").map_err(|e| e.to_string())?;
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        };
        let d = if ev.is_query() {
            self.engine
                .query(&*self.view.borrow(), &ev, self.now)
                .map(|r| Decision {
                    reply: Some(r),
                    ..Decision::default()
                })
        } else {
            self.event(ev)
        };
        d.map(|d| d.reply.map(|r| r.body.to_plain()).unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    fn alerts(&self, alerts: Vec<Alert>) -> Vec<TicketId> {
        self.event(Event::Alerts { alerts })
            .unwrap()
            .accepted
            .unwrap()
            .tickets
    }

    /// The timer's pass: a maintenance event when the engine says one is due.
    fn tick(&self) -> bool {
        let due = self
            .engine
            .maintenance_due(&*self.view.borrow(), self.now)
            .unwrap();
        if due {
            self.event(Event::Maintenance).unwrap();
        }
        due
    }

    /// The timer's pass for heartbeats.
    fn check(&self) -> bool {
        let due = self
            .engine
            .heartbeats_due(&*self.view.borrow(), self.now)
            .unwrap();
        if due {
            self.event(Event::HeartbeatCheck).unwrap();
        }
        due
    }

    fn ticket(&self, n: u64) -> crate::domain::Ticket {
        self.view
            .borrow()
            .ticket(&TicketId::new("OPS", n))
            .unwrap()
            .unwrap()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn posts(&self) -> Vec<String> {
        let items = self.view.borrow().outbox_pending(10_000).unwrap();
        let mut out = Vec::new();
        for i in items {
            self.view.borrow_mut().outbox_done(i.seq).unwrap();
            out.extend(post_line(i.effect));
        }
        out
    }

    fn tickets(&self) -> usize {
        self.view.borrow().ticket_count()
    }

    fn windows(&self) -> Vec<crate::domain::maintenance::Window> {
        self.view.borrow().maintenance().unwrap().windows
    }

    fn timeline(&self, n: u64) -> Vec<String> {
        self.view
            .borrow()
            .timeline(&TicketId::new("OPS", n))
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect()
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Timestamp {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[test]
fn a_window_records_alerts_quietly_and_hands_on_what_still_fires_when_it_ends() {
    let mut b = Bench::new(at(2026, 3, 2, 10, 0));
    let reply = b
        .cmd(
            "bob",
            "/maintenance start matchers:\"service=web\" duration:30m comment:\"cache migration\"",
        )
        .unwrap();
    assert_eq!(
        reply,
        "Maintenance window 1 is in force until 2026-03-02 10:30 UTC; /maintenance end id:1 ends it sooner."
    );
    assert_eq!(
        b.posts(),
        ["#backend Maintenance window 1 (by bob) is in force until 2026-03-02 10:30 UTC: alerts matching service=web are recorded, but open no ticket, page nobody and post nothing. — cache migration"]
    );

    // During it: no ticket, no post; counted. Another service's alert is
    // not in the window.
    b.advance(Duration::minutes(5));
    let touched = b.alerts(vec![
        web("Latency", AlertStatus::Firing),
        web("Errors", AlertStatus::Firing),
        alert(
            AlertStatus::Firing,
            &[("alertname", "Disk"), ("service", "db")],
        ),
    ]);
    assert_eq!(touched, [TicketId::new("OPS", 1)], "only the db alert");
    assert_eq!(b.tickets(), 1);
    let posts = b.posts();
    assert!(
        posts
            .iter()
            .all(|p| !p.contains("Latency") && !p.contains("Errors")),
        "{posts:?}"
    );
    // A resolve lets one go: it is no longer firing when the window ends.
    b.alerts(vec![web("Errors", AlertStatus::Resolved)]);
    assert!(b.posts().is_empty());
    let listed = b.cmd("zed", "/maintenance list").unwrap();
    assert_eq!(
        listed,
        "Maintenance windows:\n  1 · in force until 2026-03-02 10:30 UTC · by bob · service=web · 3 alerts recorded, 1 still firing — cache migration\n  backups · weekly on Sun at 03:00 for 1h (Europe/Berlin) · [[maintenance]] of bot.toml · service=db job=backup"
    );
    assert!(!b.tick(), "nothing due while it runs");

    // It ends by itself: said once, and the alert still firing is a new
    // alert now (a ticket for its team).
    b.advance(Duration::minutes(25));
    assert!(b.tick());
    let posts = b.posts();
    assert_eq!(
        posts[0],
        "#backend Maintenance window 1 (service=web) ended: 3 alerts recorded during it; 1 alert still firing is handled now as a new alert."
    );
    assert!(
        posts
            .iter()
            .any(|p| p.contains("OPS-2") && p.contains("Latency")),
        "{posts:?}"
    );
    assert_eq!(b.tickets(), 2);
    assert!(b.windows().is_empty());
    assert!(!b.tick(), "ended once");
    assert!(b.posts().is_empty());
    // And alerts now open tickets again.
    b.alerts(vec![web("Errors", AlertStatus::Firing)]);
    assert_eq!(b.tickets(), 3);
}

#[test]
fn an_existing_ticket_notes_what_the_window_took_in_and_no_one_hears() {
    let mut b = Bench::new(at(2026, 3, 2, 10, 0));
    b.alerts(vec![web("Latency", AlertStatus::Firing)]);
    b.posts();
    b.cmd(
        "olivia",
        "/maintenance start matchers:service=web duration:1h",
    )
    .unwrap();
    b.posts();
    b.advance(Duration::minutes(1));
    b.alerts(vec![web("Latency", AlertStatus::Resolved)]);
    b.alerts(vec![web("Latency", AlertStatus::Firing)]);
    assert!(b.posts().is_empty());
    let t = b
        .view
        .borrow()
        .ticket(&TicketId::new("OPS", 1))
        .unwrap()
        .unwrap();
    assert_eq!(
        t.state,
        TicketState::Assigned,
        "the recovery resolved nothing"
    );
    let tl = b.timeline(1);
    assert!(
        tl.contains(
            &"during maintenance window 1 (recorded, no post): recovered: Latency web".to_string()
        ),
        "{tl:?}"
    );
    assert!(
        tl.contains(
            &"during maintenance window 1 (recorded, no post): fired: Latency web".to_string()
        ),
        "{tl:?}"
    );
    // Ended by hand: said once in the team's channel.
    assert_eq!(
        b.cmd("bella", "/maintenance end id:1").unwrap(),
        "Maintenance window 1 ended (2 alerts recorded during it)."
    );
    let posts = b.posts();
    assert_eq!(
        posts[0],
        "#backend Maintenance window 1 (service=web) was ended by bella: 2 alerts recorded during it; 1 alert still firing is handled now as a new alert."
    );
    assert_eq!(b.tickets(), 1, "the firing alert joins its open ticket");
    assert!(!b.tick());
}

#[test]
fn bad_windows_are_refused_and_store_nothing() {
    let b = Bench::new(at(2026, 3, 2, 10, 0));
    let refusals = [
        ("bob", "/maintenance start matchers:\" \" duration:1h", "`matchers` must not be empty"),
        ("bob", "/maintenance start matchers:service duration:1h", "is not a matcher"),
        (
            "bob",
            "/maintenance start matchers:service=web duration:7h",
            "a maintenance window lasts at most 6h ([monitoring] max_maintenance); got 7h",
        ),
        (
            "bob",
            "/maintenance schedule matchers:service=web from:\"2026-03-01 09:00\" until:\"2026-03-01 10:00\"",
            "that window is in the past: it would have ended 2026-03-01 09:00 UTC; give times to come",
        ),
        (
            "bob",
            "/maintenance schedule matchers:service=web from:\"2026-03-03 10:00\" until:\"2026-03-03 09:00\"",
            "`until` (2026-03-03 08:00 UTC) must come after `from` (2026-03-03 09:00 UTC)",
        ),
        (
            "bob",
            "/maintenance schedule matchers:service=web from:tomorrow until:\"2026-03-03 09:00\"",
            "`from` must be a time such as \"2026-03-30 22:00\" (in Europe/Berlin) or 2026-03-30T22:00:00Z; got `tomorrow`",
        ),
        (
            "bob",
            "/maintenance schedule matchers:service=web from:\"2026-03-03 10:00\" until:\"2026-03-03 12:00\" every:monthly",
            "`every` must be daily or weekly; got `monthly`",
        ),
        (
            "ivan",
            "/maintenance start matchers:service=web duration:1h",
            "only operators and team backend (who own these alerts) may start a maintenance window for them",
        ),
        (
            "bob",
            "/maintenance start matchers:alertname=X duration:1h",
            "only operators may start a maintenance window for them: no team owns these alerts",
        ),
        ("zed", "/maintenance start matchers:service=web duration:1h", "only operators, team members may run /maintenance start"),
        ("bob", "/maintenance end id:4", "there is no maintenance window 4; /maintenance list shows them"),
    ];
    for (who, line, want) in refusals {
        let got = b.cmd(who, line).unwrap_err();
        assert!(got.contains(want), "{line}\n got: {got}\nwant: {want}");
    }
    assert!(b.windows().is_empty());
    assert!(b.posts().is_empty());
    assert_eq!(
        b.cmd("zed", "/maintenance list").unwrap(),
        "Maintenance windows:\n  backups · weekly on Sun at 03:00 for 1h (Europe/Berlin) · [[maintenance]] of bot.toml · service=db job=backup"
    );
}

#[test]
fn a_daily_window_keeps_its_local_time_over_a_dst_change() {
    // Europe/Berlin moves its clocks forward on 2026-03-29 at 02:00.
    let mut b = Bench::new(at(2026, 3, 27, 12, 0));
    let reply = b
        .cmd(
            "bob",
            "/maintenance schedule matchers:service=web from:\"2026-03-28 01:00\" until:\"2026-03-28 01:30\" every:daily",
        )
        .unwrap();
    assert_eq!(
        reply,
        "Maintenance window 1 for service=web is scheduled from 2026-03-28 00:00 UTC until 2026-03-28 00:30 UTC, daily (Europe/Berlin local time); /maintenance list shows it, /maintenance end id:1 cancels it."
    );
    assert!(b.posts().is_empty(), "said when it starts");
    assert!(!b.tick());

    let mut starts = Vec::new();
    for _ in 0..3 {
        // To its start, then past its end.
        let w = b.windows().remove(0);
        b.now = w.from;
        assert!(b.tick());
        b.alerts(vec![web("Nightly", AlertStatus::Firing)]);
        b.alerts(vec![web("Nightly", AlertStatus::Resolved)]);
        b.now = w.until;
        assert!(b.tick());
        let posts = b.posts();
        assert_eq!(posts.len(), 2, "{posts:?}");
        assert!(posts[0].contains("is in force until"), "{posts:?}");
        assert!(
            posts[1].contains("ended: 2 alerts recorded during it."),
            "{posts:?}"
        );
        starts.push(w.from);
    }
    // 01:00 in Berlin each night: 00:00 UTC before the change, 23:00 UTC after.
    assert_eq!(
        starts,
        [
            at(2026, 3, 28, 0, 0),
            at(2026, 3, 29, 0, 0),
            at(2026, 3, 29, 23, 0)
        ]
    );
    assert_eq!(b.tickets(), 0, "nothing opened a ticket");
    assert_eq!(b.windows()[0].from, at(2026, 3, 30, 23, 0));

    // A week of downtime: the missed nights are not posted one by one;
    // the window moves on to the next one to come.
    b.now = at(2026, 4, 7, 12, 0);
    assert!(b.tick());
    assert!(b.posts().is_empty(), "it never started: nothing to say");
    assert_eq!(b.windows()[0].from, at(2026, 4, 7, 23, 0));
    // Ended for good.
    b.cmd("bob", "/maintenance end id:1").unwrap();
    assert!(b.windows().is_empty());
}

#[test]
fn a_window_of_bot_toml_opens_and_ends_by_itself_each_week() {
    // Sunday 2026-03-22, 03:00 in Berlin is 02:00 UTC.
    let mut b = Bench::new(at(2026, 3, 22, 1, 0));
    assert!(!b.tick());
    b.now = at(2026, 3, 22, 2, 0);
    assert!(b.tick());
    assert_eq!(
        b.posts(),
        ["#infra Maintenance window 1 ([[maintenance]] backups of bot.toml) is in force until 2026-03-22 03:00 UTC: alerts matching service=db job=backup are recorded, but open no ticket, page nobody and post nothing. — weekly backup"]
    );
    assert!(!b.tick(), "started once");
    let backup = alert(
        AlertStatus::Firing,
        &[("alertname", "Slow"), ("service", "db"), ("job", "backup")],
    );
    assert!(b.alerts(vec![backup.clone()]).is_empty());
    b.now = at(2026, 3, 22, 3, 0);
    assert!(b.tick());
    let posts = b.posts();
    assert!(posts[0].starts_with("#infra Maintenance window 1 (service=db job=backup) ended: 1 alert recorded during it; 1 alert still firing"), "{posts:?}");
    assert_eq!(b.tickets(), 1, "still firing: a ticket now");
    assert!(!b.tick(), "ended once; not opened again");
    // The next Sunday, after the DST change: 03:00 in Berlin is 01:00 UTC.
    b.now = at(2026, 3, 29, 1, 0);
    assert!(b.tick());
    assert!(b.posts()[0].contains("Maintenance window 2"));
    b.now = at(2026, 3, 29, 1, 30);
    // Bot down past its end: it ends once on start.
    b.now = at(2026, 3, 29, 9, 0);
    assert!(b.tick());
    assert_eq!(b.posts().len(), 1);
    assert!(!b.tick());
}

#[test]
fn a_deploy_opens_a_window_for_its_service_and_environment_and_says_so() {
    // The shipped bot.toml, with a window for deploys to staging.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
    let shipped = include_str!("../../../bot.toml");
    let text = shipped.replace(
        "[services.web.environments.staging]\n",
        "[services.web.environments.staging]\nmaintenance = \"10m\"\n",
    );
    assert_ne!(text.as_str(), shipped);
    let mut b = Bench::with(&file, &text, at(2026, 3, 2, 12, 0));
    let reply = b
        .cmd("bob", "/deploy service:web env:staging version:1.4.2")
        .unwrap();
    assert!(reply.starts_with("Started RUN-1"), "{reply}");
    let posts = b.posts();
    assert!(
        posts.iter().any(|p| p.contains("RUN-1") && p.ends_with(
            "· maintenance window 1 until 12:10 UTC: alerts matching service=web env=staging are recorded, no tickets"
        )),
        "{posts:?}"
    );
    assert!(
        !posts.iter().any(|p| p.contains("is in force")),
        "said in the progress message only: {posts:?}"
    );
    let listed = b.cmd("olivia", "/maintenance list").unwrap();
    assert!(
        listed.contains(
            "1 · in force until 2026-03-02 12:10 UTC · for deploy RUN-1 · service=web env=staging"
        ),
        "{listed}"
    );

    // Alerts of staging are recorded; production's are not in the window.
    b.advance(Duration::minutes(2));
    let staging = alert(
        AlertStatus::Firing,
        &[
            ("alertname", "HighErrorRate"),
            ("service", "web"),
            ("env", "staging"),
        ],
    );
    let production = alert(
        AlertStatus::Firing,
        &[
            ("alertname", "HighErrorRate"),
            ("service", "web"),
            ("env", "production"),
        ],
    );
    assert_eq!(b.alerts(vec![staging.clone(), production]).len(), 1);
    assert_eq!(b.tickets(), 1);
    b.posts();
    // Ten minutes on, it ends by itself; staging still fires: a ticket now.
    b.advance(Duration::minutes(8));
    assert!(b.tick());
    let posts = b.posts();
    assert!(
        posts[0].starts_with("#backend Maintenance window 1 (service=web env=staging) ended: 1 alert recorded during it; 1 alert still firing"),
        "{posts:?}"
    );
    // Grouped by alert name and service (the shipped routes): it joins
    // production's ticket, as a new alert of its group.
    assert_eq!(b.tickets(), 1);
    let tl = b.timeline(1);
    assert!(
        tl.iter()
            .any(|e| e.starts_with("joined: HighErrorRate web")),
        "{tl:?}"
    );
    // A deploy to production (no `maintenance`) opens none.
    b.cmd("bob", "/deploy service:web env:production version:1.4.2")
        .unwrap();
    assert!(b.windows().is_empty());
}

#[test]
fn a_deploy_waiting_for_approval_opens_its_window_when_approved() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
    let shipped = include_str!("../../../bot.toml");
    let text = shipped.replace(
        "[services.web.environments.production]\n",
        "[services.web.environments.production]\nmaintenance = \"15m\"\n",
    );
    assert_ne!(text.as_str(), shipped);
    let mut b = Bench::with(&file, &text, at(2026, 3, 2, 12, 0));
    b.cmd("bob", "/deploy service:web env:production version:1.4.2")
        .unwrap();
    assert!(b.windows().is_empty(), "not while it waits");
    b.posts();
    b.advance(Duration::minutes(5));
    b.cmd("rita", "/approve run:RUN-1").unwrap();
    let w = b.windows();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].from, w[0].until),
        (at(2026, 3, 2, 12, 5), at(2026, 3, 2, 12, 20))
    );
    let posts = b.posts();
    assert!(
        posts.iter().any(|p| p.contains("RUN-1") && p.ends_with(
            "· maintenance window 1 until 12:20 UTC: alerts matching service=web env=production are recorded, no tickets"
        )),
        "{posts:?}"
    );
}

fn watchdog() -> Alert {
    alert(
        AlertStatus::Firing,
        &[("alertname", "Watchdog"), ("severity", "none")],
    )
}

#[test]
fn a_silent_heartbeat_opens_one_ticket_and_beats_coming_back_resolve_it() {
    let mut b = Bench::new(at(2026, 3, 2, 10, 0));
    // The first pass starts waiting for both; nothing is late yet.
    assert!(b.check());
    assert_eq!(b.tickets(), 0);
    assert!(!b.check());
    // Watchdog beats for `prometheus`: accepted, never a ticket.
    b.advance(Duration::minutes(4));
    let touched = b.alerts(vec![watchdog()]);
    assert!(touched.is_empty());
    assert_eq!(b.tickets(), 0);
    assert!(b.posts().is_empty());
    // Five minutes and the grace after the last beat: a ticket for infra.
    b.advance(Duration::minutes(5) + Duration::seconds(59));
    assert!(!b.check(), "within the grace");
    b.advance(Duration::seconds(1));
    assert!(b.check());
    assert_eq!(b.tickets(), 1);
    let t = b.ticket(1);
    assert_eq!(
        t.title,
        "monitoring for prometheus has been silent since 2026-03-02 10:04 UTC"
    );
    assert_eq!(t.priority, crate::domain::Priority::P1);
    assert_eq!(t.team.as_ref().map(|t| t.as_str()), Some("infra"));
    assert_eq!(t.state, TicketState::Assigned);
    let posts = b.posts();
    assert!(
        posts
            .iter()
            .any(|p| p.starts_with("#ops New heartbeat ticket OPS-1")),
        "{posts:?}"
    );
    assert!(posts.iter().any(|p| p.starts_with("#infra")), "{posts:?}");
    // Once per silence.
    b.advance(Duration::minutes(30));
    assert!(!b.check());
    assert_eq!(b.tickets(), 1);
    // Beats return (by the hook this time): resolved for verification.
    b.event(Event::Heartbeat {
        name: "prometheus".into(),
    })
    .unwrap();
    let t = b.ticket(1);
    assert_eq!(t.state, TicketState::Resolved);
    assert_eq!(
        t.resolution.as_deref(),
        Some("heartbeat prometheus beats again (silent since 2026-03-02 10:04 UTC)")
    );
    assert!(!b.posts().is_empty(), "the resolve is said");
    // Silent again later: a new ticket.
    b.advance(Duration::minutes(6));
    assert!(b.check());
    assert_eq!(b.tickets(), 2);
}

#[test]
fn a_heartbeat_missed_while_the_bot_was_down_fires_once_after_it_starts() {
    let mut b = Bench::new(at(2026, 3, 2, 10, 0));
    assert!(b.check());
    b.event(Event::Heartbeat {
        name: "backup-job".into(),
    })
    .unwrap();
    b.event(Event::Heartbeat {
        name: "prometheus".into(),
    })
    .unwrap();
    // Down for a day: on the first pass, each silent heartbeat fires once.
    b.advance(Duration::days(1));
    assert!(b.check());
    assert_eq!(b.tickets(), 2);
    let titles: Vec<String> = (1..=2).map(|n| b.ticket(n).title).collect();
    assert!(
        titles.contains(
            &"monitoring for backup-job has been silent since 2026-03-02 10:00 UTC".to_string()
        ),
        "{titles:?}"
    );
    let backup = (1..=2)
        .map(|n| b.ticket(n))
        .find(|t| t.title.contains("backup-job"))
        .unwrap();
    assert_eq!(
        backup.priority,
        crate::domain::Priority::P2,
        "p2 unless set"
    );
    assert_eq!(backup.team, None);
    assert!(!b.check());
    b.advance(Duration::hours(5));
    assert!(!b.check(), "still once");
    assert_eq!(b.tickets(), 2);
}

#[test]
fn an_unknown_heartbeat_is_refused_and_stores_nothing() {
    let b = Bench::new(at(2026, 3, 2, 10, 0));
    let e = b
        .event(Event::Heartbeat {
            name: "nope".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no heartbeat `nope` is configured; heartbeats: backup-job, prometheus"
    );
    assert!(b.view.borrow().heartbeats().unwrap().beats.is_empty());
    // A resolved Watchdog is no beat, and no ticket either.
    b.alerts(vec![alert(
        AlertStatus::Resolved,
        &[("alertname", "Watchdog")],
    )]);
    assert!(b.view.borrow().heartbeats().unwrap().beats.is_empty());
    assert_eq!(b.tickets(), 0);
}

#[test]
fn a_flapping_group_says_so_once_holds_its_posts_and_settles_after_a_quiet_window() {
    let mut b = Bench::new(at(2026, 3, 2, 10, 0));
    let flip = |b: &mut Bench, status: AlertStatus| {
        b.advance(Duration::minutes(1));
        b.alerts(vec![web("Latency", status)]);
    };
    b.alerts(vec![web("Latency", AlertStatus::Firing)]);
    b.posts();
    // Three changes within 30m: not yet flapping; each is posted.
    flip(&mut b, AlertStatus::Resolved);
    flip(&mut b, AlertStatus::Firing);
    flip(&mut b, AlertStatus::Resolved);
    let posts = b.posts();
    assert!(posts.iter().all(|p| !p.contains("flapping")), "{posts:?}");
    assert!(posts.iter().any(|p| p.contains("recovered")), "{posts:?}");
    assert_eq!(
        b.ticket(1).state,
        TicketState::Resolved,
        "resolved on recovery"
    );
    // The fourth: flapping, said once (after the refiring it follows).
    flip(&mut b, AlertStatus::Firing);
    let posts = b.posts();
    let flapping: Vec<&String> = posts.iter().filter(|p| p.contains("flapping")).collect();
    assert_eq!(flapping.len(), 1, "{posts:?}");
    assert!(
        flapping[0].starts_with("#backend OPS-1")
            && flapping[0].contains(
                "— flapping: its alerts changed between firing and resolved 4 times within 30m."
            ),
        "{posts:?}"
    );
    assert_eq!(b.ticket(1).alerts.unwrap().flaps, 4, "the card's count");
    let state = b.ticket(1).state;
    assert_ne!(
        state,
        TicketState::Resolved,
        "sent back to the team when it fired again"
    );
    // Held: more changes, no posts, no resolve on recovery; all on record.
    for _ in 0..3 {
        flip(&mut b, AlertStatus::Resolved);
        flip(&mut b, AlertStatus::Firing);
    }
    flip(&mut b, AlertStatus::Resolved);
    assert!(b.posts().is_empty(), "held while flapping");
    assert_eq!(b.ticket(1).state, state, "no resolve while it flaps");
    let tl = b.timeline(1);
    assert_eq!(
        tl.iter()
            .filter(|e| e.starts_with("recovered: Latency web"))
            .count(),
        6,
        "{tl:?}"
    );
    assert_eq!(
        tl.iter()
            .filter(|e| e.starts_with("flapping: 4 changes"))
            .count(),
        1,
        "{tl:?}"
    );
    assert_eq!(
        b.ticket(1).alerts.unwrap().flaps,
        4,
        "at most changes + 1 kept"
    );
    // Resolved and quiet for 30m: the timer settles it; said once, and the
    // ticket is resolved as its route says.
    let key = b
        .engine
        .config()
        .alerts
        .route_for(&web("Latency", AlertStatus::Firing).labels)
        .group_key(&web("Latency", AlertStatus::Firing));
    b.advance(Duration::minutes(29));
    b.event(Event::MarkStale {
        groups: vec![key.clone()],
    })
    .unwrap();
    assert!(b.posts().is_empty(), "not yet: {key}");
    b.advance(Duration::minutes(1));
    b.event(Event::MarkStale {
        groups: vec![key.clone()],
    })
    .unwrap();
    let posts = b.posts();
    assert!(
        posts.iter().any(|p| p.starts_with("#backend OPS-1")
            && p.ends_with("— no longer flapping: resolved for 30m; its posts resume.")),
        "{posts:?}"
    );
    assert_eq!(b.ticket(1).state, TicketState::Resolved);
    assert_eq!(b.ticket(1).alerts.unwrap().flaps, 0);
    b.event(Event::MarkStale { groups: vec![key] }).unwrap();
    assert!(b.posts().is_empty(), "settled once");
    // Posts resume.
    flip(&mut b, AlertStatus::Firing);
    assert!(!b.posts().is_empty());
}
