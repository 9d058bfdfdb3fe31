//! Customer mail in on the engine, with a clock the test moves, on the
//! in-memory view: new mail, replies, the reopen window, who may reopen,
//! automatic mail, and a mail seen twice.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{Duration, TimeZone};

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::{Actor, ChannelName, Source, TicketId, TicketState, Timestamp, UserName};
use crate::engine::inbox::{InboundMail, MailFile};
use crate::engine::{Effect, Engine, Event, MemoryView, QueryView, View};

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[smtp]
from = "Support <help@example.com>"
[support.inbox]
host = "127.0.0.1"
tls = "none"
user = "help"
password_env = "OPSBOT_TEST_UNSET_INBOX_PASSWORD"
reopen_within = "2d"
"#;

struct Bench {
    view: RefCell<MemoryView>,
    engine: Engine,
    now: Timestamp,
}

impl Bench {
    fn new() -> Bench {
        let config = Config::parse(std::path::Path::new("bot.toml"), CONFIG)
            .unwrap()
            .config;
        Bench {
            view: RefCell::new(MemoryView::new()),
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
        }
    }

    /// Takes a mail in; returns the tickets the engine says it touched.
    fn mail(&self, m: InboundMail) -> Vec<String> {
        let mut view = self.view.borrow_mut();
        let ev = Event::InboundMail { mail: Box::new(m) }.cleaned();
        let d = self.engine.decide(&*view, &ev, self.now).unwrap();
        view.apply(d.writes.clone());
        d.accepted
            .map(|a| a.tickets.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default()
    }

    fn cmd(&self, who: &str, line: &str) {
        let command = parse_command(line, "OPS").unwrap();
        let ev = Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command,
        };
        let mut view = self.view.borrow_mut();
        let d = self.engine.decide(&*view, &ev, self.now).unwrap();
        view.apply(d.writes);
    }

    fn state(&self, n: u64) -> TicketState {
        self.view
            .borrow()
            .ticket(&TicketId::new("OPS", n))
            .unwrap()
            .unwrap()
            .state
    }

    fn timeline(&self, n: u64) -> Vec<String> {
        self.view
            .borrow()
            .timeline(&TicketId::new("OPS", n))
            .unwrap()
            .into_iter()
            .map(|e| format!("{}: {}", e.kind.as_str(), e.text))
            .collect()
    }

    /// The mails queued so far: (to, purpose).
    fn mails(&self) -> Vec<(String, String)> {
        self.view
            .borrow()
            .queued()
            .iter()
            .filter_map(|e| match e {
                Effect::Mail(m) => Some((m.to.clone(), m.purpose.to_string())),
                _ => None,
            })
            .collect()
    }
}

fn from(addr: &str, id: &str, subject: &str, text: &str) -> InboundMail {
    InboundMail {
        key: id.into(),
        message_id: Some(id.into()),
        from: addr.into(),
        recipients: vec!["help@example.com".into()],
        subject: subject.into(),
        text: text.into(),
        content_type: "text/plain".into(),
        return_path: Some(addr.into()),
        ..InboundMail::default()
    }
}

fn reply(addr: &str, id: &str, to_ticket: u64, text: &str) -> InboundMail {
    InboundMail {
        in_reply_to: vec![format!("opsbot.OPS-{to_ticket}@example.com")],
        ..from(addr, id, "Re: your request", text)
    }
}

#[test]
fn a_new_mail_opens_a_ticket_and_a_reply_lands_on_it() {
    let b = Bench::new();
    let mut first = from(
        "ann@c.example",
        "a1@c.example",
        "Cannot log in",
        "Login says 500.",
    );
    first.attachments = vec![MailFile {
        name: "shot.png".into(),
        content_type: "image/png".into(),
        size: 2048,
    }];
    assert_eq!(b.mail(first), ["OPS-1"]);
    assert_eq!(
        b.mails(),
        [("ann@c.example".into(), "acknowledgement".into())]
    );
    assert_eq!(
        b.timeline(1),
        [
            "opened: Cannot log in",
            "commented: Attached to the mail (not kept): shot.png (image/png, 2.0 KiB)",
        ]
    );
    // Matched by a reference to the customer's own first mail, too.
    let by_ref = InboundMail {
        references: vec!["a1@c.example".into()],
        ..from(
            "ann@c.example",
            "a2@c.example",
            "Re: Cannot log in",
            "Still.",
        )
    };
    assert_eq!(b.mail(by_ref), ["OPS-1"]);
    assert_eq!(
        b.mail(reply("ann@c.example", "a3@c.example", 1, "And now?")),
        ["OPS-1"]
    );
    assert_eq!(
        b.timeline(1)[2..],
        [
            "commented: mail from ann@c.example: Still.",
            "commented: mail from ann@c.example: And now?",
        ]
    );
    // Replies get no answer of their own.
    assert_eq!(b.mails().len(), 1);
    assert!(b
        .view
        .borrow()
        .ticket(&TicketId::new("OPS", 2))
        .unwrap()
        .is_none());
}

#[test]
fn a_mail_seen_again_changes_nothing() {
    let b = Bench::new();
    let m = from(
        "ann@c.example",
        "a1@c.example",
        "Cannot log in",
        "Login says 500.",
    );
    assert_eq!(b.mail(m.clone()), ["OPS-1"]);
    let before = b.timeline(1);
    assert_eq!(b.mail(m), ["OPS-1"]);
    assert_eq!(b.timeline(1), before);
    assert_eq!(b.mails().len(), 1);
    let r = reply("ann@c.example", "a2@c.example", 1, "Again");
    assert_eq!(b.mail(r.clone()), ["OPS-1"]);
    assert_eq!(b.mail(r), ["OPS-1"]);
    assert_eq!(b.timeline(1).len(), 2);
}

#[test]
fn only_the_customer_reopens_and_only_within_the_window() {
    let mut b = Bench::new();
    b.mail(from(
        "ann@c.example",
        "a1@c.example",
        "Cannot log in",
        "Login says 500.",
    ));
    b.cmd("olivia", "/ticket resolve id:OPS-1 note:fixed");
    b.cmd("olivia", "/ticket verify id:OPS-1");
    assert_eq!(b.state(1), TicketState::Closed);
    // Someone else writes: on the record, still closed.
    assert_eq!(
        b.mail(reply("eve@x.example", "e1@x.example", 1, "me too")),
        ["OPS-1"]
    );
    assert_eq!(b.state(1), TicketState::Closed);
    // Three days later the customer writes: still closed (the window is 2d,
    // counted from the resolution, not from the last mail).
    b.now += Duration::days(3);
    assert_eq!(
        b.mail(reply("ann@c.example", "a2@c.example", 1, "again?")),
        ["OPS-1"]
    );
    assert_eq!(b.state(1), TicketState::Closed);
    assert_eq!(
        b.mail(reply("ann@c.example", "a3@c.example", 1, "hello?")),
        ["OPS-1"]
    );
    assert_eq!(b.state(1), TicketState::Closed);
    // Reopened by hand, closed again; the customer writes within the window.
    b.cmd("olivia", "/ticket reopen id:OPS-1 reason:ann");
    b.cmd("olivia", "/ticket resolve id:OPS-1 note:fixed-again");
    b.cmd("olivia", "/ticket verify id:OPS-1");
    b.now += Duration::days(1);
    b.mail(reply(
        "ann@c.example",
        "a4@c.example",
        1,
        "broken once more",
    ));
    assert_ne!(b.state(1), TicketState::Closed);
    assert!(b
        .timeline(1)
        .contains(&"reopened: the customer wrote again by mail".to_string()));
    // The customer's page shows their own mails, never the stranger's.
    let view = b.view.borrow();
    let id = TicketId::new("OPS", 1);
    let t = view.ticket(&id).unwrap().unwrap();
    let page = crate::engine::status::customer_page(
        &t,
        &view.timeline(&id).unwrap(),
        &view.customer_visible(&id).unwrap(),
    );
    let mine: Vec<&str> = page
        .entries
        .iter()
        .filter(|e| e.from_customer)
        .map(|e| e.text.as_str())
        .collect();
    assert!(
        mine.iter().any(|t| t.contains("broken once more")),
        "{mine:?}"
    );
    assert!(
        page.entries
            .iter()
            .all(|e| !e.text.contains("me too") && !e.text.contains("eve@")),
        "{:?}",
        page.entries
    );
}

#[test]
fn automatic_and_own_mail_open_nothing() {
    let b = Bench::new();
    let auto = |name: &str, value: &str| InboundMail {
        auto_headers: vec![(name.into(), value.into())],
        ..from(
            "bob@c.example",
            &format!("{name}@c.example"),
            "Auto",
            "auto",
        )
    };
    for m in [
        auto("Auto-Submitted", "auto-replied"),
        auto("Precedence", "junk"),
        auto("X-Auto-Response-Suppress", "OOF"),
        from("help@example.com", "own@example.com", "ours", "ours"),
        from("Postmaster@c.example", "pm@c.example", "delay", "delay"),
        from("", "nobody@c.example", "no sender", "?"),
    ] {
        assert!(b.mail(m).is_empty());
    }
    assert_eq!(b.view.borrow().ticket_count(), 0);
    assert!(b.mails().is_empty());
    // A normal mail after them still gets the first number.
    assert_eq!(
        b.mail(from("ann@c.example", "a1@c.example", "Hi", "Hello")),
        ["OPS-1"]
    );
}

#[test]
fn empty_subjects_and_texts_get_words_and_long_texts_are_cut() {
    let b = Bench::new();
    b.mail(from("ann@c.example", "a1@c.example", "  ", ""));
    let t = b
        .view
        .borrow()
        .ticket(&TicketId::new("OPS", 1))
        .unwrap()
        .unwrap();
    assert_eq!(t.title, "(no subject)");
    assert_eq!(t.description.as_deref(), Some("(the mail has no text)"));
    b.mail(from(
        "bo@c.example",
        "b1@c.example",
        "Long",
        &"é".repeat(20_000),
    ));
    let t = b
        .view
        .borrow()
        .ticket(&TicketId::new("OPS", 2))
        .unwrap()
        .unwrap();
    let d = t.description.unwrap();
    assert!(d.starts_with(&"é".repeat(10_000)));
    assert!(d.ends_with("(cut after 10000 characters; the whole mail stays in the mailbox)"));
}

#[test]
fn a_tag_naming_an_internal_ticket_opens_a_new_one() {
    let b = Bench::new();
    b.cmd("olivia", "/ticket open title:\"Internal: rotate keys\"");
    let m = InboundMail {
        recipients: vec!["help+OPS-1@example.com".into()],
        in_reply_to: vec!["opsbot.OPS-1@example.com".into()],
        ..from("mallory@x.example", "m1@x.example", "hi", "let me in")
    };
    assert_eq!(b.mail(m), ["OPS-2"]);
    assert_eq!(b.timeline(1).len(), 1, "nothing on the internal ticket");
}
