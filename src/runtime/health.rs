//! The health registry: what `/healthz` (liveness) and `/readyz`
//! (readiness) report, and the `opsbot_worker_up` gauges.
//!
//! Each long-lived worker (the commit thread, the outbox workers, the
//! timers) holds a [`Guard`] for as long as it runs: dropping it, when the
//! worker returns or unwinds from a panic, marks the worker down. Short
//! tasks (one job follower per run) hold a [`Guard`] of their group: one
//! that ends normally leaves no trace; one that panics marks the group down.
//! The commit thread says when the store refuses writes, and the Discord
//! adapter whether its gateway is connected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::Timestamp;

/// The commit thread's name in the registry.
pub const COMMIT: &str = "commit";

/// A batch taking longer than this means the commit thread is stuck (a
/// batch is bounded to milliseconds of work and one flush).
pub const STUCK_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Up,
    /// Returned: it stopped (at shutdown, or when its input ended).
    Ended,
    /// Unwound from a panic.
    Panicked,
}

#[derive(Default)]
struct Inner {
    workers: BTreeMap<String, State>,
    /// Groups of short tasks: how many run, and whether one panicked.
    groups: BTreeMap<String, (usize, Option<String>)>,
    /// Why the store takes no writes, and since when.
    store: Option<(String, Timestamp)>,
    /// `None`: no gateway to watch (the console). Else whether it is
    /// connected, and since when it is in that state.
    gateway: Option<(bool, Timestamp)>,
    /// Since when the commit thread works on its current batch.
    busy_since: Option<Timestamp>,
}

/// What is alive and what is ready. Shared by the runtime and the adapters.
#[derive(Default)]
pub struct Health {
    inner: Mutex<Inner>,
}

/// Marks a worker (or a task of a group) down when dropped.
pub struct Guard {
    health: Arc<Health>,
    name: String,
    group: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        let mut g = self.health.lock();
        if self.group {
            if let Some((n, failed)) = g.groups.get_mut(&self.name) {
                *n = n.saturating_sub(1);
                if panicked {
                    *failed = Some("a task of it panicked".into());
                }
            }
        } else {
            let state = if panicked {
                State::Panicked
            } else {
                State::Ended
            };
            g.workers.insert(self.name.clone(), state);
        }
    }
}

fn since(at: Timestamp, now: Timestamp) -> String {
    let secs = (now - at).num_seconds().max(0);
    format!(
        "since {} ({}s ago)",
        at.format("%Y-%m-%d %H:%M:%S UTC"),
        secs
    )
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Registers a long-lived worker as up; it is down once the guard drops.
    pub fn worker(self: &Arc<Self>, name: &str) -> Guard {
        self.lock().workers.insert(name.to_string(), State::Up);
        Guard {
            health: self.clone(),
            name: name.to_string(),
            group: false,
        }
    }

    /// Registers a group of short tasks (shown as one worker, up until a
    /// task of it panics).
    pub fn group(&self, name: &str) {
        self.lock().groups.entry(name.to_string()).or_default();
    }

    /// A short task of `group`: a panic while it runs marks the group down.
    pub fn task(self: &Arc<Self>, group: &str) -> Guard {
        self.lock().groups.entry(group.to_string()).or_default().0 += 1;
        Guard {
            health: self.clone(),
            name: group.to_string(),
            group: true,
        }
    }

    /// The store refuses writes (`Some(why)`), or takes them again (`None`).
    pub fn set_store(&self, problem: Option<String>, now: Timestamp) {
        let mut g = self.lock();
        match problem {
            Some(why) => {
                let at = g.store.as_ref().map_or(now, |(_, at)| *at);
                g.store = Some((why, at));
            }
            None => g.store = None,
        }
    }

    /// Why the store takes no writes, if it does not.
    pub fn store_problem(&self) -> Option<String> {
        self.lock().store.as_ref().map(|(why, _)| why.clone())
    }

    /// Whether the store takes writes.
    pub fn store_ok(&self) -> bool {
        self.lock().store.is_none()
    }

    /// Readiness depends on a gateway from now on; it starts disconnected.
    pub fn watch_gateway(&self, now: Timestamp) {
        self.lock().gateway = Some((false, now));
    }

    /// The gateway connected or lost its connection.
    pub fn set_gateway(&self, connected: bool, now: Timestamp) {
        let mut g = self.lock();
        if g.gateway.as_ref().map(|(c, _)| *c) != Some(connected) {
            g.gateway = Some((connected, now));
        }
    }

    /// The commit thread starts a batch (`Some(now)`) or is done with it.
    pub fn set_busy(&self, since: Option<Timestamp>) {
        self.lock().busy_since = since;
    }

    /// What makes the process not alive: the commit thread gone, or stuck
    /// on one batch for longer than [`STUCK_AFTER`].
    pub fn liveness(&self, now: Timestamp) -> Vec<String> {
        let g = self.lock();
        match g.workers.get(COMMIT) {
            Some(State::Up) => match g.busy_since {
                Some(at) if now - at > STUCK_AFTER => vec![format!(
                    "the commit thread is stuck on one batch {}",
                    since(at, now)
                )],
                _ => Vec::new(),
            },
            Some(State::Panicked) => {
                vec!["the commit thread panicked: no change can be stored; restart the bot".into()]
            }
            Some(State::Ended) => vec!["the commit thread has stopped".into()],
            None => vec!["the commit thread has not started".into()],
        }
    }

    /// What makes the bot not ready, liveness problems included.
    pub fn readiness(&self, now: Timestamp) -> Vec<String> {
        let mut out = self.liveness(now);
        let g = self.lock();
        if let Some((why, at)) = &g.store {
            out.push(format!(
                "the store takes no writes {}: {why}",
                since(*at, now)
            ));
        }
        for (name, state) in &g.workers {
            if name == COMMIT {
                continue;
            }
            match state {
                State::Up => {}
                State::Ended => out.push(format!("worker {name} has stopped")),
                State::Panicked => out.push(format!("worker {name} panicked and is not running")),
            }
        }
        for (name, (_, failed)) in &g.groups {
            if let Some(why) = failed {
                out.push(format!("{name}: {why}"));
            }
        }
        if let Some((false, at)) = &g.gateway {
            out.push(format!(
                "the Discord gateway is not connected {}",
                since(*at, now)
            ));
        }
        out
    }

    /// Every worker and group with whether it is up, by name.
    pub fn workers(&self) -> Vec<(String, bool)> {
        let g = self.lock();
        let mut out: Vec<(String, bool)> = g
            .workers
            .iter()
            .map(|(n, s)| (n.clone(), *s == State::Up))
            .collect();
        out.extend(g.groups.iter().map(|(n, (_, f))| (n.clone(), f.is_none())));
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_panics_or_returns_is_down_and_says_so() {
        let h = Health::new();
        let now = chrono::Utc::now();
        let commit = h.worker(COMMIT);
        let g = h.worker("outbox-chat");
        assert!(h.readiness(now).is_empty());
        let h2 = h.clone();
        let t = std::thread::spawn(move || {
            let _g = h2.worker("timers");
            panic!("boom");
        });
        assert!(t.join().is_err());
        assert_eq!(
            h.readiness(now),
            vec!["worker timers panicked and is not running".to_string()]
        );
        drop(g);
        assert!(h.readiness(now)[0].contains("outbox-chat has stopped"));
        assert!(h.liveness(now).is_empty());
        drop(commit);
        assert_eq!(
            h.liveness(now),
            vec!["the commit thread has stopped".to_string()]
        );
    }

    #[test]
    fn a_commit_thread_stuck_on_one_batch_is_not_alive() {
        let h = Health::new();
        let _c = h.worker(COMMIT);
        let start = chrono::Utc::now();
        h.set_busy(Some(start));
        assert!(h
            .liveness(start + chrono::TimeDelta::seconds(59))
            .is_empty());
        let late = start + chrono::TimeDelta::seconds(61);
        let problems = h.liveness(late);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("the commit thread is stuck on one batch since "),
            "{problems:?}"
        );
        h.set_busy(None);
        assert!(h.liveness(late).is_empty());
    }

    #[test]
    fn a_task_that_ends_leaves_no_trace_and_one_that_panics_marks_its_group() {
        let h = Health::new();
        let now = chrono::Utc::now();
        let _c = h.worker(COMMIT);
        h.group("job-followers");
        drop(h.task("job-followers"));
        assert!(h.readiness(now).is_empty());
        let h2 = h.clone();
        let _ = std::thread::spawn(move || {
            let _t = h2.task("job-followers");
            panic!("boom");
        })
        .join();
        assert_eq!(
            h.readiness(now),
            vec!["job-followers: a task of it panicked".to_string()]
        );
        assert_eq!(
            h.workers(),
            vec![("commit".into(), true), ("job-followers".into(), false)]
        );
    }
}
