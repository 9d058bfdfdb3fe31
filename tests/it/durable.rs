//! What a 2xx means on a power cut: the bot answers an alert hook only after
//! the disk has its commit. sled 0.34's `flush` alone writes its log with
//! `sync_file_range`, which neither commits the log's new length nor empties
//! the drive's cache (its `fsync` runs every 500 ms from a background
//! thread); the store adds an `fdatasync` of the log to every flush. Checked
//! here on the real bot with `strace` attached: between each request sent
//! and its 202 there is an `fdatasync` of the data directory's `db` file
//! that succeeded.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crash::payload;
use crate::harness::Env;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The successful `fdatasync`s of a file named `db` in the strace log: the
/// time each started, in seconds since the epoch.
fn fdatasyncs_of_db(log: &str, data: &str) -> Vec<f64> {
    // A call that another traced thread interrupts is split by strace in
    // two lines: `fdatasync(9</…/db> <unfinished ...>`, then, on its
    // thread, `<... fdatasync resumed>) = 0`. Its time is the first line's.
    let mut unfinished: std::collections::HashMap<&str, f64> = Default::default();
    let mut out = Vec::new();
    for l in log.lines() {
        let mut parts = l.split_whitespace();
        let (Some(tid), Some(at)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(at) = at.parse::<f64>() else {
            continue;
        };
        let ok = l.trim_end().ends_with("= 0");
        if let Some(rest) = l.split_once("fdatasync(").map(|(_, r)| r) {
            if !rest.contains(&format!("<{data}/db>")) {
                continue;
            }
            if rest.trim_end().ends_with("<unfinished ...>") {
                unfinished.insert(tid, at);
            } else if ok {
                out.push(at);
            }
        } else if l.contains("<... fdatasync resumed>") {
            if let Some(started) = unfinished.remove(tid) {
                if ok {
                    out.push(started);
                }
            }
        }
    }
    out
}

#[test]
fn strace_lines_split_by_another_thread_still_count_as_an_fdatasync() {
    let log = "\
101 1700000000.000100 sync_file_range(9</d/db>, 0, 4096, SYNC_FILE_RANGE_WAIT_BEFORE) = 0
101 1700000000.000200 fdatasync(9</d/db> <unfinished ...>
102 1700000000.000250 fsync(9</d/db>) = 0
101 1700000000.000900 <... fdatasync resumed>) = 0
101 1700000000.001000 fdatasync(9</d/db>) = 0
103 1700000000.002000 fdatasync(10</d/other>) = 0
101 1700000000.003000 fdatasync(9</d/db> <unfinished ...>
101 1700000000.003500 <... fdatasync resumed>) = -1 EIO (Input/output error)
";
    assert_eq!(
        fdatasyncs_of_db(log, "/d"),
        vec![1700000000.0002, 1700000000.001]
    );
}

#[test]
fn an_alert_is_answered_only_after_its_commit_is_fdatasynced() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let data = env.data_dir();
    let data = data.canonicalize().unwrap_or(data);
    let log = env.dir.path().join("strace.log");
    // Every thread of the running bot (`-f` with `-p` takes them all), file
    // names shown beside descriptors (`-y`), times since the epoch (`-ttt`).
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-ttt",
            "-y",
            "-e",
            "trace=fdatasync,fsync,sync_file_range",
        ])
        .arg("-o")
        .arg(&log)
        .args(["-p", &bot.pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace is installed (.ci/setup)");
    // strace says so on stderr once it has attached to the threads.
    let err = strace.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "strace did not attach to the bot"
    );
    // Some threads are attached after the first line: let them all be.
    std::thread::sleep(Duration::from_millis(500));

    let mut windows = Vec::new();
    for i in 0..3 {
        let sent = now();
        let (code, body) = bot.post("/hooks/alertmanager", &payload(&[format!("durable-{i}")]));
        let answered = now();
        assert_eq!(code, 202, "{body}");
        assert_eq!(body["accepted"], 1, "{body}");
        windows.push((sent, answered));
    }
    // SIGTERM: strace detaches and writes out its log.
    let _ = Command::new("kill")
        .args(["-TERM", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let said = reader.join().unwrap_or_default();
    drop(bot);

    let text = std::fs::read_to_string(&log).expect("the strace log");
    let syncs = fdatasyncs_of_db(&text, &data.display().to_string());
    for (i, (sent, answered)) in windows.iter().enumerate() {
        assert!(
            syncs.iter().any(|t| t >= sent && t <= answered),
            "request {i}, sent at {sent:.6} and answered at {answered:.6}, had no fdatasync of {}/db between: {syncs:?}\nstrace said: {said}\nlog:\n{text}",
            data.display()
        );
    }
}
