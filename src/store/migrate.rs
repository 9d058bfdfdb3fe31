//! Schema 3: the records in a compact binary encoding (MessagePack, see
//! [`super::keys::encode`]) instead of JSON. A store of schema 2 is
//! migrated when it opens, on either backend: every record is read as JSON
//! and written again binary, in transactions of [`MIGRATE_BATCH`] records,
//! and the schema version is written last. A migration cut short (the
//! process killed midway) is safe: the reader tells a record of either
//! encoding by its first byte, and the next open finishes the rest.

use std::ops::Bound;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::keys::{be64, decode, encode, is_json, read_u64, MEMBER, SCHEMA_KEY};
use super::kv::{Backend, TreeName};
use super::{OutboxItem, Store};
use crate::error::StoreError;

/// The schema whose records are binary.
pub(super) const BINARY_SCHEMA: u64 = 3;

/// How many records one transaction of the migration rewrites.
pub const MIGRATE_BATCH: usize = 256;

/// What a record is: how to rewrite it from JSON, and how to show it as
/// JSON, both through its type.
struct Kind {
    recode: fn(&[u8], &'static str) -> Result<Vec<u8>, StoreError>,
    json: fn(&[u8], &'static str) -> Result<serde_json::Value, StoreError>,
}

fn recode<T: Serialize + DeserializeOwned>(
    v: &[u8],
    tree: &'static str,
) -> Result<Vec<u8>, StoreError> {
    encode(&decode::<T>(v, tree)?, tree)
}

fn as_json<T: Serialize + DeserializeOwned>(
    v: &[u8],
    tree: &'static str,
) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(decode::<T>(v, tree)?).map_err(|e| StoreError::Encode {
        tree,
        detail: e.to_string(),
    })
}

macro_rules! kind {
    ($t:ty) => {
        &Kind {
            recode: recode::<$t>,
            json: as_json::<$t>,
        }
    };
}

/// What the record at `key` of `tree` is, as the writers encode it
/// (`tx.rs`): `None` for what is not an encoded record (counters, ids,
/// texts, index keys), which stays as it is.
fn kind(tree: TreeName, key: &[u8]) -> Option<&'static Kind> {
    use crate::domain as d;
    use crate::engine::{GroupRecord, Member, SilenceBook};
    Some(match tree {
        TreeName::Tickets => kind!(d::Ticket),
        TreeName::Timeline => kind!(d::TimelineEntry),
        TreeName::Outbox
        | TreeName::MailOutbox
        | TreeName::JobOutbox
        | TreeName::AmOutbox
        | TreeName::DeadLetters => kind!(OutboxItem),
        TreeName::Runs => kind!(d::run::Run),
        TreeName::Deploys if key.starts_with(b"lock:") => kind!(d::run::Run),
        TreeName::Deploys if key.starts_with(b"hist:") => kind!(Vec<d::run::Deployed>),
        TreeName::Groups if key.first() == Some(&MEMBER) => kind!(Member),
        TreeName::Groups => kind!(GroupRecord),
        TreeName::Silenced => kind!(d::alert::Alert),
        TreeName::Meta => match key {
            super::keys::SILENCES => kind!(SilenceBook),
            super::keys::MAINTENANCE => kind!(d::maintenance::MaintenanceBook),
            super::keys::HEARTBEATS => kind!(d::heartbeat::HeartbeatBook),
            super::keys::STATUS_BOARD => kind!(d::status::StatusBoard),
            k if k.starts_with(b"oncall:") => kind!(Vec<d::rotation::Override>),
            k if k.starts_with(super::keys::INCIDENT) => kind!(d::status::PublicIncident),
            k if k.starts_with(b"custvis:") => kind!(Vec<u32>),
            k if k.starts_with(b"branch:") => kind!(d::code::BranchState),
            _ => return None,
        },
        _ => return None,
    })
}

/// Whether `tree` may hold encoded records at all (the others are not
/// scanned: indexes and ids of a large store).
fn holds_records(tree: TreeName) -> bool {
    !matches!(
        tree,
        TreeName::ByState
            | TreeName::ByTeam
            | TreeName::Idempotency
            | TreeName::Broken
            | TreeName::Adapter
    )
}

/// The schema version the store's `meta` says (0: none).
pub(super) fn schema_of(db: &dyn Backend) -> Result<u64, StoreError> {
    match db.get(TreeName::Meta, SCHEMA_KEY)? {
        Some(v) => read_u64(&v, "meta"),
        None => Ok(0),
    }
}

impl Store {
    /// Migrates a store of an older schema to the binary records of schema
    /// 3 (see the module's docs). Returns how many records it rewrote.
    pub(crate) fn migrate_to_binary(&self) -> Result<u64, StoreError> {
        if schema_of(&*self.db)? >= BINARY_SCHEMA {
            return Ok(0);
        }
        let mut rewritten = 0;
        for tree in TreeName::ALL.into_iter().filter(|t| holds_records(*t)) {
            rewritten += self.migrate_tree(tree, MIGRATE_BATCH)?;
        }
        self.db
            .put(TreeName::Meta, SCHEMA_KEY, &be64(BINARY_SCHEMA))?;
        self.db.flush()?;
        if rewritten > 0 {
            tracing::info!(
                records = rewritten,
                "store migrated to schema {BINARY_SCHEMA}: records rewritten in the binary encoding"
            );
        }
        Ok(rewritten)
    }

    /// Rewrites the JSON records of `tree`, `batch` to a transaction, in
    /// key order. Each transaction reads its keys again and rewrites only
    /// those still JSON, so that two processes opening one database at once
    /// (PostgreSQL) do not undo each other.
    fn migrate_tree(&self, tree: TreeName, batch: usize) -> Result<u64, StoreError> {
        let name = tree.as_str();
        let mut after: Option<Vec<u8>> = None;
        let mut rewritten = 0;
        loop {
            let mut keys: Vec<Vec<u8>> = Vec::with_capacity(batch);
            let mut last = None;
            let from = match &after {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => Bound::Unbounded,
            };
            for r in self.db.scan(tree, from, Bound::Unbounded, false) {
                let (k, v) = r?;
                if kind(tree, &k).is_some() && is_json(&v) {
                    keys.push(k.clone());
                }
                last = Some(k);
                if keys.len() >= batch {
                    break;
                }
            }
            if keys.is_empty() {
                return Ok(rewritten);
            }
            let mut done = 0;
            self.db.transact(&mut |tx| {
                done = 0;
                if tx.reads_ahead() {
                    let ahead: Vec<(TreeName, Vec<u8>)> =
                        keys.iter().map(|k| (tree, k.clone())).collect();
                    tx.prefetch(&ahead)?;
                }
                for k in &keys {
                    let (Some(v), Some(kind)) = (tx.get(tree, k)?, kind(tree, k)) else {
                        continue;
                    };
                    if is_json(&v) {
                        tx.put(tree, k, &(kind.recode)(&v, name)?)?;
                        done += 1;
                    }
                }
                Ok(())
            })?;
            rewritten += done;
            after = last;
        }
    }

    /// Writes `value` at `key` of `tree` as it is (a record of schema 2 is
    /// JSON), and marks the store as of schema 2: for tests of the
    /// migration.
    #[doc(hidden)]
    pub fn put_as_schema_2(
        &self,
        tree: TreeName,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.db.put(tree, key, value)?;
        self.db.put(TreeName::Meta, SCHEMA_KEY, &be64(2))?;
        self.flush()
    }

    /// Every record of the store read through its type, as JSON (the
    /// encoding of the records left aside), with its tree and key: the same
    /// for a store of schema 2 and for it migrated. Values that are not
    /// encoded records (counters, ids) are given as their bytes in hex.
    #[doc(hidden)]
    pub fn records_as_json(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut out = Vec::new();
        for tree in TreeName::ALL {
            for r in self
                .db
                .scan(tree, Bound::Unbounded, Bound::Unbounded, false)
            {
                let (k, v) = r?;
                let mut line = serde_json::json!({
                    "tree": tree.as_str(),
                    "key": hex::encode(&k),
                });
                match kind(tree, &k) {
                    // Read as its type, then shown as JSON, as schema 2
                    // wrote it.
                    Some(kind) => line["json"] = (kind.json)(&v, tree.as_str())?,
                    None => line["hex"] = hex::encode(&v).into(),
                }
                out.push(line);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Ticket;

    /// Every record of the store of schema 2 that main 3ac7cc0 made
    /// (`tests/fixtures/store-v2`), one line each.
    const FIXTURE: &str = include_str!("../../tests/fixtures/store-v2/records.jsonl");

    /// A record of the fixture: tree, key, value, and the value as JSON.
    type Line = (TreeName, Vec<u8>, Vec<u8>, Option<serde_json::Value>);

    fn fixture() -> Vec<Line> {
        FIXTURE
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let tree = TreeName::from_name(v["tree"].as_str().unwrap().as_bytes()).unwrap();
                let key = hex::decode(v["key"].as_str().unwrap()).unwrap();
                let value = hex::decode(v["hex"].as_str().unwrap()).unwrap();
                (tree, key, value, v.get("json").cloned())
            })
            .collect()
    }

    #[test]
    fn every_record_of_a_schema_2_store_reads_the_same_once_rewritten() {
        let mut kinds = std::collections::BTreeSet::new();
        for (tree, key, old, json) in fixture() {
            let Some(kind) = kind(tree, &key) else {
                continue;
            };
            kinds.insert((
                tree,
                key.first().copied().filter(|_| tree != TreeName::Meta),
            ));
            let json = json.expect("every encoded record of schema 2 is JSON");
            assert!(is_json(&old));
            assert_eq!((kind.json)(&old, "t").unwrap(), json, "{tree:?} {key:?}");
            let new = (kind.recode)(&old, "t").unwrap();
            assert!(!is_json(&new), "{tree:?} {key:?}");
            assert!(
                new.len() < old.len(),
                "{tree:?}: {} ≥ {}",
                new.len(),
                old.len()
            );
            assert_eq!((kind.json)(&new, "t").unwrap(), json, "{tree:?} {key:?}");
            // Rewriting a binary record again changes nothing.
            assert_eq!((kind.recode)(&new, "t").unwrap(), new);
        }
        // The fixture has tickets, timelines, a queued mail, runs, a
        // deploy's history, a group and its alerts, a silenced alert and
        // meta's books.
        for tree in [
            TreeName::Tickets,
            TreeName::Timeline,
            TreeName::MailOutbox,
            TreeName::Runs,
            TreeName::Deploys,
            TreeName::Groups,
            TreeName::Silenced,
            TreeName::Meta,
        ] {
            assert!(
                kinds.iter().any(|(t, _)| *t == tree),
                "no {tree:?} in the fixture"
            );
        }
    }

    #[test]
    fn values_that_are_not_records_are_left_as_they_are() {
        for (tree, key, _, _) in fixture() {
            let plain = matches!(
                tree,
                TreeName::ByState | TreeName::ByTeam | TreeName::Idempotency
            ) || (tree == TreeName::Meta
                && [
                    &b"ticket_seq"[..],
                    b"schema_version",
                    b"link_key",
                    b"load:",
                    b"fig:",
                    b"cnt:",
                    b"marker:",
                ]
                .iter()
                .any(|p| key.starts_with(p)));
            if plain {
                assert!(kind(tree, &key).is_none(), "{tree:?} {key:?}");
            }
        }
    }

    fn a_ticket() -> (Ticket, Vec<u8>) {
        let (_, _, old, _) = fixture()
            .into_iter()
            .find(|(t, ..)| *t == TreeName::Tickets)
            .unwrap();
        let t: Ticket = decode(&old, "tickets").unwrap();
        let bin = encode(&t, "tickets").unwrap();
        (t, bin)
    }

    #[test]
    fn a_record_round_trips_through_the_binary_encoding() {
        let (t, bin) = a_ticket();
        assert_eq!(bin[0], 0xC1);
        assert_eq!(decode::<Ticket>(&bin, "tickets").unwrap(), t);
    }

    fn corrupt<T: DeserializeOwned + std::fmt::Debug>(v: &[u8]) -> String {
        match decode::<T>(v, "tickets") {
            Err(StoreError::Corrupt { tree, detail }) => {
                assert_eq!(tree, "tickets");
                detail
            }
            other => panic!("expected a corrupt record, got {other:?}"),
        }
    }

    #[test]
    fn a_damaged_record_is_corrupt_never_a_panic() {
        let (_, bin) = a_ticket();
        // Cut short anywhere.
        for n in 0..bin.len() {
            corrupt::<Ticket>(&bin[..n]);
        }
        // Bytes left over.
        let mut more = bin.clone();
        more.push(0);
        assert!(corrupt::<Ticket>(&more).contains("left over"));
        // Another type's record, garbage, and a length of 4 GiB that is not there.
        corrupt::<Ticket>(&encode(&vec![1u32, 2], "t").unwrap());
        corrupt::<Ticket>(&[0xC1, 0xC1, 0xC1]);
        corrupt::<Vec<u32>>(&[0xC1, 0xDD, 0xFF, 0xFF, 0xFF, 0xFF]);
        corrupt::<Ticket>(b"{\"id\":");
        // Every byte flipped in turn: an error or another value, never a panic.
        for i in 1..bin.len() {
            let mut b = bin.clone();
            b[i] ^= 0xFF;
            let _ = decode::<Ticket>(&b, "tickets");
        }
    }
}
