//! Gates and permissions through the console binary: a deploy job is a
//! deploy however it is started (its own command, `/build`, `/build run`),
//! and `/help` lists only what the person may really run.

use crate::harness::{shipped_config, Env};

fn runs(env: &Env) -> Vec<serde_json::Value> {
    env.export()
        .into_iter()
        .filter(|v| v["type"] == "run")
        .collect()
}

/// The shipped config, where deploy-web's `env` defaults to production: so
/// that `/build job:deploy-web` alone names an environment.
fn env_defaulting_to_production() -> Env {
    let env = Env::shipped();
    let job = std::fs::read_to_string(env.dir.path().join("commands/deploy-web.toml"))
        .expect("deploy-web.toml");
    let job = job.replace(
        "pattern = 'staging|production'",
        "pattern = 'staging|production'\ndefault = \"production\"",
    );
    assert!(job.contains("default = \"production\""));
    env.write("commands/deploy-web.toml", &job);
    env
}

#[test]
fn a_deploy_jobs_own_command_waits_for_an_approval_from_someone_else() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        "/deploy-web env:production version:6.6.6",
        "/approve run:RUN-1",
        "/deploy-web env:production version:6.6.7",
        "/deploy service:web env:production version:6.6.8",
        ":as rita",
        "/approve run:RUN-1",
    ]);
    let p = run.private();
    assert_eq!(
        p[0], "RUN-1 waits for an approval (release managers (rita)).",
        "{}",
        run.stdout
    );
    assert_eq!(
        p[1],
        "you asked for RUN-1: someone else must approve it (release managers (rita))"
    );
    let locked = "web/production is locked by RUN-1 (bob, waiting_approval): one deploy at a time; wait for it, or /build cancel run:RUN-1";
    assert_eq!(p[2], locked);
    assert_eq!(p[3], locked);
    assert_eq!(p[4], "RUN-1 is approved and starts now.");
    let all = runs(&env);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["state"], "succeeded");
    assert_eq!(all[0]["deploy"]["env"], "production");
    assert_eq!(all[0]["deploy"]["version"], "6.6.6");
    assert_eq!(all[0]["deploy"]["approved_by"], "rita");
    // It started only once approved.
    let entries: Vec<&str> = all[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(entries[0], "waiting_approval", "{entries:?}");
}

#[test]
fn a_deploy_jobs_own_command_leaves_history_for_rollback() {
    let env = Env::shipped();
    env.console(&[":as bob", "/deploy-web env:staging version:1.0.0"]);
    env.console(&[":as bob", "/deploy-web env:staging version:1.1.0"]);
    let run = env.console(&[":as bella", "/rollback service:web env:staging"]);
    assert_eq!(
        run.private(),
        vec!["Started RUN-3: rollback of web/staging to 1.0.0 (as of RUN-1). Cancel it with /build cancel run:RUN-3"]
    );
}

#[test]
fn build_of_a_deploy_job_goes_through_the_deploy_gates() {
    let env = env_defaulting_to_production();
    let run = env.console(&[
        ":as bob",
        "/build job:deploy-web",
        "/build run job:deploy-web",
        ":as rita",
        "/deny run:RUN-1 reason:\"not this way\"",
        ":as bob",
        "/build run job:deploy-web",
    ]);
    let p = run.private();
    assert_eq!(
        p[0], "RUN-1 waits for an approval (release managers (rita)).",
        "{}",
        run.stdout
    );
    assert_eq!(p[1], "web/production is locked by RUN-1 (bob, waiting_approval): one deploy at a time; wait for it, or /build cancel run:RUN-1");
    assert_eq!(p[2], "RUN-1 is denied.");
    assert_eq!(
        p[3],
        "RUN-2 waits for an approval (release managers (rita))."
    );
    let all = runs(&env);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["state"], "cancelled");
    assert_eq!(all[1]["state"], "waiting_approval");
    assert_eq!(all[1]["deploy"]["env"], "production");
    // Nothing ran: no progress says running.
    assert!(!run.stdout.contains("running since"), "{}", run.stdout);
}

#[test]
fn a_deploy_job_that_names_no_environment_is_refused_with_the_way_to_deploy() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        "/build job:deploy-web",
        "/build run job:deploy-web ref:main",
        "/deploy-web version:1.0",
    ]);
    let p = run.private();
    assert_eq!(
        p[0],
        "job deploy-web needs `env:` (The environment). deploy-web is the deploy job of web/production, web/staging: deploy with /deploy service:… env:… [version:…]"
    );
    assert!(
        p[1].starts_with("job deploy-web has no parameter `ref`"),
        "{}",
        p[1]
    );
    assert!(p[1].ends_with("deploy with /deploy service:… env:… [version:…]"));
    assert!(p[2].starts_with("job deploy-web needs `env:`"), "{}", p[2]);
    assert!(runs(&env).is_empty());
}

#[test]
fn a_deploy_job_shared_by_two_services_needs_deploy_to_say_which() {
    let text = shipped_config().replace(
        "[services.web.environments.staging]",
        "[services.shop]\nteam = \"backend\"\njob = \"deploy-web\"\n\n[services.shop.environments.staging]\n\n[services.web.environments.staging]",
    );
    let env = Env::shipped_with(&text);
    let run = env.console(&[":as bob", "/deploy-web env:staging version:1.0"]);
    assert_eq!(
        run.private()[0],
        "deploy-web is the deploy job of shop/staging, web/production, web/staging, and these parameters name more than one of them; deploy with /deploy service:… env:… [version:…]",
        "{}",
        run.stderr
    );
    assert!(runs(&env).is_empty());
}

fn blocks(stdout: &str) -> Vec<&str> {
    stdout
        .split("(only you) ")
        .filter(|b| !b.is_empty())
        .collect()
}

#[test]
fn help_lists_deploys_and_approvals_only_to_those_the_engine_lets_run_them() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as zed",
        "/help",
        ":as bob",
        "/help",
        ":as rita",
        "/help",
        ":as bob",
        "/help command:approve",
        ":as quinn",
        "/help",
    ]);
    let b = blocks(&run.stdout);
    assert_eq!(b.len(), 5, "{}", run.stdout);
    let listed = |block: &str, cmd: &str| block.contains(&format!(" /{cmd} —"));
    // An outsider: no job admits zed, nor does any environment.
    for cmd in [
        "build run",
        "build cancel",
        "deploy",
        "rollback",
        "approve",
        "deny",
    ] {
        assert!(!listed(b[0], cmd), "zed sees /{cmd}: {}", b[0]);
    }
    assert!(listed(b[0], "runs"), "{}", b[0]);
    // bob may build and deploy (and withdraw his own deploy), not approve;
    // /build is named as Discord shows it, /build run.
    for cmd in ["build run", "build cancel", "deploy", "rollback", "deny"] {
        assert!(listed(b[1], cmd), "bob misses /{cmd}: {}", b[1]);
    }
    assert!(!listed(b[1], "approve"), "{}", b[1]);
    // rita approves.
    assert!(listed(b[2], "approve"), "{}", b[2]);
    assert!(
        b[3].contains("who may run it: the approvers of a protected environment, never who asked for the deploy (not you)"),
        "{}",
        b[3]
    );
    // quinn (QA) runs no job and approves nothing.
    for cmd in ["build run", "deploy", "approve", "deny"] {
        assert!(!listed(b[4], cmd), "quinn sees /{cmd}: {}", b[4]);
    }
    // And what help leaves out, the engine refuses.
    let run = env.console(&[
        ":as quinn",
        "/deploy service:web env:staging version:1.0",
        ":as bob",
        "/deploy service:web env:production version:1.0",
        ":as quinn",
        "/approve run:RUN-1",
    ]);
    let p = run.private();
    assert!(p[0].starts_with("only "), "{}", p[0]);
    assert!(
        p[2].starts_with("only release managers (rita) may approve"),
        "{}",
        p[2]
    );
}
