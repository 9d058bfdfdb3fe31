//! The edges: each adapter translates between a service and the engine's
//! events and effects, and decides nothing.

pub mod alertmanager;
pub mod console;
pub mod discord;
pub mod forges;
pub mod http;
pub mod imap;
pub mod jobs;
pub mod smtp;
