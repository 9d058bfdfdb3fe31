//! Jobs get none of the bot's secrets: a cleared environment plus what the
//! job's file names, and an output tail that never shows a secret's value.
//! Through the console binary, with every secret the config names set.

use crate::harness::{shipped_config, Env};

/// Every secret the config below names, with its value.
const SECRETS: &[(&str, &str)] = &[
    ("DISCORD_TOKEN", "discord-token-Zx81"),
    ("OPSBOT_HOOK_TOKEN", "hook-token-Qw72"),
    ("OPSBOT_SUPPORT_SECRET", "support-secret-Er63"),
    ("JENKINS_TOKEN", "jenkins-token-Ty54"),
    ("SMTP_USER", "smtp-user-Ui45"),
    ("SMTP_PASSWORD", "smtp-password-Op36"),
];

/// The shipped config with Jenkins and SMTP credentials named too.
fn config() -> String {
    let text = shipped_config().replace(
        "tls = \"none\"",
        "tls = \"none\"\nuser_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"",
    );
    assert!(text.contains("SMTP_PASSWORD"));
    format!(
        "{text}\n[ci.jenkins]\nurl = \"http://127.0.0.1:9\"\nuser = \"ci\"\ntoken_env = \"JENKINS_TOKEN\"\n"
    )
}

fn vars() -> Vec<(&'static str, &'static str)> {
    let mut v = SECRETS.to_vec();
    v.extend([
        ("JAVA_HOME", "/opt/java-passed"),
        ("UNNAMED_VAR", "not-for-jobs"),
        // The ticket API's token (another branch names it in the config).
        ("OPSBOT_API_TOKEN", "api-token-As27"),
        ("TZ", "Europe/Berlin"),
    ]);
    v
}

#[test]
fn a_job_gets_no_secret_and_its_tail_masks_one_it_prints() {
    let env = Env::shipped_with(&config());
    let dump = env.dir.path().join("job-env.txt");
    let leak = env.dir.path().join("leak.txt");
    // What a build script could read from a file and print anyway.
    let all: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    std::fs::write(&leak, format!("token={}\n", all.join(" and "))).unwrap();
    env.script(
        "commands/scripts/show-env.sh",
        "#!/bin/sh\nenv > \"$DUMP\"\ncat \"$LEAK\"\necho \"done with $OPSBOT_PARAM_WHAT\"\nexit 3\n",
    );
    env.write(
        "commands/show-env.toml",
        &format!(
            r#"
description = "Prints its environment"
team = "backend"
program = "scripts/show-env.sh"
who = ["anyone"]
[env]
JAVA_HOME = true
TZ = false
DUMP = "{}"
LEAK = "{}"
[params.what]
description = "Anything"
pattern = '[a-z]{{1,20}}'
"#,
            dump.display(),
            leak.display()
        ),
    );
    let vars = vars();
    let run = env.opsbot_env(&["console"], ":as bob\n/show-env what:secrets\n", &vars);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let seen = std::fs::read_to_string(&dump).expect("the job ran and wrote its env");
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for (name, value) in SECRETS {
        assert!(!names.contains(name), "{name} reached the job: {seen}");
        assert!(
            !seen.contains(value),
            "{name}'s value reached the job: {seen}"
        );
    }
    assert!(!names.contains(&"UNNAMED_VAR"), "{seen}");
    assert!(!seen.contains("api-token-As27"), "{seen}");
    // `TZ = false` leaves one of the safe set out.
    assert!(!names.contains(&"TZ"), "{seen}");
    // What the job's file names, the safe set and its own parameters do.
    assert!(seen.contains("JAVA_HOME=/opt/java-passed\n"), "{seen}");
    assert!(names.contains(&"PATH"), "{seen}");
    assert!(names.contains(&"HOME"), "{seen}");
    assert!(seen.contains("OPSBOT_PARAM_WHAT=secrets\n"), "{seen}");
    assert!(seen.contains("OPSBOT_RUN=RUN-1\n"), "{seen}");
    // The tail posted for the failure shows the line, with every secret masked.
    assert!(
        run.stdout.contains(
            "RUN-1 show-env failed (exit code 3). The output ends with:\n  token=*** and *** and *** and *** and *** and ***\n  done with secrets"
        ),
        "{}",
        run.stdout
    );
    for (name, value) in SECRETS {
        assert!(!run.stdout.contains(value), "{name} shown: {}", run.stdout);
    }
    let export = env.export();
    let stored = serde_json::to_string(&export).unwrap();
    for (name, value) in SECRETS {
        assert!(!stored.contains(value), "{name} stored: {stored}");
    }
}

#[test]
fn a_job_without_env_gets_the_safe_set_only() {
    let env = Env::shipped_with(&config());
    let dump = env.dir.path().join("job-env.txt");
    env.script(
        "commands/scripts/dump.sh",
        &format!("#!/bin/sh\nenv > '{}'\n", dump.display()),
    );
    env.write(
        "commands/dump.toml",
        "description = \"Dumps its env\"\nprogram = \"scripts/dump.sh\"\nwho = [\"anyone\"]\n",
    );
    let vars = vars();
    let run = env.opsbot_env(&["console"], ":as bob\n/dump\n", &vars);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let seen = std::fs::read_to_string(&dump).expect("the job ran");
    let mut names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let safe = [
        "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LOGNAME", "PATH", "TMPDIR", "TZ", "USER",
    ];
    for n in &names {
        assert!(
            safe.contains(n) || *n == "OPSBOT_RUN" || *n == "PWD" || *n == "SHLVL" || *n == "_",
            "{n} reached a job that names nothing: {seen}"
        );
    }
    assert!(names.contains(&"PATH"), "{seen}");
    assert!(
        seen.contains("TZ=Europe/Berlin\n"),
        "the safe set passes TZ: {seen}"
    );
}

#[test]
fn check_refuses_a_job_that_asks_for_a_secret() {
    let env = Env::shipped_with(&config());
    env.write(
        "commands/greedy.toml",
        "description = \"Wants the token\"\nprogram = \"true\"\nenv = [\"PATH\", \"DISCORD_TOKEN\", \"9BAD\"]\n",
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("greedy.toml:3: `env[1]`: `DISCORD_TOKEN` holds one of the bot's secrets"),
        "{all}"
    );
    assert!(
        all.contains("greedy.toml:3: `env[2]`: `9BAD` is not an environment variable name"),
        "{all}"
    );
    // A table entry that is neither true, false nor a string says so.
    env.write(
        "commands/greedy.toml",
        "description = \"Wrong env\"\nprogram = \"true\"\n[env]\nJAVA_HOME = 5\nOPSBOT_RUN = \"x\"\n",
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("greedy.toml:4: `env.JAVA_HOME`: must be true (passed through from the bot), false (left out) or a string (its value)"),
        "{all}"
    );
    assert!(
        all.contains("greedy.toml:5: `env.OPSBOT_RUN`: `OPSBOT_RUN` is set by the bot itself"),
        "{all}"
    );
}
