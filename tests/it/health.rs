//! `/healthz` (liveness) and `/readyz` (readiness) over real HTTP: ok when
//! everything runs; a dead worker makes the bot not ready (and says which)
//! while it stays alive; `/metrics` shows the build and each worker.

use std::time::Duration;

use opsbot::adapters::http::HttpState;
use opsbot::domain::{Actor, ChannelName, Source, UserName};
use opsbot::engine::Event;
use opsbot::runtime::{DeliveryError, Sink};
use opsbot::store::{OutboxItem, Queue};
use serde_json::{json, Value};

use crate::harness::Env;

/// `GET url`: the status and the JSON body (or the text as a JSON string).
async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The shipped bot on its own store, with only the HTTP intake running (no
/// outbox worker: each test starts the one it needs). Returns the bot, its
/// commit thread, the intake's base URL, its stop switch and its task.
async fn serve(
    env: &Env,
) -> (
    opsbot::runtime::Bot,
    opsbot::runtime::Writer,
    String,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config = env.config();
    let (bot, writer, store) = env.bot();
    drop(store);
    let state = HttpState::from_config(bot.clone(), &config).expect("http state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(opsbot::adapters::http::serve(listener, state, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    (bot, writer, base, stop_tx, server)
}

#[test]
fn healthz_readyz_and_metrics_when_all_runs() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let client = reqwest::blocking::Client::new();
    for path in ["/healthz", "/readyz"] {
        let resp = client.get(bot.url(path)).send().expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let body: Value = resp.json().expect("JSON");
        assert_eq!(body, json!({"status": "ok"}), "{path}");
    }
    let (code, metrics) = bot.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!(
            "opsbot_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            env!("OPSBOT_GIT_COMMIT")
        )),
        "{metrics}"
    );
    for worker in [
        "commit",
        "outbox-chat",
        "outbox-mail",
        "outbox-jobs",
        "timers",
        "job-followers",
    ] {
        assert!(
            metrics.contains(&format!("opsbot_worker_up{{worker=\"{worker}\"}} 1")),
            "{worker}: {metrics}"
        );
    }
    assert!(metrics.contains("opsbot_store_writable 1"), "{metrics}");
    // Every counter is named `_total`.
    for line in metrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.strip_suffix(" counter"))
        {
            assert!(
                name.ends_with("_total"),
                "counter {name} is not named _total"
            );
        }
    }
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// A sink with a bug that kills its worker: the worker asks it how many
/// deliveries it takes at once, and it panics. (A panic inside one delivery
/// does not kill the worker: that destination is retried later.)
struct Panicking;

impl Sink for Panicking {
    async fn deliver(&self, _item: &OutboxItem) -> Result<(), DeliveryError> {
        Ok(())
    }

    fn parallel(&self) -> usize {
        panic!("a bug in the chat adapter");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_makes_the_bot_not_ready_but_still_alive() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let env = Env::shipped();
        let (bot, writer, base, stop_tx, server) = serve(&env).await;
        assert_eq!(get(&format!("{base}/readyz")).await, (200, json!({"status": "ok"})));
        // The worker starts and dies at once.
        let (_worker_stop, worker_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(bot.outbox_worker(Queue::Chat, Panicking, worker_rx));

        // The worker is dead; the bot still takes commands.
        let command = opsbot::commands::parse_command("/ticket open title:boom", "OPS")
            .expect("command");
        bot.handle(Event::Command {
            actor: Actor::new(UserName::parse("olivia").expect("user"), Source::Console),
            channel: ChannelName::parse("ops").expect("channel"),
            command,
        })
        .await
        .expect("ticket opened");
        let ended = worker.await;
        assert!(ended.is_err_and(|e| e.is_panic()), "the worker did not panic");

        let (code, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(
            body,
            json!({"status": "unavailable", "problems": ["worker outbox-chat panicked and is not running"]})
        );
        // Alive: the commit thread runs, the process answers.
        assert_eq!(get(&format!("{base}/healthz")).await, (200, json!({"status": "ok"})));
        let (code, metrics) = get(&format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        assert!(
            metrics.contains("opsbot_worker_up{worker=\"outbox-chat\"} 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("opsbot_worker_up{worker=\"commit\"} 1"),
            "{metrics}"
        );

        stop_tx.send(true).expect("stop");
        server.await.expect("server task").expect("server");
        drop(bot);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .expect("join");
    })
    .await
    .expect("the test timed out");
}

/// A sink whose first delivery panics (a bug hit by one post), then
/// delivers; it tells the test each text it delivered.
struct PanicsOnce {
    panicked: std::sync::atomic::AtomicBool,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Sink for PanicsOnce {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        if !self
            .panicked
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a bug hit by one post");
        }
        let _ = self.tx.send(format!("{:?}", item.effect));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_panics_is_retried_and_the_worker_stays_up() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let env = Env::shipped();
        let (bot, writer, base, stop_tx, server) = serve(&env).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = PanicsOnce {
            panicked: std::sync::atomic::AtomicBool::new(false),
            tx,
        };
        let (worker_stop, worker_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(bot.outbox_worker(Queue::Chat, sink, worker_rx));
        let command =
            opsbot::commands::parse_command("/ticket open title:boom", "OPS").expect("command");
        bot.handle(Event::Command {
            actor: Actor::new(UserName::parse("olivia").expect("user"), Source::Console),
            channel: ChannelName::parse("ops").expect("channel"),
            command,
        })
        .await
        .expect("ticket opened");
        // The card that hit the bug goes out after all, once, then its thread.
        let first = rx.recv().await.expect("a delivery");
        let is_card = |t: &str| t.contains("Text(\"New ticket \"), Bold(\"OPS-1\")");
        assert!(is_card(&first), "{first}");
        assert!(bot.wait_delivered(Duration::from_secs(20)).await);
        let mut rest = Vec::new();
        while let Ok(t) = rx.try_recv() {
            rest.push(t);
        }
        assert!(
            !rest.iter().any(|t| is_card(t)),
            "the card went out twice: {rest:?}"
        );
        assert_eq!(
            get(&format!("{base}/readyz")).await,
            (200, json!({"status": "ok"}))
        );
        let (_, metrics) = get(&format!("{base}/metrics")).await;
        assert!(
            metrics
                .as_str()
                .unwrap_or_default()
                .contains("opsbot_worker_up{worker=\"outbox-chat\"} 1"),
            "{metrics}"
        );
        worker_stop.send(true).expect("stop worker");
        worker.await.expect("the worker ended by itself");
        stop_tx.send(true).expect("stop");
        server.await.expect("server task").expect("server");
        drop(bot);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .expect("join");
    })
    .await
    .expect("the test timed out");
}
