//! The engine's reads, written once: over anything that can [`Read`] a key,
//! which both the backend (the store's committed state) and a transaction
//! (while the engine decides) can.

use serde::Deserialize;

use super::keys::{
    be64, decode, decode_id, load_key, member_key, read_u64, RUN_SEQ, SILENCES, TICKET_SEQ,
};
use super::kv::{Read, TreeName};
use crate::domain::rotation::Override;
use crate::domain::run::{Deployed, Run, RunId};
use crate::domain::{TeamName, Ticket, TicketId};
use crate::engine::{GroupRecord, Member, SilenceBook, View};
use crate::error::StoreError;

/// The engine's reads over anything that can [`Read`] a key: the store's
/// committed state, or a transaction's view of it while the engine decides.
pub(super) struct Reads<'a, R: ?Sized>(pub(super) &'a R);

impl<R: Read + ?Sized> Reads<'_, R> {
    fn read<V: for<'de> Deserialize<'de>>(
        &self,
        tree: TreeName,
        key: &[u8],
    ) -> Result<Option<V>, StoreError> {
        self.0
            .get(tree, key)?
            .map(|v| decode(&v, tree.as_str()))
            .transpose()
    }

    /// A u64 counter of `meta` (0 when unset).
    pub(super) fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.0.get(TreeName::Meta, key)? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }

    pub(super) fn ticket_by_number(&self, num: u64) -> Result<Option<Ticket>, StoreError> {
        self.read(TreeName::Tickets, &be64(num))
    }
}

impl<R: Read + ?Sized> View for Reads<'_, R> {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.ticket_by_number(id.num())
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        self.count(TICKET_SEQ)
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.read(TreeName::Groups, key.as_bytes())
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        self.read(TreeName::Groups, &member_key(group, fingerprint))
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        self.0
            .get(TreeName::Idempotency, key.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.read(TreeName::Runs, &be64(id.0))
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        self.count(RUN_SEQ)
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        self.0
            .get(TreeName::Broken, job.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        self.read(TreeName::Deploys, format!("lock:{key}").as_bytes())
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        Ok(self
            .read(TreeName::Deploys, format!("hist:{key}").as_bytes())?
            .unwrap_or_default())
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        Ok(self.read(TreeName::Meta, SILENCES)?.unwrap_or_default())
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        Ok(self
            .read(TreeName::Meta, format!("oncall:{team}").as_bytes())?
            .unwrap_or_default())
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self
            .0
            .get(TreeName::Meta, format!("marker:{key}").as_bytes())?
        {
            Some(v) => Ok(Some(read_u64(&v, "meta")? as i64)),
            None => Ok(None),
        }
    }

    fn load(&self, user: &crate::domain::UserName) -> Result<u64, StoreError> {
        self.count(&load_key(user))
    }

    fn link_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(TreeName::Meta, super::keys::LINK_KEY)
    }

    fn link_generation(&self, id: &TicketId) -> Result<u64, StoreError> {
        self.count(&super::keys::link_gen_key(id.num()))
    }

    fn customer_visible(&self, id: &TicketId) -> Result<Vec<u32>, StoreError> {
        Ok(self
            .read(TreeName::Meta, &super::keys::visible_key(id.num()))?
            .unwrap_or_default())
    }

    fn status_board(&self) -> Result<crate::domain::status::StatusBoard, StoreError> {
        Ok(self
            .read(TreeName::Meta, super::keys::STATUS_BOARD)?
            .unwrap_or_default())
    }

    fn incident(
        &self,
        id: &TicketId,
    ) -> Result<Option<crate::domain::status::PublicIncident>, StoreError> {
        self.read(TreeName::Meta, &super::keys::incident_key(id.num()))
    }
    fn maintenance(&self) -> Result<crate::domain::maintenance::MaintenanceBook, StoreError> {
        Ok(self
            .read(TreeName::Meta, super::keys::MAINTENANCE)?
            .unwrap_or_default())
    }

    fn heartbeats(&self) -> Result<crate::domain::heartbeat::HeartbeatBook, StoreError> {
        Ok(self
            .read(TreeName::Meta, super::keys::HEARTBEATS)?
            .unwrap_or_default())
    }
    fn branch(&self, key: &str) -> Result<Option<crate::domain::code::BranchState>, StoreError> {
        self.read(TreeName::Meta, &super::keys::branch_key(key))
    }
}
