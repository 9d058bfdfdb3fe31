//! An export taken while the bot commits a storm of work: every ticket
//! committed before the export began is in it exactly once, nothing opened
//! after it began is, and each ticket comes with its own whole timeline
//! (its `timeline_len` entries, in order), however the storm interleaves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use opsbot::commands::parse_command;
use opsbot::domain::{Actor, ChannelName, Source, UserName};
use opsbot::engine::{Event, View};
use serde_json::Value;

use crate::harness::Env;

fn event(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

/// Tickets opened before the storm: more than three chunks of a sled
/// export (`store::EXPORT_CHUNK`, 200 tickets).
const BEFORE: usize = 617;

#[test]
fn an_export_during_a_storm_has_every_ticket_once_each_with_its_timeline() {
    during_a_storm(Env::shipped());
}

/// On PostgreSQL (one snapshot for the whole export).
#[test]
fn an_export_during_a_storm_has_every_ticket_once_each_with_its_timeline_on_postgres() {
    during_a_storm(Env::on_postgres());
}

/// What an export holds, checked: the ticket numbers it has, each once,
/// each followed by exactly its timeline.
fn check(lines: &[Value]) -> Vec<u64> {
    let mut nums = Vec::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let t = &lines[i];
        if t["type"] == "run" {
            i += 1;
            continue;
        }
        assert_eq!(
            t["type"], "ticket",
            "a timeline entry without its ticket: {t}"
        );
        let id = t["id"].as_str().unwrap().to_string();
        assert!(seen.insert(id.clone(), ()).is_none(), "{id} twice");
        let len = t["timeline_len"].as_u64().unwrap();
        let entries: Vec<&Value> = lines[i + 1..]
            .iter()
            .take_while(|e| e["type"] == "timeline")
            .collect();
        let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (0..len).collect::<Vec<_>>(),
            "{id}'s timeline is not the ticket's ({len} entries)"
        );
        assert!(entries.iter().all(|e| e["ticket"] == id.as_str()));
        // The last entry is what the ticket says it last did.
        if let Some(last) = entries.last() {
            assert_eq!(
                last["at"], t["updated_at"],
                "{id}: entry and ticket of two moments"
            );
        }
        nums.push(id.trim_start_matches("OPS-").parse().unwrap());
        i += 1 + entries.len();
    }
    nums
}

fn during_a_storm(env: Env) {
    let (bot, writer, store) = env.bot();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut opens = Vec::new();
        for task in 0..20 {
            let bot = bot.clone();
            opens.push(tokio::spawn(async move {
                for i in 0..BEFORE.div_ceil(20) {
                    bot.handle(event(
                        "olivia",
                        &format!("/ticket open title:\"t{task}-{i}\" team:backend"),
                    ))
                    .await
                    .expect("open");
                }
            }));
        }
        for h in opens {
            h.await.unwrap();
        }
    });
    let opened = store.last_ticket_number().unwrap();
    assert!(opened as usize >= BEFORE);

    // The storm: new tickets, and comments and takes on old ones, until told.
    let stop = Arc::new(AtomicBool::new(false));
    let exporting = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let storm: Vec<_> = (0..8)
        .map(|task| {
            let (bot, stop, exporting, during) =
                (bot.clone(), stop.clone(), exporting.clone(), during.clone());
            rt.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(task);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = rng.u64(1..=opened);
                    let line = match i % 3 {
                        0 => format!("/ticket open title:\"storm {task}-{i}\""),
                        1 => format!("/ticket comment id:OPS-{n} text:\"seen again {i}\""),
                        _ => format!("/ticket take id:OPS-{n}"),
                    };
                    let who = if i % 3 == 2 { "bob" } else { "olivia" };
                    // Refusals (taken already) are answers too.
                    let _ = bot.handle(event(who, &line)).await;
                    if exporting.load(Ordering::Relaxed) {
                        during.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();

    let mut rounds = 0;
    while rounds < 3 || (during.load(Ordering::Relaxed) == 0 && rounds < 50) {
        rounds += 1;
        let before = store.last_ticket_number().unwrap();
        exporting.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        let n = store.export_jsonl(&mut out).expect("export");
        exporting.store(false, Ordering::Relaxed);
        let after = store.last_ticket_number().unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let nums = check(&lines);
        assert_eq!(nums.len(), n, "the count it returned");
        // Every ticket committed before it began, in number order; none
        // opened after it ended.
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "out of order");
        // Exactly the tickets up to the last one committed when it began:
        // none missing, none opened once it ran.
        let last = nums.len() as u64;
        assert_eq!(nums, (1..=last).collect::<Vec<_>>(), "a ticket is missing");
        assert!(
            (before..=after).contains(&last),
            "{last} tickets, but {before} were committed before it and {after} after"
        );
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for h in storm {
            h.await.unwrap();
        }
    });
    assert!(
        during.load(Ordering::Relaxed) > 0,
        "the storm committed nothing while an export ran"
    );
    drop(bot);
    writer.join();
}
