//! The essay's support flow, step by step, through the console binary with
//! the shipped `bot.toml` and its demo people.

use crate::harness::Env;

#[test]
fn the_support_flow_end_to_end() {
    the_support_flow_end_to_end_on(Env::shipped());
}

/// The same on PostgreSQL.
#[test]
fn the_support_flow_end_to_end_on_postgres() {
    the_support_flow_end_to_end_on(Env::on_postgres());
}

fn the_support_flow_end_to_end_on(env: Env) {
    let run = env.console(&[
        // 1-2. A customer's problem becomes a ticket in #ops.
        r#"/ticket open title:"Checkout fails on submit" priority:p2 description:"500 when paying""#,
        // 3-4. The operator cannot handle it alone: it goes to backend.
        "/ticket assign id:OPS-1 team:backend",
        // 5. The team assigns one member.
        ":as bob",
        "/ticket assign id:OPS-1 user:bella",
        // 6. The member takes it and fixes it.
        ":as bella",
        "/ticket take id:OPS-1",
        r#"/ticket resolve id:OPS-1 note:"Null check in the payment form""#,
        // 7. The operator checks the fix and hands it to QA.
        ":as olivia",
        "/ticket qa id:OPS-1",
        // QA finds it still broken once.
        ":as quinn",
        r#"/ticket reject id:OPS-1 reason:"Still fails with a saved card""#,
        ":as bella",
        "/ticket take id:OPS-1",
        r#"/ticket resolve id:OPS-1 note:"Saved cards handled too""#,
        ":as olivia",
        "/ticket qa id:OPS-1",
        // 8. QA verifies: closed.
        ":as quinn",
        "/ticket verify id:OPS-1",
    ]);

    assert_eq!(
        run.in_channel("ops"),
        vec![
            "New ticket OPS-1 · p2 · Checkout fails on submit — opened by olivia (console)",
            "OPS-1 · p2 · Checkout fails on submit — resolved by bella: Null check in the payment form. Operators, verify it (/ticket verify id:OPS-1), send it to QA (/ticket qa id:OPS-1) or reject it (/ticket reject id:OPS-1 reason:…). @olivia",
            "OPS-1 · p2 · Checkout fails on submit — resolved by bella: Saved cards handled too. Operators, verify it (/ticket verify id:OPS-1), send it to QA (/ticket qa id:OPS-1) or reject it (/ticket reject id:OPS-1 reason:…). @olivia",
            "OPS-1 · p2 · Checkout fails on submit — verified by quinn and closed.",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(
        run.in_channel("backend"),
        vec![
            "OPS-1 · p2 · Checkout fails on submit — assigned to team backend by olivia. @bob, pick someone with /ticket assign id:OPS-1 user:…, or take it: /ticket take id:OPS-1",
            "OPS-1 · p2 · Checkout fails on submit — assigned to @bella (team backend) by bob. Take it: /ticket take id:OPS-1",
            "OPS-1 · p2 · Checkout fails on submit — rejected by quinn: Still fails with a saved card. Back to team backend: @bella, take it again with /ticket take id:OPS-1",
            "OPS-1 · p2 · Checkout fails on submit — verified by quinn and closed.",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(run.in_channel("qa").len(), 2, "{}", run.stdout);
    assert!(run.in_channel("qa")[0].starts_with(
        "OPS-1 · p2 · Checkout fails on submit — sent to QA by olivia. Fix: Null check in the payment form. Test it"
    ));
    assert!(run.in_channel("infra").is_empty());

    // The thread carries the whole story.
    assert_eq!(
        run.in_thread("ops", "OPS-1"),
        vec![
            "olivia opened this ticket: Checkout fails on submit",
            "olivia assigned it to team backend.",
            "bob assigned it to bella of team backend.",
            "bella took it; it is in progress.",
            "bella resolved it: Null check in the payment form",
            "olivia sent it to QA.",
            "quinn rejected it: Still fails with a saved card",
            "bella took it; it is in progress.",
            "bella resolved it: Saved cards handled too",
            "olivia sent it to QA.",
            "quinn verified the fix; the ticket is closed.",
        ]
    );
    // Each command got its private answer, before its posts.
    assert_eq!(run.private().len(), 11);
    assert_eq!(run.lines()[0], "(only you) Opened OPS-1 in #ops.");
    assert!(run.lines()[1].starts_with("[#ops] New ticket OPS-1"));

    // Final state, as stored.
    let export = env.export();
    let t = &export[0];
    assert_eq!(t["type"], "ticket");
    assert_eq!(t["id"], "OPS-1");
    assert_eq!(t["state"], "closed");
    assert_eq!(t["team"], "backend");
    assert_eq!(t["assignee"], "bella");
    assert_eq!(t["resolution"], "Saved cards handled too");
    let timeline: Vec<(String, String)> = export[1..]
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "timeline");
            assert_eq!(e["ticket"], "OPS-1");
            assert_eq!(e["source"], "console");
            (
                e["actor"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("olivia", "opened"),
        ("olivia", "assigned"),
        ("bob", "assigned"),
        ("bella", "taken"),
        ("bella", "resolved"),
        ("olivia", "sent_to_qa"),
        ("quinn", "rejected"),
        ("bella", "taken"),
        ("bella", "resolved"),
        ("olivia", "sent_to_qa"),
        ("quinn", "verified"),
    ]
    .iter()
    .map(|(a, k)| (a.to_string(), k.to_string()))
    .collect();
    assert_eq!(timeline, want);
}

#[test]
fn an_operator_resolves_directly_and_verifies() {
    let env = Env::shipped();
    let run = env.console(&[
        r#"/ticket open title:"Password reset mail not received""#,
        r#"/ticket resolve id:OPS-1 note:"Resent; it was in spam""#,
        "/ticket verify id:OPS-1",
        ":as bob",
        r#"/ticket reopen id:OPS-1 reason:"Customer wrote again""#,
    ]);
    assert_eq!(
        run.private(),
        vec![
            "Opened OPS-1 in #ops.",
            "OPS-1 is resolved; an operator will verify it.",
            "OPS-1 is closed.",
            "only operators (olivia) may reopen OPS-1 while it is `closed`",
        ]
    );
    // Operations handled it alone: nothing reached a team channel.
    for ch in ["backend", "infra", "qa"] {
        assert!(run.in_channel(ch).is_empty(), "{ch}: {}", run.stdout);
    }
    assert_eq!(env.tickets()[0]["state"], "closed");
}

#[test]
fn a_ticket_opened_for_a_team_lands_in_both_channels() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as ivan",
        r#"/ticket open title:"Disk 91% on db-2" team:infra priority:p1"#,
    ]);
    assert_eq!(run.private(), vec!["Opened OPS-1 for team infra."]);
    assert_eq!(
        run.in_channel("ops"),
        vec!["New ticket OPS-1 · p1 · Disk 91% on db-2 — opened by ivan (console)"]
    );
    assert_eq!(
        run.in_channel("infra"),
        vec!["OPS-1 · p1 · Disk 91% on db-2 — assigned to team infra by ivan. Take it: /ticket take id:OPS-1"]
    );
    let t = &env.tickets()[0];
    assert_eq!(t["state"], "assigned");
    assert_eq!(t["priority"], "p1");
}

#[test]
fn json_mode_prints_one_object_per_line() {
    let env = Env::shipped();
    let mut input = String::from("/ticket open title:\"Slow search\" team:backend\n");
    input.push_str("/ticket take id:OPS-9\n");
    let run = env.opsbot(&["console", "--json", "--as", "bella"], &input);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let objs = run.json();
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["reply", "post", "post", "post", "post", "reply"]
    );
    assert_eq!(objs[0]["channel"], "ops");
    assert_eq!(objs[0]["user"], "bella");
    assert_eq!(objs[0]["ephemeral"], true);
    assert_eq!(objs[0]["text"], "Opened OPS-1 for team backend.");
    assert_eq!(objs[1]["channel"], "ops");
    assert_eq!(objs[1]["ticket"], "OPS-1");
    assert_eq!(objs[1]["thread"], false);
    assert_eq!(objs[2]["thread"], true);
    assert_eq!(objs[3]["channel"], "backend");
    assert_eq!(objs[3]["mentions"], serde_json::json!(["bob"]));
    assert_eq!(objs[4]["thread"], true);
    assert_eq!(objs[4]["text"], "bella assigned it to team backend.");
    assert_eq!(
        objs[5]["text"],
        "there is no ticket OPS-9; the newest is OPS-1; /ticket list shows open ones"
    );
}

#[test]
fn help_lists_what_the_user_may_run() {
    let env = Env::shipped();
    let run = env.console(&[
        "/help",
        ":as zed",
        "/help",
        ":as quinn",
        "/help command:\"ticket verify\"",
    ]);
    let blocks: Vec<&str> = run
        .stdout
        .split("(only you) ")
        .filter(|b| !b.is_empty())
        .collect();
    assert_eq!(blocks.len(), 3, "{}", run.stdout);
    assert!(blocks[0].contains("/ticket qa —"));
    assert!(blocks[0].contains("/ticket assign —"));
    // An outsider may open, read and comment, and nothing else.
    for cmd in [
        "/ticket open",
        "/ticket show",
        "/ticket list",
        "/ticket comment",
        "/help",
    ] {
        assert!(
            blocks[1].contains(&format!("{cmd} —")),
            "{cmd}: {}",
            blocks[1]
        );
    }
    for cmd in [
        "assign", "take", "resolve", "qa", "verify", "reject", "reopen",
    ] {
        assert!(
            !blocks[1].contains(&format!("/ticket {cmd} —")),
            "{cmd}: {}",
            blocks[1]
        );
    }
    assert!(
        blocks[2].starts_with("/ticket verify id:<ticket id>\n"),
        "{}",
        blocks[2]
    );
    assert!(blocks[2].contains("who may run it: operators, QA"));
}

#[test]
fn list_filters_by_state_team_and_mine() {
    let env = Env::shipped();
    let run = env.console(&[
        "/ticket open title:one team:backend",
        "/ticket open title:two team:infra priority:p1",
        "/ticket open title:three",
        ":as bob",
        "/ticket take id:OPS-1",
        "/ticket list",
        "/ticket list team:backend",
        "/ticket list mine:true",
        "/ticket list state:open",
        "/ticket list state:closed",
        "/ticket list team:nope",
    ]);
    let p = run.private();
    let n = p.len();
    // Newest first (no longer by priority), whatever the state.
    assert_eq!(p[n - 6], "3 tickets not closed, newest first:");
    assert!(run.stdout.contains("  OPS-3 · p3 · open · no team · three\n  OPS-2 · p1 · assigned · infra · two\n  OPS-1 · p3 · in_progress · backend (bob) · one"), "{}", run.stdout);
    assert_eq!(
        p[n - 5],
        "1 ticket not closed, of team backend, newest first:"
    );
    assert_eq!(
        p[n - 4],
        "1 ticket not closed, assigned to you, newest first:"
    );
    assert_eq!(p[n - 3], "1 ticket in state open, newest first:");
    assert_eq!(p[n - 2], "No tickets in state closed.");
    assert_eq!(
        p[n - 1],
        "there is no team `nope`; known teams: backend, infra, qa"
    );
}

#[test]
fn whoami_says_who_the_bot_thinks_you_are_and_what_to_add_for_a_stranger() {
    let env = Env::shipped();
    let run = env.console(&["/whoami", ":as bob", "/whoami", ":as zed", "/whoami"]);
    let out = &run.stdout;
    assert!(out.contains("You are olivia, on console."), "{out}");
    assert!(out.contains("Roles: operator."), "{out}");
    assert!(out.contains("You are bob, on console.\n"), "{out}");
    assert!(out.contains("Teams: backend (lead)."), "{out}");
    assert!(out.contains("You are zed, on console."), "{out}");
    assert!(
        out.contains("An operator adds `zed` to a team's `members` in bot.toml (or to [roles])."),
        "{out}"
    );
    // What each may run is what /help says they may run.
    let zed = out.split("You are zed").nth(1).unwrap();
    assert!(zed.contains("/whoami") && zed.contains("/help"), "{zed}");
    assert!(!zed.contains("/deploy"), "{zed}");
    let olivia = out.split("You are bob").next().unwrap();
    assert!(olivia.contains("/ticket verify"), "{olivia}");
}
