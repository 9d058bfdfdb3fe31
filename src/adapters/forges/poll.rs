//! `provider = "git"`: a plain Git server, polled. Every `poll` the system
//! `git` lists the remote's branches (`git ls-remote`); a followed branch
//! whose head moved is fetched into a bare mirror under the data folder,
//! its new commits read with `git log`, and reported as a push (a branch
//! gone since the last look: deleted). `git` runs with argv only (no
//! shell), a cleared environment, a timeout, no prompt; a token, when the
//! repo names one, reaches it as an HTTP header through git's
//! `GIT_CONFIG_*` environment, never on a command line. A remote that
//! fails is reported (the engine says it once), looked at again with
//! backoff, and reported again when it answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::repos::RepoConfig;
use crate::config::Config;
use crate::domain::code::{is_sha, Commit, Provider, Push};
use crate::engine::{Event, View};
use crate::runtime::Bot;

/// Commits read for one push at most.
const MAX_COMMITS: usize = 100;
/// The longest wait between looks at a failing remote.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Starts one poller per `git` repository; each stops when `stop` turns
/// true.
pub fn spawn(bot: &Bot, config: &Config, stop: watch::Receiver<bool>) {
    let mirrors = config.storage_path.join("git");
    for repo in config
        .repos
        .values()
        .filter(|r| r.provider == Provider::Git)
    {
        let poller = Poller {
            bot: bot.clone(),
            repo: repo.clone(),
            mirror: mirrors.join(format!("{}.git", repo.name)),
            seen: None,
        };
        tokio::spawn(poller.run(stop.clone()));
    }
}

struct Poller {
    bot: Bot,
    repo: RepoConfig,
    mirror: PathBuf,
    /// The followed branches' heads at the last look (None: not looked yet).
    seen: Option<BTreeMap<String, String>>,
}

use super::mirror::GitError;

impl Poller {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut wait = Duration::ZERO;
        // Whether the engine was last told the remote answers (at start:
        // not yet, as an earlier process may have said it was down).
        let mut told_ok = false;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if !self.bot.lease().held() {
                wait = self.repo.poll;
                continue;
            }
            match self.look().await {
                Ok(()) => {
                    wait = self.repo.poll;
                    if !told_ok {
                        told_ok = self.report(None).await;
                    }
                }
                Err(GitError(e)) => {
                    tracing::warn!(repo = %self.repo.name, error = %e, "cannot poll the repository");
                    wait = (wait.max(self.repo.poll) * 2).min(MAX_BACKOFF.max(self.repo.poll));
                    told_ok = false;
                    self.report(Some(e)).await;
                }
            }
        }
    }

    /// Tells the engine; returns whether it was recorded.
    async fn report(&self, error: Option<String>) -> bool {
        let event = Event::RepoReach {
            repo: self.repo.name.clone(),
            error,
        };
        match self.bot.submit(event).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(repo = %self.repo.name, error = %e, "cannot record the repository's reach");
                false
            }
        }
    }

    /// One look: the remote's heads, and a push for each that moved.
    async fn look(&mut self) -> Result<(), GitError> {
        let listed = self
            .git(None, &["ls-remote", "--heads", "--", &self.repo.url])
            .await?;
        let mut heads = BTreeMap::new();
        for line in listed.lines() {
            let Some((sha, name)) = line.split_once('\t') else {
                continue;
            };
            let Some(branch) = name.strip_prefix("refs/heads/") else {
                continue;
            };
            if is_sha(sha) && self.repo.follows(branch, None) {
                heads.insert(branch.to_string(), sha.to_ascii_lowercase());
            }
        }
        let store = self.bot.store().map_err(|e| GitError(e.to_string()))?;
        let mut moved = Vec::new();
        for (branch, sha) in &heads {
            let key = format!("{}/{branch}", self.repo.name);
            let known = store
                .branch(&key)
                .map_err(|e| GitError(e.to_string()))?
                .and_then(|b| b.head);
            if known.as_deref() != Some(sha.as_str()) {
                moved.push((branch.clone(), known, sha.clone()));
            }
        }
        if !moved.is_empty() {
            self.fetch().await?;
        }
        for (branch, before, after) in moved {
            let push = self.push_of(&branch, before, &after).await;
            self.submit(push).await;
        }
        if let Some(seen) = &self.seen {
            for (branch, sha) in seen {
                if !heads.contains_key(branch) {
                    let push = Push {
                        repo: self.repo.name.clone(),
                        branch: branch.clone(),
                        before: Some(sha.clone()),
                        after: None,
                        forced: false,
                        pusher: "someone".into(),
                        commits: Vec::new(),
                        total_commits: 0,
                        default_branch: None,
                        pr: None,
                    };
                    self.submit(push).await;
                }
            }
        }
        self.seen = Some(heads);
        Ok(())
    }

    async fn submit(&self, push: Push) {
        if let Err(e) = self
            .bot
            .submit(Event::Push {
                delivery: None,
                push,
            })
            .await
        {
            // Not recorded: the next look sees the same head moved again.
            tracing::warn!(repo = %self.repo.name, error = %e, "cannot record a push");
        }
    }

    /// Brings the mirror up to date with the remote's branches.
    async fn fetch(&self) -> Result<(), GitError> {
        if !self.mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&self.mirror)
                .map_err(|e| GitError(format!("cannot make {}: {e}", self.mirror.display())))?;
            self.git(Some(&self.mirror), &["init", "--bare", "--quiet"])
                .await?;
        }
        self.git(
            Some(&self.mirror),
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--prune",
                "--",
                &self.repo.url,
                "+refs/heads/*:refs/heads/*",
            ],
        )
        .await
        .map(|_| ())
    }

    /// The push that took `branch` from `before` to `after`, with its new
    /// commits as the mirror has them.
    async fn push_of(&self, branch: &str, before: Option<String>, after: &str) -> Push {
        let m = Some(self.mirror.as_path());
        let forced = match &before {
            Some(b) => self
                .git(m, &["merge-base", "--is-ancestor", b, after])
                .await
                .is_err(),
            None => false,
        };
        let max = format!("--max-count={MAX_COMMITS}");
        let format = "--format=%H%x1f%an%x1f%ae%x1f%cn%x1f%B%x1e";
        let range = before.as_ref().map(|b| format!("{b}..{after}"));
        let mut log = match &range {
            Some(r) if !forced => {
                self.git(m, &["log", "--reverse", &max, format, r, "--"])
                    .await
            }
            _ => Err(GitError(String::new())),
        };
        if log.is_err() {
            // A new branch, rewritten history or a head the mirror never
            // had: its head commit alone.
            log = self
                .git(m, &["log", "--max-count=1", format, after, "--"])
                .await;
        }
        let mut commits = Vec::new();
        let mut pusher = String::from("someone");
        for rec in log.unwrap_or_default().split('\u{1e}') {
            let f: Vec<&str> = rec.trim_start_matches('\n').splitn(5, '\u{1f}').collect();
            let [sha, name, email, committer, message] = f[..] else {
                continue;
            };
            if !is_sha(sha) {
                continue;
            }
            pusher = committer.to_string();
            commits.push(Commit {
                sha: sha.to_string(),
                message: message.trim_end().to_string(),
                author_name: name.to_string(),
                author_email: email.to_string(),
                url: None,
            });
        }
        Push {
            repo: self.repo.name.clone(),
            branch: branch.to_string(),
            before,
            after: Some(after.to_string()),
            forced,
            pusher,
            total_commits: commits.len(),
            commits,
            default_branch: None,
            pr: None,
        }
    }

    /// Runs `git ARGS` (in `dir`, when given) and returns its output.
    async fn git(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
        super::mirror::git(&self.repo, dir, args).await
    }
}
