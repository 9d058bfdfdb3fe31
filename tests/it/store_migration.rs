//! Stores made by the previous version (schema 2, every record JSON) open
//! with this one: their records are migrated to the binary encoding of
//! schema 3 and read the same, also after a migration cut short.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{shipped_config, Env};
use crate::support::{free_port, sign_at, support_at, unix_now, FakeApp};

/// The committed store of schema 2 (made by main 3ac7cc0).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v2")
}

/// The config the fixture was made with: the shipped one with a heartbeat
/// and the fake app's session URL (the mail server is never there).
fn fixture_config(app_base: &str, smtp_port: u16) -> String {
    let text = shipped_config()
        .replace(
            "session_url = \"http://127.0.0.1:8790/sessions\"",
            &format!("session_url = \"{app_base}\""),
        )
        .replace("port = 2525", &format!("port = {smtp_port}"));
    format!(
        "{text}\n[heartbeats.prometheus]\nevery = \"1h\"\ngrace = \"0s\"\nteam = \"infra\"\npriority = \"p1\"\nalertname = \"Watchdog\"\n"
    )
}

/// Makes the fixture (run once, with the previous version's code):
/// `OPSBOT_MAKE_FIXTURE=1 cargo test --test it -- --ignored make_the_v2_fixture`.
#[test]
#[ignore]
fn make_the_v2_fixture() {
    if std::env::var_os("OPSBOT_MAKE_FIXTURE").is_none() {
        return;
    }
    let app = FakeApp::start();
    let env = Env::shipped_with(&fixture_config(&app.base, free_port()));
    let mut bot = env.live(&[]);
    for line in [
        // A ticket through the whole support flow: closed, with a timeline.
        r#"/ticket open title:"Checkout fails on submit" priority:p2 description:"500 when paying""#,
        "/ticket assign id:OPS-1 team:backend",
        ":as bob",
        "/ticket assign id:OPS-1 user:bella",
        ":as bella",
        "/ticket take id:OPS-1",
        r#"/ticket resolve id:OPS-1 note:"Null check in the payment form""#,
        ":as olivia",
        "/ticket qa id:OPS-1",
        ":as quinn",
        "/ticket verify id:OPS-1",
        // Open, assigned to a team, in progress.
        ":as olivia",
        "/ticket open title:second team:backend",
        r#"/ticket open title:"third, taken" priority:p1"#,
        "/ticket assign id:OPS-3 user:bella",
        ":as bella",
        "/ticket take id:OPS-3",
        ":as olivia",
        // A silence, an on-call override, a maintenance window, the status page.
        "/alert silence matchers:alertname=DiskFull duration:2h",
        "/oncall set team:backend user:bella until:8h",
        r#"/maintenance start matchers:"service=db" duration:12h comment:"db upgrade""#,
        r#"/status set service:web state:degraded message:"slow pages""#,
        // A run of a job.
        "/build run job:build-web ref:main",
        // A deploy (its lock and its history).
        "/deploy service:web env:staging version:1.0",
    ] {
        bot.line(line);
    }
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p.contains("RUN-2")),
        "{}",
        bot.printed()
    );
    // An alert group with several alerts, one of them resolved.
    let alerts = json!([
        {"title": "HighLatency", "severity": "critical", "status": "firing",
         "labels": {"service": "web", "instance": "web-1"}},
        {"title": "HighLatency", "severity": "critical", "status": "firing",
         "labels": {"service": "web", "instance": "web-2"}},
        {"title": "HighLatency", "severity": "critical", "status": "firing",
         "labels": {"service": "web", "instance": "web-3"}},
    ]);
    let (code, body) = bot.post("/hooks/generic", &alerts.to_string());
    assert_eq!(code, 202, "{body}");
    let again = json!([
        {"title": "HighLatency", "severity": "critical", "status": "resolved",
         "labels": {"service": "web", "instance": "web-2"}},
        {"title": "HighLatency", "severity": "critical", "status": "firing",
         "labels": {"service": "web", "instance": "web-1"}},
    ]);
    let (code, body) = bot.post("/hooks/generic", &again.to_string());
    assert_eq!(code, 202, "{body}");
    // A silenced alert, and Alertmanager's Watchdog (a heartbeat).
    let am = json!({"version": "4", "status": "firing", "receiver": "opsbot", "groupKey": "{}:{}",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-1"},
         "annotations": {"summary": "disk 95% full"}, "startsAt": crate::alertmanager::now(),
         "fingerprint": "f00d"},
        {"status": "firing", "labels": {"alertname": "Watchdog", "severity": "none"},
         "annotations": {"summary": "the alerting pipeline works"},
         "startsAt": crate::alertmanager::now(), "fingerprint": "beef"},
    ]});
    let (code, body) = bot.post("/hooks/alertmanager", &am.to_string());
    assert_eq!(code, 202, "{body}");
    // A customer's request with an Idempotency-Key: a ticket and a mail
    // that waits in its queue (no mail server listens).
    let req = json!({"session_id": "sess-carol", "subject": "Refund", "message": "Please refund order 12"})
        .to_string();
    let ts = unix_now();
    let (code, body, _) = support_at(
        &bot,
        &req,
        Some(&sign_at(ts, &req)),
        Some(&ts.to_string()),
        Some("order-12-refund"),
        "application/json",
    );
    assert_eq!(code, 201, "{body}");
    bot.line("/ticket list");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let out = fixture();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("data")).unwrap();
    for e in std::fs::read_dir(env.data_dir()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "opsbot-reserve" {
            continue;
        }
        let to = out.join("data").join(&name);
        if e.file_type().unwrap().is_dir() {
            crate::kit::copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
    let export = env.opsbot(&["export"], "");
    assert_eq!(export.code, Some(0), "{}", export.stderr);
    std::fs::write(out.join("export.jsonl"), &export.stdout).unwrap();
    std::fs::write(out.join("records.jsonl"), dump(&env.data_dir())).unwrap();
}

/// Every record of the store at `dir`, one JSON line each: its tree, its
/// key in hex, and its value as JSON where it is JSON, else in hex.
fn dump(dir: &Path) -> String {
    let store = opsbot::store::Store::open(dir).expect("store opens");
    let mut out = String::new();
    for (tree, key, value) in store.contents().expect("contents") {
        let tree = String::from_utf8(tree).unwrap();
        let mut line = json!({"tree": tree, "key": hex(&key), "hex": hex(&value)});
        if let Ok(v) = serde_json::from_slice::<Value>(&value) {
            line["json"] = v;
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
