//! Interactions: the callback (answer, defer, update, autocomplete, modal),
//! the `@original` reply and the follow-ups by webhook token.

use std::time::Instant;

use serde_json::{json, Value};

use super::messages::apply_edit;
use crate::fake_discord::model::{IxRec, Model, Origin};
use crate::fake_discord::rules::{validate_message, validate_response};
use crate::fake_discord::wire::Reply;
use crate::fake_discord::{MESSAGE_FLAG_EPHEMERAL, MESSAGE_FLAG_LOADING};

impl Model {
    pub(in crate::fake_discord) fn note_interaction(&mut self, d: &Value) {
        let id = |v: &Value| v.as_str().and_then(|s| s.parse::<u64>().ok());
        let Some(ix) = id(&d["id"]) else { return };
        self.interactions.insert(
            ix,
            IxRec {
                token: d["token"].as_str().unwrap_or_default().to_string(),
                kind: d["type"].as_u64().unwrap_or(0) as u8,
                channel_id: id(&d["channel_id"]).unwrap_or(0),
                message: d.get("message").cloned(),
                dispatched: Instant::now(),
                acked: false,
                original: None,
            },
        );
    }

    pub(super) fn callback(
        &mut self,
        id: &str,
        token: &str,
        body: &Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let kind = body["type"].as_u64().unwrap_or(0);
        let mut record = json!({
            "interaction_id": id,
            "token": token,
            "type": body["type"],
            "data": body.get("data").cloned().unwrap_or(Value::Null),
        });
        let result = self.answer(id, token, kind, body, files);
        let (status, error) = match &result {
            Ok(r) => (r.status, Value::Null),
            Err(r) => (r.status, r.body.clone().unwrap_or(Value::Null)),
        };
        record["status"] = json!(status);
        record["error"] = error;
        if let Some(ix) = id.parse().ok().and_then(|i: u64| self.interactions.get(&i)) {
            record["after_ms"] = json!(ix.dispatched.elapsed().as_millis() as u64);
        }
        self.newest_callback
            .insert(id.to_string(), self.callbacks.len());
        self.callbacks.push(record);
        result
    }

    fn answer(
        &mut self,
        id: &str,
        token: &str,
        kind: u64,
        body: &Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let unknown = || Reply::error(404, 10062, "Unknown interaction");
        let ix_id: u64 = id.parse().map_err(|_| unknown())?;
        let deadline = self.deadline;
        let ix = self.interactions.get(&ix_id).ok_or_else(unknown)?;
        if ix.token != token {
            return Err(unknown());
        }
        if ix.acked {
            return Err(Reply::error(
                400,
                40060,
                "Interaction has already been acknowledged.",
            ));
        }
        if deadline.is_some_and(|d| ix.dispatched.elapsed() > d) {
            return Err(unknown());
        }
        let data = &body["data"];
        validate_response(ix.kind, kind, data)?;
        let channel_id = ix.channel_id;
        let component_message = ix.message.clone();
        let original = match kind {
            4 | 5 => {
                let mut d = if kind == 4 { data.clone() } else { json!({}) };
                let ephemeral = data["flags"].as_u64().unwrap_or(0) & MESSAGE_FLAG_EPHEMERAL;
                let loading = if kind == 5 { MESSAGE_FLAG_LOADING } else { 0 };
                d["flags"] = json!(d["flags"].as_u64().unwrap_or(0) | ephemeral | loading);
                let mid = self.next_id();
                // A message answer (type 4) may upload files, as a post does.
                let files = if kind == 4 { files } else { Vec::new() };
                let rec =
                    self.new_message(mid, channel_id, Origin::Original(token.into()), d, files);
                self.messages.push(rec);
                Some(mid)
            }
            6 | 7 => {
                let mid = component_message
                    .as_ref()
                    .and_then(|m| m["id"].as_str())
                    .and_then(|s| s.parse::<u64>().ok());
                let mid = match mid {
                    Some(mid) if self.messages.iter().any(|r| r.id == mid) => mid,
                    _ => {
                        // A message the fake did not post: keep a copy to edit.
                        let m = component_message.unwrap_or_else(|| json!({}));
                        let mid = m["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                        let mut rec = self.new_message(
                            mid,
                            channel_id,
                            Origin::Original(token.into()),
                            m.clone(),
                            Vec::new(),
                        );
                        if m.is_object() && m.get("author").is_some() {
                            rec.message = m;
                        }
                        self.messages.push(rec);
                        mid
                    }
                };
                if kind == 7 {
                    let i = self.messages.iter().position(|r| r.id == mid).unwrap();
                    apply_edit(&mut self.messages[i], data)?;
                }
                Some(mid)
            }
            _ => None,
        };
        let ix = self.interactions.get_mut(&ix_id).unwrap();
        ix.acked = true;
        ix.original = original;
        Ok(Reply::no_content())
    }

    /// The interaction for a webhook `token` of application `app`, once answered
    /// (Discord: 404 Unknown Webhook before that).
    fn webhook(&self, app: &str, token: &str) -> Result<u64, Reply> {
        let unknown = || Reply::error(404, 10015, "Unknown Webhook");
        if app != self.app_id.to_string() {
            return Err(unknown());
        }
        self.interactions
            .iter()
            .find(|(_, ix)| ix.token == token && ix.acked)
            .map(|(id, _)| *id)
            .ok_or_else(unknown)
    }

    pub(super) fn edit_original(
        &mut self,
        app: &str,
        token: &str,
        body: &Value,
    ) -> Result<Reply, Reply> {
        let ix = self.webhook(app, token)?;
        let Some(mid) = self.interactions[&ix].original else {
            return Err(Reply::error(404, 10008, "Unknown Message"));
        };
        let i = self.messages.iter().position(|r| r.id == mid).unwrap();
        let rec = &mut self.messages[i];
        let flags = rec.message["flags"].as_u64().unwrap_or(0) & !MESSAGE_FLAG_LOADING;
        rec.message["flags"] = json!(flags);
        Ok(Reply::ok(apply_edit(rec, body)?))
    }

    pub(super) fn followup(
        &mut self,
        app: &str,
        token: &str,
        body: Value,
        files: Vec<Value>,
    ) -> Result<Reply, Reply> {
        let ix = self.webhook(app, token)?;
        validate_message(&body, !files.is_empty(), true)?;
        let channel_id = self.interactions[&ix].channel_id;
        let id = self.next_id();
        let rec = self.new_message(id, channel_id, Origin::Followup(token.into()), body, files);
        let out = rec.message.clone();
        self.messages.push(rec);
        Ok(Reply::ok(out))
    }
}
