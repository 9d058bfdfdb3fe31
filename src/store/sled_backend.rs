//! The embedded backend: each tree of [`TreeName`] a sled tree in the data
//! directory, a transaction a sled transaction over the trees it names, and
//! durability one `flush` of sled's log followed by an `fdatasync` of it.
//!
//! sled 0.34's `flush` writes its log with `sync_file_range` alone (checked
//! with `strace` on Linux 6.x, ext4): that waits for the pages to reach the
//! device, but neither commits the file's new length (the log grows at its
//! end) nor empties the drive's write cache; its own `fsync` comes from a
//! background thread every 500 ms. So after a power cut the last half second
//! of flushed writes could be gone. The `fdatasync` after each flush closes
//! that: a write is answered only once the disk has it (BENCHMARKS.md has
//! the cost).

use std::cell::RefCell;
use std::ops::Bound;
use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Transactional, Tree};

use super::kv::{owned, Backend, Read, Scan, SnapshotBody, TreeName, Tx, TxBody};
use crate::error::StoreError;

/// The trees of one sled database.
#[derive(Clone, Debug)]
pub(super) struct SledBackend {
    db: sled::Db,
    /// By [`TreeName::code`].
    trees: Vec<Tree>,
    /// sled's log file (`db` in the folder), synced after each flush.
    log: std::sync::Arc<std::fs::File>,
    /// Held for writing around each transaction, for reading by a
    /// snapshot: sled's reads outside a transaction see each key as it is
    /// now (sled applies a transaction's writes one key after another), so
    /// a snapshot keeps transactions out while it reads, and waits for the
    /// one in progress (not for the flush, which is outside it).
    gate: std::sync::Arc<std::sync::RwLock<()>>,
}

impl SledBackend {
    /// Opens sled's files at `path` (the caller has checked the folder),
    /// with a page cache of `cache` bytes.
    pub(super) fn open(path: &Path, cache: u64) -> Result<SledBackend, StoreError> {
        let shown = path.display().to_string();
        let config = sled::Config::new().path(path).cache_capacity(cache);
        // sled may panic on some corrupt files rather than return an error.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
            .map_err(|_| StoreError::NotOurs {
                path: shown.clone(),
                reason: "sled could not read it (the files are corrupt)".into(),
            })?;
        let db = opened.map_err(|e| match &e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked {
                    path: shown.clone(),
                }
            }
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::NotOurs {
                path: shown.clone(),
                reason: e.to_string(),
            },
            _ => StoreError::Open {
                path: shown.clone(),
                source: e,
            },
        })?;
        // Opened in the order stores have always opened them.
        let mut opened: Vec<(TreeName, Tree)> = Vec::with_capacity(TreeName::ALL.len());
        for t in TreeName::ALL {
            opened.push((t, db.open_tree(t.as_str())?));
        }
        opened.sort_by_key(|(t, _)| t.code());
        let log = std::fs::File::open(path.join("db")).map_err(|e| StoreError::Open {
            path: shown.clone(),
            source: sled::Error::Io(e),
        })?;
        Ok(SledBackend {
            trees: opened.into_iter().map(|(_, tree)| tree).collect(),
            db,
            log: std::sync::Arc::new(log),
            gate: Default::default(),
        })
    }

    fn tree(&self, t: TreeName) -> &Tree {
        &self.trees[t.code() as usize]
    }
}

impl Read for SledBackend {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree(tree).get(key)?.map(|v| v.to_vec()))
    }
}

impl Backend for SledBackend {
    fn scan(
        &self,
        tree: TreeName,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
    ) -> Scan<'_> {
        let iter = self
            .tree(tree)
            .range::<Vec<u8>, _>((owned(from), owned(to)));
        let map = |r: Result<(sled::IVec, sled::IVec), sled::Error>| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::from)
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }

    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree(tree).insert(key, value)?;
        Ok(())
    }

    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError> {
        self.tree(tree).remove(key)?;
        Ok(())
    }

    fn delete_many(&self, tree: TreeName, keys: &[&[u8]]) -> Result<(), StoreError> {
        // One batch: one wait for sled's lock, not one per key.
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(*k);
        }
        self.tree(tree).apply_batch(batch)?;
        Ok(())
    }

    fn count(&self, tree: TreeName) -> Result<usize, StoreError> {
        Ok(self.tree(tree).len())
    }

    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), StoreError> {
        let body = RefCell::new(body);
        // Taken before sled's transaction, never inside it: sled holds a
        // lock of its own (global to the process) while the body runs, which
        // a snapshot's reads may need; taking the gate inside would deadlock
        // with a reader (a test showed it). So a snapshot waits for the
        // transaction in progress (one batch's decisions and writes, never
        // the flush, nor the batches queued behind it).
        // A poisoned gate guards nothing of its own: go on.
        let _writing = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let res = self.trees[..].transaction(|views: &Vec<TransactionalTree>| {
            let tx = SledTx {
                views,
                failure: RefCell::new(None),
            };
            let out = (body.borrow_mut())(&tx);
            if let Some(e) = tx.failure.borrow_mut().take() {
                return Err(ConflictableTransactionError::from(e));
            }
            out.map_err(ConflictableTransactionError::Abort)
        });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    }

    fn snapshot(&self, body: &mut SnapshotBody<'_>) -> Result<(), StoreError> {
        let _reading = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let me: std::sync::Arc<dyn Backend> = std::sync::Arc::new(self.clone());
        body(&me)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        // What sled's flush leaves out (see the module's note): the log's
        // length and the drive's cache.
        self.log.sync_data().map_err(sled::Error::Io)?;
        Ok(())
    }

    fn describe(&self) -> String {
        "sled".into()
    }

    /// sled's files are locked by one process: it holds every lease.
    fn lease(
        &self,
        _name: &str,
        _holder: &str,
        _ttl: std::time::Duration,
    ) -> Result<Option<u64>, StoreError> {
        Ok(Some(1))
    }

    fn release(&self, _name: &str, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The trees inside a sled transaction. A sled failure met while reading or
/// writing is kept (for the transaction to retry a conflict or give up on
/// storage) and reported to the caller as a conflict.
struct SledTx<'a> {
    views: &'a Vec<TransactionalTree>,
    failure: RefCell<Option<UnabortableTransactionError>>,
}

impl SledTx<'_> {
    fn keep<T>(&self, r: Result<T, UnabortableTransactionError>) -> Result<T, StoreError> {
        r.map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            StoreError::Conflict
        })
    }
}

impl Read for SledTx<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let got = self.keep(self.views[tree.code() as usize].get(key))?;
        Ok(got.map(|v| v.to_vec()))
    }
}

impl Tx for SledTx<'_> {
    fn put(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.keep(self.views[tree.code() as usize].insert(key, value))?;
        Ok(())
    }

    fn delete(&self, tree: TreeName, key: &[u8]) -> Result<(), StoreError> {
        self.keep(self.views[tree.code() as usize].remove(key))?;
        Ok(())
    }
}
