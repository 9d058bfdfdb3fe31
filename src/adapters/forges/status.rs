//! Commit statuses back to the forge: a run's state for a commit, as each
//! forge's API takes it (GitHub `POST /repos/{owner}/{repo}/statuses/{sha}`,
//! GitLab `POST /projects/{id}/statuses/{sha}`, Gitea `POST
//! /repos/{owner}/{repo}/statuses/{sha}`), with the repository's token. A
//! status is an order in the job queue, in its repository's own lane:
//! durable, retried, in order, never in the way of chat or of job orders.
//! A 401, 403 or 404 will not get better by retrying: the team hears of it
//! once and the status stays a dead letter.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;

use crate::domain::code::{CommitStatus, Provider, StatusState};
use crate::engine::Event;
use crate::runtime::{Bot, DeliveryError};

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("opsbot/", env!("CARGO_PKG_VERSION")))
                .build()
                .ok()
        })
        .as_ref()
}

/// Percent-encodes one path segment (GitLab takes a project's path as its
/// id, `group%2Fname`).
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

/// Sends one status; what the outbox should do next is in the error.
pub async fn send(bot: &Bot, st: &CommitStatus) -> Result<(), DeliveryError> {
    let config = &bot.config();
    let Some(repo) = config.repos.get(&st.repo) else {
        return Err(DeliveryError::Permanent(format!(
            "the repository {} is no longer in bot.toml",
            st.repo
        )));
    };
    let (Some(api), Some(token), Some(path)) = (
        repo.api_url.as_deref(),
        repo.token.as_ref().and_then(|t| t.value.as_ref()),
        repo.path(),
    ) else {
        return Err(DeliveryError::Permanent(format!(
            "{} sends no statuses now (no API URL, token or owner/name in its url)",
            st.repo
        )));
    };
    let Some(client) = client() else {
        return Err(DeliveryError::Transient("no HTTP client".into()));
    };
    if !crate::domain::code::is_sha(&st.sha) {
        return Err(DeliveryError::Permanent("not a commit id".into()));
    }
    let req = match repo.provider {
        Provider::Github => client
            .post(format!("{api}/repos/{path}/statuses/{}", st.sha))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .bearer_auth(token.expose())
            .json(&json!({
                "state": st.state.to_string(),
                "description": st.description,
                "context": st.context,
            })),
        Provider::Gitlab => {
            let state = match st.state {
                StatusState::Pending => "pending",
                StatusState::Success => "success",
                StatusState::Failure => "failed",
                StatusState::Error => "canceled",
            };
            client
                .post(format!(
                    "{api}/projects/{}/statuses/{}",
                    segment(&path),
                    st.sha
                ))
                .header("PRIVATE-TOKEN", token.expose())
                .json(&json!({
                    "state": state,
                    "name": st.context,
                    "description": st.description,
                }))
        }
        Provider::Gitea => client
            .post(format!("{api}/repos/{path}/statuses/{}", st.sha))
            .header("Authorization", format!("token {}", token.expose()))
            .json(&json!({
                "state": st.state.to_string(),
                "description": st.description,
                "context": st.context,
            })),
        Provider::Git => {
            return Err(DeliveryError::Permanent(
                "a plain git server takes no statuses".into(),
            ))
        }
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(DeliveryError::Transient(format!(
                "the forge did not answer: {}",
                e.without_url()
            )))
        }
    };
    let code = resp.status();
    if code.is_success() {
        return Ok(());
    }
    let text: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let why = format!("{} from {}: {}", code.as_u16(), st.repo, text.trim());
    match code.as_u16() {
        401 | 403 | 404 => {
            let event = Event::StatusRefused {
                repo: st.repo.clone(),
                why: why.clone(),
            };
            if let Err(e) = bot.submit(event).await {
                tracing::warn!(repo = %st.repo, error = %e, "cannot record a refused status");
            }
            Err(DeliveryError::Permanent(why))
        }
        400..=499 if code.as_u16() != 408 && code.as_u16() != 429 => {
            Err(DeliveryError::Permanent(why))
        }
        _ => Err(DeliveryError::Transient(why)),
    }
}
