//! The code loop on the engine: pushes become builds once per head, a
//! newer head supersedes what has not started, deletes and unknown
//! branches build nothing, redeliveries change nothing, commits are noted
//! on the tickets they name, and a failing main branch is a ticket naming
//! its suspects until the next green build. On the in-memory view; here,
//! not in `engine/tests/`, because the jobs are read from a `commands/`
//! folder on disk.

use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::code::{Commit, Push};
use crate::domain::run::{JobOrder, RunId, RunState, RunUpdate};
use crate::domain::{Actor, ChannelName, Source, TicketId, TicketState, Timestamp, UserName};
use crate::engine::tests::post_line;
use crate::engine::{Decision, Effect, Engine, Event, MemoryView, QueryView, View, Write};

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob", "bella"]
[people.bob]
emails = ["bob@example.com"]
[repos.web]
url = "https://github.com/acme/web.git"
provider = "github"
branches = ["main", "release/*"]
on_push = ["test-web"]
team = "backend"
secret_env = "OPSBOT_TEST_NEVER_SET"
"#;

struct Bench {
    view: MemoryView,
    engine: Engine,
    now: Timestamp,
    _dir: tempfile::TempDir,
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

fn commit(c: char, message: &str, email: &str) -> Commit {
    Commit {
        sha: sha(c),
        message: message.into(),
        author_name: email.split('@').next().unwrap_or("").into(),
        author_email: email.into(),
        url: None,
    }
}

fn push(branch: &str, before: Option<char>, after: Option<char>, commits: Vec<Commit>) -> Push {
    Push {
        repo: "web".into(),
        branch: branch.into(),
        before: before.map(sha),
        after: after.map(sha),
        forced: false,
        pusher: "bob".into(),
        total_commits: commits.len(),
        commits,
        default_branch: Some("main".into()),
        pr: None,
    }
}

impl Bench {
    /// With the repo's token set: commit statuses are ordered.
    fn with_statuses() -> Bench {
        let mut b = Bench::new();
        let mut config = b.engine.config().clone();
        if let Some(r) = config.repos.get_mut("web") {
            r.token = Some(crate::config::EnvSecret {
                var: "WEB_TOKEN".into(),
                value: Some(crate::config::Secret::for_tests("t")),
            });
        }
        b.engine = Engine::new(Arc::new(config));
        b
    }

    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("commands")).unwrap();
        std::fs::write(
            dir.path().join("commands/test-web.toml"),
            "description = \"t\"\nprogram = \"/bin/true\"\nwho = [\"anyone\"]\n[params.ref]\ndescription = \"r\"\npattern = '[A-Za-z0-9._/-]{1,100}'\ndefault = \"main\"\n",
        )
        .unwrap();
        let config = Config::parse(&dir.path().join("bot.toml"), CONFIG)
            .unwrap()
            .config;
        Bench {
            view: MemoryView::new(),
            engine: Engine::new(Arc::new(config)),
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            _dir: dir,
        }
    }

    fn event(&mut self, ev: Event) -> Decision {
        let d = self.engine.decide(&self.view, &ev, self.now).unwrap();
        self.view.apply(d.writes.clone());
        d
    }

    fn push(&mut self, delivery: &str, p: Push) -> Decision {
        self.event(Event::Push {
            delivery: Some(delivery.into()),
            push: p,
        })
    }

    fn finish(&mut self, run: u64, success: bool) -> Decision {
        self.event(Event::RunUpdate {
            run: RunId(run),
            update: RunUpdate::Finished {
                success,
                reason: if success {
                    "exit code 0"
                } else {
                    "exit code 1"
                }
                .into(),
                tail: String::new(),
            },
        })
    }

    fn state(&self, run: u64) -> RunState {
        self.view.run(RunId(run)).unwrap().unwrap().state
    }
}

fn posts(d: &Decision) -> Vec<String> {
    d.writes
        .iter()
        .filter_map(|w| match w {
            Write::Effect(e) => post_line(e.clone()),
            _ => None,
        })
        .collect()
}

fn orders(d: &Decision) -> Vec<JobOrder> {
    d.writes
        .iter()
        .filter_map(|w| match w {
            Write::Effect(Effect::Job(o)) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn each_head_is_built_once_and_a_newer_one_supersedes_what_has_not_started() {
    let mut b = Bench::new();
    let d = b.push(
        "github:1",
        push(
            "main",
            Some('1'),
            Some('a'),
            vec![commit('a', "Add retries", "bob@example.com")],
        ),
    );
    let o = orders(&d);
    assert_eq!(o.len(), 1, "{o:?}");
    let JobOrder::Start { run, job, params } = &o[0] else {
        panic!("{o:?}")
    };
    assert_eq!((*run, job.as_str()), (RunId(1), "test-web"));
    assert_eq!(params["ref"], "main");
    assert_eq!(params["sha"], sha('a'));
    assert_eq!(params["repo"], "web");
    let p = posts(&d);
    assert_eq!(
        p[0],
        "#backend bob pushed web main → aaaaaaa: 1 commit\n  aaaaaaa Add retries — @bob"
    );
    assert_eq!(d.reply.unwrap().body.to_plain(), "aaaaaaa queued: RUN-1");

    // The same delivery again: nothing at all.
    let again = b.push(
        "github:1",
        push(
            "main",
            Some('1'),
            Some('a'),
            vec![commit('a', "Add retries", "bob@example.com")],
        ),
    );
    assert!(
        again.writes.is_empty() && again.accepted.is_none(),
        "{again:?}"
    );
    // Another delivery of the same head: recorded, built no second time.
    let same = b.push("github:1b", push("main", Some('1'), Some('a'), vec![]));
    assert!(
        orders(&same).is_empty() && posts(&same).is_empty(),
        "{same:?}"
    );

    // A newer head while RUN-1 waits: RUN-1 is cancelled, saying by which.
    let d = b.push(
        "github:2",
        push(
            "main",
            Some('a'),
            Some('b'),
            vec![commit('b', "Fix the retry", "bella@example.com")],
        ),
    );
    assert_eq!(b.state(1), RunState::Cancelled);
    let run1 = b.view.run(RunId(1)).unwrap().unwrap();
    assert_eq!(run1.timeline.last().unwrap().text, "superseded by bbbbbbb");
    assert_eq!(
        orders(&d),
        vec![
            JobOrder::Cancel { run: RunId(1) },
            JobOrder::Start {
                run: RunId(2),
                job: "test-web".into(),
                params: [
                    ("ref", "main".to_string()),
                    ("repo", "web".into()),
                    ("sha", sha('b'))
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            }
        ]
    );
    // A running build is not superseded.
    b.event(Event::RunUpdate {
        run: RunId(2),
        update: RunUpdate::Started {
            backend_ref: crate::domain::run::BackendRef::Local { pid: Some(7) },
        },
    });
    b.push("github:3", push("main", Some('b'), Some('c'), vec![]));
    assert_eq!(b.state(2), RunState::Running);
    assert_eq!(b.state(3), RunState::Queued);
}

#[test]
fn deletes_tags_and_unfollowed_branches_build_nothing() {
    let mut b = Bench::new();
    b.push("d1", push("release/1.2", None, Some('a'), vec![]));
    let d = b.push("d2", push("release/1.2", Some('a'), None, vec![]));
    assert_eq!(b.state(1), RunState::Cancelled);
    assert!(posts(&d).contains(&"#backend bob deleted web release/1.2: nothing is built for it; cancelled RUN-1, which had not started".to_string()), "{:?}", posts(&d));
    assert!(orders(&d)
        .iter()
        .all(|o| matches!(o, JobOrder::Cancel { .. })));
    let d = b.push("d3", push("feature/x", None, Some('a'), vec![]));
    assert!(d.writes.is_empty(), "{d:?}");
    assert_eq!(
        d.reply.unwrap().body.to_plain(),
        "ignored: feature/x is not a branch bot.toml follows in web"
    );
}

#[test]
fn commits_note_the_tickets_they_name_once() {
    let mut b = Bench::new();
    let command = parse_command("/ticket open title:\"Checkout 502\"", "OPS").unwrap();
    b.event(Event::Command {
        actor: Actor::new(UserName::parse("olivia").unwrap(), Source::Console),
        channel: ChannelName::parse("ops").unwrap(),
        command,
    });
    let c = commit(
        'a',
        "Retry the call\n\nFixes OPS-1, refs OPS-9",
        "bob@example.com",
    );
    let d = b.push("d1", push("main", None, Some('a'), vec![c.clone()]));
    assert_eq!(
        d.accepted.as_ref().unwrap().tickets,
        vec![TicketId::new("OPS", 1)]
    );
    assert!(posts(&d).contains(&"#ops›OPS-1 A commit pushed to web main says it fixes this:\n  aaaaaaa Retry the call — @bob".to_string()), "{:?}", posts(&d));
    // The same commit again (on another branch, after a rebase that kept it).
    b.push("d2", push("release/1", None, Some('a'), vec![c]));
    let tl: Vec<String> = b
        .view
        .timeline(&TicketId::new("OPS", 1))
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(
        tl.iter().filter(|t| t.starts_with("commit ")).count(),
        1,
        "{tl:?}"
    );
    assert!(
        tl.contains(&"commit aaaaaaa fixes this: Retry the call".to_string()),
        "{tl:?}"
    );
    assert_eq!(
        b.view
            .ticket(&TicketId::new("OPS", 1))
            .unwrap()
            .unwrap()
            .state,
        TicketState::Open
    );
}

#[test]
fn a_failing_main_build_is_a_ticket_naming_the_suspects_until_green() {
    let mut b = Bench::new();
    b.push(
        "d1",
        push(
            "main",
            None,
            Some('a'),
            vec![commit('a', "Green start", "bella@example.com")],
        ),
    );
    b.finish(1, true);
    b.push(
        "d2",
        push(
            "main",
            Some('a'),
            Some('b'),
            vec![commit('b', "Break it", "bob@example.com")],
        ),
    );
    let d = b.finish(2, false);
    let p = posts(&d);
    assert!(
        p.iter()
            .any(|l| l.starts_with("#ops New build ticket OPS-1")),
        "{p:?}"
    );
    assert!(
        p.contains(
            &"#ops›OPS-1 Commits since the last green build (aaaaaaa):\n  bbbbbbb Break it — @bob"
                .to_string()
        ),
        "{p:?}"
    );
    let t = b.view.ticket(&TicketId::new("OPS", 1)).unwrap().unwrap();
    assert_eq!(t.title, "test-web is failing on web main");
    assert_eq!(t.team.as_ref().map(|t| t.as_str()), Some("backend"));
    // A feature of release/* failing opens nothing.
    b.push("d3", push("release/2", None, Some('c'), vec![]));
    b.finish(3, false);
    assert_eq!(b.view.ticket_count(), 1);
    // The next green build of main resolves it.
    b.push(
        "d4",
        push(
            "main",
            Some('b'),
            Some('d'),
            vec![commit('d', "Mend it", "bob@example.com")],
        ),
    );
    let d = b.finish(4, true);
    assert!(
        posts(&d).contains(&"#ops›OPS-1 RUN-4 passed: fixed.".to_string()),
        "{:?}",
        posts(&d)
    );
    let t = b.view.ticket(&TicketId::new("OPS", 1)).unwrap().unwrap();
    assert_eq!(t.state, TicketState::Resolved);
    let st = b.view.branch("web/main").unwrap().unwrap();
    assert_eq!(st.last_green, Some(sha('d')));
    assert!(st.since_green.is_empty() && st.runs.is_empty());
}

#[test]
fn each_run_orders_its_commit_statuses_in_order() {
    use crate::domain::code::StatusState;
    let mut b = Bench::with_statuses();
    let statuses = |d: &Decision| -> Vec<(u64, StatusState, String)> {
        orders(d)
            .into_iter()
            .filter_map(|o| match o {
                JobOrder::Status { status } => {
                    assert_eq!(status.context, "opsbot/test-web");
                    Some((status.run.0, status.state, status.description))
                }
                _ => None,
            })
            .collect()
    };
    let d = b.push("d1", push("main", None, Some('a'), vec![]));
    assert_eq!(
        statuses(&d),
        vec![(1, StatusState::Pending, "RUN-1 queued".into())]
    );
    let d = b.push("d2", push("main", Some('a'), Some('b'), vec![]));
    assert_eq!(
        statuses(&d),
        vec![
            (1, StatusState::Error, "RUN-1 superseded by bbbbbbb".into()),
            (2, StatusState::Pending, "RUN-2 queued".into()),
        ]
    );
    // The cancel goes before the error status, the start before its pending.
    let kinds: Vec<&str> = orders(&d)
        .iter()
        .map(|o| match o {
            JobOrder::Start { .. } => "start",
            JobOrder::Cancel { .. } => "cancel",
            JobOrder::Status { .. } => "status",
            JobOrder::DeployCommits { .. } => "deploy commits",
        })
        .collect();
    assert_eq!(kinds, ["cancel", "status", "start", "status"]);
    let d = b.finish(2, false);
    assert_eq!(
        statuses(&d),
        vec![(2, StatusState::Failure, "RUN-2 failed: exit code 1".into())]
    );
    // Without a token: none.
    let mut plain = Bench::new();
    let d = plain.push("d1", push("main", None, Some('a'), vec![]));
    assert!(statuses(&d).is_empty());
}

/// A succeeded deploy of a service that names a repository orders its
/// commits read (from the version git resolved last time); the answer
/// resolves what the commits fix, once: the same answer again (a
/// redelivery after a crash) changes nothing.
#[test]
fn a_deploys_commits_resolve_their_tickets_once() {
    use crate::domain::code::DeployCommits;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("commands")).unwrap();
    std::fs::write(
        dir.path().join("commands/deploy-web.toml"),
        "description = \"d\"\nprogram = \"/bin/true\"\nwho = [\"anyone\"]\n[params.version]\ndescription = \"v\"\npattern = '[a-z0-9.]{1,20}'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("commands/test-web.toml"),
        "description = \"t\"\nprogram = \"/bin/true\"\nwho = [\"anyone\"]\n",
    )
    .unwrap();
    let text = format!(
        "{CONFIG}[services.web]\njob = \"deploy-web\"\nrepo = \"web\"\n[services.web.environments.staging]\n"
    );
    let config = Config::parse(&dir.path().join("bot.toml"), &text)
        .unwrap()
        .config;
    let mut b = Bench::new();
    b.engine = Engine::new(Arc::new(config));
    let command = |b: &mut Bench, who: &str, line: &str| {
        let command = parse_command(line, "OPS").unwrap();
        b.event(Event::Command {
            actor: Actor::new(UserName::parse(who).unwrap(), Source::Console),
            channel: ChannelName::parse("backend").unwrap(),
            command,
        })
    };
    command(&mut b, "olivia", "/ticket open title:\"Checkout 502\"");
    command(&mut b, "bob", "/deploy service:web env:staging version:v2");
    let d = b.finish(1, true);
    assert!(
        orders(&d).contains(&JobOrder::DeployCommits {
            run: RunId(1),
            repo: "web".into(),
            from: None,
            to: "v2".into(),
        }),
        "{:?}",
        orders(&d)
    );
    let first = Event::DeployCommits {
        run: RunId(1),
        repo: "web".into(),
        found: DeployCommits::First { to: sha('2') },
    };
    let d = b.event(first.clone());
    assert!(
        posts(&d)[0].starts_with("#backend RUN-1 is the first deploy of web to staging on record"),
        "{:?}",
        posts(&d)
    );
    assert!(b.event(first).writes.is_empty());

    command(&mut b, "bob", "/deploy service:web env:staging version:v3");
    let d = b.finish(2, true);
    assert!(
        orders(&d).contains(&JobOrder::DeployCommits {
            run: RunId(2),
            repo: "web".into(),
            from: Some(sha('2')),
            to: "v3".into(),
        }),
        "counted from the commit v2 was: {:?}",
        orders(&d)
    );
    let answer = Event::DeployCommits {
        run: RunId(2),
        repo: "web".into(),
        found: DeployCommits::Range {
            from: sha('2'),
            to: sha('3'),
            commits: vec![
                commit('a', "Retry\n\nfixes OPS-1", "bob@example.com"),
                commit('b', "Retry again\n\ncloses OPS-1", "bob@example.com"),
            ],
            total: 2,
        },
    };
    let d = b.event(answer.clone());
    assert!(
        posts(&d).contains(&"#backend RUN-2 deployed web v3 to staging: 2 commits since v2\n  aaaaaaa Retry — @bob\n  bbbbbbb Retry again — @bob\nResolved for an operator to verify: OPS-1".to_string()),
        "{:?}",
        posts(&d)
    );
    let t = b.view.ticket(&TicketId::new("OPS", 1)).unwrap().unwrap();
    assert_eq!(t.state, TicketState::Resolved);
    let again = b.event(answer);
    assert!(again.writes.is_empty(), "{again:?}");
    let resolves = b
        .view
        .timeline(&TicketId::new("OPS", 1))
        .unwrap()
        .into_iter()
        .filter(|e| e.text.starts_with("fixed by commit"))
        .count();
    assert_eq!(resolves, 1);
}
