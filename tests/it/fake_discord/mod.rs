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
//! registration; in a forum channel (type 15), a plain message (50008), a
//! post without its message, an applied tag the forum lacks or more than 5,
//! more than 20 tags or a tag name over 20, tags changed without Manage
//! Channels; a message, an edit or a change (but unarchiving) in an
//! archived thread (50083). A request to a route it does not know is answered 404 and
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

//! # Layout
//!
//! - `mod.rs` (here): [`FakeDiscord`], what tests use: start it, set its knobs,
//!   send gateway events, ask what the bot did, wait for it.
//! - `model.rs`: the state it keeps (channels, messages, interactions,
//!   commands, the gateway's sessions, every request).
//! - `gateway.rs`: the websocket gateway sessions.
//! - `rest/`: the REST API, one file per resource (`channels`, `messages`,
//!   `threads`, `forum`, `interactions`, `commands`; the router and the bot's identity
//!   in `rest/mod.rs`).
//! - `markdown.rs`: where Discord renders markdown and what a reader sees
//!   there ([`FakeDiscord::rendered`]).
//! - `rules.rs`: what the real Discord refuses (limits, names, modals,
//!   choices) and whom a message pings under `allowed_mentions`.
//! - `wire.rs`: HTTP and JSON plumbing (one port for REST and the gateway,
//!   Discord's error bodies, multipart).
//! - `selftest.rs`: the fake driven by the real serenity client.

mod gateway;
pub mod markdown;
mod model;
mod rest;
mod rules;
#[cfg(test)]
mod selftest;
mod wire;

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::oneshot;

use self::gateway::GwOut;
use self::model::{lock, view, ChannelRec, Failure, Model, Origin, Shared};
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

// Message flags, as Discord sets them.
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

impl FakeDiscord {
    /// A Discord with application [`fx::APP_ID`] (bot user [`fx::BOT_ID`],
    /// [`fx::BOT_NAME`]) in guild [`fx::GUILD_ID`], which has one text channel,
    /// [`GENERAL`].
    pub fn start() -> FakeDiscord {
        let (addr, shared, stop) = wire::serve();
        FakeDiscord {
            port: addr.port(),
            base: format!("http://{addr}"),
            app_id: fx::APP_ID,
            shared,
            stop: Some(stop),
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
        self.change(|m| m.channels.insert(id, ChannelRec::text(id, name)));
    }

    /// Renames channel `id` and tells the gateway sessions (CHANNEL_UPDATE),
    /// as Discord does when someone renames it.
    pub fn rename_channel(&self, id: u64, name: &str) {
        let d = self.change(|m| {
            let c = m
                .channels
                .get_mut(&id)
                .expect("rename_channel: add_channel first");
            c.name = name.into();
            m.channel_json(&m.channels[&id])
        });
        self.dispatch("CHANNEL_UPDATE", d);
    }

    /// Creates text channel `id` and tells the gateway sessions
    /// (CHANNEL_CREATE).
    pub fn create_channel(&self, id: u64, name: &str) {
        let d = self.change(|m| {
            m.channels.insert(id, ChannelRec::text(id, name));
            m.channel_json(&m.channels[&id])
        });
        self.dispatch("CHANNEL_CREATE", d);
    }

    /// Adds forum channel `id` (type 15) to the guild, with no tags; a
    /// channel `id` there already becomes a forum.
    pub fn add_forum(&self, id: u64, name: &str) {
        self.change(|m| {
            let mut c = ChannelRec::text(id, name);
            c.kind = 15;
            m.channels.insert(id, c);
        });
    }

    /// Adds tag `name` to forum `id` (as its moderators would); its id.
    pub fn add_forum_tag(&self, forum: u64, name: &str) -> u64 {
        self.change(|m| {
            m.next_id += 1;
            let id = m.next_id;
            let c = m.channels.get_mut(&forum).expect("add_forum first");
            c.tags.push(json!({
                "id": id.to_string(), "name": name, "moderated": false,
                "emoji_id": null, "emoji_name": null,
            }));
            id
        })
    }

    /// Forum `id`'s tags: (id, name), in order.
    pub fn forum_tags(&self, forum: u64) -> Vec<(u64, String)> {
        let m = self.model();
        m.channels.get(&forum).map_or_else(Vec::new, |c| {
            c.tags
                .iter()
                .map(|t| {
                    let id = t["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                    (id, t["name"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        })
    }

    /// The posts in forum `id`: each post's id (its thread's, and its starter
    /// message's), oldest first.
    pub fn forum_posts(&self, forum: u64) -> Vec<u64> {
        let m = self.model();
        m.channels
            .values()
            .filter(|c| c.parent_id == Some(forum))
            .map(|c| c.id)
            .collect()
    }

    /// Archives thread (or forum post) `thread`, as Discord does after its
    /// inactivity: messages and edits in it are refused (50083) until it is
    /// unarchived.
    pub fn archive_thread(&self, thread: u64) {
        self.change(|m| {
            m.channels
                .get_mut(&thread)
                .expect("archive_thread: no such thread")
                .archived = true
        });
    }

    /// Whether thread `thread` is archived now.
    pub fn is_archived(&self, thread: u64) -> bool {
        self.model()
            .channels
            .get(&thread)
            .is_some_and(|c| c.archived)
    }

    /// The next `n` forum posts are made, but answered 500: the bot never
    /// learns their ids (as when it dies between Discord's answer and
    /// noting it), and delivers the post again.
    pub fn lose_next_forum_posts(&self, n: usize) {
        self.change(|m| {
            m.lose_forum_posts = n;
            m.lost_posts_archived = false;
        });
    }

    /// [`Self::lose_next_forum_posts`] for one post, archived at once (as
    /// Discord does after days idle, the bot down meanwhile).
    pub fn lose_next_forum_post_archived(&self) {
        self.change(|m| {
            m.lose_forum_posts = 1;
            m.lost_posts_archived = true;
        });
    }

    /// The name of forum post (thread) `thread`.
    pub fn forum_post_name(&self, thread: u64) -> String {
        self.model()
            .channels
            .get(&thread)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    /// The names of the tags applied to forum post `thread`.
    pub fn applied_tags(&self, thread: u64) -> Vec<String> {
        let m = self.model();
        let Some(c) = m.channels.get(&thread) else {
            return Vec::new();
        };
        let forum = c.parent_id.and_then(|p| m.channels.get(&p));
        c.applied
            .iter()
            .map(|id| {
                forum
                    .and_then(|f| f.tags.iter().find(|t| t["id"] == json!(id.to_string())))
                    .and_then(|t| t["name"].as_str())
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    }

    /// Adds user `id` with username `name` to the guild's members.
    pub fn add_member(&self, id: u64, name: &str) {
        self.change(|m| m.members.insert(id, name.to_string()));
    }

    /// Whether the application has the Server Members intent enabled in
    /// the Developer Portal (on by default); off, listing members is
    /// refused with 403 Missing Access.
    pub fn set_members_intent(&self, enabled: bool) {
        self.change(|m| m.members_intent = enabled);
    }

    /// Sets the permissions of @everyone in the guild (bits, as Discord
    /// writes them).
    pub fn set_everyone_permissions(&self, bits: u64) {
        self.change(|m| {
            let g = m.guild_id;
            m.roles.insert(g, ("@everyone".into(), bits));
        });
    }

    /// Adds role `id` with `bits` to the guild and gives it to the bot.
    pub fn give_bot_role(&self, id: u64, name: &str, bits: u64) {
        self.change(|m| {
            m.roles.insert(id, (name.into(), bits));
            m.bot_roles.push(id);
        });
    }

    /// Adds a permission overwrite to channel `id` (added before): for a
    /// role (`member: false`, the guild's id for @everyone) or a member.
    pub fn add_overwrite(&self, channel: u64, target: u64, member: bool, allow: u64, deny: u64) {
        self.change(|m| {
            m.channels
                .get_mut(&channel)
                .expect("add_overwrite: add_channel first")
                .overwrites
                .push(json!({
                    "id": target.to_string(),
                    "type": if member { 1 } else { 0 },
                    "allow": allow.to_string(),
                    "deny": deny.to_string(),
                }))
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

    /// User `id` closed their direct messages to the bot: messages to their
    /// DM channel get 403 `Cannot send messages to this user` (50007).
    pub fn close_dms(&self, id: u64) {
        self.change(|m| {
            m.dms_closed.insert(id);
        });
    }

    /// The DM channel of user `id`, once the bot opened it.
    pub fn dm_channel(&self, id: u64) -> Option<u64> {
        self.model().dms.get(&id).copied()
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
        // Discord shows, and so sends, only commands a user can invoke: a
        // registered command without subcommands, or a subcommand.
        if kind == "INTERACTION_CREATE" && d["type"] == fx::APPLICATION_COMMAND {
            let m = self.model();
            if m.command_puts > 0 {
                let path = rest::invoked_path(&d["data"]);
                let all: Vec<Value> = m.commands.values().flatten().cloned().collect();
                let shown = rest::invocable(&all);
                if !shown.contains(&path) {
                    drop(m);
                    panic!(
                        "dispatch {kind}: Discord shows no command /{path}; it shows: {shown:?}"
                    );
                }
            }
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

    /// What readers see, wherever the bot put text: every place of every
    /// message as it is now (content, embeds, components; see
    /// [`markdown::places`]) and every thread's and forum post's name, each
    /// `at` prefixed with `message ID ` or `thread ID `.
    pub fn rendered(&self) -> Vec<markdown::Place> {
        let m = self.model();
        let mut out = Vec::new();
        for r in &m.messages {
            for mut p in markdown::places(&r.message) {
                p.at = format!("message {} {}", r.id, p.at);
                out.push(p);
            }
        }
        for c in m.channels.values().filter(|c| matches!(c.kind, 11 | 12)) {
            let mut p = markdown::name_place(&c.name);
            p.at = format!("thread {} name", c.id);
            out.push(p);
        }
        out
    }

    /// Whom every message pings (`pings` of [`Self::message`]), with its id.
    pub fn all_pings(&self) -> Vec<(u64, Value)> {
        let m = self.model();
        m.messages.iter().map(|r| (r.id, r.pings.clone())).collect()
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

    /// The registered command paths a user can invoke (`ticket open`,
    /// `build run`, `help`): commands without subcommands, and subcommands.
    pub fn invocable_commands(&self) -> Vec<String> {
        rest::invocable(&self.commands())
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
        // The newest callback to it (a second one Discord refused counts).
        let cb = &m.callbacks[*m.newest_callback.get(&id)?];
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
