//! Interaction latency on Discord: `opsbot run` (release build) against the
//! fake Discord of the integration tests, N slash commands dispatched over
//! the gateway by a few users at once; for each, the time from dispatching
//! INTERACTION_CREATE to the bot's callback reaching the fake.
//!
//! `cargo bench --bench discord_interactions -- [N] [USERS]` (default 2000, 4).
//! Target (issue 3): p99 under 50 ms, max under 1 s (Discord allows 3 s).

// The integration tests' fake and fixtures; their own unit tests are not
// run from here.
mod common;
// The integration tests' kit (the shipped config and its edits); the bench
// uses a part of it.
#[allow(unused_imports)]
#[path = "../tests/it/discord_fixtures.rs"]
mod discord_fixtures;
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
// The bench drives only a part of the fake (the tests use all of it).
#[allow(unused_imports, dead_code)]
#[path = "../tests/it/fake_discord/mod.rs"]
mod fake_discord;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use discord_fixtures as fx;
use fake_discord::FakeDiscord;
use serde_json::{json, Value};

const OPS: u64 = fx::CHANNEL_ID;
const BACKEND: u64 = fx::CHANNEL_ID + 1;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let users: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);

    let fake = Arc::new(FakeDiscord::start());
    fake.add_channel(BACKEND, "backend");
    let dir = tempfile::tempdir().expect("temp dir");
    let text = kit::on_discord(
        &kit::shipped_config(),
        &fx::GUILD_ID.to_string(),
        &fake.base,
    );
    let text = kit::in_section(
        &text,
        "[discord.channels]",
        &format!("ops = \"{OPS}\"\nbackend = \"{BACKEND}\"\n"),
    );
    let text = kit::in_section(
        &text,
        "[discord.users]",
        &format!("olivia = \"{}\"\n", fx::USER_ID),
    );
    let config = kit::write_config(dir.path(), &text);
    common::link_commands(dir.path());
    let mut bot = kit::run(&config, fake_discord::TOKEN)
        .env("RUST_LOG", "error")
        .stderr(Stdio::null())
        .spawn()
        .expect("start opsbot run");
    fake.wait_commands(Duration::from_secs(60));

    println!("machine: {}", common::machine());
    println!("{n} slash commands by {users} users at once (1 in 3 opens a ticket, the rest /help and /ticket show)");
    let started = Instant::now();
    let per_user = n / users;
    let handles: Vec<_> = (0..users)
        .map(|u| {
            let fake = fake.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per_user);
                for i in 0..per_user {
                    let (path, options): (&[&str], Vec<(&str, Value)>) = match i % 3 {
                        0 => (
                            &["ticket", "open"],
                            vec![
                                ("title", json!(format!("Bench {u}-{i}"))),
                                ("team", json!("backend")),
                            ],
                        ),
                        1 => (&["help"], vec![]),
                        _ => (&["ticket", "show"], vec![("id", json!("OPS-1"))]),
                    };
                    let id = fx::next_id();
                    let d = fx::slash(
                        id,
                        &format!("bench-{id}"),
                        OPS,
                        fx::GUILD_ID,
                        fx::USER_ID,
                        "olivia",
                        &[],
                        path,
                        &options,
                    );
                    let t0 = Instant::now();
                    fake.dispatch("INTERACTION_CREATE", d);
                    let cb = fake.wait_callback(id, Duration::from_secs(10));
                    lat.push((i % 3, t0.elapsed(), cb["type"].as_u64().unwrap_or(0)));
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("a user thread"));
    }
    let wall = started.elapsed();
    let deferred = all.iter().filter(|(_, _, t)| *t == 5).count();
    let report = |name: &str, mut v: Vec<Duration>| {
        v.sort();
        println!(
            "{name:<14} n={:<5} p50 {}  p99 {}  max {}",
            v.len(),
            common::ms(common::percentile(&v, 0.50)),
            common::ms(common::percentile(&v, 0.99)),
            common::ms(v.last().copied().unwrap_or_default()),
        );
    };
    report("all", all.iter().map(|(_, d, _)| *d).collect());
    for (k, name) in [(0, "/ticket open"), (1, "/help"), (2, "/ticket show")] {
        report(
            name,
            all.iter()
                .filter(|(c, _, _)| *c == k)
                .map(|(_, d, _)| *d)
                .collect(),
        );
    }
    println!(
        "{:.0} interactions/s; deferred: {deferred}; wall {:.1} s",
        all.len() as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    let _ = bot.kill();
    let _ = bot.wait();
}
