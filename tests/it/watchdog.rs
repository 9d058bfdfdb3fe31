//! systemd's watchdog, end to end: a bot whose commit thread is wedged in a
//! batch stops pinging `WATCHDOG=1`, so that systemd restarts it.
//!
//! The wedge comes from outside, with no hook in the bot: `gdb` attaches to
//! the running process in non-stop mode and sets a breakpoint in the commit
//! thread's `runtime::commit::apply` (called inside a batch, after the
//! batch is marked busy). When the thread reaches it, gdb holds that one
//! thread; every other thread (the intake, the watchdog task) runs on, as
//! in a real wedge (a write that never returns, a deadlock). Only a
//! batch stuck for longer than `runtime::health::STUCK_AFTER` (60 s) counts,
//! so the test waits that long. Releasing the thread (gdb deletes the
//! breakpoint and detaches) brings the pings back and the batch finishes.
//!
//! `gdb` (Debian's, installed by `.ci/setup`) is a dependency of the test:
//! there is no other honest way to hold one thread of the process.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Env, TOKEN};

/// The pings heard on the socket, with when they came.
type Heard = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(sock: UnixDatagram) -> Heard {
    let heard: Heard = Arc::default();
    let h = heard.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => h.lock().unwrap().push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    heard
}

/// gdb, told to detach (and killed if it does not) if the test ends before
/// it detached: the bot, still traced, could not end otherwise.
struct Gdb(std::process::Child);

impl Gdb {
    fn say(&mut self, commands: &str) {
        use std::io::Write;
        let stdin = self.0.stdin.as_mut().expect("gdb's stdin");
        stdin.write_all(commands.as_bytes()).expect("to gdb");
        stdin.flush().expect("to gdb");
    }
}

impl Drop for Gdb {
    fn drop(&mut self) {
        // Detach first: killed while it holds a thread at a breakpoint, gdb
        // would leave the trap in the code, and the bot would die of it.
        if let Some(stdin) = self.0.stdin.as_mut() {
            use std::io::Write;
            let _ = stdin.write_all(b"delete\ndetach\nquit\n");
            let _ = stdin.flush();
        }
        let end = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.0.try_wait() {
            if Instant::now() > end {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn pings_since(heard: &Heard, from: Instant) -> usize {
    heard
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, m)| *at >= from && m.contains("WATCHDOG=1"))
        .count()
}

fn wait_for(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let end = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_commit_thread_wedged_in_a_batch_stops_the_watchdog_pings() {
    assert!(
        Command::new("gdb").arg("--version").output().is_ok(),
        "gdb holds the commit thread in this test: `bash .ci/setup` installs it"
    );
    let mut env = Env::shipped();
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    env.vars
        .push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    // A 200 ms watchdog: pinged every 100 ms while alive.
    env.vars.push(("WATCHDOG_USEC".into(), "200000".into()));
    let bot = env.live(&[]);
    let heard = listen(sock);
    let start = Instant::now();
    wait_for("pings", Duration::from_secs(10), || {
        pings_since(&heard, start) >= 3
    });

    // Hold the commit thread at its next batch. gdb reads its commands
    // from a pipe, so that its event loop runs between them: it sees the
    // thread stop and keeps the others running.
    let gdb_log = env.dir.path().join("gdb.log");
    let log = std::fs::File::create(&gdb_log).unwrap();
    let child = Command::new("gdb")
        .args(["-q", "-nx"])
        .args(["-iex", "set non-stop on", "-iex", "set pagination off"])
        .args(["-iex", "set confirm off"])
        .args(["-p", &bot.pid().to_string()])
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("gdb");
    let mut gdb = Gdb(child);
    let said = || std::fs::read_to_string(&gdb_log).unwrap_or_default();
    // Attached in non-stop mode, gdb reports each thread stopped, one by
    // one (all but the first, which it shows where it stopped); a
    // `continue -a` before the last report leaves that one stopped.
    let threads = std::fs::read_dir(format!("/proc/{}/task", bot.pid()))
        .unwrap()
        .count();
    wait_for("gdb to stop every thread", Duration::from_secs(60), || {
        said().matches("\" stopped.").count() + 1 >= threads
    });
    gdb.say("break opsbot::runtime::commit::apply\ncontinue -a &\necho ARMED\\n\n");
    wait_for("gdb to attach", Duration::from_secs(60), || {
        said().contains("ARMED")
    });
    let armed = Instant::now();
    let end = armed + Duration::from_secs(5);
    while pings_since(&heard, armed) < 3 {
        assert!(
            Instant::now() < end,
            "no pings with gdb attached: {}",
            said()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A write: its batch reaches `apply` and stays there.
    let url = bot.url("/hooks/alertmanager");
    let alert = crate::crash::payload(&["wedged".to_string()]);
    let answered = Arc::new(Mutex::new(None::<u16>));
    let a = answered.clone();
    let poster = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(180))
            .build()
            .unwrap();
        let code = client
            .post(url)
            .header("Content-Type", "application/json")
            .bearer_auth(TOKEN)
            .body(alert)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        *a.lock().unwrap() = Some(code);
    });
    wait_for(
        "the commit thread to be held",
        Duration::from_secs(30),
        || said().contains("hit Breakpoint 1"),
    );
    let wedged = Instant::now();

    // Within STUCK_AFTER the bot still counts as alive (a batch may take a
    // while)...
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        answered.lock().unwrap().is_none(),
        "the write was answered: the commit thread is not held ({})",
        said()
    );
    assert!(
        pings_since(&heard, wedged + Duration::from_secs(3)) >= 5,
        "no pings with the thread held for 3 s: {}",
        said()
    );
    // ...after it, no ping: systemd's watchdog fires and restarts the bot.
    wait_for("the pings to stop", Duration::from_secs(90), || {
        let h = heard.lock().unwrap();
        h.iter()
            .rev()
            .find(|(_, m)| m.contains("WATCHDOG=1"))
            .is_some_and(|(at, _)| at.elapsed() > Duration::from_secs(2))
    });
    let stopped_after = wedged.elapsed();
    assert!(
        stopped_after >= Duration::from_secs(60),
        "stopped before STUCK_AFTER: {stopped_after:?}"
    );
    assert!(answered.lock().unwrap().is_none());
    // The intake still answers, and says why it is not alive.
    let (code, body) = bot.get("/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("stuck on one batch"), "{body}");
    let quiet = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pings_since(&heard, quiet), 0, "pinged while wedged");

    // Let go: the batch finishes, the write is answered, the pings resume.
    gdb.say("delete\ndetach\nquit\n");
    let gdb_done = gdb.0.wait().expect("gdb");
    assert!(gdb_done.success(), "{}", said());
    poster.join().unwrap();
    assert_eq!(*answered.lock().unwrap(), Some(202));
    let back = Instant::now();
    wait_for("the pings to resume", Duration::from_secs(10), || {
        pings_since(&heard, back) >= 3
    });
    assert_eq!(bot.get("/healthz").0, 200);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}
