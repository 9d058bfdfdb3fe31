//! Reads outside any transaction: queries (lists, timelines, reports,
//! autocomplete), the due index, and what adapters and exports walk.

use std::ops::Bound::{Excluded, Included, Unbounded};

use super::keys::{be64, decode, due_key, member_prefix, num_suffix, timeline_key, DUE, MEMBER};
use super::kv::{scan_prefix, TreeName};
use super::Store;
use crate::domain::alert::Alert;
use crate::domain::rotation::Override;
use crate::domain::run::{Deployed, Run, RunId};
use crate::domain::{TeamName, Ticket, TicketId, TicketState, TimelineEntry, Timestamp};
use crate::engine::{GroupRecord, ListAt, ListFilter, Member, QueryView, SilenceBook, View};
use crate::error::StoreError;

impl Store {
    /// Runs `read` on a consistent snapshot of the store: what it reads
    /// (a list's index, its counts, the tickets) is all of one committed
    /// state, none of a batch half applied. For short reads: on sled the
    /// commit thread's next transaction waits for it (see the backend).
    pub fn snapshot<R>(&self, read: impl FnOnce(&Store) -> R) -> Result<R, StoreError> {
        let mut read = Some(read);
        let mut out = None;
        self.db.snapshot(&mut |db| {
            let view = Store {
                db: db.clone(),
                at: self.at.clone(),
                handles: self.handles.clone(),
            };
            if let Some(read) = read.take() {
                out = Some(read(&view));
            }
            Ok(())
        })?;
        out.ok_or(StoreError::Conflict)
    }

    /// Tickets whose id or title contains `partial` (lowercase), for
    /// autocomplete: open ones first, newest first, then a closed ticket
    /// whose number was typed. Looks at no more than [`SUGGEST_SCAN`] open
    /// tickets, so it stays quick with many open.
    pub fn suggest_tickets(&self, partial: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        // Newest first, from the list's index: no more read than is looked at.
        let nums = self.list_numbers(&ListFilter::default(), &ListAt::first(SUGGEST_SCAN))?;
        let hit = |t: &Ticket| {
            partial.is_empty()
                || t.id.to_string().to_lowercase().contains(partial)
                || t.title.to_lowercase().contains(partial)
        };
        let mut out = Vec::new();
        for n in nums {
            if out.len() >= limit {
                break;
            }
            if let Some(t) = self.reads().ticket_by_number(n)? {
                if hit(&t) {
                    out.push(t);
                }
            }
        }
        let digits: String = partial.chars().filter(char::is_ascii_digit).collect();
        if out.len() < limit {
            if let Ok(n) = digits.parse::<u64>() {
                if let Some(t) = self.reads().ticket_by_number(n)? {
                    if t.state == TicketState::Closed {
                        out.push(t);
                    }
                }
            }
        }
        Ok(out)
    }

    /// All tickets, in id order.
    pub fn tickets(&self) -> impl Iterator<Item = Result<Ticket, StoreError>> + '_ {
        self.db
            .scan(TreeName::Tickets, Unbounded, Unbounded, false)
            .map(|r| r.and_then(|(_, v)| decode(&v, "tickets")))
    }

    pub fn ticket_count(&self) -> usize {
        self.db.count(TreeName::Tickets).unwrap_or(0)
    }
}

/// How many open tickets autocomplete looks through at most.
pub const SUGGEST_SCAN: usize = 2000;

/// The engine's reads on committed state: those of [`Trees`], written once.
impl View for Store {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.reads().ticket(id)
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        self.reads().last_ticket_number()
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.reads().group(key)
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        self.reads().member(group, fingerprint)
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        self.reads().idempotent(key)
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.reads().run(id)
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        self.reads().last_run_number()
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        self.reads().broken(job)
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        self.reads().lock(key)
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        self.reads().history(key)
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        self.reads().silences()
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        self.reads().overrides(team)
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.reads().marker(key)
    }

    fn maintenance(&self) -> Result<crate::domain::maintenance::MaintenanceBook, StoreError> {
        self.reads().maintenance()
    }

    fn heartbeats(&self) -> Result<crate::domain::heartbeat::HeartbeatBook, StoreError> {
        self.reads().heartbeats()
    }

    fn load(&self, user: &crate::domain::UserName) -> Result<u64, StoreError> {
        self.reads().load(user)
    }

    fn link_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads().link_key()
    }

    fn link_generation(&self, id: &TicketId) -> Result<u64, StoreError> {
        self.reads().link_generation(id)
    }

    fn customer_visible(&self, id: &TicketId) -> Result<Vec<u32>, StoreError> {
        self.reads().customer_visible(id)
    }

    fn status_board(&self) -> Result<crate::domain::status::StatusBoard, StoreError> {
        self.reads().status_board()
    }

    fn incident(
        &self,
        id: &TicketId,
    ) -> Result<Option<crate::domain::status::PublicIncident>, StoreError> {
        self.reads().incident(id)
    }
    fn branch(&self, key: &str) -> Result<Option<crate::domain::code::BranchState>, StoreError> {
        self.reads().branch(key)
    }
}

impl Store {
    /// Tickets with a timer due at or before `now`, earliest first, at most
    /// `limit`: a range scan of the due index, which reads only what is due.
    pub fn due_tickets(
        &self,
        now: Timestamp,
        limit: usize,
        prefix: &str,
    ) -> Result<Vec<TicketId>, StoreError> {
        let end = due_key(now, u64::MAX);
        let mut out = Vec::new();
        for r in self
            .db
            .scan(TreeName::ByState, Included(&[DUE]), Included(&end), false)
            .take(limit)
        {
            let (k, _) = r?;
            if let Some(n) = num_suffix(&k) {
                out.push(TicketId::new(prefix, n));
            }
        }
        Ok(out)
    }

    /// How many tickets have a timer still to fire.
    pub fn timers_pending(&self) -> usize {
        scan_prefix(&*self.db, TreeName::ByState, &[DUE]).count()
    }
}

impl Store {
    /// An adapter's record under `key` (such as a chat message id).
    pub fn adapter_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get(TreeName::Adapter, key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps an adapter's record; durable with the next flush (the commit
    /// thread writes these alongside a batch and flushes them with it: see
    /// `Bot::note`).
    pub fn adapter_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.db
            .put(TreeName::Adapter, key.as_bytes(), value.as_bytes())?;
        Ok(())
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = Result<Run, StoreError>> + '_ {
        self.db
            .scan(TreeName::Runs, Unbounded, Unbounded, false)
            .map(|r| r.and_then(|(_, v)| decode(&v, "runs")))
    }

    /// Every alert group (without its alerts: see [`Store::group_members`]).
    pub fn groups(&self) -> impl Iterator<Item = Result<GroupRecord, StoreError>> + '_ {
        self.db
            .scan(TreeName::Groups, Unbounded, Excluded(&[MEMBER]), false)
            .map(|r| r.and_then(|(_, v)| decode(&v, "groups")))
    }

    /// The alerts of group `key`, by fingerprint.
    pub fn group_members(
        &self,
        key: &str,
    ) -> impl Iterator<Item = Result<(String, Member), StoreError>> + '_ {
        let prefix = member_prefix(key);
        let skip = prefix.len();
        scan_prefix(&*self.db, TreeName::Groups, &prefix).map(move |r| {
            let (k, v) = r?;
            let fp = String::from_utf8_lossy(k.get(skip..).unwrap_or_default()).into_owned();
            Ok((fp, decode(&v, "groups")?))
        })
    }

    /// Every silenced alert kept on record, oldest first.
    pub fn silenced_alerts(&self) -> impl Iterator<Item = Result<Alert, StoreError>> + '_ {
        self.db
            .scan(TreeName::Silenced, Unbounded, Unbounded, false)
            .map(|r| r.and_then(|(_, v)| decode(&v, "silenced")))
    }
}

impl QueryView for Store {
    fn timeline(&self, id: &TicketId) -> Result<Vec<TimelineEntry>, StoreError> {
        scan_prefix(&*self.db, TreeName::Timeline, &be64(id.num()))
            .map(|r| decode(&r?.1, "timeline"))
            .collect()
    }

    fn timeline_from(&self, id: &TicketId, seq: u32) -> Result<Vec<TimelineEntry>, StoreError> {
        let from = timeline_key(id.num(), seq);
        let to = timeline_key(id.num(), u32::MAX);
        self.db
            .scan(
                TreeName::Timeline,
                Included(&from[..]),
                Included(&to[..]),
                false,
            )
            .map(|r| decode(&r?.1, "timeline"))
            .collect()
    }

    /// From the list's index (see `listing.rs`): the total from its
    /// counts, the page from one reverse scan per state, and only the
    /// page's tickets read.
    fn list(&self, filter: &ListFilter, at: &ListAt) -> Result<(Vec<Ticket>, u64), StoreError> {
        let total = self.list_total(filter)?;
        if at.limit == 0 || (at.before.is_none() && at.offset >= total) {
            return Ok((Vec::new(), total));
        }
        let mut found = Vec::with_capacity(at.limit);
        for n in self.list_numbers(filter, at)? {
            if let Some(t) = self.reads().ticket_by_number(n)? {
                found.push(t);
            }
        }
        Ok((found, total))
    }

    fn report_rows(
        &self,
        from: Timestamp,
        team: Option<&TeamName>,
    ) -> Result<Vec<crate::report::Row>, StoreError> {
        let mut rows = Vec::new();
        for t in self.tickets() {
            let t = t?;
            if team.is_some_and(|tm| t.team.as_ref() != Some(tm)) {
                continue;
            }
            // Every entry is at or before the ticket's last update.
            if t.updated_at < from {
                continue;
            }
            let mut entries = Vec::with_capacity(t.timeline_len as usize);
            for r in scan_prefix(&*self.db, TreeName::Timeline, &be64(t.id.num())) {
                entries.push(decode::<crate::report::EntryLite>(&r?.1, "timeline")?);
            }
            rows.push(crate::report::Row::of(&t, entries));
        }
        Ok(rows)
    }

    fn recent_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.db
            .scan(TreeName::Runs, Unbounded, Unbounded, true)
            .take(limit)
            .map(|r| decode(&r?.1, "runs"))
            .collect()
    }
}

impl Store {
    /// The customer's Message-ID that ticket `id`'s mail thread answers, if
    /// the ticket came by mail (the SMTP adapter threads its mail on it).
    pub fn mail_thread(&self, id: &TicketId) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get(TreeName::Meta, &super::keys::mail_thread_key(id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
