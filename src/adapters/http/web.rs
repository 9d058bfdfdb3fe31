//! The public pages: the status page (`GET /status`, `/api/v1/status`,
//! `/status/feed.atom`) and the customer's own ticket page (`GET
//! /support/tickets/{id}?token=…`). An adapter: it reads the records, lets
//! the engine say what each page shows (`engine::status`), and renders that
//! as HTML (maud: every value escaped), JSON or Atom. No JavaScript.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use subtle::ConstantTimeEq;

use super::{internal, read_error, ApiError, HttpState};
use crate::domain::status::ServiceState;
use crate::domain::{TicketId, Timestamp};
use crate::engine::status::{self, CustomerPage, StatusPage};
use crate::engine::{QueryView, View};

/// The routes of the public pages; none takes a bearer token.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/status", get(status_html))
        .route("/api/v1/status", get(status_json))
        .route("/status/feed.atom", get(status_atom))
        .route("/support/tickets/{id}", get(customer_ticket))
}

/// How long a cache may keep the status page.
const STATUS_MAX_AGE: &str = "public, max-age=30";

/// Headers every public page carries.
fn page_headers(cache: &'static str, content_type: &'static str) -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

const HTML: &str = "text/html; charset=utf-8";

/// The status page as the engine sees it now.
async fn status_view(s: &HttpState) -> Result<StatusPage, ApiError> {
    let store = s.bot.store().map_err(read_error)?;
    let config = s.bot.engine().config().clone();
    let now = s.bot.now();
    tokio::task::spawn_blocking(move || {
        let board = store.status_board()?;
        let incidents = store.public_incidents()?;
        let covered = store
            .maintenance()?
            .services_covered(&config.status.components, now);
        Ok::<_, crate::error::StoreError>(status::status_page(
            &config, &board, &incidents, &covered, now,
        ))
    })
    .await
    .map_err(|e| internal(&e, "the status page task failed"))?
    .map_err(|e| internal(&e, "cannot read the store for the status page"))
}

async fn status_html(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let page = status_view(&s).await?;
    Ok((
        page_headers(STATUS_MAX_AGE, HTML),
        render_status(&page).into_string(),
    )
        .into_response())
}

async fn status_json(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let page = status_view(&s).await?;
    let mut resp = Json(page).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(STATUS_MAX_AGE),
    );
    Ok(resp)
}

async fn status_atom(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let page = status_view(&s).await?;
    let base = s.bot.engine().config().http.public_url.clone();
    Ok((
        page_headers(STATUS_MAX_AGE, "application/atom+xml; charset=utf-8"),
        render_atom(&page, base.as_deref()),
    )
        .into_response())
}

/// The one answer to a wrong token, a missing one, an unknown or odd id:
/// the same page, with nothing about the ticket in it.
fn not_found() -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Page not found" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "Page not found" }
                    p { "This link does not lead to a request. It may be mistyped, or it was replaced by a newer one: use the link in the latest mail about your request, or reply to that mail." }
                }
            }
        }
    };
    (
        StatusCode::NOT_FOUND,
        page_headers("no-store", HTML),
        body.into_string(),
    )
        .into_response()
}

/// The `token` of a query string, as sent.
fn token_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

async fn customer_ticket(
    State(s): State<HttpState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Ok(Path(raw)) = path else {
        return Ok(not_found());
    };
    let prefix = s.bot.engine().config().tickets.prefix.clone();
    let (Ok(id), Some(given)) = (
        TicketId::parse(&raw, &prefix),
        token_of(query.as_deref()).map(str::to_string),
    ) else {
        return Ok(not_found());
    };
    let store = s.bot.store().map_err(read_error)?;
    let found = tokio::task::spawn_blocking(
        move || -> Result<Option<CustomerPage>, crate::error::StoreError> {
            let Some(t) = store.ticket(&id)? else {
                return Ok(None);
            };
            if t.customer.is_none() {
                return Ok(None);
            }
            let Some(key) = store.link_key()? else {
                return Ok(None);
            };
            let generation = store.link_generation(&id)?;
            let Some(expected) = status::link_token(&key, &id, generation) else {
                return Ok(None);
            };
            // Constant time: how much of a guess matched is not told.
            if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                return Ok(None);
            }
            let timeline = store.timeline(&id)?;
            let visible = store.customer_visible(&id)?;
            Ok(Some(status::customer_page(&t, &timeline, &visible)))
        },
    )
    .await
    .map_err(|e| internal(&e, "the customer page task failed"))?
    .map_err(|e| internal(&e, "cannot read the store for a customer page"))?;
    let Some(page) = found else {
        return Ok(not_found());
    };
    let mut resp = (
        page_headers("no-store", HTML),
        render_customer(&page).into_string(),
    )
        .into_response();
    resp.headers_mut().insert(
        HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex"),
    );
    Ok(resp)
}

/// Readable on a phone and on a desk; dark text on white (contrast above
/// 7:1), each state said in words as well as in colour; long words wrap.
const CSS: &str = r#"
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1a1a1a;background:#fff}
body{margin:0;padding:1rem;max-width:46rem;margin-inline:auto;overflow-wrap:anywhere;word-break:break-word}
h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin:.75rem 0 .25rem}
ul,ol{padding-left:0;list-style:none;margin:0}
li{padding:.5rem 0;border-bottom:1px solid #e5e5e5}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem}
.name{font-weight:600}
.state{font-weight:600}
.overall{padding:.75rem 1rem;border-radius:.4rem;font-weight:600;border:2px solid currentColor}
.operational{color:#0b5d1e}.degraded{color:#6b4400}.partial_outage{color:#8a2c0d}.major_outage{color:#a0161b}.maintenance{color:#1e3a8a}
.muted,time{color:#4a4a4a}
.message,.text{margin:.25rem 0 0;white-space:pre-wrap}
.you{border-left:4px solid #1e3a8a;padding-left:.75rem}
.team{border-left:4px solid #0b5d1e;padding-left:.75rem}
footer{margin-top:2rem;font-size:.9rem}
a{color:#1e3a8a}
"#;

fn when(at: Timestamp) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M UTC").to_string())
        }
    }
}

fn overall_words(s: ServiceState) -> &'static str {
    match s {
        ServiceState::Operational => "All systems operational",
        ServiceState::Maintenance => "Maintenance in progress",
        ServiceState::Degraded => "Some systems are degraded",
        ServiceState::PartialOutage => "Partial outage",
        ServiceState::MajorOutage => "Major outage",
    }
}

fn incident(i: &status::IncidentView) -> Markup {
    html! {
        article aria-labelledby=(format!("incident-{}", i.id.num())) {
            h3 id=(format!("incident-{}", i.id.num())) { (i.title) }
            p class="muted" {
                "Since " (when(i.published_at))
                @if let Some(at) = i.resolved_at { " · resolved " (when(at)) }
            }
            ol aria-label="Updates, newest first" {
                @for u in &i.updates {
                    li { (when(u.at)) p class="text" { (u.text) } }
                }
            }
        }
    }
}

fn render_status(p: &StatusPage) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (p.title) }
                link rel="alternate" type="application/atom+xml" title="Status updates" href="/status/feed.atom";
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { (p.title) }
                    p class={"overall " (p.overall.as_str())} role="status" { (overall_words(p.overall)) }
                }
                main {
                    section aria-labelledby="services" {
                        h2 id="services" { "Services" }
                        @if p.components.is_empty() {
                            p class="muted" { "No services are listed." }
                        }
                        ul {
                            @for c in &p.components {
                                li class="component" {
                                    div class="row" {
                                        span class="name" { (c.name) }
                                        span class={"state " (c.state.as_str())} { (c.state.words()) }
                                    }
                                    @if let Some(m) = &c.message { p class="message" { (m) } }
                                    @if let Some(at) = c.since { p class="muted" { "Since " (when(at)) } }
                                }
                            }
                        }
                    }
                    section aria-labelledby="open" {
                        h2 id="open" { "Open incidents" }
                        @if p.open_incidents.is_empty() {
                            p class="muted" { "No open incidents." }
                        }
                        @for i in &p.open_incidents { (incident(i)) }
                    }
                    section aria-labelledby="past" {
                        h2 id="past" { "Past incidents (last 90 days)" }
                        @if p.past_incidents.is_empty() {
                            p class="muted" { "No incidents in the last 90 days." }
                        }
                        @for i in &p.past_incidents { (incident(i)) }
                    }
                    section aria-labelledby="changes" {
                        h2 id="changes" { "Status changes (last 90 days)" }
                        @if p.changes.is_empty() {
                            p class="muted" { "No changes in the last 90 days." }
                        }
                        ol {
                            @for c in &p.changes {
                                li {
                                    div class="row" {
                                        span { span class="name" { (c.service) } ": " span class={"state " (c.state.as_str())} { (c.state.words()) } }
                                        (when(c.at))
                                    }
                                    @if let Some(m) = &c.message { p class="message" { (m) } }
                                }
                            }
                        }
                    }
                }
                footer {
                    p class="muted" {
                        "Updated " (when(p.updated_at)) " · "
                        a href="/api/v1/status" { "JSON" } " · "
                        a href="/status/feed.atom" { "Atom feed" }
                    }
                }
            }
        }
    }
}

fn render_customer(p: &CustomerPage) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { "Your request " (p.id) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    p class="muted" { "Your request " (p.id) }
                    h1 { (p.title) }
                    p class="overall" role="status" { "Status: " (p.state_words) }
                    p class="muted" { "Opened " (when(p.opened_at)) " · last change " (when(p.updated_at)) }
                }
                main {
                    @if let Some(r) = &p.resolution {
                        section aria-labelledby="resolution" {
                            h2 id="resolution" { "Resolution" }
                            p class="text" { (r) }
                        }
                    }
                    section aria-labelledby="history" {
                        h2 id="history" { "History" }
                        ol {
                            @for e in &p.entries {
                                li class=(if e.from_customer { "you" } else { "team" }) {
                                    div class="row" {
                                        span class="name" { (if e.from_customer { "You" } else { "Support team" }) }
                                        (when(e.at))
                                    }
                                    p class="text" { (e.text) }
                                }
                            }
                        }
                    }
                }
                footer {
                    p class="muted" { "To add something, reply to the latest mail about this request." }
                }
            }
        }
    }
}

/// The feed: one entry per public update and per state change, newest first.
fn render_atom(p: &StatusPage, base: Option<&str>) -> String {
    // The feed's id: its address where the public reaches it, else a name.
    let feed_id = match base {
        Some(b) => format!("{b}/status/feed.atom"),
        None => "urn:opsbot:status-feed".to_string(),
    };
    let base = base.unwrap_or("");
    let rfc = |at: Timestamp| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    struct Entry {
        id: String,
        title: String,
        at: Timestamp,
        text: String,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for i in p.open_incidents.iter().chain(&p.past_incidents) {
        for (n, u) in i.updates.iter().enumerate() {
            entries.push(Entry {
                id: format!(
                    "urn:opsbot:incident:{}:{}:{}",
                    i.id.num(),
                    u.at.timestamp_millis(),
                    i.updates.len() - n
                ),
                title: i.title.clone(),
                at: u.at,
                text: u.text.clone(),
            });
        }
    }
    for c in &p.changes {
        entries.push(Entry {
            id: format!(
                "urn:opsbot:status:{}:{}",
                c.service,
                c.at.timestamp_millis()
            ),
            title: format!("{}: {}", c.service, c.state.words()),
            at: c.at,
            text: c.message.clone().unwrap_or_else(|| c.state.words().into()),
        });
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.at));
    let updated = entries.first().map(|e| e.at).unwrap_or(p.updated_at);
    let feed = html! {
        (PreEscaped("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"))
        feed xmlns="http://www.w3.org/2005/Atom" {
            id { (feed_id) }
            title { (p.title) }
            updated { (rfc(updated)) }
            author { name { (p.title) } }
            link rel="self" href={(base) "/status/feed.atom"} {}
            link rel="alternate" type="text/html" href={(base) "/status"} {}
            @for e in &entries {
                entry {
                    id { (e.id) }
                    title { (e.title) }
                    updated { (rfc(e.at)) }
                    link rel="alternate" type="text/html" href={(base) "/status"} {}
                    content type="text" { (e.text) }
                }
            }
        }
    };
    // XML 1.0 has no place for U+FFFE, U+FFFF or controls (the sanitiser
    // already took those out of untrusted text; this keeps the feed valid
    // whatever was stored).
    feed.into_string()
        .chars()
        .filter(|&c| {
            !matches!(c, '\u{FFFE}' | '\u{FFFF}') && (!c.is_control() || matches!(c, '\n' | '\t'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::{PublicUpdate, StatusChange};

    fn hostile_page() -> StatusPage {
        let at: Timestamp = "2026-03-24T10:00:00Z".parse().unwrap();
        let evil = "<script>alert(1)</script> ]]> & \"q\" \u{FFFF}";
        StatusPage {
            title: format!("Acme {evil}"),
            overall: ServiceState::Degraded,
            components: vec![status::ComponentView {
                name: "api".into(),
                state: ServiceState::Degraded,
                message: Some(evil.into()),
                since: Some(at),
            }],
            open_incidents: vec![status::IncidentView {
                id: TicketId::new("OPS", 3),
                title: evil.into(),
                published_at: at,
                resolved_at: None,
                updates: vec![PublicUpdate {
                    at,
                    text: evil.into(),
                }],
            }],
            past_incidents: Vec::new(),
            changes: vec![StatusChange {
                at,
                service: "api".into(),
                state: ServiceState::Degraded,
                message: Some(evil.into()),
            }],
            updated_at: at,
        }
    }

    #[test]
    fn hostile_text_is_escaped_in_the_page_and_the_feed_stays_valid_atom() {
        let p = hostile_page();
        let html = render_status(&p).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; ]]&gt; &amp; &quot;q&quot;"));
        let feed = render_atom(&p, Some("https://status.example.com"));
        let doc = roxmltree::Document::parse(&feed).unwrap_or_else(|e| panic!("{e}: {feed}"));
        let atom = "http://www.w3.org/2005/Atom";
        let root = doc.root_element();
        assert!(root.has_tag_name((atom, "feed")));
        let id = root
            .children()
            .find(|c| c.has_tag_name((atom, "id")))
            .and_then(|c| c.text());
        assert_eq!(id, Some("https://status.example.com/status/feed.atom"));
        let titles: Vec<&str> = root
            .descendants()
            .filter(|c| c.has_tag_name((atom, "title")))
            .filter_map(|c| c.text())
            .collect();
        assert_eq!(titles.len(), 3, "{feed}");
        assert!(titles[1].starts_with("<script>alert(1)</script> ]]> & \"q\""));
    }

    #[test]
    fn the_token_is_read_from_the_query_as_sent() {
        assert_eq!(token_of(Some("token=abc")), Some("abc"));
        assert_eq!(token_of(Some("x=1&token=abc")), Some("abc"));
        assert_eq!(token_of(Some("token=")), None);
        assert_eq!(token_of(Some("tok=abc")), None);
        assert_eq!(token_of(None), None);
    }
}
