//! The engine's build rules: starting a run of a job, following it as the
//! backend reports, one progress message per channel edited in place, the
//! output's tail on failure, and the loop back to tickets (a job failing on
//! its main ref opens a ticket for its team; a green build notes it fixed).
//! Part of the engine: pure.

use crate::domain::job::Job;
use crate::domain::rich::{clip_plain, Rich};
use crate::domain::run::{JobOrder, Run, RunEntry, RunId, RunState, RunUpdate};
use crate::domain::{
    Actor, ChannelName, EntryKind, Priority, Source, TicketState, Timestamp, UserName,
};
use crate::engine::tickets::Action;
use crate::engine::{Decision, Effect, Engine, NewTicket, Out, QueryView, Reply, View, Write};
use crate::error::{EngineError, UserError};

/// Lines of output shown when a run fails.
const TAIL_LINES: usize = 15;

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Engine {
    fn job(&self, name: &str) -> Result<&Job, UserError> {
        self.config.jobs.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.config.jobs.keys().map(String::as_str).collect();
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

    /// The channels that follow a run: where it was asked for, and its team's.
    fn run_channels(&self, run: &Run) -> Vec<ChannelName> {
        let mut out = vec![run.channel.clone()];
        let team = match &run.deploy {
            Some(d) => self
                .config
                .services
                .get(&d.service)
                .and_then(|s| s.team.as_ref()),
            None => self.config.jobs.get(&run.job).and_then(|j| j.team.as_ref()),
        }
        .and_then(|t| self.config.org.team(t));
        if let Some(t) = team {
            if !out.contains(&t.channel) {
                out.push(t.channel.clone());
            }
        }
        out
    }

    /// The progress message of a run, as it stands.
    pub(crate) fn progress_of(&self, out: &mut Out, run: &Run) {
        let body = crate::engine::messages::run_progress(run);
        let ask = (run.state == RunState::WaitingApproval)
            .then_some(crate::engine::Ask::Approval { run: run.id });
        for ch in self.run_channels(run) {
            out.progress(
                &ch,
                format!("run:{}:{}", run.id, ch),
                body.clone(),
                ask.clone(),
            );
        }
    }

    pub(crate) fn step_run(
        run: &mut Run,
        actor: &Actor,
        state: RunState,
        text: String,
        now: Timestamp,
    ) {
        run.state = state;
        run.timeline.push(RunEntry {
            at: now,
            actor: actor.name.clone(),
            source: actor.source,
            state,
            text,
        });
    }

    /// `/build job:… [ref:…]` or a job's own command; a deploy job goes
    /// through the deploy rules instead.
    pub(crate) fn build(
        &self,
        view: &dyn View,
        actor: &Actor,
        channel: &ChannelName,
        job: &str,
        given: &[(String, String)],
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let job = self.job(job)?;
        // A deploy job is a deploy however it is started: /deploy's gates.
        if let Some(target) = self.deploy_target(job, given)? {
            return self.deploy_run(view, actor, channel, &target, given, None, None, now);
        }
        if !job.admits(&actor.name, &self.config.org) {
            return Err(
                UserError::new(format!("only {} may run {}", job.who_text(), job.name)).into(),
            );
        }
        let params = job.check_params(given)?;
        let id = RunId(view.last_run_number()? + 1);
        let mut run = Run {
            id,
            job: job.name.clone(),
            params: params.clone(),
            requester: actor.name.clone(),
            channel: channel.clone(),
            state: RunState::Queued,
            created_at: now,
            started_at: None,
            finished_at: None,
            backend_ref: None,
            deploy: None,
            tickets: Vec::new(),
            timeline: Vec::new(),
        };
        Self::step_run(
            &mut run,
            actor,
            RunState::Queued,
            format!("requested by {}", actor.name),
            now,
        );
        let mut out = Out::new();
        out.writes.push(Write::Effect(Effect::Job(JobOrder::Start {
            run: id,
            job: job.name.clone(),
            params,
        })));
        self.progress_of(&mut out, &run);
        let reply = Rich::new()
            .text("Started ")
            .bold(id.to_string())
            .text(format!(": {} ", job.name))
            .quoted(run.params_text())
            .text(format!(". Cancel it with /build cancel run:{id}"));
        out.writes.push(Write::Run(run));
        Ok(Decision {
            reply: Some(Reply::private(reply)),
            accepted: None,
            writes: out.writes,
        })
    }

    /// `/build cancel run:…`: the requester, operators, or whoever may run the job.
    pub(crate) fn cancel_run(
        &self,
        view: &dyn View,
        actor: &Actor,
        id: RunId,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let Some(mut run) = view.run(id)? else {
            return Err(UserError::new(format!("there is no run {id}; /runs lists them")).into());
        };
        let org = &self.config.org;
        let may = run.requester == actor.name
            || org.is_operator(&actor.name)
            || self
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
        Self::step_run(
            &mut run,
            actor,
            RunState::Cancelled,
            format!("cancelled by {}", actor.name),
            now,
        );
        run.finished_at = Some(now);
        let mut out = Out::new();
        out.writes
            .push(Write::Effect(Effect::Job(JobOrder::Cancel { run: id })));
        self.progress_of(&mut out, &run);
        out.writes.push(Write::Run(run));
        Ok(Decision {
            reply: Some(Reply::private(format!("{id} is cancelled."))),
            accepted: None,
            writes: out.writes,
        })
    }

    /// A run an earlier process left in flight: lost when its job runs
    /// locally (the process died with it): marked failed, with the reason,
    /// and its queued orders dropped. Jenkins keeps running what it was
    /// given: those are followed again, and nothing changes.
    pub(crate) fn lost_run(
        &self,
        view: &dyn View,
        id: RunId,
        orders: &[u64],
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let Some(run) = view.run(id)? else {
            return Ok(Decision::default());
        };
        let local = self
            .config
            .jobs
            .get(&run.job)
            .is_none_or(|j| j.backend == crate::domain::job::Backend::Local);
        if !local || !matches!(run.state, RunState::Queued | RunState::Running) {
            return Ok(Decision::default());
        }
        let update = RunUpdate::Lost {
            reason: "the bot restarted while it ran; start it again".into(),
        };
        let mut decision = self.run_update(view, id, &update, now)?;
        // Its orders go with it.
        decision
            .writes
            .extend(orders.iter().map(|seq| Write::DropJobOrder(*seq)));
        Ok(decision)
    }

    /// A backend's report on a run.
    pub(crate) fn run_update(
        &self,
        view: &dyn View,
        id: RunId,
        update: &RunUpdate,
        now: Timestamp,
    ) -> Result<Decision, EngineError> {
        let Some(mut run) = view.run(id)? else {
            return Ok(Decision::default());
        };
        if run.state.is_final() {
            // A report after a cancel, or a repeat: the record stands.
            return Ok(Decision::default());
        }
        let ci = Actor::new(UserName::system("ci"), Source::System);
        let mut out = Out::new();
        match update {
            RunUpdate::Submitted { backend_ref } => {
                run.backend_ref = Some(backend_ref.clone());
                Self::step_run(
                    &mut run,
                    &ci,
                    RunState::Queued,
                    format!("submitted ({backend_ref})"),
                    now,
                );
                self.progress_of(&mut out, &run);
            }
            RunUpdate::Waiting { reason } => {
                // Said once per run, however often the backend is retried.
                if run.timeline.last().is_some_and(|e| &e.text == reason) {
                    return Ok(Decision::default());
                }
                let state = run.state;
                Self::step_run(&mut run, &ci, state, reason.clone(), now);
                self.progress_of(&mut out, &run);
            }
            RunUpdate::Started { backend_ref } => {
                run.started_at = Some(now);
                run.backend_ref = Some(backend_ref.clone());
                Self::step_run(
                    &mut run,
                    &ci,
                    RunState::Running,
                    format!("running ({backend_ref})"),
                    now,
                );
                self.progress_of(&mut out, &run);
            }
            RunUpdate::Finished {
                success,
                reason,
                tail,
            } => {
                run.finished_at = Some(now);
                let state = if *success {
                    RunState::Succeeded
                } else {
                    RunState::Failed
                };
                Self::step_run(&mut run, &ci, state, reason.clone(), now);
                self.progress_of(&mut out, &run);
                if !success && !tail.trim().is_empty() {
                    out.post(
                        &run.channel,
                        None,
                        Rich::new()
                            .text(format!(
                                "{} {} failed ({reason}). The output ends with:\n",
                                run.id, run.job
                            ))
                            .quoted(clip_plain(&last_lines(tail, TAIL_LINES), 1500)),
                    );
                }
                if run.deploy.is_some() {
                    self.after_deploy(view, &mut out, &mut run, *success, now)?;
                } else {
                    self.after_build(view, &mut out, &mut run, *success, now)?;
                }
            }
            RunUpdate::Lost { reason } => {
                run.finished_at = Some(now);
                Self::step_run(&mut run, &ci, RunState::Failed, reason.clone(), now);
                self.progress_of(&mut out, &run);
                self.after_deploy(view, &mut out, &mut run, false, now)?;
            }
        }
        out.writes.push(Write::Run(run));
        Ok(Decision {
            reply: None,
            accepted: None,
            writes: out.writes,
        })
    }

    /// The loop back to tickets, for builds of a job's main ref.
    fn after_build(
        &self,
        view: &dyn View,
        out: &mut Out,
        run: &mut Run,
        success: bool,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(job) = self.config.jobs.get(&run.job) else {
            return Ok(());
        };
        let Some(team) = job.team.clone() else {
            return Ok(());
        };
        let on_main = run.params.get("ref").is_none_or(|r| *r == job.main_ref);
        if !on_main {
            return Ok(());
        }
        let ci = Actor::new(UserName::system("ci"), Source::System);
        let open = match view.broken(&job.name)? {
            Some(tid) => view
                .ticket(&tid)?
                .filter(|t| t.state != TicketState::Closed),
            None => None,
        };
        match (success, open) {
            (false, None) => {
                let num = view.last_ticket_number()? + 1;
                let title = format!("{} is failing on {}", job.name, job.main_ref);
                let last = run
                    .timeline
                    .last()
                    .map(|e| e.text.clone())
                    .unwrap_or_default();
                let description =
                    format!("{} failed: {last}. Requested by {}.", run.id, run.requester);
                let t = self.open_ticket(
                    out,
                    NewTicket {
                        num,
                        actor: &ci,
                        channel: &run.channel,
                        title: &title,
                        description: Some(&description),
                        priority: Priority::P2,
                        team: Some(&team),
                        headline: "New build ticket ",
                    },
                    now,
                );
                out.writes
                    .push(Write::Broken(job.name.clone(), Some(t.id.clone())));
                run.tickets.push(t.id.clone());
                out.writes.push(Write::Ticket(t));
            }
            (false, Some(mut t)) => {
                let st = t.state;
                let text = format!("failed again: {}", run.id);
                let e = self.entry(&mut t, &ci, EntryKind::Commented, st, st, &text, now);
                out.writes.push(Write::Timeline(t.id.clone(), e));
                out.thread(
                    self.ops(),
                    &t.id,
                    Rich::new().text(format!("{} failed again.", run.id)),
                );
                t.updated_at = now;
                run.tickets.push(t.id.clone());
                out.writes.push(Write::Ticket(t));
            }
            (true, Some(mut t)) => {
                let st = t.state;
                let text = format!("fixed: {} passed", run.id);
                let e = self.entry(&mut t, &ci, EntryKind::Commented, st, st, &text, now);
                out.writes.push(Write::Timeline(t.id.clone(), e));
                out.thread(
                    self.ops(),
                    &t.id,
                    Rich::new().text(format!("{} passed: fixed.", run.id)),
                );
                // Resolved for the operator to verify, unless it already is.
                if let Ok(nt) = self.system_move(out, &t, &ci, Action::Resolve { note: text }, now)
                {
                    t = nt;
                }
                t.updated_at = now;
                out.writes.push(Write::Broken(job.name.clone(), None));
                run.tickets.push(t.id.clone());
                out.writes.push(Write::Ticket(t));
            }
            (true, None) => {}
        }
        Ok(())
    }

    /// `/runs`.
    pub(crate) fn list_runs(&self, view: &dyn QueryView) -> Result<Reply, EngineError> {
        let runs = view.recent_runs(15)?;
        if runs.is_empty() {
            return Ok(Reply::private("No runs yet; start one with /build job:…"));
        }
        let mut r = Rich::new().text("Recent runs:");
        for run in &runs {
            r = r
                .text("\n  ")
                .bold(run.id.to_string())
                .text(format!(" · {} · {} · ", run.job, run.state))
                .quoted(run.params_text())
                .text(format!(" · by {}", run.requester));
            if let Some(d) = run.duration_secs() {
                r = r.text(format!(" · {d:.1} s"));
            }
        }
        Ok(Reply::private(r))
    }
}
