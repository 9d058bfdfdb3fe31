//! `/ticket list` and `GET /api/v1/tickets` page through the tickets, newest
//! first, with the total; a bad page is answered as such; and a list read
//! while an alert storm comes in over HTTP is of one committed state: no
//! ticket twice, none missing that was committed before it started.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Env, LiveBot};

/// `n` alerts of distinct names (each opens a ticket): even ones critical
/// (team infra), odd ones warnings (no team).
fn alerts(from: usize, n: usize) -> String {
    let list: Vec<Value> = (from..from + n)
        .map(|i| {
            let severity = if i % 2 == 0 { "critical" } else { "warning" };
            serde_json::json!({
                "title": format!("Alert {i}"),
                "severity": severity,
                "status": "firing",
                "labels": {"alertname": format!("A{i}"), "host": format!("h{i}")},
            })
        })
        .collect();
    Value::Array(list).to_string()
}

fn numbers(v: &Value) -> Vec<u64> {
    v["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets in {v}"))
        .iter()
        .map(|t| {
            t["id"].as_str().unwrap()["OPS-".len()..]
                .parse::<u64>()
                .unwrap()
        })
        .collect()
}

fn api(bot: &LiveBot, query: &str) -> (u16, Value) {
    let (code, text) = bot.get(&format!("/api/v1/tickets{query}"));
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// The ticket numbers of a console list's reply, in order.
fn listed(block: &str) -> Vec<u64> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("OPS-"))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// The API's pages of the 60 tickets of [`alerts`]`(1, 60)`: of 25, then
/// of 7 by cursor, each ticket once; filters; pages past the end.
fn api_pages(bot: &LiveBot) {
    let (code, first) = api(bot, "");
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["total"], 60);
    assert_eq!(first["pages"], 3);
    assert_eq!(first["page"], 1);
    assert_eq!(first["next_page"], 2);
    assert_eq!(numbers(&first), (36..=60).rev().collect::<Vec<_>>());
    let (_, third) = api(bot, "?page=3");
    assert_eq!(numbers(&third), (1..=10).rev().collect::<Vec<_>>());
    assert_eq!(third["next_page"], Value::Null);
    assert_eq!(third["next_cursor"], Value::Null);
    let mut seen = Vec::new();
    let mut query = "?limit=7".to_string();
    loop {
        let (code, page) = api(bot, &query);
        assert_eq!(code, 200, "{page}");
        assert_eq!(page["total"], 60);
        seen.extend(numbers(&page));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=60).rev().collect::<Vec<_>>());
    // Filters from the index: infra's are the even ones.
    let (_, infra) = api(bot, "?team=infra&limit=100");
    assert_eq!(infra["total"], 30, "{infra}");
    assert!(numbers(&infra).iter().all(|n| n % 2 == 0), "{infra}");
    let (_, open) = api(bot, "?state=open&limit=100");
    let (_, assigned) = api(bot, "?state=assigned&limit=100");
    let both: BTreeSet<u64> = numbers(&open)
        .into_iter()
        .chain(numbers(&assigned))
        .collect();
    assert_eq!(both.len(), 60, "{open} {assigned}");

    // Bad pages and parameters, each said as such.
    for (q, code, says) in [
        ("?page=0", 400, "`page` must be a whole number from 1"),
        ("?page=-1", 400, "`page` must be a whole number from 1"),
        ("?page=x", 400, "`page` must be a whole number from 1"),
        (
            "?page=4",
            404,
            "there is no page 4: 60 tickets listed make 3 pages of 25; ask for page 1 to 3",
        ),
        (
            "?page=1000000000000",
            404,
            "there is no page 1,000,000,000,000: 60 tickets listed make 3 pages",
        ),
        (
            "?limit=0",
            400,
            "`limit` must be a whole number from 1 to 100; got `0`",
        ),
        (
            "?limit=101",
            400,
            "`limit` must be a whole number from 1 to 100; got `101`",
        ),
        (
            "?page=2&cursor=OPS-9",
            400,
            "give `page` or `cursor`, not both",
        ),
        ("?cursor=nope", 400, "`cursor` must be a ticket id"),
        ("?team=nope", 400, "there is no team `nope`"),
        ("?state=done", 400, "`state` must be one of"),
        ("?colour=red", 400, "unknown parameter `colour`"),
    ] {
        let (got, v) = api(bot, q);
        assert_eq!(got, code, "{q}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.starts_with(says), "{q}: {e}");
    }
}

/// The console's pages of the same 60 tickets, headed with the count and
/// the page.
fn console_pages(env: &Env) {
    let run = env.console(&[
        "/ticket list",
        "/ticket list page:2",
        "/ticket list page:3",
        "/ticket list page:4",
        "/ticket list page:0",
        "/ticket list page:-1",
        "/ticket list page:1000000000000",
        "/ticket list team:infra page:2",
    ]);
    let blocks: Vec<&str> = run
        .stdout
        .split("(only you) ")
        .filter(|b| !b.trim().is_empty())
        .collect();
    assert_eq!(blocks.len(), 8, "{}", run.stdout);
    assert!(
        blocks[0].starts_with("Tickets not closed: 1–25 of 60, page 1 of 3, newest first:\n"),
        "{}",
        blocks[0]
    );
    assert!(
        blocks[0]
            .trim_end()
            .ends_with("Next page: /ticket list page:2"),
        "{}",
        blocks[0]
    );
    assert!(
        blocks[1].starts_with("Tickets not closed: 26–50 of 60, page 2 of 3, newest first:\n"),
        "{}",
        blocks[1]
    );
    assert!(
        blocks[2].starts_with("Tickets not closed: 51–60 of 60, page 3 of 3, newest first:\n"),
        "{}",
        blocks[2]
    );
    assert!(!blocks[2].contains("Next page"), "{}", blocks[2]);
    let all: Vec<u64> = blocks[..3].iter().flat_map(|b| listed(b)).collect();
    assert_eq!(all, (1..=60).rev().collect::<Vec<_>>());
    assert_eq!(
        blocks[3].trim(),
        "there is no page 4: 60 tickets not closed make 3 pages of 25; ask for page 1 to 3"
    );
    assert_eq!(
        blocks[4].trim(),
        "`page` must be a whole number such as 3; got `0`"
    );
    assert_eq!(
        blocks[5].trim(),
        "`page` must be a whole number such as 3; got `-1`"
    );
    assert!(
        blocks[6]
            .trim()
            .starts_with("there is no page 1,000,000,000,000: 60 tickets"),
        "{}",
        blocks[6]
    );
    assert!(
        blocks[7].starts_with(
            "Tickets not closed, of team infra: 26–30 of 30, page 2 of 2, newest first:\n"
        ),
        "{}",
        blocks[7]
    );
    assert_eq!(listed(blocks[7]), vec![10, 8, 6, 4, 2]);
}

fn sixty(env: &Env) -> LiveBot {
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/generic", &alerts(1, 60));
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["accepted"], 60, "{body}");
    bot
}

#[test]
fn pages_cover_every_ticket_once_newest_first_in_the_console_and_the_api() {
    let env = Env::shipped();
    let bot = sixty(&env);
    api_pages(&bot);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    console_pages(&env);
}

/// The same pages on PostgreSQL; then the database made to look like one
/// from before the list's index (its keys and counts deleted with psql):
/// the bot builds it when it starts, and lists the same.
#[test]
fn on_postgres_the_same_pages_and_an_older_database_gets_the_index_built() {
    let pg = std::sync::Arc::new(crate::pg::Pg::start());
    let env = Env::on_cluster(&crate::kit::shipped_config(), pg.clone(), "opsbot");
    let url = env.database_url().expect("a database").to_string();
    let bot = sixty(&env);
    api_pages(&bot);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let older = "DELETE FROM opsbot_kv WHERE \
        (tree = 3 AND get_byte(key, 0) BETWEEN 177 AND 179) OR \
        (tree = 0 AND (substring(key from 1 for 4) = 'cnt:'::bytea OR key = 'list_indexed'::bytea))";
    pg.psql_at(&url, older);
    let left = pg.psql_at(
        &url,
        "SELECT count(*) FROM opsbot_kv WHERE tree = 3 AND get_byte(key, 0) BETWEEN 177 AND 179",
    );
    assert_eq!(left, "0");
    console_pages(&env);
    let built = pg.psql_at(
        &url,
        "SELECT count(*) FROM opsbot_kv WHERE tree = 3 AND get_byte(key, 0) = 177",
    );
    // The 30 tickets of team infra, once each.
    assert_eq!(built, "30");
    let bot = env.live(&[]);
    api_pages(&bot);
    bot.finish();
}

/// An alert storm over HTTP, each alert a new ticket, while lists are read
/// through the API (paging by cursor) and the console: every list holds
/// each ticket at most once, every ticket whose 202 came before the list
/// began, and (a cursor's pages reading the tickets of the first page's
/// moment) exactly as many as the first page's total said.
#[test]
fn a_list_read_during_an_alert_storm_is_of_one_committed_state() {
    storm_lists(&Env::shipped());
}

#[test]
fn on_postgres_a_list_read_during_an_alert_storm_is_of_one_committed_state() {
    storm_lists(&Env::on_postgres());
}

fn storm_lists(env: &Env) {
    let mut bot = env.live(&[]);
    let bot_url = bot.base.clone();
    let acked: Arc<Mutex<BTreeSet<u64>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    const REQUESTS: usize = 40;
    const PER: usize = 25;
    let storm = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for r in 0..REQUESTS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let resp = client
                    .post(format!("{bot_url}/hooks/generic"))
                    .bearer_auth(crate::harness::TOKEN)
                    .header("Content-Type", "application/json")
                    .body(alerts(1 + r * PER, PER))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .expect("storm request");
                assert_eq!(resp.status().as_u16(), 202);
                let v: Value = resp.json().expect("JSON");
                let mut a = acked.lock().unwrap();
                for t in v["tickets"].as_array().expect("tickets") {
                    a.insert(t.as_str().unwrap()["OPS-".len()..].parse().unwrap());
                }
            }
        })
    };
    let started = Instant::now();
    let mut lists = 0;
    let mut console_lists = 0;
    while !storm.is_finished() || lists == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the storm took too long"
        );
        let before: BTreeSet<u64> = acked.lock().unwrap().clone();
        let mut seen: Vec<u64> = Vec::new();
        let mut first_total = None;
        let mut query = "?limit=100".to_string();
        loop {
            let (code, page) = api(&bot, &query);
            assert_eq!(code, 200, "{page}");
            let total = page["total"].as_u64().unwrap();
            first_total.get_or_insert(total);
            let nums = numbers(&page);
            assert!(
                nums.windows(2).all(|w| w[0] > w[1]),
                "not newest first: {nums:?}"
            );
            seen.extend(nums);
            match page["next_cursor"].as_str() {
                Some(c) => query = format!("?limit=100&cursor={c}"),
                None => break,
            }
        }
        let set: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(set.len(), seen.len(), "a ticket listed twice");
        let missing: Vec<&u64> = before.difference(&set).collect();
        assert!(
            missing.is_empty(),
            "committed before the list began, not listed: {missing:?}"
        );
        assert_eq!(
            Some(seen.len() as u64),
            first_total,
            "the pages do not hold what the first page's total counted"
        );
        lists += 1;
        if lists % 3 == 1 && before.len() > PER {
            bot.line("/ticket list");
            console_lists += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    storm.join().expect("the storm thread");
    assert!(lists >= 2, "only {lists} lists were read during the storm");
    // Each console list: 25 distinct tickets, newest first, headed with a
    // total no smaller than the one before.
    assert!(bot.wait_printed(Duration::from_secs(30), |p| {
        p.matches("Tickets not closed: 1–25 of ").count() >= console_lists
    }));
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut last_total = 0;
    let mut seen_lists = 0;
    for block in run
        .stdout
        .split("(only you) ")
        .filter(|b| b.starts_with("Tickets not closed: 1–25 of "))
    {
        let total: u64 = block["Tickets not closed: 1–25 of ".len()..]
            .split(", page")
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("{block}"));
        assert!(total >= last_total, "{block}");
        last_total = total;
        let nums = listed(block);
        assert_eq!(nums.len(), 25, "{block}");
        assert!(nums.windows(2).all(|w| w[0] > w[1]), "{block}");
        seen_lists += 1;
    }
    assert_eq!(seen_lists, console_lists, "{}", run.stdout);
    assert_eq!(env.tickets().len(), REQUESTS * PER);
}
