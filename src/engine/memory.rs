//! The engine's view kept in memory: [`MemoryView`] holds what the store
//! would (tickets, timelines, groups and their alerts, runs, marks, the
//! queued effects) in ordered maps, and applies the engine's [`Write`]s the
//! way the store's transaction does. Engine tests run on it, with no sled.

use std::collections::BTreeMap;

use crate::domain::alert::Alert;
use crate::domain::rotation::Override;
use crate::domain::run::{Deployed, Run, RunId};
use crate::domain::{TeamName, Ticket, TicketId, TicketState, TimelineEntry, Timestamp, UserName};
use crate::engine::effect::{Effect, GroupRecord, Member, SilenceBook, Write};
use crate::engine::view::{ListAt, ListFilter, QueryView, View};
use crate::error::StoreError;

/// Everything the engine reads, in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryView {
    tickets: BTreeMap<u64, Ticket>,
    timeline: BTreeMap<(u64, u32), TimelineEntry>,
    ticket_seq: u64,
    /// Groups without their alerts: those are in `members`.
    groups: BTreeMap<String, GroupRecord>,
    members: BTreeMap<(String, String), Member>,
    silences: SilenceBook,
    silenced: Vec<Alert>,
    idempotency: BTreeMap<String, TicketId>,
    runs: BTreeMap<u64, Run>,
    run_seq: u64,
    broken: BTreeMap<String, TicketId>,
    locks: BTreeMap<String, RunId>,
    history: BTreeMap<String, Vec<Deployed>>,
    overrides: BTreeMap<TeamName, Vec<Override>>,
    markers: BTreeMap<String, i64>,
    /// Chat effects queued and not yet marked done, by sequence number.
    outbox: BTreeMap<u64, Effect>,
    outbox_seq: u64,
    /// The other effects (mail, job orders), oldest first.
    queued: Vec<Effect>,
    maintenance: crate::domain::maintenance::MaintenanceBook,
    heartbeats: crate::domain::heartbeat::HeartbeatBook,
    /// The public records (status board, incidents, customer links).
    public: Public,
    branches: BTreeMap<String, crate::domain::code::BranchState>,
}

/// [`MemoryView`]'s public records.
#[derive(Clone, Debug, Default)]
struct Public {
    link_key: Option<Vec<u8>>,
    generations: BTreeMap<u64, u64>,
    visible: BTreeMap<u64, Vec<u32>>,
    board: crate::domain::status::StatusBoard,
    incidents: BTreeMap<u64, crate::domain::status::PublicIncident>,
}

/// A chat effect waiting in [`MemoryView`]'s outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub seq: u64,
    pub effect: Effect,
}

/// Whether a ticket counts toward its assignee's load.
fn loads(t: &Ticket) -> Option<&UserName> {
    match t.state {
        TicketState::Assigned | TicketState::InProgress => t.assignee.as_ref(),
        _ => None,
    }
}

impl MemoryView {
    pub fn new() -> MemoryView {
        MemoryView::default()
    }

    /// A view whose store has made its link key (as every opened store has).
    pub fn with_link_key(key: &[u8]) -> MemoryView {
        let mut m = MemoryView::default();
        m.public.link_key = Some(key.to_vec());
        m
    }

    /// Applies a decision's writes, as the store's transaction does.
    pub fn apply(&mut self, writes: impl IntoIterator<Item = Write>) {
        for w in writes {
            self.write(w);
        }
    }

    fn write(&mut self, w: Write) {
        match w {
            Write::Ticket(t) => {
                let num = t.id.num();
                self.ticket_seq = self.ticket_seq.max(num);
                self.tickets.insert(num, t);
            }
            Write::Timeline(id, e) => {
                self.timeline.insert((id.num(), e.seq), e);
            }
            Write::Effect(effect @ (Effect::Post(_) | Effect::Card(_) | Effect::Page(_))) => {
                self.outbox_seq += 1;
                self.outbox.insert(self.outbox_seq, effect);
            }
            Write::Effect(effect) => self.queued.push(effect),
            Write::Run(run) => {
                self.run_seq = self.run_seq.max(run.id.0);
                self.runs.insert(run.id.0, run);
            }
            Write::Broken(job, Some(id)) => {
                self.broken.insert(job, id);
            }
            Write::Broken(job, None) => {
                self.broken.remove(&job);
            }
            Write::Lock(key, Some(run)) => {
                self.locks.insert(key, run);
            }
            Write::Lock(key, None) => {
                self.locks.remove(&key);
            }
            Write::History(key, list) => {
                self.history.insert(key, list);
            }
            Write::Idempotency(key, id) => {
                self.idempotency.insert(key, id);
            }
            Write::Group(mut g) => {
                for (fp, m) in std::mem::take(&mut g.members) {
                    self.members.insert((g.key.clone(), fp), m);
                }
                self.groups.insert(g.key.clone(), g);
            }
            Write::Member(group, fp, m) => {
                self.members.insert((group, fp), m);
            }
            Write::Silences(book) => self.silences = book,
            Write::Overrides(team, list) => {
                self.overrides.insert(team, list);
            }
            Write::Marker(key, v) => {
                self.markers.insert(key, v);
            }
            Write::Silenced(alert) => self.silenced.push(alert),
            // Job orders wait here without the store's sequence numbers, so
            // there is none to drop; lost runs are tested on the store
            // (`engine_tests/decisions.rs`).
            Write::DropJobOrder(_) => {}
            Write::Public(p) => {
                use crate::domain::status::PublicWrite as P;
                match p {
                    P::Board(b) => self.public.board = b,
                    P::Incident(i) => {
                        self.public.incidents.insert(i.ticket.num(), i);
                    }
                    P::LinkGeneration(id, g) => {
                        self.public.generations.insert(id.num(), g);
                    }
                    P::CustomerVisible(id, seqs) => {
                        self.public.visible.insert(id.num(), seqs);
                    }
                }
            }
            Write::Maintenance(book) => self.maintenance = book,
            Write::Heartbeats(book) => self.heartbeats = book,
            Write::MailThread(..) => {}
            Write::Branch(key, b) => {
                self.branches.insert(key, b);
            }
        }
    }

    /// The chat effects waiting, oldest first, at most `limit`.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<Queued>, StoreError> {
        Ok(self
            .outbox
            .iter()
            .take(limit)
            .map(|(&seq, e)| Queued {
                seq,
                effect: e.clone(),
            })
            .collect())
    }

    /// Removes a delivered chat effect.
    pub fn outbox_done(&mut self, seq: u64) -> Result<(), StoreError> {
        self.outbox.remove(&seq);
        Ok(())
    }

    /// The mail and job effects queued, oldest first.
    pub fn queued(&self) -> &[Effect] {
        &self.queued
    }

    pub fn ticket_count(&self) -> usize {
        self.tickets.len()
    }

    // The store's own reads that engine tests look at, with the store's
    // signatures, so that a test reads the same on either.

    /// Every alert group, by key (without its alerts: see [`Self::group_members`]).
    pub fn groups(&self) -> impl Iterator<Item = Result<GroupRecord, StoreError>> + '_ {
        self.groups.values().cloned().map(Ok)
    }

    /// The alerts of group `key`, by fingerprint.
    pub fn group_members<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = Result<(String, Member), StoreError>> + 'a {
        self.members
            .iter()
            .filter(move |((g, _), _)| g == key)
            .map(|((_, fp), m)| Ok((fp.clone(), m.clone())))
    }

    /// Every silenced alert kept on record, oldest first.
    pub fn silenced_alerts(&self) -> impl Iterator<Item = Result<Alert, StoreError>> + '_ {
        self.silenced.iter().cloned().map(Ok)
    }

    /// Tickets with a timer due at or before `now`, earliest first, at most
    /// `limit` (as the store's due index orders them: by due millisecond,
    /// then number).
    pub fn due_tickets(
        &self,
        now: Timestamp,
        limit: usize,
        prefix: &str,
    ) -> Result<Vec<TicketId>, StoreError> {
        let ms = |at: Timestamp| at.timestamp_millis().max(0) as u64;
        let mut due: Vec<(u64, u64)> = self
            .tickets
            .values()
            .filter_map(|t| {
                let at = t.sla.as_ref().and_then(|s| s.next_due())?;
                Some((ms(at), t.id.num()))
            })
            .filter(|&(at, _)| at <= ms(now))
            .collect();
        due.sort_unstable();
        Ok(due
            .into_iter()
            .take(limit)
            .map(|(_, n)| TicketId::new(prefix, n))
            .collect())
    }

    /// How many tickets have a timer still to fire.
    pub fn timers_pending(&self) -> usize {
        self.tickets
            .values()
            .filter(|t| t.sla.as_ref().and_then(|s| s.next_due()).is_some())
            .count()
    }
}

impl View for MemoryView {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(self.tickets.get(&id.num()).cloned())
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        Ok(self.ticket_seq)
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        Ok(self.groups.get(key).cloned())
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        Ok(self
            .members
            .get(&(group.to_string(), fingerprint.to_string()))
            .cloned())
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        Ok(self.silences.clone())
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        Ok(self.idempotency.get(key).cloned())
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        Ok(self.runs.get(&id.0).cloned())
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        Ok(self.run_seq)
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        Ok(self.broken.get(job).cloned())
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        Ok(self.locks.get(key).copied())
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        Ok(self.history.get(key).cloned().unwrap_or_default())
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        Ok(self.overrides.get(team).cloned().unwrap_or_default())
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.markers.get(key).copied())
    }

    fn load(&self, user: &UserName) -> Result<u64, StoreError> {
        Ok(self
            .tickets
            .values()
            .filter(|t| loads(t) == Some(user))
            .count() as u64)
    }

    fn link_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.public.link_key.clone())
    }

    fn link_generation(&self, id: &TicketId) -> Result<u64, StoreError> {
        Ok(self.public.generations.get(&id.num()).copied().unwrap_or(0))
    }

    fn customer_visible(&self, id: &TicketId) -> Result<Vec<u32>, StoreError> {
        Ok(self
            .public
            .visible
            .get(&id.num())
            .cloned()
            .unwrap_or_default())
    }

    fn status_board(&self) -> Result<crate::domain::status::StatusBoard, StoreError> {
        Ok(self.public.board.clone())
    }

    fn incident(
        &self,
        id: &TicketId,
    ) -> Result<Option<crate::domain::status::PublicIncident>, StoreError> {
        Ok(self.public.incidents.get(&id.num()).cloned())
    }

    fn maintenance(&self) -> Result<crate::domain::maintenance::MaintenanceBook, StoreError> {
        Ok(self.maintenance.clone())
    }

    fn heartbeats(&self) -> Result<crate::domain::heartbeat::HeartbeatBook, StoreError> {
        Ok(self.heartbeats.clone())
    }

    fn branch(&self, key: &str) -> Result<Option<crate::domain::code::BranchState>, StoreError> {
        Ok(self.branches.get(key).cloned())
    }
}

impl QueryView for MemoryView {
    fn timeline(&self, id: &TicketId) -> Result<Vec<TimelineEntry>, StoreError> {
        let n = id.num();
        Ok(self
            .timeline
            .range((n, 0)..=(n, u32::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn list(&self, filter: &ListFilter, at: &ListAt) -> Result<(Vec<Ticket>, u64), StoreError> {
        let found: Vec<&Ticket> = self
            .tickets
            .values()
            .rev()
            .filter(|t| at.before.is_none_or(|b| t.id.num() < b))
            .filter(|t| filter.team.is_none() || t.team == filter.team)
            .filter(|t| match filter.state {
                Some(s) => t.state == s,
                None => t.state != TicketState::Closed,
            })
            .filter(|t| filter.assignee.is_none() || t.assignee == filter.assignee)
            .collect();
        let total = self
            .tickets
            .values()
            .filter(|t| filter.team.is_none() || t.team == filter.team)
            .filter(|t| match filter.state {
                Some(s) => t.state == s,
                None => t.state != TicketState::Closed,
            })
            .filter(|t| filter.assignee.is_none() || t.assignee == filter.assignee)
            .count() as u64;
        let skip = usize::try_from(at.offset).unwrap_or(usize::MAX);
        let page = found
            .into_iter()
            .skip(skip)
            .take(at.limit)
            .cloned()
            .collect();
        Ok((page, total))
    }

    fn recent_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        Ok(self.runs.values().rev().take(limit).cloned().collect())
    }

    fn report_rows(
        &self,
        from: Timestamp,
        team: Option<&TeamName>,
    ) -> Result<Vec<crate::report::Row>, StoreError> {
        let mut rows = Vec::new();
        for t in self.tickets.values() {
            if team.is_some_and(|tm| t.team.as_ref() != Some(tm)) {
                continue;
            }
            if t.updated_at < from {
                continue;
            }
            let n = t.id.num();
            let entries = self.timeline.range((n, 0)..=(n, u32::MAX)).map(|(_, e)| {
                crate::report::EntryLite {
                    at: e.at,
                    kind: e.kind,
                }
            });
            rows.push(crate::report::Row::of(t, entries));
        }
        Ok(rows)
    }
}
