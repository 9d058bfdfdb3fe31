//! Pages that reach a person: the escalation step that pages, `/page`, and
//! a page that did not reach its person, said once.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Source, TicketId, Timestamp, UserName};
use crate::engine::tests::post_line;
use crate::engine::tests::sla::CONFIG;
use crate::engine::{Effect, Engine, Event, MemoryView, Page, QueryView};

struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new() -> Bench {
        Bench::with("")
    }

    /// The sla tests' config with `extra` added at its end.
    fn with(extra: &str) -> Bench {
        let config = Config::parse(
            std::path::Path::new("bot.toml"),
            &format!("{CONFIG}\n{extra}"),
        )
        .unwrap()
        .config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    fn event(&self, ev: Event) -> Result<(), String> {
        let mut view = self.view.borrow_mut();
        let d = self
            .engine
            .decide(&*view, &ev, self.now)
            .map_err(|e| e.to_string())?;
        view.apply(d.writes);
        Ok(())
    }

    fn cmd(&self, who: &str, line: &str) -> Result<(), String> {
        let command = parse_command(line, "OPS").map_err(|e| e.to_string())?;
        self.event(Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        })
    }

    fn tick(&self) {
        let due = self
            .view
            .borrow()
            .due_tickets(self.now, usize::MAX, "OPS")
            .unwrap();
        self.event(Event::Tick { tickets: due }).unwrap();
    }

    /// Pages and posts queued since the last call.
    fn queued(&self) -> (Vec<Page>, Vec<String>) {
        let items = self.view.borrow().outbox_pending(10_000).unwrap();
        let (mut pages, mut posts) = (Vec::new(), Vec::new());
        for i in items {
            self.view.borrow_mut().outbox_done(i.seq).unwrap();
            match i.effect {
                Effect::Page(p) => pages.push(p),
                other => posts.extend(post_line(other)),
            }
        }
        (pages, posts)
    }

    fn timeline(&self) -> Vec<String> {
        self.view
            .borrow()
            .timeline(&TicketId::new("OPS", 1))
            .unwrap()
            .into_iter()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
            .collect()
    }
}

fn open(b: &Bench) {
    b.cmd(
        "olivia",
        "/ticket open title:\"Checkout down\" priority:p1 team:backend",
    )
    .unwrap();
    b.queued();
}

#[test]
fn the_escalation_step_that_pages_sends_the_card_to_the_person_on_call() {
    let mut b = Bench::new();
    open(&b);
    b.now += Duration::minutes(15);
    b.tick();
    assert!(b.queued().0.is_empty(), "remind pages nobody");
    b.now += Duration::minutes(10);
    b.tick();
    let (pages, posts) = b.queued();
    let [page] = pages.as_slice() else {
        panic!("{pages:?}");
    };
    assert_eq!(page.to.as_str(), "bella");
    assert_eq!(page.card.ticket.to_string(), "OPS-1");
    assert_eq!(
        page.body.to_plain(),
        "OPS-1 · p1 · Checkout down — escalation urgent step 3/8: you are on call for backend. Acknowledge takes it (or /ticket take id:OPS-1)."
    );
    // The channel hears of it as before.
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].starts_with("#backend OPS-1 · p1 · Checkout down — not taken for 25m. @bella"));
}

#[test]
fn page_sends_the_card_to_someone_by_hand_and_refuses_what_it_cannot_do() {
    let b = Bench::new();
    open(&b);
    let before = b.timeline();
    for (who, line, want) in [
        (
            "olivia",
            "/page user:zed id:OPS-1",
            "`zed` is nobody bot.toml names; page one of:",
        ),
        (
            "olivia",
            "/page user:bob id:OPS-9",
            "there is no ticket OPS-9",
        ),
        ("olivia", "/page id:OPS-1", "/page needs `user:`"),
        ("stranger", "/page user:bob id:OPS-1", "only "),
    ] {
        let err = b.cmd(who, line).unwrap_err();
        assert!(err.contains(want), "{line}: {err}");
    }
    assert_eq!(b.timeline(), before, "a refusal changes nothing");
    assert!(b.queued().0.is_empty());

    b.cmd("olivia", "/page user:bob id:OPS-1").unwrap();
    let (pages, _) = b.queued();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].to.as_str(), "bob");
    assert!(pages[0].body.to_plain().contains("olivia pages you"));
    assert_eq!(b.timeline().last().unwrap(), "escalated: paged bob");

    b.cmd("bob", "/ticket take id:OPS-1").unwrap();
    b.cmd("bob", "/ticket resolve id:OPS-1 note:fixed").unwrap();
    let err = b.cmd("olivia", "/page user:bob id:OPS-1").unwrap_err();
    assert!(err.contains("OPS-1 is resolved"), "{err}");
}

#[test]
fn a_page_that_does_not_reach_its_person_is_said_once_and_kept_on_record() {
    let b = Bench::new();
    open(&b);
    let refused = || Event::PageRefused {
        to: UserName::parse("bella").unwrap(),
        ticket: TicketId::new("OPS", 1),
        why: "their direct messages are closed (Discord error 50007)".into(),
    };
    b.event(refused()).unwrap();
    b.event(refused()).unwrap();
    let (_, posts) = b.queued();
    assert_eq!(posts.len(), 1, "said once: {posts:?}");
    assert!(
        posts[0].starts_with("#backend OPS-1 · p1 · Checkout down — a page to @bella did not reach them (their direct messages are closed (Discord error 50007))"),
        "{posts:?}"
    );
    let notes: Vec<String> = b
        .timeline()
        .into_iter()
        .filter(|e| e.contains("did not reach"))
        .collect();
    assert_eq!(notes.len(), 2, "each on the record");
}

#[test]
fn a_page_is_mailed_too_to_someone_with_an_address() {
    let b = Bench::with("[people.bob]\nemail = \"bob@example.com\"\n");
    open(&b);
    b.cmd("olivia", "/page user:bella id:OPS-1").unwrap();
    assert!(b.view.borrow().queued().is_empty(), "bella has no address");
    b.cmd("olivia", "/page user:bob id:OPS-1").unwrap();
    let mails: Vec<crate::engine::Mail> = b
        .view
        .borrow()
        .queued()
        .iter()
        .filter_map(|e| match e {
            Effect::Mail(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let [mail] = mails.as_slice() else {
        panic!("{mails:?}");
    };
    assert_eq!(mail.to, "bob@example.com");
    assert_eq!(mail.subject, "[OPS-1] p1 · Checkout down");
    assert_eq!(mail.purpose, crate::engine::MailPurpose::Page);
    assert!(mail.body.starts_with("olivia pages you."), "{}", mail.body);
    // Once the mail server took it, it is on the ticket's record.
    b.event(Event::MailSent { mail: mail.clone() }).unwrap();
    assert_eq!(
        b.timeline().last().unwrap(),
        "mailed: mailed the page to bob@example.com: [OPS-1] p1 · Checkout down"
    );
}

#[test]
fn people_in_bot_toml_are_people_it_names_with_mail_addresses() {
    let text = format!(
        "{CONFIG}\n[people.zed]\nemail = \"zed@example.com\"\n[people.bob]\nemail = \"bob at example\"\n"
    );
    let err = Config::parse(std::path::Path::new("bot.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`people.zed`: `zed` is nobody bot.toml names"),
        "{err}"
    );
    assert!(
        err.contains("`people.bob.email`: `bob at example` is not a mail address, such as \"bob@example.com\""),
        "{err}"
    );
}
