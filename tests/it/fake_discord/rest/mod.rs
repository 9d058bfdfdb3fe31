//! The REST API under `/api/v10`: the router (authentication, the body, the
//! route), and one file per resource.

mod channels;
mod commands;
mod dms;
mod forum;
mod guild;
pub(super) use commands::{invocable, invoked_path};
mod identity;
mod interactions;
mod messages;
mod threads;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, Uri};

use super::model::Model;
use super::wire::{parse_body, Reply};

impl Model {
    pub(super) fn handle(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        raw: &Bytes,
    ) -> Reply {
        let line = format!(
            "{method} {}",
            uri.path_and_query().map_or(uri.path(), |p| p.as_str())
        );
        self.requests.push(line.clone());
        let Some(rest) = uri.path().strip_prefix("/api/v10/") else {
            return self.unknown(line);
        };
        let segs: Vec<&str> = rest.split('/').collect();
        // Interaction callbacks and webhooks go by their token; `GET /gateway`
        // needs nothing.
        let token_auth = matches!(segs[0], "webhooks" | "interactions") || segs == ["gateway"];
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !token_auth && auth.strip_prefix("Bot ").is_none_or(str::is_empty) {
            return Reply::error(401, 0, "401: Unauthorized");
        }
        let (body, files) = match parse_body(headers, raw) {
            Ok(b) => b,
            Err(e) => {
                return Reply::error(
                    400,
                    50109,
                    &format!("The request body contains invalid JSON. ({e})"),
                )
            }
        };
        let r = match (method.as_str(), segs.as_slice()) {
            ("GET", ["gateway"]) => Ok(Reply::ok(self.gateway())),
            ("GET", ["gateway", "bot"]) => Ok(Reply::ok(self.gateway_bot())),
            ("GET", ["oauth2", "applications", "@me"]) => Ok(Reply::ok(self.application())),
            ("GET", ["users", "@me"]) => Ok(Reply::ok(self.bot_user())),
            ("POST", ["users", "@me", "channels"]) => self.open_dm(&body),
            ("GET", ["applications", app, "guilds", guild, "commands"]) => {
                self.get_commands(app, Some(guild))
            }
            ("GET", ["applications", app, "commands"]) => self.get_commands(app, None),
            ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
                self.put_commands(app, Some(guild), &body)
            }
            ("PUT", ["applications", app, "commands"]) => self.put_commands(app, None, &body),
            ("GET", ["guilds", g, "channels"]) => self.guild_channels(g),
            ("GET", ["guilds", g, "members"]) => self.guild_members(g, uri.query().unwrap_or("")),
            ("GET", ["guilds", g, "members", u]) => self.guild_member(g, u),
            ("GET", ["guilds", g, "roles"]) => self.guild_roles(g),
            ("GET", ["guilds", g, "threads", "active"]) => self.active_threads(g),
            ("GET", ["channels", c, "threads", "archived", "public"]) => {
                self.archived_threads(c, uri.query().unwrap_or(""))
            }
            ("GET", ["channels", c]) => self
                .channel_ok(c, false)
                .map(|c| Reply::ok(self.channel_json(&self.channels[&c]))),
            ("POST", ["channels", c, "messages"]) => self.post_message(c, body, files),
            ("GET", ["channels", c, "messages", mid]) => self.get_message(c, mid),
            ("PATCH", ["channels", c, "messages", mid]) => self.edit_message(c, mid, &body),
            ("POST", ["channels", c, "messages", mid, "threads"]) => {
                self.start_thread(c, mid, &body)
            }
            ("POST", ["channels", c, "threads"]) if self.is_forum(c) => {
                self.start_forum_post(c, body, files)
            }
            ("PATCH", ["channels", c]) => self.edit_channel(c, &body),
            ("POST", ["interactions", id, token, "callback"]) => {
                self.callback(id, token, &body, files)
            }
            ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
                self.edit_original(app, token, &body)
            }
            ("POST", ["webhooks", app, token]) => self.followup(app, token, body, files),
            _ => return self.unknown(line),
        };
        r.unwrap_or_else(|e| e)
    }

    fn unknown(&mut self, line: String) -> Reply {
        self.unexpected.push(line);
        Reply::error(404, 0, "404: Not Found")
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}
