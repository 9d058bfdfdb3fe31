//! Untrusted text with terminal escapes and bidi overrides, from every
//! source (a command, a chat message, an alert, a customer, a job's output),
//! reaches the operator's terminal and the HTTP API clean: through the
//! console binary and its HTTP intake.

use serde_json::{json, Value};

use crate::support::{env_for, free_port, signed, FakeApp};

/// What a hostile sender puts in its text: retitles the terminal, clears it.
const ESC: &str = "\x1b]0;pwned\x07\x1b[2J";

/// The characters the sanitiser removes.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub fn assert_clean(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| is_hostile(*c)) {
        let from = text[..i].char_indices().rev().nth(40).map_or(0, |(j, _)| j);
        panic!(
            "{what} holds {:?} at byte {i}, after {:?}",
            c,
            &text[from..i]
        );
    }
}

/// Every string inside a JSON value is clean.
pub fn assert_clean_json(what: &str, v: &Value) {
    match v {
        Value::String(s) => assert_clean(what, s),
        Value::Array(a) => a.iter().for_each(|x| assert_clean_json(what, x)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            assert_clean(what, k);
            assert_clean_json(what, x)
        }),
        _ => {}
    }
}

/// The alert group key's own separator (U+001F) is another matter (the key
/// is the bot's, not the sender's); the label values inside it are checked.
fn blank_group_separators(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match x {
                    Value::String(s) if k == "group" || k == "group_key" => {
                        *s = s.replace('\u{1f}', " ")
                    }
                    _ => blank_group_separators(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(blank_group_separators),
        _ => {}
    }
}

#[test]
fn escapes_from_every_source_never_reach_the_terminal_or_the_api() {
    let app = FakeApp::start();
    let env = env_for(&app, free_port(), &[]);
    env.script(
        "commands/scripts/noisy.sh",
        "#!/bin/sh\nprintf 'output \\033]0;pwned\\007\\033[2J here\\n'\nexit 1\n",
    );
    env.write(
        "commands/noisy.toml",
        "description = \"Prints escapes\"\nprogram = \"scripts/noisy.sh\"\nwho = [\"anyone\"]\n",
    );
    let mut bot = env.live(&[]);
    // An alert's labels, annotations and description.
    let alert = json!({
        "title": format!("Latency {ESC}"),
        "severity": "critical",
        "status": "firing",
        "labels": {"alertname": format!("High{ESC}Latency"), "service": "checkout\u{202E}"},
        "description": format!("p99 {ESC} above 2s"),
    });
    let (code, resp) = bot.post("/hooks/generic", &alert.to_string());
    assert_eq!(code, 202, "{resp}");
    let alert_ticket = resp["tickets"][0].as_str().unwrap().to_string();
    // A customer's subject and message.
    let body = json!({
        "session_id": "sess-carol",
        "subject": format!("Help {ESC}"),
        "message": format!("It broke {ESC} \u{2066}again\u{2069}"),
    })
    .to_string();
    let (code, resp) = signed(&bot, &body);
    assert_eq!(code, 201, "{resp}");
    let customer_ticket = resp["ticket"].as_str().unwrap().to_string();
    // The API shows them clean, the words kept.
    let mut api = Vec::new();
    for id in [&alert_ticket, &customer_ticket] {
        let (code, text) = bot.get(&format!("/api/v1/tickets/{id}"));
        assert_eq!(code, 200, "{id}: {text}");
        let mut v = serde_json::from_str::<Value>(&text).unwrap();
        blank_group_separators(&mut v);
        api.push(v);
    }
    let shown = serde_json::to_string(&api).unwrap();
    for want in [
        "High]0;pwned[2JLatency",
        "p99 ]0;pwned[2J above 2s",
        "Help ]0;pwned[2J",
        "It broke ]0;pwned[2J again",
    ] {
        assert!(shown.contains(want), "{want:?} not in the API: {shown}");
    }
    // A command's title and description, and a bad id echoed in an error.
    bot.line(&format!(
        "/ticket open title:\"Disk {ESC} full\" description:\"desc {ESC} \u{202E}evil\u{202C} end\" team:backend"
    ));
    bot.line("/ticket show id:OPS-3");
    bot.line(&format!("/ticket show id:{ESC}"));
    bot.line(&format!("/ticket comment id:OPS-3 text:\"see {ESC}\""));
    // A chat message a monitoring tool posts, read as an alert.
    bot.line(":in alerts");
    bot.line("[FIRING:1] Chat\x1b[2JAlert web\x1b]0;x\x07 (critical)");
    // A job's output (the console waits for it at the end of input).
    bot.line("/noisy");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_clean("the console's output", &run.stdout);
    for v in &api {
        assert_clean_json("the ticket API", v);
    }
    let mut export = env.export();
    for v in &mut export {
        blank_group_separators(v);
        assert_clean_json("the store", v);
    }
    // The words themselves are kept; only the escapes went.
    let out = &run.stdout;
    for want in [
        "Disk ]0;pwned[2J full",
        "desc ]0;pwned[2J evil end",
        "`]0;pwned[2J` is not a ticket id",
        "see ]0;pwned[2J",
        "output ]0;pwned[2J here",
    ] {
        assert!(out.contains(want), "{want:?} not shown: {out}");
    }
    let stored = serde_json::to_string(&export).unwrap();
    assert!(stored.contains("Chat[2JAlert"), "{stored}");
}
