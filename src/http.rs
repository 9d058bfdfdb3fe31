//! The HTTP intake (axum): health, metrics, the monitoring hooks and the
//! ticket API. An adapter: it checks credentials, size and type, turns a body
//! into typed alerts, and hands them to the engine; it answers 2xx only after
//! the commit is on disk.

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

use crate::alert::{self, Alert, PayloadError};
use crate::config::Secret;
use crate::domain::TicketId;
use crate::engine::{Event, QueryView, View};
use crate::metrics::Metrics;
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

/// The support intake's own state: the app's secret, the session checker,
/// the rate limits.
pub struct SupportIntake {
    secret: Option<Secret>,
    secret_var: String,
    session_url: String,
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
            .build()?;
        Ok(SupportIntake {
            secret: cfg.secret.value.clone(),
            secret_var: cfg.secret.var.clone(),
            session_url: cfg.session_url.clone(),
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

/// An error answer: `{"error": "…"}` with its status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(code, msg.into())
}

/// The router, for `serve` and for tests that bring their own listener.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/hooks/alertmanager", post(hook_alertmanager))
        .route("/hooks/grafana", post(hook_grafana))
        .route("/hooks/generic", post(hook_generic))
        .route("/api/v1/tickets/{id}", get(ticket))
        .route("/api/v1/support", post(support))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
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

async fn not_found() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "no such route; see /healthz, /metrics, /hooks/{alertmanager,grafana,generic}, /api/v1/tickets/{id}",
    )
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let store = s.bot.store().clone();
    let m = s.metrics.clone();
    let body = tokio::task::spawn_blocking(move || m.render(&store))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
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
        BotError::Stopped => err(StatusCode::SERVICE_UNAVAILABLE, "the bot is shutting down"),
    }
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
    let store = s.bot.store().clone();
    let found =
        tokio::task::spawn_blocking(move || -> Result<Option<Value>, crate::error::StoreError> {
            let Some(t) = store.ticket(&id)? else {
                return Ok(None);
            };
            let timeline = store.timeline(&id)?;
            let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "timeline".into(),
                    serde_json::to_value(&timeline).unwrap_or(Value::Null),
                );
            }
            Ok(Some(v))
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

fn signature_ok(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
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
            "missing signature: send X-Opsbot-Signature: sha256=HEX, the HMAC-SHA256 of the body",
        )
        .into_response());
    }
    if !signature_ok(&secret, &body, sig.as_deref()) {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "bad signature: X-Opsbot-Signature must be sha256= and the hex HMAC-SHA256 of the exact body under the app's secret",
        )
        .into_response());
    }
    let req: SupportBody = serde_json::from_slice(&body).map_err(|e| {
        err(StatusCode::BAD_REQUEST, format!("invalid request: {e}")).into_response()
    })?;
    let bad = |m: String| err(StatusCode::BAD_REQUEST, m).into_response();
    let sid = req.session_id.trim();
    if sid.is_empty()
        || sid.len() > 256
        || !sid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "`session_id` must be 1 to 256 letters, digits, `-`, `_` or `.`".into(),
        ));
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
    let url = format!("{}/{}", intake.session_url, sid);
    let unavailable = |why: String| {
        retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            format!(
                "cannot check the session with the app ({why}); nothing was stored, retry later"
            ),
        )
    };
    let resp = intake.client.get(&url).send().await.map_err(|e| {
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
    let ticket = outcome
        .accepted
        .and_then(|a| a.tickets.first().map(|t| t.to_string()))
        .unwrap_or_default();
    Ok((StatusCode::CREATED, Json(json!({ "ticket": ticket }))).into_response())
}
