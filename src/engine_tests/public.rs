//! The public records on the real store read as the in-memory view reads
//! them: the same events (a customer's request, replies, a revoked link,
//! the status page set, an incident made public) leave the same writes,
//! mails with their links included, and the same reads; a reopened store
//! keeps its link key.

use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Customer, Source, TicketId, Timestamp, UserName};
use crate::engine::{Engine, Event, MemoryView, View};
use crate::store::Store;

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[http]
public_url = "https://support.example.com"
[status]
components = ["api"]
"#;

fn command(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

#[test]
fn the_public_records_read_the_same_on_the_store_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
        .unwrap()
        .config;
    let store = Store::open(&config.storage_path).unwrap();
    let key = store
        .link_key()
        .unwrap()
        .expect("a new store makes its key");
    assert_eq!(key.len(), 32);
    let engine = Engine::new(Arc::new(config.clone()));
    let mut memory = MemoryView::with_link_key(&key);
    let start: Timestamp = chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap();
    let steps = vec![
        Event::SupportRequest {
            customer: Customer {
                id: "cust-1".into(),
                email: "carol@example.com".into(),
            },
            subject: "Cannot pay".into(),
            message: "It says 500.".into(),
            idempotency_key: None,
        },
        command(
            "olivia",
            "/ticket comment id:OPS-1 customer:true text:\"On it.\"",
        ),
        command("olivia", "/ticket revoke-link id:OPS-1"),
        command(
            "olivia",
            "/ticket comment id:OPS-1 customer:true text:\"Still on it.\"",
        ),
        command(
            "olivia",
            "/status set service:api state:degraded message:Slow",
        ),
        command("olivia", "/ticket open title:\"API slow\""),
        command("olivia", "/ticket public id:OPS-2 text:\"Looking.\""),
        command("olivia", "/ticket public id:OPS-2 text:\"Found it.\""),
    ];
    for (minute, ev) in steps.into_iter().enumerate() {
        let now = start + Duration::minutes(minute as i64);
        let on_store = store
            .apply_batch(
                std::slice::from_ref(&ev),
                |view, ev| {
                    let d = engine.decide(view, ev, now)?;
                    Ok((d.writes.clone(), d))
                },
                || now,
            )
            .unwrap()
            .remove(0)
            .unwrap();
        let on_memory = engine.decide(&memory, &ev, now).unwrap();
        assert_eq!(on_store.writes, on_memory.writes, "step {minute}");
        memory.apply(on_memory.writes);
    }
    for n in 1..=2 {
        let id = TicketId::new("OPS", n);
        assert_eq!(
            store.link_generation(&id).unwrap(),
            memory.link_generation(&id).unwrap()
        );
        assert_eq!(
            store.customer_visible(&id).unwrap(),
            memory.customer_visible(&id).unwrap()
        );
        assert_eq!(store.incident(&id).unwrap(), memory.incident(&id).unwrap());
    }
    assert_eq!(store.link_generation(&TicketId::new("OPS", 1)).unwrap(), 1);
    assert_eq!(
        store
            .customer_visible(&TicketId::new("OPS", 1))
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store.status_board().unwrap(),
        memory.status_board().unwrap()
    );
    let incidents = store.public_incidents().unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].0.updates.len(), 2);
    assert_eq!(incidents[0].1.as_ref().unwrap().title, "API slow");
    drop(store);

    // Reopened: the same key, so the links mailed before still work.
    let store = Store::open(&config.storage_path).unwrap();
    assert_eq!(store.link_key().unwrap(), Some(key));
}
