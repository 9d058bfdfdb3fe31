//! Alert records across a reopened store: silences that survive a restart,
//! and groups stored with their alerts inside, split when the store opens.
//! (The other alert rules are tested on the in-memory view in `engine/tests/`.)

use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::alert::Alert;
use crate::domain::{Actor, ChannelName, Source, TicketId, Timestamp, UserName};
use crate::engine::tests::post_line;
use crate::engine::Event;
use crate::engine::{Accepted, Decision, Engine};
use crate::error::EngineError;
use crate::store::Store;

/// The same organisation and routes, and the same alerts, as the in-memory
/// alert tests.
use crate::engine::tests::alerts::{firing, web, CONFIG};

/// The engine on a real store, with a clock the test moves.
struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
            .unwrap()
            .config;
        let store = Store::open(&config.storage_path).unwrap();
        Bench {
            _dir: dir,
            store,
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
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
            let r = self.engine.query(&self.store, &ev, self.now)?;
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

    fn timeline(&self, n: u64) -> Vec<String> {
        use crate::engine::QueryView;
        self.store
            .timeline(&TicketId::new("OPS", n))
            .unwrap()
            .into_iter()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
            .collect()
    }

    /// The posts queued since the last call, as `#channel text` or
    /// `#channel›OPS-N text` for threads.
    fn posts(&self) -> Vec<String> {
        let items = self.store.outbox_pending(10_000).unwrap();
        let mut out = Vec::new();
        for i in items {
            self.store.outbox_done(i.seq).unwrap();
            out.extend(post_line(i.effect));
        }
        out
    }
}

#[test]
fn silences_keep_alerts_on_record_without_tickets_and_expire() {
    let b = Bench::new();
    let d = b.cmd("bob", "/alert silence matchers:\"alertname=Flappy service=~web.*\" duration:1h comment:deploying").unwrap();
    assert_eq!(
        d.reply.unwrap().body.to_plain(),
        "Silence 1 is on until 2026-03-01 13:00 UTC; /alert unsilence id:1 ends it."
    );
    assert_eq!(
        b.posts(),
        vec!["#ops bob silenced alerts matching alertname=Flappy service=~web.* for 1h (until 2026-03-01 13:00 UTC): silence 1 — deploying"]
    );
    let acc = b.alerts(vec![
        firing(&[("alertname", "Flappy"), ("service", "web")]),
        firing(&[("alertname", "Flappy"), ("service", "api")]),
    ]);
    assert_eq!(acc.accepted, 2);
    assert_eq!(
        acc.tickets,
        vec![TicketId::new("OPS", 1)],
        "only the unsilenced one"
    );
    let kept: Vec<Alert> = b.store.silenced_alerts().map(|a| a.unwrap()).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].labels["service"], "web");
    b.posts();

    // An outsider may not silence; a bad matcher or duration is refused.
    let e = b
        .cmd("zed", "/alert silence matchers:alertname=X duration:1h")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "only operators, team members may run /alert silence"
    );
    let e = parse_command("/alert silence matchers:alertname duration:1h", "OPS").unwrap_err();
    assert!(e.to_string().contains("is not a matcher"), "{e}");
    let e = parse_command("/alert silence matchers:a=b duration:7x", "OPS").unwrap_err();
    assert!(
        e.to_string()
            .contains("`duration` must be a duration from 1m to 30d"),
        "{e}"
    );

    // Silences survive a restart of the store.
    let listed = b
        .cmd("zed", "/alert silences")
        .unwrap()
        .reply
        .unwrap()
        .body
        .to_plain();
    assert!(listed.starts_with("1 silence in force:\n  1 · until 2026-03-01 13:00 UTC · by bob · alertname=Flappy service=~web.*"), "{listed}");
    let path = b.store.path().expect("a sled store").to_path_buf();
    let Bench {
        _dir,
        store,
        engine,
        now,
    } = b;
    drop(store);
    let mut b = Bench {
        _dir,
        store: Store::open(&path).unwrap(),
        engine,
        now,
    };
    assert_eq!(
        b.cmd("zed", "/alert silences")
            .unwrap()
            .reply
            .unwrap()
            .body
            .to_plain(),
        listed
    );

    // It ends by itself.
    b.advance(chrono::Duration::minutes(61));
    let acc = b.alerts(vec![firing(&[("alertname", "Flappy"), ("service", "web")])]);
    assert_eq!(acc.tickets.len(), 1);
    assert_eq!(
        b.cmd("olivia", "/alert silences")
            .unwrap()
            .reply
            .unwrap()
            .body
            .to_plain(),
        "No silences in force."
    );
    let e = b.cmd("olivia", "/alert unsilence id:1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "there is no silence 1 in force; /alert silences lists them"
    );
}

#[test]
fn a_group_stored_with_its_alerts_inside_is_split_when_the_store_opens() {
    let b = Bench::new();
    b.alerts(vec![web(0), web(1)]);
    let mut g = b.store.groups().next().unwrap().unwrap();
    // As records were before alerts had records of their own.
    for (fp, m) in b.store.group_members(&g.key).map(|m| m.unwrap()) {
        g.members.insert(fp, m);
    }
    g.firing = 0;
    let key = g.key.clone();
    b.store.put_legacy_group(&g).unwrap();
    b.store.set_schema_version(1).unwrap();
    let path = b.store.path().expect("a sled store").to_path_buf();
    let Bench {
        _dir,
        store,
        engine,
        now,
    } = b;
    drop(store);
    // sled lets go of its file lock once its own threads are done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let reopened = loop {
        match Store::open(&path) {
            Err(crate::error::StoreError::Locked { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => break r.unwrap(),
        }
    };
    let b = Bench {
        _dir,
        store: reopened,
        engine,
        now,
    };
    let g = b.store.groups().next().unwrap().unwrap();
    assert!(g.members.is_empty());
    assert_eq!(g.firing, 2);
    assert_eq!(b.store.group_members(&key).count(), 2);
    b.alerts(vec![web(1)]);
    assert_eq!(
        b.timeline(1).last().unwrap(),
        "alert: repeat #2: Latency web (web-1)"
    );
}
