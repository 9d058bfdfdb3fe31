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

/// Opens the store the config names: sled's data directory, or the
/// PostgreSQL database whose URL is in `[storage] url_env`.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    use opsbot::config::StorageBackend;
    match config.storage.backend {
        StorageBackend::Sled => Ok(Store::open_sized(
            &config.storage_path,
            config.storage.cache,
        )?),
        StorageBackend::Postgres => {
            let Some(url) = &config.storage.url.value else {
                anyhow::bail!(
                    "{} is not set: [storage] backend = \"postgres\" reads the database's URL from it, such as postgresql://opsbot@localhost/opsbot",
                    config.storage.url.var
                );
            };
            let store =
                Store::connect(url.expose()).context("cannot open the PostgreSQL database")?;
            Ok(store)
        }
    }
}

/// How often an instance that shares its database takes in the others'
/// commits to the delivery queues.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Waits until this instance holds the lease on once-only work (at once on
/// sled, whose files are this process's alone), saying once that it waits;
/// then keeps it from a task of its own. An instance that loses the lease
/// (another took it: this one was paused or cut off from the database for
/// longer than the lease) ends the process at once, so that only the new
/// holder acts; its supervisor starts it again as a standby. `None`: `stop`
/// came first. The lease is given up when `done` turns true: once the
/// workers have stopped, after the last deliveries.
pub async fn lead(
    bot: &Bot,
    mut stop: watch::Receiver<bool>,
    mut done: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let lease = bot.lease().clone();
    let mut said = false;
    loop {
        let taken = take_lease(bot, &lease).await;
        match taken {
            Ok(true) => break,
            Ok(false) if !said => {
                errln!(
                    "standby: another instance holds the lease; this one serves HTTP and commands, and takes over when the lease runs out"
                );
                said = true;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take the lease"),
        }
        tokio::select! {
            _ = tokio::time::sleep(lease.every()) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
    if said {
        errln!("took over the lease: delivering, timers and the runners run here now");
    }
    let bot = bot.clone();
    Some(tokio::spawn(async move {
        // Another instance's commits are delivered here too.
        tokio::spawn(bot.follow_commits(FOLLOW_EVERY, done.clone()));
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(lease.every()) => false,
                _ = done.wait_for(|s| *s) => true,
            };
            if stopping {
                // A clean stop hands over at once.
                if let Ok(store) = bot.store() {
                    let l = lease.clone();
                    let _ = tokio::task::spawn_blocking(move || l.release(&store)).await;
                }
                return;
            }
            let renewed = take_lease(&bot, &lease).await;
            match renewed {
                Ok(true) => {}
                Ok(false) => lost("another instance holds the lease now"),
                Err(e) if !lease.held() => lost(&format!("it could not be renewed in time: {e}")),
                Err(e) => tracing::warn!(error = %e, "cannot renew the lease; trying again"),
            }
        }
    }))
}

/// While systemd's watchdog is on (`WatchdogSec=`, so `WATCHDOG_USEC` is
/// set): pings it every half period while the bot is alive by its own
/// health (the commit thread runs and is not stuck on one batch), so that a
/// wedged bot is restarted.
fn watchdog(bot: &Bot, mut stop: watch::Receiver<bool>) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(std::time::Duration::from_millis(10));
    let health = bot.health().clone();
    tokio::spawn(async move {
        loop {
            let problems = health.liveness(chrono::Utc::now());
            if problems.is_empty() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            } else {
                tracing::warn!(problems = ?problems, "not alive: the watchdog is not pinged");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// Tells systemd the bot is stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// One try to take or renew the lease, off the async threads.
async fn take_lease(bot: &Bot, lease: &Arc<opsbot::runtime::lease::Lease>) -> Result<bool, String> {
    let store = bot.store().map_err(|e| e.to_string())?;
    let l = lease.clone();
    tokio::task::spawn_blocking(move || l.try_take(&store))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Ends the process: this instance lost the lease.
fn lost(why: &str) -> ! {
    errln!("lost the lease ({why}): stopping at once so that only the new holder delivers and fires timers; start again to stand by");
    std::process::exit(3)
}

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
    /// Keeps the lease.
    pub keeper: JoinHandle<()>,
    /// Alertmanager's queue worker and silence poller, when it is set.
    pub alertmanager: Vec<JoinHandle<()>>,
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
) -> anyhow::Result<Option<Started>> {
    // What was in flight before this process took work in is what an
    // earlier one left; runs queued since then are this process's (or its
    // peers') and are delivered, not settled as lost.
    let started = bot.now();
    // Every instance serves HTTP; the rest runs where the lease is.
    let server = start_http(bot, config, listen, stop.clone()).await?;
    // The store is open and the intake listens: ready, for systemd
    // (`Type=notify`); and the watchdog, if it asks for one.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    watchdog(bot, stop.clone());
    let Some(keeper) = lead(bot, stop.clone(), stop_workers.clone()).await else {
        let _ = server.await;
        return Ok(None);
    };
    let smtp = SmtpSink::new(&config.smtp, bot.clone(), printer)?;
    let mailer = tokio::spawn(bot.outbox_worker(Queue::Mail, smtp, stop_workers.clone()));
    // Customer mail in: watched where the lease is, so that one instance
    // takes each mail in; it ends when `stop` turns true.
    if let Some(inbox) = &config.support.inbox {
        let _ = opsbot::adapters::imap::spawn(bot.clone(), inbox, stop.clone());
    }
    let local = LocalRunner::new(bot.clone());
    let jenkins = match &config.jenkins {
        Some(j) => {
            Some(JenkinsRunner::new(bot.clone(), j).context("cannot set up the Jenkins client")?)
        }
        None => None,
    };
    // Local runs a previous process left running died with it; Jenkins runs
    // are followed again.
    bot.settle_lost_runs(started).await;
    if let Some(j) = &jenkins {
        j.resume();
    }
    let forge = opsbot::adapters::jobs::forge_ci::ForgeCiRunner::new(bot.clone());
    forge.resume();
    let job_runner = JobRunner {
        local,
        jenkins,
        forge,
    };
    let alertmanager = opsbot::adapters::alertmanager::start(
        bot,
        config.alerts.alertmanager.as_ref(),
        stop.clone(),
        stop_workers.clone(),
    )
    .context("cannot set up the Alertmanager client")?;
    // `provider = "git"` repositories: looked at every `poll`.
    opsbot::adapters::forges::poll::spawn(bot, config, stop.clone());
    let jobs = tokio::spawn(bot.outbox_worker(Queue::Jobs, job_runner.clone(), stop_workers));
    let ticker = tokio::spawn(bot.stale_ticker(STALE_EVERY, clock, stop.clone()));
    Ok(Some(Started {
        mailer,
        jobs,
        job_runner,
        ticker,
        server,
        keeper,
        alertmanager,
    }))
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

/// Watches `SIGHUP` from now on (a `SIGHUP` before would end the process,
/// as it does any program that does not handle it); [`watch_reload`] acts
/// on it.
pub fn hangups() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).context("cannot watch SIGHUP")
}

/// Reloads `bot.toml` and `commands/` on every `SIGHUP` until `stop` turns
/// true (see [`reload`]); after each reload that took effect, `after` is
/// given the config before and the one now in effect.
pub fn watch_reload<F, Fut>(
    bot: &Bot,
    mut hup: tokio::signal::unix::Signal,
    mut stop: watch::Receiver<bool>,
    after: F,
) where
    F: Fn(Arc<Config>, Arc<Config>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let bot = bot.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
            let old = bot.config();
            if reload(&bot).await {
                after(old, bot.config()).await;
            }
        }
    });
}

/// On Discord: registers the slash commands again when a reload changed
/// them (custom commands come from `commands/*.toml`), globally or in each
/// guild as at start.
pub async fn reregister_commands(http: &serenity::http::Http, old: &Config, new: &Config) {
    use opsbot::adapters::discord::slash_commands;
    let commands = slash_commands(new);
    let same = match (
        serde_json::to_value(slash_commands(old)),
        serde_json::to_value(&commands),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return;
    }
    if new.discord.guild_ids.is_empty() {
        match serenity::all::Command::set_global_commands(http, commands).await {
            Ok(_) => tracing::info!("the reload changed the slash commands: registered again"),
            Err(e) => tracing::error!(error = %e, "cannot register the reloaded slash commands"),
        }
        return;
    }
    for g in &new.discord.guild_ids {
        match serenity::all::GuildId::new(*g)
            .set_commands(http, commands.clone())
            .await
        {
            Ok(_) => tracing::info!(
                guild = g,
                "the reload changed the slash commands: registered again"
            ),
            Err(e) => {
                tracing::error!(guild = g, error = %e, "cannot register the reloaded slash commands in a guild")
            }
        }
    }
}

/// One reload: the config file the bot runs from, read and validated as at
/// start ([`Config::load`]). Valid: in effect for every later event (the
/// settings only a restart changes keep their old value, and are named).
/// Invalid: the running config stays; the problems go to the log and, once,
/// to `#ops`. Returns whether the new config took effect.
pub async fn reload(bot: &Bot) -> bool {
    let file = bot.config().file.clone();
    let shown = file.display().to_string();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&file)).await;
    let problems: Vec<String> = match loaded {
        Ok(Ok(loaded)) => {
            for w in &loaded.warnings {
                tracing::warn!(problem = %w, "config reload: a warning");
            }
            match bot.reload(loaded.config).await {
                Ok(done) if done.restart.is_empty() => {
                    errln!("reloaded {shown}: in effect for every later event");
                }
                Ok(done) => errln!(
                    "reloaded {shown}: in effect for every later event; these changed but need a restart (they keep their old value until then): {}",
                    done.restart.join(", ")
                ),
                // In effect all the same: only the post about it failed.
                Err(e) => {
                    tracing::error!(error = %e, "reloaded the config, but cannot tell #ops")
                }
            }
            return true;
        }
        Ok(Err(e)) => e.problems.iter().map(|p| p.to_string()).collect(),
        Err(e) => vec![format!("error: {shown}: the reload task failed: {e}")],
    };
    for p in &problems {
        tracing::error!(problem = %p, "config reload refused");
    }
    errln!(
        "did not reload {shown}: {} problem(s) above; the running config stays",
        problems.len()
    );
    if let Err(e) = bot.reload_refused(problems).await {
        tracing::error!(error = %e, "cannot tell #ops that the reload was refused");
    }
    false
}
