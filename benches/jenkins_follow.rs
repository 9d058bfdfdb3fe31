//! Following Jenkins builds: how many runs one bot follows without slowing
//! chat. The real bot runs as its own process (`opsbot console`, the shipped
//! `bot.toml` with `[ci.jenkins]` pointed at the fake Jenkins of the
//! integration tests, and a job `web-ci` that runs `web/build` on it); this
//! process holds the fake Jenkins (its own thread) and types into the bot's
//! console.
//!
//! For each `poll` setting (default `2s`, the shipped default, then `1s`), a
//! fresh bot and a fresh fake:
//!
//! 1. no builds: the bot's CPU over a quiet window, then `/help` and `/runs`
//!    typed into the console every 50 ms for a window, each timed from the
//!    line written to its reply line (`(only you) …`);
//! 2. 500 `/web-ci ref:main` typed at once; each is triggered on the fake
//!    (queue item first, 1 s quiet period, then a build that lasts until the
//!    bench ends it); the bench waits until the fake has 500 builds running
//!    and the bot has said `running` for each, then for the followers'
//!    backoff to reach its ceiling (4 × poll); the builds start spread over
//!    the second or two the bot takes to trigger them, and so do the polls;
//! 3. the same two windows with 500 builds in flight: CPU quiet, then the
//!    slash commands; the requests per second the fake receives, and the
//!    most sockets the bot holds open;
//! 4. `kill -9` and a new bot on the same store: it follows every run again
//!    at once, so its followers poll in lockstep (a burst of 500 requests
//!    every 4 × poll); the same two windows;
//! 5. the builds end (spread as they started), with `/help` typed meanwhile;
//!    every run must end `succeeded` on the fake, in the bot's posts and in
//!    its store (read after the bot exits at end of input).
//!
//! Each window lasts at least 20 s and a whole number of 4 × poll, so that
//! every window holds the same number of polls of each run.
//!
//! CPU is utime + stime of the bot's process from `/proc/PID/stat`, as % of
//! one core over the window; "polling costs" is the quiet window with builds
//! minus the quiet window without. Bounded: every wait has a deadline; the
//! bot is killed if it does not exit. Loopback only. Exits 1 if a run did not
//! end `succeeded`.
//!
//! Run: `cargo bench --bench jenkins_follow` (options: `-- RUNS POLL...`,
//! such as `-- 500 2s 1s`, the default).

#[path = "../tests/it/fake_jenkins.rs"]
#[allow(dead_code, unused_imports)]
mod fake_jenkins;

mod common;
// The integration tests' kit (the shipped config, the console command);
// the bench uses a part of it.
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
use common::{cpu_by_thread, machine, ms, percentile};

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fake_jenkins::FakeJenkins;

/// The job's name on Jenkins, and the bot's command for it.
const JENKINS_JOB: &str = "web/build";
const COMMAND: &str = "web-ci";
/// The job file the bot gets in its `commands/`.
const JOB_FILE: &str = r#"description = "The web app's pipeline on Jenkins"
team = "backend"
backend = "jenkins"
jenkins_job = "web/build"
[params.ref]
description = "The git ref"
pattern = '[A-Za-z0-9._/-]{1,100}'
default = "main"
"#;
/// Jenkins' quiet period: each build waits this long in the queue.
const QUEUE_DELAY: Duration = Duration::from_secs(1);
/// Builds last this long unless the bench ends them sooner.
const BUILD_CAP: Duration = Duration::from_secs(900);
/// Least length of each measuring window; it is made a whole number of the
/// followers' steady period (4 × poll), so that it holds as many polls of
/// each run as any other window.
const WINDOW: Duration = Duration::from_secs(20);
/// Pace of the slash commands typed into the console.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// Every `RUNS_EVERY`th probe is `/runs`, the others `/help`.
const RUNS_EVERY: usize = 4;
/// How long a slash command's reply is waited for.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the bot may take to take every build command and start them all.
const START_WAIT: Duration = Duration::from_secs(300);
/// How long the builds may take to be seen ending, after the last is due.
const END_WAIT: Duration = Duration::from_secs(120);
/// How long the bot may take to exit at end of input.
const EXIT_WAIT: Duration = Duration::from_secs(90);
/// The targets of issue 5.
const TARGET_P99: Duration = Duration::from_millis(20);
const TARGET_CPU_PCT: f64 = 5.0;

const HELP_REPLY: &str = "(only you) Commands you may run:";
const RUNS_REPLIES: [&str; 2] = ["(only you) Recent runs:", "(only you) No runs yet"];
const STARTED_REPLY: &str = "(only you) Started RUN-";

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// USER_HZ: the unit of /proc's utime and stime on Linux.
const HZ: f64 = 100.0;

/// utime + stime of the whole process (its threads, live and exited).
fn process_cpu(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let Some(close) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    Duration::from_secs_f64(ticks / HZ)
}

/// The CPU each thread (by name) used between two readings, busiest first.
fn threads_used(before: &BTreeMap<String, Duration>, after: &BTreeMap<String, Duration>) -> String {
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
    if used.is_empty() {
        return "no thread above 10 ms".into();
    }
    used.iter()
        .map(|(k, d)| format!("{k} {:.2} s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `kB` field of `/proc/PID/status`, such as `VmRSS`, in MiB.
fn proc_status_mib(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(|| "unknown".into(), |kb| format!("{:.1} MiB", kb / 1024.0))
}

/// A reply line printed for the console user: when, and its first line.
struct Reply {
    at: Instant,
    text: String,
}

/// What the bot posted about the runs in `#ops`.
#[derive(Default)]
struct Posts {
    /// Run number → the last state posted for it.
    state: HashMap<u64, String>,
    /// Every post line (any channel), and when it was printed.
    times: Vec<Instant>,
}

impl Posts {
    fn count(&self, state: &str) -> usize {
        self.state.values().filter(|s| *s == state).count()
    }

    fn final_count(&self) -> usize {
        self.state
            .values()
            .filter(|s| matches!(s.as_str(), "succeeded" | "failed" | "cancelled"))
            .count()
    }

    fn summary(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for s in self.state.values() {
            *by.entry(s.as_str()).or_default() += 1;
        }
        by.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `[#ops] RUN-12 · web-ci ref=main · running since …`: (12, "running").
fn parse_progress(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("[#ops] RUN-")?;
    let mut parts = rest.split(" · ");
    let id = parts.next()?.parse().ok()?;
    if !parts.next()?.starts_with(COMMAND) {
        return None;
    }
    let state = parts.next()?.split_whitespace().next()?.to_string();
    Some((id, state))
}

/// The bot process, killed if the bench stops before closing it.
struct BotProcess {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: u32,
    replies: mpsc::Receiver<Reply>,
    posts: Arc<Mutex<Posts>>,
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

/// Slash commands typed over a window: each one's latency, by command.
#[derive(Default)]
struct Probed {
    help: Vec<Duration>,
    runs: Vec<Duration>,
    timeouts: usize,
}

impl BotProcess {
    fn start(dir: &Path, base: &str, poll: &str) -> BotProcess {
        let shipped = kit::shipped_config();
        let text = format!(
            "{shipped}\n[ci.jenkins]\nurl = \"{base}\"\nuser = \"{}\"\ntoken_env = \"JENKINS_TOKEN\"\npoll = \"{poll}\"\n",
            fake_jenkins::USER
        );
        let config = kit::write_config(dir, &text);
        // The shipped jobs, which the shipped services name, and web-ci.
        kit::copy_dir(&kit::shipped_commands(), &dir.join("commands"));
        std::fs::write(
            dir.join("commands").join(format!("{COMMAND}.toml")),
            JOB_FILE,
        )
        .expect("write the job file");
        let mut child = kit::console(dir, &config)
            .env("JENKINS_TOKEN", fake_jenkins::TOKEN)
            // Set only to keep the bot's stderr to what matters here.
            .env("OPSBOT_HOOK_TOKEN", "jenkins-follow-bench")
            .env("OPSBOT_SUPPORT_SECRET", "jenkins-follow-bench")
            .spawn()
            .expect("spawn opsbot console");
        let pid = child.id();
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");

        let (reply_tx, replies) = mpsc::channel();
        let posts = Arc::new(Mutex::new(Posts::default()));
        let seen = posts.clone();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let now = Instant::now();
                if line.starts_with("(only you)") {
                    let _ = reply_tx.send(Reply {
                        at: now,
                        text: line.trim_end().to_string(),
                    });
                } else if line.starts_with('[') {
                    let mut p = seen.lock().expect("posts");
                    p.times.push(now);
                    if let Some((id, state)) = parse_progress(&line) {
                        p.state.insert(id, state);
                    }
                }
                line.clear();
            }
        });

        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut others = Vec::new();
            let mut reader = BufReader::new(err);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with("listening on ") {
                    let _ = ready_tx.send(());
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
            replies,
            posts,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            drop(bot.child.take().map(|mut c| c.kill()));
            let err = bot.stderr.take().map(|h| h.join().unwrap_or_default());
            panic!("the bot did not start: {err:?}");
        }
        bot
    }

    fn type_line(&mut self, line: &str) -> bool {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).is_ok() && stdin.flush().is_ok()
    }

    /// Types `/help` (and every `RUNS_EVERY`th time `/runs`) every
    /// `PROBE_EVERY` for `window`, or until `stop` says so; one command at a
    /// time: a reply slower than the pace delays the next line.
    fn probe(&mut self, window: Duration, stop: &dyn Fn() -> bool) -> Probed {
        while self.replies.try_recv().is_ok() {}
        let mut probed = Probed::default();
        let started = Instant::now();
        let mut next = started;
        let mut i = 0usize;
        while started.elapsed() < window && !stop() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += PROBE_EVERY;
            let runs = i % RUNS_EVERY == RUNS_EVERY - 1;
            i += 1;
            let t0 = Instant::now();
            if !self.type_line(if runs { "/runs" } else { "/help" }) {
                eprintln!("cannot write to the bot's stdin");
                break;
            }
            let deadline = t0 + PROBE_TIMEOUT;
            let got = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.replies.recv_timeout(left) {
                    Ok(r) => {
                        let expected = if runs {
                            RUNS_REPLIES.iter().any(|p| r.text.starts_with(p))
                        } else {
                            r.text.starts_with(HELP_REPLY)
                        };
                        if expected {
                            break Some(r.at.saturating_duration_since(t0));
                        }
                        eprintln!("unexpected answer: {}", r.text);
                    }
                    Err(_) => break None,
                }
            };
            match got {
                Some(d) if runs => probed.runs.push(d),
                Some(d) => probed.help.push(d),
                None => {
                    eprintln!("no reply within {PROBE_TIMEOUT:?}");
                    probed.timeouts += 1;
                    break;
                }
            }
            if next < Instant::now() {
                next = Instant::now();
            }
        }
        probed
    }

    /// Kills the bot (SIGKILL) as a crash would; returns what it logged.
    fn kill9(&mut self) -> Vec<String> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop(self.stdin.take());
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn posts(&self) -> std::sync::MutexGuard<'_, Posts> {
        self.posts.lock().expect("posts")
    }

    /// Closes stdin and waits for the exit (bounded); kills the bot if it
    /// does not exit. Returns the exit status and the time it took.
    fn finish(&mut self) -> (Option<std::process::ExitStatus>, Duration) {
        drop(self.stdin.take());
        let t0 = Instant::now();
        let mut child = self.child.take().expect("child");
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if t0.elapsed() < EXIT_WAIT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        (status, t0.elapsed())
    }
}

/// One measuring window: CPU of the bot (whole process and by thread), the
/// requests the fake received, and the slash commands if typed.
struct Window {
    wall: Duration,
    cpu: Duration,
    threads: String,
    requests: Vec<String>,
    /// The most sockets the bot held open at once (sampled every 100 ms).
    peak_sockets: usize,
    probed: Option<Probed>,
}

impl Window {
    fn cpu_pct(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }

    fn req_per_sec(&self) -> f64 {
        self.requests.len() as f64 / self.wall.as_secs_f64()
    }

    fn requests_text(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.requests {
            let kind = if r.starts_with("GET /queue/item/") {
                "queue item"
            } else if r.starts_with("GET /job/") && r.contains("/api/json") {
                "build"
            } else if r.contains("/buildWithParameters") {
                "trigger"
            } else if r.contains("/crumbIssuer/") {
                "crumb"
            } else if r.contains("/consoleText") {
                "console"
            } else {
                "other"
            };
            *by.entry(kind).or_default() += 1;
        }
        let parts: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!(
            "{} requests = {:.1}/s ({})",
            self.requests.len(),
            self.req_per_sec(),
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            }
        )
    }
}

/// Sockets the process holds open (its connections to Jenkins, mostly).
fn sockets(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn measure(bot: &mut BotProcess, fake: &FakeJenkins, window: Duration, probing: bool) -> Window {
    let pid = bot.pid.to_string();
    let req0 = fake.requests().len();
    let (cpu0, th0) = (process_cpu(&pid), cpu_by_thread(&pid));
    let t0 = Instant::now();
    let done = AtomicBool::new(false);
    let (probed, peak_sockets) = std::thread::scope(|s| {
        // Every 100 ms, the bot's open sockets.
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(sockets(&pid));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        let probed = if probing {
            Some(bot.probe(window, &|| false))
        } else {
            std::thread::sleep(window);
            None
        };
        done.store(true, Ordering::Relaxed);
        (probed, sampler.join().expect("sampler"))
    });
    let wall = t0.elapsed();
    let (cpu1, th1) = (process_cpu(&pid), cpu_by_thread(&pid));
    let requests = fake.requests().split_off(req0);
    Window {
        wall,
        cpu: cpu1.saturating_sub(cpu0),
        threads: threads_used(&th0, &th1),
        requests,
        peak_sockets,
        probed,
    }
}

fn report_window(what: &str, w: &Window) {
    println!(
        "  {what}: bot CPU {:.2} s in {:.1} s = {:.2} % of one core ({}); Jenkins got {}; bot sockets open: at most {}",
        w.cpu.as_secs_f64(),
        w.wall.as_secs_f64(),
        w.cpu_pct(),
        w.threads,
        w.requests_text(),
        w.peak_sockets
    );
    if let Some(p) = &w.probed {
        report_probe("    ", p);
    }
}

fn lat_text(lat: &[Duration]) -> String {
    let mut lat = lat.to_vec();
    lat.sort();
    format!(
        "{} commands; p50 {}, p99 {}, max {}",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    )
}

fn report_probe(indent: &str, p: &Probed) {
    println!("{indent}/help: {}", lat_text(&p.help));
    println!("{indent}/runs: {}", lat_text(&p.runs));
    if p.timeouts > 0 {
        println!(
            "{indent}{} command(s) with no reply within {PROBE_TIMEOUT:?}",
            p.timeouts
        );
    }
}

fn p99(lat: &[Duration]) -> Duration {
    let mut lat = lat.to_vec();
    lat.sort();
    percentile(&lat, 0.99)
}

/// The two windows with the builds in flight.
struct Loaded {
    quiet: Window,
    probing: Window,
}

/// The figures of one poll setting, for the summary.
struct Outcome {
    poll: String,
    runs: usize,
    idle_quiet: Window,
    idle_probe: Window,
    typed: Loaded,
    restarted: Loaded,
    all_succeeded: bool,
}

/// Waits until `done`, at most until `deadline`; returns whether it got there.
fn wait_until(deadline: Instant, done: &mut dyn FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_logs(who: &str, logs: &[String]) {
    if !logs.is_empty() {
        println!("  {who} stderr: {} lines, first ones:", logs.len());
        for l in logs.iter().take(5) {
            println!("    {l}");
        }
    }
}

fn bench(runs: usize, poll_text: &str) -> Outcome {
    let poll = humantime::parse_duration(poll_text).expect("a poll duration");
    let period = poll * 4;
    let window = period * WINDOW.as_nanos().div_ceil(period.as_nanos()) as u32;
    // The followers back off from poll to 4 × poll: 1 + 1.5 + 2.25 + 3.375
    // polls after a build started (or was followed again), then every 4 × poll.
    let settle = poll.mul_f64(8.2) + Duration::from_secs(2);
    println!();
    println!(
        "poll = \"{poll_text}\" (backs off to {period:?}), {runs} builds, windows of {window:?}; load average before: {}",
        loadavg()
    );
    let fake = FakeJenkins::start();
    fake.set_job(JENKINS_JOB, "SUCCESS", BUILD_CAP, "building the web app\n");
    fake.set_queue_delay(QUEUE_DELAY);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bot = BotProcess::start(dir.path(), &fake.base, poll_text);
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "  bot: pid {}, resident {}",
        bot.pid,
        proc_status_mib(bot.pid, "VmRSS")
    );

    // 1. No builds.
    let idle_quiet = measure(&mut bot, &fake, window, false);
    report_window("no builds, nothing typed", &idle_quiet);
    let idle_probe = measure(&mut bot, &fake, window, true);
    report_window("no builds, /help and /runs typed every 50 ms", &idle_probe);

    // 2. The builds, typed at once.
    let pid = bot.pid.to_string();
    let cpu_start = process_cpu(&pid);
    let typed_at = Instant::now();
    for _ in 0..runs {
        assert!(
            bot.type_line(&format!("/{COMMAND} ref:main")),
            "cannot write to the bot's stdin"
        );
    }
    let mut started = 0;
    let mut others = Vec::new();
    let deadline = typed_at + START_WAIT;
    while started < runs {
        let left = deadline.saturating_duration_since(Instant::now());
        match bot.replies.recv_timeout(left) {
            Ok(r) if r.text.starts_with(STARTED_REPLY) => started += 1,
            Ok(r) => others.push(r.text),
            Err(_) => break,
        }
    }
    println!(
        "  {runs} × /{COMMAND} ref:main typed at once: {started} accepted (\"Started RUN-…\") in {:.2} s{}",
        typed_at.elapsed().as_secs_f64(),
        if others.is_empty() {
            String::new()
        } else {
            format!("; other answers: {:?}", &others[..others.len().min(3)])
        }
    );
    let (mut on_fake, mut running_in_bot) = (0, 0);
    wait_until(deadline, &mut || {
        on_fake = fake
            .builds(JENKINS_JOB)
            .iter()
            .filter(|b| b.building)
            .count();
        running_in_bot = bot.posts().count("running");
        on_fake >= runs && running_in_bot >= runs
    });
    let all_running = typed_at.elapsed();
    println!(
        "  {on_fake} builds running on the fake Jenkins, {running_in_bot} runs said `running` by the bot, {:.2} s after typing",
        all_running.as_secs_f64()
    );
    std::thread::sleep(settle);
    let ramp_cpu = process_cpu(&pid).saturating_sub(cpu_start);
    let ramp = typed_at.elapsed();
    println!(
        "  from typing to the steady state ({:.1} s, incl. {:.1} s for the backoff to settle): bot CPU {:.2} s = {:.1} % of one core; fake Jenkins has {} requests in all; bot resident {}",
        ramp.as_secs_f64(),
        settle.as_secs_f64(),
        ramp_cpu.as_secs_f64(),
        100.0 * ramp_cpu.as_secs_f64() / ramp.as_secs_f64(),
        fake.requests().len(),
        proc_status_mib(bot.pid, "VmRSS"),
    );

    // 3. The builds in flight, started as typed (spread over the start).
    let typed = Loaded {
        quiet: measure(&mut bot, &fake, window, false),
        probing: measure(&mut bot, &fake, window, true),
    };
    report_window(
        &format!("{runs} builds in flight, nothing typed"),
        &typed.quiet,
    );
    report_window(
        &format!("{runs} builds in flight, /help and /runs typed every 50 ms"),
        &typed.probing,
    );

    // 4. kill -9 and start again: every run is followed again at once, so
    // the followers poll in lockstep.
    let killed_at = Instant::now();
    print_logs("first bot", &bot.kill9());
    let req_before = fake.requests().len();
    let mut bot = BotProcess::start(dir.path(), &fake.base, poll_text);
    let up_in = killed_at.elapsed();
    let mut polled = 0;
    wait_until(killed_at + START_WAIT, &mut || {
        polled = fake.requests().len() - req_before;
        polled >= runs
    });
    println!(
        "  kill -9, then a new bot (pid {}) on the same store: up in {:.2} s, {polled} builds polled {:.2} s after the kill",
        bot.pid,
        up_in.as_secs_f64(),
        killed_at.elapsed().as_secs_f64()
    );
    std::thread::sleep(settle);
    let restarted = Loaded {
        quiet: measure(&mut bot, &fake, window, false),
        probing: measure(&mut bot, &fake, window, true),
    };
    report_window(
        &format!("{runs} builds followed again after the restart, nothing typed"),
        &restarted.quiet,
    );
    report_window(
        &format!(
            "{runs} builds followed again after the restart, /help and /runs typed every 50 ms"
        ),
        &restarted.probing,
    );
    println!(
        "  builds still running on the fake: {}; bot resident {}",
        fake.builds(JENKINS_JOB)
            .iter()
            .filter(|b| b.building)
            .count(),
        proc_status_mib(bot.pid, "VmRSS")
    );

    // 5. The builds end, spread as they started: build i ends `d` after its
    // start, the first one now.
    let pid = bot.pid.to_string();
    let d = typed_at.elapsed().saturating_sub(QUEUE_DELAY);
    let ending_at = Instant::now();
    fake.set_job(JENKINS_JOB, "SUCCESS", d, "building the web app\n");
    let (cpu0, th0) = (process_cpu(&pid), cpu_by_thread(&pid));
    let end_deadline = ending_at + all_running + END_WAIT;
    let posts = bot.posts.clone();
    let ending = bot.probe(END_WAIT + all_running, &|| {
        posts.lock().expect("posts").final_count() >= runs || Instant::now() >= end_deadline
    });
    wait_until(end_deadline, &mut || bot.posts().final_count() >= runs);
    let ended_in = ending_at.elapsed();
    let (cpu1, th1) = (process_cpu(&pid), cpu_by_thread(&pid));
    let builds = fake.builds(JENKINS_JOB);
    let fake_ok = builds.len() == runs
        && builds
            .iter()
            .all(|b| !b.building && b.result.as_deref() == Some("SUCCESS"));
    let posted = bot.posts().summary();
    let posted_ok = bot.posts().count("succeeded") == runs;
    println!(
        "  builds ending (spread over {:.1} s): all seen ended by the bot after {:.2} s; bot CPU {:.2} s = {:.1} % of one core ({})",
        all_running.as_secs_f64(),
        ended_in.as_secs_f64(),
        cpu1.saturating_sub(cpu0).as_secs_f64(),
        100.0 * cpu1.saturating_sub(cpu0).as_secs_f64() / ended_in.as_secs_f64(),
        threads_used(&th0, &th1),
    );
    report_probe("    while they end, ", &ending);
    println!(
        "  fake Jenkins: {} builds, {} ended SUCCESS, {} still building; the second bot's last posts in #ops: {posted}",
        builds.len(),
        builds
            .iter()
            .filter(|b| b.result.as_deref() == Some("SUCCESS"))
            .count(),
        builds.iter().filter(|b| b.building).count(),
    );

    // End of input: the bot exits; its store says how every run ended.
    let (status, took) = bot.finish();
    match status {
        Some(s) => println!(
            "  bot exit after end of input: {s} in {:.2} s",
            took.as_secs_f64()
        ),
        None => println!("  bot did NOT exit within {EXIT_WAIT:?} of end of input; killed it"),
    }
    let logs = bot
        .stderr
        .take()
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    print_logs("second bot", &logs);
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    let store_ok = match opsbot::store::Store::open(&dir.path().join("data")) {
        Ok(store) => {
            for r in store.runs() {
                let state = r.map_or_else(|e| format!("unreadable ({e})"), |r| r.state.to_string());
                *stored.entry(state).or_default() += 1;
            }
            stored.get("succeeded").copied() == Some(runs) && stored.len() == 1
        }
        Err(e) => {
            println!("  cannot open the bot's store: {e}");
            false
        }
    };
    println!(
        "  bot's store after exit: {}",
        stored
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let unexpected = fake.take_unexpected();
    if !unexpected.is_empty() {
        println!(
            "  fake Jenkins got {} unexpected requests, first: {:?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(3)]
        );
    }
    let all_succeeded =
        fake_ok && posted_ok && store_ok && unexpected.is_empty() && status.is_some();
    println!(
        "  every run ended succeeded (fake, posts, store): {}",
        if all_succeeded { "yes" } else { "NO" }
    );
    Outcome {
        poll: poll_text.to_string(),
        runs,
        idle_quiet,
        idle_probe,
        typed,
        restarted,
        all_succeeded,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(500)
        .max(1);
    let mut polls: Vec<String> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err() && humantime::parse_duration(a).is_ok())
        .cloned()
        .collect();
    if polls.is_empty() {
        polls = vec!["2s".into(), "1s".into()];
    }
    println!("machine: {}", machine());
    let outcomes: Vec<Outcome> = polls.iter().map(|p| bench(runs, p)).collect();

    println!();
    println!(
        "summary (targets: /help p99 under {} with the builds in flight; polling under {TARGET_CPU_PCT} % of one core):",
        ms(TARGET_P99)
    );
    let help_p99 = |w: &Window| w.probed.as_ref().map_or(Duration::ZERO, |p| p99(&p.help));
    let runs_p99 = |w: &Window| w.probed.as_ref().map_or(Duration::ZERO, |p| p99(&p.runs));
    for o in &outcomes {
        for (case, l) in [
            ("as typed", &o.typed),
            ("after a restart (lockstep)", &o.restarted),
        ] {
            let polling = l.quiet.cpu_pct() - o.idle_quiet.cpu_pct();
            println!(
                "  poll {}, {} builds {case}: polling {:.2} % of one core (quiet {:.2} → {:.2} %; typing {:.2} → {:.2} %), {:.1} Jenkins requests/s, at most {} sockets; /help p99 {} → {}, /runs p99 {} → {}: latency {}, CPU {}",
                o.poll,
                o.runs,
                polling,
                o.idle_quiet.cpu_pct(),
                l.quiet.cpu_pct(),
                o.idle_probe.cpu_pct(),
                l.probing.cpu_pct(),
                l.quiet.req_per_sec(),
                l.quiet.peak_sockets.max(l.probing.peak_sockets),
                ms(help_p99(&o.idle_probe)),
                ms(help_p99(&l.probing)),
                ms(runs_p99(&o.idle_probe)),
                ms(runs_p99(&l.probing)),
                if help_p99(&l.probing) < TARGET_P99 {
                    "met"
                } else {
                    "NOT met"
                },
                if polling < TARGET_CPU_PCT {
                    "met"
                } else {
                    "NOT met"
                },
            );
        }
        println!(
            "  poll {}: every run ended succeeded: {}",
            o.poll,
            if o.all_succeeded { "yes" } else { "NO" }
        );
    }
    if outcomes.iter().any(|o| !o.all_succeeded) {
        std::process::exit(1);
    }
}
