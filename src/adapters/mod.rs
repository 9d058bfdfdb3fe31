//! The edges: each adapter translates between a service and the engine's
//! events and effects, and decides nothing.

pub mod console;
pub mod discord;
pub mod forges;
pub mod http;
pub mod jobs;
pub mod smtp;
