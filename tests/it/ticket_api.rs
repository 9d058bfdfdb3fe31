//! The ticket API's own token, over real HTTP: the hook token given to the
//! monitoring system reads no ticket; an unset API token refuses every
//! request, and the bot and `opsbot check` say so.

use serde_json::Value;

use crate::harness::{Env, API_TOKEN, TOKEN};

const ALERT: &str = r#"{"title":"Disk full","severity":"critical","status":"firing","labels":{"alertname":"DiskFull","host":"db-1"}}"#;

fn error(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("not a JSON error: {text}"))
}

#[test]
fn the_hook_token_reads_no_ticket_and_the_api_token_feeds_no_hook() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/generic", ALERT);
    assert_eq!(code, 202, "{body}");
    let (code, text) = bot.get_with("/api/v1/tickets/OPS-1", Some(TOKEN));
    assert_eq!(code, 401, "{text}");
    assert_eq!(error(&text), "wrong bearer token");
    let (code, text) = bot.get_with("/api/v1/tickets/OPS-1", None);
    assert_eq!(code, 401, "{text}");
    let (code, text) = bot.get_with("/api/v1/tickets/OPS-1", Some(API_TOKEN));
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(t["id"], "OPS-1");
    // And the other way round: the API token opens no ticket through a hook.
    let (code, body) = bot.post_with("/hooks/generic", ALERT, Some(API_TOKEN), "application/json");
    assert_eq!(code, 401, "{body}");
    bot.finish();
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn an_unset_api_token_refuses_every_request_and_the_bot_says_so() {
    let env = Env::shipped();
    let bot = env.live_without(&[], &["OPSBOT_API_TOKEN"]);
    let (code, body) = bot.post("/hooks/generic", ALERT);
    assert_eq!(code, 202, "{body}");
    for token in [Some(API_TOKEN), Some(TOKEN), Some(""), None] {
        let (code, text) = bot.get_with("/api/v1/tickets/OPS-1", token);
        assert_eq!(code, 401, "{token:?}: {text}");
        assert_eq!(
            error(&text),
            "this endpoint is disabled: OPSBOT_API_TOKEN is not set on the bot"
        );
    }
    let run = bot.finish();
    assert!(
        run.stderr.contains(
            "`http.api_token_env`: OPSBOT_API_TOKEN is not set: the ticket API (/api/v1/tickets) will refuse every request"
        ),
        "{}",
        run.stderr
    );
    // `check` warns, and still passes.
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "warning: "
        ) && run.stdout.contains("OPSBOT_API_TOKEN is not set: the ticket API (/api/v1/tickets) will refuse every request"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_api_token_is_read_from_the_variable_the_config_names() {
    let text = crate::harness::shipped_config().replace(
        "api_token_env = \"OPSBOT_API_TOKEN\"",
        "api_token_env = \"OPSBOT_HOOK_TOKEN\"",
    );
    let env = Env::shipped_with(&text);
    // The same token for both: check says what that means.
    let bot = env.live(&[]);
    let (code, _) = bot.get_with("/api/v1/tickets/OPS-1", Some(TOKEN));
    assert_eq!(code, 404);
    let run = bot.finish();
    assert!(
        run.stderr
            .contains("OPSBOT_HOOK_TOKEN holds the same token as OPSBOT_HOOK_TOKEN"),
        "{}",
        run.stderr
    );
}
