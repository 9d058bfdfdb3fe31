//! An alert storm against the real bot: `opsbot console` runs as its own
//! process (so that its peak memory can be read), with its HTTP intake on a
//! loopback port, and this load generator posts Alertmanager webhooks to it:
//! 100,000 alerts in batches of 100 over 5,000 distinct groups (each group's
//! alert arrives 20 times), from 32 concurrent keep-alive connections. It
//! reports alerts accepted per second (each 202 is sent only after its commit
//! is flushed), request latency, the tickets opened (must equal the number of
//! groups), the bot's peak memory (`VmHWM`), the CPU each of its threads used,
//! and the latency of `/help` typed into the console every 50 ms while the
//! storm runs, next to the same with no storm, before and after.
//!
//! Then the same storm straight into the engine in this process (no HTTP,
//! console or outbox worker), with `/help` submitted alongside: what the
//! commit thread alone costs, to tell it from the adapters' share.
//!
//! Bounded: a fixed number of requests, and an overall deadline after which
//! the senders stop and what was measured is reported. Loopback only. Exits
//! 1 if the tickets opened differ from the number of groups.
//!
//! The store is sled, or with `OPSBOT_BENCH_BACKEND=postgres` a throwaway
//! PostgreSQL 15 cluster this bench starts on the same machine (the tests'
//! kit, `tests/it/pg.rs`) with `fsync` and `synchronous_commit` on: the bot
//! runs with `[storage] backend = "postgres"` and `OPSBOT_DATABASE_URL`, the
//! in-process storm on a second database of the same cluster.
//!
//! Run: `cargo bench --bench alert_storm` (options: `-- SENDERS ALERTS`,
//! default 32 senders, 100000 alerts; batches of 100 over 5,000 groups).
//! The shape of the storm, by environment variable:
//! - `OPSBOT_STORM=new`: every alert a group of its own, so each opens a
//!   ticket (default `repeat`: 5,000 groups, each alert arriving 20 times);
//! - `OPSBOT_STORM_SECONDS=N`: sustained, the senders go on for N seconds
//!   (bodies made as they are sent; ALERTS is then ignored), and the
//!   in-process engine storm is left out;
//! - `OPSBOT_STORM_STORE=DIR`: the bot's sled data directory is DIR, kept
//!   after the run (a store made once, such as one of 1M tickets, storms run
//!   against it); default a fresh one in a temporary folder.
//!
//! After the bot exits (sled only), raw sled writes the records the bot's
//! store holds, as many alerts' worth as were accepted, group-committed as
//! the commit thread cuts bulk work (`MAX_BULK_WEIGHT` alerts per
//! transaction, one flush and one fdatasync each): the disk's and sled's own
//! rate for the same records in the same run, and the bot's share of it.

mod common;
// The integration tests' kit (the shipped config, the console command);
// the bench uses a part of it.
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;
use common::{cpu_by_thread, machine, ms, percentile, raw_sled_group_commit, BenchBackend};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BATCH: usize = 100;
const GROUPS: usize = 5_000;

/// The shape of the storm (see the module's note).
struct Shape {
    /// Distinct groups the alerts cycle through; `None`: each alert its own.
    groups: Option<usize>,
    /// Sustained: send for this long.
    seconds: Option<u64>,
    /// The bot's data directory, kept.
    store: Option<std::path::PathBuf>,
    /// Told apart from the groups of earlier runs on a kept store (their
    /// labels and fingerprints carry it); 0 on a fresh store.
    run: u64,
}

fn shape() -> &'static Shape {
    static SHAPE: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    SHAPE.get_or_init(|| {
        let groups = match std::env::var("OPSBOT_STORM").as_deref() {
            Err(_) | Ok("") | Ok("repeat") => Some(GROUPS),
            Ok("new") => None,
            Ok(other) => {
                eprintln!("OPSBOT_STORM={other}: expected repeat or new");
                std::process::exit(2);
            }
        };
        let seconds = match std::env::var("OPSBOT_STORM_SECONDS") {
            Ok(v) if !v.is_empty() => match v.parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    eprintln!("OPSBOT_STORM_SECONDS={v}: expected a whole number of seconds");
                    std::process::exit(2);
                }
            },
            _ => None,
        };
        let store = std::env::var_os("OPSBOT_STORM_STORE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from);
        let run = if store.is_some() {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        } else {
            0
        };
        Shape {
            groups,
            seconds,
            store,
            run,
        }
    })
}

fn describe_shape() -> String {
    format!(
        "{}{}",
        match shape().groups {
            Some(g) => format!("over {g} groups (repeats)"),
            None => "each alert a new group (a new ticket)".to_string(),
        },
        match shape().seconds {
            Some(s) => format!(", sustained for {s} s"),
            None => String::new(),
        }
    )
}
const TOKEN: &str = "alert-storm-bench-token";
/// The storm stops sending after this long, whatever is left.
const STORM_DEADLINE: Duration = Duration::from_secs(300);
/// One request may take at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Pace of the slash commands typed into the console.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// Slash commands typed with no storm, before and after it.
const IDLE_PROBES: usize = 200;
/// How long a slash command's reply is waited for.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the bot may take to drain its outbox and exit.
const EXIT_WAIT: Duration = Duration::from_secs(60);
const PROBE: &str = "/help";
const PROBE_REPLY: &str = "(only you) Commands you may run:";

/// A `kB` field of `/proc/PID/status`, such as `VmHWM`.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn total(cpu: &std::collections::BTreeMap<String, Duration>) -> Duration {
    cpu.values().sum()
}

/// The CPU each thread (by name) used between two readings, busiest first.
fn cpu_used(
    before: &std::collections::BTreeMap<String, Duration>,
    after: &std::collections::BTreeMap<String, Duration>,
) -> String {
    let mut used: Vec<(&String, Duration)> = after
        .iter()
        .map(|(k, v)| {
            (
                k,
                v.saturating_sub(before.get(k).copied().unwrap_or_default()),
            )
        })
        .filter(|(_, d)| *d >= Duration::from_millis(10))
        .collect();
    used.sort_by_key(|u| std::cmp::Reverse(u.1));
    let total: Duration = used.iter().map(|(_, d)| *d).sum();
    let parts: Vec<String> = used
        .iter()
        .map(|(k, d)| format!("{k} {:.2} s", d.as_secs_f64()))
        .collect();
    format!("{:.2} s ({})", total.as_secs_f64(), parts.join(", "))
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(
        || "unknown".to_string(),
        |kb| format!("{:.1} MiB", kb as f64 / 1024.0),
    )
}

/// One Alertmanager (version 4) webhook body: alerts `first..first + BATCH`
/// of the storm, alert `i` belonging to group `i % GROUPS` (or its own group,
/// with `OPSBOT_STORM=new`). The labels fall to the default route, which
/// groups by fingerprint.
fn body(first: usize, count: usize) -> String {
    let alerts: Vec<serde_json::Value> = (first..first + count)
        .map(|i| {
            let g = shape().groups.map_or(i, |n| i % n);
            let (g, fp) = match shape().run {
                0 => (g.to_string(), format!("{g:016x}")),
                run => (format!("{run:x}-{g}"), format!("{run:08x}{g:08x}")),
            };
            serde_json::json!({
                "status": "firing",
                "labels": { "alertname": format!("Storm{g}"), "instance": format!("host-{g}") },
                "annotations": { "summary": format!("storm alert {g} on host-{g}") },
                "startsAt": "2026-11-25T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fp,
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "status": "firing",
        "receiver": "bot",
        "groupKey": "x",
        "alerts": alerts,
    })
    .to_string()
}

/// The bot process, killed if the bench stops before closing it.
struct BotProcess {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: u32,
    base: String,
    /// Instants at which a reply line appeared on stdout.
    replies: Mutex<mpsc::Receiver<Instant>>,
    /// Posts on stdout (`[#channel] …`), and how many were storm summaries.
    other_lines: Arc<AtomicUsize>,
    storm_summaries: Arc<AtomicUsize>,
    /// When each post line appeared.
    post_times: Arc<Mutex<Vec<Instant>>>,
    stdout: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl BotProcess {
    /// The bot on sled in `dir`, or on the PostgreSQL database at `url`.
    fn start(dir: &std::path::Path, url: Option<&str>) -> BotProcess {
        let text = match url {
            Some(_) => kit::in_section(
                &kit::shipped_config(),
                "[storage]",
                "backend = \"postgres\"\n",
            ),
            None => kit::shipped_config(),
        };
        let text = match &shape().store {
            Some(store) if url.is_none() => text.replacen(
                "path = \"data\"",
                &format!("path = {:?}", store.display().to_string()),
                1,
            ),
            _ => text,
        };
        let config = kit::write_config(dir, &text);
        // The shipped jobs, which the shipped services name.
        common::link_commands(dir);
        let mut cmd = kit::console(dir, &config);
        cmd.env("OPSBOT_HOOK_TOKEN", TOKEN);
        if let Some(url) = url {
            cmd.env("OPSBOT_DATABASE_URL", url);
        }
        let mut child = cmd.spawn().expect("spawn opsbot console");
        let pid = child.id();
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");

        let (reply_tx, replies) = mpsc::channel();
        let other_lines = Arc::new(AtomicUsize::new(0));
        let storm_summaries = Arc::new(AtomicUsize::new(0));
        let post_times = Arc::new(Mutex::new(Vec::new()));
        let (other, storms, times) = (
            other_lines.clone(),
            storm_summaries.clone(),
            post_times.clone(),
        );
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let now = Instant::now();
                if line.starts_with(PROBE_REPLY) {
                    let _ = reply_tx.send(now);
                } else if line.starts_with("(only you)") {
                    // An answer, but not the one asked for: say so, and
                    // count it as one so the probe does not hang.
                    eprintln!("unexpected answer: {}", line.trim_end());
                    let _ = reply_tx.send(now);
                } else if line.starts_with('[') {
                    if line.contains("Alert storm:") {
                        storms.fetch_add(1, Ordering::Relaxed);
                    }
                    other.fetch_add(1, Ordering::Relaxed);
                    times.lock().expect("post times").push(now);
                }
                line.clear();
            }
        });

        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut others = Vec::new();
            let mut reader = BufReader::new(err);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = addr_tx.send(addr.to_string());
                } else {
                    others.push(line.trim_end().to_string());
                }
                line.clear();
            }
            others
        });
        let mut bot = BotProcess {
            child: Some(child),
            stdin,
            pid,
            base: String::new(),
            replies: Mutex::new(replies),
            other_lines,
            storm_summaries,
            post_times,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => bot.base = base,
            Err(_) => {
                drop(bot.child.take().map(|mut c| c.kill()));
                let err = bot.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!("the bot did not start listening: {err:?}");
            }
        }
        bot
    }

    /// Types `PROBE` into the console at `PROBE_EVERY` while `keep_going`
    /// says so (and at most `max` times); returns the time from each line
    /// written to its reply on stdout. One command at a time: if a reply
    /// takes longer than the pace, the next line is written when it came.
    fn probe(&self, stdin: &mut ChildStdin, max: usize, keep_going: &dyn Fn() -> bool) -> Probed {
        let replies = self.replies.lock().expect("replies");
        while replies.try_recv().is_ok() {}
        let mut lat = Vec::new();
        let mut written = Vec::new();
        let mut timeouts = 0;
        let mut next = Instant::now();
        while lat.len() + timeouts < max && keep_going() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += PROBE_EVERY;
            let t0 = Instant::now();
            if stdin.write_all(format!("{PROBE}\n").as_bytes()).is_err() || stdin.flush().is_err() {
                eprintln!("cannot write to the bot's stdin");
                break;
            }
            match replies.recv_timeout(PROBE_TIMEOUT) {
                Ok(at) => {
                    lat.push(at.saturating_duration_since(t0));
                    written.push(t0);
                }
                Err(_) => {
                    eprintln!("no reply to {PROBE} within {PROBE_TIMEOUT:?}");
                    timeouts += 1;
                    break;
                }
            }
            if next < Instant::now() {
                next = Instant::now();
            }
        }
        Probed {
            lat,
            written,
            timeouts,
        }
    }
}

/// Slash commands typed: each one's latency and when it was written.
struct Probed {
    lat: Vec<Duration>,
    written: Vec<Instant>,
    timeouts: usize,
}

fn report_probe(what: &str, probed: &Probed) {
    let (mut lat, timeouts) = (probed.lat.clone(), probed.timeouts);
    lat.sort();
    println!(
        "  {PROBE} in the console, {what}: {} commands; p50 {}, p99 {}, max {}{}",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
        if timeouts > 0 {
            format!(" ({timeouts} with no reply within {PROBE_TIMEOUT:?})")
        } else {
            String::new()
        }
    );
}

/// Where the time went during the storm: the slow slash commands, and when
/// the console printed the posts that followed from the alerts.
fn timeline(start: Instant, storm: Duration, probed: &Probed, posts: &[Instant]) {
    let at = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
    let slow: Vec<String> = probed
        .written
        .iter()
        .zip(&probed.lat)
        .filter(|(_, l)| **l > Duration::from_millis(100))
        .map(|(w, l)| format!("+{:.2}→+{:.2} s", at(*w), at(*w + *l)))
        .collect();
    let by_end = posts
        .iter()
        .filter(|t| at(**t) <= storm.as_secs_f64())
        .count();
    println!(
        "  timeline (from the storm's start; it ended at +{:.2} s): slow commands, written→answered: [{}]; posts printed {} by the storm's end, {} in all, last at +{:.2} s",
        storm.as_secs_f64(),
        slow.join(", "),
        by_end,
        posts.len(),
        posts.last().map_or(0.0, |t| at(*t)),
    );
    let mut per_sec: Vec<usize> = Vec::new();
    for t in posts {
        let s = at(*t) as usize;
        if per_sec.len() <= s {
            per_sec.resize(s + 1, 0);
        }
        per_sec[s] += 1;
    }
    println!("  posts printed per second of the storm: {per_sec:?}");
}

#[derive(Default)]
struct StormResult {
    latencies: Vec<Duration>,
    accepted: u64,
    requests_ok: usize,
    errors: Vec<String>,
    tickets: std::collections::BTreeSet<String>,
    started: Option<Instant>,
    elapsed: Duration,
    deadline_hit: bool,
}

/// Sends the storm from `senders` concurrent connections.
fn storm(base: &str, senders: usize, alerts: usize) -> StormResult {
    // Sustained: made as they are sent (there is no end to count to).
    let sustained = shape().seconds.map(Duration::from_secs);
    let bodies: Arc<Vec<String>> = Arc::new(match sustained {
        Some(_) => Vec::new(),
        None => (0..alerts.div_ceil(BATCH))
            .map(|b| body(b * BATCH, BATCH.min(alerts - b * BATCH)))
            .collect(),
    });
    let url = format!("{base}/hooks/alertmanager");
    // One thread for the load generator: the bot gets the rest of the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(senders)
        .no_proxy()
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + STORM_DEADLINE;
    let mut result = rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..senders {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            handles.push(tokio::spawn(async move {
                let mut r = StormResult::default();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let text = match sustained {
                        Some(d) if started.elapsed() >= d => break,
                        Some(_) => body(b * BATCH, BATCH),
                        None if b >= bodies.len() => break,
                        None => bodies[b].clone(),
                    };
                    if Instant::now() >= deadline {
                        r.deadline_hit = true;
                        break;
                    }
                    let t0 = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("Content-Type", "application/json")
                        .body(text)
                        .send()
                        .await;
                    let outcome = match resp {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.text().await {
                                Ok(text) if status.as_u16() == 202 => Ok(text),
                                Ok(text) => Err(format!("{status}: {text}")),
                                Err(e) => Err(format!("{status}: {e}")),
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    r.latencies.push(t0.elapsed());
                    match outcome {
                        Ok(text) => {
                            let v: serde_json::Value =
                                serde_json::from_str(&text).unwrap_or_default();
                            r.accepted += v["accepted"].as_u64().unwrap_or(0);
                            for t in v["tickets"].as_array().into_iter().flatten() {
                                if let Some(t) = t.as_str() {
                                    r.tickets.insert(t.to_string());
                                }
                            }
                            r.requests_ok += 1;
                        }
                        Err(e) => r.errors.push(e),
                    }
                }
                r
            }));
        }
        let mut all = StormResult::default();
        for h in handles {
            let r = h.await.expect("sender");
            all.latencies.extend(r.latencies);
            all.accepted += r.accepted;
            all.requests_ok += r.requests_ok;
            all.errors.extend(r.errors);
            all.tickets.extend(r.tickets);
            all.deadline_hit |= r.deadline_hit;
        }
        all
    });
    result.started = Some(started);
    result.elapsed = started.elapsed();
    result
}

/// The same storm straight into the engine in this process (no HTTP, no
/// console, no outbox worker: posts stay queued), with `/help` submitted to
/// the same engine every `PROBE_EVERY`: what the commit thread alone costs a
/// slash command while alert batches are applied.
fn engine_storm(senders: usize, alerts: usize, url: Option<&str>) {
    use opsbot::commands::parse_command;
    use opsbot::config::Config;
    use opsbot::domain::{Actor, ChannelName, Source, UserName};
    use opsbot::engine::{Engine, Event};
    use opsbot::runtime::{Bot, SystemClock};
    use opsbot::store::Store;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bot.toml");
    // The shipped jobs, which the shipped services name.
    let _ = std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/commands"),
        dir.path().join("commands"),
    );
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bot.toml"))
        .expect("read the shipped bot.toml");
    let config = Config::parse(&path, &shipped).expect("config").config;
    let store = match url {
        Some(url) => Store::connect(url).expect("store connects"),
        None => Store::open(&config.storage_path).expect("store"),
    };
    let (bot, writer) = Bot::start(
        store.clone(),
        Engine::new(Arc::new(config)),
        Arc::new(SystemClock),
    )
    .expect("bot");
    let batches: Arc<Vec<Vec<opsbot::domain::alert::Alert>>> = Arc::new(
        (0..alerts.div_ceil(BATCH))
            .map(|b| {
                opsbot::domain::alert::parse_alertmanager(
                    body(b * BATCH, BATCH.min(alerts - b * BATCH)).as_bytes(),
                )
                .expect("alerts")
            })
            .collect(),
    );
    let help = || Event::Command {
        actor: Actor::new(UserName::parse("olivia").expect("name"), Source::Console),
        channel: ChannelName::parse("ops").expect("channel"),
        command: parse_command(PROBE, "OPS").expect("command"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let probe = |bot: Bot, storming: Arc<AtomicBool>, max: usize| async move {
        let mut lat = Vec::new();
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while lat.len() < max && storming.load(Ordering::Relaxed) {
            tick.tick().await;
            let t0 = Instant::now();
            bot.handle(help()).await.expect("help");
            lat.push(t0.elapsed());
        }
        lat
    };
    let (idle, lat, during, elapsed, accepted, cpu) = rt.block_on(async {
        let idle = probe(bot.clone(), Arc::new(AtomicBool::new(true)), IDLE_PROBES).await;
        let storming = Arc::new(AtomicBool::new(true));
        let prober = tokio::spawn(probe(bot.clone(), storming.clone(), usize::MAX));
        let next = Arc::new(AtomicUsize::new(0));
        let cpu0 = cpu_by_thread("self");
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..senders {
            let (bot, batches, next) = (bot.clone(), batches.clone(), next.clone());
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut accepted = 0;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches.len() || started.elapsed() >= STORM_DEADLINE {
                        break;
                    }
                    let t0 = Instant::now();
                    let out = bot
                        .submit(Event::Alerts {
                            alerts: batches[b].clone(),
                        })
                        .await
                        .expect("alerts");
                    lat.push(t0.elapsed());
                    accepted += out.accepted.map_or(0, |a| a.accepted);
                }
                (lat, accepted)
            }));
        }
        let mut lat = Vec::new();
        let mut accepted = 0;
        for h in handles {
            let (l, a) = h.await.expect("sender");
            lat.extend(l);
            accepted += a;
        }
        let elapsed = started.elapsed();
        let cpu = cpu_used(&cpu0, &cpu_by_thread("self"));
        storming.store(false, Ordering::Relaxed);
        let during = prober.await.expect("prober");
        (idle, lat, during, elapsed, accepted, cpu)
    });
    let mut lat = lat;
    lat.sort();
    println!(
        "engine in process on {} (no HTTP, console or outbox worker), same storm from {senders} concurrent clients:",
        if url.is_some() { "postgres" } else { "sled" }
    );
    println!(
        "  {accepted} alerts committed and flushed in {:.2} s = {:.0} alerts/s; batch latency p50 {}, p99 {}, max {}",
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    );
    println!("  CPU during the storm: {cpu}");
    for (what, lat) in [("no storm", idle), ("during the storm", during)] {
        let mut lat = lat;
        lat.sort();
        println!(
            "  {PROBE} through the engine, {what}: {} commands; p50 {}, p99 {}, max {}",
            lat.len(),
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
        );
    }
    println!(
        "  store: {} tickets, {} posts queued in the outbox",
        store.ticket_count(),
        store.outbox_len()
    );
    drop(bot);
    writer.join();
}

/// `opsbot_tickets_opened_total` from `/metrics`.
fn opened_total(base: &str) -> Option<u64> {
    let (_, metrics) = get(base, "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("opsbot_tickets_opened_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// At most this many of the bot's records are read for the raw baseline
/// (a share of each tree, when the store holds more).
const RAW_RECORDS_MAX: usize = 2_000_000;

/// Raw sled writing the bot's records after the storm: `accepted` alerts'
/// worth, the first `opened` of them (those that opened a ticket) as many
/// records each as the store holds per ticket (its ticket, timeline, group
/// and member, index keys, counters and queued posts), cycling through the
/// store's records in order, and each repeat its group and member record (what
/// the engine writes for a repeat), with the commit thread's transactions (as
/// many alerts as it takes in one bulk transaction) and one flush each, with
/// and without an fdatasync after it.
fn raw_baseline(data: &std::path::Path, accepted: u64, bot_secs: f64, tickets: u64, opened: u64) {
    let db = match sled::open(data) {
        Ok(db) => db,
        Err(e) => {
            println!(
                "  raw sled baseline: cannot open the bot's store at {}: {e}",
                data.display()
            );
            return;
        }
    };
    let names: Vec<sled::IVec> = db.tree_names();
    let trees: Vec<(String, sled::Tree)> = names
        .iter()
        .filter_map(|n| {
            let name = String::from_utf8_lossy(n).to_string();
            db.open_tree(n).ok().map(|t| (name, t))
        })
        .collect();
    let total: usize = trees.iter().map(|(_, t)| t.len()).sum();
    let mut records: Vec<common::RawRecord> = Vec::new();
    let mut bytes = 0usize;
    for (name, t) in &trees {
        let share = if total <= RAW_RECORDS_MAX {
            usize::MAX
        } else {
            (t.len() * RAW_RECORDS_MAX).div_ceil(total)
        };
        for (k, v) in t.iter().flatten().take(share) {
            bytes += k.len() + v.len();
            records.push((name.clone(), k.to_vec(), v.to_vec()));
        }
    }
    drop(trees);
    drop(db);
    if records.is_empty() || accepted == 0 {
        println!("  raw sled baseline: nothing to write");
        return;
    }
    let per_alert = (total as f64 / tickets.max(1) as f64).round().max(1.0) as usize;
    let per_tx = (opsbot::runtime::MAX_BULK_WEIGHT / BATCH).max(1) * BATCH;
    let n = records.len();
    let groups: Vec<&common::RawRecord> = records.iter().filter(|r| r.0 == "groups").collect();
    let op = |i: usize| -> Vec<common::RawRecord> {
        if i as u64 >= opened && !groups.is_empty() {
            return (0..2)
                .map(|j| groups[(2 * i + j) % groups.len()].clone())
                .collect();
        }
        (0..per_alert)
            .map(|j| records[(i * per_alert + j) % n].clone())
            .collect()
    };
    let bot_rate = accepted as f64 / bot_secs;
    println!(
        "  raw sled, the same records: the store holds {total} records ({:.0} bytes each, {per_alert} per ticket); {accepted} alerts' worth ({opened} opening a ticket, the others 2 records each), {per_tx} alerts per transaction:",
        bytes as f64 / n as f64
    );
    for sync in [true, false] {
        let run = raw_sled_group_commit(accepted as usize, per_tx, sync, &op);
        let mut commits = run.commits;
        commits.sort();
        let rate = accepted as f64 / run.elapsed.as_secs_f64();
        println!(
            "    flush{}: {} records in {:.2} s = {rate:.0} alerts/s ({:.0} records/s); commit p50 {}, p99 {}; the bot's rate is {:.0} % of it",
            if sync { " + fdatasync" } else { " only" },
            run.records,
            run.elapsed.as_secs_f64(),
            run.records as f64 / run.elapsed.as_secs_f64(),
            ms(percentile(&commits, 0.50)),
            ms(percentile(&commits, 0.99)),
            100.0 * bot_rate / rate,
        );
    }
}

fn get(base: &str, path: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("client");
    match client
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
    {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.text().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; numbers given are ours.
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let senders = nums.first().copied().unwrap_or(32).max(1);
    let alerts = nums.get(1).copied().unwrap_or(100_000).max(1);
    let backend = BenchBackend::from_env();
    println!("machine: {}", machine());
    println!("backend: {} (OPSBOT_BENCH_BACKEND)", backend.name());
    let pg = (backend == BenchBackend::Postgres).then(pg::Pg::start_durable);
    if let Some(pg) = &pg {
        println!(
            "  PostgreSQL {} on 127.0.0.1:{}, this machine; fsync={}, synchronous_commit={} (durable, as sled's flush)",
            pg.psql("SHOW server_version"),
            pg.port,
            pg.psql("SHOW fsync"),
            pg.psql("SHOW synchronous_commit"),
        );
    }
    // `OPSBOT_BENCH_PG_STATEMENTS=1`: the cluster counts the statements it
    // runs (`pg_stat_statements`), and the storm's busiest are printed.
    let statements = pg.is_some()
        && std::env::var("OPSBOT_BENCH_PG_STATEMENTS").is_ok_and(|v| !v.is_empty() && v != "0");
    if let (Some(pg), true) = (&pg, statements) {
        pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
        pg.kill();
        pg.restart();
        pg.psql("CREATE EXTENSION pg_stat_statements");
    }
    let bot_url = pg.as_ref().map(|pg| pg.database("opsbot_storm"));

    let dir = tempfile::tempdir().expect("temp dir");
    let mut bot = BotProcess::start(dir.path(), bot_url.as_deref());
    let mut stdin = bot.stdin.take().expect("stdin");
    println!("bot: pid {} at {}", bot.pid, bot.base);

    // Slash commands with no storm.
    let idle = bot.probe(&mut stdin, IDLE_PROBES, &|| true);
    let opened_before = opened_total(&bot.base).unwrap_or(0);
    let rss_before = proc_status_kb(bot.pid, "VmRSS");

    // The storm, with slash commands typed alongside.
    if let (Some(pg), true) = (&pg, statements) {
        pg.psql("SELECT pg_stat_statements_reset()");
    }
    let (bot_cpu0, own_cpu0) = (cpu_by_thread(&bot.pid.to_string()), cpu_by_thread("self"));
    let storming = AtomicBool::new(true);
    let (result, during) = std::thread::scope(|s| {
        let probe =
            s.spawn(|| bot.probe(&mut stdin, usize::MAX, &|| storming.load(Ordering::Relaxed)));
        let result = storm(&bot.base, senders, alerts);
        storming.store(false, Ordering::Relaxed);
        (result, probe.join().expect("probe"))
    });
    let (bot_cpu1, own_cpu1) = (cpu_by_thread(&bot.pid.to_string()), cpu_by_thread("self"));
    if let (Some(pg), true) = (&pg, statements) {
        println!("  statements during the storm (pg_stat_statements, busiest first: calls, total ms, rows):");
        let top = pg.psql(
            "SELECT calls || ' | ' || round(total_exec_time) || ' ms | ' || rows || ' | ' || \
             left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'opsbot_storm') \
             ORDER BY calls DESC LIMIT 20",
        );
        for l in top.lines() {
            println!("    {l}");
        }
    }

    let mut lat = result.latencies.clone();
    lat.sort();
    let secs = result.elapsed.as_secs_f64();
    println!(
        "alert storm on {}: {} alerts in batches of {BATCH} {}, {senders} concurrent connections{}",
        backend.name(),
        if shape().seconds.is_some() {
            "unbounded".to_string()
        } else {
            alerts.to_string()
        },
        describe_shape(),
        if shape().store.is_some() {
            format!(", on a kept store of {opened_before} tickets")
        } else {
            String::new()
        }
    );
    println!(
        "  {} alerts accepted (202, flushed) in {secs:.2} s = {:.0} alerts/s ({:.0} requests/s); {} requests failed{}",
        result.accepted,
        result.accepted as f64 / secs,
        result.requests_ok as f64 / secs,
        result.errors.len(),
        if result.deadline_hit {
            format!("; stopped at the {STORM_DEADLINE:?} deadline")
        } else {
            String::new()
        }
    );
    for e in result.errors.iter().take(5) {
        println!("    error: {e}");
    }
    println!(
        "  request latency p50 {}, p99 {}, max {}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "  CPU during the storm: bot {}; load generator {:.2} s",
        cpu_used(&bot_cpu0, &bot_cpu1),
        total(&own_cpu1)
            .saturating_sub(total(&own_cpu0))
            .as_secs_f64()
    );
    report_probe("no storm (before)", &idle);
    report_probe("during the storm", &during);
    if let Some(start) = result.started {
        timeline(
            start,
            result.elapsed,
            &during,
            &bot.post_times.lock().expect("post times"),
        );
    }

    // Tickets opened: one per group.
    let expected = match shape().groups {
        Some(g) => (g as u64).min(result.accepted),
        None => result.accepted,
    };
    let last = format!("/api/v1/tickets/OPS-{}", opened_before + expected);
    let beyond = format!("/api/v1/tickets/OPS-{}", opened_before + expected + 1);
    let (last_code, _) = get(&bot.base, &last);
    let (beyond_code, _) = get(&bot.base, &beyond);
    let opened = opened_total(&bot.base).map(|n| n.saturating_sub(opened_before));
    let tickets_ok = opened == Some(expected) && result.tickets.len() as u64 == expected;
    println!(
        "  tickets opened: {} (metrics), {} distinct in the 202 answers; GET {last} → {last_code}, GET {beyond} → {beyond_code}; expected {expected}: {}",
        opened.map_or_else(|| "unknown".to_string(), |n| n.to_string()),
        result.tickets.len(),
        if tickets_ok {
            "ok"
        } else {
            "MISMATCH"
        }
    );

    // Slash commands after the storm, with the store full.
    let after = bot.probe(&mut stdin, IDLE_PROBES, &|| true);
    report_probe(
        &format!("no storm (after, {} tickets)", opened_before + expected),
        &after,
    );

    let hwm = proc_status_kb(bot.pid, "VmHWM");
    let rss = proc_status_kb(bot.pid, "VmRSS");
    println!(
        "  bot memory: peak (VmHWM) {}; resident {} before the storm, {} after",
        mib(hwm),
        mib(rss_before),
        mib(rss)
    );

    // End of input: the bot drains its outbox and exits.
    drop(stdin);
    let t0 = Instant::now();
    let mut child = bot.child.take().expect("child");
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() < EXIT_WAIT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    match status {
        Some(s) => println!(
            "  bot exit after end of input: {s} in {:.2} s",
            t0.elapsed().as_secs_f64()
        ),
        None => println!("  bot did NOT exit within {EXIT_WAIT:?} of end of input; killed it"),
    }
    if let Some(h) = bot.stdout.take() {
        let _ = h.join();
    }
    println!(
        "  console output: {} post lines, {} of them storm summaries",
        bot.other_lines.load(Ordering::Relaxed),
        bot.storm_summaries.load(Ordering::Relaxed)
    );
    let logs = bot
        .stderr
        .take()
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    if !logs.is_empty() {
        println!("  bot stderr: {} lines, first ones:", logs.len());
        for l in logs.iter().take(5) {
            println!("    {l}");
        }
    }

    if backend == BenchBackend::Sled {
        let data = shape()
            .store
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        raw_baseline(
            &data,
            result.accepted,
            secs,
            opened_before + expected,
            expected,
        );
    }

    let engine_url = pg.as_ref().map(|pg| pg.database("opsbot_engine"));
    if shape().seconds.is_some() {
        println!("(the in-process engine storm is left out of a sustained run)");
    } else {
        engine_storm(senders, alerts, engine_url.as_deref());
    }
    if !tickets_ok {
        std::process::exit(1);
    }
}
