//! Alerts that must not flood the chat, nor leak a monitoring tool's control
//! characters: through the HTTP intake of the real binary.

use serde_json::{json, Value};

use crate::harness::Env;

/// 1,000 alerts of one group (web-critical groups by alertname and service),
/// with distinct instances.
fn one_group(n: usize) -> String {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "title": "HighLatency",
                "severity": "critical",
                "status": "firing",
                "labels": {"service": "web", "instance": format!("web-{i}")},
            })
        })
        .collect();
    Value::Array(alerts).to_string()
}

#[test]
fn one_request_of_one_group_makes_one_join_post_and_keeps_every_alert_on_record() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/generic", &one_group(1000));
    assert_eq!(code, 202, "{body}");
    assert_eq!(body, json!({"accepted": 1000, "tickets": ["OPS-1"]}));
    let (code, text) = bot.get("/api/v1/tickets/OPS-1");
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text).expect("ticket JSON");
    assert_eq!(t["alerts"]["count"], 1000);
    let joined = t["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| {
            e["text"]
                .as_str()
                .is_some_and(|s| s.starts_with("joined: "))
        })
        .count();
    assert_eq!(joined, 999, "each alert is on the record");
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let joins: Vec<&str> = run
        .in_thread("ops", "OPS-1")
        .into_iter()
        .filter(|l| l.contains("joined this ticket"))
        .collect();
    assert_eq!(joins.len(), 1, "one post for the joins: {joins:?}");
    assert!(
        joins[0].starts_with("+999 alerts joined this ticket: HighLatency web")
            && joins[0].contains("(web-1)")
            && joins[0].ends_with(" and 996 more"),
        "{joins:?}"
    );
    let posts = run.lines().iter().filter(|l| l.starts_with("[#")).count();
    assert!(posts <= 8, "{posts} posts:\n{}", run.stdout);
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

#[test]
fn an_alert_groups_key_and_labels_reach_no_one_with_control_characters() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    // web-critical groups by alertname (here the title) and service.
    let hostile = "HighLatency\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}";
    let body = json!({
        "title": hostile,
        "severity": "critical",
        "status": "firing",
        "labels": {"service": "web", "instance": hostile},
    });
    let (code, answer) = bot.post("/hooks/generic", &body.to_string());
    assert_eq!(code, 202, "{answer}");
    let (code, text) = bot.get("/api/v1/tickets/OPS-1");
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text).expect("ticket JSON");
    let group = t["alerts"]["group"]
        .as_str()
        .expect("the ticket names its group");
    assert_eq!(
        group,
        "web-critical/alertname=HighLatency]0;pwned[2J, service=web"
    );
    let mut all = Vec::new();
    strings(&t, &mut all);
    for s in &all {
        assert!(
            !s.chars().any(|c| (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c)),
            "a control character in the ticket's JSON: {s:?}"
        );
    }
    let run = bot.finish();
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'),
        "raw escapes printed: {:?}",
        run.stdout
    );
}
