//! The engine's deploy rules: deploys of a service to an environment run its
//! job; protected environments wait for an approval from the approvers the
//! config names (never the requester's own); one deploy at a time per
//! service and environment (a lock); a history of what succeeded, for
//! rollback; and a deploy whose version or notes say `fixes OPS-12` resolves
//! those tickets for the operator to verify. Part of the engine: pure.

use crate::commands::CommandName;
use crate::config::Config;
use crate::domain::job::{describe, Job};
use crate::domain::org::Org;
use crate::domain::rich::one_line;
use crate::domain::run::{Deploy, Deployed, JobOrder, Run, RunId, RunState};
use crate::domain::service::{Environment, Service};
use crate::domain::{Actor, ChannelName, Source, TicketId, TicketState, UserName};
use crate::engine::context::{step_run, Cx, Out};
use crate::engine::effect::{Decision, Effect, Reply, Write};
use crate::engine::messages;
use crate::engine::tickets::Action;
use crate::error::{EngineError, UserError};

/// What a deploy deploys: the service, its environment, the job that runs it.
#[derive(Clone, Copy)]
pub(crate) struct DeployTarget<'a> {
    pub svc: &'a Service,
    pub environment: &'a Environment,
    pub job: &'a Job,
}

fn service_named<'a>(cx: &Cx<'a>, name: &str) -> Result<&'a Service, UserError> {
    cx.config.services.get(name).ok_or_else(|| {
        let known: Vec<&str> = cx.config.services.keys().map(String::as_str).collect();
        UserError::new(format!(
            "there is no service `{}`; services are: {}",
            one_line(name, 40),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn environment_named<'a>(svc: &'a Service, name: &str) -> Result<&'a Environment, UserError> {
    svc.environments.get(name).ok_or_else(|| {
        UserError::new(format!(
            "{} has no environment `{}`; its environments are: {}",
            svc.name,
            one_line(name, 40),
            svc.environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// `/deploy service:… env:… [version:…] [notes:…]`.
pub(crate) fn deploy(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    service: &str,
    env: &str,
    version: Option<&str>,
    notes: Option<&str>,
) -> Result<Decision, EngineError> {
    let ask = DeployAsk {
        service,
        env,
        version,
        notes,
        rollback_of: None,
    };
    start_deploy(cx, actor, channel, ask)
}

/// What a person asked to deploy (`/deploy`, or `/rollback` naming the run
/// it rolls back).
struct DeployAsk<'a> {
    service: &'a str,
    env: &'a str,
    version: Option<&'a str>,
    notes: Option<&'a str>,
    rollback_of: Option<RunId>,
}

fn start_deploy(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    ask: DeployAsk<'_>,
) -> Result<Decision, EngineError> {
    let DeployAsk {
        service,
        env,
        version,
        notes,
        rollback_of,
    } = ask;
    let svc = service_named(cx, service)?;
    let environment = environment_named(svc, env)?;
    let Some(job) = cx.config.jobs.get(&environment.job) else {
        return Err(UserError::new(format!(
            "the deploy job {} is missing from commands/",
            environment.job
        ))
        .into());
    };
    let mut given: Vec<(String, String)> = Vec::new();
    for (k, v) in [
        ("service", Some(service)),
        ("env", Some(env)),
        ("version", version),
    ] {
        if let Some(v) = v {
            if job.params.iter().any(|p| p.name == k) {
                given.push((k.to_string(), v.to_string()));
            } else if k == "version" {
                return Err(UserError::new(format!(
                    "the deploy job {} takes no version",
                    job.name
                ))
                .into());
            }
        }
    }
    let target = DeployTarget {
        svc,
        environment,
        job,
    };
    deploy_run(cx, actor, channel, &target, &given, notes, rollback_of)
}

/// The service and environment a run of `job` with these parameters
/// deploys, when `job` is a deploy job (one a `[services]` environment
/// names). `None`: an ordinary build. A deploy job whose parameters name
/// no single environment is refused: it may only start as a deploy.
pub(crate) fn deploy_target<'a>(
    cx: &Cx<'a>,
    job: &'a Job,
    given: &[(String, String)],
) -> Result<Option<DeployTarget<'a>>, EngineError> {
    let all: Vec<(&Service, &Environment)> = cx
        .config
        .services
        .values()
        .flat_map(|s| s.environments.values().map(move |e| (s, e)))
        .filter(|(_, e)| e.job == job.name)
        .collect();
    if all.is_empty() {
        return Ok(None);
    }
    let names = all
        .iter()
        .map(|(s, e)| format!("{}/{}", s.name, e.name))
        .collect::<Vec<_>>()
        .join(", ");
    let params = job.check_params(given).map_err(|e| {
        UserError::new(format!(
            "{e}. {} is the deploy job of {names}: deploy with /deploy service:… env:… [version:…]",
            job.name
        ))
    })?;
    let fits: Vec<&(&Service, &Environment)> = all
        .iter()
        .filter(|(s, e)| {
            params.get("service").is_none_or(|v| *v == s.name)
                && params.get("env").is_none_or(|v| *v == e.name)
        })
        .collect();
    match fits.as_slice() {
        [(svc, environment)] => Ok(Some(DeployTarget {
            svc,
            environment,
            job,
        })),
        _ => Err(UserError::new(format!(
            "{} is the deploy job of {names}, and these parameters name {} of them; \
                 deploy with /deploy service:… env:… [version:…]",
            job.name,
            if fits.is_empty() {
                "none"
            } else {
                "more than one"
            }
        ))
        .into()),
    }
}

/// Starts a deploy, whatever asked for it (`/deploy`, `/rollback`, the
/// deploy job's own command, `/build`): who may, the lock, the approval
/// gate, the history. Every deploy goes through here.
pub(crate) fn deploy_run(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    target: &DeployTarget<'_>,
    given: &[(String, String)],
    notes: Option<&str>,
    rollback_of: Option<RunId>,
) -> Result<Decision, EngineError> {
    let DeployTarget {
        svc,
        environment,
        job,
    } = *target;
    if !job.admits(&actor.name, cx.org) {
        return Err(UserError::new(format!(
            "only {} may deploy {} to {}",
            job.who_text(),
            svc.name,
            environment.name
        ))
        .into());
    }
    let params = job.check_params(given)?;
    let key = format!("{}/{}", svc.name, environment.name);
    if let Some(holder) = cx.view.lock(&key)? {
        if let Some(h) = cx.view.run(holder)?.filter(|r| !r.state.is_final()) {
            return Err(UserError::new(format!(
                "{key} is locked by {} ({}, {}): one deploy at a time; wait for it, or /build cancel run:{}",
                h.id, h.requester, h.state, h.id
            ))
            .into());
        }
    }
    let id = RunId(cx.view.last_run_number()? + 1);
    let deploy = Deploy {
        service: svc.name.clone(),
        env: environment.name.clone(),
        version: params
            .get("version")
            .cloned()
            .unwrap_or_else(|| "default".into()),
        notes: notes.map(str::to_string),
        rollback_of,
        approved_by: None,
        maintenance: None,
    };
    let mut run = Run::queued(
        id,
        &job.name,
        params.clone(),
        &actor.name,
        channel,
        cx.now,
        Some(deploy.clone()),
    );
    let what = match rollback_of {
        Some(r) => format!("rollback of {key} to {} (as of {r})", deploy.version),
        None => format!(
            "deploy of {} {} to {}",
            svc.name, deploy.version, environment.name
        ),
    };
    let mut out = Out::new();
    let reply = if environment.protected {
        step_run(
            &mut run,
            actor,
            RunState::WaitingApproval,
            format!("{what} requested by {}; waiting for approval", actor.name),
            cx.now,
        );
        let notify: Vec<UserName> = approver_people(cx, environment)
            .into_iter()
            .filter(|p| *p != actor.name)
            .collect();
        let body = crate::engine::messages::deploy_needs_approval(
            id,
            &what,
            &actor.name,
            &describe(&environment.approvers, cx.org),
            &notify,
            notes,
        );
        for ch in deploy_channels(cx, &run) {
            out.post(&ch, None, body.clone());
        }
        format!(
            "{id} waits for an approval ({}).",
            describe(&environment.approvers, cx.org)
        )
    } else {
        step_run(
            &mut run,
            actor,
            RunState::Queued,
            format!("{what} requested by {}", actor.name),
            cx.now,
        );
        out.writes.push(Write::Effect(Effect::Job(JobOrder::Start {
            run: id,
            job: job.name.clone(),
            params,
        })));
        crate::engine::maintenance::open_for_deploy(cx, &mut out, &mut run)?;
        messages::answers::deploy_started(id, &what)
    };
    cx.progress_of(&mut out, &run);
    out.writes.push(Write::Lock(key, Some(id)));
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: Some(Reply::private(reply)),
        accepted: None,
        writes: out.writes,
    })
}

/// The last word on every decision that starts a job: a deploy job
/// only starts as a deploy run (with its service and environment on
/// record), and in a protected environment only once approved. Whatever
/// entry point made the decision (a command, a button, a hook), a start
/// that skipped the deploy rules is refused here and nothing is written.
pub(crate) fn check_starts(config: &Config, writes: &[Write]) -> Result<(), EngineError> {
    for w in writes {
        let Write::Effect(Effect::Job(JobOrder::Start { run, job, .. })) = w else {
            continue;
        };
        let envs: Vec<&Environment> = config
            .services
            .values()
            .flat_map(|s| s.environments.values())
            .filter(|e| e.job == *job)
            .collect();
        if envs.is_empty() {
            continue;
        }
        let record = writes.iter().rev().find_map(|w| match w {
            Write::Run(r) if r.id == *run => Some(r),
            _ => None,
        });
        let gated = record.and_then(|r| r.deploy.as_ref()).is_some_and(|d| {
            let env = config
                .services
                .get(&d.service)
                .and_then(|s| s.environments.get(&d.env));
            env.is_some_and(|e| e.job == *job && (!e.protected || d.approved_by.is_some()))
        });
        if !gated {
            return Err(UserError::new(format!(
                "{run} would start the deploy job {job} without the deploy rules; deploy with /deploy service:… env:…"
            ))
            .into());
        }
    }
    Ok(())
}

/// Whether `user` may run a command at all, as the rules that decide it
/// see it: for builds and deploys, the jobs' `who` and the environments'
/// approvers (the checks [`Engine::deploy_run`], `approve` and `build`
/// make), for ticket moves the ticket rules (`ticket::may_ever`), for the
/// others the command's declaration (which `/alert` and `/oncall set`
/// check too). `/help` lists what this admits.
pub(crate) fn may_run(config: &Config, org: &Org, user: &UserName, command: CommandName) -> bool {
    let envs = || {
        config
            .services
            .values()
            .flat_map(|s| s.environments.values())
    };
    let deploys = || envs().any(|e| config.jobs.get(&e.job).is_some_and(|j| j.admits(user, org)));
    let approves = || envs().any(|e| e.protected && e.approves(user, org));
    let builds = || config.jobs.values().any(|j| j.admits(user, org));
    let ticket_move = |kind| crate::engine::tickets::may_ever(kind, user, org);
    use crate::engine::tickets::Kind;
    match command {
        // Ticket moves: whom the ticket rules let make them.
        CommandName::TicketAssign => ticket_move(Kind::Assign),
        CommandName::TicketTake => ticket_move(Kind::Take),
        CommandName::TicketResolve => ticket_move(Kind::Resolve),
        CommandName::TicketQa => ticket_move(Kind::Qa),
        CommandName::TicketVerify => ticket_move(Kind::Verify),
        CommandName::TicketReject => ticket_move(Kind::Reject),
        CommandName::TicketReopen => ticket_move(Kind::Reopen),
        CommandName::TicketComment => ticket_move(Kind::Comment),
        CommandName::Build => builds(),
        CommandName::BuildCancel => builds() || org.is_operator(user),
        CommandName::Deploy | CommandName::Rollback => deploys(),
        CommandName::Approve => approves(),
        // Approvers deny; requesters withdraw their own.
        CommandName::Deny => approves() || deploys(),
        other => other.spec().who.admits(user, org),
    }
}

/// The people an environment's approvers are.
fn approver_people(cx: &Cx<'_>, env: &Environment) -> Vec<UserName> {
    let org = &cx.org;
    let mut out: Vec<UserName> = org
        .people()
        .into_iter()
        .filter(|p| env.approvers.iter().any(|a| a.admits(p, org)))
        .collect();
    out.dedup();
    out
}

fn deploy_channels(cx: &Cx<'_>, run: &Run) -> Vec<ChannelName> {
    let mut out = vec![run.channel.clone()];
    let team = run
        .deploy
        .as_ref()
        .and_then(|d| cx.config.services.get(&d.service))
        .and_then(|s| s.team.as_ref())
        .and_then(|t| cx.org.team(t));
    if let Some(t) = team {
        if !out.contains(&t.channel) {
            out.push(t.channel.clone());
        }
    }
    out
}

/// `/rollback service:… env:…`: the last version that succeeded before
/// the current one, deployed again (with approval where needed).
pub(crate) fn rollback(
    cx: &Cx<'_>,
    actor: &Actor,
    channel: &ChannelName,
    service: &str,
    env: &str,
) -> Result<Decision, EngineError> {
    let svc = service_named(cx, service)?;
    let environment = environment_named(svc, env)?;
    let key = format!("{}/{}", svc.name, environment.name);
    let history = cx.view.history(&key)?;
    let current = history.last();
    let Some(target) = history
        .iter()
        .rev()
        .find(|d| Some(&d.version) != current.map(|c| &c.version))
    else {
        return Err(UserError::new(format!(
            "{key} has no earlier successful version to roll back to (deployed: {})",
            if history.is_empty() {
                "nothing yet".to_string()
            } else {
                history
                    .iter()
                    .map(|d| d.version.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
        .into());
    };
    let version = target.version.clone();
    let run = target.run;
    let ask = DeployAsk {
        service,
        env,
        version: Some(&version),
        notes: None,
        rollback_of: Some(run),
    };
    start_deploy(cx, actor, channel, ask)
}

fn waiting(cx: &Cx<'_>, id: RunId) -> Result<(Run, Deploy, Environment), EngineError> {
    let Some(run) = cx.view.run(id)? else {
        return Err(UserError::new(format!("there is no run {id}; /runs lists them")).into());
    };
    let Some(deploy) = run.deploy.clone() else {
        return Err(
            UserError::new(format!("{id} is a build, not a deploy: nothing to approve")).into(),
        );
    };
    if run.state != RunState::WaitingApproval {
        return Err(UserError::new(format!(
            "{id} is not waiting for approval; it is {}",
            run.state
        ))
        .into());
    }
    let env = cx
        .config
        .services
        .get(&deploy.service)
        .and_then(|s| s.environments.get(&deploy.env))
        .cloned()
        .ok_or_else(|| {
            UserError::new(format!(
                "{}/{} is no longer configured",
                deploy.service, deploy.env
            ))
        })?;
    Ok((run, deploy, env))
}

/// `/approve run:…`: an approver who is not the requester.
pub(crate) fn approve(cx: &Cx<'_>, actor: &Actor, id: RunId) -> Result<Decision, EngineError> {
    let (mut run, mut deploy, env) = waiting(cx, id)?;
    let org = &cx.org;
    let who = describe(&env.approvers, org);
    if run.requester == actor.name {
        return Err(UserError::new(format!(
            "you asked for {id}: someone else must approve it ({who})"
        ))
        .into());
    }
    if !env.approves(&actor.name, org) {
        return Err(UserError::new(format!(
            "only {who} may approve deploys to {}/{}",
            deploy.service, deploy.env
        ))
        .into());
    }
    deploy.approved_by = Some(actor.name.clone());
    run.deploy = Some(deploy);
    step_run(
        &mut run,
        actor,
        RunState::Queued,
        format!("approved by {}", actor.name),
        cx.now,
    );
    let mut out = Out::new();
    out.writes.push(Write::Effect(Effect::Job(JobOrder::Start {
        run: id,
        job: run.job.clone(),
        params: run.params.clone(),
    })));
    crate::engine::maintenance::open_for_deploy(cx, &mut out, &mut run)?;
    cx.progress_of(&mut out, &run);
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: Some(Reply::private(messages::answers::deploy_approved(id))),
        accepted: None,
        writes: out.writes,
    })
}

/// `/deny run:… reason:…`: an approver, or the requester withdrawing it.
pub(crate) fn deny(
    cx: &Cx<'_>,
    actor: &Actor,
    id: RunId,
    reason: &str,
) -> Result<Decision, EngineError> {
    let (mut run, deploy, env) = waiting(cx, id)?;
    let org = &cx.org;
    if run.requester != actor.name && !env.approves(&actor.name, org) {
        return Err(UserError::new(format!(
            "only {} or {} who asked for it may deny {id}",
            describe(&env.approvers, org),
            run.requester
        ))
        .into());
    }
    step_run(
        &mut run,
        actor,
        RunState::Cancelled,
        format!("denied by {}: {}", actor.name, one_line(reason, 300)),
        cx.now,
    );
    run.finished_at = Some(cx.now);
    let mut out = Out::new();
    cx.progress_of(&mut out, &run);
    out.writes.push(Write::Lock(deploy.key(), None));
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: Some(Reply::private(messages::answers::deploy_denied(id))),
        accepted: None,
        writes: out.writes,
    })
}

/// After a deploy ended: the lock is free; on success the history grows
/// and `fixes OPS-N` resolves those tickets.
pub(crate) fn after_deploy(
    cx: &Cx<'_>,
    out: &mut Out,
    run: &mut Run,
    success: bool,
) -> Result<(), EngineError> {
    let Some(deploy) = run.deploy.clone() else {
        return Ok(());
    };
    let key = deploy.key();
    if cx.view.lock(&key)? == Some(run.id) {
        out.writes.push(Write::Lock(key.clone(), None));
    }
    if !success {
        return Ok(());
    }
    let mut history = cx.view.history(&key)?;
    // Counted from the last version git resolved here (a version it could
    // not read says nothing of what ran), or else the last one deployed.
    let previous = history
        .iter()
        .rev()
        .find_map(|d| d.sha.clone())
        .or_else(|| history.last().map(|d| d.version.clone()));
    history.push(Deployed {
        run: run.id,
        version: deploy.version.clone(),
        at: cx.now,
        sha: None,
    });
    if history.len() > 50 {
        history.drain(..history.len() - 50);
    }
    out.writes.push(Write::History(key.clone(), history));
    // The commits it brought, read with git by the adapter: the answer is
    // an `Event::DeployCommits` (see [`deploy_commits`]).
    let repo = cx
        .config
        .services
        .get(&deploy.service)
        .and_then(|s| s.repo.as_ref())
        .filter(|r| cx.config.repos.contains_key(*r));
    if let Some(repo) = repo {
        out.writes
            .push(Write::Effect(Effect::Job(JobOrder::DeployCommits {
                run: run.id,
                repo: repo.clone(),
                from: previous,
                to: deploy.version.clone(),
            })));
    }
    let text = format!(
        "{} {}",
        deploy.version,
        deploy.notes.clone().unwrap_or_default()
    );
    let ci = Actor::new(UserName::system("ci"), Source::System);
    for id in fixes(&text, &cx.config.tickets.prefix) {
        let Some(t) = cx.view.ticket(&id)? else {
            continue;
        };
        if !matches!(
            t.state,
            TicketState::Open | TicketState::Assigned | TicketState::InProgress
        ) {
            continue;
        }
        let note = format!(
            "fixed by {} ({} {} to {})",
            run.id, deploy.service, deploy.version, deploy.env
        );
        let nt = cx.system_move(out, &t, &ci, Action::Resolve { note })?;
        run.tickets.push(nt.id.clone());
        out.writes.push(Write::Ticket(nt));
    }
    Ok(())
}

/// What git said of a succeeded deploy's commits: each ticket a new commit
/// says it fixes is resolved for the operator to verify (once: a ticket
/// no longer open is left as it is), each it refers to is noted; the
/// deploy's channels hear what it brought. A first deploy resolves
/// nothing (nothing to compare with), nor does a deploy that goes back in
/// history; a version git cannot read is said once per repository and
/// version. The answer for a run is taken once (a redelivery changes
/// nothing).
pub(crate) fn deploy_commits(
    cx: &Cx<'_>,
    id: RunId,
    repo_name: &str,
    found: &crate::domain::code::DeployCommits,
) -> Result<Decision, EngineError> {
    use crate::domain::code::{DeployCommits as D, TicketRef};
    use crate::engine::messages;
    let Some(mut run) = cx.view.run(id)? else {
        return Ok(Decision::default());
    };
    let Some(deploy) = run.deploy.clone() else {
        return Ok(Decision::default());
    };
    let mark = format!("deploy-commits:{id}");
    if run.state != RunState::Succeeded || cx.view.marker(&mark)?.is_some() {
        return Ok(Decision::default());
    }
    let mut out = Out::new();
    out.writes.push(Write::Marker(mark, cx.now.timestamp()));
    let channels = deploy_channels(cx, &run);
    let (svc, env, version) = (&deploy.service, &deploy.env, &deploy.version);
    // The commit the version is, kept in the history for the next deploy.
    let resolved_to = match found {
        D::Range { to, .. } | D::First { to } | D::Rollback { to, .. } => Some(to.clone()),
        D::Unknown { .. } => None,
    };
    if let Some(sha) = resolved_to {
        let key = deploy.key();
        let mut history = cx.view.history(&key)?;
        if let Some(d) = history.iter_mut().rev().find(|d| d.run == id) {
            d.sha = Some(sha);
            out.writes.push(Write::History(key, history));
        }
    }
    let body = match found {
        D::First { to } => Some(messages::deploy_first(id, svc, env, version, to)),
        D::Rollback { from, dropped, .. } => {
            let from = named(cx, &deploy, id, from)?;
            Some(messages::deploy_went_back(
                id, svc, env, &from, version, *dropped,
            ))
        }
        D::Unknown { version: v, why } => {
            let once = format!("deploy-unknown:{repo_name}:{v}");
            if cx.view.marker(&once)?.is_some() {
                None
            } else {
                out.writes.push(Write::Marker(once, cx.now.timestamp()));
                Some(messages::deploy_version_unknown(
                    id, svc, env, repo_name, v, why,
                ))
            }
        }
        D::Range {
            from,
            commits,
            total,
            ..
        } => {
            let prefix = &cx.config.tickets.prefix;
            let ci = Actor::new(UserName::system("ci"), Source::System);
            let mut touched: std::collections::BTreeMap<u64, crate::domain::Ticket> =
                std::collections::BTreeMap::new();
            let (mut resolved, mut noted) = (Vec::new(), Vec::new());
            for c in commits {
                for (kind, num) in crate::domain::code::ticket_refs(&c.message, prefix) {
                    let t = match touched.remove(&num) {
                        Some(t) => t,
                        None => match cx.view.ticket(&TicketId::new(prefix, num))? {
                            Some(t) => t,
                            None => continue,
                        },
                    };
                    let open = matches!(
                        t.state,
                        TicketState::Open | TicketState::Assigned | TicketState::InProgress
                    );
                    let t = match kind {
                        TicketRef::Fixes if open => {
                            let note = messages::deploy_fix_note(id, svc, env, version, &c.sha);
                            // A move the ticket rules refuse leaves it as it
                            // is; the other tickets still follow.
                            match cx.system_move(&mut out, &t, &ci, Action::Resolve { note }) {
                                Ok(nt) => {
                                    resolved.push(nt.id.clone());
                                    nt
                                }
                                Err(_) => t,
                            }
                        }
                        TicketRef::Fixes => t,
                        TicketRef::Refs => {
                            let mut t = t;
                            let st = t.state;
                            let text = messages::deploy_ref_note(id, svc, env, version, c);
                            let e = cx.entry(
                                &mut t,
                                &ci,
                                crate::domain::EntryKind::Commented,
                                st,
                                st,
                                &text,
                            );
                            out.writes.push(Write::Timeline(t.id.clone(), e));
                            if !noted.contains(&t.id) {
                                noted.push(t.id.clone());
                            }
                            t
                        }
                    };
                    touched.insert(num, t);
                }
            }
            for t in &resolved {
                if !run.tickets.contains(t) {
                    run.tickets.push(t.clone());
                }
            }
            out.writes.extend(touched.into_values().map(Write::Ticket));
            match cx.config.repos.get(repo_name) {
                Some(repo) if *total > 0 => {
                    let since = named(cx, &deploy, id, from)?;
                    let listed: Vec<_> = commits
                        .iter()
                        .map(|c| crate::engine::code::listed(repo, cx, c))
                        .collect();
                    Some(messages::deploy_commits(
                        id, svc, env, version, &since, &listed, *total, &resolved, &noted,
                    ))
                }
                _ => None,
            }
        }
    };
    if let Some(body) = body {
        for ch in &channels {
            out.post(ch, None, body.clone());
        }
    }
    out.writes.push(Write::Run(run));
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}

/// How people name the commit `sha` of a deploy's environment: the
/// version an earlier deploy there resolved to it, or else its short id.
fn named(cx: &Cx<'_>, deploy: &Deploy, id: RunId, sha: &str) -> Result<String, EngineError> {
    Ok(cx
        .view
        .history(&deploy.key())?
        .iter()
        .rev()
        .find(|d| d.run != id && d.sha.as_deref() == Some(sha))
        .map(|d| d.version.clone())
        .unwrap_or_else(|| crate::domain::code::short(sha).to_string()))
}

/// The tickets a text says it fixes: `fixes OPS-12`, `Fixed ops-3`.
pub(crate) fn fixes(text: &str, prefix: &str) -> Vec<TicketId> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '.' | ':'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<TicketId> = Vec::new();
    for pair in words.windows(2) {
        let verb = pair[0].to_ascii_lowercase();
        if matches!(
            verb.as_str(),
            "fix" | "fixes" | "fixed" | "closes" | "resolves"
        ) {
            if let Ok(id) = TicketId::parse(pair[1], prefix) {
                if pair[1].contains('-') && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    fn shipped() -> Engine {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bot.toml");
        let loaded = crate::config::Config::load(&file).expect("the shipped config loads");
        Engine::new(std::sync::Arc::new(loaded.config))
    }

    fn start(job: &str, deploy: Option<Deploy>) -> Vec<Write> {
        let id = RunId(7);
        let run = Run {
            id,
            job: job.into(),
            params: Default::default(),
            requester: UserName::parse("bob").expect("a name"),
            channel: crate::domain::ChannelName::parse("ops").expect("a channel"),
            state: RunState::Queued,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            backend_ref: None,
            deploy,
            tickets: Vec::new(),
            timeline: Vec::new(),
        };
        vec![
            Write::Effect(Effect::Job(JobOrder::Start {
                run: id,
                job: job.into(),
                params: Default::default(),
            })),
            Write::Run(run),
        ]
    }

    fn deploy(env: &str, approved_by: Option<&str>) -> Option<Deploy> {
        Some(Deploy {
            service: "web".into(),
            env: env.into(),
            version: "1.0".into(),
            notes: None,
            rollback_of: None,
            approved_by: approved_by.map(|u| UserName::parse(u).expect("a name")),
            maintenance: None,
        })
    }

    /// Whatever decision would start a deploy job past /deploy's gates (a
    /// future entry point that forgot them), the engine refuses it.
    #[test]
    fn no_decision_starts_a_deploy_job_past_its_gates() {
        let e = shipped();
        let refused = |w: &[Write]| check_starts(&e.config, w).is_err();
        assert!(!refused(&start("build-web", None)));
        assert!(refused(&start("deploy-web", None)));
        assert!(refused(&start("deploy-web", deploy("production", None))));
        assert!(!refused(&start(
            "deploy-web",
            deploy("production", Some("rita"))
        )));
        assert!(!refused(&start("deploy-web", deploy("staging", None))));
        assert!(refused(&start("deploy-web", deploy("qa", None))));
    }

    /// For ticket moves, what the declarations say (shown by `/help
    /// command:…`) is what the ticket rules let people do.
    #[test]
    fn ticket_declarations_say_what_the_ticket_rules_allow() {
        let e = shipped();
        let org = &e.config.org;
        let mut people = org.people();
        people.push(UserName::parse("zed").expect("a name"));
        for &c in CommandName::ALL {
            if c.spec().group != Some("ticket") {
                continue;
            }
            for u in &people {
                assert_eq!(
                    may_run(&e.config, org, u, c),
                    c.spec().who.admits(u, org),
                    "{} for {u}",
                    c.spec().full_name()
                );
            }
        }
        let bob = UserName::parse("bob").expect("a name");
        assert!(may_run(&e.config, &e.config.org, &bob, CommandName::Deploy));
        assert!(!may_run(
            &e.config,
            &e.config.org,
            &bob,
            CommandName::Approve
        ));
    }

    #[test]
    fn fixes_are_read_from_versions_and_notes() {
        let ids = fixes(
            "1.4.2 fixes OPS-12, Fixed ops-3; closes OPS-12 and mentions OPS-9",
            "OPS",
        );
        let got: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        assert_eq!(got, vec!["OPS-12", "OPS-3"]);
        assert!(fixes("fixes 12", "OPS").is_empty());
    }
}
