//! The local job runner: an outbox sink for job orders. It starts a job's
//! program with its arguments (never through a shell), in its working
//! folder, with a timeout; keeps the output's tail; and reports to the
//! engine as the run starts and ends. Cancel kills the process.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{oneshot, watch};
use tracing::warn;

use crate::engine::{Effect, Event};
use crate::runs::{JobOrder, RunId, RunUpdate};
use crate::runtime::{Bot, DeliveryError, Sink};
use crate::store::OutboxItem;

/// Bytes of output kept per run.
const TAIL_BYTES: usize = 8 * 1024;

/// Runs jobs from `commands/` as local processes.
#[derive(Clone)]
pub struct LocalRunner {
    pub(crate) bot: Bot,
    running: Arc<Mutex<HashMap<RunId, oneshot::Sender<()>>>>,
    /// How many are running, for a bounded wait at shutdown.
    count: Arc<watch::Sender<usize>>,
}

/// The last bytes of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
        if self.0.len() > TAIL_BYTES {
            let cut = self.0.len() - TAIL_BYTES;
            self.0.drain(..cut);
        }
    }
}

async fn drain(mut r: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut t) = tail.lock() {
            t.push(&buf[..n]);
        }
    }
}

impl LocalRunner {
    pub fn new(bot: Bot) -> Self {
        Self {
            bot,
            running: Arc::new(Mutex::new(HashMap::new())),
            count: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, oneshot::Sender<()>>> {
        match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Waits until no job runs, at most `timeout`; returns whether it got there.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn report(&self, run: RunId, update: RunUpdate) {
        if let Err(e) = self.bot.submit(Event::RunUpdate { run, update }).await {
            warn!(%run, error = %e, "cannot record a run's progress");
        }
    }

    async fn start(
        &self,
        run: RunId,
        job: &str,
        params: &std::collections::BTreeMap<String, String>,
    ) {
        let Some(job) = self.bot.engine().config().jobs.get(job).cloned() else {
            self.report(
                run,
                RunUpdate::Finished {
                    success: false,
                    reason: format!("the job {job} is no longer in commands/"),
                    tail: String::new(),
                },
            )
            .await;
            return;
        };
        let argv = job.argv(params);
        let mut cmd = tokio::process::Command::new(&job.program);
        cmd.args(&argv)
            .current_dir(&job.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in params {
            cmd.env(format!("OPSBOT_PARAM_{}", k.to_ascii_uppercase()), v);
        }
        cmd.env("OPSBOT_RUN", run.to_string());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.report(
                    run,
                    RunUpdate::Finished {
                        success: false,
                        reason: format!("cannot start {}: {e}", job.program.display()),
                        tail: String::new(),
                    },
                )
                .await;
                return;
            }
        };
        let pid = child
            .id()
            .map_or("local".to_string(), |p| format!("local pid {p}"));
        let (cancel_tx, cancel_rx) = oneshot::channel();
        self.lock().insert(run, cancel_tx);
        self.count.send_modify(|n| *n += 1);
        self.report(run, RunUpdate::Started { backend_ref: pid })
            .await;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let out = child
            .stdout
            .take()
            .map(|o| tokio::spawn(drain(o, tail.clone())));
        let err = child
            .stderr
            .take()
            .map(|e| tokio::spawn(drain(e, tail.clone())));
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                status = child.wait() => Some(status),
                _ = tokio::time::sleep(job.timeout) => None,
                _ = cancel_rx => {
                    let _ = child.kill().await;
                    me.lock().remove(&run);
                    me.count.send_modify(|n| *n = n.saturating_sub(1));
                    return;
                }
            };
            let (success, reason) = match outcome {
                Some(Ok(st)) if st.success() => (true, "exit code 0".to_string()),
                Some(Ok(st)) => (
                    false,
                    match st.code() {
                        Some(c) => format!("exit code {c}"),
                        None => "killed by a signal".to_string(),
                    },
                ),
                Some(Err(e)) => (false, format!("lost the process: {e}")),
                None => {
                    let _ = child.kill().await;
                    (
                        false,
                        format!(
                            "timed out after {}",
                            humantime::format_duration(job.timeout)
                        ),
                    )
                }
            };
            for h in [out, err].into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
            }
            let text = tail
                .lock()
                .map(|t| String::from_utf8_lossy(&t.0).into_owned())
                .unwrap_or_default();
            me.lock().remove(&run);
            me.report(
                run,
                RunUpdate::Finished {
                    success,
                    reason,
                    tail: text,
                },
            )
            .await;
            me.count.send_modify(|n| *n = n.saturating_sub(1));
        });
    }
}

impl Sink for LocalRunner {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Effect::Job(order) = &item.effect else {
            return Err(DeliveryError::Permanent("not a job order".into()));
        };
        match order {
            JobOrder::Start { run, job, params } => self.start(*run, job, params).await,
            JobOrder::Cancel { run } => {
                if let Some(tx) = self.lock().remove(run) {
                    let _ = tx.send(());
                }
            }
        }
        Ok(())
    }
}
