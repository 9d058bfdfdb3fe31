//! Crash safety of the HTTP intake: the bot is killed with SIGKILL while
//! hooks keep arriving from several senders, restarted and killed again;
//! after the last restart every alert it acknowledged with a 2xx is on
//! record, each alert group has one open ticket, timelines are whole, and
//! numbering goes on without reuse.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Env, TOKEN};

const SENDERS: usize = 4;
/// Requests per sender, at most.
const REQUESTS: usize = 100;
/// Alerts per request: half from a shared pool of groups, half new.
const PER_REQUEST: usize = 10;
const POOL: usize = 100;
/// Acknowledged requests after which the bot is killed.
const KILL_AFTER: usize = 100;
/// Crashes before the final restart.
const ROUNDS: usize = 3;
/// How long one round may take to reach `KILL_AFTER`.
const DEADLINE: Duration = Duration::from_secs(5);

/// An Alertmanager v4 payload of firing alerts that all take the default
/// route (no service, no severity), so each is grouped by its fingerprint.
pub fn payload(fingerprints: &[String]) -> String {
    let alerts: Vec<Value> = fingerprints
        .iter()
        .map(|fp| {
            json!({
                "status": "firing",
                "labels": { "alertname": "CrashTest", "key": fp },
                "annotations": { "summary": format!("alert {fp}") },
                "startsAt": "2026-11-25T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": fp,
            })
        })
        .collect();
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "opsbot",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": { "alertname": "CrashTest" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": alerts,
    })
    .to_string()
}

/// The fingerprints of one request: distinct within it, half of them shared
/// with other requests and senders.
fn fingerprints(round: usize, sender: usize, req: usize) -> Vec<String> {
    let base = (round * 7 + sender * 31 + req * 13) % POOL;
    (0..PER_REQUEST)
        .map(|i| {
            if i % 2 == 0 {
                format!("pool-{:03}", (base + i * 10) % POOL)
            } else {
                format!("once-{round}-{sender}-{req:03}-{i}")
            }
        })
        .collect()
}

/// What the senders saw.
#[derive(Default)]
struct Seen {
    /// Fingerprint → times it was in an acknowledged request.
    acked: BTreeMap<String, usize>,
    /// Statuses other than 202, before the kill.
    unexpected: Vec<String>,
}

pub fn group(fp: &str) -> String {
    format!("default/fp:{fp}")
}

/// One life of the bot: senders on several threads until it has accepted
/// `KILL_AFTER` requests, then SIGKILL while they are still sending. Adds
/// what was acknowledged to `seen`.
fn crash_round(env: &Env, round: usize, seen: &Arc<Mutex<Seen>>) {
    let bot = env.live(&[]);
    let url = bot.url("/hooks/alertmanager");
    let accepted = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (url, accepted, sent, cut, stop, seen) = (
                url.clone(),
                accepted.clone(),
                sent.clone(),
                cut.clone(),
                stop.clone(),
                seen.clone(),
            );
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                for req in 0..REQUESTS {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let fps = fingerprints(round, sender, req);
                    sent.fetch_add(1, Ordering::SeqCst);
                    let resp = http
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("Content-Type", "application/json")
                        .body(payload(&fps))
                        .send();
                    match resp {
                        Ok(r) if r.status().as_u16() == 202 => {
                            let mut seen = seen.lock().unwrap();
                            for fp in fps {
                                *seen.acked.entry(fp).or_default() += 1;
                            }
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => {
                            let code = r.status();
                            let text = r.text().unwrap_or_default();
                            seen.lock()
                                .unwrap()
                                .unexpected
                                .push(format!("{code}: {text}"));
                        }
                        // The bot is gone: stop sending.
                        Err(_) => {
                            cut.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + DEADLINE;
    while accepted.load(Ordering::SeqCst) < KILL_AFTER && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let crashed = bot.kill9();
    let accepted_before_kill = accepted.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().expect("sender thread");
    }
    assert!(
        accepted_before_kill >= KILL_AFTER,
        "round {round}: only {accepted_before_kill} requests were accepted within {DEADLINE:?}; stderr:\n{}",
        crashed.stderr
    );
    let unexpected = &seen.lock().unwrap().unexpected;
    assert!(
        unexpected.is_empty(),
        "round {round}: answers other than 202: {unexpected:?}"
    );
    let (sent, cut) = (sent.load(Ordering::SeqCst), cut.load(Ordering::SeqCst));
    assert!(
        sent < SENDERS * REQUESTS && cut > 0,
        "round {round}: the kill came after the senders were done ({sent} sent, {cut} cut)"
    );
}

#[test]
fn alerts_acknowledged_before_a_kill_9_survive_it() {
    alerts_acknowledged_before_a_kill_9_survive_it_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn alerts_acknowledged_before_a_kill_9_survive_it_on_postgres() {
    alerts_acknowledged_before_a_kill_9_survive_it_on(Env::on_postgres());
}

fn alerts_acknowledged_before_a_kill_9_survive_it_on(env: Env) {
    let started = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Crash, restart, crash again: the groups of the pool carry over.
    for round in 0..ROUNDS {
        crash_round(&env, round, &seen);
    }
    let seen = Arc::try_unwrap(seen)
        .ok()
        .expect("senders are done")
        .into_inner()
        .unwrap();

    // Restart on the same data: the groups are still known, and numbering
    // goes on after the highest id on record.
    let tickets_after_crash = env.tickets();
    let max_id = tickets_after_crash
        .iter()
        .map(|t| ticket_number(&t["id"]))
        .max()
        .expect("tickets were opened");
    let bot = env.live(&[]);
    let pool_fp = seen
        .acked
        .keys()
        .find(|fp| fp.starts_with("pool-"))
        .expect("a pool alert was acknowledged")
        .clone();
    let pool_ticket = tickets_after_crash
        .iter()
        .find(|t| t["alerts"]["group"] == group(&pool_fp))
        .map(|t| t["id"].clone())
        .expect("the pool alert's ticket");
    let (code, body) = bot.post(
        "/hooks/alertmanager",
        &payload(&[pool_fp.clone(), "after-restart".to_string()]),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        body["tickets"],
        json!([pool_ticket, format!("OPS-{}", max_id + 1)]),
        "a known group must keep its ticket; a new one must get the next id"
    );
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // Every acknowledged alert is on record, in its group's only ticket.
    let export = env.export();
    let tickets: Vec<&Value> = export.iter().filter(|v| v["type"] == "ticket").collect();
    let mut open_by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut count_by_group: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for t in &tickets {
        let id = t["id"].as_str().expect("id").to_string();
        assert!(ids.insert(id.clone()), "ticket id {id} twice");
        let g = t["alerts"]["group"]
            .as_str()
            .expect("alert group")
            .to_string();
        *count_by_group.entry(g.clone()).or_default() += t["alerts"]["count"].as_u64().unwrap_or(0);
        if t["state"] != "closed" {
            open_by_group.entry(g).or_default().push(id.clone());
        }
        // The timeline is whole: as many entries as the ticket counts.
        let entries = export
            .iter()
            .filter(|v| v["type"] == "timeline" && v["ticket"] == id.as_str())
            .count();
        assert_eq!(
            Some(entries as u64),
            t["timeline_len"].as_u64(),
            "{id}: timeline"
        );
    }
    let doubled: Vec<_> = open_by_group.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "groups with more than one open ticket: {doubled:?}"
    );
    let mut missing = Vec::new();
    let mut undercounted = Vec::new();
    for (fp, &times) in &seen.acked {
        match count_by_group.get(&group(fp)) {
            None => missing.push(fp.clone()),
            Some(&n) if n < times as u64 => undercounted.push(format!("{fp}: {n} < {times}")),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged alerts have no ticket after the crashes, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        undercounted.is_empty(),
        "acknowledged repeats lost: {undercounted:?}"
    );
    // PostgreSQL's commits are slower than sled's (BENCHMARKS.md): a
    // looser bound there, still one that a hang would break.
    let bound = Duration::from_secs(if env.pg.is_some() { 60 } else { 20 });
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
}

fn ticket_number(id: &Value) -> u64 {
    id.as_str()
        .and_then(|s| s.strip_prefix("OPS-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a ticket id: {id}"))
}
