//! The engine's reads, written once: over [`Trees`] of anything that can
//! [`Get`] a key, which both a plain sled tree (the store's committed state)
//! and a tree inside a transaction (while the engine decides) can.

use std::cell::RefCell;

use serde::Deserialize;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use sled::{IVec, Tree};

use super::keys::{
    be64, decode, decode_id, load_key, member_key, read_u64, RUN_SEQ, SILENCES, TICKET_SEQ,
};
use crate::domain::rotation::Override;
use crate::domain::run::{Deployed, Run, RunId};
use crate::domain::{TeamName, Ticket, TicketId};
use crate::engine::{GroupRecord, Member, SilenceBook, View};
use crate::error::StoreError;

/// Declares [`Trees`] from one list of its trees, in the order a
/// transaction takes them.
macro_rules! trees {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {
        /// The trees the engine reads and a batch writes, all in one
        /// transaction: `T` is a [`Tree`] outside it, an [`InTx`] inside.
        #[derive(Clone, Debug)]
        pub(super) struct Trees<T> {
            $($(#[$doc])* pub(super) $name: T,)+
        }

        impl<T> Trees<T> {
            /// Every tree, in the struct's order.
            pub(super) fn each(&self) -> Vec<&T> {
                vec![$(&self.$name),+]
            }

            /// The trees from values given in the struct's order.
            pub(super) fn collect(mut it: impl Iterator<Item = T>) -> Trees<T> {
                Trees {
                    $($name: it.next().expect(concat!("a tree for `", stringify!($name), "`")),)+
                }
            }
        }
    };
}

trees! {
    meta,
    tickets,
    timeline,
    by_state,
    by_team,
    outbox,
    groups,
    silenced,
    mail_outbox,
    idempotency,
    job_outbox,
    runs,
    broken,
    deploys,
}

/// A tree one can read a key from.
pub(super) trait Get {
    fn get_raw(&self, key: &[u8]) -> Result<Option<IVec>, StoreError>;
}

impl Get for Tree {
    fn get_raw(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        Ok(self.get(key)?)
    }
}

/// A tree inside a transaction. A sled failure met while reading is kept
/// (for the closure to return, so that sled retries a conflict or gives up
/// on storage) and reported to the reader as a conflict.
pub(super) struct InTx<'a> {
    pub(super) tree: &'a TransactionalTree,
    pub(super) failure: &'a RefCell<Option<UnabortableTransactionError>>,
}

impl std::ops::Deref for InTx<'_> {
    type Target = TransactionalTree;
    fn deref(&self) -> &TransactionalTree {
        self.tree
    }
}

impl Get for InTx<'_> {
    fn get_raw(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        self.tree.get(key).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            StoreError::Conflict
        })
    }
}

impl<T: Get> Trees<T> {
    fn read<V: for<'de> Deserialize<'de>>(
        tree: &T,
        key: &[u8],
        name: &'static str,
    ) -> Result<Option<V>, StoreError> {
        tree.get_raw(key)?.map(|v| decode(&v, name)).transpose()
    }

    /// A u64 counter of `meta` (0 when unset).
    pub(super) fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.meta.get_raw(key)? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }

    pub(super) fn ticket_by_number(&self, num: u64) -> Result<Option<Ticket>, StoreError> {
        Self::read(&self.tickets, &be64(num), "tickets")
    }
}

impl<T: Get> View for Trees<T> {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.ticket_by_number(id.num())
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        self.count(TICKET_SEQ)
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        Self::read(&self.groups, key.as_bytes(), "groups")
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        Self::read(&self.groups, &member_key(group, fingerprint), "groups")
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        self.idempotency
            .get_raw(key.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        Self::read(&self.runs, &be64(id.0), "runs")
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        self.count(RUN_SEQ)
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        self.broken
            .get_raw(job.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        Self::read(&self.deploys, format!("lock:{key}").as_bytes(), "deploys")
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        Ok(
            Self::read(&self.deploys, format!("hist:{key}").as_bytes(), "deploys")?
                .unwrap_or_default(),
        )
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        Ok(Self::read(&self.meta, SILENCES, "meta")?.unwrap_or_default())
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        Ok(
            Self::read(&self.meta, format!("oncall:{team}").as_bytes(), "meta")?
                .unwrap_or_default(),
        )
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self.meta.get_raw(format!("marker:{key}").as_bytes())? {
            Some(v) => Ok(Some(read_u64(&v, "meta")? as i64)),
            None => Ok(None),
        }
    }

    fn load(&self, user: &crate::domain::UserName) -> Result<u64, StoreError> {
        self.count(&load_key(user))
    }
}
