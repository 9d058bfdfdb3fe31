//! Pages that reach a person (issue 15), against the fake Discord: `/page`
//! sends a direct message with the ticket's card and an Acknowledge button
//! that takes the ticket; a person whose direct messages are closed (50007)
//! is said once in the team's channel.

use std::time::Duration;

use serde_json::{json, Value};

use crate::alert_links::run_on;
use crate::discord::{config_for, ALERTS, BACKEND, INFRA, OPS, QA};
use crate::discord_fixtures as fx;
use crate::fake_discord::FakeDiscord;
use crate::harness::Env;

const WAIT: Duration = Duration::from_secs(15);
const OLIVIA: u64 = fx::USER_ID;
const BOB: u64 = fx::USER_ID + 1;
const RITA: u64 = fx::USER_ID + 3;

/// Runs a slash command as olivia in #ops; returns its answer's text.
fn slash(fake: &FakeDiscord, path: &[&str], options: &[(&str, Value)]) -> String {
    let id = fx::next_id();
    let token = format!("tok-{id}");
    let d = fx::slash(
        id,
        &token,
        OPS,
        fx::GUILD_ID,
        OLIVIA,
        "olivia",
        &[],
        path,
        options,
    );
    fake.dispatch("INTERACTION_CREATE", d);
    let r = fake.wait_reply(&token, WAIT);
    r["data"]["content"]
        .as_str()
        .or_else(|| r["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn custom_ids(msg: &Value) -> Vec<(String, String)> {
    msg["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["custom_id"].as_str().unwrap_or("").to_string(),
                c["label"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_page_is_a_direct_message_whose_acknowledge_takes_the_ticket_and_closed_dms_are_said_once() {
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
    let (_bot, _) = run_on(&env, &fake);
    let opened = slash(
        &fake,
        &["ticket", "open"],
        &[
            ("title", json!("Checkout down")),
            ("priority", json!("p1")),
            ("team", json!("backend")),
        ],
    );
    assert!(opened.contains("OPS-1"), "{opened}");

    let answer = slash(
        &fake,
        &["page"],
        &[("user", json!("bob")), ("id", json!("OPS-1"))],
    );
    assert!(answer.starts_with("Paged bob about OPS-1"), "{answer}");
    let dm = fake.wait_until("bob's DM channel", WAIT, |f| f.dm_channel(BOB));
    let page = fake.wait_messages(dm, 1, WAIT).remove(0);
    assert!(
        page["content"]
            .as_str()
            .is_some_and(|c| c.contains("olivia pages you") && c.contains("Acknowledge takes it")),
        "{page:#}"
    );
    assert!(
        page["embeds"][0]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("OPS-1 · Checkout down")),
        "the ticket's card: {page:#}"
    );
    assert_eq!(
        custom_ids(&page),
        [("opsbot:take:OPS-1".to_string(), "Acknowledge".to_string())]
    );

    // bob presses Acknowledge in his DMs: he takes the ticket.
    // As Discord sends a press in a DM: no guild, no member, the user.
    let mut press = fx::in_channel(fx::button("opsbot:take:OPS-1", &page["message"]), dm);
    let obj = press.as_object_mut().expect("an interaction");
    obj.remove("guild_id");
    obj.remove("guild_locale");
    obj.remove("member");
    obj.insert("user".into(), fx::user(BOB, "bob"));
    obj.insert("context".into(), json!(1));
    fake.dispatch("INTERACTION_CREATE", press);
    let card = fake.wait_until("the card of OPS-1 in progress, bob's", WAIT, |f| {
        f.messages(OPS).into_iter().find(|m| {
            let fields = m["embeds"][0]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let field = |n: &str| {
                fields
                    .iter()
                    .find(|x| x["name"] == n)
                    .and_then(|x| x["value"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            m["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("OPS-1 · "))
                && field("State") == "in_progress"
                && field("Assignee").contains(&BOB.to_string())
        })
    });
    assert!(card["id"].is_string());

    // rita's DMs are closed: the page is said once in #backend, however
    // often she is paged.
    fake.close_dms(RITA);
    for _ in 0..2 {
        let answer = slash(
            &fake,
            &["page"],
            &[("user", json!("rita")), ("id", json!("OPS-1"))],
        );
        assert!(answer.starts_with("Paged rita"), "{answer}");
    }
    let said = fake.wait_until("the closed DMs said in #backend", WAIT, |f| {
        f.messages(BACKEND).into_iter().find(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("did not reach them"))
        })
    });
    assert!(
        said["content"]
            .as_str()
            .is_some_and(|c| c.contains("direct messages are closed (Discord error 50007)")),
        "{said:#}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let times = fake
        .messages(BACKEND)
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("did not reach them"))
        })
        .count();
    assert_eq!(times, 1, "said once");
    assert!(fake.unexpected().is_empty(), "{:?}", fake.unexpected());
}

/// A page to someone with an address in `bot.toml` is also mailed to them
/// through the mail outbox, and the real SMTP server receives it.
#[test]
fn a_page_is_mailed_to_a_person_with_an_address() {
    let port = crate::support::free_port();
    let smtp = crate::support::Smtp::start(port);
    let text = crate::kit::shipped_config().replace("port = 2525", &format!("port = {port}"))
        + "\n[people.bob]\nemail = \"bob@example.com\"\n";
    let env = Env::shipped_with(&text);
    let run = env.console(&[
        ":as olivia",
        "/ticket open title:\"Checkout down\" priority:p1 team:backend",
        "/page user:bob id:OPS-1",
        "/page user:bella id:OPS-1",
    ]);
    assert!(
        run.stdout.contains("[page → bob]") && run.stdout.contains("Paged bob about OPS-1"),
        "{}",
        run.stdout
    );
    let mails = smtp.wait_for(1);
    // Only bob has an address: one mail, to him.
    std::thread::sleep(Duration::from_millis(500));
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), 1, "{mails_now:?}");
    let (headers, body) = &mails[0];
    assert!(headers["to"].contains("bob@example.com"), "{headers:?}");
    // The subject holds a `·`, so it travels as an encoded word.
    let raw = format!("Subject: {}\r\n\r\n", headers["subject"]);
    let subject = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default();
    assert_eq!(subject, "[OPS-1] p1 · Checkout down", "{headers:?}");
    assert!(body.contains("olivia pages you"), "{body}");
    assert!(body.contains("/ticket take id:OPS-1"), "{body}");
}
