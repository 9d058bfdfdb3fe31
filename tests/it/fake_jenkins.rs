//! A fake Jenkins that speaks the REST API opsbot uses, with a small model of
//! Jenkins' state: jobs by full name (folders allowed), a queue whose items
//! become builds after a delay, builds that run for a set time and end with a
//! set result, console text, stop, queue cancel. It checks basic auth and the
//! CSRF crumb (bound to the session cookie it was issued with, as Jenkins does
//! since 2.176), and records every request; a request to a route Jenkins would
//! not be asked by opsbot is recorded as unexpected, and a fake dropped with
//! unexpected requests fails the test.
//!
//! Stricter than a real Jenkins in one way: with CSRF on, every POST needs the
//! crumb, even with an API token (Jenkins exempts API-token requests since
//! 2.96; the client must work against both).
//!
//! The model is evaluated lazily from the clock on each request: a queue item
//! whose delay has passed becomes a build, a build whose time has passed ends.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub const USER: &str = "opsbot";
pub const TOKEN: &str = "11aa22bb33cc44dd55ee66ff77889900aa";
/// Jenkins' header for the crumb.
pub const CRUMB_FIELD: &str = "Jenkins-Crumb";

/// A build as the fake sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeBuild {
    pub number: u64,
    /// The parameters as Jenkins decoded them, in the order sent.
    pub params: Vec<(String, String)>,
    pub building: bool,
    pub result: Option<String>,
}

/// A running fake; stops when dropped.
pub struct FakeJenkins {
    /// The root URL, without the trailing `/` (with the path prefix, if any).
    pub base: String,
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Shared {
    model: Mutex<Model>,
}

struct Model {
    base: String,
    prefix: String,
    csrf: bool,
    /// Session id → crumb.
    sessions: HashMap<String, String>,
    next_session: u64,
    jobs: HashMap<String, Job>,
    queue: Vec<QueueItem>,
    next_queue_id: u64,
    queue_delay: Duration,
    /// Answer the next `n` requests with this status.
    fail_next: Option<(u16, usize)>,
    latency: Duration,
    requests: Vec<String>,
    unexpected: Vec<String>,
}

struct Job {
    /// Whether the job has parameters ("This project is parameterized").
    parameterized: bool,
    result: String,
    duration: Duration,
    console: String,
    next_number: u64,
    builds: Vec<BuildRec>,
}

struct BuildRec {
    number: u64,
    params: Vec<(String, String)>,
    started: Instant,
    /// The result and how long it took, once ended.
    ended: Option<(String, Duration)>,
    aborted: bool,
}

struct QueueItem {
    id: u64,
    job: String,
    params: Vec<(String, String)>,
    due: Instant,
    state: QState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QState {
    Waiting,
    Cancelled,
    Started(u64),
}

const RESULTS: [&str; 5] = ["SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"];

impl FakeJenkins {
    /// A Jenkins at `http://127.0.0.1:PORT`, CSRF on, no jobs.
    pub fn start() -> FakeJenkins {
        FakeJenkins::start_at("")
    }

    /// A Jenkins under a path prefix, such as `/jenkins`.
    pub fn start_at(prefix: &str) -> FakeJenkins {
        let prefix = prefix.trim_end_matches('/').to_string();
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let base = format!("http://{addr}{prefix}");
        let shared = Arc::new(Shared {
            model: Mutex::new(Model {
                base: base.clone(),
                prefix,
                csrf: true,
                sessions: HashMap::new(),
                next_session: 1,
                jobs: HashMap::new(),
                queue: Vec::new(),
                // Ids far from build numbers, so that mixing them up shows.
                next_queue_id: 501,
                queue_delay: Duration::ZERO,
                fail_next: None,
                latency: Duration::ZERO,
                requests: Vec::new(),
                unexpected: Vec::new(),
            }),
        });
        let gate = Arc::new(Gate {
            down: AtomicBool::new(false),
            listening: AtomicBool::new(true),
            slot: Mutex::new(None),
            notify: tokio::sync::Notify::new(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let listener_gate = gate.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = GatedListener {
                    current: Some(tokio::net::TcpListener::from_std(std_listener).unwrap()),
                    gate: listener_gate,
                    addr,
                };
                let app = Router::new().fallback(handle).with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
        });
        FakeJenkins {
            base,
            shared,
            gate,
            addr,
            stop: Some(stop_tx),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.shared.model)
    }

    /// Client settings for this Jenkins with the right credentials.
    pub fn settings(&self) -> opsbot::adapters::jobs::jenkins::JenkinsSettings {
        opsbot::adapters::jobs::jenkins::JenkinsSettings {
            base_url: self.base.clone(),
            user: USER.into(),
            token: Some(TOKEN.into()),
            timeout: Duration::from_secs(5),
        }
    }

    /// Creates or changes job `name` (`folder/name`): its builds run for
    /// `duration`, print `console` and end with `result` (`SUCCESS`, …).
    pub fn set_job(&self, name: &str, result: &str, duration: Duration, console: &str) {
        assert!(RESULTS.contains(&result), "not a Jenkins result: {result}");
        let mut m = self.model();
        let job = m.jobs.entry(name.to_string()).or_insert_with(|| Job {
            parameterized: true,
            result: String::new(),
            duration: Duration::ZERO,
            console: String::new(),
            next_number: 1,
            builds: Vec::new(),
        });
        job.result = result.into();
        job.duration = duration;
        job.console = console.into();
    }

    /// Whether job `name` (set before) has parameters; a job without any
    /// fails `buildWithParameters` with a 500, as Jenkins does.
    pub fn set_parameterized(&self, name: &str, on: bool) {
        self.model()
            .jobs
            .get_mut(name)
            .expect("set_job first")
            .parameterized = on;
    }

    /// How long a triggered build waits in the queue (0: it starts at once).
    pub fn set_queue_delay(&self, d: Duration) {
        self.model().queue_delay = d;
    }

    /// CSRF protection on (crumbs issued and required on POSTs) or off
    /// (`crumbIssuer` answers 404).
    pub fn csrf(&self, on: bool) {
        self.model().csrf = on;
    }

    /// Forgets every session and its crumb, as a restart of Jenkins does.
    pub fn expire_crumbs(&self) {
        self.model().sessions.clear();
    }

    /// Answers the next `n` requests with `status`.
    pub fn fail_next(&self, status: u16, n: usize) {
        self.model().fail_next = Some((status, n));
    }

    /// Waits this long before answering each request.
    pub fn set_latency(&self, d: Duration) {
        self.model().latency = d;
    }

    /// Jenkins goes away: the port is closed (connecting is refused) and the
    /// connections already open fail. Returns once the port is closed.
    pub fn down(&self) {
        self.gate.down.store(true, Ordering::SeqCst);
        self.gate.notify.notify_one();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.gate.listening.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the fake Jenkins did not close its port"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Jenkins is back on the same port.
    pub fn up(&self) {
        if !self.gate.down.load(Ordering::SeqCst) {
            return;
        }
        let l = StdListener::bind(self.addr).expect("bind the fake Jenkins' port again");
        l.set_nonblocking(true).unwrap();
        *lock(&self.gate.slot) = Some(l);
        self.gate.listening.store(true, Ordering::SeqCst);
        self.gate.down.store(false, Ordering::SeqCst);
        self.gate.notify.notify_one();
    }

    /// The builds of `job`, oldest first.
    pub fn builds(&self, job: &str) -> Vec<FakeBuild> {
        let mut m = self.model();
        m.tick(Instant::now());
        m.jobs
            .get(job)
            .map(|j| {
                j.builds
                    .iter()
                    .map(|b| FakeBuild {
                        number: b.number,
                        params: b.params.clone(),
                        building: b.ended.is_none(),
                        result: b.ended.as_ref().map(|(r, _)| r.clone()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The console text of build `number` of `job`, as Jenkins would serve it now.
    pub fn console(&self, job: &str, number: u64) -> Option<String> {
        let mut m = self.model();
        m.tick(Instant::now());
        let j = m.jobs.get(job)?;
        let b = j.builds.iter().find(|b| b.number == number)?;
        Some(console_of(j, b))
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.model().requests.clone()
    }

    /// How many requests so far were exactly `METHOD /path` (query ignored).
    pub fn count(&self, method_and_path: &str) -> usize {
        self.model()
            .requests
            .iter()
            .filter(|r| r.split('?').next() == Some(method_and_path))
            .count()
    }

    /// Requests to routes this fake does not know (empty in a good test).
    pub fn unexpected(&self) -> Vec<String> {
        self.model().unexpected.clone()
    }

    /// Takes the unexpected requests (for a test that makes them on purpose).
    pub fn take_unexpected(&self) -> Vec<String> {
        std::mem::take(&mut self.model().unexpected)
    }
}

impl Drop for FakeJenkins {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let unexpected = self.unexpected();
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!("the fake Jenkins got unexpected requests: {unexpected:?}");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Model {
    /// Moves the model to `now`: due queue items start, builds past their time end.
    fn tick(&mut self, now: Instant) {
        let mut due: Vec<usize> = (0..self.queue.len())
            .filter(|&i| self.queue[i].state == QState::Waiting && self.queue[i].due <= now)
            .collect();
        due.sort_by_key(|&i| (self.queue[i].due, self.queue[i].id));
        for i in due {
            let item = &mut self.queue[i];
            let Some(job) = self.jobs.get_mut(&item.job) else {
                item.state = QState::Cancelled;
                continue;
            };
            let number = job.next_number;
            job.next_number += 1;
            job.builds.push(BuildRec {
                number,
                params: item.params.clone(),
                started: item.due,
                ended: None,
                aborted: false,
            });
            item.state = QState::Started(number);
        }
        for job in self.jobs.values_mut() {
            for b in job.builds.iter_mut() {
                if b.ended.is_none() && now >= b.started + job.duration {
                    b.ended = Some((job.result.clone(), job.duration));
                }
            }
        }
    }

    fn build_url(&self, job: &str, number: u64) -> String {
        format!("{}/{}{number}/", self.base, job_url_path(job))
    }
}

/// Jenkins' estimate for build `number`: the mean duration of the last three
/// successful builds before it, or -1 when there are none.
fn estimate(job: &Job, number: u64) -> i64 {
    let last: Vec<u128> = job
        .builds
        .iter()
        .rev()
        .filter(|b| b.number < number)
        .filter_map(|b| match &b.ended {
            Some((r, d)) if r == "SUCCESS" || r == "UNSTABLE" => Some(d.as_millis()),
            _ => None,
        })
        .take(3)
        .collect();
    if last.is_empty() {
        -1
    } else {
        (last.iter().sum::<u128>() / last.len() as u128) as i64
    }
}

fn job_url_path(job: &str) -> String {
    let mut out = String::new();
    for name in job.split('/') {
        out.push_str("job/");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out.push('/');
    }
    out
}

fn console_of(job: &Job, b: &BuildRec) -> String {
    let mut text = format!("Started by user {USER}\n{}", job.console);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if let Some((result, _)) = &b.ended {
        if b.aborted {
            text.push_str(&format!("Aborted by {USER}\n"));
        }
        text.push_str(&format!("Finished: {result}\n"));
    }
    text
}

/// The routes opsbot uses.
#[derive(Debug)]
enum Route {
    Crumb,
    QueueItem(u64),
    CancelItem,
    Trigger { job: String, with_params: bool },
    BuildApi { job: String, number: u64 },
    Console { job: String, number: u64 },
    Stop { job: String, number: u64 },
}

impl Route {
    fn method(&self) -> Method {
        match self {
            Route::Crumb | Route::QueueItem(_) | Route::BuildApi { .. } | Route::Console { .. } => {
                Method::GET
            }
            Route::CancelItem | Route::Trigger { .. } | Route::Stop { .. } => Method::POST,
        }
    }
}

/// The route of a raw (percent-encoded) path below the prefix.
fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["crumbIssuer", "api", "json"] => return Some(Route::Crumb),
        ["queue", "item", id, "api", "json"] => return id.parse().ok().map(Route::QueueItem),
        ["queue", "cancelItem"] => return Some(Route::CancelItem),
        _ => {}
    }
    let mut names = Vec::new();
    let mut rest = segs.as_slice();
    while let ["job", name, tail @ ..] = rest {
        let name = pct_decode(name, false)?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        names.push(name);
        rest = tail;
    }
    if names.is_empty() {
        return None;
    }
    let job = names.join("/");
    let number = |n: &str| -> Option<u64> {
        if n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().ok()
        } else {
            None
        }
    };
    match rest {
        ["build"] => Some(Route::Trigger {
            job,
            with_params: false,
        }),
        ["buildWithParameters"] => Some(Route::Trigger {
            job,
            with_params: true,
        }),
        [n, "api", "json"] => number(n).map(|number| Route::BuildApi { job, number }),
        [n, "consoleText"] => number(n).map(|number| Route::Console { job, number }),
        [n, "stop"] => number(n).map(|number| Route::Stop { job, number }),
        _ => None,
    }
}

fn pct_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `application/x-www-form-urlencoded` pairs, in order.
fn form_pairs(s: &str) -> Option<Vec<(String, String)>> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((pct_decode(k, true)?, pct_decode(v, true)?))
        })
        .collect()
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn text(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain;charset=utf-8")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn json_response(v: Value) -> Response {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json;charset=utf-8")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.starts_with("JSESSIONID."))
        .map(|(_, v)| v.to_string())
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let line = if raw_query.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path}?{raw_query}")
    };
    let latency = {
        let mut m = lock(&shared.model);
        m.requests.push(line.clone());
        m.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut m = lock(&shared.model);
    m.tick(Instant::now());

    // Routing first: a request for a route opsbot has no business with is
    // a bug, whatever its credentials.
    let below = match path.strip_prefix(m.prefix.as_str()) {
        Some(p) if m.prefix.is_empty() || p.is_empty() || p.starts_with('/') => p.to_string(),
        _ => String::new(),
    };
    let Some(route) = route(&below) else {
        m.unexpected.push(line);
        return text(404, "Not Found");
    };
    if route.method() != method {
        m.unexpected.push(line);
        return text(405, "HTTP method not allowed");
    }

    if let Some((status, n)) = m.fail_next {
        m.fail_next = if n > 1 { Some((status, n - 1)) } else { None };
        return text(status, &format!("HTTP ERROR {status}"));
    }

    // Basic auth: anonymous may not read (403), wrong credentials are 401.
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth {
        None => return text(403, "Authentication required"),
        Some(a) if a != format!("Basic {}", base64(format!("{USER}:{TOKEN}").as_bytes())) => {
            return Response::builder()
                .status(401)
                .header(header::WWW_AUTHENTICATE, "Basic realm=\"Jenkins\"")
                .body(Body::from("Invalid password/token for user"))
                .unwrap();
        }
        Some(_) => {}
    }

    if method == Method::POST && m.csrf {
        let crumb = parts.headers.get(CRUMB_FIELD).and_then(|v| v.to_str().ok());
        let session = cookie_session(&parts.headers);
        let valid = match (crumb, session) {
            (Some(c), Some(s)) => m.sessions.get(&s).map(String::as_str) == Some(c),
            _ => false,
        };
        if !valid {
            return text(403, "No valid crumb was included in the request");
        }
    }

    match route {
        Route::Crumb => {
            if !m.csrf {
                return text(404, "Not Found");
            }
            let sid = format!("node0{:08x}", m.next_session * 0x9e37_79b9 % 0xffff_ffff);
            let crumb = hex::encode(format!("crumb-{sid}-{}", m.next_session));
            m.next_session += 1;
            m.sessions.insert(sid.clone(), crumb.clone());
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json;charset=utf-8")
                .header(
                    header::SET_COOKIE,
                    format!("JSESSIONID.4f2a9c1e={sid}; Path=/; HttpOnly"),
                )
                .body(Body::from(
                    json!({
                        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                        "crumb": crumb,
                        "crumbRequestField": CRUMB_FIELD,
                    })
                    .to_string(),
                ))
                .unwrap()
        }
        Route::Trigger { job, with_params } => {
            let Some(j) = m.jobs.get(&job) else {
                return text(404, "Not Found");
            };
            if with_params && !j.parameterized {
                return text(
                    500,
                    "java.lang.IllegalStateException: This build is not parameterized!",
                );
            }
            let mut params = Vec::new();
            if with_params {
                let form_body = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                let Some(mut p) = form_pairs(&raw_query) else {
                    // Not percent-encoded UTF-8: the client's mistake.
                    m.unexpected.push(line);
                    return text(400, "Bad query");
                };
                if form_body {
                    let Some(b) = std::str::from_utf8(&body).ok().and_then(form_pairs) else {
                        m.unexpected.push(line);
                        return text(400, "Bad body");
                    };
                    p.extend(b);
                }
                params = p;
            }
            // Jenkins merges a trigger into an identical item still waiting.
            let mut sorted = params.clone();
            sorted.sort();
            let existing = m.queue.iter().find(|q| {
                q.state == QState::Waiting && q.job == job && {
                    let mut s = q.params.clone();
                    s.sort();
                    s == sorted
                }
            });
            let id = match existing {
                Some(q) => q.id,
                None => {
                    let id = m.next_queue_id;
                    m.next_queue_id += 1;
                    let due = Instant::now() + m.queue_delay;
                    m.queue.push(QueueItem {
                        id,
                        job,
                        params,
                        due,
                        state: QState::Waiting,
                    });
                    m.tick(Instant::now());
                    id
                }
            };
            Response::builder()
                .status(201)
                .header(header::LOCATION, format!("{}/queue/item/{id}/", m.base))
                .body(Body::empty())
                .unwrap()
        }
        Route::QueueItem(id) => {
            let Some(q) = m.queue.iter().find(|q| q.id == id) else {
                return text(404, "Not Found");
            };
            let v = match q.state {
                QState::Waiting => {
                    let left = q.due.saturating_duration_since(Instant::now());
                    json!({
                        "_class": "hudson.model.Queue$WaitingItem",
                        "id": id,
                        "why": format!("In the quiet period. Expires in {} ms", left.as_millis()),
                        "cancelled": false,
                        "executable": null,
                    })
                }
                QState::Cancelled => json!({
                    "_class": "hudson.model.Queue$LeftItem",
                    "id": id,
                    "why": null,
                    "cancelled": true,
                    "executable": null,
                }),
                QState::Started(n) => json!({
                    "_class": "hudson.model.Queue$LeftItem",
                    "id": id,
                    "why": null,
                    "cancelled": false,
                    "executable": {
                        "_class": "hudson.model.FreeStyleBuild",
                        "number": n,
                        "url": m.build_url(&q.job, n),
                    },
                }),
            };
            json_response(v)
        }
        Route::CancelItem => {
            let id = form_pairs(&raw_query)
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| k == "id")
                .and_then(|(_, v)| v.parse::<u64>().ok());
            let Some(q) = id.and_then(|id| m.queue.iter_mut().find(|q| q.id == id)) else {
                return text(404, "Not Found");
            };
            if q.state == QState::Waiting {
                q.state = QState::Cancelled;
            }
            Response::builder().status(204).body(Body::empty()).unwrap()
        }
        Route::BuildApi { job, number } => {
            let url = m.build_url(&job, number);
            let Some(j) = m.jobs.get(&job) else {
                return text(404, "Not Found");
            };
            let Some(b) = j.builds.iter().find(|b| b.number == number) else {
                return text(404, "Not Found");
            };
            let (result, duration) = match &b.ended {
                Some((r, d)) => (json!(r), d.as_millis() as u64),
                None => (Value::Null, 0),
            };
            let estimate = estimate(j, number);
            let mut v = json!({
                "_class": "hudson.model.FreeStyleBuild",
                "number": number,
                "building": b.ended.is_none(),
                "result": result,
                "duration": duration,
                "estimatedDuration": estimate,
                "url": url,
                "displayName": format!("#{number}"),
                "actions": [{"_class": "hudson.model.ParametersAction", "parameters":
                    b.params.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()}],
            });
            // `?tree=a,b,c` keeps those fields only.
            if let Some(tree) = form_pairs(&raw_query)
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| k == "tree")
                .map(|(_, v)| v)
            {
                let keep: Vec<&str> = tree.split(',').collect();
                if let Value::Object(o) = &mut v {
                    o.retain(|k, _| k == "_class" || keep.contains(&k.as_str()));
                }
            }
            json_response(v)
        }
        Route::Console { job, number } => {
            let Some(j) = m.jobs.get(&job) else {
                return text(404, "Not Found");
            };
            let Some(b) = j.builds.iter().find(|b| b.number == number) else {
                return text(404, "Not Found");
            };
            text(200, &console_of(j, b))
        }
        Route::Stop { job, number } => {
            let url = m.build_url(&job, number);
            let Some(j) = m.jobs.get_mut(&job) else {
                return text(404, "Not Found");
            };
            let Some(b) = j.builds.iter_mut().find(|b| b.number == number) else {
                return text(404, "Not Found");
            };
            if b.ended.is_none() {
                b.aborted = true;
                b.ended = Some(("ABORTED".into(), b.started.elapsed()));
            }
            // As Jenkins does: back to the build's page.
            Response::builder()
                .status(302)
                .header(header::LOCATION, url)
                .body(Body::empty())
                .unwrap()
        }
    }
}

/// Down/up for the fake: the listening socket is closed while down, and the
/// connections already open fail on their next read or write.
struct Gate {
    down: AtomicBool,
    /// Whether a listening socket is open (or handed over and about to be).
    listening: AtomicBool,
    /// A socket bound by `up`, for the accept loop to take.
    slot: Mutex<Option<StdListener>>,
    notify: tokio::sync::Notify,
}

struct GatedListener {
    current: Option<tokio::net::TcpListener>,
    gate: Arc<Gate>,
    addr: SocketAddr,
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedIo, SocketAddr) {
        loop {
            if self.gate.down.load(Ordering::SeqCst) {
                self.current = None;
                lock(&self.gate.slot).take();
                self.gate.listening.store(false, Ordering::SeqCst);
            } else if self.current.is_none() {
                if let Some(l) = lock(&self.gate.slot).take() {
                    self.current = Some(tokio::net::TcpListener::from_std(l).unwrap());
                }
            }
            let Some(l) = &self.current else {
                self.gate.notify.notified().await;
                continue;
            };
            tokio::select! {
                r = l.accept() => {
                    let Ok((stream, addr)) = r else { continue };
                    if self.gate.down.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    return (GatedIo { inner: stream, gate: self.gate.clone() }, addr);
                }
                _ = self.gate.notify.notified() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

struct GatedIo {
    inner: tokio::net::TcpStream,
    gate: Arc<Gate>,
}

impl GatedIo {
    fn check(&self) -> io::Result<()> {
        if self.gate.down.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "Jenkins is down",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for GatedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn routes_are_jenkins_routes() {
        assert!(matches!(route("/crumbIssuer/api/json"), Some(Route::Crumb)));
        assert!(matches!(
            route("/queue/item/5/api/json"),
            Some(Route::QueueItem(5))
        ));
        match route("/job/team%20a/job/web/buildWithParameters") {
            Some(Route::Trigger { job, with_params }) => {
                assert_eq!(job, "team a/web");
                assert!(with_params);
            }
            r => panic!("{r:?}"),
        }
        match route("/job/a/job/b/12/stop") {
            Some(Route::Stop { job, number }) => assert_eq!((job.as_str(), number), ("a/b", 12)),
            r => panic!("{r:?}"),
        }
        for bad in [
            "/",
            "/job",
            "/job/a",
            "/job/a/x/api/json",
            "/job//build",
            "/api/json",
            "/job/a%2Fb/build",
        ] {
            assert!(route(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forms_decode_plus_and_percent() {
        assert_eq!(
            form_pairs("a=b+c&d=%24%28x%29%0A&e=&f").unwrap(),
            vec![
                ("a".into(), "b c".into()),
                ("d".into(), "$(x)\n".into()),
                ("e".into(), "".into()),
                ("f".into(), "".into()),
            ]
        );
    }
}
