//! The code loop through the real binary: forge webhooks (GitHub, GitLab,
//! Gitea/Forgejo) signed as each forge signs them, payloads from each
//! forge's documentation (`tests/fixtures/forges/`), pushes built by the
//! repo's jobs with the commit given to them, posts in the team's channel,
//! commits noted on tickets, a failing main branch as a ticket; and every
//! bad request (bad or missing signature, malformed, oversized, a
//! redelivery, a repository or branch not followed) answered with nothing
//! stored or built.

use std::time::Duration;

use serde_json::{json, Value};

use crate::forge_hooks::{self as hooks, fixture, hmac_hex, send};
use crate::harness::{shipped_config, Env, LiveBot};

const GH_SECRET: &str = "gh-secret-9f";
const GL_SECRET: &str = "gl-token-3k";
const GT_SECRET: &str = "gt-secret-7q";

/// The shipped config with three repositories (the fixtures' own), a job
/// that records what it was given and fails while a file exists, and bob's
/// commit address; the request body limit small enough to test.
fn env() -> Env {
    env_with("")
}

/// As [`env`], with more of `bot.toml`.
fn env_with(extra: &str) -> Env {
    env_on(false, extra)
}

/// As [`env_with`], the records on PostgreSQL when `pg`.
fn env_on(pg: bool, extra: &str) -> Env {
    let config = shipped_config().replace("body_limit = 1048576", "body_limit = 65536");
    let text = format!(
        r#"{config}
{extra}
[repos.hello]
url = "https://github.com/Codertocat/Hello-World.git"
provider = "github"
on_push = ["ci-web"]
team = "backend"
secret_env = "GH_SECRET"

[repos.diaspora]
url = "git@example.com:mike/diaspora.git"
provider = "gitlab"
on_push = ["ci-web"]
team = "backend"
secret_env = "GL_SECRET"

[repos.webhooks]
url = "http://localhost:3000/gitea/webhooks.git"
provider = "gitea"
branches = ["develop"]
on_push = ["ci-web"]
team = "infra"
secret_env = "GT_SECRET"

[people.bob]
emails = ["bob@example.com"]
"#
    );
    let mut env = if pg {
        let env = Env::on_postgres_with(&text);
        crate::kit::copy_dir(
            &crate::kit::shipped_commands(),
            &env.dir.path().join("commands"),
        );
        env
    } else {
        Env::shipped_with(&text)
    };
    let built = env.dir.path().join("built.txt");
    let fail = env.dir.path().join("fail");
    env.script(
        "commands/scripts/ci-web.sh",
        "#!/bin/sh\necho \"$OPSBOT_REPO $OPSBOT_REF $OPSBOT_SHA $1\" >> \"$BUILT\"\nif [ -e \"$FAIL\" ]; then echo 'FAIL checkout_test'; exit 1; fi\n",
    );
    env.write(
        "commands/ci-web.toml",
        &format!(
            r#"
description = "Builds and tests a pushed commit"
team = "backend"
program = "scripts/ci-web.sh"
args = ["{{sha}}"]
who = ["operators", "team:backend"]
[env]
BUILT = "{}"
FAIL = "{}"
[params.ref]
description = "The branch"
pattern = '[A-Za-z0-9._/-]{{1,100}}'
default = "main"
[params.sha]
description = "The commit"
pattern = '[0-9a-f]{{40}}'
default = "0000000000000000000000000000000000000000"
"#,
            built.display(),
            fail.display()
        ),
    );
    for (k, v) in [
        ("GH_SECRET", GH_SECRET),
        ("GL_SECRET", GL_SECRET),
        ("GT_SECRET", GT_SECRET),
    ] {
        env.vars.push((k.into(), v.into()));
    }
    env
}

fn built(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.dir.path().join("built.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A GitHub event, signed with the repo's secret.
fn github(bot: &LiveBot, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    hooks::github(bot, GH_SECRET, event, delivery, body)
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// GitHub's documented push, made a push of `commits` to `branch`.
fn gh_push(branch: &str, before: &str, after: &str, commits: &[(char, &str, &str)]) -> Value {
    let mut v = fixture("github-push-tag-deleted.json");
    v["ref"] = json!(format!("refs/heads/{branch}"));
    v["before"] = json!(before);
    v["after"] = json!(after);
    v["deleted"] = json!(false);
    v["created"] = json!(before.bytes().all(|b| b == b'0'));
    v["commits"] = json!(commits
        .iter()
        .map(|(c, msg, email)| json!({
            "id": sha(*c),
            "tree_id": sha('f'),
            "distinct": true,
            "message": msg,
            "timestamp": "2026-03-01T12:00:00Z",
            "url": format!("https://github.com/Codertocat/Hello-World/commit/{}", sha(*c)),
            "author": {"name": email.split('@').next().unwrap_or(""), "email": email, "username": "x"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": [], "removed": [], "modified": ["README.md"]
        }))
        .collect::<Vec<_>>());
    v
}

fn wait_for(bot: &LiveBot, what: &str) {
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p.contains(what)),
        "never printed {what:?}:\n{}",
        bot.printed()
    );
}

#[test]
fn a_github_push_is_built_once_with_its_commit_and_said_in_the_team_channel() {
    github_push_on(env());
}

/// The same on PostgreSQL: the branch records and delivery ids are written
/// over the same seam.
#[test]
fn a_github_push_is_built_once_on_postgres() {
    github_push_on(env_on(true, ""));
}

fn github_push_on(env: Env) {
    let mut bot = env.live(&[]);
    bot.line(":as olivia");
    bot.line("/ticket open title:\"Checkout 502\"");
    wait_for(&bot, "OPS-1");
    let body = gh_push(
        "master",
        &sha('1'),
        &sha('a'),
        &[
            ('b', "Add the retry\n\nrefs OPS-1", "bella@example.com"),
            (
                'a',
                "Retry the payment call\n\nFixes OPS-1",
                "Bob@Example.com",
            ),
        ],
    );
    let (code, answer) = github(&bot, "push", "d-1", &body);
    assert_eq!(code, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"builds": 1, "result": "aaaaaaa queued: RUN-1", "tickets": ["OPS-1"]})
    );
    wait_for(&bot, "succeeded");
    // Redelivered (GitHub's "Redeliver"): the same id, nothing twice.
    let (code, answer) = github(&bot, "push", "d-1", &body);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["ignored"],
        "already delivered (github:d-1): nothing done twice"
    );
    // The same head again under a new id (a second hook): built no more.
    let (code, answer) = github(&bot, "push", "d-2", &body);
    assert_eq!(
        (code, answer["builds"].clone()),
        (202, json!(0)),
        "{answer}"
    );
    let run = bot.finish();
    assert_eq!(
        built(&env),
        vec![format!("hello master {} {}", sha('a'), sha('a'))]
    );
    let backend = run.in_channel("backend");
    assert!(
        backend.contains(&"Codertocat pushed hello master → aaaaaaa: 2 commits"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "  aaaaaaa Retry the payment call — @bob https://github.com/Codertocat/Hello-World/commit/{}",
        sha('a')
    )), "{}", run.stdout);
    assert!(
        run.stdout.contains("  bbbbbbb Add the retry — bella"),
        "{}",
        run.stdout
    );
    assert!(
        backend
            .iter()
            .any(|l| l.starts_with("RUN-1 · ci-web ") && l.contains(" · succeeded in ")),
        "{}",
        run.stdout
    );
    let thread = run.in_thread("ops", "OPS-1");
    assert!(
        thread.contains(&"A commit pushed to hello master refers to this:"),
        "{}",
        run.stdout
    );
    assert!(
        thread.contains(&"A commit pushed to hello master says it fixes this:"),
        "{}",
        run.stdout
    );
    let export = env.export();
    let notes: Vec<&str> = export
        .iter()
        .filter(|e| e["type"] == "timeline" && e["ticket"] == "OPS-1")
        .filter_map(|e| e["text"].as_str())
        .filter(|t| t.starts_with("commit "))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    let runs: Vec<&Value> = export.iter().filter(|e| e["type"] == "run").collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["params"]["repo"], "hello");
    assert_eq!(runs[0]["requester"], "git");
}

#[test]
fn bad_hooks_are_refused_or_ignored_and_store_nothing() {
    let env = env();
    let bot = env.live(&[]);
    let body = serde_json::to_vec(&gh_push("master", &sha('1'), &sha('a'), &[])).unwrap();
    let good = format!("sha256={}", hmac_hex(GH_SECRET, &body));
    let wrong = format!("sha256={}", hmac_hex("not-the-secret", &body));
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [u8], u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "b1")],
            &body,
            401,
            "missing the x-hub-signature-256 header",
        ),
        (
            vec![("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &wrong)],
            &body,
            401,
            "does not match this body",
        ),
        (
            vec![
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", "sha256=zz"),
            ],
            &body,
            401,
            "does not match",
        ),
        (
            vec![("X-Hub-Signature-256", &good)],
            &body,
            400,
            "missing the x-github-event header",
        ),
        (
            vec![("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &good)],
            b"{not json",
            400,
            "not JSON",
        ),
    ];
    for (headers, b, want, says) in cases {
        let (code, answer) = send(&bot, "/hooks/github", &headers, b);
        assert_eq!(code, want, "{headers:?}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or("").contains(says),
            "{headers:?}: {answer}"
        );
    }
    // Signed, but not the push it says it is.
    let mut broken = gh_push("master", &sha('1'), &sha('a'), &[]);
    broken["after"] = json!("not-a-sha");
    let (code, answer) = github(&bot, "push", "b2", &broken);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`after` is not a commit id"),
        "{answer}"
    );
    // Too large.
    let mut big = gh_push("master", &sha('1'), &sha('a'), &[]);
    big["padding"] = json!("x".repeat(70_000));
    let (code, answer) = github(&bot, "push", "b3", &big);
    assert_eq!(code, 413, "{answer}");
    // Accepted and ignored (never an error that turns a hook off): a ping,
    // a tag, a branch not followed, a repository not configured, an event
    // the bot does not act on.
    let mut ping = fixture("github-push-tag-deleted.json");
    ping["zen"] = json!("Keep it logically awesome.");
    ping["hook_id"] = json!(1);
    let (code, answer) = github(&bot, "ping", "p1", &ping);
    assert_eq!((code, answer), (200, json!({"pong": "hello"})));
    let (code, answer) = github(&bot, "push", "t1", &fixture("github-push-tag-deleted.json"));
    assert_eq!(code, 200);
    assert_eq!(
        answer["ignored"],
        "refs/tags/simple-tag is not a branch; only branches are built"
    );
    let (code, answer) = github(
        &bot,
        "push",
        "f1",
        &gh_push("feature/x", &sha('1'), &sha('a'), &[]),
    );
    assert_eq!(code, 200);
    assert_eq!(
        answer["ignored"],
        "ignored: feature/x is not a branch bot.toml follows in hello"
    );
    let mut other = gh_push("master", &sha('1'), &sha('a'), &[]);
    other["repository"]["full_name"] = json!("someone/else");
    for k in ["html_url", "clone_url", "ssh_url"] {
        other["repository"][k] = json!("https://github.com/someone/else");
    }
    let (code, answer) = github(&bot, "push", "o1", &other);
    assert_eq!(code, 200);
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .starts_with("no [repos.*] in bot.toml is this github repository (someone/else)"),
        "{answer}"
    );
    let (code, answer) = github(&bot, "issues", "i1", &other);
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = github(&bot, "star", "s1", &ping);
    assert_eq!(
        (code, answer["ignored"].clone()),
        (200, json!("the star event is not acted on"))
    );
    let run = bot.finish();
    assert!(built(&env).is_empty(), "{}", run.stdout);
    assert!(run.in_channel("backend").is_empty(), "{}", run.stdout);
    assert!(env.export().iter().all(|e| e["type"] != "run"));
}

#[test]
fn gitlab_and_gitea_pushes_from_their_documentation_are_built() {
    let env = env();
    let bot = env.live(&[]);
    let gl = serde_json::to_vec(&fixture("gitlab-push.json")).unwrap();
    let (code, answer) = send(
        &bot,
        "/hooks/gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "wrong"),
            ("X-Gitlab-Event-UUID", "u1"),
        ],
        &gl,
    );
    assert_eq!(code, 401, "{answer}");
    let headers = [
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", GL_SECRET),
        ("X-Gitlab-Event-UUID", "u1"),
    ];
    let (code, answer) = send(&bot, "/hooks/gitlab", &headers, &gl);
    assert_eq!(
        (code, answer["builds"].clone()),
        (202, json!(1)),
        "{answer}"
    );
    let (code, answer) = send(&bot, "/hooks/gitlab", &headers, &gl);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["ignored"],
        "already delivered (gitlab:u1): nothing done twice"
    );
    let (code, answer) = send(
        &bot,
        "/hooks/gitlab",
        &[
            ("X-Gitlab-Event", "Merge Request Hook"),
            ("X-Gitlab-Token", GL_SECRET),
        ],
        &gl,
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["ignored"],
        "a pull request event without an action: nothing to build"
    );

    let gt = serde_json::to_vec(&fixture("gitea-push.json")).unwrap();
    let sig = hmac_hex(GT_SECRET, &gt);
    let (code, answer) = send(
        &bot,
        "/hooks/gitea",
        &[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &format!("sha256={sig}")),
            ("X-Gitea-Delivery", "g1"),
        ],
        &gt,
    );
    assert_eq!(code, 401, "Gitea signs with the hex alone: {answer}");
    let (code, answer) = send(
        &bot,
        "/hooks/gitea",
        &[
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Signature", &sig),
            ("X-Forgejo-Delivery", "g1"),
        ],
        &gt,
    );
    assert_eq!(
        (code, answer["builds"].clone()),
        (202, json!(1)),
        "{answer}"
    );
    // Redelivered under Gitea's own header name: the same id, nothing twice.
    let (code, answer) = send(
        &bot,
        "/hooks/gitea",
        &[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &sig),
            ("X-Gitea-Delivery", "g1"),
        ],
        &gt,
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["ignored"],
        "already delivered (gitea:g1): nothing done twice"
    );
    let run = bot.finish();
    let mut b = built(&env);
    b.sort();
    assert_eq!(
        b,
        vec![
            "diaspora master da1560886d4f094c3e6c9ef40349f7d38b5d27d7 da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            "webhooks develop bffeb74224043ba2feb48d137756c8a9331c449a bffeb74224043ba2feb48d137756c8a9331c449a",
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.in_channel("backend")
            .contains(&"jsmith pushed diaspora master → da15608: 4 commits"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  … and 2 earlier"), "{}", run.stdout);
    assert!(
        run.in_channel("infra")
            .contains(&"gitea pushed webhooks develop → bffeb74: 1 commit"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  bffeb74 Webhooks Yay! — Gitea http://localhost:3000/gitea/webhooks/commit/bffeb74224043ba2feb48d137756c8a9331c449a"), "{}", run.stdout);
}

#[test]
fn a_failing_main_branch_is_a_ticket_naming_its_suspects_until_green() {
    let env = env();
    let bot = env.live(&[]);
    let (code, _) = github(
        &bot,
        "push",
        "1",
        &gh_push(
            "master",
            &sha('0'),
            &sha('a'),
            &[('a', "Start", "bella@example.com")],
        ),
    );
    assert_eq!(code, 202);
    wait_for(&bot, "RUN-1 · ci-web");
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p.contains("succeeded")),
        "{}",
        bot.printed()
    );
    std::fs::write(env.dir.path().join("fail"), "").unwrap();
    let (code, _) = github(
        &bot,
        "push",
        "2",
        &gh_push(
            "master",
            &sha('a'),
            &sha('b'),
            &[('b', "Break checkout", "bob@example.com")],
        ),
    );
    assert_eq!(code, 202);
    wait_for(&bot, "New build ticket OPS-1");
    std::fs::remove_file(env.dir.path().join("fail")).unwrap();
    let (code, _) = github(
        &bot,
        "push",
        "3",
        &gh_push(
            "master",
            &sha('b'),
            &sha('c'),
            &[('c', "Mend checkout", "bob@example.com")],
        ),
    );
    assert_eq!(code, 202);
    wait_for(&bot, "RUN-3 passed: fixed.");
    let run = bot.finish();
    let thread = run.in_thread("ops", "OPS-1");
    assert!(
        thread.contains(&"Commits since the last green build (aaaaaaa):"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "  bbbbbbb Break checkout — @bob https://github.com/Codertocat/Hello-World/commit/"
        ),
        "{}",
        run.stdout
    );
    let t = env
        .tickets()
        .into_iter()
        .find(|t| t["id"] == "OPS-1")
        .unwrap();
    assert_eq!(t["title"], "ci-web is failing on hello master");
    assert_eq!(t["team"], "backend");
    assert_eq!(t["state"], "resolved");
}

/// Runs the system `git` in `dir` as bob would.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    git_as(dir, ("Bob", "bob@example.com"), args)
}

/// Runs the system `git` in `dir` as `who` (name, e-mail), with no user or
/// system git config, and fails the test if it fails; its output, trimmed.
pub(crate) fn git_as(dir: &std::path::Path, who: (&str, &str), args: &[&str]) -> String {
    let (name, email) = who;
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", name)
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(work: &std::path::Path, file: &str, message: &str) -> String {
    std::fs::write(work.join(file), message).unwrap();
    git(work, &["add", "."]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["rev-parse", "HEAD"])
}

#[test]
fn a_plain_git_server_is_polled_and_each_moved_head_is_a_push() {
    let remote = tempfile::tempdir().unwrap();
    let origin = remote.path().join("origin.git");
    let gone = remote.path().join("gone.git");
    let work = remote.path().join("work");
    std::fs::create_dir_all(&origin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    git(&origin, &["init", "-q", "--bare", "-b", "main"]);
    git(&work, &["init", "-q", "-b", "main"]);
    git(
        &work,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    let first = commit(&work, "a.txt", "First");
    git(&work, &["push", "-q", "origin", "main"]);

    let env = env_with(&format!(
        r#"
[repos.plain]
url = "{}"
provider = "git"
branches = ["main", "feature/*"]
on_push = ["ci-web"]
team = "backend"
poll = "1s"

[repos.gone]
url = "{}"
provider = "git"
on_push = ["ci-web"]
team = "infra"
poll = "1s"
"#,
        origin.display(),
        gone.display()
    ));
    let bot = env.live(&[]);
    let short = |s: &str| s[..7].to_string();
    wait_for(
        &bot,
        &format!("Bob pushed plain main → {}: 1 commit", short(&first)),
    );
    wait_for(&bot, "Cannot reach the repository gone");

    let second = commit(&work, "b.txt", "Second");
    let third = commit(&work, "c.txt", "Third\n\nwith a body");
    git(&work, &["push", "-q", "origin", "main"]);
    wait_for(
        &bot,
        &format!("Bob pushed plain main → {}: 2 commits", short(&third)),
    );

    git(&work, &["reset", "-q", "--hard", &first]);
    let rewritten = commit(&work, "d.txt", "Rewritten");
    git(&work, &["push", "-q", "-f", "origin", "main"]);
    wait_for(
        &bot,
        &format!(
            "Bob force-pushed plain main → {} (history rewritten: it was at {}",
            short(&rewritten),
            short(&third)
        ),
    );

    git(&work, &["push", "-q", "origin", "main:feature/x"]);
    wait_for(
        &bot,
        &format!("Bob pushed plain feature/x → {}", short(&rewritten)),
    );
    git(&work, &["push", "-q", "origin", ":feature/x"]);
    wait_for(&bot, "deleted plain feature/x: nothing is built for it");

    // The missing remote appears: said once that it answers, and built.
    std::fs::create_dir_all(&gone).unwrap();
    git(&gone, &["init", "-q", "--bare", "-b", "main"]);
    git(&work, &["push", "-q", gone.to_str().unwrap(), "main"]);
    wait_for(&bot, "The repository gone answers again");
    wait_for(
        &bot,
        &format!("Bob pushed gone main → {}", short(&rewritten)),
    );
    let run = bot.finish();
    let out = &run.stdout;
    assert_eq!(
        out.matches("Cannot reach the repository gone").count(),
        1,
        "{out}"
    );
    assert_eq!(out.matches("answers again").count(), 1, "{out}");
    assert!(
        out.contains(&format!("  {} Second — @bob", short(&second))),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {} Third — @bob", short(&third))),
        "{out}"
    );
    let b = built(&env);
    for sha in [&first, &third, &rewritten] {
        assert!(b.contains(&format!("plain main {sha} {sha}")), "{b:?}");
    }
    assert!(
        b.contains(&format!("plain feature/x {rewritten} {rewritten}")),
        "{b:?}"
    );
    assert!(
        b.contains(&format!("gone main {rewritten} {rewritten}")),
        "{b:?}"
    );
    assert!(!b.iter().any(|l| l.contains(&second)), "{b:?}");
}

/// Waits until the fake forge took `n` statuses.
fn wait_taken(forge: &crate::fake_forge::FakeForge, n: usize) -> Vec<crate::fake_forge::Taken> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = forge.taken();
        if t.len() >= n || std::time::Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_run_reports_its_commit_status_to_the_forge_in_order() {
    let forge = crate::fake_forge::FakeForge::start(
        "forge-token-1",
        &["Codertocat/Hello-World", "mike/diaspora", "gitea/webhooks"],
    );
    let config = format!(
        "[repos.hello]\nurl = \"https://github.com/Codertocat/Hello-World.git\"\nprovider = \"github\"\non_push = [\"ci-web\"]\nteam = \"backend\"\nsecret_env = \"GH_SECRET\"\ntoken_env = \"FORGE_TOKEN\"\napi_url = \"{0}\"\n\n[repos.diaspora]\nurl = \"http://example.com/mike/diaspora.git\"\nprovider = \"gitlab\"\non_push = [\"ci-web\"]\nteam = \"backend\"\nsecret_env = \"GL_SECRET\"\ntoken_env = \"FORGE_TOKEN\"\napi_url = \"{0}/api/v4\"\n",
        forge.base
    );
    // The env's own repos of those names are replaced by these.
    let mut env = env_with("");
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text
        .replace("[repos.hello]\nurl = \"https://github.com/Codertocat/Hello-World.git\"\nprovider = \"github\"\non_push = [\"ci-web\"]\nteam = \"backend\"\nsecret_env = \"GH_SECRET\"\n", "")
        .replace("[repos.diaspora]\nurl = \"git@example.com:mike/diaspora.git\"\nprovider = \"gitlab\"\non_push = [\"ci-web\"]\nteam = \"backend\"\nsecret_env = \"GL_SECRET\"\n", "");
    std::fs::write(&env.config, format!("{text}\n{config}")).unwrap();
    env.vars
        .push(("FORGE_TOKEN".into(), "forge-token-1".into()));
    let bot = env.live(&[]);
    let (code, answer) = github(
        &bot,
        "push",
        "s1",
        &gh_push(
            "master",
            &sha('0'),
            &sha('a'),
            &[('a', "One", "bob@example.com")],
        ),
    );
    assert_eq!(code, 202, "{answer}");
    let t = wait_taken(&forge, 2);
    let seen: Vec<(&str, &str, &str, &str)> = t
        .iter()
        .map(|s| {
            (
                s.forge,
                s.repo.as_str(),
                s.state.as_str(),
                s.context.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "github",
                "Codertocat/Hello-World",
                "pending",
                "opsbot/ci-web"
            ),
            (
                "github",
                "Codertocat/Hello-World",
                "success",
                "opsbot/ci-web"
            ),
        ]
    );
    assert_eq!(t[0].sha, sha('a'));
    assert_eq!(t[0].description, "RUN-1 queued");
    assert_eq!(t[1].description, "RUN-1 passed");
    // A failing build: failure. GitLab: its own states and token header.
    std::fs::write(env.dir.path().join("fail"), "").unwrap();
    let gl = serde_json::to_vec(&fixture("gitlab-push.json")).unwrap();
    let (code, answer) = send(
        &bot,
        "/hooks/gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GL_SECRET),
            ("X-Gitlab-Event-UUID", "s2"),
        ],
        &gl,
    );
    assert_eq!(code, 202, "{answer}");
    let t = wait_taken(&forge, 4);
    assert_eq!(
        t[2..]
            .iter()
            .map(|s| (
                s.forge,
                s.repo.as_str(),
                s.state.as_str(),
                s.context.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("gitlab", "mike/diaspora", "pending", "opsbot/ci-web"),
            ("gitlab", "mike/diaspora", "failed", "opsbot/ci-web"),
        ]
    );
    assert!(
        t[3].description.starts_with("RUN-2 failed: exit code 1"),
        "{t:?}"
    );
    // The token is revoked: said once to the team, kept as dead letters,
    // and chat goes on.
    forge.set_token("another-token");
    std::fs::remove_file(env.dir.path().join("fail")).unwrap();
    let (code, _) = github(
        &bot,
        "push",
        "s3",
        &gh_push(
            "master",
            &sha('a'),
            &sha('b'),
            &[('b', "Two", "bob@example.com")],
        ),
    );
    assert_eq!(code, 202);
    wait_for(&bot, "The forge refuses the commit statuses of hello");
    wait_for(&bot, "RUN-3 · ci-web");
    assert!(
        bot.wait_printed(Duration::from_secs(30), |p| p
            .matches("succeeded in")
            .count()
            >= 2),
        "{}",
        bot.printed()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while forge.refused() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = bot.finish();
    assert_eq!(forge.refused(), 2, "pending and success, each tried once");
    assert_eq!(forge.taken().len(), 4);
    assert_eq!(
        run.stdout
            .matches("The forge refuses the commit statuses of hello")
            .count(),
        1,
        "{}",
        run.stdout
    );
}

#[test]
fn a_pull_request_is_built_and_its_failure_told_to_its_author_with_no_ticket() {
    let env = env();
    let bot = env.live(&[]);
    std::fs::write(env.dir.path().join("fail"), "").unwrap();
    let mut pr = fixture("github-pull-request-opened.json");
    let (code, answer) = github(&bot, "pull_request", "pr-1", &pr);
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["builds"], 1);
    wait_for(&bot, "failed on your pull request #2 of hello");
    pr["action"] = json!("closed");
    let (code, answer) = github(&bot, "pull_request", "pr-2", &pr);
    assert_eq!(
        (code, answer["ignored"].clone()),
        (200, json!("a pull request closed: nothing to build"))
    );
    // Its base not followed: ignored.
    pr["action"] = json!("synchronize");
    pr["pull_request"]["base"]["ref"] = json!("gh-pages");
    let (code, answer) = github(&bot, "pull_request", "pr-3", &pr);
    assert_eq!(code, 200, "{answer}");
    let run = bot.finish();
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    assert_eq!(built(&env), vec![format!("hello changes {sha} {sha}")]);
    let backend = run.in_channel("backend");
    assert!(backend.contains(&"Codertocat updated pull request #2 of hello (changes into master) → ec26c3e: Update the README with new information. https://github.com/Codertocat/Hello-World/pull/2"), "{}", run.stdout);
    assert!(backend.contains(&"Codertocat: RUN-1 (ci-web) failed on your pull request #2 of hello; no ticket is opened for it"), "{}", run.stdout);
    assert!(env.tickets().is_empty(), "{}", run.stdout);
    let export = env.export();
    let r = export.iter().find(|e| e["type"] == "run").unwrap();
    assert_eq!(r["params"]["pr"], "2");
    assert_eq!(r["state"], "failed");
}

/// A repository the forge does not have (404, as a token without access to
/// it gets): said once to the team, each status tried once and kept as a
/// dead letter; the builds and chat go on.
#[test]
fn a_repository_the_forge_does_not_know_is_said_once() {
    let forge = crate::fake_forge::FakeForge::start("forge-token-2", &["someone/else"]);
    let mut env = env_with(&format!(
        "[repos.ghost]\nurl = \"https://github.com/acme/ghost.git\"\nprovider = \"github\"\non_push = [\"ci-web\"]\nteam = \"backend\"\nsecret_env = \"GH_SECRET\"\ntoken_env = \"FORGE_TOKEN\"\napi_url = \"{}\"\n",
        forge.base
    ));
    env.vars
        .push(("FORGE_TOKEN".into(), "forge-token-2".into()));
    let bot = env.live(&[]);
    for (n, (before, after)) in [('0', 'a'), ('a', 'b')].into_iter().enumerate() {
        let mut body = gh_push(
            "master",
            &sha(before),
            &sha(after),
            &[(after, "Change", "bob@example.com")],
        );
        body["repository"]["full_name"] = json!("acme/ghost");
        for k in ["html_url", "clone_url", "ssh_url"] {
            body["repository"][k] = json!("https://github.com/acme/ghost");
        }
        let (code, answer) = github(&bot, "push", &format!("g{n}"), &body);
        assert_eq!(code, 202, "{answer}");
        wait_for(&bot, &format!("RUN-{} · ci-web", n + 1));
        assert!(
            bot.wait_printed(Duration::from_secs(30), |p| p
                .matches("succeeded in")
                .count()
                > n),
            "{}",
            bot.printed()
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while forge.refused() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = bot.finish();
    assert_eq!(
        forge.refused(),
        4,
        "pending and success of two runs, once each"
    );
    assert!(forge.taken().is_empty());
    assert_eq!(
        run.stdout
            .matches("The forge refuses the commit statuses of ghost")
            .count(),
        1,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("404 from ghost"), "{}", run.stdout);
    let (_bot, _writer, store) = env.bot();
    let dead = store.dead_letters().expect("dead letters");
    let statuses = dead
        .iter()
        .filter(|d| {
            matches!(&d.effect, opsbot::engine::Effect::Job(opsbot::domain::run::JobOrder::Status { status }) if status.repo == "ghost")
        })
        .count();
    assert_eq!(statuses, 4, "{dead:?}");
}
