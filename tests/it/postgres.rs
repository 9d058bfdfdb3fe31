//! The PostgreSQL backend on a real PostgreSQL (a throwaway cluster per
//! test, see [`crate::pg`]): the same records and guarantees as on sled,
//! several instances on one database, and the database going away.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use opsbot::commands::parse_command;
use opsbot::domain::{Actor, ChannelName, Source, TicketState, UserName};
use opsbot::engine::{Engine, Event, QueryView, View};
use opsbot::runtime::{Bot, BotError, SystemClock, Writer};
use opsbot::store::{Queue, Store};

use crate::harness::Env;
use crate::pg::Pg;

fn event(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command: parse_command(line, "OPS").unwrap(),
    }
}

/// One opsbot instance (a commit thread and its pool) on the database.
fn instance(env: &Env, url: &str) -> (Bot, Writer, Store) {
    let store = Store::connect(url).expect("the store connects to PostgreSQL");
    let (bot, writer) = Bot::start(
        store.clone(),
        Engine::new(Arc::new(env.config())),
        Arc::new(SystemClock),
    )
    .expect("bot starts");
    (bot, writer, store)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn opened_id(reply: &opsbot::engine::Reply) -> String {
    let text = reply.body.to_plain();
    text.strip_prefix("Opened ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no id in {text}"))
        .to_string()
}

#[test]
fn records_committed_on_postgres_are_there_after_a_reconnect() {
    let pg = Pg::start();
    let url = pg.database("reconnect");
    let env = Env::shipped();
    let (bot, writer, store) = instance(&env, &url);
    let rt = runtime();
    rt.block_on(async {
        let r = bot
            .handle(event(
                "olivia",
                "/ticket open title:\"disk full\" team:backend",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(opened_id(&r), "OPS-1");
        bot.handle(event("bob", "/ticket take id:OPS-1"))
            .await
            .unwrap();
    });
    drop((bot, store));
    writer.join();

    let again = Store::connect(&url).expect("connects again");
    let t = again
        .ticket(&opsbot::domain::TicketId::new("OPS", 1))
        .unwrap()
        .expect("the ticket is there");
    assert_eq!(t.title, "disk full");
    assert_eq!(t.state, TicketState::InProgress);
    assert_eq!(
        again.timeline(&t.id).unwrap().len(),
        3,
        "opened, assigned, taken"
    );
    assert_eq!(again.last_ticket_number().unwrap(), 1);
    assert!(again.outbox_len() > 0, "the posts that followed are queued");
    // The depth kept with every write equals the queue, and follows a
    // delivery (done twice: counted once) and a dead letter.
    let queued = again.pending(Queue::Chat, usize::MAX).unwrap();
    assert_eq!(again.queue_depth(Queue::Chat).unwrap(), queued.len());
    again.done(Queue::Chat, queued[0].seq).unwrap();
    again.done(Queue::Chat, queued[0].seq).unwrap();
    again.dead_letter(Queue::Chat, &queued[1]).unwrap();
    assert_eq!(again.queue_depth(Queue::Chat).unwrap(), queued.len() - 2);
    assert_eq!(again.dead_letter_count().unwrap(), 1);
    assert_eq!(
        again.pending(Queue::Chat, usize::MAX).unwrap().len(),
        queued.len() - 2
    );
    assert!(again.backend().starts_with("postgres"));
    assert!(!again.backend().contains("password"));
}

#[test]
fn a_database_of_a_newer_schema_is_refused() {
    let pg = Pg::start();
    let url = pg.database("newer");
    let store = Store::connect(&url).unwrap();
    store.set_schema_version(99).unwrap();
    drop(store);
    let err = Store::connect(&url).unwrap_err().to_string();
    assert!(err.contains("newer opsbot (schema 99)"), "{err}");

    // The backend's own tables refuse a newer version too.
    let url2 = pg.database("newer_tables");
    drop(Store::connect(&url2).unwrap());
    Command::psql_on(&url2, "UPDATE opsbot_schema SET version = 7");
    let err = Store::connect(&url2).unwrap_err().to_string();
    assert!(err.contains("newer version (7)"), "{err}");
}

/// psql on a given database URL.
struct Command;
impl Command {
    fn psql_on(url: &str, sql: &str) {
        let out = std::process::Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn two_instances_on_one_database_hand_out_unique_contiguous_ids_and_lose_nothing() {
    let pg = Pg::start();
    let url = pg.database("two");
    let env = Env::shipped();
    let (a, wa, store) = instance(&env, &url);
    let (b, wb, _) = instance(&env, &url);
    let rt = runtime();
    const TASKS: usize = 8;
    const EACH: usize = 15;
    let opened: Vec<String> = rt.block_on(async {
        let mut handles = Vec::new();
        for task in 0..TASKS {
            // Half the people on each instance.
            let bot = if task % 2 == 0 { a.clone() } else { b.clone() };
            let other = if task % 2 == 0 { b.clone() } else { a.clone() };
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
                    let id = opened_id(&reply);
                    // Every other ticket moved along on the other instance.
                    if i % 2 == 0 {
                        for line in [
                            format!("/ticket take id:{id}"),
                            format!("/ticket comment id:{id} text:\"on it\""),
                            format!("/ticket resolve id:{id} note:fixed"),
                        ] {
                            other.handle(event("bob", &line)).await.expect("move");
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
    for t in crate::concurrency::assert_whole(&store, &opened, TASKS * EACH, &env.config().org) {
        if t.state == TicketState::Resolved {
            assert_eq!(t.timeline_len, 5);
            resolved += 1;
        } else {
            assert_eq!(t.state, TicketState::Assigned);
            assert_eq!(t.timeline_len, 2);
        }
    }
    assert_eq!(resolved, TASKS * EACH.div_ceil(2));
    // The outbox's numbers are unique and contiguous too.
    let seqs: Vec<u64> = store
        .outbox_pending(usize::MAX)
        .unwrap()
        .iter()
        .map(|i| i.seq)
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(seqs.len(), TASKS * EACH * 4 + resolved * (4 + 2));
    drop((a, b));
    wa.join();
    wb.join();
}

#[test]
fn while_postgres_is_down_commands_are_refused_and_the_bot_goes_on_when_it_returns() {
    let pg = Pg::start();
    let url = pg.url();
    let env = Env::shipped();
    let (bot, writer, store) = instance(&env, &url);
    // A reopen waits for other handles to go: hold none.
    drop(store);
    let rt = runtime();
    rt.block_on(async {
        bot.handle(event("olivia", "/ticket open title:before"))
            .await
            .unwrap();
    });
    pg.kill();
    let refused = rt.block_on(bot.handle(event("olivia", "/ticket open title:during")));
    match &refused {
        Err(BotError::Unavailable(why)) => {
            assert!(why.contains("database"), "{why}");
            let said = refused.as_ref().unwrap_err().to_string();
            assert!(said.contains("nothing was changed"), "{said}");
        }
        other => panic!("expected a refusal while the database is down, got {other:?}"),
    }
    let problems = bot.health().readiness(chrono::Utc::now());
    assert!(
        problems.iter().any(|p| p.contains("database")),
        "readiness names the database: {problems:?}"
    );
    pg.restart();
    // Without a restart of the bot, it takes commands again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match rt.block_on(bot.handle(event("olivia", "/ticket open title:after"))) {
            Ok(r) => break r.unwrap(),
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("still refused 30 s after PostgreSQL returned: {e}"),
        }
    };
    assert_eq!(
        opened_id(&reply),
        "OPS-2",
        "nothing of the refused command was kept"
    );
    let store = bot.store().unwrap();
    let titles: Vec<String> = store.tickets().map(|t| t.unwrap().title).collect();
    drop(store);
    assert_eq!(titles, ["before", "after"]);
    drop(bot);
    writer.join();
}

#[test]
fn one_instance_holds_the_lease_and_another_takes_it_when_it_runs_out_or_is_given_up() {
    use opsbot::runtime::lease::Lease;
    let pg = Pg::start();
    let url = pg.database("lease");
    let (s1, s2) = (Store::connect(&url).unwrap(), Store::connect(&url).unwrap());
    let ttl = Duration::from_millis(1500);
    let one = Lease::shared("one".into(), ttl);
    let two = Lease::shared("two".into(), ttl);
    assert!(one.try_take(&s1).unwrap());
    let first = one.token().unwrap();
    assert!(!two.try_take(&s2).unwrap(), "the lease is running");
    assert!(!two.held());
    // Renewing keeps the token.
    assert!(one.try_take(&s1).unwrap());
    assert_eq!(one.token(), Some(first));
    // The holder stops renewing (it died or hangs): its own view runs out
    // first, then the database's, and the other takes it with a new token.
    std::thread::sleep(ttl - Duration::from_millis(200));
    assert!(
        !one.held(),
        "the holder stops acting before the database lets go"
    );
    assert!(
        !two.try_take(&s2).unwrap(),
        "the database has not let go yet"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(two.try_take(&s2).unwrap());
    let second = two.token().unwrap();
    assert!(
        second > first,
        "the fencing token grows: {first} then {second}"
    );
    // The old holder, back, cannot take it while it runs.
    assert!(!one.try_take(&s1).unwrap());
    // Given up, it can be taken at once.
    two.release(&s2);
    assert!(!two.held());
    assert!(one.try_take(&s1).unwrap());
    assert!(one.token().unwrap() > second);
}

#[test]
fn an_export_from_sled_imports_into_postgres_and_exports_the_same() {
    let sled = Env::shipped();
    sled.console(&[
        r#"/ticket open title:"Checkout fails" priority:p2 team:backend"#,
        "/ticket open title:\"Disk full on db-2\" team:infra",
        ":as bob",
        "/ticket take id:OPS-1",
        r#"/ticket comment id:OPS-1 text:"looking""#,
        r#"/ticket resolve id:OPS-1 note:"fixed""#,
    ]);
    let exported = sled.opsbot(&["export"], "");
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    assert!(exported.stdout.lines().count() > 5);

    let pg = Env::on_postgres();
    let imported = pg.opsbot(&["import"], &exported.stdout);
    assert_eq!(imported.code, Some(0), "{}", imported.stderr);
    assert!(
        imported.stderr.contains("imported 2 tickets"),
        "{}",
        imported.stderr
    );
    let again = pg.opsbot(&["export"], "");
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(
        again.stdout, exported.stdout,
        "the round trip keeps every record"
    );

    // The restored store goes on where the old one stopped.
    let run = pg.console(&["/ticket open title:\"after the move\""]);
    assert!(run.stdout.contains("OPS-3"), "{}", run.stdout);
    let listed = pg.console(&["/ticket list state:resolved"]);
    assert!(listed.stdout.contains("OPS-1"), "{}", listed.stdout);

    // Importing into a store that has records is refused, and changes nothing.
    let refused = pg.opsbot(&["import"], &exported.stdout);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("is not empty"),
        "{}",
        refused.stderr
    );
    assert_eq!(pg.tickets().len(), 3);
}

#[test]
fn an_import_names_the_line_that_is_not_a_record() {
    let env = Env::on_postgres();
    let input = "{\"type\":\"ticket\",\"nonsense\":1}\n";
    let run = env.opsbot(&["import"], input);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("line 1 is not a record"),
        "{}",
        run.stderr
    );
    let run = env.opsbot(&["import"], "not json\n");
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
}

/// PostgreSQL killed (as a crash would) while alerts keep arriving, then
/// started again: nothing was answered 2xx that is not on record, nothing
/// is there twice, and the bot takes alerts again without a restart.
#[test]
fn postgres_killed_and_restarted_under_load_answers_no_2xx_it_did_not_commit() {
    use crate::crash::{group, payload};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    let env = Env::on_postgres();
    let pg = env.pg.clone().expect("a cluster");
    let bot = env.live(&[]);
    let url = bot.url("/hooks/alertmanager");
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let retry_after: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..3)
        .map(|sender| {
            let (url, acked, statuses, retry_after, stop) = (
                url.clone(),
                acked.clone(),
                statuses.clone(),
                retry_after.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .unwrap();
                let mut req = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Half the alerts of a request in a shared pool of groups.
                    let fps: Vec<String> = (0..6)
                        .map(|i| {
                            if i % 2 == 0 {
                                format!("pool-{:02}", (req * 7 + i + sender) % 40)
                            } else {
                                format!("once-{sender}-{req}-{i}")
                            }
                        })
                        .collect();
                    req += 1;
                    let r = http
                        .post(&url)
                        .bearer_auth(crate::harness::TOKEN)
                        .header("Content-Type", "application/json")
                        .body(payload(&fps))
                        .send();
                    match r {
                        Ok(r) => {
                            let code = r.status().as_u16();
                            if code == 503 {
                                if let Some(v) = r.headers().get("retry-after") {
                                    retry_after
                                        .lock()
                                        .unwrap()
                                        .push(v.to_str().unwrap_or("").to_string());
                                }
                            }
                            statuses.lock().unwrap().push(code);
                            if (200..300).contains(&code) {
                                acked.lock().unwrap().extend(fps);
                            }
                        }
                        Err(_) => statuses.lock().unwrap().push(0),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let count = |pred: &dyn Fn(u16) -> bool| {
        statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|c| pred(**c))
            .count()
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("accepted alerts", &|| count(&|c| c == 202) >= 30);
    pg.kill();
    let before = count(&|c| c == 503);
    wait("refusals while the database is down", &|| {
        count(&|c| c == 503) >= before + 5
    });
    let accepted_down = count(&|c| c == 202);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        count(&|c| c == 202) <= accepted_down + 3,
        "alerts were still answered 202 with the database down"
    );
    pg.restart();
    let back = count(&|c| c == 202);
    wait("accepted alerts after the database is back", &|| {
        count(&|c| c == 202) >= back + 30
    });
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().unwrap();
    }
    let retry = retry_after.lock().unwrap().clone();
    assert!(!retry.is_empty(), "503s carry Retry-After");

    let acked = acked.lock().unwrap().clone();
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let tickets = env.tickets();
    // Every acknowledged alert is on record, in its group's only open ticket.
    let mut open_by_group: std::collections::BTreeMap<String, usize> = Default::default();
    let mut groups: BTreeSet<String> = BTreeSet::new();
    for t in &tickets {
        let g = t["alerts"]["group"]
            .as_str()
            .expect("alert group")
            .to_string();
        if t["state"] != "closed" {
            *open_by_group.entry(g.clone()).or_default() += 1;
        }
        groups.insert(g);
    }
    let missing: Vec<&String> = acked
        .iter()
        .filter(|fp| !groups.contains(&group(fp)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} alerts answered 2xx are not on record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let doubled: Vec<_> = open_by_group.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "groups with more than one open ticket: {doubled:?}"
    );
    // Numbering has no holes: every id from 1 to the highest is there once.
    let mut nums: Vec<u64> = tickets
        .iter()
        .filter_map(|t| t["id"].as_str()?.strip_prefix("OPS-")?.parse().ok())
        .collect();
    nums.sort();
    assert_eq!(nums, (1..=nums.len() as u64).collect::<Vec<_>>());
}

/// How many transactions of database `name` PostgreSQL rolled back (each
/// session's counts are published when it ends, at the latest).
fn rollbacks(pg: &Pg, name: &str) -> u64 {
    pg.psql(&format!(
        "SELECT xact_rollback FROM pg_stat_database WHERE datname = '{name}'"
    ))
    .trim()
    .parse()
    .expect("xact_rollback")
}

#[test]
fn deliveries_recorded_while_commands_commit_refuse_no_commit_and_keep_the_depth_exact() {
    let pg = Pg::start();
    let url = pg.database("depths");
    let env = Env::shipped();
    let (bot, writer, store) = instance(&env, &url);
    let rt = runtime();
    // A delivery worker recording what it delivered, as fast as it can,
    // while people's commands commit (each adds posts to the same queue).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut delivered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seqs: Vec<u64> = store
                    .pending(Queue::Chat, 8)
                    .unwrap()
                    .iter()
                    .map(|i| i.seq)
                    .collect();
                store.done_all(Queue::Chat, &seqs).unwrap();
                delivered += seqs.len();
            }
            delivered
        })
    };
    rt.block_on(async {
        let mut handles = Vec::new();
        for task in 0..4 {
            let bot = bot.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..25 {
                    bot.handle(event(
                        "olivia",
                        &format!("/ticket open title:\"t{task}-{i}\" team:backend"),
                    ))
                    .await
                    .expect("open")
                    .expect("reply");
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let delivered = worker.join().unwrap();
    assert!(delivered > 0, "the worker delivered some posts meanwhile");
    let left = store.pending(Queue::Chat, usize::MAX).unwrap().len();
    assert_eq!(
        store.queue_len(Queue::Chat),
        left,
        "the depth a scrape reads is the queue's"
    );
    assert_eq!(
        delivered + left,
        100 * 4,
        "every post is delivered or pending"
    );
    // The sessions end: PostgreSQL publishes their counts.
    drop((bot, store));
    writer.join();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        rollbacks(&pg, "depths"),
        0,
        "no transaction was refused and tried again: the deliveries are recorded outside the batches' serializable transactions"
    );
}
