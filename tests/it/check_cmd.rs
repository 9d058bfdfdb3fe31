//! `opsbot check`: a summary for a good config, every error with its place
//! for a bad one.

use crate::harness::{shipped_config, Env};

#[test]
fn the_shipped_config_passes() {
    let env = Env::shipped();
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("bot.toml: ok"));
    assert!(
        run.stdout
            .contains("people: 6 (operators: olivia; QA: team qa (quinn); release managers: rita)"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("backend in #backend: bob, bella (lead bob)"));
}

#[test]
fn an_unknown_key_fails_with_file_line_and_key() {
    let text = shipped_config().replace(
        "members = [\"ivan\"]",
        "members = [\"ivan\"]\noncall = \"ivan\"",
    );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    let line = text.lines().position(|l| l.starts_with("oncall")).unwrap() + 1;
    let want = format!("bot.toml:{line}:1: `teams.infra.oncall`: unknown field `oncall`");
    assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
}

#[test]
fn every_mistake_is_listed() {
    let text = shipped_config()
        .replace("qa_team = \"qa\"", "qa_team = \"testers\"")
        .replace("lead = \"bob\"", "lead = \"ivan\"")
        .replace("channel = \"infra\"", "channel = \"#Infra Team\"");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("3 error(s)"), "{}", run.stderr);
    for want in [
        "`roles.qa_team`: no team `testers` is defined; known teams: backend, infra, qa",
        "`teams.backend.lead`: `ivan` is not a member of team `backend`",
        "`teams.infra.channel`: `Infra Team` is not a valid channel name",
    ] {
        assert!(run.stderr.contains(want), "want {want}\n{}", run.stderr);
    }
    // The console refuses to start on it too.
    let run = env.opsbot(&["console"], "");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("roles.qa_team"));
}

#[test]
fn config_comes_from_the_env_var_when_no_flag() {
    let env = Env::shipped();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsbot"))
        .arg("check")
        .env("OPSBOT_CONFIG", &env.config)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Relative paths resolve against the config's folder.
    assert!(
        stdout.contains(&format!("storage: {}", env.data_dir().display())),
        "{stdout}"
    );
}

#[test]
fn run_says_discord_is_not_wired_and_points_to_console() {
    let env = Env::shipped();
    let run = env.opsbot(&["run"], "");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("opsbot console"), "{}", run.stderr);
}

#[test]
fn a_service_naming_a_missing_job_or_bad_approver_is_an_error() {
    let text = shipped_config()
        .replace("job = \"deploy-web\"", "job = \"deploy-api\"")
        .replace(
            "approvers = [\"release_managers\"]",
            "approvers = [\"team:nobody\"]",
        );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr
            .matches("there is no job `deploy-api` in commands/")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`services.web.job`: there is no job `deploy-api` in commands/; jobs are: build-web, deploy-web, test-web"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`services.web.environments.production.approvers[0]`: `team:nobody` is not"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_lists_the_people_without_a_discord_user() {
    let env = Env::shipped();
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("discord: no Discord user for "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("olivia") && line.contains("quinn"), "{line}");
    let mapped = Env::shipped_with(&crate::kit::in_section(
        &crate::harness::shipped_config(),
        "[discord.users]",
        "olivia = \"423456789012345678\"\n",
    ));
    let run = mapped.opsbot(&["check"], "");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("discord: no Discord user for "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(!line.contains("olivia"), "{line}");
    assert!(line.contains("quinn"), "{line}");
}

#[test]
fn sleds_cache_is_shown_by_check_and_a_bot_with_16mib_serves_commands() {
    let shipped = Env::shipped();
    let run = shipped.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "storage: {} (sled), cache 256 MiB\n",
            shipped.data_dir().display()
        )),
        "{}",
        run.stdout
    );

    let text =
        shipped_config().replacen("path = \"data\"", "path = \"data\"\ncache = \"16MiB\"", 1);
    assert!(text.contains("cache = \"16MiB\""));
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("(sled), cache 16 MiB\n"),
        "{}",
        run.stdout
    );
    // The bot opens its store with it and serves commands; a second start
    // opens the same files again and finds the ticket.
    let run = env.console(&["/ticket open title:\"Disk at 90%\""]);
    assert!(run.stdout.contains("OPS-1"), "{}", run.stdout);
    let run = env.console(&["/ticket show id:OPS-1"]);
    assert!(run.stdout.contains("Disk at 90%"), "{}", run.stdout);

    // A cache sled cannot work in is refused at its line, before any start.
    let text = shipped_config().replacen("path = \"data\"", "path = \"data\"\ncache = \"4MiB\"", 1);
    let line = text.lines().position(|l| l.starts_with("cache")).unwrap() + 1;
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    let want = format!(
        "bot.toml:{line}: `storage.cache`: `4MiB` is below the smallest cache, 8MiB: write a whole number of KiB, MiB or GiB from 8MiB, such as \"256MiB\" or \"1GiB\""
    );
    assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    let run = env.opsbot(&["console"], "/ticket list\n");
    assert_eq!(run.code, Some(1));
    assert!(!env.data_dir().join("db").exists(), "no store was opened");
}

#[test]
fn check_warns_that_the_cache_is_ignored_on_postgres() {
    let text = shipped_config().replacen(
        "path = \"data\"",
        "path = \"data\"\nbackend = \"postgres\"\ncache = \"64MiB\"",
        1,
    );
    let line = text.lines().position(|l| l.starts_with("cache")).unwrap() + 1;
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let want = format!(
        "warning: {}:{line}: `storage.cache`: is ignored with backend = \"postgres\"",
        env.config.display()
    );
    assert!(run.stdout.contains(&want), "want {want}\n{}", run.stdout);
    let storage = run
        .stdout
        .lines()
        .find(|l| l.starts_with("storage: "))
        .unwrap();
    assert!(storage.starts_with("storage: postgres at $"), "{storage}");
    assert!(!storage.contains("cache"), "{storage}");
}
