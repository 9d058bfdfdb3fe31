//! The running bot: one commit thread that applies events in batches (group
//! commit: many events, one transaction, one flush), and outbox workers that
//! deliver effects after commit, with retry and backoff.
//!
//! Adapters hold a [`Bot`] handle: they turn their input into an [`Event`],
//! call [`Bot::handle`], and show the [`Reply`].

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{oneshot, watch, Notify};
use tracing::{debug, error, info_span, warn};

use crate::domain::Timestamp;
use crate::engine::{Accepted, Engine, Event, Reply};
use crate::error::{EngineError, ErrorId, UserError};
use crate::store::{OutboxItem, Queue, Store};

/// Where the engine reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// Why an event got no answer from the engine.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The user's mistake: shown to them as written.
    #[error(transparent)]
    Refused(#[from] UserError),
    /// Ours: logged with this id.
    #[error("internal error {0}: the bot could not do this; the log says why under this id")]
    Internal(ErrorId),
    /// The bot is shutting down.
    #[error("the bot is shutting down; try again in a moment")]
    Stopped,
}

/// Events per transaction and flush, at most.
pub const MAX_BATCH: usize = 512;

/// Alerts (or other bulk events) per transaction, at most: about 10 ms of
/// work on the machines we measured, the longest a command waits behind it.
pub const MAX_BULK_WEIGHT: usize = 256;

/// Whether an event comes from a person at the chat (served first).
fn from_people(e: &Event) -> bool {
    matches!(e, Event::Command { .. } | Event::ChatMessage { .. })
}

/// How much work an event is, for cutting bulk transactions.
fn job_weight(e: &Event) -> usize {
    match e {
        Event::Alerts { alerts } => alerts.len().max(1),
        Event::MarkStale { groups } => groups.len().max(1),
        Event::Tick { tickets } => tickets.len().max(1),
        _ => 1,
    }
}

fn sort_job(
    j: Job,
    people: &mut std::collections::VecDeque<Job>,
    bulk: &mut std::collections::VecDeque<Job>,
) {
    if from_people(&j.event) {
        people.push_back(j);
    } else {
        bulk.push_back(j);
    }
}

/// What the engine answered to one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub reply: Option<Reply>,
    /// For alert batches.
    pub accepted: Option<Accepted>,
}

struct Job {
    event: Event,
    done: oneshot::Sender<Result<Outcome, BotError>>,
}

/// A handle on the running bot. Cheap to clone.
#[derive(Clone)]
pub struct Bot {
    jobs: std_mpsc::Sender<Job>,
    store: Store,
    engine: Engine,
    chat: Arc<Marks>,
    mail: Arc<Marks>,
    job_marks: Arc<Marks>,
    clock: Arc<dyn Clock>,
}

/// How far one delivery queue got.
struct Marks {
    queue: Queue,
    /// The highest seq committed and flushed.
    committed: watch::Sender<u64>,
    /// The highest seq delivered (or given up on).
    delivered: watch::Sender<u64>,
    wake: Notify,
}

impl Marks {
    fn new(store: &Store, queue: Queue) -> Result<Marks, crate::error::StoreError> {
        let last = store.last_seq(queue)?;
        // Everything older than the first pending effect is delivered.
        let first_pending = store.pending(queue, 1)?.first().map(|i| i.seq);
        let delivered_from = first_pending.map_or(last, |s| s.saturating_sub(1));
        Ok(Marks {
            queue,
            committed: watch::channel(last).0,
            delivered: watch::channel(delivered_from).0,
            wake: Notify::new(),
        })
    }
}

/// The commit thread, to be joined at shutdown.
pub struct Writer {
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Waits for the commit thread to finish the events already sent. It
    /// finishes once every [`Bot`] handle is dropped.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                error!("the commit thread panicked");
            }
        }
    }

    /// Like [`Writer::join`], waiting at most `wait` (a [`Bot`] handle
    /// that is never dropped keeps the thread waiting for events). Returns
    /// whether the thread finished.
    pub fn join_within(mut self, wait: Duration) -> bool {
        let Some(t) = self.thread.take() else {
            return true;
        };
        let (done_tx, done_rx) = std_mpsc::channel();
        let waiter = std::thread::Builder::new()
            .name("opsbot-join".into())
            .spawn(move || {
                if t.join().is_err() {
                    error!("the commit thread panicked");
                }
                let _ = done_tx.send(());
            });
        waiter.is_ok() && done_rx.recv_timeout(wait).is_ok()
    }
}

impl Bot {
    /// Starts the commit thread over `store`.
    pub fn start(
        store: Store,
        engine: Engine,
        clock: Arc<dyn Clock>,
    ) -> Result<(Bot, Writer), crate::error::StoreError> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let chat = Arc::new(Marks::new(&store, Queue::Chat)?);
        let mail = Arc::new(Marks::new(&store, Queue::Mail)?);
        let jobs = Arc::new(Marks::new(&store, Queue::Jobs)?);
        let marks = [chat.clone(), mail.clone(), jobs.clone()];
        let (st, en, cl) = (store.clone(), engine.clone(), clock.clone());
        let thread = std::thread::Builder::new()
            .name("opsbot-commit".into())
            .spawn(move || commit_loop(rx, st, en, cl, marks))
            .map_err(|e| crate::error::StoreError::Sled(sled::Error::Io(e)))?;
        Ok((
            Bot {
                jobs: tx,
                store,
                engine,
                chat,
                mail,
                job_marks: jobs,
                clock,
            },
            Writer {
                thread: Some(thread),
            },
        ))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies one event and returns what the engine answered. Returns only
    /// once what the event changed is durable on disk.
    pub async fn submit(&self, event: Event) -> Result<Outcome, BotError> {
        if matches!(&event, Event::Command { command, .. } if command.is_heavy()) {
            // A report reads the whole timeline: off the commit thread, so
            // that commands behind it do not wait.
            let (store, engine, now) = (self.store.clone(), self.engine.clone(), self.clock.now());
            let r = tokio::task::spawn_blocking(move || engine.query(&store, &event, now))
                .await
                .map_err(|e| internal(&e, "query panicked"))?;
            return match r {
                Ok(reply) => Ok(Outcome {
                    reply: Some(reply),
                    accepted: None,
                }),
                Err(e) => Err(refusal(e, "query failed")),
            };
        }
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(Job { event, done })
            .map_err(|_| BotError::Stopped)?;
        rx.await.unwrap_or(Err(BotError::Stopped))
    }

    /// Applies one event and returns the answer for the person who acted.
    pub async fn handle(&self, event: Event) -> Result<Option<Reply>, BotError> {
        Ok(self.submit(event).await?.reply)
    }

    /// Every `every`, finds alert groups quiet for longer than their route
    /// allows and has the engine mark them stale, until `shutdown`.
    pub fn stale_ticker(
        &self,
        every: Duration,
        clock: Arc<dyn Clock>,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let bot = self.clone();
        async move {
            loop {
                let due = bot.stale_candidates(clock.now());
                if !due.is_empty() {
                    if let Err(e) = bot.submit(Event::MarkStale { groups: due }).await {
                        warn!(error = %e, "marking stale alert groups failed");
                    }
                }
                bot.timer_pass(clock.now()).await;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// One pass of the deadline timers: the tickets the due index says are
    /// due (cut into events of at most [`MAX_BULK_WEIGHT`]), the rotations'
    /// handoffs, and the weekly report when its time came. Returns how many
    /// tickets were due.
    pub async fn timer_pass(&self, now: Timestamp) -> usize {
        let policy = &self.engine.config().policy;
        let prefix = &self.engine.config().tickets.prefix;
        let due = match self.store.due_tickets(now, usize::MAX, prefix) {
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
        if let Some(weekly) = policy.weekly_report {
            let due = weekly.last_due(now);
            let seen = crate::engine::View::marker(&self.store, "weekly_report");
            let event = match seen {
                Ok(Some(m)) if m >= due.timestamp() => None,
                // A new database notes the schedule; it reports from the next one.
                Ok(None) => Some(Event::ScheduledReport {
                    due,
                    body: crate::render::Rich::new(),
                    file: None,
                }),
                Ok(Some(_)) => {
                    let period = crate::commands::ReportPeriod::default();
                    // Reading a week of timelines takes a while: off the
                    // async workers, which answer people meanwhile.
                    let store = self.store.clone();
                    let built = tokio::task::spawn_blocking(move || {
                        crate::report::build(&store, period, None, due).map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the report task failed: {e}")));
                    match built {
                        Ok((text, file)) => Some(Event::ScheduledReport {
                            due,
                            body: crate::render::Rich::new().text(format!("Weekly report. {text}")),
                            file,
                        }),
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
        }
        n
    }

    /// Settles runs left in flight by an earlier process: a local process
    /// died with it, so each is marked failed with the reason.
    pub async fn settle_lost_runs(&self) {
        let jobs = &self.engine.config().jobs;
        // Jenkins keeps running what it was given: those are followed again.
        let local = |job: &str| {
            jobs.get(job)
                .is_none_or(|j| j.backend == crate::jobs::Backend::Local)
        };
        let lost: Vec<crate::runs::RunId> = self
            .store
            .runs()
            .flatten()
            .filter(|r| {
                matches!(
                    r.state,
                    crate::runs::RunState::Queued | crate::runs::RunState::Running
                ) && local(&r.job)
            })
            .map(|r| r.id)
            .collect();
        // Their orders, if still queued, go with them.
        if let Ok(pending) = self.store.pending(Queue::Jobs, usize::MAX) {
            for item in pending {
                let doomed = match &item.effect {
                    crate::engine::Effect::Job(crate::runs::JobOrder::Start { run, .. })
                    | crate::engine::Effect::Job(crate::runs::JobOrder::Cancel { run }) => {
                        lost.contains(run)
                    }
                    _ => false,
                };
                if doomed {
                    let _ = self.store.done(Queue::Jobs, item.seq);
                }
            }
            settle(&self.store, Queue::Jobs, self.marks(Queue::Jobs));
        }
        for run in lost {
            let update = crate::runs::RunUpdate::Lost {
                reason: "the bot restarted while it ran; start it again".into(),
            };
            if let Err(e) = self.submit(Event::RunUpdate { run, update }).await {
                warn!(%run, error = %e, "cannot settle a run left in flight");
            }
        }
    }

    /// Alert groups whose route's stale timeout has passed (the engine checks
    /// again when it decides).
    pub fn stale_candidates(&self, now: Timestamp) -> Vec<String> {
        let alerts = &self.engine.config().alerts;
        let mut due = Vec::new();
        for g in self.store.groups() {
            let g = match g {
                Ok(g) => g,
                Err(e) => {
                    error!(error = %e, "cannot read an alert group");
                    continue;
                }
            };
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

    fn marks(&self, q: Queue) -> &Arc<Marks> {
        match q {
            Queue::Chat => &self.chat,
            Queue::Mail => &self.mail,
            Queue::Jobs => &self.job_marks,
        }
    }

    /// Waits until every chat post committed so far is delivered (or given
    /// up on), at most `timeout`. Returns whether it got there.
    pub async fn wait_delivered(&self, timeout: Duration) -> bool {
        self.wait_queue(Queue::Chat, timeout).await
    }

    /// Waits until every effect of queue `q` committed so far is delivered
    /// (or given up on), at most `timeout`.
    pub async fn wait_queue(&self, q: Queue, timeout: Duration) -> bool {
        let m = self.marks(q);
        let target = *m.committed.borrow();
        let mut rx = m.delivered.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|d| *d >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Runs an outbox worker that delivers effects through `sink` until
    /// `shutdown` turns true. Effects are taken in commit order; a transient
    /// failure is retried with backoff, holding back the effects behind it so
    /// that order is kept; a permanent failure goes to the dead letters.
    pub fn outbox_worker<S: Sink>(
        &self,
        queue: Queue,
        sink: S,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let marks = self.marks(queue).clone();
        let coalesce_after = self.engine.config().alerts.coalesce_after;
        async move {
            let mut backoff = Duration::from_millis(100);
            let mut pacer = sink.pace().map(|pace| Pacer {
                pace,
                recent: std::collections::HashMap::new(),
            });
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let batch = match store.pending(queue, 1024) {
                    Ok(b) => b,
                    Err(e) => {
                        error!(error = %e, "cannot read the outbox");
                        Vec::new()
                    }
                };
                let mut stalled = false;
                // Destinations out of pace this pass, and the soonest wait.
                let mut held: Vec<String> = Vec::new();
                let mut held_tickets: std::collections::HashSet<crate::domain::TicketId> =
                    std::collections::HashSet::new();
                let mut wait: Option<Duration> = None;
                for (seqs, mut item) in coalesce(batch, coalesce_after) {
                    if *shutdown.borrow() {
                        return;
                    }
                    let ticket = ticket_of(&item);
                    if ticket.as_ref().is_some_and(|t| held_tickets.contains(t)) {
                        // A ticket's posts keep their order across
                        // destinations: its thread waits for its card.
                        continue;
                    }
                    if let (Some(p), Some(dest)) = (pacer.as_mut(), destination(&item)) {
                        let hold = if held.contains(&dest) {
                            true
                        } else if let Err(w) = p.take(&dest) {
                            // Keep its order: nothing more to it this pass.
                            held.push(dest);
                            wait = Some(wait.map_or(w, |x| x.min(w)));
                            true
                        } else {
                            false
                        };
                        if hold {
                            held_tickets.extend(ticket);
                            continue;
                        }
                    }
                    match sink.deliver(&item).await {
                        Ok(()) => {
                            for seq in &seqs {
                                if let Err(e) = store.done(queue, *seq) {
                                    error!(seq, error = %e, "cannot mark an effect delivered");
                                }
                            }
                            settle(&store, queue, &marks);
                            backoff = Duration::from_millis(100);
                        }
                        Err(DeliveryError::Permanent(why)) => {
                            warn!(seq = item.seq, reason = %why, "effect cannot be delivered; kept in dead letters");
                            item.attempts += 1;
                            item.last_error = Some(why);
                            if seqs.len() == 1 {
                                if let Err(e) = store.dead_letter(queue, &item) {
                                    error!(seq = item.seq, error = %e, "cannot move an effect to the dead letters");
                                }
                            }
                            // A merged summary: each post it stood for is kept.
                            for seq in seqs.iter().filter(|_| seqs.len() > 1) {
                                if let Ok(Some(orig)) = store
                                    .pending(queue, usize::MAX)
                                    .map(|p| p.into_iter().find(|i| i.seq == *seq))
                                {
                                    let mut orig = orig;
                                    orig.attempts += 1;
                                    orig.last_error = item.last_error.clone();
                                    if let Err(e) = store.dead_letter(queue, &orig) {
                                        error!(seq, error = %e, "cannot move an effect to the dead letters");
                                    }
                                }
                            }
                            settle(&store, queue, &marks);
                        }
                        Err(DeliveryError::Transient(why)) => {
                            debug!(seq = item.seq, reason = %why, ?backoff, "delivery failed; will retry");
                            item.attempts += 1;
                            item.last_error = Some(why);
                            if seqs.len() == 1 {
                                if let Err(e) = store.retry(queue, &item) {
                                    error!(seq = item.seq, error = %e, "cannot record a delivery attempt");
                                }
                            }
                            stalled = true;
                            break;
                        }
                    }
                }
                if let (false, Some(w)) = (stalled, wait) {
                    // Out of pace: more posts gather meanwhile, and the next
                    // pass merges them into summaries.
                    tokio::select! {
                        _ = tokio::time::sleep(w) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                if stalled {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                if store.queue_len(queue) > 0 {
                    continue;
                }
                tokio::select! {
                    _ = marks.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Publishes how far a queue is delivered: everything before its oldest
/// pending effect.
fn settle(store: &Store, queue: Queue, marks: &Marks) {
    let upto = match store.pending(queue, 1) {
        Ok(p) => match p.first() {
            Some(first) => first.seq.saturating_sub(1),
            None => store.last_seq(queue).unwrap_or(0),
        },
        Err(_) => return,
    };
    if upto > *marks.delivered.borrow() {
        marks.delivered.send_replace(upto);
    }
}

/// Storm control: when more than `after` monitoring posts wait for the same
/// channel, they are merged into one summary, delivered where the first one
/// stood. Returns each delivery with the outbox entries it settles. Thread
/// posts (each ticket's own story) and people's posts are never merged.
pub fn coalesce(items: Vec<OutboxItem>, after: usize) -> Vec<(Vec<u64>, OutboxItem)> {
    use std::collections::BTreeMap;

    use crate::domain::{ChannelName, TicketId};
    use crate::engine::Effect;
    use crate::render::Rich;

    let mergeable = |i: &OutboxItem| -> Option<(ChannelName, Option<TicketId>)> {
        match &i.effect {
            Effect::Post(p) if p.alert && !p.thread => Some((p.channel.clone(), p.ticket.clone())),
            _ => None,
        }
    };
    let mut per_channel: BTreeMap<ChannelName, usize> = BTreeMap::new();
    for i in &items {
        if let Some((c, _)) = mergeable(i) {
            *per_channel.entry(c).or_default() += 1;
        }
    }
    // Deliveries, and for merged ones the tickets they cover.
    let mut out: Vec<(Vec<u64>, OutboxItem, Vec<Option<TicketId>>)> = Vec::new();
    let mut merged_at: BTreeMap<ChannelName, usize> = BTreeMap::new();
    for item in items {
        match mergeable(&item) {
            Some((c, ticket)) if per_channel.get(&c).copied().unwrap_or(0) > after => {
                match merged_at.get(&c) {
                    Some(&at) => {
                        out[at].0.push(item.seq);
                        out[at].2.push(ticket);
                    }
                    None => {
                        merged_at.insert(c, out.len());
                        out.push((vec![item.seq], item, vec![ticket]));
                    }
                }
            }
            _ => out.push((vec![item.seq], item, Vec::new())),
        }
    }
    out.into_iter()
        .map(|(seqs, mut item, tickets)| {
            if seqs.len() > 1 {
                let mut counts: Vec<(String, usize)> = Vec::new();
                for t in tickets.iter().flatten() {
                    let id = t.to_string();
                    match counts.iter_mut().find(|(k, _)| *k == id) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((id, 1)),
                    }
                }
                let shown: Vec<String> = counts
                    .iter()
                    .take(10)
                    .map(|(id, n)| format!("{id} ({n})"))
                    .collect();
                let mut text = format!(
                    "Alert storm: {} alert updates for {} tickets: {}",
                    seqs.len(),
                    counts.len(),
                    shown.join(", ")
                );
                if counts.len() > 10 {
                    text.push_str(&format!(" and {} more", counts.len() - 10));
                }
                text.push_str(
                    ". /ticket list shows them; /ticket show id:… tells each one's story.",
                );
                if let Effect::Post(p) = &mut item.effect {
                    p.body = Rich::new().text(text);
                    p.ticket = None;
                    // A summary is nobody's card and asks nothing.
                    p.card = None;
                    p.ask = None;
                }
            }
            (seqs, item)
        })
        .collect()
}

/// Why an effect was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another try later (a timeout, a 5xx, a rate limit).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work (missing permission, unknown channel).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Delivers effects: the console, Discord, SMTP.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, item: &OutboxItem) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// The most this sink may deliver to one destination (a channel, a
    /// ticket's thread) per period; `None`: no limit (the console).
    fn pace(&self) -> Option<Pace> {
        None
    }
}

/// At most `burst` deliveries per destination in any `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub burst: u32,
    pub period: Duration,
}

impl Pace {
    /// Discord's usual pace for messages in one channel: 5 per 5 seconds.
    pub const DISCORD: Pace = Pace {
        burst: 5,
        period: Duration::from_secs(5),
    };
}

/// The ticket an effect is about, if any.
fn ticket_of(item: &OutboxItem) -> Option<crate::domain::TicketId> {
    match &item.effect {
        crate::engine::Effect::Post(p) => p.ticket.clone(),
        crate::engine::Effect::Card(c) => Some(c.ticket.clone()),
        crate::engine::Effect::Mail(_) | crate::engine::Effect::Job(_) => None,
    }
}

/// Where an effect goes, for pacing.
fn destination(item: &OutboxItem) -> Option<String> {
    match &item.effect {
        crate::engine::Effect::Post(p) => Some(match (&p.ticket, p.thread) {
            (Some(t), true) => format!("{}/{}", p.channel, t),
            _ => p.channel.to_string(),
        }),
        // Edits have their own limits on Discord, apart from new messages.
        crate::engine::Effect::Card(c) => Some(format!("{}/cards", c.channel)),
        crate::engine::Effect::Mail(_) | crate::engine::Effect::Job(_) => None,
    }
}

/// The last deliveries per destination (a sliding window).
struct Pacer {
    pace: Pace,
    recent: std::collections::HashMap<String, std::collections::VecDeque<std::time::Instant>>,
}

impl Pacer {
    /// Counts a delivery to `dest`, or says how long until one is allowed.
    fn take(&mut self, dest: &str) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let window = self.recent.entry(dest.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.pace.period)
        {
            window.pop_front();
        }
        if window.len() < self.pace.burst.max(1) as usize {
            window.push_back(now);
            Ok(())
        } else {
            let oldest = window.front().copied().unwrap_or(now);
            Err((oldest + self.pace.period).saturating_duration_since(now))
        }
    }
}

fn internal(e: &dyn std::fmt::Display, what: &str) -> BotError {
    let id = ErrorId::fresh();
    error!(error_id = %id, error = %e, "{what}");
    BotError::Internal(id)
}

fn commit_loop(
    rx: std_mpsc::Receiver<Job>,
    store: Store,
    engine: Engine,
    clock: Arc<dyn Clock>,
    marks: [Arc<Marks>; 3],
) {
    // People's commands go before bulk work (alert batches, backend
    // reports), and bulk work is cut into transactions of bounded size, so a
    // command never waits behind an alert storm for long.
    let mut people: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    let mut bulk: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    let mut open = true;
    loop {
        if people.is_empty() && bulk.is_empty() {
            if !open {
                return;
            }
            match rx.recv() {
                Ok(j) => sort_job(j, &mut people, &mut bulk),
                Err(_) => return,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(j) => sort_job(j, &mut people, &mut bulk),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let batch: Vec<Job> = if !people.is_empty() {
            let n = people.len().min(MAX_BATCH);
            people.drain(..n).collect()
        } else {
            let mut weight = 0;
            let mut take = 0;
            for j in bulk.iter() {
                let w = job_weight(&j.event);
                if take > 0 && weight + w > MAX_BULK_WEIGHT {
                    break;
                }
                weight += w;
                take += 1;
            }
            bulk.drain(..take).collect()
        };
        let span = info_span!("batch", events = batch.len());
        let _g = span.enter();
        let mut results: Vec<Option<Result<Outcome, BotError>>> =
            (0..batch.len()).map(|_| None).collect();
        let mut wrote = false;
        let mut i = 0;
        while i < batch.len() {
            if batch[i].event.is_query() {
                // A bug in a query answers that query with an internal
                // error; the thread goes on.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    #[cfg(test)]
                    tests::bug_in_query(&batch[i].event);
                    engine.query(&store, &batch[i].event, clock.now())
                }));
                results[i] = Some(match answer {
                    Ok(Ok(r)) => Ok(Outcome {
                        reply: Some(r),
                        accepted: None,
                    }),
                    Ok(Err(e)) => Err(refusal(e, "query failed")),
                    Err(panic) => Err(internal(
                        &crate::error::panic_message(panic.as_ref()),
                        "a bug while answering a query",
                    )),
                });
                i += 1;
                continue;
            }
            let end = (i..batch.len())
                .find(|&j| batch[j].event.is_query())
                .unwrap_or(batch.len());
            let events: Vec<&Event> = batch[i..end].iter().map(|j| &j.event).collect();
            let outcome = apply(&store, &engine, clock.as_ref(), &events);
            let outcome = match outcome {
                Ok(r) => r,
                Err(e) => {
                    // One bad event must not sink the others: retry one by one.
                    warn!(error = %e, "batch failed; applying its events one by one");
                    events
                        .iter()
                        .map(|ev| match apply(&store, &engine, clock.as_ref(), &[*ev]) {
                            Ok(mut r) => r.pop().unwrap_or(Err(BotError::Stopped)),
                            Err(e) => Err(refusal(EngineError::Store(e), "event failed")),
                        })
                        .collect()
                }
            };
            for (k, r) in outcome.into_iter().enumerate() {
                wrote |= r.is_ok();
                results[i + k] = Some(r);
            }
            i = end;
        }
        if wrote {
            if let Err(e) = store.flush() {
                let err = internal(&e, "flush failed");
                let id = match err {
                    BotError::Internal(id) => id,
                    _ => ErrorId::fresh(),
                };
                for r in results.iter_mut() {
                    if matches!(r, Some(Ok(_))) {
                        *r = Some(Err(BotError::Internal(id)));
                    }
                }
            }
            for m in &marks {
                match store.last_seq(m.queue) {
                    Ok(seq) => {
                        if seq > *m.committed.borrow() {
                            m.committed.send_replace(seq);
                            m.wake.notify_one();
                        }
                    }
                    Err(e) => error!(error = %e, "cannot read an outbox counter"),
                }
            }
        }
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.done.send(r.unwrap_or(Err(BotError::Stopped)));
        }
    }
}

fn apply(
    store: &Store,
    engine: &Engine,
    clock: &dyn Clock,
    events: &[&Event],
) -> Result<Vec<Result<Outcome, BotError>>, crate::error::StoreError> {
    let results = store.apply_batch(
        events,
        |view, ev| {
            #[cfg(test)]
            tests::bug_in_decide(ev);
            let d = engine.decide(view, ev, clock.now())?;
            Ok((
                d.writes,
                Outcome {
                    reply: d.reply,
                    accepted: d.accepted,
                },
            ))
        },
        || clock.now(),
    )?;
    Ok(results
        .into_iter()
        .map(|r| r.map_err(|e| refusal(e, "event failed")))
        .collect())
}

/// What the person is told when the engine did not apply their event: their
/// mistake as written, or an internal error with the id the log has it under.
fn refusal(e: EngineError, what: &str) -> BotError {
    match e {
        EngineError::Refused(u) => BotError::Refused(u),
        // Already logged, with its id, where it was caught.
        EngineError::Store(crate::error::StoreError::Panicked { id, .. }) => BotError::Internal(id),
        EngineError::Store(e) => internal(&e, what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelName, TicketId};
    use crate::engine::{Effect, Post};
    use crate::render::Rich;

    fn item(seq: u64, channel: &str, ticket: u64, alert: bool, thread: bool) -> OutboxItem {
        OutboxItem {
            seq,
            created_at: chrono::Utc::now(),
            effect: Effect::Post(Post {
                channel: ChannelName::parse(channel).unwrap(),
                ticket: Some(TicketId::new("OPS", ticket)),
                thread,
                body: Rich::new().text(format!("post {seq}")),
                alert,
                replaces: None,
                card: None,
                ask: None,
                file: None,
            }),
            attempts: 0,
            last_error: None,
        }
    }

    fn text(i: &OutboxItem) -> String {
        match &i.effect {
            Effect::Post(p) => format!("#{} {}", p.channel, p.body.to_plain()),
            Effect::Mail(m) => format!("mail {}", m.subject),
            Effect::Job(j) => format!("job {j:?}"),
            Effect::Card(c) => format!("card {}", c.ticket),
        }
    }

    /// Records deliveries, at a pace.
    struct Recorder {
        log: Arc<std::sync::Mutex<Vec<(String, std::time::Instant, String)>>>,
        pace: Pace,
    }

    impl Sink for Recorder {
        async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
            let Effect::Post(p) = &item.effect else {
                return Err(DeliveryError::Permanent("not a post".into()));
            };
            let dest = destination(item).unwrap_or_default();
            self.log
                .lock()
                .unwrap()
                .push((dest, std::time::Instant::now(), p.body.to_plain()));
            Ok(())
        }

        fn pace(&self) -> Option<Pace> {
            Some(self.pace)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_destination_is_paced_without_holding_back_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let src = "[roles]\noperators = [\"olivia\"]\n[teams.web]\nchannel = \"web\"\nmembers = [\"bob\"]\n";
        let config = crate::config::Config::parse(&dir.path().join("bot.toml"), src)
            .unwrap()
            .config;
        let store = Store::open(&config.storage_path).unwrap();
        let (bot, writer) = Bot::start(
            store.clone(),
            Engine::new(Arc::new(config)),
            Arc::new(SystemClock),
        )
        .unwrap();
        let cmd = |line: &str| Event::Command {
            actor: crate::domain::Actor::new(
                crate::domain::UserName::parse("olivia").unwrap(),
                crate::domain::Source::Console,
            ),
            channel: ChannelName::parse("ops").unwrap(),
            command: crate::commands::parse_command(line, "OPS").unwrap(),
        };
        bot.handle(cmd("/ticket open title:busy")).await.unwrap();
        for i in 0..12 {
            bot.handle(cmd(&format!("/ticket comment id:OPS-1 text:c{i}")))
                .await
                .unwrap();
        }
        bot.handle(cmd("/ticket open title:other")).await.unwrap();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let pace = Pace {
            burst: 5,
            period: Duration::from_secs(1),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let worker = tokio::spawn(bot.outbox_worker(
            Queue::Chat,
            Recorder {
                log: log.clone(),
                pace,
            },
            stop_rx,
        ));
        assert!(
            bot.wait_delivered(Duration::from_secs(20)).await,
            "not all delivered"
        );
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        let log = log.lock().unwrap().clone();
        let thread: Vec<&(String, std::time::Instant, String)> =
            log.iter().filter(|(d, _, _)| d == "ops/OPS-1").collect();
        assert_eq!(thread.len(), 13);
        // In order, and never more than 5 in any second.
        let texts: Vec<&str> = thread.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts[1], "olivia: c0");
        assert_eq!(texts[12], "olivia: c11");
        for w in thread.windows(6) {
            let span = w[5].1.duration_since(w[0].1);
            assert!(span >= Duration::from_millis(950), "6 posts in {span:?}");
        }
        // The other ticket's card went out at once, not behind the busy thread.
        let other = log
            .iter()
            .find(|(d, _, t)| d == "ops" && t.contains("OPS-2"))
            .unwrap();
        assert!(other.1.duration_since(started) < Duration::from_millis(500));
        assert_eq!(store.outbox_len(), 0);
        drop(bot);
        writer.join();
    }

    /// The bug tests plant in the engine: a ticket titled "panic while
    /// deciding" makes the decision panic.
    pub(super) fn bug_in_decide(ev: &Event) {
        if let Event::Command {
            command: crate::commands::Command::TicketOpen { title, .. },
            ..
        } = ev
        {
            if title == "panic while deciding" {
                panic!("a planted bug while deciding");
            }
        }
    }

    /// The bug tests plant in a query: listing team `panic-while-querying`.
    pub(super) fn bug_in_query(ev: &Event) {
        if let Event::Command {
            command: crate::commands::Command::TicketList { team: Some(t), .. },
            ..
        } = ev
        {
            if t.as_str() == "panic-while-querying" {
                panic!("a planted bug while querying");
            }
        }
    }

    fn small_bot_config(dir: &std::path::Path) -> crate::config::Config {
        let src = "[roles]\noperators = [\"olivia\"]\n[teams.web]\nchannel = \"web\"\nmembers = [\"bob\"]\n";
        crate::config::Config::parse(&dir.join("bot.toml"), src)
            .unwrap()
            .config
    }

    fn olivia(line: &str) -> Event {
        Event::Command {
            actor: crate::domain::Actor::new(
                crate::domain::UserName::parse("olivia").unwrap(),
                crate::domain::Source::Console,
            ),
            channel: ChannelName::parse("ops").unwrap(),
            command: crate::commands::parse_command(line, "OPS").unwrap(),
        }
    }

    #[test]
    fn a_bug_in_one_event_refuses_it_alone_and_the_rest_of_its_batch_commits() {
        use crate::engine::QueryView;
        let dir = tempfile::tempdir().unwrap();
        let config = small_bot_config(dir.path());
        let store = Store::open(&config.storage_path).unwrap();
        let engine = Engine::new(Arc::new(config));
        let lines = [
            "/ticket open title:first",
            "/ticket open title:\"panic while deciding\"",
            "/ticket open title:second",
            "/ticket comment id:OPS-1 text:\"panic while writing\"",
            "/ticket list team:panic-while-querying",
            "/ticket comment id:OPS-1 text:fine",
        ];
        // Every event queued before the loop starts: one batch.
        let (tx, rx) = std_mpsc::channel();
        let mut answers = Vec::new();
        for line in lines {
            let (done, answer) = oneshot::channel();
            tx.send(Job {
                event: olivia(line),
                done,
            })
            .unwrap();
            answers.push(answer);
        }
        drop(tx);
        let marks = [Queue::Chat, Queue::Mail, Queue::Jobs]
            .map(|q| Arc::new(Marks::new(&store, q).unwrap()));
        // The commit thread's loop, here; it returns once the queue is
        // closed and empty, so it survived the bugs.
        commit_loop(rx, store.clone(), engine, Arc::new(SystemClock), marks);
        let got: Vec<Result<Outcome, BotError>> = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("every event was answered"))
            .collect();
        let ok: Vec<bool> = got.iter().map(|r| r.is_ok()).collect();
        assert_eq!(ok, [true, false, true, false, false, true], "{got:?}");
        for bad in [&got[1], &got[3], &got[4]] {
            let Err(e @ BotError::Internal(id)) = bad else {
                panic!("not an internal error: {bad:?}");
            };
            assert!(e.to_string().contains(&id.to_string()), "{e}");
        }
        // Nothing of the two bugs is stored; the rest is.
        let titles: Vec<String> = store.tickets().map(|t| t.unwrap().title).collect();
        assert_eq!(titles, ["first", "second"]);
        let texts: Vec<String> = store
            .timeline(&TicketId::new("OPS", 1))
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert!(texts.iter().any(|t| t == "fine"), "{texts:?}");
        assert!(!texts.iter().any(|t| t.contains("panic")), "{texts:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_commit_thread_keeps_serving_after_a_bug() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_bot_config(dir.path());
        let store = Store::open(&config.storage_path).unwrap();
        let (bot, writer) = Bot::start(
            store.clone(),
            Engine::new(Arc::new(config)),
            Arc::new(SystemClock),
        )
        .unwrap();
        let wait = Duration::from_secs(20);
        let bug = tokio::time::timeout(
            wait,
            bot.handle(olivia("/ticket open title:\"panic while deciding\"")),
        )
        .await
        .expect("answered");
        assert!(matches!(bug, Err(BotError::Internal(_))), "{bug:?}");
        let next = tokio::time::timeout(wait, bot.handle(olivia("/ticket open title:after")))
            .await
            .expect("answered");
        let reply = next.expect("the next command works").expect("a reply");
        assert!(reply.body.to_plain().contains("OPS-1"), "{reply:?}");
        drop(bot);
        assert!(writer.join_within(wait), "the commit thread did not finish");
    }

    #[test]
    fn a_storm_becomes_one_summary_per_channel_and_nothing_else_merges() {
        let mut items = Vec::new();
        for seq in 1..=8 {
            // Alert posts to #ops for tickets 1..3, with a person's post and
            // thread posts among them, and two alert posts to #infra.
            items.push(item(seq, "ops", 1 + seq % 3, true, false));
        }
        items.insert(2, item(100, "ops", 9, false, false));
        items.insert(4, item(101, "ops", 1, true, true));
        items.push(item(200, "infra", 7, true, false));
        items.push(item(201, "infra", 7, true, false));
        // The first is a new ticket's card.
        if let Effect::Post(p) = &mut items[0].effect {
            p.card = Some(crate::engine::Card {
                channel: ChannelName::parse("ops").unwrap(),
                ticket: TicketId::new("OPS", 2),
                title: "Disk full".into(),
                description: None,
                state: crate::domain::TicketState::Open,
                priority: crate::domain::Priority::P3,
                team: None,
                assignee: None,
                source: crate::domain::Source::Alert,
                opened_by: crate::domain::UserName::system("alertmanager"),
                created_at: chrono::Utc::now(),
                customer: false,
                alerts: Some(1),
                due: None,
                missed: Vec::new(),
            });
        }
        let out = coalesce(items, 3);
        assert!(
            matches!(&out[0].1.effect, Effect::Post(p) if p.card.is_none() && p.ticket.is_none()),
            "the summary is no ticket's card"
        );
        let shown: Vec<(Vec<u64>, String)> =
            out.iter().map(|(s, i)| (s.clone(), text(i))).collect();
        assert_eq!(
            shown,
            vec![
                (
                    vec![1, 2, 3, 4, 5, 6, 7, 8],
                    "#ops Alert storm: 8 alert updates for 3 tickets: OPS-2 (3), OPS-3 (3), OPS-1 (2). /ticket list shows them; /ticket show id:… tells each one's story.".to_string()
                ),
                (vec![100], "#ops post 100".to_string()),
                (vec![101], "#ops post 101".to_string()),
                (vec![200], "#infra post 200".to_string()),
                (vec![201], "#infra post 201".to_string()),
            ]
        );
    }
}
