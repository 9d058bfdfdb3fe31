//! The system `git`, as the bot runs it (argv only, no shell, a cleared
//! environment, a timeout, no prompt, a token only through git's
//! `GIT_CONFIG_*` environment, never on a command line), and a bare mirror
//! of a repository under the data folder for deploys: a succeeded deploy
//! asks which commits its version brought since the environment's previous
//! one (`JobOrder::DeployCommits`); the mirror is brought up to date
//! (branches and tags), both versions resolved to commits, and the answer
//! (`Event::DeployCommits`) carries the commits of `from..to`, or says it
//! was a first deploy, a step back in history, or a version git cannot
//! read. An adapter: it reads, the engine decides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::repos::RepoConfig;
use crate::domain::code::{is_sha, Commit, DeployCommits, MAX_DEPLOY_COMMITS};
use crate::domain::run::RunId;
use crate::engine::Event;
use crate::runtime::{Bot, DeliveryError};

/// How long one `git` command may take.
pub(crate) const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with `git`, in words for the team (credentials masked).
#[derive(Debug)]
pub(crate) struct GitError(pub(crate) String);

/// Runs `git ARGS` for `repo` (in `dir`, when given) and returns its
/// output.
pub(crate) async fn git(
    repo: &RepoConfig,
    dir: Option<&Path>,
    args: &[&str],
) -> Result<String, GitError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    // Keys for ssh remotes, as the bot's own environment has them.
    for var in ["HOME", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    if let Some(token) = repo.token.as_ref().and_then(|t| t.value.as_ref()) {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Bearer {}", token.expose()),
            );
    }
    let what = args.first().copied().unwrap_or("git");
    let out = match tokio::time::timeout(GIT_TIMEOUT, cmd.output()).await {
        Err(_) => {
            return Err(GitError(format!(
                "git {what} took longer than {}s",
                GIT_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(GitError(format!("cannot run git: {e}"))),
        Ok(Ok(o)) => o,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Err(GitError(masked(
        repo,
        &format!("git {what} failed ({}): {first}", out.status),
    )))
}

/// The text without the remote's credentials or the token.
pub(crate) fn masked(repo: &RepoConfig, s: &str) -> String {
    let mut s = s.to_string();
    if let Some(t) = repo.token.as_ref().and_then(|t| t.value.as_ref()) {
        s = s.replace(t.expose(), "***");
    }
    if let Some((scheme, rest)) = repo.url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if !cred.contains('/') {
                s = s.replace(&repo.url, &format!("{scheme}://{host}"));
            }
        }
    }
    s
}

/// Where the deploys' mirror of `repo` is kept.
pub fn mirror_path(storage: &Path, repo: &str) -> PathBuf {
    storage.join("mirrors").join(format!("{repo}.git"))
}

/// Brings the mirror up to date with the remote's branches and tags (made
/// the first time: a bare repository, fetched from the URL bot.toml names
/// now, so that no URL or credential is written in its config).
async fn update(repo: &RepoConfig, mirror: &Path) -> Result<(), GitError> {
    if !mirror.join("HEAD").exists() {
        std::fs::create_dir_all(mirror)
            .map_err(|e| GitError(format!("cannot make {}: {e}", mirror.display())))?;
        git(repo, Some(mirror), &["init", "--bare", "--quiet"]).await?;
    }
    git(
        repo,
        Some(mirror),
        &[
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            "--no-tags",
            "--",
            &repo.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ],
    )
    .await
    .map(|_| ())
}

/// Whether `v` may be handed to git as a revision: what a tag, branch or
/// commit id is made of, never an option or a range.
fn plain_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 200
        && !v.starts_with(['-', '/', '.'])
        && !v.ends_with(['/', '.'])
        && !v.contains("..")
        && !v.contains("//")
        && !v.ends_with(".lock")
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'+'))
}

/// The commit `version` names in the mirror: a tag (`1.4.2`, or `v1.4.2`
/// for a version written without its `v`), a branch, or a commit id.
async fn resolve(repo: &RepoConfig, mirror: &Path, version: &str) -> Option<String> {
    if !plain_version(version) {
        return None;
    }
    let mut candidates = vec![format!("refs/tags/{version}")];
    if version.starts_with(|c: char| c.is_ascii_digit()) {
        candidates.push(format!("refs/tags/v{version}"));
    }
    candidates.push(format!("refs/heads/{version}"));
    if (4..=64).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_hexdigit()) {
        candidates.push(version.to_string());
    }
    for c in candidates {
        let rev = format!("{c}^{{commit}}");
        let got = git(
            repo,
            Some(mirror),
            &["rev-parse", "--verify", "--quiet", "--end-of-options", &rev],
        )
        .await;
        if let Ok(out) = got {
            let sha = out.trim();
            if is_sha(sha) {
                return Some(sha.to_ascii_lowercase());
            }
        }
    }
    None
}

/// How many commits `range` holds.
async fn count(repo: &RepoConfig, mirror: &Path, range: &str) -> Result<usize, GitError> {
    let out = git(
        repo,
        Some(mirror),
        &["rev-list", "--count", "--end-of-options", range],
    )
    .await?;
    out.trim()
        .parse()
        .map_err(|_| GitError(format!("git rev-list --count said {}", out.trim())))
}

/// What git says of the commits from `from` to `to` in `repo`.
pub async fn look(repo: &RepoConfig, mirror: &Path, from: Option<&str>, to: &str) -> DeployCommits {
    let unknown = |version: &str, why: String| DeployCommits::Unknown {
        version: version.to_string(),
        why,
    };
    if let Err(GitError(why)) = update(repo, mirror).await {
        return unknown(to, why);
    }
    let not_there = |v: &str| {
        if plain_version(v) {
            format!("no tag, branch or commit of {} is named so", repo.name)
        } else {
            "it is not a tag, branch or commit id".to_string()
        }
    };
    let Some(to_sha) = resolve(repo, mirror, to).await else {
        return unknown(to, not_there(to));
    };
    let Some(from) = from else {
        return DeployCommits::First { to: to_sha };
    };
    let Some(from_sha) = resolve(repo, mirror, from).await else {
        return unknown(from, format!("the previous version: {}", not_there(from)));
    };
    let m = Some(mirror);
    let back = from_sha != to_sha
        && git(
            repo,
            m,
            &["merge-base", "--is-ancestor", &to_sha, &from_sha],
        )
        .await
        .is_ok();
    if back {
        return match count(repo, mirror, &format!("{to_sha}..{from_sha}")).await {
            Ok(dropped) => DeployCommits::Rollback {
                from: from_sha,
                to: to_sha,
                dropped,
            },
            Err(GitError(why)) => unknown(to, why),
        };
    }
    let range = format!("{from_sha}..{to_sha}");
    let total = match count(repo, mirror, &range).await {
        Ok(n) => n,
        Err(GitError(why)) => return unknown(to, why),
    };
    let max = format!("--max-count={MAX_DEPLOY_COMMITS}");
    let log = git(
        repo,
        m,
        &[
            "log",
            "--reverse",
            &max,
            "--format=%H%x1f%an%x1f%ae%x1f%B%x1e",
            "--end-of-options",
            &range,
            "--",
        ],
    )
    .await;
    let log = match log {
        Ok(l) => l,
        Err(GitError(why)) => return unknown(to, why),
    };
    let mut commits = Vec::new();
    for rec in log.split('\u{1e}') {
        let f: Vec<&str> = rec.trim_start_matches('\n').splitn(4, '\u{1f}').collect();
        let [sha, name, email, message] = f[..] else {
            continue;
        };
        if !is_sha(sha) {
            continue;
        }
        commits.push(Commit {
            sha: sha.to_string(),
            message: message.trim_end().to_string(),
            author_name: name.to_string(),
            author_email: email.to_string(),
            url: None,
        });
    }
    DeployCommits::Range {
        from: from_sha,
        to: to_sha,
        total: total.max(commits.len()),
        commits,
    }
}

/// Delivers a `DeployCommits` order: looks, and tells the engine. One
/// repository's lookups go one at a time (its own outbox lane); a
/// redelivery after a crash asks again and the engine takes one answer.
pub async fn deploy_commits(
    bot: &Bot,
    run: RunId,
    repo: &str,
    from: Option<&str>,
    to: &str,
) -> Result<(), DeliveryError> {
    let config = bot.config();
    let found = match config.repos.get(repo) {
        Some(r) => look(r, &mirror_path(&config.storage_path, repo), from, to).await,
        None => DeployCommits::Unknown {
            version: to.to_string(),
            why: format!("the repository {repo} is no longer in bot.toml"),
        },
    };
    bot.submit(Event::DeployCommits {
        run,
        repo: repo.to_string(),
        found,
    })
    .await
    .map(|_| ())
    .map_err(|e| DeliveryError::Transient(format!("cannot record the deploy's commits: {e}")))
}

#[cfg(test)]
mod tests {
    use super::plain_version;

    #[test]
    fn only_plain_names_reach_git() {
        for ok in [
            "1.4.2",
            "v1.4.2",
            "release/2026-03",
            "a1b2c3d",
            "1.0+build.7",
        ] {
            assert!(plain_version(ok), "{ok}");
        }
        for bad in [
            "", "-n", "--all", "a..b", "a...b", "/x", "x/", "a b", "HEAD@{1}", "x^", "x~1", "x:y",
            ".hidden", "a.lock", "a//b",
        ] {
            assert!(!plain_version(bad), "{bad}");
        }
    }
}
