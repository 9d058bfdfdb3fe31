//! A throwaway PostgreSQL cluster for a test: `initdb` into a temp dir and
//! `pg_ctl` on a free port, as the unprivileged `postgres` user when the test
//! runs as root (PostgreSQL refuses to run as root), stopped and removed when
//! dropped. Nothing depends on a system-wide PostgreSQL service.
//! `.ci/setup` installs Debian's `postgresql-15`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian puts PostgreSQL 15's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Pg {
    dir: tempfile::TempDir,
    pub port: u16,
    /// `fsync` and `synchronous_commit` on (a benchmark's cluster), instead
    /// of the tests' `fsync=off`.
    durable: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL program, run as `postgres` when we are root.
fn tool(name: &str) -> Command {
    let path = Path::new(BIN).join(name);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pg {
    /// Whether PostgreSQL is installed here (`.ci/setup` installs it).
    pub fn available() -> bool {
        Path::new(BIN).join("initdb").exists()
    }

    /// Starts a new cluster; panics with PostgreSQL's words when it cannot.
    /// It runs with `fsync=off`: right for tests, not for figures.
    pub fn start() -> Pg {
        Pg::start_with(false)
    }

    /// As [`Pg::start`], with `fsync=on` and `synchronous_commit=on`, so that
    /// a commit is on disk when it returns (for benchmarks).
    #[allow(dead_code)] // the benches' (engine, alert_storm); no test needs it
    pub fn start_durable() -> Pg {
        Pg::start_with(true)
    }

    fn start_with(durable: bool) -> Pg {
        assert!(
            Pg::available(),
            "PostgreSQL 15 is not installed: run .ci/setup (apt-get install postgresql-15)"
        );
        let dir = tempfile::Builder::new()
            .prefix("opsbot-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(dir.path());
                    c
                },
                "chown the cluster's folder",
            );
        }
        let data = dir.path().join("data");
        let mut init = tool("initdb");
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "opsbot", "--no-sync", "-E", "UTF8"]);
        run(init, "initdb");
        let port = free_port();
        let pg = Pg { dir, port, durable };
        pg.pg_ctl_start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) {
        let mut c = tool("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 {} -c max_connections=200",
                self.port,
                self.dir.path().display(),
                if self.durable {
                    "-c fsync=on -c synchronous_commit=on"
                } else {
                    "-c fsync=off"
                }
            ))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"]);
        run(c, "pg_ctl start");
    }

    /// The URL of database `postgres` as user `opsbot`.
    pub fn url(&self) -> String {
        format!("postgresql://opsbot@127.0.0.1:{}/postgres", self.port)
    }

    /// A new empty database in the cluster, and its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgresql://opsbot@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL with psql; returns what it printed (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_at(&self.url(), sql)
    }

    /// As [`Pg::psql`], in the database at `url` (one of this cluster's).
    pub fn psql_at(&self, url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(url)
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server at once (as a crash would).
    pub fn kill(&self) {
        let mut c = tool("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    /// Starts the server again after [`Pg::kill`].
    pub fn restart(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let mut c = tool("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
    }
}
