//! An alert's links and labels on its ticket's card on Discord (issue 15):
//! `opsbot run` against the fake Discord, which refuses what Discord
//! refuses (embeds over their limits, link buttons whose URL Discord would
//! not take), and the console's lines.

use std::time::Duration;

use serde_json::{json, Value};
use serenity::all::{ChannelId, CreateActionRow, CreateButton, CreateMessage, HttpError};

use crate::discord::{config_for, ALERTS, BACKEND, INFRA, OPS, QA};
use crate::discord_fixtures as fx;
use crate::fake_discord::{self, FakeDiscord};
use crate::harness::{Env, TOKEN};
use crate::kit;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_link_buttons_whose_url_discord_refuses() {
    let fake = FakeDiscord::start();
    let http = fake.http();
    let ops = ChannelId::new(fx::CHANNEL_ID);
    let with_link = |url: &str| {
        CreateMessage::new()
            .content("links")
            .components(vec![CreateActionRow::Buttons(vec![
                CreateButton::new_link(url).label("Runbook"),
            ])])
    };
    for (url, code) in [
        ("ftp://wiki.example/runbook", "URL_TYPE_INVALID_SCHEME"),
        ("javascript:alert(1)", "URL_TYPE_INVALID_URL"),
        ("https://exa mple.com/", "URL_TYPE_INVALID_URL"),
        ("https:///nohost", "URL_TYPE_INVALID_URL"),
    ] {
        let r = ops.send_message(&http, with_link(url)).await;
        let Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(e))) = r else {
            panic!("{url}: expected a refusal, got {r:?}");
        };
        assert_eq!(
            (e.status_code.as_u16(), e.error.code),
            (400, 50035),
            "{url}"
        );
        let errors = format!("{:?}", e.error.errors);
        assert!(errors.contains(code), "{url}: {errors}");
    }
    let long = format!("https://example.com/{}", "a".repeat(500));
    assert!(ops.send_message(&http, with_link(&long)).await.is_err());
    for ok in [
        "https://runbooks.example/db",
        "http://127.0.0.1:3000/d/x?a=1#p",
    ] {
        ops.send_message(&http, with_link(ok))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// `opsbot run` against `fake` with the hook token set; its log file.
pub(crate) struct Running {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "opsbot's log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

pub(crate) fn run_on(env: &Env, fake: &FakeDiscord) -> (Running, String) {
    let log = env.dir.path().join("run.log");
    let child = kit::run(&env.config, fake_discord::TOKEN)
        .env("OPSBOT_HOOK_TOKEN", TOKEN)
        .env("RUST_LOG", "warn,opsbot=info")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start opsbot run");
    let running = Running { child, log };
    let base = fake.wait_until("the HTTP intake listening", WAIT, |_| {
        std::fs::read_to_string(&running.log)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.trim().strip_prefix("listening on ").map(str::to_string))
    });
    fake.wait_until("commands registered", WAIT, |f| {
        (f.command_registrations() > 0).then_some(())
    });
    (running, base)
}

/// An Alertmanager payload of one alert with links good and bad, and an
/// annotation long enough that the card must cut it.
fn payload() -> String {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "opsbot",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical", "instance": "db-1:9100"},
            "annotations": {
                "summary": "disk 97% full",
                "description": format!("The data volume of db-1 is almost full. {}", "y".repeat(5000)),
                "runbook_url": "https://runbooks.example.com/disk-full",
                "dashboard_url": "ftp://grafana.example/d/disk",
                "panelURL": "javascript:alert(1)",
                "silenceURL": "http://alertmanager.example:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%7D",
                "owner": "storage team",
                "history": "x".repeat(3000),
            },
            "startsAt": "2026-03-01T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=disk",
            "fingerprint": "d1sk0001",
        }],
    })
    .to_string()
}

fn post_alert(base: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/hooks/alertmanager"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body(payload())
        .send()
        .expect("POST the alert");
    let code = resp.status().as_u16();
    (code, resp.json().unwrap_or(Value::Null))
}

/// The link buttons of a message: (label, url).
fn links(msg: &Value) -> Vec<(String, String)> {
    msg["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["style"] == 5)
        .map(|c| {
            (
                c["label"].as_str().unwrap_or("").to_string(),
                c["url"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn an_alerts_links_are_buttons_on_its_card_and_its_labels_and_annotations_fields_within_discords_limits(
) {
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
    let (_bot, base) = run_on(&env, &fake);
    let (code, body) = post_alert(&base);
    assert_eq!((code, &body["tickets"]), (202, &json!(["OPS-1"])), "{body}");
    let card = fake.wait_until("the card of OPS-1", WAIT, |f| {
        f.messages(OPS).into_iter().find(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("OPS-1 · "))
        })
    });
    assert_eq!(
        links(&card),
        [
            ("Runbook", "https://runbooks.example.com/disk-full"),
            ("Source", "http://prometheus.example:9090/graph?g0.expr=disk"),
            (
                "Silence",
                "http://alertmanager.example:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%7D"
            ),
        ]
        .map(|(l, u)| (l.to_string(), u.to_string()))
        .to_vec(),
        "only web URLs become buttons: {card:#}"
    );
    let text = card.to_string();
    assert!(
        !text.contains("ftp://") && !text.contains("javascript:"),
        "{card:#}"
    );
    let field = |name: &str| -> String {
        card["embeds"][0]["fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == name))
            .and_then(|f| f["value"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let labels = field("Labels");
    assert!(
        labels.contains("alertname=DiskFull") && labels.contains("severity=critical"),
        "{card:#}"
    );
    let annotations = field("Annotations");
    assert!(
        annotations.contains("**owner**: storage team"),
        "{annotations}"
    );
    assert!(
        annotations.chars().count() <= 1024
            && annotations.contains("**history**: xxx")
            && annotations.contains("x…"),
        "{annotations}"
    );
    assert!(
        !annotations.contains("runbook_url"),
        "links are buttons, not annotations"
    );
    // Discord counts the whole embed: the fake took it, and it is within 6000.
    let e = &card["embeds"][0];
    let total: usize = ["title", "description"]
        .iter()
        .map(|k| e[k].as_str().unwrap_or("").chars().count())
        .sum::<usize>()
        + e["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                f["name"].as_str().unwrap_or("").chars().count()
                    + f["value"].as_str().unwrap_or("").chars().count()
            })
            .sum::<usize>();
    assert!(total <= 6000, "{total}");
    // The long description was cut to leave room for the alert's fields.
    let description = e["description"].as_str().unwrap_or("");
    assert!(
        description.ends_with("(cut: too long for Discord)") && total > 4000,
        "{total}: {description}"
    );
    assert!(fake.unexpected().is_empty(), "{:?}", fake.unexpected());
}

#[test]
fn the_console_shows_an_alerts_web_links_under_its_card_and_drops_the_rest() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/alertmanager", &payload());
    assert_eq!(code, 202, "{body}");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines = run.lines();
    let at = lines
        .iter()
        .position(|l| l.starts_with("[#ops] New alert ticket OPS-1 "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(
        lines[at + 1..at + 4],
        [
            "  Runbook: https://runbooks.example.com/disk-full",
            "  Source: http://prometheus.example:9090/graph?g0.expr=disk",
            "  Silence: http://alertmanager.example:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%7D",
        ],
        "{}",
        run.stdout
    );
    // The ftp:// dashboard and the javascript: panel are no links.
    assert!(
        !run.stdout.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("Dashboard:") || l.starts_with("Panel:")
        }),
        "{}",
        run.stdout
    );
}
