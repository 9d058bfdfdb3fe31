//! A fake Discord for serenity: the REST API under `/api/v10` and a `ws://`
//! gateway, on one port of 127.0.0.1, with a small model of what the bot did
//! (channels, messages and their edits, threads, interaction callbacks and
//! replies, registered commands) and knobs for the failures Discord produces.
//!
//! Point serenity at it with [`FakeDiscord::http`], or build the `Http` the way
//! the bot does: `HttpBuilder::new(token).proxy(fake.base.clone())
//! .ratelimiter_disabled(true)` (the proxy is ignored while the ratelimiter is
//! on). serenity asks `GET /api/v10/gateway` for the gateway URL and gets this
//! fake's `ws://127.0.0.1:PORT/gateway`.
//!
//! Like Discord, the fake refuses what Discord refuses, with Discord's status,
//! error code and message: an unknown or forbidden channel, a second answer to
//! an interaction, an answer after the 3 s deadline, a follow-up before the
//! interaction was answered, an empty message, content over 2000 characters,
//! a nonce over 25, embeds or components over their limits, a reply to an
//! unknown message, a second thread on a message, an invalid command
//! registration. A request to a route it does not know is answered 404 and
//! recorded as unexpected; a fake dropped with unexpected requests fails the
//! test.
//!
//! Where it is kinder than Discord: any `Bot …` token is accepted, nothing
//! expires (interaction tokens, nonces), there is no rate limiting unless asked
//! for ([`FakeDiscord::rate_limit_next`]), no GUILD_CREATE is sent (the crate
//! has no cache), and the bot may post anywhere it is not forbidden.
//!
//! [`FakeDiscord::dispatch`] refuses a payload serenity would drop silently
//! (see `discord_fixtures::check_dispatch`).
//!
//! Every `wait_*` method has a timeout and panics when it passes, with a
//! summary of what the fake saw; each comes blocking (for `#[test]`s) and
//! `async` (`*_async`, for `#[tokio::test]`s: a blocking wait would stall a
//! current-thread runtime that also runs the bot), except the wait for
//! follow-ups, which only async tests need.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use regex::Regex;
use serde_json::{json, Value};
use serenity::futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::discord_fixtures as fx;

/// The token the tests give serenity (any `Bot …` token is accepted).
pub const TOKEN: &str = "fake-token";
/// Discord's heartbeat interval; [`FakeDiscord::set_heartbeat_interval`]
/// shortens it for a test about heartbeats.
pub const HEARTBEAT_INTERVAL_MS: u64 = 41_250;
/// How long Discord gives a bot to answer an interaction.
pub const INTERACTION_DEADLINE: Duration = Duration::from_secs(3);
/// How often a wait looks again when nothing changed in the fake.
pub const RECHECK: Duration = Duration::from_millis(50);
/// The channel every fake starts with (`#general`, [`fx::CHANNEL_ID`]).
pub const GENERAL: u64 = fx::CHANNEL_ID;

const MESSAGE_FLAG_EPHEMERAL: u64 = 1 << 6;
const MESSAGE_FLAG_LOADING: u64 = 1 << 7;
const MESSAGE_FLAG_HAS_THREAD: u64 = 1 << 5;

/// A running fake Discord; stops when dropped.
pub struct FakeDiscord {
    pub port: u16,
    /// `http://127.0.0.1:PORT`, what `HttpBuilder::proxy` takes.
    pub base: String,
    pub app_id: u64,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

struct Shared {
    model: Mutex<Model>,
    /// Bumped on every change of the model, for the waits.
    version: Mutex<u64>,
    changed: Condvar,
    watch: watch::Sender<u64>,
    /// To every gateway session that has identified (or resumed).
    gateway: broadcast::Sender<GwOut>,
}

#[derive(Clone, Debug)]
enum GwOut {
    Dispatch(String, Value),
    Close(u16),
}

struct Model {
    port: u16,
    app_id: u64,
    bot_id: u64,
    guild_id: u64,
    heartbeat_interval: u64,
    deadline: Option<Duration>,
    channels: BTreeMap<u64, ChannelRec>,
    /// Every message, in the order created.
    messages: Vec<MsgRec>,
    /// (channel, nonce) → message id, for `enforce_nonce`.
    nonces: HashMap<(u64, String), u64>,
    deduplicated: usize,
    interactions: HashMap<u64, IxRec>,
    callbacks: Vec<Value>,
    /// Registered commands by scope (`None`: global).
    commands: BTreeMap<Option<u64>, Vec<Value>>,
    command_puts: usize,
    fail: Option<Failure>,
    dispatched: Vec<(String, Value)>,
    gateway_paths: Vec<String>,
    identifies: Vec<Value>,
    ready_sent: usize,
    heartbeats: Vec<Value>,
    resumes: usize,
    /// The gateway refuses connections (Discord unreachable).
    gateway_down: bool,
    /// Session id → last sequence number sent.
    sessions: HashMap<String, u64>,
    requests: Vec<String>,
    unexpected: Vec<String>,
    next_id: u64,
}

struct ChannelRec {
    id: u64,
    name: String,
    /// 0 text, 11 public thread, 12 private thread.
    kind: u8,
    parent_id: Option<u64>,
    forbidden: bool,
    auto_archive: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Channel,
    /// The interaction response (`@original`) of the interaction with this token.
    Original(String),
    Followup(String),
}

struct MsgRec {
    id: u64,
    channel_id: u64,
    origin: Origin,
    /// The body that created it (`payload_json` of a multipart body).
    request: Value,
    /// As Discord would return it now.
    message: Value,
    /// The bodies of the edits, in order.
    edits: Vec<Value>,
    thread_id: Option<u64>,
    files: Vec<Value>,
    pings: Value,
}

struct IxRec {
    token: String,
    kind: u8,
    channel_id: u64,
    /// The message of a component interaction.
    message: Option<Value>,
    dispatched: Instant,
    acked: bool,
    /// The message `@original` stands for, once answered.
    original: Option<u64>,
}

struct Failure {
    status: u16,
    left: usize,
    retry_after: f64,
}

struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }
    fn error(status: u16, code: u64, message: &str) -> Reply {
        Reply {
            status,
            body: Some(json!({"message": message, "code": code})),
            headers: Vec::new(),
        }
    }
    /// 400 "Invalid Form Body" with one error at `path` (dotted), as Discord
    /// nests them (`{"content": {"_errors": [{code, message}]}}`).
    fn invalid(path: &str, code: &str, message: &str) -> Reply {
        let mut errors = json!({"_errors": [{"code": code, "message": message}]});
        for part in path.rsplit('.').filter(|p| !p.is_empty()) {
            errors = json!({ part: errors });
        }
        Reply {
            status: 400,
            body: Some(json!({"message": "Invalid Form Body", "code": 50035, "errors": errors})),
            headers: Vec::new(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            Some(b) => (status, axum::Json(b)).into_response(),
            None => status.into_response(),
        };
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

type Check = Result<(), Reply>;

impl FakeDiscord {
    /// A Discord with application [`fx::APP_ID`] (bot user [`fx::BOT_ID`],
    /// [`fx::BOT_NAME`]) in guild [`fx::GUILD_ID`], which has one text channel,
    /// [`GENERAL`].
    pub fn start() -> FakeDiscord {
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let mut channels = BTreeMap::new();
        channels.insert(
            GENERAL,
            ChannelRec {
                id: GENERAL,
                name: "general".into(),
                kind: 0,
                parent_id: None,
                forbidden: false,
                auto_archive: 1440,
            },
        );
        let (gateway, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            model: Mutex::new(Model {
                port: addr.port(),
                app_id: fx::APP_ID,
                bot_id: fx::BOT_ID,
                guild_id: fx::GUILD_ID,
                heartbeat_interval: HEARTBEAT_INTERVAL_MS,
                deadline: Some(INTERACTION_DEADLINE),
                channels,
                messages: Vec::new(),
                nonces: HashMap::new(),
                deduplicated: 0,
                interactions: HashMap::new(),
                callbacks: Vec::new(),
                commands: BTreeMap::new(),
                command_puts: 0,
                fail: None,
                dispatched: Vec::new(),
                gateway_paths: Vec::new(),
                identifies: Vec::new(),
                ready_sent: 0,
                heartbeats: Vec::new(),
                resumes: 0,
                gateway_down: false,
                sessions: HashMap::new(),
                requests: Vec::new(),
                unexpected: Vec::new(),
                next_id: 1_400_000_000_000_000_000,
            }),
            version: Mutex::new(0),
            changed: Condvar::new(),
            watch: watch::channel(0).0,
            gateway,
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let (http_tx, http_rx) = mpsc::channel(64);
                let accept = tokio::spawn(accept_loop(listener, http_tx, state.clone()));
                let app = Router::new().fallback(handle).with_state(state);
                let http = HttpConns { rx: http_rx, addr };
                tokio::select! {
                    _ = axum::serve(http, app) => {}
                    _ = stop_rx => {}
                }
                accept.abort();
            });
        });
        FakeDiscord {
            port: addr.port(),
            base: format!("http://{addr}"),
            app_id: fx::APP_ID,
            shared,
            stop: Some(stop_tx),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.shared.model)
    }

    /// Changes the model and wakes the waits.
    fn change<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        let out = f(&mut self.model());
        self.shared.bump();
        out
    }

    /// A serenity `Http` for this fake, as the bot builds it, with the
    /// application id already set (a bot learns it from READY).
    pub fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(self.base.clone())
            .ratelimiter_disabled(true)
            .application_id(self.app_id.into())
            .build()
    }

    /// `ws://127.0.0.1:PORT/gateway`, what `GET /gateway` answers.
    pub fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }

    // ---- the model: setup and knobs ----

    /// Adds text channel `id` to the guild.
    pub fn add_channel(&self, id: u64, name: &str) {
        self.change(|m| {
            m.channels.insert(
                id,
                ChannelRec {
                    id,
                    name: name.into(),
                    kind: 0,
                    parent_id: None,
                    forbidden: false,
                    auto_archive: 1440,
                },
            )
        });
    }

    /// The bot lacks permissions in channel `id` (added before): posts, edits
    /// and threads there get 403 `Missing Permissions` (50013).
    pub fn forbid_channel(&self, id: u64) {
        self.change(|m| {
            m.channels
                .get_mut(&id)
                .expect("forbid_channel: add_channel first")
                .forbidden = true
        });
    }

    /// Answers the next `n` `POST /channels/*/messages` with `status` (for a
    /// 429, with `retry-after: 1` and Discord's rate-limit body).
    pub fn fail_next(&self, status: u16, n: usize) {
        self.change(|m| {
            m.fail = Some(Failure {
                status,
                left: n,
                retry_after: 1.0,
            })
        });
    }

    /// Rate-limits the next `n` `POST /channels/*/messages`: 429 with
    /// `retry_after` seconds in the body and the `retry-after` header (whole
    /// seconds, rounded up, as Discord sends it).
    pub fn rate_limit_next(&self, n: usize, retry_after: f64) {
        self.change(|m| {
            m.fail = Some(Failure {
                status: 429,
                left: n,
                retry_after,
            })
        });
    }

    /// The HELLO heartbeat interval for gateway sessions that connect after this.
    pub fn set_heartbeat_interval(&self, ms: u64) {
        self.change(|m| m.heartbeat_interval = ms);
    }

    /// How long after its dispatch an interaction can still be answered
    /// (`None`: forever). Discord's 3 s by default.
    pub fn set_interaction_deadline(&self, d: Option<Duration>) {
        self.change(|m| m.deadline = d);
    }

    // ---- the gateway ----

    /// Sends dispatch `kind` (`"INTERACTION_CREATE"`, …) with payload `d` to
    /// every gateway session, with the session's next sequence number. Panics
    /// if serenity would drop the payload, or if no session is ready.
    pub fn dispatch(&self, kind: &str, d: Value) {
        if let Err(e) = fx::check_dispatch(kind, &d) {
            panic!("dispatch {kind}: {e}\npayload: {d}");
        }
        self.dispatch_unchecked(kind, d);
    }

    /// [`Self::dispatch`] without the check (to test what serenity does with a
    /// payload it cannot parse).
    pub fn dispatch_unchecked(&self, kind: &str, d: Value) {
        self.change(|m| {
            if kind == "INTERACTION_CREATE" {
                m.note_interaction(&d);
            }
            m.dispatched.push((kind.to_string(), d.clone()));
        });
        if self
            .shared
            .gateway
            .send(GwOut::Dispatch(kind.to_string(), d))
            .is_err()
        {
            panic!(
                "dispatch {kind}: no gateway session has identified (wait_ready first)\n{}",
                self.summary()
            );
        }
    }

    /// Closes every gateway session with close `code` (4000: serenity resumes;
    /// 4004: authentication failed, serenity gives up).
    pub fn close_gateway(&self, code: u16) {
        let _ = self.shared.gateway.send(GwOut::Close(code));
    }

    /// Makes the gateway unreachable (sessions closed, new connections
    /// dropped before the handshake), or reachable again.
    pub fn set_gateway_down(&self, down: bool) {
        self.change(|m| m.gateway_down = down);
        if down {
            self.close_gateway(4000);
        }
    }

    /// The `d` of every IDENTIFY, in order.
    pub fn identifies(&self) -> Vec<Value> {
        self.model().identifies.clone()
    }

    /// The intents of the last IDENTIFY.
    pub fn identify_intents(&self) -> Option<u64> {
        self.model()
            .identifies
            .last()
            .and_then(|d| d["intents"].as_u64())
    }

    /// How many READY dispatches were sent.
    pub fn ready_count(&self) -> usize {
        self.model().ready_sent
    }

    /// The `d` (last sequence number seen) of every heartbeat received.
    pub fn heartbeats(&self) -> Vec<Value> {
        self.model().heartbeats.clone()
    }

    /// How many sessions were resumed (op 6 answered with RESUMED).
    pub fn resumes(&self) -> usize {
        self.model().resumes
    }

    /// The request path of every gateway connection (`/gateway?v=10`).
    pub fn gateway_connections(&self) -> Vec<String> {
        self.model().gateway_paths.clone()
    }

    // ---- what the bot did ----

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.model().requests.clone()
    }

    /// How many requests were exactly `METHOD /path` (query ignored).
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

    /// The messages posted to channel (or thread) `channel_id` with
    /// `POST /channels/{id}/messages`, oldest first; see [`Self::message`].
    pub fn messages(&self, channel_id: u64) -> Vec<Value> {
        let m = self.model();
        m.messages
            .iter()
            .filter(|r| r.origin == Origin::Channel && r.channel_id == channel_id)
            .map(view)
            .collect()
    }

    /// Message `id` (posted, an interaction reply or a follow-up) as recorded:
    /// `id`, `channel_id`, `content`, `embeds`, `components`, `flags`,
    /// `attachments` (as now, after edits); `nonce`, `enforce_nonce`,
    /// `allowed_mentions`, `message_reference` (as sent); `pings` (who
    /// Discord would notify: `{"everyone", "users", "roles"}`, from the
    /// content and `allowed_mentions`); `files` (uploads: `filename`, `size`,
    /// `content`); `edits` (a count), `edit_bodies`; `thread_id`; `request`
    /// (the body that created it) and `message` (the Message JSON as Discord
    /// returns it now).
    pub fn message(&self, id: u64) -> Option<Value> {
        self.model().messages.iter().find(|r| r.id == id).map(view)
    }

    /// How many sends were answered with an earlier message because of
    /// `enforce_nonce`.
    pub fn deduplicated(&self) -> usize {
        self.model().deduplicated
    }

    /// The threads started in channel `parent`, as Channel JSON.
    pub fn threads(&self, parent: u64) -> Vec<Value> {
        let m = self.model();
        m.channels
            .values()
            .filter(|c| c.parent_id == Some(parent))
            .map(|c| m.channel_json(c))
            .collect()
    }

    /// Every interaction callback received (accepted or not), oldest first:
    /// `interaction_id`, `token`, `type`, `data`, `status` (the answer) and
    /// `error` (Discord's error, when refused), `after_ms` (since dispatch).
    pub fn callbacks(&self) -> Vec<Value> {
        self.model().callbacks.clone()
    }

    /// The reply to the interaction with `token` (`@original`, as
    /// [`Self::message`] describes), once answered with type 4 or 5 (or the
    /// component's message, for 6 and 7).
    pub fn original(&self, token: &str) -> Option<Value> {
        let m = self.model();
        let id = m
            .interactions
            .values()
            .find(|i| i.token == token)?
            .original?;
        m.messages.iter().find(|r| r.id == id).map(view)
    }

    /// The follow-up messages of the interaction with `token`, oldest first.
    pub fn followups(&self, token: &str) -> Vec<Value> {
        let m = self.model();
        m.messages
            .iter()
            .filter(|r| r.origin == Origin::Followup(token.to_string()))
            .map(view)
            .collect()
    }

    /// The commands registered now (each scope as last overwritten), as the
    /// Command JSON the fake answered (`guild_id` null for global ones).
    pub fn commands(&self) -> Vec<Value> {
        self.model().commands.values().flatten().cloned().collect()
    }

    /// How many bulk command registrations (PUTs) were accepted.
    pub fn command_registrations(&self) -> usize {
        self.model().command_puts
    }

    // ---- waits ----

    /// Waits until `f` returns something, or panics after `timeout` with
    /// `what` and a summary of the fake. `f` runs on every change of the fake,
    /// and at least every [`RECHECK`] (so it may look at things outside the
    /// fake too, such as errors the bot collected).
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&FakeDiscord) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = *lock(&self.shared.version);
            if let Some(t) = f(self) {
                return t;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.summary()
                );
            }
            let g = lock(&self.shared.version);
            let _ = self
                .shared
                .changed
                .wait_timeout_while(g, (deadline - now).min(RECHECK), |v| *v == seen);
        }
    }

    /// [`Self::wait_until`] for async tests.
    pub async fn wait_until_async<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&FakeDiscord) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.shared.watch.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(t) = f(self) {
                return t;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.summary()
                );
            }
            let next = deadline.min(tokio::time::Instant::now() + RECHECK);
            let _ = tokio::time::timeout_at(next, rx.changed()).await;
        }
    }

    /// Waits until a gateway session got READY.
    pub fn wait_ready(&self, timeout: Duration) {
        self.wait_until("READY", timeout, ready_sent)
    }

    /// Waits for the first callback to interaction `interaction_id` and
    /// returns its body (`{"type": …, "data": …}`). Panics at once if Discord
    /// would have refused it (answered late, twice, …).
    pub fn wait_callback(&self, interaction_id: u64, timeout: Duration) -> Value {
        let what = format!("a callback to interaction {interaction_id}");
        self.wait_until(&what, timeout, |f| f.callback_of(interaction_id))
    }

    /// Waits until channel `channel_id` has at least `n` messages; returns them all.
    pub fn wait_messages(&self, channel_id: u64, n: usize, timeout: Duration) -> Vec<Value> {
        let what = format!("{n} message(s) in channel {channel_id}");
        self.wait_until(&what, timeout, |f| at_least(f.messages(channel_id), n))
    }

    /// Waits until the interaction with `token` has a visible reply (answered
    /// with a message, or deferred and then edited) and returns it.
    pub fn wait_reply(&self, token: &str, timeout: Duration) -> Value {
        let what = format!("a reply to the interaction with token {token}");
        self.wait_until(&what, timeout, |f| visible_reply(f.original(token)))
    }

    /// Waits until commands were registered; returns them.
    pub fn wait_commands(&self, timeout: Duration) -> Vec<Value> {
        self.wait_until("a command registration", timeout, registered)
    }

    /// [`Self::wait_ready`] for async tests.
    pub async fn wait_ready_async(&self, timeout: Duration) {
        self.wait_until_async("READY", timeout, ready_sent).await
    }

    /// [`Self::wait_callback`] for async tests.
    pub async fn wait_callback_async(&self, interaction_id: u64, timeout: Duration) -> Value {
        let what = format!("a callback to interaction {interaction_id}");
        self.wait_until_async(&what, timeout, |f| f.callback_of(interaction_id))
            .await
    }

    /// [`Self::wait_messages`] for async tests.
    pub async fn wait_messages_async(
        &self,
        channel_id: u64,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let what = format!("{n} message(s) in channel {channel_id}");
        self.wait_until_async(&what, timeout, |f| at_least(f.messages(channel_id), n))
            .await
    }

    /// [`Self::wait_reply`] for async tests.
    pub async fn wait_reply_async(&self, token: &str, timeout: Duration) -> Value {
        let what = format!("a reply to the interaction with token {token}");
        self.wait_until_async(&what, timeout, |f| visible_reply(f.original(token)))
            .await
    }

    /// Waits until the interaction with `token` has `n` follow-ups; returns them all.
    pub async fn wait_followups_async(
        &self,
        token: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let what = format!("{n} follow-up(s) to the interaction with token {token}");
        self.wait_until_async(&what, timeout, |f| at_least(f.followups(token), n))
            .await
    }

    /// [`Self::wait_commands`] for async tests.
    pub async fn wait_commands_async(&self, timeout: Duration) -> Vec<Value> {
        self.wait_until_async("a command registration", timeout, registered)
            .await
    }

    /// The body of the first callback to `interaction_id`; panics if refused.
    fn callback_of(&self, interaction_id: u64) -> Option<Value> {
        let m = self.model();
        let id = interaction_id.to_string();
        let cb = m.callbacks.iter().find(|c| c["interaction_id"] == id)?;
        if cb["status"] != 204 {
            let cb = cb.clone();
            drop(m);
            panic!("Discord would refuse the callback to interaction {interaction_id}: {cb}");
        }
        Some(json!({"type": cb["type"], "data": cb["data"]}))
    }

    /// What the fake saw, for a failure message.
    pub fn summary(&self) -> String {
        let m = self.model();
        let last: Vec<&String> = m.requests.iter().rev().take(30).collect();
        format!(
            "fake Discord: {} gateway connection(s), {} IDENTIFY, {} READY, {} dispatch(es) \
             ({:?}); {} callback(s); {} message(s); unexpected: {:?}; last requests (newest \
             first): {:?}",
            m.gateway_paths.len(),
            m.identifies.len(),
            m.ready_sent,
            m.dispatched.len(),
            m.dispatched
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            m.callbacks.len(),
            m.messages.len(),
            m.unexpected,
            last
        )
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let unexpected = self.unexpected();
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!("the fake Discord got unexpected requests: {unexpected:?}");
        }
    }
}

fn ready_sent(f: &FakeDiscord) -> Option<()> {
    (f.ready_count() > 0).then_some(())
}

fn registered(f: &FakeDiscord) -> Option<Vec<Value>> {
    (f.command_registrations() > 0).then(|| f.commands())
}

fn at_least(v: Vec<Value>, n: usize) -> Option<Vec<Value>> {
    (v.len() >= n).then_some(v)
}

fn visible_reply(o: Option<Value>) -> Option<Value> {
    o.filter(|o| o["flags"].as_u64().unwrap_or(0) & MESSAGE_FLAG_LOADING == 0)
}

impl Shared {
    fn bump(&self) {
        let n = {
            let mut v = lock(&self.version);
            *v += 1;
            *v
        };
        self.changed.notify_all();
        self.watch.send_replace(n);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A message record as the tests see it.
fn view(r: &MsgRec) -> Value {
    let msg = &r.message;
    json!({
        "id": r.id.to_string(),
        "channel_id": r.channel_id.to_string(),
        "content": msg["content"],
        "embeds": msg["embeds"],
        "components": msg["components"],
        "flags": msg["flags"],
        "attachments": msg["attachments"],
        "nonce": r.request.get("nonce").cloned().unwrap_or(Value::Null),
        "enforce_nonce": r.request["enforce_nonce"].as_bool().unwrap_or(false),
        "allowed_mentions": r.request.get("allowed_mentions").cloned().unwrap_or(Value::Null),
        "message_reference": r.request.get("message_reference").cloned().unwrap_or(Value::Null),
        "pings": r.pings,
        "files": r.files,
        "edits": r.edits.len(),
        "edit_bodies": r.edits,
        "thread_id": r.thread_id.map(|t| t.to_string()),
        "request": r.request,
        "message": msg,
    })
}

// ---- connections: one port, HTTP or the gateway ----

/// The HTTP connections, handed over by [`accept_loop`].
struct HttpConns {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for HttpConns {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Accepts connections and sends each to the gateway (a request for
/// `/gateway…`, which the REST API never gets: it is under `/api/v10`) or to
/// the HTTP server.
async fn accept_loop(
    listener: TcpListener,
    http: mpsc::Sender<(TcpStream, SocketAddr)>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        // Like Discord's servers: no Nagle delay on small writes (without
        // this a reply written in two parts waits ~40 ms for a delayed ACK).
        let _ = stream.set_nodelay(true);
        let http = http.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if is_gateway(&stream).await {
                if lock(&shared.model).gateway_down {
                    // Unreachable: the connection ends before the handshake.
                    return;
                }
                gateway_session(stream, shared).await;
            } else {
                let _ = http.send((stream, addr)).await;
            }
        });
    }
}

async fn is_gateway(stream: &TcpStream) -> bool {
    const GATEWAY: &[u8] = b"GET /gateway";
    let mut buf = [0u8; GATEWAY.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n >= buf.len() => return buf == GATEWAY,
            Ok(Ok(n)) if n > 0 && buf[..n] == GATEWAY[..n] => {
                // Only part of the request line so far.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            _ => return false,
        }
    }
}

// ---- the gateway ----

async fn gateway_session(stream: TcpStream, shared: Arc<Shared>) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response as WsResponse};
    let mut path = String::new();
    // The callback's type is tungstenite's, large error and all.
    #[allow(clippy::result_large_err)]
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: WsResponse| {
        path = req.uri().to_string();
        Ok(resp)
    })
    .await;
    let Ok(ws) = ws else {
        lock(&shared.model)
            .unexpected
            .push("a gateway connection that failed the websocket handshake".into());
        shared.bump();
        return;
    };
    let interval = {
        let mut m = lock(&shared.model);
        m.gateway_paths.push(path);
        m.heartbeat_interval
    };
    shared.bump();
    let (mut tx, mut rx) = ws.split();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}});
    if tx.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    let mut events: Option<broadcast::Receiver<GwOut>> = None;
    let mut session = String::new();
    let mut seq = 0u64;
    loop {
        let out = tokio::select! {
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(_))) => {
                        note_unexpected(&shared, "a binary gateway frame".into());
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    note_unexpected(&shared, format!("a gateway frame that is not JSON: {text}"));
                    continue;
                };
                match frame["op"].as_u64() {
                    Some(2) => {
                        events = Some(shared.gateway.subscribe());
                        let ready = {
                            let mut m = lock(&shared.model);
                            m.identifies.push(frame["d"].clone());
                            let mut ready = fx::ready(m.app_id, m.bot_id, m.port);
                            ready["guilds"] = json!([{"id": m.guild_id.to_string(), "unavailable": true}]);
                            session = ready["session_id"].as_str().unwrap_or_default().to_string();
                            m.sessions.insert(session.clone(), 1);
                            ready
                        };
                        seq = 1;
                        let sent = tx
                            .send(WsMessage::Text(json!({"op": 0, "s": 1, "t": "READY", "d": ready}).to_string()))
                            .await;
                        lock(&shared.model).ready_sent += 1;
                        shared.bump();
                        if sent.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(1) => {
                        lock(&shared.model).heartbeats.push(frame["d"].clone());
                        shared.bump();
                        json!({"op": 11})
                    }
                    // A presence update: accepted, not kept.
                    Some(3) => continue,
                    Some(6) => {
                        let wanted = frame["d"]["session_id"].as_str().unwrap_or_default().to_string();
                        let last = lock(&shared.model).sessions.get(&wanted).copied();
                        match last {
                            Some(last) => {
                                events = Some(shared.gateway.subscribe());
                                session = wanted;
                                seq = last.max(frame["d"]["seq"].as_u64().unwrap_or(0)) + 1;
                                let mut m = lock(&shared.model);
                                m.resumes += 1;
                                m.sessions.insert(session.clone(), seq);
                                drop(m);
                                shared.bump();
                                json!({"op": 0, "s": seq, "t": "RESUMED", "d": {}})
                            }
                            None => json!({"op": 9, "d": false}),
                        }
                    }
                    _ => {
                        note_unexpected(&shared, format!("gateway frame {text}"));
                        continue;
                    }
                }
            }
            out = next_out(&mut events) => match out {
                GwOut::Dispatch(kind, d) => {
                    seq += 1;
                    lock(&shared.model).sessions.insert(session.clone(), seq);
                    json!({"op": 0, "s": seq, "t": kind, "d": d})
                }
                GwOut::Close(code) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: "fake Discord".into() };
                    let _ = tx.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
            },
        };
        if tx.send(WsMessage::Text(out.to_string())).await.is_err() {
            break;
        }
    }
}

async fn next_out(rx: &mut Option<broadcast::Receiver<GwOut>>) -> GwOut {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(out) => return out,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

fn note_unexpected(shared: &Shared, what: String) {
    lock(&shared.model).unexpected.push(what);
    shared.bump();
}

// ---- REST ----

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let reply = lock(&shared.model).handle(&method, &uri, &headers, &body);
    shared.bump();
    reply
}

impl Model {
    fn handle(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, raw: &Bytes) -> Reply {
        let line = format!(
            "{method} {}",
            uri.path_and_query().map_or(uri.path(), |p| p.as_str())
        );
        self.requests.push(line.clone());
        let Some(rest) = uri.path().strip_prefix("/api/v10/") else {
            return self.unknown(line);
        };
        let segs: Vec<&str> = rest.split('/').collect();
        // Interaction callbacks and webhooks go by their token; `GET /gateway`
        // needs nothing.
        let token_auth = matches!(segs[0], "webhooks" | "interactions") || segs == ["gateway"];
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !token_auth && auth.strip_prefix("Bot ").is_none_or(str::is_empty) {
            return Reply::error(401, 0, "401: Unauthorized");
        }
        let (body, files) = match parse_body(headers, raw) {
            Ok(b) => b,
            Err(e) => {
                return Reply::error(
                    400,
                    50109,
                    &format!("The request body contains invalid JSON. ({e})"),
                )
            }
        };
        let r = match (method.as_str(), segs.as_slice()) {
            ("GET", ["gateway"]) => Ok(Reply::ok(json!({"url": self.gateway_url()}))),
            ("GET", ["gateway", "bot"]) => Ok(Reply::ok(json!({
                "url": self.gateway_url(),
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }))),
            ("GET", ["oauth2", "applications", "@me"]) => Ok(Reply::ok(self.application())),
            ("GET", ["users", "@me"]) => Ok(Reply::ok(fx::bot_user(self.bot_id, fx::BOT_NAME))),
            ("GET", ["applications", app, "guilds", guild, "commands"]) => {
                self.get_commands(app, Some(guild))
            }
            ("GET", ["applications", app, "commands"]) => self.get_commands(app, None),
            ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
                self.put_commands(app, Some(guild), &body)
            }
            ("PUT", ["applications", app, "commands"]) => self.put_commands(app, None, &body),
            ("GET", ["channels", c]) => self
                .channel_ok(c, false)
                .map(|c| Reply::ok(self.channel_json(&self.channels[&c]))),
            ("POST", ["channels", c, "messages"]) => self.post_message(c, body, files),
            ("GET", ["channels", c, "messages", mid]) => self.get_message(c, mid),
            ("PATCH", ["channels", c, "messages", mid]) => self.edit_message(c, mid, &body),
            ("POST", ["channels", c, "messages", mid, "threads"]) => {
                self.start_thread(c, mid, &body)
            }
            ("POST", ["interactions", id, token, "callback"]) => {
                self.callback(id, token, &body, files)
            }
            ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
                self.edit_original(app, token, &body)
            }
            ("POST", ["webhooks", app, token]) => self.followup(app, token, body, files),
            _ => return self.unknown(line),
        };
        r.unwrap_or_else(|e| e)
    }

    fn unknown(&mut self, line: String) -> Reply {
        self.unexpected.push(line);
        Reply::error(404, 0, "404: Not Found")
    }

    fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }

    fn application(&self) -> Value {
        json!({
            "id": self.app_id.to_string(),
            "name": fx::BOT_NAME,
            "icon": null,
            "description": "",
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": "0".repeat(64),
            "owner": fx::user(fx::USER_ID, fx::USER_NAME),
            "team": null,
            "flags": 0,
        })
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn note_interaction(&mut self, d: &Value) {
        let id = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
        let Some(ix) = id(&d["id"]) else { return };
        self.interactions.insert(
            ix,
            IxRec {
                token: d["token"].as_str().unwrap_or_default().to_string(),
                kind: d["type"].as_u64().unwrap_or(0) as u8,
                channel_id: id(&d["channel_id"]).unwrap_or(0),
                message: d.get("message").cloned(),
                dispatched: Instant::now(),
                acked: false,
                original: None,
            },
        );
    }

    // ---- channels ----

    /// The channel `c`, if it exists (404 10003) and, with `write`, the bot
    /// may post in it (403 50013).
    fn channel_ok(&self, c: &str, write: bool) -> Result<u64, Reply> {
        let unknown = || Reply::error(404, 10003, "Unknown Channel");
        let id: u64 = c.parse().map_err(|_| unknown())?;
        let ch = self.channels.get(&id).ok_or_else(unknown)?;
        if write && ch.forbidden {
            return Err(Reply::error(403, 50013, "Missing Permissions"));
        }
        Ok(id)
    }

    fn channel_json(&self, c: &ChannelRec) -> Value {
        let mut v = json!({
            "id": c.id.to_string(),
            "type": c.kind,
            "guild_id": self.guild_id.to_string(),
            "name": c.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": false,
            "topic": null,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "parent_id": c.parent_id.map(|p| p.to_string()),
            "flags": 0,
        });
        if c.kind == 11 || c.kind == 12 {
            let now = fx::now();
            v["owner_id"] = json!(self.bot_id.to_string());
            v["message_count"] = json!(0);
            v["member_count"] = json!(1);
            v["total_message_sent"] = json!(0);
            v["thread_metadata"] = json!({
                "archived": false,
                "auto_archive_duration": c.auto_archive,
                "archive_timestamp": now,
                "locked": false,
                "create_timestamp": now,
            });
            v.as_object_mut().unwrap().remove("permission_overwrites");
            v.as_object_mut().unwrap().remove("topic");
        }
        v
    }

    // ---- messages ----

    fn post_message(&mut self, c: &str, body: Value, files: Vec<Value>) -> Result<Reply, Reply> {
        if let Some(f) = &mut self.fail {
            if f.left > 0 {
                f.left -= 1;
                return Err(failure(f.status, f.retry_after));
            }
        }
        let c = self.channel_ok(c, true)?;
        validate_message(&body, !files.is_empty(), true)?;
        let nonce = match &body["nonce"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        // Discord takes a nonce of 25 characters at most.
        check_len("nonce", nonce.as_deref().unwrap_or(""), 0, 25)?;
        if let (Some(nonce), true) = (&nonce, body["enforce_nonce"] == true) {
            if let Some(&id) = self.nonces.get(&(c, nonce.clone())) {
                self.deduplicated += 1;
                let r = self.messages.iter().find(|r| r.id == id).unwrap();
                return Ok(Reply::ok(r.message.clone()));
            }
        }
        let reference = self.reference(c, &body)?;
        let id = self.next_id();
        let mut rec = self.new_message(id, c, Origin::Channel, body, files);
        if let Some(referenced) = reference {
            rec.message["type"] = json!(19);
            rec.message["referenced_message"] = referenced;
        }
        if let (Some(nonce), true) = (nonce, rec.request["enforce_nonce"] == true) {
            self.nonces.insert((c, nonce), id);
        }
        let out = rec.message.clone();
        self.messages.push(rec);
        Ok(Reply::ok(out))
    }

    /// The message a reply refers to (Discord refuses a reply to an unknown
    /// message unless `fail_if_not_exists` is false).
    fn reference(&self, c: u64, body: &Value) -> Result<Option<Value>, Reply> {
        let r = &body["message_reference"];
        let Some(mid) = r["message_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| r["message_id"].as_u64().map(|n| n.to_string()))
        else {
            return Ok(None);
        };
        let in_channel = r["channel_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(c);
        let found = self
            .messages
            .iter()
            .find(|m| m.id.to_string() == mid && m.channel_id == in_channel);
        match found {
            Some(m) => Ok(Some(m.message.clone())),
            None if r["fail_if_not_exists"] == false => Ok(None),
            None => Err(Reply::invalid(
                "message_reference",
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            )),
        }
    }

    fn new_message(
        &mut self,
        id: u64,
        channel_id: u64,
        origin: Origin,
        body: Value,
        files: Vec<Value>,
    ) -> MsgRec {
        let content = body["content"].as_str().unwrap_or_default();
        let mut message = fx::message(
            id,
            channel_id,
            fx::bot_user(self.bot_id, fx::BOT_NAME),
            content,
        );
        for key in ["embeds", "components"] {
            if let Some(v @ Value::Array(_)) = body.get(key) {
                message[key] = v.clone();
            }
        }
        message["flags"] = json!(body["flags"].as_u64().unwrap_or(0));
        message["tts"] = json!(body["tts"] == true);
        if !body["nonce"].is_null() {
            message["nonce"] = body["nonce"].clone();
        }
        if let Some(r) = body.get("message_reference").filter(|r| r.is_object()) {
            let mut r = r.clone();
            if r["channel_id"].is_null() {
                r["channel_id"] = json!(channel_id.to_string());
            }
            r["guild_id"] = json!(self.guild_id.to_string());
            message["message_reference"] = r;
        }
        if origin != Origin::Channel {
            message["webhook_id"] = json!(self.app_id.to_string());
            message["application_id"] = json!(self.app_id.to_string());
        }
        let attachment_ids: Vec<u64> = files.iter().map(|_| self.next_id()).collect();
        message["attachments"] = Value::Array(
            files
                .iter()
                .zip(attachment_ids)
                .map(|(f, attachment_id)| {
                    let url = format!(
                        "https://cdn.fake/attachments/{channel_id}/{id}/{}",
                        f["filename"].as_str().unwrap_or("")
                    );
                    json!({
                        "id": attachment_id.to_string(),
                        "filename": f["filename"],
                        "size": f["size"],
                        "url": url,
                        "proxy_url": url,
                        "content_type": f["content_type"],
                    })
                })
                .collect(),
        );
        let pings = pings(content, body.get("allowed_mentions"));
        message["mention_everyone"] = pings["everyone"].clone();
        message["mentions"] = Value::Array(
            pings["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    let id: u64 = u.as_str().unwrap().parse().unwrap();
                    fx::user(id, &format!("user-{id}"))
                })
                .collect(),
        );
        message["mention_roles"] = pings["roles"].clone();
        MsgRec {
            id,
            channel_id,
            origin,
            request: body,
            message,
            edits: Vec::new(),
            thread_id: None,
            files: files
                .into_iter()
                .map(|mut f| {
                    f.as_object_mut().unwrap().remove("content_type");
                    f
                })
                .collect(),
            pings,
        }
    }

    fn find_message(&mut self, c: u64, mid: &str) -> Result<usize, Reply> {
        self.messages
            .iter()
            .position(|r| {
                r.id.to_string() == mid && r.channel_id == c && r.origin == Origin::Channel
            })
            .ok_or_else(|| Reply::error(404, 10008, "Unknown Message"))
    }

    fn get_message(&mut self, c: &str, mid: &str) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, false)?;
        let i = self.find_message(c, mid)?;
        Ok(Reply::ok(self.messages[i].message.clone()))
    }

    fn edit_message(&mut self, c: &str, mid: &str, body: &Value) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, true)?;
        let i = self.find_message(c, mid)?;
        Ok(Reply::ok(apply_edit(&mut self.messages[i], body)?))
    }

    fn start_thread(&mut self, c: &str, mid: &str, body: &Value) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, true)?;
        if self.channels[&c].kind != 0 {
            return Err(Reply::error(
                400,
                50024,
                "Cannot execute action on this channel type",
            ));
        }
        let i = self.find_message(c, mid)?;
        if self.messages[i].thread_id.is_some() {
            return Err(Reply::error(
                400,
                160004,
                "A thread has already been created for this message",
            ));
        }
        let name = body["name"].as_str().unwrap_or_default();
        check_len("name", name, 1, 100)?;
        // A thread started from a message has the message's id.
        let id = self.messages[i].id;
        let ch = ChannelRec {
            id,
            name: name.into(),
            kind: 11,
            parent_id: Some(c),
            forbidden: false,
            auto_archive: body["auto_archive_duration"].as_u64().unwrap_or(1440),
        };
        let json = self.channel_json(&ch);
        self.channels.insert(id, ch);
        let rec = &mut self.messages[i];
        rec.thread_id = Some(id);
        rec.message["thread"] = json.clone();
        let flags = rec.message["flags"].as_u64().unwrap_or(0) | MESSAGE_FLAG_HAS_THREAD;
        rec.message["flags"] = json!(flags);
        Ok(Reply::ok(json))
    }

    // ---- interactions ----

    fn callback(
        &mut self,
        id: &str,
        token: &str,
        body: &Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let kind = body["type"].as_u64().unwrap_or(0);
        let mut record = json!({
            "interaction_id": id,
            "token": token,
            "type": body["type"],
            "data": body.get("data").cloned().unwrap_or(Value::Null),
        });
        let result = self.answer(id, token, kind, body, files);
        let (status, error) = match &result {
            Ok(r) => (r.status, Value::Null),
            Err(r) => (r.status, r.body.clone().unwrap_or(Value::Null)),
        };
        record["status"] = json!(status);
        record["error"] = error;
        if let Some(ix) = id.parse().ok().and_then(|i: u64| self.interactions.get(&i)) {
            record["after_ms"] = json!(ix.dispatched.elapsed().as_millis() as u64);
        }
        self.callbacks.push(record);
        result
    }

    fn answer(
        &mut self,
        id: &str,
        token: &str,
        kind: u64,
        body: &Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let unknown = || Reply::error(404, 10062, "Unknown interaction");
        let ix_id: u64 = id.parse().map_err(|_| unknown())?;
        let deadline = self.deadline;
        let ix = self.interactions.get(&ix_id).ok_or_else(unknown)?;
        if ix.token != token {
            return Err(unknown());
        }
        if ix.acked {
            return Err(Reply::error(
                400,
                40060,
                "Interaction has already been acknowledged.",
            ));
        }
        if deadline.is_some_and(|d| ix.dispatched.elapsed() > d) {
            return Err(unknown());
        }
        let allowed: &[u64] = match ix.kind {
            fx::APPLICATION_COMMAND => &[4, 5, 9],
            fx::MESSAGE_COMPONENT => &[4, 5, 6, 7, 9],
            fx::AUTOCOMPLETE => &[8],
            fx::MODAL_SUBMIT => &[4, 5, 6, 7],
            _ => &[],
        };
        if !allowed.contains(&kind) {
            return Err(Reply::invalid(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                &format!(
                    "Interaction response type {kind} is not valid for interaction type {}",
                    ix.kind
                ),
            ));
        }
        let data = &body["data"];
        match kind {
            4 => validate_message(data, false, true)?,
            7 => validate_message(data, false, false)?,
            8 => validate_choices(data)?,
            9 => validate_modal(data)?,
            _ => {}
        }
        let channel_id = ix.channel_id;
        let component_message = ix.message.clone();
        let original = match kind {
            4 | 5 => {
                let mut d = if kind == 4 { data.clone() } else { json!({}) };
                let ephemeral = data["flags"].as_u64().unwrap_or(0) & MESSAGE_FLAG_EPHEMERAL;
                let loading = if kind == 5 { MESSAGE_FLAG_LOADING } else { 0 };
                d["flags"] = json!(d["flags"].as_u64().unwrap_or(0) | ephemeral | loading);
                let mid = self.next_id();
                // A message answer (type 4) may upload files, as a post does.
                let files = if kind == 4 { files } else { Vec::new() };
                let rec =
                    self.new_message(mid, channel_id, Origin::Original(token.into()), d, files);
                self.messages.push(rec);
                Some(mid)
            }
            6 | 7 => {
                let mid = component_message
                    .as_ref()
                    .and_then(|m| m["id"].as_str())
                    .and_then(|s| s.parse::<u64>().ok());
                let mid = match mid {
                    Some(mid) if self.messages.iter().any(|r| r.id == mid) => mid,
                    _ => {
                        // A message the fake did not post: keep a copy to edit.
                        let m = component_message.unwrap_or_else(|| json!({}));
                        let mid = m["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                        let mut rec = self.new_message(
                            mid,
                            channel_id,
                            Origin::Original(token.into()),
                            m.clone(),
                            Vec::new(),
                        );
                        if m.is_object() && m.get("author").is_some() {
                            rec.message = m;
                        }
                        self.messages.push(rec);
                        mid
                    }
                };
                if kind == 7 {
                    let i = self.messages.iter().position(|r| r.id == mid).unwrap();
                    apply_edit(&mut self.messages[i], data)?;
                }
                Some(mid)
            }
            _ => None,
        };
        let ix = self.interactions.get_mut(&ix_id).unwrap();
        ix.acked = true;
        ix.original = original;
        Ok(Reply::no_content())
    }

    /// The interaction for a webhook `token` of application `app`, once answered
    /// (Discord: 404 Unknown Webhook before that).
    fn webhook(&self, app: &str, token: &str) -> Result<u64, Reply> {
        let unknown = || Reply::error(404, 10015, "Unknown Webhook");
        if app != self.app_id.to_string() {
            return Err(unknown());
        }
        self.interactions
            .iter()
            .find(|(_, ix)| ix.token == token && ix.acked)
            .map(|(id, _)| *id)
            .ok_or_else(unknown)
    }

    fn edit_original(&mut self, app: &str, token: &str, body: &Value) -> Result<Reply, Reply> {
        let ix = self.webhook(app, token)?;
        let Some(mid) = self.interactions[&ix].original else {
            return Err(Reply::error(404, 10008, "Unknown Message"));
        };
        let i = self.messages.iter().position(|r| r.id == mid).unwrap();
        let rec = &mut self.messages[i];
        let flags = rec.message["flags"].as_u64().unwrap_or(0) & !MESSAGE_FLAG_LOADING;
        rec.message["flags"] = json!(flags);
        Ok(Reply::ok(apply_edit(rec, body)?))
    }

    fn followup(
        &mut self,
        app: &str,
        token: &str,
        body: Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let ix = self.webhook(app, token)?;
        validate_message(&body, !files.is_empty(), true)?;
        let channel_id = self.interactions[&ix].channel_id;
        let id = self.next_id();
        let rec = self.new_message(id, channel_id, Origin::Followup(token.into()), body, files);
        let out = rec.message.clone();
        self.messages.push(rec);
        Ok(Reply::ok(out))
    }

    // ---- commands ----

    fn scope(&self, app: &str, guild: Option<&str>) -> Result<Option<u64>, Reply> {
        if app != self.app_id.to_string() {
            return Err(Reply::error(403, 50001, "Missing Access"));
        }
        match guild {
            None => Ok(None),
            Some(g) if g == self.guild_id.to_string() => Ok(Some(self.guild_id)),
            Some(_) => Err(Reply::error(403, 50001, "Missing Access")),
        }
    }

    fn get_commands(&self, app: &str, guild: Option<&str>) -> Result<Reply, Reply> {
        let scope = self.scope(app, guild)?;
        Ok(Reply::ok(json!(self
            .commands
            .get(&scope)
            .cloned()
            .unwrap_or_default())))
    }

    fn put_commands(
        &mut self,
        app: &str,
        guild: Option<&str>,
        body: &Value,
    ) -> Result<Reply, Reply> {
        let scope = self.scope(app, guild)?;
        let Some(list) = body.as_array() else {
            return Err(Reply::invalid(
                "",
                "ARRAY_TYPE_CONVERT",
                "Only iterables may be used in a ListType",
            ));
        };
        if list.len() > 100 {
            return Err(Reply::invalid(
                "",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            ));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            validate_command(c, &format!("{i}"))?;
            let kind = c["type"].as_u64().unwrap_or(1);
            let name = c["name"].as_str().unwrap_or_default();
            if !seen.insert((kind, name.to_string())) {
                return Err(Reply::invalid(
                    &format!("{i}.name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    &format!("Application command names must be unique: {name}"),
                ));
            }
            let mut c = c.clone();
            c["id"] = json!(fx::command_id(name).to_string());
            c["application_id"] = json!(self.app_id.to_string());
            c["version"] = json!(fx::next_id().to_string());
            c["type"] = json!(kind);
            c["guild_id"] = json!(scope.map(|g| g.to_string()));
            if c["description"].is_null() {
                c["description"] = json!("");
            }
            out.push(c);
        }
        self.commands.insert(scope, out.clone());
        self.command_puts += 1;
        Ok(Reply::ok(Value::Array(out)))
    }
}

/// The answer to a failed `POST /channels/*/messages`.
fn failure(status: u16, retry_after: f64) -> Reply {
    if status == 429 {
        // Discord's 429 body has no `code`: serenity reports it as an error
        // it could not decode, with code -1.
        return Reply {
            status,
            body: Some(
                json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
            ),
            headers: vec![
                ("retry-after", format!("{}", retry_after.ceil() as u64)),
                ("x-ratelimit-limit", "5".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
                ("x-ratelimit-bucket", "fake-bucket".into()),
                ("x-ratelimit-scope", "user".into()),
            ],
        };
    }
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    Reply::error(status, 0, &format!("{status}: {reason}"))
}

/// Applies an edit (PATCH body) to a message; Discord refuses an edit that
/// leaves it empty or too long.
fn apply_edit(rec: &mut MsgRec, body: &Value) -> Result<Value, Reply> {
    let mut next = rec.message.clone();
    for key in ["content", "embeds", "components"] {
        match body.get(key) {
            Some(Value::Null) if key == "content" => next[key] = json!(""),
            Some(Value::Null) => next[key] = json!([]),
            Some(v) => next[key] = v.clone(),
            None => {}
        }
    }
    if let Some(f) = body["flags"].as_u64() {
        // Only SUPPRESS_EMBEDS (4) can be changed by an edit.
        let old = next["flags"].as_u64().unwrap_or(0);
        next["flags"] = json!((old & !4) | (f & 4));
    }
    if let Some(Value::Array(keep)) = body.get("attachments") {
        let ids: HashSet<String> = keep
            .iter()
            .filter_map(|a| {
                a["id"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| a["id"].as_u64().map(|n| n.to_string()))
            })
            .collect();
        if let Some(atts) = next["attachments"].as_array_mut() {
            atts.retain(|a| a["id"].as_str().is_some_and(|id| ids.contains(id)));
        }
    }
    let check = json!({
        "content": next["content"],
        "embeds": next["embeds"],
        "components": next["components"],
    });
    let has_files = next["attachments"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    validate_message(&check, has_files, true)?;
    next["edited_timestamp"] = json!(fx::now());
    rec.message = next;
    rec.edits.push(body.clone());
    Ok(rec.message.clone())
}

// ---- what Discord checks ----

fn check_len(path: &str, s: &str, min: usize, max: usize) -> Check {
    let n = s.chars().count();
    if n < min {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MIN_LENGTH",
            &format!("Must be {min} or more in length."),
        ));
    }
    if n > max {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MAX_LENGTH",
            &format!("Must be {max} or fewer in length."),
        ));
    }
    Ok(())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// A message body (create, edit, interaction reply, follow-up): not empty
/// (when `need_something`), content ≤ 2000 characters, ≤ 10 embeds within
/// their limits (6000 characters in all), ≤ 5 action rows of ≤ 5 components,
/// custom ids unique and ≤ 100 characters, labels ≤ 80.
fn validate_message(body: &Value, has_files: bool, need_something: bool) -> Check {
    let content = text(body, "content");
    check_len("content", content, 0, 2000)?;
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    let components = body["components"].as_array().cloned().unwrap_or_default();
    let stickers = body["sticker_ids"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    if need_something
        && content.is_empty()
        && embeds.is_empty()
        && components.is_empty()
        && !has_files
        && !stickers
        && body["poll"].is_null()
    {
        return Err(Reply::error(400, 50006, "Cannot send an empty message"));
    }
    if embeds.len() > 10 {
        return Err(Reply::invalid(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        let p = |k: &str| format!("embeds.{i}.{k}");
        for (key, max) in [("title", 256), ("description", 4096)] {
            check_len(&p(key), text(e, key), 0, max)?;
            total += text(e, key).chars().count();
        }
        check_len(&p("footer.text"), text(&e["footer"], "text"), 0, 2048)?;
        check_len(&p("author.name"), text(&e["author"], "name"), 0, 256)?;
        total +=
            text(&e["footer"], "text").chars().count() + text(&e["author"], "name").chars().count();
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            return Err(Reply::invalid(
                &p("fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        for (j, f) in fields.iter().enumerate() {
            check_len(&p(&format!("fields.{j}.name")), text(f, "name"), 1, 256)?;
            check_len(&p(&format!("fields.{j}.value")), text(f, "value"), 1, 1024)?;
            total += text(f, "name").chars().count() + text(f, "value").chars().count();
        }
    }
    if total > 6000 {
        return Err(Reply::invalid(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        ));
    }
    validate_components(&components)
}

fn validate_components(rows: &[Value]) -> Check {
    if rows.len() > 5 {
        return Err(Reply::invalid(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut ids = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let inner = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || inner.is_empty() || inner.len() > 5 {
            return Err(Reply::invalid(
                &format!("components.{i}"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "An action row needs 1 to 5 components",
            ));
        }
        for (j, c) in inner.iter().enumerate() {
            let p = format!("components.{i}.components.{j}");
            let link = c["type"] == 2 && c["style"] == 5;
            if link {
                if text(c, "url").is_empty() {
                    return Err(Reply::invalid(
                        &format!("{p}.url"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
            } else {
                let id = text(c, "custom_id");
                check_len(&format!("{p}.custom_id"), id, 1, 100)?;
                if !ids.insert(id.to_string()) {
                    return Err(Reply::invalid(
                        &format!("{p}.custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                }
            }
            if c["type"] == 2 {
                check_len(&format!("{p}.label"), text(c, "label"), 0, 80)?;
            }
        }
    }
    Ok(())
}

fn validate_choices(data: &Value) -> Check {
    let choices = data["choices"].as_array().cloned().unwrap_or_default();
    if choices.len() > 25 {
        return Err(Reply::invalid(
            "data.choices",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    for (i, c) in choices.iter().enumerate() {
        check_len(&format!("data.choices.{i}.name"), text(c, "name"), 1, 100)?;
        if let Some(v) = c["value"].as_str() {
            check_len(&format!("data.choices.{i}.value"), v, 1, 100)?;
        }
    }
    Ok(())
}

fn validate_modal(data: &Value) -> Check {
    check_len("data.title", text(data, "title"), 1, 45)?;
    check_len("data.custom_id", text(data, "custom_id"), 1, 100)?;
    let rows = data["components"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() || rows.len() > 5 {
        return Err(Reply::invalid(
            "data.components",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        let inner = row["components"].as_array().cloned().unwrap_or_default();
        if inner.len() != 1 || inner[0]["type"] != 4 {
            return Err(Reply::invalid(
                &format!("data.components.{i}"),
                "COMPONENT_TYPE_INVALID",
                "A modal row holds one text input",
            ));
        }
        check_len(
            &format!("data.components.{i}.components.0.label"),
            text(&inner[0], "label"),
            1,
            45,
        )?;
        check_len(
            &format!("data.components.{i}.components.0.custom_id"),
            text(&inner[0], "custom_id"),
            1,
            100,
        )?;
    }
    Ok(())
}

/// A command (or option) name: 1 to 32 of lowercase letters, digits, `-`, `_`.
fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            c == '-' || c == '_' || c.is_numeric() || (c.is_alphabetic() && !c.is_uppercase())
        })
}

fn validate_command(c: &Value, path: &str) -> Check {
    let kind = c["type"].as_u64().unwrap_or(1);
    let name = text(c, "name");
    if kind == 1 && !valid_name(name) {
        return Err(Reply::invalid(
            &format!("{path}.name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            &format!("Command name is invalid: {name:?}"),
        ));
    }
    check_len(&format!("{path}.name"), name, 1, 32)?;
    if kind == 1 {
        check_len(
            &format!("{path}.description"),
            text(c, "description"),
            1,
            100,
        )?;
    } else if !text(c, "description").is_empty() {
        return Err(Reply::invalid(
            &format!("{path}.description"),
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        ));
    }
    validate_options(
        c["options"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        &format!("{path}.options"),
    )
}

fn validate_options(options: &[Value], path: &str) -> Check {
    if options.len() > 25 {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut seen_optional = false;
    let mut names = HashSet::new();
    for (i, o) in options.iter().enumerate() {
        let p = format!("{path}.{i}");
        let name = text(o, "name");
        if !valid_name(name) {
            return Err(Reply::invalid(
                &format!("{p}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                &format!("Option name is invalid: {name:?}"),
            ));
        }
        if !names.insert(name) {
            return Err(Reply::invalid(
                &format!("{p}.name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            ));
        }
        check_len(&format!("{p}.description"), text(o, "description"), 1, 100)?;
        let kind = o["type"].as_u64().unwrap_or(0);
        if kind == 1 || kind == 2 {
            validate_options(
                o["options"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &format!("{p}.options"),
            )?;
            continue;
        }
        if o["required"] == true {
            if seen_optional {
                return Err(Reply::invalid(
                    &p,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                ));
            }
        } else {
            seen_optional = true;
        }
        let choices = o["choices"].as_array().map_or(0, Vec::len);
        if choices > 25 {
            return Err(Reply::invalid(
                &format!("{p}.choices"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        if choices > 0 && o["autocomplete"] == true {
            return Err(Reply::invalid(
                &format!("{p}.autocomplete"),
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_WITH_CHOICES",
                "Autocomplete cannot be enabled on options that have choices",
            ));
        }
    }
    Ok(())
}

/// Who Discord would notify for `content` under `allowed_mentions` (absent:
/// everything mentioned).
fn pings(content: &str, allowed: Option<&Value>) -> Value {
    let users_re = Regex::new(r"<@!?(\d+)>").unwrap();
    let roles_re = Regex::new(r"<@&(\d+)>").unwrap();
    let users: Vec<String> = users_re
        .captures_iter(content)
        .map(|c| c[1].to_string())
        .collect();
    let roles: Vec<String> = roles_re
        .captures_iter(content)
        .map(|c| c[1].to_string())
        .collect();
    let everyone = content.contains("@everyone") || content.contains("@here");
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .or_else(|| x.as_u64().map(|n| n.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (users, roles, everyone) = match allowed.filter(|a| a.is_object()) {
        None => (users, roles, everyone),
        Some(a) => {
            let parse: Vec<&str> = a["parse"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let allow_users = ids(&a["users"]);
            let allow_roles = ids(&a["roles"]);
            (
                users
                    .into_iter()
                    .filter(|u| parse.contains(&"users") || allow_users.contains(u))
                    .collect(),
                roles
                    .into_iter()
                    .filter(|r| parse.contains(&"roles") || allow_roles.contains(r))
                    .collect(),
                everyone && parse.contains(&"everyone"),
            )
        }
    };
    let dedup = |mut v: Vec<String>| {
        let mut seen = HashSet::new();
        v.retain(|x| seen.insert(x.clone()));
        v
    };
    json!({"everyone": everyone, "users": dedup(users), "roles": dedup(roles)})
}

// ---- bodies ----

/// The JSON of a request (`payload_json` of a multipart one) and its files
/// (`filename`, `size`, `content` as text, `content_type`).
fn parse_body(headers: &HeaderMap, raw: &Bytes) -> Result<(Value, Vec<Value>), String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        return parse_multipart(ct, raw).ok_or_else(|| "bad multipart body".to_string());
    }
    if raw.is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    serde_json::from_slice(raw)
        .map(|v| (v, Vec::new()))
        .map_err(|e| e.to_string())
}

fn parse_multipart(ct: &str, body: &[u8]) -> Option<(Value, Vec<Value>)> {
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let mut json = Value::Null;
    let mut files = Vec::new();
    let mut rest = &body[find(body, delim.as_bytes())? + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, delim.as_bytes())?;
        let part = &rest[..end];
        rest = &rest[end + delim.len()..];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]).to_string();
        let mut data = &part[head_end + 4..];
        if data.ends_with(b"\r\n") {
            data = &data[..data.len() - 2];
        }
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
        let attr = |key: &str| {
            disposition.split(';').find_map(|kv| {
                kv.trim()
                    .strip_prefix(&format!("{key}=\""))
                    .map(|v| v.trim_end_matches('"').to_string())
            })
        };
        let content_type = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type:")
                .then(|| l["content-type:".len()..].trim().to_string())
        });
        if attr("name").as_deref() == Some("payload_json") {
            json = serde_json::from_slice(data).ok()?;
        } else if let Some(filename) = attr("filename") {
            files.push(json!({
                "filename": filename,
                "size": data.len(),
                "content": String::from_utf8_lossy(data),
                "content_type": content_type,
            }));
        }
    }
    Some((json, files))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    //! The fake driven by the real serenity client, built as the bot builds it.

    use std::future::Future;

    use serenity::all::{
        ChannelId, ChannelType, Client, ClientBuilder, CommandDataOptionValue, CommandOptionType,
        Context, CreateActionRow, CreateAllowedMentions, CreateAttachment,
        CreateAutocompleteResponse, CreateButton, CreateCommand, CreateCommandOption,
        CreateInputText, CreateInteractionResponse, CreateInteractionResponseFollowup,
        CreateInteractionResponseMessage, CreateMessage, CreateModal, CreateThread,
        EditInteractionResponse, EditMessage, EventHandler, GatewayIntents, GuildId, HttpError,
        InputTextStyle, Interaction, MessageId, Nonce, ShardManager,
    };
    use serenity::http::{Http, HttpBuilder};
    use serenity::model::gateway::Ready;

    use super::*;

    const T: Duration = Duration::from_secs(10);

    async fn bounded<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("the test took over 60 s")
    }

    /// A small bot: registers its commands in the guild on READY and answers
    /// interactions; errors from serenity are kept for the test to look at.
    #[derive(Clone, Default)]
    struct Ops {
        errors: Arc<Mutex<Vec<String>>>,
    }

    impl Ops {
        fn errors(&self) -> Vec<String> {
            lock(&self.errors).clone()
        }
    }

    fn commands() -> Vec<CreateCommand> {
        vec![
            CreateCommand::new("ping").description("Is the bot up?"),
            CreateCommand::new("ticket")
                .description("Tickets")
                .add_option(
                    CreateCommandOption::new(CommandOptionType::SubCommand, "open", "Open one")
                        .add_sub_option(
                            CreateCommandOption::new(
                                CommandOptionType::String,
                                "title",
                                "What is wrong",
                            )
                            .required(true),
                        ),
                ),
            CreateCommand::new("deploy")
                .description("Deploy")
                .add_option(
                    CreateCommandOption::new(CommandOptionType::String, "env", "Where")
                        .required(true)
                        .set_autocomplete(true),
                ),
            CreateCommand::new("confirm").description("Asks with a button"),
            CreateCommand::new("feedback").description("Asks with a modal"),
            CreateCommand::new("noop").description("Never answered"),
        ]
    }

    fn ticket_title(c: &serenity::all::CommandInteraction) -> String {
        match c.data.options.first().map(|o| &o.value) {
            Some(CommandDataOptionValue::SubCommand(opts)) => {
                match opts.first().map(|o| &o.value) {
                    Some(CommandDataOptionValue::String(s)) => s.clone(),
                    other => format!("{other:?}"),
                }
            }
            other => format!("{other:?}"),
        }
    }

    #[serenity::async_trait]
    impl EventHandler for Ops {
        async fn ready(&self, ctx: Context, ready: Ready) {
            let guild = ready.guilds[0].id;
            if let Err(e) = guild.set_commands(&ctx.http, commands()).await {
                lock(&self.errors).push(format!("register: {e}"));
            }
        }

        async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
            let http = &ctx.http;
            let r = match interaction {
                Interaction::Command(c) => match c.data.name.as_str() {
                    "ping" => {
                        let m = CreateInteractionResponseMessage::new()
                            .content("pong")
                            .ephemeral(true);
                        c.create_response(http, CreateInteractionResponse::Message(m))
                            .await
                    }
                    "ticket" => {
                        let title = ticket_title(&c);
                        async {
                            c.defer_ephemeral(http).await?;
                            let edit = EditInteractionResponse::new()
                                .content(format!("ticket opened: {title}"));
                            c.edit_response(http, edit).await?;
                            let f = CreateInteractionResponseFollowup::new().content("assigned");
                            c.create_followup(http, f).await.map(|_| ())
                        }
                        .await
                    }
                    "confirm" => {
                        let row = CreateActionRow::Buttons(vec![
                            CreateButton::new("confirm:yes").label("Yes")
                        ]);
                        let m = CreateInteractionResponseMessage::new()
                            .content("Sure?")
                            .components(vec![row]);
                        c.create_response(http, CreateInteractionResponse::Message(m))
                            .await
                    }
                    "feedback" => {
                        let input = CreateInputText::new(InputTextStyle::Paragraph, "Say", "text");
                        let modal = CreateModal::new("feedback:form", "Feedback")
                            .components(vec![CreateActionRow::InputText(input)]);
                        c.create_response(http, CreateInteractionResponse::Modal(modal))
                            .await
                    }
                    _ => Ok(()),
                },
                Interaction::Autocomplete(c) => {
                    let typed = c.data.autocomplete().map_or("", |o| o.value).to_string();
                    let mut r = CreateAutocompleteResponse::new();
                    for env in ["prod", "preprod", "staging"] {
                        if env.starts_with(&typed) {
                            r = r.add_string_choice(env, env);
                        }
                    }
                    c.create_response(http, CreateInteractionResponse::Autocomplete(r))
                        .await
                }
                Interaction::Component(c) => {
                    let m = CreateInteractionResponseMessage::new()
                        .content(format!("confirmed by {}", c.user.name))
                        .components(vec![]);
                    c.create_response(http, CreateInteractionResponse::UpdateMessage(m))
                        .await
                }
                Interaction::Modal(m) => {
                    let values: Vec<String> = m
                        .data
                        .components
                        .iter()
                        .flat_map(|row| row.components.iter())
                        .filter_map(|c| match c {
                            serenity::all::ActionRowComponent::InputText(t) => t.value.clone(),
                            _ => None,
                        })
                        .collect();
                    let r = CreateInteractionResponseMessage::new()
                        .content(format!("thanks: {}", values.join(" / ")));
                    m.create_response(http, CreateInteractionResponse::Message(r))
                        .await
                }
                _ => Ok(()),
            };
            if let Err(e) = r {
                lock(&self.errors).push(format!("interaction: {e}"));
            }
        }
    }

    struct Bot {
        shards: Arc<ShardManager>,
        http: Arc<Http>,
        run: tokio::task::JoinHandle<serenity::Result<()>>,
    }

    impl Bot {
        /// The client as the bot builds it: the proxy, the ratelimiter off,
        /// `new_with_http`, `start()`.
        async fn start(fake: &FakeDiscord, handler: Ops) -> Bot {
            let http = HttpBuilder::new(TOKEN)
                .proxy(format!("http://127.0.0.1:{}", fake.port))
                .ratelimiter_disabled(true)
                .build();
            let mut client: Client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
                .event_handler(handler)
                .await
                .expect("build the client");
            let shards = client.shard_manager.clone();
            let http = client.http.clone();
            let run = tokio::spawn(async move { client.start().await });
            Bot { shards, http, run }
        }

        async fn stop(self) {
            self.shards.shutdown_all().await;
            let ended = tokio::time::timeout(T, self.run)
                .await
                .expect("client.start() returns after shutdown_all");
            ended.expect("the client task").expect("client.start()");
        }
    }

    fn ping(id: u64, token: &str) -> Value {
        fx::slash(
            id,
            token,
            GENERAL,
            fx::GUILD_ID,
            fx::USER_ID,
            fx::USER_NAME,
            &[],
            &["ping"],
            &[],
        )
    }

    /// (status, Discord's code, message) of a refused request.
    fn refused<T: std::fmt::Debug>(r: serenity::Result<T>) -> (u16, isize, String) {
        match r {
            Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) => {
                (e.status_code.as_u16(), e.error.code, e.error.message)
            }
            other => panic!("expected Discord to refuse, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serenity_connects_registers_and_answers() {
        bounded(async {
            let fake = FakeDiscord::start();
            let ops = Ops::default();
            let bot = Bot::start(&fake, ops.clone()).await;

            fake.wait_ready_async(T).await;
            assert_eq!(
                fake.gateway_connections(),
                vec!["/gateway?v=10".to_string()]
            );
            assert_eq!(fake.identify_intents(), Some(GatewayIntents::GUILDS.bits()));
            let identify = &fake.identifies()[0];
            assert_eq!(identify["token"], "Bot fake-token");
            assert_eq!(identify["shard"], json!([0, 1]));

            // Registered in the guild on READY, with the application id from READY.
            let cmds = fake.wait_commands_async(T).await;
            let names: Vec<&str> = cmds.iter().filter_map(|c| c["name"].as_str()).collect();
            assert_eq!(
                names,
                ["ping", "ticket", "deploy", "confirm", "feedback", "noop"]
            );
            assert_eq!(cmds[0]["guild_id"], fx::GUILD_ID.to_string());
            assert_eq!(cmds[1]["options"][0]["type"], 1);
            assert_eq!(cmds[1]["options"][0]["options"][0]["name"], "title");
            assert_eq!(fake.command_registrations(), 1);
            assert_eq!(
                fake.count(&format!(
                    "PUT /api/v10/applications/{}/guilds/{}/commands",
                    fx::APP_ID,
                    fx::GUILD_ID
                )),
                1
            );

            // A slash command, answered with an ephemeral message.
            fake.dispatch("INTERACTION_CREATE", ping(7001, "tok-ping"));
            let cb = fake.wait_callback_async(7001, T).await;
            assert_eq!(cb["type"], 4);
            assert_eq!(cb["data"]["content"], "pong");
            assert_eq!(cb["data"]["flags"], 64);
            let reply = fake.original("tok-ping").expect("the reply");
            assert_eq!(reply["content"], "pong");
            assert_eq!(reply["flags"], 64);

            // The bot's Http against the channel routes.
            let http = bot.http.clone();
            let general = ChannelId::new(GENERAL);
            let send = || {
                CreateMessage::new()
                    .content("deploy started")
                    .nonce(Nonce::String("deploy-42".into()))
                    .enforce_nonce(true)
            };
            let first = general.send_message(&http, send()).await.unwrap();
            let again = general.send_message(&http, send()).await.unwrap();
            assert_eq!(
                first.id, again.id,
                "the same nonce gives the first message back"
            );
            let msgs = fake.messages(GENERAL);
            assert_eq!(msgs.len(), 1);
            assert_eq!(msgs[0]["nonce"], "deploy-42");
            assert_eq!(msgs[0]["enforce_nonce"], true);
            assert_eq!(fake.deduplicated(), 1);

            let edited = general
                .edit_message(&http, first.id, EditMessage::new().content("deploy done"))
                .await
                .unwrap();
            assert_eq!(edited.content, "deploy done");
            assert!(edited.edited_timestamp.is_some());
            let m = fake.message(first.id.get()).unwrap();
            assert_eq!(
                (m["content"].as_str(), m["edits"].as_u64()),
                (Some("deploy done"), Some(1))
            );

            let thread = general
                .create_thread_from_message(&http, first.id, CreateThread::new("deploy 42"))
                .await
                .unwrap();
            assert_eq!(thread.kind, ChannelType::PublicThread);
            assert_eq!(thread.parent_id, Some(general));
            assert_eq!(thread.name, "deploy 42");
            assert_eq!(fake.threads(GENERAL).len(), 1);
            assert_eq!(
                fake.message(first.id.get()).unwrap()["thread_id"],
                thread.id.to_string()
            );
            thread
                .id
                .send_message(&http, CreateMessage::new().content("log line"))
                .await
                .unwrap();
            assert_eq!(fake.messages(thread.id.get()).len(), 1);

            bot.stop().await;
            assert_eq!(ops.errors(), Vec::<String>::new());
            assert_eq!(fake.unexpected(), Vec::<String>::new());
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interaction_flows() {
        bounded(async {
            let fake = FakeDiscord::start();
            let ops = Ops::default();
            let bot = Bot::start(&fake, ops.clone()).await;
            fake.wait_commands_async(T).await;
            let slash = |id: u64, token: &str, path: &[&str], options: &[(&str, Value)]| {
                fx::slash(
                    id,
                    token,
                    GENERAL,
                    fx::GUILD_ID,
                    fx::USER_ID,
                    fx::USER_NAME,
                    &[],
                    path,
                    options,
                )
            };

            // Deferred, then edited, then a follow-up.
            fake.dispatch(
                "INTERACTION_CREATE",
                slash(
                    7101,
                    "tok-ticket",
                    &["ticket", "open"],
                    &[("title", json!("db-1 disk full"))],
                ),
            );
            let cb = fake.wait_callback_async(7101, T).await;
            assert_eq!(cb["type"], 5);
            assert_eq!(cb["data"]["flags"], 64);
            let reply = fake.wait_reply_async("tok-ticket", T).await;
            assert_eq!(reply["content"], "ticket opened: db-1 disk full");
            assert_eq!(reply["edits"], 1);
            assert_eq!(reply["flags"], 64, "still ephemeral, no longer loading");
            let f = fake.wait_followups_async("tok-ticket", 1, T).await;
            assert_eq!(f[0]["content"], "assigned");

            // Autocomplete.
            fake.dispatch(
                "INTERACTION_CREATE",
                fx::autocomplete(
                    7102,
                    "tok-ac",
                    GENERAL,
                    fx::GUILD_ID,
                    fx::USER_ID,
                    fx::USER_NAME,
                    &[],
                    &["deploy"],
                    &[("env", json!("pr"))],
                    "env",
                ),
            );
            let cb = fake.wait_callback_async(7102, T).await;
            assert_eq!(cb["type"], 8);
            assert_eq!(
                cb["data"]["choices"],
                json!([{"name": "prod", "value": "prod"}, {"name": "preprod", "value": "preprod"}])
            );

            // A button on the bot's reply; the click updates that message.
            fake.dispatch(
                "INTERACTION_CREATE",
                slash(7103, "tok-confirm", &["confirm"], &[]),
            );
            assert_eq!(fake.wait_callback_async(7103, T).await["type"], 4);
            let asked = fake.original("tok-confirm").unwrap();
            assert_eq!(
                asked["components"][0]["components"][0]["custom_id"],
                "confirm:yes"
            );
            let click = fx::with_ids(
                fx::button("confirm:yes", &asked["message"]),
                7104,
                "tok-click",
            );
            fake.dispatch("INTERACTION_CREATE", click);
            let cb = fake.wait_callback_async(7104, T).await;
            assert_eq!(cb["type"], 7);
            let updated = fake.original("tok-confirm").unwrap();
            assert_eq!(
                updated["content"],
                format!("confirmed by {}", fx::USER_NAME)
            );
            assert_eq!(updated["components"], json!([]));
            assert_eq!(updated["edits"], 1);

            // A modal, then its submission.
            fake.dispatch(
                "INTERACTION_CREATE",
                slash(7105, "tok-fb", &["feedback"], &[]),
            );
            let cb = fake.wait_callback_async(7105, T).await;
            assert_eq!(cb["type"], 9);
            assert_eq!(cb["data"]["custom_id"], "feedback:form");
            let submit = fx::modal_submit("feedback:form", &[("text", "more graphs")]);
            let submit_id: u64 = submit["id"].as_str().unwrap().parse().unwrap();
            fake.dispatch("INTERACTION_CREATE", submit);
            let cb = fake.wait_callback_async(submit_id, T).await;
            assert_eq!(cb["data"]["content"], "thanks: more graphs");

            // Answering twice, as Discord refuses it.
            fake.dispatch(
                "INTERACTION_CREATE",
                slash(7106, "tok-noop", &["noop"], &[]),
            );
            let answer = json!({"type": 4, "data": {"content": "first"}});
            let http = fake.http();
            http.create_interaction_response(7106.into(), "tok-noop", &answer, vec![])
                .await
                .unwrap();
            let again = http
                .create_interaction_response(7106.into(), "tok-noop", &answer, vec![])
                .await;
            assert_eq!(
                refused(again),
                (
                    400,
                    40060,
                    "Interaction has already been acknowledged.".to_string()
                )
            );
            // A follow-up before any answer: Unknown Webhook.
            fake.dispatch(
                "INTERACTION_CREATE",
                slash(7107, "tok-early", &["noop"], &[]),
            );
            let early = http
                .create_followup_message("tok-early", &json!({"content": "x"}), vec![])
                .await;
            assert_eq!(refused(early).1, 10015);

            // Too late: the bot's answer is refused and serenity reports it.
            fake.set_interaction_deadline(Some(Duration::ZERO));
            fake.dispatch("INTERACTION_CREATE", ping(7108, "tok-late"));
            let refusal = fake
                .wait_until_async("the late callback", T, |f| {
                    f.callbacks()
                        .into_iter()
                        .find(|c| c["interaction_id"] == "7108")
                })
                .await;
            assert_eq!(refusal["status"], 404);
            assert_eq!(refusal["error"]["code"], 10062);
            fake.wait_until_async("the bot to see the error", T, |_| {
                ops.errors()
                    .iter()
                    .any(|e| e.contains("Unknown interaction"))
                    .then_some(())
            })
            .await;

            bot.stop().await;
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_messages_like_discord() {
        bounded(async {
            let fake = FakeDiscord::start();
            fake.add_channel(500, "alerts");
            let http = fake.http();
            let alerts = ChannelId::new(500);

            // The same nonce without enforce_nonce makes two messages.
            for _ in 0..2 {
                let m = CreateMessage::new()
                    .content("firing")
                    .nonce(Nonce::Number(9));
                alerts.send_message(&http, m).await.unwrap();
            }
            let two = fake.wait_messages_async(500, 2, T).await;
            assert_eq!(two[0]["nonce"], 9);
            assert_ne!(two[0]["id"], two[1]["id"]);
            assert_eq!(fake.deduplicated(), 0);

            // Who gets pinged.
            let text = "@everyone <@42> <@!43> <@&77> look";
            let loud = alerts
                .send_message(&http, CreateMessage::new().content(text))
                .await
                .unwrap();
            assert!(loud.mention_everyone);
            let p = &fake.message(loud.id.get()).unwrap()["pings"];
            assert_eq!(
                p,
                &json!({"everyone": true, "users": ["42", "43"], "roles": ["77"]})
            );
            let quiet = CreateMessage::new()
                .content(text)
                .allowed_mentions(CreateAllowedMentions::new().users([43u64]));
            let quiet = alerts.send_message(&http, quiet).await.unwrap();
            assert!(!quiet.mention_everyone);
            let rec = fake.message(quiet.id.get()).unwrap();
            assert_eq!(
                rec["pings"],
                json!({"everyone": false, "users": ["43"], "roles": []})
            );
            assert_eq!(rec["allowed_mentions"]["users"], json!(["43"]));

            // A reply, and a reply to a message that does not exist.
            let reply = CreateMessage::new()
                .content("ack")
                .reference_message((alerts, quiet.id));
            let reply = alerts.send_message(&http, reply).await.unwrap();
            assert_eq!(
                reply.referenced_message.as_ref().map(|m| m.id),
                Some(quiet.id)
            );
            let rec = fake.message(reply.id.get()).unwrap();
            assert_eq!(rec["message_reference"]["message_id"], quiet.id.to_string());
            let dangling = CreateMessage::new()
                .content("ack")
                .reference_message((alerts, MessageId::new(1)));
            let (status, code, _) = refused(alerts.send_message(&http, dangling).await);
            assert_eq!((status, code), (400, 50035));

            // Embeds, components and files come back as serenity reads them.
            let row = CreateActionRow::Buttons(vec![
                CreateButton::new("ack:1").label("Ack"),
                CreateButton::new_link("https://runbooks.example/db").label("Runbook"),
            ]);
            let rich = CreateMessage::new()
                .embed(
                    serenity::all::CreateEmbed::new()
                        .title("db-1")
                        .description("disk 97%"),
                )
                .components(vec![row])
                .add_file(CreateAttachment::bytes(
                    b"line 1\nline 2\n".to_vec(),
                    "log.txt",
                ));
            let rich = alerts.send_message(&http, rich).await.unwrap();
            assert_eq!(rich.embeds[0].title.as_deref(), Some("db-1"));
            assert_eq!(rich.components[0].components.len(), 2);
            assert_eq!(rich.attachments[0].filename, "log.txt");
            let rec = fake.message(rich.id.get()).unwrap();
            assert_eq!(rec["files"][0]["content"], "line 1\nline 2\n");
            assert_eq!(rec["files"][0]["size"], 14);

            // Threads: one per message, not in a thread.
            let t = alerts
                .create_thread_from_message(&http, rich.id, CreateThread::new("db-1"))
                .await
                .unwrap();
            assert_eq!(t.id.get(), rich.id.get(), "a thread has its message's id");
            let again = alerts
                .create_thread_from_message(&http, rich.id, CreateThread::new("db-1 again"))
                .await;
            assert_eq!(refused(again).1, 160004);
            let starter =
                t.id.send_message(&http, CreateMessage::new().content("in thread"))
                    .await
                    .unwrap();
            let nested =
                t.id.create_thread_from_message(&http, starter.id, CreateThread::new("nested"))
                    .await;
            assert_eq!(refused(nested).1, 50024);
            let ch = http.get_channel(t.id).await.unwrap();
            assert!(ch
                .guild()
                .is_some_and(|g| g.kind == ChannelType::PublicThread));

            // Edits: counted, and refused when they would leave nothing.
            alerts
                .edit_message(&http, loud.id, EditMessage::new().content("resolved"))
                .await
                .unwrap();
            alerts
                .edit_message(&http, loud.id, EditMessage::new().content("resolved (2)"))
                .await
                .unwrap();
            let rec = fake.message(loud.id.get()).unwrap();
            assert_eq!(rec["edits"], 2);
            assert_eq!(rec["edit_bodies"][0]["content"], "resolved");
            let emptied = alerts
                .edit_message(&http, loud.id, EditMessage::new().content(""))
                .await;
            assert_eq!(refused(emptied).1, 50006);
            let unknown = alerts
                .edit_message(&http, MessageId::new(5), EditMessage::new().content("x"))
                .await;
            assert_eq!(
                refused(unknown),
                (404, 10008, "Unknown Message".to_string())
            );

            assert_eq!(fake.unexpected(), Vec::<String>::new());
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_like_discord() {
        bounded(async {
            let fake = FakeDiscord::start();
            fake.add_channel(600, "secret");
            fake.forbid_channel(600);
            let http = fake.http();
            let general = ChannelId::new(GENERAL);
            let hi = || CreateMessage::new().content("hi");

            fake.fail_next(500, 2);
            for _ in 0..2 {
                let (status, _, msg) = refused(general.send_message(&http, hi()).await);
                assert_eq!((status, msg.as_str()), (500, "500: Internal Server Error"));
            }
            general.send_message(&http, hi()).await.unwrap();

            // With the ratelimiter off serenity does not retry a 429, and
            // Discord's 429 body has no code, so serenity says -1.
            fake.rate_limit_next(1, 0.25);
            let (status, code, _) = refused(general.send_message(&http, hi()).await);
            assert_eq!((status, code), (429, -1));
            let raw = reqwest::Client::new()
                .post(format!("{}/api/v10/channels/{GENERAL}/messages", fake.base))
                .header("authorization", "Bot x")
                .json(&json!({"content": "hi"}));
            fake.rate_limit_next(1, 0.25);
            let resp = raw.send().await.unwrap();
            assert_eq!(resp.status(), 429);
            assert_eq!(resp.headers()["retry-after"], "1");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["retry_after"], 0.25);
            assert_eq!(fake.messages(GENERAL).len(), 1);

            let forbidden = ChannelId::new(600).send_message(&http, hi()).await;
            assert_eq!(
                refused(forbidden),
                (403, 50013, "Missing Permissions".to_string())
            );
            let nowhere = ChannelId::new(601).send_message(&http, hi()).await;
            assert_eq!(
                refused(nowhere),
                (404, 10003, "Unknown Channel".to_string())
            );

            // What serenity's builders let through but Discord refuses.
            let long = json!({"content": "x".repeat(2001)});
            let e = http.send_message(general, vec![], &long).await;
            let Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) = e else {
                panic!("a 2001-character message was accepted")
            };
            assert_eq!(e.error.code, 50035);
            assert_eq!(e.error.errors[0].path, "content");
            assert_eq!(e.error.errors[0].code, "BASE_TYPE_MAX_LENGTH");
            let empty = http
                .send_message(general, vec![], &json!({"content": ""}))
                .await;
            assert_eq!(
                refused(empty),
                (400, 50006, "Cannot send an empty message".to_string())
            );
            let long_nonce = CreateMessage::new()
                .content("hi")
                .nonce(Nonce::String("opsbot-12345678901234567890".into()))
                .enforce_nonce(true);
            let (status, code, _) = refused(general.send_message(&http, long_nonce).await);
            assert_eq!((status, code), (400, 50035), "a nonce over 25 characters");
            let big = serenity::all::CreateEmbed::new().description("y".repeat(4000));
            let too_big = CreateMessage::new().embeds(vec![big.clone(), big]);
            assert_eq!(refused(general.send_message(&http, too_big).await).1, 50035);

            // Invalid command registrations.
            let guild = GuildId::new(fx::GUILD_ID);
            let upper = guild
                .set_commands(&http, vec![CreateCommand::new("Deploy").description("d")])
                .await;
            assert_eq!(refused(upper).1, 50035);
            let undescribed = guild
                .set_commands(&http, vec![CreateCommand::new("deploy")])
                .await;
            assert_eq!(refused(undescribed).1, 50035);
            let optional_first = CreateCommand::new("deploy")
                .description("d")
                .set_options(vec![
                    CreateCommandOption::new(CommandOptionType::String, "a", "a"),
                    CreateCommandOption::new(CommandOptionType::String, "b", "b").required(true),
                ]);
            assert_eq!(
                refused(guild.set_commands(&http, vec![optional_first]).await).1,
                50035
            );
            let elsewhere = GuildId::new(1).set_commands(&http, commands()).await;
            assert_eq!(refused(elsewhere).1, 50001);
            assert_eq!(fake.command_registrations(), 0);

            // Unknown routes are answered 404 and recorded.
            let (status, _, _) = refused(http.get_guild(guild).await);
            assert_eq!(status, 404);
            assert_eq!(
                fake.take_unexpected(),
                vec![format!("GET /api/v10/guilds/{}", fx::GUILD_ID)]
            );

            // No token.
            let anon = reqwest::Client::new()
                .post(format!("{}/api/v10/channels/{GENERAL}/messages", fake.base))
                .json(&json!({"content": "hi"}))
                .send()
                .await
                .unwrap();
            assert_eq!(anon.status(), 401);
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gateway_heartbeats_resumes_and_drops() {
        bounded(async {
            let fake = FakeDiscord::start();
            fake.set_heartbeat_interval(200);
            let ops = Ops::default();
            let bot = Bot::start(&fake, ops.clone()).await;
            fake.wait_commands_async(T).await;
            fake.dispatch("INTERACTION_CREATE", ping(7201, "tok-a"));
            fake.wait_callback_async(7201, T).await;

            // Heartbeats carry the last sequence number and get acked: still
            // one connection after several.
            let beats = fake
                .wait_until_async("3 heartbeats, one after the ping", T, |f| {
                    let beats = f.heartbeats();
                    // READY is sequence number 1, the ping 2.
                    (beats.len() >= 3 && beats.contains(&json!(2))).then_some(beats)
                })
                .await;
            assert!(beats.iter().all(|b| b == 1 || b == 2), "{beats:?}");
            assert_eq!(fake.gateway_connections().len(), 1);

            // A close with 4000: serenity comes back and resumes.
            fake.close_gateway(4000);
            fake.wait_until_async("a resume", T, |f| (f.resumes() > 0).then_some(()))
                .await;
            assert_eq!(fake.gateway_connections().len(), 2);
            assert_eq!(fake.identifies().len(), 1, "resumed, not identified again");
            fake.dispatch("INTERACTION_CREATE", ping(7202, "tok-b"));
            assert_eq!(fake.wait_callback_async(7202, T).await["type"], 4);

            // A payload serenity cannot parse is refused by dispatch...
            let mut bad = ping(7203, "tok-c");
            bad.as_object_mut().unwrap().remove("entitlements");
            let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fake.dispatch("INTERACTION_CREATE", bad.clone())
            }));
            let msg = refused.unwrap_err();
            let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("entitlements"), "{msg}");
            // ...because serenity drops it without a word: sent anyway, it is
            // never answered, while the next one is.
            fake.dispatch_unchecked("INTERACTION_CREATE", bad);
            fake.dispatch("INTERACTION_CREATE", ping(7204, "tok-d"));
            fake.wait_callback_async(7204, T).await;
            assert!(fake
                .callbacks()
                .iter()
                .all(|c| c["interaction_id"] != "7203"));

            bot.stop().await;
            assert_eq!(ops.errors(), Vec::<String>::new());
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identity_routes_parse() {
        bounded(async {
            let fake = FakeDiscord::start();
            let http = fake.http();
            let gw = http.get_bot_gateway().await.unwrap();
            assert_eq!(gw.url, fake.gateway_url());
            assert_eq!(gw.shards, 1);
            let app = http.get_current_application_info().await.unwrap();
            assert_eq!(app.id.get(), fx::APP_ID);
            let me = http.get_current_user().await.unwrap();
            assert_eq!((me.id.get(), me.bot), (fx::BOT_ID, true));
            let guild = GuildId::new(fx::GUILD_ID);
            assert!(guild.get_commands(&http).await.unwrap().is_empty());
            let set = serenity::all::Command::set_global_commands(&http, commands())
                .await
                .unwrap();
            assert_eq!(set.len(), commands().len());
            assert_eq!(set[0].id.get(), fx::command_id("ping"));
            assert_eq!(fake.commands()[0]["guild_id"], Value::Null);
            let general = http.get_channel(ChannelId::new(GENERAL)).await.unwrap();
            assert_eq!(general.guild().map(|g| g.name), Some("general".to_string()));
        })
        .await
    }

    /// The blocking waits, from a plain test with the bot on its own runtime.
    #[test]
    fn blocking_waits_from_a_plain_test() {
        let fake = FakeDiscord::start();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bot = rt.block_on(bounded(Bot::start(&fake, Ops::default())));
        fake.wait_ready(T);
        assert_eq!(fake.wait_commands(T).len(), commands().len());
        fake.dispatch("INTERACTION_CREATE", ping(7301, "tok-sync"));
        assert_eq!(fake.wait_callback(7301, T)["data"]["content"], "pong");
        assert_eq!(fake.wait_reply("tok-sync", T)["content"], "pong");
        rt.block_on(bounded(bot.stop()));
    }

    #[test]
    #[should_panic(expected = "timed out after 50ms waiting for 1 message(s) in channel")]
    fn a_wait_that_times_out_says_so() {
        let fake = FakeDiscord::start();
        fake.wait_messages(GENERAL, 1, Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "no gateway session has identified")]
    fn dispatch_without_a_gateway_session_fails() {
        let fake = FakeDiscord::start();
        fake.dispatch("INTERACTION_CREATE", ping(7401, "t"));
    }
}
