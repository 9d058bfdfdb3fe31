//! Runs of a forge's own CI reported by webhook (`workflow_run`,
//! `Pipeline Hook`): one the bot did not start, on a branch bot.toml
//! follows, becomes a run of its own, reported like a bot-started one (its
//! progress message, a failing main branch's build ticket, a green one
//! resolving it); one the bot started is followed by the bot already and
//! is not reported twice. A redelivered hook changes nothing. Part of the
//! engine: pure.

use std::collections::BTreeMap;

use crate::domain::ci::{ForgeRun, ForgeRunState};
use crate::domain::code::Provider;
use crate::domain::rich::one_line;
use crate::domain::run::{BackendRef, Run, RunId, RunState, RunUpdate};
use crate::domain::{Actor, Source, TeamName, UserName};
use crate::engine::code::{once, unfollowed};
use crate::engine::context::{step_run, Cx, Out};
use crate::engine::effect::{Accepted, Decision, Reply, Write};
use crate::error::EngineError;

/// How many recent runs are looked at for a dispatch not matched yet.
const RECENT: u64 = 50;

/// The marker that maps a forge's run (`github:ID`) in `repo` to the
/// bot's run.
pub(crate) fn run_key(repo: &str, forge_run: &str) -> String {
    format!("ci-run:{repo}:{forge_run}")
}

/// The marker saying an adopted run is of its repository's main branch.
fn main_key(run: RunId) -> String {
    format!("ci-main:{run}")
}

/// Who an adopted run is requested by: the forge.
fn forge_actor(p: Provider) -> Actor {
    let name = match p {
        Provider::Gitlab => UserName::system("gitlab"),
        _ => UserName::system("github"),
    };
    Actor::new(name, Source::System)
}

fn ignored(why: String) -> Result<Adopt, EngineError> {
    Ok(Adopt::Done(Decision {
        reply: Some(Reply::private(why)),
        accepted: None,
        writes: Vec::new(),
    }))
}

/// What a forge's report of a run comes to: a decision as it is, or a
/// run update for the build rules to apply (`builds::forge_run`), then the
/// answer.
pub(crate) enum Adopt {
    Done(Decision),
    Apply {
        out: Out,
        run: Box<Run>,
        update: RunUpdate,
        /// For a run adopted by this decision: of its main branch or not.
        main: Option<bool>,
        reply: String,
        accepted: Accepted,
    },
}

/// A payload's name made plain text that formats and pings nothing:
/// letters, digits, ` `, `.`, `_`, `-`, at most 60.
fn plain_name(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
        .take(60)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        "workflow".into()
    } else {
        s.to_string()
    }
}

fn backend_ref(r: &ForgeRun) -> BackendRef {
    // Shown as it is: only a plain http(s) URL.
    let url = r
        .url
        .as_deref()
        .filter(|u| {
            (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 300
                && u.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'`' | b'|' | b'@'))
        })
        .map(str::to_string);
    match r.provider {
        Provider::Gitlab => BackendRef::GitlabPipeline { id: r.id, url },
        _ => BackendRef::GithubRun { id: r.id, url },
    }
}

/// Whether the bot started this run: its title names a run of a forge job
/// of this repository, or it is a dispatch (trigger) while such a run
/// waits to be matched with the run it started.
fn started_by_bot(cx: &Cx<'_>, r: &ForgeRun) -> Result<bool, EngineError> {
    let mine = |run: &Run| {
        cx.config
            .jobs
            .get(&run.job)
            .and_then(|j| j.backend.forge())
            .is_some_and(|f| {
                f.repo == r.repo
                    && (r.workflow_file.is_none()
                        || r.workflow_file.as_deref() == Some(f.workflow.as_str()))
            })
    };
    let last = cx.view.last_run_number()?;
    for n in (last.saturating_sub(RECENT)..=last)
        .rev()
        .filter(|n| *n > 0)
    {
        let Some(run) = cx.view.run(RunId(n))? else {
            continue;
        };
        if !mine(&run) {
            continue;
        }
        if r.title
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == run.id.to_string())
        {
            return Ok(true);
        }
        let unmatched = matches!(
            run.backend_ref,
            None | Some(BackendRef::GithubDispatch { .. })
        );
        if r.started_by_api() && !run.state.is_final() && unmatched {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A forge reported a run of its CI.
pub(crate) fn forge_run(
    cx: &Cx<'_>,
    delivery: Option<&str>,
    r: &ForgeRun,
) -> Result<Adopt, EngineError> {
    let repo = match unfollowed(cx, &r.repo, &r.branch, r.default_branch.as_deref()) {
        Ok(repo) => repo,
        Err(why) => return ignored(why),
    };
    let mut out = Out::new();
    if let Some(why) = once(cx, delivery, &mut out)? {
        return ignored(why);
    }
    let key = run_key(&repo.name, &r.key());
    let update = match r.state {
        ForgeRunState::Queued => None,
        ForgeRunState::Running => Some(RunUpdate::Started {
            backend_ref: backend_ref(r),
        }),
        ForgeRunState::Succeeded | ForgeRunState::Failed => Some(RunUpdate::Finished {
            success: r.state == ForgeRunState::Succeeded,
            reason: format!(
                "{} says {}",
                match r.provider {
                    Provider::Gitlab => "GitLab CI",
                    _ => "GitHub Actions",
                },
                one_line(&r.word, 40)
            ),
            tail: r.tail.clone(),
        }),
    };
    let known = match cx.view.marker(&key)? {
        Some(n) => u64::try_from(n).ok().map(RunId),
        None => None,
    };
    if let Some(id) = known {
        let Some(run) = cx.view.run(id)? else {
            return ignored(format!("{id} is gone"));
        };
        if run.requester != forge_actor(r.provider).name {
            return ignored(format!("{id} started it; the bot follows it already"));
        }
        let said = run.state;
        let moved = match &update {
            None => false,
            Some(RunUpdate::Started { .. }) => said == RunState::Queued,
            Some(_) => !said.is_final(),
        };
        let reply = format!("{id} is {}", one_line(&r.word, 40));
        if let (true, Some(update)) = (moved, update) {
            return Ok(Adopt::Apply {
                out,
                run: Box::new(run),
                update,
                main: None,
                reply,
                accepted: Accepted::default(),
            });
        }
        return Ok(Adopt::Done(Decision {
            reply: Some(Reply::private(reply)),
            accepted: Some(Accepted::default()),
            writes: out.writes,
        }));
    }
    if started_by_bot(cx, r)? {
        return ignored("started by the bot, which follows it already".into());
    }
    let Some(team) = cx.org.team(&repo.team) else {
        return ignored(format!("ignored: the team {} is gone", repo.team));
    };
    let id = RunId(cx.view.last_run_number()? + 1);
    let actor = forge_actor(r.provider);
    let mut params = BTreeMap::new();
    params.insert("repo".to_string(), repo.name.clone());
    params.insert("ref".to_string(), r.branch.clone());
    params.insert("sha".to_string(), r.sha.clone());
    let job = plain_name(&r.workflow);
    let mut run = Run::queued(id, &job, params, &actor.name, &team.channel, cx.now, None);
    run.backend_ref = Some(backend_ref(r));
    step_run(
        &mut run,
        &actor,
        RunState::Queued,
        format!(
            "started on {} by {} ({})",
            r.provider,
            one_line(&r.actor, 60),
            one_line(&r.event, 40)
        ),
        cx.now,
    );
    out.writes
        .push(Write::Marker(key, i64::try_from(id.0).unwrap_or(i64::MAX)));
    let main = repo.is_main(&r.branch, r.default_branch.as_deref());
    if main {
        out.writes.push(Write::Marker(main_key(id), 1));
    }
    let reply = format!("reported as {id}");
    let accepted = Accepted {
        accepted: 1,
        tickets: Vec::new(),
    };
    match update {
        None => {
            cx.progress_of(&mut out, &run);
            out.writes.push(Write::Run(run));
            Ok(Adopt::Done(Decision {
                reply: Some(Reply::private(reply)),
                accepted: Some(accepted),
                writes: out.writes,
            }))
        }
        Some(update) => Ok(Adopt::Apply {
            out,
            run: Box::new(run),
            update,
            main: Some(main),
            reply,
            accepted,
        }),
    }
}

/// Whether the forge started this run on its own (the bot adopted it).
pub(crate) fn is_adopted(run: &Run) -> bool {
    matches!(run.requester.as_str(), "github" | "gitlab")
}

/// The build ticket of an adopted run of a main branch: its key, team and
/// title.
pub(crate) fn adopted_ticket(
    cx: &Cx<'_>,
    run: &Run,
    main: Option<bool>,
) -> Result<Option<(String, TeamName, String)>, EngineError> {
    if !is_adopted(run) {
        return Ok(None);
    }
    let (Some(name), Some(branch)) = (run.params.get("repo"), run.params.get("ref")) else {
        return Ok(None);
    };
    let Some(repo) = cx.config.repos.get(name) else {
        return Ok(None);
    };
    let main = match main {
        Some(m) => m,
        None => cx.view.marker(&main_key(run.id))?.is_some(),
    };
    if !main {
        return Ok(None);
    }
    Ok(Some((
        format!("{}@{name}", run.job),
        repo.team.clone(),
        format!("{} is failing on {name} {branch}", run.job),
    )))
}
