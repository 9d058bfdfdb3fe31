//! Channels: the guild's text channels and the threads started in them.

use serde_json::{json, Value};

use crate::fake_discord::fx;
use crate::fake_discord::model::{ChannelRec, Model};
use crate::fake_discord::wire::Reply;

impl Model {
    /// The channel `c`, if it exists (404 10003) and, with `write`, the bot
    /// may post in it (403 50013).
    pub(super) fn channel_ok(&self, c: &str, write: bool) -> Result<u64, Reply> {
        let unknown = || Reply::error(404, 10003, "Unknown Channel");
        let id: u64 = c.parse().map_err(|_| unknown())?;
        let ch = self.channels.get(&id).ok_or_else(unknown)?;
        if write && ch.forbidden {
            return Err(Reply::error(403, 50013, "Missing Permissions"));
        }
        Ok(id)
    }

    pub(in crate::fake_discord) fn channel_json(&self, c: &ChannelRec) -> Value {
        let mut v = json!({
            "id": c.id.to_string(),
            "type": c.kind,
            "guild_id": self.guild_id.to_string(),
            "name": c.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": false,
            "topic": null,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "parent_id": c.parent_id.map(|p| p.to_string()),
            "flags": 0,
        });
        if c.kind == 11 || c.kind == 12 {
            let now = fx::now();
            v["owner_id"] = json!(self.bot_id.to_string());
            v["message_count"] = json!(0);
            v["member_count"] = json!(1);
            v["total_message_sent"] = json!(0);
            v["thread_metadata"] = json!({
                "archived": false,
                "auto_archive_duration": c.auto_archive,
                "archive_timestamp": now,
                "locked": false,
                "create_timestamp": now,
            });
            v.as_object_mut().unwrap().remove("permission_overwrites");
            v.as_object_mut().unwrap().remove("topic");
        }
        v
    }
}
