//! `opsbot check` on names that mean nothing: every person, role and team a
//! config names must resolve, or check says where (file:line, key), what it
//! knows and the likely one.

use crate::harness::{shipped_config, Env};

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}"))
        + 1
}

#[test]
fn an_approver_that_names_no_one_fails_check_with_the_likely_role() {
    let text = shipped_config().replace(
        "approvers = [\"release_managers\"]",
        "approvers = [\"release_manager\"]",
    );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&text, "approvers = [\"release_manager\"]");
    let want = format!(
        "bot.toml:{line}: `services.web.environments.production.approvers[0]`: `release_manager` is not anyone, operators, release_managers, team:NAME or a person the config names \
         (did you mean `release_managers`?); known: anyone, operators, release_managers, \
         team:backend, team:infra, team:qa, bella, bob, ivan, olivia, quinn, rita"
    );
    assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    // The bot does not start on it either.
    let run = env.opsbot(&["console"], "");
    assert_eq!(run.code, Some(1));
}

#[test]
fn a_misspelled_who_in_a_job_fails_check_with_that_files_place() {
    let env = Env::shipped();
    let path = env.dir.path().join("commands/build-web.toml");
    let job = std::fs::read_to_string(&path).unwrap().replace(
        "who = [\"operators\", \"team:backend\", \"release_managers\"]",
        "who = [\"operators\", \"team:backedn\", \"olivai\", \"backend\"]",
    );
    std::fs::write(&path, &job).unwrap();
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = line_of(&job, "who = ");
    let file = format!("{}:{line}", path.display());
    for want in [
        format!("{file}: `who[1]`: `team:backedn` is not a team the config defines; known teams: backend, infra, qa (did you mean `backend`?)"),
        format!("{file}: `who[2]`: `olivai` is not anyone"),
        "(did you mean `olivia`?)".to_string(),
        format!("{file}: `who[3]`: `backend` is not anyone"),
        "(did you mean `team:backend`?)".to_string(),
    ] {
        assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    }
}

#[test]
fn every_other_name_is_checked_too() {
    let text = shipped_config()
        .replace("qa_team = \"qa\"", "qa_team = \"qaa\"")
        .replace(
            "members = [\"bob\", \"bella\"]\nperiod",
            "members = [\"bob\", \"bela\"]\nperiod",
        )
        .replace(
            "priorities = [\"p1\", \"p2\"]",
            "priorities = [\"p1\", \"p2\"]\nteams = [\"infar\"]",
        )
        .replace(
            "name = \"infra-critical\"\nmatch = { severity = \"critical\" }\nteam = \"infra\"",
            "name = \"infra-critical\"\nmatch = { severity = \"critical\" }\nteam = \"infr\"",
        )
        .replace(
            "# olivia = \"423456789012345678\"",
            "olvia = \"423456789012345678\"",
        )
        .replace(
            "# operators = \"523456789012345678\"",
            "operator = \"523456789012345678\"",
        )
        .replace(
            "[services.web]\nteam = \"backend\"",
            "[services.web]\nteam = \"bakend\"",
        );
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    for (key, needle, want) in [
        ("roles.qa_team", "qa_team = ", "no team `qaa` is defined; known teams: backend, infra, qa (did you mean `qa`?)"),
        ("oncall.backend.members[1]", "members = [\"bob\", \"bela\"]", "`bela` is not a member of team `backend`; its members are: bob, bella (did you mean `bella`?)"),
        ("escalation[0].teams[0]", "teams = [\"infar\"]", "no team `infar` is defined; known teams: backend, infra, qa (did you mean `infra`?)"),
        ("alerts.routes[2].team", "team = \"infr\"", "no team `infr` is defined; known teams: backend, infra, qa (did you mean `infra`?)"),
        ("discord.users.olvia", "olvia = ", "`olvia` is nobody the config names (in [roles] or a team's members); people are: bella, bob, ivan, olivia, quinn, rita (did you mean `olivia`?)"),
        ("discord.roles.operator", "operator = ", "`operator` is not operators, release_managers or a team (backend, infra, qa) (did you mean `operators`?)"),
        ("services.web.team", "team = \"bakend\"", "no team `bakend` is defined; known teams: backend, infra, qa (did you mean `backend`?)"),
    ] {
        let want = format!("bot.toml:{}: `{key}`: {want}", line_of(&text, needle));
        assert!(run.stderr.contains(&want), "want {want}\n{}", run.stderr);
    }
}

#[test]
fn a_person_named_once_and_close_to_another_is_warned_about() {
    let text = shipped_config().replace("members = [\"quinn\"]", "members = [\"quinn\", \"bela\"]");
    let env = Env::shipped_with(&text);
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let want = format!(
        "warning: {}:{}: `teams.qa.members[1]`: `bela` is named only here, and so is a person of its own (did you mean `bella`?)",
        env.config.display(),
        line_of(&text, "members = [\"quinn\", \"bela\"]")
    );
    assert!(run.stdout.contains(&want), "want {want}\n{}", run.stdout);
    // The shipped config has no such warning.
    let run = Env::shipped().opsbot(&["check"], "");
    assert!(!run.stdout.contains("is named only here"), "{}", run.stdout);
}
