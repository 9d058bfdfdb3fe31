//! Errors: the user's (shown as written) and ours (logged, shown with an id).

use std::fmt;

pub use crate::domain::error::UserError;

/// A failure of the store: the disk, a corrupt record, a newer schema.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("the data directory {path} is already in use by another opsbot process")]
    Locked { path: String },
    #[error("the data directory {path} was written by a newer opsbot (schema {found}); this binary knows schema {known}. Upgrade opsbot, or point [storage] path at another directory")]
    NewerSchema {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("the data directory {path} is not an opsbot database ({reason}); refusing to start with empty state. Point [storage] path at an empty or new directory, or restore it from an `opsbot export` backup")]
    NotOurs { path: String, reason: String },
    #[error("corrupt record in tree `{tree}`: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("cannot encode a record for tree `{tree}`: {detail}; nothing was written")]
    Encode { tree: &'static str, detail: String },
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("transaction conflict")]
    Conflict,
    /// The database server failed or cannot be reached (PostgreSQL).
    #[error("the database failed: {detail}")]
    Database { detail: String },
    /// A bug (a panic) while deciding or writing one event: the event was
    /// refused and nothing of it stored; the log says more under `id`.
    #[error("internal error {id} while {doing} an event; nothing of it was stored")]
    Panicked { id: ErrorId, doing: &'static str },
}

impl StoreError {
    /// Whether the disk (or sled's log on it) failed, rather than one
    /// record: the store must stop taking writes until a write succeeds.
    pub fn is_storage(&self) -> bool {
        matches!(self, StoreError::Sled(_) | StoreError::Database { .. })
    }
}

/// Why the engine did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The user asked for something not allowed or malformed; nothing changed.
    #[error(transparent)]
    Refused(#[from] UserError),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A short id to find an internal error in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorId(pub u32);

impl ErrorId {
    pub fn fresh() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let salt = std::process::id().wrapping_mul(2654435761);
        ErrorId(salt ^ NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ErrorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E{:08x}", self.0)
    }
}

/// The message a panic carried (a `&str` or a `String`), for the log.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
