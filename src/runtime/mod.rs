//! The running bot: one commit thread that applies events in batches (group
//! commit: many events, one transaction, one flush), and outbox workers that
//! deliver effects after commit, with retry and backoff.
//!
//! Adapters hold a [`Bot`] handle: they turn their input into an [`Event`],
//! call [`Bot::handle`], and show the [`Reply`].

mod commit;
pub mod health;
pub mod lease;
mod outbox;
mod pacing;
mod reload;
mod timers;

use commit::*;
use outbox::*;
pub use outbox::{coalesce, DeliveryError, Sink};
pub use pacing::Pace;
use pacing::*;
pub use reload::{restart_only_changes, Reloaded};

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch, Notify};
use tracing::{debug, error, info_span, warn};

use crate::domain::Timestamp;
use crate::engine::{Accepted, Engine, Event, Reply};
use crate::error::{EngineError, ErrorId, StoreError, UserError};
use crate::runtime::health::Health;
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
    /// The store takes no writes now (the disk refused one): nothing of this
    /// was stored.
    #[error("the bot cannot store changes right now ({0}); nothing was changed. Reading still works; try again in a minute")]
    Unavailable(String),
}

/// How often, at most, the commit thread tries a small write while the
/// store refuses writes, to find out whether the disk takes them again.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How often a worker without the lease looks whether it holds it now.
const LEASE_POLL: Duration = Duration::from_millis(100);

/// How often, at most, an outbox worker flushes what it delivered.
const FLUSH_DELIVERED_EVERY: Duration = Duration::from_millis(100);

/// The store the bot reads and writes, which the commit thread may open
/// again.
///
/// sled 0.34 keeps what a transaction committed in memory until a flush
/// writes it to disk. When a flush fails (a full disk), that memory holds
/// changes the disk does not, and sled refuses every later write until its
/// files are opened again (the error sticks). So after a failed flush the
/// commit thread answers the batch "not stored", waits until the other
/// handles on the old files are gone, and opens the files again: from then
/// on every reader sees exactly what is on disk. Outbox workers deliver only
/// effects up to their queue's committed mark, which moves only after a
/// successful flush, so nothing of a failed batch is ever delivered. Until a
/// test write ([`PROBE_EVERY`]) succeeds, writes are refused with
/// [`BotError::Unavailable`] and readiness says why; reads go on. Opening
/// sled's files writes too (a snapshot): the store's reserve file gives that
/// space back first, and the test write only runs once the reserve could be
/// set aside again (so space is really back).
pub(crate) struct StoreSlot {
    current: RwLock<Option<Store>>,
    at: crate::store::Location,
}

/// How long a reopen waits for the other handles on the old files to go.
const REOPEN_WAIT: Duration = Duration::from_secs(10);

impl StoreSlot {
    /// The store as it is now; `None` while it is being opened again (or
    /// could not be). Never blocks: an async worker thread must not wait
    /// for a reopen that waits for the handles other tasks hold.
    fn get(&self) -> Option<Store> {
        match self.current.try_read() {
            Ok(g) => g.clone(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().clone(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Drops the open files and opens them again, so that what sled kept in
    /// memory and could not write is gone. The caller holds no handle.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let deadline = Instant::now() + REOPEN_WAIT;
        self.at.release_reserve();
        if let Some(old) = g.take() {
            // Readers and workers hold clones for one read or one delivery.
            while old.handles() > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(old);
        }
        loop {
            match Store::open_at(&self.at) {
                Ok(s) => {
                    *g = Some(s);
                    return Ok(());
                }
                // A handle still open somewhere (or sled's own threads).
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }
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

/// A query the engine answers from the config alone (it reads nothing from
/// the store): answered without a snapshot.
fn reads_nothing(e: &Event) -> bool {
    matches!(
        e,
        Event::Command {
            command: crate::commands::Command::Help { .. } | crate::commands::Command::Whoami,
            ..
        }
    )
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
    w: Work,
    people: &mut std::collections::VecDeque<Job>,
    bulk: &mut std::collections::VecDeque<Job>,
    notes: &mut Vec<Note>,
) {
    match w {
        Work::Event(j) if from_people(&j.event) => people.push_back(j),
        Work::Event(j) => bulk.push_back(j),
        Work::Note(n) => notes.push(n),
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

/// What the commit thread is sent.
enum Work {
    /// An event for the engine.
    Event(Job),
    /// An adapter's note, written alongside the next batch.
    Note(Note),
}

/// An adapter's own small record (the Discord message id a card or a
/// thread got), which the commit thread writes alongside its next batch and
/// flushes with it: one flush for all the notes and events of a batch, not
/// one for each note.
struct Note {
    key: String,
    value: String,
    /// Answered once the note is on disk (or could not be written).
    done: oneshot::Sender<Result<(), BotError>>,
}

/// A handle on the running bot. Cheap to clone.
#[derive(Clone)]
pub struct Bot {
    jobs: std_mpsc::Sender<Work>,
    slot: Arc<StoreSlot>,
    health: Arc<Health>,
    /// The engine with the config in effect: swapped whole by a reload
    /// (see `runtime::reload`), read anew for each batch and each read.
    engine: Arc<arc_swap::ArcSwap<Engine>>,
    chat: Arc<Marks>,
    mail: Arc<Marks>,
    job_marks: Arc<Marks>,
    am_marks: Arc<Marks>,
    clock: Arc<dyn Clock>,
    /// The lease on once-only work (always held on sled).
    lease: Arc<lease::Lease>,
    /// Wakes the timers for a pass now (a reload: new heartbeats, windows
    /// and deadlines are looked at at once).
    timers: Arc<Notify>,
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
        let (tx, rx) = std_mpsc::channel::<Work>();
        let chat = Arc::new(Marks::new(&store, Queue::Chat)?);
        let mail = Arc::new(Marks::new(&store, Queue::Mail)?);
        let jobs = Arc::new(Marks::new(&store, Queue::Jobs)?);
        let am = Arc::new(Marks::new(&store, Queue::Alertmanager)?);
        let marks = [chat.clone(), mail.clone(), jobs.clone(), am.clone()];
        let lease = Arc::new(lease::Lease::for_store(
            &store,
            engine.config().storage.lease,
        ));
        if let Err(e) = store.location().keep_reserve() {
            warn!(error = %e, "cannot set aside the reserve for a full disk");
        }
        let slot = Arc::new(StoreSlot {
            at: store.location().clone(),
            current: RwLock::new(Some(store)),
        });
        let health = Health::new();
        let engine = Arc::new(arc_swap::ArcSwap::from_pointee(engine));
        let alive = health.worker(crate::runtime::health::COMMIT);
        let (st, en, cl, he) = (slot.clone(), engine.clone(), clock.clone(), health.clone());
        let thread = std::thread::Builder::new()
            .name("opsbot-commit".into())
            .spawn(move || {
                // Down once this thread ends, however it ends.
                let _alive = alive;
                commit_loop(rx, st, en, cl, marks, he)
            })
            .map_err(|e| crate::error::StoreError::Sled(sled::Error::Io(e)))?;
        Ok((
            Bot {
                jobs: tx,
                slot,
                health,
                engine,
                chat,
                mail,
                job_marks: jobs,
                am_marks: am,
                clock,
                lease,
                timers: Arc::new(Notify::new()),
            },
            Writer {
                thread: Some(thread),
            },
        ))
    }

    /// The engine with the config in effect now (a reload swaps it: hold
    /// it for one piece of work, not for good).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// The config in effect now (a reload swaps it).
    pub fn config(&self) -> Arc<crate::config::Config> {
        self.engine.load().config.clone()
    }

    /// The store, for reads (and adapters' own small records). Refused
    /// while it is being opened again after a failed write.
    pub fn store(&self) -> Result<Store, BotError> {
        self.slot.get().ok_or_else(|| {
            BotError::Unavailable("the database is being opened again after a failed write".into())
        })
    }

    /// What `/healthz` and `/readyz` report.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The bot's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Applies one event and returns what the engine answered. Returns only
    /// once what the event changed is durable on disk.
    pub async fn submit(&self, event: Event) -> Result<Outcome, BotError> {
        // Untrusted text is cleaned once, here, before the engine sees it.
        let event = event.cleaned();
        if event.is_query() {
            // Reads never wait behind writes: answered off the commit
            // thread, on a snapshot of committed state (a list, a ticket),
            // so a command is never queued behind a storm's batch. A report
            // reads the whole timeline: it reads as it goes instead, so
            // that it never holds sled's commits back.
            let heavy = matches!(&event, Event::Command { command, .. } if command.is_heavy());
            let (store, engine, now) = (self.store()?, self.engine(), self.clock.now());
            if reads_nothing(&event) {
                // `/help`, `/whoami`: from the config alone, at once, on this
                // task: no blocking thread to wake, no transaction to wait for.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine.query(&store, &event, now)
                }));
                return match answer {
                    Ok(Ok(reply)) => Ok(Outcome {
                        reply: Some(reply),
                        accepted: None,
                    }),
                    Ok(Err(e)) => Err(refusal(e, "query failed")),
                    Err(panic) => Err(internal(
                        &crate::error::panic_message(panic.as_ref()),
                        "a bug while answering a query",
                    )),
                };
            }
            let r = tokio::task::spawn_blocking(move || {
                #[cfg(test)]
                tests::bug_in_query(&event);
                // A report is long: on sled it reads as it goes (a snapshot
                // would hold commits back); PostgreSQL's costs writers nothing.
                let sled = matches!(store.location(), crate::store::Location::Dir(..));
                if heavy && sled {
                    engine.query(&store, &event, now)
                } else {
                    store
                        .snapshot(|s| engine.query(s, &event, now))
                        .map_err(EngineError::Store)
                        .and_then(|r| r)
                }
            })
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
            .send(Work::Event(Job { event, done }))
            .map_err(|_| BotError::Stopped)?;
        rx.await.unwrap_or(Err(BotError::Stopped))
    }

    /// Keeps an adapter's record under `key` (such as the Discord message id
    /// a ticket's card was posted as). Written by the commit thread with its
    /// next batch and flushed with it (group commit: many notes and events,
    /// one flush). Returns once the record is durable on disk, so a read of
    /// it ([`Store::adapter_get`]) sees it from then on, also after a
    /// restart.
    pub async fn note(&self, key: &str, value: &str) -> Result<(), BotError> {
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(Work::Note(Note {
                key: key.to_string(),
                value: value.to_string(),
                done,
            }))
            .map_err(|_| BotError::Stopped)?;
        rx.await.unwrap_or(Err(BotError::Stopped))
    }

    /// Applies one event and returns the answer for the person who acted.
    pub async fn handle(&self, event: Event) -> Result<Option<Reply>, BotError> {
        Ok(self.submit(event).await?.reply)
    }

    /// The lease on once-only work: deliveries and timers run only while
    /// it is held.
    pub fn lease(&self) -> &Arc<lease::Lease> {
        &self.lease
    }

    /// While this instance shares its database with others: every `every`,
    /// takes in what the others committed to the delivery queues, so that
    /// the outbox workers (this instance's, while it holds the lease)
    /// deliver it too. Until `shutdown`.
    pub fn follow_commits(
        &self,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let bot = self.clone();
        async move {
            loop {
                if let Ok(store) = bot.store() {
                    for m in [&bot.chat, &bot.mail, &bot.job_marks, &bot.am_marks] {
                        // Committed by whoever: a database server's reads
                        // are of committed state only.
                        match store.last_seq(m.queue) {
                            Ok(seq) if seq > *m.committed.borrow() => {
                                m.committed.send_replace(seq);
                                m.wake.notify_one();
                            }
                            Ok(_) => {}
                            Err(e) => debug!(error = %e, "cannot read an outbox counter"),
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    fn marks(&self, q: Queue) -> &Arc<Marks> {
        match q {
            Queue::Chat => &self.chat,
            Queue::Mail => &self.mail,
            Queue::Jobs => &self.job_marks,
            Queue::Alertmanager => &self.am_marks,
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
    /// `shutdown` turns true. Each destination (a channel, a ticket's
    /// thread) is served from its own queue, the oldest ready post first: a
    /// destination out of pace or failing waits (a transient failure is
    /// retried with a backoff of its own, holding back only the posts behind
    /// it there), and never holds back the others. Posts keep their order
    /// per destination, and a ticket's posts keep theirs across destinations
    /// (its thread waits for its card); a permanent failure goes to the dead
    /// letters.
    pub fn outbox_worker<S: Sink>(
        &self,
        queue: Queue,
        sink: S,
        mut shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let slot = self.slot.clone();
        let health = self.health.clone();
        let up = self.health.worker(match queue {
            Queue::Chat => "outbox-chat",
            Queue::Mail => "outbox-mail",
            Queue::Jobs => "outbox-jobs",
            Queue::Alertmanager => "outbox-alertmanager",
        });
        let marks = self.marks(queue).clone();
        let coalesce_after = self.config().alerts.coalesce_after;
        let lease = self.lease.clone();
        async move {
            let _up = up;
            let mut lanes = Lanes::new(sink.pace(), coalesce_after);
            let parallel = sink.parallel().max(1);
            let sink = Arc::new(sink);
            let mut inflight: tokio::task::JoinSet<Attempt> = tokio::task::JoinSet::new();
            // Which destination each delivery under way is for.
            let mut under_way: std::collections::HashMap<tokio::task::Id, String> =
                std::collections::HashMap::new();
            // Deliveries settled since the last flush.
            let mut unflushed = false;
            let mut last_flush = Instant::now();
            loop {
                let Some(store) = slot.get() else {
                    // Being opened again after a failed write.
                    if *shutdown.borrow() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(PROBE_EVERY) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                };
                if *shutdown.borrow() {
                    // Deliveries under way finish (each bounded by its sink).
                    while let Some(r) = inflight.join_next_with_id().await {
                        if let Ok((_, a)) = r {
                            a.settle(&store, queue, &marks, &mut lanes, lease.held());
                        }
                    }
                    lanes.remove_delivered(&store, queue);
                    if let Err(e) = store.flush() {
                        error!(error = %e, "cannot record deliveries on disk");
                    }
                    return;
                }
                // Another instance delivers while it holds the lease; this
                // one, paused past its lease and woken, delivers nothing.
                if !lease.held() {
                    drop(store);
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                // Only what is on disk: effects past the committed mark may
                // belong to a batch whose flush is still to come, or failed.
                let upto = *marks.committed.borrow();
                let more = match lanes.load(&store, queue, upto) {
                    Ok(more) => more,
                    Err(e) => {
                        error!(error = %e, "cannot read the outbox");
                        false
                    }
                };
                let now = std::time::Instant::now();
                let mut wait = None;
                while inflight.len() < parallel {
                    match lanes.next(now) {
                        Next::Deliver(dest) => {
                            let Some((seqs, item)) = lanes.head(&dest) else {
                                break;
                            };
                            lanes.set_busy(&dest, true);
                            let sink = sink.clone();
                            let d = dest.clone();
                            let held = lease.clone();
                            let task = inflight.spawn(async move {
                                // The task may first run after a pause
                                // past the lease: then it delivers nothing.
                                let result = if held.held() {
                                    sink.deliver(&item).await
                                } else {
                                    Err(DeliveryError::Transient(
                                        "this instance no longer holds the lease".into(),
                                    ))
                                };
                                Attempt {
                                    dest: d,
                                    seqs,
                                    item,
                                    result,
                                }
                            });
                            under_way.insert(task.id(), dest);
                        }
                        Next::Wait(w) => {
                            wait = Some(w);
                            break;
                        }
                        Next::Idle => break,
                    }
                }
                if more && inflight.len() < parallel {
                    continue;
                }
                // What was delivered stays delivered, also if a later flush
                // fails and the files are opened again.
                // Once the worker is idle, at most every FLUSH_DELIVERED_EVERY:
                // a flush per delivery would pace the queue by the disk, and
                // while it is busy the commit thread's flushes (and sled's
                // own, every half second) write these too.
                if lanes.last_removed.elapsed() >= FLUSH_DELIVERED_EVERY {
                    lanes.remove_delivered(&store, queue);
                }
                if unflushed && inflight.is_empty() && last_flush.elapsed() >= FLUSH_DELIVERED_EVERY
                {
                    lanes.remove_delivered(&store, queue);
                    unflushed = false;
                    last_flush = Instant::now();
                    if let Err(e) = store.flush() {
                        error!(error = %e, "cannot record deliveries on disk; the store takes no writes until a test write succeeds");
                        health.set_store(Some(e.to_string()), chrono::Utc::now());
                    }
                }
                // Hold no handle while waiting: the files may be opened again.
                drop(store);
                // Out of pace or backing off: more posts gather meanwhile,
                // and the next pass merges them into summaries.
                // Deliveries not yet flushed are flushed soon, even if
                // nothing else happens.
                let wake = match (wait, unflushed) {
                    (Some(w), true) => Some(w.min(FLUSH_DELIVERED_EVERY)),
                    (None, true) => Some(FLUSH_DELIVERED_EVERY),
                    (w, false) => w,
                };
                let sleep = wake.unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    Some(r) = inflight.join_next_with_id(), if !inflight.is_empty() => match r {
                        Ok((id, a)) => {
                            under_way.remove(&id);
                            // The outcome is recorded on the store as it is
                            // now; while it is opened again, wait for it.
                            let store = loop {
                                if let Some(s) = slot.get() {
                                    break s;
                                }
                                tokio::time::sleep(PROBE_EVERY / 10).await;
                            };
                            unflushed |= a.result.is_ok();
                            a.settle(&store, queue, &marks, &mut lanes, lease.held());
                        }
                        Err(e) => {
                            // The sink panicked: that destination retries later.
                            let dest = under_way.remove(&e.id()).unwrap_or_default();
                            error!(destination = %dest, error = %e, "a delivery panicked; will retry");
                            lanes.set_busy(&dest, false);
                            lanes.failed(&dest, std::time::Instant::now());
                        }
                    },
                    _ = tokio::time::sleep(sleep), if wake.is_some() => {}
                    _ = marks.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

fn internal(e: &dyn std::fmt::Display, what: &str) -> BotError {
    let id = ErrorId::fresh();
    error!(error_id = %id, error = %e, "{what}");
    BotError::Internal(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rich::Rich;
    use crate::domain::{ChannelName, TicketId};
    use crate::engine::{Effect, Post};

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
            Effect::Alertmanager(o) => format!("alertmanager {o:?}"),
            Effect::Page(p) => format!("page {} {}", p.to, p.card.ticket),
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

    fn post(channel: &str, ticket: Option<u64>, thread: bool, text: &str) -> crate::engine::Write {
        crate::engine::Write::Effect(Effect::Post(Post {
            channel: ChannelName::parse(channel).unwrap(),
            ticket: ticket.map(|n| TicketId::new("OPS", n)),
            thread,
            body: Rich::new().text(text),
            alert: false,
            replaces: None,
            card: None,
            ask: None,
            file: None,
        }))
    }

    /// A bot whose outbox already holds `writes` (queued straight into the
    /// store, as a backlog left by earlier commits).
    /// At start, a local run an earlier process left queued or running is
    /// settled as lost; a run queued since this process started (a push or
    /// a /build taken in while it was starting), whose start order still
    /// waits, is left to the job worker.
    #[tokio::test]
    async fn only_runs_left_by_an_earlier_process_are_settled_as_lost() {
        use crate::domain::run::{JobOrder, Run, RunId, RunState};
        use crate::domain::UserName;
        use crate::engine::{View, Write};
        let now = chrono::Utc::now();
        let started = now - chrono::Duration::seconds(5);
        let run = |n: u64, at| {
            Run::queued(
                RunId(n),
                "build-web",
                Default::default(),
                &UserName::parse("olivia").unwrap(),
                &ChannelName::parse("ops").unwrap(),
                at,
                None,
            )
        };
        let start = |n: u64| {
            Write::Effect(Effect::Job(JobOrder::Start {
                run: RunId(n),
                job: "build-web".into(),
                params: Default::default(),
            }))
        };
        let writes = vec![
            // Left by the earlier process: queued before this one started.
            Write::Run(run(1, now - chrono::Duration::hours(1))),
            start(1),
            // Queued while this one was starting, its order not yet taken.
            Write::Run(run(2, now)),
            start(2),
        ];
        let (_dir, store, bot, _writer) = bot_with_backlog(writes);
        bot.settle_lost_runs(started).await;
        let state = |n: u64| store.run(RunId(n)).unwrap().unwrap().state;
        assert_eq!(
            state(1),
            RunState::Failed,
            "the earlier process's run is lost"
        );
        assert_eq!(
            state(2),
            RunState::Queued,
            "the new run waits for the job worker"
        );
        let orders: Vec<RunId> = store
            .pending(Queue::Jobs, 10)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i.effect {
                Effect::Job(JobOrder::Start { run, .. }) => Some(run),
                _ => None,
            })
            .collect();
        assert_eq!(orders, [RunId(2)], "the lost run's order goes with it");
    }

    fn bot_with_backlog(
        writes: Vec<crate::engine::Write>,
    ) -> (tempfile::TempDir, Store, Bot, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let src = "[roles]\noperators = [\"olivia\"]\n[teams.backend]\nchannel = \"backend\"\nmembers = [\"bob\"]\n";
        let config = crate::config::Config::parse(&dir.path().join("bot.toml"), src)
            .unwrap()
            .config;
        let store = Store::open(&config.storage_path).unwrap();
        store
            .apply_batch(&[()], |_, _| Ok((writes.clone(), ())), chrono::Utc::now)
            .unwrap();
        let (bot, writer) = Bot::start(
            store.clone(),
            Engine::new(Arc::new(config)),
            Arc::new(SystemClock),
        )
        .unwrap();
        (dir, store, bot, writer)
    }

    /// Tells the test each delivery (destination, text), at a pace, failing
    /// the first `failures` attempts at `failing`.
    struct Channel {
        tx: tokio::sync::mpsc::UnboundedSender<(String, String)>,
        pace: Option<Pace>,
        failing: &'static str,
        failures: std::sync::atomic::AtomicUsize,
        /// Each delivery to this destination takes 2 s.
        slow: &'static str,
        parallel: usize,
    }

    impl Sink for Channel {
        async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
            let dest = destination(item).unwrap_or_default();
            if dest == self.slow {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            if dest == self.failing {
                let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
                if left > 0 {
                    self.failures
                        .store(left - 1, std::sync::atomic::Ordering::SeqCst);
                    return Err(DeliveryError::Transient("Discord answered 503".into()));
                }
            }
            let _ = self.tx.send((dest, text(item)));
            Ok(())
        }

        fn pace(&self) -> Option<Pace> {
            self.pace
        }

        fn parallel(&self) -> usize {
            self.parallel
        }
    }

    fn channel_sink(
        pace: Option<Pace>,
        failing: &'static str,
        failures: usize,
    ) -> (
        Channel,
        tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = Channel {
            tx,
            pace,
            failing,
            failures: std::sync::atomic::AtomicUsize::new(failures),
            slow: "",
            parallel: 1,
        };
        (sink, rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backlog_on_one_paced_destination_never_holds_a_post_to_another() {
        // 1,500 posts wait for one ticket's thread, then a new ticket's card
        // and its thread: more than a worker ever looked at in one pass.
        let mut writes: Vec<crate::engine::Write> = (0..1500)
            .map(|i| post("ops", Some(1), true, &format!("flood {i}")))
            .collect();
        writes.push(post("ops", Some(2), false, "card of OPS-2"));
        writes.push(post("ops", Some(2), true, "story of OPS-2"));
        let (_dir, store, bot, writer) = bot_with_backlog(writes);
        let pace = Pace {
            burst: 5,
            period: Duration::from_secs(1),
        };
        let (sink, mut rx) = channel_sink(Some(pace), "", 0);
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let worker = tokio::spawn(bot.outbox_worker(Queue::Chat, sink, stop_rx));
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !got
            .iter()
            .any(|(_, t): &(String, String)| t.contains("story of OPS-2"))
        {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(d)) => got.push(d),
                _ => panic!("OPS-2 never got out: {got:?}"),
            }
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "OPS-2 waited {took:?}");
        let card = got.iter().position(|(_, t)| t.contains("card of OPS-2"));
        let story = got.iter().position(|(_, t)| t.contains("story of OPS-2"));
        assert!(card < story, "the thread waits for its card: {got:?}");
        // The flood keeps its order and its pace meanwhile.
        let flood: Vec<&str> = got
            .iter()
            .filter(|(d, _)| d == "ops/OPS-1")
            .map(|(_, t)| t.as_str())
            .collect();
        assert!(flood.len() <= 10, "{flood:?}");
        for (i, t) in flood.iter().enumerate() {
            assert_eq!(*t, format!("#ops flood {i}"));
        }
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        assert_eq!(store.outbox_len(), 1500 - flood.len());
        drop(bot);
        writer.join();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_destination_does_not_hold_the_others_of_a_parallel_sink() {
        let writes = vec![
            post("backend", None, false, "b1"),
            post("backend", None, false, "b2"),
            post("ops", None, false, "o1"),
            post("ops", Some(1), false, "card of OPS-1"),
            post("ops", Some(1), true, "story of OPS-1"),
        ];
        let (_dir, store, bot, writer) = bot_with_backlog(writes);
        // Each post to #backend takes 2 s (a slow answer, a rate limit
        // waited out inside the client).
        let (mut sink, mut rx) = channel_sink(None, "", 0);
        sink.slow = "backend";
        sink.parallel = 4;
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let worker = tokio::spawn(bot.outbox_worker(Queue::Chat, sink, stop_rx));
        let mut got = Vec::new();
        let mut when = Vec::new();
        for _ in 0..5 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((_, t))) => {
                    got.push(t);
                    when.push(started.elapsed());
                }
                _ => panic!("not all delivered: {got:?}"),
            }
        }
        assert_eq!(
            got,
            [
                "#ops o1",
                "#ops card of OPS-1",
                "#ops story of OPS-1",
                "#backend b1",
                "#backend b2"
            ]
        );
        assert!(
            when[2] < Duration::from_millis(1000),
            "#ops waited: {when:?}"
        );
        assert!(
            when[4] >= Duration::from_secs(4),
            "#backend one at a time: {when:?}"
        );
        assert!(bot.wait_delivered(Duration::from_secs(5)).await);
        assert_eq!(store.outbox_len(), 0);
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        drop(bot);
        writer.join();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_destination_backs_off_alone_and_keeps_its_order() {
        let writes = vec![
            post("backend", None, false, "b1"),
            post("backend", None, false, "b2"),
            post("ops", None, false, "o1"),
            post("ops", None, false, "o2"),
        ];
        let (_dir, store, bot, writer) = bot_with_backlog(writes);
        // #backend answers 503 four times (1.5 s of backoff).
        let (sink, mut rx) = channel_sink(None, "backend", 4);
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let worker = tokio::spawn(bot.outbox_worker(Queue::Chat, sink, stop_rx));
        let mut got = Vec::new();
        let mut when = Vec::new();
        for _ in 0..4 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((_, t))) => {
                    got.push(t);
                    when.push(started.elapsed());
                }
                _ => panic!("not all delivered: {got:?}"),
            }
        }
        assert_eq!(got, ["#ops o1", "#ops o2", "#backend b1", "#backend b2"]);
        assert!(
            when[1] < Duration::from_millis(500),
            "#ops waited: {when:?}"
        );
        assert!(bot.wait_delivered(Duration::from_secs(5)).await);
        assert_eq!(store.outbox_len(), 0);
        assert!(store.dead_letters().unwrap().is_empty());
        // Once each.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "a post went out twice"
        );
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
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

    /// What tests plant after a batch is applied, before its flush: a
    /// ticket titled "slow to flush" holds the commit thread 3 s there (as
    /// a slow disk's flush, or a queue of batches, would).
    pub(super) fn slow_after_apply(events: &[&Event]) {
        let slow = events.iter().any(|ev| {
            matches!(ev, Event::Command {
                command: crate::commands::Command::TicketOpen { title, .. },
                ..
            } if title == "slow to flush")
        });
        if slow {
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// What tests plant inside a transaction: a ticket titled "slow to
    /// decide" holds it (and so the store's snapshot gate) 3 s.
    pub(super) fn slow_in_decide(ev: &Event) {
        if matches!(ev, Event::Command {
            command: crate::commands::Command::TicketOpen { title, .. },
            ..
        } if title == "slow to decide")
        {
            std::thread::sleep(Duration::from_secs(3));
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
            tx.send(Work::Event(Job {
                event: olivia(line),
                done,
            }))
            .unwrap();
            answers.push(answer);
        }
        drop(tx);
        let marks = [Queue::Chat, Queue::Mail, Queue::Jobs, Queue::Alertmanager]
            .map(|q| Arc::new(Marks::new(&store, q).unwrap()));
        // The commit thread's loop, here; it returns once the queue is
        // closed and empty, so it survived the bugs.
        let slot = Arc::new(StoreSlot {
            at: store.location().clone(),
            current: RwLock::new(Some(store.clone())),
        });
        commit_loop(
            rx,
            slot,
            Arc::new(arc_swap::ArcSwap::from_pointee(engine)),
            Arc::new(SystemClock),
            marks,
            Health::new(),
        );
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
        // A bug in a query, now answered off the commit thread: an internal
        // error with its id, and the bot goes on.
        let bug = tokio::time::timeout(
            wait,
            bot.handle(olivia("/ticket list team:panic-while-querying")),
        )
        .await
        .expect("answered");
        assert!(matches!(bug, Err(BotError::Internal(_))), "{bug:?}");
        drop(bot);
        assert!(writer.join_within(wait), "the commit thread did not finish");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn help_and_whoami_are_answered_while_a_transaction_holds_the_store() {
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
        // A transaction held 3 s while it decides: a snapshot waits for it,
        // `/help` and `/whoami` read nothing and do not.
        let slow = {
            let bot = bot.clone();
            tokio::spawn(async move {
                bot.handle(olivia("/ticket open title:\"slow to decide\""))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        for (line, says) in [("/help", "/ticket open"), ("/whoami", "olivia")] {
            let r = tokio::time::timeout(wait, bot.handle(olivia(line)))
                .await
                .expect("answered")
                .expect("no error")
                .expect("a reply");
            assert!(r.body.to_plain().contains(says), "{line}: {r:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "help waited for the transaction: {:?}",
            started.elapsed()
        );
        assert!(!slow.is_finished(), "the slow decision was not slow");
        let show = tokio::time::timeout(wait, bot.handle(olivia("/ticket show id:OPS-1")))
            .await
            .expect("answered");
        assert!(show.is_ok(), "{show:?}");
        let slow = tokio::time::timeout(wait, slow)
            .await
            .expect("answered")
            .unwrap();
        assert!(slow.is_ok(), "{slow:?}");
        drop(bot);
        assert!(writer.join_within(wait), "the commit thread did not finish");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_is_answered_while_the_commit_thread_is_busy_with_a_batch() {
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
        let first = bot.handle(olivia("/ticket open title:first")).await;
        assert!(first.is_ok(), "{first:?}");
        // The commit thread is held 3 s after a batch (before its flush); a
        // list and a show meanwhile are answered from committed state at
        // once, not after it (they used to queue on the commit thread).
        let slow = {
            let bot = bot.clone();
            tokio::spawn(async move {
                bot.handle(olivia("/ticket open title:\"slow to flush\""))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        for line in ["/ticket list", "/ticket show id:OPS-1"] {
            let r = tokio::time::timeout(wait, bot.handle(olivia(line)))
                .await
                .expect("answered")
                .expect("no error")
                .expect("a reply");
            assert!(r.body.to_plain().contains("OPS-1"), "{line}: {r:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the queries waited for the commit thread: {:?}",
            started.elapsed()
        );
        assert!(!slow.is_finished(), "the slow decision was not slow");
        let slow = tokio::time::timeout(wait, slow)
            .await
            .expect("answered")
            .unwrap();
        assert!(slow.is_ok(), "{slow:?}");
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
                flaps: None,
                due: None,
                missed: Vec::new(),
                links: Vec::new(),
                labels: Default::default(),
                annotations: Default::default(),
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

    /// An instance that lost the lease (paused past it) records no failed
    /// attempt: the new holder may have delivered the post and taken it out
    /// of the store, and the attempt's write would put it back.
    #[test]
    fn a_failed_attempt_after_the_lease_was_lost_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let marks = Marks::new(&store, Queue::Chat).unwrap();
        let attempt = || Attempt {
            dest: "ops".into(),
            seqs: vec![5],
            item: item(5, "ops", 1, false, false),
            result: Err(DeliveryError::Transient("cut off".into())),
        };
        let mut lanes = Lanes::new(None, 3);
        attempt().settle(&store, Queue::Chat, &marks, &mut lanes, false);
        assert!(store.pending(Queue::Chat, 10).unwrap().is_empty());
        // Holding it, the attempt is recorded (the item is written whole).
        attempt().settle(&store, Queue::Chat, &marks, &mut lanes, true);
        assert_eq!(store.pending(Queue::Chat, 10).unwrap().len(), 1);
    }
}
