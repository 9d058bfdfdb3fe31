//! Commits as the team reads them: a push's post, a deleted branch, and a
//! deploy's commits with the tickets they resolve or note (split out of
//! `messages.rs`, which re-exports them).

use super::*;

/// Commits listed in one push post; the rest are counted.
pub const PUSH_COMMITS_SHOWN: usize = 10;

/// One commit on a line: short sha, first line, author (pinged when the
/// config knows their address), link.
pub(super) fn commit_line(
    c: &crate::domain::code::Commit,
    author: Option<&UserName>,
    url: Option<&str>,
) -> Rich {
    let mut r = Rich::new()
        .text("\n  ")
        .bold(crate::domain::code::short(&c.sha).to_string())
        .text(" ")
        .quoted(one_line(c.title(), 100))
        .text(" — ");
    r = match author {
        Some(u) => r.mention(u),
        None => r.quoted(one_line(&c.author_name, 60)),
    };
    match url {
        Some(u) => r.text(" ").quoted(one_line(u, 200)),
        None => r,
    }
}

/// In a repository's team channel: a branch moved.
#[allow(clippy::too_many_arguments)]
pub fn push_posted(
    repo: &str,
    branch: &str,
    pusher: &str,
    after: &str,
    forced_from: Option<&str>,
    commits: &[(
        crate::domain::code::Commit,
        Option<UserName>,
        Option<String>,
    )],
    total: usize,
) -> Rich {
    let mut r = Rich::new()
        .quoted(one_line(pusher, 60))
        .text(if forced_from.is_some() {
            " force-pushed "
        } else {
            " pushed "
        })
        .text(format!("{repo} "))
        .quoted(one_line(branch, 100))
        .text(format!(" → {}", crate::domain::code::short(after)));
    if let Some(old) = forced_from {
        r = r.text(format!(
            " (history rewritten: it was at {}, and what was built of it is no longer on the branch)",
            crate::domain::code::short(old)
        ));
    }
    let total = total.max(commits.len());
    match total {
        0 => r = r.text(": no new commits"),
        1 => r = r.text(": 1 commit"),
        n => r = r.text(format!(": {n} commits")),
    }
    for (c, who, url) in commits.iter().rev().take(PUSH_COMMITS_SHOWN).rev() {
        r = r.append(commit_line(c, who.as_ref(), url.as_deref()));
    }
    let shown = commits.len().min(PUSH_COMMITS_SHOWN);
    if total > shown {
        r = r.text(format!("\n  … and {} earlier", total - shown));
    }
    r
}

/// In a repository's team channel: a branch was deleted.
pub fn branch_deleted(repo: &str, branch: &str, pusher: &str, cancelled: &[RunId]) -> Rich {
    let mut r = Rich::new()
        .quoted(one_line(pusher, 60))
        .text(format!(" deleted {repo} "))
        .quoted(one_line(branch, 100))
        .text(": nothing is built for it");
    if !cancelled.is_empty() {
        let ids: Vec<String> = cancelled.iter().map(RunId::to_string).collect();
        r = r.text(format!(
            "; cancelled {}, which had not started",
            ids.join(", ")
        ));
    }
    r
}

/// Commits listed in one deploy post; the rest are counted.
pub const DEPLOY_COMMITS_SHOWN: usize = 10;

/// In the deploy's channels: the commits a succeeded deploy brought, and
/// what they did to tickets.
#[allow(clippy::too_many_arguments)]
pub fn deploy_commits(
    run: RunId,
    service: &str,
    env: &str,
    version: &str,
    since: &str,
    commits: &[(
        crate::domain::code::Commit,
        Option<UserName>,
        Option<String>,
    )],
    total: usize,
    resolved: &[TicketId],
    noted: &[TicketId],
) -> Rich {
    let total = total.max(commits.len());
    let mut r = Rich::new()
        .text(format!("{run} deployed {service} "))
        .quoted(one_line(version, 60))
        .text(format!(" to {env}: "))
        .text(match total {
            1 => "1 commit".to_string(),
            n => format!("{n} commits"),
        })
        .text(" since ")
        .quoted(one_line(since, 60));
    for (c, who, url) in commits.iter().rev().take(DEPLOY_COMMITS_SHOWN).rev() {
        r = r.append(commit_line(c, who.as_ref(), url.as_deref()));
    }
    let shown = commits.len().min(DEPLOY_COMMITS_SHOWN);
    if total > shown {
        r = r.text(format!("\n  … and {} earlier", total - shown));
    }
    let ids = |l: &[TicketId]| {
        l.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !resolved.is_empty() {
        r = r.text(format!(
            "\nResolved for an operator to verify: {}",
            ids(resolved)
        ));
    }
    if !noted.is_empty() {
        r = r.text(format!("\nNoted on: {}", ids(noted)));
    }
    r
}

/// In the deploy's channels: an environment's first deploy, with nothing
/// before it to compare.
pub fn deploy_first(run: RunId, service: &str, env: &str, version: &str, sha: &str) -> Rich {
    Rich::new()
        .text(format!(
            "{run} is the first deploy of {service} to {env} on record ("
        ))
        .quoted(one_line(version, 60))
        .text(format!(
            " at {}): with no earlier version to compare, no commit resolves a ticket this time",
            crate::domain::code::short(sha)
        ))
}

/// In the deploy's channels: a deploy that went back in history.
pub fn deploy_went_back(
    run: RunId,
    service: &str,
    env: &str,
    from: &str,
    to: &str,
    dropped: usize,
) -> Rich {
    Rich::new()
        .text(format!("{run} took {service} {env} back from "))
        .quoted(one_line(from, 60))
        .text(" to ")
        .quoted(one_line(to, 60))
        .text(format!(
            ": {dropped} commit{} no longer deployed there; the tickets they fixed are left as they are",
            if dropped == 1 { " is" } else { "s are" }
        ))
}

/// In the deploy's channels, once per repository and version: git cannot
/// tell which commits a deploy brought.
pub fn deploy_version_unknown(
    run: RunId,
    service: &str,
    env: &str,
    repo: &str,
    version: &str,
    why: &str,
) -> Rich {
    Rich::new()
        .text(format!(
            "{run} deployed {service} to {env}, but git cannot read the version "
        ))
        .quoted(one_line(version, 60))
        .text(format!(" in {repo}, so no commit resolves a ticket: "))
        .quoted(one_line(why, 300))
}

/// A ticket's resolution note: a deployed commit fixes it.
pub fn deploy_fix_note(run: RunId, service: &str, env: &str, version: &str, sha: &str) -> String {
    format!(
        "fixed by commit {}, deployed by {run} ({service} {} to {env})",
        crate::domain::code::short(sha),
        one_line(version, 60)
    )
}

/// A ticket's timeline: a deployed commit refers to it.
pub fn deploy_ref_note(
    run: RunId,
    service: &str,
    env: &str,
    version: &str,
    c: &crate::domain::code::Commit,
) -> String {
    format!(
        "commit {} that refers to this is deployed by {run} ({service} {} to {env}): {}",
        crate::domain::code::short(&c.sha),
        one_line(version, 60),
        one_line(c.title(), 100)
    )
}
