//! opsbot: a chat-ops bot. Tickets from slash commands, alerts and support
//! requests; builds and deploys from chat; every change posted to the team
//! channel that owns it; all state in an embedded sled database, or in
//! PostgreSQL for several instances.
//!
//! # Layout
//!
//! One folder per layer; each line says what the folder owns and what it may
//! import (`src/architecture_test.rs` holds the rule for the pure folders and
//! that no two folders import each other in a circle).
//!
//! - [`domain`]: the vocabulary, no rules and no I/O: ids and names (newtypes
//!   parsed at the edge), tickets and timelines, alerts and matchers
//!   (maintenance windows, heartbeats, flapping), runs, the
//!   org (people, roles, teams), jobs, services, the policy and rotations with
//!   their time maths, rich text, the sanitiser, the user's error. Imports no
//!   other folder.
//! - [`commands`]: the chat grammar, every command declared once: spec, options,
//!   the console parser, `/help`. Imports `domain`.
//! - [`report`]: `/report` figures from the timelines, and the PNG chart
//!   (plotters). Imports `domain`.
//! - [`config`]: `bot.toml` (serde schema, validation with file/line/key
//!   problems, the `check` summary) and the jobs of `commands/*.toml`. Imports
//!   `domain`, `commands`.
//! - [`error`]: the bot's own errors (store, internal, with an id). Imports
//!   `domain`.
//! - [`engine`]: the one place that decides: `Event` in, writes and effects out,
//!   the `View` trait it reads the store through (and `MemoryView`, that
//!   view in memory, for its tests), one module per feature
//!   (tickets, alerts, builds, deploys, support, sla, oncall, report, storm:
//!   which monitoring posts merge into a summary; maintenance: windows that
//!   keep alerts quiet; heartbeats: monitoring gone silent; status: the
//!   public pages) and `messages`, the words
//!   of every post (snapshot-tested in `engine/snapshots/`). Imports `domain`, `commands`,
//!   `config`, `report`, `error`; no I/O crate, nothing below.
//! - [`store`]: the records, written once over a narrow key-value seam
//!   (`kv.rs`: ordered trees read and written a key at a time in a
//!   transaction, scanned outside one) that two backends implement: sled in
//!   the data directory (`sled_backend.rs`) and PostgreSQL (`postgres.rs`,
//!   several instances on one database). Above the seam: the schema check
//!   (`mod.rs`), keys, the engine's `View` reads (`reads.rs`), batches applied
//!   in one transaction (`tx.rs`), queries, the outbox queues, export.
//!   Imports the layers above it in this list.
//! - [`runtime`]: the commit thread (group commit), the outbox workers and their
//!   pacing, timers, the health registry, the lease on once-only work when
//!   several instances share a database. Imports `store` and the layers above.
//! - [`adapters`]: the edges, which translate and decide nothing: `console`,
//!   `smtp`, `discord` (serenity), `http` (axum: health, metrics, hooks, the
//!   ticket API, the public pages in `web.rs`), `jobs` (the local runner and Jenkins). May import every
//!   other folder.
//!
//! Beside them: `main.rs`, the command line, and `app.rs`, the wiring that
//! `run` and `console` share (both in the binary); `engine_tests/`, the few
//! engine tests that are about the real store (a reopened store, an older
//! one, and that `MemoryView` reads what the store reads; tests only, so
//! above every layer).
//! Every module is named by its folder, inside the crate as in the tests and
//! benches.

#[cfg(test)]
mod architecture_test;
#[cfg(test)]
mod engine_tests;

pub mod adapters;
pub mod commands;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod report;
pub mod runtime;
pub mod store;
