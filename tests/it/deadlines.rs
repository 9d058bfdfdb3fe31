//! Deadlines, escalation, on-call and reports through the real binary: the
//! timers after a restart (each fires once), a report's figures checked
//! against hand-computed numbers, its chart a real PNG, bad input refused
//! with nothing stored, and `opsbot check` naming bad rotations.

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use opsbot::commands::parse_command;
use opsbot::domain::{Actor, ChannelName, Source, Timestamp, UserName};
use opsbot::engine::{Engine, Event};
use opsbot::runtime::{Bot, Clock};
use opsbot::store::Store;
use serde_json::Value;

use crate::harness::Env;

/// A clock the test sets.
#[derive(Clone)]
struct At(Arc<Mutex<Timestamp>>);

impl Clock for At {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// The bot as a library on the env's config and data, on a clock the test
/// moves; commands as console lines.
struct Lib {
    bot: Bot,
    writer: opsbot::runtime::Writer,
    clock: At,
    rt: tokio::runtime::Runtime,
}

impl Lib {
    fn start(env: &Env, now: Timestamp) -> Lib {
        let config = env.config();
        let store = Store::open(&config.storage_path).unwrap();
        let clock = At(Arc::new(Mutex::new(now)));
        let (bot, writer) = Bot::start(
            store,
            Engine::new(Arc::new(config)),
            Arc::new(clock.clone()),
        )
        .unwrap();
        Lib {
            bot,
            writer,
            clock,
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn set(&self, t: Timestamp) {
        *self.clock.0.lock().unwrap() = t;
    }

    fn cmd(&self, who: &str, line: &str) {
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command: parse_command(line, "OPS").unwrap(),
        };
        self.rt
            .block_on(self.bot.handle(ev))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }

    fn stop(self) {
        drop(self.bot);
        self.writer.join();
    }
}

fn timeline_of<'a>(export: &'a [Value], id: &str) -> Vec<&'a Value> {
    export
        .iter()
        .filter(|e| e["type"] == "timeline" && e["ticket"] == id)
        .collect()
}

/// A p1 ticket opened 5 hours before the bot starts again: its acknowledge
/// deadline (15m), every step of the `urgent` chain and its resolve
/// deadline (4h) fell due while the bot was down. The first start handles
/// each once; the next start handles nothing.
#[test]
fn timers_due_during_downtime_fire_once_after_a_restart() {
    let env = Env::shipped();
    let lib = Lib::start(&env, Utc::now() - Duration::hours(5));
    lib.cmd(
        "olivia",
        "/ticket open title:\"Checkout down\" priority:p1 team:backend",
    );
    lib.stop();

    let first = env.console(&[]);
    let export = env.export();
    let kinds: Vec<&str> = timeline_of(&export, "OPS-1")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "opened",
            "assigned",
            "breached",
            "escalated",
            "escalated",
            "escalated",
            "escalated",
            "escalated",
            "escalated",
            "escalated",
            "priority",
            "breached"
        ],
        "{}",
        first.stdout
    );
    let texts: Vec<String> = timeline_of(&export, "OPS-1")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(texts[2].starts_with("deadline missed: not taken within 15m (due "));
    assert!(
        texts[5].starts_with("escalation urgent step 3/8: paged b"),
        "{texts:#?}"
    );
    assert!(texts[11].starts_with("deadline missed: not resolved by "));
    // Posted: the breach and the reminder in the thread, the on-call page
    // and the team's ping in #backend, the operators in #ops, the resolve
    // breach in #backend.
    let backend = first.in_channel("backend");
    assert!(
        backend
            .iter()
            .any(|l| l.contains("you are on call for backend")),
        "{}",
        first.stdout
    );
    assert!(backend
        .iter()
        .any(|l| l.contains("nobody has taken it for 40m. @bob @bella")));
    assert!(first
        .in_channel("ops")
        .iter()
        .any(|l| l.contains("operators, route it or take it. @olivia")));
    let ticket = export.iter().find(|e| e["id"] == "OPS-1").unwrap();
    assert_eq!(ticket["sla"]["ack_breached"], true);
    assert_eq!(ticket["sla"]["resolve_breached"], true);
    assert_eq!(ticket["sla"]["step"], 8);

    // The next start: nothing more.
    let second = env.console(&[]);
    assert!(!second.stdout.contains("[#"), "{}", second.stdout);
    assert_eq!(env.export(), export);

    // /metrics says so too.
    let store = Store::open(&env.config().storage_path).unwrap();
    let text = opsbot::adapters::http::metrics::Metrics::new()
        .render(&store, &opsbot::runtime::health::Health::new())
        .unwrap();
    let series =
        |prefix: &str| -> Vec<&str> { text.lines().filter(|l| l.starts_with(prefix)).collect() };
    let prio = ticket["priority"].as_str().unwrap();
    assert_eq!(
        series("opsbot_tickets_past_deadline{"),
        [format!(
            "opsbot_tickets_past_deadline{{team=\"backend\",priority=\"{prio}\"}} 1"
        )],
        "{text}"
    );
    // A counter: named `_total` (Prometheus' convention).
    let breaches = series("opsbot_deadline_breaches_total{");
    assert_eq!(breaches.len(), 2, "{text}");
    assert!(breaches.iter().all(|l| l.ends_with(" 1")), "{text}");
    assert!(
        breaches
            .iter()
            .any(|l| l.contains("deadline=\"acknowledge\"")),
        "{text}"
    );
    assert!(
        breaches.iter().any(|l| l.contains("deadline=\"resolve\"")),
        "{text}"
    );
    // Never taken nor resolved: nothing in the time histograms yet.
    assert!(
        series("opsbot_time_to_acknowledge_seconds_count")
            .iter()
            .all(|l| l.ends_with(" 0")),
        "{text}"
    );
}

/// Four tickets on a fixed timeline three days ago; the report's figures
/// checked against numbers computed by hand (nearest-rank median and p90),
/// and its chart a PNG of the expected size with more than one colour.
#[test]
fn report_figures_and_chart_from_a_fixed_timeline() {
    let env = Env::shipped();
    let t0 = Utc::now() - Duration::days(3);
    let lib = Lib::start(&env, t0);
    let at = |m: i64| lib.set(t0 + Duration::minutes(m));
    // OPS-1 backend p2: taken after 30m, resolved after 2h, closed after 3h.
    at(0);
    lib.cmd("olivia", "/ticket open title:one priority:p2 team:backend");
    at(30);
    lib.cmd("bob", "/ticket take id:OPS-1");
    at(120);
    lib.cmd("bob", "/ticket resolve id:OPS-1 note:ok");
    at(180);
    lib.cmd("olivia", "/ticket verify id:OPS-1");
    // OPS-2 backend p1, opened at 1h: taken after 10m, resolved after 4h.
    at(60);
    lib.cmd("olivia", "/ticket open title:two priority:p1 team:backend");
    at(70);
    lib.cmd("bella", "/ticket take id:OPS-2");
    at(300);
    lib.cmd("bella", "/ticket resolve id:OPS-2 note:ok");
    // OPS-3 infra p3, opened at 2h: taken after 2h, resolved after 8h, closed.
    at(120);
    lib.cmd("olivia", "/ticket open title:three priority:p3 team:infra");
    at(240);
    lib.cmd("ivan", "/ticket take id:OPS-3");
    at(600);
    lib.cmd("ivan", "/ticket resolve id:OPS-3 note:ok");
    at(660);
    lib.cmd("olivia", "/ticket verify id:OPS-3");
    // OPS-4, no team, p3, opened at 3h and never taken: its 4h deadline is
    // missed at 7h; the timer pass at 8h records the breach.
    at(180);
    lib.cmd("olivia", "/ticket open title:four priority:p3");
    at(480);
    let due = lib
        .rt
        .block_on(lib.bot.timer_pass(t0 + Duration::minutes(480)));
    assert_eq!(due, 1);
    lib.stop();

    let run = env.console(&["/report period:7d", "/report period:7d team:backend"]);
    let private = run.private();
    assert!(
        private[0].starts_with("Report for the last 7d ("),
        "{}",
        run.stdout
    );
    let text = run.stdout.clone();
    // Acknowledge: 10m, 30m, 2h → mean 53m 20s (shown to the minute),
    // median the 2nd of 3, p90 the 3rd. Resolve: 2h, 4h, 8h.
    let want = [
        "all: opened 4, closed 2, breaches 1; acknowledge mean 53m, median 30m, p90 2h (n=3); resolve mean 4h 40m, median 4h, p90 8h (n=3)",
        "  (no team): opened 1, closed 0, breaches 1; acknowledge —; resolve —",
        "  backend: opened 2, closed 1, breaches 0; acknowledge mean 20m, median 10m, p90 30m (n=2); resolve mean 3h, median 2h, p90 4h (n=2)",
        "  infra: opened 1, closed 1, breaches 0; acknowledge mean 2h, median 2h, p90 2h (n=1); resolve mean 8h, median 8h, p90 8h (n=1)",
        "  p1: opened 1, closed 0, breaches 0; acknowledge mean 10m, median 10m, p90 10m (n=1); resolve mean 4h, median 4h, p90 4h (n=1)",
        "  p3: opened 2, closed 1, breaches 1; acknowledge mean 2h, median 2h, p90 2h (n=1); resolve mean 8h, median 8h, p90 8h (n=1)",
        "all: opened 2, closed 1, breaches 0; acknowledge mean 20m, median 10m, p90 30m (n=2); resolve mean 3h, median 2h, p90 4h (n=2)",
    ];
    for w in want {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }

    // The chart: written under the data folder, its path printed.
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("chart: "))
        .collect();
    // Two answers, and the weekly report: the timer pass three days ago
    // noted the schedule, and a scheduled time passed since.
    assert_eq!(paths.len(), 3, "{text}");
    assert_eq!(
        run.in_channel("ops")
            .iter()
            .filter(|l| l.starts_with("Weekly report. Report for the last 7d"))
            .count(),
        1,
        "{text}"
    );
    let path = std::path::Path::new(paths[0]);
    assert!(path.starts_with(env.data_dir().join("reports")), "{path:?}");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), opsbot::report::CHART_SIZE);
    let px = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let first = &pixels[..px];
    let other = pixels.chunks(px).filter(|p| *p != first).count();
    assert!(other > 1000, "only {other} pixels differ from the first");
    // Some of them are the "opened" line's blue (31, 119, 180).
    assert!(pixels.chunks(px).any(|p| p[..3] == [31, 119, 180]));
}

/// Mistakes are answered clearly and change nothing.
#[test]
fn bad_input_is_refused_and_stores_nothing() {
    let env = Env::shipped();
    env.console(&["/ticket open title:x team:backend"]);
    let before = env.export();
    let run = env.console(&[
        "/report period:7x",
        "/report team:payments",
        "/oncall team:payments",
        "/oncall team:infra",
        ":as bob",
        "/oncall set team:backend user:ivan until:2h",
        "/oncall set team:backend user:bella until:\"2020-01-01 09:00\"",
        "/oncall set team:backend user:bella until:whenever",
        "/oncall set team:payments user:bella until:2h",
        ":as ivan",
        "/oncall set team:backend user:bob until:2h",
    ]);
    assert_eq!(
        run.private(),
        vec![
            "`period` must be a span from 1h to 366d, such as 7d, 24h or 4w; got `7x`",
            "there is no team `payments`; known teams: backend, infra, qa",
            "there is no team `payments`; known teams: backend, infra, qa",
            "team infra has no on-call rotation; teams with one: backend",
            "ivan is not a member of backend; its members are: bob, bella",
            "`until` is 2020-01-01 08:00 UTC, which is not in the future; give a later time",
            "`until` must be a time such as \"2026-03-30 09:00\" (in Europe/Berlin), 2026-03-30T09:00:00Z, or a duration such as 8h; got `whenever`",
            "there is no team `payments`; known teams: backend, infra, qa",
            "only operators (olivia) or members of backend (bob, bella) may set who is on call for backend",
        ],
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("[#"), "{}", run.stdout);
    assert_eq!(env.export(), before);
    // An override that works, then one that overlaps it: refused.
    let run = env.console(&[
        ":as bob",
        "/oncall set team:backend user:bella until:2h",
        "/oncall set team:backend user:bob until:3h",
        "/oncall team:backend",
    ]);
    let private = run.private();
    assert!(
        private[0].starts_with("bella is on call for backend until "),
        "{private:?}"
    );
    assert!(
        private[1].starts_with("backend already has an override for bella from "),
        "{private:?}"
    );
    assert!(
        private[2].starts_with("backend: bella is on call now (override set by bob) until "),
        "{private:?}"
    );
    assert_eq!(
        run.in_channel("backend").len(),
        1,
        "one handoff post: {}",
        run.stdout
    );
}

#[test]
fn check_names_bad_rotations_and_policies() {
    let cfg = crate::harness::shipped_config()
        .replace(
            "members = [\"bob\", \"bella\"]\nperiod = \"weekly\"",
            "members = []\nperiod = \"weekly\"",
        )
        .replace(
            "time_zone = \"Europe/Berlin\"\nstart",
            "time_zone = \"Mars/Olympus\"\nstart",
        )
        .replace("\"wait 10m\", \"oncall\"", "\"wait 10x\", \"oncall\"")
        .replace(
            "p2 = { acknowledge = \"1h\"",
            "p2 = { acknowledge = \"soon\"",
        );
    let env = Env::with_config(&cfg);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line_of = |needle: &str| {
        cfg.lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no line {needle}"))
    };
    for want in [
        format!(
            "bot.toml:{}: `oncall.backend.members`: the rotation of `backend` has no members",
            line_of("members = []")
        ),
        format!(
            "bot.toml:{}: `oncall.backend.time_zone`: `Mars/Olympus` is not a time zone",
            line_of("time_zone = \"Mars/Olympus\"")
        ),
        format!(
            "bot.toml:{}: `escalation[0].steps[1]`: `wait 10x`: wait needs a duration",
            line_of("steps = [\"remind\", \"wait 10x\"")
        ),
        format!(
            "bot.toml:{}: `deadlines.p2.acknowledge`: `soon` is not a duration",
            line_of("p2 = {")
        ),
    ] {
        assert!(
            run.stderr.contains(&want),
            "missing {want:?} in:\n{}",
            run.stderr
        );
    }
    // An unknown team's rotation is named too.
    let cfg = crate::harness::shipped_config().replace("[oncall.backend]", "[oncall.payments]");
    let env = Env::with_config(&cfg);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(
            "`oncall.payments`: no team `payments` is defined; known teams: backend, infra, qa"
        ),
        "{}",
        run.stderr
    );
}
