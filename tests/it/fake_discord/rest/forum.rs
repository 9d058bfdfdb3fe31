//! Forum channels (type 15): posts (threads started with their first
//! message), a post's applied tags and the forum's available tags. Discord
//! refuses a plain message in a forum (`messages.rs`), a post without a
//! message, an applied tag the forum does not have, more than 5 applied
//! tags, more than 20 tags in a forum, a tag name over 20 characters or
//! used twice, and a change of the forum's tags without Manage Channels.

use serde_json::{json, Value};

use crate::fake_discord::model::{ChannelRec, Model, Origin};
use crate::fake_discord::rules::{check_len, validate_message};
use crate::fake_discord::wire::Reply;

/// Discord's limits.
const MAX_APPLIED: usize = 5;
const MAX_TAGS: usize = 20;
const MANAGE_CHANNELS: u64 = 1 << 4;

fn snowflake(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
}

impl Model {
    pub(super) fn is_forum(&self, c: &str) -> bool {
        c.parse()
            .ok()
            .and_then(|id: u64| self.channels.get(&id))
            .is_some_and(|ch| ch.kind == 15)
    }

    /// `POST /channels/{forum}/threads`: a post, its starter message (which
    /// has the post's id) in it.
    pub(super) fn start_forum_post(
        &mut self,
        c: &str,
        body: Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let forum = self.channel_ok(c, true)?;
        let name = body["name"].as_str().unwrap_or_default().to_string();
        check_len("name", &name, 1, 100)?;
        let Some(message) = body.get("message").filter(|m| m.is_object()).cloned() else {
            return Err(Reply::invalid(
                "message",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        };
        validate_message(&message, !files.is_empty(), true)?;
        let applied = self.applied(forum, &body["applied_tags"])?;
        let id = self.next_id();
        let mut ch = ChannelRec::text(id, &name);
        ch.kind = 11;
        ch.parent_id = Some(forum);
        ch.auto_archive = body["auto_archive_duration"].as_u64().unwrap_or(4320);
        ch.applied = applied;
        self.channels.insert(id, ch);
        let rec = self.new_message(id, id, Origin::Channel, message, files);
        let first = rec.message.clone();
        self.messages.push(rec);
        if self.lose_forum_posts > 0 {
            // Made, but the answer never reaches the bot.
            self.lose_forum_posts -= 1;
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.archived = self.lost_posts_archived;
            }
            return Err(Reply::error(500, 0, "500: Internal Server Error"));
        }
        let mut out = self.channel_json(&self.channels[&id]);
        out["message"] = first;
        Ok(Reply::ok(out))
    }

    /// The tag ids of `applied_tags`, each one of the forum's.
    fn applied(&self, forum: u64, v: &Value) -> Result<Vec<u64>, Reply> {
        if v.is_null() {
            return Ok(Vec::new());
        }
        let Some(list) = v.as_array() else {
            return Err(Reply::invalid(
                "applied_tags",
                "BASE_TYPE_ARRAY",
                "Must be an array.",
            ));
        };
        if list.len() > MAX_APPLIED {
            return Err(Reply::invalid(
                "applied_tags",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            ));
        }
        let known: Vec<u64> = self.channels[&forum]
            .tags
            .iter()
            .filter_map(|t| snowflake(&t["id"]))
            .collect();
        let mut ids = Vec::new();
        for (i, t) in list.iter().enumerate() {
            match snowflake(t) {
                Some(id) if known.contains(&id) => ids.push(id),
                _ => {
                    return Err(Reply::invalid(
                        &format!("applied_tags.{i}"),
                        "CHANNEL_TAG_INVALID",
                        "Unknown tag",
                    ))
                }
            }
        }
        Ok(ids)
    }

    /// `PATCH /channels/{id}`: a forum's `available_tags`, a thread's
    /// `archived` and a forum post's `applied_tags` (the other fields are not
    /// modelled). An archived thread takes a change only with `archived:
    /// false` in it (50083 otherwise).
    pub(super) fn edit_channel(&mut self, c: &str, body: &Value) -> Result<Reply, Reply> {
        let id = self.channel_ok(c, false)?;
        let keys: Vec<String> = body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(k) = keys
            .iter()
            .find(|k| !["available_tags", "applied_tags", "archived"].contains(&k.as_str()))
        {
            return Err(self.unknown(format!("PATCH /channels/{c} with `{k}` (not modelled)")));
        }
        let thread = matches!(self.channels[&id].kind, 11 | 12);
        if let Some(a) = body.get("archived") {
            let Some(a) = a.as_bool().filter(|_| thread) else {
                return Err(Reply::invalid(
                    "archived",
                    "BASE_TYPE_BAD",
                    "Only a thread is archived, with true or false",
                ));
            };
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.archived = a;
            }
        } else {
            self.not_archived(id)?;
        }
        if let Some(tags) = body.get("available_tags") {
            let tags = self.available(id, tags)?;
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.tags = tags;
            }
        }
        if body.get("applied_tags").is_some() {
            let parent = self.channels[&id]
                .parent_id
                .filter(|p| self.channels.get(p).is_some_and(|p| p.kind == 15));
            let Some(forum) = parent else {
                return Err(Reply::invalid(
                    "applied_tags",
                    "CHANNEL_TAGS_NOT_IN_FORUM",
                    "Only a post in a forum has tags",
                ));
            };
            let applied = self.applied(forum, &body["applied_tags"])?;
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.applied = applied;
            }
        }
        Ok(Reply::ok(self.channel_json(&self.channels[&id])))
    }

    /// A forum's new tags: those with an id must be the forum's, the others
    /// get one.
    fn available(&mut self, id: u64, tags: &Value) -> Result<Vec<Value>, Reply> {
        let ch = &self.channels[&id];
        if ch.kind != 15 {
            return Err(Reply::invalid(
                "available_tags",
                "CHANNEL_TAGS_NOT_FORUM",
                "Only a forum channel has tags",
            ));
        }
        if self.bot_permissions(ch) & MANAGE_CHANNELS == 0 {
            return Err(Reply::error(403, 50013, "Missing Permissions"));
        }
        let Some(list) = tags.as_array().cloned() else {
            return Err(Reply::invalid(
                "available_tags",
                "BASE_TYPE_ARRAY",
                "Must be an array.",
            ));
        };
        if list.len() > MAX_TAGS {
            return Err(Reply::invalid(
                "available_tags",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 20 or fewer in length.",
            ));
        }
        let known: Vec<u64> = ch.tags.iter().filter_map(|t| snowflake(&t["id"])).collect();
        let mut names: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (i, t) in list.iter().enumerate() {
            let name = t["name"].as_str().unwrap_or_default();
            check_len(&format!("available_tags.{i}.name"), name, 1, 20)?;
            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(Reply::error(400, 40061, "Tag name must be unique"));
            }
            names.push(name.to_string());
            let tag_id = match &t["id"] {
                Value::Null => self.next_id(),
                v => match snowflake(v) {
                    Some(k) if known.contains(&k) => k,
                    _ => {
                        return Err(Reply::invalid(
                            &format!("available_tags.{i}.id"),
                            "CHANNEL_TAG_INVALID",
                            "Unknown tag",
                        ))
                    }
                },
            };
            out.push(json!({
                "id": tag_id.to_string(),
                "name": name,
                "moderated": t["moderated"] == true,
                "emoji_id": t.get("emoji_id").cloned().unwrap_or(Value::Null),
                "emoji_name": t.get("emoji_name").cloned().unwrap_or(Value::Null),
            }));
        }
        Ok(out)
    }
}
