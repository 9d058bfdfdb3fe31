//! `SIGHUP` reloads `bot.toml` and `commands/` in a running bot: a valid
//! file is in effect for the next event, an invalid one is refused (the log
//! and `#ops` say why, once) and the running config stays.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Env, LiveBot};

const WAIT: Duration = Duration::from_secs(20);

/// A team for the database, and the route that sends `service=db` alerts
/// to it.
const DATA_TEAM: &str = r#"
[teams.data]
channel = "data"
members = ["ivan"]
description = "The databases"

[[alerts.routes]]
name = "db"
match = { service = "db" }
team = "data"
priority = "p2"
"#;

fn hup(bot: &LiveBot) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &bot.pid().to_string()])
        .status()
        .expect("kill -HUP")
        .success();
    assert!(ok, "kill -HUP failed");
}

/// Posts one `service=db` alert; returns its ticket's team.
fn db_alert(bot: &LiveBot, title: &str) -> Value {
    let body = json!([{
        "title": title,
        "severity": "warning",
        "status": "firing",
        "labels": {"service": "db", "instance": title},
    }])
    .to_string();
    let (code, answer) = bot.post("/hooks/generic", &body);
    assert_eq!(code, 202, "{answer}");
    let id = answer["tickets"][0].as_str().expect("a ticket").to_string();
    let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text).expect("ticket JSON");
    t["team"].clone()
}

fn count(printed: &str, what: &str) -> usize {
    printed.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn sighup_puts_a_valid_config_in_effect_and_refuses_an_invalid_one_keeping_the_old() {
    let env = Env::shipped();
    let shipped = std::fs::read_to_string(&env.config).expect("config");
    let bot = env.live(&[]);
    assert_eq!(
        db_alert(&bot, "DiskFull"),
        Value::Null,
        "no route for db yet"
    );

    // A new team and route: in effect for the next alert, said once in #ops.
    std::fs::write(&env.config, format!("{shipped}{DATA_TEAM}")).expect("write");
    hup(&bot);
    assert!(
        bot.wait_printed(WAIT, |p| count(p, "[#ops] Reloaded bot.toml") == 1),
        "{}",
        bot.printed()
    );
    assert_eq!(db_alert(&bot, "DiskSlow"), json!("data"));

    // A route to a team that does not exist: refused, the reloaded config
    // stays, and #ops hears of it once with the file, line and key.
    let broken = format!(
        "{shipped}{}",
        DATA_TEAM.replace("team = \"data\"", "team = \"nope\"")
    );
    std::fs::write(&env.config, broken).expect("write");
    hup(&bot);
    assert!(
        bot.wait_printed(WAIT, |p| count(p, "[#ops] I did not reload bot.toml") == 1),
        "{}",
        bot.printed()
    );
    let printed = bot.printed();
    assert!(printed.contains("nope"), "the problem is named: {printed}");
    assert_eq!(
        db_alert(&bot, "DiskGone"),
        json!("data"),
        "the old config stays"
    );

    // Valid again, with a setting only a restart changes: in effect, and
    // that setting named as waiting for a restart.
    let again = format!("{shipped}{DATA_TEAM}")
        .replace("listen = \"127.0.0.1:8787\"", "listen = \"127.0.0.1:8788\"");
    std::fs::write(&env.config, again).expect("write");
    hup(&bot);
    assert!(
        bot.wait_printed(WAIT, |p| count(p, "[#ops] Reloaded bot.toml") == 2),
        "{}",
        bot.printed()
    );
    let printed = bot.printed();
    let said = printed
        .lines()
        .rfind(|l| l.starts_with("[#ops] Reloaded bot.toml"))
        .unwrap_or_default()
        .to_string();
    assert!(
        said.contains("[http] listen") && said.contains("need a restart"),
        "{said}"
    );
    assert_eq!(db_alert(&bot, "DiskBack"), json!("data"));

    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        count(&run.stdout, "I did not reload"),
        1,
        "posted once: {}",
        run.stdout
    );
    // The new team's channel hears of the tickets routed to it.
    let data = run.in_channel("data");
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data[0].starts_with("OPS-2 · p2 · DiskSlow"), "{data:?}");
    assert!(
        run.stderr.contains("config reload refused") && run.stderr.contains("nope"),
        "the problems are in the log: {}",
        run.stderr
    );
    assert!(run.stderr.contains("reloaded "), "{}", run.stderr);
}

/// `opsbot run` on the fake Discord: a reload that adds a custom command
/// (a new `commands/*.toml`) registers the commands again, with it; a
/// reload that changes no command registers nothing; #ops hears of each
/// reload once.
#[test]
fn sighup_under_run_registers_changed_commands_on_discord_again() {
    use crate::discord::{content, Live, OPS};
    let live = Live::start();
    let hup_run = || {
        let pid = live.pid().expect("running");
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP")
            .success();
        assert!(ok, "kill -HUP failed");
    };
    let reloaded = |n: usize| {
        live.fake.wait_until("the reload said in #ops", WAIT, |f| {
            let said = f
                .messages(OPS)
                .iter()
                .filter(|m| content(m).starts_with("Reloaded bot.toml"))
                .count();
            (said >= n).then_some(())
        });
    };
    let before = live.fake.command_registrations();
    assert!(!live
        .fake
        .invocable_commands()
        .contains(&"lint-web".to_string()));
    live.env.write(
        "commands/lint-web.toml",
        "description = \"Lint the web app\"\nteam = \"backend\"\nprogram = \"true\"\n",
    );
    hup_run();
    reloaded(1);
    live.fake
        .wait_until("the commands registered again", WAIT, |f| {
            (f.command_registrations() > before).then_some(())
        });
    assert!(
        live.fake
            .invocable_commands()
            .contains(&"lint-web".to_string()),
        "{:?}",
        live.fake.invocable_commands()
    );
    let after = live.fake.command_registrations();

    // The same commands: nothing registered again.
    hup_run();
    reloaded(2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(live.fake.command_registrations(), after, "{}", live.logs());
    assert!(
        live.fake.unexpected().is_empty(),
        "{:?}",
        live.fake.unexpected()
    );
}

/// A heartbeat that the reload adds.
fn heartbeat(every: &str) -> String {
    format!("\n[heartbeats.backup]\nevery = \"{every}\"\ngrace = \"0s\"\nteam = \"infra\"\n")
}

/// `[heartbeats]` changed by `SIGHUP` take effect in the running bot, and
/// at once: the hook knows a heartbeat the reload added, its silence opens
/// a ticket within seconds (the timers look at the new config right after
/// the reload, and wake at its deadline, well before their 30 s tick), and
/// a longer interval set by the next reload is the one that counts.
#[test]
fn sighup_puts_changed_heartbeats_in_effect_without_a_restart() {
    let env = Env::shipped();
    let shipped = std::fs::read_to_string(&env.config).expect("config");
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/heartbeat/backup", "");
    assert_eq!(code, 404, "{body}");

    std::fs::write(&env.config, format!("{shipped}{}", heartbeat("1s"))).expect("write");
    let reloaded = std::time::Instant::now();
    hup(&bot);
    assert!(
        bot.wait_printed(WAIT, |p| count(p, "[#ops] Reloaded bot.toml") == 1),
        "{}",
        bot.printed()
    );
    let (code, body) = bot.post("/hooks/heartbeat/backup", "");
    assert_eq!((code, body), (202, json!({"heartbeat": "backup"})));
    // No beat after that one: silent past its deadline, a ticket for infra.
    assert!(
        bot.wait_printed(WAIT, |p| p.contains("New heartbeat ticket OPS-1")),
        "{}",
        bot.printed()
    );
    assert!(
        reloaded.elapsed() < Duration::from_secs(15),
        "the silence was found only at the timers' tick: {:?}",
        reloaded.elapsed()
    );

    // Every hour now: a beat resolves the ticket, and a second of silence
    // is no longer a silence.
    std::fs::write(&env.config, format!("{shipped}{}", heartbeat("1h"))).expect("write");
    hup(&bot);
    assert!(
        bot.wait_printed(WAIT, |p| count(p, "[#ops] Reloaded bot.toml") == 2),
        "{}",
        bot.printed()
    );
    let (code, body) = bot.post("/hooks/heartbeat/backup", "");
    assert_eq!(code, 202, "{body}");
    std::thread::sleep(Duration::from_secs(3));
    let (code, text) = bot.get("/api/v1/tickets/OPS-1");
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text).expect("ticket JSON");
    assert_eq!(t["state"], "resolved", "{t:#}");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        count(&run.stdout, "New heartbeat ticket"),
        1,
        "the old interval still counted: {}",
        run.stdout
    );
}
