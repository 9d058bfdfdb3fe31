//! Everything stored, read out: every record (for tests), and the JSON
//! lines export of tickets, timelines and runs.

use crate::engine::QueryView;
use crate::error::StoreError;

use std::ops::Bound::Unbounded;

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
