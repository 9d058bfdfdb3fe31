//! Alertmanager as a new user wires it (issue 15): the receiver example of
//! the README run as it is by a real Alertmanager, a group of 40 alerts in
//! one webhook as one thread post.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::alertmanager::{alert, ticket, wait_for, Alertmanager};
use crate::harness::{Env, LiveBot, TOKEN};

/// The `alertmanager.yml` block of the README, as it is written there.
fn readme_receiver() -> String {
    let readme = std::fs::read_to_string(crate::kit::root().join("README.md")).expect("README.md");
    let start = readme
        .find("```yaml\n# alertmanager.yml\n")
        .expect("the README has a ```yaml block starting with # alertmanager.yml");
    let body = &readme[start + "```yaml\n".len()..];
    let end = body.find("\n```").expect("the yaml block ends");
    body[..end + 1].to_string()
}

/// The README's receiver pointed at `bot` (its address is the one thing
/// changed), with the token file it names beside it.
fn start_from_readme(env: &Env, bot: &LiveBot) -> Alertmanager {
    let yml = readme_receiver();
    let shipped = "http://127.0.0.1:8787";
    assert_eq!(
        yml.matches(shipped).count(),
        1,
        "the receiver names the bot's default address once:\n{yml}"
    );
    for must in [
        "send_resolved: true",
        "type: Bearer",
        "credentials_file: opsbot-token",
        "group_by:",
        "group_wait:",
        "group_interval:",
        "repeat_interval:",
    ] {
        assert!(
            yml.contains(must),
            "the README's receiver lacks `{must}`:\n{yml}"
        );
    }
    env.write("opsbot-token", TOKEN);
    Alertmanager::start_with(env.dir.path(), &yml.replace(shipped, &bot.base))
}

#[test]
fn the_readme_receiver_delivers_a_group_of_40_alerts_as_one_ticket_and_one_thread_post() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let am = start_from_readme(&env, &bot);
    let started = Instant::now();
    let alerts: Vec<Value> = (1..=40)
        .map(|i| {
            alert(
                "HighLatency",
                "checkout",
                &format!("web-{i}:9100"),
                "p99 above 2s",
            )
        })
        .collect();
    am.push(&Value::Array(alerts));
    // group_wait is 10 s in the README: the first notification comes then.
    let t = wait_for(&bot, "OPS-1", "all 40 alerts on the ticket", |t| {
        t["alerts"]["count"] == json!(40)
    });
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "Alertmanager sent before its group_wait: {:?}",
        started.elapsed()
    );
    assert_eq!(t["team"], "backend", "{t:#}");
    assert_eq!(
        t["alerts"]["group"],
        "web-critical/alertname=HighLatency, service=checkout"
    );
    assert!(ticket(&bot, "OPS-2").is_none(), "one group, one ticket");
    drop(am);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let thread = run.in_thread("ops", "OPS-1");
    let joins: Vec<&&str> = thread
        .iter()
        .filter(|l| l.contains("joined this ticket"))
        .collect();
    assert_eq!(joins.len(), 1, "one post for 39 joins: {thread:#?}");
    assert!(
        joins[0].starts_with("+39 alerts joined this ticket: HighLatency checkout")
            && joins[0].ends_with(" and 36 more"),
        "{joins:?}"
    );
}

/// An Alertmanager that keeps silences and alerts and notifies no one.
fn quiet_alertmanager(dir: &std::path::Path) -> Alertmanager {
    Alertmanager::start_with(
        dir,
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    )
}

/// The shipped config with silences kept in `am`, read every 200 ms.
fn keeping_silences_in(am: &Alertmanager) -> Env {
    Env::shipped_with(&format!(
        "{}\n[alerts.alertmanager]\nurl = \"{}\"\npoll = \"200ms\"\n",
        crate::harness::shipped_config(),
        am.base
    ))
}

/// Alertmanager's silences, as its API v2 lists them.
fn am_silences(am: &Alertmanager) -> Vec<Value> {
    let resp = crate::alertmanager::client()
        .get(format!("{}/api/v2/silences", am.base))
        .send()
        .expect("GET /api/v2/silences");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().expect("silences JSON")
}

/// Polls Alertmanager's silences until one satisfies `done`; returns it.
fn wait_silence(am: &Alertmanager, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + crate::alertmanager::WAIT;
    loop {
        let all = am_silences(am);
        if let Some(s) = all.iter().find(|s| done(s)) {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in Alertmanager; its silences: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn amtool(am: &Alertmanager, args: &[&str]) -> String {
    let out = std::process::Command::new("amtool")
        .args(args)
        .arg(format!("--alertmanager.url={}", am.base))
        .output()
        .expect("run amtool (Debian's prometheus-alertmanager has it)");
    assert!(
        out.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn silences_made_in_chat_are_made_in_alertmanager_and_its_own_are_listed_in_chat() {
    // Alertmanager first: the bot's config names its address.
    let dir = tempfile::tempdir().expect("temp dir");
    let am = quiet_alertmanager(dir.path());
    let env = keeping_silences_in(&am);
    let mut bot = env.live(&[]);
    bot.line(
        r#"/alert silence matchers:"alertname=DiskFull service=~db.*" duration:2h comment:"disk swap tonight""#,
    );
    assert!(
        bot.wait_printed(Duration::from_secs(10), |p| p
            .contains("Silence 1 is on until")),
        "{}",
        bot.printed()
    );

    // In Alertmanager, as the API and amtool show it.
    let ours = wait_silence(&am, "the bot's silence", |s| {
        s["comment"] == "disk swap tonight [opsbot silence 1]"
    });
    assert_eq!(ours["createdBy"], "olivia", "{ours:#}");
    assert_eq!(ours["status"]["state"], "active", "{ours:#}");
    assert_eq!(
        ours["matchers"],
        json!([
            {"name": "alertname", "value": "DiskFull", "isRegex": false, "isEqual": true},
            {"name": "service", "value": "db.*", "isRegex": true, "isEqual": true},
        ]),
        "{ours:#}"
    );
    let id = ours["id"].as_str().expect("silence id").to_string();
    let listed = amtool(&am, &["silence", "query", "-q"]);
    assert_eq!(listed.trim(), id, "amtool silence query -q");
    let extended = amtool(&am, &["silence", "query", "-o", "extended"]);
    assert!(
        extended.contains("disk swap tonight")
            && extended.contains(r#"{alertname="DiskFull",service=~"db.*"}"#)
            && extended.contains("olivia"),
        "{extended}"
    );

    // Alertmanager holds back an alert it matches.
    am.push(&json!([alert(
        "DiskFull",
        "db-main",
        "db-1:9100",
        "disk 95% full"
    )]));
    let deadline = Instant::now() + crate::alertmanager::WAIT;
    loop {
        let alerts: Vec<Value> = crate::alertmanager::client()
            .get(format!("{}/api/v2/alerts", am.base))
            .send()
            .and_then(|r| r.json())
            .expect("GET /api/v2/alerts");
        let held = alerts.iter().any(|a| {
            a["status"]["state"] == "suppressed" && a["status"]["silencedBy"] == json!([id])
        });
        if held {
            break;
        }
        assert!(Instant::now() < deadline, "not suppressed: {alerts:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A silence made in Alertmanager itself shows in /alert silences.
    let now = chrono::Utc::now();
    let resp = crate::alertmanager::client()
        .post(format!("{}/api/v2/silences", am.base))
        .json(&json!({
            "matchers": [{"name": "instance", "value": "db-2:9100", "isRegex": false, "isEqual": true}],
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::Duration::hours(3)).to_rfc3339(),
            "createdBy": "ivan",
            "comment": "kernel upgrade",
        }))
        .send()
        .expect("POST a silence");
    assert_eq!(resp.status().as_u16(), 200);
    let theirs: Value = resp.json().expect("silenceID");
    let theirs = theirs["silenceID"].as_str().expect("silenceID").to_string();
    let mut seen = false;
    for _ in 0..50 {
        bot.line("/alert silences");
        seen = bot.wait_printed(Duration::from_millis(500), |p| {
            p.contains("1 silence made in Alertmanager") && p.contains("kernel upgrade")
        });
        if seen {
            break;
        }
    }
    assert!(seen, "{}", bot.printed());
    let printed = bot.printed();
    let listing = printed
        .rsplit("(only you) 1 silence in force:")
        .next()
        .expect("the last listing");
    assert!(
        listing.contains("1 · until ") && listing.contains(&format!("in Alertmanager as {id}")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("{theirs} · until ")) && listing.contains("by ivan"),
        "{listing}"
    );

    // /alert unsilence ends it in Alertmanager.
    bot.line("/alert unsilence id:1");
    let ended = wait_silence(&am, "the end of the bot's silence", |s| {
        s["id"] == json!(id) && s["status"]["state"] == "expired"
    });
    assert_eq!(ended["comment"], "disk swap tonight [opsbot silence 1]");
    let active = amtool(&am, &["silence", "query", "-q"]);
    assert_eq!(active.trim(), theirs, "only Alertmanager's own is left");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.private()
            .iter()
            .any(|l| l.starts_with("Silence 1 ended")),
        "{:#?}",
        run.private()
    );
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    drop(dir);
}

#[test]
fn check_refuses_an_alertmanager_address_that_is_not_http_and_names_it_in_the_summary() {
    let bad = Env::shipped_with(&format!(
        "{}\n[alerts.alertmanager]\nurl = \"127.0.0.1:9093\"\npoll = \"1y\"\n",
        crate::harness::shipped_config()
    ));
    let run = bad.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    for want in [
        "`alerts.alertmanager.url`: `127.0.0.1:9093` is not an http(s) URL; write Alertmanager's address, such as \"http://127.0.0.1:9093\"",
        "`alerts.alertmanager.poll`: `1y` is not a duration from 100ms to 1h",
    ] {
        assert!(run.stderr.contains(want), "want {want}\n{}", run.stderr);
    }
    let good = Env::shipped_with(&format!(
        "{}\n[alerts.alertmanager]\nurl = \"http://127.0.0.1:9093/\"\n",
        crate::harness::shipped_config()
    ));
    let run = good.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "silences kept in Alertmanager at http://127.0.0.1:9093 too (its silences read every 30s)"
        ),
        "{}",
        run.stdout
    );
}
