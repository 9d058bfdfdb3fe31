//! Many tasks at once: unique ids, no lost timeline entry, only states the
//! machine allows, exactly one winner of a race.

use std::collections::BTreeSet;
use std::sync::Arc;

use opsbot::commands::parse_command;
use opsbot::domain::{Actor, ChannelName, Source, TicketState, UserName};
use opsbot::engine::tickets::check_invariants;
use opsbot::engine::{Event, QueryView};
use opsbot::runtime::BotError;

use crate::harness::Env;

fn event(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

/// After concurrent work: the ids handed out are unique and exactly
/// `OPS-1`..=`OPS-n`, and every ticket is whole (its invariants hold, its
/// timeline has every entry in order). Returns the tickets.
pub fn assert_whole(
    store: &opsbot::store::Store,
    opened: &[String],
    n: usize,
    org: &opsbot::domain::org::Org,
) -> Vec<opsbot::domain::Ticket> {
    let unique: BTreeSet<&String> = opened.iter().collect();
    assert_eq!(unique.len(), n, "duplicate ids handed out");
    let want: BTreeSet<String> = (1..=n).map(|n| format!("OPS-{n}")).collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), want);
    let mut tickets = Vec::new();
    for t in store.tickets() {
        let t = t.unwrap();
        check_invariants(&t, org).unwrap();
        let timeline = store.timeline(&t.id).unwrap();
        assert_eq!(timeline.len() as u32, t.timeline_len, "{}", t.id);
        let seqs: Vec<u32> = timeline.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..t.timeline_len).collect::<Vec<_>>());
        tickets.push(t);
    }
    tickets
}

#[test]
fn concurrent_opens_and_moves_keep_every_record() {
    concurrent_opens_and_moves_keep_every_record_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn concurrent_opens_and_moves_keep_every_record_on_postgres() {
    concurrent_opens_and_moves_keep_every_record_on(Env::on_postgres());
}

fn concurrent_opens_and_moves_keep_every_record_on(env: Env) {
    let (bot, writer, store) = env.bot();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const TASKS: usize = 40;
    const EACH: usize = 25;
    let opened: Vec<String> = rt.block_on(async {
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let bot = bot.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..EACH {
                    let reply = bot
                        .handle(event(
                            "olivia",
                            &format!("/ticket open title:\"t{task}-{i}\" team:backend"),
                        ))
                        .await
                        .expect("open")
                        .expect("reply");
                    let text = reply.body.to_plain();
                    let id = text
                        .strip_prefix("Opened ")
                        .and_then(|r| r.split(' ').next())
                        .expect("id in reply")
                        .to_string();
                    // Move every other ticket along, interleaved with others' work.
                    if i % 2 == 0 {
                        for (who, line) in [
                            ("bob", format!("/ticket take id:{id}")),
                            ("bob", format!("/ticket comment id:{id} text:\"on it\"")),
                            ("bob", format!("/ticket resolve id:{id} note:fixed")),
                        ] {
                            bot.handle(event(who, &line)).await.expect("move");
                        }
                    }
                    mine.push(id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    let mut resolved = 0;
    for t in assert_whole(&store, &opened, TASKS * EACH, &env.config().org) {
        let moved = t
            .title
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            % 2
            == 0;
        if moved {
            assert_eq!(t.state, TicketState::Resolved);
            assert_eq!(t.timeline_len, 5);
            resolved += 1;
        } else {
            assert_eq!(t.state, TicketState::Assigned);
            assert_eq!(t.timeline_len, 2);
        }
    }
    assert_eq!(resolved, TASKS * EACH.div_ceil(2));
    // Every post that followed is queued: 4 per open for a team (card,
    // thread, team channel, thread), 1+1+2 per moved ticket, and a card
    // update for each move that changes the card (take, resolve).
    assert_eq!(store.outbox_len(), TASKS * EACH * 4 + resolved * (4 + 2));
    drop(bot);
    writer.join();
}

#[test]
fn a_race_to_verify_has_exactly_one_winner() {
    a_race_to_verify_has_exactly_one_winner_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn a_race_to_verify_has_exactly_one_winner_on_postgres() {
    a_race_to_verify_has_exactly_one_winner_on(Env::on_postgres());
}

fn a_race_to_verify_has_exactly_one_winner_on(env: Env) {
    let (bot, writer, store) = env.bot();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for n in 1..=10 {
            bot.handle(event("olivia", &format!("/ticket open title:r{n}")))
                .await
                .unwrap();
            bot.handle(event(
                "olivia",
                &format!("/ticket resolve id:OPS-{n} note:done"),
            ))
            .await
            .unwrap();
        }
        let bot = Arc::new(bot.clone());
        let mut handles = Vec::new();
        for _ in 0..8 {
            let bot = bot.clone();
            handles.push(tokio::spawn(async move {
                let mut won = 0;
                for n in 1..=10 {
                    match bot
                        .handle(event("olivia", &format!("/ticket verify id:OPS-{n}")))
                        .await
                    {
                        Ok(_) => won += 1,
                        Err(BotError::Refused(e)) => {
                            assert!(e
                                .to_string()
                                .starts_with(&format!("cannot verify OPS-{n}: it is `closed`")))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                won
            }));
        }
        let mut wins = 0;
        for h in handles {
            wins += h.await.unwrap();
        }
        assert_eq!(wins, 10);
    });
    for t in store.tickets() {
        let t = t.unwrap();
        assert_eq!(t.state, TicketState::Closed);
        let verified = store
            .timeline(&t.id)
            .unwrap()
            .iter()
            .filter(|e| e.kind == opsbot::domain::EntryKind::Verified)
            .count();
        assert_eq!(verified, 1, "{}", t.id);
    }
    drop(bot);
    writer.join();
}
