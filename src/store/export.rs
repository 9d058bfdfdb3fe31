//! Everything stored, read out: every record (for tests), and the JSON
//! lines export of tickets, timelines and runs.

use crate::engine::QueryView;
use crate::error::StoreError;

use std::ops::Bound::Unbounded;

use super::kv::TreeName;
use super::Store;

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
