//! Random command sequences: no sequence reaches a state the machine forbids,
//! every timeline replays to the stored state, and every refused command
//! leaves the store exactly as it was.

use std::sync::Arc;

use chrono::TimeZone;
use opsbot::commands::Command;
use opsbot::domain::{Actor, ChannelName, Source, TeamName, TicketId, UserName};
use opsbot::engine::tickets::check_invariants;
use opsbot::engine::{Engine, Event, QueryView};
use opsbot::store::Store;
use proptest::prelude::*;

use crate::harness::Env;

const PEOPLE: &[&str] = &["olivia", "bob", "bella", "ivan", "quinn", "rita", "zed"];
const TEAMS: &[&str] = &["backend", "infra", "qa", "nope"];

fn op() -> impl Strategy<Value = (usize, Command)> {
    let id = (1u64..=4).prop_map(|n| TicketId::new("OPS", n));
    let who = 0..PEOPLE.len();
    let team = (0..TEAMS.len()).prop_map(|i| TeamName::parse(TEAMS[i]).unwrap());
    let user = (0..PEOPLE.len()).prop_map(|i| UserName::parse(PEOPLE[i]).unwrap());
    let cmd = prop_oneof![
        (proptest::option::of(team.clone())).prop_map(|team| Command::TicketOpen {
            title: "t".into(),
            description: None,
            priority: None,
            team,
        }),
        (id.clone(), team.clone()).prop_map(|(id, t)| Command::TicketAssign {
            id,
            team: Some(t),
            user: None
        }),
        (id.clone(), proptest::option::of(team), user).prop_map(|(id, team, u)| {
            Command::TicketAssign {
                id,
                team,
                user: Some(u),
            }
        }),
        id.clone().prop_map(|id| Command::TicketTake { id }),
        id.clone().prop_map(|id| Command::TicketResolve {
            id,
            note: "n".into()
        }),
        id.clone().prop_map(|id| Command::TicketQa { id }),
        id.clone().prop_map(|id| Command::TicketVerify { id }),
        id.clone().prop_map(|id| Command::TicketReject {
            id,
            reason: "r".into()
        }),
        id.clone().prop_map(|id| Command::TicketReopen {
            id,
            reason: "r".into()
        }),
        (id, any::<bool>()).prop_map(|(id, customer)| Command::TicketComment {
            id,
            text: "c".into(),
            customer,
        }),
    ];
    (who, cmd)
}

fn snapshot(store: &Store) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    store.export_jsonl(&mut out).unwrap();
    (out, store.outbox_len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_stay_within_the_machine(ops in proptest::collection::vec(op(), 1..40)) {
        let env = Env::shipped();
        let config = env.config();
        let org = config.org.clone();
        let store = Store::open(&config.storage_path).unwrap();
        let engine = Engine::new(Arc::new(config));
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        for (who, command) in ops {
            let event = Event::Command {
                actor: Actor::new(UserName::parse(PEOPLE[who]).unwrap(), Source::Console),
                channel: ChannelName::parse("ops").unwrap(),
                command,
            };
            let before = snapshot(&store);
            let results = store
                .apply_batch(&[event], |view, ev| {
                    let d = engine.decide(view, ev, now)?;
                    Ok((d.writes, d.reply))
                }, || now)
                .unwrap();
            match &results[0] {
                Ok(reply) => prop_assert!(reply.is_some()),
                Err(_) => prop_assert_eq!(snapshot(&store), before, "a refused command changed the store"),
            }
            for t in store.tickets() {
                let t = t.unwrap();
                prop_assert!(check_invariants(&t, &org).is_ok(), "{:?}", check_invariants(&t, &org));
                // The timeline replays to the stored state.
                let mut state = opsbot::domain::TicketState::Open;
                for e in store.timeline(&t.id).unwrap() {
                    if let (Some(from), Some(to)) = (e.from, e.to) {
                        prop_assert_eq!(from, state);
                        state = to;
                    }
                }
                prop_assert_eq!(state, t.state);
            }
        }
    }
}
