//! The customer-support handoff end to end: a fake company app answers the
//! session checks, a real SMTP server (Python's aiosmtpd) receives the mail,
//! and the bot runs as the real binary.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::harness::{shipped_config, Env, LiveBot, SUPPORT_SECRET};

/// The company app's session endpoint: `GET /sessions/{id}`.
pub struct FakeApp {
    pub base: String,
    pub down: Arc<AtomicBool>,
    pub calls: Arc<AtomicUsize>,
}

impl FakeApp {
    pub fn start() -> FakeApp {
        use axum::extract::{Path as AxPath, State};
        use axum::http::StatusCode;
        use axum::routing::get;
        use axum::{Json, Router};

        let mut sessions: HashMap<String, Value> = HashMap::new();
        sessions.insert(
            "sess-carol".into(),
            json!({"email": "carol@example.com", "customer_id": "cust-42"}),
        );
        sessions.insert(
            "sess-dave".into(),
            json!({"email": "dave@example.com", "customer_id": 77}),
        );
        sessions.insert(
            "sess-evil".into(),
            json!({"email": "x@example.com\r\nBcc: evil@example.com", "customer_id": "cust-666"}),
        );
        let down = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        type S = (
            Arc<HashMap<String, Value>>,
            Arc<AtomicBool>,
            Arc<AtomicUsize>,
        );
        async fn session(
            State((sessions, down, calls)): State<S>,
            AxPath(id): AxPath<String>,
        ) -> (StatusCode, Json<Value>) {
            calls.fetch_add(1, Ordering::SeqCst);
            if down.load(Ordering::SeqCst) {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "db down"})),
                );
            }
            if id == "sess-expired" {
                return (StatusCode::UNAUTHORIZED, Json(json!({"error": "expired"})));
            }
            match sessions.get(&id) {
                Some(v) => (StatusCode::OK, Json(v.clone())),
                None => (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": "no such session"})),
                ),
            }
        }
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state: S = (Arc::new(sessions), down.clone(), calls.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new()
                    .route("/sessions/{id}", get(session))
                    .with_state(state);
                let _ = axum::serve(listener, app).await;
            });
        });
        FakeApp {
            base: format!("http://{addr}/sessions"),
            down,
            calls,
        }
    }
}

/// A real SMTP server on loopback, writing each message to a file.
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtp {
    pub fn start(port: u16) -> Smtp {
        let python = Path::new("/usr/bin/python3");
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(dir.path().join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd: run .ci/setup to install python3-aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}; run .ci/setup (python3-aiosmtpd)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Smtp { child, port, dir }
    }

    /// The mails received so far: headers (lowercased names) and body.
    pub fn mails(&self) -> Vec<(HashMap<String, String>, String)> {
        let new = self.dir.path().join("box").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| {
                let raw = std::fs::read_to_string(p).unwrap_or_default();
                let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
                let mut headers = HashMap::new();
                let mut last = String::new();
                for line in head.lines() {
                    if line.starts_with([' ', '\t']) {
                        if let Some(v) = headers.get_mut(&last) {
                            let v: &mut String = v;
                            // Unfolding keeps the folding white space as one space.
                            v.push(' ');
                            v.push_str(line.trim_start());
                        }
                        continue;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        last = k.trim().to_ascii_lowercase();
                        headers.insert(last.clone(), v.trim().to_string());
                    }
                }
                (headers, body.to_string())
            })
            .collect()
    }

    /// Waits until `n` mails arrived (bounded).
    pub fn wait_for(&self, n: usize) -> Vec<(HashMap<String, String>, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                m.len()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

thread_local! {
    /// The time this test (its thread) signs its requests with, fixed at its
    /// first [`sign`] so that a signature made a moment before a request
    /// always fits the timestamp [`support`] sends. A test lasts far less
    /// than the bot's five minutes.
    static SIGNED_AT: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn signing_time() -> i64 {
    SIGNED_AT.with(|c| {
        if c.get() == 0 {
            c.set(unix_now());
        }
        c.get()
    })
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `sha256=HEX` of `TIMESTAMP.BODY`, as the app signs.
pub fn sign_at(ts: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SUPPORT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Signs `body` at this test's signing time, which [`support`] sends.
pub fn sign(body: &str) -> String {
    sign_at(signing_time(), body)
}

/// POSTs to /api/v1/support with chosen headers.
fn support(
    bot: &LiveBot,
    body: &str,
    signature: Option<&str>,
    idem: Option<&str>,
    ctype: &str,
) -> (u16, Value, Option<String>) {
    let ts = signing_time();
    support_at(bot, body, signature, Some(&ts.to_string()), idem, ctype)
}

/// POSTs to /api/v1/support with chosen headers, the timestamp too.
pub fn support_at(
    bot: &LiveBot,
    body: &str,
    signature: Option<&str>,
    timestamp: Option<&str>,
    idem: Option<&str>,
    ctype: &str,
) -> (u16, Value, Option<String>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut req = client
        .post(bot.url("/api/v1/support"))
        .header("Content-Type", ctype)
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("X-Opsbot-Signature", s);
    }
    if let Some(t) = timestamp {
        req = req.header("X-Opsbot-Timestamp", t);
    }
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().unwrap();
    let code = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        retry,
    )
}

pub fn signed(bot: &LiveBot, body: &str) -> (u16, Value) {
    let (c, v, _) = support(bot, body, Some(&sign(body)), None, "application/json");
    (c, v)
}

pub fn env_for(app: &FakeApp, smtp_port: u16, extra: &[(&str, &str)]) -> Env {
    let mut text = shipped_config()
        .replace(
            "session_url = \"http://127.0.0.1:8790/sessions\"",
            &format!("session_url = \"{}\"", app.base),
        )
        .replace("port = 2525", &format!("port = {smtp_port}"));
    for (from, to) in extra {
        text = text.replace(from, to);
    }
    Env::shipped_with(&text)
}

fn wait_ticket(bot: &LiveBot, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
        if code == 200 {
            let v: Value = serde_json::from_str(&text).unwrap();
            if pred(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "{id} never got there: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mailed(t: &Value) -> Vec<String> {
    t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mailed")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_essay_flow_from_the_app_to_the_customers_inbox() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = env_for(&app, smtp.port, &[]);
    let mut bot = env.live(&[]);
    let body = json!({"session_id": "sess-carol", "subject": "Cannot pay with my saved card", "message": "Checkout says 500 when I pay."}).to_string();
    let (code, resp) = signed(&bot, &body);
    assert_eq!((code, resp), (201, json!({"ticket": "OPS-1"})));

    // The operator triages and routes; the team fixes; QA verifies.
    for line in [
        "/ticket show id:OPS-1",
        "/ticket assign id:OPS-1 team:backend",
        ":as bella",
        "/ticket take id:OPS-1",
        "/ticket resolve id:OPS-1 note:\"Saved cards work again; the tokeniser was fixed.\"",
        ":as olivia",
        "/ticket comment id:OPS-1 customer:true text:\"A fix is on its way to QA.\"",
        "/ticket qa id:OPS-1",
        ":as quinn",
        "/ticket verify id:OPS-1",
    ] {
        bot.line(line);
    }
    let t = wait_ticket(&bot, "OPS-1", |t| mailed(t).len() == 3);
    assert_eq!(t["state"], "closed");
    assert_eq!(t["source"], "support");
    assert_eq!(
        t["customer"],
        json!({"id": "cust-42", "email": "carol@example.com"})
    );
    assert_eq!(
        mailed(&t),
        vec![
            "mailed the customer (acknowledgement): [OPS-1] We received your request: Cannot pay with my saved card",
            "mailed the customer (update): [OPS-1] Update on your request: Cannot pay with my saved card",
            "mailed the customer (closed): [OPS-1] Solved: Cannot pay with my saved card",
        ]
    );
    let mails = smtp.wait_for(3);
    assert_eq!(mails.len(), 3);
    let (ack, ack_body) = &mails[0];
    assert_eq!(
        ack["subject"],
        "[OPS-1] We received your request: Cannot pay with my saved card"
    );
    assert_eq!(ack["to"], "carol@example.com");
    assert_eq!(ack["x-rcptto"], "carol@example.com");
    assert!(ack["from"].contains("support@example.com"));
    assert!(
        ack_body.contains("Checkout says 500 when I pay."),
        "{ack_body}"
    );
    let (closed, closed_body) = &mails[2];
    assert_eq!(
        closed["subject"],
        "[OPS-1] Solved: Cannot pay with my saved card"
    );
    assert!(
        closed_body.contains("Saved cards work again; the tokeniser was fixed."),
        "{closed_body}"
    );

    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.in_channel("ops")[0],
        "New support request OPS-1 · p3 · Cannot pay with my saved card — opened by support (support)"
    );
    // The operator sees the customer; the team channel never gets the address.
    assert!(
        run.stdout
            .contains("  customer: cust-42 <carol@example.com>"),
        "{}",
        run.stdout
    );
    for line in run
        .stdout
        .lines()
        .filter(|l| l.starts_with("[#backend]") || l.starts_with("[#qa]"))
    {
        assert!(!line.contains("carol@"), "{line}");
    }
    assert!(run.stdout.contains("[mail → carol@example.com] [OPS-1] We received your request: Cannot pay with my saved card"));
    assert!(run
        .stdout
        .contains("[mail → carol@example.com] [OPS-1] Solved: Cannot pay with my saved card"));
}

#[test]
fn mail_waits_for_a_server_that_is_down_and_is_sent_once() {
    let app = FakeApp::start();
    let port = free_port();
    let env = env_for(&app, port, &[]);
    let mut bot = env.live(&[]);
    let body = json!({"session_id": "sess-dave", "subject": "Invoice missing", "message": "Where is my invoice?"}).to_string();
    assert_eq!(signed(&bot, &body).0, 201);
    bot.line("/ticket resolve id:OPS-1 note:\"Sent it again.\"");
    bot.line("/ticket verify id:OPS-1");
    let t = wait_ticket(&bot, "OPS-1", |t| t["state"] == "closed");
    assert!(mailed(&t).is_empty(), "no server yet: {t}");
    std::thread::sleep(Duration::from_millis(500));
    // The server comes up: both mails arrive, once each.
    let smtp = Smtp::start(port);
    let t = wait_ticket(&bot, "OPS-1", |t| mailed(&t.clone()).len() == 2);
    assert_eq!(mailed(&t).len(), 2);
    let mails = smtp.wait_for(2);
    let run = bot.finish();
    std::thread::sleep(Duration::from_millis(200));
    let mails_after = smtp.mails();
    assert_eq!(mails_after.len(), 2, "a mail was sent twice");
    assert_eq!(
        mails[0].0["subject"],
        "[OPS-1] We received your request: Invoice missing"
    );
    assert_eq!(mails[1].0["subject"], "[OPS-1] Solved: Invoice missing");
    assert_eq!(mails[1].0["to"], "dave@example.com");
    // Said once, not once per retry.
    assert_eq!(
        run.stderr.matches("cannot send mail").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn bad_requests_are_refused_and_nothing_is_stored_or_mailed() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = env_for(&app, smtp.port, &[]);
    let bot = env.live(&[]);
    let good =
        json!({"session_id": "sess-carol", "subject": "Help", "message": "Please"}).to_string();
    let other =
        json!({"session_id": "sess-carol", "subject": "Help!", "message": "Please"}).to_string();
    let big =
        json!({"session_id": "sess-carol", "subject": "Help", "message": "x".repeat(1024 * 1024 - 40)})
            .to_string();
    let long_message =
        json!({"session_id": "sess-carol", "subject": "Help", "message": "x".repeat(10_001)})
            .to_string();
    let cases: Vec<(String, Option<String>, &str, u16, &str)> = vec![
        (
            good.clone(),
            Some("-".into()),
            "application/json",
            401,
            "missing signature",
        ),
        (
            good.clone(),
            Some("sha256=00ff".into()),
            "application/json",
            401,
            "bad signature",
        ),
        (
            good.clone(),
            Some(sign(&other)),
            "application/json",
            401,
            "bad signature",
        ),
        (
            good.clone(),
            Some(sign(&good).replace("sha256=", "sha1=")),
            "application/json",
            401,
            "bad signature",
        ),
        (
            big.clone(),
            Some(sign(&big)),
            "application/json",
            413,
            "the body is larger than the limit",
        ),
        (
            good.clone(),
            Some(sign(&good)),
            "text/plain",
            415,
            "the body must be JSON",
        ),
        (
            "{nope".into(),
            Some(sign("{nope")),
            "application/json",
            400,
            "invalid request: key must be a string at line 1 column 2",
        ),
        (
            json!({"session_id": "sess-carol", "subject": 5, "message": "m"}).to_string(),
            None,
            "application/json",
            400,
            "invalid request: invalid type: integer `5`, expected a string",
        ),
        (
            json!({"session_id": "sess-carol", "subject": "  ", "message": "m"}).to_string(),
            None,
            "application/json",
            400,
            "`subject` must not be empty",
        ),
        (
            json!({"session_id": "sess-carol", "subject": "s", "message": ""}).to_string(),
            None,
            "application/json",
            400,
            "`message` must not be empty",
        ),
        (
            long_message.clone(),
            Some(sign(&long_message)),
            "application/json",
            400,
            "`message` is 10001 characters long; the limit is 10000",
        ),
        (
            json!({"session_id": "../admin", "subject": "s", "message": "m"}).to_string(),
            None,
            "application/json",
            400,
            "`session_id` must be",
        ),
        (
            json!({"session_id": "sess-carol", "subject": "s", "message": "m", "admin": true})
                .to_string(),
            None,
            "application/json",
            400,
            "invalid request: unknown field `admin`",
        ),
        (
            json!({"session_id": "sess-nobody", "subject": "s", "message": "m"}).to_string(),
            None,
            "application/json",
            403,
            "the session is not valid (the app answered 404)",
        ),
        (
            json!({"session_id": "sess-expired", "subject": "s", "message": "m"}).to_string(),
            None,
            "application/json",
            403,
            "the session is not valid (the app answered 401)",
        ),
        (
            json!({"session_id": "sess-evil", "subject": "s", "message": "m"}).to_string(),
            None,
            "application/json",
            403,
            "the app's session check gave no usable customer id and e-mail address",
        ),
    ];
    for (body, sig, ctype, want_code, want) in cases {
        let sig = match sig {
            None => Some(sign(&body)),
            Some(s) if s == "-" => None,
            s => s,
        };
        let (code, resp, _) = support(&bot, &body, sig.as_deref(), None, ctype);
        let msg = resp["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(code, want_code, "{want}: {resp}");
        assert!(msg.starts_with(want), "got {msg:?}, want {want:?}");
    }
    // The app is down: 503 with Retry-After, nothing stored.
    app.down.store(true, Ordering::SeqCst);
    let (code, resp, retry) = support(&bot, &good, Some(&sign(&good)), None, "application/json");
    assert_eq!(code, 503, "{resp}");
    assert_eq!(retry.as_deref(), Some("5"));
    app.down.store(false, Ordering::SeqCst);
    let run = bot.finish();
    assert!(!run.stdout.contains("[#"), "{}", run.stdout);
    assert!(env.tickets().is_empty());
    assert!(smtp.mails().is_empty());
    // No unsigned or malformed request reached the app.
    assert_eq!(app.calls.load(Ordering::SeqCst), 4);
}

#[test]
fn header_injection_in_the_subject_stays_text() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = env_for(&app, smtp.port, &[]);
    let bot = env.live(&[]);
    let body = json!({"session_id": "sess-carol", "subject": "Hi\r\nBcc: evil@example.com\r\nX-Evil: 1", "message": "m\r\n.\r\nMAIL FROM:<evil@example.com>"}).to_string();
    assert_eq!(signed(&bot, &body), (201, json!({"ticket": "OPS-1"})));
    let mails = smtp.wait_for(1);
    let (h, _) = &mails[0];
    assert_eq!(h["x-rcptto"], "carol@example.com");
    assert!(!h.contains_key("bcc"), "{h:?}");
    assert!(!h.contains_key("x-evil"), "{h:?}");
    assert_eq!(
        h["subject"],
        "[OPS-1] We received your request: Hi Bcc: evil@example.com X-Evil: 1"
    );
    bot.finish();
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn retries_with_the_same_key_get_the_same_ticket_and_customers_are_rate_limited() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = env_for(
        &app,
        smtp.port,
        &[("per_customer_per_hour = 10", "per_customer_per_hour = 3")],
    );
    let bot = env.live(&[]);
    let body = json!({"session_id": "sess-carol", "subject": "Refund", "message": "Please refund order 12"}).to_string();
    let s = sign(&body);
    let first = support(
        &bot,
        &body,
        Some(&s),
        Some("order-12-refund"),
        "application/json",
    );
    let again = support(
        &bot,
        &body,
        Some(&s),
        Some("order-12-refund"),
        "application/json",
    );
    assert_eq!((first.0, &first.1), (201, &json!({"ticket": "OPS-1"})));
    assert_eq!((again.0, &again.1), (201, &json!({"ticket": "OPS-1"})));
    // Another key is another request.
    let third = support(
        &bot,
        &body,
        Some(&s),
        Some("order-12-refund-2"),
        "application/json",
    );
    assert_eq!(third.1, json!({"ticket": "OPS-2"}));
    // Carol has used her 3 per hour; Dave has not.
    let (code, resp, retry) = support(&bot, &body, Some(&s), None, "application/json");
    assert_eq!(code, 429, "{resp}");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    assert!(resp["error"]
        .as_str()
        .unwrap()
        .starts_with("too many requests from this customer"));
    let dave =
        json!({"session_id": "sess-dave", "subject": "Refund", "message": "Me too"}).to_string();
    assert_eq!(signed(&bot, &dave), (201, json!({"ticket": "OPS-3"})));
    smtp.wait_for(3);
    bot.finish();
    assert_eq!(env.tickets().len(), 3);
    assert_eq!(smtp.mails().len(), 3, "one acknowledgement per ticket");
}

#[test]
fn mail_left_queued_at_exit_is_counted_and_said() {
    let app = FakeApp::start();
    let env = env_for(&app, free_port(), &[]);
    let bot = env.live(&[]);
    let body =
        json!({"session_id": "sess-carol", "subject": "Hello", "message": "Anyone?"}).to_string();
    assert_eq!(signed(&bot, &body).0, 201);
    let (_, metrics) = bot.get("/metrics");
    assert!(
        metrics.contains("opsbot_outbox_depth{queue=\"mail\"} 1"),
        "{metrics}"
    );
    let run = bot.finish();
    assert!(
        run.stderr
            .contains("1 customer mail(s) still queued; the next start delivers them"),
        "{}",
        run.stderr
    );
}

/// A company app whose answer is chosen by the session id (`s302`, `s401`,
/// `s500`, `slow`, …); it records each path it was asked for, raw.
pub struct OutcomeApp {
    pub base: String,
    pub paths: Arc<std::sync::Mutex<Vec<String>>>,
}

impl OutcomeApp {
    /// `redirect_to`: where `s302` sends the bot.
    pub fn start(redirect_to: &str) -> OutcomeApp {
        use axum::extract::{Request, State};
        use axum::http::{header, StatusCode};
        use axum::response::{IntoResponse, Response};
        use axum::{Json, Router};

        type S = (Arc<std::sync::Mutex<Vec<String>>>, String);
        async fn any(State((paths, to)): State<S>, req: Request) -> Response {
            let path = req.uri().path().to_string();
            paths.lock().unwrap().push(path.clone());
            let id = path.rsplit('/').next().unwrap_or_default().to_string();
            let ok = Json(json!({"email": "carol@example.com", "customer_id": "cust-42"}));
            match id.as_str() {
                "s302" => (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("{to}/sessions/sess-any"))],
                )
                    .into_response(),
                "s301" => (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, format!("{to}/sessions/sess-any"))],
                )
                    .into_response(),
                "s204" => StatusCode::NO_CONTENT.into_response(),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    ok.into_response()
                }
                s if s.starts_with('s') && s.len() == 4 => {
                    let code = s[1..].parse::<u16>().unwrap_or(500);
                    (
                        StatusCode::from_u16(code).unwrap(),
                        Json(json!({"error": "no"})),
                    )
                        .into_response()
                }
                // Any other session is a customer.
                _ => ok.into_response(),
            }
        }
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
        let state: S = (paths.clone(), redirect_to.to_string());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new().fallback(any).with_state(state);
                let _ = axum::serve(listener, app).await;
            });
        });
        OutcomeApp {
            base: format!("http://{addr}"),
            paths,
        }
    }

    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

fn outcome_env(session_url: &str) -> Env {
    Env::shipped_with(
        &shipped_config()
            .replace(
                "session_url = \"http://127.0.0.1:8790/sessions\"",
                &format!("session_url = \"{session_url}\""),
            )
            .replace("session_timeout = \"2s\"", "session_timeout = \"1s\""),
    )
}

fn request_for(session: &str) -> String {
    json!({"session_id": session, "subject": "Help", "message": "Please"}).to_string()
}

#[test]
fn session_check_outcomes_redirects_refused_errors_retried_nothing_stored() {
    // Where a redirect would send the bot: an app that takes any session.
    let elsewhere = OutcomeApp::start("http://127.0.0.1:9");
    let app = OutcomeApp::start(&elsewhere.base);
    let env = outcome_env(&format!("{}/sessions", app.base));
    let bot = env.live(&[]);
    let cases: &[(&str, u16, &str)] = &[
        (
            "s302",
            403,
            "the session is not valid (the app answered 302)",
        ),
        (
            "s301",
            403,
            "the session is not valid (the app answered 301)",
        ),
        (
            "s401",
            403,
            "the session is not valid (the app answered 401)",
        ),
        (
            "s403",
            403,
            "the session is not valid (the app answered 403)",
        ),
        (
            "s404",
            403,
            "the session is not valid (the app answered 404)",
        ),
        (
            "s410",
            403,
            "the session is not valid (the app answered 410)",
        ),
        (
            "s429",
            403,
            "the session is not valid (the app answered 429)",
        ),
        (
            "s204",
            403,
            "the session is not valid (the app answered 204)",
        ),
        (
            "s500",
            503,
            "cannot check the session with the app (it answered 500)",
        ),
        (
            "s503",
            503,
            "cannot check the session with the app (it answered 503)",
        ),
        (
            "slow",
            503,
            "cannot check the session with the app (timed out)",
        ),
    ];
    for (session, want_code, want) in cases {
        let body = request_for(session);
        let (code, resp, retry) =
            support(&bot, &body, Some(&sign(&body)), None, "application/json");
        assert_eq!(code, *want_code, "{session}: {resp}");
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(want),
            "{session}: got {msg:?}, want {want:?}"
        );
        if *want_code == 503 {
            assert_eq!(retry.as_deref(), Some("5"), "{session}");
            assert!(msg.ends_with("nothing was stored, retry later"), "{msg}");
        } else {
            assert_eq!(retry, None, "{session}");
        }
    }
    // The redirects were not followed.
    assert!(elsewhere.paths().is_empty(), "{:?}", elsewhere.paths());
    // A good session still works, and is the only ticket.
    let body = request_for("sess-good");
    assert_eq!(signed(&bot, &body), (201, json!({"ticket": "OPS-1"})));
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
}

#[test]
fn an_unreachable_app_is_a_503_with_retry_after() {
    let port = free_port();
    let env = outcome_env(&format!("http://127.0.0.1:{port}/sessions"));
    let bot = env.live(&[]);
    let body = request_for("sess-good");
    let (code, resp, retry) = support(&bot, &body, Some(&sign(&body)), None, "application/json");
    assert_eq!(code, 503, "{resp}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(
        resp["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cannot check the session with the app (unreachable)"),
        "{resp}"
    );
    bot.finish();
    assert!(env.tickets().is_empty());
}

#[test]
fn session_ids_are_checked_and_sent_as_one_encoded_segment() {
    let app = OutcomeApp::start("http://127.0.0.1:9");
    let env = outcome_env(&format!("{}/api/sessions/", app.base));
    let bot = env.live(&[]);
    let long = "a".repeat(257);
    for bad in [
        "..",
        ".",
        "",
        "a/b",
        "..%2f",
        "%2e%2e",
        "a b",
        "a?b",
        "a#b",
        "sess\u{e9}",
        long.as_str(),
    ] {
        let body = request_for(bad);
        let (code, resp, _) = support(&bot, &body, Some(&sign(&body)), None, "application/json");
        assert_eq!(code, 400, "{bad:?}: {resp}");
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("`session_id` must be 1 to 256 ASCII letters, digits, `.`, `_`, `~` or `-`, and not `.` or `..` alone"),
            "{bad:?}: {msg}"
        );
    }
    // Nothing refused reached the app.
    assert!(app.paths().is_empty(), "{:?}", app.paths());
    let max = "b".repeat(256);
    for good in ["...", "a.b~c-d_E9", ".hidden", max.as_str()] {
        let body = request_for(good);
        let (code, resp, _) = support(&bot, &body, Some(&sign(&body)), None, "application/json");
        assert_eq!(code, 201, "{good:?}: {resp}");
    }
    let expected: Vec<String> = ["...", "a.b~c-d_E9", ".hidden", max.as_str()]
        .iter()
        .map(|id| format!("/api/sessions/{id}"))
        .collect();
    assert_eq!(app.paths(), expected);
    bot.finish();
    assert_eq!(env.tickets().len(), 4);
}

#[test]
fn timestamps_bound_replays_and_are_part_of_the_signature() {
    let app = FakeApp::start();
    let env = env_for(&app, free_port(), &[]);
    let bot = env.live(&[]);
    let body = request_for("sess-carol");
    let now = unix_now();
    let post = |sig: Option<&str>, ts: Option<&str>| {
        let (code, resp, _) = support_at(&bot, &body, sig, ts, None, "application/json");
        (code, resp["error"].as_str().unwrap_or_default().to_string())
    };
    let old = (now - 301).to_string();
    let ahead = (now + 400).to_string();
    let cases: Vec<(Option<String>, Option<String>, &str)> = vec![
        (
            Some(sign_at(now, &body)),
            None,
            "missing timestamp: send X-Opsbot-Timestamp: UNIX_SECONDS",
        ),
        (
            Some(sign_at(now - 301, &body)),
            Some(old.clone()),
            "stale timestamp: X-Opsbot-Timestamp",
        ),
        (
            Some(sign_at(now + 400, &body)),
            Some(ahead.clone()),
            "stale timestamp: X-Opsbot-Timestamp",
        ),
        // A captured request with its time moved forward: the signature no longer fits.
        (
            Some(sign_at(now - 301, &body)),
            Some(now.to_string()),
            "bad signature",
        ),
        (
            Some(sign_at(now, &body)),
            Some("yesterday".into()),
            "bad timestamp: X-Opsbot-Timestamp must be the Unix time in whole seconds",
        ),
        (
            Some(sign_at(now, &body)),
            Some(format!("-{now}")),
            "bad timestamp",
        ),
    ];
    for (sig, ts, want) in &cases {
        let (code, msg) = post(sig.as_deref(), ts.as_deref());
        assert_eq!(code, 401, "{want}: {msg}");
        assert!(msg.starts_with(want), "got {msg:?}, want {want:?}");
    }
    // The old scheme, the body alone, is refused.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SUPPORT_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let body_only = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (code, msg) = post(Some(&body_only), Some(&now.to_string()));
    assert_eq!(code, 401, "{msg}");
    assert!(msg.starts_with("bad signature"), "{msg}");
    let (code, msg) = post(Some(&sign_at(now - 301, &body)), Some(&old));
    assert!(msg.contains("more than 300 s is refused"), "{msg}");
    assert_eq!(code, 401);
    // Within the five minutes, either side: accepted.
    let (code, msg) = post(
        Some(&sign_at(now - 240, &body)),
        Some(&(now - 240).to_string()),
    );
    assert_eq!(code, 201, "{msg}");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(env.tickets().len(), 1);
    // No refused request reached the app.
    assert_eq!(app.calls.load(Ordering::SeqCst), 1);
}
