//! Builds on Jenkins through the console binary and the fake Jenkins:
//! followed to the end, failures with their console tail and a ticket,
//! Jenkins down then up (one build, not two), a restart in the middle.

use std::time::{Duration, Instant};

use crate::fake_jenkins::FakeJenkins;
use crate::harness::{shipped_config, Env};

fn env_with(fake: &FakeJenkins) -> Env {
    let text = format!(
        "{}\n[ci.jenkins]\nurl = \"{}\"\nuser = \"opsbot\"\ntoken_env = \"JENKINS_TOKEN\"\ntimeout = \"2s\"\npoll = \"50ms\"\n",
        shipped_config(),
        fake.base
    );
    let env = Env::shipped_with(&text);
    env.write(
        "commands/web-ci.toml",
        r#"
description = "The web app's pipeline on Jenkins"
team = "backend"
backend = "jenkins"
jenkins_job = "web/build"
[params.ref]
description = "The git ref"
pattern = '[A-Za-z0-9._/-]{1,100}'
default = "main"
"#,
    );
    env
}

fn last_progress(run: &crate::harness::Run, id: &str) -> String {
    run.in_channel("ops")
        .into_iter()
        .rfind(|l| l.starts_with(&format!("{id} · ")))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_jenkins_build_is_triggered_followed_and_reported() {
    let fake = FakeJenkins::start();
    fake.set_job(
        "web/build",
        "SUCCESS",
        Duration::from_millis(300),
        "Started\nFinished: SUCCESS\n",
    );
    let env = env_with(&fake);
    let run = env.console(&["/web-ci ref:release/2"]);
    let last = last_progress(&run, "RUN-1");
    assert!(
        last.starts_with("RUN-1 · web-ci ref=release/2 · succeeded in "),
        "{}",
        run.stdout
    );
    assert!(last.contains("Jenkins says Success"), "{last}");
    assert!(run.stdout.contains("(jenkins build #"), "{}", run.stdout);
    let builds = fake.builds("web/build");
    assert_eq!(builds.len(), 1);
    assert!(builds[0]
        .params
        .contains(&("ref".into(), "release/2".into())));
    assert!(builds[0]
        .params
        .contains(&("OPSBOT_RUN".into(), "RUN-1".into())));
    assert!(fake.unexpected().is_empty(), "{:?}", fake.unexpected());
}

#[test]
fn a_failed_jenkins_build_posts_its_console_tail_and_opens_a_ticket() {
    let fake = FakeJenkins::start();
    fake.set_job(
        "web/build",
        "FAILURE",
        Duration::from_millis(100),
        "compiling\nerror[E0308]: mismatched types\nFinished: FAILURE\n",
    );
    let env = env_with(&fake);
    let run = env.console(&["/web-ci"]);
    assert!(
        last_progress(&run, "RUN-1").contains("· failed in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("error[E0308]: mismatched types"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("New build ticket OPS-1 · p2 · web-ci is failing on main"),
        "{}",
        run.stdout
    );
}

#[test]
fn jenkins_down_is_said_once_retried_and_built_once() {
    let fake = FakeJenkins::start();
    fake.set_job("web/build", "SUCCESS", Duration::from_millis(100), "ok\n");
    fake.down();
    let env = env_with(&fake);
    let mut bot = env.live(&[]);
    bot.line("/web-ci");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(fake.builds("web/build").is_empty());
    fake.up();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.builds("web/build").iter().all(|b| b.result.is_none()) {
        assert!(
            Instant::now() < deadline,
            "never built after Jenkins came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = bot.finish();
    assert_eq!(fake.builds("web/build").len(), 1, "built twice");
    assert_eq!(
        run.stdout.matches("Jenkins is not answering").count(),
        2,
        "one progress post per channel: {}",
        run.stdout
    );
    assert!(
        last_progress(&run, "RUN-1").contains("· succeeded in "),
        "{}",
        run.stdout
    );
}

#[test]
fn a_restart_in_the_middle_of_a_build_follows_it_again() {
    let fake = FakeJenkins::start();
    fake.set_job(
        "web/build",
        "SUCCESS",
        Duration::from_secs(3),
        "long build\n",
    );
    let env = env_with(&fake);
    let mut bot = env.live(&[]);
    bot.line("/web-ci");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.builds("web/build").is_empty() {
        assert!(Instant::now() < deadline, "never triggered");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    bot.kill9();
    // The next start follows the same build to its end.
    let run = env.console(&[]);
    assert_eq!(
        fake.builds("web/build").len(),
        1,
        "submitted again after the restart"
    );
    assert!(
        last_progress(&run, "RUN-1").contains("· succeeded in "),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_jenkins_job_fails_the_run_with_a_clear_reason() {
    let fake = FakeJenkins::start();
    let env = env_with(&fake);
    let run = env.console(&["/web-ci"]);
    let last = last_progress(&run, "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(last.to_lowercase().contains("web/build"), "{last}");
    let _ = fake.take_unexpected();
}

#[test]
fn cancel_stops_the_jenkins_build() {
    let fake = FakeJenkins::start();
    fake.set_job("web/build", "SUCCESS", Duration::from_secs(20), "long\n");
    let env = env_with(&fake);
    let mut bot = env.live(&[]);
    bot.line("/web-ci");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fake.builds("web/build").iter().any(|b| b.building) {
        assert!(Instant::now() < deadline, "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    bot.line("/build cancel run:RUN-1");
    while fake.builds("web/build")[0].result.is_none() {
        assert!(Instant::now() < deadline, "never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fake.builds("web/build")[0].result.as_deref(),
        Some("ABORTED")
    );
    let run = bot.finish();
    assert!(
        last_progress(&run, "RUN-1").contains("· cancelled in "),
        "{}",
        run.stdout
    );
}
