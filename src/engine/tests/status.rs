//! The public side's rules on the engine, on the in-memory view: who may
//! set the status page and with what, public incidents and their
//! resolution, the customer's link in every mail and its revocation, and
//! what the customer's page leaves out.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::status::ServiceState;
use crate::domain::{Actor, ChannelName, Customer, Source, TicketId, Timestamp, UserName};
use crate::engine::status::{customer_page, link_token, status_page};
use crate::engine::{Effect, Event, MemoryView, QueryView, View};

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[http]
public_url = "https://support.example.com/"
[status]
title = "Acme status"
components = ["api", "checkout"]
"#;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Bench {
    view: RefCell<MemoryView>,
    engine: crate::engine::Engine,
    now: Timestamp,
}

impl Bench {
    fn with(src: &str) -> Bench {
        let config = Config::parse(std::path::Path::new("bot.toml"), src)
            .unwrap()
            .config;
        Bench {
            view: RefCell::new(MemoryView::with_link_key(KEY)),
            engine: crate::engine::Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    fn event(&self, ev: Event) -> Result<Vec<Effect>, String> {
        let mut view = self.view.borrow_mut();
        let d = self
            .engine
            .decide(&*view, &ev, self.now)
            .map_err(|e| e.to_string())?;
        let effects = d
            .writes
            .iter()
            .filter_map(|w| match w {
                crate::engine::Write::Effect(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        view.apply(d.writes);
        Ok(effects)
    }

    fn cmd(&self, who: &str, line: &str) -> Result<Vec<Effect>, String> {
        let command = parse_command(line, "OPS").map_err(|e| e.to_string())?;
        self.event(Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        })
    }

    fn request(&self, subject: &str) -> Vec<Effect> {
        self.event(Event::SupportRequest {
            customer: Customer {
                id: "cust-1".into(),
                email: "carol@example.com".into(),
            },
            subject: subject.into(),
            message: "It says 500.".into(),
            idempotency_key: None,
        })
        .unwrap()
    }

    fn page(&self) -> crate::engine::status::StatusPage {
        let view = self.view.borrow();
        let board = view.status_board().unwrap();
        let incident = view.incident(&TicketId::new("OPS", 1)).unwrap();
        let incidents: Vec<_> = incident
            .into_iter()
            .map(|i| {
                let t = view.ticket(&i.ticket).unwrap();
                (i, t)
            })
            .collect();
        status_page(self.engine.config(), &board, &incidents, &[], self.now)
    }
}

fn mail_bodies(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Mail(m) => Some(m.body.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn only_operators_set_listed_services_to_known_states_and_a_refusal_stores_nothing() {
    let b = Bench::with(CONFIG);
    let refusals = [
        ("bob", "/status set service:api state:degraded", "only operators (olivia) may set the status page"),
        ("olivia", "/status set service:web state:degraded", "there is no service or component `web`; the status page lists api, checkout"),
        ("olivia", "/status set service:api state:down", "`state` must be one of operational, degraded, partial_outage, major_outage, maintenance; got `down`"),
        ("olivia", "/status set state:degraded", "/status set needs `service:`"),
    ];
    for (who, line, want) in refusals {
        let got = b.cmd(who, line).unwrap_err();
        assert!(got.contains(want), "{line}\n got: {got}\nwant: {want}");
    }
    assert_eq!(b.view.borrow().status_board().unwrap(), Default::default());

    b.cmd(
        "olivia",
        "/status set service:api state:partial_outage message:\"Slow\"",
    )
    .unwrap();
    let p = b.page();
    assert_eq!(p.overall, ServiceState::PartialOutage);
    assert_eq!(p.components[0].name, "api");
    assert_eq!(p.components[0].message.as_deref(), Some("Slow"));
    assert_eq!(p.components[1].state, ServiceState::Operational);
    assert_eq!(p.changes.len(), 1);
}

#[test]
fn maintenance_windows_show_as_maintenance_unless_something_worse_was_set() {
    let b = Bench::with(CONFIG);
    b.cmd("olivia", "/status set service:api state:major_outage")
        .unwrap();
    let board = b.view.borrow().status_board().unwrap();
    let names = ["api".to_string(), "checkout".to_string()];
    let p = status_page(b.engine.config(), &board, &[], &names, b.now);
    assert_eq!(p.components[0].state, ServiceState::MajorOutage);
    assert_eq!(p.components[1].state, ServiceState::Maintenance);
    assert_eq!(p.overall, ServiceState::MajorOutage);
}

#[test]
fn changes_and_incidents_older_than_ninety_days_leave_the_page() {
    let mut b = Bench::with(CONFIG);
    b.cmd("olivia", "/ticket open title:\"Checkout down\"")
        .unwrap();
    b.cmd("olivia", "/status set service:checkout state:degraded")
        .unwrap();
    b.cmd(
        "olivia",
        "/ticket public id:OPS-1 text:\"Looking into it.\"",
    )
    .unwrap();
    b.cmd(
        "olivia",
        "/ticket public id:OPS-1 text:\"Found it.\" title:\"Checkout is slow\"",
    )
    .unwrap();
    b.cmd("olivia", "/ticket assign id:OPS-1 user:bob").unwrap();
    b.cmd("bob", "/ticket take id:OPS-1").unwrap();
    b.cmd("bob", "/ticket resolve id:OPS-1 note:\"Back.\"")
        .unwrap();
    let p = b.page();
    assert!(p.open_incidents.is_empty());
    assert_eq!(p.past_incidents[0].updates[0].text, "Resolved: Back.");
    assert_eq!(p.past_incidents[0].title, "Checkout is slow");
    assert_eq!(p.past_incidents[0].updates[1].text, "Found it.");
    assert_eq!(p.past_incidents[0].updates[2].text, "Looking into it.");
    b.now += Duration::days(91);
    let p = b.page();
    assert!(p.past_incidents.is_empty());
    assert!(p.changes.is_empty());
    // The next change prunes the stored log as well.
    b.cmd("olivia", "/status set service:checkout state:operational")
        .unwrap();
    assert_eq!(b.view.borrow().status_board().unwrap().log.len(), 1);
}

#[test]
fn every_customer_mail_carries_the_link_and_revoking_it_makes_a_new_one() {
    let b = Bench::with(CONFIG);
    let id = TicketId::new("OPS", 1);
    let ack = mail_bodies(&b.request("Cannot pay"));
    let token = link_token(KEY, &id, 0).unwrap();
    assert!(token.len() >= 43, "256 bits: {token}");
    let link = format!("https://support.example.com/support/tickets/OPS-1?token={token}");
    assert_eq!(ack.len(), 1);
    assert!(ack[0].ends_with(&format!("{link}\n")), "{}", ack[0]);

    let upd = mail_bodies(
        &b.cmd(
            "olivia",
            "/ticket comment id:OPS-1 customer:true text:\"On it.\"",
        )
        .unwrap(),
    );
    assert!(upd[0].contains(&link));

    assert!(b
        .cmd("bob", "/ticket revoke-link id:OPS-1")
        .unwrap_err()
        .contains("only operators"));
    b.cmd("olivia", "/ticket revoke-link id:OPS-1").unwrap();
    assert_eq!(b.view.borrow().link_generation(&id).unwrap(), 1);
    let upd = mail_bodies(
        &b.cmd(
            "olivia",
            "/ticket comment id:OPS-1 customer:true text:\"Still on it.\"",
        )
        .unwrap(),
    );
    let new = link_token(KEY, &id, 1).unwrap();
    assert_ne!(new, token);
    assert!(upd[0].contains(&new) && !upd[0].contains(&token));

    // No public address: no link.
    let b = Bench::with(&CONFIG.replace("public_url = \"https://support.example.com/\"", ""));
    let ack = mail_bodies(&b.request("Cannot pay"));
    assert!(!ack[0].contains("/support/tickets/"), "{}", ack[0]);
}

#[test]
fn the_customers_page_shows_their_words_and_the_replies_mailed_to_them_only() {
    let b = Bench::with(CONFIG);
    b.request("Cannot pay");
    for line in [
        "/ticket comment id:OPS-1 text:\"INTERNAL: bob thinks it is the tokeniser\"",
        "/ticket comment id:OPS-1 customer:true text:\"We are on it.\"",
        "/ticket assign id:OPS-1 user:bob",
    ] {
        b.cmd("olivia", line).unwrap();
    }
    let refused = b
        .cmd(
            "olivia",
            "/ticket public id:OPS-1 text:\"Payments fail for some.\"",
        )
        .unwrap_err();
    assert!(
        refused.contains("OPS-1 is a customer's request"),
        "{refused}"
    );
    let id = TicketId::new("OPS", 1);
    let view = b.view.borrow();
    let t = view.ticket(&id).unwrap().unwrap();
    let timeline = view.timeline(&id).unwrap();
    let page = customer_page(&t, &timeline, &view.customer_visible(&id).unwrap());
    let lines: Vec<(bool, &str)> = page
        .entries
        .iter()
        .map(|e| (e.from_customer, e.text.as_str()))
        .collect();
    assert_eq!(lines, [(true, "It says 500."), (false, "We are on it.")]);
    assert_eq!(page.state_words, "Being looked at by our team");
    assert_eq!(page.resolution, None);
    let all = serde_json::to_string(&page).unwrap();
    for secret in [
        "INTERNAL",
        "bob",
        "backend",
        "olivia",
        "carol@",
        "public update",
    ] {
        assert!(!all.contains(secret), "`{secret}` in {all}");
    }
}
