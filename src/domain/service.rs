//! Services deployed from chat and their environments.

use std::collections::BTreeMap;

use crate::domain::job::Allowed;
use crate::domain::org::Org;
use crate::domain::{TeamName, UserName};

/// A service that is deployed from chat.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub team: Option<TeamName>,
    /// The repository (`[repos.NAME]`) its versions are commits or tags
    /// of: a succeeded deploy resolves the tickets its new commits fix.
    pub repo: Option<String>,
    pub environments: BTreeMap<String, Environment>,
}

/// One environment of a service.
#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub job: String,
    pub protected: bool,
    pub approvers: Vec<Allowed>,
    /// A deploy opens a maintenance window this long for the service and
    /// environment (`maintenance = "10m"`).
    pub maintenance: Option<std::time::Duration>,
}

impl Environment {
    /// Whether `user` is one of its approvers (the requester's own approval
    /// is refused apart from this).
    pub fn approves(&self, user: &UserName, org: &Org) -> bool {
        self.approvers.iter().any(|a| a.admits(user, org))
    }
}
