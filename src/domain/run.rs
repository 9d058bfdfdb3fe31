//! Runs: builds (and, later, deploys) as records with their own state
//! machine and timeline. Pure types and rules.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::error::UserError;
use crate::domain::{ChannelName, Source, TicketId, Timestamp, UserName};

/// `RUN-N`, N counting from 1 and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(pub u64);

impl RunId {
    pub fn parse(raw: &str) -> Result<RunId, UserError> {
        let s = raw.trim();
        let digits = s
            .strip_prefix("RUN-")
            .or_else(|| s.strip_prefix("run-"))
            .unwrap_or(s);
        match digits.parse::<u64>() {
            Ok(n) if n > 0 && digits.chars().all(|c| c.is_ascii_digit()) => Ok(RunId(n)),
            _ => Err(UserError::new(format!(
                "`{}` is not a run id: run ids look like RUN-3",
                crate::domain::rich::clip_plain(s, 40)
            ))),
        }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RUN-{}", self.0)
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RunId::parse(&s).map_err(|e| e.to_string())
    }
}

/// The states of a run.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunState {
    Queued,
    WaitingApproval,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

/// One line of a run's story.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEntry {
    pub at: Timestamp,
    pub actor: UserName,
    pub source: Source,
    pub state: RunState,
    pub text: String,
}

/// A build or deploy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub job: String,
    pub params: BTreeMap<String, String>,
    pub requester: UserName,
    /// Where it was asked for.
    pub channel: ChannelName,
    pub state: RunState,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Where the backend runs it: a local process id, a Jenkins build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<String>,
    /// For deploys: what goes where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Tickets this run opened, noted or fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<TicketId>,
    pub timeline: Vec<RunEntry>,
}

impl Run {
    /// `ref=main` and the like, for posts.
    pub fn params_text(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::domain::rich::one_line(v, 60)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Seconds from start (or creation) to the end, when it ended.
    pub fn duration_secs(&self) -> Option<f64> {
        let end = self.finished_at?;
        let start = self.started_at.unwrap_or(self.created_at);
        Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
    }
}

/// What a backend reports about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunUpdate {
    /// Handed to the backend (a Jenkins queue item); not started yet.
    Submitted {
        backend_ref: String,
    },
    /// The backend cannot be reached; the order is retried.
    Waiting {
        reason: String,
    },
    Started {
        backend_ref: String,
    },
    Finished {
        success: bool,
        /// Why it ended, in words (`exit code 2`, `timed out after 2m`).
        reason: String,
        /// The output's last lines.
        tail: String,
    },
    /// The bot restarted while a local process ran: it is gone.
    Lost {
        reason: String,
    },
}

/// An order to a job backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum JobOrder {
    Start {
        run: RunId,
        job: String,
        params: BTreeMap<String, String>,
    },
    Cancel {
        run: RunId,
    },
}

/// What a deploy run deploys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    pub service: String,
    pub env: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// For a rollback: the run whose version it restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<RunId>,
    /// Who approved it, for protected environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<UserName>,
}

impl Deploy {
    /// `web/production`: the key of its lock and history.
    pub fn key(&self) -> String {
        format!("{}/{}", self.service, self.env)
    }
}

/// A deploy that succeeded, in a service environment's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    pub run: RunId,
    pub version: String,
    pub at: Timestamp,
}
