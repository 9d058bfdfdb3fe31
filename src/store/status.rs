//! The public records' side of the store: the link key made once, and the
//! public incidents read for the status page (with their tickets). Written
//! over the [`kv`](super::kv) seam, so the same on sled and PostgreSQL.

use super::keys::{decode, INCIDENT, LINK_KEY};
use super::kv::{scan_prefix, TreeName};
use super::Store;
use crate::domain::status::PublicIncident;
use crate::domain::Ticket;
use crate::engine::View;
use crate::error::StoreError;

/// How many public incidents the status page reads at most (newest first).
pub const MAX_INCIDENTS: usize = 500;

impl Store {
    /// Makes the key the customers' page links are signed with, once: 32
    /// bytes from the operating system's generator, in one transaction, so
    /// that instances sharing a database agree on it.
    pub(crate) fn make_link_key_once(&self) -> Result<(), StoreError> {
        if self.db.get(TreeName::Meta, LINK_KEY)?.is_some() {
            return Ok(());
        }
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| StoreError::Encode {
            tree: "meta",
            detail: format!("no random bytes for the link key: {e}"),
        })?;
        self.db.transact(&mut |tx| {
            if tx.get(TreeName::Meta, LINK_KEY)?.is_none() {
                tx.put(TreeName::Meta, LINK_KEY, &key)?;
            }
            Ok(())
        })?;
        self.db.flush()
    }

    /// The public incidents, newest first, each with its ticket as it
    /// stands (at most [`MAX_INCIDENTS`]).
    pub fn public_incidents(&self) -> Result<Vec<(PublicIncident, Option<Ticket>)>, StoreError> {
        let mut out = Vec::new();
        for pair in scan_prefix(&*self.db, TreeName::Meta, INCIDENT) {
            let (_, v) = pair?;
            let i: PublicIncident = decode(&v, "meta")?;
            out.push(i);
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.published_at));
        out.truncate(MAX_INCIDENTS);
        out.into_iter()
            .map(|i| {
                let t = self.ticket(&i.ticket)?;
                Ok((i, t))
            })
            .collect()
    }
}
