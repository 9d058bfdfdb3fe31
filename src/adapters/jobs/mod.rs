//! The local job runner: an outbox sink for job orders. It starts a job's
//! program with its arguments (never through a shell), in its working
//! folder, with a timeout; keeps the output's tail; and reports to the
//! engine as the run starts and ends. Cancel kills the process.

mod follow;
pub mod forge_ci;
pub mod jenkins;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{oneshot, watch};
use tracing::warn;

use crate::domain::run::{BackendRef, JobOrder, RunId, RunUpdate};
use crate::engine::{Effect, Event};
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

/// Secret values shorter than this are not masked: they would blank out
/// ordinary words of the output.
const MIN_MASKED: usize = 4;

/// The last bytes of a stream: [`TAIL_BYTES`] and, before them, as many as
/// the longest secret, so that a secret that ends in the tail is seen whole.
struct Tail {
    buf: Vec<u8>,
    cap: usize,
}

impl Tail {
    fn new(margin: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap: TAIL_BYTES.saturating_add(margin),
        }
    }

    fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
    }
}

/// The last `keep` bytes of `raw` as text, every secret's value in it shown
/// as `***`: also one that starts before them and ends in them. The bytes
/// before are only looked at, never shown, so that a secret cut at the start
/// of `raw` shows no part of itself.
pub(crate) fn masked_tail(raw: &[u8], secrets: &[&str], keep: usize) -> String {
    let secrets: Vec<&[u8]> = secrets
        .iter()
        .map(|s| s.as_bytes())
        .filter(|s| s.len() >= MIN_MASKED)
        .collect();
    let keep_from = raw.len().saturating_sub(keep);
    let mut out = Vec::with_capacity(raw.len().min(keep));
    let mut i = 0;
    while i < raw.len() {
        let hit = secrets
            .iter()
            .filter(|s| raw[i..].starts_with(s))
            .map(|s| s.len())
            .max();
        match hit {
            Some(n) => {
                if i + n > keep_from {
                    out.extend_from_slice(b"***");
                }
                i += n;
            }
            None => {
                if i >= keep_from {
                    out.push(raw[i]);
                }
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        bot.health().group("job-followers");
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
        report_run(&self.bot, run, update).await;
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
        let config = &self.bot.config();
        let secrets = config.secrets();
        let secret_values: Vec<String> = secrets
            .iter()
            .filter_map(|s| s.value.as_ref().map(|v| v.expose().to_string()))
            .collect();
        let mut cmd = tokio::process::Command::new(&job.program);
        cmd.args(&argv)
            .current_dir(&job.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Nothing of the bot's environment but what the job's file names.
            .env_clear();
        for name in &job.env.pass {
            if secrets.iter().any(|s| &s.var == name) {
                continue;
            }
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        cmd.envs(&job.env.set);
        for (k, v) in params {
            cmd.env(format!("OPSBOT_PARAM_{}", k.to_ascii_uppercase()), v);
        }
        cmd.env("OPSBOT_RUN", run.to_string());
        // A pushed commit's build: what it builds, as the code loop names it.
        for (k, var) in [
            ("ref", "OPSBOT_REF"),
            ("sha", "OPSBOT_SHA"),
            ("repo", "OPSBOT_REPO"),
        ] {
            if let Some(v) = params.get(k) {
                cmd.env(var, v);
            }
        }
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
        let pid = BackendRef::Local { pid: child.id() };
        let (cancel_tx, cancel_rx) = oneshot::channel();
        self.lock().insert(run, cancel_tx);
        self.count.send_modify(|n| *n += 1);
        self.report(run, RunUpdate::Started { backend_ref: pid })
            .await;
        let margin = secret_values.iter().map(String::len).max().unwrap_or(0);
        let tail = Arc::new(Mutex::new(Tail::new(margin)));
        let out = child
            .stdout
            .take()
            .map(|o| tokio::spawn(drain(o, tail.clone())));
        let err = child
            .stderr
            .take()
            .map(|e| tokio::spawn(drain(e, tail.clone())));
        let me = self.clone();
        // A follower that panics marks the job followers down (readiness).
        let task = self.bot.health().task("job-followers");
        tokio::spawn(async move {
            let _task = task;
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
            let shown: Vec<&str> = secret_values.iter().map(String::as_str).collect();
            let text = tail
                .lock()
                .map(|t| masked_tail(&t.buf, &shown, TAIL_BYTES))
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
            JobOrder::Status { status } => {
                return crate::adapters::forges::status::send(&self.bot, status).await
            }
            JobOrder::DeployCommits {
                run,
                repo,
                from,
                to,
            } => {
                return crate::adapters::forges::mirror::deploy_commits(
                    &self.bot,
                    *run,
                    repo,
                    from.as_deref(),
                    to,
                )
                .await
            }
            JobOrder::Cancel { run } => {
                if let Some(tx) = self.lock().remove(run) {
                    let _ = tx.send(());
                }
            }
        }
        Ok(())
    }
}
/// Jobs that run on Jenkins: triggered through its REST API, followed
/// until they end, followed again after a restart, never triggered twice.
#[derive(Clone)]
pub struct JenkinsRunner {
    bot: Bot,
    client: crate::adapters::jobs::jenkins::JenkinsClient,
    poll: Duration,
    following: Arc<Mutex<HashMap<RunId, oneshot::Sender<()>>>>,
}

/// Where a Jenkins run is, as kept in `Run::backend_ref`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum JenkinsRef {
    Queue(u64),
    Build(u64),
}

fn jenkins_ref(r: &BackendRef) -> Option<JenkinsRef> {
    match r {
        BackendRef::JenkinsQueue(q) => Some(JenkinsRef::Queue(*q)),
        BackendRef::JenkinsBuild { number, .. } => Some(JenkinsRef::Build(*number)),
        _ => None,
    }
}

/// [`jenkins_ref`] of a stored text.
#[cfg(test)]
fn parse_ref(s: &str) -> Option<JenkinsRef> {
    jenkins_ref(&BackendRef::from(s.to_string()))
}

impl JenkinsRunner {
    pub fn new(
        bot: Bot,
        cfg: &crate::config::JenkinsConfig,
    ) -> Result<Self, crate::adapters::jobs::jenkins::JenkinsError> {
        let client = crate::adapters::jobs::jenkins::JenkinsClient::new(
            crate::adapters::jobs::jenkins::JenkinsSettings {
                base_url: cfg.url.clone(),
                user: cfg.user.clone(),
                token: cfg.token.value.as_ref().map(|s| s.expose().to_string()),
                timeout: cfg.timeout,
            },
        )?;
        Ok(Self {
            bot,
            client,
            poll: cfg.poll,
            following: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, oneshot::Sender<()>>> {
        match self.following.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// How many runs are being followed.
    pub fn following(&self) -> usize {
        self.lock().len()
    }

    async fn report(&self, run: RunId, update: RunUpdate) {
        report_run(&self.bot, run, update).await;
    }

    /// Follows again the runs an earlier process had handed to Jenkins.
    pub fn resume(&self) {
        let config = self.bot.engine().config().clone();
        let Ok(store) = self.bot.store() else {
            return;
        };
        let runs = store.runs().filter_map(|r| {
            r.inspect_err(|e| warn!(error = %e, "cannot read a run"))
                .ok()
        });
        for run in runs {
            if run.state.is_final() {
                continue;
            }
            let (Some(r), Some(job)) = (
                run.backend_ref.as_ref().and_then(jenkins_ref),
                config.jobs.get(&run.job),
            ) else {
                continue;
            };
            if let crate::domain::job::Backend::Jenkins(name) = &job.backend {
                // Spread the followers over one slow poll, so a restart
                // with many runs in flight does not poll them in lockstep.
                let offset = spread(run.id, self.poll * 4);
                self.follow_after(run.id, name.clone(), r, offset);
            }
        }
    }

    async fn start(
        &self,
        run: RunId,
        jenkins_job: &str,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), DeliveryError> {
        // Submitted before (an order retried, a restart): follow, never again.
        let known = self
            .bot
            .store()
            .ok()
            .and_then(|s| crate::engine::View::run(&s, run).ok())
            .flatten()
            .and_then(|r| r.backend_ref.as_ref().and_then(jenkins_ref));
        if let Some(r) = known {
            if !self.lock().contains_key(&run) {
                self.follow(run, jenkins_job.to_string(), r);
            }
            return Ok(());
        }
        let mut p: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        p.push(("OPSBOT_RUN".into(), run.to_string()));
        match self.client.trigger(jenkins_job, &p).await {
            Ok(queue) => {
                self.report(
                    run,
                    RunUpdate::Submitted {
                        backend_ref: BackendRef::JenkinsQueue(queue),
                    },
                )
                .await;
                self.follow(run, jenkins_job.to_string(), JenkinsRef::Queue(queue));
                Ok(())
            }
            Err(e) if e.is_transient() => {
                self.report(
                    run,
                    RunUpdate::Waiting {
                        reason: format!("Jenkins is not answering ({e}); retrying"),
                    },
                )
                .await;
                Err(DeliveryError::Transient(e.to_string()))
            }
            Err(e) => {
                self.report(
                    run,
                    RunUpdate::Finished {
                        success: false,
                        reason: e.to_string(),
                        tail: String::new(),
                    },
                )
                .await;
                Ok(())
            }
        }
    }

    fn follow(&self, run: RunId, job: String, from: JenkinsRef) {
        self.follow_after(run, job, from, Duration::ZERO)
    }

    /// Follows a run, the first look after `offset`.
    fn follow_after(&self, run: RunId, job: String, from: JenkinsRef, offset: Duration) {
        let (tx, cancel) = oneshot::channel();
        self.lock().insert(run, tx);
        let me = self.clone();
        let task = self.bot.health().task("job-followers");
        let (queue, number) = match from {
            JenkinsRef::Queue(q) => (q, None),
            JenkinsRef::Build(n) => (0, Some(n)),
        };
        let poll = self.poll;
        let followed = JenkinsRun {
            me: self.clone(),
            run,
            job,
            queue,
            number,
        };
        tokio::spawn(async move {
            let _task = task;
            follow::follow(followed, poll, offset, cancel).await;
            me.lock().remove(&run);
        });
    }

    /// Stops a cancelled run in Jenkins: the build, or the queue item that
    /// would become one.
    async fn abort(&self, run: RunId, job: &str, queue: u64, number: Option<u64>) {
        let res = match number {
            Some(n) => self.client.stop(job, n).await,
            None => self.client.cancel_queue(queue).await,
        };
        if let Err(e) = res {
            warn!(%run, error = %e, "cannot stop the run in Jenkins");
        }
        self.lock().remove(&run);
    }

    fn cancel(&self, run: RunId) {
        if let Some(tx) = self.lock().remove(&run) {
            let _ = tx.send(());
        }
    }
}

/// A Jenkins run being followed: its queue item until it becomes a build,
/// then the build.
struct JenkinsRun {
    me: JenkinsRunner,
    run: RunId,
    job: String,
    queue: u64,
    number: Option<u64>,
}

impl follow::Followed for JenkinsRun {
    type Error = jenkins::JenkinsError;

    async fn look(&mut self) -> Result<follow::Look, jenkins::JenkinsError> {
        let Some(n) = self.number else {
            return Ok(match self.me.client.queue_item(self.queue).await? {
                jenkins::QueueState::Started { number, url } => {
                    self.number = Some(number);
                    self.report(RunUpdate::Started {
                        backend_ref: BackendRef::JenkinsBuild {
                            number,
                            url: Some(url),
                        },
                    })
                    .await;
                    follow::Look::Moved
                }
                jenkins::QueueState::Cancelled => {
                    self.report(RunUpdate::Finished {
                        success: false,
                        reason: "cancelled in Jenkins' queue".into(),
                        tail: String::new(),
                    })
                    .await;
                    follow::Look::Ended
                }
                jenkins::QueueState::Waiting { .. } => follow::Look::Again,
            });
        };
        let b = self.me.client.build(&self.job, n).await?;
        let Some(result) = b.result.filter(|_| !b.building) else {
            return Ok(follow::Look::Again);
        };
        let success = result == jenkins::BuildResult::Success;
        let tail = if success {
            String::new()
        } else {
            let raw = self
                .me
                .client
                .console_tail(&self.job, n, TAIL_BYTES)
                .await
                .unwrap_or_default();
            masked_by_config(&self.me.bot, &raw)
        };
        self.report(RunUpdate::Finished {
            success,
            reason: format!(
                "Jenkins says {result:?} after {:.1} s",
                b.duration_ms as f64 / 1000.0
            ),
            tail,
        })
        .await;
        Ok(follow::Look::Ended)
    }

    fn transient(e: &jenkins::JenkinsError) -> bool {
        e.is_transient()
    }

    fn waiting(e: &jenkins::JenkinsError) -> String {
        format!("Jenkins is not answering ({e}); still following")
    }

    async fn report(&self, update: RunUpdate) {
        report_run(&self.me.bot, self.run, update).await;
    }

    async fn abort(&mut self) {
        self.me
            .abort(self.run, &self.job, self.queue, self.number)
            .await;
    }
}

/// Sends a run's update to the engine; a bot shutting down loses it, and
/// the run is followed again at the next start.
async fn report_run(bot: &Bot, run: RunId, update: RunUpdate) {
    if let Err(e) = bot.submit(Event::RunUpdate { run, update }).await {
        warn!(%run, error = %e, "cannot record a run's progress");
    }
}

/// A run's output tail with every secret of bot.toml masked.
fn masked_by_config(bot: &Bot, raw: &str) -> String {
    masked_by(&bot.config(), raw)
}

/// A run's output tail with every secret of `config` masked.
fn masked_by(config: &crate::config::Config, raw: &str) -> String {
    let secrets: Vec<&str> = config
        .secrets()
        .into_iter()
        .filter_map(|s| s.value.as_ref().map(|v| v.expose()))
        .collect();
    masked_tail(raw.as_bytes(), &secrets, raw.len())
}

/// Job orders to the backend each job names: the local runner or Jenkins.
#[derive(Clone)]
pub struct JobRunner {
    pub local: LocalRunner,
    pub jenkins: Option<JenkinsRunner>,
    /// GitHub Actions and GitLab CI.
    pub forge: forge_ci::ForgeCiRunner,
}

impl JobRunner {
    /// Waits until no job runs, locally or followed on Jenkins, at most
    /// `timeout`; returns whether it got there.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        if !self.local.wait_idle(timeout).await {
            return false;
        }
        while self.forge.following() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(j) = &self.jenkins {
            while j.following() > 0 {
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        true
    }
}

impl Sink for JobRunner {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Effect::Job(order) = &item.effect else {
            return Err(DeliveryError::Permanent("not a job order".into()));
        };
        match order {
            JobOrder::Status { status } => {
                crate::adapters::forges::status::send(&self.local.bot, status).await
            }
            JobOrder::DeployCommits { .. } => self.local.deliver(item).await,
            JobOrder::Start { run, job, params } => {
                let found = self.local.bot.engine().config().jobs.get(job).cloned();
                if let Some(j) = found.as_ref().filter(|j| j.backend.forge().is_some()) {
                    return self.forge.start(*run, j, params).await;
                }
                let backend = found.map(|j| j.backend);
                match (backend, &self.jenkins) {
                    (Some(crate::domain::job::Backend::Jenkins(name)), Some(j)) => {
                        j.start(*run, &name, params).await
                    }
                    (Some(crate::domain::job::Backend::Jenkins(_)), None) => {
                        self.local
                            .report(*run, RunUpdate::Finished {
                                success: false,
                                reason: "this job runs on Jenkins and [ci.jenkins] is not configured".into(),
                                tail: String::new(),
                            })
                            .await;
                        Ok(())
                    }
                    _ => self.local.deliver(item).await,
                }
            }
            JobOrder::Cancel { run } => {
                if let Some(j) = &self.jenkins {
                    j.cancel(*run);
                }
                let job = self
                    .local
                    .bot
                    .store()
                    .ok()
                    .and_then(|s| crate::engine::View::run(&s, *run).ok().flatten())
                    .and_then(|r| self.local.bot.engine().config().jobs.get(&r.job).cloned());
                self.forge.cancel(*run, job.as_ref()).await;
                self.local.deliver(item).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jenkins_refs_round_trip() {
        assert_eq!(parse_ref("jenkins queue 12"), Some(JenkinsRef::Queue(12)));
        assert_eq!(
            parse_ref("jenkins build #7 http://j/job/a/7/"),
            Some(JenkinsRef::Build(7))
        );
        assert_eq!(parse_ref("local pid 3"), None);
    }
}

/// A run's place in `over`, the same for the same run and spread evenly
/// across runs (Fibonacci hashing of its number).
fn spread(run: RunId, over: Duration) -> Duration {
    let ms = over.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    let h = run.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Duration::from_millis(h % ms)
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    #[test]
    fn resumed_followers_spread_over_the_slow_poll() {
        let over = Duration::from_secs(8);
        let offsets: Vec<u64> = (1..=500)
            .map(|n| spread(RunId(n), over).as_millis() as u64)
            .collect();
        assert!(offsets.iter().all(|&o| o < 8000));
        // Each second of the window gets a fair share (no lockstep burst).
        for second in 0..8 {
            let n = offsets.iter().filter(|&&o| o / 1000 == second).count();
            assert!((40..=85).contains(&n), "second {second}: {n} of 500");
        }
        assert_eq!(spread(RunId(7), over), spread(RunId(7), over));
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn secrets_are_masked_also_across_the_cut() {
        let s = ["hunter22", "swordfish"];
        assert_eq!(
            masked_tail(b"a hunter22 b swordfishc", &s, 100),
            "a *** b ***c"
        );
        // Short values are not secrets worth blanking words for.
        assert_eq!(masked_tail(b"abc", &["ab"], 100), "abc");
        // A secret that starts before the kept bytes and ends in them: masked whole.
        assert_eq!(masked_tail(b"xxhunter22 tail", &s, 8), "*** tail");
        // A secret cut at the start of the buffer shows nothing of itself.
        assert_eq!(masked_tail(b"nter22 tail end", &s, 8), "tail end");
        assert_eq!(masked_tail(b"0123456789", &s, 4), "6789");
    }

    #[test]
    fn the_tail_keeps_a_margin_for_the_longest_secret() {
        let mut t = Tail::new(9);
        let mut out = vec![b'.'; TAIL_BYTES];
        out.splice(TAIL_BYTES - 4..TAIL_BYTES - 4, *b"swordfish");
        for chunk in out.chunks(1000) {
            t.push(chunk);
        }
        let shown = masked_tail(&t.buf, &["swordfish"], TAIL_BYTES);
        assert!(!shown.contains("fish"), "{}", &shown[shown.len() - 20..]);
        assert!(
            shown.ends_with("...***...."),
            "{}",
            &shown[shown.len() - 20..]
        );
    }
}
