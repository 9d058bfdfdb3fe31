//! The sled store: trees, keys, the schema check, and applying a batch of
//! engine decisions in one transaction.
//!
//! Trees (all values JSON unless said):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `schema_version`, `ticket_seq`, `outbox_seq` | u64 big-endian |
//! | `tickets` | ticket number, u64 BE | [`Ticket`] |
//! | `timeline` | ticket number u64 BE ++ entry seq u32 BE | [`TimelineEntry`] |
//! | `by_state` | state code u8 ++ ticket number u64 BE | empty |
//! | `by_team` | team name ++ 0x00 ++ ticket number u64 BE | empty |
//! | `outbox` | effect seq u64 BE | [`OutboxItem`]: a chat post to deliver |
//! | `mail_outbox` | mail seq u64 BE | [`OutboxItem`]: a customer mail to send |
//! | `idempotency` | `Idempotency-Key` of a support request | the ticket it opened |
//! | `dead_letters` | effect seq u64 BE | [`OutboxItem`] that failed for good |
//! | `groups` | alert group key | [`GroupRecord`]: the group's ticket, route, counts |
//! | `groups` | `0xFF` ++ key length u32 BE ++ key ++ fingerprint | [`Member`]: one alert of the group |
//! | `silenced` | seq u64 BE | a silenced [`Alert`], kept on record |
//!
//! `meta` also holds `silences`: the [`SilenceBook`], as JSON; `oncall:TEAM`:
//! the team's on-call overrides, as JSON; `marker:KEY`: an i64 BE the timers
//! keep (the last handoff posted, the last scheduled report); `load:PERSON`:
//! how many tickets are assigned to or in progress with them, u64 BE.
//!
//! `by_state` also holds the due index: `0xD0` ++ due time (ms since the
//! epoch, u64 BE) ++ ticket number u64 BE, one key per ticket with a timer
//! to fire (the earliest of its deadlines and its next escalation step).
//! (sled's transactions take at most 14 trees, and all 14 are used.)
//!
//! One writer (the runtime's commit thread) applies decisions; readers read
//! committed state. Durability comes from one `flush` per batch (group commit).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Transactional, Tree};

use crate::domain::alert::Alert;
use crate::domain::rotation::Override;
use crate::domain::run::{Deployed, Run, RunId};
use crate::domain::{TeamName, Ticket, TicketId, TicketState, TimelineEntry, Timestamp};
use crate::engine::{Effect, GroupRecord, ListFilter, Member, QueryView, SilenceBook, View, Write};
use crate::error::StoreError;

/// The schema this binary writes. Bump it with a migration. 2: an alert
/// group's alerts are records of their own (split out of the group when a
/// store of schema 1 opens).
pub const SCHEMA_VERSION: u64 = 2;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// A file beside sled's own, written once the schema is: if it is there and
/// sled's records are not, the database is damaged and must not start empty.
const MARKER: &str = "opsbot-store";
/// A file of [`RESERVE_BYTES`] beside sled's own, given back when the disk
/// is full: opening sled's files again writes (a snapshot, the log's tail),
/// and must not fail for want of space.
const RESERVE: &str = "opsbot-reserve";
/// How much space the reserve holds.
pub const RESERVE_BYTES: u64 = 4 << 20;
const TICKET_SEQ: &[u8] = b"ticket_seq";
const OUTBOX_SEQ: &[u8] = b"outbox_seq";
const MAIL_SEQ: &[u8] = b"mail_seq";
const JOB_SEQ: &[u8] = b"job_seq";
const RUN_SEQ: &[u8] = b"run_seq";
const SILENCES: &[u8] = b"silences";
const SILENCED_SEQ: &[u8] = b"silenced_seq";

/// The delivery queues: each has its tree, its counter and its worker, so
/// that a mail server that is down never holds back chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Chat,
    Mail,
    Jobs,
}

impl Queue {
    fn seq_key(self) -> &'static [u8] {
        match self {
            Queue::Chat => OUTBOX_SEQ,
            Queue::Mail => MAIL_SEQ,
            Queue::Jobs => JOB_SEQ,
        }
    }

    fn of(effect: &Effect) -> Queue {
        match effect {
            Effect::Post(_) | Effect::Card(_) => Queue::Chat,
            Effect::Mail(_) => Queue::Mail,
            Effect::Job(_) => Queue::Jobs,
        }
    }
}

/// An effect waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub seq: u64,
    pub created_at: Timestamp,
    pub effect: Effect,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    meta: Tree,
    tickets: Tree,
    timeline: Tree,
    by_state: Tree,
    by_team: Tree,
    outbox: Tree,
    mail_outbox: Tree,
    dead: Tree,
    groups: Tree,
    silenced: Tree,
    idempotency: Tree,
    /// Adapters' own small records (chat message ids for edits and threads).
    adapter: Tree,
    job_outbox: Tree,
    runs: Tree,
    broken: Tree,
    deploys: Tree,
    /// Counts this handle's clones, so that the runtime knows when the last
    /// one is gone before it reopens the files (see `runtime::StoreSlot`).
    handles: std::sync::Arc<()>,
}

fn be64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn read_u64(v: &[u8], tree: &'static str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree,
        detail: format!("a counter of {} bytes", v.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

fn decode<T: for<'de> Deserialize<'de>>(v: &[u8], tree: &'static str) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

/// Encodes a record. A record that cannot be encoded is an error that
/// refuses the write, never an empty value on disk.
fn encode<T: Serialize>(v: &T, tree: &'static str) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Encode {
        tree,
        detail: e.to_string(),
    })
}

fn decode_id(v: &[u8]) -> Result<TicketId, StoreError> {
    let s = std::str::from_utf8(v).map_err(|e| StoreError::Corrupt {
        tree: "idempotency",
        detail: e.to_string(),
    })?;
    TicketId::try_from(s.to_string()).map_err(|detail| StoreError::Corrupt {
        tree: "idempotency",
        detail,
    })
}

fn state_key(state: TicketState, num: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(state.code());
    k.extend_from_slice(&be64(num));
    k
}

fn team_key(team: &TeamName, num: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(team.as_str().len() + 9);
    k.extend_from_slice(team.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&be64(num));
    k
}

/// Logs a panic caught while applying event `index` of a batch, under a
/// fresh error id, and turns it into the error that refuses the event.
fn panicked(index: usize, doing: &'static str, panic: &(dyn std::any::Any + Send)) -> StoreError {
    let message = crate::error::panic_message(panic);
    let id = crate::error::ErrorId::fresh();
    tracing::error!(error_id = %id, index, panic = %message, "a bug while {doing} an event; the event is refused, nothing of it is stored");
    StoreError::Panicked { id, doing }
}

/// The first byte of the due index's keys in `by_state` (states are 0–5).
const DUE: u8 = 0xD0;

fn due_key(at: Timestamp, num: u64) -> [u8; 17] {
    let ms = at.timestamp_millis().max(0) as u64;
    let mut k = [0u8; 17];
    k[0] = DUE;
    k[1..9].copy_from_slice(&be64(ms));
    k[9..].copy_from_slice(&be64(num));
    k
}

fn next_due(t: &Ticket) -> Option<Timestamp> {
    t.sla.as_ref().and_then(|s| s.next_due())
}

/// Whether a ticket counts toward its assignee's load.
fn loads(t: &Ticket) -> Option<&crate::domain::UserName> {
    match t.state {
        TicketState::Assigned | TicketState::InProgress => t.assignee.as_ref(),
        _ => None,
    }
}

/// Set once people's loads have been counted from the tickets.
const LOADS_COUNTED: &[u8] = b"loads_counted";

fn load_key(user: &crate::domain::UserName) -> Vec<u8> {
    format!("load:{user}").into_bytes()
}

/// The first byte of an alert's key in `groups`: never the first byte of
/// a group key (UTF-8 text), so groups and their alerts do not mix.
const MEMBER: u8 = 0xFF;

fn member_key(group: &str, fingerprint: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + group.len() + fingerprint.len());
    k.push(MEMBER);
    // A key is far shorter than 4 GiB: the request body limit bounds it.
    k.extend_from_slice(&u32::try_from(group.len()).unwrap_or(u32::MAX).to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k.extend_from_slice(fingerprint.as_bytes());
    k
}

fn member_prefix(group: &str) -> Vec<u8> {
    member_key(group, "")
}

fn timeline_key(num: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&be64(num));
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn num_suffix(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The outcome of one event in a batch.
pub type EventResult<T> = Result<T, crate::error::EngineError>;

impl Store {
    /// Opens (or creates) the database at `path`, checking that it is ours and
    /// not from a newer schema. Never starts empty over unreadable data.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        if path.exists() {
            if !path.is_dir() {
                return Err(StoreError::NotOurs {
                    path: shown,
                    reason: "it is a file, not a directory".into(),
                });
            }
            let has_entries = std::fs::read_dir(path)
                .map_err(|e| StoreError::Open {
                    path: shown.clone(),
                    source: sled::Error::Io(e),
                })?
                .next()
                .is_some();
            if has_entries && !path.join("conf").exists() {
                return Err(StoreError::NotOurs {
                    path: shown,
                    reason: "it holds files but no sled database (`conf` is missing)".into(),
                });
            }
            if has_entries && !path.join("db").exists() {
                return Err(StoreError::NotOurs {
                    path: shown,
                    reason: "its database file `db` is missing".into(),
                });
            }
        }
        let config = sled::Config::new().path(path);
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
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            meta: tree("meta")?,
            tickets: tree("tickets")?,
            timeline: tree("timeline")?,
            by_state: tree("by_state")?,
            by_team: tree("by_team")?,
            outbox: tree("outbox")?,
            mail_outbox: tree("mail_outbox")?,
            idempotency: tree("idempotency")?,
            job_outbox: tree("job_outbox")?,
            adapter: tree("adapter")?,
            runs: tree("runs")?,
            broken: tree("broken")?,
            deploys: tree("deploys")?,
            dead: tree("dead_letters")?,
            groups: tree("groups")?,
            silenced: tree("silenced")?,
            path: path.to_path_buf(),
            handles: std::sync::Arc::new(()),
            db,
        };
        store.check_schema()?;
        store.count_loads_once()?;
        store.split_group_members()?;
        Ok(store)
    }

    /// Sets aside [`RESERVE_BYTES`] of disk in the data directory at `path`
    /// (written, not sparse), unless it is there. A partial one is removed
    /// again, so that the space it got stays free.
    pub fn keep_reserve(path: &Path) -> std::io::Result<()> {
        let file = path.join(RESERVE);
        if std::fs::metadata(&file).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&file)?;
            let chunk = vec![0u8; 64 << 10];
            let mut left = RESERVE_BYTES;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                std::io::Write::write_all(&mut f, &chunk[..n])?;
                left -= n as u64;
            }
            f.sync_all()
        };
        write().inspect_err(|_| {
            let _ = std::fs::remove_file(&file);
        })
    }

    /// Gives the reserve's space back (the disk is full).
    pub fn release_reserve(path: &Path) {
        let _ = std::fs::remove_file(path.join(RESERVE));
    }

    /// Stores made before people's loads were counted get them counted
    /// once, from the tickets, so the least-loaded pick starts right.
    pub(crate) fn count_loads_once(&self) -> Result<(), StoreError> {
        if self.meta.get(LOADS_COUNTED)?.is_some() {
            return Ok(());
        }
        let mut counts: std::collections::BTreeMap<crate::domain::UserName, u64> =
            std::collections::BTreeMap::new();
        for t in self.tickets() {
            if let Some(u) = loads(&t?) {
                *counts.entry(u.clone()).or_default() += 1;
            }
        }
        for r in self.meta.scan_prefix(b"load:") {
            self.meta.remove(r?.0)?;
        }
        for (u, n) in counts {
            self.meta.insert(load_key(&u), &be64(n))?;
        }
        self.meta.insert(LOADS_COUNTED, b"1")?;
        self.meta.flush()?;
        Ok(())
    }

    /// Groups written before their alerts had records of their own get
    /// them split out, each group in one atomic batch.
    pub(crate) fn split_group_members(&self) -> Result<(), StoreError> {
        let mut split = false;
        for r in self.groups.range(..[MEMBER].as_slice()) {
            let (k, v) = r?;
            let mut g: GroupRecord = decode(&v, "groups")?;
            if g.members.is_empty() {
                continue;
            }
            let mut batch = sled::Batch::default();
            let members = std::mem::take(&mut g.members);
            g.firing = members
                .values()
                .filter(|m| m.status == crate::domain::alert::AlertStatus::Firing)
                .count() as u64;
            for (fp, mut m) in members {
                m.episode = g.episode;
                batch.insert(member_key(&g.key, &fp), encode(&m, "groups")?);
            }
            batch.insert(k, encode(&g, "groups")?);
            self.groups.apply_batch(batch)?;
            split = true;
        }
        let found = match self.meta.get(SCHEMA_KEY)? {
            Some(v) => read_u64(&v, "meta")?,
            None => 0,
        };
        if found < SCHEMA_VERSION {
            self.meta.insert(SCHEMA_KEY, &be64(SCHEMA_VERSION))?;
            split = true;
        }
        if split {
            self.db.flush()?;
        }
        Ok(())
    }

    /// Writes a group the way records were before alerts had records of
    /// their own (its alerts inside it).
    #[cfg(test)]
    pub(crate) fn put_legacy_group(&self, g: &GroupRecord) -> Result<(), StoreError> {
        for r in self.groups.scan_prefix(member_prefix(&g.key)) {
            self.groups.remove(r?.0)?;
        }
        self.groups.insert(g.key.as_bytes(), encode(g, "groups")?)?;
        Ok(())
    }

    /// Makes this store look like one from before loads were counted.
    #[cfg(test)]
    pub(crate) fn forget_loads(&self) -> Result<(), StoreError> {
        for r in self.meta.scan_prefix(b"load:") {
            self.meta.remove(r?.0)?;
        }
        self.meta.remove(LOADS_COUNTED)?;
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let shown = self.path.display().to_string();
        match self.meta.get(SCHEMA_KEY)? {
            Some(v) => {
                let found = read_u64(&v, "meta")?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: shown,
                        found: found as u32,
                        known: SCHEMA_VERSION as u32,
                    });
                }
                if !self.path.join(MARKER).exists() {
                    self.write_marker()?;
                }
                Ok(())
            }
            None => {
                if self.path.join(MARKER).exists() {
                    return Err(StoreError::NotOurs {
                        path: shown,
                        reason: "opsbot created it, but its records are unreadable: the database files are damaged".into(),
                    });
                }
                if !self.tickets.is_empty() || !self.outbox.is_empty() {
                    return Err(StoreError::NotOurs {
                        path: shown,
                        reason: "it has records but no schema version".into(),
                    });
                }
                self.meta.insert(SCHEMA_KEY, &be64(SCHEMA_VERSION))?;
                self.db.flush()?;
                self.write_marker()
            }
        }
    }

    fn write_marker(&self) -> Result<(), StoreError> {
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(self.path.join(MARKER))?;
            std::io::Write::write_all(
                &mut f,
                b"This folder is an opsbot database (sled). Back it up with `opsbot export`.\n",
            )?;
            f.sync_all()
        };
        write().map_err(|e| StoreError::Sled(sled::Error::Io(e)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Forces everything committed so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// How many handles on these open files exist (this one included).
    pub fn handles(&self) -> usize {
        std::sync::Arc::strong_count(&self.handles)
    }

    /// A small write and a flush: whether the disk takes writes again.
    pub fn probe(&self, now: Timestamp) -> Result<(), StoreError> {
        self.meta
            .insert(b"probe", &now.timestamp_millis().to_be_bytes())?;
        self.flush()
    }

    /// Marks the schema as `version` (for tests of the schema check).
    #[doc(hidden)]
    pub fn set_schema_version(&self, version: u64) -> Result<(), StoreError> {
        self.meta.insert(SCHEMA_KEY, &be64(version))?;
        self.flush()
    }

    /// Runs `decide` for each event of a batch inside one transaction, and
    /// applies the writes of those it accepts. A refused event writes nothing.
    /// The batch is not flushed; call [`Store::flush`] before acknowledging.
    pub fn apply_batch<E, R>(
        &self,
        events: &[E],
        decide: impl Fn(&dyn View, &E) -> EventResult<(Vec<Write>, R)>,
        now: impl Fn() -> Timestamp,
    ) -> Result<Vec<EventResult<R>>, StoreError> {
        let trees = (
            &self.meta,
            &self.tickets,
            &self.timeline,
            &self.by_state,
            &self.by_team,
            &self.outbox,
            &self.groups,
            &self.silenced,
            &self.mail_outbox,
            &self.idempotency,
            &self.job_outbox,
            &self.runs,
            &self.broken,
            &self.deploys,
        );
        let res = trees.transaction(
            |(
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
            )| {
                let tx = Tx {
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
                    failure: RefCell::new(None),
                };
                let mut results = Vec::with_capacity(events.len());
                for (i, ev) in events.iter().enumerate() {
                    // A bug in one decision refuses that event alone: the
                    // decision only reads, so nothing of it is written.
                    let out = match catch_unwind(AssertUnwindSafe(|| decide(&tx, ev))) {
                        Ok(out) => out,
                        Err(panic) => Err(crate::error::EngineError::Store(panicked(
                            i,
                            "deciding",
                            panic.as_ref(),
                        ))),
                    };
                    if let Some(e) = tx.failure.borrow_mut().take() {
                        return Err(ConflictableTransactionError::from(e));
                    }
                    match out {
                        Ok((writes, r)) => {
                            // A bug while writing leaves part of the event in
                            // the transaction: abort all of it (the caller
                            // applies the events one by one then).
                            let wrote = catch_unwind(AssertUnwindSafe(|| {
                                for w in writes {
                                    tx.write(w, now())?;
                                }
                                Ok::<(), TxFail>(())
                            }));
                            match wrote {
                                Ok(Ok(())) => {}
                                Ok(Err(TxFail::Sled(u))) => {
                                    return Err(ConflictableTransactionError::from(u))
                                }
                                Ok(Err(TxFail::Store(s))) => {
                                    return Err(ConflictableTransactionError::Abort(s))
                                }
                                Err(panic) => {
                                    return Err(ConflictableTransactionError::Abort(panicked(
                                        i,
                                        "writing",
                                        panic.as_ref(),
                                    )))
                                }
                            }
                            results.push(Ok(r));
                        }
                        Err(e) => results.push(Err(e)),
                    }
                }
                Ok(results)
            },
        );
        match res {
            Ok(r) => Ok(r),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    }

    // ----- reads -----

    fn get_ticket(&self, num: u64) -> Result<Option<Ticket>, StoreError> {
        self.tickets
            .get(be64(num))?
            .map(|v| decode(&v, "tickets"))
            .transpose()
    }

    /// The numbers of the tickets not closed, from the state index.
    fn not_closed(&self) -> Result<Vec<u64>, StoreError> {
        let mut nums = Vec::new();
        for &state in TicketState::ALL {
            if state == TicketState::Closed {
                continue;
            }
            for r in self.by_state.scan_prefix([state.code()]) {
                nums.extend(num_suffix(&r?.0));
            }
        }
        Ok(nums)
    }

    /// Tickets whose id or title contains `partial` (lowercase), for
    /// autocomplete: open ones first, newest first, then a closed ticket
    /// whose number was typed. Looks at no more than [`SUGGEST_SCAN`] open
    /// tickets, so it stays quick with many open.
    pub fn suggest_tickets(&self, partial: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        let mut nums = self.not_closed()?;
        nums.sort_unstable_by(|a, b| b.cmp(a));
        let hit = |t: &Ticket| {
            partial.is_empty()
                || t.id.to_string().to_lowercase().contains(partial)
                || t.title.to_lowercase().contains(partial)
        };
        let mut out = Vec::new();
        for n in nums.into_iter().take(SUGGEST_SCAN) {
            if out.len() >= limit {
                break;
            }
            if let Some(t) = self.get_ticket(n)? {
                if hit(&t) {
                    out.push(t);
                }
            }
        }
        let digits: String = partial.chars().filter(char::is_ascii_digit).collect();
        if out.len() < limit {
            if let Ok(n) = digits.parse::<u64>() {
                if let Some(t) = self.get_ticket(n)? {
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
        self.tickets.iter().map(|r| {
            r.map_err(StoreError::from)
                .and_then(|(_, v)| decode(&v, "tickets"))
        })
    }

    pub fn ticket_count(&self) -> usize {
        self.tickets.len()
    }

    fn queue(&self, q: Queue) -> &Tree {
        match q {
            Queue::Chat => &self.outbox,
            Queue::Mail => &self.mail_outbox,
            Queue::Jobs => &self.job_outbox,
        }
    }

    /// The pending effects of a queue, oldest first, at most `limit`.
    pub fn pending(&self, q: Queue, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.queue(q)
            .iter()
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
        self.queue(q)
            .range(be64(from)..)
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

    pub fn queue_len(&self, q: Queue) -> usize {
        self.queue(q).len()
    }

    /// Chat posts waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The highest sequence number a queue ever allocated.
    pub fn last_seq(&self, q: Queue) -> Result<u64, StoreError> {
        match self.meta.get(q.seq_key())? {
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
        self.queue(q).remove(be64(seq))?;
        Ok(())
    }

    /// Removes a delivered chat post.
    pub fn outbox_done(&self, seq: u64) -> Result<(), StoreError> {
        self.done(Queue::Chat, seq)
    }

    /// Records a failed attempt on an effect that will be retried.
    pub fn retry(&self, q: Queue, item: &OutboxItem) -> Result<(), StoreError> {
        self.queue(q)
            .insert(be64(item.seq), encode(item, "outbox")?)?;
        Ok(())
    }

    /// Moves an effect that can never be delivered to the dead letters.
    pub fn dead_letter(&self, q: Queue, item: &OutboxItem) -> Result<(), StoreError> {
        let value = encode(item, "dead_letters")?;
        (self.queue(q), &self.dead)
            .transaction(|(queue, dead)| {
                queue.remove(&be64(item.seq))?;
                // Dead letters of both queues share a tree: key by kind too.
                let mut k = vec![q as u8];
                k.extend_from_slice(&be64(item.seq));
                dead.insert(k, value.clone())?;
                Ok(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(s) => StoreError::Sled(s),
                TransactionError::Abort(()) => StoreError::Conflict,
            })
    }

    pub fn dead_letters(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.dead
            .iter()
            .map(|r| decode(&r?.1, "dead_letters"))
            .collect()
    }
}

/// How many open tickets autocomplete looks through at most.
pub const SUGGEST_SCAN: usize = 2000;

impl View for Store {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.get_ticket(id.num())
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        match self.meta.get(TICKET_SEQ)? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.groups
            .get(key.as_bytes())?
            .map(|v| decode(&v, "groups"))
            .transpose()
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        self.groups
            .get(member_key(group, fingerprint))?
            .map(|v| decode(&v, "groups"))
            .transpose()
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        self.idempotency
            .get(key.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.runs
            .get(be64(id.0))?
            .map(|v| decode(&v, "runs"))
            .transpose()
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        match self.meta.get(RUN_SEQ)? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        self.broken
            .get(job.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        self.deploys
            .get(format!("lock:{key}").as_bytes())?
            .map(|v| decode(&v, "deploys"))
            .transpose()
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        match self.deploys.get(format!("hist:{key}").as_bytes())? {
            Some(v) => decode(&v, "deploys"),
            None => Ok(Vec::new()),
        }
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        match self.meta.get(SILENCES)? {
            Some(v) => decode(&v, "meta"),
            None => Ok(SilenceBook::default()),
        }
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        match self.meta.get(format!("oncall:{team}").as_bytes())? {
            Some(v) => decode(&v, "meta"),
            None => Ok(Vec::new()),
        }
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self.meta.get(format!("marker:{key}").as_bytes())? {
            Some(v) => Ok(Some(read_u64(&v, "meta")? as i64)),
            None => Ok(None),
        }
    }

    fn load(&self, user: &crate::domain::UserName) -> Result<u64, StoreError> {
        match self.meta.get(load_key(user))? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
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
            .by_state
            .range([DUE].as_slice()..=end.as_slice())
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
        self.by_state.scan_prefix([DUE]).count()
    }
}

impl Store {
    /// An adapter's record under `key` (such as a chat message id).
    pub fn adapter_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .adapter
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps an adapter's record, durably.
    pub fn adapter_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.adapter.insert(key.as_bytes(), value.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = Result<Run, StoreError>> + '_ {
        self.runs.iter().map(|r| {
            r.map_err(StoreError::from)
                .and_then(|(_, v)| decode(&v, "runs"))
        })
    }

    /// Every alert group (without its alerts: see [`Store::group_members`]).
    pub fn groups(&self) -> impl Iterator<Item = Result<GroupRecord, StoreError>> + '_ {
        self.groups.range(..[MEMBER].as_slice()).map(|r| {
            r.map_err(StoreError::from)
                .and_then(|(_, v)| decode(&v, "groups"))
        })
    }

    /// The alerts of group `key`, by fingerprint.
    pub fn group_members(
        &self,
        key: &str,
    ) -> impl Iterator<Item = Result<(String, Member), StoreError>> + '_ {
        let prefix = member_prefix(key);
        let skip = prefix.len();
        self.groups.scan_prefix(prefix).map(move |r| {
            let (k, v) = r?;
            let fp = String::from_utf8_lossy(k.get(skip..).unwrap_or_default()).into_owned();
            Ok((fp, decode(&v, "groups")?))
        })
    }

    /// Every silenced alert kept on record, oldest first.
    pub fn silenced_alerts(&self) -> impl Iterator<Item = Result<Alert, StoreError>> + '_ {
        self.silenced.iter().map(|r| {
            r.map_err(StoreError::from)
                .and_then(|(_, v)| decode(&v, "silenced"))
        })
    }
}

impl QueryView for Store {
    fn timeline(&self, id: &TicketId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.timeline
            .scan_prefix(be64(id.num()))
            .map(|r| decode(&r?.1, "timeline"))
            .collect()
    }

    fn list(&self, filter: &ListFilter, limit: usize) -> Result<(Vec<Ticket>, usize), StoreError> {
        let mut nums: Vec<u64> = Vec::new();
        match (&filter.team, filter.state) {
            (Some(team), _) => {
                let mut prefix = team.as_str().as_bytes().to_vec();
                prefix.push(0);
                for r in self.by_team.scan_prefix(prefix) {
                    nums.extend(num_suffix(&r?.0));
                }
            }
            (None, Some(state)) => {
                for r in self.by_state.scan_prefix([state.code()]) {
                    nums.extend(num_suffix(&r?.0));
                }
            }
            (None, None) => nums = self.not_closed()?,
        }
        let mut found = Vec::new();
        for n in nums {
            let Some(t) = self.get_ticket(n)? else {
                continue;
            };
            let state_ok = match filter.state {
                Some(s) => t.state == s,
                None => t.state != TicketState::Closed,
            };
            let assignee_ok = filter.assignee.is_none() || t.assignee == filter.assignee;
            if state_ok && assignee_ok {
                found.push(t);
            }
        }
        found.sort_by_key(|t| (t.priority, t.id.num()));
        let total = found.len();
        found.truncate(limit);
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
            for r in self.timeline.scan_prefix(be64(t.id.num())) {
                entries.push(decode::<crate::report::EntryLite>(&r?.1, "timeline")?);
            }
            rows.push(crate::report::Row::of(&t, entries));
        }
        Ok(rows)
    }

    fn recent_runs(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.runs
            .iter()
            .rev()
            .take(limit)
            .map(|r| decode(&r?.1, "runs"))
            .collect()
    }
}

/// Why a write inside the transaction failed.
enum TxFail {
    Sled(UnabortableTransactionError),
    Store(StoreError),
}

impl From<UnabortableTransactionError> for TxFail {
    fn from(e: UnabortableTransactionError) -> Self {
        TxFail::Sled(e)
    }
}

/// The trees as seen inside a transaction.
struct Tx<'a> {
    meta: &'a TransactionalTree,
    tickets: &'a TransactionalTree,
    timeline: &'a TransactionalTree,
    by_state: &'a TransactionalTree,
    by_team: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    groups: &'a TransactionalTree,
    silenced: &'a TransactionalTree,
    mail_outbox: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    job_outbox: &'a TransactionalTree,
    runs: &'a TransactionalTree,
    broken: &'a TransactionalTree,
    deploys: &'a TransactionalTree,
    /// A sled failure met while the engine read; it must end the closure so
    /// that sled retries (conflict) or gives up (storage).
    failure: RefCell<Option<UnabortableTransactionError>>,
}

/// [`encode`] inside a transaction: a record that cannot be encoded aborts
/// the transaction (the event is refused), it never writes an empty value.
fn enc<T: Serialize>(v: &T, tree: &'static str) -> Result<Vec<u8>, TxFail> {
    encode(v, tree).map_err(TxFail::Store)
}

impl Tx<'_> {
    fn counter(&self, key: &[u8]) -> Result<u64, TxFail> {
        match self.meta.get(key)? {
            Some(v) => read_u64(&v, "meta").map_err(TxFail::Store),
            None => Ok(0),
        }
    }

    fn write(&self, w: Write, now: Timestamp) -> Result<(), TxFail> {
        match w {
            Write::Ticket(t) => {
                let num = t.id.num();
                let old: Option<Ticket> = match self.tickets.get(be64(num))? {
                    Some(v) => Some(decode(&v, "tickets").map_err(TxFail::Store)?),
                    None => None,
                };
                if let Some(old) = &old {
                    if old.state != t.state {
                        self.by_state.remove(state_key(old.state, num))?;
                    }
                    if let Some(team) = &old.team {
                        if old.team != t.team {
                            self.by_team.remove(team_key(team, num))?;
                        }
                    }
                }
                let old_due = old.as_ref().and_then(next_due);
                let new_due = next_due(&t);
                if old_due != new_due {
                    if let Some(d) = old_due {
                        self.by_state.remove(&due_key(d, num))?;
                    }
                    if let Some(d) = new_due {
                        self.by_state.insert(&due_key(d, num), &[])?;
                    }
                }
                let old_load = old.as_ref().and_then(loads);
                if old_load != loads(&t) {
                    if let Some(u) = old_load {
                        let n = self.counter(&load_key(u))?;
                        self.meta.insert(load_key(u), &be64(n.saturating_sub(1)))?;
                    }
                    if let Some(u) = loads(&t) {
                        let n = self.counter(&load_key(u))?;
                        self.meta.insert(load_key(u), &be64(n + 1))?;
                    }
                }
                self.by_state.insert(state_key(t.state, num), &[])?;
                if let Some(team) = &t.team {
                    self.by_team.insert(team_key(team, num), &[])?;
                }
                if self.counter(TICKET_SEQ)? < num {
                    self.meta.insert(TICKET_SEQ, &be64(num))?;
                }
                self.tickets.insert(&be64(num), enc(&t, "tickets")?)?;
            }
            Write::Timeline(id, e) => {
                // Tests plant a bug here: a panic halfway through an event's
                // writes (its ticket written, its timeline not).
                #[cfg(test)]
                if e.text.contains("panic while writing") {
                    panic!("a planted bug while writing");
                }
                self.timeline
                    .insert(&timeline_key(id.num(), e.seq), enc(&e, "timeline")?)?;
            }
            Write::Effect(effect) => {
                let q = Queue::of(&effect);
                let seq = self.counter(q.seq_key())? + 1;
                self.meta.insert(q.seq_key(), &be64(seq))?;
                let item = OutboxItem {
                    seq,
                    created_at: now,
                    effect,
                    attempts: 0,
                    last_error: None,
                };
                let tree = match q {
                    Queue::Chat => self.outbox,
                    Queue::Mail => self.mail_outbox,
                    Queue::Jobs => self.job_outbox,
                };
                tree.insert(&be64(seq), enc(&item, "outbox")?)?;
            }
            Write::Run(run) => {
                if self.counter(RUN_SEQ)? < run.id.0 {
                    self.meta.insert(RUN_SEQ, &be64(run.id.0))?;
                }
                self.runs.insert(&be64(run.id.0), enc(&run, "runs")?)?;
            }
            Write::Broken(job, Some(id)) => {
                self.broken
                    .insert(job.as_bytes(), id.to_string().as_bytes())?;
            }
            Write::Broken(job, None) => {
                self.broken.remove(job.as_bytes())?;
            }
            Write::Lock(key, Some(run)) => {
                self.deploys
                    .insert(format!("lock:{key}").as_bytes(), enc(&run, "deploys")?)?;
            }
            Write::Lock(key, None) => {
                self.deploys.remove(format!("lock:{key}").as_bytes())?;
            }
            Write::History(key, list) => {
                self.deploys
                    .insert(format!("hist:{key}").as_bytes(), enc(&list, "deploys")?)?;
            }
            Write::Idempotency(key, id) => {
                self.idempotency
                    .insert(key.as_bytes(), id.to_string().as_bytes())?;
            }
            Write::Group(mut g) => {
                for (fp, m) in std::mem::take(&mut g.members) {
                    self.groups
                        .insert(member_key(&g.key, &fp), enc(&m, "groups")?)?;
                }
                self.groups.insert(g.key.as_bytes(), enc(&g, "groups")?)?;
            }
            Write::Member(group, fp, m) => {
                self.groups
                    .insert(member_key(&group, &fp), enc(&m, "groups")?)?;
            }
            Write::Silences(book) => {
                self.meta.insert(SILENCES, enc(&book, "meta")?)?;
            }
            Write::Overrides(team, list) => {
                self.meta
                    .insert(format!("oncall:{team}").as_bytes(), enc(&list, "meta")?)?;
            }
            Write::Marker(key, v) => {
                self.meta
                    .insert(format!("marker:{key}").as_bytes(), &v.to_be_bytes())?;
            }
            Write::Silenced(alert) => {
                let seq = self.counter(SILENCED_SEQ)? + 1;
                self.meta.insert(SILENCED_SEQ, &be64(seq))?;
                self.silenced.insert(&be64(seq), enc(&alert, "silenced")?)?;
            }
        }
        Ok(())
    }
}

impl Tx<'_> {
    /// Reads a raw value; a sled failure is kept for the closure to return
    /// (so that sled retries a conflict) and reported as a conflict.
    fn raw(&self, tree: &TransactionalTree, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        tree.get(key).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            StoreError::Conflict
        })
    }

    fn read<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &TransactionalTree,
        key: &[u8],
        name: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.raw(tree, key)?.map(|v| decode(&v, name)).transpose()
    }

    fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.raw(self.meta, key)? {
            Some(v) => read_u64(&v, "meta"),
            None => Ok(0),
        }
    }
}

impl View for Tx<'_> {
    fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.read(self.tickets, &be64(id.num()), "tickets")
    }

    fn last_ticket_number(&self) -> Result<u64, StoreError> {
        self.count(TICKET_SEQ)
    }

    fn group(&self, key: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.read(self.groups, key.as_bytes(), "groups")
    }

    fn member(&self, group: &str, fingerprint: &str) -> Result<Option<Member>, StoreError> {
        self.read(self.groups, &member_key(group, fingerprint), "groups")
    }

    fn idempotent(&self, key: &str) -> Result<Option<TicketId>, StoreError> {
        self.raw(self.idempotency, key.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        self.read(self.runs, &be64(id.0), "runs")
    }

    fn last_run_number(&self) -> Result<u64, StoreError> {
        self.count(RUN_SEQ)
    }

    fn broken(&self, job: &str) -> Result<Option<TicketId>, StoreError> {
        self.raw(self.broken, job.as_bytes())?
            .map(|v| decode_id(&v))
            .transpose()
    }

    fn lock(&self, key: &str) -> Result<Option<RunId>, StoreError> {
        self.read(self.deploys, format!("lock:{key}").as_bytes(), "deploys")
    }

    fn history(&self, key: &str) -> Result<Vec<Deployed>, StoreError> {
        Ok(self
            .read(self.deploys, format!("hist:{key}").as_bytes(), "deploys")?
            .unwrap_or_default())
    }

    fn silences(&self) -> Result<SilenceBook, StoreError> {
        Ok(self.read(self.meta, SILENCES, "meta")?.unwrap_or_default())
    }

    fn overrides(&self, team: &TeamName) -> Result<Vec<Override>, StoreError> {
        Ok(self
            .read(self.meta, format!("oncall:{team}").as_bytes(), "meta")?
            .unwrap_or_default())
    }

    fn marker(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self.raw(self.meta, format!("marker:{key}").as_bytes())? {
            Some(v) => Ok(Some(read_u64(&v, "meta")? as i64)),
            None => Ok(None),
        }
    }

    fn load(&self, user: &crate::domain::UserName) -> Result<u64, StoreError> {
        self.count(&load_key(user))
    }
}

/// One record as stored: its tree, key and value.
pub type Record = (Vec<u8>, Vec<u8>, Vec<u8>);

impl Store {
    /// Every record of every tree, in order: for tests that prove an event
    /// changed nothing at all.
    #[doc(hidden)]
    pub fn contents(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            for kv in self.db.open_tree(&name)?.iter() {
                let (k, v) = kv?;
                out.push((name.to_vec(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Writes every ticket, each followed by its timeline, as JSON lines:
    /// `{"type":"ticket",…}` and `{"type":"timeline","ticket":"OPS-1",…}`.
    /// Returns the number of tickets written.
    pub fn export_jsonl(&self, out: &mut dyn std::io::Write) -> Result<usize, ExportError> {
        let mut n = 0;
        for t in self.tickets() {
            let t = t?;
            let mut v = serde_json::to_value(&t)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "ticket".into());
            }
            writeln!(out, "{v}")?;
            for e in self.timeline(&t.id)? {
                let mut v = serde_json::to_value(&e)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("type".into(), "timeline".into());
                    o.insert("ticket".into(), t.id.to_string().into());
                }
                writeln!(out, "{v}")?;
            }
            n += 1;
        }
        for r in self.runs() {
            let mut v = serde_json::to_value(r?)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "run".into());
            }
            writeln!(out, "{v}")?;
        }
        out.flush()?;
        Ok(n)
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a record: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_that_cannot_be_encoded_is_an_error_never_an_empty_value() {
        // JSON map keys must be strings: this one cannot be encoded.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        match encode(&bad, "groups") {
            Err(StoreError::Encode { tree, detail }) => {
                assert_eq!(tree, "groups");
                assert!(detail.contains("key must be a string"), "{detail}");
            }
            other => panic!("expected an encoding error, got {other:?}"),
        }
        let err = encode(&bad, "groups").unwrap_err().to_string();
        assert!(err.ends_with("nothing was written"), "{err}");
        assert!(!err.is_empty());
        // What can be encoded is, exactly.
        assert_eq!(encode(&vec![1, 2], "meta").unwrap(), b"[1,2]".to_vec());
    }

    #[test]
    fn the_reserve_is_written_once_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        Store::keep_reserve(dir.path()).unwrap();
        let file = dir.path().join(RESERVE);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), RESERVE_BYTES);
        Store::keep_reserve(dir.path()).unwrap();
        Store::release_reserve(dir.path());
        assert!(!file.exists());
    }
}
