//! The customer-support intake under load: signed `POST /api/v1/support`
//! requests against the real bot (`opsbot console` as its own process, HTTP
//! intake on a loopback port), each checked with a fake company app that runs
//! in this process (axum, `GET /sessions/{id}`, 1,000 sessions of 1,000
//! customers). Every 201 is sent only after the ticket and its queued
//! acknowledgement mail are committed and flushed by sled.
//!
//! For each number of concurrent keep-alive clients (1, 32, 64) a fresh bot
//! gets a short warm-up, then the measured requests; the report gives
//! requests/s, p50/p99/max latency seen by the client, the non-201 answers
//! (must be 0), and the CPU time per request of the bot (by thread), of the
//! fake app and of the load generator. To show where the time goes, the same
//! clients then send requests that stop early in the bot: signed requests for
//! sessions the app does not know (session check, 403, nothing stored) and
//! badly signed ones (401: HTTP, body and HMAC only). The session check alone
//! (this process straight to the fake app) is measured too.
//!
//! The rate limits are raised to 1,000,000 so that they refuse nothing. The
//! SMTP port points where nothing listens: acknowledgement mails stay queued
//! (the bot warns once), as with a mail server that is down.
//!
//! Bounded: a fixed number of requests per phase, and a deadline per phase
//! after which the clients stop and what was measured is reported. Loopback
//! only.
//!
//! Run: `cargo bench --bench support_intake` (options: `-- REQUESTS
//! [CLIENTS...]`, default 20000 requests, clients 1 32 64; a single client
//! sends a tenth of REQUESTS).

mod common;
// The integration tests' kit (the shipped config, the console command);
// the bench uses a part of it.
#[allow(dead_code)]
#[path = "../tests/it/kit.rs"]
mod kit;
use common::{machine, ms, percentile};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hmac::{Hmac, Mac};

const SECRET: &str = "support-intake-bench-secret";
/// Distinct sessions (one customer each) the fake app knows.
const SESSIONS: usize = 1_000;
/// Signed requests sent before each measured run (new connections, first
/// sled pages), not counted.
const WARMUP: usize = 500;
/// A phase stops sending after this long, whatever is left.
const PHASE_DEADLINE: Duration = Duration::from_secs(180);
/// One request may take at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the bot may take to exit after end of input.
const EXIT_WAIT: Duration = Duration::from_secs(60);
const MESSAGE: &str = "Since this morning the login page says my password is wrong, \
although I reset it twice. I use the app on Android and on the web; both fail. \
Order 1182 is waiting for me to confirm it. Please help.";

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

// ---------------------------------------------------------------------------
// CPU time, from /proc (Linux): user + system ticks per process and thread.

/// Clock ticks per second of the `/proc` CPU times.
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The name and user + system ticks of a `/proc/.../stat` text.
fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU ticks of a process (`pid` or "self"), in all and by thread name.
#[derive(Default, Clone)]
struct Cpu {
    total: u64,
    threads: BTreeMap<String, u64>,
}

fn thread_group(name: &str) -> String {
    if name.starts_with("tokio-r") {
        "tokio workers".into()
    } else if name.starts_with("sled") {
        "sled".into()
    } else {
        name.to_string()
    }
}

fn cpu_of(pid: &str) -> Cpu {
    let mut cpu = Cpu {
        total: std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_ticks(&s))
            .map_or(0, |(_, t)| t),
        threads: BTreeMap::new(),
    };
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in dir.flatten() {
            if let Some((name, t)) = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|s| stat_ticks(&s))
            {
                *cpu.threads.entry(thread_group(&name)).or_default() += t;
            }
        }
    }
    cpu
}

fn cpu_delta(before: &Cpu, after: &Cpu) -> Cpu {
    Cpu {
        total: after.total.saturating_sub(before.total),
        threads: after
            .threads
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.saturating_sub(before.threads.get(k).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect(),
    }
}

/// CPU of the bot and of this process (fake app thread and the rest) over
/// one phase.
struct CpuMeter {
    bot_pid: Option<String>,
    bot: Cpu,
    bench: Cpu,
}

impl CpuMeter {
    fn start(bot_pid: Option<u32>) -> CpuMeter {
        let bot_pid = bot_pid.map(|p| p.to_string());
        CpuMeter {
            bot: bot_pid.as_deref().map(cpu_of).unwrap_or_default(),
            bench: cpu_of("self"),
            bot_pid,
        }
    }

    /// "CPU per request: …" for `n` requests over `elapsed`.
    fn report(&self, n: usize, elapsed: Duration) -> String {
        let tck = clk_tck();
        let per = |ticks: u64| ticks as f64 / tck / n.max(1) as f64 * 1e6;
        let bench = cpu_delta(&self.bench, &cpu_of("self"));
        let app = bench.threads.get("fake-app").copied().unwrap_or(0);
        let loadgen = bench.total.saturating_sub(app);
        let mut line = String::from("CPU per request:");
        let mut busy = bench.total;
        if let Some(pid) = &self.bot_pid {
            let bot = cpu_delta(&self.bot, &cpu_of(pid));
            busy += bot.total;
            let mut parts: Vec<(String, u64)> = bot.threads.into_iter().collect();
            parts.sort_by_key(|p| std::cmp::Reverse(p.1));
            let parts: Vec<String> = parts
                .iter()
                .map(|(k, v)| format!("{k} {:.0}", per(*v)))
                .collect();
            line += &format!(" bot {:.0} µs ({})", per(bot.total), parts.join(", "));
            line += ";";
        }
        line += &format!(
            " fake app {:.0} µs; load generator {:.0} µs; both cores {:.0}% busy with these",
            per(app),
            per(loadgen),
            busy as f64 / tck / (elapsed.as_secs_f64() * cores()) * 100.0
        );
        line
    }
}

// ---------------------------------------------------------------------------
// The fake company app.

struct FakeApp {
    base: String,
    calls: Arc<AtomicUsize>,
}

impl FakeApp {
    /// Serves `GET /sessions/{id}` on a loopback port, on its own thread
    /// ("fake-app") with a single-threaded runtime. Known sessions answer a
    /// prepared JSON body; others 404.
    fn start() -> FakeApp {
        use axum::extract::{Path, State};
        use axum::http::{header, StatusCode};
        use axum::response::{IntoResponse, Response};
        use axum::routing::get;
        use axum::Router;

        let sessions: HashMap<String, Bytes> = (0..SESSIONS)
            .map(|i| {
                let body = serde_json::json!({
                    "email": format!("customer{i}@example.com"),
                    "customer_id": format!("cust-{i}"),
                });
                (session_id(i), Bytes::from(body.to_string()))
            })
            .collect();
        let calls = Arc::new(AtomicUsize::new(0));
        type S = (Arc<HashMap<String, Bytes>>, Arc<AtomicUsize>);
        async fn session(State((sessions, calls)): State<S>, Path(id): Path<String>) -> Response {
            calls.fetch_add(1, Ordering::Relaxed);
            match sessions.get(&id) {
                Some(b) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    b.clone(),
                )
                    .into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"error":"no such session"}"#,
                )
                    .into_response(),
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake app");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let state: S = (Arc::new(sessions), calls.clone());
        std::thread::Builder::new()
            .name("fake-app".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let app = Router::new()
                        .route("/sessions/{id}", get(session))
                        .with_state(state);
                    let _ = axum::serve(listener, app).await;
                });
            })
            .expect("fake app thread");
        FakeApp {
            base: format!("http://{addr}/sessions"),
            calls,
        }
    }
}

fn session_id(i: usize) -> String {
    format!("sess-{i:04}")
}

// ---------------------------------------------------------------------------
// The bot process.

/// The bot process, killed if the bench stops before closing it.
struct BotProcess {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: u32,
    base: String,
    _dir: tempfile::TempDir,
    stdout_lines: Arc<AtomicUsize>,
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

/// A loopback port where nothing listens (bound, then let go).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl BotProcess {
    /// Starts `opsbot console` in a fresh folder, with the shipped config
    /// pointed at the fake app and the rate limits raised.
    fn start(session_url: &str) -> BotProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let shipped = kit::shipped_config();
        let mut doc: toml_edit::DocumentMut = shipped.parse().expect("parse the shipped bot.toml");
        doc["support"]["session_url"] = toml_edit::value(session_url);
        doc["support"]["per_customer_per_hour"] = toml_edit::value(1_000_000i64);
        doc["support"]["per_minute"] = toml_edit::value(1_000_000i64);
        doc["smtp"]["host"] = toml_edit::value("127.0.0.1");
        doc["smtp"]["port"] = toml_edit::value(i64::from(dead_port()));
        let config = kit::write_config(dir.path(), &doc.to_string());
        // The shipped jobs, which the shipped services name.
        common::link_commands(dir.path());
        let mut child = kit::console(dir.path(), &config)
            .env("OPSBOT_SUPPORT_SECRET", SECRET)
            // Not used; set so that the bot does not warn that it is missing.
            .env("OPSBOT_HOOK_TOKEN", "support-intake-bench-unused")
            .spawn()
            .expect("spawn opsbot console");
        let pid = child.id();
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let stdout_lines = Arc::new(AtomicUsize::new(0));
        let lines = stdout_lines.clone();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                lines.fetch_add(1, Ordering::Relaxed);
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
            _dir: dir,
            stdout_lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => bot.base = base,
            Err(_) => {
                if let Some(mut c) = bot.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                let err = bot.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!("the bot did not start listening: {err:?}");
            }
        }
        bot
    }

    /// Closes stdin and waits for the bot to exit (it waits for queued mail
    /// first); kills it after `EXIT_WAIT`.
    fn stop(mut self) {
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
        match status {
            Some(s) => println!(
                "  bot exit after end of input: {s} in {:.2} s",
                t0.elapsed().as_secs_f64()
            ),
            None => println!("  bot did NOT exit within {EXIT_WAIT:?} of end of input; killed it"),
        }
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        let logs = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        println!(
            "  console output: {} lines; bot stderr: {} lines{}",
            self.stdout_lines.load(Ordering::Relaxed),
            logs.len(),
            if logs.is_empty() { "" } else { ", first ones:" }
        );
        for l in logs.iter().take(3) {
            println!("    {}", plain(l).chars().take(300).collect::<String>());
        }
        // What the bot left on disk: every ticket answered 201, and its
        // acknowledgement mail still queued (nothing listens for SMTP).
        match opsbot::store::Store::open(&self._dir.path().join("data")) {
            Ok(store) => println!(
                "  on disk after exit: {} tickets; {} customer mails and {} chat posts queued; {} dead letters",
                store.ticket_count(),
                store.queue_len(opsbot::store::Queue::Mail),
                store.queue_len(opsbot::store::Queue::Chat),
                store.dead_letters().map_or(0, |d| d.len()),
            ),
            Err(e) => println!("  cannot open the bot's store after exit: {e}"),
        }
    }
}

/// A log line without its terminal colours.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // `ESC [ … m`
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the bot's `/metrics` says: the support route's server-side request
/// count and time, tickets opened, effects queued.
#[derive(Default, Clone, Copy)]
struct BotMetrics {
    support_count: f64,
    support_seconds: f64,
    tickets_opened: f64,
    outbox_depth: f64,
}

fn bot_metrics(base: &str) -> Option<BotMetrics> {
    let text = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .ok()?
        .get(format!("{base}/metrics"))
        .send()
        .ok()?
        .text()
        .ok()?;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    Some(BotMetrics {
        support_count: value(
            "opsbot_http_request_duration_seconds_count{route=\"/api/v1/support\"}",
        ),
        support_seconds: value(
            "opsbot_http_request_duration_seconds_sum{route=\"/api/v1/support\"}",
        ),
        tickets_opened: value("opsbot_tickets_opened_total"),
        outbox_depth: value("opsbot_outbox_depth"),
    })
}

// ---------------------------------------------------------------------------
// Requests and the load generator.

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Signed, for a known session: a ticket (201).
    Signed,
    /// Signed, for a session the app does not know: 403, nothing stored.
    UnknownSession,
    /// Signed with the wrong secret: 401 before any session check.
    BadSignature,
}

impl Kind {
    fn expected(self) -> u16 {
        match self {
            Kind::Signed => 201,
            Kind::UnknownSession => 403,
            Kind::BadSignature => 401,
        }
    }
}

/// `sha256=HEX` of `TIMESTAMP.BODY`, as the app signs.
fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One support request, ready to send: body, timestamp, signature,
/// idempotency key.
struct SupportRequest {
    body: Bytes,
    timestamp: String,
    signature: String,
    key: String,
}

/// `n` distinct requests; request `i` is for session `i % SESSIONS`. Built
/// (and signed) before the clock starts.
fn support_requests(tag: &str, n: usize, kind: Kind) -> Vec<SupportRequest> {
    (0..n)
        .map(|i| {
            let session = match kind {
                Kind::UnknownSession => format!("gone-{tag}-{i}"),
                _ => session_id(i % SESSIONS),
            };
            let body = serde_json::json!({
                "session_id": session,
                "subject": format!("Cannot log in ({tag} #{i})"),
                "message": MESSAGE,
            })
            .to_string();
            let secret = if kind == Kind::BadSignature {
                "not-the-secret"
            } else {
                SECRET
            };
            // Signed when built: a run must end within the bot's 5 minutes.
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
                .to_string();
            SupportRequest {
                signature: sign(secret, &timestamp, body.as_bytes()),
                timestamp,
                body: Bytes::from(body),
                key: format!("{tag}-{i}"),
            }
        })
        .collect()
}

type MakeRequest = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

fn support_load(base: &str, requests: Vec<SupportRequest>) -> (usize, MakeRequest) {
    let url = format!("{base}/api/v1/support");
    let n = requests.len();
    let requests = Arc::new(requests);
    let make: MakeRequest = Arc::new(move |c: &reqwest::Client, i: usize| {
        let r = &requests[i];
        c.post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Opsbot-Timestamp", &r.timestamp)
            .header("X-Opsbot-Signature", &r.signature)
            .header("Idempotency-Key", &r.key)
            .body(r.body.clone())
    });
    (n, make)
}

#[derive(Default)]
struct LoadResult {
    latencies: Vec<Duration>,
    expected: usize,
    /// Other answers and errors, counted by status and text.
    others: BTreeMap<String, usize>,
    tickets: HashSet<String>,
    elapsed: Duration,
    deadline_hit: bool,
}

impl LoadResult {
    fn other_count(&self) -> usize {
        self.others.values().sum()
    }
}

/// Sends requests `0..n` made by `make` from `clients` concurrent keep-alive
/// connections, one thread for the load generator.
fn load(clients: usize, n: usize, expect: u16, make: MakeRequest) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(clients)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + PHASE_DEADLINE;
    let mut result = rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..clients {
            let (client, next, make) = (client.clone(), next.clone(), make.clone());
            handles.push(tokio::spawn(async move {
                let mut r = LoadResult {
                    latencies: Vec::with_capacity(n / clients + 1),
                    ..LoadResult::default()
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if Instant::now() >= deadline {
                        r.deadline_hit = true;
                        break;
                    }
                    let t0 = Instant::now();
                    let outcome = match make(&client, i).send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            match resp.text().await {
                                Ok(text) => Ok((status, text)),
                                Err(e) => Err(format!("{status}, body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("error: {e}")),
                    };
                    r.latencies.push(t0.elapsed());
                    match outcome {
                        Ok((status, text)) if status == expect => {
                            r.expected += 1;
                            if status == 201 {
                                let v: serde_json::Value =
                                    serde_json::from_str(&text).unwrap_or_default();
                                if let Some(t) = v["ticket"].as_str() {
                                    r.tickets.insert(t.to_string());
                                }
                            }
                        }
                        Ok((status, text)) => {
                            let text: String = text.chars().take(160).collect();
                            *r.others.entry(format!("{status} {text}")).or_default() += 1;
                        }
                        Err(e) => *r.others.entry(e).or_default() += 1,
                    }
                }
                r
            }));
        }
        let mut all = LoadResult::default();
        for h in handles {
            let r = h.await.expect("client task");
            all.latencies.extend(r.latencies);
            all.expected += r.expected;
            for (k, v) in r.others {
                *all.others.entry(k).or_default() += v;
            }
            all.tickets.extend(r.tickets);
            all.deadline_hit |= r.deadline_hit;
        }
        all
    });
    result.elapsed = started.elapsed();
    result.latencies.sort();
    result
}

/// Runs one measured phase and prints its lines.
fn phase(
    what: &str,
    clients: usize,
    expect: u16,
    (n, make): (usize, MakeRequest),
    bot_pid: Option<u32>,
) -> LoadResult {
    let meter = CpuMeter::start(bot_pid);
    let r = load(clients, n, expect, make);
    let secs = r.elapsed.as_secs_f64();
    let sent = r.latencies.len();
    println!(
        "  {what}, {clients} clients: {sent} requests in {secs:.2} s = {:.0} requests/s; {} answered {expect}, {} other{}",
        sent as f64 / secs,
        r.expected,
        r.other_count(),
        if r.deadline_hit {
            format!("; stopped at the {PHASE_DEADLINE:?} deadline")
        } else {
            String::new()
        }
    );
    println!(
        "    latency p50 {}, p99 {}, max {}",
        ms(percentile(&r.latencies, 0.50)),
        ms(percentile(&r.latencies, 0.99)),
        ms(*r.latencies.last().unwrap_or(&Duration::ZERO)),
    );
    println!("    {}", meter.report(sent, r.elapsed));
    for (e, count) in r.others.iter().take(5) {
        println!("    {count} × {e}");
    }
    r
}

fn main() {
    // `cargo bench` passes `--bench`; numbers given are ours.
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let requests = nums.first().copied().unwrap_or(20_000).max(1);
    let mut client_counts: Vec<usize> = nums.iter().skip(1).map(|c| (*c).max(1)).collect();
    if client_counts.is_empty() {
        client_counts = vec![1, 32, 64];
    }
    println!("machine: {}", machine());
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", loadavg().trim());
    let app = FakeApp::start();
    println!(
        "fake app: {} ({SESSIONS} sessions of {SESSIONS} customers)",
        app.base
    );

    // The session check alone: this process straight to the fake app.
    println!("session check alone (GET /sessions/{{id}} from the load generator, no bot):");
    for &clients in &client_counts {
        let n = if clients == 1 {
            requests / 10
        } else {
            requests
        }
        .max(1);
        let base = app.base.clone();
        let make: MakeRequest = Arc::new(move |c: &reqwest::Client, i: usize| {
            c.get(format!("{base}/{}", session_id(i % SESSIONS)))
        });
        phase("GET session", clients, 200, (n, make), None);
    }

    for &clients in &client_counts {
        let n = if clients == 1 {
            requests / 10
        } else {
            requests
        }
        .max(1);
        let bot = BotProcess::start(&app.base);
        println!(
            "support intake, {clients} clients, fresh bot (pid {} at {}):",
            bot.pid, bot.base
        );
        let tag = format!("c{clients}");
        let warm = load(
            clients,
            WARMUP,
            201,
            support_load(
                &bot.base,
                support_requests(&format!("{tag}-warm"), WARMUP, Kind::Signed),
            )
            .1,
        );
        if warm.other_count() > 0 {
            println!(
                "  warm-up: {} of {WARMUP} not 201: {:?}",
                warm.other_count(),
                warm.others.iter().take(3).collect::<Vec<_>>()
            );
        }

        let calls_before = app.calls.load(Ordering::Relaxed);
        let metrics_before = bot_metrics(&bot.base).unwrap_or_default();
        let signed = phase(
            "signed requests → 201 (session check + ticket + queued mail, flushed)",
            clients,
            201,
            support_load(&bot.base, support_requests(&tag, n, Kind::Signed)),
            Some(bot.pid),
        );
        let calls = app.calls.load(Ordering::Relaxed) - calls_before;
        let metrics_after = bot_metrics(&bot.base).unwrap_or_default();
        println!(
            "    {} distinct tickets in the 201 answers (+{} from the warm-up); {calls} session checks at the app for {} requests: {}",
            signed.tickets.len(),
            warm.tickets.len(),
            signed.latencies.len(),
            if signed.tickets.len() == signed.expected && calls == signed.latencies.len() {
                "ok"
            } else {
                "MISMATCH"
            }
        );
        let served = metrics_after.support_count - metrics_before.support_count;
        let mean_client =
            signed.latencies.iter().sum::<Duration>() / signed.latencies.len().max(1) as u32;
        println!(
            "    mean latency {} at the client, {:.2} ms inside the bot (its /metrics, {served} requests); bot /metrics: opsbot_tickets_opened_total {}, opsbot_outbox_depth {}",
            ms(mean_client),
            (metrics_after.support_seconds - metrics_before.support_seconds) / served * 1000.0,
            metrics_after.tickets_opened,
            metrics_after.outbox_depth,
        );
        phase(
            "unknown session → 403 (signature + session check, nothing stored)",
            clients,
            Kind::UnknownSession.expected(),
            support_load(
                &bot.base,
                support_requests(&format!("{tag}-gone"), n, Kind::UnknownSession),
            ),
            Some(bot.pid),
        );
        phase(
            "bad signature → 401 (HTTP + body + HMAC only)",
            clients,
            Kind::BadSignature.expected(),
            support_load(
                &bot.base,
                support_requests(&format!("{tag}-bad"), n, Kind::BadSignature),
            ),
            Some(bot.pid),
        );
        bot.stop();
    }
    println!("load average at end: {}", loadavg().trim());
}
