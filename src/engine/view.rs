//! The seam with the store: the reads the engine makes while deciding
//! ([`View`], inside the write transaction) and for queries ([`QueryView`]).

use crate::domain::{TeamName, Ticket, TicketId, TicketState, TimelineEntry, Timestamp, UserName};
use crate::engine::effect::{GroupRecord, Member, SilenceBook};
use crate::error::StoreError;

/// Reads the engine may make while deciding (inside the write transaction).
pub trait View {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;
    /// The highest ticket number ever allocated (0 when none).
    fn last_ticket_number(&self) -> Result<u64, StoreError>;
    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError>;
    /// One alert of a group, by fingerprint.
    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError>;
    fn silences(&self) -> Result<SilenceBook, StoreError>;
    /// The ticket a support request with this idempotency key opened.
    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError>;
    fn run(
        &self,
        id: crate::domain::run::RunId,
    ) -> Result<Option<crate::domain::run::Run>, StoreError>;
    /// The highest run number ever allocated (0 when none).
    fn last_run_number(&self) -> Result<u64, StoreError>;
    /// The ticket open for a job failing on its main ref.
    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError>;
    /// Who holds the deploy lock of `service/env`.
    fn lock(&self, key: &str) -> Result<Option<crate::domain::run::RunId>, StoreError>;
    /// The succeeded deploys of `service/env`, oldest first.
    fn history(&self, key: &str) -> Result<Vec<crate::domain::run::Deployed>, StoreError>;
    /// A team's on-call overrides.
    fn overrides(
        &self,
        team: &TeamName,
    ) -> Result<Vec<crate::domain::rotation::Override>, StoreError>;
    /// A timer's mark.
    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError>;
    /// How many tickets are assigned to or in progress with `user`.
    fn load(&self, user: &UserName) -> Result<u64, StoreError>;
    /// The key the customers' page links are signed with (`None` until the
    /// store made one).
    fn link_key(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// The generation of a ticket's customer link (0 until revoked).
    fn link_generation(&self, id: &TicketId) -> Result<u64, StoreError>;
    /// The seqs of a ticket's timeline entries its customer may see.
    fn customer_visible(&self, id: &TicketId) -> Result<Vec<u32>, StoreError>;
    /// The status page's services and their recent changes.
    fn status_board(&self) -> Result<crate::domain::status::StatusBoard, StoreError>;
    /// A ticket's public incident, if it was made public.
    fn incident(
        &self,
        id: &TicketId,
    ) -> Result<Option<crate::domain::status::PublicIncident>, StoreError>;
    /// The maintenance windows.
    fn maintenance(&self) -> Result<crate::domain::maintenance::MaintenanceBook, StoreError>;
    /// The heartbeats' records.
    fn heartbeats(&self) -> Result<crate::domain::heartbeat::HeartbeatBook, StoreError>;
    /// What the code loop keeps of a branch (`repo/branch`).
    fn branch(&self, key: &str) -> Result<Option<crate::domain::code::BranchState>, StoreError>;
}

/// What `/ticket list` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `None`: every state but `closed`.
    pub state: Option<TicketState>,
    pub team: Option<TeamName>,
    pub assignee: Option<UserName>,
}

/// Which part of a list to read: newest first, `offset` tickets skipped,
/// at most `limit`; with `before`, only tickets numbered below it (a
/// cursor: the last number of the page before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListAt {
    pub offset: u64,
    pub limit: usize,
    pub before: Option<u64>,
}

impl ListAt {
    /// The first `limit` tickets.
    pub fn first(limit: usize) -> ListAt {
        ListAt {
            offset: 0,
            limit,
            before: None,
        }
    }
}

/// Reads for queries, outside any transaction.
pub trait QueryView: View {
    fn timeline(&self, id: &TicketId) -> Result<Vec<TimelineEntry>, StoreError>;
    /// The ticket's timeline from entry `seq` on: what `/ticket show`
    /// shows, read without the older entries.
    fn timeline_from(&self, id: &TicketId, seq: u32) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut all = self.timeline(id)?;
        all.retain(|e| e.seq >= seq);
        Ok(all)
    }
    /// Matching tickets, newest first, the part `at` asks for, with the
    /// total count of the filter's tickets (whatever the part).
    fn list(&self, filter: &ListFilter, at: &ListAt) -> Result<(Vec<Ticket>, u64), StoreError>;
    /// The newest runs, newest first.
    fn recent_runs(&self, limit: usize) -> Result<Vec<crate::domain::run::Run>, StoreError>;
    /// Every ticket (of `team`, when given) with its timeline, as a report
    /// reads them; tickets last touched before `from` may be left out.
    fn report_rows(
        &self,
        from: Timestamp,
        team: Option<&TeamName>,
    ) -> Result<Vec<crate::report::Row>, StoreError>;
}
