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
        // Discord refuses a post where the bot may not view the channel or
        // send messages (in a thread, its parent's overwrites count).
        let own = ch
            .parent_id
            .and_then(|p| self.channels.get(&p))
            .unwrap_or(ch);
        let may = self.bot_permissions(own);
        let send = if ch.parent_id.is_some() {
            1 << 38
        } else {
            1 << 11
        };
        if may & (1 << 10) == 0 {
            return Err(Reply::error(403, 50001, "Missing Access"));
        }
        if write && may & send == 0 {
            return Err(Reply::error(403, 50013, "Missing Permissions"));
        }
        Ok(id)
    }

    /// Discord refuses a message, or an edit of one, in an archived thread.
    pub(super) fn not_archived(&self, id: u64) -> Result<(), Reply> {
        if self.channels.get(&id).is_some_and(|c| c.archived) {
            return Err(Reply::error(400, 50083, "Thread is archived"));
        }
        Ok(())
    }

    /// `GET /guilds/{id}/threads/active`: the guild's threads that are not
    /// archived (forum posts among them).
    pub(super) fn active_threads(&self, g: &str) -> Result<Reply, Reply> {
        self.guild_ok(g)?;
        let threads: Vec<Value> = self
            .channels
            .values()
            .filter(|c| c.kind == 11 && !c.archived)
            .map(|c| self.channel_json(c))
            .collect();
        Ok(Reply::ok(json!({ "threads": threads, "members": [] })))
    }

    /// `GET /channels/{id}/threads/archived/public`: the channel's archived
    /// public threads (at most `limit`, 50 unless said), newest first.
    pub(super) fn archived_threads(&self, c: &str, query: &str) -> Result<Reply, Reply> {
        let id = self.channel_ok(c, false)?;
        let limit = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("limit="))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(50);
        if !(2..=100).contains(&limit) {
            return Err(Reply::invalid(
                "limit",
                "NUMBER_TYPE_MAX",
                "int value should be between 2 and 100.",
            ));
        }
        let all: Vec<&ChannelRec> = self
            .channels
            .values()
            .rev()
            .filter(|t| t.parent_id == Some(id) && t.kind == 11 && t.archived)
            .collect();
        let threads: Vec<Value> = all
            .iter()
            .take(limit)
            .map(|t| self.channel_json(t))
            .collect();
        Ok(Reply::ok(json!({
            "threads": threads, "members": [], "has_more": all.len() > limit,
        })))
    }

    /// The bot's permissions in channel `c`, computed as Discord does:
    /// @everyone's and its roles' permissions (all with Administrator),
    /// then the channel's overwrites for @everyone, for its roles together,
    /// and for its member.
    pub(in crate::fake_discord) fn bot_permissions(&self, c: &ChannelRec) -> u64 {
        const ADMINISTRATOR: u64 = 1 << 3;
        let mut p = self.roles.get(&self.guild_id).map_or(0, |r| r.1);
        for r in &self.bot_roles {
            p |= self.roles.get(r).map_or(0, |r| r.1);
        }
        if p & ADMINISTRATOR != 0 {
            return u64::MAX;
        }
        let bits =
            |o: &Value, k: &str| -> u64 { o[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0) };
        let id = |o: &Value| -> u64 { o["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0) };
        let kind = |o: &Value| o["type"].as_u64().unwrap_or(0);
        for o in c
            .overwrites
            .iter()
            .filter(|o| kind(o) == 0 && id(o) == self.guild_id)
        {
            p = (p & !bits(o, "deny")) | bits(o, "allow");
        }
        let (mut allow, mut deny) = (0, 0);
        for o in c
            .overwrites
            .iter()
            .filter(|o| kind(o) == 0 && self.bot_roles.contains(&id(o)))
        {
            allow |= bits(o, "allow");
            deny |= bits(o, "deny");
        }
        p = (p & !deny) | allow;
        for o in c
            .overwrites
            .iter()
            .filter(|o| kind(o) == 1 && id(o) == self.bot_id)
        {
            p = (p & !bits(o, "deny")) | bits(o, "allow");
        }
        p
    }

    pub(in crate::fake_discord) fn channel_json(&self, c: &ChannelRec) -> Value {
        let mut v = json!({
            "id": c.id.to_string(),
            "type": c.kind,
            "guild_id": self.guild_id.to_string(),
            "name": c.name,
            "position": 0,
            "permission_overwrites": c.overwrites,
            "nsfw": false,
            "topic": null,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "parent_id": c.parent_id.map(|p| p.to_string()),
            "flags": 0,
        });
        if c.kind == 15 {
            v["available_tags"] = json!(c.tags);
            v["default_reaction_emoji"] = json!(null);
            v["default_sort_order"] = json!(null);
            v["default_forum_layout"] = json!(0);
            v["default_thread_rate_limit_per_user"] = json!(0);
        }
        let in_forum = c
            .parent_id
            .and_then(|p| self.channels.get(&p))
            .is_some_and(|p| p.kind == 15);
        if in_forum {
            let ids: Vec<String> = c.applied.iter().map(u64::to_string).collect();
            v["applied_tags"] = json!(ids);
        }
        if c.kind == 11 || c.kind == 12 {
            let now = fx::now();
            v["owner_id"] = json!(self.bot_id.to_string());
            v["message_count"] = json!(0);
            v["member_count"] = json!(1);
            v["total_message_sent"] = json!(0);
            v["thread_metadata"] = json!({
                "archived": c.archived,
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
