//! Jobs: a program and its arguments with typed, validated parameters, and who
//! may run it; loaded from `commands/*.toml` by `config::jobs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::domain::error::UserError;
use crate::domain::org::{did_you_mean, Org};
use crate::domain::{TeamName, UserName};

/// What a job gets of the bot's environment when its file says nothing:
/// enough for a script to find programs, its home, language and time zone.
pub const SAFE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// A job's environment, besides `OPSBOT_RUN` and `OPSBOT_PARAM_*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobEnv {
    /// Passed through from the bot's environment when set there.
    pub pass: Vec<String>,
    /// Set to these values.
    pub set: BTreeMap<String, String>,
}

/// One typed parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub description: String,
    /// Whole-value regex.
    pub pattern: Regex,
    pub default: Option<String>,
}

/// Who may run a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    Anyone,
    Operators,
    ReleaseManagers,
    Team(TeamName),
    Person(UserName),
}

/// A job from `commands/`.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub description: String,
    pub team: Option<TeamName>,
    pub backend: Backend,
    /// The local runner's program (empty for Jenkins jobs).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub workdir: PathBuf,
    pub who: Vec<Allowed>,
    /// A failed build with `ref` = this opens a ticket for the team.
    pub main_ref: String,
    pub params: Vec<Param>,
    /// What the process's environment holds (it starts cleared).
    pub env: JobEnv,
    /// The file it came from.
    pub file: PathBuf,
}

/// Where a job runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    /// The job's full name in Jenkins (`folder/name`).
    Jenkins(String),
    /// A workflow of GitHub Actions, started by `workflow_dispatch`.
    GithubActions(ForgeJob),
    /// A GitLab CI pipeline, started by the pipeline trigger API.
    GitlabCi(ForgeJob),
}

/// A job that runs on a forge's own CI (GitHub Actions, GitLab CI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgeJob {
    /// The `[repos.NAME]` it runs in.
    pub repo: String,
    /// GitHub: the workflow's file (`ci.yml`); GitLab: empty.
    pub workflow: String,
    /// The ref to run on, `{param}` replaced (default `{ref}` when the job
    /// has a `ref` parameter, else its `main_ref`).
    pub git_ref: String,
    /// GitHub: the `workflow_dispatch` inputs; GitLab: the pipeline's
    /// variables; `{param}` replaced in each value.
    pub inputs: BTreeMap<String, String>,
    /// GitHub: the input that carries the bot's run id (`RUN-7`), so that
    /// the run it started is found by its name.
    pub id_input: Option<String>,
    /// GitLab: the env var holding the pipeline trigger token.
    pub trigger_token_env: Option<String>,
    /// How often a running workflow or pipeline is looked at (it backs off
    /// to 4× this).
    pub poll: Duration,
}

impl Backend {
    /// The forge CI job, for GitHub Actions and GitLab CI.
    pub fn forge(&self) -> Option<&ForgeJob> {
        match self {
            Backend::GithubActions(f) | Backend::GitlabCi(f) => Some(f),
            Backend::Local | Backend::Jenkins(_) => None,
        }
    }
}

/// `s` with each `{param}` replaced by its value.
pub fn fill(s: &str, params: &BTreeMap<String, String>) -> String {
    let mut s = s.to_string();
    for (k, v) in params {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

impl Allowed {
    /// `anyone`, `operators`, `release_managers`, `team:NAME` (of a defined
    /// team) or a person the config names. Anything else is refused with the
    /// names that are known and the likely one.
    pub fn parse(item: &str, org: &Org) -> Result<Allowed, String> {
        match item {
            "anyone" => return Ok(Allowed::Anyone),
            "operators" => return Ok(Allowed::Operators),
            "release_managers" => return Ok(Allowed::ReleaseManagers),
            _ => {}
        }
        if let Some(t) = item.strip_prefix("team:") {
            if let Some(t) = TeamName::parse(t)
                .ok()
                .filter(|t| org.teams.contains_key(t))
            {
                return Ok(Allowed::Team(t));
            }
            let known: Vec<&str> = org.teams.keys().map(|t| t.as_str()).collect();
            return Err(format!(
                "`{item}` is not a team the config defines; known teams: {}{}",
                known.join(", "),
                did_you_mean(t, &known)
            ));
        }
        let people = org.people();
        if let Some(u) = UserName::parse(item).ok().filter(|u| people.contains(u)) {
            return Ok(Allowed::Person(u));
        }
        let teams: Vec<String> = org.teams.keys().map(|t| format!("team:{t}")).collect();
        let known: Vec<&str> = ["anyone", "operators", "release_managers"]
            .into_iter()
            .chain(teams.iter().map(String::as_str))
            .chain(people.iter().map(|p| p.as_str()))
            .collect();
        let hint = if org.teams.keys().any(|t| t.as_str() == item) {
            format!(" (did you mean `team:{item}`?)")
        } else {
            did_you_mean(item, &known)
        };
        Err(format!(
            "`{item}` is not anyone, operators, release_managers, team:NAME or a person the config names{hint}; known: {}",
            known.join(", ")
        ))
    }

    pub fn admits(&self, user: &UserName, org: &Org) -> bool {
        match self {
            Allowed::Anyone => true,
            Allowed::Operators => org.is_operator(user),
            Allowed::ReleaseManagers => org.is_release_manager(user),
            Allowed::Team(t) => org.is_member(user, t),
            Allowed::Person(p) => p == user,
        }
    }
}

/// A list of who may, in words, naming the people.
pub fn describe(list: &[Allowed], org: &Org) -> String {
    let names = |v: &[UserName]| v.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ");
    list.iter()
        .map(|a| match a {
            Allowed::Anyone => "anyone".to_string(),
            Allowed::Operators => format!("operators ({})", names(&org.operators)),
            Allowed::ReleaseManagers => {
                format!("release managers ({})", names(&org.release_managers))
            }
            Allowed::Team(t) => match org.team(t) {
                Some(tm) => format!("members of {t} ({})", names(&tm.members)),
                None => format!("members of {t}"),
            },
            Allowed::Person(p) => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Job {
    /// Whether `user` may run it.
    pub fn admits(&self, user: &UserName, org: &Org) -> bool {
        self.who.iter().any(|a| a.admits(user, org))
    }

    /// Who may run it, in words.
    pub fn who_text(&self) -> String {
        self.who
            .iter()
            .map(|a| match a {
                Allowed::Anyone => "anyone".to_string(),
                Allowed::Operators => "operators".to_string(),
                Allowed::ReleaseManagers => "release managers".to_string(),
                Allowed::Team(t) => format!("members of {t}"),
                Allowed::Person(p) => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks the given values against the parameters (defaults filled in).
    pub fn check_params(
        &self,
        given: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, UserError> {
        let mut out = BTreeMap::new();
        for (k, v) in given {
            let Some(p) = self.params.iter().find(|p| &p.name == k) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(UserError::new(format!(
                    "job {} has no parameter `{}`; its parameters are: {}",
                    self.name,
                    crate::domain::rich::clip_plain(k, 40),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            if !p.pattern.is_match(v) {
                return Err(UserError::new(format!(
                    "`{}` = `{}` does not match the pattern {} of job {}",
                    p.name,
                    crate::domain::rich::one_line(v, 60),
                    p.pattern
                        .as_str()
                        .trim_start_matches("^(?:")
                        .trim_end_matches(")$"),
                    self.name
                )));
            }
            out.insert(k.clone(), v.clone());
        }
        for p in &self.params {
            if !out.contains_key(&p.name) {
                match &p.default {
                    Some(d) => {
                        out.insert(p.name.clone(), d.clone());
                    }
                    None => {
                        return Err(UserError::new(format!(
                            "job {} needs `{}:` ({})",
                            self.name, p.name, p.description
                        )))
                    }
                }
            }
        }
        Ok(out)
    }

    /// The argument vector: each `{param}` replaced inside its argument.
    /// Values stay one argument each; nothing goes through a shell.
    pub fn argv(&self, params: &BTreeMap<String, String>) -> Vec<String> {
        self.args
            .iter()
            .map(|a| {
                let mut s = a.clone();
                for (k, v) in params {
                    s = s.replace(&format!("{{{k}}}"), v);
                }
                s
            })
            .collect()
    }
}
