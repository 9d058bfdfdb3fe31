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
