//! A push storm against the real bot: `opsbot console` runs as its own
//! process with its HTTP intake on a loopback port, 50 GitHub repositories
//! in its `bot.toml` (each building its pushes with a local job and sending
//! commit statuses to the fake forge of the integration tests,
//! `tests/it/fake_forge.rs`, strict as GitHub), and this load generator
//! sends 1,000 pushes over them through `POST /hooks/github`, each signed
//! with the repository's secret (`X-Hub-Signature-256`), from 16 concurrent
//! keep-alive connections. Pushes to one repository follow each other
//! (each one's `before` is the last one's `after`), so a newer push may
//! supersede a build that has not started, as in a real storm.
//!
//! It reports: pushes accepted per second (each 202 is sent once the push
//! is durable and its run queued: the time of the request is the time from
//! the hook to the queued run, p50/p99); commit statuses the fake forge
//! received per second, from the first to the last (pending when queued,
//! then success, or error for a superseded build), waited for until none
//! arrive for 5 s; and the latency of `/help` typed into the console every
//! 50 ms from the first push until then (target: p99 under 20 ms), next to
//! the same with no storm before it.
//!
//! Bounded: every wait has a deadline; the bot is killed if it does not
//! exit. Loopback only. Exits 1 if a push was not accepted.
//!
//! Run: `cargo bench --bench push_storm` (options: `-- PUSHES REPOS
//! SENDERS`, default 1000 50 16).

#[path = "../tests/it/fake_forge.rs"]
#[allow(dead_code, unused_imports)]
mod fake_forge;

mod common;
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
use common::{machine, ms, percentile};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};

const SECRET: &str = "push-storm-secret";
const TOKEN: &str = "push-storm-token";
const JOB_FILE: &str = r#"description = "Builds a pushed commit"
team = "backend"
program = "/bin/true"
who = ["operators", "team:backend"]
[params.ref]
description = "The branch"
pattern = '[A-Za-z0-9._/-]{1,100}'
default = "main"
[params.sha]
description = "The commit"
pattern = '[0-9a-f]{40}'
default = "0000000000000000000000000000000000000000"
"#;
const PROBE_EVERY: Duration = Duration::from_millis(50);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const QUIET_WINDOW: Duration = Duration::from_secs(5);
const HELP_REPLY: &str = "(only you) Commands you may run:";
const TARGET_P99: Duration = Duration::from_millis(20);
const STATUS_QUIET: Duration = Duration::from_secs(5);
const STATUS_WAIT: Duration = Duration::from_secs(600);
const EXIT_WAIT: Duration = Duration::from_secs(120);

struct Bot {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<(Instant, String)>,
    base: String,
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn repo_name(i: usize) -> String {
    format!("r{i:02}")
}

impl Bot {
    fn start(dir: &std::path::Path, forge: &str, repos: usize) -> Bot {
        let mut text = kit::shipped_config();
        for i in 0..repos {
            let r = repo_name(i);
            text.push_str(&format!(
                "\n[repos.{r}]\nurl = \"https://github.com/storm/{r}.git\"\nprovider = \"github\"\non_push = [\"storm-ci\"]\nteam = \"backend\"\nsecret_env = \"STORM_SECRET\"\ntoken_env = \"STORM_TOKEN\"\napi_url = \"{forge}\"\n"
            ));
        }
        let config = kit::write_config(dir, &text);
        kit::copy_dir(&kit::shipped_commands(), &dir.join("commands"));
        std::fs::write(dir.join("commands/storm-ci.toml"), JOB_FILE).expect("job file");
        let mut child = kit::console(dir, &config)
            .env("STORM_SECRET", SECRET)
            .env("STORM_TOKEN", TOKEN)
            .env("OPSBOT_HOOK_TOKEN", "push-storm-bench")
            .env("OPSBOT_SUPPORT_SECRET", "push-storm-bench")
            .env("OPSBOT_API_TOKEN", "push-storm-bench-api")
            .spawn()
            .expect("spawn opsbot console");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with("(only you)") {
                    let _ = tx.send((Instant::now(), line.trim_end().to_string()));
                }
                line.clear();
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = ready_tx.send(addr.to_string());
                } else if !line.trim().is_empty() {
                    eprint!("bot: {line}");
                }
                line.clear();
            }
        });
        let mut bot = Bot {
            child: Some(child),
            stdin,
            replies,
            base: String::new(),
        };
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => bot.base = addr,
            Err(_) => panic!("the bot did not start"),
        }
        bot
    }

    /// `/help` every [`PROBE_EVERY`] until `stop`: each reply's latency.
    fn probe(&mut self, stop: &dyn Fn() -> bool, at_least: Duration) -> (Vec<Duration>, usize) {
        while self.replies.try_recv().is_ok() {}
        let (mut lat, mut timeouts) = (Vec::new(), 0);
        let started = Instant::now();
        let mut next = started;
        while started.elapsed() < at_least || !stop() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += PROBE_EVERY;
            let t0 = Instant::now();
            let Some(stdin) = self.stdin.as_mut() else {
                break;
            };
            if stdin
                .write_all(b"/help\n")
                .and_then(|_| stdin.flush())
                .is_err()
            {
                break;
            }
            let deadline = t0 + PROBE_TIMEOUT;
            loop {
                match self
                    .replies
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Ok((at, text)) if text.starts_with(HELP_REPLY) => {
                        lat.push(at.saturating_duration_since(t0));
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        timeouts += 1;
                        break;
                    }
                }
            }
            if next < Instant::now() {
                next = Instant::now();
            }
        }
        lat.sort();
        (lat, timeouts)
    }

    /// Closes stdin; waits for the exit (bounded), else kills the bot.
    fn finish(&mut self) -> Option<std::process::ExitStatus> {
        drop(self.stdin.take());
        let mut child = self.child.take()?;
        let deadline = Instant::now() + EXIT_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the bot did not exit within {EXIT_WAIT:?}: killed");
        let _ = child.kill();
        child.wait().ok()
    }
}

fn sha(n: usize) -> String {
    format!("{:040x}", n + 1)
}

/// The `n`th push: the `n / repos`th commit on `main` of repository `n % repos`.
fn push_body(n: usize, repos: usize) -> Vec<u8> {
    let r = repo_name(n % repos);
    let before = if n < repos {
        "0".repeat(40)
    } else {
        sha(n - repos)
    };
    let after = sha(n);
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": n < repos,
        "deleted": false,
        "forced": false,
        "repository": {
            "full_name": format!("storm/{r}"),
            "html_url": format!("https://github.com/storm/{r}"),
            "clone_url": format!("https://github.com/storm/{r}.git"),
            "default_branch": "main"
        },
        "pusher": {"name": "bella", "email": "bella@example.com"},
        "sender": {"login": "bella"},
        "commits": [{
            "id": after,
            "message": format!("Change {n} of the storm\n\nrefs OPS-1"),
            "timestamp": "2026-03-01T12:00:00Z",
            "url": format!("https://github.com/storm/{r}/commit/{after}"),
            "author": {"name": "Bella", "email": "bella@example.com", "username": "bella"},
            "committer": {"name": "Bella", "email": "bella@example.com", "username": "bella"},
            "added": [], "removed": [], "modified": ["README.md"]
        }]
    }))
    .expect("JSON")
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn lat_text(lat: &[Duration]) -> String {
    format!(
        "p50 {}, p99 {}, max {} ({} replies)",
        ms(percentile(lat, 0.50)),
        ms(percentile(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len()
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let pushes = args.first().copied().unwrap_or(1000);
    let repos = args.get(1).copied().unwrap_or(50).max(1);
    let senders = args.get(2).copied().unwrap_or(16).max(1);
    println!("push storm: {pushes} pushes over {repos} repositories, {senders} senders");
    println!("machine: {}", machine());

    let names: Vec<String> = (0..repos)
        .map(|i| format!("storm/{}", repo_name(i)))
        .collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let forge = fake_forge::FakeForge::start(TOKEN, &name_refs);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bot = Bot::start(dir.path(), &forge.base, repos);
    let url = format!("{}/hooks/github", bot.base.trim_end_matches('/'));

    // Quiet: the slash commands with no storm.
    let (quiet, quiet_timeouts) = bot.probe(&|| true, QUIET_WINDOW);

    // The statuses' arrival, watched from a thread.
    let forge = Arc::new(forge);
    let arrivals: Arc<Mutex<Vec<(Instant, usize)>>> = Arc::default();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (forge, arrivals, watching) = (forge.clone(), arrivals.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while watching.load(Ordering::Relaxed) {
                let n = forge.taken().len();
                if n != last {
                    arrivals.lock().expect("arrivals").push((Instant::now(), n));
                    last = n;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // The storm: senders take pushes in order, so a repository's pushes are
    // sent in the order of their commits (mostly: two senders may race).
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            let (next, url) = (next.clone(), url.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("client");
                let mut out: Vec<(Duration, u16)> = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= pushes {
                        return out;
                    }
                    let body = push_body(n, repos);
                    let sig = signature(&body);
                    let t0 = Instant::now();
                    let code = client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("X-GitHub-Event", "push")
                        .header("X-GitHub-Delivery", format!("storm-{n}"))
                        .header("X-Hub-Signature-256", sig)
                        .body(body)
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    out.push((t0.elapsed(), code));
                }
            })
        })
        .collect();
    let storm_done = {
        let done = done.clone();
        move || done.load(Ordering::Relaxed)
    };
    // The probes run on this thread while the senders send.
    let prober = std::thread::scope(|s| {
        let h = s.spawn(|| bot.probe(&storm_done, Duration::ZERO));
        let mut results = Vec::new();
        for w in workers {
            results.extend(w.join().expect("sender"));
        }
        let took = started.elapsed();
        // The builds and statuses that follow: until no status arrives for
        // a while (the probes go on meanwhile).
        let deadline = Instant::now() + STATUS_WAIT;
        loop {
            let last = arrivals.lock().expect("arrivals").last().copied();
            let quiet_for = last.map_or(Duration::ZERO, |(t, _)| t.elapsed());
            if quiet_for >= STATUS_QUIET || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done.store(true, Ordering::Relaxed);
        let probed = h.join().expect("prober");
        (results, took, probed)
    });
    let (results, took, (storm, storm_timeouts)) = prober;
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    let exit = bot.finish();

    let accepted = results.iter().filter(|(_, c)| *c == 202).count();
    let mut codes: std::collections::BTreeMap<u16, usize> = Default::default();
    for (_, c) in &results {
        *codes.entry(*c).or_default() += 1;
    }
    let mut lat: Vec<Duration> = results
        .iter()
        .filter(|(_, c)| *c == 202)
        .map(|(d, _)| *d)
        .collect();
    lat.sort();
    println!(
        "pushes accepted: {accepted}/{pushes} in {:.2} s: {:.0} pushes/s (answers: {codes:?})",
        took.as_secs_f64(),
        accepted as f64 / took.as_secs_f64().max(1e-9)
    );
    println!(
        "hook → queued run (the 202, sent once the push and its run are durable): p50 {}, p99 {}, max {}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    let arrivals = arrivals.lock().expect("arrivals").clone();
    let taken = forge.taken();
    let mut by_state: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in &taken {
        *by_state.entry(t.state.as_str()).or_default() += 1;
    }
    match (arrivals.first(), arrivals.last()) {
        (Some((first, _)), Some((last, n))) => {
            let span = last.saturating_duration_since(started).as_secs_f64();
            println!(
                "commit statuses delivered: {n} ({by_state:?}, {} refused) in {span:.2} s from the first push ({:.0}/s; the first arrived {} after it, the last {:.2} s after the last push was accepted)",
                forge.refused(),
                *n as f64 / span.max(1e-9),
                ms(first.saturating_duration_since(started)),
                last.saturating_duration_since(started + took).as_secs_f64()
            );
        }
        _ => println!("commit statuses delivered: none"),
    }
    println!(
        "/help with no storm: {}{}",
        lat_text(&quiet),
        if quiet_timeouts > 0 {
            format!(", {quiet_timeouts} unanswered")
        } else {
            String::new()
        }
    );
    let p99 = percentile(&storm, 0.99);
    println!(
        "/help during the storm and its builds: {}{} — target p99 < {}: {}",
        lat_text(&storm),
        if storm_timeouts > 0 {
            format!(", {storm_timeouts} unanswered")
        } else {
            String::new()
        },
        ms(TARGET_P99),
        if p99 < TARGET_P99 && !storm.is_empty() {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("bot exit: {exit:?}");
    if accepted != pushes {
        std::process::exit(1);
    }
}
