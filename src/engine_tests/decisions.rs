//! Decisions that used to be taken outside the engine: runs a previous
//! process left in flight, and a channel that refuses the bot's posts.

use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::run::{RunId, RunState};
use crate::domain::{Actor, ChannelName, Source, Timestamp, UserName};
use crate::engine::{Decision, Effect, Engine, Event, View};
use crate::error::EngineError;
use crate::store::{Queue, Store};

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    /// The shipped configuration (its jobs from `commands/`), on a
    /// temporary store.
    fn new() -> Bench {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(root.join("bot.toml")).unwrap();
        let mut config = Config::parse(&root.join("bot.toml"), &src).unwrap().config;
        let dir = tempfile::tempdir().unwrap();
        config.storage_path = dir.path().join("data");
        let store = Store::open(&config.storage_path).unwrap();
        Bench {
            _dir: dir,
            store,
            engine: Engine::new(Arc::new(config)),
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

    fn cmd(&self, who: &str, line: &str) -> Decision {
        let command = parse_command(line, "OPS").unwrap();
        self.event(Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        })
        .unwrap()
    }

    fn job_orders(&self) -> Vec<u64> {
        self.store
            .pending(Queue::Jobs, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|i| i.seq)
            .collect()
    }

    /// The chat posts waiting, as `#channel text`.
    fn posts(&self) -> Vec<String> {
        self.store
            .pending(Queue::Chat, usize::MAX)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i.effect {
                Effect::Post(p) => Some(format!("#{} {}", p.channel, p.body.to_plain())),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_local_run_left_in_flight_is_failed_on_its_record_and_its_order_dropped() {
    let b = Bench::new();
    b.cmd("bob", "/build job:build-web ref:main");
    let orders = b.job_orders();
    assert_eq!(orders.len(), 1, "the build's start order is queued");
    let d = b
        .event(Event::LostRun {
            run: RunId(1),
            orders: orders.clone(),
        })
        .unwrap();
    assert!(!d.writes.is_empty());
    let run = b.store.run(RunId(1)).unwrap().unwrap();
    assert_eq!(run.state, RunState::Failed);
    assert!(
        run.timeline
            .last()
            .is_some_and(|e| e.text.contains("the bot restarted while it ran")),
        "{run:?}"
    );
    assert!(b.job_orders().is_empty(), "its order went with it");
    // Settled once: asked again, nothing changes.
    let again = b
        .event(Event::LostRun {
            run: RunId(1),
            orders,
        })
        .unwrap();
    assert!(again.writes.is_empty(), "{again:?}");
}

#[test]
fn a_refusing_channel_is_told_to_ops_once_through_the_outbox() {
    let b = Bench::new();
    let refused = |channel: &str| Event::ChannelRefused {
        channel: ChannelName::parse(channel).unwrap(),
        why: "Discord refused the post (403): Missing Permissions".into(),
    };
    b.event(refused("backend")).unwrap();
    b.event(refused("backend")).unwrap();
    // The operations channel itself: nowhere to tell.
    b.event(refused("ops")).unwrap();
    let posts = b.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].starts_with("#ops I cannot post in #backend: Discord refused the post (403)"),
        "{posts:?}"
    );
}
