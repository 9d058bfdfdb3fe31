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
    pub backend_ref: Option<BackendRef>,
    /// For deploys: what goes where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Tickets this run opened, noted or fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<TicketId>,
    pub timeline: Vec<RunEntry>,
}

impl Run {
    /// A run just asked for: queued, nothing started, nothing on record yet.
    pub fn queued(
        id: RunId,
        job: &str,
        params: BTreeMap<String, String>,
        requester: &UserName,
        channel: &ChannelName,
        now: Timestamp,
        deploy: Option<Deploy>,
    ) -> Run {
        Run {
            id,
            job: job.to_string(),
            params,
            requester: requester.clone(),
            channel: channel.clone(),
            state: RunState::Queued,
            created_at: now,
            started_at: None,
            finished_at: None,
            backend_ref: None,
            deploy,
            tickets: Vec::new(),
            timeline: Vec::new(),
        }
    }

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

/// Where a backend runs a run. Stored, and shown in posts and on the
/// timeline, as the text it always was: `local pid 42` (or `local`),
/// `jenkins queue 12`, `jenkins build #7 https://ci/job/web/7/`. A stored text
/// of any other form reads as [`BackendRef::Other`] and is kept as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum BackendRef {
    /// A process of the local runner (its id, when the system gave one).
    Local { pid: Option<u32> },
    /// A Jenkins queue item, not started yet.
    JenkinsQueue(u64),
    /// A Jenkins build, with its page.
    JenkinsBuild { number: u64, url: Option<String> },
    /// A GitHub Actions workflow dispatched at this Unix time, its run not
    /// found yet (GitHub's dispatch answers with no run id).
    GithubDispatch { at: i64 },
    /// A GitHub Actions workflow run, with its page.
    GithubRun { id: u64, url: Option<String> },
    /// A GitLab CI pipeline, with its page.
    GitlabPipeline { id: u64, url: Option<String> },
    /// A text no backend writes today.
    Other(String),
}

impl BackendRef {
    /// The forge's own id of a workflow run or pipeline: `github:ID`,
    /// `gitlab:ID`.
    pub fn forge_run(&self) -> Option<String> {
        match self {
            BackendRef::GithubRun { id, .. } => Some(format!("github:{id}")),
            BackendRef::GitlabPipeline { id, .. } => Some(format!("gitlab:{id}")),
            _ => None,
        }
    }
}

impl fmt::Display for BackendRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendRef::Local { pid: None } => f.write_str("local"),
            BackendRef::Local { pid: Some(p) } => write!(f, "local pid {p}"),
            BackendRef::JenkinsQueue(q) => write!(f, "jenkins queue {q}"),
            BackendRef::JenkinsBuild { number, url: None } => write!(f, "jenkins build #{number}"),
            BackendRef::JenkinsBuild {
                number,
                url: Some(u),
            } => write!(f, "jenkins build #{number} {u}"),
            BackendRef::GithubDispatch { at } => write!(f, "github dispatch at {at}"),
            BackendRef::GithubRun { id, url: None } => write!(f, "github run {id}"),
            BackendRef::GithubRun { id, url: Some(u) } => write!(f, "github run {id} {u}"),
            BackendRef::GitlabPipeline { id, url: None } => write!(f, "gitlab pipeline {id}"),
            BackendRef::GitlabPipeline { id, url: Some(u) } => {
                write!(f, "gitlab pipeline {id} {u}")
            }
            BackendRef::Other(s) => f.write_str(s),
        }
    }
}

impl From<String> for BackendRef {
    fn from(s: String) -> Self {
        /// Digits only, so that the text reads back the same.
        fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        }
        if s == "local" {
            return BackendRef::Local { pid: None };
        }
        if let Some(pid) = s.strip_prefix("local pid ").and_then(num) {
            return BackendRef::Local { pid: Some(pid) };
        }
        if let Some(q) = s.strip_prefix("jenkins queue ").and_then(num) {
            return BackendRef::JenkinsQueue(q);
        }
        if let Some(rest) = s.strip_prefix("jenkins build #") {
            let (n, url) = match rest.split_once(' ') {
                Some((n, u)) => (n, Some(u.to_string())),
                None => (rest, None),
            };
            if let Some(number) = num(n) {
                return BackendRef::JenkinsBuild { number, url };
            }
        }
        if let Some(at) = s.strip_prefix("github dispatch at ").and_then(num) {
            return BackendRef::GithubDispatch { at };
        }
        for (prefix, github) in [("github run ", true), ("gitlab pipeline ", false)] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (n, url) = match rest.split_once(' ') {
                    Some((n, u)) => (n, Some(u.to_string())),
                    None => (rest, None),
                };
                if let Some(id) = num(n) {
                    return if github {
                        BackendRef::GithubRun { id, url }
                    } else {
                        BackendRef::GitlabPipeline { id, url }
                    };
                }
            }
        }
        BackendRef::Other(s)
    }
}

impl From<BackendRef> for String {
    fn from(r: BackendRef) -> String {
        match r {
            BackendRef::Other(s) => s,
            r => r.to_string(),
        }
    }
}

/// What a backend reports about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunUpdate {
    /// Handed to the backend (a Jenkins queue item); not started yet.
    Submitted {
        backend_ref: BackendRef,
    },
    /// The backend cannot be reached; the order is retried.
    Waiting {
        reason: String,
    },
    Started {
        backend_ref: BackendRef,
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
    /// Report a run's state as a commit status on the repository's forge.
    Status {
        status: crate::domain::code::CommitStatus,
    },
    /// Read with git the commits a succeeded deploy brought: those of
    /// `to` that `from` (the environment's previous version, None on its
    /// first deploy) had not, in the repository `repo`. Answered with
    /// [`crate::engine::Event::DeployCommits`].
    DeployCommits {
        run: RunId,
        repo: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        to: String,
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
    /// The maintenance window it opened (its environment's `maintenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::domain::maintenance::DeployWindow>,
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
    /// The commit git resolved the version to, once it did (the next
    /// deploy's commits are counted from it, even if the version was a
    /// branch that moved since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs, and run updates in the commit log, stored before the reference
    /// was typed still read, as the same variant and the same text.
    #[test]
    fn backend_refs_read_from_the_stored_text() {
        let cases = [
            ("local pid 42", BackendRef::Local { pid: Some(42) }),
            ("local", BackendRef::Local { pid: None }),
            ("jenkins queue 12", BackendRef::JenkinsQueue(12)),
            (
                "jenkins build #7 http://j/job/a/7/",
                BackendRef::JenkinsBuild {
                    number: 7,
                    url: Some("http://j/job/a/7/".into()),
                },
            ),
            (
                "jenkins build #7",
                BackendRef::JenkinsBuild {
                    number: 7,
                    url: None,
                },
            ),
            (
                "jenkins queue x",
                BackendRef::Other("jenkins queue x".into()),
            ),
            ("pid 3", BackendRef::Other("pid 3".into())),
            (
                "github dispatch at 1764680000",
                BackendRef::GithubDispatch { at: 1764680000 },
            ),
            (
                "github run 289782451 https://github.com/o/r/actions/runs/289782451",
                BackendRef::GithubRun {
                    id: 289782451,
                    url: Some("https://github.com/o/r/actions/runs/289782451".into()),
                },
            ),
            (
                "gitlab pipeline 31",
                BackendRef::GitlabPipeline { id: 31, url: None },
            ),
            ("github run x", BackendRef::Other("github run x".into())),
        ];
        for (text, want) in cases {
            let json = serde_json::Value::from(text);
            let got: BackendRef = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text);
            assert_eq!(serde_json::to_value(&got).unwrap(), json);
        }

        let old_run = r#"{"id":"RUN-3","job":"web","params":{"ref":"main"},
            "requester":"bella","channel":"ops","state":"running",
            "created_at":"2026-03-24T10:00:00Z","started_at":"2026-03-24T10:00:01Z",
            "backend_ref":"jenkins build #7 http://j/job/web/7/","timeline":[]}"#;
        let run: Run = serde_json::from_str(old_run).unwrap();
        assert_eq!(
            run.backend_ref,
            Some(BackendRef::JenkinsBuild {
                number: 7,
                url: Some("http://j/job/web/7/".into())
            })
        );
        let again = serde_json::to_value(&run).unwrap();
        assert_eq!(again["backend_ref"], "jenkins build #7 http://j/job/web/7/");

        let old_update = r#"{"kind":"submitted","backend_ref":"jenkins queue 12"}"#;
        let update: RunUpdate = serde_json::from_str(old_update).unwrap();
        assert_eq!(
            update,
            RunUpdate::Submitted {
                backend_ref: BackendRef::JenkinsQueue(12)
            }
        );
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::from_str::<serde_json::Value>(old_update).unwrap()
        );
    }
}
