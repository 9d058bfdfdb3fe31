//! Hostile input, thrown at every entry point in-process: arbitrary option
//! values at every command the declarations know (the built-in ones and the
//! jobs of `commands/`), arbitrary JSON at every hook's parser. Nothing
//! panics (a panic in the engine would come back as an internal error, which
//! fails the test too), and whatever is refused leaves every record of the
//! store exactly as it was.

use std::sync::Arc;

use chrono::TimeZone;
use opsbot::commands::{Command, CommandName, OptKind};
use opsbot::domain::{Actor, ChannelName, Source, UserName};
use opsbot::engine::{Engine, Event};
use opsbot::error::{EngineError, StoreError};
use opsbot::store::Store;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::harness::Env;

const PEOPLE: &[&str] = &["olivia", "bob", "bella", "ivan", "quinn", "rita", "zed"];

/// Values that have found bugs, or sit at an edge.
const EDGES: &[&str] = &[
    "",
    " ",
    "1000000y",
    "300000y",
    "18446744073709551615s",
    "0s",
    "59s",
    "1m",
    "30d",
    "31d",
    "366d",
    "4w",
    "-1",
    "0",
    "18446744073709551616",
    "9999-12-31 23:59",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01 00:00",
    "2026-11-25 12:30",
    "2026-03-29 02:30",
    "p0",
    "p1",
    "p4",
    "open",
    "closed",
    "true",
    "false",
    "OPS-1",
    "OPS-2",
    "OPS-0",
    "ops-1",
    "#1",
    "OPS-18446744073709551615",
    "RUN-1",
    "RUN-0",
    "RUN-18446744073709551615",
    "backend",
    "infra",
    "qa",
    "nope",
    "bob",
    "olivia",
    "rita",
    "zed",
    "web",
    "staging",
    "production",
    "build-web",
    "test-web",
    "deploy-web",
    "ticket open",
    "main",
    "../../etc/passwd",
    "alertname=DiskFull",
    "alertname=~(",
    "service=~.*",
    "a!=b",
    "a!~",
    "=",
    "\u{202e}evil\u{202c}",
    "\u{1b}]0;pwned\u{7}\u{1b}[2J",
    "\"",
    "@everyone",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(EDGES).prop_map(str::to_string),
        2 => "\\PC{0,24}",
        1 => any::<String>(),
        1 => (1usize..600).prop_map(|n| "x".repeat(n)),
        1 => (any::<u64>(), proptest::sample::select(&["", "s", "m", "h", "d", "w", "y", "ms"][..]))
            .prop_map(|(n, u)| format!("{n}{u}")),
        1 => any::<i64>().prop_map(|n| format!("OPS-{n}")),
        1 => any::<u64>().prop_map(|n| format!("RUN-{n}")),
    ]
}

/// Values aimed at an option by its kind (times and durations at the ones
/// that take them, names at names), where edges hide.
fn aimed(kind: Option<OptKind>, name: &str) -> &'static [&'static str] {
    const TIMES: &[&str] = &[
        "1000000y",
        "300000y",
        "18446744073709551615s",
        "2562047788015215h",
        "90d",
        "91d",
        "30d",
        "31d",
        "366d",
        "1h",
        "59m",
        "0s",
        "8h",
        "9999-12-31 23:59",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-12:00",
        "1970-01-01 00:00",
        "2026-11-25 12:00",
        "2026-03-29 02:30",
    ];
    const NAMES: &[&str] = &[
        "bob", "bella", "olivia", "ivan", "quinn", "rita", "zed", "backend", "infra", "qa", "nope",
    ];
    match kind {
        Some(OptKind::Duration) => TIMES,
        Some(OptKind::Team) | Some(OptKind::User) => NAMES,
        _ if ["until", "from", "period", "duration"].contains(&name) => TIMES,
        _ => EDGES,
    }
}

/// One command from the declarations, with a few of its options (and now
/// and then one it does not have), each with an arbitrary value or one
/// aimed at its kind.
#[derive(Clone, Debug)]
struct Invocation {
    who: usize,
    target: Index,
    options: Vec<(Index, bool, String, Option<Index>)>,
}

fn invocation() -> impl Strategy<Value = Invocation> {
    (
        0..PEOPLE.len(),
        any::<Index>(),
        proptest::collection::vec(
            (
                any::<Index>(),
                proptest::bool::weighted(0.1),
                value(),
                proptest::option::weighted(0.5, any::<Index>()),
            ),
            0..5,
        ),
    )
        .prop_map(|(who, target, options)| Invocation {
            who,
            target,
            options,
        })
}

/// What a command can be: every declared command, and every job (each is a
/// command of its own, its options its parameters).
#[derive(Clone, Debug)]
enum Target {
    Declared(CommandName),
    Job(String, Vec<String>),
}

fn targets(env: &Env) -> Vec<Target> {
    let mut all: Vec<Target> = CommandName::ALL
        .iter()
        .copied()
        .map(Target::Declared)
        .collect();
    for (name, job) in &env.config().jobs {
        all.push(Target::Job(
            name.clone(),
            job.params.iter().map(|p| p.name.clone()).collect(),
        ));
    }
    all
}

fn to_command(targets: &[Target], inv: &Invocation) -> Result<Command, String> {
    let target = inv.target.get(targets);
    let names: Vec<(String, Option<OptKind>)> = match target {
        Target::Declared(c) => c
            .spec()
            .options
            .iter()
            .map(|o| (o.name.to_string(), Some(o.kind)))
            .collect(),
        Target::Job(_, params) => params.iter().map(|p| (p.clone(), None)).collect(),
    };
    let args: Vec<(String, String)> = inv
        .options
        .iter()
        .map(|(i, stranger, v, aim)| {
            let (name, kind) = if *stranger || names.is_empty() {
                ("colour".to_string(), None)
            } else {
                i.get(&names).clone()
            };
            let value = match aim {
                Some(a) => a.get(aimed(kind, &name)).to_string(),
                None => v.clone(),
            };
            (name, value)
        })
        .collect();
    match target {
        Target::Declared(c) => Command::from_args(*c, args, "OPS").map_err(|e| e.to_string()),
        Target::Job(job, _) => Ok(Command::Build {
            job: job.clone(),
            params: args,
        }),
    }
}

fn now() -> opsbot::domain::Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("a valid time")
}

/// A store with something in it for commands to act on: two tickets (one
/// with a team), a build run, a silence, an on-call override.
struct World {
    _env: Env,
    store: Store,
    engine: Engine,
    targets: Vec<Target>,
}

fn cmd(who: &str, command: Command) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).expect("a name"), Source::Console),
        channel: ChannelName::parse("ops").expect("a channel"),
        command,
    }
}

impl World {
    fn new() -> World {
        let env = Env::shipped();
        let config = env.config();
        let store = Store::open(&config.storage_path).expect("store opens");
        let engine = Engine::new(Arc::new(config));
        let targets = targets(&env);
        let w = World {
            _env: env,
            store,
            engine,
            targets,
        };
        for line in [
            "/ticket open title:first",
            "/ticket open title:second team:backend",
            "/build job:build-web",
            "/alert silence matchers:alertname=DiskFull duration:2h",
            "/oncall set team:backend user:bella until:8h",
        ] {
            let command = opsbot::commands::parse_with_jobs(line, "OPS", &w.engine.config().jobs)
                .expect("a seed command parses");
            let r = w.apply(&cmd("olivia", command));
            assert!(r.is_ok(), "seed `{line}` was refused: {r:?}");
        }
        w
    }

    fn contents(&self) -> Vec<opsbot::store::Record> {
        self.store.contents().expect("the store reads")
    }

    /// Applies one event as the commit thread does; Err is a refusal.
    fn apply(&self, event: &Event) -> Result<(), String> {
        if event.is_query() {
            return match self.engine.query(&self.store, event, now()) {
                Ok(_) => Ok(()),
                Err(EngineError::Refused(u)) => Err(u.to_string()),
                Err(e) => panic!("a query failed with an internal error: {e}"),
            };
        }
        let results = self
            .store
            .apply_batch(
                std::slice::from_ref(event),
                |view, ev| {
                    let d = self.engine.decide(view, ev, now())?;
                    Ok((d.writes, ()))
                },
                now,
            )
            .unwrap_or_else(|e| panic!("the transaction failed: {e}"));
        match results.into_iter().next() {
            Some(Ok(())) => Ok(()),
            Some(Err(EngineError::Refused(u))) => Err(u.to_string()),
            Some(Err(EngineError::Store(StoreError::Panicked { id, doing }))) => {
                panic!("the engine panicked while {doing} (logged as {id})")
            }
            Some(Err(e)) => panic!("an internal error: {e}"),
            None => panic!("no result"),
        }
    }

    /// Applies `event`; a refusal must have changed nothing.
    fn check(&self, event: &Event) -> Result<(), TestCaseError> {
        let before = self.contents();
        if let Err(why) = self.apply(event) {
            prop_assert!(!why.trim().is_empty(), "a refusal without words");
            prop_assert!(
                self.contents() == before,
                "refused ({why}), yet the store changed"
            );
        }
        Ok(())
    }
}

/// Alert payloads of the shapes the parsers know, with arbitrary values in
/// their fields, and arbitrary JSON.
fn payload() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        value().prop_map(Value::String),
    ];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(value(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let labels = proptest::collection::btree_map(
        prop_oneof![
            3 => proptest::sample::select(&["alertname", "service", "severity", "instance", "team"][..])
                .prop_map(str::to_string),
            1 => value(),
        ],
        value(),
        0..4,
    );
    let status = prop_oneof![
        3 => proptest::sample::select(&["firing", "resolved"][..]).prop_map(str::to_string),
        1 => value(),
    ];
    let alert = (
        labels,
        status,
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of(any_json.clone()),
    )
        .prop_map(|(labels, status, starts, fp, extra)| {
            let mut a = json!({
                "status": status,
                "labels": labels,
                "annotations": {"summary": "s"},
                "title": labels.get("alertname").cloned().unwrap_or_default(),
                "severity": labels.get("severity").cloned().unwrap_or_default(),
            });
            if let Some(s) = starts {
                a["startsAt"] = json!(s);
            }
            if let Some(f) = fp {
                a["fingerprint"] = json!(f);
            }
            if let Some(x) = extra {
                a["description"] = x;
            }
            a
        })
        .boxed();
    prop_oneof![
        2 => proptest::collection::vec(alert.clone(), 0..4)
            .prop_map(|alerts| json!({"version": "4", "status": "firing", "alerts": alerts})),
        1 => proptest::collection::vec(alert.clone(), 0..4).prop_map(Value::Array),
        1 => alert,
        1 => any_json,
    ]
}

type Parser =
    fn(&[u8]) -> Result<Vec<opsbot::domain::alert::Alert>, opsbot::domain::alert::PayloadError>;

const HOOKS: &[(&str, Parser)] = &[
    ("alertmanager", opsbot::domain::alert::parse_alertmanager),
    ("grafana", opsbot::domain::alert::parse_grafana),
    ("generic", opsbot::domain::alert::parse_generic),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_option_values_at_any_command_never_panic_and_a_refusal_changes_nothing(
        invocations in proptest::collection::vec(invocation(), 1..5),
        lines in proptest::collection::vec("/\\PC{0,40}", 0..3),
    ) {
        let w = World::new();
        for inv in &invocations {
            match to_command(&w.targets, inv) {
                Ok(command) => w.check(&cmd(PEOPLE[inv.who], command))?,
                Err(why) => prop_assert!(!why.trim().is_empty()),
            }
        }
        // Whole console lines, as typed.
        for line in &lines {
            if let Ok(command) = opsbot::commands::parse_with_jobs(line, "OPS", &w.engine.config().jobs) {
                w.check(&cmd("bob", command))?;
            }
        }
    }

    #[test]
    fn any_json_at_any_hook_never_panics_and_a_refusal_changes_nothing(
        bodies in proptest::collection::vec((any::<Index>(), payload()), 1..4),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let w = World::new();
        for (hook, body) in &bodies {
            let (_, parse) = hook.get(HOOKS);
            let bytes = serde_json::to_vec(body).expect("JSON encodes");
            if let Ok(alerts) = parse(&bytes) {
                w.check(&Event::Alerts { alerts })?;
            }
        }
        for (_, parse) in HOOKS {
            let _ = parse(&raw);
        }
    }

    #[test]
    fn any_support_request_never_panics_and_a_refusal_changes_nothing(
        body in payload(),
        subject in value(),
        message in value(),
        customer in value(),
        email in value(),
        key in proptest::option::of(value()),
    ) {
        let w = World::new();
        // The fields as the intake reads them from the JSON, when it can.
        let field = |k: &str, or: &str| body.get(k).and_then(Value::as_str).unwrap_or(or).to_string();
        for (subject, message) in [
            (subject.clone(), message.clone()),
            (field("subject", &subject), field("message", &message)),
        ] {
            w.check(&Event::SupportRequest {
                customer: opsbot::domain::Customer { id: customer.clone(), email: email.clone() },
                subject,
                message,
                idempotency_key: key.clone(),
            })?;
        }
    }
}

/// What the sweep tries at every option, besides the values aimed at its kind.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "18446744073709551616",
    "OPS-0",
    "RUN-0",
    "\u{202e}evil\u{202c}",
    "\u{1b}]0;pwned\u{7}\u{1b}[2J",
    "\"",
    "@everyone",
    "../../etc/passwd",
];

/// A value that gets an option of `kind` past its own checks, so that the
/// edge tried at another option reaches the engine.
fn plain(kind: OptKind, name: &str) -> &'static str {
    match kind {
        OptKind::Text { .. } if name == "until" => "8h",
        OptKind::Text { .. } => "t",
        OptKind::Ticket => "OPS-2",
        OptKind::Team => "backend",
        OptKind::User => "bob",
        OptKind::Priority => "p2",
        OptKind::State => "open",
        OptKind::Bool => "true",
        OptKind::Integer => "1",
        OptKind::Duration => "2h",
        OptKind::Matchers => "alertname=DiskFull",
        OptKind::Job => "build-web",
        OptKind::Service => "web",
        OptKind::Environment => "staging",
        OptKind::Run => "RUN-1",
        OptKind::Command => "ticket open",
        OptKind::ServiceState => "degraded",
    }
}

/// The sweep beside the random search: every edge value at every option of
/// every declared command (the others plain), by an operator. A random
/// search rarely lines up a valid team, a member and a million years at
/// once; this does, for every option there is.
#[test]
fn every_edge_at_every_option_of_every_command_is_answered_without_a_change_when_refused() {
    let w = World::new();
    let mut tried = 0;
    for &name in CommandName::ALL {
        let spec = name.spec();
        for (i, opt) in spec.options.iter().enumerate() {
            let aimed_here = match aimed(Some(opt.kind), opt.name) {
                // The long list is for the random search.
                pool if std::ptr::eq(pool, EDGES) => &[][..],
                pool => pool,
            };
            for edge in HOSTILE.iter().chain(aimed_here) {
                let args: Vec<(String, String)> = spec
                    .options
                    .iter()
                    .enumerate()
                    .map(|(j, o)| {
                        let v = if i == j {
                            edge.to_string()
                        } else {
                            plain(o.kind, o.name).to_string()
                        };
                        (o.name.to_string(), v)
                    })
                    .collect();
                let Ok(command) = Command::from_args(name, args, "OPS") else {
                    continue;
                };
                tried += 1;
                if let Err(e) = w.check(&cmd("olivia", command)) {
                    panic!("/{} {}:{edge:?}: {e}", spec.full_name(), opt.name);
                }
            }
        }
    }
    assert!(tried > 200, "only {tried} commands got past their parser");
}
