//! Direct messages: `POST /users/@me/channels` opens (or finds) the DM
//! channel with a user; a user whose DMs are closed to the bot refuses
//! messages there with 403 `Cannot send messages to this user` (50007).

use serde_json::{json, Value};

use crate::fake_discord::model::{ChannelRec, Model};
use crate::fake_discord::wire::Reply;

/// Discord's channel type of a DM.
pub(in crate::fake_discord) const DM: u8 = 1;

impl Model {
    pub(super) fn open_dm(&mut self, body: &Value) -> Result<Reply, Reply> {
        let recipient = body["recipient_id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .or_else(|| body["recipient_id"].as_u64())
            .ok_or_else(|| {
                Reply::invalid(
                    "recipient_id",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                )
            })?;
        let id = match self.dms.get(&recipient) {
            Some(&id) => id,
            None => {
                let id = self.next_id();
                let mut rec = ChannelRec::text(id, &format!("dm-{recipient}"));
                rec.kind = DM;
                self.channels.insert(id, rec);
                self.dms.insert(recipient, id);
                id
            }
        };
        Ok(Reply::ok(json!({
            "id": id.to_string(),
            "type": DM,
            "last_message_id": null,
            "flags": 0,
            "recipients": [{"id": recipient.to_string(), "username": format!("user-{recipient}")}],
        })))
    }

    /// 50007 for a message to the DM channel of a user whose DMs are closed.
    pub(super) fn dm_refused(&self, channel: u64) -> Result<(), Reply> {
        let closed = self
            .dms
            .iter()
            .any(|(user, &c)| c == channel && self.dms_closed.contains(user));
        if closed {
            return Err(Reply::error(
                403,
                50007,
                "Cannot send messages to this user",
            ));
        }
        Ok(())
    }
}
