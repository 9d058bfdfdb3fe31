//! The engine's alert and deadline rules, and its decisions on lost runs and
//! refusing channels, tested on the real sled store. They
//! import `store`, a layer above the engine, so they live beside the folders
//! instead of inside `engine/` (an in-memory view for the engine would let
//! them move back).

mod alerts;
mod decisions;
mod sla;
