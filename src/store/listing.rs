//! The index `/ticket list` and `/api/v1/tickets` read, and the counts
//! that give their totals, kept in the same transaction as the ticket
//! writes, so that a list costs what one page costs, whatever the store
//! holds.
//!
//! Keys, in `by_state`, each ending in the ticket number (u64 BE), so that
//! a reverse scan of a prefix gives the newest first:
//!
//! | prefix | tickets |
//! | --- | --- |
//! | state code | in that state (the state index, kept by `tx.rs`) |
//! | `0xB1` ++ team ++ `0x00` ++ state code | of that team in that state |
//! | `0xB2` ++ person ++ `0x00` ++ state code | assigned to that person in that state |
//! | `0xB3` ++ team ++ `0x00` ++ person ++ `0x00` ++ state code | both |
//!
//! `meta` keeps, under `cnt:` ++ prefix, how many tickets each prefix holds
//! (i64 BE; removed at zero), and under `cntb:` ++ prefix ++ block (u64
//! BE) how many of them have a number in that block of [`BLOCK`] numbers
//! (the block is the number shifted right by [`BLOCK_BITS`]), so that a
//! deep page (`page:` N, an offset) skips whole blocks by their counts and
//! scans keys in one block only: its cost grows with the store's numbers
//! divided by [`BLOCK`], not with the offset. A list of "not closed"
//! tickets merges the five states' scans by number. Stores made before the
//! index (or its blocks) get it built once, from the tickets, when they
//! open ([`super::Store::index_list_once`]).

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

use super::keys::{be64, num_suffix};
use super::kv::{prefix_end, scan_prefix, Scan, TreeName, Tx};
use crate::domain::{TeamName, Ticket, TicketState, UserName};
use crate::engine::{ListAt, ListFilter};
use crate::error::StoreError;

/// Set once the list's index and counts have been built from the tickets.
pub(super) const LIST_INDEXED: &[u8] = b"list_indexed";

/// Set once the block counts have been built from the tickets.
pub(super) const BLOCKS_INDEXED: &[u8] = b"list_blocks_indexed";

const COUNT: &[u8] = b"cnt:";
const BLOCK_COUNT: &[u8] = b"cntb:";

/// A block holds the numbers that agree but for their last `BLOCK_BITS`
/// bits (few in tests, so that their small stores span many blocks).
#[cfg(not(test))]
pub(super) const BLOCK_BITS: u32 = 10;
#[cfg(test)]
pub(super) const BLOCK_BITS: u32 = 3;
/// How many ticket numbers a block holds.
pub(super) const BLOCK: u64 = 1 << BLOCK_BITS;
const BY_TEAM: u8 = 0xB1;
const BY_ASSIGNEE: u8 = 0xB2;
const BY_BOTH: u8 = 0xB3;

/// The prefix of the tickets in `state` of `team` (any: `None`) assigned
/// to `assignee` (any: `None`).
fn prefix(team: Option<&TeamName>, assignee: Option<&UserName>, state: TicketState) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    let name = |k: &mut Vec<u8>, s: &str| {
        k.extend_from_slice(s.as_bytes());
        k.push(0);
    };
    match (team, assignee) {
        (None, None) => {}
        (Some(t), None) => {
            k.push(BY_TEAM);
            name(&mut k, t.as_str());
        }
        (None, Some(u)) => {
            k.push(BY_ASSIGNEE);
            name(&mut k, u.as_str());
        }
        (Some(t), Some(u)) => {
            k.push(BY_BOTH);
            name(&mut k, t.as_str());
            name(&mut k, u.as_str());
        }
    }
    k.push(state.code());
    k
}

/// The prefixes a ticket is listed under, the state index's first.
fn prefixes(t: &Ticket) -> Vec<Vec<u8>> {
    let (team, user) = (t.team.as_ref(), t.assignee.as_ref());
    let mut out = vec![prefix(None, None, t.state)];
    if let Some(tm) = team {
        out.push(prefix(Some(tm), None, t.state));
    }
    if let Some(u) = user {
        out.push(prefix(None, Some(u), t.state));
    }
    if let (Some(tm), Some(u)) = (team, user) {
        out.push(prefix(Some(tm), Some(u), t.state));
    }
    out
}

/// The state index's own keys (one byte of prefix) are written by
/// `tx.rs`; this file writes the others.
fn ours(prefix: &[u8]) -> bool {
    prefix.len() > 1
}

fn key(prefix: &[u8], num: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&be64(num));
    k
}

fn count_key(prefix: &[u8]) -> Vec<u8> {
    let mut k = COUNT.to_vec();
    k.extend_from_slice(prefix);
    k
}

fn block_count_key(prefix: &[u8], block: u64) -> Vec<u8> {
    let mut k = BLOCK_COUNT.to_vec();
    k.extend_from_slice(prefix);
    k.extend_from_slice(&be64(block));
    k
}

fn block_counts_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut k = BLOCK_COUNT.to_vec();
    k.extend_from_slice(prefix);
    k
}

fn read_i64(v: &[u8]) -> Result<i64, StoreError> {
    v.try_into()
        .map(i64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree: "meta",
            detail: format!("a list count of {} bytes, not 8", v.len()),
        })
}

fn add(tx: &dyn Tx, k: &[u8], by: i64) -> Result<(), StoreError> {
    let n = match tx.get(TreeName::Meta, k)? {
        Some(v) => read_i64(&v)?,
        None => 0,
    };
    let n = n.saturating_add(by);
    if n <= 0 {
        tx.delete(TreeName::Meta, k)
    } else {
        tx.put(TreeName::Meta, k, &n.to_be_bytes())
    }
}

/// Applies a ticket write to the index and counts, inside its transaction.
pub(super) fn apply(tx: &dyn Tx, old: Option<&Ticket>, new: &Ticket) -> Result<(), StoreError> {
    let num = new.id.num();
    let before = old.map(prefixes).unwrap_or_default();
    let after = prefixes(new);
    for p in before.iter().filter(|p| !after.contains(p)) {
        if ours(p) {
            tx.delete(TreeName::ByState, &key(p, num))?;
        }
        add(tx, &count_key(p), -1)?;
        add(tx, &block_count_key(p, num >> BLOCK_BITS), -1)?;
    }
    for p in after.iter().filter(|p| !before.contains(p)) {
        if ours(p) {
            tx.put(TreeName::ByState, &key(p, num), &[])?;
        }
        add(tx, &count_key(p), 1)?;
        add(tx, &block_count_key(p, num >> BLOCK_BITS), 1)?;
    }
    Ok(())
}

/// The states a filter lists.
fn states(filter: &ListFilter) -> Vec<TicketState> {
    match filter.state {
        Some(s) => vec![s],
        None => TicketState::ALL
            .iter()
            .copied()
            .filter(|s| *s != TicketState::Closed)
            .collect(),
    }
}

/// Scans, newest first, merged by ticket number.
struct Merged<'a> {
    heads: Vec<std::iter::Peekable<Scan<'a>>>,
}

impl Iterator for Merged<'_> {
    type Item = Result<u64, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, u64)> = None;
        for (i, h) in self.heads.iter_mut().enumerate() {
            match h.peek() {
                None => continue,
                Some(Err(_)) => {
                    return h.next().map(|r| r.map(|_| 0));
                }
                Some(Ok((k, _))) => {
                    let Some(n) = num_suffix(k) else {
                        return Some(Err(StoreError::Corrupt {
                            tree: "by_state",
                            detail: format!("a list key of {} bytes", k.len()),
                        }));
                    };
                    if best.is_none_or(|(_, b)| n > b) {
                        best = Some((i, n));
                    }
                }
            }
        }
        let (i, n) = best?;
        self.heads[i].next();
        Some(Ok(n))
    }
}

impl super::Store {
    /// How many tickets a filter lists: a few counters, no ticket read.
    pub(super) fn list_total(&self, filter: &ListFilter) -> Result<u64, StoreError> {
        let mut total: u64 = 0;
        for s in states(filter) {
            let k = count_key(&prefix(filter.team.as_ref(), filter.assignee.as_ref(), s));
            if let Some(v) = self.db.get(TreeName::Meta, &k)? {
                total = total.saturating_add(read_i64(&v)?.max(0) as u64);
            }
        }
        Ok(total)
    }

    /// The numbers of the tickets a filter lists, newest first, from
    /// `at`: skips `at.offset` keys of the index, reads no ticket. A deep
    /// offset skips whole blocks by their counts first ([`BLOCK`]).
    pub(super) fn list_numbers(
        &self,
        filter: &ListFilter,
        at: &ListAt,
    ) -> Result<Vec<u64>, StoreError> {
        let prefixes: Vec<Vec<u8>> = states(filter)
            .into_iter()
            .map(|s| prefix(filter.team.as_ref(), filter.assignee.as_ref(), s))
            .collect();
        // Numbers below `top` (all: `None`), `offset` of them skipped.
        let (mut top, mut offset) = (at.before, at.offset);
        if at.before.is_none() && at.offset >= BLOCK {
            match self.skip_blocks(&prefixes, at.offset)? {
                Some((block, skipped)) => {
                    top = (block + 1).checked_mul(BLOCK);
                    offset -= skipped;
                }
                None => return Ok(Vec::new()),
            }
        }
        let mut heads = Vec::new();
        for p in &prefixes {
            let end = match top {
                Some(n) => key(p, n),
                // A prefix ends in a state code (0–5): it has an end.
                None => prefix_end(p).unwrap_or_else(|| key(p, u64::MAX)),
            };
            heads.push(
                self.db
                    .scan(TreeName::ByState, Included(p), Excluded(&end), true)
                    .peekable(),
            );
        }
        let mut out = Vec::with_capacity(at.limit);
        let mut skipped: u64 = 0;
        for n in (Merged { heads }) {
            let n = n?;
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if out.len() >= at.limit {
                break;
            }
            out.push(n);
        }
        Ok(out)
    }

    /// Walks the block counts of `prefixes` (merged), newest block first,
    /// to the block that holds the ticket `offset` tickets down the list:
    /// that block, and how many tickets the blocks above it hold. `None`:
    /// the list holds no more than `offset`.
    fn skip_blocks(
        &self,
        prefixes: &[Vec<u8>],
        offset: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let mut heads: Vec<std::iter::Peekable<Scan<'_>>> = Vec::new();
        for p in prefixes {
            let from = block_counts_prefix(p);
            let end = prefix_end(&from).unwrap_or_else(|| block_count_key(p, u64::MAX));
            heads.push(
                self.db
                    .scan(TreeName::Meta, Included(&from), Excluded(&end), true)
                    .peekable(),
            );
        }
        let corrupt = |k: &[u8]| StoreError::Corrupt {
            tree: "meta",
            detail: format!("a list block count's key of {} bytes", k.len()),
        };
        let mut skipped: u64 = 0;
        loop {
            let mut best: Option<u64> = None;
            for h in heads.iter_mut() {
                if let Some(Err(_)) = h.peek() {
                    if let Some(Err(e)) = h.next() {
                        return Err(e);
                    }
                }
                if let Some(Ok((k, _))) = h.peek() {
                    let b = num_suffix(k).ok_or_else(|| corrupt(k))?;
                    best = Some(best.map_or(b, |x| x.max(b)));
                }
            }
            let Some(block) = best else {
                return Ok(None);
            };
            let mut here: u64 = 0;
            for h in heads.iter_mut() {
                let this = matches!(h.peek(), Some(Ok((k, _))) if num_suffix(k) == Some(block));
                if this {
                    if let Some(r) = h.next() {
                        here = here.saturating_add(read_i64(&r?.1)?.max(0) as u64);
                    }
                }
            }
            if skipped.saturating_add(here) > offset {
                return Ok(Some((block, skipped)));
            }
            skipped = skipped.saturating_add(here);
        }
    }

    /// Stores made before the list's index get it built once, from the
    /// tickets, a thousand tickets per transaction; the counts are written
    /// with the last one, and the mark after it.
    pub(crate) fn index_list_once(&self) -> Result<(), StoreError> {
        if self.db.get(TreeName::Meta, LIST_INDEXED)?.is_some()
            && self.db.get(TreeName::Meta, BLOCKS_INDEXED)?.is_some()
        {
            return Ok(());
        }
        self.forget_list_index()?;
        let mut counts: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut chunk: Vec<(u64, Vec<Vec<u8>>)> = Vec::with_capacity(1000);
        let write = |chunk: &[(u64, Vec<Vec<u8>>)]| {
            self.db.transact(&mut |tx| {
                for (num, ps) in chunk {
                    for p in ps.iter().filter(|p| ours(p)) {
                        tx.put(TreeName::ByState, &key(p, *num), &[])?;
                    }
                }
                Ok(())
            })
        };
        let mut built = 0u64;
        for t in self.tickets() {
            let t = t?;
            let ps = prefixes(&t);
            for p in &ps {
                *counts.entry(count_key(p)).or_default() += 1;
                *counts
                    .entry(block_count_key(p, t.id.num() >> BLOCK_BITS))
                    .or_default() += 1;
            }
            chunk.push((t.id.num(), ps));
            if chunk.len() >= 1000 {
                write(&chunk)?;
                built += chunk.len() as u64;
                chunk.clear();
            }
        }
        built += chunk.len() as u64;
        let counts: Vec<(Vec<u8>, i64)> = counts.into_iter().collect();
        self.db.transact(&mut |tx| {
            for (num, ps) in &chunk {
                for p in ps.iter().filter(|p| ours(p)) {
                    tx.put(TreeName::ByState, &key(p, *num), &[])?;
                }
            }
            for (k, n) in &counts {
                tx.put(TreeName::Meta, k, &n.to_be_bytes())?;
            }
            tx.put(TreeName::Meta, LIST_INDEXED, b"1")?;
            tx.put(TreeName::Meta, BLOCKS_INDEXED, b"1")
        })?;
        self.db.flush()?;
        if built > 0 {
            tracing::info!(tickets = built, "built the list's index of an older store");
        }
        Ok(())
    }

    /// Makes this store look like one from before the list's index.
    pub(crate) fn forget_list_index(&self) -> Result<(), StoreError> {
        for (tree, p) in [
            (TreeName::ByState, vec![BY_TEAM]),
            (TreeName::ByState, vec![BY_ASSIGNEE]),
            (TreeName::ByState, vec![BY_BOTH]),
            (TreeName::Meta, COUNT.to_vec()),
            (TreeName::Meta, BLOCK_COUNT.to_vec()),
        ] {
            loop {
                let keys: Vec<Vec<u8>> = scan_prefix(&*self.db, tree, &p)
                    .take(1000)
                    .map(|r| r.map(|(k, _)| k))
                    .collect::<Result<_, _>>()?;
                if keys.is_empty() {
                    break;
                }
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                self.db.delete_many(tree, &refs)?;
            }
        }
        self.db.delete(TreeName::Meta, LIST_INDEXED)?;
        self.db.delete(TreeName::Meta, BLOCKS_INDEXED)?;
        Ok(())
    }
}

#[cfg(test)]
impl super::Store {
    /// Makes this store look like one whose list index has no block
    /// counts yet (from before they were kept).
    pub(crate) fn forget_list_blocks(&self) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = scan_prefix(&*self.db, TreeName::Meta, BLOCK_COUNT)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        self.db.delete_many(TreeName::Meta, &refs)?;
        self.db.delete(TreeName::Meta, BLOCKS_INDEXED)
    }
}
