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

/// How long any one run of the binary may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The shipped config, as text.
pub fn shipped_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
    std::fs::read_to_string(path).expect("the shipped bot.toml is readable")
}

/// A temporary folder holding a config; its data directory sits beside it.
pub struct Env {
    pub dir: TempDir,
    pub config: PathBuf,
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
    /// The shipped `bot.toml`, copied into a fresh folder.
    pub fn shipped() -> Env {
        Env::with_config(&shipped_config())
    }

    pub fn with_config(text: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("bot.toml");
        std::fs::write(&config, text).expect("write config");
        Env { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `opsbot ARGS --config FILE` with `input` on stdin.
    pub fn opsbot(&self, args: &[&str], input: &str) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        let cfg = self.config.to_string_lossy().to_string();
        full.push("--config");
        full.push(&cfg);
        run_bin(&full, input, self.dir.path())
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
        let store = Store::open(&config.storage_path).expect("store opens");
        let (bot, writer) = Bot::start(
            store.clone(),
            Engine::new(Arc::new(config)),
            Arc::new(SystemClock),
        )
        .expect("bot starts");
        (bot, writer, store)
    }
}

/// Runs the binary with a timeout.
pub fn run_bin(args: &[&str], input: &str, cwd: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OPSBOT_CONFIG")
        .env("RUST_LOG", "warn")
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
