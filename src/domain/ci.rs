//! Runs of a forge's own CI that the forge reports by webhook (GitHub's
//! `workflow_run`, GitLab's `Pipeline Hook`): typed at the edge, so that
//! the engine reports one the bot did not start like one it did. Pure
//! types.

use crate::domain::code::Provider;

/// Where a forge's run is, in the forge's words made few.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForgeRunState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// A workflow run (GitHub) or pipeline (GitLab), as its webhook says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgeRun {
    pub provider: Provider,
    /// The `[repos.NAME]` it ran in.
    pub repo: String,
    /// The forge's id of the run or pipeline.
    pub id: u64,
    /// The workflow's name (GitHub), `pipeline` (GitLab).
    pub workflow: String,
    /// GitHub: the workflow's file (`ci.yml`).
    pub workflow_file: Option<String>,
    pub branch: String,
    pub sha: String,
    pub state: ForgeRunState,
    /// The forge's word for it (`in_progress`, `failure`, `failed`, …).
    pub word: String,
    pub url: Option<String>,
    /// GitHub: the run's `display_title` (a bot-started run names its id there).
    pub title: String,
    /// What started it: GitHub's `event` (`push`, `workflow_dispatch`, …),
    /// GitLab's `source` (`push`, `trigger`, `web`, …).
    pub event: String,
    /// Who started it, as the forge names them.
    pub actor: String,
    pub default_branch: Option<String>,
    /// A failed run's failed job's log tail, when the adapter could read it.
    pub tail: String,
}

impl ForgeRun {
    /// `github:ID`, `gitlab:ID`: as [`crate::domain::run::BackendRef::forge_run`].
    pub fn key(&self) -> String {
        format!("{}:{}", self.provider, self.id)
    }

    /// Whether the bot's own kind of start made it (a dispatch, a trigger).
    pub fn started_by_api(&self) -> bool {
        matches!(self.event.as_str(), "workflow_dispatch" | "trigger")
    }
}
