//! The HTTP intake through the real binary: hooks, the ticket API, health,
//! metrics, and every bad request answered with the right status and nothing
//! stored.

use serde_json::json;

use crate::harness::{Env, TOKEN};

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(p).expect("fixture")
}

#[test]
fn alertmanager_payloads_open_route_and_recover_a_ticket() {
    alertmanager_payloads_open_route_and_recover_a_ticket_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn alertmanager_payloads_open_route_and_recover_a_ticket_on_postgres() {
    alertmanager_payloads_open_route_and_recover_a_ticket_on(Env::on_postgres());
}

fn alertmanager_payloads_open_route_and_recover_a_ticket_on(env: Env) {
    let bot = env.live(&[]);
    let (code, body) = bot.post("/hooks/alertmanager", &fixture("alertmanager-firing.json"));
    assert_eq!(code, 202, "{body}");
    assert_eq!(body, json!({"accepted": 1, "tickets": ["OPS-1"]}));
    // Alertmanager retries and repeats: same ticket.
    let (code, body) = bot.post("/hooks/alertmanager", &fixture("alertmanager-firing.json"));
    assert_eq!(
        (code, body),
        (202, json!({"accepted": 1, "tickets": ["OPS-1"]}))
    );
    let (code, body) = bot.post(
        "/hooks/alertmanager",
        &fixture("alertmanager-resolved.json"),
    );
    assert_eq!(
        (code, body),
        (202, json!({"accepted": 1, "tickets": ["OPS-1"]}))
    );

    let (code, text) = bot.get("/api/v1/tickets/OPS-1");
    assert_eq!(code, 200, "{text}");
    let t: serde_json::Value = serde_json::from_str(&text).unwrap();
    // service=checkout, severity=critical: the web-critical route.
    assert_eq!(t["team"], "backend");
    assert_eq!(t["priority"], "p1");
    assert_eq!(t["source"], "alert");
    assert_eq!(t["alerts"]["count"], 3);
    // That route resolves on recovery; the operator verifies.
    assert_eq!(t["state"], "resolved");
    let kinds: Vec<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Routed to backend, then to its on-call person (the shipped rotation).
    let oncall = crate::harness::backend_on_call();
    assert_eq!(
        kinds,
        vec!["opened", "assigned", "assigned", "alert", "alert", "resolved"]
    );
    assert_eq!(
        t["timeline"][2]["text"],
        format!("assigned to {oncall} of team backend")
    );
    assert_eq!(
        t["timeline"][3]["text"],
        "repeat #2: HighLatency checkout: p99 latency above 2s (web-1:9100)"
    );
    assert_eq!(
        t["timeline"][4]["text"],
        "recovered: HighLatency checkout: p99 latency above 2s (web-1:9100)"
    );

    let run = bot.finish();
    assert_eq!(
        run.in_channel("ops")[0],
        "New alert ticket OPS-1 · p1 · HighLatency checkout: p99 latency above 2s — opened by alertmanager (alert)"
    );
    // The repeat posted nothing; the recovery went to the team.
    assert_eq!(
        run.in_channel("backend"),
        vec![
            "OPS-1 · p1 · HighLatency checkout: p99 latency above 2s — assigned to team backend by alertmanager. @bob, pick someone with /ticket assign id:OPS-1 user:…, or take it: /ticket take id:OPS-1".to_string(),
            format!("OPS-1 · p1 · HighLatency checkout: p99 latency above 2s — assigned to @{oncall} (team backend) by alertmanager. Take it: /ticket take id:OPS-1"),
            "OPS-1 · p1 · HighLatency checkout: p99 latency above 2s — recovered: HighLatency checkout: p99 latency above 2s (web-1:9100); no alert of this ticket is firing".to_string(),
        ]
    );
}

#[test]
fn generic_and_grafana_hooks_take_their_formats() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let (code, body) = bot.post(
        "/hooks/generic",
        r#"[{"title":"Disk 95% on db-2","severity":"critical","status":"firing","labels":{"host":"db-2"}},
            {"title":"Queue backlog","severity":"warning","status":"firing","labels":{"service":"api"},"description":"12k jobs"}]"#,
    );
    assert_eq!(
        (code, body),
        (202, json!({"accepted": 2, "tickets": ["OPS-1", "OPS-2"]}))
    );
    let grafana = r#"{"receiver":"opsbot","status":"firing","orgId":1,"alerts":[{"status":"firing","labels":{"alertname":"CPU","instance":"db-1"},"annotations":{"summary":"CPU at 98%"},"startsAt":"2026-11-25T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://grafana/alerting/1","fingerprint":"abc123","silenceURL":"","dashboardURL":"","panelURL":"","values":{"A":98}}],"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://grafana/","version":"1","groupKey":"{}","truncatedAlerts":0,"title":"[FIRING:1] CPU","state":"alerting","message":"CPU"}"#;
    let (code, body) = bot.post("/hooks/grafana", grafana);
    assert_eq!(
        (code, body),
        (202, json!({"accepted": 1, "tickets": ["OPS-3"]}))
    );
    let t1: serde_json::Value = serde_json::from_str(&bot.get("/api/v1/tickets/OPS-1").1).unwrap();
    assert_eq!(
        (t1["team"].as_str(), t1["priority"].as_str()),
        (Some("infra"), Some("p2"))
    );
    let t2: serde_json::Value = serde_json::from_str(&bot.get("/api/v1/tickets/OPS-2").1).unwrap();
    assert_eq!(
        (t2["team"].as_str(), t2["priority"].as_str()),
        (Some("backend"), Some("p3"))
    );
    let t3: serde_json::Value = serde_json::from_str(&bot.get("/api/v1/tickets/OPS-3").1).unwrap();
    assert_eq!(t3["title"], "CPU db-1: CPU at 98%");
    assert_eq!(t3["state"], "open");
    bot.finish();
}

#[test]
fn health_and_metrics() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let (code, body) = bot.get("/healthz");
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    bot.post("/hooks/alertmanager", &fixture("alertmanager-firing.json"));
    bot.post(
        "/hooks/alertmanager",
        &fixture("alertmanager-resolved.json"),
    );
    let (code, text) = bot.get("/metrics");
    assert_eq!(code, 200);
    for want in [
        "opsbot_alerts_received_total{source=\"alertmanager\",status=\"firing\"} 1",
        "opsbot_alerts_received_total{source=\"alertmanager\",status=\"resolved\"} 1",
        "opsbot_tickets_opened_total 1",
        "opsbot_tickets_open{state=\"resolved\",team=\"backend\",priority=\"p1\"} 1",
        "opsbot_http_requests_total{route=\"/hooks/alertmanager\",code=\"202\"} 2",
        "opsbot_http_request_duration_seconds_count{route=\"/hooks/alertmanager\"} 2",
        "# TYPE opsbot_outbox_depth gauge",
        "opsbot_outbox_depth{queue=\"mail\"} 0",
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
    bot.finish();
}

#[test]
fn bad_requests_get_the_right_status_and_store_nothing() {
    bad_requests_get_the_right_status_and_store_nothing_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn bad_requests_get_the_right_status_and_store_nothing_on_postgres() {
    bad_requests_get_the_right_status_and_store_nothing_on(Env::on_postgres());
}

fn bad_requests_get_the_right_status_and_store_nothing_on(env: Env) {
    let limit = 1024 * 1024;
    let bot = env.live(&[]);
    let good = fixture("alertmanager-firing.json");
    // Just over the limit: the client has written it all when the answer comes.
    let huge = format!(r#"{{"alerts":[],"pad":"{}"}}"#, "x".repeat(limit - 16));
    // (path, body, token, content type, status, error)
    type Case<'a> = (&'a str, String, Option<&'a str>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/hooks/alertmanager", good.clone(), None, "application/json", 401, "missing credentials: send Authorization: Bearer TOKEN"),
        ("/hooks/alertmanager", good.clone(), Some("nope"), "application/json", 401, "wrong bearer token"),
        ("/hooks/alertmanager", good.clone(), Some(TOKEN), "text/plain", 415, "the body must be JSON (Content-Type: application/json); got `text/plain`"),
        ("/hooks/alertmanager", huge, Some(TOKEN), "application/json", 413, "the body is larger than the limit of 1048576 bytes"),
        ("/hooks/alertmanager", "{\"alerts\": [".into(), Some(TOKEN), "application/json", 400, "malformed JSON at line 1, column 12"),
        ("/hooks/alertmanager", r#"{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}},{"status":"exploding","labels":{"alertname":"B"}}]}"#.into(), Some(TOKEN), "application/json", 400, "alerts[1] has status `exploding`; it must be `firing` or `resolved`"),
        ("/hooks/alertmanager", r#"{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}},{"status":"firing","labels":{}}]}"#.into(), Some(TOKEN), "application/json", 400, "alerts[1] has no labels"),
        ("/hooks/generic", r#"{"title":"x","status":"firing"}"#.into(), Some(TOKEN), "application/json", 400, "alerts[0] has no labels"),
        ("/hooks/nowhere", good.clone(), Some(TOKEN), "application/json", 404, "no such route"),
    ];
    for (path, body, token, ctype, want_code, want_msg) in cases {
        let (code, resp) = bot.post_with(path, &body, token, ctype);
        assert_eq!(code, want_code, "{path} {want_msg}: {resp}");
        let msg = resp["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(want_msg),
            "{path}: got {msg:?}, want {want_msg:?}"
        );
    }
    let (code, body) = bot.get("/api/v1/tickets/OPS-1");
    assert_eq!(code, 404, "{body}");
    let (code, body) = bot.get("/api/v1/tickets/banana");
    assert_eq!(code, 400, "{body}");
    let run = bot.finish();
    // The first alert of the half-bad batch was not applied either.
    assert!(!run.stdout.contains("[#"), "{}", run.stdout);
    assert!(env.tickets().is_empty());
}

#[test]
fn without_a_token_the_hooks_refuse_and_the_bot_says_so() {
    let env = Env::shipped();
    let run = env.opsbot(&["console", "--listen", "127.0.0.1:0"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("OPSBOT_HOOK_TOKEN is not set: the hooks will refuse every request"),
        "{}",
        run.stderr
    );
}

#[test]
fn taking_an_alert_ticket_is_its_acknowledgement() {
    let env = Env::shipped();
    let mut bot = env.live(&["--as", "bella"]);
    let (code, _) = bot.post("/hooks/alertmanager", &fixture("alertmanager-firing.json"));
    assert_eq!(code, 202);
    bot.line("/ticket take id:OPS-1");
    // The line is handled after the console read it; the next firing repeat
    // is then noted on a ticket in progress.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let t: serde_json::Value =
            serde_json::from_str(&bot.get("/api/v1/tickets/OPS-1").1).unwrap();
        if t["state"] == "in_progress" {
            assert_eq!(t["assignee"], "bella");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not taken: {t}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _) = bot.post("/hooks/alertmanager", &fixture("alertmanager-firing.json"));
    assert_eq!(code, 202);
    let run = bot.finish();
    assert!(
        run.stdout.contains("(only you) You have OPS-1."),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("[#ops › OPS-1] bella took it; it is in progress."));
    let t = &env.tickets()[0];
    assert_eq!(t["state"], "in_progress");
    assert_eq!(t["alerts"]["count"], 2);
}
