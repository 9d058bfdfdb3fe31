//! The store: the records and their keys, the schema check, and applying a
//! batch of engine decisions in one transaction, written once over the
//! [`kv`] seam; the embedded sled backend keeps them in the data directory.
//!
//! Trees (all values records in the binary encoding of [`keys::encode`],
//! MessagePack after a first byte 0xC1, unless said; "as JSON" below means
//! a record too: schema 2 kept them as JSON, see [`migrate`]):
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
//! how many tickets are assigned to or in progress with them, u64 BE;
//! `fig:…`: the tickets' figures that `/metrics` shows, i64 BE (see
//! [`figures`]); `depth:TREE`: how many records a delivery queue or the dead
//! letters hold, u64 BE (see `depth.rs`).
//! `cnt:…`: how many tickets the list's index holds under a prefix, i64 BE
//! (see [`listing`]).
//! `mailthread:` ++ ticket number u64 BE: the customer's Message-ID that
//! the ticket's mail thread answers (a ticket opened by mail), UTF-8.
//!
//! `by_state` also holds the due index: `0xD0` ++ due time (ms since the
//! epoch, u64 BE) ++ ticket number u64 BE, one key per ticket with a timer
//! to fire (the earliest of its deadlines and its next escalation step),
//! and the list's index by team and assignee, keys from `0xB1` to `0xB3`
//! (see [`listing`]).
//! (Every tree is one of [`kv::TreeName`]; a transaction may touch any.)
//!
//! One writer (the runtime's commit thread) applies decisions; readers read
//! committed state. Durability comes from one `flush` per batch (group commit).

mod depth;
mod export;
pub mod figures;
mod keys;
pub mod kv;
mod listing;
mod migrate;
mod outbox;
mod postgres;
mod query;
mod reads;
mod sled_backend;
mod status;
mod tx;

pub use figures::{TicketFigures, TimeHistogram, TIME_BUCKETS};

use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::engine::{Effect, GroupRecord};
use crate::error::StoreError;

pub use export::{ExportError, ImportError, Record};
pub use query::SUGGEST_SCAN;
pub use tx::EventResult;

#[cfg(test)]
use keys::member_prefix;
use keys::{
    be64, decode, encode, load_key, loads, member_key, read_u64, AM_SEQ, JOB_SEQ, LOADS_COUNTED,
    MAIL_SEQ, MEMBER, OUTBOX_SEQ, SCHEMA_KEY,
};
use kv::{scan_prefix, Backend, TreeName};
use postgres::PgBackend;
use reads::Reads;
use sled_backend::SledBackend;

/// The schema this binary writes. Bump it with a migration. 2: an alert
/// group's alerts are records of their own (split out of the group when a
/// store of schema 1 opens). 3: records in a binary encoding, not JSON
/// (rewritten when a store of schema 2 opens: [`migrate`]).
pub const SCHEMA_VERSION: u64 = migrate::BINARY_SCHEMA;

/// The schema whose groups' alerts are records of their own.
const MEMBERS_SCHEMA: u64 = 2;

pub use migrate::MIGRATE_BATCH;

/// A file beside sled's own, written once the schema is: if it is there and
/// sled's records are not, the database is damaged and must not start empty.
const MARKER: &str = "opsbot-store";
/// A file of [`RESERVE_BYTES`] beside sled's own, given back when the disk
/// is full: opening sled's files again writes (a snapshot, the log's tail),
/// and must not fail for want of space.
const RESERVE: &str = "opsbot-reserve";
/// How much space the reserve holds.
pub const RESERVE_BYTES: u64 = 4 << 20;

/// The delivery queues: each has its tree, its counter and its worker, so
/// that a mail server that is down never holds back chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    Chat,
    Mail,
    Jobs,
    /// Silences to make or end in Alertmanager.
    Alertmanager,
}

impl Queue {
    fn seq_key(self) -> &'static [u8] {
        match self {
            Queue::Chat => OUTBOX_SEQ,
            Queue::Mail => MAIL_SEQ,
            Queue::Jobs => JOB_SEQ,
            Queue::Alertmanager => AM_SEQ,
        }
    }

    /// The queue's tree.
    fn tree(self) -> TreeName {
        match self {
            Queue::Chat => TreeName::Outbox,
            Queue::Mail => TreeName::MailOutbox,
            Queue::Jobs => TreeName::JobOutbox,
            Queue::Alertmanager => TreeName::AmOutbox,
        }
    }

    fn of(effect: &Effect) -> Queue {
        match effect {
            Effect::Post(_) | Effect::Card(_) | Effect::Page(_) => Queue::Chat,
            Effect::Mail(_) => Queue::Mail,
            Effect::Job(_) => Queue::Jobs,
            Effect::Alertmanager(_) => Queue::Alertmanager,
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

/// sled's page cache when the config does not size it (`[storage] cache`):
/// sled's own default, 1 GiB, would alone break a 1 GiB memory bound.
pub const DEFAULT_CACHE: u64 = 256 * 1024 * 1024;

/// Where the records are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// sled's files in this data directory, opened with a page cache of
    /// this many bytes (kept here so that a reopen sizes it the same).
    Dir(PathBuf, u64),
    /// A PostgreSQL database, by its libpq URL (it may hold a password:
    /// never shown).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(p, cache) => write!(f, "Dir({}, cache {cache})", p.display()),
            Location::Postgres(_) => write!(f, "Postgres(***)"),
        }
    }
}

impl Location {
    /// Sets aside the disk space a reopen needs (see [`Store::keep_reserve`]);
    /// nothing for a database server.
    pub fn keep_reserve(&self) -> std::io::Result<()> {
        match self {
            Location::Dir(p, _) => Store::keep_reserve(p),
            Location::Postgres(_) => Ok(()),
        }
    }

    /// Gives the reserve's space back (the disk is full).
    pub fn release_reserve(&self) {
        if let Location::Dir(p, _) = self {
            Store::release_reserve(p)
        }
    }
}

/// The database: the records, over the backend that keeps them.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<dyn Backend>,
    at: Location,
    /// Counts this handle's clones, so that the runtime knows when the last
    /// one is gone before it reopens the files (see `runtime::StoreSlot`).
    handles: std::sync::Arc<()>,
}

impl Store {
    /// Opens (or creates) the database at `path`, checking that it is ours and
    /// not from a newer schema. Never starts empty over unreadable data.
    /// sled's cache is [`DEFAULT_CACHE`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_sized(path, DEFAULT_CACHE)
    }

    /// [`Store::open`] with sled's page cache `cache` bytes
    /// (`[storage] cache`).
    pub fn open_sized(path: &Path, cache: u64) -> Result<Store, StoreError> {
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
        Store::ready(
            Arc::new(SledBackend::open(path, cache)?),
            Location::Dir(path.to_path_buf(), cache),
        )
    }

    /// Connects to the PostgreSQL database at `url` (a libpq URL), creating
    /// the tables in an empty database and refusing a newer schema.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        Store::ready(
            Arc::new(PgBackend::connect(url)?),
            Location::Postgres(url.to_string()),
        )
    }

    /// The store on an opened backend, once its schema is checked (tables made
    /// in an empty one) and the one-time upgrades of older records are done.
    fn ready(db: Arc<dyn Backend>, at: Location) -> Result<Store, StoreError> {
        let store = Store {
            db,
            at,
            handles: std::sync::Arc::new(()),
        };
        store.check_schema()?;
        store.count_loads_once()?;
        store.count_figures_once()?;
        store.index_list_once()?;
        store.split_group_members()?;
        store.migrate_to_binary()?;
        store.make_link_key_once()?;
        store.count_depths_once()?;
        Ok(store)
    }

    /// Opens the store at `at`.
    pub fn open_at(at: &Location) -> Result<Store, StoreError> {
        match at {
            Location::Dir(p, cache) => Store::open_sized(p, *cache),
            Location::Postgres(url) => Store::connect(url),
        }
    }

    /// Where the records are kept.
    pub fn location(&self) -> &Location {
        &self.at
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
        if self.db.get(TreeName::Meta, LOADS_COUNTED)?.is_some() {
            return Ok(());
        }
        let mut counts: std::collections::BTreeMap<crate::domain::UserName, u64> =
            std::collections::BTreeMap::new();
        for t in self.tickets() {
            if let Some(u) = loads(&t?) {
                *counts.entry(u.clone()).or_default() += 1;
            }
        }
        self.delete_prefix(TreeName::Meta, b"load:")?;
        for (u, n) in counts {
            self.db.put(TreeName::Meta, &load_key(&u), &be64(n))?;
        }
        self.db.put(TreeName::Meta, LOADS_COUNTED, b"1")?;
        self.db.flush()?;
        Ok(())
    }

    /// Groups written before their alerts had records of their own get
    /// them split out, each group in one atomic batch.
    pub(crate) fn split_group_members(&self) -> Result<(), StoreError> {
        let mut split = false;
        let groups: Vec<kv::Pair> = self
            .db
            .scan(
                TreeName::Groups,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(&[MEMBER]),
                false,
            )
            .collect::<Result<_, _>>()?;
        for (k, v) in groups {
            let mut g: GroupRecord = decode(&v, "groups")?;
            if g.members.is_empty() {
                continue;
            }
            let members = std::mem::take(&mut g.members);
            g.firing = members
                .values()
                .filter(|m| m.status == crate::domain::alert::AlertStatus::Firing)
                .count() as u64;
            let mut records = Vec::with_capacity(members.len() + 1);
            for (fp, mut m) in members {
                m.episode = g.episode;
                records.push((member_key(&g.key, &fp), encode(&m, "groups")?));
            }
            records.push((k, encode(&g, "groups")?));
            self.db.transact(&mut |tx| {
                for (k, v) in &records {
                    tx.put(TreeName::Groups, k, v)?;
                }
                Ok(())
            })?;
            split = true;
        }
        if migrate::schema_of(&*self.db)? < MEMBERS_SCHEMA {
            self.db
                .put(TreeName::Meta, SCHEMA_KEY, &be64(MEMBERS_SCHEMA))?;
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
        self.delete_prefix(TreeName::Groups, &member_prefix(&g.key))?;
        self.db
            .put(TreeName::Groups, g.key.as_bytes(), &encode(g, "groups")?)?;
        Ok(())
    }

    /// Makes this store look like one from before loads were counted.
    #[cfg(test)]
    pub(crate) fn forget_loads(&self) -> Result<(), StoreError> {
        self.delete_prefix(TreeName::Meta, b"load:")?;
        self.db.delete(TreeName::Meta, LOADS_COUNTED)?;
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let (shown, dir) = match &self.at {
            Location::Dir(p, _) => (p.display().to_string(), Some(p.as_path())),
            Location::Postgres(_) => (self.db.describe(), None),
        };
        let marked = dir.is_some_and(|d| d.join(MARKER).exists());
        match self.db.get(TreeName::Meta, SCHEMA_KEY)? {
            Some(v) => {
                let found = read_u64(&v, "meta")?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: shown,
                        found: found as u32,
                        known: SCHEMA_VERSION as u32,
                    });
                }
                if let (Some(d), false) = (dir, marked) {
                    Self::write_marker(d)?;
                }
                Ok(())
            }
            None => {
                if marked {
                    return Err(StoreError::NotOurs {
                        path: shown,
                        reason: "opsbot created it, but its records are unreadable: the database files are damaged".into(),
                    });
                }
                if self.db.count(TreeName::Tickets)? > 0 || self.db.count(TreeName::Outbox)? > 0 {
                    return Err(StoreError::NotOurs {
                        path: shown,
                        reason: "it has records but no schema version".into(),
                    });
                }
                self.db
                    .put(TreeName::Meta, SCHEMA_KEY, &be64(SCHEMA_VERSION))?;
                self.db.flush()?;
                match dir {
                    Some(d) => Self::write_marker(d),
                    None => Ok(()),
                }
            }
        }
    }

    fn write_marker(dir: &Path) -> Result<(), StoreError> {
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(dir.join(MARKER))?;
            std::io::Write::write_all(
                &mut f,
                b"This folder is an opsbot database (sled). Back it up with `opsbot export`.\n",
            )?;
            f.sync_all()
        };
        write().map_err(|e| StoreError::Sled(sled::Error::Io(e)))
    }

    /// The engine's reads on committed state.
    fn reads(&self) -> Reads<'_, dyn Backend> {
        Reads(&*self.db)
    }

    /// Removes every record of `tree` whose key starts with `prefix`.
    fn delete_prefix(&self, tree: TreeName, prefix: &[u8]) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = scan_prefix(&*self.db, tree, prefix)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in keys {
            self.db.delete(tree, &k)?;
        }
        Ok(())
    }

    /// Which database keeps the records.
    pub fn backend(&self) -> String {
        self.db.describe()
    }

    /// Takes or keeps a lease (see [`kv::Backend::lease`]).
    pub fn lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<u64>, StoreError> {
        self.db.lease(name, holder, ttl)
    }

    /// Gives a lease up.
    pub fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.db.release(name, holder)
    }

    /// Whether the store is one process's alone (sled's locked files), so
    /// that no lease needs keeping.
    pub fn is_exclusive(&self) -> bool {
        matches!(self.at, Location::Dir(..))
    }

    /// The data directory, for the embedded backend.
    pub fn path(&self) -> Option<&Path> {
        match &self.at {
            Location::Dir(p, _) => Some(p),
            Location::Postgres(_) => None,
        }
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
        self.db.put(
            TreeName::Meta,
            b"probe",
            &now.timestamp_millis().to_be_bytes(),
        )?;
        self.flush()
    }

    /// Marks the schema as `version` (for tests of the schema check).
    #[doc(hidden)]
    pub fn set_schema_version(&self, version: u64) -> Result<(), StoreError> {
        self.db.put(TreeName::Meta, SCHEMA_KEY, &be64(version))?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_size_stays_with_the_location_so_a_reopen_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let store = Store::open_sized(&path, 16 << 20).unwrap();
        let at = store.location().clone();
        assert_eq!(at, Location::Dir(path.clone(), 16 << 20));
        drop(store);
        let again = Store::open_at(&at).unwrap();
        assert_eq!(again.location(), &at);
        drop(again);
        let plain = Store::open(&path).unwrap();
        assert_eq!(plain.location(), &Location::Dir(path, DEFAULT_CACHE));
        assert_eq!(DEFAULT_CACHE, 256 * 1024 * 1024);
    }

    #[test]
    fn a_record_that_cannot_be_encoded_is_an_error_never_an_empty_value() {
        /// A value whose serialisation fails, as a type's own `Serialize`
        /// may.
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("this value cannot be written"))
            }
        }
        let bad = std::collections::BTreeMap::from([("a", Refuses)]);
        match encode(&bad, "groups") {
            Err(StoreError::Encode { tree, detail }) => {
                assert_eq!(tree, "groups");
                assert!(detail.contains("cannot be written"), "{detail}");
            }
            other => panic!("expected an encoding error, got {other:?}"),
        }
        let err = encode(&bad, "groups").unwrap_err().to_string();
        assert!(err.ends_with("nothing was written"), "{err}");
        // What can be encoded is, exactly: 0xC1, then MessagePack.
        assert_eq!(
            encode(&vec![1, 2], "meta").unwrap(),
            vec![0xC1, 0x92, 0x01, 0x02]
        );
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
