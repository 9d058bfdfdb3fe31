//! The list's index on the real store: its pages and totals are those of
//! the in-memory view (which filters every ticket, the plain way) for every
//! filter, page and cursor; a store made before the index gets it built
//! when it opens; and a list read in a snapshot while batches move tickets
//! between states holds each ticket once, as many as its total says.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Source, TeamName, TicketState, Timestamp, UserName};
use crate::engine::{Engine, Event, ListAt, ListFilter, MemoryView, QueryView};
use crate::store::Store;

fn command(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

struct Both {
    dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    memory: MemoryView,
    now: Timestamp,
}

impl Both {
    fn new() -> Both {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&dir.path().join("bot.toml"), super::sla::CONFIG)
            .unwrap()
            .config;
        let store = Store::open(&config.storage_path).unwrap();
        Both {
            dir,
            store,
            engine: Engine::new(Arc::new(config)),
            memory: MemoryView::new(),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    /// Decides `line` on both, and applies it to both.
    fn run(&mut self, who: &str, line: &str) {
        let ev = command(who, line);
        let now = self.now;
        let engine = &self.engine;
        let on_store = self
            .store
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
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let on_memory = self.engine.decide(&self.memory, &ev, now).unwrap();
        assert_eq!(on_store.writes, on_memory.writes, "{line}");
        self.memory.apply(on_memory.writes);
    }

    /// The same, with the store closed and opened again.
    fn reopened(self) -> Both {
        let Both {
            dir,
            store,
            engine,
            memory,
            now,
        } = self;
        let at = store.location().clone();
        drop(store);
        Both {
            store: Store::open_at(&at).unwrap(),
            dir,
            engine,
            memory,
            now,
        }
    }

    /// 90 tickets of backend, infra and no team; some assigned to bob,
    /// taken, resolved and closed.
    fn filled() -> Both {
        let mut b = Both::new();
        for i in 1..=90u32 {
            let team = match i % 3 {
                0 => " team:backend",
                1 => " team:infra",
                _ => "",
            };
            b.run("olivia", &format!("/ticket open title:t{i}{team}"));
        }
        for i in (6..=90).step_by(6) {
            b.run("olivia", &format!("/ticket assign id:OPS-{i} user:bob"));
        }
        for i in (12..=90).step_by(12) {
            b.run("bob", &format!("/ticket take id:OPS-{i}"));
        }
        for i in (24..=90).step_by(24) {
            b.run("bob", &format!("/ticket resolve id:OPS-{i} note:done"));
            b.run("olivia", &format!("/ticket verify id:OPS-{i}"));
        }
        b
    }
}

fn filters() -> Vec<ListFilter> {
    let team = |t: &str| Some(TeamName::parse(t).unwrap());
    let bob = Some(UserName::parse("bob").unwrap());
    let mut out = vec![
        ListFilter::default(),
        ListFilter {
            team: team("backend"),
            ..ListFilter::default()
        },
        ListFilter {
            team: team("infra"),
            ..ListFilter::default()
        },
        ListFilter {
            assignee: bob.clone(),
            ..ListFilter::default()
        },
        ListFilter {
            team: team("backend"),
            assignee: bob.clone(),
            ..ListFilter::default()
        },
        ListFilter {
            team: team("web"),
            ..ListFilter::default()
        },
    ];
    for &s in TicketState::ALL {
        out.push(ListFilter {
            state: Some(s),
            ..ListFilter::default()
        });
        out.push(ListFilter {
            state: Some(s),
            team: team("backend"),
            assignee: bob.clone(),
        });
        out.push(ListFilter {
            state: Some(s),
            team: team("infra"),
            ..ListFilter::default()
        });
    }
    out
}

/// Every page of every filter, by offset and by cursor, is the memory
/// view's; the pages hold each ticket the filter matches exactly once.
fn same_lists(store: &Store, memory: &MemoryView) {
    for f in filters() {
        let (all, total) = memory.list(&f, &ListAt::first(usize::MAX)).unwrap();
        assert_eq!(all.len() as u64, total, "{f:?}");
        let mut paged = Vec::new();
        for offset in (0..=total + 25).step_by(25) {
            let at = ListAt {
                offset,
                limit: 25,
                before: None,
            };
            let got = store.list(&f, &at).unwrap();
            assert_eq!(got, memory.list(&f, &at).unwrap(), "{f:?} at {offset}");
            paged.extend(got.0.into_iter().map(|t| t.id.num()));
        }
        let expect: Vec<u64> = all.iter().map(|t| t.id.num()).collect();
        assert_eq!(paged, expect, "{f:?}: each once, newest first");
        let mut by_cursor = Vec::new();
        let mut before = None;
        loop {
            let at = ListAt {
                offset: 0,
                limit: 7,
                before,
            };
            let (page, t) = store.list(&f, &at).unwrap();
            assert_eq!(t, total, "{f:?}");
            assert_eq!(
                page,
                memory.list(&f, &at).unwrap().0,
                "{f:?} before {before:?}"
            );
            let Some(last) = page.last() else { break };
            before = Some(last.id.num());
            by_cursor.extend(page.iter().map(|t| t.id.num()));
        }
        assert_eq!(by_cursor, expect, "{f:?} by cursor");
    }
}

#[test]
fn every_page_of_every_filter_holds_what_the_plain_filter_finds() {
    let b = Both::filled();
    let (_, total) = b
        .store
        .list(&ListFilter::default(), &ListAt::first(25))
        .unwrap();
    // 90 opened, 3 closed.
    assert_eq!(total, 87);
    same_lists(&b.store, &b.memory);
}

#[test]
fn a_store_made_before_the_index_gets_it_built_when_it_opens() {
    let b = Both::filled();
    b.store.forget_list_index().unwrap();
    // Without it the list finds nothing: what is checked next is built.
    let f = ListFilter {
        team: Some(TeamName::parse("infra").unwrap()),
        ..ListFilter::default()
    };
    assert_eq!(b.store.list(&f, &ListAt::first(25)).unwrap().1, 0);
    let mut b = b.reopened();
    same_lists(&b.store, &b.memory);
    // Kept from then on by each write, and built once only.
    b.run("bob", "/ticket take id:OPS-6");
    b.run("olivia", "/ticket open title:after team:infra");
    same_lists(&b.store, &b.memory);
    let b = b.reopened();
    same_lists(&b.store, &b.memory);
}

#[test]
fn a_store_whose_index_has_no_block_counts_gets_them_built_when_it_opens() {
    let b = Both::filled();
    b.store.forget_list_blocks().unwrap();
    // A deep page skips blocks by their counts: without them it finds
    // nothing, so what is checked next was built.
    let deep = ListAt {
        offset: 50,
        limit: 25,
        before: None,
    };
    assert!(b
        .store
        .list(&ListFilter::default(), &deep)
        .unwrap()
        .0
        .is_empty());
    let mut b = b.reopened();
    same_lists(&b.store, &b.memory);
    b.run("bob", "/ticket take id:OPS-6");
    b.run("olivia", "/ticket open title:later team:infra");
    same_lists(&b.store, &b.memory);
}

#[test]
fn a_snapshot_list_holds_each_ticket_once_while_batches_move_them() {
    let mut b = Both::new();
    const N: u64 = 120;
    for i in 1..=N {
        b.run("olivia", &format!("/ticket open title:t{i} team:backend"));
        b.run("olivia", &format!("/ticket assign id:OPS-{i} user:bob"));
    }
    let store = b.store.clone();
    let engine = b.engine.clone();
    let now = b.now;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Round after round, each ticket taken, resolved, rejected
            // (back to assigned): batches of 30 events, each moving tickets
            // between three states' index keys.
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds < 2 {
                for (who, verb) in [("bob", "take"), ("bob", "resolve"), ("olivia", "reject")] {
                    let events: Vec<Event> = (1..=N)
                        .map(|i| {
                            let extra = match verb {
                                "resolve" => " note:done",
                                "reject" => " reason:again",
                                _ => "",
                            };
                            command(who, &format!("/ticket {verb} id:OPS-{i}{extra}"))
                        })
                        .collect();
                    for chunk in events.chunks(30) {
                        let r = store
                            .apply_batch(
                                chunk,
                                |view, ev| {
                                    let d = engine.decide(view, ev, now)?;
                                    Ok((d.writes, ()))
                                },
                                || now,
                            )
                            .unwrap();
                        assert!(r.iter().all(|r| r.is_ok()), "{verb}: {r:?}");
                    }
                }
                rounds += 1;
            }
            rounds
        })
    };
    let started = std::time::Instant::now();
    let mut reads = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) || reads < 50 {
        let (all, total) = b
            .store
            .snapshot(|s| s.list(&ListFilter::default(), &ListAt::first(1000)))
            .unwrap()
            .unwrap();
        let nums: BTreeSet<u64> = all.iter().map(|t| t.id.num()).collect();
        assert_eq!(nums.len(), all.len(), "a ticket listed twice");
        assert_eq!(all.len() as u64, N, "a ticket missing");
        assert_eq!(total, N);
        // One state for all: a batch is seen whole or not at all, and
        // each batch moves 30 tickets at once.
        let states: BTreeSet<TicketState> = all.iter().map(|t| t.state).collect();
        assert!(states.len() <= 2, "{states:?}");
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds >= 2);
}

/// A smoke figure, not a benchmark (`cargo test --lib -- --ignored
/// list_cost`): a list's page and total at 1k and 100k tickets, from the
/// index, in whatever build runs it.
#[test]
#[ignore]
fn list_cost_does_not_grow_with_the_store() {
    let b = Both::new();
    let mut opened = 0u64;
    for target in [1_000u64, 100_000] {
        while opened < target {
            let n = (target - opened).min(500);
            let events: Vec<Event> = (0..n)
                .map(|i| {
                    let team = if (opened + i) % 2 == 0 {
                        " team:backend"
                    } else {
                        ""
                    };
                    command(
                        "olivia",
                        &format!("/ticket open title:t{}{team}", opened + i),
                    )
                })
                .collect();
            b.store
                .apply_batch(
                    &events,
                    |view, ev| {
                        let d = b.engine.decide(view, ev, b.now)?;
                        Ok((d.writes, ()))
                    },
                    || b.now,
                )
                .unwrap();
            opened += n;
        }
        b.store.flush().unwrap();
        let team = ListFilter {
            team: Some(TeamName::parse("backend").unwrap()),
            ..ListFilter::default()
        };
        for (what, f, offset) in [
            ("page 1", ListFilter::default(), 0),
            ("page 1, team", team.clone(), 0),
            ("page 40", ListFilter::default(), 975),
        ] {
            let at = ListAt {
                offset,
                limit: 25,
                before: None,
            };
            let mut times: Vec<std::time::Duration> = (0..50)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let (page, total) = b.store.snapshot(|s| s.list(&f, &at)).unwrap().unwrap();
                    assert_eq!(page.len(), 25);
                    assert!(total >= target / 2);
                    t.elapsed()
                })
                .collect();
            times.sort();
            eprintln!(
                "{target} tickets, {what}: median {:?}, max {:?}",
                times[25], times[49]
            );
        }
    }
}

/// `/ticket show` reads only the entries it shows: on the store and in
/// memory alike, a ticket of 31 entries shows the newest 20 and says how
/// many came before, after a reopen too.
#[test]
fn show_reads_the_newest_entries_of_a_long_timeline() {
    let mut b = Both::new();
    b.run("olivia", "/ticket open title:long");
    for i in 1..=30 {
        b.run(
            "olivia",
            &format!("/ticket comment id:OPS-1 text:\"note {i}\""),
        );
    }
    let b = b.reopened();
    let show = command("olivia", "/ticket show id:OPS-1");
    let on_store = b.engine.query(&b.store, &show, b.now).unwrap();
    let on_memory = b.engine.query(&b.memory, &show, b.now).unwrap();
    let text = on_store.body.to_plain();
    assert_eq!(text, on_memory.body.to_plain());
    assert!(text.contains("timeline (31 entries):"), "{text}");
    assert!(text.contains("… 11 earlier entries"), "{text}");
    assert!(
        text.contains("note 30") && text.contains("note 11"),
        "{text}"
    );
    assert!(
        !text.contains("note 10") && !text.contains("note 5"),
        "{text}"
    );
    let id = crate::domain::TicketId::parse("OPS-1", "OPS").unwrap();
    let tail = b.store.timeline_from(&id, 29).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [29, 30],
        "from entry 29 on, nothing older"
    );
}
