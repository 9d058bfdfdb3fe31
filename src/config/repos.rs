//! `[repos.NAME]`: the repositories whose pushes the bot builds (where they
//! live, which branches, which jobs, which team owns them, the webhook
//! secret and API token by env var, how often a plain Git server is
//! polled), and `[people.NAME] emails`: whose commits are whose.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{did_you_mean, no_team, EnvSecret, Org, Validator, Written};
use crate::domain::code::{check_pattern, Provider};
use crate::domain::job::Job;
use crate::domain::rich::clip_plain;
use crate::domain::{TeamName, UserName};

/// `[repos.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepo {
    /// What `git` fetches (and what a forge's payload names).
    pub(super) url: Written<String>,
    pub(super) provider: Written<String>,
    /// Branch names or patterns (`*`, `?`); none: the default branch.
    #[serde(default)]
    pub(super) branches: Vec<Written<String>>,
    /// Jobs from `commands/` run for each new head.
    #[serde(default)]
    pub(super) on_push: Vec<Written<String>>,
    pub(super) team: Written<String>,
    /// The webhook secret's env var (forges).
    pub(super) secret_env: Option<Written<String>>,
    /// The API token's env var (commit statuses).
    pub(super) token_env: Option<Written<String>>,
    /// How often a `git` repository is looked at.
    pub(super) poll: Option<Written<String>>,
    /// Where a commit's page is: `{web_url}/commit/{sha}`.
    pub(super) web_url: Option<Written<String>>,
    /// The forge's API, for commit statuses (default: api.github.com, or
    /// `/api/v4` (GitLab) or `/api/v1` (Gitea) on the host of `url`).
    pub(super) api_url: Option<Written<String>>,
}

pub(super) use super::people::RawPerson;

/// A repository the bot follows.
#[derive(Clone, Debug)]
pub struct RepoConfig {
    pub name: String,
    pub url: String,
    pub provider: Provider,
    /// Patterns; empty: the default branch only.
    pub branches: Vec<String>,
    pub on_push: Vec<String>,
    pub team: TeamName,
    /// The webhook secret (unset: the repo's hooks are refused).
    pub secret: Option<EnvSecret>,
    /// The API token, for commit statuses.
    pub token: Option<EnvSecret>,
    /// For `provider = "git"`.
    pub poll: Duration,
    pub web_url: Option<String>,
    /// The forge's API base, without a trailing `/`.
    pub api_url: Option<String>,
}

/// The default branch when a forge does not say: `main`.
pub const DEFAULT_BRANCH: &str = "main";

impl RepoConfig {
    /// Whether pushes to `branch` are followed; `default` is the
    /// repository's default branch, when known.
    pub fn follows(&self, branch: &str, default: Option<&str>) -> bool {
        if self.branches.is_empty() {
            return branch == default.unwrap_or(DEFAULT_BRANCH);
        }
        self.branches
            .iter()
            .any(|p| crate::domain::code::pattern_matches(p, branch))
    }

    /// Whether `branch` is the main branch, whose failures are tickets:
    /// the default branch, or else the first branch named without a
    /// pattern, or else `main`.
    pub fn is_main(&self, branch: &str, default: Option<&str>) -> bool {
        let main = default
            .or_else(|| {
                self.branches
                    .iter()
                    .find(|b| !b.contains(['*', '?']))
                    .map(String::as_str)
            })
            .unwrap_or(DEFAULT_BRANCH);
        branch == main
    }

    /// Whether commit statuses go to the forge: a forge, and its token set.
    pub fn sends_statuses(&self) -> bool {
        self.provider != Provider::Git
            && self.api_url.is_some()
            && self.token.as_ref().is_some_and(|t| t.value.is_some())
    }

    /// `owner/name` (GitLab: the project's whole path) from `url`.
    pub fn path(&self) -> Option<String> {
        let u = self.url.trim().trim_end_matches('/');
        let u = u.strip_suffix(".git").unwrap_or(u);
        let rest = match u.split_once("://") {
            Some((_, rest)) => rest.split_once('/')?.1,
            None => u.split_once(':')?.1,
        };
        let rest = rest.trim_matches('/');
        rest.contains('/').then(|| rest.to_string())
    }

    /// The page of a commit, when the config says where pages are.
    pub fn commit_url(&self, sha: &str) -> Option<String> {
        self.web_url
            .as_ref()
            .map(|w| format!("{}/commit/{sha}", w.trim_end_matches('/')))
    }

    /// A forge payload's names for a repository (`owner/name`, its pages
    /// and clone URLs): whether one of them is this repository.
    pub fn is_named_by(&self, names: &[&str]) -> bool {
        let mine = normal(&self.url);
        names.iter().any(|n| {
            let n = normal(n);
            !n.is_empty() && (n == mine || mine.ends_with(&format!("/{n}")))
        })
    }
}

/// A URL or path without scheme, credentials, `.git` or a trailing `/`,
/// `:` read as `/`, lowercased: `https://x/a/b.git` and `git@x:a/b` both
/// compare as `x/a/b`.
fn normal(u: &str) -> String {
    let u = u.trim().trim_end_matches('/');
    let u = u.strip_suffix(".git").unwrap_or(u);
    let u = u.split_once("://").map_or(u, |(_, rest)| rest);
    let u = u.rsplit_once('@').map_or(u, |(_, rest)| rest);
    u.replace(':', "/").to_ascii_lowercase()
}

/// `https://host[:port]` of an http(s) URL (`git@host:path` has none).
fn web_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split('/').next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

impl Validator<'_> {
    /// `[repos.*]`, once the jobs of `commands/` are known.
    pub(super) fn validate_repos(
        &mut self,
        raw: &BTreeMap<Written<String>, RawRepo>,
        org: &Org,
        jobs: &BTreeMap<String, Job>,
    ) -> BTreeMap<String, RepoConfig> {
        let mut out = BTreeMap::new();
        for (name, r) in raw {
            let key = |k: &str| format!("repos.{name}.{k}");
            let mut ok = true;
            if TeamName::parse(name).is_err() {
                self.error(
                    format!("repos.{name}"),
                    name.span(),
                    format!(
                        "`{}` is not a repository name the bot can use: lowercase letters, digits, `-`, `_` or `.`, such as [repos.web]",
                        clip_plain(name, 40)
                    ),
                );
                ok = false;
            }
            if r.url.trim().is_empty() {
                self.error(
                    key("url"),
                    r.url.span(),
                    "must say where the repository is, such as \"https://github.com/acme/web.git\""
                        .into(),
                );
                ok = false;
            }
            let provider = match r.provider.trim().parse::<Provider>() {
                Ok(p) => p,
                Err(_) => {
                    self.error(
                        key("provider"),
                        r.provider.span(),
                        format!(
                            "must be \"github\", \"gitlab\", \"gitea\" (webhooks) or \"git\" (polled with git ls-remote); got {:?}",
                            clip_plain(&r.provider, 40)
                        ),
                    );
                    ok = false;
                    Provider::Git
                }
            };
            let mut branches = Vec::new();
            for (i, b) in r.branches.iter().enumerate() {
                match check_pattern(b.trim()) {
                    Ok(()) => branches.push(b.trim().to_string()),
                    Err(e) => {
                        self.error(format!("repos.{name}.branches[{i}]"), b.span(), e);
                        ok = false;
                    }
                }
            }
            let mut on_push = Vec::new();
            for (i, j) in r.on_push.iter().enumerate() {
                if jobs.contains_key(j.as_str()) {
                    on_push.push(j.to_string());
                } else {
                    let known: Vec<&str> = jobs.keys().map(String::as_str).collect();
                    self.error(
                        format!("repos.{name}.on_push[{i}]"),
                        j.span(),
                        format!(
                            "there is no job `{}` in commands/; jobs are: {}{}",
                            clip_plain(j, 40),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            },
                            did_you_mean(j, &known)
                        ),
                    );
                    ok = false;
                }
            }
            let team = match TeamName::parse(&r.team) {
                Ok(t) if org.team(&t).is_some() => Some(t),
                Ok(t) => {
                    let known: Vec<&str> = org.teams.keys().map(|k| k.as_str()).collect();
                    self.error(key("team"), r.team.span(), no_team(t.as_str(), &known));
                    None
                }
                Err(e) => {
                    self.error(key("team"), r.team.span(), e.to_string());
                    None
                }
            };
            let env = |v: &mut Self, k: &str, raw: Option<&Written<String>>, off: &str| {
                let raw = raw?;
                let s = EnvSecret::read(raw.trim());
                if s.value.is_none() {
                    v.warn(
                        key(k),
                        raw.span(),
                        format!("{} is not set: {off}", raw.trim()),
                    );
                }
                Some(s)
            };
            let secret = match provider {
                Provider::Git => None,
                _ => {
                    if r.secret_env.is_none() {
                        self.warn(
                            format!("repos.{name}"),
                            name.span(),
                            format!("no secret_env: the {provider} hook of {name} is refused until its secret is set"),
                        );
                    }
                    env(
                        self,
                        "secret_env",
                        r.secret_env.as_ref(),
                        &format!("the {provider} hook of {name} refuses every request"),
                    )
                }
            };
            let token = env(
                self,
                "token_env",
                r.token_env.as_ref(),
                "commit statuses are not sent",
            );
            let poll = match &r.poll {
                None => Duration::from_secs(60),
                Some(p) => match humantime::parse_duration(p.trim()) {
                    Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(86_400) => d,
                    _ => {
                        self.error(
                            key("poll"),
                            p.span(),
                            format!(
                                "`{}` is not a duration from 1s to 1d, such as \"1m\"",
                                clip_plain(p, 40)
                            ),
                        );
                        ok = false;
                        Duration::from_secs(60)
                    }
                },
            };
            let web_url = match &r.web_url {
                Some(w) if !(w.starts_with("http://") || w.starts_with("https://")) => {
                    self.error(
                        key("web_url"),
                        w.span(),
                        format!("`{}` is not an http(s) URL", clip_plain(w, 80)),
                    );
                    ok = false;
                    None
                }
                Some(w) => Some(w.trim().trim_end_matches('/').to_string()),
                None => None,
            };
            let api_url = match (&r.api_url, provider) {
                (Some(a), _) if !(a.starts_with("http://") || a.starts_with("https://")) => {
                    self.error(
                        key("api_url"),
                        a.span(),
                        format!("`{}` is not an http(s) URL", clip_plain(a, 80)),
                    );
                    ok = false;
                    None
                }
                (Some(a), _) => Some(a.trim().trim_end_matches('/').to_string()),
                (None, Provider::Github) => Some("https://api.github.com".to_string()),
                (None, Provider::Git) => None,
                (None, p) => web_host(&r.url).map(|h| {
                    format!(
                        "{h}{}",
                        if p == Provider::Gitlab {
                            "/api/v4"
                        } else {
                            "/api/v1"
                        }
                    )
                }),
            };
            if let (true, Some(team)) = (ok, team) {
                out.insert(
                    name.to_string(),
                    RepoConfig {
                        name: name.to_string(),
                        url: r.url.trim().to_string(),
                        provider,
                        branches,
                        on_push,
                        team,
                        secret,
                        token,
                        poll,
                        web_url,
                        api_url,
                    },
                );
            }
        }
        out
    }

    /// `[people.*] emails`: each address (lowercased) → its person (a
    /// name nobody else in bot.toml has is said by `validate_people`).
    pub(super) fn validate_commit_emails(
        &mut self,
        raw: &BTreeMap<Written<String>, RawPerson>,
        org: &Org,
    ) -> BTreeMap<String, UserName> {
        let people = org.people();
        let mut out: BTreeMap<String, UserName> = BTreeMap::new();
        for (name, p) in raw {
            let Ok(user) = UserName::parse(name) else {
                continue;
            };
            if !people.contains(&user) {
                continue;
            }
            for (i, e) in p.emails.iter().enumerate() {
                let addr = e.trim().to_ascii_lowercase();
                let key = format!("people.{name}.emails[{i}]");
                let shaped = addr
                    .split_once('@')
                    .is_some_and(|(a, d)| !a.is_empty() && !d.is_empty())
                    && !addr.contains(char::is_whitespace);
                if !shaped {
                    self.error(
                        key,
                        e.span(),
                        format!(
                            "`{}` is not an e-mail address, such as \"bob@example.com\"",
                            clip_plain(e, 60)
                        ),
                    );
                    continue;
                }
                match out.get(&addr) {
                    Some(other) if other != &user => {
                        self.error(key, e.span(), format!("`{addr}` is already {other}'s"));
                    }
                    _ => {
                        out.insert(addr, user.clone());
                    }
                }
            }
        }
        out
    }
}

/// The `check` summary's lines for the repositories.
pub(super) fn summary(repos: &BTreeMap<String, RepoConfig>, authors: usize) -> String {
    let mut s = String::new();
    for r in repos.values() {
        let set = |e: &Option<EnvSecret>, off: &str| match e {
            Some(EnvSecret {
                var,
                value: Some(_),
            }) => format!("{var} set"),
            Some(EnvSecret { var, value: None }) => format!("{var} NOT SET, {off}"),
            None => format!("none, {off}"),
        };
        let how = match r.provider {
            Provider::Git => format!("polled every {}", humantime::format_duration(r.poll)),
            p => format!(
                "POST /hooks/{p}, secret {}",
                set(&r.secret, "hooks refused")
            ),
        };
        s.push_str(&format!(
            "repo {} ({}, {}): branches {}; on push {}; team {}; {how}; token {}\n",
            r.name,
            r.provider,
            r.url,
            if r.branches.is_empty() {
                "the default branch".to_string()
            } else {
                r.branches.join(", ")
            },
            if r.on_push.is_empty() {
                "nothing".to_string()
            } else {
                r.on_push.join(", ")
            },
            r.team,
            set(&r.token, "no commit statuses"),
        ));
    }
    if authors > 0 {
        s.push_str(&format!(
            "commit authors mapped to people: {authors} addresses\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, Severity};

    const BASE: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
"#;

    fn parse(extra: &str) -> Result<crate::config::Loaded, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("commands")).unwrap();
        std::fs::write(
            dir.path().join("commands/test-web.toml"),
            "description = \"t\"\nprogram = \"/bin/true\"\nwho = [\"anyone\"]\n",
        )
        .unwrap();
        let file = dir.path().join("bot.toml");
        Config::parse(Path::new(&file), &format!("{BASE}{extra}"))
    }

    #[test]
    fn a_repo_loads_with_its_defaults() {
        let l = parse(
            "[repos.web]\nurl = \"https://github.com/acme/web.git\"\nprovider = \"github\"\nteam = \"backend\"\non_push = [\"test-web\"]\nsecret_env = \"OPSBOT_TEST_UNSET_SECRET\"\n[people.bob]\nemails = [\"Bob@Example.com\"]\n",
        )
        .unwrap();
        let r = &l.config.repos["web"];
        assert!(r.follows("main", None) && !r.follows("dev", None));
        assert!(r.follows("master", Some("master")));
        assert!(r.is_named_by(&["acme/web"]));
        assert!(r.is_named_by(&["git@github.com:acme/web.git"]));
        assert!(!r.is_named_by(&["acme/web2", ""]));
        assert_eq!(l.config.authors["bob@example.com"].as_str(), "bob");
        assert_eq!(r.path().as_deref(), Some("acme/web"));
        assert_eq!(r.api_url.as_deref(), Some("https://api.github.com"));
        assert!(!r.sends_statuses());
        let w: Vec<&str> = l
            .warnings
            .iter()
            .map(|p| p.key.as_str())
            .filter(|k| k.starts_with("repos."))
            .collect();
        assert_eq!(w, ["repos.web.secret_env"], "{:?}", l.warnings);
        assert!(l.config.summary().contains("repo web (github, https://github.com/acme/web.git): branches the default branch; on push test-web; team backend; POST /hooks/github, secret OPSBOT_TEST_UNSET_SECRET NOT SET, hooks refused; token none, no commit statuses"), "{}", l.config.summary());
    }

    #[test]
    fn every_mistake_in_a_repo_is_named_with_its_place() {
        let err = parse(
            "[repos.web]\nurl = \"\"\nprovider = \"svn\"\nteam = \"frontend\"\non_push = [\"test-wbe\"]\nbranches = [\"main\", \"feat ure\"]\npoll = \"often\"\nweb_url = \"github.com/x\"\n[people.zed]\nemails = [\"z@x\"]\n[people.bob]\nemails = [\"nobody\"]\n",
        )
        .unwrap_err();
        let got: Vec<(Option<usize>, &str)> = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(15), "people.zed"),
                (Some(8), "repos.web.url"),
                (Some(9), "repos.web.provider"),
                (Some(12), "repos.web.branches[1]"),
                (Some(11), "repos.web.on_push[0]"),
                (Some(10), "repos.web.team"),
                (Some(13), "repos.web.poll"),
                (Some(14), "repos.web.web_url"),
                (Some(18), "people.bob.emails[0]"),
            ],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("did you mean `test-web`"), "{text}");
        assert!(text.contains("no team `frontend`"), "{text}");
    }

    /// `[services.X] repo` names a repository of `[repos]`.
    #[test]
    fn a_service_names_a_configured_repo() {
        let repo = "[repos.web]\nurl = \"https://github.com/acme/web.git\"\nprovider = \"github\"\nteam = \"backend\"\nsecret_env = \"OPSBOT_TEST_UNSET_SECRET\"\n";
        let svc = |name: &str| {
            format!("[services.shop]\njob = \"test-web\"\nrepo = \"{name}\"\n[services.shop.environments.staging]\n{repo}")
        };
        let l = parse(&svc("web")).unwrap();
        assert_eq!(l.config.services["shop"].repo.as_deref(), Some("web"));
        let err = parse(&svc("wbe")).unwrap_err();
        let p = err
            .problems
            .iter()
            .find(|p| p.key == "services.shop.repo")
            .expect("the service's repo is named");
        assert_eq!(p.line, Some(9), "{err}");
        assert!(
            p.message
                .contains("there is no [repos.wbe]; repositories are: web (did you mean `web`?)"),
            "{}",
            p.message
        );
    }
}
