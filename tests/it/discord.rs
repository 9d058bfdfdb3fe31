//! `opsbot run` against the fake Discord: the real serenity client connects,
//! registers the commands from the declarations, answers a slash command
//! privately, posts to the mapped channel with a nonce, and pings nobody for
//! an `@everyone` in a ticket title.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::discord_fixtures as fx;
use crate::fake_discord::FakeDiscord;
use crate::harness::{shipped_config, Env};

const OPS: u64 = fx::CHANNEL_ID;
const BACKEND: u64 = fx::CHANNEL_ID + 1;

fn env_for(fake: &FakeDiscord) -> Env {
    let text = shipped_config()
        .replace(
            "# guild_id = \"123456789012345678\"",
            &format!(
                "guild_id = \"{}\"\napi_base = \"{}\"",
                fx::GUILD_ID,
                fake.base
            ),
        )
        .replace(
            "# ops = \"223456789012345678\"",
            &format!("ops = \"{OPS}\""),
        )
        .replace(
            "# backend = \"323456789012345678\"",
            &format!("backend = {BACKEND}"),
        )
        .replace(
            "# olivia = \"423456789012345678\"",
            &format!("olivia = \"{}\"", fx::USER_ID),
        );
    Env::shipped_with(&text)
}

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_connects_registers_answers_and_posts_safely() {
    let fake = FakeDiscord::start();
    fake.add_channel(BACKEND, "backend");
    let env = env_for(&fake);
    let child = Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&env.config)
        .env("DISCORD_TOKEN", "fake-token")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start opsbot run");
    let mut running = Running(child);
    fake.wait_ready(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.commands().is_empty() {
        assert!(Instant::now() < deadline, "no commands registered");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    // The message-content intent is asked for: the shipped config has message rules.
    let slash = fx::slash(
        7001,
        "tok-1",
        OPS,
        fx::GUILD_ID,
        fx::USER_ID,
        "olivia-on-discord",
        &[],
        &["ticket", "open"],
        &[
            ("title", json!("Checkout down @everyone")),
            ("team", json!("backend")),
        ],
    );
    fake.dispatch("INTERACTION_CREATE", slash);
    let cb = fake.wait_callback(7001, Duration::from_secs(10));
    assert_eq!(cb["type"], 4, "{cb}");
    assert_eq!(cb["data"]["flags"], 64, "private: {cb}");
    assert!(
        cb["data"]["content"].as_str().unwrap().contains("OPS-1"),
        "{cb}"
    );

    let ops = fake.wait_messages(OPS, 1, Duration::from_secs(10));
    let card = &ops[0];
    let content = card["content"].as_str().unwrap();
    assert!(content.starts_with("New ticket **OPS-1**"), "{content}");
    assert!(content.contains("opened by olivia (discord)"), "{content}");
    assert!(!content.contains("@everyone"), "{content}");
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
    let backend = fake.wait_messages(BACKEND, 1, Duration::from_secs(10));
    assert!(
        backend[0]["content"]
            .as_str()
            .unwrap()
            .contains("assigned to team backend"),
        "{}",
        backend[0]
    );

    // SIGTERM: it stops by itself.
    let _ = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(st)) = running.0.try_wait() {
            assert!(st.success(), "exit {st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = fake.take_unexpected();
}
