//! Application commands: bulk overwrite and list, global or in the guild.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::fake_discord::fx;
use crate::fake_discord::model::Model;
use crate::fake_discord::rules::validate_command;
use crate::fake_discord::wire::Reply;

impl Model {
    fn scope(&self, app: &str, guild: Option<&str>) -> Result<Option<u64>, Reply> {
        if app != self.app_id.to_string() {
            return Err(Reply::error(403, 50001, "Missing Access"));
        }
        match guild {
            None => Ok(None),
            Some(g) if g == self.guild_id.to_string() => Ok(Some(self.guild_id)),
            Some(_) => Err(Reply::error(403, 50001, "Missing Access")),
        }
    }

    pub(super) fn get_commands(&self, app: &str, guild: Option<&str>) -> Result<Reply, Reply> {
        let scope = self.scope(app, guild)?;
        Ok(Reply::ok(json!(self
            .commands
            .get(&scope)
            .cloned()
            .unwrap_or_default())))
    }

    pub(super) fn put_commands(
        &mut self,
        app: &str,
        guild: Option<&str>,
        body: &Value,
    ) -> Result<Reply, Reply> {
        let scope = self.scope(app, guild)?;
        let Some(list) = body.as_array() else {
            return Err(Reply::invalid(
                "",
                "ARRAY_TYPE_CONVERT",
                "Only iterables may be used in a ListType",
            ));
        };
        if list.len() > 100 {
            return Err(Reply::invalid(
                "",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            ));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            validate_command(c, &format!("{i}"))?;
            let kind = c["type"].as_u64().unwrap_or(1);
            let name = c["name"].as_str().unwrap_or_default();
            if !seen.insert((kind, name.to_string())) {
                return Err(Reply::invalid(
                    &format!("{i}.name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    &format!("Application command names must be unique: {name}"),
                ));
            }
            let mut c = c.clone();
            c["id"] = json!(fx::command_id(name).to_string());
            c["application_id"] = json!(self.app_id.to_string());
            c["version"] = json!(fx::next_id().to_string());
            c["type"] = json!(kind);
            c["guild_id"] = json!(scope.map(|g| g.to_string()));
            if c["description"].is_null() {
                c["description"] = json!("");
            }
            out.push(c);
        }
        self.commands.insert(scope, out.clone());
        self.command_puts += 1;
        Ok(Reply::ok(Value::Array(out)))
    }
}

/// The paths of the registered commands that a user can invoke, as
/// `ticket open` or `help`: a command with subcommands cannot be invoked
/// itself, only its subcommands can (and those of its groups).
pub(crate) fn invocable(commands: &[Value]) -> Vec<String> {
    fn walk(prefix: &str, options: &[Value], out: &mut Vec<String>) {
        let subs: Vec<&Value> = options
            .iter()
            .filter(|o| matches!(o["type"].as_u64(), Some(1 | 2)))
            .collect();
        if subs.is_empty() {
            out.push(prefix.to_string());
            return;
        }
        for o in subs {
            let name = format!("{prefix} {}", o["name"].as_str().unwrap_or_default());
            walk(
                &name,
                o["options"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                out,
            );
        }
    }
    let mut out = Vec::new();
    for c in commands
        .iter()
        .filter(|c| c["type"].as_u64().unwrap_or(1) == 1)
    {
        walk(
            c["name"].as_str().unwrap_or_default(),
            c["options"].as_array().map(Vec::as_slice).unwrap_or(&[]),
            &mut out,
        );
    }
    out
}

/// The command path a slash interaction's `data` names (`ticket open`).
pub(crate) fn invoked_path(data: &Value) -> String {
    let mut path = data["name"].as_str().unwrap_or_default().to_string();
    let mut options = data["options"].as_array().cloned().unwrap_or_default();
    while let Some(o) = options
        .first()
        .filter(|o| matches!(o["type"].as_u64(), Some(1 | 2)))
        .cloned()
    {
        path.push(' ');
        path.push_str(o["name"].as_str().unwrap_or_default());
        options = o["options"].as_array().cloned().unwrap_or_default();
    }
    path
}
