//! `POST /hooks/github`, `/hooks/gitlab`, `/hooks/gitea`: a forge's webhook,
//! checked by that forge's own scheme with the repository's secret, made a
//! push event. Answers: 401 for a missing or wrong signature (nothing
//! stored), 400 for a body that is not the event it says, 413 too large,
//! 200 with what was ignored (a repository or branch bot.toml does not
//! follow, a redelivery, a ping: never an error that would make the forge
//! turn the hook off), 202 once the push is durable.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{bot_error, err, json_body, ApiError, HttpState};
use crate::adapters::forges::{self, Hook};
use crate::domain::code::Provider;
use crate::domain::rich::one_line;
use crate::engine::Event;

pub(super) async fn github(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    hook(s, req, Provider::Github).await
}

pub(super) async fn gitlab(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    hook(s, req, Provider::Gitlab).await
}

pub(super) async fn gitea(State(s): State<HttpState>, req: Request) -> Result<Response, ApiError> {
    hook(s, req, Provider::Gitea).await
}

/// The first of `names` the request carries, as text.
fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
}

fn ignored(why: impl Into<String>) -> Response {
    (StatusCode::OK, Json(json!({ "ignored": why.into() }))).into_response()
}

/// The delivery's id, when it is one the bot can keep.
fn delivery_of(headers: &HeaderMap, names: &forges::Headers, provider: Provider) -> Option<String> {
    header(headers, names.delivery)
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= 128 && d.bytes().all(|b| b.is_ascii_graphic()))
        .map(|d| format!("{provider}:{d}"))
}

async fn hook(s: HttpState, req: Request, provider: Provider) -> Result<Response, ApiError> {
    let names = forges::headers(provider);
    let headers = req.headers().clone();
    let body = json_body(&s, req).await?;
    let Some(event) = header(&headers, names.event) else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!(
                "missing the {} header: which event is this?",
                names.event.join(" or ")
            ),
        ));
    };
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let config = &s.bot.config();
    let found = forges::repo_names(provider, &v);
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    let Some(repo) = config
        .repos
        .values()
        .find(|r| r.provider == provider && r.is_named_by(&found))
    else {
        return Ok(ignored(format!(
            "no [repos.*] in bot.toml is this {provider} repository ({})",
            one_line(found.first().copied().unwrap_or("none named"), 100)
        )));
    };
    let Some(secret) = repo.secret.as_ref().and_then(|e| e.value.as_ref()) else {
        let var = repo
            .secret
            .as_ref()
            .map_or("secret_env", |e| e.var.as_str());
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "the hook of {} is disabled: {var} is not set on the bot",
                repo.name
            ),
        ));
    };
    let Some(sig) = header(&headers, names.signature) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!("missing the {} header", names.signature.join(" or ")),
        ));
    };
    if !forges::signed(provider, secret, &body, sig) {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            format!(
                "the {} header does not match this body and the secret of {}",
                names.signature[0], repo.name
            ),
        ));
    }
    let push = match forges::parse(provider, event, &v, &repo.name) {
        Err(e) => return Err(err(StatusCode::BAD_REQUEST, e)),
        Ok(Hook::Ping) => {
            return Ok((StatusCode::OK, Json(json!({ "pong": repo.name }))).into_response())
        }
        Ok(Hook::Ignored(why)) => return Ok(ignored(why)),
        Ok(Hook::Push(p)) => p,
        Ok(Hook::Run(mut run)) => {
            let delivery = delivery_of(&headers, &names, provider);
            if run.state == crate::domain::ci::ForgeRunState::Failed {
                run.tail = crate::adapters::jobs::forge_ci::hook_tail(config, repo, &run).await;
            }
            let outcome = s
                .bot
                .submit(Event::ForgeRun {
                    delivery,
                    run: Box::new(run),
                })
                .await
                .map_err(bot_error)?;
            let said = outcome.reply.map(|r| r.body.to_plain()).unwrap_or_default();
            return Ok(match outcome.accepted {
                Some(_) => (StatusCode::ACCEPTED, Json(json!({ "result": said }))).into_response(),
                None => ignored(said),
            });
        }
    };
    let delivery = delivery_of(&headers, &names, provider);
    let outcome = s
        .bot
        .submit(Event::Push { delivery, push })
        .await
        .map_err(bot_error)?;
    let said = outcome.reply.map(|r| r.body.to_plain()).unwrap_or_default();
    Ok(match outcome.accepted {
        Some(a) => {
            let tickets: Vec<String> = a.tickets.iter().map(|t| t.to_string()).collect();
            (
                StatusCode::ACCEPTED,
                Json(json!({ "builds": a.accepted, "result": said, "tickets": tickets })),
            )
                .into_response()
        }
        None => ignored(said),
    })
}
