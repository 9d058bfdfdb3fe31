//! Timers: the pass over due deadlines and reports, quiet alert groups, and
//! the runs a previous process left behind.

use super::*;

/// The shortest wait between two timer passes.
pub const MIN_PASS: Duration = Duration::from_millis(500);

impl Bot {
    /// Every `every`, finds alert groups quiet for longer than their route
    /// allows and has the engine mark them stale, and runs the deadline
    /// timers ([`Bot::timer_pass`]), until `shutdown`. Sooner when a
    /// heartbeat's deadline comes first, and at once after a reload, so
    /// that the config in effect decides when the next pass is.
    pub fn stale_ticker(
        &self,
        every: Duration,
        clock: Arc<dyn Clock>,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let bot = self.clone();
        let up = self.health.worker("timers");
        async move {
            let _up = up;
            loop {
                // Timers fire on the instance that holds the lease.
                if !bot.lease.held() {
                    tokio::select! {
                        _ = tokio::time::sleep(every.min(Duration::from_secs(1))) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
                let due = bot.stale_candidates(clock.now());
                if !due.is_empty() {
                    if let Err(e) = bot.submit(Event::MarkStale { groups: due }).await {
                        warn!(error = %e, "marking stale alert groups failed");
                    }
                }
                bot.timer_pass(clock.now()).await;
                let wait = bot.next_pass_in(clock.now(), every);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = bot.timers.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// How long until the next pass: `every`, or less when a heartbeat's
    /// deadline comes first (never less than [`MIN_PASS`], so that a
    /// deadline the pass could not settle does not spin).
    pub fn next_pass_in(&self, now: Timestamp, every: Duration) -> Duration {
        let next = self.store().map_err(|e| e.to_string()).and_then(|s| {
            self.engine()
                .heartbeats_next(&s, now)
                .map_err(|e| e.to_string())
        });
        match next {
            Ok(Some(at)) => (at - now)
                .to_std()
                .unwrap_or_default()
                .clamp(MIN_PASS, every.max(MIN_PASS)),
            Ok(None) => every,
            Err(e) => {
                warn!(error = %e, "cannot read the heartbeats");
                every
            }
        }
    }

    /// One pass of the deadline timers: the tickets the due index says are
    /// due (cut into events of at most [`MAX_BULK_WEIGHT`]), the rotations'
    /// handoffs, and the weekly report when its time came. Returns how many
    /// tickets were due.
    pub async fn timer_pass(&self, now: Timestamp) -> usize {
        let config = self.config();
        let (policy, prefix) = (&config.policy, &config.tickets.prefix);
        let due = match self.store().map_err(|e| e.to_string()).and_then(|s| {
            s.due_tickets(now, usize::MAX, prefix)
                .map_err(|e| e.to_string())
        }) {
            Ok(d) => d,
            Err(e) => {
                error!(error = %e, "cannot read the due index");
                Vec::new()
            }
        };
        let n = due.len();
        let mut chunks: Vec<Vec<crate::domain::TicketId>> =
            due.chunks(MAX_BULK_WEIGHT).map(|c| c.to_vec()).collect();
        if chunks.is_empty() && !policy.oncall.is_empty() {
            chunks.push(Vec::new());
        }
        for tickets in chunks {
            if let Err(e) = self.submit(Event::Tick { tickets }).await {
                warn!(error = %e, "a timer pass failed");
            }
        }
        // The engine says whether the weekly report is due; the timer only
        // computes its figures, which takes a while.
        let weekly = self.store().map_err(|e| e.to_string()).and_then(|s| {
            self.engine()
                .weekly_report_due(&s, now)
                .map_err(|e| e.to_string())
        });
        let event = match weekly {
            Ok(None) => None,
            Ok(Some(w)) if !w.post => Some(Event::ScheduledReport {
                due: w.due,
                figures: Default::default(),
                file: None,
            }),
            Ok(Some(w)) => {
                let period = crate::commands::ReportPeriod::default();
                // Reading a week of timelines takes a while: off the
                // async workers, which answer people meanwhile.
                let store = self.store();
                let due = w.due;
                let built = tokio::task::spawn_blocking(move || {
                    let store = store.map_err(|e| e.to_string())?;
                    crate::engine::report::build(&store, period, None, due)
                        .map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(format!("the report task failed: {e}")));
                match built {
                    Ok((figures, file)) => Some(Event::ScheduledReport { due, figures, file }),
                    Err(e) => {
                        warn!(error = %e, "the weekly report failed");
                        None
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot read the weekly report's mark");
                None
            }
        };
        if let Some(ev) = event {
            if let Err(e) = self.submit(ev).await {
                debug!(error = %e, "weekly report not posted");
            }
        }
        // Maintenance windows to start or end: only when the engine says
        // one is due (a pass with nothing to do writes nothing).
        let due = self.store().map_err(|e| e.to_string()).and_then(|s| {
            self.engine()
                .maintenance_due(&s, now)
                .map_err(|e| e.to_string())
        });
        match due {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = self.submit(Event::Maintenance).await {
                    warn!(error = %e, "maintenance windows not started or ended");
                }
            }
            Err(e) => warn!(error = %e, "cannot read the maintenance windows"),
        }
        // Heartbeats past their deadline (once per silence; one missed
        // while the bot was down is found on its first pass).
        let due = self.store().map_err(|e| e.to_string()).and_then(|s| {
            self.engine()
                .heartbeats_due(&s, now)
                .map_err(|e| e.to_string())
        });
        match due {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = self.submit(Event::HeartbeatCheck).await {
                    warn!(error = %e, "the heartbeats were not checked");
                }
            }
            Err(e) => warn!(error = %e, "cannot read the heartbeats"),
        }
        n
    }

    /// Runs left in flight by an earlier process: each goes to the engine,
    /// with the job orders still queued for it, and the engine settles it
    /// (a local process died with the earlier one). A run queued since
    /// `started` (this process's start) whose start order still waits in
    /// the queue is not lost: the job worker delivers it (a push or a
    /// `/build` that came in while this process was starting).
    pub async fn settle_lost_runs(&self, started: crate::domain::Timestamp) {
        use crate::domain::run::{JobOrder, RunId, RunState};
        let Ok(store) = self.store() else {
            warn!("cannot settle the runs left in flight: the store is not open");
            return;
        };
        // (run, queued since this process started)
        let in_flight: Vec<(RunId, bool)> = store
            .runs()
            // A record that cannot be read is said, not skipped in silence.
            .filter_map(|r| {
                r.inspect_err(|e| error!(error = %e, "cannot read a run"))
                    .ok()
            })
            .filter(|r| matches!(r.state, RunState::Queued | RunState::Running))
            .map(|r| (r.id, r.state == RunState::Queued && r.created_at >= started))
            .collect();
        let mut orders: std::collections::HashMap<RunId, Vec<u64>> =
            std::collections::HashMap::new();
        let mut waiting: Vec<RunId> = Vec::new();
        match store.pending(Queue::Jobs, usize::MAX) {
            Ok(pending) => {
                for item in pending {
                    if let crate::engine::Effect::Job(
                        JobOrder::Start { run, .. } | JobOrder::Cancel { run },
                    ) = &item.effect
                    {
                        if in_flight.iter().any(|(id, _)| id == run) {
                            orders.entry(*run).or_default().push(item.seq);
                        }
                    }
                    if let crate::engine::Effect::Job(JobOrder::Start { run, .. }) = &item.effect {
                        waiting.push(*run);
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot read the queued job orders"),
        }
        drop(store);
        let lost = in_flight
            .into_iter()
            .filter(|(run, fresh)| !(*fresh && waiting.contains(run)))
            .map(|(run, _)| run);
        for run in lost {
            let orders = orders.remove(&run).unwrap_or_default();
            if let Err(e) = self.submit(Event::LostRun { run, orders }).await {
                warn!(%run, error = %e, "cannot settle a run left in flight");
            }
        }
        // How far the jobs queue is delivered, without the dropped orders.
        if let Ok(store) = self.store() {
            settle(&store, Queue::Jobs, self.marks(Queue::Jobs));
        }
    }

    /// Alert groups whose route's stale timeout has passed (the engine checks
    /// again when it decides).
    pub fn stale_candidates(&self, now: Timestamp) -> Vec<String> {
        let config = self.config();
        let alerts = &config.alerts;
        let mut due = Vec::new();
        let Ok(store) = self.store() else {
            return due;
        };
        for g in store.groups() {
            let g = match g {
                Ok(g) => g,
                Err(e) => {
                    error!(error = %e, "cannot read an alert group");
                    continue;
                }
            };
            // A flapping group that stayed in one state for its window
            // stops flapping (the engine says so).
            let flap = alerts.route(&g.route).and_then(|r| r.flap);
            if flap.is_some_and(|f| g.flap.settled(&f, now)) {
                due.push(g.key);
                continue;
            }
            let Some(after) = alerts.route(&g.route).and_then(|r| r.stale_after) else {
                continue;
            };
            let quiet = (now - g.last_seen).to_std().unwrap_or_default();
            if !g.stale && quiet >= after {
                due.push(g.key);
            }
        }
        due
    }
}
