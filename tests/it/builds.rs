//! Builds from chat with the local runner, through the console binary: the
//! shipped demo jobs, progress edited in place, the loop back to tickets,
//! hostile parameter values, cancel, timeout, restart.

use crate::harness::Env;

/// The last progress line of a run in a channel.
fn last_progress<'a>(run: &'a crate::harness::Run, channel: &str, id: &str) -> &'a str {
    run.in_channel(channel)
        .into_iter()
        .rfind(|l| l.starts_with(&format!("{id} · ")))
        .unwrap_or_else(|| panic!("no progress of {id} in #{channel}: {}", run.stdout))
}

#[test]
fn a_build_runs_and_its_message_follows_it() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        ":in backend",
        "/build job:build-web ref:release/1.2",
    ]);
    assert_eq!(
        run.private(),
        vec!["Started RUN-1: build-web ref=release/1.2. Cancel it with /build cancel run:RUN-1"]
    );
    let steps: Vec<&str> = run
        .in_channel("backend")
        .into_iter()
        .filter(|l| l.starts_with("RUN-1 · "))
        .collect();
    assert_eq!(steps.len(), 3, "{}", run.stdout);
    assert_eq!(
        steps[0],
        "RUN-1 · build-web ref=release/1.2 · queued · requested by bob"
    );
    assert!(
        steps[1].starts_with("RUN-1 · build-web ref=release/1.2 · running since "),
        "{}",
        steps[1]
    );
    assert!(steps[1].contains("(local pid "));
    assert!(
        steps[2].starts_with("RUN-1 · build-web ref=release/1.2 · succeeded in "),
        "{}",
        steps[2]
    );
    assert!(steps[2].ends_with(" — exit code 0 · requested by bob"));
    // Asked for in the team's own channel: one message there, none elsewhere.
    assert!(run.in_channel("ops").is_empty(), "{}", run.stdout);
    let runs: Vec<serde_json::Value> = env
        .export()
        .into_iter()
        .filter(|v| v["type"] == "run")
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["params"]["ref"], "release/1.2");
    let states: Vec<&str> = runs[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["queued", "running", "succeeded"]);
}

#[test]
fn a_failing_main_build_opens_a_ticket_noted_again_then_fixed() {
    let env = Env::shipped();
    let run = env.console(&[":as bella", "/test-web fail:yes"]);
    assert!(last_progress(&run, "ops", "RUN-1")
        .starts_with("RUN-1 · test-web fail=yes ref=main · failed in "));
    assert!(run.stdout.contains("[#ops] RUN-1 test-web failed (exit code 2). The output ends with:\n  testing main\n  FAIL checkout_test: expected 200, got 500\n  3 of 120 tests failed"), "{}", run.stdout);
    assert_eq!(
        run.in_channel("backend")[1..].iter().find(|l| l.starts_with("OPS-1")).copied(),
        Some("OPS-1 · p2 · test-web is failing on main — assigned to team backend by ci. @bob, pick someone with /ticket assign id:OPS-1 user:…, or take it: /ticket take id:OPS-1")
    );
    // A feature branch failing is not main's problem; main failing again is noted.
    env.console(&[
        ":as bella",
        "/test-web fail:yes ref:feature/x",
        "/test-web fail:yes",
    ]);
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1);
    let run = env.console(&[":as bella", "/test-web", "/ticket show id:OPS-1"]);
    assert!(
        run.stdout.contains("[#ops › OPS-1] RUN-4 passed: fixed."),
        "{}",
        run.stdout
    );
    let export = env.export();
    let notes: Vec<&str> = export
        .iter()
        .filter(|e| e["type"] == "timeline" && e["ticket"] == "OPS-1")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(notes.contains(&"failed again: RUN-3"), "{notes:?}");
    assert!(notes.contains(&"fixed: RUN-4 passed"), "{notes:?}");
    let t = export.iter().find(|e| e["id"] == "OPS-1").unwrap();
    assert_eq!(t["state"], "resolved");
    assert_eq!(t["source"], "system");
}

#[test]
fn hostile_values_are_refused_or_reach_the_job_as_inert_text() {
    let env = Env::shipped();
    env.write(
        "commands/echo-args.toml",
        r#"
description = "Shows its arguments"
program = "scripts/echo-args.sh"
args = ["--msg={msg}", "{msg}"]
who = ["anyone"]
[params.msg]
description = "Anything"
pattern = '(?s).{1,200}'
"#,
    );
    env.script(
        "commands/scripts/echo-args.sh",
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\nexit 1\n",
    );
    let run = env.console(&[
        ":as bob",
        "/build job:build-web ref:\"$(reboot)\"",
        ":as zed",
        "/build-web ref:main",
        "/echo-args msg:\"; rm -rf / && echo pwned\"",
        "/echo-args msg:\"$(touch /tmp/opsbot-pwned)\"",
        "/echo-args",
        "/build job:nope",
    ]);
    let p = run.private();
    assert_eq!(
        p[0],
        "`ref` = `$(reboot)` does not match the pattern [A-Za-z0-9._/-]{1,100} of job build-web"
    );
    assert_eq!(
        p[1],
        "only operators, members of backend, release managers may run build-web"
    );
    assert_eq!(p[4], "job echo-args needs `msg:` (Anything)");
    assert_eq!(
        p[5],
        "there is no job `nope`; jobs are: build-web, deploy-web, echo-args, test-web"
    );
    assert!(
        run.stdout
            .contains("  [--msg=; rm -rf / && echo pwned]\n  [; rm -rf / && echo pwned]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  [$(touch /tmp/opsbot-pwned)]"),
        "{}",
        run.stdout
    );
    assert!(!std::path::Path::new("/tmp/opsbot-pwned").exists());
}

#[test]
fn cancel_kills_and_timeout_fails() {
    let env = Env::shipped();
    env.write(
        "commands/slow.toml",
        "description = \"Sleeps\"\nprogram = \"scripts/slow.sh\"\ntimeout = \"1s\"\nwho = [\"anyone\"]\n",
    );
    env.script(
        "commands/scripts/slow.sh",
        "#!/bin/sh\necho started\nsleep 30\n",
    );
    let started = std::time::Instant::now();
    let run = env.console(&[
        "/slow",
        "/build cancel run:RUN-1",
        "/slow",
        "/build cancel run:RUN-1",
        "/build cancel run:RUN-9",
    ]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "waited for the sleeper"
    );
    let p = run.private();
    assert_eq!(p[1], "RUN-1 is cancelled.");
    assert_eq!(
        p[3],
        "RUN-1 is already cancelled; only queued or running runs can be cancelled"
    );
    assert_eq!(p[4], "there is no run RUN-9; /runs lists them");
    assert!(last_progress(&run, "ops", "RUN-1").contains("· cancelled in "));
    assert!(last_progress(&run, "ops", "RUN-2").contains("· failed in "));
    assert!(last_progress(&run, "ops", "RUN-2").contains("timed out after 1s"));
}

#[test]
fn a_run_left_in_flight_by_a_crash_is_marked_failed_at_the_next_start() {
    use opsbot::commands::parse_with_jobs;
    use opsbot::domain::{Actor, ChannelName, Source, UserName};
    use opsbot::engine::Event;
    let env = Env::shipped();
    {
        let (bot, writer, _store) = env.bot();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cfg = env.config();
        rt.block_on(bot.handle(Event::Command {
            actor: Actor::new(UserName::parse("olivia").unwrap(), Source::Console),
            channel: ChannelName::parse("ops").unwrap(),
            command: parse_with_jobs("/build-web", "OPS", &cfg.jobs).unwrap(),
        }))
        .unwrap();
        drop(bot);
        writer.join();
    }
    let run = env.console(&["/runs"]);
    assert!(
        last_progress(&run, "ops", "RUN-1").contains("· failed in ")
            && last_progress(&run, "ops", "RUN-1").contains("the bot restarted while it ran"),
        "{}",
        run.stdout
    );
    // The job was not started after the restart.
    assert!(!run.stdout.contains("running since"), "{}", run.stdout);
}

#[test]
fn check_names_mistakes_in_job_files() {
    let env = Env::shipped();
    env.write(
        "commands/bad.toml",
        "description = \"x\"\nteam = \"web\"\nprogram = \"scripts/none.sh\"\nargs = [\"{what}\"]\n[params.ref]\ndescription = \"r\"\npattern = \"(\"\n",
    );
    env.write(
        "commands/help.toml",
        "description = \"x\"\nprogram = \"true\"\n",
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    for want in [
        "bad.toml:2: `team`: no team `web` is defined",
        "bad.toml:3: `program`:",
        "bad.toml:4: `args[0]`: `{what}` names no parameter",
        "bad.toml:7: `params.ref.pattern`: the regular expression does not compile",
        "help.toml: `help` cannot name a command",
    ] {
        assert!(run.stderr.contains(want), "want {want}\n{}", run.stderr);
    }
}

#[test]
fn help_lists_the_jobs_a_person_may_run() {
    let env = Env::shipped();
    let run = env.console(&[":as bob", "/help", ":as zed", "/help"]);
    let blocks: Vec<&str> = run
        .stdout
        .split("(only you) ")
        .filter(|b| !b.is_empty())
        .collect();
    assert!(blocks[0].contains("Jobs you may run (from commands/):\n    /build-web [ref:… (default main)] — Build the web app"), "{}", blocks[0]);
    assert!(
        blocks[0].contains(
            "/test-web [fail:… (default no)] [ref:… (default main)] — Run the web app's tests"
        ),
        "{}",
        blocks[0]
    );
    assert!(!blocks[1].contains("Jobs you may run"), "{}", blocks[1]);
}
