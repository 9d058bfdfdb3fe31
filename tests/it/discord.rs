//! `opsbot run` against the fake Discord: the real serenity client connects,
//! registers the commands from the declarations, answers slash commands and
//! button presses, posts cards and threads through the outbox with a nonce,
//! and pings nobody it does not mean to.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::discord_fixtures as fx;
use crate::fake_discord::{self, FakeDiscord};
use crate::harness::{shipped_config, Env};
use crate::kit;

pub(crate) const OPS: u64 = fx::CHANNEL_ID;
pub(crate) const BACKEND: u64 = fx::CHANNEL_ID + 1;
pub(crate) const ALERTS: u64 = fx::CHANNEL_ID + 2;
pub(crate) const QA: u64 = fx::CHANNEL_ID + 3;
pub(crate) const INFRA: u64 = fx::CHANNEL_ID + 4;

pub(crate) const OLIVIA: u64 = fx::USER_ID;
pub(crate) const BOB: u64 = fx::USER_ID + 1;
pub(crate) const QUINN: u64 = fx::USER_ID + 2;
const RITA: u64 = fx::USER_ID + 3;
pub(crate) const STRANGER: u64 = fx::USER_ID + 9;

pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// The shipped config, pointed at `fake`, with the demo org's channels and
/// people mapped to Discord ids.
pub(crate) fn config_for(fake: &FakeDiscord) -> String {
    let text = kit::on_discord(&shipped_config(), &fx::GUILD_ID.to_string(), &fake.base);
    let text = kit::in_section(
        &text,
        "[discord.channels]",
        &format!(
            "ops = \"{OPS}\"\nbackend = {BACKEND}\nalerts = \"{ALERTS}\"\nqa = \"{QA}\"\n\
             infra = \"{INFRA}\"\n"
        ),
    );
    kit::in_section(
        &text,
        "[discord.users]",
        &format!(
            "olivia = \"{OLIVIA}\"\nbob = \"{BOB}\"\nquinn = \"{QUINN}\"\nrita = \"{RITA}\"\n"
        ),
    )
}

/// A fake Discord and `opsbot run` connected to it.
pub(crate) struct Live {
    pub(crate) fake: FakeDiscord,
    pub(crate) env: Env,
    child: Option<Child>,
    runs: usize,
    /// `RUST_LOG` of each run.
    log_filter: &'static str,
}

impl Live {
    pub(crate) fn start() -> Live {
        Live::start_with(|text| text)
    }

    /// Like [`Live::start`], with the config text changed by `edit`.
    pub(crate) fn start_with(edit: impl FnOnce(String) -> String) -> Live {
        let fake = FakeDiscord::start();
        for (id, name) in [
            (BACKEND, "backend"),
            (ALERTS, "alerts"),
            (QA, "qa"),
            (INFRA, "infra"),
        ] {
            fake.add_channel(id, name);
        }
        Live::start_on(fake, edit)
    }

    /// Like [`Live::start_with`], on a fake set up by the caller.
    pub(crate) fn start_on(fake: FakeDiscord, edit: impl FnOnce(String) -> String) -> Live {
        Live::start_logging(fake, edit, "warn,opsbot=info")
    }

    /// Like [`Live::start_on`], with `RUST_LOG` set to `filter`.
    pub(crate) fn start_logging(
        fake: FakeDiscord,
        edit: impl FnOnce(String) -> String,
        filter: &'static str,
    ) -> Live {
        let env = Env::shipped_with(&edit(config_for(&fake)));
        let mut live = Live {
            fake,
            env,
            child: None,
            runs: 0,
            log_filter: filter,
        };
        live.spawn();
        live
    }

    fn log(&self, run: usize) -> PathBuf {
        self.env.dir.path().join(format!("run-{run}.log"))
    }

    /// Starts `opsbot run` and waits until its commands are registered.
    pub(crate) fn spawn(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log(self.runs)).expect("log file");
        let registrations = self.fake.command_registrations();
        let child = kit::run(&self.env.config, fake_discord::TOKEN)
            .env("RUST_LOG", self.log_filter)
            .stderr(log)
            .spawn()
            .expect("start opsbot run");
        self.child = Some(child);
        self.fake.wait_until("commands registered", WAIT, |f| {
            (f.command_registrations() > registrations).then_some(())
        });
    }

    /// SIGTERM, and waits for a clean exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                assert!(st.success(), "exit {st:?}\n{}", self.logs());
                return;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running bot's process id (for signals).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub(crate) fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// Dispatches a slash command by `user` in `channel`; returns the
    /// interaction's id and token.
    pub(crate) fn slash(
        &self,
        user: (u64, &str),
        channel: u64,
        path: &[&str],
        options: &[(&str, Value)],
    ) -> (u64, String) {
        let id = fx::next_id();
        let token = format!("tok-{id}");
        let d = fx::slash(
            id,
            &token,
            channel,
            fx::GUILD_ID,
            user.0,
            user.1,
            &[],
            path,
            options,
        );
        self.fake.dispatch("INTERACTION_CREATE", d);
        (id, token)
    }

    /// A slash command's answer: its callback, after any deferral.
    pub(crate) fn answer(
        &self,
        user: (u64, &str),
        channel: u64,
        path: &[&str],
        options: &[(&str, Value)],
    ) -> Value {
        let (_, token) = self.slash(user, channel, path, options);
        self.fake.wait_reply(&token, WAIT)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("opsbot's logs:\n{}", self.logs());
        }
    }
}

pub(crate) fn content(m: &Value) -> &str {
    m["content"].as_str().unwrap_or_default()
}

#[test]
fn run_connects_registers_answers_and_posts_safely() {
    let mut live = Live::start();
    let fake = &live.fake;
    let names: Vec<String> = fake
        .commands()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for want in [
        "ticket",
        "alert",
        "build",
        "runs",
        "deploy",
        "approve",
        "help",
        "build-web",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not registered: {names:?}"
        );
    }
    // Options as declared: types, choices, autocomplete where values come from the bot.
    let ticket = fake
        .commands()
        .into_iter()
        .find(|c| c["name"] == "ticket")
        .unwrap();
    let sub = |name: &str| {
        ticket["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no /ticket {name}: {ticket}"))
    };
    let open_opts = sub("open")["options"].clone();
    let opt = |opts: &Value, name: &str| {
        opts.as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(opt(&open_opts, "title")["required"], true);
    assert_eq!(opt(&open_opts, "title")["type"], 3);
    let choices: Vec<String> = opt(&open_opts, "priority")["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(choices, ["p1", "p2", "p3", "p4"]);
    assert_eq!(opt(&open_opts, "team")["autocomplete"], true);
    assert_eq!(opt(&sub("show")["options"], "id")["autocomplete"], true);
    assert_eq!(sub("show")["type"], 1, "a subcommand");

    let reply = live.answer(
        (OLIVIA, "olivia-on-discord"),
        OPS,
        &["ticket", "open"],
        &[
            ("title", json!("Checkout down @everyone")),
            ("team", json!("backend")),
        ],
    );
    assert!(content(&reply).contains("OPS-1"), "{reply}");

    let ops = fake.wait_messages(OPS, 1, WAIT);
    let card = &ops[0];
    assert!(!card.to_string().contains("@everyone"), "{card}");
    assert_eq!(
        card["pings"],
        json!({"everyone": false, "roles": [], "users": []}),
        "nobody is pinged: {card}"
    );
    assert_eq!(card["enforce_nonce"], true, "{card}");
    assert!(
        card["nonce"]
            .as_str()
            .unwrap_or_default()
            .starts_with("opsbot-"),
        "{card}"
    );
    // The team channel hears of it.
    let backend = fake.wait_messages(BACKEND, 1, WAIT);
    assert!(
        content(&backend[0]).contains("assigned to team backend"),
        "{}",
        backend[0]
    );
    live.stop();
    let _ = live.fake.take_unexpected();
}

#[test]
fn chat_messages_in_rule_channels_open_alert_tickets() {
    let live = Live::start();
    // Only the intents the config needs: the shipped config has message rules.
    let intents = live.fake.identify_intents().unwrap_or_default();
    let wanted = serenity::all::GatewayIntents::GUILDS
        | serenity::all::GatewayIntents::GUILD_MESSAGES
        | serenity::all::GatewayIntents::MESSAGE_CONTENT;
    assert_eq!(intents, wanted.bits());
    let mut msg = fx::message(
        fx::next_id(),
        ALERTS,
        fx::user(STRANGER, "grafana-relay"),
        "[FIRING:1] HighLatency web (critical)",
    );
    msg["guild_id"] = json!(fx::GUILD_ID.to_string());
    live.fake.dispatch("MESSAGE_CREATE", msg);
    let posts = live.fake.wait_messages(OPS, 1, WAIT);
    assert!(content(&posts[0]).contains("HighLatency"), "{}", posts[0]);
}

impl Live {
    /// Dispatches `interaction` as `user`; returns its id and token.
    fn dispatch_as(&self, user: (u64, &str), interaction: Value) -> (u64, String) {
        let d = fx::with_member(interaction, user.0, user.1, &[]);
        let id = d["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        let token = d["token"].as_str().unwrap_or_default().to_string();
        self.fake.dispatch("INTERACTION_CREATE", d);
        (id, token)
    }

    /// Presses button `custom_id` on message `msg` (as the fake records it).
    fn press(&self, user: (u64, &str), custom_id: &str, msg: &Value) -> (u64, String) {
        self.dispatch_as(user, fx::button(custom_id, &msg["message"]))
    }

    /// Submits modal `custom_id` in `channel`.
    fn submit(
        &self,
        user: (u64, &str),
        channel: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> (u64, String) {
        self.dispatch_as(
            user,
            fx::in_channel(fx::modal_submit(custom_id, fields), channel),
        )
    }

    /// The card of ticket `id` in #ops, as it is now.
    fn card(&self, id: &str) -> Value {
        let want = format!("{id} · ");
        self.fake
            .wait_until(&format!("the card of {id}"), WAIT, |f| {
                f.messages(OPS).into_iter().find(|m| {
                    m["embeds"][0]["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&want))
                })
            })
    }

    /// Waits until the card of `id` shows `state`; returns it.
    fn card_in(&self, id: &str, state: &str) -> Value {
        let card = self.card(id);
        let mid: u64 = card["id"].as_str().unwrap().parse().unwrap();
        self.fake
            .wait_until(&format!("the card of {id} in {state}"), WAIT, |f| {
                f.message(mid).filter(|m| field(m, "State") == state)
            })
    }
}

/// The value of an embed field of a card.
fn field(card: &Value, name: &str) -> String {
    card["embeds"][0]["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == name))
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The custom ids of a message's components, row by row.
fn custom_ids(msg: &Value) -> Vec<String> {
    msg["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_support_flow_through_cards_buttons_menus_and_modals() {
    let live = Live::start();
    let fake = &live.fake;
    let olivia = (OLIVIA, "olivia-on-discord");
    let bob = (BOB, "bob-on-discord");
    let quinn = (QUINN, "quinn-on-discord");
    let reply = live.answer(
        olivia,
        OPS,
        &["ticket", "open"],
        &[("title", json!("Checkout fails for *some* users"))],
    );
    assert!(content(&reply).contains("OPS-1"), "{reply}");
    assert_eq!(
        reply["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "private: {reply}"
    );

    // The card: an embed in #ops, coloured by priority, with the buttons of an open ticket.
    let card = live.card_in("OPS-1", "open");
    assert_eq!(card["embeds"][0]["color"], 0xF1C40F, "p3 is yellow: {card}");
    assert_eq!(field(&card, "Priority"), "p3");
    assert_eq!(field(&card, "Team"), "—");
    assert!(field(&card, "Age").starts_with("<t:"), "{card}");
    assert!(
        field(&card, "Due").starts_with("<t:"),
        "p3: taken within 4h: {card}"
    );
    assert_eq!(
        custom_ids(&card),
        [
            "opsbot:take:OPS-1",
            "opsbot:resolve:OPS-1",
            "opsbot:assign:OPS-1"
        ]
    );
    assert!(
        card["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("\\*some\\*"),
        "user text cannot format: {card}"
    );

    // Olivia assigns it to backend from the menu.
    let (_, token) = live.dispatch_as(
        olivia,
        fx::select("opsbot:assign:OPS-1", &["backend"], &card["message"]),
    );
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("team backend"), "{r}");
    let card = live.card_in("OPS-1", "assigned");
    assert_eq!(field(&card, "Team"), "backend");
    assert_eq!(
        card["edits"], 1,
        "edited in place, not posted again: {card}"
    );
    let backend = fake.wait_messages(BACKEND, 1, WAIT);
    assert!(content(&backend[0]).contains("assigned to team backend"));

    // Bob takes it.
    let (_, token) = live.press(bob, "opsbot:take:OPS-1", &card);
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("You have OPS-1"), "{r}");
    let card = live.card_in("OPS-1", "in_progress");
    assert_eq!(field(&card, "Assignee"), format!("<@{BOB}>"));

    // Resolve asks for the note in a modal; submitting it resolves.
    let (id, _) = live.press(bob, "opsbot:resolve:OPS-1", &card);
    let cb = fake.wait_callback(id, WAIT);
    assert_eq!(cb["type"], 9, "a modal: {cb}");
    assert_eq!(cb["data"]["custom_id"], "opsbot:resolve:OPS-1");
    let (_, token) = live.submit(
        bob,
        OPS,
        "opsbot:resolve:OPS-1",
        &[("note", "Rolled back the payment client")],
    );
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("resolved"), "{r}");
    let card = live.card_in("OPS-1", "resolved");
    assert_eq!(
        custom_ids(&card),
        [
            "opsbot:qa:OPS-1",
            "opsbot:verify:OPS-1",
            "opsbot:reject:OPS-1"
        ]
    );

    // Someone who may not verify is told so privately, and nothing moves.
    let (_, token) = live.press((STRANGER, "mallory"), "opsbot:verify:OPS-1", &card);
    let r = fake.wait_reply(&token, WAIT);
    assert_eq!(r["flags"].as_u64().unwrap_or(0) & 64, 64, "ephemeral: {r}");
    assert!(content(&r).contains("only operators"), "{r}");

    // Olivia sends it to QA, Quinn verifies: closed, no buttons left.
    let (_, token) = live.press(olivia, "opsbot:qa:OPS-1", &card);
    fake.wait_reply(&token, WAIT);
    let card = live.card_in("OPS-1", "qa");
    let qa = fake.wait_messages(QA, 1, WAIT);
    assert!(content(&qa[0]).contains("sent to QA"), "{}", qa[0]);
    let (_, token) = live.press(quinn, "opsbot:verify:OPS-1", &card);
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("closed"), "{r}");
    let card = live.card_in("OPS-1", "closed");
    assert!(
        custom_ids(&card).iter().all(|c| c == "opsbot:reopen:OPS-1"),
        "{card}"
    );
    assert_eq!(
        fake.messages(OPS)
            .iter()
            .filter(|m| !m["embeds"].as_array().is_none_or(|e| e.is_empty()))
            .count(),
        1,
        "one card"
    );

    // The whole story is in the card's thread.
    let threads = fake.threads(OPS);
    assert_eq!(threads.len(), 1, "{threads:?}");
    let thread: u64 = threads[0]["id"].as_str().unwrap().parse().unwrap();
    let story: Vec<String> = fake.wait_until("the whole story", WAIT, |f| {
        let all: Vec<String> = f
            .messages(thread)
            .iter()
            .map(|m| content(m).to_string())
            .collect();
        all.iter().any(|s| s.contains("verified")).then_some(all)
    });
    for want in [
        "opened this ticket",
        "assigned it to team backend",
        "took it",
        "resolved it",
        "Rolled back the payment client",
        "sent it to QA",
        "verified the fix",
    ] {
        assert!(
            story.iter().any(|s| s.contains(want)),
            "{want:?} not in the thread: {story:#?}"
        );
    }
    assert!(fake.unexpected().is_empty(), "{:?}", fake.unexpected());
}

const OLIVIA_AS: (u64, &str) = (OLIVIA, "olivia-on-discord");

fn open(live: &Live, title: &str, team: &str) {
    let r = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "open"],
        &[("title", json!(title)), ("team", json!(team))],
    );
    assert!(content(&r).contains("Opened"), "{r}");
}

/// The ticket ids of the cards in #ops, in posting order.
fn card_ids(fake: &FakeDiscord) -> Vec<String> {
    fake.messages(OPS)
        .iter()
        .filter_map(|m| m["embeds"][0]["title"].as_str())
        .map(|t| t.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn posts_survive_500s_then_429s_once_each_and_in_order() {
    let live = Live::start();
    let fake = &live.fake;
    let posts = |f: &FakeDiscord| {
        f.requests()
            .iter()
            .filter(|r| r.starts_with("POST /api/v10/channels/") && r.ends_with("/messages"))
            .count()
    };
    fake.fail_next(500, 4);
    for n in 1..=3 {
        open(&live, &format!("Outage {n}"), "backend");
    }
    fake.wait_until("the 500s to be used up", WAIT, |f| {
        (posts(f) > 4).then_some(())
    });
    fake.rate_limit_next(4, 0.2);
    for n in 4..=6 {
        open(&live, &format!("Outage {n}"), "backend");
    }
    let want: Vec<String> = (1..=6).map(|n| format!("OPS-{n}")).collect();
    fake.wait_until("six cards", Duration::from_secs(60), |f| {
        (card_ids(f).len() >= 6).then_some(())
    });
    fake.wait_messages(BACKEND, 6, Duration::from_secs(60));
    // Give a doubled post time to show up.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(card_ids(fake), want, "each card once, in order");
    let backend: Vec<String> = fake
        .messages(BACKEND)
        .iter()
        .map(|m| content(m).split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(backend.len(), 6, "{backend:?}");
    for (i, m) in fake.messages(BACKEND).iter().enumerate() {
        assert!(
            content(m).contains(&format!("**OPS-{}**", i + 1)),
            "post {i} in #backend out of order: {}",
            content(m)
        );
    }
    // Each ticket's thread has its story once.
    for t in fake.threads(OPS) {
        let id: u64 = t["id"].as_str().unwrap().parse().unwrap();
        let story: Vec<String> = fake
            .messages(id)
            .iter()
            .map(|m| content(m).to_string())
            .collect();
        assert_eq!(story.len(), 2, "{story:?}");
        assert!(story[0].contains("opened this ticket"), "{story:?}");
        assert!(
            story[1].contains("assigned it to team backend"),
            "{story:?}"
        );
    }
    assert_eq!(fake.threads(OPS).len(), 6);
}

#[test]
fn undelivered_posts_are_delivered_once_after_a_restart() {
    let mut live = Live::start();
    live.fake.fail_next(500, 100_000);
    open(&live, "Disk full on db-1", "backend");
    live.fake.wait_until("a failed post", WAIT, |f| {
        (f.count(&format!("POST /api/v10/channels/{OPS}/messages")) > 0).then_some(())
    });
    live.stop();
    assert!(live.fake.messages(OPS).is_empty());
    live.fake.fail_next(500, 0);
    live.spawn();
    live.card_in("OPS-1", "assigned");
    live.fake.wait_messages(BACKEND, 1, WAIT);
    let thread = live
        .fake
        .wait_until("a thread", WAIT, |f| f.threads(OPS).pop());
    let thread: u64 = thread["id"].as_str().unwrap().parse().unwrap();
    live.fake.wait_messages(thread, 2, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(card_ids(&live.fake), ["OPS-1"]);
    assert_eq!(live.fake.messages(BACKEND).len(), 1);
    assert_eq!(live.fake.messages(thread).len(), 2);
    assert_eq!(live.fake.threads(OPS).len(), 1);
}

/// The ids of a card and its thread are noted through the commit thread's
/// group commit (no flush of their own): they are on disk all the same, so
/// after a restart the card is edited in place and the story goes on in its
/// thread.
#[test]
fn a_cards_message_and_thread_are_found_again_after_a_restart() {
    let mut live = Live::start();
    open(&live, "Disk full on db-1", "backend");
    live.card_in("OPS-1", "assigned");
    let thread = live
        .fake
        .wait_until("a thread", WAIT, |f| f.threads(OPS).pop());
    let thread: u64 = thread["id"].as_str().unwrap().parse().unwrap();
    live.fake.wait_messages(thread, 2, WAIT);
    live.stop();
    live.spawn();
    let r = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "resolve"],
        &[("id", json!("OPS-1")), ("note", json!("space freed"))],
    );
    assert!(content(&r).contains("resolved"), "{r}");
    live.card_in("OPS-1", "resolved");
    live.fake.wait_messages(thread, 3, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        card_ids(&live.fake),
        ["OPS-1"],
        "the card edited, not posted again"
    );
    assert_eq!(live.fake.threads(OPS).len(), 1, "the thread found again");
    assert!(
        content(&live.fake.messages(thread)[2]).contains("resolved"),
        "{:?}",
        live.fake.messages(thread)
    );
}

#[test]
fn a_channel_that_refuses_posts_is_reported_to_ops_once_and_kept_on_record() {
    let mut live = Live::start();
    live.fake.forbid_channel(BACKEND);
    open(&live, "Login slow", "backend");
    open(&live, "Login slower", "backend");
    live.card_in("OPS-2", "assigned");
    let notice = live.fake.wait_until("a notice in #ops", WAIT, |f| {
        f.messages(OPS)
            .into_iter()
            .find(|m| content(m).contains("cannot post in #backend"))
    });
    assert!(content(&notice).contains("Missing Permissions"), "{notice}");
    std::thread::sleep(Duration::from_millis(1500));
    let notices = live
        .fake
        .messages(OPS)
        .iter()
        .filter(|m| content(m).contains("cannot post in #backend"))
        .count();
    assert_eq!(notices, 1, "told once");
    live.stop();
    assert!(live.logs().contains("a post was refused for good"));
    let (_bot, writer, store) = live.env.bot();
    let dead = store.dead_letters().expect("dead letters");
    assert_eq!(dead.len(), 2, "both #backend posts kept: {dead:?}");
    for d in &dead {
        let opsbot::engine::Effect::Post(p) = &d.effect else {
            panic!("{d:?}")
        };
        assert_eq!(p.channel.as_str(), "backend");
        assert!(d.last_error.as_deref().unwrap_or_default().contains("403"));
    }
    drop(_bot);
    writer.join();
}

impl Live {
    /// Autocomplete choices for option `focused` of command `path`.
    fn choices(&self, path: &[&str], options: &[(&str, Value)], focused: &str) -> Vec<String> {
        let id = fx::next_id();
        let d = fx::autocomplete(
            id,
            &format!("ac-{id}"),
            OPS,
            fx::GUILD_ID,
            OLIVIA,
            "olivia-on-discord",
            &[],
            path,
            options,
            focused,
        );
        self.fake.dispatch("INTERACTION_CREATE", d);
        let cb = self.fake.wait_callback(id, WAIT);
        assert_eq!(cb["type"], 8, "{cb}");
        cb["data"]["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["value"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The message in `channel` with a button `custom_id`, as it is now.
    fn with_button(&self, channel: u64, custom_id: &str) -> Value {
        self.fake
            .wait_until(&format!("a message with {custom_id}"), WAIT, |f| {
                f.messages(channel)
                    .into_iter()
                    .find(|m| custom_ids(m).iter().any(|c| c == custom_id))
            })
    }
}

#[test]
fn autocomplete_offers_open_tickets_first_then_teams_people_jobs_services_and_environments() {
    let live = Live::start();
    for title in ["Checkout down", "Login slow", "Checkout slow"] {
        live.answer(
            OLIVIA_AS,
            OPS,
            &["ticket", "open"],
            &[("title", json!(title))],
        );
    }
    for (path, extra) in [
        (["ticket", "resolve"], Some(("note", json!("restarted")))),
        (["ticket", "verify"], None),
    ] {
        let mut opts = vec![("id", json!("OPS-1"))];
        opts.extend(extra);
        let r = live.answer(OLIVIA_AS, OPS, &path, &opts);
        assert!(!content(&r).contains("only"), "{r}");
    }
    let id = |partial: &str| live.choices(&["ticket", "show"], &[("id", json!(partial))], "id");
    assert_eq!(id(""), ["OPS-3", "OPS-2"], "open ones, newest first");
    assert_eq!(
        id("checkout"),
        ["OPS-3"],
        "by title; the closed one is left out"
    );
    assert_eq!(id("ops-1"), ["OPS-1"], "a closed one whose number is typed");
    assert_eq!(
        live.choices(
            &["ticket", "assign"],
            &[("id", json!("OPS-2")), ("team", json!("ba"))],
            "team"
        ),
        ["backend"]
    );
    assert_eq!(
        live.choices(
            &["ticket", "assign"],
            &[("id", json!("OPS-2")), ("user", json!("b"))],
            "user"
        ),
        ["bella", "bob"]
    );
    assert_eq!(
        live.choices(&["build", "run"], &[("job", json!("web"))], "job"),
        ["build-web", "deploy-web", "test-web"]
    );
    assert_eq!(
        live.choices(&["deploy"], &[("service", json!(""))], "service"),
        ["web"]
    );
    assert_eq!(
        live.choices(
            &["deploy"],
            &[("service", json!("web")), ("env", json!(""))],
            "env"
        ),
        ["production", "staging"]
    );
}

#[test]
fn a_protected_deploy_waits_for_someone_else_to_press_approve() {
    let live = Live::start();
    let fake = &live.fake;
    let bob = (BOB, "bob-on-discord");
    let rita = (RITA, "rita-on-discord");
    let deploy = |version: &str| {
        live.answer(
            bob,
            BACKEND,
            &["deploy"],
            &[
                ("service", json!("web")),
                ("env", json!("production")),
                ("version", json!(version)),
            ],
        )
    };
    let r = deploy("1.4.2");
    assert!(content(&r).contains("RUN-1 waits for an approval"), "{r}");
    let progress = live.with_button(BACKEND, "opsbot:approve:RUN-1");
    assert_eq!(
        custom_ids(&progress),
        ["opsbot:approve:RUN-1", "opsbot:deny:RUN-1"]
    );
    // Never one's own.
    let (_, token) = live.press(bob, "opsbot:approve:RUN-1", &progress);
    let r = fake.wait_reply(&token, WAIT);
    assert_eq!(r["flags"].as_u64().unwrap_or(0) & 64, 64, "ephemeral: {r}");
    assert!(content(&r).contains("someone else must approve"), "{r}");
    // Rita's press starts it; the same message follows it to the end, buttons gone.
    let (_, token) = live.press(rita, "opsbot:approve:RUN-1", &progress);
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("approved and starts now"), "{r}");
    let mid: u64 = progress["id"].as_str().unwrap().parse().unwrap();
    let done = fake.wait_until("RUN-1 to succeed", Duration::from_secs(30), |f| {
        f.message(mid).filter(|m| content(m).contains("succeeded"))
    });
    assert!(custom_ids(&done).is_empty(), "{done}");

    // A second one, denied with a reason asked in a modal.
    deploy("1.4.3");
    let progress = live.with_button(BACKEND, "opsbot:deny:RUN-2");
    let (id, _) = live.press(rita, "opsbot:deny:RUN-2", &progress);
    assert_eq!(fake.wait_callback(id, WAIT)["type"], 9);
    let (_, token) = live.submit(
        rita,
        BACKEND,
        "opsbot:deny:RUN-2",
        &[("reason", "not during the sale")],
    );
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("RUN-2 is denied"), "{r}");
    let mid: u64 = progress["id"].as_str().unwrap().parse().unwrap();
    let denied = fake.wait_until("RUN-2 to be cancelled", WAIT, |f| {
        f.message(mid).filter(|m| content(m).contains("cancelled"))
    });
    assert!(content(&denied).contains("not during the sale"), "{denied}");
    assert!(custom_ids(&denied).is_empty(), "{denied}");
}

#[test]
fn a_slow_answer_is_deferred_then_edited_in() {
    // Every answer counts as slow here.
    let live = Live::start_with(|t| t.replace("[discord]\n", "[discord]\ndefer_after = \"0ms\"\n"));
    let (id, token) = live.slash(
        OLIVIA_AS,
        OPS,
        &["ticket", "open"],
        &[("title", json!("Slow"))],
    );
    let cb = live.fake.wait_callback(id, WAIT);
    assert_eq!(cb["type"], 5, "deferred: {cb}");
    assert_eq!(cb["data"]["flags"], 64, "privately: {cb}");
    let r = live.fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("Opened **OPS-1**"), "{r}");
    assert_eq!(
        live.fake
            .callbacks()
            .iter()
            .filter(|c| c["interaction_id"] == json!(id.to_string()))
            .count(),
        1,
        "answered once"
    );
}

#[test]
fn a_defer_after_discord_would_not_wait_for_is_refused_by_check() {
    let env = Env::shipped_with(
        &shipped_config().replace("[discord]\n", "[discord]\ndefer_after = \"5s\"\n"),
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("`discord.defer_after`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("at most 2500ms"), "{}", run.stderr);
}

#[test]
fn the_bot_pings_the_assignee_and_nobody_else() {
    let live = Live::start();
    open(&live, "Payments @here <@&42> down", "backend");
    let r = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "assign"],
        &[
            ("id", json!("OPS-1")),
            ("team", json!("backend")),
            ("user", json!("bob")),
        ],
    );
    assert!(content(&r).contains("assigned to bob"), "{r}");
    let posts = live.fake.wait_messages(BACKEND, 2, WAIT);
    let assigned = &posts[1];
    assert!(
        content(assigned).contains(&format!("<@{BOB}>")),
        "{assigned}"
    );
    assert_eq!(
        assigned["pings"],
        json!({"everyone": false, "roles": [], "users": [BOB.to_string()]}),
        "{assigned}"
    );
    assert!(!content(assigned).contains("<@&42>"), "{assigned}");
}

const ROLE_OPERATORS: u64 = 1_180_000_000_000_000_500;

#[test]
fn a_discord_role_mapped_to_operators_lets_its_members_act_as_operators() {
    let live = Live::start_with(|t| {
        t.replace(
            "[discord.roles]\n",
            &format!("[discord.roles]\noperators = \"{ROLE_OPERATORS}\"\n"),
        )
    });
    open(&live, "Cache cold", "backend");
    let r = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "resolve"],
        &[("id", json!("OPS-1")), ("note", json!("warmed"))],
    );
    assert!(content(&r).contains("resolved"), "{r}");
    let card = live.card_in("OPS-1", "resolved");
    // Not named in bot.toml and without the role: refused.
    let (_, token) = live.press((STRANGER, "sam"), "opsbot:verify:OPS-1", &card);
    let r = live.fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("only operators"), "{r}");
    // With the role: an operator.
    let press = fx::with_member(
        fx::button("opsbot:verify:OPS-1", &card["message"]),
        STRANGER,
        "sam",
        &[ROLE_OPERATORS],
    );
    let token = press["token"].as_str().unwrap().to_string();
    live.fake.dispatch("INTERACTION_CREATE", press);
    let r = live.fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("OPS-1 is closed"), "{r}");
    live.card_in("OPS-1", "closed");
}

#[test]
fn a_role_mapped_to_something_unknown_is_named_by_check() {
    let env = Env::shipped_with(
        &shipped_config().replace("[discord.roles]\n", "[discord.roles]\nadmins = \"1\"\n"),
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("`admins` is not operators, release_managers or a team (backend, infra, qa)"),
        "{}",
        run.stderr
    );
}

#[test]
fn long_text_is_cut_to_discords_limits_with_a_note() {
    let live = Live::start();
    let description = "Steps: **".repeat(400);
    let r = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "open"],
        &[
            ("title", json!("x".repeat(200))),
            ("description", json!(description)),
        ],
    );
    assert!(content(&r).contains("OPS-1"), "{r}");
    let card = live.card("OPS-1");
    let desc = card["embeds"][0]["description"].as_str().unwrap();
    // At the limit, less a backslash when the cut fell inside an escape.
    let n = desc.chars().count();
    assert!((4095..=4096).contains(&n), "cut to the embed limit: {n}");
    assert!(desc.ends_with("(cut: too long for Discord)"), "{desc}");
    assert!(desc.starts_with("Steps\\: \\*\\*"), "escaped: {desc}");
    assert!(content(&card).chars().count() <= 2000);
}

#[test]
fn run_without_the_token_says_which_variable_and_points_to_the_console() {
    let env = Env::shipped();
    let out = Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .args(["run", "--config"])
        .arg(&env.config)
        .env_remove("DISCORD_TOKEN")
        .output()
        .expect("run opsbot");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DISCORD_TOKEN is not set"), "{err}");
    assert!(err.contains("opsbot console"), "{err}");
}

#[test]
fn report_comes_with_its_chart_attached() {
    let live = Live::start();
    open(&live, "Queue backlog", "backend");
    let r = live.answer(OLIVIA_AS, OPS, &["report"], &[("period", json!("7d"))]);
    assert!(content(&r).contains("opened"), "{r}");
    let files = r["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{r}");
    assert!(
        files[0]["filename"]
            .as_str()
            .unwrap_or_default()
            .ends_with(".png"),
        "{r}"
    );
    assert!(files[0]["size"].as_u64().unwrap_or(0) > 1000, "{r}");
    assert_eq!(r["attachments"].as_array().map(Vec::len), Some(1), "{r}");
}

#[test]
fn an_alert_storm_is_summed_up_in_ops_without_spilling_threads_into_it() {
    let live = Live::start();
    // Hold #ops back so the storm's posts pile up behind the first ones.
    for n in 0..30 {
        let mut msg = fx::message(
            fx::next_id(),
            ALERTS,
            fx::user(STRANGER, "grafana-relay"),
            &format!("[FIRING:1] Disk{n} db-{n} (warning)"),
        );
        msg["guild_id"] = json!(fx::GUILD_ID.to_string());
        live.fake.dispatch("MESSAGE_CREATE", msg);
    }
    let summary = live.fake.wait_until("a storm summary in #ops", WAIT, |f| {
        f.messages(OPS)
            .into_iter()
            .find(|m| content(m).starts_with("Alert storm:"))
    });
    assert!(
        summary["embeds"].as_array().is_none_or(|e| e.is_empty()),
        "{summary}"
    );
    assert!(custom_ids(&summary).is_empty(), "{summary}");
    std::thread::sleep(Duration::from_millis(1500));
    let ops = live.fake.messages(OPS);
    assert!(
        ops.iter()
            .all(|m| !content(m).contains("opened this ticket")),
        "a ticket's story went to #ops itself: {:#?}",
        ops.iter().map(content).collect::<Vec<_>>()
    );
    assert!(ops.len() < 15, "{} posts in #ops", ops.len());
}

#[test]
fn commands_register_in_each_configured_guild_and_a_refusal_is_logged() {
    let other = fx::GUILD_ID + 7;
    let live = Live::start_with(|t| {
        t.replace(
            &format!("guild_id = \"{}\"", fx::GUILD_ID),
            &format!("guild_id = [\"{other}\", {}]", fx::GUILD_ID),
        )
    });
    assert!(live.fake.commands().iter().any(|c| c["name"] == "ticket"));
    assert!(live
        .fake
        .requests()
        .iter()
        .any(|r| r.contains(&format!("/guilds/{other}/commands"))));
    let r = live.answer(OLIVIA_AS, OPS, &["help"], &[]);
    assert!(content(&r).contains("/ticket"), "{r}");
    let deadline = Instant::now() + WAIT;
    while !live
        .logs()
        .contains("cannot register the slash commands in a guild")
    {
        assert!(Instant::now() < deadline, "{}", live.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(live.logs().contains(&other.to_string()), "{}", live.logs());
}

#[test]
fn a_guild_id_that_is_no_id_is_named_by_check() {
    let env = Env::shipped_with(&shipped_config().replace(
        "# guild_id = \"123456789012345678\"        # commands register here, or in each of a list (else globally)",
        "guild_id = [\"123\", \"general\"]",
    ));
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("`discord.guild_id[1]`"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_says_which_channels_have_no_discord_id() {
    let env = Env::shipped_with(
        &shipped_config()
            .replace(
                "[discord.channels]\n",
                "[discord.channels]\nops = 1\nbackend = 2\n",
            )
            .replace("[discord.users]\n", "[discord.users]\nolivia = 3\n"),
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("discord: "))
        .unwrap_or_else(|| panic!("{}", run.stdout))
        .to_string();
    assert!(
        line.contains(
            "no channel id for #alerts, #infra, #qa (looked up by name in the guild at start)"
        ),
        "{line}"
    );
    assert!(line.contains("1 people, 0 roles mapped"), "{line}");
}

#[test]
fn terminal_escapes_never_reach_discord() {
    let esc = "\x1b]0;pwned\x07\x1b[2J";
    let live = Live::start();
    let reply = live.answer(
        (OLIVIA, "olivia-on-discord"),
        OPS,
        &["ticket", "open"],
        &[
            ("title", json!(format!("Disk {esc} full"))),
            (
                "description",
                json!(format!("desc {esc} \u{202E}evil\u{202C} end")),
            ),
            ("team", json!("backend")),
        ],
    );
    crate::hostile_text::assert_clean_json("the reply", &reply);
    let shown = live.answer(
        (OLIVIA, "olivia-on-discord"),
        OPS,
        &["ticket", "show"],
        &[("id", json!("OPS-1"))],
    );
    crate::hostile_text::assert_clean_json("/ticket show", &shown);
    // The words are kept (Discord's markdown escaped), the escapes gone.
    assert!(
        content(&shown).contains("desc \\]0;pwned\\[2J evil end"),
        "{shown}"
    );
    // A monitoring tool's chat message, read as an alert.
    let mut msg = fx::message(
        fx::next_id(),
        ALERTS,
        fx::user(STRANGER, "grafana-relay"),
        &format!("[FIRING:1] High{esc}Latency web (critical)"),
    );
    msg["guild_id"] = json!(fx::GUILD_ID.to_string());
    live.fake.dispatch("MESSAGE_CREATE", msg);
    let ops = live.fake.wait_messages(OPS, 2, WAIT);
    assert!(
        ops.iter().any(|m| m
            .to_string()
            .replace('\\', "")
            .contains("High]0;pwned[2JLatency")),
        "{ops:?}"
    );
    let backend = live.fake.wait_messages(BACKEND, 1, WAIT);
    for m in ops.iter().chain(backend.iter()) {
        crate::hostile_text::assert_clean_json("a post", m);
    }
    for t in live.fake.threads(OPS) {
        crate::hostile_text::assert_clean_json("a thread", &t);
        let id: u64 = t["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        for m in live.fake.messages(id) {
            crate::hostile_text::assert_clean_json("a thread's post", &m);
        }
    }
    for c in live.fake.callbacks() {
        crate::hostile_text::assert_clean_json("an interaction answer", &c);
    }
}
impl Live {
    /// The HTTP intake's base URL, from the `listening on` line of the log.
    fn http_base(&self) -> String {
        self.fake
            .wait_until("the HTTP intake listening", WAIT, |_| {
                std::fs::read_to_string(self.log(self.runs))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("listening on ").map(str::to_string))
            })
    }
}

/// `GET path`: the status and the JSON body.
fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(url)
        .send()
        .expect("request");
    let code = resp.status().as_u16();
    (code, resp.json().unwrap_or(Value::Null))
}

/// Polls `url` until `want(status, body)`, at most `WAIT`; returns the last answer.
fn poll_json(url: &str, want: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = get_json(url);
        if want(code, &body) || Instant::now() >= deadline {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readiness_follows_the_discord_gateway_and_liveness_does_not() {
    let live = Live::start();
    let base = live.http_base();
    let ready = format!("{base}/readyz");
    let (code, body) = poll_json(&ready, |c, _| c == 200);
    assert_eq!(
        (code, &body),
        (200, &json!({"status": "ok"})),
        "{}",
        live.logs()
    );

    // Discord becomes unreachable: not ready, and readiness says why.
    live.fake.set_gateway_down(true);
    let (code, body) = poll_json(&ready, |c, _| c == 503);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p
            .as_str()
            .unwrap_or_default()
            .starts_with("the Discord gateway is not connected since ")),
        "{body}"
    );
    // Still alive: a restart would not bring Discord back.
    assert_eq!(
        get_json(&format!("{base}/healthz")),
        (200, json!({"status": "ok"}))
    );
    let metrics = reqwest::blocking::get(format!("{base}/metrics"))
        .expect("metrics")
        .text()
        .unwrap_or_default();
    assert!(
        metrics.contains("opsbot_worker_up{worker=\"outbox-chat\"} 1"),
        "{metrics}"
    );

    // Back: ready again once serenity has reconnected.
    live.fake.set_gateway_down(false);
    let (code, body) = poll_json(&ready, |c, _| c == 200);
    assert_eq!(code, 200, "{body}\n{}", live.logs());
}

#[test]
fn a_deploy_jobs_own_command_and_build_run_wait_for_approval_on_discord_too() {
    let live = Live::start();
    let fake = &live.fake;
    let bob = (BOB, "bob-on-discord");
    let r = live.answer(
        bob,
        BACKEND,
        &["deploy-web"],
        &[("env", json!("production")), ("version", json!("6.6.6"))],
    );
    assert!(
        content(&r).contains("RUN-1 waits for an approval (release managers (rita))"),
        "{r}"
    );
    // The same buttons as /deploy's, and bob's own press does not count.
    let progress = live.with_button(BACKEND, "opsbot:approve:RUN-1");
    let (_, token) = live.press(bob, "opsbot:approve:RUN-1", &progress);
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("someone else must approve"), "{r}");
    // `/build run job:deploy-web` cannot name an environment: refused, with the way.
    let r = live.answer(
        bob,
        BACKEND,
        &["build", "run"],
        &[("job", json!("deploy-web"))],
    );
    assert!(
        content(&r).contains("deploy-web is the deploy job of web/production, web/staging: deploy with /deploy service:… env:…"),
        "{r}"
    );
    let mid: u64 = progress["id"].as_str().unwrap().parse().unwrap();
    let m = fake.message(mid).expect("the progress message");
    assert!(content(&m).contains("waiting_approval"), "{m}");
}

/// A ticket's thread made on Discord whose id was never noted (the instance
/// that made it died, or was paused past its lease, between Discord's
/// answer and the note): the next post of the thread is refused a second
/// thread (160004), and goes into the one there is, which has the card's id.
/// (Found by the failover test: each post of that thread went to the dead
/// letters.)
#[test]
fn a_thread_made_but_not_noted_is_found_again_instead_of_refused() {
    use opsbot::adapters::discord::DiscordSink;
    use opsbot::domain::rich::Rich;
    use opsbot::domain::{ChannelName, TicketId};
    use opsbot::engine::{Effect, Post};
    use opsbot::runtime::Sink;
    use serenity::all::{ChannelId, CreateMessage, CreateThread};

    let fake = FakeDiscord::start();
    let env = Env::shipped_with(&config_for(&fake));
    let (bot, writer, store) = env.bot();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let http = std::sync::Arc::new(fake.http());
    let card = rt
        .block_on(ChannelId::new(OPS).send_message(&http, CreateMessage::new().content("card")))
        .expect("card posted");
    store
        .adapter_put("card:OPS-1", &card.id.get().to_string())
        .expect("card noted");
    rt.block_on(ChannelId::new(OPS).create_thread_from_message(
        &http,
        card.id,
        CreateThread::new("OPS-1"),
    ))
    .expect("thread made");
    let sink = DiscordSink {
        http,
        bot: bot.clone(),
    };
    let item = opsbot::store::OutboxItem {
        seq: 7,
        created_at: chrono::Utc::now(),
        effect: Effect::Post(Post {
            channel: ChannelName::parse("ops").unwrap(),
            ticket: Some(TicketId::new("OPS", 1)),
            thread: true,
            body: Rich::new().text("deadline missed"),
            alert: false,
            replaces: None,
            card: None,
            ask: None,
            file: None,
        }),
        attempts: 0,
        last_error: None,
    };
    let delivered = rt.block_on(sink.deliver(&item));
    assert!(delivered.is_ok(), "{delivered:?}");
    let posts = fake.messages(card.id.get());
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(content(&posts[0]), "deadline missed");
    assert_eq!(fake.threads(OPS).len(), 1);
    assert_eq!(
        store.adapter_get("thread:OPS-1").expect("read"),
        Some(card.id.get().to_string()),
        "the thread is noted now"
    );
    drop((sink, bot));
    writer.join();
}

/// `/ticket list` on Discord: the `page` option in the registered command,
/// and a "Next page" button under a list with more, which shows the next
/// page (and none under the last).
#[test]
fn a_list_with_more_has_a_next_page_button_that_shows_it() {
    let live = Live::start();
    let list = live
        .fake
        .commands()
        .into_iter()
        .find(|c| c["name"] == "ticket")
        .and_then(|c| {
            c["options"]
                .as_array()?
                .iter()
                .find(|o| o["name"] == "list")
                .cloned()
        })
        .expect("/ticket list registered");
    let page = list["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "page")
        .unwrap_or_else(|| panic!("no page option: {list}"));
    assert_eq!(page["type"], 4, "an integer: {page}");
    for i in 1..=27 {
        open(&live, &format!("t{i}"), "backend");
    }
    let first = live.answer(OLIVIA_AS, OPS, &["ticket", "list"], &[]);
    assert!(
        content(&first).starts_with("Tickets not closed: 1–25 of 27, page 1 of 2, newest first:"),
        "{first}"
    );
    assert!(content(&first).contains("OPS-27"), "{first}");
    assert_eq!(custom_ids(&first), ["opsbot:list:-:-:0:2"]);
    let (_, token) = live.press(OLIVIA_AS, "opsbot:list:-:-:0:2", &first);
    let second = live.fake.wait_reply(&token, WAIT);
    assert!(
        content(&second).starts_with("Tickets not closed: 26–27 of 27, page 2 of 2, newest first:"),
        "{second}"
    );
    assert!(content(&second).contains("OPS-1"), "{second}");
    assert!(
        custom_ids(&second).is_empty(),
        "no button under the last page: {second}"
    );
    // The option, with a filter; and a page past the end, said as such.
    let by_option = live.answer(
        OLIVIA_AS,
        OPS,
        &["ticket", "list"],
        &[("team", json!("backend")), ("page", json!(2))],
    );
    assert!(
        content(&by_option).starts_with("Tickets not closed, of team backend: 26–27 of 27"),
        "{by_option}"
    );
    let past = live.answer(OLIVIA_AS, OPS, &["ticket", "list"], &[("page", json!(3))]);
    assert!(content(&past).contains("there is no page 3"), "{past}");
}
