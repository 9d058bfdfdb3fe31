//! `opsbot check` names the right key, with line and column, and reports
//! every mistake it can at once.

use crate::harness::{shipped_config, Env};

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}"))
        + 1
}

#[test]
fn a_team_without_a_channel_names_the_channel_key() {
    let text = shipped_config().replace("[teams.infra]\nchannel = \"infra\"\n", "[teams.infra]\n");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&text, "[teams.infra]");
    let want = format!("bot.toml:{line}:1: `teams.infra.channel`: missing field `channel`");
    assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    assert!(
        !run.stderr.contains("members = [\"ivan\"]"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_column() {
    let text = shipped_config().replace("body_limit = 1048576", "body_limit = \"big\"");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&text, "body_limit = \"big\"");
    let want = format!("bot.toml:{line}:14: `http.body_limit`: invalid type: string \"big\"");
    assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
}

#[test]
fn every_mistake_the_reader_finds_is_reported_at_once() {
    let text = shipped_config()
        .replace("body_limit = 1048576", "body_limit = \"big\"")
        .replace("[teams.infra]\nchannel = \"infra\"\n", "[teams.infra]\n")
        .replace(
            "members = [\"quinn\"]",
            "members = [\"quinn\"]\nchanel = \"qa\"",
        )
        .replace("default_priority = \"p3\"", "default_priority = 3");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("4 error(s)"), "{}", run.stderr);
    for (needle, col, key) in [
        ("body_limit = \"big\"", 14, "http.body_limit"),
        ("[teams.infra]", 1, "teams.infra.channel"),
        ("chanel = \"qa\"", 1, "teams.qa.chanel"),
        ("default_priority = 3", 20, "tickets.default_priority"),
    ] {
        let want = format!("bot.toml:{}:{col}: `{key}`:", line_of(&text, needle));
        assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    }
}

#[test]
fn a_toml_syntax_error_has_its_line_and_column() {
    let text = shipped_config().replace("[teams.qa]", "[teams.qa");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&text, "[teams.qa");
    assert!(
        run.stderr.contains(&format!("bot.toml:{line}:10: ")),
        "want line {line}, column 10\n{}",
        run.stderr
    );
}

#[test]
fn a_jobs_file_gets_every_reader_error_with_line_and_column_too() {
    let env = Env::shipped();
    env.write(
        "commands/bad.toml",
        "description = \"x\"\nprogram = \"true\"\ntimeout = 5\nwho = \"anyone\"\n",
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    for want in [
        "bad.toml:3:11: `timeout`: invalid type",
        "bad.toml:4:7: `who`: invalid type",
    ] {
        assert!(run.stderr.contains(want), "want {want}\n{}", run.stderr);
    }
}
