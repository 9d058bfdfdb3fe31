//! Monitoring on the running bot: maintenance windows started from the
//! console, alerts through the HTTP intake taken in by them, and the
//! windows still there after a restart.

use std::time::Duration;

use serde_json::json;

use crate::harness::Env;

fn alertmanager(status: &str, alertname: &str, service: &str) -> String {
    json!({
        "version": "4",
        "status": status,
        "receiver": "opsbot",
        "groupLabels": {},
        "commonLabels": {},
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "service": service, "severity": "warning"},
            "annotations": {"summary": format!("{alertname} on {service}")},
            "fingerprint": format!("{alertname}-{service}"),
        }],
    })
    .to_string()
}

#[test]
fn a_maintenance_window_takes_alerts_in_quietly_and_survives_a_restart() {
    let env = Env::shipped();
    let mut bot = env.live(&[]);
    bot.line(":as bob");
    bot.line("/maintenance start matchers:\"service=web\" duration:2h comment:\"cache migration\"");
    assert!(
        bot.wait_printed(Duration::from_secs(20), |p| p
            .contains("[#backend] Maintenance window 1")),
        "{}",
        bot.printed()
    );
    // In the window: accepted, no ticket. Outside it: a ticket.
    let (code, body) = bot.post(
        "/hooks/alertmanager",
        &alertmanager("firing", "HighLatency", "web"),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body, json!({"accepted": 1, "tickets": []}));
    let (code, body) = bot.post(
        "/hooks/alertmanager",
        &alertmanager("firing", "DiskFull", "db"),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["tickets"], json!(["OPS-1"]));
    // Bad input: nothing stored, a clear answer.
    bot.line("/maintenance start matchers:\"service=web\" duration:3d");
    bot.line("/maintenance schedule matchers:service=web from:\"2020-01-01 10:00\" until:\"2020-01-01 11:00\"");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let private = run.private();
    assert!(
        private
            .iter()
            .any(|l| l.starts_with("Maintenance window 1 is in force until")),
        "{private:?}"
    );
    assert!(
        private.iter().any(|l| l.contains(
            "a maintenance window lasts at most 1d ([monitoring] max_maintenance); got 3d"
        )),
        "{private:?}"
    );
    assert!(
        private
            .iter()
            .any(|l| l.contains("that window is in the past")),
        "{private:?}"
    );
    assert!(
        !run.stdout.contains("HighLatency"),
        "nothing said of it:\n{}",
        run.stdout
    );
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");

    // After a restart: the window is there, with what it took in.
    let run = env.console(&["/maintenance list"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let listed: Vec<&str> = run.lines();
    assert!(
        listed.iter().any(|l| l.contains("1 · in force until")
            && l.contains(
                "by bob · service=web · 1 alert recorded, 1 still firing — cache migration"
            )),
        "{}",
        run.stdout
    );
}

/// The shipped config with a heartbeat that Alertmanager's Watchdog beats
/// for (every 2 s, so that a test sees it go silent).
fn with_heartbeat() -> Env {
    let text = format!(
        "{}\n[heartbeats.prometheus]\nevery = \"2s\"\ngrace = \"0s\"\nteam = \"infra\"\npriority = \"p1\"\nalertname = \"Watchdog\"\n",
        crate::harness::shipped_config()
    );
    Env::shipped_with(&text)
}

fn watchdog() -> serde_json::Value {
    json!([{
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "the alerting pipeline works"},
        "startsAt": crate::alertmanager::now(),
    }])
}

/// Waits until the bot has taken `n` firing Alertmanager alerts in.
fn wait_received(bot: &crate::harness::LiveBot, n: u32) {
    let want =
        format!("opsbot_alerts_received_total{{source=\"alertmanager\",status=\"firing\"}} {n}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = bot.get("/metrics");
        if text.lines().any(|l| l.trim() == want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {want} within 20 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn ticket(bot: &crate::harness::LiveBot, id: &str) -> Option<serde_json::Value> {
    let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
    (code == 200).then(|| serde_json::from_str(&text).expect("ticket JSON"))
}

#[test]
fn alertmanagers_watchdog_beats_a_heartbeat_and_its_silence_opens_a_ticket_after_a_restart() {
    let env = with_heartbeat();
    let bot = env.live(&[]);
    // The hook: an unknown name is 404 and stores nothing; a known one 202.
    let (code, body) = bot.post("/hooks/heartbeat/nope", "");
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        body["error"],
        "no heartbeat `nope` is configured; heartbeats: prometheus"
    );
    let (code, body) = bot.post_with("/hooks/heartbeat/prometheus", "", None, "text/plain");
    assert_eq!(code, 401, "the hook token is required: {body}");
    let (code, body) = bot.post("/hooks/heartbeat/prometheus", "");
    assert_eq!((code, body), (202, json!({"heartbeat": "prometheus"})));
    // Then a real Alertmanager sends Watchdog: a beat, no ticket.
    let am = crate::alertmanager::Alertmanager::start(env.dir.path(), &bot);
    am.push(&watchdog());
    wait_received(&bot, 1);
    let beat = chrono::Utc::now();
    assert!(ticket(&bot, "OPS-1").is_none(), "Watchdog opened a ticket");
    drop(am);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let after: Vec<_> = env
        .export()
        .into_iter()
        .filter(|v| v["type"] == "ticket")
        .collect();
    assert!(after.is_empty(), "{after:?}");

    // Down past its deadline: on start, one ticket for infra.
    std::thread::sleep(Duration::from_millis(2100));
    let bot = env.live(&[]);
    assert!(
        bot.wait_printed(Duration::from_secs(20), |p| p
            .contains("New heartbeat ticket OPS-1")),
        "{}",
        bot.printed()
    );
    let t = ticket(&bot, "OPS-1").expect("OPS-1");
    let title = t["title"].as_str().unwrap_or_default();
    let since = beat.format("%Y-%m-%d %H:%M UTC").to_string();
    let just_before = (beat - chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(
        title == format!("monitoring for prometheus has been silent since {since}")
            || title == format!("monitoring for prometheus has been silent since {just_before}"),
        "{title}"
    );
    assert_eq!(t["team"], "infra", "{t:#}");
    assert_eq!(t["priority"], "p1", "{t:#}");
    // Watchdog again (a fresh Alertmanager): the ticket is resolved for
    // verification.
    let dir = env.dir.path().join("second");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let am = crate::alertmanager::Alertmanager::start(&dir, &bot);
    am.push(&watchdog());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let t = loop {
        let t = ticket(&bot, "OPS-1").expect("OPS-1");
        if t["state"] == "resolved" || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(t["state"], "resolved", "{t:#}");
    drop(am);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("New heartbeat ticket").count(),
        1,
        "{}",
        run.stdout
    );
}
