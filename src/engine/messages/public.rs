//! The words of the public side: the status page's posts and answers in
//! chat, the customer's page link in mails, and a ticket's state in words
//! a customer understands.

use crate::domain::rich::{clip_plain, Rich};
use crate::domain::status::ServiceState;
use crate::domain::{TicketId, TicketState, UserName};

/// The line every mail to a customer ends with, when the bot has a public
/// address.
pub fn customer_page_footer(url: &str) -> String {
    format!(
        "\n\n--\nFollow your request online (this link is yours alone; do not share it):\n{url}\n"
    )
}

/// A ticket's state, in words a customer understands.
pub fn customer_state(state: TicketState) -> &'static str {
    match state {
        TicketState::Open => "Received: waiting for our support team",
        TicketState::Assigned => "Being looked at by our team",
        TicketState::InProgress => "Being worked on",
        TicketState::Resolved | TicketState::Qa => "Fixed: we are checking the fix",
        TicketState::Closed => "Closed",
    }
}

/// In the operations channel: someone set a service's public state.
pub fn status_set(
    who: &UserName,
    service: &str,
    state: ServiceState,
    message: Option<&str>,
) -> Rich {
    let r = Rich::new().text(format!(
        "Status page: {who} set {service} to {} ({state}).",
        state.words()
    ));
    match message {
        Some(m) => r.text(" Public message: ").quoted(clip_plain(m, 1500)),
        None => r,
    }
}

/// The answer to whoever set a service's state.
pub fn status_set_reply(service: &str, state: ServiceState) -> Rich {
    Rich::new().text(format!(
        "{service} shows as {} on the status page (/status).",
        state.words()
    ))
}

/// In a ticket's thread: a public update went on the status page.
pub fn ticket_public_story(who: &UserName, text: &str, first: bool) -> Rich {
    let head = if first {
        format!("{who} made this ticket a public incident on the status page: ")
    } else {
        format!("{who} posted a public update on the status page: ")
    };
    Rich::new().text(head).quoted(clip_plain(text, 1500))
}

/// The answer to whoever posted a public update.
pub fn ticket_public_reply(id: &TicketId, first: bool) -> Rich {
    if first {
        Rich::new().text(format!(
            "{id} is a public incident now: its title and this update are on the status page, and its resolution will be."
        ))
    } else {
        Rich::new().text(format!("Public update added to {id} on the status page."))
    }
}

/// The answer to whoever revoked a customer's link.
pub fn link_revoked_reply(id: &TicketId) -> Rich {
    Rich::new().text(format!(
        "The old link to {id}'s customer page no longer works. The next mail to the customer carries a new one (/ticket comment id:{id} customer:true text:… sends one now)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_words_read() {
        let who = UserName::parse("olivia").unwrap();
        let id = TicketId::new("OPS", 7);
        let mut lines = vec![
            customer_page_footer("https://support.example.com/support/tickets/OPS-7?token=abc"),
            status_set(
                &who,
                "web",
                ServiceState::PartialOutage,
                Some("Checkout fails for some cards."),
            )
            .to_plain(),
            status_set(&who, "web", ServiceState::Operational, None).to_plain(),
            status_set_reply("web", ServiceState::Maintenance).to_plain(),
            ticket_public_story(&who, "We are investigating failed payments.", true).to_plain(),
            ticket_public_story(&who, "A fix is rolling out.", false).to_plain(),
            ticket_public_reply(&id, true).to_plain(),
            ticket_public_reply(&id, false).to_plain(),
            link_revoked_reply(&id).to_plain(),
        ];
        for &s in TicketState::ALL {
            lines.push(format!("{s}: {}", customer_state(s)));
        }
        for &s in ServiceState::ALL {
            lines.push(format!("{s}: {}", s.words()));
        }
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("opsbot__engine__messages__public_words", lines.join("\n---\n"));
        });
    }
}
