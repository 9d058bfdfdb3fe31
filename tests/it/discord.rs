//! `opsbot run` against the fake Discord: the real serenity client connects,
//! registers the commands from the declarations, answers slash commands and
//! button presses, posts cards and threads through the outbox with a nonce,
//! and pings nobody it does not mean to.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::discord_fixtures as fx;
use crate::fake_discord::FakeDiscord;
use crate::harness::{shipped_config, Env};

const OPS: u64 = fx::CHANNEL_ID;
const BACKEND: u64 = fx::CHANNEL_ID + 1;
const ALERTS: u64 = fx::CHANNEL_ID + 2;
const QA: u64 = fx::CHANNEL_ID + 3;
const INFRA: u64 = fx::CHANNEL_ID + 4;

const OLIVIA: u64 = fx::USER_ID;
const BOB: u64 = fx::USER_ID + 1;
const QUINN: u64 = fx::USER_ID + 2;
const RITA: u64 = fx::USER_ID + 3;
const STRANGER: u64 = fx::USER_ID + 9;

const WAIT: Duration = Duration::from_secs(15);

/// The shipped config, pointed at `fake`, with the demo org's channels and
/// people mapped to Discord ids.
fn config_for(fake: &FakeDiscord) -> String {
    shipped_config()
        .replace(
            "# guild_id = \"123456789012345678\"",
            &format!(
                "guild_id = \"{}\"\napi_base = \"{}\"",
                fx::GUILD_ID,
                fake.base
            ),
        )
        .replace(
            "[discord.channels]\n",
            &format!(
                "[discord.channels]\nops = \"{OPS}\"\nbackend = {BACKEND}\nalerts = \"{ALERTS}\"\n\
                 qa = \"{QA}\"\ninfra = \"{INFRA}\"\n"
            ),
        )
        .replace(
            "[discord.users]\n",
            &format!(
                "[discord.users]\nolivia = \"{OLIVIA}\"\nbob = \"{BOB}\"\nquinn = \"{QUINN}\"\n\
                 rita = \"{RITA}\"\n"
            ),
        )
}

/// A fake Discord and `opsbot run` connected to it.
struct Live {
    fake: FakeDiscord,
    env: Env,
    child: Option<Child>,
    runs: usize,
}

impl Live {
    fn start() -> Live {
        let fake = FakeDiscord::start();
        for (id, name) in [
            (BACKEND, "backend"),
            (ALERTS, "alerts"),
            (QA, "qa"),
            (INFRA, "infra"),
        ] {
            fake.add_channel(id, name);
        }
        let env = Env::shipped_with(&config_for(&fake));
        let mut live = Live {
            fake,
            env,
            child: None,
            runs: 0,
        };
        live.spawn();
        live
    }

    fn log(&self, run: usize) -> PathBuf {
        self.env.dir.path().join(format!("run-{run}.log"))
    }

    /// Starts `opsbot run` and waits until its commands are registered.
    fn spawn(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log(self.runs)).expect("log file");
        let registrations = self.fake.command_registrations();
        let child = Command::new(env!("CARGO_BIN_EXE_opsbot"))
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&self.env.config)
            .env("DISCORD_TOKEN", "fake-token")
            .env("RUST_LOG", "warn,opsbot=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start opsbot run");
        self.child = Some(child);
        self.fake.wait_until("commands registered", WAIT, |f| {
            (f.command_registrations() > registrations).then_some(())
        });
    }

    /// SIGTERM, and waits for a clean exit.
    fn stop(&mut self) {
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

    fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// Dispatches a slash command by `user` in `channel`; returns the
    /// interaction's id and token.
    fn slash(
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
    fn answer(
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

fn content(m: &Value) -> &str {
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
