//! Against a real Prometheus Alertmanager (the Debian package, installed by
//! `.ci/setup`): it groups, sends and resolves through its webhook receiver
//! with a bearer token, and the bot opens, routes, groups and recovers the
//! tickets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Env, LiveBot, TOKEN};

pub(crate) const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// How long Alertmanager may take to become ready, and any one wait on the
/// bot after a push.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A running Alertmanager, killed when dropped (also when the test panics).
pub(crate) struct Alertmanager {
    child: Child,
    pub(crate) base: String,
    log: PathBuf,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

impl Alertmanager {
    /// Starts Alertmanager on `dir` with a webhook receiver pointing at the
    /// bot, and waits until it is ready.
    pub(crate) fn start(dir: &Path, bot: &LiveBot) -> Alertmanager {
        Alertmanager::start_with(
            dir,
            &format!(
                "route:
  receiver: opsbot
  group_by: ['alertname', 'service']
  group_wait: 0s
  group_interval: 100ms
  repeat_interval: 1h
receivers:
  - name: opsbot
    webhook_configs:
      - url: '{}/hooks/alertmanager'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
",
                bot.base
            ),
        )
    }

    /// Starts Alertmanager on `dir` with `yml` as its `am.yml`, and waits
    /// until it is ready.
    pub(crate) fn start_with(dir: &Path, yml: &str) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: run .ci/setup (it installs the Debian package prometheus-alertmanager)"
        );
        let config = dir.join("am.yml");
        std::fs::write(&config, yml).expect("write am.yml");
        let mut last_log = String::new();
        // The free port may be taken between the probe and the start: retry.
        for attempt in 0..3 {
            let port = free_port();
            let base = format!("http://127.0.0.1:{port}");
            let log = dir.join(format!("alertmanager-{attempt}.log"));
            let child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.join(format!("am-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg(format!("--web.external-url={base}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("alertmanager log"))
                .spawn()
                .expect("spawn prometheus-alertmanager");
            let mut am = Alertmanager { child, base, log };
            if am.wait_ready() {
                return am;
            }
            last_log = std::fs::read_to_string(&am.log).unwrap_or_default();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("Alertmanager did not become ready within {WAIT:?}:\n{last_log}");
    }

    /// Polls `/-/ready` until it answers 200, the process exits, or time is up.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        let http = client();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let ready = http
                .get(format!("{}/-/ready", self.base))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Pushes alerts through the API v2, as Prometheus would.
    pub(crate) fn push(&self, alerts: &Value) {
        let resp = client()
            .post(format!("{}/api/v2/alerts", self.base))
            .json(alerts)
            .send()
            .expect("push alerts to Alertmanager");
        let code = resp.status().as_u16();
        assert_eq!(
            code,
            200,
            "Alertmanager refused the alerts: {:?}",
            resp.text()
        );
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn alert(alertname: &str, service: &str, instance: &str, summary: &str) -> Value {
    json!({
        "labels": {
            "alertname": alertname,
            "service": service,
            "severity": "critical",
            "instance": instance,
        },
        "annotations": { "summary": summary },
        "startsAt": now(),
        "generatorURL": "http://prometheus.test/graph",
    })
}

/// The same alert, ended now.
fn ended(mut a: Value) -> Value {
    a["endsAt"] = json!(now());
    a
}

/// The bot's view of a ticket, or None while it does not exist.
pub(crate) fn ticket(bot: &LiveBot, id: &str) -> Option<Value> {
    let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
    match code {
        200 => Some(serde_json::from_str(&text).expect("ticket JSON")),
        404 => None,
        _ => panic!("GET {id}: {code} {text}"),
    }
}

pub(crate) fn notes(t: &Value) -> Vec<String> {
    t["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["kind"].as_str().unwrap_or("?"),
                e["text"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Polls a ticket until `done` holds; fails with its last state after `WAIT`.
pub(crate) fn wait_for(
    bot: &LiveBot,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    while Instant::now() < deadline {
        last = ticket(bot, id);
        if let Some(t) = &last {
            if done(t) {
                return t.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{id}: {what} did not happen within {WAIT:?}; last seen: {last:#?}");
}

pub(crate) fn has_note(t: &Value, prefix: &str) -> bool {
    notes(t).iter().any(|n| n.starts_with(prefix))
}

#[test]
fn a_real_alertmanager_groups_routes_and_recovers_through_the_hook() {
    let started = Instant::now();
    let env = Env::shipped();
    let bot = env.live(&[]);
    let am = Alertmanager::start(env.dir.path(), &bot);

    // Two instances of one alert of one service: one Alertmanager group, and
    // one ticket (the web-critical route groups by alertname and service).
    let web1 = alert("HighLatency", "checkout", "web-1:9100", "p99 above 2s");
    let web2 = alert("HighLatency", "checkout", "web-2:9100", "p99 above 2s");
    am.push(&json!([web1, web2]));
    let t1 = wait_for(&bot, "OPS-1", "the second instance joining", |t| {
        has_note(t, "alert: joined: HighLatency checkout")
    });
    assert_eq!(t1["team"], "backend", "{t1:#}");
    assert_eq!(t1["priority"], "p1", "{t1:#}");
    assert_eq!(t1["source"], "alert", "{t1:#}");
    assert_eq!(
        t1["alerts"]["group"],
        "web-critical/alertname=HighLatency, service=checkout"
    );
    assert_eq!(t1["title"], "HighLatency checkout: p99 above 2s");
    let joins = notes(&t1)
        .iter()
        .filter(|n| n.starts_with("alert: joined: "))
        .count();
    assert_eq!(joins, 1, "{:#?}", notes(&t1));

    // Another service, critical: its own group and ticket, for infra.
    let db = alert("DiskFull", "db", "db-1:9100", "disk 95% full");
    am.push(&json!([db]));
    let t2 = wait_for(&bot, "OPS-2", "the db ticket", |_| true);
    assert_eq!(t2["team"], "infra", "{t2:#}");
    assert_eq!(t2["priority"], "p2", "{t2:#}");
    assert_eq!(t2["title"], "DiskFull db: disk 95% full");
    let open_state = t2["state"].clone();

    // Everything recovers.
    am.push(&json!([ended(web1), ended(web2), ended(db)]));
    let t1 = wait_for(&bot, "OPS-1", "resolution on recovery", |t| {
        t["state"] == "resolved"
    });
    let recovered = notes(&t1)
        .iter()
        .filter(|n| n.starts_with("alert: recovered: HighLatency checkout: p99 above 2s"))
        .count();
    assert_eq!(recovered, 2, "one per instance: {:#?}", notes(&t1));
    assert!(
        notes(&t1)
            .last()
            .is_some_and(|n| n.starts_with("resolved: ")),
        "{:#?}",
        notes(&t1)
    );
    let t2 = wait_for(&bot, "OPS-2", "the db recovery note", |t| {
        has_note(t, "alert: recovered: DiskFull db: disk 95% full")
    });
    // infra-critical does not resolve on recovery: the ticket stays as it was.
    assert_eq!(t2["state"], open_state, "{t2:#}");
    assert!(ticket(&bot, "OPS-3").is_none(), "a third ticket was opened");
    // The recovery's post in #infra is delivered after its commit: wait
    // for it, rather than for the bounded drain at the end of input.
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p
            .lines()
            .any(|l| l.starts_with("[#infra]")
                && l.contains("recovered: ")
                && l.contains("DiskFull db"))),
        "no recovery post in #infra:\n{}",
        bot.printed()
    );

    drop(am);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let backend = run.in_channel("backend");
    assert!(
        backend
            .iter()
            .any(|p| p.starts_with("OPS-1 · p1 ")
                && p.ends_with("no alert of this ticket is firing")),
        "{backend:#?}"
    );
    let infra = run.in_channel("infra");
    assert!(
        infra
            .iter()
            .any(|p| p.contains("recovered: ") && p.contains("DiskFull db")),
        "{infra:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A payload Alertmanager 0.25 really sent for one group of two alerts (with
/// the am.yml above, the two checkout alerts pushed at once). It retries a
/// webhook whose answer it did not get, so the same payload may arrive twice:
/// the second time is repeats, on the same ticket.
#[test]
fn a_grouped_alertmanager_payload_twice_is_one_ticket_with_repeats() {
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alertmanager-grouped.json"),
    )
    .expect("fixture");
    let env = Env::shipped();
    let bot = env.live(&[]);
    for _ in 0..2 {
        let (code, resp) = bot.post("/hooks/alertmanager", &body);
        assert_eq!(
            (code, resp),
            (202, json!({"accepted": 2, "tickets": ["OPS-1"]}))
        );
    }
    let t = ticket(&bot, "OPS-1").expect("OPS-1");
    assert_eq!(t["alerts"]["count"], 4, "{t:#}");
    // Entry 2: the shipped rotation gives it to backend's on-call person.
    assert_eq!(
        notes(&t)[2],
        format!(
            "assigned: assigned to {} of team backend",
            crate::harness::backend_on_call()
        )
    );
    assert_eq!(
        notes(&t)[3..],
        [
            "alert: joined: HighLatency checkout: p99 above 2s (web-2:9100)",
            "alert: repeat #2: HighLatency checkout: p99 above 2s (web-1:9100)",
            "alert: repeat #2: HighLatency checkout: p99 above 2s (web-2:9100)",
        ]
    );
    assert!(ticket(&bot, "OPS-2").is_none());
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}
