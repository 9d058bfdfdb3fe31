//! opsbot: a chat-ops bot. Tickets from slash commands, alerts and support
//! requests; builds and deploys from chat; every change posted to the team
//! channel that owns it; all state in an embedded sled database.
//!
//! # Layout
//!
//! - [`alert`]: alerts from every source, matchers, silences, routes, webhook parsers.
//! - [`discord`]: the Discord adapter (serenity): commands, autocomplete, buttons and
//!   modals, deferred answers, ticket cards and threads, the posting sink.
//! - [`domain`]: ids and names (newtypes parsed at the edge), tickets, timelines.
//! - [`ticket`]: the ticket state machine and who may make each move.
//! - [`commands`]: every chat command declared once; the console parser and `/help`.
//! - [`config`]: `bot.toml`, typed and validated, with file/line/key errors.
//! - [`engine`]: the one place that decides: `Event` in, writes and effects out, no I/O
//!   (its alert rules live in `alerting`).
//! - [`render`]: rich text and the pure builders of what the bot posts.
//! - [`smtp`]: customer mail over SMTP (lettre), an outbox sink.
//! - `support`: the engine's customer-support rules (tickets from the app, customer mail).
//! - [`store`]: the sled trees, the schema check, batches applied in one transaction.
//! - [`runs`]: builds and deploys: run records, states, backend orders.
//! - `builds`: the engine's build rules (runs, progress posts, the loop back to tickets);
//!   `deploys`: services, environments, approvals, locks, rollback.
//! - [`runner`]: the local job runner, an outbox sink.
//! - [`jenkins`]: the Jenkins REST client (builds and deploys on Jenkins).
//! - [`runtime`]: the commit thread (group commit) and the outbox workers; after a failed
//!   flush, the store opened again and writes refused until a test write succeeds.
//! - [`console`]: the terminal as the bot's chat.
//! - [`http`]: the HTTP intake (axum): health, metrics, hooks, the ticket API.
//! - [`jobs`]: jobs and custom commands from `commands/*.toml`.
//! - [`metrics`]: counters and histograms, in Prometheus' text format.
//! - [`sla`]: deadlines per priority and escalation chains (engine rules, timers).
//! - [`oncall`]: on-call rotations (time zones, daylight saving), overrides, `/oncall`.
//! - [`report`]: `/report` figures from the timelines, and the PNG chart (plotters).
//! - [`error`]: the user's errors and ours.
//! - [`sanitize`]: the one sanitiser of untrusted text (terminal escapes, bidi overrides).
//! - [`health`]: the health registry: workers up or down, the store taking writes, the
//!   Discord gateway; what `/healthz`, `/readyz` and the `opsbot_worker_up` gauges say.

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

// The paths the crate had before it was drawn in folders, kept for the
// tests, benches and the binary.
pub use adapters::http::metrics;
pub use adapters::jobs as runner;
pub use adapters::jobs::jenkins;
pub use adapters::{console, discord, http, smtp};
pub use config::jobs;
pub use domain::{alert, rich as render, run as runs, sanitize};
pub use engine::{oncall, sla, tickets as ticket};
pub use runtime::health;
