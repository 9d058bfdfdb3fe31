//! The delivery queues: pending effects, their retries, the dead letters.

use std::ops::Bound::{Included, Unbounded};

use super::depth;
use super::keys::{be64, decode, encode, read_u64};
use super::kv::TreeName;
use super::{OutboxItem, Queue, Store};
use crate::error::StoreError;

impl Store {
    /// The pending effects of a queue, oldest first, at most `limit`.
    pub fn pending(&self, q: Queue, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.db
            .scan(q.tree(), Unbounded, Unbounded, false)
            .take(limit)
            .map(|r| {
                let (_, v) = r?;
                decode(&v, "outbox")
            })
            .collect()
    }

    /// The pending effects of a queue committed after `seq`, oldest first,
    /// at most `limit`: how a worker takes in what is new.
    pub fn pending_after(
        &self,
        q: Queue,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let Some(from) = seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.db
            .scan(q.tree(), Included(&be64(from)), Unbounded, false)
            .take(limit)
            .map(|r| {
                let (_, v) = r?;
                decode(&v, "outbox")
            })
            .collect()
    }

    /// The pending chat posts, oldest first, at most `limit`.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.pending(Queue::Chat, limit)
    }

    /// How many effects wait in a queue, from its counter (see
    /// `store/depth.rs`); 0 when it cannot be read.
    pub fn queue_len(&self, q: Queue) -> usize {
        self.queue_depth(q).unwrap_or(0)
    }

    /// Chat posts waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.queue_len(Queue::Chat)
    }

    /// The highest sequence number a queue ever allocated.
    pub fn last_seq(&self, q: Queue) -> Result<u64, StoreError> {
        match self.db.get(TreeName::Meta, q.seq_key())? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }

    /// The highest chat outbox sequence number ever allocated.
    pub fn outbox_last_seq(&self) -> Result<u64, StoreError> {
        self.last_seq(Queue::Chat)
    }

    /// Removes a delivered effect.
    pub fn done(&self, q: Queue, seq: u64) -> Result<(), StoreError> {
        self.done_all(q, &[seq])
    }

    /// Removes delivered effects, and counts them off the queue's depth,
    /// in one transaction (one wait for sled's lock, not one per effect).
    pub fn done_all(&self, q: Queue, seqs: &[u64]) -> Result<(), StoreError> {
        let keys: Vec<[u8; 8]> = seqs.iter().map(|s| be64(*s)).collect();
        depth::remove(self.db.as_ref(), q.tree(), &keys)
    }

    /// Removes a delivered chat post.
    pub fn outbox_done(&self, seq: u64) -> Result<(), StoreError> {
        self.done(Queue::Chat, seq)
    }

    /// Records a failed attempt on an effect that will be retried.
    pub fn retry(&self, q: Queue, item: &OutboxItem) -> Result<(), StoreError> {
        let value = encode(item, "outbox")?;
        self.db
            .transact(&mut |tx| depth::put(tx, q.tree(), &be64(item.seq), &value))
    }

    /// Moves an effect that can never be delivered to the dead letters.
    pub fn dead_letter(&self, q: Queue, item: &OutboxItem) -> Result<(), StoreError> {
        let value = encode(item, "dead_letters")?;
        // Dead letters of every queue share a tree: key by kind too.
        let mut k = vec![q as u8];
        k.extend_from_slice(&be64(item.seq));
        self.db.transact(&mut |tx| {
            depth::delete(tx, q.tree(), &[be64(item.seq)])?;
            depth::put(tx, TreeName::DeadLetters, &k, &value)
        })
    }

    pub fn dead_letters(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.db
            .scan(TreeName::DeadLetters, Unbounded, Unbounded, false)
            .map(|r| decode(&r?.1, "dead_letters"))
            .collect()
    }
}
