//! Failover time on PostgreSQL: two `opsbot run` instances on one database
//! (a throwaway PostgreSQL 15 cluster with `fsync` on, the tests' kit),
//! against the fake Discord; the leader is killed with SIGKILL, an alert is
//! sent to the standby's intake at once (committed there, delivered only by
//! the lease's holder), and the bench times the kill → the new leader's
//! gateway session and → the first post it delivers to Discord. Each run
//! has a fresh database and a fresh fake Discord; the figures are the
//! median and the maximum over the runs.
//!
//! It reuses the failover test's machinery (`tests/it/failover.rs`).
//!
//! Run: `cargo bench --bench failover` (options: `-- RUNS LEASE`, default
//! 10 runs with the shipped lease of 10 s; e.g. `-- 10 2s`).

mod common;
#[allow(unused_imports)]
#[path = "../tests/it/discord_fixtures.rs"]
mod discord_fixtures;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/failover.rs"]
mod failover;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/fake_discord/mod.rs"]
mod fake_discord;
#[allow(dead_code, unused_imports)]
#[path = "../tests/it/fake_jenkins.rs"]
mod fake_jenkins;
#[allow(dead_code)]
#[path = "../tests/it/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;

/// What the failover test takes from the Discord tests' module: the
/// channels, and the shipped config pointed at the fake.
#[allow(dead_code)]
mod discord {
    use crate::discord_fixtures as fx;
    use crate::fake_discord::FakeDiscord;
    use crate::kit;

    pub(crate) const OPS: u64 = fx::CHANNEL_ID;
    pub(crate) const BACKEND: u64 = fx::CHANNEL_ID + 1;
    pub(crate) const ALERTS: u64 = fx::CHANNEL_ID + 2;
    pub(crate) const QA: u64 = fx::CHANNEL_ID + 3;
    pub(crate) const INFRA: u64 = fx::CHANNEL_ID + 4;

    /// As `tests/it/discord.rs` has it.
    pub(crate) fn config_for(fake: &FakeDiscord) -> String {
        let text = kit::on_discord(
            &kit::shipped_config(),
            &fx::GUILD_ID.to_string(),
            &fake.base,
        );
        let text = kit::in_section(
            &text,
            "[discord.channels]",
            &format!(
                "ops = \"{OPS}\"\nbackend = {BACKEND}\nalerts = \"{ALERTS}\"\nqa = \"{QA}\"\n\
                 infra = \"{INFRA}\"\n"
            ),
        );
        let u = fx::USER_ID;
        kit::in_section(
            &text,
            "[discord.users]",
            &format!(
                "olivia = \"{u}\"\nbob = \"{}\"\nquinn = \"{}\"\nrita = \"{}\"\n",
                u + 1,
                u + 2,
                u + 3
            ),
        )
    }
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{machine, ms, percentile};
use discord::{ALERTS, BACKEND, INFRA, QA};
use failover::{payload, start, storm_alert, Instance, WAIT};
use fake_discord::FakeDiscord;
use harness::Env;
use pg::Pg;

/// Requests that post a message.
fn posts(fake: &FakeDiscord) -> usize {
    fake.requests()
        .iter()
        .filter(|r| {
            r.starts_with("POST ")
                && r.split('?')
                    .next()
                    .is_some_and(|p| p.ends_with("/messages"))
        })
        .count()
}

/// Waits until `f` holds, polling every 2 ms; panics after `timeout`.
fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One failover: (kill → new gateway session, kill → first post).
fn one(pg: &Arc<Pg>, run: usize, lease: &str) -> (Duration, Duration) {
    let fake = FakeDiscord::start();
    for (id, name) in [
        (BACKEND, "backend"),
        (ALERTS, "alerts"),
        (QA, "qa"),
        (INFRA, "infra"),
    ] {
        fake.add_channel(id, name);
    }
    let text = kit::in_section(
        &discord::config_for(&fake),
        "[storage]",
        &format!("lease = \"{lease}\"\n"),
    );
    let db = format!("failover_{run}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let regs = fake.command_registrations();
    let leader: Instance = start("leader", Env::on_cluster(&text, pg.clone(), &db));
    fake.wait_until("the leader's commands", WAIT, |f| {
        (f.command_registrations() > regs).then_some(())
    });
    let mut standby = start("standby", Env::on_cluster(&text, pg.clone(), &db));
    wait("the standby", WAIT, || {
        standby
            .logs()
            .contains("standby: another instance holds the lease")
    });
    // The leader delivers: one alert's post, and nothing left to deliver.
    let (code, body) = leader
        .hook(&http, payload(&[storm_alert(&format!("before-{run}"))]))
        .expect("the leader answers");
    assert_eq!(code, 202, "{body}");
    wait("the leader's post", WAIT, || posts(&fake) > 0);
    std::thread::sleep(Duration::from_millis(300));
    let before = posts(&fake);
    let identifies = fake.identifies().len();

    let mut leader = leader;
    leader.signal("-KILL");
    let killed = Instant::now();
    assert_eq!(leader.wait_exit(WAIT), None, "killed");
    let (code, body) = standby
        .hook(&http, payload(&[storm_alert(&format!("after-{run}"))]))
        .expect("the standby answers");
    assert_eq!(code, 202, "{body}");
    let bound = WAIT + Duration::from_secs(30);
    let mut gateway = None;
    let mut first_post = None;
    wait("the new leader's first post", bound, || {
        if gateway.is_none() && fake.identifies().len() > identifies {
            gateway = Some(killed.elapsed());
        }
        if first_post.is_none() && posts(&fake) > before {
            first_post = Some(killed.elapsed());
        }
        gateway.is_some() && first_post.is_some()
    });
    standby.signal("-KILL");
    let _ = standby.wait_exit(WAIT);
    (gateway.unwrap_or_default(), first_post.unwrap_or_default())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let lease = args.get(1).cloned().unwrap_or_else(|| "10s".into());
    if !Pg::available() {
        eprintln!("PostgreSQL 15 is not installed: run .ci/setup");
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("failover: {} | load average {}", machine(), load.trim());
    let pg = Arc::new(Pg::start_durable());
    println!(
        "PostgreSQL {}; fsync={}, synchronous_commit={}; lease {lease}; {runs} runs",
        pg.psql("SHOW server_version"),
        pg.psql("SHOW fsync"),
        pg.psql("SHOW synchronous_commit")
    );
    let mut gateway = Vec::new();
    let mut post = Vec::new();
    for run in 0..runs {
        let (g, p) = one(&pg, run, &lease);
        println!(
            "run {:2}: kill → gateway {}, → first post {}",
            run + 1,
            ms(g),
            ms(p)
        );
        gateway.push(g);
        post.push(p);
    }
    gateway.sort();
    post.sort();
    for (what, v) in [("new leader's gateway", &gateway), ("first post", &post)] {
        println!(
            "leader SIGKILL → {what}: median {}, min {}, max {}",
            ms(percentile(v, 0.5)),
            ms(v[0]),
            ms(v[v.len() - 1])
        );
    }
}
