//! `POST /hooks/heartbeat/{name}`: a beat of a heartbeat the config names
//! (hook token; the body, if any, is not read). `202` once the beat is
//! stored; `404` for a name the config does not have, with nothing stored.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{authorize, bot_error, err, ApiError, HttpState};
use crate::engine::Event;

pub(super) async fn hook(
    State(s): State<HttpState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let config = &s.bot.config();
    let heartbeats = &config.monitoring.heartbeats;
    if !heartbeats.contains_key(&name) {
        let known: Vec<&str> = heartbeats.keys().map(String::as_str).collect();
        return Err(err(
            StatusCode::NOT_FOUND,
            format!(
                "no heartbeat `{}` is configured; heartbeats: {}",
                crate::domain::rich::clip_plain(
                    &crate::domain::sanitize::clean_untrusted(&name),
                    64
                ),
                if known.is_empty() {
                    "none ([heartbeats.NAME] in bot.toml)".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    s.bot
        .submit(Event::Heartbeat { name: name.clone() })
        .await
        .map_err(bot_error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "heartbeat": name }))).into_response())
}
