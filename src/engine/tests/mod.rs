//! The engine's rules, driven through `decide` and `query` on the
//! in-memory view ([`super::MemoryView`]): no store, no sled.

pub(crate) mod alerts;
pub(crate) mod sla;
