//! Threads started from a message.

use serde_json::{json, Value};

use crate::fake_discord::model::{ChannelRec, Model};
use crate::fake_discord::rules::check_len;
use crate::fake_discord::wire::Reply;
use crate::fake_discord::MESSAGE_FLAG_HAS_THREAD;

impl Model {
    pub(super) fn start_thread(
        &mut self,
        c: &str,
        mid: &str,
        body: &Value,
    ) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, true)?;
        if self.channels[&c].kind != 0 {
            return Err(Reply::error(
                400,
                50024,
                "Cannot execute action on this channel type",
            ));
        }
        let i = self.find_message(c, mid)?;
        if self.messages[i].thread_id.is_some() {
            return Err(Reply::error(
                400,
                160004,
                "A thread has already been created for this message",
            ));
        }
        let name = body["name"].as_str().unwrap_or_default();
        check_len("name", name, 1, 100)?;
        // A thread started from a message has the message's id.
        let id = self.messages[i].id;
        let ch = ChannelRec {
            id,
            name: name.into(),
            kind: 11,
            parent_id: Some(c),
            forbidden: false,
            overwrites: Vec::new(),
            auto_archive: body["auto_archive_duration"].as_u64().unwrap_or(1440),
            tags: Vec::new(),
            applied: Vec::new(),
            archived: false,
        };
        let json = self.channel_json(&ch);
        self.channels.insert(id, ch);
        let rec = &mut self.messages[i];
        rec.thread_id = Some(id);
        rec.message["thread"] = json.clone();
        let flags = rec.message["flags"].as_u64().unwrap_or(0) | MESSAGE_FLAG_HAS_THREAD;
        rec.message["flags"] = json!(flags);
        Ok(Reply::ok(json))
    }
}
