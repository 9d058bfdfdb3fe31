//! The public pages, end to end on the real binary: the customer's own
//! ticket page behind the token of the link in their mails (a real SMTP
//! server receives them), the status page with its JSON and Atom feed, set
//! from chat; and a real headless Chromium (Debian's `chromium`, driven over
//! the DevTools protocol) that loads both at a phone's width. Screenshots
//! are kept under `target/test-artifacts/web/`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{shipped_config, Env, LiveBot};
use crate::support::{env_for, free_port, signed, FakeApp, Smtp};

const PUBLIC: &str = "https://support.example.com";

/// GET without any token; status, headers and body.
fn get(bot: &LiveBot, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(bot.url(path)).send().expect("request");
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    (code, headers, resp.text().unwrap_or_default())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A quoted-printable body as the customer's mail program shows it.
fn unqp(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'=', Some(hex)) if hex.iter().all(u8::is_ascii_hexdigit) => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The link in a mail body: its path and query, as the bot serves it.
fn link_in(body: &str) -> String {
    let body = &unqp(body);
    let at = body
        .find(&format!("{PUBLIC}/support/tickets/"))
        .unwrap_or_else(|| panic!("no link in the mail: {body}"));
    let link: String = body[at + PUBLIC.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link
}

/// Types a line as someone and waits for the bot's private answer to it.
fn say(bot: &mut LiveBot, who: &str, line: &str, answer: &str) {
    let before = bot.printed().matches(answer).count();
    bot.line(&format!(":as {who}"));
    bot.line(line);
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p.matches(answer).count()
            > before),
        "no `{answer}` after {line}:\n{}",
        bot.printed()
    );
}

fn customer_env(app: &FakeApp, smtp: &Smtp) -> Env {
    env_for(
        app,
        smtp.port,
        &[(
            "listen = \"127.0.0.1:8787\"",
            &format!("listen = \"127.0.0.1:8787\"\npublic_url = \"{PUBLIC}/\""),
        )],
    )
}

#[test]
fn a_customer_sees_their_own_ticket_by_the_link_in_their_mails_and_nothing_internal() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    customer_flow(&customer_env(&app, &smtp), &smtp);
}

#[test]
fn the_customers_page_works_on_postgres_too() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let sled = customer_env(&app, &smtp);
    let text = std::fs::read_to_string(&sled.config).unwrap();
    customer_flow(&Env::on_postgres_with(&text), &smtp);
}

/// A customer's page, from the mails a real SMTP server received, on
/// `env`'s store.
fn customer_flow(env: &Env, smtp: &Smtp) {
    let mut bot = env.live(&[]);
    let hostile = "Card <script>alert(1)</script> & \"quotes\" fail";
    let body = json!({"session_id": "sess-carol", "subject": hostile, "message": "Checkout says 500 when I pay <b>now</b>."}).to_string();
    assert_eq!(signed(&bot, &body), (201, json!({"ticket": "OPS-1"})));
    let body = json!({"session_id": "sess-dave", "subject": "Invoice missing", "message": "Where is my invoice?"}).to_string();
    assert_eq!(signed(&bot, &body), (201, json!({"ticket": "OPS-2"})));
    // A ticket opened in chat has no customer, so no page.
    say(
        &mut bot,
        "olivia",
        "/ticket open title:\"Disk on pg-3\"",
        "OPS-3",
    );

    for (who, line, answer) in [
        ("olivia", "/ticket assign id:OPS-1 team:backend", "OPS-1"),
        (
            "olivia",
            "/ticket comment id:OPS-1 text:\"INTERNAL: bella says the tokeniser leaks\"",
            "OPS-1",
        ),
        (
            "olivia",
            "/ticket comment id:OPS-1 customer:true text:\"We found the cause and are fixing it.\"",
            "mailed to the customer",
        ),
        ("bella", "/ticket take id:OPS-1", "OPS-1"),
        (
            "bella",
            "/ticket resolve id:OPS-1 note:\"Saved cards work again.\"",
            "OPS-1",
        ),
        ("olivia", "/ticket verify id:OPS-1", "OPS-1"),
    ] {
        say(&mut bot, who, line, answer);
    }
    // Acknowledgements of both, the update and the closing mail of OPS-1.
    let mails = smtp.wait_for(4);
    let carol: Vec<&(_, String)> = mails
        .iter()
        .filter(|(h, _)| h["to"] == "carol@example.com")
        .collect();
    assert_eq!(carol.len(), 3, "{mails:?}");
    let link = link_in(&carol[0].1);
    for (_, body) in &carol {
        assert_eq!(link_in(body), link, "every mail carries the same link");
    }
    let token = link.split_once("?token=").unwrap().1;
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert!(link.starts_with("/support/tickets/OPS-1?token="), "{link}");

    let (code, headers, page) = get(&bot, &link);
    assert_eq!(code, 200, "{page}");
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    // What the customer reads: their title (escaped), the state in their
    // words, their message, the reply mailed to them and the resolution.
    assert!(
        page.contains("Card &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; fail"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("Status: Closed"), "{page}");
    assert!(page.contains("Checkout says 500 when I pay &lt;b&gt;now&lt;/b&gt;."));
    assert!(page.contains("We found the cause and are fixing it."));
    assert!(page.contains("Saved cards work again."));
    // Never the internal comment, the team, the people, another customer.
    for secret in [
        "INTERNAL",
        "tokeniser",
        "backend",
        "bella",
        "olivia",
        "dave",
        "Invoice",
        "carol@",
    ] {
        assert!(
            !page.contains(secret),
            "`{secret}` on the customer's page: {page}"
        );
    }

    // Wrong, missing, another ticket's, an odd id: one and the same 404.
    let (_, _, not_found) = get(&bot, "/support/tickets/OPS-99?token=x");
    let mut flipped = token.to_string();
    let last = if flipped.ends_with('A') { "B" } else { "A" };
    flipped.replace_range(flipped.len() - 1.., last);
    for path in [
        format!("/support/tickets/OPS-1?token={flipped}"),
        format!("/support/tickets/OPS-1?token={}", &token[..token.len() - 1]),
        "/support/tickets/OPS-1".to_string(),
        "/support/tickets/OPS-1?token=".to_string(),
        format!("/support/tickets/OPS-2?token={token}"),
        format!("/support/tickets/OPS-3?token={token}"),
        format!("/support/tickets/OPS-99?token={token}"),
        format!("/support/tickets/..%2F..%2Fetc%2Fpasswd?token={token}"),
        format!("/support/tickets/OPS-1%00?token={token}"),
        format!("/support/tickets/%FF?token={token}"),
        format!("/support/tickets/OPS-18446744073709551616?token={token}"),
    ] {
        let (code, headers, body) = get(&bot, &path);
        assert_eq!(code, 404, "{path}: {body}");
        assert_eq!(body, not_found, "{path}: the same answer");
        assert_eq!(header(&headers, "cache-control"), "no-store");
    }
    assert!(!not_found.contains("OPS-"), "{not_found}");
    let (code, _, _) = get(&bot, "/support/tickets/../../etc/passwd");
    assert_eq!(code, 404);

    // Revoking dave's link: the old one stops working, the next mail
    // carries a new one that works.
    let dave_mail = &mails
        .iter()
        .find(|(h, _)| h["to"] == "dave@example.com")
        .unwrap()
        .1;
    let old = link_in(dave_mail);
    assert_eq!(get(&bot, &old).0, 200);
    say(
        &mut bot,
        "bob",
        "/ticket revoke-link id:OPS-2",
        "only operators",
    );
    assert_eq!(get(&bot, &old).0, 200, "a refused revoke changes nothing");
    say(
        &mut bot,
        "olivia",
        "/ticket revoke-link id:OPS-3",
        "has no customer",
    );
    say(
        &mut bot,
        "olivia",
        "/ticket revoke-link id:OPS-2",
        "no longer works",
    );
    assert_eq!(get(&bot, &old).0, 404);
    say(
        &mut bot,
        "olivia",
        "/ticket comment id:OPS-2 customer:true text:\"Your invoice is attached to your account.\"",
        "mailed to the customer",
    );
    let mails = smtp.wait_for(5);
    let new = link_in(&mails.last().unwrap().1);
    assert_ne!(new, old);
    let (code, _, page) = get(&bot, &new);
    assert_eq!(code, 200);
    assert!(page.contains("Your invoice is attached to your account."));
    assert!(
        page.contains("Being looked at") || page.contains("Received"),
        "{page}"
    );
    assert_eq!(get(&bot, &old).0, 404);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn without_a_public_url_mails_carry_no_link() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = env_for(&app, smtp.port, &[]);
    let bot = env.live(&[]);
    let body =
        json!({"session_id": "sess-carol", "subject": "Help", "message": "Please"}).to_string();
    assert_eq!(signed(&bot, &body).0, 201);
    let mails = smtp.wait_for(1);
    assert!(!mails[0].1.contains("/support/tickets/"), "{}", mails[0].1);
    assert_eq!(bot.finish().code, Some(0));
}

/// `/status set` and `/ticket public` from chat, and what the status page,
/// its JSON and its feed then say; on `env`'s store, across a restart.
fn status_flow(env: &Env) {
    let mut bot = env.live(&[]);
    // Bad input: a clear answer, nothing stored.
    say(
        &mut bot,
        "olivia",
        "/status set service:nope state:degraded",
        "the status page lists web, api",
    );
    say(&mut bot, "olivia", "/status set service:web state:down", "`state` must be one of operational, degraded, partial_outage, major_outage, maintenance; got `down`");
    say(
        &mut bot,
        "bob",
        "/status set service:web state:major_outage",
        "only operators",
    );
    say(
        &mut bot,
        "bob",
        "/ticket public id:OPS-1 text:hi",
        "only operators",
    );
    let (_, _, before) = get(&bot, "/api/v1/status");
    let before: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(before["overall"], "operational");
    assert_eq!(before["changes"], json!([]));

    say(
        &mut bot,
        "olivia",
        "/status set service:web state:degraded message:\"Slow checkout <b>really</b>\"",
        "Degraded performance on the status page",
    );
    say(
        &mut bot,
        "olivia",
        "/status set service:api state:partial_outage",
        "Partial outage on the status page",
    );
    say(
        &mut bot,
        "olivia",
        "/ticket open title:\"Payments <img src=x onerror=alert(1)> failing\" priority:p1",
        "OPS-1",
    );
    say(
        &mut bot,
        "olivia",
        "/ticket comment id:OPS-1 text:\"INTERNAL: the pg-3 disk is full\"",
        "OPS-1",
    );
    say(
        &mut bot,
        "olivia",
        "/ticket public id:OPS-1 text:\"We are investigating failed payments.\"",
        "is a public incident now",
    );
    say(
        &mut bot,
        "olivia",
        "/ticket public id:OPS-1 text:\"A fix is rolling out.\"",
        "Public update added",
    );

    let (code, headers, html) = get(&bot, "/status");
    assert_eq!(code, 200);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert!(
        header(&headers, "cache-control").contains("max-age="),
        "{headers:?}"
    );
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("Degraded performance"));
    assert!(html.contains("Partial outage"));
    assert!(
        html.contains("Slow checkout &lt;b&gt;really&lt;/b&gt;"),
        "{html}"
    );
    assert!(html.contains("Payments &lt;img src=x onerror=alert(1)&gt; failing"));
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(html.contains("We are investigating failed payments."));
    assert!(html.contains("A fix is rolling out."));
    assert!(
        !html.contains("INTERNAL") && !html.contains("pg-3"),
        "{html}"
    );

    let (code, headers, json) = get(&bot, "/api/v1/status");
    assert_eq!(code, 200);
    assert!(header(&headers, "content-type").starts_with("application/json"));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["overall"], "partial_outage");
    assert_eq!(v["components"][0]["name"], "web");
    assert_eq!(v["components"][0]["state"], "degraded");
    assert_eq!(v["components"][0]["message"], "Slow checkout <b>really</b>");
    assert_eq!(v["components"][1]["name"], "api");
    assert_eq!(v["components"][1]["state"], "partial_outage");
    let open = v["open_incidents"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0]["title"],
        "Payments <img src=x onerror=alert(1)> failing"
    );
    assert_eq!(open[0]["updates"][0]["text"], "A fix is rolling out.");
    assert_eq!(
        open[0]["updates"][1]["text"],
        "We are investigating failed payments."
    );
    assert!(!json.contains("INTERNAL"));

    let (code, headers, feed) = get(&bot, "/status/feed.atom");
    assert_eq!(code, 200);
    assert!(header(&headers, "content-type").starts_with("application/atom+xml"));
    let doc = roxmltree::Document::parse(&feed).unwrap_or_else(|e| panic!("{e}: {feed}"));
    let atom = "http://www.w3.org/2005/Atom";
    let root = doc.root_element();
    assert!(root.has_tag_name((atom, "feed")), "{feed}");
    let child = |n: roxmltree::Node, name: &str| {
        n.children()
            .find(|c| c.has_tag_name((atom, name)))
            .and_then(|c| c.text().map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in {feed}"))
    };
    assert!(!child(root, "id").is_empty());
    chrono::DateTime::parse_from_rfc3339(&child(root, "updated")).unwrap();
    let entries: Vec<_> = root
        .children()
        .filter(|c| c.has_tag_name((atom, "entry")))
        .collect();
    assert_eq!(entries.len(), 4, "two updates and two changes: {feed}");
    let mut ids: Vec<String> = entries.iter().map(|e| child(*e, "id")).collect();
    for e in &entries {
        chrono::DateTime::parse_from_rfc3339(&child(*e, "updated")).unwrap();
        assert!(!child(*e, "title").is_empty());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "unique entry ids");
    assert!(feed.contains("Payments &lt;img"), "{feed}");

    // Its resolution appears; the incident moves to the past ones.
    say(
        &mut bot,
        "olivia",
        "/ticket assign id:OPS-1 user:bob",
        "OPS-1",
    );
    say(&mut bot, "bob", "/ticket take id:OPS-1", "OPS-1");
    say(
        &mut bot,
        "bob",
        "/ticket resolve id:OPS-1 note:\"Payments work again.\"",
        "OPS-1",
    );
    say(
        &mut bot,
        "olivia",
        "/status set service:web state:operational",
        "Operational on the status page",
    );
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.in_channel("ops")
            .iter()
            .any(|l| l.contains("Status page: olivia set web to Degraded performance")),
        "{}",
        run.stdout
    );

    // Kept across a restart.
    let bot = env.live(&[]);
    let (_, _, json) = get(&bot, "/api/v1/status");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["components"][0]["state"], "operational");
    assert_eq!(v["overall"], "partial_outage");
    assert_eq!(v["open_incidents"], json!([]));
    let past = &v["past_incidents"][0];
    assert_eq!(past["updates"][0]["text"], "Resolved: Payments work again.");
    assert_eq!(past["updates"].as_array().unwrap().len(), 3);
    assert_eq!(v["changes"].as_array().unwrap().len(), 3);
    let (_, _, html) = get(&bot, "/status");
    assert!(html.contains("Resolved: Payments work again."));

    // A maintenance window on web shows web as in maintenance, api untouched.
    let mut bot = bot;
    say(
        &mut bot,
        "olivia",
        "/maintenance start matchers:\"service=web env=production\" duration:1h comment:\"db upgrade\"",
        "Maintenance window 1 is in force until",
    );
    let (_, _, json) = get(&bot, "/api/v1/status");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["components"][0]["name"], "web");
    assert_eq!(v["components"][0]["state"], "maintenance", "{json}");
    assert_eq!(v["components"][1]["state"], "partial_outage", "{json}");
    say(
        &mut bot,
        "olivia",
        "/maintenance end id:1",
        "Maintenance window 1 ended (",
    );
    let (_, _, json) = get(&bot, "/api/v1/status");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["components"][0]["state"], "operational", "{json}");
    assert_eq!(bot.finish().code, Some(0));
}

fn status_config() -> String {
    shipped_config()
}

#[test]
fn the_status_page_is_set_from_chat_and_read_as_html_json_and_atom() {
    status_flow(&Env::shipped_with(&status_config()));
}

#[test]
fn the_status_page_works_on_postgres_too() {
    status_flow(&Env::on_postgres_with(&status_config()));
}

// ---------------------------------------------------------------------------
// A real browser.

/// Where the screenshots are kept.
fn artifacts() -> std::path::PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts").join("web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium over the DevTools protocol, one page.
struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

/// What a person sees of a page at a phone's width.
#[derive(Debug, serde::Deserialize)]
struct Seen {
    text: String,
    lang: String,
    #[serde(rename = "scrollWidth")]
    scroll_width: u64,
    #[serde(rename = "innerWidth")]
    inner_width: u64,
    headings: u64,
    scripts: u64,
}

impl Browser {
    async fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=390,844",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromium: run .ci/setup to install Debian's chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                break p;
            }
            assert!(Instant::now() < deadline, "chromium gave no DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let list: Vec<Value> = loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                if let Ok(v) = r.json::<Vec<Value>>().await {
                    if v.iter().any(|t| t["type"] == "page") {
                        break v;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromium listed no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let url = list
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap()
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next: 0,
        };
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
        b.call("Page.enable", json!({})).await;
        b
    }

    /// Sends a command and waits for its answer; `events` get what came
    /// before it.
    async fn send(&mut self, method: &str, params: Value, events: &mut Vec<Value>) -> Value {
        use serenity::futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(msg)).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
                .expect("the DevTools socket closed")
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            events.push(v);
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let mut events = Vec::new();
        self.send(method, params, &mut events).await
    }

    /// Loads `url` and waits for its load event.
    async fn open(&mut self, url: &str) {
        use serenity::futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut events = Vec::new();
        self.send("Page.navigate", json!({"url": url}), &mut events)
            .await;
        let loaded = |e: &Value| e["method"] == "Page.loadEventFired";
        if events.iter().any(loaded) {
            return;
        }
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("the page did not load")
                .expect("the DevTools socket closed")
                .unwrap();
            if let Message::Text(t) = m {
                if loaded(&serde_json::from_str(&t).unwrap()) {
                    return;
                }
            }
        }
    }

    /// What a person sees of the loaded page; its screenshot saved as `name`.
    async fn look(&mut self, name: &str) -> Seen {
        use base64::Engine as _;
        let r = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": "JSON.stringify({text: document.body.innerText, lang: document.documentElement.lang, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, headings: document.querySelectorAll('h1,h2').length, scripts: document.scripts.length})",
                    "returnByValue": true
                }),
            )
            .await;
        let seen: Seen = serde_json::from_str(r["result"]["value"].as_str().unwrap()).unwrap();
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(artifacts().join(name), png).unwrap();
        seen
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_browser_shows_the_status_page_and_a_customers_page_on_a_phone() {
    let app = FakeApp::start();
    let smtp = Smtp::start(free_port());
    let env = customer_env(&app, &smtp);
    let mut bot = env.live(&[]);
    let long = "x".repeat(150);
    let body = json!({"session_id": "sess-carol", "subject": format!("Checkout fails {long}"), "message": "It says 500 when I pay."}).to_string();
    assert_eq!(signed(&bot, &body), (201, json!({"ticket": "OPS-1"})));
    for (who, line, answer) in [
        ("olivia", "/ticket comment id:OPS-1 text:\"INTERNAL: the pg-3 disk is full\"", "OPS-1"),
        ("olivia", "/ticket comment id:OPS-1 customer:true text:\"We are on it.\"", "mailed to the customer"),
        ("olivia", "/status set service:web state:major_outage message:\"Checkout is down for everyone.\"", "Major outage on the status page"),
        ("olivia", "/ticket open title:\"Checkout down https://example.com/a-very-long-path-without-any-break-in-it-at-all-0123456789\" priority:p1", "OPS-2"),
        ("olivia", "/ticket public id:OPS-2 text:\"We are restoring checkout.\"", "is a public incident now"),
    ] {
        say(&mut bot, who, line, answer);
    }
    let mails = smtp.wait_for(2);
    let link = link_in(&mails[1].1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, customer) = rt.block_on(async {
        let mut b = Browser::launch().await;
        b.open(&bot.url("/status")).await;
        let status = b.look("status-390.png").await;
        b.open(&bot.url(&link)).await;
        let customer = b.look("customer-390.png").await;
        (status, customer)
    });

    // The status page: the states and the public update, in words.
    assert_eq!(status.lang, "en");
    assert_eq!(status.scripts, 0, "no JavaScript needed");
    assert!(status.headings >= 4, "{status:?}");
    for seen in [
        "Major outage",
        "Checkout is down for everyone.",
        "We are restoring checkout.",
        "Operational",
    ] {
        assert!(
            status.text.contains(seen),
            "`{seen}` not seen: {}",
            status.text
        );
    }
    assert!(!status.text.contains("INTERNAL"));
    assert!(
        status.scroll_width <= status.inner_width,
        "the status page overflows a phone: {} > {}",
        status.scroll_width,
        status.inner_width
    );
    assert_eq!(status.inner_width, 390);

    // The customer's page: their request, the reply, no internal comment.
    assert_eq!(customer.lang, "en");
    for seen in [
        "Status: Received",
        "It says 500 when I pay.",
        "We are on it.",
        "You",
        "Support team",
    ] {
        assert!(
            customer.text.contains(seen),
            "`{seen}` not seen: {}",
            customer.text
        );
    }
    assert!(!customer.text.contains("INTERNAL") && !customer.text.contains("olivia"));
    assert!(
        customer.scroll_width <= customer.inner_width,
        "the customer's page overflows a phone: {} > {}",
        customer.scroll_width,
        customer.inner_width
    );
    for shot in ["status-390.png", "customer-390.png"] {
        assert!(artifacts().join(shot).metadata().unwrap().len() > 1000);
    }
    assert_eq!(bot.finish().code, Some(0));
}
