//! How many records each delivery queue and the dead letters hold, kept as
//! counters in `meta` in the same transaction as every write that adds or
//! removes one, so that a scrape (`opsbot_outbox_depth`,
//! `opsbot_dead_letters`) or a drain reads one key, not the whole queue.
//!
//! A counter changes only by what a write really changed: adding a key
//! that was not there, removing one that was. Stores made before the
//! depths were kept get them counted once, from the trees, when they open.
//!
//! Each tree has two counters: what was added (less what was removed
//! before the split, in stores that had one counter), and what was
//! removed; its depth is the difference. The commit thread adds, the
//! delivery workers remove: with one counter every delivery recorded while
//! a batch was being decided made PostgreSQL refuse that batch's commit
//! (both wrote the same row) and decide it again; with two, neither writes
//! what the other reads.

use super::keys::{be64, read_u64};
use super::kv::{TreeName, Tx};
use super::{Queue, Store};
use crate::error::StoreError;

/// Set once the depths have been counted from the trees.
const COUNTED: &[u8] = b"depths_counted";

/// The trees whose records are counted.
const COUNTED_TREES: [TreeName; 5] = [
    TreeName::Outbox,
    TreeName::MailOutbox,
    TreeName::JobOutbox,
    TreeName::AmOutbox,
    TreeName::DeadLetters,
];

/// The counter of what was added to `tree`, in `meta`.
fn key(tree: TreeName) -> Vec<u8> {
    format!("depth:{}", tree.as_str()).into_bytes()
}

/// The counter of what was removed from `tree`, in `meta`.
fn gone_key(tree: TreeName) -> Vec<u8> {
    format!("depth_gone:{}", tree.as_str()).into_bytes()
}

fn read(v: &[u8]) -> Result<u64, StoreError> {
    read_u64(v, "meta")
}

/// Adds `by` to the counter at `k`, inside a transaction.
fn bump(tx: &dyn Tx, k: &[u8], by: u64) -> Result<(), StoreError> {
    if by == 0 {
        return Ok(());
    }
    let n = match tx.get(TreeName::Meta, k)? {
        Some(v) => read(&v)?,
        None => 0,
    };
    tx.put(TreeName::Meta, k, &be64(n.saturating_add(by)))
}

/// Counts `n` records added to `tree`.
fn add(tx: &dyn Tx, tree: TreeName, n: u64) -> Result<(), StoreError> {
    bump(tx, &key(tree), n)
}

/// Writes `value` at `key` of a counted tree, counting it if it is new.
pub(super) fn put(tx: &dyn Tx, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    let new = tx.get(tree, key)?.is_none();
    tx.put(tree, key, value)?;
    if new {
        add(tx, tree, 1)?;
    }
    Ok(())
}

/// Writes a key known to be new (a freshly allocated sequence number).
pub(super) fn put_new(
    tx: &dyn Tx,
    tree: TreeName,
    key: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    tx.put(tree, key, value)?;
    add(tx, tree, 1)
}

/// Removes `keys` of a counted tree, counting those that were there. The
/// keys and the counter are read in one go where reads are round trips.
pub(super) fn delete<K: AsRef<[u8]>>(
    tx: &dyn Tx,
    tree: TreeName,
    keys: &[K],
) -> Result<(), StoreError> {
    let counter = gone_key(tree);
    if tx.reads_ahead() {
        let mut wanted: Vec<(TreeName, Vec<u8>)> =
            keys.iter().map(|k| (tree, k.as_ref().to_vec())).collect();
        wanted.push((TreeName::Meta, counter.clone()));
        tx.prefetch(&wanted)?;
    }
    let mut gone: u64 = 0;
    for k in keys {
        if tx.get(tree, k.as_ref())?.is_some() {
            tx.delete(tree, k.as_ref())?;
            gone = gone.saturating_add(1);
        }
    }
    bump(tx, &counter, gone)
}

/// Removes `keys` of a counted tree outside a batch (what a delivery
/// worker delivered), counting those that were there.
pub(super) fn remove(
    db: &dyn super::kv::Backend,
    tree: TreeName,
    keys: &[[u8; 8]],
) -> Result<(), StoreError> {
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    db.remove_counted(tree, &keys, &gone_key(tree))
}

impl Store {
    /// How many records `tree` holds, from its counter.
    fn depth(&self, tree: TreeName) -> Result<usize, StoreError> {
        let counter = |k: &[u8]| match self.db.get(TreeName::Meta, k)? {
            Some(v) => read(&v),
            None => Ok(0),
        };
        // Read in this order: a removal is counted after its record was
        // added, so the difference is never below what the tree held.
        let gone = counter(&gone_key(tree))?;
        let added = counter(&key(tree))?;
        Ok(usize::try_from(added.saturating_sub(gone)).unwrap_or(usize::MAX))
    }

    /// How many effects wait in a queue: one read, whatever its length.
    pub fn queue_depth(&self, q: Queue) -> Result<usize, StoreError> {
        self.depth(q.tree())
    }

    /// How many effects failed for good: one read.
    pub fn dead_letter_count(&self) -> Result<usize, StoreError> {
        self.depth(TreeName::DeadLetters)
    }

    /// Stores made before the depths were kept get them counted once.
    pub(super) fn count_depths_once(&self) -> Result<(), StoreError> {
        if self.db.get(TreeName::Meta, COUNTED)?.is_some() {
            return Ok(());
        }
        for tree in COUNTED_TREES {
            let n = self.db.count(tree)?;
            self.db.put(TreeName::Meta, &key(tree), &be64(n as u64))?;
            self.db.delete(TreeName::Meta, &gone_key(tree))?;
        }
        self.db.put(TreeName::Meta, COUNTED, b"1")?;
        self.db.flush()
    }

    /// Makes this store look like one from before the depths were kept.
    #[cfg(test)]
    pub(crate) fn forget_depths(&self) -> Result<(), StoreError> {
        for tree in COUNTED_TREES {
            self.db.delete(TreeName::Meta, &key(tree))?;
            self.db.delete(TreeName::Meta, &gone_key(tree))?;
        }
        self.db.delete(TreeName::Meta, COUNTED)
    }

    /// Every counted tree's counter beside a full count of its records.
    #[cfg(test)]
    pub(crate) fn depths_and_recounts(&self) -> Vec<(TreeName, usize, usize)> {
        COUNTED_TREES
            .iter()
            .map(|t| (*t, self.depth(*t).unwrap(), self.db.count(*t).unwrap()))
            .collect()
    }
}
