//! The code loop's rules: a push to a followed branch of a configured
//! repository is built once per new head by the repository's `on_push`
//! jobs (`ref`, `sha` and `repo` given to each); a newer head cancels the
//! builds of an older one that have not started; a deleted branch is said
//! and builds nothing; the team's channel hears of each push; commits that
//! name a ticket are noted on it, once per commit; a build of the main
//! branch that fails opens the repository's build ticket naming the
//! commits since the last green build. A redelivered webhook changes
//! nothing. Part of the engine: pure.

use std::collections::BTreeMap;

use crate::config::repos::RepoConfig;
use crate::domain::code::{
    self, BranchState, Commit, CommitStatus, Push, StatusState, MAX_SUSPECTS,
};
use crate::domain::rich::{one_line, Rich};
use crate::domain::run::{JobOrder, Run, RunId, RunState};
use crate::domain::{Actor, EntryKind, Source, TeamName, Ticket, UserName};
use crate::engine::context::{step_run, Cx, Out};
use crate::engine::effect::{Accepted, Decision, Effect, Reply, Write};
use crate::engine::messages;
use crate::error::EngineError;

/// Who starts the builds of a push.
fn git() -> Actor {
    Actor::new(UserName::system("git"), Source::System)
}

/// The key of a branch's record.
fn branch_key(repo: &str, branch: &str) -> String {
    format!("{repo}/{branch}")
}

/// The key of a pull request's record (a repository's name holds no `#`,
/// so it never meets a branch's).
fn pr_key(repo: &str, number: u64) -> String {
    format!("{repo}#pr/{number}")
}

/// A commit with its author as the config knows them and its page.
pub(crate) fn listed(
    repo: &RepoConfig,
    cx: &Cx<'_>,
    c: &Commit,
) -> (Commit, Option<UserName>, Option<String>) {
    let who = cx
        .config
        .authors
        .get(&c.author_email.trim().to_ascii_lowercase())
        .cloned();
    let url = c.url.clone().or_else(|| repo.commit_url(&c.sha));
    (c.clone(), who, url)
}

/// The order to report `run`'s state on the forge, when the repository
/// sends statuses.
fn status(repo: &RepoConfig, run: &Run, state: StatusState, description: String) -> Option<Write> {
    if !repo.sends_statuses() {
        return None;
    }
    let sha = run.params.get("sha")?;
    Some(Write::Effect(Effect::Job(JobOrder::Status {
        status: CommitStatus {
            repo: repo.name.clone(),
            sha: sha.clone(),
            state,
            context: format!("opsbot/{}", run.job),
            description: crate::domain::rich::clip_plain(&description, 140),
            run: run.id,
        },
    })))
}

/// Nothing to do: said to the forge, nothing written.
fn ignored(why: String) -> Result<Decision, EngineError> {
    Ok(Decision {
        reply: Some(Reply::private(why)),
        accepted: None,
        writes: Vec::new(),
    })
}

/// Why a forge's hook about `repo` and `branch` is ignored, if it is: the
/// repository is not in bot.toml, or bot.toml does not follow the branch.
pub(super) fn unfollowed<'a>(
    cx: &'a Cx<'_>,
    repo: &str,
    branch: &str,
    default_branch: Option<&str>,
) -> Result<&'a RepoConfig, String> {
    let Some(cfg) = cx.config.repos.get(repo) else {
        return Err(format!(
            "ignored: bot.toml has no repository {}",
            one_line(repo, 60)
        ));
    };
    if !cfg.follows(branch, default_branch) {
        return Err(format!(
            "ignored: {} is not a branch bot.toml follows in {}",
            one_line(branch, 100),
            cfg.name
        ));
    }
    Ok(cfg)
}

/// A forge's delivery is acted on once: why it is ignored if it was seen
/// before, or else its marker written with `out`.
pub(super) fn once(
    cx: &Cx<'_>,
    delivery: Option<&str>,
    out: &mut Out,
) -> Result<Option<String>, EngineError> {
    let Some(d) = delivery else {
        return Ok(None);
    };
    let key = format!("delivery:{d}");
    if cx.view.marker(&key)?.is_some() {
        return Ok(Some(format!(
            "already delivered ({}): nothing done twice",
            one_line(d, 80)
        )));
    }
    out.writes.push(Write::Marker(key, cx.now.timestamp()));
    Ok(None)
}

/// A push (or a deleted branch) reported by a forge.
pub(crate) fn push(
    cx: &Cx<'_>,
    delivery: Option<&str>,
    push: &Push,
) -> Result<Decision, EngineError> {
    // A pull request is built when it would merge into a followed branch.
    let target = push.pr.as_ref().map_or(&push.branch, |p| &p.base);
    let repo = match unfollowed(cx, &push.repo, target, push.default_branch.as_deref()) {
        Ok(repo) => repo,
        Err(why) => return ignored(why),
    };
    let mut out = Out::new();
    if let Some(why) = once(cx, delivery, &mut out)? {
        return ignored(why);
    }
    let Some(team) = cx.org.team(&repo.team) else {
        return ignored(format!("ignored: the team {} is gone", repo.team));
    };
    let channel = team.channel.clone();
    let key = match &push.pr {
        Some(pr) => pr_key(&repo.name, pr.number),
        None => branch_key(&repo.name, &push.branch),
    };
    let mut state = cx.view.branch(&key)?.unwrap_or_default();
    state.main = push.pr.is_none() && repo.is_main(&push.branch, push.default_branch.as_deref());
    state.pr = push.pr.as_deref().cloned();

    let Some(after) = push.after.clone() else {
        // Deleted: whatever has not started for it is cancelled.
        let cancelled = supersede(cx, &mut out, repo, &mut state, "the branch was deleted")?;
        state.head = None;
        out.post(
            &channel,
            None,
            messages::branch_deleted(&repo.name, &push.branch, &push.pusher, &cancelled),
        );
        out.writes.push(Write::Branch(key, state));
        return Ok(Decision {
            reply: Some(Reply::private(messages::answers::branch_deleted_reply(
                &push.branch,
                cancelled.len(),
            ))),
            accepted: Some(Accepted::default()),
            writes: out.writes,
        });
    };
    if state.head.as_deref() == Some(after.as_str()) {
        // A head already built (another delivery of it, a poll).
        out.writes.push(Write::Branch(key, state));
        return Ok(Decision {
            reply: Some(Reply::private(messages::answers::already_built(
                code::short(&after),
            ))),
            accepted: Some(Accepted::default()),
            writes: out.writes,
        });
    }

    let why = format!("superseded by {}", code::short(&after));
    supersede(cx, &mut out, repo, &mut state, &why)?;
    // History rewritten: what was built before is not on the branch now.
    let forced_from = match (&state.head, &push.before) {
        (Some(head), _) if push.forced => Some(head.clone()),
        (_, Some(before)) if push.forced => Some(before.clone()),
        _ => None,
    };
    for c in &push.commits {
        if !state.since_green.iter().any(|s| s.sha == c.sha) {
            // Kept as a suspect: what a post shows of it, not the whole
            // message (a record stays small whatever was pushed).
            state.since_green.push(Commit {
                message: crate::domain::rich::clip_plain(c.title(), 200),
                author_name: crate::domain::rich::clip_plain(&c.author_name, 100),
                author_email: crate::domain::rich::clip_plain(&c.author_email, 200),
                url: c
                    .url
                    .as_deref()
                    .map(|u| crate::domain::rich::clip_plain(u, 300)),
                ..c.clone()
            });
        }
    }
    let excess = state.since_green.len().saturating_sub(MAX_SUSPECTS);
    state.since_green.drain(..excess);

    let commits: Vec<_> = push.commits.iter().map(|c| listed(repo, cx, c)).collect();
    if let Some(pr) = &push.pr {
        out.post(
            &channel,
            None,
            messages::pr_posted(&repo.name, pr, &push.branch, &after),
        );
    } else {
        out.post(
            &channel,
            None,
            messages::push_posted(
                &repo.name,
                &push.branch,
                &push.pusher,
                &after,
                forced_from.as_deref(),
                &commits,
                push.total_commits,
            ),
        );
    }

    // The builds of the new head.
    let actor = git();
    let mut next = cx.view.last_run_number()? + 1;
    let mut started = Vec::new();
    for job_name in &repo.on_push {
        let Some(job) = cx.config.jobs.get(job_name) else {
            continue;
        };
        let number = push.pr.as_ref().map(|p| p.number.to_string());
        let mut given_all = vec![
            ("ref", push.branch.as_str()),
            ("sha", after.as_str()),
            ("repo", repo.name.as_str()),
        ];
        if let Some(n) = &number {
            given_all.push(("pr", n.as_str()));
        }
        let given: Vec<(String, String)> = given_all
            .iter()
            .filter(|(k, _)| job.params.iter().any(|p| p.name == *k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut params = match job.check_params(&given) {
            Ok(p) => p,
            Err(e) => {
                out.post(
                    &channel,
                    None,
                    messages::push_job_cannot_start(
                        job.name.as_str(),
                        repo.name.as_str(),
                        code::short(&after),
                        &e.to_string(),
                    ),
                );
                continue;
            }
        };
        for (k, v) in &given_all {
            params.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        let id = RunId(next);
        next += 1;
        let mut run = Run::queued(
            id,
            &job.name,
            params.clone(),
            &actor.name,
            &channel,
            cx.now,
            None,
        );
        step_run(
            &mut run,
            &actor,
            RunState::Queued,
            format!("pushed by {}", one_line(&push.pusher, 60)),
            cx.now,
        );
        out.writes.push(Write::Effect(Effect::Job(JobOrder::Start {
            run: id,
            job: job.name.clone(),
            params,
        })));
        cx.progress_of(&mut out, &run);
        out.writes.extend(status(
            repo,
            &run,
            StatusState::Pending,
            format!("{id} queued"),
        ));
        out.writes.push(Write::Run(run));
        started.push(id);
    }
    state.head = Some(after.clone());
    state.head_failed = false;
    state.runs.extend(started.iter().copied());

    let noted = note_commits(cx, &mut out, repo, push)?;
    out.writes.push(Write::Branch(key, state));
    let ids: Vec<String> = started.iter().map(RunId::to_string).collect();
    Ok(Decision {
        reply: Some(Reply::private(messages::answers::push_queued(
            code::short(&after),
            &ids,
        ))),
        accepted: Some(Accepted {
            accepted: started.len(),
            tickets: noted,
        }),
        writes: out.writes,
    })
}

/// Cancels the branch's builds that have not started; keeps the others.
fn supersede(
    cx: &Cx<'_>,
    out: &mut Out,
    repo: &RepoConfig,
    state: &mut BranchState,
    why: &str,
) -> Result<Vec<RunId>, EngineError> {
    let actor = git();
    let mut cancelled = Vec::new();
    let mut kept = Vec::new();
    for id in std::mem::take(&mut state.runs) {
        let Some(mut run) = cx.view.run(id)? else {
            continue;
        };
        match run.state {
            RunState::Queued if run.started_at.is_none() => {
                step_run(
                    &mut run,
                    &actor,
                    RunState::Cancelled,
                    why.to_string(),
                    cx.now,
                );
                run.finished_at = Some(cx.now);
                out.writes
                    .push(Write::Effect(Effect::Job(JobOrder::Cancel { run: id })));
                cx.progress_of(out, &run);
                out.writes.extend(status(
                    repo,
                    &run,
                    StatusState::Error,
                    format!("{id} {why}"),
                ));
                out.writes.push(Write::Run(run));
                cancelled.push(id);
            }
            s if s.is_final() => {}
            _ => kept.push(id),
        }
    }
    state.runs = kept;
    Ok(cancelled)
}

/// Notes each commit that names a ticket on that ticket's timeline and in
/// its thread, once per commit and ticket (a redelivery, a rebase that
/// keeps the sha, another branch: noted already).
fn note_commits(
    cx: &Cx<'_>,
    out: &mut Out,
    repo: &RepoConfig,
    push: &Push,
) -> Result<Vec<crate::domain::TicketId>, EngineError> {
    let prefix = &cx.config.tickets.prefix;
    let actor = git();
    let mut touched: BTreeMap<u64, Ticket> = BTreeMap::new();
    for c in &push.commits {
        for (kind, num) in code::ticket_refs(&c.message, prefix) {
            let mark = format!("commit:{}:{num}", c.sha);
            if cx.view.marker(&mark)?.is_some() {
                continue;
            }
            let mut t = match touched.remove(&num) {
                Some(t) => t,
                None => match cx.view.ticket(&crate::domain::TicketId::new(prefix, num))? {
                    Some(t) => t,
                    None => continue,
                },
            };
            let (c, who, url) = listed(repo, cx, c);
            let text = format!(
                "commit {} {kind} this: {}{}",
                code::short(&c.sha),
                one_line(c.title(), 100),
                url.as_deref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            );
            let st = t.state;
            let e = cx.entry(&mut t, &actor, EntryKind::Commented, st, st, &text);
            out.writes.push(Write::Timeline(t.id.clone(), e));
            out.thread(
                cx.ops(),
                &t.id,
                messages::commit_noted(
                    kind,
                    &repo.name,
                    &push.branch,
                    &c,
                    who.as_ref(),
                    url.as_deref(),
                ),
            );
            out.writes.push(Write::Marker(mark, cx.now.timestamp()));
            touched.insert(num, t);
        }
    }
    let ids = touched.values().map(|t| t.id.clone()).collect();
    out.writes.extend(touched.into_values().map(Write::Ticket));
    Ok(ids)
}

/// What a finished run means for the code loop.
pub(crate) enum Loop {
    /// Not a build of a pushed commit: the job's own rules apply.
    NotMine,
    /// Recorded; no ticket follows.
    Done,
    /// The build ticket of the repository's main branch: opened or noted
    /// on failure, resolved on a pass.
    Ticket {
        broken: String,
        team: TeamName,
        title: String,
        /// The suspects, said in the ticket's thread.
        extra: Rich,
    },
}

/// A build of a pushed commit ended: the branch's record follows (the last
/// green head, the commits since), and a main branch's result goes to its
/// build ticket.
pub(crate) fn after_run(
    cx: &Cx<'_>,
    out: &mut Out,
    run: &Run,
    success: bool,
) -> Result<Loop, EngineError> {
    if run.requester.as_str() != "git" {
        return Ok(Loop::NotMine);
    }
    let (Some(name), Some(sha), Some(branch)) = (
        run.params.get("repo"),
        run.params.get("sha"),
        run.params.get("ref"),
    ) else {
        return Ok(Loop::NotMine);
    };
    let Some(repo) = cx.config.repos.get(name) else {
        return Ok(Loop::NotMine);
    };
    let (state_now, said) = if success {
        (StatusState::Success, format!("{} passed", run.id))
    } else {
        let why = run.timeline.last().map(|e| e.text.as_str()).unwrap_or("");
        (StatusState::Failure, format!("{} failed: {why}", run.id))
    };
    out.writes.extend(status(repo, run, state_now, said));
    let key = match run.params.get("pr").and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => pr_key(name, n),
        None => branch_key(name, branch),
    };
    let Some(mut state) = cx.view.branch(&key)? else {
        return Ok(Loop::Done);
    };
    state.runs.retain(|r| *r != run.id);
    let current = state.head.as_deref() == Some(sha.as_str());
    let last_green = state.last_green.clone();
    let suspects: Vec<_> = state
        .since_green
        .iter()
        .map(|c| listed(repo, cx, c))
        .collect();
    if current {
        if !success {
            state.head_failed = true;
        } else if state.runs.is_empty() && !state.head_failed {
            // Every build of the head passed: green.
            state.last_green = Some(sha.clone());
            state.since_green.clear();
        }
    }
    let main = state.main;
    // A pull request's build failing is its author's to hear; no ticket.
    if let (Some(pr), false, true) = (&state.pr, success, current) {
        if let Some(team) = cx.org.team(&repo.team) {
            out.post(
                &team.channel,
                None,
                messages::pr_build_failed(run.id, &run.job, name, pr),
            );
        }
    }
    out.writes.push(Write::Branch(key, state));
    // An older head's result says nothing of the branch as it is now.
    if !main || !current {
        return Ok(Loop::Done);
    }
    Ok(Loop::Ticket {
        broken: format!("{}@{name}", run.job),
        team: repo.team.clone(),
        title: format!("{} is failing on {name} {branch}", run.job),
        extra: messages::build_suspects(last_green.as_deref(), &suspects),
    })
}

/// The poller's word on a `git` repository: unreachable (said once, with
/// the error), or reachable again (said once, if it was said to be down).
pub(crate) fn reach(cx: &Cx<'_>, repo: &str, error: Option<&str>) -> Result<Decision, EngineError> {
    let Some(r) = cx.config.repos.get(repo) else {
        return Ok(Decision::default());
    };
    let Some(team) = cx.org.team(&r.team) else {
        return Ok(Decision::default());
    };
    let key = format!("repo-down:{repo}");
    let down = cx.view.marker(&key)?.is_some_and(|v| v > 0);
    let mut out = Out::new();
    match error {
        Some(e) if !down => {
            out.writes
                .push(Write::Marker(key, cx.now.timestamp().max(1)));
            out.post(&team.channel, None, messages::repo_unreachable(repo, e));
        }
        None if down => {
            out.writes.push(Write::Marker(key, 0));
            out.post(&team.channel, None, messages::repo_reachable(repo));
        }
        _ => return Ok(Decision::default()),
    }
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// The forge refused a commit status for good (401/403/404): the team
/// hears of it once per repository; the status stays a dead letter.
pub(crate) fn status_refused(cx: &Cx<'_>, repo: &str, why: &str) -> Result<Decision, EngineError> {
    let Some(r) = cx.config.repos.get(repo) else {
        return Ok(Decision::default());
    };
    let Some(team) = cx.org.team(&r.team) else {
        return Ok(Decision::default());
    };
    let key = format!("status-refused:{repo}");
    if cx.view.marker(&key)?.is_some() {
        return Ok(Decision::default());
    }
    let mut out = Out::new();
    out.writes.push(Write::Marker(key, cx.now.timestamp()));
    out.post(&team.channel, None, messages::status_refused(repo, why));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
