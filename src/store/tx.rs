//! Applying a batch of engine decisions: each event decided on the
//! transaction's view of the trees, and its writes applied in the same
//! transaction.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::keys::{
    be64, decode, due_key, encode, load_key, loads, member_key, next_due, read_u64, state_key,
    team_key, timeline_key, RUN_SEQ, SILENCED_SEQ, SILENCES, TICKET_SEQ,
};
use super::reads::{InTx, Trees};
use super::{figures, OutboxItem, Queue, Store};
use crate::domain::{Ticket, Timestamp};
use crate::engine::{View, Write};
use crate::error::StoreError;

/// The outcome of one event in a batch.
pub type EventResult<T> = Result<T, crate::error::EngineError>;

/// Logs a panic caught while applying event `index` of a batch, under a
/// fresh error id, and turns it into the error that refuses the event.
fn panicked(index: usize, doing: &'static str, panic: &(dyn std::any::Any + Send)) -> StoreError {
    let message = crate::error::panic_message(panic);
    let id = crate::error::ErrorId::fresh();
    tracing::error!(error_id = %id, index, panic = %message, "a bug while {doing} an event; the event is refused, nothing of it is stored");
    StoreError::Panicked { id, doing }
}

impl Store {
    /// Runs `decide` for each event of a batch inside one transaction, and
    /// applies the writes of those it accepts. A refused event writes nothing.
    /// The batch is not flushed; call [`Store::flush`] before acknowledging.
    pub fn apply_batch<E, R>(
        &self,
        events: &[E],
        decide: impl Fn(&dyn View, &E) -> EventResult<(Vec<Write>, R)>,
        now: impl Fn() -> Timestamp,
    ) -> Result<Vec<EventResult<R>>, StoreError> {
        let trees = self.trees.each();
        let res = trees[..].transaction(|views: &Vec<TransactionalTree>| {
            let failure = RefCell::new(None);
            let tx = Trees::collect(views.iter().map(|tree| InTx {
                tree,
                failure: &failure,
            }));
            let mut results = Vec::with_capacity(events.len());
            for (i, ev) in events.iter().enumerate() {
                // A bug in one decision refuses that event alone: the
                // decision only reads, so nothing of it is written.
                let out = match catch_unwind(AssertUnwindSafe(|| decide(&tx, ev))) {
                    Ok(out) => out,
                    Err(panic) => Err(crate::error::EngineError::Store(panicked(
                        i,
                        "deciding",
                        panic.as_ref(),
                    ))),
                };
                if let Some(e) = failure.borrow_mut().take() {
                    return Err(ConflictableTransactionError::from(e));
                }
                match out {
                    Ok((writes, r)) => {
                        // A bug while writing leaves part of the event in
                        // the transaction: abort all of it (the caller
                        // applies the events one by one then).
                        let wrote = catch_unwind(AssertUnwindSafe(|| {
                            for w in writes {
                                tx.write(w, now())?;
                            }
                            Ok::<(), TxFail>(())
                        }));
                        match wrote {
                            Ok(Ok(())) => {}
                            Ok(Err(TxFail::Sled(u))) => {
                                return Err(ConflictableTransactionError::from(u))
                            }
                            Ok(Err(TxFail::Store(s))) => {
                                return Err(ConflictableTransactionError::Abort(s))
                            }
                            Err(panic) => {
                                return Err(ConflictableTransactionError::Abort(panicked(
                                    i,
                                    "writing",
                                    panic.as_ref(),
                                )))
                            }
                        }
                        results.push(Ok(r));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            Ok(results)
        });
        match res {
            Ok(r) => Ok(r),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    }
}

/// Why a write inside the transaction failed.
pub(super) enum TxFail {
    Sled(UnabortableTransactionError),
    Store(StoreError),
}

impl From<UnabortableTransactionError> for TxFail {
    fn from(e: UnabortableTransactionError) -> Self {
        TxFail::Sled(e)
    }
}

/// [`encode`] inside a transaction: a record that cannot be encoded aborts
/// the transaction (the event is refused), it never writes an empty value.
fn enc<T: Serialize>(v: &T, tree: &'static str) -> Result<Vec<u8>, TxFail> {
    encode(v, tree).map_err(TxFail::Store)
}

impl Trees<InTx<'_>> {
    fn counter(&self, key: &[u8]) -> Result<u64, TxFail> {
        match self.meta.get(key)? {
            Some(v) => read_u64(&v, "meta").map_err(TxFail::Store),
            None => Ok(0),
        }
    }

    fn write(&self, w: Write, now: Timestamp) -> Result<(), TxFail> {
        match w {
            Write::Ticket(t) => {
                let num = t.id.num();
                let old: Option<Ticket> = match self.tickets.get(be64(num))? {
                    Some(v) => Some(decode(&v, "tickets").map_err(TxFail::Store)?),
                    None => None,
                };
                if let Some(old) = &old {
                    if old.state != t.state {
                        self.by_state.remove(state_key(old.state, num))?;
                    }
                    if let Some(team) = &old.team {
                        if old.team != t.team {
                            self.by_team.remove(team_key(team, num))?;
                        }
                    }
                }
                let old_due = old.as_ref().and_then(next_due);
                let new_due = next_due(&t);
                if old_due != new_due {
                    if let Some(d) = old_due {
                        self.by_state.remove(&due_key(d, num))?;
                    }
                    if let Some(d) = new_due {
                        self.by_state.insert(&due_key(d, num), &[])?;
                    }
                }
                figures::apply(self.meta.tree, old.as_ref(), &t)?;
                let old_load = old.as_ref().and_then(loads);
                if old_load != loads(&t) {
                    if let Some(u) = old_load {
                        let n = self.counter(&load_key(u))?;
                        self.meta.insert(load_key(u), &be64(n.saturating_sub(1)))?;
                    }
                    if let Some(u) = loads(&t) {
                        let n = self.counter(&load_key(u))?;
                        self.meta.insert(load_key(u), &be64(n + 1))?;
                    }
                }
                self.by_state.insert(state_key(t.state, num), &[])?;
                if let Some(team) = &t.team {
                    self.by_team.insert(team_key(team, num), &[])?;
                }
                if self.counter(TICKET_SEQ)? < num {
                    self.meta.insert(TICKET_SEQ, &be64(num))?;
                }
                self.tickets.insert(&be64(num), enc(&t, "tickets")?)?;
            }
            Write::Timeline(id, e) => {
                // Tests plant a bug here: a panic halfway through an event's
                // writes (its ticket written, its timeline not).
                #[cfg(test)]
                if e.text.contains("panic while writing") {
                    panic!("a planted bug while writing");
                }
                self.timeline
                    .insert(&timeline_key(id.num(), e.seq), enc(&e, "timeline")?)?;
            }
            Write::Effect(effect) => {
                let q = Queue::of(&effect);
                let seq = self.counter(q.seq_key())? + 1;
                self.meta.insert(q.seq_key(), &be64(seq))?;
                let item = OutboxItem {
                    seq,
                    created_at: now,
                    effect,
                    attempts: 0,
                    last_error: None,
                };
                let tree = match q {
                    Queue::Chat => &self.outbox,
                    Queue::Mail => &self.mail_outbox,
                    Queue::Jobs => &self.job_outbox,
                };
                tree.insert(&be64(seq), enc(&item, "outbox")?)?;
            }
            Write::Run(run) => {
                if self.counter(RUN_SEQ)? < run.id.0 {
                    self.meta.insert(RUN_SEQ, &be64(run.id.0))?;
                }
                self.runs.insert(&be64(run.id.0), enc(&run, "runs")?)?;
            }
            Write::Broken(job, Some(id)) => {
                self.broken
                    .insert(job.as_bytes(), id.to_string().as_bytes())?;
            }
            Write::Broken(job, None) => {
                self.broken.remove(job.as_bytes())?;
            }
            Write::Lock(key, Some(run)) => {
                self.deploys
                    .insert(format!("lock:{key}").as_bytes(), enc(&run, "deploys")?)?;
            }
            Write::Lock(key, None) => {
                self.deploys.remove(format!("lock:{key}").as_bytes())?;
            }
            Write::History(key, list) => {
                self.deploys
                    .insert(format!("hist:{key}").as_bytes(), enc(&list, "deploys")?)?;
            }
            Write::Idempotency(key, id) => {
                self.idempotency
                    .insert(key.as_bytes(), id.to_string().as_bytes())?;
            }
            Write::Group(mut g) => {
                for (fp, m) in std::mem::take(&mut g.members) {
                    self.groups
                        .insert(member_key(&g.key, &fp), enc(&m, "groups")?)?;
                }
                self.groups.insert(g.key.as_bytes(), enc(&g, "groups")?)?;
            }
            Write::Member(group, fp, m) => {
                self.groups
                    .insert(member_key(&group, &fp), enc(&m, "groups")?)?;
            }
            Write::Silences(book) => {
                self.meta.insert(SILENCES, enc(&book, "meta")?)?;
            }
            Write::Overrides(team, list) => {
                self.meta
                    .insert(format!("oncall:{team}").as_bytes(), enc(&list, "meta")?)?;
            }
            Write::Marker(key, v) => {
                self.meta
                    .insert(format!("marker:{key}").as_bytes(), &v.to_be_bytes())?;
            }
            Write::DropJobOrder(seq) => {
                self.job_outbox.remove(&be64(seq))?;
            }
            Write::Silenced(alert) => {
                let seq = self.counter(SILENCED_SEQ)? + 1;
                self.meta.insert(SILENCED_SEQ, &be64(seq))?;
                self.silenced.insert(&be64(seq), enc(&alert, "silenced")?)?;
            }
        }
        Ok(())
    }
}
