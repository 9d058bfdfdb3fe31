//! Restarts: tickets, timelines and the id counter survive; posts committed
//! but not delivered are delivered by the next start, once.

use opsbot::commands::parse_command;
use opsbot::domain::{Actor, ChannelName, Source, UserName};
use opsbot::engine::Event;

use crate::harness::Env;

#[test]
fn tickets_timelines_and_numbering_survive_a_restart() {
    tickets_timelines_and_numbering_survive_a_restart_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn tickets_timelines_and_numbering_survive_a_restart_on_postgres() {
    tickets_timelines_and_numbering_survive_a_restart_on(Env::on_postgres());
}

fn tickets_timelines_and_numbering_survive_a_restart_on(env: Env) {
    env.console(&[
        "/ticket open title:first team:backend",
        "/ticket open title:second",
        ":as bella",
        "/ticket take id:OPS-1",
    ]);
    let before = env.export();
    let run = env.console(&[
        "/ticket open title:third",
        "/ticket show id:OPS-1",
        ":as bella",
        "/ticket resolve id:OPS-1 note:done",
    ]);
    assert_eq!(run.private()[0], "Opened OPS-3 in #ops.", "{}", run.stdout);
    assert!(
        run.stdout.contains("timeline (3 entries):"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("bella (console) taken: taken by bella"));
    let after = env.export();
    // Everything from before is still there, as it was, except OPS-1 moved on.
    let ops2 = |v: &Vec<serde_json::Value>| {
        v.iter()
            .filter(|e| e["id"] == "OPS-2" || e["ticket"] == "OPS-2")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ops2(&before), ops2(&after));
    let t1 = after.iter().find(|e| e["id"] == "OPS-1").unwrap();
    assert_eq!(t1["state"], "resolved");
    assert_eq!(t1["timeline_len"], 4);
    let ids: Vec<&str> = after
        .iter()
        .filter(|e| e["type"] == "ticket")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["OPS-1", "OPS-2", "OPS-3"]);
}

/// A crash after commit and before delivery leaves posts in the outbox; the
/// next start delivers them, and the one after does not repeat them.
#[test]
fn undelivered_posts_are_delivered_after_a_restart_once() {
    undelivered_posts_are_delivered_after_a_restart_once_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn undelivered_posts_are_delivered_after_a_restart_once_on_postgres() {
    undelivered_posts_are_delivered_after_a_restart_once_on(Env::on_postgres());
}

fn undelivered_posts_are_delivered_after_a_restart_once_on(env: Env) {
    {
        // The library commits without an outbox worker: as if the process
        // died right after the commit.
        let (bot, writer, store) = env.bot();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let prefix = bot.engine().config().tickets.prefix.clone();
        let reply = rt
            .block_on(
                bot.handle(Event::Command {
                    actor: Actor::new(UserName::parse("olivia").unwrap(), Source::Console),
                    channel: ChannelName::parse("ops").unwrap(),
                    command: parse_command(
                        "/ticket open title:\"Queued before the crash\" team:infra",
                        &prefix,
                    )
                    .unwrap(),
                }),
            )
            .unwrap();
        assert!(reply.is_some());
        assert_eq!(store.outbox_len(), 4);
        drop(bot);
        writer.join();
    }
    let first = env.console(&[]);
    assert_eq!(
        first.lines(),
        vec![
            "[#ops] New ticket OPS-1 · p3 · Queued before the crash — opened by olivia (console)",
            "[#ops › OPS-1] olivia opened this ticket: Queued before the crash",
            "[#infra] OPS-1 · p3 · Queued before the crash — assigned to team infra by olivia. Take it: /ticket take id:OPS-1",
            "[#ops › OPS-1] olivia assigned it to team infra.",
        ]
    );
    let second = env.console(&["/ticket list"]);
    assert!(
        !second.stdout.contains("[#"),
        "delivered twice: {}",
        second.stdout
    );
}

/// `opsbot export` while the bot runs on sled (which locks its files): the
/// export comes from the running bot, the same as from a stopped one.
#[test]
fn export_works_while_the_bot_runs() {
    let env = Env::shipped();
    env.console(&["/ticket open title:\"first\"", "/ticket open title:second"]);
    let stopped = env.export();

    let bot = env.live(&[]);
    // The export is the ticket API's: no token or the hook token read nothing.
    assert_eq!(bot.get_with("/api/v1/export", None).0, 401);
    assert_eq!(
        bot.get_with("/api/v1/export", Some(crate::harness::TOKEN))
            .0,
        401
    );
    // The export finds the running bot where the config says it listens.
    let listen = bot.base.trim_start_matches("http://").to_string();
    env.write(
        "bot.toml",
        &crate::harness::shipped_config().replace(
            "listen = \"127.0.0.1:8787\"",
            &format!("listen = \"{listen}\""),
        ),
    );
    let run = env.opsbot_env(
        &["export"],
        "",
        &[("OPSBOT_API_TOKEN", crate::harness::API_TOKEN)],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("from the running bot"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exported 2 tickets"), "{}", run.stderr);
    assert_eq!(run.json(), stopped);
    // Without the API token it says what it needs.
    let refused = env.opsbot(&["export"], "");
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("OPSBOT_API_TOKEN"),
        "{}",
        refused.stderr
    );
    bot.finish();
}
