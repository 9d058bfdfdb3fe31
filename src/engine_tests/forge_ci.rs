//! Runs of a forge's CI reported by webhook, on the engine: one the forge
//! started on its own becomes a run of its own; the bot's own dispatch is
//! not reported twice, neither while the runner still looks for it nor
//! once it is found; a redelivery changes nothing. On the in-memory view,
//! with a GitHub Actions job read from a `commands/` folder on disk.

use std::sync::Arc;

use chrono::TimeZone;

use crate::commands::parse_command;
use crate::config::Config;
use crate::domain::ci::{ForgeRun, ForgeRunState};
use crate::domain::code::Provider;
use crate::domain::run::{BackendRef, RunId, RunState, RunUpdate};
use crate::domain::{Actor, ChannelName, Source, Timestamp, UserName};
use crate::engine::{Decision, Engine, Event, MemoryView, View};

const CONFIG: &str = r#"
[roles]
operators = ["olivia"]
[teams.backend]
channel = "backend"
members = ["bob"]
[repos.web]
url = "https://github.com/acme/web.git"
provider = "github"
team = "backend"
secret_env = "OPSBOT_TEST_NEVER_SET"
"#;

struct Bench {
    view: MemoryView,
    engine: Engine,
    now: Timestamp,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("commands")).unwrap();
        std::fs::write(
            dir.path().join("commands/web-ci.toml"),
            "description = \"w\"\nteam = \"backend\"\nbackend = \"github_actions\"\nrepo = \"web\"\nworkflow = \"ci.yml\"\nwho = [\"anyone\"]\n",
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

    fn hook(&mut self, delivery: &str, r: ForgeRun) -> Decision {
        self.event(Event::ForgeRun {
            delivery: Some(delivery.into()),
            run: Box::new(r),
        })
    }

    fn state(&self, n: u64) -> Option<RunState> {
        self.view.run(RunId(n)).unwrap().map(|r| r.state)
    }
}

fn said(d: &Decision) -> String {
    d.reply
        .as_ref()
        .map(|r| r.body.to_plain())
        .unwrap_or_default()
}

fn run(id: u64, event: &str, state: ForgeRunState) -> ForgeRun {
    ForgeRun {
        provider: Provider::Github,
        repo: "web".into(),
        id,
        workflow: "CI".into(),
        workflow_file: Some("ci.yml".into()),
        branch: "main".into(),
        sha: "a".repeat(40),
        state,
        word: "in_progress".into(),
        url: Some(format!("https://github.com/acme/web/actions/runs/{id}")),
        title: "CI".into(),
        event: event.into(),
        actor: "bob".into(),
        default_branch: Some("main".into()),
        tail: String::new(),
    }
}

#[test]
fn the_bots_own_dispatch_is_not_reported_twice_and_the_forges_own_runs_are() {
    let mut b = Bench::new();
    let command = parse_command("/build job:web-ci", "OPS").unwrap();
    b.event(Event::Command {
        actor: Actor::new(UserName::parse("bob").unwrap(), Source::Console),
        channel: ChannelName::parse("backend").unwrap(),
        command,
    });
    b.event(Event::RunUpdate {
        run: RunId(1),
        update: RunUpdate::Submitted {
            backend_ref: BackendRef::GithubDispatch { at: 1_772_366_400 },
        },
    });
    // GitHub's hook for the dispatch, before the runner found its run.
    let d = b.hook("h1", run(55, "workflow_dispatch", ForgeRunState::Running));
    assert_eq!(said(&d), "started by the bot, which follows it already");
    assert!(d.writes.is_empty());
    // Found: the forge's id is the bot's run from now on.
    b.event(Event::RunUpdate {
        run: RunId(1),
        update: RunUpdate::Started {
            backend_ref: BackendRef::GithubRun { id: 55, url: None },
        },
    });
    let d = b.hook("h2", run(55, "workflow_dispatch", ForgeRunState::Failed));
    assert_eq!(said(&d), "RUN-1 started it; the bot follows it already");
    assert_eq!(b.state(1), Some(RunState::Running));
    assert_eq!(b.state(2), None);

    // A push's run, which GitHub started on its own: a run of its own.
    let d = b.hook("h3", run(56, "push", ForgeRunState::Running));
    assert_eq!(said(&d), "reported as RUN-2");
    assert_eq!(b.state(2), Some(RunState::Running));
    let again = b.hook("h3", run(56, "push", ForgeRunState::Failed));
    assert!(
        said(&again).starts_with("already delivered"),
        "{}",
        said(&again)
    );
    assert_eq!(b.state(2), Some(RunState::Running));
    // A restart does not call it lost: the forge runs it, not the bot.
    b.event(Event::LostRun {
        run: RunId(2),
        orders: Vec::new(),
    });
    assert_eq!(b.state(2), Some(RunState::Running));
    b.hook("h4", run(56, "push", ForgeRunState::Failed));
    assert_eq!(b.state(2), Some(RunState::Failed));
    // Reported once: a later hook of the ended run changes nothing.
    let d = b.hook("h5", run(56, "push", ForgeRunState::Succeeded));
    assert!(d
        .writes
        .iter()
        .all(|w| matches!(w, crate::engine::Write::Marker(..))));
    assert_eq!(b.state(2), Some(RunState::Failed));
    // Another dispatch while no bot run waits to be matched: not the bot's.
    let d = b.hook("h6", run(57, "workflow_dispatch", ForgeRunState::Queued));
    assert_eq!(said(&d), "reported as RUN-3");
    // A run whose name names a bot run of this workflow is the bot's.
    let mut named = run(58, "push", ForgeRunState::Queued);
    named.title = "CI · RUN-1".into();
    assert_eq!(
        said(&b.hook("h7", named)),
        "started by the bot, which follows it already"
    );
}
