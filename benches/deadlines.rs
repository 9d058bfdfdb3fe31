//! Deadline timers and reports at scale.
//!
//! 1. 100,000 open tickets carrying deadlines (and, for 100 of them, a
//!    deadline just passed): the cost of one timer pass through the running
//!    bot (due-index scan, the engine's decision, commit and flush), with
//!    nothing due and with 100 tickets due; the process's RSS before and
//!    after 2,000 passes.
//! 2. `/report` over 1,000,000 timeline entries (100,000 tickets × 10).
//!
//! Run: `cargo bench --bench deadlines`.

mod common;
use common::{machine, ms, percentile};

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use opsbot::commands::ReportPeriod;
use opsbot::config::Config;
use opsbot::domain::{
    ChannelName, EntryKind, Priority, Sla, Source, TeamName, Ticket, TicketId, TicketState,
    TimelineEntry, Timestamp, UserName,
};
use opsbot::engine::{Engine, Write};
use opsbot::runtime::{Bot, Clock};
use opsbot::store::Store;

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.infra]
channel = "infra"
members = ["ivan"]
[deadlines]
p1 = { acknowledge = "15m", resolve = "4h" }
p3 = { acknowledge = "4h", resolve = "3d" }
[[escalation]]
name = "default"
steps = ["remind", "wait 10m", "team", "wait 30m", "operators"]
"#;

struct Fixed(Timestamp);
impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ticket(num: u64, at: Timestamp, team: &str, state: TicketState, sla: Option<Sla>) -> Ticket {
    Ticket {
        id: TicketId::new("OPS", num),
        title: format!("ticket {num}"),
        description: None,
        priority: if num % 7 == 0 {
            Priority::P1
        } else {
            Priority::P3
        },
        state,
        team: Some(TeamName::parse(team).expect("team")),
        assignee: None,
        opened_by: UserName::parse("olivia").expect("name"),
        source: Source::Console,
        channel: ChannelName::parse("ops").expect("channel"),
        created_at: at,
        updated_at: at,
        resolution: None,
        timeline_len: 0,
        alerts: None,
        customer: None,
        sla,
    }
}

/// Writes `n` tickets (and whatever `extra` adds per ticket) in
/// transactions of 1,000 tickets.
fn fill(store: &Store, n: u64, per: impl Fn(u64) -> Vec<Write>) {
    let nums: Vec<u64> = (1..=n).collect();
    for chunk in nums.chunks(1000) {
        store
            .apply_batch(chunk, |_, num| Ok((per(*num), ())), chrono::Utc::now)
            .expect("batch")
            .into_iter()
            .for_each(|r| r.expect("write"));
    }
    store.flush().expect("flush");
}

fn timers(t0: Timestamp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
        .expect("config")
        .config;
    let store = Store::open(&config.storage_path).expect("store");
    const N: u64 = 100_000;
    let started = Instant::now();
    // All open with deadlines hours ahead, but 100 whose acknowledge
    // deadline passes at t0 + 15m.
    fill(&store, N, |num| {
        let soon = num % 1000 == 0;
        let sla = Sla {
            ack_due: Some(t0 + chrono::Duration::minutes(if soon { 15 } else { 240 })),
            resolve_due: Some(t0 + chrono::Duration::days(3)),
            ..Sla::default()
        };
        vec![Write::Ticket(ticket(
            num,
            t0,
            "backend",
            TicketState::Assigned,
            Some(sla),
        ))]
    });
    println!(
        "filled {N} open tickets with deadlines in {:.1} s; timers pending: {}",
        started.elapsed().as_secs_f64(),
        store.timers_pending()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let quiet = t0 + chrono::Duration::minutes(5);
    let (bot, writer) = Bot::start(
        store.clone(),
        Engine::new(Arc::new(config.clone())),
        Arc::new(Fixed(quiet)),
    )
    .expect("bot");
    // Nothing due: 2,000 passes, RSS before and after.
    let mut lat = Vec::new();
    rt.block_on(async {
        for _ in 0..100 {
            bot.timer_pass(quiet).await;
        }
        let rss0 = rss_kib();
        for _ in 0..2000 {
            let s = Instant::now();
            let due = bot.timer_pass(quiet).await;
            lat.push(s.elapsed());
            assert_eq!(due, 0);
        }
        let rss1 = rss_kib();
        lat.sort();
        println!(
            "timer pass, nothing due of {N}: p50 {} p99 {} max {}; RSS {} MiB before, {} MiB after 2,000 passes",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
            rss0 / 1024,
            rss1 / 1024
        );
    });
    drop(bot);
    writer.join();
    // 100 due: breach + the chain's first steps, posts, commit and flush.
    let due_at = t0 + chrono::Duration::minutes(16);
    let (bot, writer) = Bot::start(
        store.clone(),
        Engine::new(Arc::new(config)),
        Arc::new(Fixed(due_at)),
    )
    .expect("bot");
    rt.block_on(async {
        let s = Instant::now();
        let due = bot.timer_pass(due_at).await;
        let took = s.elapsed();
        let s = Instant::now();
        let again = bot.timer_pass(due_at).await;
        println!(
            "timer pass, {due} due of {N} (breach, remind, wait; 300 timeline entries, 200 posts, one commit): {}; the next pass finds {again} due: {}",
            ms(took),
            ms(s.elapsed())
        );
    });
    drop(bot);
    writer.join();
}

fn report(t0: Timestamp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
        .expect("config")
        .config;
    let store = Store::open(&config.storage_path).expect("store");
    const N: u64 = 100_000;
    let started = Instant::now();
    let actor = UserName::parse("bob").expect("name");
    fill(&store, N, |num| {
        // Spread over 28 days: opened, assigned, taken, 6 comments, resolved.
        let at = t0 + chrono::Duration::seconds((num * 24 * 3600 * 28 / N) as i64);
        let team = if num % 3 == 0 { "infra" } else { "backend" };
        let mut t = ticket(num, at, team, TicketState::Resolved, None);
        t.resolution = Some("ok".into());
        let kinds = [
            EntryKind::Opened,
            EntryKind::Assigned,
            EntryKind::Taken,
            EntryKind::Commented,
            EntryKind::Commented,
            EntryKind::Commented,
            EntryKind::Commented,
            EntryKind::Commented,
            EntryKind::Commented,
            EntryKind::Resolved,
        ];
        let mut w = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let when = at + chrono::Duration::minutes((i as i64) * (5 + (num % 60) as i64));
            w.push(Write::Timeline(
                t.id.clone(),
                TimelineEntry {
                    seq: i as u32,
                    at: when,
                    actor: actor.clone(),
                    source: Source::Console,
                    kind: *kind,
                    from: None,
                    to: None,
                    text: "a comment of a typical length, about sixty characters".into(),
                },
            ));
            t.updated_at = when;
        }
        t.timeline_len = kinds.len() as u32;
        w.push(Write::Ticket(t));
        w
    });
    println!(
        "filled {N} tickets, {} timeline entries, in {:.1} s",
        N * 10,
        started.elapsed().as_secs_f64()
    );
    let now = t0 + chrono::Duration::days(29);
    let period = ReportPeriod(Duration::from_secs(30 * 86400));
    let mut times = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        let (text, file) =
            opsbot::engine::report::build(&store, period, None, now).expect("report");
        let text = text.to_plain();
        times.push(s.elapsed());
        assert!(text.contains("opened 100000"), "{text}");
        assert!(file.is_some());
    }
    times.sort();
    let s = Instant::now();
    let (_, _) = opsbot::engine::report::build(
        &store,
        period,
        Some(&TeamName::parse("infra").expect("team")),
        now,
    )
    .expect("report");
    println!(
        "report over 1,000,000 timeline entries (30d, all teams, with chart): min {} median {} max {}; team infra only: {}",
        ms(times[0]),
        ms(times[1]),
        ms(times[2]),
        ms(s.elapsed())
    );
}

fn main() {
    println!("machine: {}", machine());
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    timers(t0);
    report(t0);
}
