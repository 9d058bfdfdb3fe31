//! Messages: post (with nonce, reply and uploads), get, edit.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::fake_discord::fx;
use crate::fake_discord::model::{Model, MsgRec, Origin};
use crate::fake_discord::rules::{nonce, pings, validate_message};
use crate::fake_discord::wire::Reply;

impl Model {
    pub(super) fn post_message(
        &mut self,
        c: &str,
        body: Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        if let Some(f) = &mut self.fail {
            if f.left > 0 {
                f.left -= 1;
                return Err(Reply::failure(f.status, f.retry_after));
            }
        }
        let c = self.channel_ok(c, true)?;
        self.dm_refused(c)?;
        self.not_archived(c)?;
        if self.channels.get(&c).is_some_and(|ch| ch.kind == 15) {
            // A forum takes posts (threads with a starter message), not messages.
            return Err(Reply::error(
                400,
                50008,
                "Cannot send messages in a non-text channel",
            ));
        }
        validate_message(&body, !files.is_empty(), true)?;
        let nonce = nonce(&body)?;
        if let (Some(nonce), true) = (&nonce, body["enforce_nonce"] == true) {
            if let Some(&id) = self.nonces.get(&(c, nonce.clone())) {
                self.deduplicated += 1;
                let r = self.messages.iter().find(|r| r.id == id).unwrap();
                return Ok(Reply::ok(r.message.clone()));
            }
        }
        let reference = self.reference(c, &body)?;
        let id = self.next_id();
        let mut rec = self.new_message(id, c, Origin::Channel, body, files);
        if let Some(referenced) = reference {
            rec.message["type"] = json!(19);
            rec.message["referenced_message"] = referenced;
        }
        if let (Some(nonce), true) = (nonce, rec.request["enforce_nonce"] == true) {
            self.nonces.insert((c, nonce), id);
        }
        let out = rec.message.clone();
        self.messages.push(rec);
        Ok(Reply::ok(out))
    }

    /// The message a reply refers to (Discord refuses a reply to an unknown
    /// message unless `fail_if_not_exists` is false).
    fn reference(&self, c: u64, body: &Value) -> Result<Option<Value>, Reply> {
        let r = &body["message_reference"];
        let Some(mid) = r["message_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| r["message_id"].as_u64().map(|n| n.to_string()))
        else {
            return Ok(None);
        };
        let in_channel = r["channel_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(c);
        let found = self
            .messages
            .iter()
            .find(|m| m.id.to_string() == mid && m.channel_id == in_channel);
        match found {
            Some(m) => Ok(Some(m.message.clone())),
            None if r["fail_if_not_exists"] == false => Ok(None),
            None => Err(Reply::invalid(
                "message_reference",
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            )),
        }
    }

    pub(super) fn new_message(
        &mut self,
        id: u64,
        channel_id: u64,
        origin: Origin,
        body: Value,
        files: Vec<Value>,
    ) -> MsgRec {
        let content = body["content"].as_str().unwrap_or_default();
        let mut message = fx::message(
            id,
            channel_id,
            fx::bot_user(self.bot_id, fx::BOT_NAME),
            content,
        );
        for key in ["embeds", "components"] {
            if let Some(v @ Value::Array(_)) = body.get(key) {
                message[key] = v.clone();
            }
        }
        message["flags"] = json!(body["flags"].as_u64().unwrap_or(0));
        message["tts"] = json!(body["tts"] == true);
        if !body["nonce"].is_null() {
            message["nonce"] = body["nonce"].clone();
        }
        if let Some(r) = body.get("message_reference").filter(|r| r.is_object()) {
            let mut r = r.clone();
            if r["channel_id"].is_null() {
                r["channel_id"] = json!(channel_id.to_string());
            }
            r["guild_id"] = json!(self.guild_id.to_string());
            message["message_reference"] = r;
        }
        if origin != Origin::Channel {
            message["webhook_id"] = json!(self.app_id.to_string());
            message["application_id"] = json!(self.app_id.to_string());
        }
        let attachment_ids: Vec<u64> = files.iter().map(|_| self.next_id()).collect();
        message["attachments"] = Value::Array(
            files
                .iter()
                .zip(attachment_ids)
                .map(|(f, attachment_id)| {
                    let url = format!(
                        "https://cdn.fake/attachments/{channel_id}/{id}/{}",
                        f["filename"].as_str().unwrap_or("")
                    );
                    json!({
                        "id": attachment_id.to_string(),
                        "filename": f["filename"],
                        "size": f["size"],
                        "url": url,
                        "proxy_url": url,
                        "content_type": f["content_type"],
                    })
                })
                .collect(),
        );
        let pings = pings(content, body.get("allowed_mentions"));
        message["mention_everyone"] = pings["everyone"].clone();
        message["mentions"] = Value::Array(
            pings["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| {
                    let id: u64 = u.as_str().unwrap().parse().unwrap();
                    fx::user(id, &format!("user-{id}"))
                })
                .collect(),
        );
        message["mention_roles"] = pings["roles"].clone();
        MsgRec {
            id,
            channel_id,
            origin,
            request: body,
            message,
            edits: Vec::new(),
            thread_id: None,
            files: files
                .into_iter()
                .map(|mut f| {
                    f.as_object_mut().unwrap().remove("content_type");
                    f
                })
                .collect(),
            pings,
        }
    }

    pub(super) fn find_message(&mut self, c: u64, mid: &str) -> Result<usize, Reply> {
        self.messages
            .iter()
            .position(|r| {
                r.id.to_string() == mid && r.channel_id == c && r.origin == Origin::Channel
            })
            .ok_or_else(|| Reply::error(404, 10008, "Unknown Message"))
    }

    pub(super) fn get_message(&mut self, c: &str, mid: &str) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, false)?;
        let i = self.find_message(c, mid)?;
        Ok(Reply::ok(self.messages[i].message.clone()))
    }

    pub(super) fn edit_message(
        &mut self,
        c: &str,
        mid: &str,
        body: &Value,
    ) -> Result<Reply, Reply> {
        let c = self.channel_ok(c, true)?;
        self.not_archived(c)?;
        let i = self.find_message(c, mid)?;
        Ok(Reply::ok(apply_edit(&mut self.messages[i], body)?))
    }
}

/// Applies an edit (PATCH body) to a message; Discord refuses an edit that
/// leaves it empty or too long.
pub(super) fn apply_edit(rec: &mut MsgRec, body: &Value) -> Result<Value, Reply> {
    let mut next = rec.message.clone();
    for key in ["content", "embeds", "components"] {
        match body.get(key) {
            Some(Value::Null) if key == "content" => next[key] = json!(""),
            Some(Value::Null) => next[key] = json!([]),
            Some(v) => next[key] = v.clone(),
            None => {}
        }
    }
    if let Some(f) = body["flags"].as_u64() {
        // Only SUPPRESS_EMBEDS (4) can be changed by an edit.
        let old = next["flags"].as_u64().unwrap_or(0);
        next["flags"] = json!((old & !4) | (f & 4));
    }
    if let Some(Value::Array(keep)) = body.get("attachments") {
        let ids: HashSet<String> = keep
            .iter()
            .filter_map(|a| {
                a["id"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| a["id"].as_u64().map(|n| n.to_string()))
            })
            .collect();
        if let Some(atts) = next["attachments"].as_array_mut() {
            atts.retain(|a| a["id"].as_str().is_some_and(|id| ids.contains(id)));
        }
    }
    let check = json!({
        "content": next["content"],
        "embeds": next["embeds"],
        "components": next["components"],
    });
    let has_files = next["attachments"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    validate_message(&check, has_files, true)?;
    next["edited_timestamp"] = json!(fx::now());
    rec.message = next;
    rec.edits.push(body.clone());
    Ok(rec.message.clone())
}
