//! What a forge sends the bot, for the forge tests (`forges`, `forge_ci`):
//! its documented payloads (`tests/fixtures/forges/`), signed or tokened as
//! it signs them, and POSTed to the bot's intake.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::harness::LiveBot;

/// The forge payload `tests/fixtures/forges/{name}`.
pub fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/forges")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("fixture JSON")
}

/// HMAC-SHA256 of `body` with `secret`, in hex (GitHub's and Gitea's
/// signature).
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs `body` as JSON to the bot with these headers: the status and
/// the answer (JSON, else its text).
pub fn send(bot: &LiveBot, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut req = client
        .post(bot.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A GitHub event, signed with `secret` as GitHub signs it.
pub fn github(
    bot: &LiveBot,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &Value,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let sig = format!("sha256={}", hmac_hex(secret, &bytes));
    send(
        bot,
        "/hooks/github",
        &[
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &sig),
        ],
        &bytes,
    )
}
