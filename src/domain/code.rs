//! The code loop's vocabulary: forges, pushes and their commits, branch
//! patterns, the references from commit messages to tickets, and what the
//! bot keeps per branch (its head, the builds queued for it, the commits
//! since the last green build). Pure types and rules.

use serde::{Deserialize, Serialize};

use crate::domain::run::RunId;

/// Where a repository lives, and so which webhook format and signature it
/// speaks.
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
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
    Gitea,
    /// A plain Git server, polled with `git ls-remote`.
    Git,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One commit of a push, as the forge describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Commit {
    /// The first line of the message.
    pub fn title(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }
}

/// A branch that moved (or was deleted) on a forge, typed at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The configured repository's name (`[repos.NAME]`).
    pub repo: String,
    pub branch: String,
    /// The head before the push (None: the branch is new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The head after the push (None: the branch was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The forge says history was rewritten.
    #[serde(default)]
    pub forced: bool,
    /// Who pushed, as the forge names them.
    pub pusher: String,
    /// The commits, oldest first (forges cut long lists).
    pub commits: Vec<Commit>,
    /// How many commits the push brought, when more than `commits` holds.
    #[serde(default)]
    pub total_commits: usize,
    /// The repository's default branch, when the forge says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// A pull (merge) request's head, when this is one: `branch` is its
    /// head branch, `after` its head commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<Box<PullRequest>>,
}

/// A pull request (GitHub, Gitea) or merge request (GitLab).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    /// Who opened it, as the forge names them.
    pub author: String,
    /// The branch it would merge into.
    pub base: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The all-zero object id forges send for "no commit" (a new or a deleted
/// branch).
pub fn is_null_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// A commit id as forges and `git` write it: 40 (SHA-1) or 64 (SHA-256)
/// hex digits.
pub fn is_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The first 7 characters, as people read a sha.
pub fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Checks a branch pattern: a branch name, where `*` stands for any run of
/// characters and `?` for one. Refused: what git refuses in a ref name
/// (spaces, `~ ^ : \ [`, control characters, `..`, `@{`, a leading `-` or
/// `/`), and an empty pattern.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("a branch pattern cannot be empty".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '~' | '^' | ':' | '\\' | '['))
    {
        return Err(format!(
            "`{c}` cannot be part of a branch name; a pattern is a branch name where `*` stands for any characters and `?` for one, such as \"release/*\""
        ));
    }
    if p.contains("..") || p.contains("@{") || p.starts_with(['-', '/']) || p.ends_with(['/', '.'])
    {
        return Err("git refuses such a branch name (`..`, `@{`, a leading `-` or `/`, a trailing `/` or `.`); write it as the branch is named, such as \"main\" or \"release/*\"".into());
    }
    Ok(())
}

/// Whether `branch` matches the pattern (`*` any run of characters, `?`
/// one).
pub fn pattern_matches(pattern: &str, branch: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = branch.chars().collect();
    // The classic greedy match with one backtrack point.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

/// What a commit message says of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TicketRef {
    /// `fixes`, `closes`, `resolves OPS-12`: this commit is the fix.
    Fixes,
    /// `refs OPS-12`: related.
    Refs,
}

/// The tickets a commit message names with `fixes|closes|resolves
/// PREFIX-N` or `refs PREFIX-N` (any case; each ticket once, the first
/// word that names it wins), in the order they appear.
pub fn ticket_refs(message: &str, prefix: &str) -> Vec<(TicketRef, u64)> {
    let words: Vec<&str> = message
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<(TicketRef, u64)> = Vec::new();
    for pair in words.windows(2) {
        let verb = pair[0].trim_end_matches(':').to_ascii_lowercase();
        let kind = match verb.as_str() {
            "fix" | "fixes" | "fixed" | "close" | "closes" | "closed" | "resolve" | "resolves"
            | "resolved" => TicketRef::Fixes,
            "ref" | "refs" | "references" => TicketRef::Refs,
            _ => continue,
        };
        let id = pair[1].trim_end_matches(['.', ':', '!']);
        let Some((p, n)) = id.split_once('-') else {
            continue;
        };
        if !p.eq_ignore_ascii_case(prefix) || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(num) = n.parse::<u64>() else {
            continue;
        };
        if num > 0 && !out.iter().any(|(_, m)| *m == num) {
            out.push((kind, num));
        }
    }
    out
}

/// Commits read for one deploy at most.
pub const MAX_DEPLOY_COMMITS: usize = 200;

/// What git says of a succeeded deploy's versions (the answer to
/// [`crate::domain::run::JobOrder::DeployCommits`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeployCommits {
    /// The commits of `to` that `from` had not (commit ids), oldest first;
    /// at most [`MAX_DEPLOY_COMMITS`], `total` says how many there were.
    Range {
        from: String,
        to: String,
        commits: Vec<Commit>,
        total: usize,
    },
    /// The environment's first deploy: nothing to compare with.
    First { to: String },
    /// `to` is behind `from`: `dropped` commits are no longer deployed.
    Rollback {
        from: String,
        to: String,
        dropped: usize,
    },
    /// git could not tell: a version it cannot resolve, or a mirror it
    /// could not bring up to date.
    Unknown { version: String, why: String },
}

/// What the bot keeps per configured branch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchState {
    /// The head last built (None: never seen, or deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The branch is the repository's main branch: its failures are tickets.
    #[serde(default)]
    pub main: bool,
    /// Runs started for the head, not yet finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunId>,
    /// A build of the head failed (it cannot be the last green one).
    #[serde(default)]
    pub head_failed: bool,
    /// For a pull request's record: the pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<PullRequest>,
    /// The head of the last build that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_green: Option<String>,
    /// Commits pushed since the last green build, oldest first: the
    /// suspects when a build fails (at most [`MAX_SUSPECTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub since_green: Vec<Commit>,
}

/// A commit status's state, in the words GitHub and Gitea use (GitLab's
/// are mapped by the adapter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    /// The build did not run to an end (superseded, cancelled).
    Error,
}

/// A run's state for a commit, to report on the forge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// The configured repository.
    pub repo: String,
    pub sha: String,
    pub state: StatusState,
    /// `opsbot/JOB`: one status line per job on the forge.
    pub context: String,
    pub description: String,
    pub run: RunId,
}

/// How many commits since the last green build are kept as suspects.
pub const MAX_SUSPECTS: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_branch_names() {
        let cases = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.2", true),
            ("release/*", "release/", true),
            ("release/*", "releases/1", false),
            ("*", "feature/x/y", true),
            ("v?.x", "v1.x", true),
            ("v?.x", "v10.x", false),
            ("*-hotfix", "web-hotfix", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (p, b, want) in cases {
            assert_eq!(pattern_matches(p, b), want, "{p} ~ {b}");
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for bad in ["", "feat ure", "a..b", "[ab]", "x:y", "-x", "x/", "a@{1}"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["main", "release/*", "v?.*", "feature/**"] {
            assert_eq!(check_pattern(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn commit_messages_name_tickets() {
        let msg = "Retry the payment call\n\nFixes OPS-12, refs ops-3.\nResolves: OPS-12\ncloses OPS-x refs OPS-0 see OPS-9";
        assert_eq!(
            ticket_refs(msg, "OPS"),
            vec![(TicketRef::Fixes, 12), (TicketRef::Refs, 3)]
        );
        assert!(ticket_refs("fixes BUG-1", "OPS").is_empty());
        assert!(ticket_refs("fixes OPS-99999999999999999999999", "OPS").is_empty());
    }

    #[test]
    fn shas() {
        assert!(is_sha(&"a".repeat(40)) && is_sha(&"0".repeat(64)));
        assert!(!is_sha("abc") && !is_sha(&"g".repeat(40)));
        assert!(is_null_sha(&"0".repeat(40)) && !is_null_sha(""));
        assert_eq!(short("0123456789abcdef"), "0123456");
        assert_eq!(short("ab"), "ab");
    }
}
