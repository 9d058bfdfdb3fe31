//! Helpers the benchmarks share: percentiles, the machine line, per-thread CPU.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

/// USER_HZ: the unit of /proc's utime and stime on Linux.
const HZ: f64 = 100.0;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// CPU time (user + system) used so far by the threads of `pid` ("self" for
/// this process), summed by thread name without its number.
pub fn cpu_by_thread(pid: &str) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close]
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        *out.entry(name).or_insert(Duration::ZERO) += Duration::from_secs_f64(ticks / HZ);
    }
    out
}

/// Links the shipped `commands/` into `dir` (for a bot that only reads them).
pub fn link_commands(dir: &std::path::Path) {
    let _ = std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/commands"),
        dir.join("commands"),
    );
}

/// The store a bench runs on: `OPSBOT_BENCH_BACKEND=sled|postgres`
/// (default sled).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BenchBackend {
    Sled,
    Postgres,
}

impl BenchBackend {
    pub fn from_env() -> BenchBackend {
        match std::env::var("OPSBOT_BENCH_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sled") => BenchBackend::Sled,
            Ok("postgres") => BenchBackend::Postgres,
            Ok(other) => {
                eprintln!("OPSBOT_BENCH_BACKEND={other}: expected sled or postgres");
                std::process::exit(2);
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::Sled => "sled",
            BenchBackend::Postgres => "postgres",
        }
    }
}

/// One record for the raw sled baselines: a tree (by name), key and value.
pub type RawRecord = (String, Vec<u8>, Vec<u8>);

/// What raw sled did with a set of records, group-committed.
pub struct RawRun {
    pub records: usize,
    pub transactions: usize,
    pub elapsed: Duration,
    /// Time of each transaction and its flush.
    pub commits: Vec<Duration>,
}

/// Raw sled doing `ops` operations' writes group-committed: `per_tx`
/// operations in one transaction over all the trees the records name, then
/// one `flush` (and, with `fdatasync`, an `fdatasync` of sled's log file as
/// the store's flush makes), as the commit thread does with a batch. `op(i)`
/// gives operation `i`'s records. One thread, on a fresh database in a
/// temporary folder.
pub fn raw_sled_group_commit(
    ops: usize,
    per_tx: usize,
    fdatasync: bool,
    op: &dyn Fn(usize) -> Vec<RawRecord>,
) -> RawRun {
    use sled::Transactional;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path()).expect("sled");
    let log = std::fs::File::open(dir.path().join("db")).expect("sled's log file");
    let mut names: Vec<String> = Vec::new();
    let mut trees: Vec<sled::Tree> = Vec::new();
    let per_tx = per_tx.max(1);
    let mut commits = Vec::new();
    let mut records = 0;
    let started = std::time::Instant::now();
    let mut i = 0;
    while i < ops {
        let end = (i + per_tx).min(ops);
        let batch: Vec<(usize, Vec<u8>, Vec<u8>)> = (i..end)
            .flat_map(op)
            .map(|(tree, k, v)| {
                let at = match names.iter().position(|n| *n == tree) {
                    Some(at) => at,
                    None => {
                        trees.push(db.open_tree(&tree).expect("tree"));
                        names.push(tree);
                        names.len() - 1
                    }
                };
                (at, k, v)
            })
            .collect();
        records += batch.len();
        let t0 = std::time::Instant::now();
        let r: Result<(), sled::transaction::TransactionError<()>> =
            trees[..].transaction(|views| {
                for (at, k, v) in &batch {
                    views[*at].insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            });
        r.expect("transaction");
        db.flush().expect("flush");
        if fdatasync {
            log.sync_data().expect("fdatasync");
        }
        commits.push(t0.elapsed());
        i = end;
    }
    RawRun {
        records,
        transactions: commits.len(),
        elapsed: started.elapsed(),
        commits,
    }
}
