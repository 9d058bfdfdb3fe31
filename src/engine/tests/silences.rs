//! Silences kept in Alertmanager too (`[alerts.alertmanager]`): the orders
//! the engine queues, the id that comes back, a silence ended before its id
//! came, and Alertmanager's own silences as `/alert silences` lists them.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::silences::{AmMatcher, AmOrder, AmSilence};
use crate::domain::{Actor, ChannelName, Source, Timestamp, UserName};
use crate::engine::tests::alerts::CONFIG;
use crate::engine::{Decision, Effect, Engine, Event, MemoryView, View, Write};

struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new(alertmanager: bool) -> Bench {
        let text = if alertmanager {
            format!("{CONFIG}\n[alerts.alertmanager]\nurl = \"http://127.0.0.1:9093\"\n")
        } else {
            CONFIG.to_string()
        };
        let config = Config::parse(std::path::Path::new("bot.toml"), &text)
            .unwrap()
            .config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        }
    }

    fn event(&self, ev: Event) -> Decision {
        let mut view = self.view.borrow_mut();
        let d = self.engine.decide(&*view, &ev, self.now).unwrap();
        view.apply(d.writes.clone());
        d
    }

    fn cmd(&self, line: &str) -> Decision {
        let ev = Event::Command {
            actor: Actor::new(UserName::parse("olivia").unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command: parse_command(line, "OPS").unwrap(),
        };
        if ev.is_query() {
            let r = self
                .engine
                .query(&*self.view.borrow(), &ev, self.now)
                .unwrap();
            return Decision {
                reply: Some(r),
                ..Decision::default()
            };
        }
        self.event(ev)
    }

    fn reply(&self, line: &str) -> String {
        self.cmd(line).reply.unwrap().body.to_plain()
    }
}

/// The orders for Alertmanager a decision queued.
fn orders(d: &Decision) -> Vec<AmOrder> {
    d.writes
        .iter()
        .filter_map(|w| match w {
            Write::Effect(Effect::Alertmanager(o)) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

fn made(b: &Bench, silence: u64, am_id: &str) -> Decision {
    b.event(Event::SilenceMade {
        silence,
        am_id: am_id.into(),
    })
}

fn theirs(id: &str, comment: &str, b: &Bench) -> AmSilence {
    AmSilence {
        id: id.into(),
        matchers: vec![AmMatcher {
            name: "instance".into(),
            value: "db-2".into(),
            is_regex: false,
            is_equal: true,
        }],
        created_by: "ivan".into(),
        comment: comment.into(),
        starts_at: b.now - chrono::Duration::minutes(5),
        ends_at: b.now + chrono::Duration::hours(1),
    }
}

#[test]
fn a_silence_is_ordered_made_in_alertmanager_and_ended_there_by_its_id() {
    let b = Bench::new(true);
    let d = b.cmd(r#"/alert silence matchers:"alertname=DiskFull service=~db.*" duration:2h"#);
    let queued = orders(&d);
    let [AmOrder::Create {
        silence,
        matchers,
        starts_at,
        ends_at,
        created_by,
        comment,
    }] = queued.as_slice()
    else {
        panic!("{queued:?}");
    };
    assert_eq!(*silence, 1);
    assert_eq!(
        matchers.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        ["alertname=DiskFull", "service=~db.*"]
    );
    assert_eq!(
        (*starts_at, *ends_at),
        (b.now, b.now + chrono::Duration::hours(2))
    );
    assert_eq!(created_by, "olivia");
    assert_eq!(comment, "silenced from chat by olivia [opsbot silence 1]");
    assert!(d
        .reply
        .unwrap()
        .body
        .to_plain()
        .contains("being made in Alertmanager"));

    // The id comes back once; the second report changes nothing.
    assert!(orders(&made(&b, 1, "am-1")).is_empty());
    assert!(made(&b, 1, "am-1").writes.is_empty());
    let book = b.view.borrow().silences().unwrap();
    assert_eq!(book.silences[0].am_id.as_deref(), Some("am-1"));
    assert!(b
        .reply("/alert silences")
        .contains("in Alertmanager as am-1"));

    let d = b.cmd("/alert unsilence id:1");
    assert_eq!(orders(&d), [AmOrder::Expire { id: "am-1".into() }]);
}

#[test]
fn a_silence_ended_before_alertmanager_gave_its_id_is_ended_there_when_the_id_comes() {
    let b = Bench::new(true);
    b.cmd("/alert silence matchers:alertname=X duration:1h");
    let d = b.cmd("/alert unsilence id:1");
    assert!(orders(&d).is_empty(), "no id to end yet");
    let d = made(&b, 1, "am-late");
    assert_eq!(
        orders(&d),
        [AmOrder::Expire {
            id: "am-late".into()
        }]
    );
    assert!(b.view.borrow().silences().unwrap().silences.is_empty());
}

#[test]
fn alertmanagers_own_silences_are_listed_and_the_bots_are_not_listed_twice() {
    let b = Bench::new(true);
    assert_eq!(
        b.reply("/alert silences"),
        "No silences in force, in the bot or in Alertmanager."
    );
    b.cmd("/alert silence matchers:alertname=X duration:1h");
    made(&b, 1, "am-1");
    let listed = vec![
        theirs(
            "am-1",
            "silenced from chat by olivia [opsbot silence 1]",
            &b,
        ),
        // Made by the bot, read before its id was noted.
        theirs("am-9", "x [opsbot silence 9]", &b),
        theirs("ext-1", "kernel upgrade", &b),
    ];
    let d = b.event(Event::AlertmanagerSilences {
        silences: listed.clone(),
    });
    assert_eq!(d.writes.len(), 1);
    let book = b.view.borrow().silences().unwrap();
    assert_eq!(
        book.external
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["ext-1"]
    );
    // The same list again writes nothing.
    let d = b.event(Event::AlertmanagerSilences { silences: listed });
    assert!(d.writes.is_empty());
    let text = b.reply("/alert silences");
    assert!(text.contains("1 silence made in Alertmanager"), "{text}");
    assert!(
        text.contains("ext-1 · until") && text.contains("kernel upgrade"),
        "{text}"
    );
    // Ended there: gone from the list at the next read.
    b.event(Event::AlertmanagerSilences { silences: vec![] });
    assert!(!b.reply("/alert silences").contains("ext-1"));
}

#[test]
fn without_alertmanager_silences_stay_the_bots_own() {
    let b = Bench::new(false);
    let d = b.cmd("/alert silence matchers:alertname=X duration:1h");
    assert!(orders(&d).is_empty());
    assert!(!d.reply.unwrap().body.to_plain().contains("Alertmanager"));
    assert!(orders(&b.cmd("/alert unsilence id:1")).is_empty());
}
