//! What the chat adapter did not find when it connected (channels by
//! name, people by username): told in the operations channel, unless that
//! is one of the channels not found.

use crate::domain::{ChannelName, UserName};
use crate::engine::context::{Cx, Out};
use crate::engine::effect::Decision;
use crate::engine::messages;
use crate::error::EngineError;

pub(super) fn chat_setup(
    cx: &Cx<'_>,
    missing_channels: &[ChannelName],
    missing_users: &[(UserName, String)],
    members_refused: bool,
) -> Result<Decision, EngineError> {
    let Some(words) = messages::discord_not_found(missing_channels, missing_users, members_refused)
    else {
        return Ok(Decision::default());
    };
    if missing_channels.contains(cx.ops()) {
        return Ok(Decision::default());
    }
    let mut out = Out::new();
    out.post(cx.ops(), None, words);
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
