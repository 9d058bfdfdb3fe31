//! Applying a batch of engine decisions: each event decided on the
//! transaction's view of the trees, and its writes applied in the same
//! transaction.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use super::keys::{
    be64, decode, due_key, encode, load_key, loads, member_key, next_due, read_u64, state_key,
    team_key, timeline_key, RUN_SEQ, SILENCED_SEQ, SILENCES, TICKET_SEQ,
};
use super::kv::{Read, TreeName, Tx};
use super::reads::Reads;
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
    /// The batch is not made durable; call [`Store::flush`] before
    /// acknowledging.
    pub fn apply_batch<E, R>(
        &self,
        events: &[E],
        decide: impl Fn(&dyn View, &E) -> EventResult<(Vec<Write>, R)>,
        now: impl Fn() -> Timestamp,
    ) -> Result<Vec<EventResult<R>>, StoreError> {
        let mut results: Vec<EventResult<R>> = Vec::with_capacity(events.len());
        self.db.transact(&mut |tx: &dyn Tx| {
            // The body runs again after a conflict: start afresh.
            results.clear();
            if tx.reads_ahead() {
                read_ahead(tx, events, &decide, &now)?;
            }
            let view = Reads(tx);
            for (i, ev) in events.iter().enumerate() {
                // A bug in one decision refuses that event alone: the
                // decision only reads, so nothing of it is written.
                let out = match catch_unwind(AssertUnwindSafe(|| decide(&view, ev))) {
                    Ok(out) => out,
                    Err(panic) => Err(crate::error::EngineError::Store(panicked(
                        i,
                        "deciding",
                        panic.as_ref(),
                    ))),
                };
                // A read the database failed (a conflict, storage) fails
                // the transaction, whatever the decision made of it: the
                // backend retries it or reports its failure.
                if let Err(crate::error::EngineError::Store(StoreError::Conflict)) = &out {
                    return Err(StoreError::Conflict);
                }
                match out {
                    Ok((writes, r)) => {
                        // A bug while writing leaves part of the event in
                        // the transaction: abort all of it (the caller
                        // applies the events one by one then).
                        let wrote = catch_unwind(AssertUnwindSafe(|| {
                            for w in writes {
                                write(tx, w, now())?;
                            }
                            Ok::<(), StoreError>(())
                        }));
                        match wrote {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return Err(e),
                            Err(panic) => return Err(panicked(i, "writing", panic.as_ref())),
                        }
                        results.push(Ok(r));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            Ok(())
        })?;
        Ok(results)
    }
}

/// How many times at most a batch is rehearsed to learn the keys it reads.
const REHEARSALS: usize = 3;

/// Reads ahead, in bulk, the keys a batch will read, where each read of a
/// key not yet seen costs a round trip (PostgreSQL): the batch's decisions
/// and writes are rehearsed on what the transaction knows, every other key
/// taken as the backend's [`Tx::hint`] has it (what this instance last saw
/// there; absent when it saw nothing) and noted; the noted keys are read in
/// one go, and when one of them holds something else than the rehearsal
/// took, the rehearsal runs again on what they hold (an event's later
/// reads may hang on what it read first), until nothing new is noted or
/// [`REHEARSALS`] have run. When every guess was right, a second
/// rehearsal would read the same keys and find the same values: one
/// rehearsal is enough, which is the common case (the records a batch
/// reads are mostly those this instance wrote last). The batch then runs
/// for real on the keys read: the rehearsals decide nothing, write
/// nothing, and a key they missed is read when the batch reads it, as it
/// always was.
fn read_ahead<E, R>(
    tx: &dyn Tx,
    events: &[E],
    decide: &impl Fn(&dyn View, &E) -> EventResult<(Vec<Write>, R)>,
    now: &impl Fn() -> Timestamp,
) -> Result<(), StoreError> {
    for _ in 0..REHEARSALS {
        let rehearsal = Rehearsal {
            tx,
            wrote: Default::default(),
            missed: Default::default(),
        };
        let view = Reads(&rehearsal);
        // What the decisions log belongs to the batch that runs for real.
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            for ev in events {
                let Ok(Ok((writes, _))) = catch_unwind(AssertUnwindSafe(|| decide(&view, ev)))
                else {
                    continue;
                };
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    for w in writes {
                        write(&rehearsal, w, now())?;
                    }
                    Ok::<(), StoreError>(())
                }));
            }
        });
        let Noted {
            keys: missed, took, ..
        } = rehearsal.missed.into_inner();
        if missed.is_empty() {
            break;
        }
        tx.prefetch(&missed)?;
        let guessed_right = missed
            .iter()
            .zip(&took)
            .all(|((tree, key), took)| tx.known(*tree, key).as_ref() == Some(took));
        if guessed_right {
            break;
        }
    }
    Ok(())
}

/// A key of a tree.
type TreeKey = (TreeName, Vec<u8>);

/// A rehearsal's view of the trees: its own writes, over what the
/// transaction knows; any other key reads as the backend's hint has it
/// (absent without one) and is noted.
struct Rehearsal<'a> {
    tx: &'a dyn Tx,
    wrote: RefCell<HashMap<TreeKey, Option<Vec<u8>>>>,
    /// The keys noted, once each, in the order first read, and what each
    /// was taken to hold.
    missed: RefCell<Noted>,
}

/// The keys a rehearsal noted, in the order first read, each with the
/// value it was taken to hold.
#[derive(Default)]
struct Noted {
    /// Where each key is in `keys`.
    at: HashMap<TreeKey, usize>,
    keys: Vec<TreeKey>,
    took: Vec<Option<Vec<u8>>>,
}

impl Read for Rehearsal<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = (tree, key.to_vec());
        if let Some(v) = self.wrote.borrow().get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.tx.known(tree, key) {
            return Ok(v);
        }
        let mut noted = self.missed.borrow_mut();
        if let Some(&i) = noted.at.get(&k) {
            // Noted already: taken as it was the first time.
            return Ok(noted.took[i].clone());
        }
        let took = self.tx.hint(tree, key).flatten();
        let i = noted.keys.len();
        noted.at.insert(k.clone(), i);
        noted.keys.push(k);
        noted.took.push(took.clone());
        Ok(took)
    }
}

impl Tx for Rehearsal<'_> {
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.wrote
            .borrow_mut()
            .insert((tree, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError> {
        self.wrote.borrow_mut().insert((tree, key.to_vec()), None);
        Ok(())
    }
}

/// [`encode`] inside a transaction: a record that cannot be encoded aborts
/// the transaction (the event is refused), it never writes an empty value.
fn enc<T: Serialize>(v: &T, tree: &'static str) -> Result<Vec<u8>, StoreError> {
    encode(v, tree)
}

fn counter(tx: &dyn Tx, key: &[u8]) -> Result<u64, StoreError> {
    match tx.get(TreeName::Meta, key)? {
        Some(v) => read_u64(&v, "meta"),
        None => Ok(0),
    }
}

/// Applies one write of a decision inside its transaction.
pub(super) fn write(tx: &dyn Tx, w: Write, now: Timestamp) -> Result<(), StoreError> {
    match w {
        Write::Ticket(t) => {
            let num = t.id.num();
            let old: Option<Ticket> = match tx.get(TreeName::Tickets, &be64(num))? {
                Some(v) => Some(decode(&v, "tickets")?),
                None => None,
            };
            if let Some(old) = &old {
                if old.state != t.state {
                    tx.delete(TreeName::ByState, &state_key(old.state, num))?;
                }
                if let Some(team) = &old.team {
                    if old.team != t.team {
                        tx.delete(TreeName::ByTeam, &team_key(team, num))?;
                    }
                }
            }
            let old_due = old.as_ref().and_then(next_due);
            let new_due = next_due(&t);
            if old_due != new_due {
                if let Some(d) = old_due {
                    tx.delete(TreeName::ByState, &due_key(d, num))?;
                }
                if let Some(d) = new_due {
                    tx.put(TreeName::ByState, &due_key(d, num), &[])?;
                }
            }
            figures::apply(tx, old.as_ref(), &t)?;
            super::listing::apply(tx, old.as_ref(), &t)?;
            let old_load = old.as_ref().and_then(loads);
            if old_load != loads(&t) {
                if let Some(u) = old_load {
                    let n = counter(tx, &load_key(u))?;
                    tx.put(TreeName::Meta, &load_key(u), &be64(n.saturating_sub(1)))?;
                }
                if let Some(u) = loads(&t) {
                    let n = counter(tx, &load_key(u))?;
                    tx.put(TreeName::Meta, &load_key(u), &be64(n + 1))?;
                }
            }
            tx.put(TreeName::ByState, &state_key(t.state, num), &[])?;
            if let Some(team) = &t.team {
                tx.put(TreeName::ByTeam, &team_key(team, num), &[])?;
            }
            if counter(tx, TICKET_SEQ)? < num {
                tx.put(TreeName::Meta, TICKET_SEQ, &be64(num))?;
            }
            tx.put(TreeName::Tickets, &be64(num), &enc(&t, "tickets")?)?;
        }
        Write::Timeline(id, e) => {
            // Tests plant a bug here: a panic halfway through an event's
            // writes (its ticket written, its timeline not).
            #[cfg(test)]
            if e.text.contains("panic while writing") {
                panic!("a planted bug while writing");
            }
            tx.put(
                TreeName::Timeline,
                &timeline_key(id.num(), e.seq),
                &enc(&e, "timeline")?,
            )?;
        }
        Write::Effect(effect) => {
            let q = Queue::of(&effect);
            let seq = counter(tx, q.seq_key())? + 1;
            tx.put(TreeName::Meta, q.seq_key(), &be64(seq))?;
            let item = OutboxItem {
                seq,
                created_at: now,
                effect,
                attempts: 0,
                last_error: None,
            };
            super::depth::put_new(tx, q.tree(), &be64(seq), &enc(&item, "outbox")?)?;
        }
        Write::Run(run) => {
            if counter(tx, RUN_SEQ)? < run.id.0 {
                tx.put(TreeName::Meta, RUN_SEQ, &be64(run.id.0))?;
            }
            tx.put(TreeName::Runs, &be64(run.id.0), &enc(&run, "runs")?)?;
        }
        Write::Broken(job, Some(id)) => {
            tx.put(TreeName::Broken, job.as_bytes(), id.to_string().as_bytes())?;
        }
        Write::Broken(job, None) => {
            tx.delete(TreeName::Broken, job.as_bytes())?;
        }
        Write::Lock(key, Some(run)) => {
            tx.put(
                TreeName::Deploys,
                format!("lock:{key}").as_bytes(),
                &enc(&run, "deploys")?,
            )?;
        }
        Write::Lock(key, None) => {
            tx.delete(TreeName::Deploys, format!("lock:{key}").as_bytes())?;
        }
        Write::History(key, list) => {
            tx.put(
                TreeName::Deploys,
                format!("hist:{key}").as_bytes(),
                &enc(&list, "deploys")?,
            )?;
        }
        Write::Idempotency(key, id) => {
            tx.put(
                TreeName::Idempotency,
                key.as_bytes(),
                id.to_string().as_bytes(),
            )?;
        }
        Write::Group(mut g) => {
            for (fp, m) in std::mem::take(&mut g.members) {
                tx.put(
                    TreeName::Groups,
                    &member_key(&g.key, &fp),
                    &enc(&m, "groups")?,
                )?;
            }
            tx.put(TreeName::Groups, g.key.as_bytes(), &enc(&g, "groups")?)?;
        }
        Write::Member(group, fp, m) => {
            tx.put(
                TreeName::Groups,
                &member_key(&group, &fp),
                &enc(&m, "groups")?,
            )?;
        }
        Write::Silences(book) => {
            tx.put(TreeName::Meta, SILENCES, &enc(&book, "meta")?)?;
        }
        Write::Maintenance(book) => {
            tx.put(
                TreeName::Meta,
                super::keys::MAINTENANCE,
                &enc(&book, "meta")?,
            )?;
        }
        Write::Heartbeats(book) => {
            tx.put(
                TreeName::Meta,
                super::keys::HEARTBEATS,
                &enc(&book, "meta")?,
            )?;
        }
        Write::Overrides(team, list) => {
            tx.put(
                TreeName::Meta,
                format!("oncall:{team}").as_bytes(),
                &enc(&list, "meta")?,
            )?;
        }
        Write::Marker(key, v) => {
            tx.put(
                TreeName::Meta,
                format!("marker:{key}").as_bytes(),
                &v.to_be_bytes(),
            )?;
        }
        Write::DropJobOrder(seq) => {
            super::depth::delete(tx, TreeName::JobOutbox, &[be64(seq)])?;
        }
        Write::Public(p) => {
            use crate::domain::status::PublicWrite as P;
            match p {
                P::Board(b) => {
                    tx.put(TreeName::Meta, super::keys::STATUS_BOARD, &enc(&b, "meta")?)?
                }
                P::Incident(i) => tx.put(
                    TreeName::Meta,
                    &super::keys::incident_key(i.ticket.num()),
                    &enc(&i, "meta")?,
                )?,
                P::LinkGeneration(id, g) => tx.put(
                    TreeName::Meta,
                    &super::keys::link_gen_key(id.num()),
                    &be64(g),
                )?,
                P::CustomerVisible(id, seqs) => tx.put(
                    TreeName::Meta,
                    &super::keys::visible_key(id.num()),
                    &enc(&seqs, "meta")?,
                )?,
            }
        }
        Write::MailThread(id, message_id) => {
            tx.put(
                TreeName::Meta,
                &super::keys::mail_thread_key(&id),
                message_id.as_bytes(),
            )?;
        }
        Write::Branch(key, b) => {
            tx.put(
                TreeName::Meta,
                &super::keys::branch_key(&key),
                &enc(&b, "meta")?,
            )?;
        }
        Write::Silenced(alert) => {
            let seq = counter(tx, SILENCED_SEQ)? + 1;
            tx.put(TreeName::Meta, SILENCED_SEQ, &be64(seq))?;
            tx.put(TreeName::Silenced, &be64(seq), &enc(&alert, "silenced")?)?;
        }
    }
    Ok(())
}
