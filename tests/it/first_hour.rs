//! The first hour on a real Discord server (issue 16), against the fake
//! Discord: the commands Discord really shows and can invoke.

use serde_json::json;

use crate::discord::{content, Live, BOB, OLIVIA, OPS};

/// Discord cannot invoke a command that also has subcommands (the fake
/// refuses such a registration, and sends no interaction for a path it does
/// not show): everything `/help` names is a command Discord shows, `/build`
/// and `/oncall` as `/build run` and `/oncall show`, and both answer.
#[test]
fn discord_shows_every_command_help_names_and_each_can_be_invoked() {
    let live = Live::start();
    let shown = live.fake.invocable_commands();
    for want in [
        "build run",
        "build cancel",
        "oncall show",
        "oncall set",
        "ticket open",
        "help",
        "whoami",
        "build-web",
    ] {
        assert!(
            shown.iter().any(|s| s == want),
            "/{want} not invocable: {shown:?}"
        );
    }
    assert!(!shown.iter().any(|s| s == "build" || s == "oncall"));

    let help = live.answer((OLIVIA, "olivia"), OPS, &["help"], &[]);
    let help = content(&help);
    assert!(help.starts_with("Commands you may run:"), "{help}");
    for line in help.lines().filter_map(|l| l.trim().strip_prefix('/')) {
        let Some((name, _)) = line.split_once(" — ") else {
            continue;
        };
        let path: Vec<&str> = name
            .split(' ')
            .take_while(|w| !w.contains(':') && !w.starts_with('['))
            .collect();
        let path = path.join(" ");
        assert!(
            shown.contains(&path),
            "/help names /{path}, which Discord does not show: {shown:?}\n{help}"
        );
    }
    assert!(help.contains("/build run — "), "{help}");
    assert!(help.contains("/oncall show — "), "{help}");

    let one = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["help"],
        &[("command", json!("build"))],
    );
    assert!(
        content(&one).starts_with("/build run job:<job> [ref:<text>]"),
        "{}",
        content(&one)
    );

    let oncall = live.answer((BOB, "bob"), OPS, &["oncall", "show"], &[]);
    assert!(content(&oncall).contains("backend"), "{}", content(&oncall));
    let build = live.answer(
        (BOB, "bob"),
        OPS,
        &["build", "run"],
        &[("job", json!("build-web"))],
    );
    assert!(
        content(&build).starts_with("Started **RUN-1**: build-web"),
        "{}",
        content(&build)
    );
}
