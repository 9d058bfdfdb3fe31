//! Commands through the real adapters while an alert storm runs: `opsbot run`
//! (release build) against the integration tests' fake Discord (its real
//! gateway and REST API), with its HTTP intake on a loopback port.
//!
//! 1. Quiet: USERS Discord users (each mapped in `[discord.users]`) send
//!    `/ticket comment` on their own ticket, one after the other, as fast as
//!    the bot answers: durable ticket commands per second (each answer comes
//!    after its commit is flushed), to set beside Errbot's echo
//!    (`benches/peers/errbot_echo.py`).
//! 2. Storm: 32 keep-alive connections post an Alertmanager storm to
//!    `/hooks/alertmanager` (100-alert webhooks over 5,000 groups, as
//!    `benches/alert_storm.rs` does) while the same users cycle through
//!    `/ticket show`, `/ticket comment`, `/ticket take`, `/ticket list` and
//!    `/help` as gateway INTERACTION_CREATE events. Each command's time runs
//!    from the dispatch to the bot's interaction callback reaching the fake.
//!
//! The storm's senders run in a process of their own (this binary again): in
//! a deployment the monitoring system sends from other machines. They still
//! share this machine's cores with the bot at the same priority, so none of
//! the bot's own work leaves the measurement.
//!
//! Prints p50/p99/max per command, durable ticket commands per second, and
//! alerts accepted per second. Target (issue 18): p99 under 50 ms, max under
//! 1 s, during the storm.
//!
//! `cargo bench --bench mixed -- [USERS] [ALERTS] [QUIET_PER_USER]`
//! (defaults 32, 100000, 100).

// The integration tests' fake and fixtures; their own unit tests are not
// run from here.
mod common;
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

use std::io::Write;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{ms, percentile};
use discord_fixtures as fx;
use fake_discord::FakeDiscord;
use serde_json::{json, Value};

const OPS: u64 = fx::CHANNEL_ID;
const BACKEND: u64 = fx::CHANNEL_ID + 1;
/// The first bench user's Discord id (user k has `FIRST_USER + k`).
const FIRST_USER: u64 = fx::USER_ID + 1000;
const TOKEN: &str = "mixed-bench-token";
const BATCH: usize = 100;
const GROUPS: usize = 5_000;
/// How long one command's callback is waited for.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The storm stops sending after this long, whatever is left.
const STORM_DEADLINE: Duration = Duration::from_secs(300);

/// The commands of the storm phase, in each user's order.
const CYCLE: [&str; 5] = ["show", "comment", "take", "list", "help"];

/// Set in the storm's own process: `BASE SENDERS ALERTS`.
const STORM_CHILD: &str = "OPSBOT_MIXED_STORM";

fn main() {
    if let Ok(job) = std::env::var(STORM_CHILD) {
        return storm_child(&job);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let users = arg(0, 32);
    let alerts = arg(1, 100_000);
    let quiet_per_user = arg(2, 100);

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
    let mut people = format!("olivia = \"{}\"\n", fx::USER_ID);
    for k in 0..users {
        people.push_str(&format!("user{k} = \"{}\"\n", FIRST_USER + k as u64));
    }
    let text = kit::in_section(&text, "[discord.users]", &people);
    // The bench users are members of team backend (people the config names).
    let members: Vec<String> = (0..users).map(|k| format!("\"user{k}\"")).collect();
    let text = text.replacen(
        "members = [\"bob\", \"bella\"]",
        &format!("members = [\"bob\", \"bella\", {}]", members.join(", ")),
        1,
    );
    let config = kit::write_config(dir.path(), &text);
    common::link_commands(dir.path());
    let mut bot = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("OPSBOT_CONFIG")
        .env("DISCORD_TOKEN", fake_discord::TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env("RUST_LOG", "error")
        .env("OPSBOT_HOOK_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opsbot run");
    let pid = bot.id();
    let (addr_tx, addr_rx) = mpsc::channel();
    let err = bot.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = addr_tx.send(addr.to_string());
            } else if !line.trim().is_empty() {
                eprintln!("bot: {}", line.trim_end());
            }
            line.clear();
        }
    });
    let base = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the bot listens");
    fake.wait_commands(Duration::from_secs(60));

    println!("machine: {}", common::machine());
    println!("load before: {}", load());

    // Each user opens a ticket of their own (OPS-1 … OPS-USERS, in order), and
    // every command form is dispatched once through the fake's checks.
    for k in 0..users {
        let cb = command(&fake, k, &["ticket", "open"], &open_options(k), true);
        let want = format!("OPS-{}", k + 1);
        assert!(
            cb.1.to_string().contains(&want),
            "user{k}'s ticket should be {want}: {}",
            cb.1
        );
    }
    for (i, what) in CYCLE.iter().enumerate() {
        let (path, options) = cycle_command(what, 0, i);
        command(&fake, 0, &path, &options, true);
    }

    // 1. Quiet: durable comments from all users at once.
    let quiet = run_users(&fake, users, &|_, i| {
        (i < quiet_per_user).then(|| "comment".to_string())
    });
    println!(
        "\n1. no storm: {users} users, /ticket comment each on their own ticket, {quiet_per_user} each, one at a time"
    );
    report(&quiet.lat, "comment");
    println!(
        "   {:.0} durable ticket commands/s (wall {:.2} s); load after: {}",
        quiet.lat.len() as f64 / quiet.wall.as_secs_f64(),
        quiet.wall.as_secs_f64(),
        load()
    );

    // 2. Storm, with the users' commands alongside until it ends.
    let storming = Arc::new(AtomicBool::new(true));
    let storm = {
        let (base, storming) = (base.clone(), storming.clone());
        std::thread::spawn(move || {
            let r = storm_elsewhere(&base, 32, alerts);
            storming.store(false, Ordering::SeqCst);
            r
        })
    };
    let during = {
        let storming = storming.clone();
        run_users(&fake, users, &move |_, i| {
            storming
                .load(Ordering::SeqCst)
                .then(|| CYCLE[i % CYCLE.len()].to_string())
        })
    };
    let storm = storm.join().expect("the storm thread");
    println!(
        "\n2. during the storm: 32 connections, {} alerts accepted of {alerts} in {:.2} s: {:.0} alerts/s; request p50 {}, p99 {}, max {}; {} failed requests{}",
        storm.accepted,
        storm.elapsed.as_secs_f64(),
        storm.accepted as f64 / storm.elapsed.as_secs_f64(),
        ms(percentile(&storm.latencies, 0.50)),
        ms(percentile(&storm.latencies, 0.99)),
        ms(storm.latencies.last().copied().unwrap_or_default()),
        storm.errors.len(),
        storm
            .errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
    );
    println!(
        "   {users} users' commands while it ran (each user: {}, in turn):",
        CYCLE.join(", ")
    );
    report(&during.lat, "all");
    for what in CYCLE {
        report(&during.lat, what);
    }
    let durable = during
        .lat
        .iter()
        .filter(|(w, _, _)| w == "comment" || w == "take")
        .count();
    println!(
        "   {:.0} commands/s, of them {:.0} durable (comment, take)/s; deferred: {}; load after: {}",
        during.lat.len() as f64 / during.wall.as_secs_f64(),
        durable as f64 / during.wall.as_secs_f64(),
        during.lat.iter().filter(|(_, _, t)| *t == 5).count(),
        load()
    );
    let slow: Vec<String> = during
        .slow
        .iter()
        .take(10)
        .map(|(w, at, d)| format!("{w} at +{:.2} s: {}", at.as_secs_f64(), ms(*d)))
        .collect();
    println!("   slowest (> 50 ms) first 10: [{}]", slow.join(", "));
    let cpu = common::cpu_by_thread(&pid.to_string());
    let mut cpu: Vec<_> = cpu.into_iter().collect();
    cpu.sort_by_key(|c| std::cmp::Reverse(c.1));
    let cpu: Vec<String> = cpu
        .iter()
        .take(8)
        .map(|(k, d)| format!("{k} {:.2} s", d.as_secs_f64()))
        .collect();
    println!("   bot CPU by thread (whole run): {}", cpu.join(", "));
    let unexpected = fake.take_unexpected();
    if !unexpected.is_empty() {
        println!(
            "   the fake refused: {:?}",
            &unexpected[..unexpected.len().min(5)]
        );
    }
    let _ = bot.kill();
    let _ = bot.wait();

    console_phase(alerts);
}

/// The bot's binary: `OPSBOT_BENCH_BIN` (another build, for a before/after
/// in one sitting), else this build's.
fn bin() -> String {
    std::env::var("OPSBOT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_opsbot").to_string())
}

/// Phase 3, the console during the same storm: `opsbot console` (shipped
/// config) with its HTTP intake, `/help` and `/ticket show id:OPS-1` typed in turn
/// every 20 ms, one at a time; each timed from the line written to its
/// answer (`(only you) …`) on stdout.
fn console_phase(alerts: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = kit::write_config(dir.path(), &kit::shipped_config());
    common::link_commands(dir.path());
    let mut bot = Command::new(bin())
        .arg("console")
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("OPSBOT_CONFIG")
        .env("RUST_LOG", "error")
        .env("OPSBOT_HOOK_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opsbot console");
    let mut stdin = bot.stdin.take().expect("stdin");
    let out = bot.stdout.take().expect("stdout");
    let err = bot.stderr.take().expect("stderr");
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = addr_tx.send(addr.to_string());
            }
            line.clear();
        }
    });
    let (reply_tx, replies) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("(only you)") {
                let _ = reply_tx.send(Instant::now());
            }
            line.clear();
        }
    });
    let base = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the console listens");
    // A ticket to show.
    writeln!(stdin, "/ticket open title:\"Console bench\" team:backend").expect("stdin");
    let _ = replies.recv_timeout(Duration::from_secs(30));
    let storming = Arc::new(AtomicBool::new(true));
    let storm = {
        let storming = storming.clone();
        std::thread::spawn(move || {
            let r = storm_elsewhere(&base, 32, alerts);
            storming.store(false, Ordering::SeqCst);
            r
        })
    };
    let mut lat: Vec<(&str, Duration)> = Vec::new();
    let mut lost = 0;
    let mut i = 0;
    while storming.load(Ordering::SeqCst) {
        let line = if i % 2 == 0 {
            "/help"
        } else {
            "/ticket show id:OPS-1"
        };
        i += 1;
        let t0 = Instant::now();
        if writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            break;
        }
        match replies.recv_timeout(Duration::from_secs(30)) {
            Ok(at) => lat.push((line, at.saturating_duration_since(t0))),
            Err(_) => {
                lost += 1;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let storm = storm.join().expect("the storm thread");
    println!(
        "\n3. the console during the storm ({:.0} alerts/s): a query typed every 20 ms, one at a time{}",
        storm.accepted as f64 / storm.elapsed.as_secs_f64(),
        if lost > 0 { " (one had no answer within 30 s)" } else { "" }
    );
    let all: Vec<(String, Duration, u64)> = lat
        .iter()
        .map(|(l, d)| (l.split(' ').take(2).collect::<Vec<_>>().join(" "), *d, 0))
        .collect();
    report(&all, "all");
    report(&all, "/help");
    report(&all, "/ticket show");
    println!("   load after: {}", load());
    drop(stdin);
    let _ = bot.kill();
    let _ = bot.wait();
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn open_options(k: usize) -> Vec<(&'static str, Value)> {
    vec![
        ("title", json!(format!("Mixed bench ticket of user{k}"))),
        ("team", json!("backend")),
    ]
}

/// The slash command `what` by user `k` (its `i`-th), on the user's ticket.
fn cycle_command(
    what: &str,
    k: usize,
    i: usize,
) -> (Vec<&'static str>, Vec<(&'static str, Value)>) {
    let id = json!(format!("OPS-{}", k + 1));
    match what {
        "show" => (vec!["ticket", "show"], vec![("id", id)]),
        "comment" => (
            vec!["ticket", "comment"],
            vec![
                ("id", id),
                ("text", json!(format!("note {i} from user{k}"))),
            ],
        ),
        "take" => (vec!["ticket", "take"], vec![("id", id)]),
        "list" => (vec!["ticket", "list"], vec![]),
        _ => (vec!["help"], vec![]),
    }
}

/// Dispatches one slash command by user `k` and waits for its callback:
/// (time from dispatch to callback, callback body).
fn command(
    fake: &FakeDiscord,
    k: usize,
    path: &[&str],
    options: &[(&str, Value)],
    checked: bool,
) -> (Duration, Value) {
    let id = fx::next_id();
    let d = fx::slash(
        id,
        &format!("mixed-{id}"),
        OPS,
        fx::GUILD_ID,
        FIRST_USER + k as u64,
        &format!("user{k}"),
        &[],
        path,
        options,
    );
    let t0 = Instant::now();
    if checked {
        fake.dispatch("INTERACTION_CREATE", d);
    } else {
        // Its form was checked once before the measured phases.
        fake.dispatch_unchecked("INTERACTION_CREATE", d);
    }
    let cb = fake.wait_callback(id, CALLBACK_TIMEOUT);
    (t0.elapsed(), cb)
}

struct UsersRun {
    /// (command, latency, callback type) of every command.
    lat: Vec<(String, Duration, u64)>,
    /// The commands over 50 ms: (command, when sent from the phase's start, latency).
    slow: Vec<(String, Duration, Duration)>,
    wall: Duration,
}

/// `users` threads, each sending the commands `next(k, i)` names, one at a
/// time, until it names none.
fn run_users(
    fake: &Arc<FakeDiscord>,
    users: usize,
    next: &(dyn Fn(usize, usize) -> Option<String> + Sync),
) -> UsersRun {
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..users)
            .map(|k| {
                let fake = fake.clone();
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut slow = Vec::new();
                    let mut i = 0;
                    while let Some(what) = next(k, i) {
                        let (path, options) = cycle_command(&what, k, i);
                        let sent = started.elapsed();
                        let (d, cb) = command(&fake, k, &path, &options, false);
                        if d > Duration::from_millis(50) {
                            slow.push((what.clone(), sent, d));
                        }
                        lat.push((what, d, cb["type"].as_u64().unwrap_or(0)));
                        i += 1;
                    }
                    (lat, slow)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a user thread"))
            .collect()
    });
    let wall = started.elapsed();
    let mut run = UsersRun {
        lat: Vec::new(),
        slow: Vec::new(),
        wall,
    };
    for (lat, slow) in results {
        run.lat.extend(lat);
        run.slow.extend(slow);
    }
    run.slow.sort_by_key(|s| s.1);
    run
}

fn report(all: &[(String, Duration, u64)], what: &str) {
    let mut v: Vec<Duration> = all
        .iter()
        .filter(|(w, _, _)| what == "all" || w == what)
        .map(|(_, d, _)| *d)
        .collect();
    v.sort();
    println!(
        "   {what:<8} n={:<6} p50 {}  p99 {}  max {}",
        v.len(),
        ms(percentile(&v, 0.50)),
        ms(percentile(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default()),
    );
}

/// One Alertmanager (version 4) webhook body: alerts `first..first + count`,
/// alert `i` in group `i % GROUPS` (the default route, by fingerprint).
fn body(first: usize, count: usize) -> String {
    let alerts: Vec<Value> = (first..first + count)
        .map(|i| {
            let g = i % GROUPS;
            json!({
                "status": "firing",
                "labels": { "alertname": format!("Storm{g}"), "instance": format!("host-{g}") },
                "annotations": { "summary": format!("storm alert {g} on host-{g}") },
                "startsAt": "2026-11-25T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": format!("{g:016x}"),
            })
        })
        .collect();
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "bot",
        "groupKey": "x",
        "alerts": alerts,
    })
    .to_string()
}

#[derive(Default)]
struct StormResult {
    latencies: Vec<Duration>,
    accepted: usize,
    errors: Vec<String>,
    elapsed: Duration,
}

/// The storm, sent from a process of its own (this bench's binary again,
/// told by [`STORM_CHILD`]): in a deployment the monitoring system sends from
/// other machines, so its senders share no threads or heap with the fake
/// Discord and the users' threads here. They still share this machine's two
/// cores with the bot, at the same priority (`nice` 0): nothing of the bot's
/// own work is moved out of it.
fn storm_elsewhere(base: &str, senders: usize, alerts: usize) -> StormResult {
    let child = Command::new(std::env::current_exe().expect("this bench's binary"))
        .env(STORM_CHILD, format!("{base} {senders} {alerts}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the storm's process");
    let text = String::from_utf8_lossy(&child.stdout);
    let v: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the storm's process printed no result: {text}"));
    let mut r = StormResult {
        latencies: v["latencies_us"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(Duration::from_micros)
                    .collect()
            })
            .unwrap_or_default(),
        accepted: v["accepted"].as_u64().unwrap_or(0) as usize,
        errors: v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        elapsed: Duration::from_micros(v["elapsed_us"].as_u64().unwrap_or(0)),
    };
    r.latencies.sort();
    r
}

/// The storm's own process: sends it and prints the result as one JSON line.
fn storm_child(job: &str) {
    let parts: Vec<&str> = job.split_whitespace().collect();
    let (base, senders, alerts) = match parts.as_slice() {
        [b, s, a] => (
            b.to_string(),
            s.parse().expect("senders"),
            a.parse().expect("alerts"),
        ),
        _ => panic!("{STORM_CHILD}: BASE SENDERS ALERTS, got `{job}`"),
    };
    let r = storm(&base, senders, alerts);
    let us = |d: &Duration| d.as_micros() as u64;
    println!(
        "{}",
        json!({
            "latencies_us": r.latencies.iter().map(us).collect::<Vec<_>>(),
            "accepted": r.accepted,
            "errors": r.errors,
            "elapsed_us": us(&r.elapsed),
        })
    );
}

/// Sends the storm from `senders` keep-alive connections (one load-generator
/// thread); each request's alerts count as accepted on a 202.
fn storm(base: &str, senders: usize, alerts: usize) -> StormResult {
    let bodies: Arc<Vec<(String, usize)>> = Arc::new(
        (0..alerts.div_ceil(BATCH))
            .map(|b| {
                let n = BATCH.min(alerts - b * BATCH);
                (body(b * BATCH, n), n)
            })
            .collect(),
    );
    let url = format!("{base}/hooks/alertmanager");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(senders)
        .no_proxy()
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut result = rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..senders {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            handles.push(tokio::spawn(async move {
                let mut r = StormResult::default();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= bodies.len() || started.elapsed() >= STORM_DEADLINE {
                        break;
                    }
                    let t0 = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("Content-Type", "application/json")
                        .body(bodies[b].0.clone())
                        .send()
                        .await;
                    match resp {
                        Ok(resp) if resp.status().as_u16() == 202 => {
                            let _ = resp.bytes().await;
                            r.latencies.push(t0.elapsed());
                            r.accepted += bodies[b].1;
                        }
                        Ok(resp) => {
                            let status = resp.status();
                            let text = resp.text().await.unwrap_or_default();
                            r.errors.push(format!("{status}: {text}"));
                        }
                        Err(e) => r.errors.push(e.to_string()),
                    }
                }
                r
            }));
        }
        let mut all = StormResult::default();
        for h in handles {
            if let Ok(r) = h.await {
                all.latencies.extend(r.latencies);
                all.accepted += r.accepted;
                all.errors.extend(r.errors);
            }
        }
        all
    });
    result.elapsed = started.elapsed();
    result.latencies.sort();
    result
}
