//! The wiring that `opsbot run` and `opsbot console` share: the bot on its
//! store, and after the chat worker (each command brings its own sink) the
//! mail and job workers, lost runs settled, the alert timer and the HTTP
//! intake, in that order. Stopping stays with each command: they drain
//! differently.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use opsbot::adapters::console::Printer;
use opsbot::adapters::http::{self, HttpState};
use opsbot::adapters::jobs::{JenkinsRunner, JobRunner, LocalRunner};
use opsbot::adapters::smtp::SmtpSink;
use opsbot::config::Config;
use opsbot::engine::Engine;
use opsbot::runtime::{Bot, SystemClock, Writer};
use opsbot::store::{Queue, Store};

/// How often quiet alert groups are looked for.
const STALE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the store and starts the commit thread. The bot holds the only
/// handle to the store: after a failed write it opens the files again (see
/// `runtime::StoreSlot`).
pub fn open(store: Store, config: &Arc<Config>) -> anyhow::Result<(Bot, Writer, Arc<SystemClock>)> {
    let clock = Arc::new(SystemClock);
    let (bot, writer) = Bot::start(store, Engine::new(config.clone()), clock.clone())?;
    Ok((bot, writer, clock))
}

/// What [`start`] set going.
pub struct Started {
    pub mailer: JoinHandle<()>,
    pub jobs: JoinHandle<()>,
    /// The job runners the jobs worker delivers to (for waiting on them).
    pub job_runner: JobRunner,
    pub ticker: JoinHandle<()>,
    pub server: JoinHandle<std::io::Result<()>>,
}

/// Starts everything after the chat worker. `printer`: the console's, to show
/// the mail sent.
pub async fn start(
    bot: &Bot,
    config: &Config,
    clock: Arc<SystemClock>,
    printer: Option<Printer>,
    listen: Option<SocketAddr>,
    stop: watch::Receiver<bool>,
    stop_workers: watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let smtp = SmtpSink::new(&config.smtp, bot.clone(), printer)?;
    let mailer = tokio::spawn(bot.outbox_worker(Queue::Mail, smtp, stop_workers.clone()));
    let local = LocalRunner::new(bot.clone());
    let jenkins = match &config.jenkins {
        Some(j) => {
            Some(JenkinsRunner::new(bot.clone(), j).context("cannot set up the Jenkins client")?)
        }
        None => None,
    };
    // Local runs a previous process left running died with it; Jenkins runs
    // are followed again.
    bot.settle_lost_runs().await;
    if let Some(j) = &jenkins {
        j.resume();
    }
    let job_runner = JobRunner { local, jenkins };
    let jobs = tokio::spawn(bot.outbox_worker(Queue::Jobs, job_runner.clone(), stop_workers));
    let ticker = tokio::spawn(bot.stale_ticker(STALE_EVERY, clock, stop.clone()));
    let server = start_http(bot, config, listen, stop).await?;
    Ok(Started {
        mailer,
        jobs,
        job_runner,
        ticker,
        server,
    })
}

/// Binds the HTTP intake and serves it until `stop` turns true. Prints
/// `listening on http://HOST:PORT` once requests are accepted.
async fn start_http(
    bot: &Bot,
    config: &Config,
    listen: Option<SocketAddr>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let addr = listen.unwrap_or(config.http.listen);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}; pass --listen 127.0.0.1:0 for a free port, or change [http] listen")
    })?;
    let bound = listener.local_addr()?;
    let state =
        HttpState::from_config(bot.clone(), config).context("cannot set up the session checker")?;
    let mut stop = stop;
    let server = tokio::spawn(http::serve(listener, state, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    errln!("listening on http://{bound}");
    Ok(server)
}
