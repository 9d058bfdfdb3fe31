//! The HTTP intake (axum): health, metrics, the monitoring hooks and the
//! ticket API. An adapter: it checks credentials, size and type, turns a body
//! into typed alerts, and hands them to the engine; it answers 2xx only after
//! the commit is on disk. Reads (`/metrics`, the ticket API, the list in
//! [`tickets`]) run off the commit thread, each on one snapshot of
//! committed state.

mod forges;
mod heartbeat;
pub mod metrics;
mod tickets;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tracing::{info_span, Instrument};

use crate::adapters::http::metrics::Metrics;
use crate::config::Secret;
use crate::domain::alert::{self, Alert, PayloadError};
use crate::domain::TicketId;
use crate::engine::{Event, QueryView, View};
use crate::runtime::{Bot, BotError};

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub bot: Bot,
    pub token: Option<Secret>,
    pub token_var: String,
    /// The ticket API's own token (never the hooks').
    pub api_token: Option<Secret>,
    pub api_token_var: String,
    pub body_limit: usize,
    pub metrics: Arc<Metrics>,
    pub support: Arc<SupportIntake>,
}

impl HttpState {
    /// The state for `bot` as `config` sets it up (tokens from their env
    /// vars, the body limit, the session checker), with fresh metrics.
    pub fn from_config(
        bot: Bot,
        config: &crate::config::Config,
    ) -> Result<HttpState, reqwest::Error> {
        Ok(HttpState {
            bot,
            token: config.http.token.value.clone(),
            token_var: config.http.token.var.clone(),
            api_token: config.http.api_token.value.clone(),
            api_token_var: config.http.api_token.var.clone(),
            body_limit: config.http.body_limit,
            metrics: Arc::new(Metrics::new()),
            support: Arc::new(SupportIntake::new(&config.support)?),
        })
    }
}

/// The support intake's own state: the app's secret, the session checker,
/// the rate limits.
pub struct SupportIntake {
    secret: Option<Secret>,
    secret_var: String,
    /// The base of the session check; `None` when the config's URL does not
    /// parse (every request is then refused with 503).
    session_url: Option<reqwest::Url>,
    client: reqwest::Client,
    max_subject: usize,
    max_message: usize,
    per_customer: RateLimit,
    overall: RateLimit,
}

impl SupportIntake {
    pub fn new(cfg: &crate::config::SupportConfig) -> Result<SupportIntake, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(cfg.session_timeout)
            .connect_timeout(cfg.session_timeout)
            // A redirect is an answer that is not 200: refused, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let session_url = reqwest::Url::parse(&cfg.session_url)
            .ok()
            .filter(|u| !u.cannot_be_a_base());
        if session_url.is_none() {
            tracing::error!(url = %cfg.session_url, "[support] session_url is not a URL; the support intake refuses every request");
        }
        Ok(SupportIntake {
            secret: cfg.secret.value.clone(),
            secret_var: cfg.secret.var.clone(),
            session_url,
            client,
            max_subject: cfg.max_subject,
            max_message: cfg.max_message,
            per_customer: RateLimit::new(cfg.per_customer_per_hour, Duration::from_secs(3600)),
            overall: RateLimit::new(cfg.per_minute, Duration::from_secs(60)),
        })
    }
}

/// A token bucket per key: `burst` requests, refilled evenly over `period`.
pub struct RateLimit {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimit {
    pub fn new(burst: u32, period: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(burst.max(1)) / period.as_secs_f64(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is free.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let mut b = match self.buckets.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        if b.len() > 100_000 {
            // Forget full buckets rather than grow without bound.
            let (burst, per_sec) = (self.burst, self.per_sec);
            b.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * per_sec < burst);
        }
        let now = Instant::now();
        let (tokens, at) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// An error answer: `{"error": "…"}` with its status (and `Retry-After`,
/// in seconds, when a retry later may work).
#[derive(Debug)]
pub struct ApiError(StatusCode, String, Option<u64>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.2 {
            Some(secs) => retry_after(self.0, secs, self.1),
            None => (self.0, Json(json!({ "error": self.1 }))).into_response(),
        }
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(code, msg.into(), None)
}

/// How long a client should wait before retrying while the store refuses
/// writes.
const STORE_RETRY_SECS: u64 = 5;

/// The router, for `serve` and for tests that bring their own listener.
pub fn router(state: HttpState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/hooks/alertmanager", post(hook_alertmanager))
        .route("/hooks/grafana", post(hook_grafana))
        .route("/hooks/generic", post(hook_generic))
        .route("/api/v1/tickets", get(tickets::list))
        .route("/api/v1/tickets/{id}", get(ticket))
        .route("/api/v1/export", get(export))
        .route("/api/v1/support", post(support))
        .merge(web::routes())
        .route("/hooks/heartbeat/{name}", post(heartbeat::hook))
        .route("/hooks/github", post(forges::github))
        .route("/hooks/gitlab", post(forges::gitlab))
        .route("/hooks/gitea", post(forges::gitea))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    // Around the whole router, so that it sees each answer as it leaves
    // (axum adds a 405's `Allow` outside the routes' own layers).
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(json_errors))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn observe(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = info_span!("http", method = %req.method(), route = %route);
    let started = Instant::now();
    let resp = next.run(req).instrument(span).await;
    s.metrics
        .request(&route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Every error answer is JSON `{"error": "…"}`, also those that axum makes
/// itself: a wrong method (405, its `Allow` header kept), an extractor's
/// rejection (its text becomes the message), anything with an empty body.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The public pages answer people, in HTML (`web::not_found`).
    let is_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_page {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        format!(
            "{method} is not allowed on {}; use {}",
            crate::domain::rich::one_line(&path, 200),
            if allow.is_empty() {
                "another method"
            } else {
                &allow
            }
        )
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        crate::domain::sanitize::clean_untrusted(&crate::domain::rich::clip_plain(&text, 500))
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    (parts, Json(json!({ "error": message }))).into_response()
}

async fn not_found() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "no such route; see /healthz, /readyz, /metrics, /hooks/{alertmanager,grafana,generic}, /api/v1/tickets, /api/v1/tickets/{id}, /api/v1/export",
    )
}

/// `200 {"status":"ok"}`, or `503 {"status":"unavailable","problems":[…]}`.
fn health_answer(problems: Vec<String>) -> Response {
    if problems.is_empty() {
        Json(json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "problems": problems })),
        )
            .into_response()
    }
}

/// Liveness: the process and its commit thread.
async fn healthz(State(s): State<HttpState>) -> Response {
    health_answer(s.bot.health().liveness(chrono::Utc::now()))
}

/// Readiness: the store takes writes, the workers run, the gateway (in
/// `run`) is connected.
async fn readyz(State(s): State<HttpState>) -> Response {
    health_answer(s.bot.health().readiness(chrono::Utc::now()))
}

async fn metrics(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let store = s.bot.store().map_err(read_error)?;
    let m = s.metrics.clone();
    let health = s.bot.health().clone();
    // One consistent snapshot of the counters, off the commit thread.
    let body = tokio::task::spawn_blocking(move || {
        store.snapshot(|s| m.render(s, &health)).and_then(|r| r)
    })
    .await
    .map_err(|e| internal(&e, "the metrics task failed"))?
    .map_err(|e| internal(&e, "cannot read the store for the metrics"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Ours: logged with an id, answered 500 with it.
fn internal(e: &dyn std::fmt::Display, what: &str) -> ApiError {
    let id = crate::error::ErrorId::fresh();
    tracing::error!(error_id = %id, error = %e, "{what}");
    err(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error {id}"),
    )
}

/// The hook token's check.
fn authorize(s: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    bearer(s.token.as_ref(), &s.token_var, headers)
}

/// Bearer-token check, in constant time; an unset token refuses everything.
fn bearer(token: Option<&Secret>, var: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!("this endpoint is disabled: {var} is not set on the bot"),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "missing credentials: send Authorization: Bearer TOKEN",
            )
        })?;
    if bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(err(StatusCode::UNAUTHORIZED, "wrong bearer token"))
    }
}

/// Reads a JSON body within the size limit.
async fn json_body(s: &HttpState, req: Request) -> Result<Bytes, ApiError> {
    let headers = req.headers();
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") && !essence.ends_with("+json") {
        return Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body must be JSON (Content-Type: application/json); got `{}`",
                if ctype.is_empty() { "nothing" } else { ctype }
            ),
        ));
    }
    let too_large = || {
        err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than the limit of {} bytes",
                s.body_limit
            ),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > s.body_limit {
            return Err(too_large());
        }
    }
    axum::body::to_bytes(req.into_body(), s.body_limit)
        .await
        .map_err(|_| too_large())
}

async fn intake(
    s: HttpState,
    req: Request,
    parse: fn(&[u8]) -> Result<Vec<Alert>, PayloadError>,
) -> Result<Response, ApiError> {
    authorize(&s, req.headers())?;
    let body = json_body(&s, req).await?;
    let alerts = parse(&body).map_err(|e| err(StatusCode::BAD_REQUEST, e.0))?;
    let counts: Vec<_> = alerts.iter().map(|a| (a.source, a.status)).collect();
    let outcome = s
        .bot
        .submit(Event::Alerts { alerts })
        .await
        .map_err(bot_error)?;
    for (source, status) in counts {
        s.metrics.alert_received(source, status);
    }
    let acc = outcome.accepted.unwrap_or_default();
    let tickets: Vec<String> = acc.tickets.iter().map(|t| t.to_string()).collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": acc.accepted, "tickets": tickets })),
    )
        .into_response())
}

fn bot_error(e: BotError) -> ApiError {
    match e {
        BotError::Refused(u) => err(StatusCode::BAD_REQUEST, u.to_string()),
        BotError::Internal(id) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error {id}; nothing was stored, retry later"),
        ),
        BotError::Stopped => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the bot is shutting down".into(),
            Some(STORE_RETRY_SECS),
        ),
        BotError::Unavailable(why) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot store anything now ({why}); nothing was stored, retry later"),
            Some(STORE_RETRY_SECS),
        ),
    }
}

/// The store cannot be read now (it is being opened again): `503` with
/// `Retry-After`.
fn read_error(e: BotError) -> ApiError {
    let why = match e {
        BotError::Unavailable(why) => why,
        other => other.to_string(),
    };
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot read the store now ({why}); retry later"),
        Some(STORE_RETRY_SECS),
    )
}

async fn hook_alertmanager(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    intake(s, req, alert::parse_alertmanager).await
}

async fn hook_grafana(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    intake(s, req, alert::parse_grafana).await
}

async fn hook_generic(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    intake(s, req, alert::parse_generic).await
}

async fn ticket(
    State(s): State<HttpState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    bearer(s.api_token.as_ref(), &s.api_token_var, &headers)?;
    let prefix = s.bot.engine().config().tickets.prefix.clone();
    let id =
        TicketId::parse(&raw, &prefix).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    let store = s.bot.store().map_err(read_error)?;
    let found =
        tokio::task::spawn_blocking(move || -> Result<Option<Value>, crate::error::StoreError> {
            // The ticket and its timeline of one committed state.
            store.snapshot(|store| {
                let Some(t) = store.ticket(&id)? else {
                    return Ok(None);
                };
                let timeline = store.timeline(&id)?;
                let encode = |e: serde_json::Error| crate::error::StoreError::Encode {
                    tree: "tickets",
                    detail: e.to_string(),
                };
                // A record that does not encode is an error, never a `null`.
                let mut v = serde_json::to_value(&t).map_err(encode)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "timeline".into(),
                        serde_json::to_value(&timeline).map_err(encode)?,
                    );
                }
                Ok(Some(v))
            })?
        })
        .await
        .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|e| {
            let id = crate::error::ErrorId::fresh();
            tracing::error!(error_id = %id, error = %e, "reading a ticket failed");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error {id}"),
            )
        })?;
    match found {
        Some(v) => Ok(Json(v)),
        None => Err(err(
            StatusCode::NOT_FOUND,
            format!("there is no ticket {}", raw.trim()),
        )),
    }
}

/// The JSON lines export of every ticket, its timeline and every run, as
/// `opsbot export` prints it, read from committed state while the bot runs
/// (`opsbot export` asks here when the bot holds the data directory): what
/// it holds is [`crate::store::Store::export_jsonl`]'s promise. Streamed as
/// it is read, so that neither the bot nor the answer holds all of it; an
/// export that fails part way ends the answer unfinished (the client sees
/// a broken transfer, never a short export that looks whole).
async fn export(State(s): State<HttpState>, headers: HeaderMap) -> Result<Response, ApiError> {
    bearer(s.api_token.as_ref(), &s.api_token_var, &headers)?;
    let store = s.bot.store().map_err(read_error)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut w = Streamed {
            tx: tx.clone(),
            buf: Vec::with_capacity(STREAM_PIECE),
        };
        if let Err(e) = store.export_jsonl(&mut w) {
            let id = crate::error::ErrorId::fresh();
            tracing::error!(error_id = %id, error = %e, "the export failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                "the export failed: internal error {id}"
            ))));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// How many bytes of an export are sent at a time.
const STREAM_PIECE: usize = 64 << 10;

/// An export's writer: pieces of [`STREAM_PIECE`] bytes to the answer. A
/// client that went away stops the export.
struct Streamed {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Streamed {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(STREAM_PIECE),
        ));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client stopped reading the export",
            )
        })
    }
}

impl std::io::Write for Streamed {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STREAM_PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A session id the app can have issued: 1 to 256 of `A-Z a-z 0-9 . _ ~ -`,
/// and not `.` or `..` (which a URL would read as a path step).
fn valid_session_id(sid: &str) -> bool {
    (1..=256).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
        && sid != "."
        && sid != ".."
}

/// `GET {session_url}/{session_id}`: the id as exactly one percent-encoded
/// path segment, whatever it holds.
fn session_check_url(base: &reqwest::Url, sid: &str) -> Option<reqwest::Url> {
    let mut url = base.clone();
    url.path_segments_mut().ok()?.pop_if_empty().push(sid);
    Some(url)
}

/// `429` or `503` with `Retry-After`.
fn retry_after(code: StatusCode, secs: u64, msg: String) -> Response {
    (
        code,
        [(header::RETRY_AFTER, secs.to_string())],
        Json(json!({ "error": msg })),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SupportBody {
    session_id: String,
    subject: String,
    message: String,
}

#[derive(serde::Deserialize)]
struct SessionAnswer {
    email: String,
    customer_id: Value,
}

/// How far the app's timestamp may be from the bot's clock, in seconds.
const SUPPORT_TOLERANCE_SECS: i64 = 5 * 60;

/// Checks `X-Opsbot-Signature`: the HMAC-SHA256 of `TIMESTAMP.` and the raw
/// body, under the app's secret.
fn signature_ok(secret: &Secret, timestamp: &str, body: &[u8], header: Option<&str>) -> bool {
    use hmac::{Hmac, Mac};
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant time.
    mac.verify_slice(&sig).is_ok()
}

async fn support(State(s): State<HttpState>, req: Request) -> Result<Response, Response> {
    let intake = s.support.clone();
    let Some(secret) = intake.secret.clone() else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "the support intake is disabled: {} is not set on the bot",
                intake.secret_var
            ),
        )
        .into_response());
    };
    let headers = req.headers().clone();
    let sig = headers
        .get("x-opsbot-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let timestamp = headers
        .get("x-opsbot-timestamp")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(str::to_string);
    let body = json_body(&s, req)
        .await
        .map_err(IntoResponse::into_response)?;
    // The signature first: nothing unsigned is parsed.
    if sig.is_none() {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "missing signature: send X-Opsbot-Signature: sha256=HEX, the HMAC-SHA256 of the X-Opsbot-Timestamp value, a `.` and the body",
        )
        .into_response());
    }
    let Some(timestamp) = timestamp else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "missing timestamp: send X-Opsbot-Timestamp: UNIX_SECONDS (the time of signing) and sign that value, a `.` and the body",
        )
        .into_response());
    };
    let Some(sent_at) = timestamp
        .parse::<i64>()
        .ok()
        .filter(|_| timestamp.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "bad timestamp: X-Opsbot-Timestamp must be the Unix time in whole seconds, such as 1767225600; got `{}`",
                crate::domain::rich::one_line(&timestamp, 40)
            ),
        )
        .into_response());
    };
    if !signature_ok(&secret, &timestamp, &body, sig.as_deref()) {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "bad signature: X-Opsbot-Signature must be sha256= and the hex HMAC-SHA256, under the app's secret, of the X-Opsbot-Timestamp value, a `.` and the exact body",
        )
        .into_response());
    }
    let skew = s.bot.now().timestamp().saturating_sub(sent_at);
    if skew
        .checked_abs()
        .is_none_or(|d| d > SUPPORT_TOLERANCE_SECS)
    {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "stale timestamp: X-Opsbot-Timestamp {sent_at} is {} s {} the bot's clock; more than {} s is refused (a replayed request, or a clock that is off): sign each request when it is sent",
                skew.unsigned_abs(),
                if skew >= 0 { "behind" } else { "ahead of" },
                SUPPORT_TOLERANCE_SECS
            ),
        )
        .into_response());
    }
    let req: SupportBody = serde_json::from_slice(&body).map_err(|e| {
        err(StatusCode::BAD_REQUEST, format!("invalid request: {e}")).into_response()
    })?;
    let bad = |m: String| err(StatusCode::BAD_REQUEST, m).into_response();
    let sid = req.session_id.trim();
    if !valid_session_id(sid) {
        return Err(bad(format!(
            "`session_id` must be 1 to 256 ASCII letters, digits, `.`, `_`, `~` or `-`, and not `.` or `..` alone; got `{}`",
            crate::domain::rich::one_line(sid, 60)
        )));
    }
    let subject_len = req.subject.trim().chars().count();
    if subject_len == 0 {
        return Err(bad("`subject` must not be empty".into()));
    }
    if subject_len > intake.max_subject {
        return Err(bad(format!(
            "`subject` is {subject_len} characters long; the limit is {}",
            intake.max_subject
        )));
    }
    let message_len = req.message.trim().chars().count();
    if message_len == 0 {
        return Err(bad("`message` must not be empty".into()));
    }
    if message_len > intake.max_message {
        return Err(bad(format!(
            "`message` is {message_len} characters long; the limit is {}",
            intake.max_message
        )));
    }
    if let Some(k) = &idem {
        if k.is_empty() || k.len() > 200 {
            return Err(bad("`Idempotency-Key` must be 1 to 200 characters".into()));
        }
    }
    if let Err(secs) = intake.overall.take("") {
        return Err(retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            secs,
            format!("too many support requests; retry in {secs} s"),
        ));
    }
    // Who is this? The app says, or the request is refused.
    let unavailable = |why: String| {
        retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            format!(
                "cannot check the session with the app ({why}); nothing was stored, retry later"
            ),
        )
    };
    let Some(url) = intake
        .session_url
        .as_ref()
        .and_then(|base| session_check_url(base, sid))
    else {
        return Err(unavailable(
            "the bot's [support] session_url is not a URL".into(),
        ));
    };
    let resp = intake.client.get(url).send().await.map_err(|e| {
        unavailable(if e.is_timeout() {
            "timed out".into()
        } else {
            "unreachable".into()
        })
    })?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(unavailable(format!("it answered {}", status.as_u16())));
    }
    if status != reqwest::StatusCode::OK {
        // 3xx (never followed), 401/403/404 and any other answer: refused.
        return Err(err(
            StatusCode::FORBIDDEN,
            format!(
                "the session is not valid (the app answered {})",
                status.as_u16()
            ),
        )
        .into_response());
    }
    let answer: SessionAnswer = resp.json().await.map_err(|_| {
        err(
            StatusCode::FORBIDDEN,
            "the app's session check did not say who the customer is",
        )
        .into_response()
    })?;
    let customer_id = match &answer.customer_id {
        Value::String(v) => v.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let email_ok = answer.email.parse::<lettre::Address>().is_ok();
    if customer_id.is_empty() || customer_id.len() > 200 || !email_ok {
        return Err(err(
            StatusCode::FORBIDDEN,
            "the app's session check gave no usable customer id and e-mail address",
        )
        .into_response());
    }
    if let Err(secs) = intake.per_customer.take(&customer_id) {
        return Err(retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            secs,
            format!("too many requests from this customer; retry in {secs} s"),
        ));
    }
    let outcome = s
        .bot
        .submit(Event::SupportRequest {
            customer: crate::domain::Customer {
                id: customer_id.clone(),
                email: answer.email,
            },
            subject: req.subject,
            message: req.message.trim().to_string(),
            idempotency_key: idem.map(|k| format!("{customer_id}:{k}")),
        })
        .await
        .map_err(|e| bot_error(e).into_response())?;
    // The engine names the ticket of every request it accepts; an answer
    // without one is our bug, never an empty id.
    let ticket = outcome
        .accepted
        .and_then(|a| a.tickets.first().map(|t| t.to_string()))
        .ok_or_else(|| {
            internal(&"no ticket in the engine's answer", "support request").into_response()
        })?;
    Ok((StatusCode::CREATED, Json(json!({ "ticket": ticket }))).into_response())
}
