//! The HTTP intake (axum): health, metrics, the monitoring hooks and the
//! ticket API. An adapter: it checks credentials, size and type, turns a body
//! into typed alerts, and hands them to the engine; it answers 2xx only after
//! the commit is on disk.

use std::sync::Arc;
use std::time::Instant;

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
    pub body_limit: usize,
    pub metrics: Arc<Metrics>,
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

/// Bearer-token check, in constant time.
fn authorize(s: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.token else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "this endpoint is disabled: {} is not set on the bot",
                s.token_var
            ),
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
    authorize(&s, &headers)?;
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
