//! The engine's rules, driven through `decide` and `query` on the
//! in-memory view ([`super::MemoryView`]): no store, no sled.

use crate::engine::{Effect, Post};

pub(crate) mod alerts;
pub(crate) mod sla;

/// A queued effect as the tests read a post: `#channel text`, or
/// `#channel›OPS-N text` in a ticket's thread; `None` for any other effect.
pub(crate) fn post_line(effect: Effect) -> Option<String> {
    let Effect::Post(Post {
        channel,
        ticket,
        thread,
        body,
        ..
    }) = effect
    else {
        return None;
    };
    let place = match (thread, ticket) {
        (true, Some(t)) => format!("#{channel}›{t}"),
        _ => format!("#{channel}"),
    };
    Some(format!("{place} {}", body.to_plain()))
}
