//! People's loads on the real store: counted once from the tickets when a
//! store made before they were opens. (The deadline, escalation and
//! on-call rules are tested on the in-memory view in `engine/tests/`.)

use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Source, Timestamp, UserName};
use crate::engine::Engine;
use crate::engine::{Decision, Event, View};
use crate::error::EngineError;
use crate::store::Store;

/// The same organisation and policy as the in-memory deadline tests.
pub(super) use crate::engine::tests::sla::CONFIG;

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new() -> Bench {
        Bench::with(CONFIG)
    }

    fn with(src: &str) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&dir.path().join("bot.toml"), src)
            .unwrap()
            .config;
        let store = Store::open(&config.storage_path).unwrap();
        Bench {
            _dir: dir,
            store,
            engine: Engine::new(Arc::new(config)),
            // Tuesday 2026-03-24 10:00 UTC (11:00 in Berlin): bella's day.
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    fn event(&self, ev: Event) -> Result<Decision, EngineError> {
        let now = self.now;
        let mut r = self
            .store
            .apply_batch(
                &[ev],
                |view, ev| {
                    let d = self.engine.decide(view, ev, now)?;
                    Ok((d.writes.clone(), d))
                },
                || now,
            )
            .unwrap();
        r.remove(0)
    }

    fn cmd(&self, who: &str, line: &str) -> Result<String, String> {
        let command = parse_command(line, "OPS").map_err(|e| e.to_string())?;
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        };
        let reply = if ev.is_query() {
            self.engine.query(&self.store, &ev, self.now).map(Some)
        } else {
            self.event(ev).map(|d| d.reply)
        };
        match reply {
            Ok(r) => Ok(r.map(|r| r.body.to_plain()).unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn u(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

#[test]
fn loads_are_counted_from_the_tickets_in_a_store_made_before_they_were() {
    let b = Bench::new();
    for _ in 0..3 {
        b.cmd("olivia", "/ticket open title:x").unwrap();
    }
    b.cmd("olivia", "/ticket assign id:OPS-1 user:ivan team:infra")
        .unwrap();
    b.cmd("olivia", "/ticket assign id:OPS-2 user:ivan team:infra")
        .unwrap();
    b.cmd("olivia", "/ticket assign id:OPS-3 user:inga team:infra")
        .unwrap();
    b.store.forget_loads().unwrap();
    assert_eq!(View::load(&b.store, &u("ivan")).unwrap(), 0);
    // What opening such a store does, once.
    b.store.count_loads_once().unwrap();
    assert_eq!(View::load(&b.store, &u("ivan")).unwrap(), 2);
    assert_eq!(View::load(&b.store, &u("inga")).unwrap(), 1);
    b.store.count_loads_once().unwrap();
    assert_eq!(View::load(&b.store, &u("ivan")).unwrap(), 2, "once");
    b.cmd("olivia", "/ticket open title:new").unwrap();
    let r = b
        .cmd("olivia", "/ticket assign id:OPS-4 team:infra")
        .unwrap();
    assert_eq!(r, "OPS-4 is now assigned to inga.");
}
