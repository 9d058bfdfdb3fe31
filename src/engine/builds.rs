//! The engine's build rules: starting a run of a job, following it as the
//! backend reports, one progress message per channel edited in place, the
//! output's tail on failure, and the loop back to tickets (a job failing on
//! its main ref opens a ticket for its team; a green build notes it fixed).
//! Part of the engine: pure.

use crate::domain::job::Job;
use crate::domain::rich::clip_plain;
use crate::domain::run::{JobOrder, Run, RunId, RunState, RunUpdate};
use crate::domain::{
    Actor, ChannelName, EntryKind, Priority, Source, TeamName, TicketState, UserName,
};
use crate::engine::code::Loop;
use crate::engine::context::{step_run, Cx, NewTicket, Out};
use crate::engine::deploys::{after_deploy, deploy_run, deploy_target};
use crate::engine::effect::{Decision, Effect, Reply, Write};
use crate::engine::messages;
use crate::engine::tickets::Action;
use crate::engine::view::QueryView;
use crate::error::{EngineError, UserError};

/// Lines of output shown when a run fails.
const TAIL_LINES: usize = 15;

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn job_named<'a>(cx: &Cx<'a>, name: &str) -> Result<&'a Job, UserError> {
    cx.config.jobs.get(name).ok_or_else(|| {
        let known: Vec<&str> = cx.config.jobs.keys().map(String::as_str).collect();
        UserError::new(format!(
            "there is no job `{}`; jobs are: {}",
            clip_plain(name, 40),
            if known.is_empty() {
                "none (add one in commands/)".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// `/build job:… [ref:…]` or a job's own command; a deploy job goes
/// through the deploy rules instead.
pub(crate) fn build(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    job: &str,
    given: &[(String, String)],
) -> Result<Decision, EngineError> {
    let job = job_named(cx, job)?;
    // A deploy job is a deploy however it is started: /deploy's gates.
    if let Some(target) = deploy_target(cx, job, given)? {
        return deploy_run(cx, actor, channel, &target, given, None, None);
    }
    if !job.admits(&actor.name, cx.org) {
        return Err(UserError::new(format!("only {} may run {}", job.who_text(), job.name)).into());
    }
    let params = job.check_params(given)?;
    let id = RunId(cx.view.last_run_number()? + 1);
    let mut run = Run::queued(
        id,
        &job.name,
        params.clone(),
        &actor.name,
        channel,
        cx.now,
        None,
    );
    step_run(
        &mut run,
        actor,
        RunState::Queued,
        format!("requested by {}", actor.name),
        cx.now,
    );
    let mut out = Out::new();
    out.writes.push(Write::Effect(Effect::Job(JobOrder::Start {
        run: id,
        job: job.name.clone(),
        params,
    })));
    cx.progress_of(&mut out, &run);
    let reply = messages::run_started_reply(id, &job.name, &run.params_text());
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}

/// `/build cancel run:…`: the requester, operators, or whoever may run the job.
pub(crate) fn cancel_run(cx: &Cx<'_>, actor: &Actor, id: RunId) -> Result<Decision, EngineError> {
    let Some(mut run) = cx.view.run(id)? else {
        return Err(UserError::new(format!("there is no run {id}; /runs lists them")).into());
    };
    let org = &cx.org;
    let may = run.requester == actor.name
        || org.is_operator(&actor.name)
        || cx
            .config
            .jobs
            .get(&run.job)
            .is_some_and(|j| j.admits(&actor.name, org));
    if !may {
        return Err(UserError::new(format!(
            "only {} who asked for it, the operators, or those who may run {} may cancel {id}",
            run.requester, run.job
        ))
        .into());
    }
    if run.state.is_final() {
        return Err(UserError::new(format!(
            "{id} is already {}; only queued or running runs can be cancelled",
            run.state
        ))
        .into());
    }
    step_run(
        &mut run,
        actor,
        RunState::Cancelled,
        format!("cancelled by {}", actor.name),
        cx.now,
    );
    run.finished_at = Some(cx.now);
    let mut out = Out::new();
    out.writes
        .push(Write::Effect(Effect::Job(JobOrder::Cancel { run: id })));
    cx.progress_of(&mut out, &run);
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: Some(Reply::private(messages::answers::run_cancelled(id))),
        accepted: None,
        writes: out.writes,
    })
}

/// A run an earlier process left in flight: lost when its job runs
/// locally (the process died with it): marked failed, with the reason,
/// and its queued orders dropped. Jenkins keeps running what it was
/// given: those are followed again, and nothing changes.
pub(crate) fn lost_run(cx: &Cx<'_>, id: RunId, orders: &[u64]) -> Result<Decision, EngineError> {
    let Some(run) = cx.view.run(id)? else {
        return Ok(Decision::default());
    };
    let local = cx
        .config
        .jobs
        .get(&run.job)
        .is_none_or(|j| j.backend == crate::domain::job::Backend::Local)
        // A run the forge started on its own goes on there.
        && !crate::engine::forge_ci::is_adopted(&run);
    if !local || !matches!(run.state, RunState::Queued | RunState::Running) {
        return Ok(Decision::default());
    }
    let update = RunUpdate::Lost {
        reason: "the bot restarted while it ran; start it again".into(),
    };
    let mut decision = run_update(cx, id, &update)?;
    // Its orders go with it.
    decision
        .writes
        .extend(orders.iter().map(|seq| Write::DropJobOrder(*seq)));
    Ok(decision)
}

/// A forge's CI reports a workflow run or pipeline by webhook: a run the
/// forge started on its own is reported as the bot's are.
pub(crate) fn forge_run(
    cx: &Cx<'_>,
    delivery: Option<&str>,
    r: &crate::domain::ci::ForgeRun,
) -> Result<Decision, EngineError> {
    use crate::engine::forge_ci::Adopt;
    match crate::engine::forge_ci::forge_run(cx, delivery, r)? {
        Adopt::Done(d) => Ok(d),
        Adopt::Apply {
            mut out,
            run,
            update,
            main,
            reply,
            accepted,
        } => {
            apply_update_on(cx, &mut out, *run, &update, main)?;
            Ok(Decision {
                reply: Some(Reply::private(reply)),
                accepted: Some(accepted),
                writes: out.writes,
            })
        }
    }
}

/// A backend's report on a run.
pub(crate) fn run_update(
    cx: &Cx<'_>,
    id: RunId,
    update: &RunUpdate,
) -> Result<Decision, EngineError> {
    let Some(run) = cx.view.run(id)? else {
        return Ok(Decision::default());
    };
    let mut out = Out::new();
    apply_update(cx, &mut out, run, update)?;
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// A backend's report applied to `run` (read, or just made): its record,
/// its progress message, its failure's tail, the loop back to tickets.
fn apply_update(
    cx: &Cx<'_>,
    out: &mut Out,
    run: Run,
    update: &RunUpdate,
) -> Result<(), EngineError> {
    apply_update_on(cx, out, run, update, None)
}

/// As [`apply_update`]; `main`: whether a run the forge started is of its
/// repository's main branch, when this decision is the one that says so.
pub(crate) fn apply_update_on(
    cx: &Cx<'_>,
    out: &mut Out,
    mut run: Run,
    update: &RunUpdate,
    main: Option<bool>,
) -> Result<(), EngineError> {
    if run.state.is_final() {
        // A report after a cancel, or a repeat: the record stands.
        return Ok(());
    }
    let ci = Actor::new(UserName::system("ci"), Source::System);
    // A forge's own run id: its webhooks about this run are not a run of
    // their own.
    if let RunUpdate::Submitted { backend_ref } | RunUpdate::Started { backend_ref } = update {
        if let (Some(key), Some(f)) = (
            backend_ref.forge_run(),
            cx.config.jobs.get(&run.job).and_then(|j| j.backend.forge()),
        ) {
            out.writes.push(Write::Marker(
                crate::engine::forge_ci::run_key(&f.repo, &key),
                i64::try_from(run.id.0).unwrap_or(i64::MAX),
            ));
        }
    }
    match update {
        RunUpdate::Submitted { backend_ref } => {
            run.backend_ref = Some(backend_ref.clone());
            step_run(
                &mut run,
                &ci,
                RunState::Queued,
                format!("submitted ({backend_ref})"),
                cx.now,
            );
            cx.progress_of(out, &run);
        }
        RunUpdate::Waiting { reason } => {
            // Said once per run, however often the backend is retried.
            if run.timeline.last().is_some_and(|e| &e.text == reason) {
                return Ok(());
            }
            let state = run.state;
            step_run(&mut run, &ci, state, reason.clone(), cx.now);
            cx.progress_of(out, &run);
        }
        RunUpdate::Started { backend_ref } => {
            run.started_at = Some(cx.now);
            run.backend_ref = Some(backend_ref.clone());
            step_run(
                &mut run,
                &ci,
                RunState::Running,
                format!("running ({backend_ref})"),
                cx.now,
            );
            cx.progress_of(out, &run);
        }
        RunUpdate::Finished {
            success,
            reason,
            tail,
        } => {
            run.finished_at = Some(cx.now);
            let state = if *success {
                RunState::Succeeded
            } else {
                RunState::Failed
            };
            step_run(&mut run, &ci, state, reason.clone(), cx.now);
            cx.progress_of(out, &run);
            if !success && !tail.trim().is_empty() {
                out.post(
                    &run.channel,
                    None,
                    messages::run_failed_output(
                        run.id,
                        &run.job,
                        reason,
                        &last_lines(tail, TAIL_LINES),
                    ),
                );
            }
            if run.deploy.is_some() {
                after_deploy(cx, out, &mut run, *success)?;
            } else {
                after_build(cx, out, &mut run, *success, main)?;
            }
        }
        RunUpdate::Lost { reason } => {
            run.finished_at = Some(cx.now);
            step_run(&mut run, &ci, RunState::Failed, reason.clone(), cx.now);
            cx.progress_of(out, &run);
            after_deploy(cx, out, &mut run, false)?;
        }
    }
    out.writes.push(Write::Run(run));
    Ok(())
}

/// The loop back to tickets, for builds of a job's main ref.
fn after_build(
    cx: &Cx<'_>,
    out: &mut Out,
    run: &mut Run,
    success: bool,
    main: Option<bool>,
) -> Result<(), EngineError> {
    // A build of a pushed commit: the repository's rules.
    match crate::engine::code::after_run(cx, out, run, success)? {
        Loop::NotMine => {}
        Loop::Done => return Ok(()),
        Loop::Ticket {
            broken,
            team,
            title,
            extra,
        } => {
            return build_ticket(
                cx,
                out,
                run,
                success,
                BuildTicket {
                    broken: &broken,
                    team: &team,
                    title: &title,
                    extra: Some(extra),
                },
            )
        }
    }
    // A run the forge started on its own: its repository's rules.
    if crate::engine::forge_ci::is_adopted(run) {
        let Some((broken, team, title)) = crate::engine::forge_ci::adopted_ticket(cx, run, main)?
        else {
            return Ok(());
        };
        return build_ticket(
            cx,
            out,
            run,
            success,
            BuildTicket {
                broken: &broken,
                team: &team,
                title: &title,
                extra: None,
            },
        );
    }
    let Some(job) = cx.config.jobs.get(&run.job) else {
        return Ok(());
    };
    let Some(team) = job.team.clone() else {
        return Ok(());
    };
    let on_main = run.params.get("ref").is_none_or(|r| *r == job.main_ref);
    if !on_main {
        return Ok(());
    }
    let title = format!("{} is failing on {}", job.name, job.main_ref);
    build_ticket(
        cx,
        out,
        run,
        success,
        BuildTicket {
            broken: &job.name,
            team: &team,
            title: &title,
            extra: None,
        },
    )
}

/// Which build ticket a finished run opens, notes or resolves.
struct BuildTicket<'a> {
    /// The key of the `broken` record (a job, or a job on a repository).
    broken: &'a str,
    team: &'a TeamName,
    title: &'a str,
    /// Said in the ticket's thread when a failure opens or notes it.
    extra: Option<crate::domain::rich::Rich>,
}

/// A failure opens the build ticket (or notes it again); a pass resolves
/// an open one for the operator to verify.
fn build_ticket(
    cx: &Cx<'_>,
    out: &mut Out,
    run: &mut Run,
    success: bool,
    b: BuildTicket<'_>,
) -> Result<(), EngineError> {
    let ci = Actor::new(UserName::system("ci"), Source::System);
    let open = match cx.view.broken(b.broken)? {
        Some(tid) => cx
            .view
            .ticket(&tid)?
            .filter(|t| t.state != TicketState::Closed),
        None => None,
    };
    match (success, open) {
        (false, None) => {
            let num = cx.view.last_ticket_number()? + 1;
            let last = run
                .timeline
                .last()
                .map(|e| e.text.clone())
                .unwrap_or_default();
            let description = format!("{} failed: {last}. Requested by {}.", run.id, run.requester);
            let t = cx.open_ticket(
                out,
                NewTicket {
                    num,
                    actor: &ci,
                    channel: &run.channel,
                    title: b.title,
                    description: Some(&description),
                    priority: Priority::P2,
                    team: Some(b.team),
                    headline: "New build ticket ",
                },
            );
            if let Some(extra) = b.extra {
                out.thread(cx.ops(), &t.id, extra);
            }
            out.writes
                .push(Write::Broken(b.broken.to_string(), Some(t.id.clone())));
            run.tickets.push(t.id.clone());
            out.writes.push(Write::Ticket(t));
        }
        (false, Some(mut t)) => {
            let st = t.state;
            let text = format!("failed again: {}", run.id);
            let e = cx.entry(&mut t, &ci, EntryKind::Commented, st, st, &text);
            out.writes.push(Write::Timeline(t.id.clone(), e));
            out.thread(cx.ops(), &t.id, messages::run_failed_again(run.id));
            if let Some(extra) = b.extra {
                out.thread(cx.ops(), &t.id, extra);
            }
            t.updated_at = cx.now;
            run.tickets.push(t.id.clone());
            out.writes.push(Write::Ticket(t));
        }
        (true, Some(mut t)) => {
            let st = t.state;
            let text = format!("fixed: {} passed", run.id);
            let e = cx.entry(&mut t, &ci, EntryKind::Commented, st, st, &text);
            out.writes.push(Write::Timeline(t.id.clone(), e));
            out.thread(cx.ops(), &t.id, messages::run_passed_fixed(run.id));
            // Resolved for the operator to verify, unless it already is.
            if let Ok(nt) = cx.system_move(out, &t, &ci, Action::Resolve { note: text }) {
                t = nt;
            }
            t.updated_at = cx.now;
            out.writes.push(Write::Broken(b.broken.to_string(), None));
            run.tickets.push(t.id.clone());
            out.writes.push(Write::Ticket(t));
        }
        (true, None) => {}
    }
    Ok(())
}

/// `/runs`.
pub(crate) fn list_runs(view: &dyn QueryView) -> Result<Reply, EngineError> {
    let runs = view.recent_runs(15)?;
    if runs.is_empty() {
        return Ok(Reply::private(messages::answers::no_runs()));
    }
    Ok(Reply::private(messages::runs_list(&runs)))
}
