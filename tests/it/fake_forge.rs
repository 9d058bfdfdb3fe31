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

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

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
    token: String,
    repos: Vec<String>,
    taken: Vec<Taken>,
    refused: usize,
    unexpected: Vec<String>,
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
