//! Every HTTP error is JSON `{"error": "…"}` with the fitting status, also
//! those axum makes itself: a wrong method (405 with `Allow`), an unknown
//! route (404), an extractor's rejection (400). Over real HTTP.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Env, TOKEN};

/// Sends `method path` with the hook token; returns status, `Allow`,
/// content type and the body parsed as JSON (or `Value::Null`).
fn send(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, Option<String>, String, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let request = || {
        let mut req = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(TOKEN);
        if let Some((ctype, b)) = body {
            req = req.header("Content-Type", ctype).body(b.to_string());
        }
        req.send()
    };
    // A server that refuses a body too large answers before it has read it
    // all and closes: the client, still sending, may see the connection
    // reset instead of the answer. Ask again (at most twice more).
    let resp = request()
        .or_else(|_| request())
        .or_else(|_| request())
        .expect("request");
    let code = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    };
    let (allow, ctype) = (header("allow"), header("content-type").unwrap_or_default());
    let text = resp.text().unwrap_or_default();
    (
        code,
        allow,
        ctype,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[test]
fn wrong_methods_get_405_json_with_allow() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    use reqwest::Method;
    let cases = [
        (Method::GET, "/hooks/generic", "POST"),
        (Method::PUT, "/hooks/alertmanager", "POST"),
        (Method::DELETE, "/api/v1/tickets/OPS-1", "GET"),
        (Method::POST, "/api/v1/tickets/OPS-1", "GET"),
        (Method::GET, "/api/v1/support", "POST"),
        (Method::POST, "/healthz", "GET"),
    ];
    for (method, path, allowed) in cases {
        let (code, allow, ctype, body) = send(&bot.base, method.clone(), path, None);
        assert_eq!(code, 405, "{method} {path}: {body}");
        let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
        assert!(
            allow.split(',').any(|m| m.trim() == allowed),
            "{method} {path}: Allow: {allow}"
        );
        assert!(ctype.starts_with("application/json"), "{ctype}");
        assert_eq!(
            body["error"].as_str().unwrap_or_default(),
            format!("{method} is not allowed on {path}; use {allow}"),
            "{body}"
        );
    }
    bot.finish();
    assert!(env.tickets().is_empty());
}

#[test]
fn unknown_routes_and_axum_rejections_are_json_too() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    use reqwest::Method;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::DELETE, "/hooks"),
        (Method::GET, "/api/v1/tickets/"),
    ] {
        let (code, _, ctype, body) = send(&bot.base, method.clone(), path, None);
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("no such route"),
            "{body}"
        );
    }
    // A path axum cannot decode: its own 400, as JSON.
    let (code, _, ctype, body) = send(&bot.base, Method::GET, "/api/v1/tickets/%FF", None);
    assert_eq!(code, 400, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert!(
        !body["error"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    // Bad JSON, a wrong content type, a body too large: each its status, as JSON.
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1024 * 1024));
    // (The support intake checks its signature before it parses.)
    for (ctype, b, want, paths) in [
        (
            "application/json",
            "{\"title\": ",
            400,
            &["/hooks/generic"][..],
        ),
        (
            "text/plain",
            "{}",
            415,
            &["/hooks/generic", "/api/v1/support"][..],
        ),
        (
            "application/json",
            huge.as_str(),
            413,
            &["/hooks/generic", "/api/v1/support"][..],
        ),
    ] {
        for path in paths {
            let (code, _, got_type, body) = send(&bot.base, Method::POST, path, Some((ctype, b)));
            assert_eq!(code, want, "{path} {ctype}: {body}");
            assert!(got_type.starts_with("application/json"), "{got_type}");
            assert!(body["error"].is_string(), "{path}: {body}");
        }
    }
    bot.finish();
    assert!(env.tickets().is_empty());
}
