//! Every bad input gets a private answer that says what was wrong and what
//! would be right, and changes nothing stored.

use crate::harness::Env;

#[test]
fn bad_input_is_answered_and_changes_nothing() {
    bad_input_is_answered_and_changes_nothing_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn bad_input_is_answered_and_changes_nothing_on_postgres() {
    bad_input_is_answered_and_changes_nothing_on(Env::on_postgres());
}

fn bad_input_is_answered_and_changes_nothing_on(env: Env) {
    env.console(&[
        "/ticket open title:\"Login loop\" team:backend",
        ":as bella",
        "/ticket take id:OPS-1",
    ]);
    let before = env.export();
    let long_title = format!("/ticket open title:\"{}\"", "x".repeat(257));
    let cases: Vec<(&str, &str)> = vec![
        ("/frobnicate service:web", "unknown command /frobnicate; commands are /ticket, /alert, /build, /runs, /deploy, /rollback, /approve, /deny, /help, /whoami, /oncall, /report, /status, /maintenance, /page (try /help)"),
        ("/ticket open title:x colour:red", "/ticket open has no option `colour`; its options are: title, description, priority, team"),
        ("/ticket resolve id:OPS-1", "/ticket resolve needs `note:` (What was done); usage: /ticket resolve id:<ticket id> note:<text>"),
        ("/ticket open title:x priority:urgent", "`priority` must be one of p1, p2, p3, p4; got `urgent`"),
        ("/ticket take id:OPS-42", "there is no ticket OPS-42; the newest is OPS-1; /ticket list shows open ones"),
        ("/ticket verify id:OPS-1", "cannot verify OPS-1: it is `in_progress`; from `in_progress` you may: assign, take, resolve, comment"),
        (":as ivan", ""),
        ("/ticket resolve id:OPS-1 note:done", "only operators (olivia) or members of backend (bob, bella) may resolve OPS-1 while it is `in_progress`"),
        ("/ticket open title:\"  \"", "`title` must not be empty: What is wrong, in a line (at most 256 characters)"),
        (&long_title, "`title` is 257 characters long; the limit is 256"),
        ("/ticket open title:x team:payments", "there is no team `payments`; known teams: backend, infra, qa"),
        ("/ticket assign id:OPS-1 user:ivan team:backend", "only operators (olivia) or members of backend (bob, bella) may assign OPS-1 while it is `in_progress`"),
        ("/ticket show id:banana", "`banana` is not a ticket id: ticket ids look like OPS-12"),
        (":as olivia", ""),
        ("/ticket assign id:OPS-1 team:backend user:quinn", "quinn is not a member of backend; its members are: bob, bella"),
        ("/ticket qa id:OPS-1", "cannot qa OPS-1: it is `in_progress`; from `in_progress` you may: assign, take, resolve, comment"),
        (":as Not A Name", "`Not A Name` is not a valid person name: use lowercase letters, digits, `-`, `_` or `.` (at most 64)"),
    ];
    let lines: Vec<&str> = cases.iter().map(|(l, _)| *l).collect();
    let run = env.console(&lines);
    let want: Vec<&str> = cases
        .iter()
        .map(|(_, w)| *w)
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(run.private(), want, "{}", run.stdout);
    // Nothing was posted anywhere, and nothing stored changed.
    assert!(!run.stdout.contains("[#"), "{}", run.stdout);
    assert_eq!(env.export(), before);
}

#[test]
fn a_chat_message_without_rules_is_ignored() {
    let env = Env::shipped();
    let run = env.console(&["hello there", ":in backend", "anyone around?"]);
    assert_eq!(run.stdout, "");
    assert!(env.tickets().is_empty());
}
