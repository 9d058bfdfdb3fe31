//! Who the bot is and where the gateway is: `GET /gateway`, `/gateway/bot`,
//! `/oauth2/applications/@me`, `/users/@me`.

use serde_json::{json, Value};

use crate::fake_discord::fx;
use crate::fake_discord::model::Model;

impl Model {
    /// `ws://127.0.0.1:PORT/gateway`.
    fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }

    pub(super) fn gateway(&self) -> Value {
        json!({"url": self.gateway_url()})
    }

    pub(super) fn gateway_bot(&self) -> Value {
        json!({
            "url": self.gateway_url(),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })
    }

    pub(super) fn application(&self) -> Value {
        json!({
            "id": self.app_id.to_string(),
            "name": fx::BOT_NAME,
            "icon": null,
            "description": "",
            "bot_public": false,
            "bot_require_code_grant": false,
            "verify_key": "0".repeat(64),
            "owner": fx::user(fx::USER_ID, fx::USER_NAME),
            "team": null,
            "flags": 0,
        })
    }

    pub(super) fn bot_user(&self) -> Value {
        fx::bot_user(self.bot_id, fx::BOT_NAME)
    }
}
