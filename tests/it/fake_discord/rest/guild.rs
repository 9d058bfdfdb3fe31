//! The guild: its channels (`GET /guilds/{id}/channels`, threads not
//! included, as Discord lists them) and its members (`GET
//! /guilds/{id}/members`, paged by `limit` 1–1000 and `after`, the highest
//! user id of the page before; refused with 403 Missing Access unless the
//! application has the Server Members intent enabled in the Developer
//! Portal).

use serde_json::Value;

use crate::fake_discord::fx;
use crate::fake_discord::model::Model;
use crate::fake_discord::wire::Reply;

impl Model {
    pub(super) fn guild_ok(&self, g: &str) -> Result<(), Reply> {
        if g == self.guild_id.to_string() {
            Ok(())
        } else {
            Err(Reply::error(403, 50001, "Missing Access"))
        }
    }

    pub(super) fn guild_channels(&self, g: &str) -> Result<Reply, Reply> {
        self.guild_ok(g)?;
        let list: Vec<Value> = self
            .channels
            .values()
            .filter(|c| c.kind != 11 && c.kind != 12)
            .map(|c| self.channel_json(c))
            .collect();
        Ok(Reply::ok(Value::Array(list)))
    }

    pub(super) fn guild_members(&self, g: &str, query: &str) -> Result<Reply, Reply> {
        self.guild_ok(g)?;
        if !self.members_intent {
            return Err(Reply::error(403, 50001, "Missing Access"));
        }
        let mut limit = 1u64;
        let mut after = 0u64;
        for (k, v) in query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
        {
            let n: Option<u64> = v.parse().ok();
            match (k, n) {
                ("limit", Some(n)) if (1..=1000).contains(&n) => limit = n,
                ("limit", _) => {
                    return Err(Reply::invalid(
                        "limit",
                        "NUMBER_TYPE_MAX",
                        "int value should be less than or equal to 1000.",
                    ))
                }
                ("after", Some(n)) => after = n,
                ("after", None) => {
                    return Err(Reply::invalid(
                        "after",
                        "NUMBER_TYPE_COERCE",
                        &format!("Value \"{v}\" is not snowflake."),
                    ))
                }
                _ => {}
            }
        }
        let list: Vec<Value> = self
            .members
            .range(after + 1..)
            .take(limit as usize)
            .map(|(id, name)| fx::member(*id, name, &[]))
            .collect();
        Ok(Reply::ok(Value::Array(list)))
    }

    pub(super) fn guild_roles(&self, g: &str) -> Result<Reply, Reply> {
        self.guild_ok(g)?;
        let list: Vec<Value> = self
            .roles
            .iter()
            .map(|(id, (name, perms))| {
                let mut r = fx::role(*id, name);
                r["permissions"] = Value::String(perms.to_string());
                r
            })
            .collect();
        Ok(Reply::ok(Value::Array(list)))
    }

    pub(super) fn guild_member(&self, g: &str, user: &str) -> Result<Reply, Reply> {
        self.guild_ok(g)?;
        if user == self.bot_id.to_string() {
            return Ok(Reply::ok(fx::member(
                self.bot_id,
                fx::BOT_NAME,
                &self.bot_roles,
            )));
        }
        match user
            .parse::<u64>()
            .ok()
            .and_then(|u| self.members.get(&u).map(|n| (u, n)))
        {
            Some((u, n)) => Ok(Reply::ok(fx::member(u, n, &[]))),
            None => Err(Reply::error(404, 10007, "Unknown Member")),
        }
    }
}
