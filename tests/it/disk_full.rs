//! A full disk, for real: the data directory on a small tmpfs. A batch
//! whose flush fails is answered 503 with Retry-After; nothing of it is
//! readable or delivered; the bot refuses writes (and says so) but still
//! serves reads; once space is back, writes resume without a restart, the
//! retry creates exactly one set, and a restart shows exactly what was
//! flushed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{shipped_config, Env, LiveBot, TOKEN};

/// How long the bot may take to see that space is back.
const RECOVERY: Duration = Duration::from_secs(20);

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `path`, or says why it cannot.
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the filesystem of `dir` with a file until the disk is full.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).expect("ballast file");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Fill the last bytes too.
    while f.write_all(&[0u8; 512]).is_ok() {}
    while f.write_all(&[0u8]).is_ok() {}
    path
}

fn alerts(n: usize) -> String {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "title": format!("Disk full test {i:02}"),
                "severity": "warning",
                "status": "firing",
                "labels": {"host": format!("db-{i:02}")},
                "fingerprint": format!("disk-full-{i:02}"),
            })
        })
        .collect();
    Value::Array(list).to_string()
}

/// POSTs to the generic hook: status, Retry-After, body.
fn post(bot: &LiveBot, body: &str) -> (u16, Option<String>, Value) {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .post(bot.url("/hooks/generic"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("request");
    let code = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (code, retry, resp.json().unwrap_or(Value::Null))
}

fn json_get(bot: &LiveBot, path: &str) -> (u16, Value) {
    let (code, text) = bot.get(path);
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `path` until `want`, at most `within`.
fn poll(
    bot: &LiveBot,
    path: &str,
    within: Duration,
    want: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = bot.get(path);
        if want(code, &body) || Instant::now() >= deadline {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_stores_nothing_delivers_nothing_and_recovers() {
    let env = Env::shipped_with(&shipped_config().replace(
        "\n[alerts.default]\n",
        // Every alert post on its own line, to count them.
        "\n[alerts]\ncoalesce_after = 1000\n\n[alerts.default]\n",
    ));
    let disk = match Tmpfs::mount(&env.data_dir(), "16m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_stores_nothing_delivers_nothing_and_recovers: cannot mount a tmpfs ({why}); it needs root (or CAP_SYS_ADMIN)");
            return;
        }
    };
    let mut bot = env.live(&[]);

    // Before: one alert ticket, delivered, and everything on disk (a repeat
    // makes no post, and is answered once flushed).
    let one = r#"{"title":"Warm up","severity":"warning","status":"firing","labels":{"host":"warm"},"fingerprint":"warm-up"}"#;
    let (code, _, body) = post(&bot, one);
    assert_eq!((code, &body["tickets"]), (202, &json!(["OPS-1"])), "{body}");
    let (_, m) = poll(&bot, "/metrics", Duration::from_secs(10), |_, m| {
        m.contains("opsbot_outbox_depth{queue=\"chat\"} 0")
    });
    assert!(m.contains("opsbot_outbox_depth{queue=\"chat\"} 0"), "{m}");
    let (code, _, body) = post(&bot, one);
    assert_eq!(code, 202, "{body}");

    // The disk fills up; a batch of 20 alerts cannot be flushed.
    let ballast = fill(&disk.path);
    let batch = alerts(20);
    let (code, retry, body) = post(&bot, &batch);
    assert_eq!(code, 503, "{body}");
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s > 0)),
        "no Retry-After"
    );
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("nothing was stored, retry later"), "{msg}");

    // Nothing of it is readable; what was stored before still is.
    for n in 2..=21 {
        let (code, body) = json_get(&bot, &format!("/api/v1/tickets/OPS-{n}"));
        if code != 404 {
            let run = bot.finish();
            panic!("OPS-{n}: {code} {body}\n{}", run.stderr);
        }
    }
    let (code, body) = json_get(&bot, "/api/v1/tickets/OPS-1");
    assert_eq!(
        (code, &body["title"]),
        (200, &json!("Warm up: Warm up")),
        "{body}"
    );
    // Not ready, and says why; still alive.
    let (code, body) = json_get(&bot, "/readyz");
    assert_eq!(
        (code, &body["status"]),
        (503, &json!("unavailable")),
        "{body}"
    );
    assert!(
        body["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p
                .as_str()
                .unwrap_or_default()
                .starts_with("the store takes no writes since "))),
        "{body}"
    );
    assert_eq!(json_get(&bot, "/healthz"), (200, json!({"status": "ok"})));
    // A command is refused, clearly; a read is answered.
    bot.line("/ticket open title:\"while the disk is full\"");
    assert!(
        bot.wait_printed(Duration::from_secs(10), |p| p
            .contains("the bot cannot store changes right now")),
        "the command was not refused"
    );
    let before = bot.printed().matches("Warm up").count();
    bot.line("/ticket show id:OPS-1");
    assert!(
        bot.wait_printed(Duration::from_secs(10), |p| p.matches("Warm up").count()
            > before),
        "the read was not answered"
    );
    // And a second try while still full is refused the same way.
    let (code, retry, body) = post(&bot, &batch);
    assert_eq!((code, retry.is_some()), (503, true), "{body}");

    // Space comes back: ready again without a restart, and the retry makes
    // exactly one set.
    std::fs::remove_file(&ballast).expect("free space");
    let (code, body) = poll(&bot, "/readyz", RECOVERY, |c, _| c == 200);
    assert_eq!(code, 200, "not ready again after space came back: {body}");
    let (code, _, body) = post(&bot, &batch);
    assert_eq!(code, 202, "{body}");
    let want: Vec<String> = (2..=21).map(|n| format!("OPS-{n}")).collect();
    assert_eq!(body["tickets"], json!(want), "{body}");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // Each ticket's card went out exactly once: nothing of the refused
    // batch, no post delivered twice.
    for n in 1..=21 {
        let card = format!("New alert ticket OPS-{n} ");
        let times = run.stdout.matches(&card).count();
        assert_eq!(times, 1, "{card:?} posted {times} times:\n{}", run.stdout);
    }
    let refused = run
        .private()
        .into_iter()
        .find(|l| l.starts_with("the bot cannot store changes right now"))
        .map(str::to_string);
    assert!(
        refused.as_deref().is_some_and(|l| l.contains("nothing was changed") && l.contains("Reading still works")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("the disk refused a write: nothing of this batch was stored"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the store takes writes again"),
        "{}",
        run.stderr
    );

    // A restart shows exactly what was flushed: 21 tickets, once each.
    let tickets = env.tickets();
    let ids: Vec<&str> = tickets.iter().filter_map(|t| t["id"].as_str()).collect();
    let want: Vec<String> = (1..=21).map(|n| format!("OPS-{n}")).collect();
    assert_eq!(ids, want, "after a restart");
    assert!(
        tickets
            .iter()
            .all(|t| t["title"] != "while the disk is full"),
        "the refused command's ticket is on record"
    );
    drop(disk);
}

#[test]
fn a_crash_while_the_disk_is_full_restarts_on_exactly_what_was_flushed() {
    let env = Env::shipped();
    let disk = match Tmpfs::mount(&env.data_dir(), "16m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED a_crash_while_the_disk_is_full_restarts_on_exactly_what_was_flushed: cannot mount a tmpfs ({why}); it needs root (or CAP_SYS_ADMIN)");
            return;
        }
    };
    let bot = env.live(&[]);
    let one = r#"{"title":"Before","severity":"warning","status":"firing","labels":{"host":"before"},"fingerprint":"before"}"#;
    let (code, _, body) = post(&bot, one);
    assert_eq!((code, &body["tickets"]), (202, &json!(["OPS-1"])), "{body}");
    let ballast = fill(&disk.path);
    let (code, _, body) = post(&bot, &alerts(20));
    assert_eq!(code, 503, "{body}");
    // Killed while the disk is full; space comes back; a restart.
    let crashed = bot.kill9();
    std::fs::remove_file(&ballast).expect("free space");
    let bot = env.live(&[]);
    assert_eq!(json_get(&bot, "/readyz"), (200, json!({"status": "ok"})));
    for n in 2..=21 {
        let (code, body) = json_get(&bot, &format!("/api/v1/tickets/OPS-{n}"));
        assert_eq!(code, 404, "OPS-{n} after the restart: {body}");
    }
    let after = r#"{"title":"After","severity":"warning","status":"firing","labels":{"host":"after"},"fingerprint":"after"}"#;
    let (code, _, body) = post(&bot, after);
    assert_eq!((code, &body["tickets"]), (202, &json!(["OPS-2"])), "{body}");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for out in [&crashed.stdout, &run.stdout] {
        assert!(
            !out.contains("Disk full test"),
            "a post of the refused batch went out:\n{out}"
        );
    }
    let titles: Vec<String> = env
        .tickets()
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_string))
        .collect();
    assert_eq!(titles, ["Before: Before", "After: After"]);
    drop(disk);
}
