//! People, roles and teams, as the configuration names them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::{ChannelName, TeamName, UserName};

/// What assigning a ticket to a team does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignPolicy {
    /// The team (its lead picks someone).
    #[default]
    Team,
    /// The team's on-call person (the team's rotation decides).
    Oncall,
    /// The member with the fewest assigned or in-progress tickets.
    LeastLoaded,
}

/// People, roles and teams.
#[derive(Clone, Debug, Default)]
pub struct Org {
    pub operators: Vec<UserName>,
    pub qa_team: Option<TeamName>,
    pub release_managers: Vec<UserName>,
    pub teams: BTreeMap<TeamName, Team>,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub name: TeamName,
    pub channel: ChannelName,
    pub members: Vec<UserName>,
    pub lead: Option<UserName>,
    pub description: Option<String>,
    pub assign: AssignPolicy,
}

/// A role a person holds, for permissions and `/help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Operator,
    Qa,
    ReleaseManager,
    /// A member of any team.
    Member,
}

impl Org {
    pub fn is_operator(&self, u: &UserName) -> bool {
        self.operators.contains(u)
    }

    pub fn is_release_manager(&self, u: &UserName) -> bool {
        self.release_managers.contains(u)
    }

    pub fn qa(&self) -> Option<&Team> {
        self.qa_team.as_ref().and_then(|t| self.teams.get(t))
    }

    pub fn is_qa(&self, u: &UserName) -> bool {
        self.qa().is_some_and(|t| t.members.contains(u))
    }

    pub fn team(&self, name: &TeamName) -> Option<&Team> {
        self.teams.get(name)
    }

    pub fn is_member(&self, u: &UserName, team: &TeamName) -> bool {
        self.teams.get(team).is_some_and(|t| t.members.contains(u))
    }

    pub fn teams_of<'a>(&'a self, u: &'a UserName) -> impl Iterator<Item = &'a Team> + 'a {
        self.teams.values().filter(move |t| t.members.contains(u))
    }

    pub fn has_role(&self, u: &UserName, role: Role) -> bool {
        match role {
            Role::Operator => self.is_operator(u),
            Role::Qa => self.is_qa(u),
            Role::ReleaseManager => self.is_release_manager(u),
            Role::Member => self.teams_of(u).next().is_some(),
        }
    }

    /// Everyone the configuration names, sorted.
    pub fn people(&self) -> Vec<UserName> {
        let mut all: Vec<UserName> = self
            .operators
            .iter()
            .chain(self.release_managers.iter())
            .chain(self.teams.values().flat_map(|t| t.members.iter()))
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn team_names(&self) -> String {
        self.teams
            .keys()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every channel the configuration uses.
    pub fn channels(&self) -> Vec<ChannelName> {
        let mut all: Vec<ChannelName> = self.teams.values().map(|t| t.channel.clone()).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// ` (did you mean `x`?)` when a known name is close enough to `name` to be
/// a typo of it; empty otherwise.
pub fn did_you_mean(name: &str, known: &[&str]) -> String {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, _)| *d > 0 && *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// A team name that names no team: what is known, and the likely one.
pub fn no_team(name: &str, known: &[&str]) -> String {
    format!(
        "no team `{name}` is defined; known teams: {}{}",
        known.join(", "),
        did_you_mean(name, known)
    )
}
