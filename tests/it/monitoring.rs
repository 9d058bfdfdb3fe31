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
