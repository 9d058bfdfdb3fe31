//! The seam between the store's records and the database that keeps them:
//! ordered trees of byte keys and values, read and written one key at a
//! time inside a transaction, and scanned in key order outside one.
//!
//! Everything above this file (the keys, the engine's reads, applying a
//! batch, the outbox, queries, figures, export) is written once over these
//! traits; a backend ([`super::sled`], or PostgreSQL) only implements them.
//! Keys compare as unsigned bytes, shortest first on a common prefix, as
//! sled's do and as PostgreSQL's `bytea` does.

use std::ops::Bound;

use crate::error::StoreError;

/// The trees of the store. Their names are those of sled's trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeName {
    Meta,
    Tickets,
    Timeline,
    ByState,
    ByTeam,
    Outbox,
    Groups,
    Silenced,
    MailOutbox,
    Idempotency,
    JobOutbox,
    Runs,
    Broken,
    Deploys,
    DeadLetters,
    Adapter,
    /// Orders for Alertmanager's silences, waiting to be delivered.
    AmOutbox,
}

impl TreeName {
    /// Every tree, in the order stores have always opened them.
    pub const ALL: [TreeName; 17] = [
        TreeName::Meta,
        TreeName::Tickets,
        TreeName::Timeline,
        TreeName::ByState,
        TreeName::ByTeam,
        TreeName::Outbox,
        TreeName::MailOutbox,
        TreeName::Idempotency,
        TreeName::JobOutbox,
        TreeName::Adapter,
        TreeName::Runs,
        TreeName::Broken,
        TreeName::Deploys,
        TreeName::DeadLetters,
        TreeName::Groups,
        TreeName::Silenced,
        TreeName::AmOutbox,
    ];

    /// The tree's name, as sled calls it and as export and errors show it.
    pub fn as_str(self) -> &'static str {
        match self {
            TreeName::Meta => "meta",
            TreeName::Tickets => "tickets",
            TreeName::Timeline => "timeline",
            TreeName::ByState => "by_state",
            TreeName::ByTeam => "by_team",
            TreeName::Outbox => "outbox",
            TreeName::Groups => "groups",
            TreeName::Silenced => "silenced",
            TreeName::MailOutbox => "mail_outbox",
            TreeName::Idempotency => "idempotency",
            TreeName::JobOutbox => "job_outbox",
            TreeName::Runs => "runs",
            TreeName::Broken => "broken",
            TreeName::Deploys => "deploys",
            TreeName::DeadLetters => "dead_letters",
            TreeName::Adapter => "adapter",
            TreeName::AmOutbox => "am_outbox",
        }
    }

    /// A small number for the tree, stable across versions (PostgreSQL
    /// keeps it in each row).
    pub fn code(self) -> i16 {
        match self {
            TreeName::Meta => 0,
            TreeName::Tickets => 1,
            TreeName::Timeline => 2,
            TreeName::ByState => 3,
            TreeName::ByTeam => 4,
            TreeName::Outbox => 5,
            TreeName::Groups => 6,
            TreeName::Silenced => 7,
            TreeName::MailOutbox => 8,
            TreeName::Idempotency => 9,
            TreeName::JobOutbox => 10,
            TreeName::Runs => 11,
            TreeName::Broken => 12,
            TreeName::Deploys => 13,
            TreeName::DeadLetters => 14,
            TreeName::Adapter => 15,
            TreeName::AmOutbox => 16,
        }
    }

    pub fn from_code(code: i16) -> Option<TreeName> {
        TreeName::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn from_name(name: &[u8]) -> Option<TreeName> {
        TreeName::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == name)
    }
}

/// One record: key and value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Records in key order (or reverse), read lazily.
pub type Scan<'a> = Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + 'a>;

/// Reads one key. Inside a transaction, a failure of the database is kept
/// by the transaction (which retries a conflict or gives up) and shown to
/// the reader as [`StoreError::Conflict`].
pub trait Read {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Reads and writes one key at a time: a transaction's view of the trees.
pub trait Tx: Read {
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError>;

    /// Whether a read of a key this transaction has not seen yet costs a
    /// round trip, so that reading keys ahead in bulk ([`Tx::prefetch`])
    /// pays. `false` (sled's reads are local): nothing is read ahead.
    fn reads_ahead(&self) -> bool {
        false
    }

    /// What the transaction already knows of a key without asking the
    /// database: `Some(value or None)` once read or written, `None` when
    /// unknown.
    fn known(&self, _tree: TreeName, _key: &[u8]) -> Option<Option<Vec<u8>>> {
        None
    }

    /// Reads `keys` into the transaction in one go (in bulk), so that
    /// later [`Read::get`]s of them cost nothing. A key written by the
    /// transaction keeps its written value.
    fn prefetch(&self, _keys: &[(TreeName, Vec<u8>)]) -> Result<(), StoreError> {
        Ok(())
    }

    /// A guess at a key's value without asking the database: what this
    /// instance last read or wrote there, which another instance may have
    /// changed since (`Some(None)`: absent then). Only for rehearsing a
    /// batch to learn which keys it reads: nothing is decided on it.
    fn hint(&self, _tree: TreeName, _key: &[u8]) -> Option<Option<Vec<u8>>> {
        None
    }
}

/// The body of a transaction: it may run more than once (a conflict is
/// retried from the start), so it keeps no state between runs but what it
/// resets itself. Its error aborts the transaction and is returned.
pub type TxBody<'a> = dyn FnMut(&dyn Tx) -> Result<(), StoreError> + 'a;

/// The body of a snapshot read: it gets the backend to read through.
pub type SnapshotBody<'a> = dyn FnMut(&std::sync::Arc<dyn Backend>) -> Result<(), StoreError> + 'a;

/// A database that keeps the trees.
pub trait Backend: Read + Send + Sync + std::fmt::Debug {
    /// The records of `tree` between `from` and `to`, in key order, or in
    /// reverse order when `reverse`.
    fn scan(&self, tree: TreeName, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool)
        -> Scan<'_>;

    /// Writes outside a transaction (each write atomic on its own).
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError>;

    /// Removes many keys in one write (atomic as a whole).
    fn delete_many(&self, tree: TreeName, keys: &[&[u8]]) -> Result<(), StoreError>;

    /// How many records `tree` holds.
    fn count(&self, tree: TreeName) -> Result<usize, StoreError>;

    /// Removes `keys` of `tree` and adds how many of them were there to
    /// the big-endian u64 counter at `counter` in `meta`, atomically; each
    /// removed key is counted once, also when two callers remove it at the
    /// same time. By default in one [`Backend::transact`].
    fn remove_counted(
        &self,
        tree: TreeName,
        keys: &[&[u8]],
        counter: &[u8],
    ) -> Result<(), StoreError> {
        self.transact(&mut |tx| {
            let mut gone: u64 = 0;
            for k in keys {
                if tx.get(tree, k)?.is_some() {
                    tx.delete(tree, k)?;
                    gone += 1;
                }
            }
            if gone == 0 {
                return Ok(());
            }
            let n = match tx.get(TreeName::Meta, counter)? {
                Some(v) => super::keys::read_u64(&v, "meta")?,
                None => 0,
            };
            tx.put(
                TreeName::Meta,
                counter,
                &n.saturating_add(gone).to_be_bytes(),
            )
        })
    }

    /// Runs `body` in one serialisable transaction over every tree, and
    /// commits what it wrote, or nothing when it fails.
    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), StoreError>;

    /// Runs `body` on a consistent view of the trees: every read through
    /// the backend it is given sees the same committed state, none of a
    /// transaction half applied. For short reads (a page, a ticket, the
    /// counters): sled holds commits back while it runs. Only reads may be
    /// made through it.
    fn snapshot(&self, body: &mut SnapshotBody<'_>) -> Result<(), StoreError>;

    /// Makes everything committed so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// Which database this is, for `check`, logs and `/readyz`.
    fn describe(&self) -> String;

    /// Takes or keeps the lease `name` for `holder` until `ttl` from now by
    /// the database's clock, unless another holder's lease is still
    /// running. The token it returns grows each time the lease changes
    /// hands (a fencing token); `None`: another holder has it.
    fn lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<u64>, StoreError>;

    /// Gives the lease up at once, if `holder` has it (a clean stop).
    fn release(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// A bound that owns its key (a backend keeps it past the call).
pub fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The records of `tree` whose keys start with `prefix`.
pub fn scan_prefix<'a>(db: &'a dyn Backend, tree: TreeName, prefix: &[u8]) -> Scan<'a> {
    match prefix_end(prefix) {
        Some(end) => {
            let from = prefix.to_vec();
            // The bounds borrow only for the call: a backend copies them.
            db.scan(tree, Bound::Included(&from), Bound::Excluded(&end), false)
        }
        None => db.scan(tree, Bound::Included(prefix), Bound::Unbounded, false),
    }
}

/// The first key after every key that starts with `prefix` (`None`: there
/// is none, the prefix is empty or all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_codes_and_names_are_unique_and_round_trip() {
        let mut codes: Vec<i16> = TreeName::ALL.iter().map(|t| t.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), TreeName::ALL.len());
        for t in TreeName::ALL {
            assert_eq!(TreeName::from_code(t.code()), Some(t));
            assert_eq!(TreeName::from_name(t.as_str().as_bytes()), Some(t));
        }
    }

    #[test]
    fn the_end_of_a_prefix_is_past_every_key_with_it() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
