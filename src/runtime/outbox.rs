//! The outbox workers: per-destination lanes loaded from the store, delivery
//! attempts with retry and backoff, the marks of how far a queue is delivered,
//! and the sinks that deliver.

use super::*;

/// One delivery attempt, as it ended.
pub(super) struct Attempt {
    pub(super) dest: String,
    /// The outbox entries it settles (more than one for a storm summary).
    pub(super) seqs: Vec<u64>,
    pub(super) item: OutboxItem,
    pub(super) result: Result<(), DeliveryError>,
}

impl Attempt {
    /// Records how the attempt ended, in the store and in the lanes.
    /// `held`: whether this instance still holds the lease. One that lost
    /// it records no failure: the new holder may have delivered the effect
    /// and taken it out of the store already, and a write of its attempt
    /// would put it back, to be delivered a second time.
    pub(super) fn settle(
        self,
        store: &Store,
        queue: Queue,
        marks: &Marks,
        lanes: &mut Lanes,
        held: bool,
    ) {
        let Attempt {
            dest,
            seqs,
            mut item,
            result,
        } = self;
        lanes.set_busy(&dest, false);
        if !held && result.is_err() {
            return;
        }
        match result {
            Ok(()) => {
                // Taken out of the store a little later, many at once (see
                // `Lanes::remove_delivered`).
                lanes.gone.extend_from_slice(&seqs);
                lanes.delivered(&dest, &seqs);
                settle_held(store, queue, marks, lanes);
            }
            Err(DeliveryError::Permanent(why)) => {
                warn!(seq = item.seq, reason = %why, "effect cannot be delivered; kept in dead letters");
                // A merged summary: each post it stood for is kept.
                for mut orig in lanes.delivered(&dest, &seqs) {
                    orig.attempts += 1;
                    orig.last_error = Some(why.clone());
                    if let Err(e) = store.dead_letter(queue, &orig) {
                        error!(seq = orig.seq, error = %e, "cannot move an effect to the dead letters");
                    }
                }
                settle_held(store, queue, marks, lanes);
            }
            Err(DeliveryError::Transient(why)) => {
                let backoff = lanes.failed(&dest, std::time::Instant::now());
                debug!(seq = item.seq, destination = %dest, reason = %why, ?backoff, "delivery failed; will retry");
                if seqs.len() == 1 {
                    item.attempts += 1;
                    item.last_error = Some(why);
                    if let Err(e) = store.retry(queue, &item) {
                        error!(seq = item.seq, error = %e, "cannot record a delivery attempt");
                    }
                    lanes.replace_head(&dest, item);
                }
            }
        }
    }
}

/// How many pending effects a worker takes in from the store at a time.
pub(super) const LOAD_AT_ONCE: usize = 4096;

/// How many pending effects a worker holds at most (the rest wait in the
/// store until it has room): a bound on its memory when a chat service is
/// down for long.
pub(super) const HELD_AT_MOST: usize = 100_000;

/// How many posts of one channel a storm summary looks at, at most.
pub(super) const COALESCE_WINDOW: usize = 1024;

/// One destination's pending effects, in order, and its backoff.
pub(super) struct Lane {
    pub(super) items: std::collections::VecDeque<OutboxItem>,
    /// Monitoring's posts among them (storm control merges those).
    pub(super) mergeable: usize,
    /// After a transient failure: nothing before this instant.
    pub(super) not_before: Option<std::time::Instant>,
    pub(super) backoff: Duration,
    /// A delivery to it is under way.
    pub(super) busy: bool,
}

/// What a worker does next.
pub(super) enum Next {
    /// Deliver the head of this destination.
    Deliver(String),
    /// Nothing is ready; the soonest is in this long.
    Wait(Duration),
    /// Nothing pending.
    Idle,
}

/// The pending effects of one queue, by destination.
pub(super) struct Lanes {
    pub(super) lanes: std::collections::HashMap<String, Lane>,
    /// The pending seqs of each ticket, across destinations.
    pub(super) tickets:
        std::collections::HashMap<crate::domain::TicketId, std::collections::BTreeSet<u64>>,
    /// The highest seq taken in.
    pub(super) scanned: u64,
    /// How many effects the lanes hold.
    pub(super) held: usize,
    pub(super) pacer: Option<Pacer>,
    pub(super) coalesce_after: usize,
    /// The seqs the lanes hold: the oldest is the oldest pending effect
    /// (what is not taken in yet comes after it).
    pub(super) held_seqs: std::collections::BTreeSet<u64>,
    /// Delivered effects still to be taken out of the store.
    pub(super) gone: Vec<u64>,
    /// When `gone` was last written to the store.
    pub(super) last_removed: std::time::Instant,
}

/// A monitoring post that storm control may merge with others of its channel.
pub(super) fn mergeable(item: &OutboxItem) -> bool {
    crate::engine::storm::mergeable(&item.effect)
}

impl Lanes {
    pub(super) fn new(pace: Option<Pace>, coalesce_after: usize) -> Lanes {
        Lanes {
            lanes: std::collections::HashMap::new(),
            tickets: std::collections::HashMap::new(),
            scanned: 0,
            held: 0,
            pacer: pace.map(|pace| Pacer {
                pace,
                recent: std::collections::HashMap::new(),
            }),
            coalesce_after,
            held_seqs: std::collections::BTreeSet::new(),
            gone: Vec::new(),
            last_removed: std::time::Instant::now(),
        }
    }

    /// Takes what was delivered out of the store, in one write.
    ///
    /// Not one write per delivery: every write to sled (and every read)
    /// waits while a transaction runs, and the commit thread's batches hold
    /// sled's transaction lock for as long as the engine decides a batch
    /// (up to ~20 ms in an alert storm). A removal per post held the
    /// console's outbox to a few hundred posts a second. Called every
    /// [`super::FLUSH_DELIVERED_EVERY`] at most while deliveries go on,
    /// before each flush of the worker, and once nothing is held. A
    /// delivery is only durable once a flush writes its removal anyway: if
    /// the bot dies before, the effect is delivered again after the restart
    /// (Discord posts carry a nonce for that); this adds at most that
    /// period to the window.
    pub(super) fn remove_delivered(&mut self, store: &Store, queue: Queue) {
        self.last_removed = std::time::Instant::now();
        if self.gone.is_empty() {
            return;
        }
        if let Err(e) = store.done_all(queue, &self.gone) {
            error!(error = %e, effects = self.gone.len(), "cannot mark effects delivered");
        }
        self.gone.clear();
    }

    /// Takes in what was committed (flushed: at most `upto`) since the last
    /// look; returns whether there is more to take in.
    pub(super) fn load(
        &mut self,
        store: &Store,
        queue: Queue,
        upto: u64,
    ) -> Result<bool, crate::error::StoreError> {
        if self.held >= HELD_AT_MOST || self.scanned >= upto {
            return Ok(false);
        }
        let items = store.pending_after(queue, self.scanned, LOAD_AT_ONCE)?;
        let more = items.len() == LOAD_AT_ONCE && items.iter().all(|i| i.seq <= upto);
        let items: Vec<OutboxItem> = items.into_iter().take_while(|i| i.seq <= upto).collect();
        self.held += items.len();
        for item in items {
            self.scanned = self.scanned.max(item.seq);
            self.held_seqs.insert(item.seq);
            if let Some(t) = ticket_of(&item) {
                self.tickets.entry(t).or_default().insert(item.seq);
            }
            let lane = self
                .lanes
                .entry(destination(&item).unwrap_or_default())
                .or_insert_with(|| Lane {
                    items: std::collections::VecDeque::new(),
                    mergeable: 0,
                    not_before: None,
                    backoff: Duration::from_millis(100),
                    busy: false,
                });
            lane.mergeable += usize::from(mergeable(&item));
            lane.items.push_back(item);
        }
        Ok(more)
    }

    /// Whether the head of a lane waits for an earlier effect of its ticket
    /// in another destination.
    pub(super) fn waits_for_its_ticket(&self, lane: &Lane) -> bool {
        let Some(head) = lane.items.front() else {
            return false;
        };
        if lane.mergeable > self.coalesce_after && mergeable(head) {
            // It goes out in a storm summary, which is no ticket's.
            return false;
        }
        ticket_of(head)
            .and_then(|t| self.tickets.get(&t))
            .and_then(|seqs| seqs.first())
            .is_some_and(|first| *first < head.seq)
    }

    /// The destination whose head goes next: the oldest ready one.
    pub(super) fn next(&mut self, now: std::time::Instant) -> Next {
        let mut best: Option<(u64, &String)> = None;
        let mut wait: Option<Duration> = None;
        for (dest, lane) in &self.lanes {
            let Some(head) = lane.items.front().filter(|_| !lane.busy) else {
                continue;
            };
            if best.is_some_and(|(seq, _)| seq < head.seq) {
                continue;
            }
            let not_yet = match lane.not_before.filter(|t| *t > now) {
                Some(t) => Some(t - now),
                None if self.waits_for_its_ticket(lane) => continue,
                None => self.pacer.as_mut().and_then(|p| p.wait(dest, now)),
            };
            match not_yet {
                Some(w) => wait = Some(wait.map_or(w, |x| x.min(w))),
                None => best = Some((head.seq, dest)),
            }
        }
        match (best, wait) {
            (Some((_, dest)), _) => {
                let dest = dest.clone();
                if let Some(p) = self.pacer.as_mut() {
                    p.record(&dest, now);
                }
                Next::Deliver(dest)
            }
            (None, Some(w)) => Next::Wait(w),
            // Heads waiting for their tickets wait for a delivery elsewhere.
            (None, None) if self.lanes.is_empty() => Next::Idle,
            (None, None) => Next::Wait(Duration::from_millis(100)),
        }
    }

    /// What to deliver for a destination: its head, or a storm summary of
    /// its monitoring posts, with the seqs it settles.
    pub(super) fn head(&self, dest: &str) -> Option<(Vec<u64>, OutboxItem)> {
        let lane = self.lanes.get(dest)?;
        let head = lane.items.front()?;
        if lane.mergeable > self.coalesce_after && mergeable(head) {
            let window: Vec<OutboxItem> = lane
                .items
                .iter()
                .filter(|i| mergeable(i))
                .take(COALESCE_WINDOW)
                .cloned()
                .collect();
            if let Some(first) = coalesce(window, self.coalesce_after).into_iter().next() {
                return Some(first);
            }
        }
        Some((vec![head.seq], head.clone()))
    }

    /// Removes what a delivery settled from its lane; returns those effects.
    pub(super) fn delivered(&mut self, dest: &str, seqs: &[u64]) -> Vec<OutboxItem> {
        let mut gone = Vec::new();
        let Some(lane) = self.lanes.get_mut(dest) else {
            return gone;
        };
        lane.not_before = None;
        lane.backoff = Duration::from_millis(100);
        if seqs.len() == 1 && lane.items.front().is_some_and(|h| h.seq == seqs[0]) {
            gone.extend(lane.items.pop_front());
        } else {
            let set: std::collections::HashSet<u64> = seqs.iter().copied().collect();
            let (went, kept): (Vec<OutboxItem>, Vec<OutboxItem>) =
                lane.items.drain(..).partition(|i| set.contains(&i.seq));
            lane.items = kept.into();
            gone = went;
        }
        lane.mergeable = lane
            .mergeable
            .saturating_sub(gone.iter().filter(|i| mergeable(i)).count());
        self.held = self.held.saturating_sub(gone.len());
        for i in &gone {
            self.held_seqs.remove(&i.seq);
        }
        if lane.items.is_empty() {
            self.lanes.remove(dest);
        }
        for i in &gone {
            if let Some(t) = ticket_of(i) {
                if let Some(seqs) = self.tickets.get_mut(&t) {
                    seqs.remove(&i.seq);
                    if seqs.is_empty() {
                        self.tickets.remove(&t);
                    }
                }
            }
        }
        gone
    }

    /// A transient failure: the destination backs off (and only it).
    pub(super) fn failed(&mut self, dest: &str, now: std::time::Instant) -> Duration {
        let Some(lane) = self.lanes.get_mut(dest) else {
            return Duration::ZERO;
        };
        let wait = lane.backoff;
        lane.not_before = Some(now + wait);
        lane.backoff = (lane.backoff * 2).min(Duration::from_secs(30));
        wait
    }

    pub(super) fn set_busy(&mut self, dest: &str, busy: bool) {
        if let Some(lane) = self.lanes.get_mut(dest) {
            lane.busy = busy;
        }
    }

    /// Keeps the attempt count of a head that failed.
    pub(super) fn replace_head(&mut self, dest: &str, item: OutboxItem) {
        if let Some(head) = self
            .lanes
            .get_mut(dest)
            .and_then(|l| l.items.front_mut())
            .filter(|h| h.seq == item.seq)
        {
            *head = item;
        }
    }
}

/// Publishes how far a queue is delivered after a delivery of this worker:
/// everything before its oldest pending effect. While the lanes hold some,
/// that is the oldest they hold (no read of the store per delivery); once
/// they hold none, the store says.
fn settle_held(store: &Store, queue: Queue, marks: &Marks, lanes: &mut Lanes) {
    let Some(first) = lanes.held_seqs.first() else {
        // What the store still holds is pending, so first what was
        // delivered leaves it.
        lanes.remove_delivered(store, queue);
        return settle(store, queue, marks);
    };
    let upto = first.saturating_sub(1);
    if upto > *marks.delivered.borrow() {
        marks.delivered.send_replace(upto);
    }
}

/// Publishes how far a queue is delivered: everything before its oldest
/// pending effect in the store.
pub(super) fn settle(store: &Store, queue: Queue, marks: &Marks) {
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

/// Storm control: the engine decides which of these pending effects merge
/// into a summary ([`crate::engine::storm::merge`]); this only maps its
/// deliveries back onto the queued items. Returns each delivery with the
/// outbox entries it settles.
pub fn coalesce(items: Vec<OutboxItem>, after: usize) -> Vec<(Vec<u64>, OutboxItem)> {
    let window: Vec<&crate::engine::Effect> = items.iter().map(|i| &i.effect).collect();
    let deliveries = crate::engine::storm::merge(&window, after);
    let mut items: Vec<Option<OutboxItem>> = items.into_iter().map(Some).collect();
    deliveries
        .into_iter()
        .filter_map(|d| {
            let seqs: Vec<u64> = d
                .settles
                .iter()
                .filter_map(|&i| items[i].as_ref().map(|it| it.seq))
                .collect();
            let mut item = items[*d.settles.first()?].take()?;
            if let Some(summary) = d.summary {
                item.effect = crate::engine::Effect::Post(summary);
            }
            Some((seqs, item))
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

    /// How many deliveries may be under way at once, each to another
    /// destination (1: one at a time, in commit order when nothing waits,
    /// as the console prints).
    fn parallel(&self) -> usize {
        1
    }
}
