//! The engine's rules where what they prove is about the sled store itself
//! (records across a reopened store, stores made by older versions), and its
//! decisions on lost runs and refusing channels. They
//! import `store`, a layer above the engine, so they live beside the folders
//! instead of inside `engine/`; every other engine test runs on the
//! in-memory view in `engine/tests/`, but for the code loop's (`code`),
//! whose jobs come from a `commands/` folder on disk.

mod alerts;
mod code;
mod decisions;
mod forge_ci;
mod listing;
mod parity;
mod public;
mod sla;
