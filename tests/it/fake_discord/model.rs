//! What the fake keeps: the model of Discord's state and of what the bot
//! did, shared by the REST handlers, the gateway sessions and the tests' queries.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::gateway::GwOut;
use super::{fx, GENERAL, HEARTBEAT_INTERVAL_MS, INTERACTION_DEADLINE};

/// What @everyone may do in a new fake guild: view channels, send
/// messages, embed links, attach files, read history, create public threads
/// and send messages in threads (what the bot needs, so that only a test
/// that takes some away sees a refusal).
pub(super) const EVERYONE_DEFAULT: u64 =
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 35) | (1 << 38);

/// The model behind its lock, and how the waits learn of a change.
pub(super) struct Shared {
    pub(super) model: Mutex<Model>,
    /// Bumped on every change of the model, for the waits.
    pub(super) version: Mutex<u64>,
    pub(super) changed: Condvar,
    pub(super) watch: watch::Sender<u64>,
    /// To every gateway session that has identified (or resumed).
    pub(super) gateway: broadcast::Sender<GwOut>,
}

/// Discord as far as this bot can see it, and everything the bot did.
pub(super) struct Model {
    pub(super) port: u16,
    pub(super) app_id: u64,
    pub(super) bot_id: u64,
    pub(super) guild_id: u64,
    pub(super) heartbeat_interval: u64,
    pub(super) deadline: Option<Duration>,
    pub(super) channels: BTreeMap<u64, ChannelRec>,
    /// The guild's members: user id → username.
    pub(super) members: BTreeMap<u64, String>,
    /// The application has the Server Members intent enabled (Developer
    /// Portal), which listing the members needs.
    pub(super) members_intent: bool,
    /// The guild's roles: id → (name, permission bits); the @everyone role
    /// has the guild's id.
    pub(super) roles: BTreeMap<u64, (String, u64)>,
    /// The roles the bot's member has.
    pub(super) bot_roles: Vec<u64>,
    /// Every message, in the order created.
    pub(super) messages: Vec<MsgRec>,
    /// (channel, nonce) → message id, for `enforce_nonce`.
    pub(super) nonces: HashMap<(u64, String), u64>,
    pub(super) deduplicated: usize,
    pub(super) interactions: HashMap<u64, IxRec>,
    pub(super) callbacks: Vec<Value>,
    /// Interaction id → the index in `callbacks` of its newest callback: a
    /// waiter finds its own at once, however many there were (a bench's
    /// users wait on thousands).
    pub(super) newest_callback: HashMap<String, usize>,
    /// Registered commands by scope (`None`: global).
    pub(super) commands: BTreeMap<Option<u64>, Vec<Value>>,
    pub(super) command_puts: usize,
    pub(super) fail: Option<Failure>,
    pub(super) dispatched: Vec<(String, Value)>,
    pub(super) gateway_paths: Vec<String>,
    pub(super) identifies: Vec<Value>,
    pub(super) ready_sent: usize,
    pub(super) heartbeats: Vec<Value>,
    pub(super) resumes: usize,
    /// The gateway refuses connections (Discord unreachable).
    pub(super) gateway_down: bool,
    /// Session id → last sequence number sent.
    pub(super) sessions: HashMap<String, u64>,
    pub(super) requests: Vec<String>,
    pub(super) unexpected: Vec<String>,
    pub(super) next_id: u64,
    /// Each user's DM channel with the bot, once opened.
    pub(super) dms: BTreeMap<u64, u64>,
    /// Users whose DMs are closed to the bot.
    pub(super) dms_closed: std::collections::BTreeSet<u64>,
    /// Forum posts still to be made whose answer is lost (500 after the
    /// post is made), as when the bot dies before it hears the answer.
    pub(super) lose_forum_posts: usize,
    /// And are archived at once (as days later, the bot down meanwhile).
    pub(super) lost_posts_archived: bool,
}

pub(super) struct ChannelRec {
    pub(super) id: u64,
    pub(super) name: String,
    /// 0 text, 11 public thread, 12 private thread, 15 forum.
    pub(super) kind: u8,
    pub(super) parent_id: Option<u64>,
    pub(super) forbidden: bool,
    /// Permission overwrites as Discord returns them (`id`, `type` 0 role
    /// or 1 member, `allow`, `deny` as strings).
    pub(super) overwrites: Vec<Value>,
    pub(super) auto_archive: u64,
    /// A forum's tags, as Discord returns them (`id`, `name`, `moderated`,
    /// `emoji_id`, `emoji_name`).
    pub(super) tags: Vec<Value>,
    /// A forum post's (thread's) applied tag ids.
    pub(super) applied: Vec<u64>,
    /// A thread archived (after inactivity): Discord refuses messages and
    /// edits in it (50083) until it is unarchived.
    pub(super) archived: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    Channel,
    /// The interaction response (`@original`) of the interaction with this token.
    Original(String),
    Followup(String),
}

pub(super) struct MsgRec {
    pub(super) id: u64,
    pub(super) channel_id: u64,
    pub(super) origin: Origin,
    /// The body that created it (`payload_json` of a multipart body).
    pub(super) request: Value,
    /// As Discord would return it now.
    pub(super) message: Value,
    /// The bodies of the edits, in order.
    pub(super) edits: Vec<Value>,
    pub(super) thread_id: Option<u64>,
    pub(super) files: Vec<Value>,
    pub(super) pings: Value,
}

pub(super) struct IxRec {
    pub(super) token: String,
    pub(super) kind: u8,
    pub(super) channel_id: u64,
    /// The message of a component interaction.
    pub(super) message: Option<Value>,
    pub(super) dispatched: Instant,
    pub(super) acked: bool,
    /// The message `@original` stands for, once answered.
    pub(super) original: Option<u64>,
}

pub(super) struct Failure {
    pub(super) status: u16,
    pub(super) left: usize,
    pub(super) retry_after: f64,
}

impl Shared {
    pub(super) fn bump(&self) {
        let n = {
            let mut v = lock(&self.version);
            *v += 1;
            *v
        };
        self.changed.notify_all();
        self.watch.send_replace(n);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A message record as the tests see it.
pub(super) fn view(r: &MsgRec) -> Value {
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

impl Shared {
    /// A fresh model for a fake on `port`, as [`super::FakeDiscord::start`]
    /// describes it.
    pub(super) fn new(port: u16) -> Shared {
        let mut channels = BTreeMap::new();
        channels.insert(GENERAL, ChannelRec::text(GENERAL, "general"));
        let (gateway, _) = broadcast::channel(256);
        Shared {
            model: Mutex::new(Model {
                port,
                app_id: fx::APP_ID,
                bot_id: fx::BOT_ID,
                guild_id: fx::GUILD_ID,
                heartbeat_interval: HEARTBEAT_INTERVAL_MS,
                deadline: Some(INTERACTION_DEADLINE),
                channels,
                members: BTreeMap::new(),
                members_intent: true,
                roles: BTreeMap::from([(
                    fx::GUILD_ID,
                    ("@everyone".to_string(), EVERYONE_DEFAULT),
                )]),
                bot_roles: Vec::new(),
                messages: Vec::new(),
                nonces: HashMap::new(),
                deduplicated: 0,
                interactions: HashMap::new(),
                callbacks: Vec::new(),
                newest_callback: HashMap::new(),
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
                dms: BTreeMap::new(),
                dms_closed: Default::default(),
                lose_forum_posts: 0,
                lost_posts_archived: false,
            }),
            version: Mutex::new(0),
            changed: Condvar::new(),
            watch: watch::channel(0).0,
            gateway,
        }
    }
}

impl ChannelRec {
    /// A text channel of the guild.
    pub(super) fn text(id: u64, name: &str) -> ChannelRec {
        ChannelRec {
            id,
            name: name.into(),
            kind: 0,
            parent_id: None,
            forbidden: false,
            overwrites: Vec::new(),
            auto_archive: 1440,
            tags: Vec::new(),
            applied: Vec::new(),
            archived: false,
        }
    }
}
