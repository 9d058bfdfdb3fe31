//! A succeeded deploy resolves the tickets its commits fix: the shipped
//! `web` service names a repository (`[services.web] repo`), a real bare
//! Git repository in a temp dir with real commits and tags; each deploy
//! (a console run of its own, so a restart between each) reads with the
//! system `git` the commits between the environment's previous version
//! and the new one. `fixes OPS-N` resolves the ticket once, for an
//! operator to verify; `refs OPS-N` notes it; a first deploy, a version git
//! cannot read and a rollback resolve nothing, and say so (the unknown
//! version once).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{shipped_config, Env};

/// Runs the system `git` in `dir` as bella would.
fn git(dir: &Path, args: &[&str]) -> String {
    crate::forges::git_as(dir, ("Bella", "bella@example.com"), args)
}

/// The service's repository: `origin.git` (bare) and bella's work tree.
struct Repo {
    _dir: tempfile::TempDir,
    origin: PathBuf,
    work: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&origin).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&origin, &["init", "-q", "--bare", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        git(
            &work,
            &["remote", "add", "origin", origin.to_str().unwrap()],
        );
        Repo {
            _dir: dir,
            origin,
            work,
        }
    }

    /// A commit with this message; its id.
    fn commit(&self, message: &str) -> String {
        let n = std::fs::read_dir(&self.work).unwrap().count();
        std::fs::write(self.work.join(format!("f{n}.txt")), message).unwrap();
        git(&self.work, &["add", "."]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Tags the head and pushes the branch and the tag.
    fn release(&self, tag: &str) {
        git(&self.work, &["tag", "-a", tag, "-m", tag]);
        git(&self.work, &["push", "-q", "origin", "main", tag]);
    }
}

/// The shipped config, its `web` service's versions being tags of `repo`.
fn env(repo: &Repo) -> Env {
    let config = crate::kit::in_section(&shipped_config(), "[services.web]", "repo = \"webapp\"\n");
    let mut env = Env::shipped_with(&format!(
        "{config}\n[repos.webapp]\nurl = \"{}\"\nprovider = \"github\"\nteam = \"backend\"\nsecret_env = \"WEBAPP_SECRET\"\nweb_url = \"https://git.example.com/acme/web\"\n\n[people.bella]\nemails = [\"bella@example.com\"]\n",
        repo.origin.display()
    ));
    env.vars
        .push(("WEBAPP_SECRET".into(), "s3cret-hook".into()));
    env
}

fn deploy(env: &Env, version: &str) -> crate::harness::Run {
    env.console(&[
        ":as bob",
        &format!("/deploy service:web env:staging version:{version}"),
    ])
}

fn ticket(env: &Env, id: &str) -> Value {
    env.tickets()
        .into_iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

/// The timeline entries of `id`.
fn timeline(env: &Env, id: &str) -> Vec<String> {
    env.export()
        .into_iter()
        .filter(|e| e["type"] == "timeline" && e["ticket"] == id)
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect()
}

fn open_tickets(env: &Env, n: usize) {
    let mut lines = vec![":as bob".to_string()];
    for i in 1..=n {
        lines.push(format!(
            "/ticket open title:\"Checkout fault {i}\" team:backend"
        ));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    env.console(&lines);
}

#[test]
fn a_deploy_resolves_once_the_tickets_its_new_commits_fix_and_notes_those_they_refer_to() {
    let repo = Repo::new();
    repo.commit("Start the checkout");
    repo.release("v1");
    let fix = repo.commit("Retry the payment call\n\nfixes OPS-1");
    let refs = repo.commit("Log the retries\n\nrefs OPS-2");
    repo.commit("Tidy the retry\n\nCloses OPS-1 for good");
    repo.release("v2");
    let env = env(&repo);
    open_tickets(&env, 3);

    // The first deploy: nothing to compare with, said, nothing resolved.
    let run = deploy(&env, "v1");
    assert!(
        run.stdout
            .contains("RUN-1 is the first deploy of web to staging on record (v1 at "),
        "{}",
        run.stdout
    );
    assert_eq!(ticket(&env, "OPS-1")["state"], "assigned");

    // v1 → v2 (another process: a restart in between).
    let run = deploy(&env, "v2");
    let backend = run.in_channel("backend");
    assert!(
        backend.contains(&"RUN-2 deployed web v2 to staging: 3 commits since v1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "  {} Retry the payment call — @bella https://git.example.com/acme/web/commit/{fix}",
            &fix[..7]
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("\n  Resolved for an operator to verify: OPS-1\n  Noted on: OPS-2\n"),
        "{}",
        run.stdout
    );
    let t = ticket(&env, "OPS-1");
    assert_eq!(t["state"], "resolved");
    assert_eq!(
        t["resolution"],
        format!(
            "fixed by commit {}, deployed by RUN-2 (web v2 to staging)",
            &fix[..7]
        )
    );
    assert!(
        run.stdout.contains("Operators, verify it"),
        "{}",
        run.stdout
    );
    assert_eq!(ticket(&env, "OPS-2")["state"], "assigned");
    let noted = format!(
        "commit {} that refers to this is deployed by RUN-2 (web v2 to staging): Log the retries",
        &refs[..7]
    );
    assert_eq!(
        timeline(&env, "OPS-2")
            .iter()
            .filter(|t| **t == noted)
            .count(),
        1
    );
    let runs: Vec<Value> = env
        .export()
        .into_iter()
        .filter(|v| v["type"] == "run")
        .collect();
    assert_eq!(runs[1]["tickets"], serde_json::json!(["OPS-1"]));

    // The same version again after a restart: no commit is new, nothing is
    // resolved or noted twice.
    let run = deploy(&env, "v2");
    assert!(!run.stdout.contains("RUN-3 deployed web"), "{}", run.stdout);
    // v2 → v3: only what v3 brought.
    repo.commit("Mend the header\n\nfixes OPS-3, refs OPS-2");
    repo.release("v3");
    let run = deploy(&env, "v3");
    assert!(
        run.in_channel("backend")
            .contains(&"RUN-4 deployed web v3 to staging: 1 commit since v2"),
        "{}",
        run.stdout
    );
    assert_eq!(ticket(&env, "OPS-3")["state"], "resolved");
    let resolves = |id: &str| {
        timeline(&env, id)
            .iter()
            .filter(|t| t.starts_with("fixed by commit"))
            .count()
    };
    assert_eq!(resolves("OPS-1"), 1);
    assert_eq!(resolves("OPS-3"), 1);
    assert_eq!(
        timeline(&env, "OPS-2")
            .iter()
            .filter(|t| t.starts_with("commit "))
            .count(),
        2,
        "one note per deployed commit that refers to it"
    );
}

#[test]
fn a_version_git_cannot_read_is_said_once_and_resolves_nothing() {
    let repo = Repo::new();
    repo.commit("Start");
    repo.release("v1");
    repo.commit("Retry the payment call\n\nfixes OPS-1");
    repo.release("v2");
    let env = env(&repo);
    open_tickets(&env, 1);
    deploy(&env, "v1");
    let first = deploy(&env, "nosuch-1.0");
    let said = "deployed web to staging, but git cannot read the version nosuch-1.0 in webapp, so no commit resolves a ticket: no tag, branch or commit of webapp is named so";
    assert!(
        first.in_channel("backend").iter().any(|l| l.contains(said)),
        "{}",
        first.stdout
    );
    let again = deploy(&env, "nosuch-1.0");
    assert!(!again.stdout.contains("cannot read"), "{}", again.stdout);
    assert_eq!(ticket(&env, "OPS-1")["state"], "assigned");
    // The next version git reads is counted from the last one it read.
    let run = deploy(&env, "v2");
    assert!(
        run.in_channel("backend")
            .contains(&"RUN-4 deployed web v2 to staging: 1 commit since v1"),
        "{}",
        run.stdout
    );
    assert_eq!(ticket(&env, "OPS-1")["state"], "resolved");
}

#[test]
fn a_rollback_resolves_nothing_and_says_what_is_no_longer_deployed() {
    let repo = Repo::new();
    repo.commit("Start");
    repo.release("v1");
    repo.commit("Retry the payment call\n\nfixes OPS-1");
    repo.commit("Log the retries\n\nfixes OPS-2");
    repo.release("v2");
    let env = env(&repo);
    deploy(&env, "v1");
    deploy(&env, "v2");
    open_tickets(&env, 2);
    let run = env.console(&[":as bob", "/rollback service:web env:staging"]);
    assert!(
        run.in_channel("backend").contains(
            &"RUN-3 took web staging back from v2 to v1: 2 commits are no longer deployed there; the tickets they fixed are left as they are"
        ),
        "{}",
        run.stdout
    );
    // Opened after v2 went out: the step back resolves neither.
    assert_eq!(ticket(&env, "OPS-1")["state"], "assigned");
    assert_eq!(ticket(&env, "OPS-2")["state"], "assigned");
    // Forward again: v2's commits are new to the environment once more.
    let run = deploy(&env, "v2");
    assert!(
        run.in_channel("backend")
            .contains(&"RUN-4 deployed web v2 to staging: 2 commits since v1"),
        "{}",
        run.stdout
    );
    assert_eq!(ticket(&env, "OPS-1")["state"], "resolved");
    assert_eq!(ticket(&env, "OPS-2")["state"], "resolved");
}

#[test]
fn a_repository_git_cannot_fetch_is_said_once_and_resolves_nothing() {
    let repo = Repo::new();
    repo.commit("Retry the payment call\n\nfixes OPS-1");
    repo.release("v1");
    let env = env(&repo);
    // The remote is gone: the mirror cannot be brought up to date.
    let moved = repo.origin.with_extension("moved");
    std::fs::rename(&repo.origin, &moved).unwrap();
    open_tickets(&env, 1);
    let first = deploy(&env, "v1");
    assert!(
        first.in_channel("backend").iter().any(|l| l.contains(
            "deployed web to staging, but git cannot read the version v1 in webapp, so no commit resolves a ticket: git fetch failed"
        )),
        "{}",
        first.stdout
    );
    let again = deploy(&env, "v1");
    assert!(!again.stdout.contains("cannot read"), "{}", again.stdout);
    assert_eq!(ticket(&env, "OPS-1")["state"], "assigned");
}
