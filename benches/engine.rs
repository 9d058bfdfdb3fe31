//! Durable ticket operations per second through the real engine, runtime and
//! store (group commit), with per-operation latency, next to the raw sled
//! rate for comparable writes on the same machine.
//!
//! The store is sled, or with `OPSBOT_BENCH_BACKEND=postgres` a throwaway
//! PostgreSQL 15 cluster this bench starts on the same machine (the tests'
//! kit, `tests/it/pg.rs`), with `fsync` and `synchronous_commit` on, so that
//! an operation is as durable as on sled (flushed before it is answered).
//!
//! Run: `cargo bench --bench engine` (options: `-- CLIENTS TICKETS_PER_CLIENT`).

mod common;
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;
use common::{machine, ms, percentile, raw_sled_group_commit, BenchBackend, RawRecord};

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsbot::commands::parse_command;
use opsbot::config::Config;
use opsbot::domain::{Actor, ChannelName, Source, UserName};
use opsbot::engine::{Engine, Event};
use opsbot::runtime::{Bot, SystemClock};
use opsbot::store::Store;

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
qa_team = "qa"
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[teams.qa]
channel = "qa"
members = ["quinn"]
"#;

fn event(who: &str, line: &str) -> Event {
    Event::Command {
        actor: Actor::new(UserName::parse(who).expect("name"), Source::Console),
        channel: ChannelName::parse("ops").expect("channel"),
        command: parse_command(line, "OPS").expect("command"),
    }
}

fn engine_bench(clients: usize, per_client: usize, pg: Option<&pg::Pg>) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg_path = dir.path().join("bot.toml");
    let config = Config::parse(&cfg_path, CONFIG).expect("config").config;
    let store = match pg {
        Some(pg) => Store::connect(&pg.database("opsbot_bench")).expect("store connects"),
        None => Store::open(&config.storage_path).expect("store"),
    };
    let backend = if pg.is_some() {
        "PostgreSQL (fsync on, synchronous_commit on)"
    } else {
        "sled"
    };
    let (bot, writer) = Bot::start(
        store.clone(),
        Engine::new(Arc::new(config)),
        Arc::new(SystemClock),
    )
    .expect("bot");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = rt.block_on(async {
        let mut handles = Vec::new();
        for c in 0..clients {
            let bot = bot.clone();
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_client * 4);
                for i in 0..per_client {
                    let t0 = Instant::now();
                    let reply = bot
                        .handle(event(
                            "olivia",
                            &format!("/ticket open title:\"c{c} t{i}\" team:backend"),
                        ))
                        .await
                        .expect("open")
                        .expect("reply")
                        .body
                        .to_plain();
                    lat.push(t0.elapsed());
                    let id = reply
                        .strip_prefix("Opened ")
                        .and_then(|r| r.split(' ').next())
                        .expect("id")
                        .to_string();
                    for (who, line) in [
                        ("bob", format!("/ticket take id:{id}")),
                        ("bob", format!("/ticket comment id:{id} text:\"looking\"")),
                        ("bob", format!("/ticket resolve id:{id} note:\"fixed\"")),
                    ] {
                        let t0 = Instant::now();
                        bot.handle(event(who, &line)).await.expect("move");
                        lat.push(t0.elapsed());
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.expect("client"));
        }
        all
    });
    let elapsed = started.elapsed();
    latencies.sort();
    let ops = latencies.len();
    println!(
        "engine + {backend}, group commit: {ops} durable ticket operations by {clients} concurrent clients in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  throughput {:.0} ops/s; latency p50 {}, p99 {}, max {}",
        ops as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "  store: {} tickets, {} posts queued in the outbox",
        store.ticket_count(),
        store.outbox_len()
    );
    drop(bot);
    writer.join();
    ops
}

/// The same shape of writes per operation (ticket record, timeline entry, two
/// index keys, counter, two outbox posts) straight into sled, one transaction
/// per operation: durable with a flush after each, and with a flush per 512.
fn raw_sled_bench(ops: usize, flush_every: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path()).expect("sled");
    let trees: Vec<sled::Tree> = [
        "meta", "tickets", "timeline", "by_state", "by_team", "outbox",
    ]
    .iter()
    .map(|n| db.open_tree(n).expect("tree"))
    .collect();
    let ticket = vec![b'x'; 420];
    let entry = vec![b'y'; 180];
    let post = vec![b'z'; 260];
    let mut latencies = Vec::with_capacity(ops);
    let started = Instant::now();
    for i in 0..ops as u64 {
        let t0 = Instant::now();
        use sled::Transactional;
        let r: Result<(), sled::transaction::TransactionError<()>> = (
            &trees[0], &trees[1], &trees[2], &trees[3], &trees[4], &trees[5],
        )
            .transaction(|(meta, tickets, timeline, by_state, by_team, outbox)| {
                let n = i / 4;
                meta.insert(b"seq".as_ref(), &i.to_be_bytes())?;
                tickets.insert(&n.to_be_bytes(), ticket.clone())?;
                timeline.insert([n.to_be_bytes(), i.to_be_bytes()].concat(), entry.clone())?;
                by_state.insert([&[1u8][..], &n.to_be_bytes()].concat(), &[])?;
                by_team.insert([&b"backend\0"[..], &n.to_be_bytes()].concat(), &[])?;
                outbox.insert(&(2 * i).to_be_bytes(), post.clone())?;
                outbox.insert(&(2 * i + 1).to_be_bytes(), post.clone())?;
                Ok(())
            });
        r.expect("transaction");
        if (i as usize + 1) % flush_every == 0 {
            db.flush().expect("flush");
        }
        latencies.push(t0.elapsed());
    }
    db.flush().expect("flush");
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "raw sled, one transaction per op, flush every {flush_every}: {ops} ops in {:.2} s = {:.0} ops/s; p50 {}, p99 {}",
        elapsed.as_secs_f64(),
        ops as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
    );
}

/// The same writes as [`raw_sled_bench`], group-committed as the commit
/// thread does: `per_tx` operations (the engine's batch: one operation in
/// flight per client) in one transaction, then one flush, and with
/// `fdatasync` the store's `fdatasync` of sled's log after it.
fn raw_sled_group_bench(ops: usize, per_tx: usize, fdatasync: bool) {
    let ticket = vec![b'x'; 420];
    let entry = vec![b'y'; 180];
    let post = vec![b'z'; 260];
    let op = |i: usize| -> Vec<RawRecord> {
        let (i, n) = (i as u64, i as u64 / 4);
        let r = |t: &str, k: Vec<u8>, v: &[u8]| (t.to_string(), k, v.to_vec());
        vec![
            r("meta", b"seq".to_vec(), &i.to_be_bytes()),
            r("tickets", n.to_be_bytes().to_vec(), &ticket),
            r(
                "timeline",
                [n.to_be_bytes(), i.to_be_bytes()].concat(),
                &entry,
            ),
            r("by_state", [&[1u8][..], &n.to_be_bytes()].concat(), &[]),
            r(
                "by_team",
                [&b"backend\0"[..], &n.to_be_bytes()].concat(),
                &[],
            ),
            r("outbox", (2 * i).to_be_bytes().to_vec(), &post),
            r("outbox", (2 * i + 1).to_be_bytes().to_vec(), &post),
        ]
    };
    let run = raw_sled_group_commit(ops, per_tx, fdatasync, &op);
    let mut commits = run.commits;
    commits.sort();
    println!(
        "raw sled, group commit: {per_tx} ops per transaction, one flush{} each: {ops} ops in {:.2} s = {:.0} ops/s; {} transactions, p50 {}, p99 {} each",
        if fdatasync { " + fdatasync" } else { "" },
        run.elapsed.as_secs_f64(),
        ops as f64 / run.elapsed.as_secs_f64(),
        run.transactions,
        ms(percentile(&commits, 0.50)),
        ms(percentile(&commits, 0.99)),
    );
}

/// What PostgreSQL itself costs here, next to the engine's figures: point
/// reads of the backend's table inside a `SERIALIZABLE` transaction, one
/// round trip each as the backend makes them, and durable commits of the
/// shape of one engine operation's writes (seven upserts in one statement).
fn raw_pg_bench(pg: &pg::Pg) {
    let url = pg.database("opsbot_raw");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        c.batch_execute(
            "CREATE TABLE kv (tree smallint NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (tree, key));
             INSERT INTO kv SELECT 1, int8send(g), convert_to(repeat('x', 420), 'UTF8') FROM generate_series(0, 9999) g;",
        )
        .await
        .expect("table");
        let get = c
            .prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2")
            .await
            .expect("prepare");
        let reads = 5_000u64;
        let started = Instant::now();
        for chunk in 0..reads / 100 {
            c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                .await
                .expect("begin");
            for i in 0..100 {
                let key = ((chunk * 100 + i) * 7 % 10_000).to_be_bytes().to_vec();
                c.query_opt(&get, &[&1i16, &key]).await.expect("read");
            }
            c.batch_execute("COMMIT").await.expect("commit");
        }
        let per_read = started.elapsed() / reads as u32;
        let put = c
            .prepare(
                "INSERT INTO kv (tree, key, value) SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
            )
            .await
            .expect("prepare");
        let commits = 1_000u64;
        let mut lat = Vec::with_capacity(commits as usize);
        let started = Instant::now();
        for i in 0..commits {
            let t0 = Instant::now();
            c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                .await
                .expect("begin");
            let trees: Vec<i16> = (2..9).collect();
            let keys: Vec<Vec<u8>> = (0..7).map(|_| i.to_be_bytes().to_vec()).collect();
            let values: Vec<Vec<u8>> = (0..7).map(|_| vec![b'y'; 260]).collect();
            c.execute(&put, &[&trees, &keys, &values])
                .await
                .expect("upsert");
            c.batch_execute("COMMIT").await.expect("commit");
            lat.push(t0.elapsed());
        }
        let elapsed = started.elapsed();
        lat.sort();
        println!(
            "raw PostgreSQL, one connection: a point read inside a SERIALIZABLE transaction {:.0} µs (round trip); a durable commit of 7 upserts (BEGIN, one statement, COMMIT) {:.2} ms mean, p99 {} = {:.0} commits/s",
            per_read.as_secs_f64() * 1e6,
            elapsed.as_secs_f64() * 1000.0 / commits as f64,
            ms(percentile(&lat, 0.99)),
            commits as f64 / elapsed.as_secs_f64(),
        );
    });
}

/// What the engine bench asked of PostgreSQL: transactions, index lookups
/// (point reads and scans) and rows written, from the server's statistics.
fn pg_counts(pg: &pg::Pg, ops: usize) {
    // A backend reports its statistics when it ends: the store is closed.
    std::thread::sleep(Duration::from_millis(1500));
    let commits: f64 = pg
        .psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'opsbot_bench'")
        .parse()
        .unwrap_or(0.0);
    let url = format!("postgresql://opsbot@127.0.0.1:{}/opsbot_bench", pg.port);
    let row = pg.psql_at(
        &url,
        "SELECT idx_scan, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_all_tables WHERE relname = 'opsbot_kv'",
    );
    let f: Vec<f64> = row.split('|').filter_map(|v| v.parse().ok()).collect();
    if f.len() == 4 {
        let per = |v: f64| v / ops as f64;
        println!(
            "  PostgreSQL's counts: {commits:.0} transactions committed, single statements outside a transaction included ({:.1} operations each); per operation {:.1} index lookups (reads and scans), {:.1} rows inserted, {:.1} updated, {:.1} deleted",
            ops as f64 / commits.max(1.0),
            per(f[0]),
            per(f[1]),
            per(f[2]),
            per(f[3]),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; numbers given are ours.
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let clients = nums.first().copied().unwrap_or(64);
    let per_client = nums.get(1).copied().unwrap_or(200);
    let backend = BenchBackend::from_env();
    println!("machine: {}", machine());
    println!("backend: {} (OPSBOT_BENCH_BACKEND)", backend.name());
    match backend {
        BenchBackend::Sled => {
            let _ = engine_bench(clients, per_client, None);
            raw_sled_bench(2_000, 1);
            raw_sled_bench(50_000, 512);
            let ops = clients * per_client * 4;
            raw_sled_group_bench(ops, clients, false);
            raw_sled_group_bench(ops, clients, true);
        }
        BenchBackend::Postgres => {
            let pg = pg::Pg::start_durable();
            println!(
                "  PostgreSQL {} on 127.0.0.1:{}, this machine; fsync={}, synchronous_commit={} (durable, as sled's flush)",
                pg.psql("SHOW server_version"),
                pg.port,
                pg.psql("SHOW fsync"),
                pg.psql("SHOW synchronous_commit"),
            );
            let ops = engine_bench(clients, per_client, Some(&pg));
            pg_counts(&pg, ops);
            raw_pg_bench(&pg);
        }
    }
}
