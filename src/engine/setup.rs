//! What the chat adapter did not find when it connected (channels by
//! name, people by username, permissions it lacks): told in the operations
//! channel, unless that is one of the channels not found or one it may not
//! post in.

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
    missing_permissions: &[(ChannelName, Vec<String>)],
) -> Result<Decision, EngineError> {
    // Where the bot can see #ops but not post, it cannot tell it there.
    let ops_mute = missing_channels.contains(cx.ops())
        || missing_permissions.iter().any(|(c, lacks)| {
            c == cx.ops()
                && lacks
                    .iter()
                    .any(|p| p == "Send Messages" || p == "View Channel")
        });
    if ops_mute {
        return Ok(Decision::default());
    }
    let mut out = Out::new();
    if let Some(words) =
        messages::discord_not_found(missing_channels, missing_users, members_refused)
    {
        out.post(cx.ops(), None, words);
    }
    if let Some(words) = messages::discord_permissions_missing(missing_permissions) {
        out.post(cx.ops(), None, words);
    }
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
