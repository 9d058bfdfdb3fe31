//! Drives the real `opsbot` binary on a temporary data directory, with the
//! shipped `bot.toml` or a given one, and reads what it printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use opsbot::config::Config;
use opsbot::engine::Engine;
use opsbot::runtime::{Bot, SystemClock, Writer};
use opsbot::store::Store;
use serde_json::Value;
use tempfile::TempDir;

use crate::kit;

/// How long any one run of the binary may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::kit::shipped_config;

/// A temporary folder holding a config; its data directory sits beside it.
pub struct Env {
    pub dir: TempDir,
    pub config: PathBuf,
    /// Variables every process of this env gets (the database's URL).
    pub vars: Vec<(String, String)>,
    /// The PostgreSQL cluster the env's records are in, if not sled.
    pub pg: Option<std::sync::Arc<crate::pg::Pg>>,
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Lines printed in `[#channel]` (not its threads).
    pub fn in_channel(&self, channel: &str) -> Vec<&str> {
        let prefix = format!("[#{channel}] ");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// First lines of posts in a ticket's thread.
    pub fn in_thread(&self, channel: &str, ticket: &str) -> Vec<&str> {
        let prefix = format!("[#{channel} › {ticket}] ");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// Private answers (first lines).
    pub fn private(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("(only you) "))
            .collect()
    }

    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

impl Env {
    /// The shipped `bot.toml` and `commands/`, copied into a fresh folder.
    pub fn shipped() -> Env {
        Env::shipped_with(&shipped_config())
    }

    /// A variant of the shipped config, with the shipped `commands/`.
    pub fn shipped_with(text: &str) -> Env {
        let env = Env::with_config(text);
        kit::copy_dir(&kit::shipped_commands(), &env.dir.path().join("commands"));
        env
    }

    /// Writes a file under the env's folder (such as `commands/x.toml`).
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
    }

    /// Writes an executable script under the env's folder.
    pub fn script(&self, rel: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        self.write(rel, text);
        let p = self.dir.path().join(rel);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    pub fn with_config(text: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = kit::write_config(dir.path(), text);
        Env {
            dir,
            config,
            vars: Vec::new(),
            pg: None,
        }
    }

    /// `text` (the shipped config or a variant) with the records in a new
    /// database of a throwaway PostgreSQL cluster instead of sled.
    pub fn on_postgres_with(text: &str) -> Env {
        let pg = std::sync::Arc::new(crate::pg::Pg::start());
        Env::on_cluster(text, pg, "opsbot")
    }

    /// The shipped config on PostgreSQL.
    pub fn on_postgres() -> Env {
        Env::on_postgres_with(&shipped_config())
    }

    /// `text` on a new database `db` of `pg` (several envs may share a
    /// cluster, or a database).
    pub fn on_cluster(text: &str, pg: std::sync::Arc<crate::pg::Pg>, db: &str) -> Env {
        let exists = pg.psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{db}'"
        ));
        let url = if exists == "0" {
            pg.database(db)
        } else {
            format!("postgresql://opsbot@127.0.0.1:{}/{db}", pg.port)
        };
        let text = kit::in_section(text, "[storage]", "backend = \"postgres\"\n");
        let mut env = Env::shipped_with(&text);
        env.vars.push(("OPSBOT_DATABASE_URL".into(), url));
        env.pg = Some(pg);
        env
    }

    /// The database's URL, on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == "OPSBOT_DATABASE_URL")
            .map(|(_, v)| v.as_str())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `opsbot ARGS --config FILE` with `input` on stdin.
    pub fn opsbot(&self, args: &[&str], input: &str) -> Run {
        self.opsbot_env(args, input, &[])
    }

    /// As [`Env::opsbot`], with these variables added to its environment.
    pub fn opsbot_env(&self, args: &[&str], input: &str, vars: &[(&str, &str)]) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        // Parallel tests must not fight over the default port.
        if args.first() == Some(&"console") && !args.contains(&"--listen") {
            full.extend(["--listen", "127.0.0.1:0"]);
        }
        let cfg = self.config.to_string_lossy().to_string();
        full.push("--config");
        full.push(&cfg);
        let mut all: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend(vars.iter().copied());
        run_bin_env(&full, input, self.dir.path(), &all)
    }

    /// `opsbot console` as `--as USER` (or the default) fed with `lines`.
    pub fn console(&self, lines: &[&str]) -> Run {
        let mut input = lines.join("\n");
        input.push('\n');
        let run = self.opsbot(&["console"], &input);
        assert_eq!(run.code, Some(0), "console failed: {}", run.stderr);
        run
    }

    /// `opsbot export`, parsed.
    pub fn export(&self) -> Vec<Value> {
        let run = self.opsbot(&["export"], "");
        assert_eq!(run.code, Some(0), "export failed: {}", run.stderr);
        run.json()
    }

    /// The exported tickets only.
    pub fn tickets(&self) -> Vec<Value> {
        self.export()
            .into_iter()
            .filter(|v| v["type"] == "ticket")
            .collect()
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config).expect("config loads").config
    }

    /// The bot as a library on this folder's config and data (no outbox
    /// worker: posts stay queued).
    pub fn bot(&self) -> (Bot, Writer, Store) {
        let config = self.config();
        let store = match self.database_url() {
            Some(url) => Store::connect(url).expect("store connects"),
            None => Store::open(&config.storage_path).expect("store opens"),
        };
        let (bot, writer) = Bot::start(
            store.clone(),
            Engine::new(Arc::new(config)),
            Arc::new(SystemClock),
        )
        .expect("bot starts");
        (bot, writer, store)
    }
}

/// Runs the binary with a timeout, these variables added to its environment.
pub fn run_bin_env(args: &[&str], input: &str, cwd: &Path, vars: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OPSBOT_CONFIG")
        .env("RUST_LOG", "warn")
        .env("JENKINS_TOKEN", crate::fake_jenkins::TOKEN)
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn opsbot");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out.expect("wait for opsbot"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("opsbot {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
    };
    let _ = writer.join();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A console bot running in the background with its HTTP intake on a free
/// loopback port; stdin stays open until [`LiveBot::finish`].
pub struct LiveBot {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    pub base: String,
    /// What it printed so far.
    printed: Arc<std::sync::Mutex<String>>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// The hook token the live bots are started with.
pub const TOKEN: &str = "test-hook-token";
/// The ticket API's token the live bots are started with.
pub const API_TOKEN: &str = "test-api-token";
/// The company app's shared secret the live bots are started with.
pub const SUPPORT_SECRET: &str = "test-app-secret";

impl Env {
    /// Starts `opsbot console --listen 127.0.0.1:0` with `OPSBOT_HOOK_TOKEN`
    /// set, and waits until it accepts HTTP requests.
    pub fn live(&self, extra: &[&str]) -> LiveBot {
        self.live_without(extra, &[])
    }

    /// As [`Env::live`], with these environment variables unset.
    pub fn live_without(&self, extra: &[&str], unset: &[&str]) -> LiveBot {
        use std::io::{BufRead, BufReader, Read};
        let mut cmd = kit::console(self.dir.path(), &self.config);
        cmd.args(extra)
            .env("OPSBOT_HOOK_TOKEN", TOKEN)
            .env("OPSBOT_API_TOKEN", API_TOKEN)
            .env("OPSBOT_SUPPORT_SECRET", SUPPORT_SECRET)
            .env("JENKINS_TOKEN", crate::fake_jenkins::TOKEN)
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for var in unset {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().expect("spawn opsbot console");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let printed = Arc::new(std::sync::Mutex::new(String::new()));
        let so_far = printed.clone();
        let stdout = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut bytes = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
                if let Ok(mut p) = so_far.lock() {
                    *p = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let mut reader = BufReader::new(err);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                let err = stderr.join().unwrap_or_default();
                panic!("the bot did not start listening: {err}");
            }
        };
        LiveBot {
            child,
            stdin,
            base,
            printed,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }
}

impl LiveBot {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a JSON body with the hook token.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.post_with(path, body, Some(TOKEN), "application/json")
    }

    /// POSTs with a chosen token (None: no Authorization) and content type.
    pub fn post_with(
        &self,
        path: &str,
        body: &str,
        token: Option<&str>,
        ctype: &str,
    ) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut req = client
            .post(self.url(path))
            .header("Content-Type", ctype)
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("request");
        let code = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GETs a path with the token it takes: the ticket API's for
    /// `/api/v1/tickets/…`, else the hook token.
    pub fn get(&self, path: &str) -> (u16, String) {
        let token = if path.starts_with("/api/v1/tickets") {
            API_TOKEN
        } else {
            TOKEN
        };
        self.get_with(path, Some(token))
    }

    /// GETs a path with a chosen bearer token (None: no Authorization).
    pub fn get_with(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut req = client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("request");
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    }

    /// The bot's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the console printed so far.
    pub fn printed(&self) -> String {
        self.printed.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Waits until what the console printed so far satisfies `done`, at
    /// most `timeout`; returns whether it did.
    pub fn wait_printed(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if done(&self.printed()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types a line into the console.
    pub fn line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to console");
        stdin.flush().expect("flush");
    }

    /// Closes stdin and waits for the bot to exit; returns what it printed.
    pub fn finish(mut self) -> Run {
        drop(self.stdin.take());
        let (tx, rx) = std::sync::mpsc::channel();
        let pid = self.child.id();
        let mut child = std::mem::replace(&mut self.child, dummy_child());
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(RUN_TIMEOUT) {
            Ok(s) => s.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("the bot did not exit after its input ended");
            }
        };
        self.exited(status.code())
    }

    /// Kills the bot with SIGKILL, as a crash would.
    pub fn kill9(mut self) -> Run {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        drop(self.stdin.take());
        self.exited(None)
    }

    /// What the bot printed (its output threads joined), with exit code `code`.
    fn exited(&mut self, code: Option<i32>) -> Run {
        let joined = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Run {
            code,
            stdout: joined(self.stdout.take()),
            stderr: joined(self.stderr.take()),
        }
    }
}

/// A finished placeholder process, to move the real child out of a LiveBot.
fn dummy_child() -> std::process::Child {
    Command::new("true").spawn().expect("spawn true")
}

impl Drop for LiveBot {
    fn drop(&mut self) {
        if self.stdout.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Who the shipped `bot.toml`'s backend rotation has on call now.
pub fn backend_on_call() -> String {
    let env = Env::shipped();
    let config = env.config();
    let team = opsbot::domain::TeamName::parse("backend").expect("team");
    let rotation = config
        .policy
        .oncall
        .get(&team)
        .expect("backend has a rotation");
    opsbot::engine::oncall::on_call(rotation, &[], chrono::Utc::now())
        .expect("someone is on call")
        .0
        .to_string()
}
