//! The forges' own CI as job backends: GitHub Actions (a workflow started
//! by `workflow_dispatch`) and GitLab CI (a pipeline started by the
//! pipeline trigger API), followed until they end, the failed job's log
//! tail read, cancelled on `/build cancel`, followed again after a
//! restart, never started twice. Plain `reqwest`, with the repository's
//! API token; the tests point it at a fake forge that speaks the same wire
//! protocol (`tests/it/fake_forge.rs`).
//!
//! What the forges do that callers should know:
//!
//! - GitHub's dispatch answers `204 No Content` and no run id: the run it
//!   started is found by listing the workflow's `workflow_dispatch` runs on
//!   the ref, by the bot's run id in its name (the job's `id_input`, shown by
//!   the workflow's `run-name`), or else as the newest run created since the
//!   dispatch;
//! - GitHub's job log is a `302` to a short-lived URL on another host,
//!   fetched without the token;
//! - GitLab's trigger answers `201` with the pipeline it created.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::{follow, masked_by, masked_by_config, report_run, spread, TAIL_BYTES};
use crate::domain::job::{fill, Backend, ForgeJob, Job};
use crate::domain::run::{BackendRef, RunId, RunState, RunUpdate};
use crate::runtime::{Bot, DeliveryError};

/// Each request, from connecting to the last byte of the answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Which forge's CI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Github,
    Gitlab,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Github => "GitHub",
            Kind::Gitlab => "GitLab",
        }
    }
}

/// What went wrong talking to a forge's CI; callers branch on the kind
/// (retry a transient error, report the others).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiError {
    #[error("{0} refused the token (HTTP {1}): check the repository's token_env (GitHub: a token that may write actions; GitLab: the api scope) or the trigger token")]
    Refused(&'static str, u16),
    /// What was not found: "workflow `ci.yml` of acme/web", ….
    #[error("{0} has no {1} (404)")]
    NotFound(&'static str, String),
    /// The forge's own words, cut.
    #[error("{0} refused the request (HTTP {1}): {2}")]
    Invalid(&'static str, u16, String),
    #[error("{0} failed with HTTP {1} (a problem on its side, or a rate limit)")]
    Server(&'static str, u16),
    #[error("cannot reach {0}: {1}")]
    Unreachable(&'static str, String),
    #[error("{0} answered something unexpected: {1}")]
    Protocol(&'static str, String),
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
}

impl CiError {
    /// Whether trying again later may work: the forge is down, slow,
    /// failing or rate limiting.
    pub fn is_transient(&self) -> bool {
        matches!(self, CiError::Server(..) | CiError::Unreachable(..))
    }
}

/// A workflow run or a pipeline, as the forge reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiRun {
    pub id: u64,
    pub state: CiState,
    /// The forge's word (`in_progress`, `failure`, `running`, …).
    pub word: String,
    pub url: Option<String>,
    /// GitHub: the run's `display_title` or `name`.
    pub title: String,
    /// Unix seconds, when the forge said.
    pub created_at: Option<i64>,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiState {
    Queued,
    Running,
    Done { success: bool },
}

/// GitHub's `status` and `conclusion` of a workflow run.
pub fn github_state(status: &str, conclusion: Option<&str>) -> CiState {
    match status {
        "completed" => CiState::Done {
            success: matches!(conclusion, Some("success" | "neutral" | "skipped")),
        },
        "in_progress" => CiState::Running,
        _ => CiState::Queued,
    }
}

/// GitLab's `status` of a pipeline.
pub fn gitlab_state(status: &str) -> CiState {
    match status {
        "success" | "skipped" => CiState::Done { success: true },
        "failed" | "canceled" => CiState::Done { success: false },
        "running" => CiState::Running,
        _ => CiState::Queued,
    }
}

fn unix(s: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.timestamp())
}

/// Percent-encodes one path segment or query value.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `title` names `run` as a word of its own (`RUN-7`, not `RUN-71`).
pub fn names_run(title: &str, run: RunId) -> bool {
    let want = run.to_string();
    title
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .any(|w| w == want)
}

/// The end of a log, without GitHub's timestamp at the start of each line.
fn log_tail(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|l| {
            let l = l.strip_prefix('\u{feff}').unwrap_or(l);
            match l.split_once(' ') {
                Some((ts, rest))
                    if ts.len() >= 20
                        && ts.ends_with('Z')
                        && ts.as_bytes().first().is_some_and(u8::is_ascii_digit)
                        && ts.contains('T') =>
                {
                    rest
                }
                _ => l,
            }
        })
        .collect();
    let text = lines.join("\n");
    crate::adapters::jobs::jenkins::tail(&text, TAIL_BYTES).to_string()
}

/// A client of one repository's CI on its forge.
#[derive(Clone)]
pub struct CiClient {
    http: reqwest::Client,
    kind: Kind,
    /// The API base, without the trailing `/`.
    api: String,
    /// `owner/name` (GitLab: the project's path).
    path: String,
    token: Option<String>,
}

impl std::fmt::Debug for CiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiClient")
            .field("kind", &self.kind)
            .field("api", &self.api)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawGhRun {
    id: u64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl From<RawGhRun> for CiRun {
    fn from(r: RawGhRun) -> CiRun {
        let status = r.status.unwrap_or_default();
        CiRun {
            id: r.id,
            state: github_state(&status, r.conclusion.as_deref()),
            word: r.conclusion.unwrap_or(status),
            url: r.html_url,
            title: r.display_title.or(r.name).unwrap_or_default(),
            created_at: unix(r.created_at.as_deref()),
        }
    }
}

#[derive(Deserialize)]
struct RawGhRuns {
    workflow_runs: Vec<RawGhRun>,
}

#[derive(Deserialize)]
struct RawGhJobs {
    jobs: Vec<RawJob>,
}

#[derive(Deserialize)]
struct RawJob {
    id: u64,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawPipeline {
    id: u64,
    status: String,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl From<RawPipeline> for CiRun {
    fn from(p: RawPipeline) -> CiRun {
        CiRun {
            id: p.id,
            state: gitlab_state(&p.status),
            word: p.status,
            url: p.web_url,
            title: String::new(),
            created_at: unix(p.created_at.as_deref()),
        }
    }
}

impl CiClient {
    /// A client of `api` (`https://api.github.com`, `https://gitlab.example.com/api/v4`)
    /// for the repository at `path`, with its token.
    pub fn new(
        kind: Kind,
        api: &str,
        path: &str,
        token: Option<String>,
    ) -> Result<CiClient, CiError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirect is followed by hand: a log's URL is on another
            // host and takes no token.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opsbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(CiClient {
            http,
            kind,
            api: api.trim_end_matches('/').to_string(),
            path: path.to_string(),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        let req = match self.kind {
            Kind::Github => req
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            Kind::Gitlab => req,
        };
        match (&self.token, self.kind) {
            (Some(t), Kind::Github) => req.bearer_auth(t),
            (Some(t), Kind::Gitlab) => req.header("PRIVATE-TOKEN", t),
            (None, _) => req,
        }
    }

    fn net_error(&self, e: reqwest::Error) -> CiError {
        let why = if e.is_timeout() {
            "no answer in time".to_string()
        } else {
            e.without_url().to_string()
        };
        CiError::Unreachable(self.name(), format!("{}: {why}", self.api))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, CiError> {
        req.send().await.map_err(|e| self.net_error(e))
    }

    /// The error for an answer that is not a success.
    async fn refusal(&self, resp: reqwest::Response, what: &str) -> CiError {
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let said = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error"))
                    .map(|m| match m {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
            })
            .unwrap_or(text);
        let said = crate::domain::rich::clip_plain(said.trim(), 200);
        match code {
            401 | 403 if !said.to_ascii_lowercase().contains("rate limit") => {
                CiError::Refused(self.name(), code)
            }
            404 => CiError::NotFound(self.name(), what.to_string()),
            403 | 429 | 500..=599 => CiError::Server(self.name(), code),
            _ => CiError::Invalid(self.name(), code, said),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<T, CiError> {
        debug!(url, "forge CI request");
        let resp = self.send(self.request(reqwest::Method::GET, url)).await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp, what).await);
        }
        let body = resp.bytes().await.map_err(|e| self.net_error(e))?;
        serde_json::from_slice(&body).map_err(|e| {
            CiError::Protocol(
                self.name(),
                format!("the answer about {what} is not the JSON expected: {e}"),
            )
        })
    }

    fn repo_base(&self) -> String {
        match self.kind {
            Kind::Github => format!("{}/repos/{}", self.api, self.path),
            Kind::Gitlab => format!("{}/projects/{}", self.api, segment(&self.path)),
        }
    }

    /// GitHub: starts `workflow` on `git_ref` with `inputs`.
    pub async fn dispatch(
        &self,
        workflow: &str,
        git_ref: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<(), CiError> {
        let url = format!(
            "{}/actions/workflows/{}/dispatches",
            self.repo_base(),
            segment(workflow)
        );
        let body = if inputs.is_empty() {
            json!({ "ref": git_ref })
        } else {
            json!({ "ref": git_ref, "inputs": inputs })
        };
        let resp = self
            .send(self.request(reqwest::Method::POST, &url).json(&body))
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self
            .refusal(resp, &format!("workflow `{workflow}` in {}", self.path))
            .await)
    }

    /// GitHub: the newest `workflow_dispatch` runs of `workflow` on `branch`.
    pub async fn dispatched_runs(
        &self,
        workflow: &str,
        branch: &str,
    ) -> Result<Vec<CiRun>, CiError> {
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let url = format!(
            "{}/actions/workflows/{}/runs?event=workflow_dispatch&branch={}&per_page=30",
            self.repo_base(),
            segment(workflow),
            segment(branch)
        );
        let raw: RawGhRuns = self
            .get_json(&url, &format!("workflow `{workflow}` in {}", self.path))
            .await?;
        Ok(raw.workflow_runs.into_iter().map(CiRun::from).collect())
    }

    /// Run (GitHub) or pipeline (GitLab) `id`.
    pub async fn run(&self, id: u64) -> Result<CiRun, CiError> {
        match self.kind {
            Kind::Github => {
                let url = format!("{}/actions/runs/{id}", self.repo_base());
                let raw: RawGhRun = self
                    .get_json(&url, &format!("workflow run {id} in {}", self.path))
                    .await?;
                Ok(raw.into())
            }
            Kind::Gitlab => {
                let url = format!("{}/pipelines/{id}", self.repo_base());
                let raw: RawPipeline = self
                    .get_json(&url, &format!("pipeline {id} in {}", self.path))
                    .await?;
                Ok(raw.into())
            }
        }
    }

    /// GitLab: triggers a pipeline on `git_ref` with `variables`, with a
    /// pipeline trigger token.
    pub async fn trigger(
        &self,
        trigger_token: &str,
        git_ref: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<CiRun, CiError> {
        let url = format!("{}/trigger/pipeline", self.repo_base());
        let mut form: Vec<(String, String)> = vec![
            ("token".into(), trigger_token.to_string()),
            ("ref".into(), git_ref.to_string()),
        ];
        for (k, v) in variables {
            form.push((format!("variables[{k}]"), v.clone()));
        }
        // The trigger token is the credential here, not the API token.
        let resp = self.send(self.http.post(&url).form(&form)).await?;
        if !resp.status().is_success() {
            return Err(self
                .refusal(
                    resp,
                    &format!(
                        "project {} with a trigger of that token (check trigger_token_env)",
                        self.path
                    ),
                )
                .await);
        }
        let body = resp.bytes().await.map_err(|e| self.net_error(e))?;
        let raw: RawPipeline = serde_json::from_slice(&body).map_err(|e| {
            CiError::Protocol(
                self.name(),
                format!("the trigger's answer is not a pipeline: {e}"),
            )
        })?;
        Ok(raw.into())
    }

    /// The end of the log of the run's first failed job, when there is one.
    pub async fn failed_tail(&self, id: u64) -> Result<String, CiError> {
        let jobs: Vec<RawJob> = match self.kind {
            Kind::Github => {
                let url = format!("{}/actions/runs/{id}/jobs?filter=latest", self.repo_base());
                let raw: RawGhJobs = self
                    .get_json(&url, &format!("the jobs of run {id}"))
                    .await?;
                raw.jobs
            }
            Kind::Gitlab => {
                let url = format!("{}/pipelines/{id}/jobs?scope[]=failed", self.repo_base());
                self.get_json(&url, &format!("the jobs of pipeline {id}"))
                    .await?
            }
        };
        let failed = jobs.iter().find(|j| {
            matches!(
                j.conclusion.as_deref().or(j.status.as_deref()),
                Some("failure" | "failed" | "timed_out")
            )
        });
        let Some(job) = failed else {
            return Ok(String::new());
        };
        let (url, what) = match self.kind {
            Kind::Github => (
                format!("{}/actions/jobs/{}/logs", self.repo_base(), job.id),
                format!("the log of job {}", job.id),
            ),
            Kind::Gitlab => (
                format!("{}/jobs/{}/trace", self.repo_base(), job.id),
                format!("the trace of job {}", job.id),
            ),
        };
        let mut resp = self.send(self.request(reqwest::Method::GET, &url)).await?;
        if resp.status().is_redirection() {
            let Some(to) = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
            else {
                return Err(CiError::Protocol(
                    self.name(),
                    format!("{what}: a redirect without Location"),
                ));
            };
            // A signed URL: no token goes with it.
            resp = self.send(self.http.get(&to)).await?;
        }
        if !resp.status().is_success() {
            return Err(self.refusal(resp, &what).await);
        }
        let bytes = resp.bytes().await.map_err(|e| self.net_error(e))?;
        let keep = bytes.len().saturating_sub(TAIL_BYTES.saturating_mul(2));
        Ok(log_tail(&String::from_utf8_lossy(&bytes[keep..])))
    }

    /// Cancels run (GitHub) or pipeline (GitLab) `id`; one that has ended
    /// already is no error.
    pub async fn cancel(&self, id: u64) -> Result<(), CiError> {
        let url = match self.kind {
            Kind::Github => format!("{}/actions/runs/{id}/cancel", self.repo_base()),
            Kind::Gitlab => format!("{}/pipelines/{id}/cancel", self.repo_base()),
        };
        let resp = self.send(self.request(reqwest::Method::POST, &url)).await?;
        if resp.status().is_success() || resp.status() == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(self.refusal(resp, &format!("run {id}")).await)
    }
}

/// How long a hook waits for a failed run's log (the forge waits ten
/// seconds for the hook's answer).
const HOOK_TAIL_WAIT: Duration = Duration::from_secs(4);

/// The failed job's log tail of a run a forge reported by webhook, when
/// the repository has an API token and the forge answers in time; else
/// nothing. Masked like every tail.
pub async fn hook_tail(
    config: &crate::config::Config,
    repo: &crate::config::repos::RepoConfig,
    run: &crate::domain::ci::ForgeRun,
) -> String {
    let kind = match repo.provider {
        crate::domain::code::Provider::Github => Kind::Github,
        crate::domain::code::Provider::Gitlab => Kind::Gitlab,
        _ => return String::new(),
    };
    let (Some(api), Some(path), Some(token)) = (
        repo.api_url.as_deref(),
        repo.path(),
        repo.token.as_ref().and_then(|t| t.value.as_ref()),
    ) else {
        return String::new();
    };
    let Ok(client) = CiClient::new(kind, api, &path, Some(token.expose().to_string())) else {
        return String::new();
    };
    let raw = match tokio::time::timeout(HOOK_TAIL_WAIT, client.failed_tail(run.id)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            debug!(error = %e, "no log tail for the hook's run");
            return String::new();
        }
        Err(_) => return String::new(),
    };
    masked_by(config, &raw)
}

/// Where a forge CI run is, as kept in `Run::backend_ref`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    /// GitHub: dispatched at this Unix time, the run not found yet.
    Dispatched(i64),
    Run(u64),
}

fn where_of(r: &BackendRef) -> Option<Where> {
    match r {
        BackendRef::GithubDispatch { at } => Some(Where::Dispatched(*at)),
        BackendRef::GithubRun { id, .. } | BackendRef::GitlabPipeline { id, .. } => {
            Some(Where::Run(*id))
        }
        _ => None,
    }
}

fn kind_of(job: &Job) -> Option<(Kind, &ForgeJob)> {
    match &job.backend {
        Backend::GithubActions(f) => Some((Kind::Github, f)),
        Backend::GitlabCi(f) => Some((Kind::Gitlab, f)),
        _ => None,
    }
}

fn run_ref(kind: Kind, run: &CiRun) -> BackendRef {
    match kind {
        Kind::Github => BackendRef::GithubRun {
            id: run.id,
            url: run.url.clone(),
        },
        Kind::Gitlab => BackendRef::GitlabPipeline {
            id: run.id,
            url: run.url.clone(),
        },
    }
}

/// The run a dispatch at `at` started: the one whose name carries the run
/// id (`id_input`), or else the newest created since (GitHub's clock, to
/// the second).
async fn find_dispatched(
    client: &CiClient,
    f: &ForgeJob,
    git_ref: &str,
    run: RunId,
    at: i64,
) -> Result<Option<CiRun>, CiError> {
    let runs = client.dispatched_runs(&f.workflow, git_ref).await?;
    Ok(match &f.id_input {
        Some(_) => runs.into_iter().find(|r| names_run(&r.title, run)),
        None => runs
            .into_iter()
            .filter(|r| r.created_at.is_some_and(|c| c >= at.saturating_sub(5)))
            .max_by_key(|r| (r.created_at, r.id)),
    })
}

/// Jobs that run on GitHub Actions or GitLab CI.
#[derive(Clone)]
pub struct ForgeCiRunner {
    bot: Bot,
    following: Arc<Mutex<HashMap<RunId, oneshot::Sender<()>>>>,
}

impl ForgeCiRunner {
    pub fn new(bot: Bot) -> Self {
        bot.health().group("job-followers");
        Self {
            bot,
            following: Arc::new(Mutex::new(HashMap::new())),
        }
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

    /// The client of the job's repository, as bot.toml says now.
    fn client(&self, kind: Kind, f: &ForgeJob) -> Result<CiClient, CiError> {
        let config = self.bot.config();
        let Some(repo) = config.repos.get(&f.repo) else {
            return Err(CiError::Config(format!(
                "the repository {} is no longer in bot.toml",
                f.repo
            )));
        };
        let (Some(api), Some(path)) = (repo.api_url.as_deref(), repo.path()) else {
            return Err(CiError::Config(format!(
                "[repos.{}] has no API URL or owner/name in its url",
                f.repo
            )));
        };
        let token = repo
            .token
            .as_ref()
            .and_then(|t| t.value.as_ref())
            .map(|s| s.expose().to_string());
        CiClient::new(kind, api, &path, token)
    }

    fn known(&self, run: RunId) -> Option<(BackendRef, RunState)> {
        let r = self.record(run)?;
        Some((r.backend_ref?, r.state))
    }

    fn record(&self, run: RunId) -> Option<crate::domain::run::Run> {
        let store = self.bot.store().ok()?;
        crate::engine::View::run(&store, run).ok()?
    }

    /// Follows again the runs an earlier process had started on a forge.
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
            let (Some(at), Some(job)) = (
                run.backend_ref.as_ref().and_then(where_of),
                config.jobs.get(&run.job),
            ) else {
                continue;
            };
            if kind_of(job).is_some() {
                let poll = job
                    .backend
                    .forge()
                    .map_or(Duration::from_secs(10), |f| f.poll);
                let offset = spread(run.id, poll * 4);
                self.follow(
                    run.id,
                    job.clone(),
                    run.params.clone(),
                    at,
                    run.state == RunState::Running,
                    offset,
                );
            }
        }
    }

    /// Starts a run of `job` on its forge, unless it was started before
    /// (an order retried, a restart): then it is followed, never again.
    pub async fn start(
        &self,
        run: RunId,
        job: &Job,
        params: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError> {
        let Some((kind, f)) = kind_of(job) else {
            return Ok(());
        };
        // Cancelled before its order came: nothing to start.
        if self.record(run).is_some_and(|r| r.state.is_final()) {
            return Ok(());
        }
        if let Some((r, state)) = self.known(run) {
            if let Some(at) = where_of(&r) {
                if !self.lock().contains_key(&run) {
                    self.follow(
                        run,
                        job.clone(),
                        params.clone(),
                        at,
                        state == RunState::Running,
                        Duration::ZERO,
                    );
                }
                return Ok(());
            }
        }
        let client = match self.client(kind, f) {
            Ok(c) => c,
            Err(e) => return self.fail(run, e).await,
        };
        let git_ref = fill(&f.git_ref, params);
        let mut inputs: BTreeMap<String, String> = f
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, params)))
            .collect();
        let res = match kind {
            Kind::Github => {
                if let Some(id_input) = &f.id_input {
                    inputs.insert(id_input.clone(), run.to_string());
                    // Dispatched before the bot could say so (a crash just
                    // after): the run carries the id; follow it.
                    if let Ok(runs) = client.dispatched_runs(&f.workflow, &git_ref).await {
                        if let Some(found) = runs.into_iter().find(|r| names_run(&r.title, run)) {
                            self.found(run, kind, &found).await;
                            let started = found.state == CiState::Running;
                            self.follow(
                                run,
                                job.clone(),
                                params.clone(),
                                Where::Run(found.id),
                                started,
                                Duration::ZERO,
                            );
                            return Ok(());
                        }
                    }
                }
                let at = chrono::Utc::now().timestamp();
                client
                    .dispatch(&f.workflow, &git_ref, &inputs)
                    .await
                    .map(|()| Where::Dispatched(at))
            }
            Kind::Gitlab => {
                let config = self.bot.config();
                let token = f
                    .trigger_token_env
                    .as_deref()
                    .and_then(|v| config.trigger_tokens.iter().find(|t| t.var == v))
                    .and_then(|t| t.value.as_ref())
                    .map(|s| s.expose().to_string())
                    .filter(|t| !t.is_empty());
                match token {
                    None => Err(CiError::Config(format!(
                        "{} is not set: the pipeline cannot be triggered",
                        f.trigger_token_env
                            .as_deref()
                            .unwrap_or("trigger_token_env")
                    ))),
                    Some(token) => match client.trigger(&token, &git_ref, &inputs).await {
                        Ok(p) => {
                            self.found(run, kind, &p).await;
                            Ok(Where::Run(p.id))
                        }
                        Err(e) => Err(e),
                    },
                }
            }
        };
        match res {
            Ok(at) => {
                if let Where::Dispatched(t) = at {
                    self.report(
                        run,
                        RunUpdate::Submitted {
                            backend_ref: BackendRef::GithubDispatch { at: t },
                        },
                    )
                    .await;
                }
                self.follow(run, job.clone(), params.clone(), at, false, Duration::ZERO);
                Ok(())
            }
            Err(e) if e.is_transient() => {
                self.report(
                    run,
                    RunUpdate::Waiting {
                        reason: format!("{e}; retrying"),
                    },
                )
                .await;
                Err(DeliveryError::Transient(e.to_string()))
            }
            Err(e) => self.fail(run, e).await,
        }
    }

    async fn fail(&self, run: RunId, e: CiError) -> Result<(), DeliveryError> {
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

    /// Says where the run is, once found: queued or running there.
    async fn found(&self, run: RunId, kind: Kind, r: &CiRun) {
        let backend_ref = run_ref(kind, r);
        let update = match r.state {
            CiState::Queued => RunUpdate::Submitted { backend_ref },
            _ => RunUpdate::Started { backend_ref },
        };
        self.report(run, update).await;
    }

    /// Follows a run, the first look after `offset`.
    fn follow(
        &self,
        run: RunId,
        job: Job,
        params: BTreeMap<String, String>,
        from: Where,
        started: bool,
        offset: Duration,
    ) {
        let Some((kind, f)) = kind_of(&job).map(|(k, f)| (k, f.clone())) else {
            return;
        };
        let (tx, cancel) = oneshot::channel();
        self.lock().insert(run, tx);
        let me = self.clone();
        let task = self.bot.health().task("job-followers");
        let poll = f.poll;
        let followed = CiFollowed {
            me: self.clone(),
            run,
            kind,
            git_ref: fill(&f.git_ref, &params),
            f,
            timeout: job.timeout,
            at: from,
            started,
        };
        tokio::spawn(async move {
            let _task = task;
            follow::follow(followed, poll, offset, cancel).await;
            me.lock().remove(&run);
        });
    }

    /// Cancels a run on its forge (a dispatched run not found yet is
    /// looked for once more).
    async fn abort(&self, run: RunId, kind: Kind, f: &ForgeJob, git_ref: &str, at: Where) {
        let res = async {
            let client = self.client(kind, f)?;
            let id = match at {
                Where::Run(id) => Some(id),
                // Dispatched, not listed yet: GitHub lists it within
                // seconds; looked for a few times.
                Where::Dispatched(t) => {
                    let mut id = None;
                    for _ in 0..5 {
                        if let Some(r) = find_dispatched(&client, f, git_ref, run, t).await? {
                            id = Some(r.id);
                            break;
                        }
                        tokio::time::sleep(f.poll.min(Duration::from_secs(2))).await;
                    }
                    id
                }
            };
            match id {
                Some(id) => client.cancel(id).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = res {
            warn!(%run, error = %e, "cannot cancel the run on the forge");
        }
        self.lock().remove(&run);
    }

    /// `/build cancel`: the follower stops the run; a run nobody follows
    /// (its follower ended) is cancelled from its record.
    pub async fn cancel(&self, run: RunId, job: Option<&Job>) {
        // The follower stays counted until the forge has been told (a
        // console at its end waits for that).
        let signal = self.lock().get_mut(&run).map(|tx| {
            let (spent, _) = oneshot::channel();
            std::mem::replace(tx, spent)
        });
        if let Some(tx) = signal {
            let _ = tx.send(());
            return;
        }
        let (Some((kind, f)), Some(record)) = (job.and_then(kind_of), self.record(run)) else {
            return;
        };
        if let Some(at) = record.backend_ref.as_ref().and_then(where_of) {
            let git_ref = fill(&f.git_ref, &record.params);
            let f = f.clone();
            self.abort(run, kind, &f, &git_ref, at).await;
        }
    }
}

/// A forge's run being followed: looked for until the forge lists it
/// (dispatched), then looked at.
struct CiFollowed {
    me: ForgeCiRunner,
    run: RunId,
    kind: Kind,
    f: ForgeJob,
    git_ref: String,
    /// The job's timeout: how long a dispatched run is looked for.
    timeout: Duration,
    at: Where,
    started: bool,
}

impl follow::Followed for CiFollowed {
    type Error = CiError;

    async fn look(&mut self) -> Result<follow::Look, CiError> {
        let client = self.me.client(self.kind, &self.f)?;
        let id = match self.at {
            Where::Dispatched(t) => {
                return match find_dispatched(&client, &self.f, &self.git_ref, self.run, t).await? {
                    Some(r) => {
                        self.at = Where::Run(r.id);
                        self.me.found(self.run, self.kind, &r).await;
                        self.started = r.state != CiState::Queued;
                        Ok(follow::Look::Moved)
                    }
                    // Not listed yet; GitHub lists a dispatched run
                    // within seconds.
                    None => {
                        let waited = chrono::Utc::now().timestamp().saturating_sub(t);
                        let limit = i64::try_from(self.timeout.as_secs()).unwrap_or(i64::MAX);
                        if waited <= limit {
                            return Ok(follow::Look::Again);
                        }
                        self.report(RunUpdate::Finished {
                            success: false,
                            reason: format!(
                                "GitHub never listed the run of {} dispatched on {}; is `{}` its workflow_dispatch input and in its run-name?",
                                self.f.workflow,
                                self.git_ref,
                                self.f.id_input.as_deref().unwrap_or("id_input")
                            ),
                            tail: String::new(),
                        })
                        .await;
                        Ok(follow::Look::Ended)
                    }
                };
            }
            Where::Run(id) => id,
        };
        let r = client.run(id).await?;
        match r.state {
            CiState::Queued => {}
            CiState::Running if self.started => {}
            CiState::Running => {
                self.started = true;
                self.report(RunUpdate::Started {
                    backend_ref: run_ref(self.kind, &r),
                })
                .await;
            }
            CiState::Done { success } => {
                let raw = if success {
                    String::new()
                } else {
                    client.failed_tail(id).await.unwrap_or_default()
                };
                let what = match self.kind {
                    Kind::Github => "GitHub Actions",
                    Kind::Gitlab => "GitLab CI",
                };
                self.report(RunUpdate::Finished {
                    success,
                    reason: format!("{what} says {}", r.word),
                    tail: masked_by_config(&self.me.bot, &raw),
                })
                .await;
                return Ok(follow::Look::Ended);
            }
        }
        Ok(follow::Look::Again)
    }

    fn transient(e: &CiError) -> bool {
        e.is_transient()
    }

    fn waiting(e: &CiError) -> String {
        format!("{e}; still following")
    }

    async fn report(&self, update: RunUpdate) {
        report_run(&self.me.bot, self.run, update).await;
    }

    async fn abort(&mut self) {
        self.me
            .abort(self.run, self.kind, &self.f, &self.git_ref, self.at)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_names() {
        assert_eq!(github_state("queued", None), CiState::Queued);
        assert_eq!(github_state("waiting", None), CiState::Queued);
        assert_eq!(github_state("in_progress", None), CiState::Running);
        assert_eq!(
            github_state("completed", Some("failure")),
            CiState::Done { success: false }
        );
        assert_eq!(
            github_state("completed", Some("success")),
            CiState::Done { success: true }
        );
        assert_eq!(gitlab_state("manual"), CiState::Queued);
        assert_eq!(gitlab_state("running"), CiState::Running);
        assert_eq!(gitlab_state("canceled"), CiState::Done { success: false });
        assert!(names_run("web CI · RUN-7", RunId(7)));
        assert!(!names_run("web CI · RUN-71", RunId(7)));
        assert!(!names_run("XRUN-7", RunId(7)));
        assert_eq!(segment("group/sub proj"), "group%2Fsub%20proj");
    }

    #[test]
    fn github_log_lines_lose_their_timestamps() {
        let raw = "\u{feff}2026-12-02T13:00:00.1234567Z ##[group]Run cargo test\n2026-12-02T13:00:01.0000000Z error[E0308]: mismatched types\nplain line\n";
        assert_eq!(
            log_tail(raw),
            "##[group]Run cargo test\nerror[E0308]: mismatched types\nplain line"
        );
    }
}
