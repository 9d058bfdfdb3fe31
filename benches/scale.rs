//! Speed at a million tickets: whether what a command, a scrape or a start
//! costs stays the same as the store grows.
//!
//! One sled store is grown in place to each size asked (default 1,000,
//! 100,000 and 1,000,000 tickets), straight through the library: this
//! process opens the store and commits the tickets in bulk with
//! [`Store::apply_batch`] (2,000 tickets per transaction, each ticket with
//! its two timeline entries, its indexes, counts and figures written by the
//! store's own ticket write, as a batch of the commit thread writes them),
//! then closes it. At each size the real bot (`opsbot console --json`, the
//! release build, as `alert_storm` starts it) is started on that store and
//! this bench reports:
//!
//! - startup: spawn → `listening on` (HTTP answering), → `/readyz` 200, →
//!   the first console line answered;
//! - console commands, one at a time, each followed by a line the console
//!   answers at once (so that the next command is read at once): `/ticket
//!   list` (first page, a filtered page, a deep page), `/ticket show`,
//!   `open`, `comment`, `take`, p50/p99 of write → first line of answer;
//! - `/metrics` and `GET /api/v1/tickets` (first page, filtered, deep);
//! - the bot's memory (VmRSS, VmHWM) idle and after the commands;
//! - the data folder's size per ticket;
//! - the outbox with a backlog: the bot is stopped, the backlog's posts are
//!   committed to the store (as the commit thread would), the bot started
//!   again, and the time and the bot's CPU from the first post printed to
//!   the last, per post.
//!
//! Run: `cargo bench --bench scale` (options: `-- SIZE…`, such as
//! `-- 1000 10000` for a quick run). Environment:
//! - `OPSBOT_SCALE_STORE=DIR`: the store lives in DIR and is kept (a later
//!   run grows it further); default a temporary folder;
//! - `OPSBOT_SCALE_BIN=PATH`: the bot binary to start (an older build, for
//!   a before/after); default this build's;
//! - `OPSBOT_SCALE_SAMPLES=N`: commands and requests of each kind (100);
//! - `OPSBOT_SCALE_BACKLOG=N,M`: the outbox backlogs (`1000,100000`; `0`:
//!   none).
//!
//! Loopback only; the bot is killed if the bench stops early.

mod common;
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
use common::{cpu_by_thread, machine, ms, percentile};

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opsbot::domain::rich::Rich;
use opsbot::domain::{ChannelName, Ticket, TicketId, TimelineEntry};
use opsbot::engine::{Effect, Post, View, Write};
use opsbot::store::Store;

const TOKEN: &str = "scale-bench-token";
const API_TOKEN: &str = "scale-bench-api-token";
/// Tickets per transaction while growing the store.
const CHUNK: u64 = 2_000;
/// How long any one answer is waited for.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// The line typed after each command: the console answers it at once,
/// without the engine, so its answer says the console reads again.
const SENTINEL: &str = ":as";
const SENTINEL_ANSWER: &str = "`:as` needs a person's name";
const TEAMS: [(&str, &[&str]); 3] = [
    ("backend", &["bob", "bella"]),
    ("infra", &["ivan"]),
    ("qa", &["quinn"]),
];

fn samples() -> usize {
    std::env::var("OPSBOT_SCALE_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .max(1)
}

fn backlogs() -> Vec<usize> {
    match std::env::var("OPSBOT_SCALE_BACKLOG") {
        Ok(v) if !v.is_empty() => v
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|n| *n > 0)
            .collect(),
        _ => vec![1_000, 100_000],
    }
}

fn bot_binary() -> PathBuf {
    std::env::var_os("OPSBOT_SCALE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_opsbot")))
}

/// Ticket `n` of the generated store: 60% closed, the rest open, assigned,
/// in progress or resolved; teams in turn, assignees among their members;
/// no deadline left to fire (so that no timer wakes for old tickets).
fn ticket(n: u64) -> (Ticket, Vec<TimelineEntry>) {
    let (team, members) = TEAMS[(n % 3) as usize];
    let state = match n % 10 {
        0..=5 => "closed",
        6 => "open",
        7 => "assigned",
        8 => "in_progress",
        _ => "resolved",
    };
    let created = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("a date")
        .with_timezone(&chrono::Utc)
        + chrono::Duration::seconds(n as i64 * 30);
    let at = |secs: i64| (created + chrono::Duration::seconds(secs)).to_rfc3339();
    let priority = ["p1", "p2", "p3", "p3", "p4"][(n % 5) as usize];
    let mut v = serde_json::json!({
        "id": format!("OPS-{n}"),
        "title": format!("Checkout returns 502 for some customers (case {n})"),
        "description": "Since the 14:00 deploy, about 3% of checkouts fail with a 502 from the gateway.",
        "priority": priority,
        "state": state,
        "team": team,
        "opened_by": "olivia",
        "source": "console",
        "channel": "ops",
        "created_at": at(0),
        "updated_at": at(3600),
        "timeline_len": 2,
    });
    if state != "open" {
        v["assignee"] = members[(n as usize / 3) % members.len()].into();
        v["sla"] = serde_json::json!({ "acked_at": at(600) });
    }
    if matches!(state, "closed" | "resolved") {
        v["sla"]["resolved_at"] = at(3600).into();
        v["resolution"] = "Rolled back the gateway's config".into();
    }
    let t: Ticket = serde_json::from_value(v).expect("a ticket");
    let entries = vec![
        serde_json::json!({"seq": 0, "at": at(0), "actor": "olivia", "source": "console",
            "kind": "opened", "to": "open", "text": "opened"}),
        serde_json::json!({"seq": 1, "at": at(1800), "actor": members[0], "source": "console",
            "kind": "commented", "text": "Looking at the gateway's logs; the 502s started at 14:02."}),
    ]
    .into_iter()
    .map(|e| serde_json::from_value(e).expect("an entry"))
    .collect();
    (t, entries)
}

/// Grows the store in `data` to `to` tickets; returns how many it held.
fn grow(data: &Path, to: u64) -> u64 {
    let store = Store::open(data).expect("open the store");
    let from = store.last_ticket_number().expect("the last ticket number");
    if from >= to {
        return from;
    }
    let t0 = Instant::now();
    let mut n = from + 1;
    while n <= to {
        let end = (n + CHUNK - 1).min(to);
        let nums: Vec<u64> = (n..=end).collect();
        store
            .apply_batch(
                &nums,
                |_, &n| {
                    let (t, entries) = ticket(n);
                    let id = t.id.clone();
                    let mut w = vec![Write::Ticket(t)];
                    w.extend(entries.into_iter().map(|e| Write::Timeline(id.clone(), e)));
                    Ok((w, ()))
                },
                chrono::Utc::now,
            )
            .expect("a batch of tickets");
        n = end + 1;
    }
    store.flush().expect("flush");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "  grown from {from} to {to} tickets in {secs:.1} s ({:.0} tickets/s, through Store::apply_batch)",
        (to - from) as f64 / secs
    );
    from
}

/// Commits `n` chat posts to the outbox of the store in `data`.
fn add_backlog(data: &Path, n: usize) {
    let store = Store::open(data).expect("open the store");
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK as usize).min(n);
        let items: Vec<usize> = (i..end).collect();
        store
            .apply_batch(
                &items,
                |_, &i| {
                    let post = Post {
                        channel: ChannelName::parse(["ops", "backend", "infra", "qa"][i % 4])
                            .expect("a channel"),
                        ticket: Some(TicketId::new("OPS", 1 + i as u64 % 1000)),
                        thread: false,
                        body: Rich::from(format!("backlog post {i}: the gateway answers again")),
                        alert: false,
                        replaces: None,
                        card: None,
                        ask: None,
                        file: None,
                    };
                    Ok((vec![Write::Effect(Effect::Post(post))], ()))
                },
                chrono::Utc::now,
            )
            .expect("a batch of posts");
        i = end;
    }
    store.flush().expect("flush");
}

/// Bytes the files under `dir` take on disk.
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += disk_bytes(&e.path());
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(
        || "unknown".into(),
        |kb| format!("{:.0} MiB", kb as f64 / 1024.0),
    )
}

/// What the bot printed, line by line, with when.
type Lines = mpsc::Receiver<(Instant, String)>;

struct Bot {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: u32,
    base: String,
    lines: Lines,
    spawned: Instant,
    listening: Duration,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Bot {
    fn start(dir: &Path, data: &Path) -> Bot {
        let text = kit::shipped_config().replacen(
            "path = \"data\"",
            &format!("path = {:?}", data.display().to_string()),
            1,
        );
        let config = kit::write_config(dir, &text);
        common::link_commands(dir);
        let mut cmd = Command::new(bot_binary());
        cmd.arg("console")
            .arg("--json")
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("OPSBOT_CONFIG")
            .env("RUST_LOG", "warn")
            .env("OPSBOT_HOOK_TOKEN", TOKEN)
            .env("OPSBOT_API_TOKEN", API_TOKEN)
            .env("OPSBOT_SUPPORT_SECRET", "scale-bench-support")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("spawn opsbot console");
        let pid = child.id();
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if tx.send((Instant::now(), line.clone())).is_err() {
                    break;
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
                    let _ = addr_tx.send((Instant::now(), addr.to_string()));
                } else {
                    others.push(line.trim_end().to_string());
                }
                line.clear();
            }
            others
        });
        let mut bot = Bot {
            child: Some(child),
            stdin,
            pid,
            base: String::new(),
            lines,
            spawned,
            listening: Duration::ZERO,
            stderr: Some(stderr),
        };
        match addr_rx.recv_timeout(Duration::from_secs(300)) {
            Ok((at, base)) => {
                bot.base = base;
                bot.listening = at - spawned;
            }
            Err(_) => {
                drop(bot.child.take().map(|mut c| c.kill()));
                let err = bot.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!("the bot did not start listening: {err:?}");
            }
        }
        bot
    }

    fn type_line(&mut self, line: &str) -> Instant {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the console");
        stdin.flush().expect("flush the console");
        Instant::now()
    }

    /// Waits for a line that `is` says is the one; returns when it came.
    fn wait_for(&self, is: &dyn Fn(&str) -> bool) -> (Instant, String) {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, l)) if is(&l) => return (at, l),
                Ok(_) => {}
                Err(_) => panic!("no answer within {ANSWER_TIMEOUT:?}"),
            }
        }
    }

    /// Types the sentinel and waits for its answer (the console reads again).
    fn settle(&mut self) -> Instant {
        self.type_line(SENTINEL);
        self.wait_for(&|l| l.contains(SENTINEL_ANSWER)).0
    }

    /// Types `line`: the time to the first line of its answer, and that line.
    fn command(&mut self, line: &str) -> (Duration, String) {
        let t0 = self.type_line(line);
        let (at, answer) = self.wait_for(&|_| true);
        self.settle();
        (at - t0, answer)
    }

    /// Ends the input and waits for the bot to exit.
    fn stop(mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let t0 = Instant::now();
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if t0.elapsed() < Duration::from_secs(120) => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        println!("  the bot did not exit within 120 s of end of input; killed it");
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
        let logs = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let logs: Vec<&String> = logs.iter().filter(|l| !l.trim().is_empty()).collect();
        if !logs.is_empty() {
            println!("  bot stderr: {} lines, first ones:", logs.len());
            for l in logs.iter().take(3) {
                println!("    {}", l.chars().take(300).collect::<String>());
            }
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(ANSWER_TIMEOUT)
        .no_proxy()
        .build()
        .expect("client")
}

fn get(c: &reqwest::blocking::Client, base: &str, path: &str) -> (Duration, u16, String) {
    let t0 = Instant::now();
    let token = if path.starts_with("/api/") {
        API_TOKEN
    } else {
        TOKEN
    };
    match c.get(format!("{base}{path}")).bearer_auth(token).send() {
        Ok(r) => {
            let code = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            (t0.elapsed(), code, body)
        }
        Err(e) => (t0.elapsed(), 0, e.to_string()),
    }
}

fn line(what: &str, mut lat: Vec<Duration>, note: &str) {
    lat.sort();
    println!(
        "  {what:<34} p50 {:>9}, p99 {:>9}, max {:>9} ({} samples){note}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
        lat.len(),
    );
}

/// The reply's text, from a `--json` line.
fn text_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_string))
        .unwrap_or_else(|| line.trim().to_string())
}

fn session(dir: &Path, data: &Path, tickets: u64) {
    let n = samples();
    let bytes = disk_bytes(data);
    println!(
        "  data folder: {:.1} MiB on disk, {:.0} bytes per ticket",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / tickets.max(1) as f64
    );
    let mut bot = Bot::start(dir, data);
    let c = client();
    let mut ready = None;
    while bot.spawned.elapsed() < Duration::from_secs(300) {
        if get(&c, &bot.base, "/readyz").1 == 200 {
            ready = Some(bot.spawned.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = bot.settle() - bot.spawned;
    println!(
        "  startup: listening (HTTP answering) {}, /readyz 200 {}, first console line answered {}",
        ms(bot.listening),
        ready.map_or("never".into(), ms),
        ms(first)
    );
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, hwm0) = (
        proc_status_kb(bot.pid, "VmRSS"),
        proc_status_kb(bot.pid, "VmHWM"),
    );
    println!("  memory idle: VmRSS {}, VmHWM {}", mib(rss0), mib(hwm0));
    let cpu0 = cpu_by_thread(&bot.pid.to_string());

    // Queries first, on the store as grown.
    // 40% not closed, 25 to a page: the middle page.
    let deep = (tickets * 4 / 10 / 25 / 2).max(1);
    let mut rng = fastrand::Rng::with_seed(tickets);
    let mut sample = |what: &str, make: &mut dyn FnMut(usize) -> String, check: &str| {
        let mut lat = Vec::with_capacity(n);
        let mut bad = 0;
        let mut shown = String::new();
        for i in 0..n {
            let (d, answer) = bot.command(&make(i));
            if !check.is_empty() && !answer.contains(check) {
                bad += 1;
                if shown.is_empty() {
                    shown = text_of(&answer).chars().take(160).collect();
                }
            }
            lat.push(d);
        }
        let note = if bad > 0 {
            format!("; {bad} answers unexpected, such as: {shown}")
        } else {
            String::new()
        };
        line(what, lat, &note);
    };
    sample(
        "/ticket list (first page)",
        &mut |_| "/ticket list".into(),
        "OPS-",
    );
    sample(
        "/ticket list team:backend state:open",
        &mut |_| "/ticket list team:backend state:open".into(),
        "OPS-",
    );
    sample(
        &format!("/ticket list page:{deep} (deep)"),
        &mut |_| format!("/ticket list page:{deep}"),
        "OPS-",
    );
    sample(
        "/ticket show (any ticket)",
        &mut |_| format!("/ticket show id:OPS-{}", rng.u64(1..=tickets)),
        "OPS-",
    );
    sample(
        "/ticket open",
        &mut |i| format!("/ticket open title:\"scale probe {i}\" team:backend priority:p3"),
        "OPS-",
    );
    // Comments and takes on tickets of the grown store, spread over it.
    sample(
        "/ticket comment",
        &mut |_| {
            format!(
                "/ticket comment id:OPS-{} text:\"still seen on the gateway\"",
                rng.u64(1..=tickets)
            )
        },
        "",
    );
    // Open tickets of team backend are numbers 6 mod 30 (n % 10 == 6,
    // n % 3 == 0): taken as olivia, an operator.
    let open_backend: Vec<u64> = (0..tickets / 30).map(|k| k * 30 + 6).collect();
    sample(
        "/ticket take",
        &mut |i| {
            let k = open_backend
                .get((i * 7919) % open_backend.len().max(1))
                .copied()
                .unwrap_or(1);
            format!("/ticket take id:OPS-{k}")
        },
        "",
    );

    let http = |what: &str, path: &str| {
        let mut lat = Vec::with_capacity(n);
        let mut bad = 0;
        let mut size = 0;
        for _ in 0..n {
            let (d, code, body) = get(&c, &bot.base, path);
            if code != 200 {
                bad += 1;
            }
            size = body.len();
            lat.push(d);
        }
        let note = if bad > 0 {
            format!("; {bad} not 200")
        } else {
            format!("; {size} bytes")
        };
        line(what, lat, &note);
    };
    http("GET /metrics", "/metrics");
    http("GET /api/v1/tickets", "/api/v1/tickets");
    http(
        "GET /api/v1/tickets?team&state",
        "/api/v1/tickets?team=backend&state=open",
    );
    let api_deep = (tickets * 4 / 10 / 25 / 2).max(1);
    http(
        &format!("GET /api/v1/tickets?page={api_deep}"),
        &format!("/api/v1/tickets?page={api_deep}"),
    );
    let cpu1 = cpu_by_thread(&bot.pid.to_string());
    let used: Duration = cpu1.values().sum::<Duration>() - cpu0.values().sum::<Duration>();
    println!(
        "  memory after the commands: VmRSS {}, VmHWM {}; bot CPU for them {:.2} s",
        mib(proc_status_kb(bot.pid, "VmRSS")),
        mib(proc_status_kb(bot.pid, "VmHWM")),
        used.as_secs_f64()
    );
    bot.stop();
}

/// The outbox with `backlog` posts waiting when the bot starts.
fn drain(dir: &Path, data: &Path, backlog: usize) {
    add_backlog(data, backlog);
    let mut bot = Bot::start(dir, data);
    let cpu0 = cpu_by_thread(&bot.pid.to_string());
    let mut seen = 0;
    let mut first = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < backlog && Instant::now() < deadline {
        match bot.lines.recv_timeout(Duration::from_secs(30)) {
            Ok((at, l)) if l.contains("backlog post") => {
                seen += 1;
                first.get_or_insert(at);
                last = at;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let cpu1 = cpu_by_thread(&bot.pid.to_string());
    let hwm = proc_status_kb(bot.pid, "VmHWM");
    let _ = bot.settle();
    let used: Duration = cpu1.values().sum::<Duration>() - cpu0.values().sum::<Duration>();
    let span = first.map_or(Duration::ZERO, |f| last - f);
    println!(
        "  outbox backlog {backlog}: {seen} delivered; first {} after spawn, then {:.1} µs per post ({:.0} posts/s), bot CPU {:.1} µs per post; VmHWM {}",
        first.map_or("never".into(), |f| ms(f - bot.spawned)),
        span.as_secs_f64() * 1e6 / seen.max(1) as f64,
        seen as f64 / span.as_secs_f64().max(1e-9),
        used.as_secs_f64() * 1e6 / seen.max(1) as f64,
        mib(hwm),
    );
    bot.stop();
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let mut sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![1_000, 100_000, 1_000_000];
    }
    sizes.sort();
    println!("machine: {}", machine());
    println!("bot: {}", bot_binary().display());
    let tmp = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let data = std::env::var_os("OPSBOT_SCALE_STORE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("data"));
    println!("store: {}", data.display());
    for size in sizes {
        println!("\n== {size} tickets (load average {})", load_average());
        grow(&data, size);
        let tickets = Store::open(&data)
            .expect("open")
            .last_ticket_number()
            .expect("count");
        let dir = tempfile::tempdir().expect("bot dir");
        session(dir.path(), &data, tickets);
        for b in backlogs() {
            drain(dir.path(), &data, b);
        }
    }
}
