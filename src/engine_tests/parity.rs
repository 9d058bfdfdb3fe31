//! The in-memory view reads what the store reads: the same events decided
//! on both leave the same tickets, timelines, lists, groups, timers and
//! posts. This is what lets the engine's tests run without sled.

use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::alert::{Alert, AlertSource, AlertStatus, Labels};
use crate::domain::{Actor, ChannelName, Source, TicketId, Timestamp, UserName};
use crate::engine::{Effect, Engine, Event, ListAt, ListFilter, MemoryView, QueryView, View};
use crate::store::Store;

fn alert(status: AlertStatus, instance: &str) -> Alert {
    let labels: Labels = [
        ("alertname", "Latency"),
        ("service", "web"),
        ("instance", instance),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Alert {
        source: AlertSource::Alertmanager,
        status,
        fingerprint: crate::domain::alert::fingerprint(&labels),
        labels,
        annotations: Labels::new(),
        starts_at: None,
        generator_url: None,
    }
}

fn command(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

#[test]
fn the_memory_view_reads_what_the_store_reads() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&dir.path().join("bot.toml"), super::sla::CONFIG)
        .unwrap()
        .config;
    let store = Store::open(&config.storage_path).unwrap();
    let engine = Engine::new(Arc::new(config));
    let mut memory = MemoryView::new();
    let start: Timestamp = chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap();

    let steps: Vec<(i64, Event)> = vec![
        (
            0,
            command(
                "olivia",
                "/ticket open title:\"Checkout down\" priority:p1 team:backend",
            ),
        ),
        (
            1,
            command("olivia", "/ticket open title:disk priority:p2 team:infra"),
        ),
        (2, command("olivia", "/ticket open title:quiet priority:p3")),
        (
            3,
            Event::Alerts {
                alerts: vec![alert(AlertStatus::Firing, "web-1")],
            },
        ),
        (
            4,
            Event::Alerts {
                alerts: vec![alert(AlertStatus::Firing, "web-2")],
            },
        ),
        (5, command("bob", "/ticket take id:OPS-1")),
        (
            6,
            command("olivia", "/ticket assign id:OPS-2 user:ivan team:infra"),
        ),
        (
            7,
            Event::Alerts {
                alerts: vec![alert(AlertStatus::Resolved, "web-1")],
            },
        ),
        (30, command("bob", "/ticket resolve id:OPS-1 note:fixed")),
    ];
    for (minute, ev) in steps {
        let now = start + Duration::minutes(minute);
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
            .remove(0);
        let on_memory = engine.decide(&memory, &ev, now);
        assert_eq!(
            on_store
                .as_ref()
                .map(|d| &d.writes)
                .map_err(|e| e.to_string()),
            on_memory
                .as_ref()
                .map(|d| &d.writes)
                .map_err(|e| e.to_string()),
            "minute {minute}"
        );
        assert!(on_store.is_ok(), "minute {minute}: {on_store:?}");
        if let Ok(d) = on_memory {
            memory.apply(d.writes);
        }
        // The timers due now, decided on each.
        let due = store.due_tickets(now, usize::MAX, "OPS").unwrap();
        assert_eq!(due, memory.due_tickets(now, usize::MAX, "OPS").unwrap());
    }

    // Three opened by hand, one per alert group.
    assert_eq!(store.last_ticket_number().unwrap(), 5);
    assert_eq!(
        store.last_ticket_number().unwrap(),
        memory.last_ticket_number().unwrap()
    );
    for n in 1..=store.last_ticket_number().unwrap() {
        let id = TicketId::new("OPS", n);
        assert_eq!(
            View::ticket(&store, &id).unwrap(),
            View::ticket(&memory, &id).unwrap()
        );
        assert_eq!(store.timeline(&id).unwrap(), memory.timeline(&id).unwrap());
    }
    for user in ["bob", "ivan", "inga", "wim"] {
        let u = UserName::parse(user).unwrap();
        assert_eq!(store.load(&u).unwrap(), memory.load(&u).unwrap(), "{user}");
    }
    let filters = [
        ListFilter::default(),
        ListFilter {
            state: Some(crate::domain::TicketState::Resolved),
            ..ListFilter::default()
        },
        ListFilter {
            team: Some(crate::domain::TeamName::parse("infra").unwrap()),
            ..ListFilter::default()
        },
    ];
    for f in &filters {
        assert_eq!(
            store.list(f, &ListAt::first(50)).unwrap(),
            memory.list(f, &ListAt::first(50)).unwrap(),
            "{f:?}"
        );
    }
    let groups: Vec<_> = store.groups().map(|g| g.unwrap()).collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        groups,
        memory.groups().map(|g| g.unwrap()).collect::<Vec<_>>()
    );
    for g in &groups {
        assert_eq!(
            store
                .group_members(&g.key)
                .map(|m| m.unwrap())
                .collect::<Vec<_>>(),
            memory
                .group_members(&g.key)
                .map(|m| m.unwrap())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            View::group(&store, &g.key).unwrap(),
            View::group(&memory, &g.key).unwrap()
        );
    }
    assert_eq!(store.timers_pending(), memory.timers_pending());
    let posts = |items: Vec<Effect>| items;
    assert_eq!(
        posts(
            store
                .outbox_pending(1000)
                .unwrap()
                .into_iter()
                .map(|i| i.effect)
                .collect()
        ),
        posts(
            memory
                .outbox_pending(1000)
                .unwrap()
                .into_iter()
                .map(|i| i.effect)
                .collect()
        )
    );
}
