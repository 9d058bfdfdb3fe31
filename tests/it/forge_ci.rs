//! The forges' own CI as job backends, through the real binary and the
//! strict fake forge: a GitHub Actions job started by `workflow_dispatch`
//! and a GitLab CI job by the pipeline trigger, followed to success and to
//! failure (the failed job's log tail shown, the build ticket opened for
//! the team on main), cancelled, followed again after a restart (never
//! started twice, the commit status reported once); and runs the forge
//! started on its own (GitHub `workflow_run`, GitLab `Pipeline Hook`,
//! payloads from each forge's documentation in `tests/fixtures/forges/`)
//! reported like the bot's own, the bot's own not twice.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_forge::FakeForge;
use crate::forge_hooks::{self as hooks, fixture, hmac_hex, send};
use crate::harness::{shipped_config, Env, LiveBot};

const TOKEN: &str = "ghp_fake_forge_token_0001";
const TRIGGER: &str = "glptt-trigger-token-42";
const GH_SECRET: &str = "gh-secret-ci";
const GL_SECRET: &str = "gl-secret-ci";
const GH_REPO: &str = "Codertocat/Hello-World";
const GL_REPO: &str = "acme/shop";

/// The shipped config with a GitHub and a GitLab repository on the fake
/// forge, a GitHub Actions job, a GitLab CI job, and the repository the
/// `workflow_run` example comes from.
fn env_with(fake: &FakeForge, on_push: &str) -> Env {
    let text = format!(
        r#"{}
[repos.hello]
url = "https://github.com/{GH_REPO}.git"
provider = "github"
team = "backend"
on_push = [{on_push}]
secret_env = "GH_SECRET"
token_env = "FORGE_TOKEN"
api_url = "{base}"

[repos.shop]
url = "https://gitlab.example.com/{GL_REPO}.git"
provider = "gitlab"
team = "backend"
secret_env = "GL_SECRET"
token_env = "FORGE_TOKEN"
api_url = "{base}/api/v4"

[repos.octo]
url = "https://github.com/octo-org/octo-repo.git"
provider = "github"
team = "backend"
secret_env = "GH_SECRET"
token_env = "FORGE_TOKEN"
api_url = "{base}"
"#,
        shipped_config(),
        base = fake.base
    );
    let mut env = Env::shipped_with(&text);
    env.write(
        "commands/web-actions.toml",
        r#"
description = "The web app's workflow on GitHub Actions"
team = "backend"
backend = "github_actions"
repo = "hello"
workflow = "ci.yml"
id_input = "opsbot_run"
poll = "50ms"
main_ref = "master"
[inputs]
commit = "{sha}"
[params.ref]
description = "The git ref"
pattern = '[A-Za-z0-9._/-]{1,100}'
default = "master"
[params.sha]
description = "The commit"
pattern = '[0-9a-f]{40}|HEAD'
default = "HEAD"
"#,
    );
    env.write(
        "commands/web-plain.toml",
        r#"
description = "The web app's workflow, without an id input"
team = "backend"
backend = "github_actions"
repo = "hello"
workflow = "plain.yml"
ref = "master"
poll = "50ms"
"#,
    );
    env.write(
        "commands/shop-pipeline.toml",
        r#"
description = "The shop's pipeline on GitLab CI"
team = "backend"
backend = "gitlab_ci"
repo = "shop"
trigger_token_env = "SHOP_TRIGGER"
poll = "50ms"
[inputs]
DEPLOY_TARGET = "{target}"
[params.ref]
description = "The git ref"
pattern = '[A-Za-z0-9._/-]{1,100}'
default = "main"
[params.target]
description = "Where"
pattern = '[a-z]{1,20}'
default = "review"
"#,
    );
    for (k, v) in [
        ("FORGE_TOKEN", TOKEN),
        ("SHOP_TRIGGER", TRIGGER),
        ("GH_SECRET", GH_SECRET),
        ("GL_SECRET", GL_SECRET),
    ] {
        env.vars.push((k.into(), v.into()));
    }
    env
}

fn fake() -> FakeForge {
    let fake = FakeForge::start(TOKEN, &[GH_REPO, GL_REPO]);
    fake.set_refs(GH_REPO, &["master", "release/2"]);
    fake
}

/// The fake forge with the GitHub workflow `ci.yml` (an `opsbot_run` id
/// input and a `commit` input), whose runs end in `conclusion` after
/// `duration` with `log`.
fn fake_with_ci(conclusion: &str, duration: Duration, log: &str) -> FakeForge {
    let fake = fake();
    fake.set_workflow(
        GH_REPO,
        "ci.yml",
        &["opsbot_run", "commit"],
        Some("opsbot_run"),
        conclusion,
        duration,
        log,
    );
    fake
}

/// What the bot says once it knows the forge's id of the first run.
const GH_RUN: &str = "(github run 30000001";
const GL_PIPELINE: &str = "(gitlab pipeline 501";

/// Waits until the bot has said `started` (the forge's id of its run).
fn wait_started(bot: &LiveBot, started: &str) {
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p.contains(started)),
        "{}",
        bot.printed()
    );
}

/// A live bot given `line`, once it has said `started`.
fn live_started(env: &Env, line: &str, started: &str) -> LiveBot {
    let mut bot = env.live(&[]);
    bot.line(line);
    wait_started(&bot, started);
    bot
}

/// Waits until the forge's first run is cancelled on it (`forge` names it).
fn wait_cancelled(fake: &FakeForge, forge: &str) {
    wait_until(&format!("cancelled on {forge}"), || {
        fake.ci_runs().first().is_some_and(|r| r.cancelled)
    });
}

fn last_progress(run: &crate::harness::Run, channel: &str, id: &str) -> String {
    run.in_channel(channel)
        .into_iter()
        .rfind(|l| l.starts_with(&format!("{id} · ")))
        .unwrap_or_default()
        .to_string()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A GitHub event, signed as GitHub signs it.
fn github(bot: &LiveBot, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    hooks::github(bot, GH_SECRET, event, delivery, body)
}

/// A GitHub `workflow_run` event, signed.
fn run_hook(bot: &LiveBot, delivery: &str, body: &Value) -> (u16, Value) {
    github(bot, "workflow_run", delivery, body)
}

/// A GitLab event, with the hook's token.
fn gitlab(bot: &LiveBot, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    send(
        bot,
        "/hooks/gitlab",
        &[
            ("X-Gitlab-Event", event),
            ("X-Gitlab-Event-UUID", delivery),
            ("X-Gitlab-Token", GL_SECRET),
        ],
        &bytes,
    )
}

fn no_surprises(fake: &FakeForge) {
    let u = fake.take_unexpected();
    assert!(u.is_empty(), "{u:?}\n{:#?}", fake.ci_requests());
}

#[test]
fn a_github_actions_build_is_dispatched_found_followed_and_reported() {
    let fake = fake_with_ci("success", Duration::from_millis(400), "");
    let env = env_with(&fake, "");
    let run = env.console(&["/web-actions ref:release/2"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(
        last.starts_with("RUN-1 · web-actions ref=release/2 sha=HEAD · succeeded in "),
        "{}",
        run.stdout
    );
    assert!(last.contains("GitHub Actions says success"), "{last}");
    assert!(
        run.stdout.contains("(github run 30000001 "),
        "{}",
        run.stdout
    );
    let runs = fake.ci_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].git_ref, "release/2");
    assert_eq!(
        runs[0].inputs,
        vec![
            ("commit".to_string(), "HEAD".to_string()),
            ("opsbot_run".to_string(), "RUN-1".to_string())
        ]
    );
    assert_eq!(
        fake.count("POST /repos/Codertocat/Hello-World/actions/workflows/ci.yml/dispatches"),
        1
    );
    // Nothing failed: no log was asked for.
    assert_eq!(
        fake.count("GET /repos/Codertocat/Hello-World/actions/jobs/70000000030000001/logs")
            + fake.count("GET /repos/Codertocat/Hello-World/actions/runs/30000001/jobs"),
        0
    );
    assert!(!run.stdout.contains("New build ticket"), "{}", run.stdout);
    no_surprises(&fake);
}

#[test]
fn a_failed_github_actions_build_shows_its_failed_job_log_and_opens_a_ticket() {
    let fake = fake_with_ci("failure", Duration::from_millis(200), "Run cargo test\ncompiling web v0.1.0\nerror[E0308]: mismatched types\n##[error]Process completed with exit code 101.");
    let env = env_with(&fake, "");
    let run = env.console(&["/web-actions"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(last.contains("GitHub Actions says failure"), "{last}");
    // The failed job's log, fetched from the signed URL, without GitHub's
    // timestamps.
    assert!(
        run.stdout.contains("error[E0308]: mismatched types"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("2026-12-02T13:00:00.0000000Z"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("New build ticket OPS-1 · p2 · web-actions is failing on master"),
        "{}",
        run.stdout
    );
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["team"], "backend");
    no_surprises(&fake);
}

#[test]
fn what_github_refuses_fails_the_run_with_the_reason_and_dispatches_nothing() {
    let fake = fake_with_ci("success", Duration::ZERO, "");
    let env = env_with(&fake, "");
    // A ref the repository does not have: GitHub's 422, said.
    let run = env.console(&["/web-actions ref:no-such-branch"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(last.contains("No ref found for: no-such-branch"), "{last}");
    assert_eq!(fake.take_unexpected().len(), 1);
    // A wrong token: 401, said with what to check.
    fake.set_token("another-token");
    let run = env.console(&["/web-actions"]);
    let last = last_progress(&run, "ops", "RUN-2");
    assert!(
        last.contains("GitHub refused the token (HTTP 401)"),
        "{last}"
    );
    assert!(fake.refused() >= 1);
    assert!(fake.ci_runs().is_empty());
    no_surprises(&fake);
}

#[test]
fn cancel_stops_the_github_actions_run() {
    let fake = fake_with_ci("success", Duration::from_secs(30), "");
    let env = env_with(&fake, "");
    let mut bot = live_started(&env, "/web-actions", GH_RUN);
    bot.line("/build cancel run:RUN-1");
    wait_cancelled(&fake, "GitHub");
    let run = bot.finish();
    assert!(
        last_progress(&run, "ops", "RUN-1").contains("· cancelled in "),
        "{}",
        run.stdout
    );
    assert_eq!(
        fake.count("POST /repos/Codertocat/Hello-World/actions/runs/30000001/cancel"),
        1
    );
    no_surprises(&fake);
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// GitHub's documented push, made a push of one commit to `master`.
fn gh_push(after: &str) -> Value {
    let mut v = fixture("github-push-tag-deleted.json");
    v["ref"] = json!("refs/heads/master");
    v["before"] = json!(sha('1'));
    v["after"] = json!(after);
    v["deleted"] = json!(false);
    v["commits"] = json!([{
        "id": after,
        "message": "Retry the payment call",
        "url": format!("https://github.com/{GH_REPO}/commit/{after}"),
        "author": {"name": "bob", "email": "bob@example.com", "username": "bob"}
    }]);
    v
}

#[test]
fn a_restart_in_the_middle_follows_the_run_again_never_dispatches_twice_and_reports_once() {
    let fake = fake_with_ci("success", Duration::from_secs(4), "");
    let env = env_with(&fake, "\"web-actions\"");
    let bot = env.live(&[]);
    let (code, answer) = github(&bot, "push", "p-1", &gh_push(&sha('a')));
    assert_eq!(code, 202, "{answer}");
    wait_started(&bot, GH_RUN);
    wait_until("the pending status", || {
        fake.taken().iter().any(|t| t.state == "pending")
    });
    bot.kill9();
    // The next start follows the same run to its end.
    let run = env.console(&[]);
    assert_eq!(
        fake.ci_runs().len(),
        1,
        "dispatched again after the restart"
    );
    assert_eq!(fake.ci_runs()[0].inputs[0], ("commit".into(), sha('a')));
    assert!(
        last_progress(&run, "backend", "RUN-1").contains("· succeeded in "),
        "{}",
        run.stdout
    );
    let states: Vec<String> = fake
        .taken()
        .iter()
        .filter(|t| t.sha == sha('a') && t.context == "opsbot/web-actions")
        .map(|t| t.state.clone())
        .collect();
    assert_eq!(states, ["pending", "success"]);
    no_surprises(&fake);
}

/// GitHub's documented `workflow_run` example, as run `id` in `status`.
fn workflow_run(id: u64, status: &str, conclusion: Option<&str>) -> Value {
    let mut v = fixture("github-workflow-run-completed.json");
    v["action"] = json!(if status == "completed" {
        "completed"
    } else {
        "in_progress"
    });
    v["workflow_run"]["id"] = json!(id);
    v["workflow_run"]["status"] = json!(status);
    v["workflow_run"]["conclusion"] = json!(conclusion);
    v["workflow_run"]["html_url"] = json!(format!(
        "https://github.com/octo-org/octo-repo/actions/runs/{id}"
    ));
    v
}

#[test]
fn a_workflow_run_the_bot_did_not_start_is_reported_and_a_failing_main_is_a_ticket() {
    let fake = FakeForge::start(TOKEN, &[GH_REPO, GL_REPO, "octo-org/octo-repo"]);
    // GitHub ran it on its own; its log is there to read.
    let seven = fake.add_run(
        "octo-org/octo-repo",
        "test.yml",
        "failure",
        "npm test\nnot ok 3 - checkout retries\nnpm ERR! Test failed.",
    );
    let env = env_with(&fake, "");
    let bot = env.live(&[]);
    let (code, answer) = run_hook(&bot, "w-1", &workflow_run(seven, "in_progress", None));
    assert_eq!(
        (code, answer["result"].clone()),
        (202, json!("reported as RUN-1")),
        "{answer}"
    );
    let (code, answer) = run_hook(
        &bot,
        "w-2",
        &workflow_run(seven, "completed", Some("failure")),
    );
    assert_eq!(code, 202, "{answer}");
    // Redelivered: nothing twice.
    let (code, answer) = run_hook(
        &bot,
        "w-2",
        &workflow_run(seven, "completed", Some("failure")),
    );
    assert_eq!(code, 200, "{answer}");
    // The next run on master passes: the ticket is resolved.
    let (code, answer) = run_hook(&bot, "w-3", &workflow_run(8, "completed", Some("success")));
    assert_eq!(code, 202, "{answer}");
    // A branch bot.toml does not follow: ignored, said.
    let mut other = workflow_run(9, "completed", Some("failure"));
    other["workflow_run"]["head_branch"] = json!("feature/x");
    let (code, answer) = run_hook(&bot, "w-4", &other);
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer["ignored"]
            .as_str()
            .is_some_and(|s| s.contains("not a branch bot.toml follows")),
        "{answer}"
    );
    let run = bot.finish();
    let backend = run.in_channel("backend");
    let first = last_progress(&run, "backend", "RUN-1");
    assert!(first.starts_with("RUN-1 · test "), "{}", run.stdout);
    assert!(first.contains("· failed in "), "{first}");
    assert!(first.contains("GitHub Actions says failure"), "{first}");
    assert!(first.contains("requested by github"), "{first}");
    assert!(
        last_progress(&run, "backend", "RUN-2").contains("· succeeded in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("New build ticket OPS-1 · p2 · test is failing on octo master"),
        "{}",
        run.stdout
    );
    // Its failed job's log, read from GitHub with the repository's token.
    assert!(
        run.stdout.contains("not ok 3 - checkout retries"),
        "{}",
        run.stdout
    );
    assert!(
        !backend.iter().any(|l| l.starts_with("RUN-3")),
        "{}",
        run.stdout
    );
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["state"], "resolved", "{:?}", tickets[0]);
    let export = env.export();
    let runs: Vec<&Value> = export.iter().filter(|e| e["type"] == "run").collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0]["params"]["sha"],
        "3484a3fb816e0859fd6e1cea078d76385ff50625"
    );
    assert_eq!(
        runs[0]["backend_ref"],
        format!("github run {seven} https://github.com/octo-org/octo-repo/actions/runs/{seven}")
    );
}

#[test]
fn a_run_the_bot_started_is_not_reported_twice_when_its_webhooks_arrive() {
    let fake = fake_with_ci("failure", Duration::from_millis(300), "boom");
    let env = env_with(&fake, "");
    let bot = live_started(&env, "/web-actions", GH_RUN);
    // GitHub's hooks for that same run, as its repository's.
    let hook = |status: &str, conclusion: Option<&str>| {
        let mut v = workflow_run(30000001, status, conclusion);
        v["repository"]["full_name"] = json!(GH_REPO);
        v["repository"]["default_branch"] = json!("master");
        v["workflow_run"]["event"] = json!("workflow_dispatch");
        v["workflow_run"]["display_title"] = json!("ci RUN-1");
        v["workflow_run"]["path"] = json!(".github/workflows/ci.yml");
        v
    };
    let (code, answer) = run_hook(&bot, "b-1", &hook("in_progress", None));
    assert_eq!(code, 200, "{answer}");
    wait_until("the run ends", || {
        bot.printed().contains("New build ticket")
    });
    let (code, answer) = run_hook(&bot, "b-2", &hook("completed", Some("failure")));
    assert_eq!(code, 200, "{answer}");
    let run = bot.finish();
    assert_eq!(
        run.stdout.matches("New build ticket").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("RUN-2"), "{}", run.stdout);
    let export = env.export();
    assert_eq!(export.iter().filter(|e| e["type"] == "run").count(), 1);
    no_surprises(&fake);
}

#[test]
fn a_gitlab_pipeline_is_triggered_followed_and_reported() {
    let fake = fake();
    fake.set_pipeline(GL_REPO, TRIGGER, "success", Duration::from_millis(300), "");
    let env = env_with(&fake, "");
    let run = env.console(&["/shop-pipeline target:staging"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· succeeded in "), "{}", run.stdout);
    assert!(last.contains("GitLab CI says success"), "{last}");
    assert!(
        run.stdout.contains("(gitlab pipeline 501 "),
        "{}",
        run.stdout
    );
    let runs = fake.ci_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].git_ref, "main");
    assert_eq!(
        runs[0].inputs,
        vec![("DEPLOY_TARGET".to_string(), "staging".to_string())]
    );
    no_surprises(&fake);
}

#[test]
fn a_failed_gitlab_pipeline_shows_its_failed_job_trace_and_opens_a_ticket() {
    let fake = fake();
    fake.set_pipeline(
        GL_REPO,
        TRIGGER,
        "failed",
        Duration::from_millis(200),
        &format!("$ curl -F token={TRIGGER} …\n$ make test\nFAIL checkout_test\nERROR: Job failed: exit code 1"),
    );
    let env = env_with(&fake, "");
    let run = env.console(&["/shop-pipeline"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(last.contains("GitLab CI says failed"), "{last}");
    assert!(run.stdout.contains("FAIL checkout_test"), "{}", run.stdout);
    // The trigger token is one of the bot's secrets: never shown.
    assert!(!run.stdout.contains(TRIGGER), "{}", run.stdout);
    assert!(run.stdout.contains("token=***"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("New build ticket OPS-1 · p2 · shop-pipeline is failing on main"),
        "{}",
        run.stdout
    );
    no_surprises(&fake);
}

#[test]
fn a_wrong_trigger_token_fails_the_run_and_cancel_stops_a_pipeline() {
    let fake = fake();
    fake.set_pipeline(
        GL_REPO,
        "another-trigger",
        "success",
        Duration::from_secs(30),
        "",
    );
    let env = env_with(&fake, "");
    let run = env.console(&["/shop-pipeline"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(
        last.contains("GitLab has no project acme/shop with a trigger of that token"),
        "{last}"
    );
    assert!(fake.ci_runs().is_empty());
    fake.set_pipeline(GL_REPO, TRIGGER, "success", Duration::from_secs(30), "");
    let mut bot = live_started(&env, "/shop-pipeline", GL_PIPELINE);
    // GitLab's hook for that pipeline: the bot's own, not a run of its own.
    let mut hook = pipeline_hook(501, "running");
    hook["object_attributes"]["source"] = json!("trigger");
    let (code, answer) = gitlab(&bot, "Pipeline Hook", "t-1", &hook);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["ignored"], "RUN-2 started it; the bot follows it already",
        "{answer}"
    );
    bot.line("/build cancel run:RUN-2");
    wait_cancelled(&fake, "GitLab");
    let run = bot.finish();
    assert!(
        last_progress(&run, "ops", "RUN-2").contains("· cancelled in "),
        "{}",
        run.stdout
    );
    no_surprises(&fake);
}

/// GitLab's documented `Pipeline Hook` example, as pipeline `id` in `status`.
fn pipeline_hook(id: u64, status: &str) -> Value {
    let mut v = fixture("gitlab-pipeline.json");
    v["object_attributes"]["id"] = json!(id);
    v["object_attributes"]["status"] = json!(status);
    v["project"]["path_with_namespace"] = json!(GL_REPO);
    v["project"]["web_url"] = json!(format!("https://gitlab.example.com/{GL_REPO}"));
    v["project"]["default_branch"] = json!("main");
    v["object_attributes"]["ref"] = json!("main");
    v
}

#[test]
fn a_pipeline_the_bot_did_not_start_is_reported_and_a_failing_main_is_a_ticket() {
    let fake = fake();
    let env = env_with(&fake, "");
    let bot = env.live(&[]);
    let (code, answer) = gitlab(&bot, "Pipeline Hook", "g-1", &pipeline_hook(31, "running"));
    assert_eq!(code, 202, "{answer}");
    let (code, answer) = gitlab(&bot, "Pipeline Hook", "g-2", &pipeline_hook(31, "failed"));
    assert_eq!(code, 202, "{answer}");
    let run = bot.finish();
    let last = last_progress(&run, "backend", "RUN-1");
    assert!(last.starts_with("RUN-1 · pipeline "), "{}", run.stdout);
    assert!(last.contains("· failed in "), "{last}");
    assert!(last.contains("requested by gitlab"), "{last}");
    assert!(
        run.stdout
            .contains("New build ticket OPS-1 · p2 · pipeline is failing on shop main"),
        "{}",
        run.stdout
    );
}

#[test]
fn without_an_id_input_the_newest_run_since_the_dispatch_is_the_bots() {
    let fake = fake();
    fake.set_workflow(
        GH_REPO,
        "plain.yml",
        &[],
        None,
        "success",
        Duration::from_millis(300),
        "",
    );
    let env = env_with(&fake, "");
    let run = env.console(&["/web-plain"]);
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· succeeded in "), "{}", run.stdout);
    let runs = fake.ci_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].git_ref.as_str(), runs[0].inputs.len()),
        ("master", 0)
    );
    // No id to look for first: the dispatch went out at once.
    assert_eq!(
        fake.ci_requests().first().map(String::as_str),
        Some("POST /repos/Codertocat/Hello-World/actions/workflows/plain.yml/dispatches")
    );
    no_surprises(&fake);
}

#[test]
fn a_restart_in_the_middle_of_a_pipeline_follows_it_again_and_never_triggers_twice() {
    let fake = fake();
    fake.set_pipeline(
        GL_REPO,
        TRIGGER,
        "failed",
        Duration::from_secs(3),
        "FAIL late_test",
    );
    let env = env_with(&fake, "");
    let bot = live_started(&env, "/shop-pipeline", GL_PIPELINE);
    bot.kill9();
    let run = env.console(&[]);
    assert_eq!(fake.ci_runs().len(), 1, "triggered again after the restart");
    let last = last_progress(&run, "ops", "RUN-1");
    assert!(last.contains("· failed in "), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL late_test"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("New build ticket").count(),
        1,
        "{}",
        run.stdout
    );
    no_surprises(&fake);
}

#[test]
fn a_malformed_or_unsigned_workflow_run_stores_nothing() {
    let fake = fake();
    let env = env_with(&fake, "");
    let bot = env.live(&[]);
    let mut bad = workflow_run(7, "completed", Some("failure"));
    bad["workflow_run"]["head_sha"] = json!("not-a-sha");
    let (code, answer) = run_hook(&bot, "m-1", &bad);
    assert_eq!(code, 400, "{answer}");
    let mut bad = workflow_run(7, "completed", Some("failure"));
    bad["workflow_run"].as_object_mut().unwrap().remove("id");
    let (code, answer) = run_hook(&bot, "m-2", &bad);
    assert_eq!(code, 400, "{answer}");
    let bytes = serde_json::to_vec(&workflow_run(7, "completed", Some("failure"))).unwrap();
    let wrong = format!("sha256={}", hmac_hex("not-the-secret", &bytes));
    let (code, _) = send(
        &bot,
        "/hooks/github",
        &[
            ("X-GitHub-Event", "workflow_run"),
            ("X-GitHub-Delivery", "m-3"),
            ("X-Hub-Signature-256", &wrong),
        ],
        &bytes,
    );
    assert_eq!(code, 401);
    let run = bot.finish();
    assert!(!run.stdout.contains("RUN-1"), "{}", run.stdout);
    assert!(env.export().iter().all(|e| e["type"] != "run"));
}

#[test]
fn github_down_is_said_once_retried_and_dispatched_once() {
    let fake = fake_with_ci("success", Duration::from_millis(200), "");
    // The look for an earlier dispatch and the dispatch fail, twice.
    fake.fail_next(503, 4);
    let env = env_with(&fake, "");
    let run = env.console(&["/web-actions"]);
    assert_eq!(fake.ci_runs().len(), 1, "{:#?}", fake.ci_requests());
    assert_eq!(
        fake.count("POST /repos/Codertocat/Hello-World/actions/workflows/ci.yml/dispatches"),
        3
    );
    let said = run
        .stdout
        .matches("GitHub failed with HTTP 503 (a problem on its side, or a rate limit); retrying")
        .count();
    assert_eq!(said, 2, "one progress post per channel: {}", run.stdout);
    assert!(
        last_progress(&run, "ops", "RUN-1").contains("· succeeded in "),
        "{}",
        run.stdout
    );
    no_surprises(&fake);
}

#[test]
fn a_run_cancelled_before_its_dispatch_is_never_dispatched_and_one_just_dispatched_is_cancelled() {
    let fake = fake_with_ci("success", Duration::from_secs(30), "");
    let env = env_with(&fake, "");
    // The cancel and the start, in one breath: whichever order the bot
    // sees them in, nothing runs on GitHub at the end.
    let run = env.console(&["/web-actions", "/build cancel run:RUN-1"]);
    assert!(
        last_progress(&run, "ops", "RUN-1").contains("· cancelled in "),
        "{}",
        run.stdout
    );
    assert!(
        fake.ci_runs().iter().all(|r| r.cancelled),
        "{:?}\n{:#?}",
        fake.ci_runs(),
        fake.ci_requests()
    );
    no_surprises(&fake);
}
