//! Stores made by the previous version (schema 2, every record JSON) open
//! with this one: their records are migrated to the binary encoding of
//! schema 3 and read the same, also after a migration cut short.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opsbot::store::kv::TreeName;
use opsbot::store::Store;
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
    let store = Store::open(dir).expect("store opens");
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

/// The fixture's lines, parsed.
fn lines(file: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture().join(file))
        .expect("fixture file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn tree_of(line: &Value) -> TreeName {
    TreeName::from_name(line["tree"].as_str().unwrap().as_bytes()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Checks that `store` holds every record of the fixture, read the same
/// through its type, the records binary, and the schema 3.
fn reads_like_the_fixture(store: &Store) {
    let old: BTreeMap<(String, String), Value> = lines("records.jsonl")
        .into_iter()
        .map(|l| ((l["tree"].to_string(), l["key"].to_string()), l))
        .collect();
    let new: BTreeMap<(String, String), Value> = store
        .records_as_json()
        .expect("every record reads")
        .into_iter()
        .map(|l| ((l["tree"].to_string(), l["key"].to_string()), l))
        .collect();
    // Opening a store of schema 2 also builds what later versions index
    // (the list's block counts, `cntb:…` and their marker): those are the
    // only records allowed beside the fixture's, and none of its is lost.
    let added: Vec<_> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .filter(|(tree, key)| {
            let key = unhex(key.trim_matches('"'));
            !(tree == "\"meta\"" && (key.starts_with(b"cntb:") || key == b"list_blocks_indexed"))
        })
        .collect();
    assert!(added.is_empty(), "records nobody asked for: {added:?}");
    let lost: Vec<_> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    assert!(lost.is_empty(), "records lost: {lost:?}");
    let mut records = 0;
    for (k, was) in &old {
        let now = &new[k];
        match now.get("json") {
            // An encoded record: the same value through its type.
            Some(json) => {
                assert_eq!(Some(json), was.get("json"), "{k:?}");
                records += 1;
            }
            None if k.1.contains(&hex(b"schema_version")) => {
                assert_eq!(now["hex"], hex(&3u64.to_be_bytes()));
            }
            // Counters, ids, texts: the same bytes.
            None => assert_eq!(now["hex"], was["hex"], "{k:?}"),
        }
    }
    assert!(records >= 35, "{records} records");
    // Every encoded record is binary now (MessagePack after 0xC1).
    for (tree, key, value) in store.contents().expect("contents") {
        if tree == b"tickets" || tree == b"timeline" || tree == b"groups" {
            assert_eq!(value.first(), Some(&0xC1), "{tree:?} {key:?}");
        }
    }
}

fn same_export(got: &[Value]) {
    assert_eq!(got, lines("export.jsonl").as_slice());
}

/// A sled store of schema 2 in `env`'s data directory.
fn fixture_in(env: &Env) {
    crate::kit::copy_dir(&fixture().join("data"), &env.data_dir());
}

#[test]
fn a_store_of_schema_2_opens_migrated_and_reads_every_record_the_same() {
    let env = Env::shipped();
    fixture_in(&env);
    // The new binary opens it (and migrates it): its export is the old one.
    same_export(&env.export());
    let store = Store::open(&env.data_dir()).expect("the migrated store opens");
    reads_like_the_fixture(&store);
    // The fixture's silence has ended by the wall clock since it was made:
    // it is read from the store, not asked of the bot as one in force.
    let book = opsbot::engine::View::silences(&store).expect("the silences read");
    assert!(
        book.silences
            .iter()
            .any(|s| format!("{s:?}").contains("DiskFull")),
        "{book:?}"
    );
    drop(store);
    // The bot reads it (its timers then go on from the fixture's time).
    let run = env.console(&["/ticket show id:OPS-1", "/oncall team:backend"]);
    assert!(
        run.stdout.contains("Checkout fails on submit"),
        "{}",
        run.stdout
    );
    // bella is in backend's rotation whatever the time (her override ends).
    assert!(run.stdout.contains("bella"), "{}", run.stdout);
    // And it goes on: a new ticket is numbered after the old ones.
    let run = env.console(&["/ticket open title:after"]);
    assert!(run.private()[0].contains("OPS-6"), "{}", run.stdout);
}

/// Rewrites every other encoded record of the migrated store at `dir` as
/// schema 2 had it (JSON), and marks it schema 2: a migration cut short.
fn half_migrated(store: &Store) -> usize {
    let mut put_back = 0;
    for (i, l) in lines("records.jsonl").into_iter().enumerate() {
        if l.get("json").is_none() || i % 2 == 0 {
            continue;
        }
        let tree = tree_of(&l);
        if matches!(tree, TreeName::Meta) && l["json"].is_number() {
            continue;
        }
        let key = unhex(l["key"].as_str().unwrap());
        let value = unhex(l["hex"].as_str().unwrap());
        store.put_as_schema_2(tree, &key, &value).expect("put");
        put_back += 1;
    }
    put_back
}

#[test]
fn a_migration_cut_short_opens_and_finishes() {
    let env = Env::shipped();
    fixture_in(&env);
    let store = Store::open(&env.data_dir()).expect("opens");
    let put_back = half_migrated(&store);
    assert!(put_back >= 15, "{put_back}");
    drop(store);
    // Half JSON, half binary, schema 2: the binary opens it and finishes.
    same_export(&env.export());
    let store = Store::open(&env.data_dir()).expect("opens");
    reads_like_the_fixture(&store);
}

#[test]
fn a_store_of_a_newer_schema_is_still_refused() {
    let env = Env::shipped();
    fixture_in(&env);
    let store = Store::open(&env.data_dir()).expect("opens");
    store.set_schema_version(4).expect("set");
    drop(store);
    let run = env.opsbot(&["export"], "");
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("newer"), "{}", run.stderr);
}

/// The same store of schema 2 on PostgreSQL (its records put as they are
/// into a database), migrated when the bot connects; and again cut short.
#[test]
fn a_database_of_schema_2_on_postgres_is_migrated_and_reads_the_same() {
    let env = Env::on_postgres();
    let url = env.database_url().expect("url").to_string();
    let store = Store::connect(&url).expect("connects");
    for l in lines("records.jsonl") {
        let key = unhex(l["key"].as_str().unwrap());
        let value = unhex(l["hex"].as_str().unwrap());
        store
            .put_as_schema_2(tree_of(&l), &key, &value)
            .expect("put");
    }
    drop(store);
    same_export(&env.export());
    let store = Store::connect(&url).expect("connects");
    reads_like_the_fixture(&store);
    assert!(half_migrated(&store) >= 15);
    drop(store);
    same_export(&env.export());
    let store = Store::connect(&url).expect("connects");
    reads_like_the_fixture(&store);
}
