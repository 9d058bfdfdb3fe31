//! Input and faults that used to kill or stall the bot: dates and durations
//! beyond the calendar, a closed stderr, a Discord that never answers at
//! shutdown, console lines that only look like switches.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{shipped_config, Env, RUN_TIMEOUT, TOKEN};
use crate::kit;

#[test]
fn an_override_until_a_million_years_is_refused_and_the_bot_goes_on() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        "/oncall set team:backend user:bob until:1000000y",
        "/oncall set team:backend user:bob until:\"9999-12-31 00:00\"",
        "/oncall set team:backend user:bob until:91d",
        "/oncall set team:backend user:bob until:8h",
        "/ticket open title:\"After the big numbers\"",
    ]);
    let private = run.private();
    let limit = "`until` must be within 90 days from now (an override lasts at most 90 days; change the rotation in bot.toml for longer); got";
    assert_eq!(private.len(), 5, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(private[0], format!("{limit} `1000000y`"));
    assert_eq!(private[1], format!("{limit} `9999-12-31 00:00`"));
    assert_eq!(private[2], format!("{limit} `91d`"));
    assert!(
        private[3].starts_with("bob is on call for backend until "),
        "{}",
        private[3]
    );
    assert!(private[4].starts_with("Opened OPS-1"), "{}", private[4]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn check_refuses_durations_and_dates_beyond_their_limits_with_their_place() {
    let text = shipped_config()
        .replace(
            "p3 = { acknowledge = \"4h\", resolve = \"3d\" }",
            "p3 = { acknowledge = \"300000y\", resolve = \"3d\" }",
        )
        .replace("\"wait 2h\"", "\"wait 1000000y\"")
        .replace("stale_after = \"6h\"", "stale_after = \"5000y\"")
        .replace("start = \"2026-01-05\"", "start = \"9999-01-04\"");
    assert_ne!(text, shipped_config());
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let line = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no line with {needle}"))
    };
    for want in [
        format!(
            "bot.toml:{}: `deadlines.p3.acknowledge`: `300000y` is too long: a deadline is at most 365 days",
            line("300000y")
        ),
        format!(
            "bot.toml:{}: `escalation[1].steps[1]`: `wait 1000000y`: a wait is at most 365 days",
            line("wait 1000000y")
        ),
        format!(
            "bot.toml:{}: `alerts.default.stale_after`: `5000y` is too long: a group goes stale after at most 365 days",
            line("5000y")
        ),
        format!(
            "bot.toml:{}: `oncall.backend.start`: `9999-01-04` is out of range",
            line("9999-01-04")
        ),
    ] {
        assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    }
    // The console refuses to start on it too, instead of panicking at the
    // first p3 ticket.
    let run = env.opsbot(&["console"], "/ticket open title:x priority:p3\n");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("deadlines.p3.acknowledge"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_longest_deadline_allowed_arms_and_the_bot_goes_on() {
    let text = shipped_config().replace(
        "p3 = { acknowledge = \"4h\", resolve = \"3d\" }",
        "p3 = { acknowledge = \"365d\", resolve = \"365d\" }",
    );
    let env = Env::shipped_with(&text);
    let run = env.console(&[
        "/ticket open title:\"Slow one\" priority:p3",
        "/ticket show id:OPS-1",
    ]);
    let private = run.private();
    assert!(private[0].starts_with("Opened OPS-1"), "{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let tickets = env.tickets();
    assert!(
        tickets[0]["sla"]["ack_due"].is_string(),
        "no deadline armed: {}",
        tickets[0]
    );
}

#[test]
fn an_alert_whose_start_is_no_time_is_refused_and_stores_nothing() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let body = r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","service":"web"},"startsAt":"+275760-09-13T00:00:00Z"}]}"#;
    let (code, v) = bot.post("/hooks/alertmanager", body);
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["error"],
        "alerts[0].startsAt is `+275760-09-13T00:00:00Z`; it must be an RFC 3339 time such as 2026-03-30T09:00:00Z"
    );
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(env.tickets().is_empty());
}

#[test]
fn console_switches_are_whole_words() {
    let env = Env::shipped();
    let run = env.console(&[
        ":asap",
        "/ticket open title:\"Typed by olivia\"",
        ":as",
        ":as bob",
        "/ticket open title:\"Typed by bob\"",
        ":in alerts",
        ":inbox",
        // Still in #alerts, where this message opens an alert ticket.
        "[FIRING:1] HighLatency web (critical)",
        ":in",
    ]);
    assert_eq!(
        run.private(),
        vec![
            "Opened OPS-1 in #ops.",
            "`:as` needs a person's name, such as `:as bob`",
            "Opened OPS-2 in #ops.",
            "`:in` needs a channel's name, such as `:in backend`",
        ],
        "{}",
        run.stdout
    );
    let ops = run.in_channel("ops");
    assert!(
        ops.iter()
            .any(|l| l.contains("Typed by olivia — opened by olivia")),
        "{}",
        run.stdout
    );
    assert!(
        ops.iter()
            .any(|l| l.contains("Typed by bob — opened by bob")),
        "{}",
        run.stdout
    );
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 3, "{}", run.stdout);
    assert_eq!(tickets[2]["source"], "alert", "{}", tickets[2]);
}

/// Runs the console with its stderr closed in the way `how` says, feeding
/// it `lines`; returns its exit code and stdout.
fn console_without_stderr(env: &Env, how: Stderr, rust_log: &str, lines: &[&str]) -> (i32, String) {
    let bin = env!("CARGO_BIN_EXE_opsbot");
    let cfg = env.config.to_string_lossy().to_string();
    let args = ["console", "--listen", "127.0.0.1:0", "--config", &cfg];
    let mut cmd = match how {
        // `2>&-`: no file descriptor 2 at all.
        Stderr::Closed => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("exec \"$0\" \"$@\" 2>&-")
                .arg(bin)
                .args(args);
            c
        }
        // A pipe whose reader went away: every write fails with EPIPE.
        Stderr::Broken => {
            let mut c = Command::new(bin);
            c.args(args).stderr(Stdio::piped());
            c
        }
    };
    let mut child = cmd
        .current_dir(env.dir.path())
        .env_remove("OPSBOT_CONFIG")
        .env("RUST_LOG", rust_log)
        .env("OPSBOT_HOOK_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn opsbot console");
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().expect("stdin");
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code().unwrap_or(-1);
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            panic!("the console did not finish with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    (code, reader.join().unwrap_or_default())
}

#[derive(Clone, Copy, Debug)]
enum Stderr {
    Closed,
    Broken,
}

#[test]
fn a_closed_or_broken_stderr_neither_kills_nor_stalls_the_bot() {
    for (how, log) in [
        (Stderr::Broken, "warn"),
        (Stderr::Broken, "debug"),
        (Stderr::Closed, "debug"),
    ] {
        let env = Env::shipped();
        let (code, stdout) = console_without_stderr(
            &env,
            how,
            log,
            &[
                "/ticket open title:\"Nobody reads the logs\"",
                "/ticket frobnicate",
                "/ticket assign id:OPS-1 team:backend",
                "/ticket show id:OPS-1",
            ],
        );
        assert_eq!(code, 0, "{how:?} RUST_LOG={log}: {stdout}");
        assert!(
            stdout.contains("(only you) Opened OPS-1 in #ops."),
            "{how:?} RUST_LOG={log}: {stdout}"
        );
        assert!(
            stdout.contains("(only you) /ticket has no subcommand `frobnicate`"),
            "{how:?} RUST_LOG={log}: {stdout}"
        );
        assert!(
            stdout.contains("OPS-1 is now with team backend."),
            "{how:?} RUST_LOG={log}: {stdout}"
        );
        // What it stored is whole: the data directory was not written over
        // by log lines.
        let tickets = env.tickets();
        assert_eq!(tickets.len(), 1, "{how:?} RUST_LOG={log}");
        assert_eq!(tickets[0]["team"], "backend");
    }
}

/// A Discord that accepts connections and never says a word.
struct SilentDiscord {
    base: String,
    _listener: std::thread::JoinHandle<()>,
}

impl SilentDiscord {
    fn start() -> SilentDiscord {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        SilentDiscord {
            base,
            _listener: thread,
        }
    }
}

/// An address where nothing listens.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", l.local_addr().expect("addr"));
    drop(l);
    base
}

/// `opsbot run` with Discord at `api_base`: takes an alert (so posts wait
/// for Discord), then gets SIGTERM. Returns how long it took to exit, its
/// status and its log.
fn run_then_sigterm(api_base: &str) -> (Duration, std::process::ExitStatus, String) {
    let text = kit::on_discord(&shipped_config(), "123456789012345678", api_base);
    let text = kit::in_section(
        &text,
        "[discord.channels]",
        "ops = \"223456789012345678\"\nbackend = \"323456789012345678\"\n",
    );
    let env = Env::shipped_with(&text);
    let mut child = kit::run(&env.config, "fake-token")
        .current_dir(env.dir.path())
        .env("OPSBOT_HOOK_TOKEN", TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opsbot run");
    let err = child.stderr.take().expect("stderr");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        let mut reader = BufReader::new(err);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = addr_tx.send(addr.to_string());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let Ok(base) = addr_rx.recv_timeout(Duration::from_secs(30)) else {
        kill(&mut child);
        panic!(
            "opsbot run did not listen: {}",
            log.join().unwrap_or_default()
        );
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let resp = client
        .post(format!("{base}/hooks/generic"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body(r#"{"title":"Disk full on db-1","severity":"critical","status":"firing","labels":{"alertname":"DiskFull","service":"web"}}"#)
        .send()
        .expect("the hook answers");
    assert_eq!(resp.status().as_u16(), 202);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let sent = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if sent.elapsed() > Duration::from_secs(20) {
            kill(&mut child);
            panic!(
                "opsbot run did not stop within 20 s of SIGTERM: {}",
                log.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    (took, status, log.join().unwrap_or_default())
}

#[test]
fn run_stops_within_ten_seconds_of_sigterm_whatever_discord_does() {
    let silent = SilentDiscord::start();
    for (what, base) in [
        ("a Discord that never answers", silent.base.clone()),
        ("a Discord that refuses connections", closed_port()),
    ] {
        let (took, status, log) = run_then_sigterm(&base);
        assert!(
            took < Duration::from_secs(10),
            "{what}: took {took:?} to stop\n{log}"
        );
        assert!(status.success(), "{what}: {status:?}\n{log}");
        assert!(log.contains("stopping"), "{what}: {log}");
        // What was left is said, and kept for the next start.
        assert!(
            log.contains("undelivered; they go out at the next start"),
            "{what}: {log}"
        );
    }
}
