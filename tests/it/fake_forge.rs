//! A fake of the forges' commit-status APIs, strict like the Jenkins fake:
//! GitHub `POST /repos/{owner}/{repo}/statuses/{sha}` (a `Bearer` or
//! `token` Authorization, a User-Agent, `state` one of error, failure,
//! pending, success), GitLab `POST /api/v4/projects/{id}/statuses/{sha}`
//! (`PRIVATE-TOKEN`, the project's path encoded as one segment, `state` one
//! of pending, running, success, failed, canceled), Gitea `POST
//! /api/v1/repos/{owner}/{repo}/statuses/{sha}` (`token` Authorization,
//! `state` one of pending, success, error, failure, warning). Each wants a
//! JSON body and a 40-hex sha, answers 201 with the status, 401 for a wrong
//! token and 404 for a repository it does not have. A request the real API
//! would refuse is recorded as unexpected, and a fake dropped with
//! unexpected requests fails the test.
//!
//! It also runs CI (see [`ci`]): GitHub Actions' `workflow_dispatch`, its
//! runs, their jobs and logs, and cancel; GitLab's pipeline trigger, its
//! pipelines, their jobs and traces, and cancel, each refusing what the
//! real API refuses (a wrong token, an unknown workflow or project, a ref
//! that does not exist, a body of the wrong shape).

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A status the fake took: forge, repository path, sha, state, context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub forge: &'static str,
    pub repo: String,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: String,
}

#[derive(Default)]
struct Model {
    base: String,
    token: String,
    repos: Vec<String>,
    taken: Vec<Taken>,
    refused: usize,
    unexpected: Vec<String>,
    ci: ci::Ci,
}

pub struct FakeForge {
    pub base: String,
    model: Arc<Mutex<Model>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeForge {
    /// A forge that knows `repos` (`owner/name`) and takes `token`.
    pub fn start(token: &str, repos: &[&str]) -> FakeForge {
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", std_listener.local_addr().unwrap());
        let model = Arc::new(Mutex::new(Model {
            base: base.clone(),
            token: token.into(),
            repos: repos.iter().map(|r| r.to_string()).collect(),
            ..Model::default()
        }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = model.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new().fallback(handle).with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
        });
        FakeForge {
            base,
            model,
            stop: Some(stop_tx),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The statuses taken, in order.
    pub fn taken(&self) -> Vec<Taken> {
        self.lock().taken.clone()
    }

    /// How many requests were refused for their credentials or repository.
    pub fn refused(&self) -> usize {
        self.lock().refused
    }

    /// From now on, takes this token only.
    pub fn set_token(&self, token: &str) {
        self.lock().token = token.into();
    }

    /// The requests the real APIs refuse, taken (for a test that makes
    /// them on purpose).
    pub fn take_unexpected(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().unexpected)
    }

    /// GitHub: `repo` has `.github/workflows/{file}` with a
    /// `workflow_dispatch` trigger taking `inputs`; each run is queued for
    /// a moment, runs `duration`, and ends with `conclusion` (`success`,
    /// `failure`), its failing job's log `log`. `title_input`: the input
    /// its `run-name` shows.
    #[allow(clippy::too_many_arguments)]
    pub fn set_workflow(
        &self,
        repo: &str,
        file: &str,
        inputs: &[&str],
        title_input: Option<&str>,
        conclusion: &str,
        duration: Duration,
        log: &str,
    ) {
        self.lock().ci.workflows.insert(
            (repo.to_string(), file.to_string()),
            ci::Workflow {
                name: file.trim_end_matches(".yml").to_string(),
                inputs: inputs.iter().map(|i| i.to_string()).collect(),
                title_input: title_input.map(str::to_string),
                conclusion: conclusion.to_string(),
                duration,
                log: log.to_string(),
            },
        );
    }

    /// GitLab: `project` takes pipeline triggers with `trigger_token`; each
    /// pipeline runs `duration` and ends `status` (`success`, `failed`),
    /// its failed job's trace `log`.
    pub fn set_pipeline(
        &self,
        project: &str,
        trigger_token: &str,
        status: &str,
        duration: Duration,
        log: &str,
    ) {
        self.lock().ci.projects.insert(
            project.to_string(),
            ci::Project {
                trigger_token: trigger_token.to_string(),
                status: status.to_string(),
                duration,
                log: log.to_string(),
            },
        );
    }

    /// The branches (and tags) that exist in `repo` (default: `main`).
    pub fn set_refs(&self, repo: &str, refs: &[&str]) {
        self.lock().ci.refs.insert(
            repo.to_string(),
            refs.iter().map(|r| r.to_string()).collect(),
        );
    }

    /// GitHub ran `workflow` of `repo` on its own (a push, say), and it has
    /// ended with `conclusion`, its job's log `log`: the run's id.
    pub fn add_run(&self, repo: &str, workflow: &str, conclusion: &str, log: &str) -> u64 {
        let mut m = self.lock();
        let id = 30_000_000 + m.ci.runs.len() as u64 + 1;
        let at = std::time::Instant::now()
            .checked_sub(Duration::from_secs(60))
            .unwrap_or_else(std::time::Instant::now);
        m.ci.runs
            .push(ci::FakeRun::ended(id, repo, workflow, conclusion, log, at));
        id
    }

    /// The workflow runs dispatched and the pipelines triggered, in order.
    pub fn ci_runs(&self) -> Vec<ci::Started> {
        self.lock()
            .ci
            .runs
            .iter()
            .map(|r| r.started.clone())
            .collect()
    }

    /// How many requests were `METHOD /path` (query ignored).
    pub fn count(&self, method_and_path: &str) -> usize {
        self.lock()
            .ci
            .requests
            .iter()
            .filter(|r| r.split('?').next() == Some(method_and_path))
            .count()
    }

    /// The next `n` CI requests are answered `code` (an outage).
    pub fn fail_next(&self, code: u16, n: usize) {
        self.lock().ci.fail_next = Some((code, n));
    }

    /// Every CI request, in order (`METHOD /path?query`).
    pub fn ci_requests(&self) -> Vec<String> {
        self.lock().ci.requests.clone()
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let unexpected = self.lock().unexpected.clone();
        if !unexpected.is_empty() && !std::thread::panicking() {
            panic!("the fake forge got requests the real APIs refuse: {unexpected:?}");
        }
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unexpected(m: &mut Model, what: String) -> Response {
    m.unexpected.push(what);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"message": "Validation Failed"})),
    )
        .into_response()
}

async fn handle(
    State(model): State<Arc<Mutex<Model>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_string();
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let what = format!("{method} {path}");
    if let Some(answer) = ci::handle(&mut m, &method, &uri, &headers, &body) {
        return answer;
    }
    if method != Method::POST {
        return unexpected(&mut m, what);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (forge, repo, sha, token, states, context_key): (
        &'static str,
        String,
        &str,
        String,
        &[&str],
        &str,
    ) = match parts.as_slice() {
        ["repos", owner, name, "statuses", sha] => {
            let auth = h("authorization");
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("token "))
                .unwrap_or("")
                .to_string();
            if h("user-agent").is_empty() {
                return unexpected(
                    &mut m,
                    format!("{what} without a User-Agent (GitHub refuses it)"),
                );
            }
            (
                "github",
                format!("{owner}/{name}"),
                sha,
                token,
                &["error", "failure", "pending", "success"],
                "context",
            )
        }
        ["api", "v1", "repos", owner, name, "statuses", sha] => {
            let token = h("authorization")
                .strip_prefix("token ")
                .unwrap_or("")
                .to_string();
            (
                "gitea",
                format!("{owner}/{name}"),
                sha,
                token,
                &["pending", "success", "error", "failure", "warning"],
                "context",
            )
        }
        ["api", "v4", "projects", id, "statuses", sha] => {
            if id.contains('/') || !id.contains("%2F") {
                return unexpected(
                    &mut m,
                    format!("{what}: the project is one encoded segment"),
                );
            }
            let repo = id.replace("%2F", "/");
            (
                "gitlab",
                repo,
                sha,
                h("private-token"),
                &["pending", "running", "success", "failed", "canceled"],
                "name",
            )
        }
        _ => return unexpected(&mut m, what),
    };
    if !h("content-type").starts_with("application/json") {
        return unexpected(&mut m, format!("{what} not JSON"));
    }
    if token.is_empty() || token != m.token {
        m.refused += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    if !m.repos.contains(&repo) {
        m.refused += 1;
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    }
    if !is_sha(sha) {
        return unexpected(&mut m, format!("{what}: not a sha"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return unexpected(&mut m, format!("{what}: body not JSON"));
    };
    let state = v["state"].as_str().unwrap_or("");
    if !states.contains(&state) {
        return unexpected(&mut m, format!("{what}: state {state:?}"));
    }
    let taken = Taken {
        forge,
        repo,
        sha: sha.to_string(),
        state: state.to_string(),
        context: v[context_key].as_str().unwrap_or("").to_string(),
        description: v["description"].as_str().unwrap_or("").to_string(),
    };
    m.taken.push(taken);
    (
        StatusCode::CREATED,
        Json(json!({"id": m.taken.len(), "state": state})),
    )
        .into_response()
}

/// The CI half of the fake: GitHub Actions and GitLab pipelines.
pub mod ci {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use axum::body::Bytes;
    use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use serde_json::{json, Value};

    use super::{unexpected, Model};

    /// How long a run waits in the queue before it starts.
    pub const QUEUED: Duration = Duration::from_millis(150);

    pub struct Workflow {
        pub name: String,
        pub inputs: Vec<String>,
        pub title_input: Option<String>,
        pub conclusion: String,
        pub duration: Duration,
        pub log: String,
    }

    pub struct Project {
        pub trigger_token: String,
        pub status: String,
        pub duration: Duration,
        pub log: String,
    }

    /// What started a run: a dispatch (GitHub) or a trigger (GitLab).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Started {
        pub forge: &'static str,
        pub id: u64,
        pub repo: String,
        /// GitHub: the workflow's file; GitLab: empty.
        pub workflow: String,
        pub git_ref: String,
        /// Inputs (GitHub) or variables (GitLab).
        pub inputs: Vec<(String, String)>,
        pub title: String,
        pub cancelled: bool,
    }

    pub struct FakeRun {
        pub started: Started,
        at: Instant,
        created_at: String,
        duration: Duration,
        outcome: String,
        log: String,
        job_id: u64,
    }

    #[derive(Default)]
    pub struct Ci {
        pub workflows: HashMap<(String, String), Workflow>,
        pub projects: HashMap<String, Project>,
        pub refs: HashMap<String, Vec<String>>,
        pub runs: Vec<FakeRun>,
        pub requests: Vec<String>,
        pub fail_next: Option<(u16, usize)>,
    }

    impl FakeRun {
        /// A run GitHub started on its own at `at`, ended by now.
        pub fn ended(
            id: u64,
            repo: &str,
            workflow: &str,
            conclusion: &str,
            log: &str,
            at: Instant,
        ) -> FakeRun {
            FakeRun {
                started: Started {
                    forge: "github",
                    id,
                    repo: repo.to_string(),
                    workflow: workflow.to_string(),
                    git_ref: "master".into(),
                    inputs: Vec::new(),
                    title: workflow.to_string(),
                    cancelled: false,
                },
                at,
                created_at: now_text(),
                duration: Duration::ZERO,
                outcome: conclusion.to_string(),
                log: log.to_string(),
                job_id: 70_000_000 + id,
            }
        }
    }

    /// Where a run is now: `queued`, `in_progress` or `completed`.
    fn phase(r: &FakeRun) -> &'static str {
        let age = r.at.elapsed();
        if r.started.cancelled {
            "completed"
        } else if age < QUEUED {
            "queued"
        } else if age < QUEUED + r.duration {
            "in_progress"
        } else {
            "completed"
        }
    }

    fn conclusion(r: &FakeRun) -> Value {
        match phase(r) {
            "completed" if r.started.cancelled => json!("cancelled"),
            "completed" => json!(r.outcome),
            _ => Value::Null,
        }
    }

    fn gitlab_status(r: &FakeRun) -> String {
        match phase(r) {
            "queued" => "pending".into(),
            "in_progress" => "running".into(),
            _ if r.started.cancelled => "canceled".into(),
            _ => r.outcome.clone(),
        }
    }

    fn gh_run(base: &str, r: &FakeRun) -> Value {
        let s = &r.started;
        json!({
            "id": s.id,
            "name": s.workflow.trim_end_matches(".yml"),
            "display_title": s.title,
            "path": format!(".github/workflows/{}", s.workflow),
            "head_branch": s.git_ref,
            "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
            "event": "workflow_dispatch",
            "status": phase(r),
            "conclusion": conclusion(r),
            "run_number": s.id,
            "created_at": r.created_at,
            "html_url": format!("{base}/{}/actions/runs/{}", s.repo, s.id),
            "url": format!("{base}/repos/{}/actions/runs/{}", s.repo, s.id),
        })
    }

    fn gl_pipeline(base: &str, r: &FakeRun) -> Value {
        let s = &r.started;
        json!({
            "id": s.id,
            "iid": s.id,
            "project_id": 1,
            "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
            "ref": s.git_ref,
            "status": gitlab_status(r),
            "source": "trigger",
            "created_at": r.created_at,
            "web_url": format!("{base}/{}/-/pipelines/{}", s.repo, s.id),
        })
    }

    fn answer(code: StatusCode, v: Value) -> Option<Response> {
        Some((code, Json(v)).into_response())
    }

    fn refused(m: &mut Model, code: StatusCode, message: &str) -> Option<Response> {
        m.refused += 1;
        answer(code, json!({ "message": message }))
    }

    fn query(uri: &Uri) -> Vec<(String, String)> {
        uri.query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(h, 16) {
                        Ok(v) => {
                            out.push(v);
                            i += 3;
                        }
                        Err(_) => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn now_text() -> String {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn ref_exists(m: &Model, repo: &str, r: &str) -> bool {
        let r = r
            .strip_prefix("refs/heads/")
            .or_else(|| r.strip_prefix("refs/tags/"))
            .unwrap_or(r);
        match m.ci.refs.get(repo) {
            Some(refs) => refs.iter().any(|x| x == r),
            None => r == "main",
        }
    }

    /// The answer to a CI request, or `None` for a request that is not one.
    pub(super) fn handle(
        m: &mut Model,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<Response> {
        let path = uri.path().to_string();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let what = format!("{method} {path}");
        let github = matches!(parts.as_slice(), ["repos", _, _, "actions", ..]);
        let gitlab = matches!(
            parts.as_slice(),
            [
                "api",
                "v4",
                "projects",
                _,
                "trigger" | "pipelines" | "jobs",
                ..
            ]
        );
        let log = matches!(parts.as_slice(), ["_logs", _]);
        if !(github || gitlab || log) {
            return None;
        }
        m.ci.requests.push(match uri.query() {
            Some(q) => format!("{what}?{q}"),
            None => what.clone(),
        });
        if let Some((code, n)) = m.ci.fail_next {
            m.ci.fail_next = (n > 1).then(|| (code, n - 1));
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return answer(code, json!({"message": "Server Error"}));
        }
        let base = m.base.clone();
        if log {
            // A signed URL on blob storage: it refuses an Authorization.
            if !h("authorization").is_empty() {
                return Some(unexpected(
                    m,
                    format!("{what} with an Authorization header (the signed log URL refuses it)"),
                ));
            }
            let sig = query(uri)
                .into_iter()
                .find(|(k, _)| k == "sig")
                .map(|(_, v)| v);
            let id: u64 = parts[1].parse().unwrap_or(0);
            let Some(r) = m.ci.runs.iter().find(|r| r.job_id == id) else {
                return Some(unexpected(m, format!("{what}: no such log")));
            };
            if sig.as_deref() != Some(&format!("s{id}")[..]) {
                return Some(unexpected(
                    m,
                    format!("{what}: a log URL not given by the API"),
                ));
            }
            let text: String = r
                .log
                .lines()
                .map(|l| format!("2026-12-02T13:00:00.0000000Z {l}\n"))
                .collect();
            return Some((StatusCode::OK, format!("\u{feff}{text}")).into_response());
        }
        if github {
            if h("user-agent").is_empty() {
                return Some(unexpected(
                    m,
                    format!("{what} without a User-Agent (GitHub refuses it)"),
                ));
            }
            let auth = h("authorization");
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("token "))
                .unwrap_or("")
                .to_string();
            if token.is_empty() || token != m.token {
                return refused(m, StatusCode::UNAUTHORIZED, "Bad credentials");
            }
            let repo = format!("{}/{}", parts[1], parts[2]);
            if !m.repos.contains(&repo) {
                return refused(m, StatusCode::NOT_FOUND, "Not Found");
            }
            return github_ci(
                m,
                method,
                uri,
                &parts[4..],
                &repo,
                body,
                &base,
                &what,
                &h("content-type"),
            );
        }
        // GitLab
        let project = parts[3];
        if project.contains('/') || !project.contains("%2F") {
            return Some(unexpected(
                m,
                format!("{what}: the project is one encoded segment"),
            ));
        }
        let project = decode(project);
        if !m.repos.contains(&project) {
            return refused(m, StatusCode::NOT_FOUND, "404 Project Not Found");
        }
        gitlab_ci(
            m,
            method,
            uri,
            &parts[4..],
            &project,
            body,
            &base,
            &what,
            &h("content-type"),
            &h("private-token"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn github_ci(
        m: &mut Model,
        method: &Method,
        uri: &Uri,
        rest: &[&str],
        repo: &str,
        body: &Bytes,
        base: &str,
        what: &str,
        content_type: &str,
    ) -> Option<Response> {
        match (method.clone(), rest) {
            (Method::POST, ["workflows", file, "dispatches"]) => {
                let key = (repo.to_string(), file.to_string());
                if !m.ci.workflows.contains_key(&key) {
                    m.unexpected.push(format!("{what}: no workflow {file}"));
                    return answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
                }
                if !content_type.starts_with("application/json") {
                    return Some(unexpected(m, format!("{what} not JSON")));
                }
                let Ok(v) = serde_json::from_slice::<Value>(body) else {
                    return Some(unexpected(m, format!("{what}: body not JSON")));
                };
                let Some(git_ref) = v.get("ref").and_then(Value::as_str) else {
                    m.unexpected.push(format!("{what}: no `ref` string"));
                    return answer(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"message": "Invalid request.\n\n\"ref\" wasn't supplied."}),
                    );
                };
                if v.as_object()
                    .is_some_and(|o| o.keys().any(|k| k != "ref" && k != "inputs"))
                {
                    return Some(unexpected(m, format!("{what}: unknown fields {v}")));
                }
                let mut inputs = Vec::new();
                match v.get("inputs") {
                    None => {}
                    Some(Value::Object(o)) => {
                        for (k, val) in o {
                            let Some(s) = val.as_str() else {
                                return Some(unexpected(
                                    m,
                                    format!("{what}: input {k} is not a string"),
                                ));
                            };
                            inputs.push((k.clone(), s.to_string()));
                        }
                    }
                    Some(_) => return Some(unexpected(m, format!("{what}: inputs not an object"))),
                }
                let wf = &m.ci.workflows[&key];
                let extra: Vec<&String> = inputs
                    .iter()
                    .map(|(k, _)| k)
                    .filter(|k| !wf.inputs.contains(k))
                    .collect();
                if !extra.is_empty() {
                    let msg = format!("Unexpected inputs provided: {extra:?}");
                    m.unexpected.push(format!("{what}: {msg}"));
                    return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"message": msg}));
                }
                if !ref_exists(m, repo, git_ref) {
                    m.unexpected.push(format!("{what}: no ref {git_ref}"));
                    return answer(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"message": format!("No ref found for: {git_ref}")}),
                    );
                }
                let wf = &m.ci.workflows[&key];
                let title = match &wf.title_input {
                    Some(i) => format!(
                        "{} {}",
                        wf.name,
                        inputs
                            .iter()
                            .find(|(k, _)| k == i)
                            .map(|(_, v)| v.as_str())
                            .unwrap_or("")
                    ),
                    None => wf.name.clone(),
                };
                let id = 30_000_000 + m.ci.runs.len() as u64 + 1;
                let run = FakeRun {
                    started: Started {
                        forge: "github",
                        id,
                        repo: repo.to_string(),
                        workflow: file.to_string(),
                        git_ref: git_ref.to_string(),
                        inputs,
                        title,
                        cancelled: false,
                    },
                    at: Instant::now(),
                    created_at: now_text(),
                    duration: wf.duration,
                    outcome: wf.conclusion.clone(),
                    log: wf.log.clone(),
                    job_id: 70_000_000 + id,
                };
                m.ci.runs.push(run);
                Some(StatusCode::NO_CONTENT.into_response())
            }
            (Method::GET, ["workflows", file, "runs"]) => {
                let key = (repo.to_string(), file.to_string());
                if !m.ci.workflows.contains_key(&key) {
                    m.unexpected.push(format!("{what}: no workflow {file}"));
                    return answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
                }
                let q = query(uri);
                let branch = q
                    .iter()
                    .find(|(k, _)| k == "branch")
                    .map(|(_, v)| v.clone());
                let event = q.iter().find(|(k, _)| k == "event").map(|(_, v)| v.clone());
                let runs: Vec<Value> =
                    m.ci.runs
                        .iter()
                        .rev()
                        .filter(|r| {
                            r.started.forge == "github"
                                && r.started.repo == repo
                                && r.started.workflow == *file
                        })
                        .filter(|r| branch.as_ref().is_none_or(|b| *b == r.started.git_ref))
                        .filter(|_| event.as_deref().is_none_or(|e| e == "workflow_dispatch"))
                        .map(|r| gh_run(base, r))
                        .collect();
                answer(
                    StatusCode::OK,
                    json!({"total_count": runs.len(), "workflow_runs": runs}),
                )
            }
            (Method::GET, ["runs", id]) => {
                let Some(r) = find(m, "github", repo, id) else {
                    return refused(m, StatusCode::NOT_FOUND, "Not Found");
                };
                answer(StatusCode::OK, gh_run(base, r))
            }
            (Method::GET, ["runs", id, "jobs"]) => {
                let Some(r) = find(m, "github", repo, id) else {
                    return refused(m, StatusCode::NOT_FOUND, "Not Found");
                };
                let job = json!({
                    "id": r.job_id,
                    "run_id": r.started.id,
                    "name": "build",
                    "status": phase(r),
                    "conclusion": conclusion(r),
                });
                answer(StatusCode::OK, json!({"total_count": 1, "jobs": [job]}))
            }
            (Method::GET, ["jobs", id, "logs"]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(r) =
                    m.ci.runs
                        .iter()
                        .find(|r| r.job_id == id && r.started.repo == repo)
                else {
                    return refused(m, StatusCode::NOT_FOUND, "Not Found");
                };
                if phase(r) != "completed" {
                    return refused(m, StatusCode::NOT_FOUND, "Not Found");
                }
                Some(
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("{base}/_logs/{id}?sig=s{id}"))],
                    )
                        .into_response(),
                )
            }
            (Method::POST, ["runs", id, "cancel"]) => {
                let Some(i) = m.ci.runs.iter().position(|r| {
                    r.started.forge == "github"
                        && r.started.repo == repo
                        && r.started.id.to_string() == *id
                }) else {
                    return refused(m, StatusCode::NOT_FOUND, "Not Found");
                };
                if phase(&m.ci.runs[i]) == "completed" {
                    return answer(
                        StatusCode::CONFLICT,
                        json!({"message": "Cannot cancel a workflow run that is completed."}),
                    );
                }
                m.ci.runs[i].started.cancelled = true;
                answer(StatusCode::ACCEPTED, json!({}))
            }
            _ => Some(unexpected(m, what.to_string())),
        }
    }

    fn find<'a>(m: &'a Model, forge: &str, repo: &str, id: &str) -> Option<&'a FakeRun> {
        m.ci.runs.iter().find(|r| {
            r.started.forge == forge && r.started.repo == repo && r.started.id.to_string() == id
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn gitlab_ci(
        m: &mut Model,
        method: &Method,
        uri: &Uri,
        rest: &[&str],
        project: &str,
        body: &Bytes,
        base: &str,
        what: &str,
        content_type: &str,
        private_token: &str,
    ) -> Option<Response> {
        if let (Method::POST, ["trigger", "pipeline"]) = (method.clone(), rest) {
            if !content_type.starts_with("application/x-www-form-urlencoded") {
                return Some(unexpected(
                    m,
                    format!("{what}: not a form ({content_type})"),
                ));
            }
            let form: Vec<(String, String)> = std::str::from_utf8(body)
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let Some(p) = m.ci.projects.get(project) else {
                return Some(unexpected(
                    m,
                    format!("{what}: project {project} has no trigger"),
                ));
            };
            if get("token").as_deref() != Some(p.trigger_token.as_str()) {
                return refused(m, StatusCode::NOT_FOUND, "404 Not Found");
            }
            let Some(git_ref) = get("ref") else {
                m.unexpected.push(format!("{what}: no ref"));
                return answer(StatusCode::BAD_REQUEST, json!({"error": "ref is missing"}));
            };
            let mut inputs = Vec::new();
            for (k, v) in &form {
                if k == "token" || k == "ref" {
                    continue;
                }
                match k
                    .strip_prefix("variables[")
                    .and_then(|k| k.strip_suffix(']'))
                {
                    Some(name) if !name.is_empty() => inputs.push((name.to_string(), v.clone())),
                    _ => return Some(unexpected(m, format!("{what}: unknown field {k}"))),
                }
            }
            if !ref_exists(m, project, &git_ref) {
                m.unexpected.push(format!("{what}: no ref {git_ref}"));
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"message": {"base": ["Reference not found"]}}),
                );
            }
            let p = &m.ci.projects[project];
            let id = 500 + m.ci.runs.len() as u64 + 1;
            let run = FakeRun {
                started: Started {
                    forge: "gitlab",
                    id,
                    repo: project.to_string(),
                    workflow: String::new(),
                    git_ref,
                    inputs,
                    title: String::new(),
                    cancelled: false,
                },
                at: Instant::now(),
                created_at: now_text(),
                duration: p.duration,
                outcome: p.status.clone(),
                log: p.log.clone(),
                job_id: 9000 + id,
            };
            let mut v = gl_pipeline(base, &run);
            v["status"] = json!("created");
            m.ci.runs.push(run);
            return answer(StatusCode::CREATED, v);
        }
        if private_token.is_empty() || private_token != m.token {
            return refused(m, StatusCode::UNAUTHORIZED, "401 Unauthorized");
        }
        match (method.clone(), rest) {
            (Method::GET, ["pipelines", id]) => {
                let Some(r) = find(m, "gitlab", project, id) else {
                    return refused(m, StatusCode::NOT_FOUND, "404 Not found");
                };
                answer(StatusCode::OK, gl_pipeline(base, r))
            }
            (Method::GET, ["pipelines", id, "jobs"]) => {
                let Some(r) = find(m, "gitlab", project, id) else {
                    return refused(m, StatusCode::NOT_FOUND, "404 Not found");
                };
                let scope: Vec<String> = query(uri)
                    .into_iter()
                    .filter(|(k, _)| k == "scope[]")
                    .map(|(_, v)| v)
                    .collect();
                let status = gitlab_status(r);
                let job =
                    json!({"id": r.job_id, "name": "test", "stage": "test", "status": status});
                let jobs: Vec<Value> = if scope.is_empty() || scope.contains(&status) {
                    vec![job]
                } else {
                    vec![]
                };
                answer(StatusCode::OK, json!(jobs))
            }
            (Method::GET, ["jobs", id, "trace"]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let Some(r) =
                    m.ci.runs
                        .iter()
                        .find(|r| r.job_id == id && r.started.repo == project)
                else {
                    return refused(m, StatusCode::NOT_FOUND, "404 Not found");
                };
                Some((StatusCode::OK, r.log.clone()).into_response())
            }
            (Method::POST, ["pipelines", id, "cancel"]) => {
                let Some(i) = m.ci.runs.iter().position(|r| {
                    r.started.forge == "gitlab"
                        && r.started.repo == project
                        && r.started.id.to_string() == *id
                }) else {
                    return refused(m, StatusCode::NOT_FOUND, "404 Not found");
                };
                if phase(&m.ci.runs[i]) != "completed" {
                    m.ci.runs[i].started.cancelled = true;
                }
                answer(StatusCode::OK, gl_pipeline(base, &m.ci.runs[i]))
            }
            _ => Some(unexpected(m, what.to_string())),
        }
    }
}
