//! Everything stored, read out: every record (for tests), and the JSON
//! lines export of tickets, timelines and runs.

use crate::engine::QueryView;
use crate::error::StoreError;

use std::ops::Bound::{Included, Unbounded};

use super::keys::{be64, decode};
use super::kv::TreeName;
use super::Store;
use crate::domain::run::Run;
use crate::domain::{Ticket, TicketId, TimelineEntry};
use crate::engine::{View, Write};

/// One record as stored: its tree, key and value.
pub type Record = (Vec<u8>, Vec<u8>, Vec<u8>);

impl Store {
    /// Every record of every tree, in order: for tests that prove an event
    /// changed nothing at all.
    #[doc(hidden)]
    pub fn contents(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let mut trees = TreeName::ALL;
        trees.sort_by_key(|t| t.as_str());
        for tree in trees {
            for kv in self.db.scan(tree, Unbounded, Unbounded, false) {
                let (k, v) = kv?;
                out.push((tree.as_str().as_bytes().to_vec(), k, v));
            }
        }
        Ok(out)
    }

    /// Writes every ticket, each followed by its timeline, then every run,
    /// as JSON lines: `{"type":"ticket",…}`, `{"type":"timeline",
    /// "ticket":"OPS-1",…}`, `{"type":"run",…}`. Returns the number of
    /// tickets written. Safe while the bot runs and commits; what it
    /// promises depends on the backend:
    ///
    /// - PostgreSQL: the whole export is one `REPEATABLE READ` snapshot,
    ///   the store as it was committed when the export began.
    /// - sled (no snapshots; a long read must not hold the commit thread
    ///   back): the export is read in chunks of [`EXPORT_CHUNK`] tickets
    ///   (or runs), each chunk read in one short snapshot (a commit waits
    ///   for at most one chunk's reads, never for the writing out). It
    ///   holds exactly the tickets committed before the export began (their
    ///   numbers up to the last one then), each once, in number order, each
    ///   with its own timeline as of the same moment (the ticket's
    ///   `timeline_len` entries); a ticket changed while the export runs is
    ///   shown as it stood when its chunk was read, so two tickets may be of
    ///   different moments. Runs likewise: those started before the export
    ///   began, each as its chunk read it.
    pub fn export_jsonl(&self, out: &mut dyn std::io::Write) -> Result<usize, ExportError> {
        if self.is_exclusive() {
            return self.export_chunked(out, true);
        }
        self.snapshot(|s| s.export_chunked(out, false))?
    }

    /// Runs `read` in a snapshot of its own when `snap`, else on this
    /// handle (already one snapshot).
    fn read_in<R>(
        &self,
        snap: bool,
        read: impl FnOnce(&Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if snap {
            self.snapshot(read)?
        } else {
            read(self)
        }
    }

    /// The export, chunk by chunk (see [`Store::export_jsonl`]).
    /// `snap`: each chunk in a snapshot of its own (sled); else this handle
    /// is one snapshot already (PostgreSQL).
    fn export_chunked(
        &self,
        out: &mut dyn std::io::Write,
        snap: bool,
    ) -> Result<usize, ExportError> {
        // Where the export stops: what was committed when it began.
        let (last_ticket, last_run) = self.read_in(snap, |s| {
            Ok((s.last_ticket_number()?, s.last_run_number()?))
        })?;
        let mut n = 0;
        let mut from = 1u64;
        while from <= last_ticket {
            let chunk = self.read_in(snap, |s| s.ticket_chunk(from, last_ticket))?;
            let Some((next, tickets)) = chunk else { break };
            for (t, timeline) in tickets {
                write_ticket(out, &t, &timeline)?;
                n += 1;
            }
            from = next;
        }
        let mut from = 1u64;
        while from <= last_run {
            let chunk = self.read_in(snap, |s| s.run_chunk(from, last_run))?;
            let Some((next, runs)) = chunk else { break };
            for r in runs {
                let mut v = serde_json::to_value(r)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("type".into(), "run".into());
                }
                writeln!(out, "{v}")?;
            }
            from = next;
        }
        out.flush()?;
        Ok(n)
    }

    /// Up to [`EXPORT_CHUNK`] tickets numbered `from..=last`, each with its
    /// timeline, and the number to go on from (`None`: none left).
    fn ticket_chunk(&self, from: u64, last: u64) -> Result<Option<Chunk<Ticket>>, StoreError> {
        let (lo, hi) = (be64(from), be64(last));
        let mut tickets = Vec::with_capacity(EXPORT_CHUNK);
        let mut next = None;
        for r in self
            .db
            .scan(TreeName::Tickets, Included(&lo), Included(&hi), false)
            .take(EXPORT_CHUNK)
        {
            let (_, v) = r?;
            let t: Ticket = decode(&v, "tickets")?;
            next = Some(t.id.num().saturating_add(1));
            let timeline = self.timeline(&t.id)?;
            tickets.push((t, timeline));
        }
        Ok(next.map(|n| (n, tickets)))
    }

    /// Up to [`EXPORT_CHUNK`] runs numbered `from..=last`, and the number to
    /// go on from (`None`: none left).
    fn run_chunk(&self, from: u64, last: u64) -> Result<Option<(u64, Vec<Run>)>, StoreError> {
        let (lo, hi) = (be64(from), be64(last));
        let mut runs = Vec::with_capacity(EXPORT_CHUNK);
        let mut next = None;
        for r in self
            .db
            .scan(TreeName::Runs, Included(&lo), Included(&hi), false)
            .take(EXPORT_CHUNK)
        {
            let (_, v) = r?;
            let run: Run = decode(&v, "runs")?;
            next = Some(run.id.0.saturating_add(1));
            runs.push(run);
        }
        Ok(next.map(|n| (n, runs)))
    }
}

/// How many tickets (or runs) one snapshot of an export reads on sled.
pub const EXPORT_CHUNK: usize = 200;

/// Tickets each with its timeline, and the number to go on from.
type Chunk<T> = (u64, Vec<(T, Vec<TimelineEntry>)>);

fn write_ticket(
    out: &mut dyn std::io::Write,
    t: &Ticket,
    timeline: &[TimelineEntry],
) -> Result<(), ExportError> {
    let mut v = serde_json::to_value(t)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), "ticket".into());
    }
    writeln!(out, "{v}")?;
    for e in timeline {
        let mut v = serde_json::to_value(e)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "timeline".into());
            o.insert("ticket".into(), t.id.to_string().into());
        }
        writeln!(out, "{v}")?;
    }
    Ok(())
}

/// How many records an import writes in one transaction.
const IMPORT_BATCH: usize = 500;

impl Store {
    /// Restores an export ([`Store::export_jsonl`]) into this store, which
    /// must be empty: every ticket with its indexes and figures, its
    /// timeline, and every run, in transactions of [`IMPORT_BATCH`]
    /// records. Returns the number of tickets. A line that is not a record
    /// of an export stops the import, naming the line; what was imported
    /// before it stays (the store is no longer empty: start from an empty
    /// one again).
    pub fn import_jsonl(&self, input: &mut dyn std::io::BufRead) -> Result<usize, ImportError> {
        if self.db.count(TreeName::Tickets)? > 0
            || self.db.count(TreeName::Runs)? > 0
            || self.reads().last_ticket_number()? > 0
        {
            return Err(ImportError::NotEmpty(self.backend()));
        }
        let mut writes: Vec<Write> = Vec::new();
        let mut tickets = 0;
        let mut line = String::new();
        let mut n = 0usize;
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                break;
            }
            n += 1;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |detail: String| ImportError::Line { line: n, detail };
            let mut v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let kind = v
                .as_object_mut()
                .and_then(|o| o.remove("type"))
                .and_then(|t| t.as_str().map(str::to_string))
                .ok_or_else(|| bad("a record without its \"type\"".into()))?;
            match kind.as_str() {
                "ticket" => {
                    let t: Ticket = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
                    writes.push(Write::Ticket(t));
                    tickets += 1;
                }
                "timeline" => {
                    let id = v
                        .as_object_mut()
                        .and_then(|o| o.remove("ticket"))
                        .and_then(|t| t.as_str().map(str::to_string))
                        .ok_or_else(|| bad("a timeline entry without its \"ticket\"".into()))?;
                    let id = TicketId::try_from(id).map_err(bad)?;
                    let e: TimelineEntry =
                        serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
                    writes.push(Write::Timeline(id, e));
                }
                "run" => {
                    let r: Run = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
                    writes.push(Write::Run(r));
                }
                other => {
                    return Err(bad(format!(
                        "a record of type {:?}; an export has ticket, timeline and run",
                        crate::domain::rich::clip_plain(other, 20)
                    )))
                }
            }
            if writes.len() >= IMPORT_BATCH {
                self.import_batch(std::mem::take(&mut writes))?;
            }
        }
        self.import_batch(writes)?;
        self.db.flush()?;
        Ok(tickets)
    }

    fn import_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now();
        self.db.transact(&mut |tx| {
            for w in &writes {
                super::tx::write(tx, w.clone(), now)?;
            }
            Ok(())
        })
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the store ({0}) is not empty: an import restores into an empty one only; point [storage] at a new data directory or an empty database")]
    NotEmpty(String),
    #[error("line {line} is not a record of an opsbot export: {detail}")]
    Line { line: usize, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
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
