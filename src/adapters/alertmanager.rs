//! Prometheus Alertmanager's API v2 (`[alerts.alertmanager]`, issue 15):
//! the sink of the Alertmanager queue (make a silence, end one) and the
//! poller that reads the silences in force there. It translates only: the
//! engine decided which silences to make and end, and decides what a
//! silence read from Alertmanager means.
//!
//! - `POST /api/v2/silences` with `matchers` (`isRegex`, `isEqual`),
//!   `startsAt`, `endsAt`, `createdBy`, `comment` → `{"silenceID": …}`,
//!   reported back as [`Event::SilenceMade`]. A retry after a crash first
//!   looks for the silence it made already (the comment ends with the
//!   bot's mark, [`crate::domain::silences::mark`]), so it is made once.
//! - `DELETE /api/v2/silence/{id}` ends one; one Alertmanager no longer
//!   has, or that has ended, counts as ended.
//! - `GET /api/v2/silences` every `poll`: those in force, as
//!   [`Event::AlertmanagerSilences`].

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::AlertmanagerConfig;
use crate::domain::silences::{mark, AmMatcher, AmOrder, AmSilence};
use crate::domain::Timestamp;
use crate::engine::{Effect, Event};
use crate::runtime::{Bot, DeliveryError, Sink};
use crate::store::OutboxItem;

/// Talks to one Alertmanager.
#[derive(Clone)]
pub struct AlertmanagerClient {
    http: reqwest::Client,
    base: String,
}

/// A silence as `GET /api/v2/silences` lists it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    #[serde(default)]
    matchers: Vec<AmMatcher>,
    starts_at: Timestamp,
    ends_at: Timestamp,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    status: ListedStatus,
}

#[derive(Debug, Deserialize)]
struct ListedStatus {
    state: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Made {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// What went wrong with one request.
#[derive(Debug, thiserror::Error)]
pub enum AmError {
    #[error("cannot reach Alertmanager: {0}")]
    Unreachable(String),
    #[error("Alertmanager answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Alertmanager's answer is not what its API v2 sends: {0}")]
    Answer(String),
}

impl AmError {
    fn delivery(self) -> DeliveryError {
        match &self {
            // A refusal of the request itself will not change on a retry.
            AmError::Status { status, .. } if (400..500).contains(status) && *status != 429 => {
                DeliveryError::Permanent(self.to_string())
            }
            _ => DeliveryError::Transient(self.to_string()),
        }
    }
}

impl AlertmanagerClient {
    pub fn new(cfg: &AlertmanagerConfig) -> Result<AlertmanagerClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opsbot/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(AlertmanagerClient {
            http,
            base: cfg.url.clone(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, AmError> {
        let resp = req
            .send()
            .await
            .map_err(|e| AmError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| AmError::Unreachable(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            let body = crate::domain::rich::one_line(&body, 300);
            return Err(AmError::Status { status, body });
        }
        Ok(body)
    }

    async fn listed(&self) -> Result<Vec<Listed>, AmError> {
        let body = self
            .send(self.http.get(format!("{}/api/v2/silences", self.base)))
            .await?;
        serde_json::from_str(&body).map_err(|e| AmError::Answer(e.to_string()))
    }

    /// The silences in force now.
    pub async fn silences(&self) -> Result<Vec<AmSilence>, AmError> {
        Ok(self
            .listed()
            .await?
            .into_iter()
            .filter(|s| s.status.state == "active")
            .map(|s| AmSilence {
                id: s.id,
                matchers: s.matchers,
                created_by: s.created_by,
                comment: s.comment,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
            })
            .collect())
    }

    /// Makes the bot's silence `silence` (or finds it made already);
    /// returns Alertmanager's id for it.
    async fn create(&self, order: &AmOrder) -> Result<Option<String>, AmError> {
        let AmOrder::Create {
            silence,
            matchers,
            starts_at,
            ends_at,
            created_by,
            comment,
        } = order
        else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        if *ends_at <= now {
            // Over before it could be made: nothing to make.
            return Ok(None);
        }
        let mine = mark(*silence);
        if let Some(s) = self
            .listed()
            .await?
            .into_iter()
            .find(|s| s.status.state != "expired" && s.comment.trim_end().ends_with(&mine))
        {
            return Ok(Some(s.id));
        }
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": (*starts_at).max(now),
            "endsAt": ends_at,
            "createdBy": created_by,
            "comment": comment,
        });
        let answer = self
            .send(
                self.http
                    .post(format!("{}/api/v2/silences", self.base))
                    .json(&body),
            )
            .await?;
        let made: Made =
            serde_json::from_str(&answer).map_err(|e| AmError::Answer(e.to_string()))?;
        Ok(Some(made.silence_id))
    }

    /// Ends silence `id`; one that is gone or over already counts as ended.
    async fn expire(&self, id: &str) -> Result<(), AmError> {
        let seg: String = url_segment(id);
        match self
            .send(
                self.http
                    .delete(format!("{}/api/v2/silence/{seg}", self.base)),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(AmError::Status { status: 404, .. }) => Ok(()),
            Err(AmError::Status { body, .. }) if body.contains("already expired") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `id` as one path segment: Alertmanager's ids are UUIDs; anything else
/// is percent-encoded.
fn url_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The sink of the Alertmanager queue.
pub struct AlertmanagerSink {
    client: AlertmanagerClient,
    bot: Bot,
    /// Whether "Alertmanager is down" was said already.
    warned: AtomicBool,
}

impl AlertmanagerSink {
    pub fn new(client: AlertmanagerClient, bot: Bot) -> AlertmanagerSink {
        AlertmanagerSink {
            client,
            bot,
            warned: AtomicBool::new(false),
        }
    }

    fn failed(&self, e: AmError) -> DeliveryError {
        let d = e.delivery();
        match &d {
            DeliveryError::Permanent(why) => {
                error!(reason = %why, "Alertmanager refused a silence order")
            }
            DeliveryError::Transient(why) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    warn!(reason = %why, "cannot reach Alertmanager; silence orders stay queued and are retried");
                }
            }
        }
        d
    }
}

impl Sink for AlertmanagerSink {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Effect::Alertmanager(order) = &item.effect else {
            return Err(DeliveryError::Permanent("not an Alertmanager order".into()));
        };
        match order {
            AmOrder::Create { silence, .. } => {
                let made = self
                    .client
                    .create(order)
                    .await
                    .map_err(|e| self.failed(e))?;
                if let Some(am_id) = made {
                    let event = Event::SilenceMade {
                        silence: *silence,
                        am_id: am_id.clone(),
                    };
                    if let Err(e) = self.bot.submit(event).await {
                        // The retry finds it by its mark and reports again.
                        warn!(silence, %am_id, error = %e, "a silence was made in Alertmanager but not noted");
                        return Err(DeliveryError::Transient(e.to_string()));
                    }
                }
            }
            AmOrder::Expire { id } => self.client.expire(id).await.map_err(|e| self.failed(e))?,
        }
        if self.warned.swap(false, Ordering::Relaxed) {
            info!("Alertmanager answers again; sending the queued silence orders");
        }
        Ok(())
    }
}

/// Reads Alertmanager's silences every `poll` until `stop`, and hands them
/// to the engine.
pub async fn poll_silences(
    client: AlertmanagerClient,
    bot: Bot,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut down = false;
    loop {
        match client.silences().await {
            Ok(silences) => {
                if down {
                    info!("Alertmanager answers again; its silences are read");
                    down = false;
                }
                if let Err(e) = bot.submit(Event::AlertmanagerSilences { silences }).await {
                    warn!(error = %e, "cannot note Alertmanager's silences");
                }
            }
            Err(e) => {
                if !down {
                    warn!(error = %e, "cannot read Alertmanager's silences; /alert silences shows the last ones read");
                    down = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// With `[alerts.alertmanager]` set: the worker of the Alertmanager queue
/// (until `stop_workers`) and the poller of its silences (until `stop`).
pub fn start(
    bot: &Bot,
    cfg: Option<&AlertmanagerConfig>,
    stop: watch::Receiver<bool>,
    stop_workers: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, reqwest::Error> {
    let Some(cfg) = cfg else {
        return Ok(Vec::new());
    };
    let client = AlertmanagerClient::new(cfg)?;
    let sink = AlertmanagerSink::new(client.clone(), bot.clone());
    let worker = bot.outbox_worker(crate::store::Queue::Alertmanager, sink, stop_workers);
    let poller = poll_silences(client, bot.clone(), cfg.poll, stop);
    Ok(vec![tokio::spawn(worker), tokio::spawn(poller)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_as_one_path_segment() {
        assert_eq!(
            url_segment("5f0c9a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21"),
            "5f0c9a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21"
        );
        assert_eq!(url_segment("../x y"), "%2E%2E%2Fx%20y");
    }

    #[test]
    fn refusals_are_final_and_the_rest_is_retried() {
        let status = |status| AmError::Status {
            status,
            body: String::new(),
        };
        assert!(matches!(
            status(400).delivery(),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            status(429).delivery(),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            status(503).delivery(),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            AmError::Unreachable("refused".into()).delivery(),
            DeliveryError::Transient(_)
        ));
    }
}
